//! Wait queues: where processes block until another one changes what they wait for.
//!
//! A process that must wait (for a message, for room in a channel) follows the futex
//! pattern, so that no wake-up is lost between its look at the condition and its block:
//!
//! 1. under the lock of the object it waits on, it finds the condition false and reads
//!    the queue's [`WaitQueue::generation`];
//! 2. it switches out asking to wait on the queue with that generation
//!    ([`crate::process::Process::wait`]);
//! 3. the scheduler, once the process's context is saved, parks it on the queue unless
//!    the generation moved meanwhile, in which case it is ready again at once;
//! 4. whoever changes the condition, under the object's lock, calls [`WaitQueue::wake_all`],
//!    which moves the generation and makes every parked process ready; each looks at its
//!    condition again.
//!
//! Lock order: the waited-on object's lock, then the queue's.

use alloc::vec::Vec;

use super::Scheduler;
use crate::KernelHal;
use crate::process::ProcessBox;
use crate::sync::SpinLock;

/// A queue of blocked processes.
pub struct WaitQueue<H: KernelHal> {
    state: SpinLock<WaitState<H>>,
}

/// The parked processes and the count of wake-ups so far.
struct WaitState<H: KernelHal> {
    generation: u64,
    parked: Vec<ProcessBox<H>>,
}

impl<H: KernelHal> Default for WaitQueue<H> {
    fn default() -> Self {
        Self::new()
    }
}

impl<H: KernelHal> WaitQueue<H> {
    /// An empty queue.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            state: SpinLock::new(WaitState {
                generation: 0,
                parked: Vec::new(),
            }),
        }
    }

    /// The number of wake-ups so far: read it, under the lock of the waited-on object,
    /// before waiting.
    pub fn generation(&self) -> u64 {
        self.state.lock().generation
    }

    /// Makes every parked process ready.
    pub fn wake_all(&self, scheduler: &Scheduler<H>) {
        let woken = {
            let mut state = self.state.lock();
            state.generation = state.generation.wrapping_add(1);
            core::mem::take(&mut state.parked)
        };
        for process in woken {
            scheduler.enqueue(process);
        }
    }

    /// Parks `process`, which asked to wait at `generation`; returns it when a wake-up
    /// came since (it must run again at once).
    pub(crate) fn park(&self, process: ProcessBox<H>, generation: u64) -> Option<ProcessBox<H>> {
        let mut state = self.state.lock();
        if state.generation == generation {
            state.parked.push(process);
            None
        } else {
            Some(process)
        }
    }

    /// How many processes are parked.
    pub fn parked(&self) -> usize {
        self.state.lock().parked.len()
    }
}
