//! The scheduler: per-CPU run queues with work stealing, sleeping, and preemption by
//! epoch.
//!
//! Every CPU runs [`Scheduler::run_cpu`] on its own stack. The loop takes a ready process
//! (its own queue first, then due sleepers, then the back of another CPU's queue), arms its
//! timer for the end of the process's time slice, and switches to the process's context.
//! The process runs until it switches back, asking to be queued again (it yielded or was
//! preempted), to sleep until a time, or to be ended. An idle CPU arms its timer for the
//! next sleeper and waits for an interrupt; [`Scheduler::enqueue`] wakes one idle CPU.
//!
//! # Preemption
//!
//! The timer interrupt does no scheduling: [`on_timer`] only advances the global epoch
//! (`wasm::runtime::epoch`) to the current tick, `now / TICK_NS`. Generated code compares
//! the epoch with its store's deadline at every function entry and loop header; a process's
//! deadline is the tick its slice ends at ([`SLICE_TICKS`] ticks after it was resumed), and
//! its CPU's timer is armed for that moment. Past the deadline, generated code calls the
//! process's epoch handler, which yields. A time slice is therefore between
//! `(SLICE_TICKS - 1) * TICK_NS` and `SLICE_TICKS * TICK_NS`: 9 to 10 ms.
//!
//! A sleeping process is woken at the first scheduling point of any CPU after its
//! deadline: at once when a CPU is idle (its timer is armed for the earliest sleeper),
//! within one time slice when every CPU is busy.
//!
//! # Deadlock
//!
//! When processes are left but none is ready, running or sleeping, every one of them is
//! parked on a wait queue that only a running process could wake: nothing will ever
//! happen again. An idle CPU that sees this (twice the same count of scheduling events,
//! so that nothing moved in between) stops the scheduler with [`Stopped::Deadlock`]
//! instead of waiting forever; the kernel then reports the blocked processes.
//!
//! # Deterministic mode
//!
//! With a [`Deterministic`] state ([`Scheduler::new_deterministic`]), [`Scheduler::run_cpu`]
//! runs every simulated CPU's queue on the boot CPU alone, on a logical clock, with the
//! choices drawn from a seed: see [`deterministic`]. The mechanism (queues, sleepers, wait
//! queues, switches) is this module's; only the policy differs.

pub mod deterministic;
mod wait;

pub use deterministic::Deterministic;

pub use wait::WaitQueue;

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use crate::KernelHal;
use crate::hal::CpuId;
use crate::process::{Process, ProcessBox, Request};
use crate::sync::SpinLock;
use crate::wasm::runtime::epoch;

/// The length of an epoch tick: the granularity of preemption.
pub const TICK_NS: u64 = 1_000_000;

/// How many ticks a process runs before it is preempted: a time slice of 10 ms.
pub const SLICE_TICKS: u64 = 10;

/// The timer handler kernel-core installs in the HAL: moves the epoch to the current tick.
/// Interrupt context: one atomic operation.
pub fn on_timer(now_ns: u64) {
    epoch::advance_to(now_ns / TICK_NS);
}

/// The tick at which a slice started at `now_ns` ends.
#[must_use]
pub const fn slice_end_tick(now_ns: u64) -> u64 {
    now_ns / TICK_NS + SLICE_TICKS
}

/// One CPU's part of the scheduler.
struct CpuSlot<H: KernelHal> {
    /// Ready processes; this CPU takes from the front, thieves from the back.
    queue: SpinLock<VecDeque<ProcessBox<H>>>,
    /// The saved context of this CPU's scheduler loop while a process runs.
    context: UnsafeCell<H::SavedContext>,
    /// Whether the CPU is waiting for an interrupt with nothing to run.
    idle: AtomicBool,
    /// The timer deadline this CPU armed last (`u64::MAX`: none). Only this CPU uses it.
    armed: AtomicU64,
}

/// A process waiting for a time.
struct Sleeper<H: KernelHal> {
    wake_ns: u64,
    process: ProcessBox<H>,
}

/// Why [`Scheduler::run_cpu`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Every process ended.
    AllEnded,
    /// Processes are left, all blocked forever (see the module documentation).
    Deadlock,
}

/// The scheduler of all CPUs.
pub struct Scheduler<H: KernelHal> {
    hal: &'static H,
    cpus: Box<[CpuSlot<H>]>,
    sleepers: SpinLock<Vec<Sleeper<H>>>,
    /// Processes started and not yet ended: the kernel stops when it reaches zero.
    live: AtomicUsize,
    /// Processes taken off a queue whose request is not handled yet.
    running: AtomicUsize,
    /// Counts every change of where processes are (queued, taken, parked, woken, ended),
    /// so that an idle CPU can tell whether anything moved while it looked.
    events: AtomicU64,
    /// Set once a CPU found a deadlock: every CPU stops.
    deadlock: AtomicBool,
    /// Deterministic mode's state, in deterministic mode.
    deterministic: Option<Deterministic>,
}

// Safety: the only non-`Sync` parts are the CPU slots' saved contexts, each written and
// read only by the switches of its own CPU (its scheduler loop and the process running on
// it), never by two CPUs at once.
unsafe impl<H: KernelHal> Sync for Scheduler<H> {}
// Safety: as above; the scheduler moves between CPUs only as a whole, before they start.
unsafe impl<H: KernelHal> Send for Scheduler<H> {}

impl<H: KernelHal> Scheduler<H> {
    /// A scheduler for every CPU of `hal`.
    pub fn new(hal: &'static H) -> Self {
        Self::with_cpus(hal, hal.cpu_count(), None)
    }

    /// A scheduler in deterministic mode: the boot CPU of `hal` serves `deterministic`'s
    /// simulated CPUs.
    pub fn new_deterministic(hal: &'static H, deterministic: Deterministic) -> Self {
        let slots = deterministic.cpus().max(hal.cpu_count());
        Self::with_cpus(hal, slots, Some(deterministic))
    }

    /// A scheduler with `slots` CPU slots.
    fn with_cpus(hal: &'static H, slots: usize, deterministic: Option<Deterministic>) -> Self {
        let cpus = (0..slots.max(1))
            .map(|_| CpuSlot {
                queue: SpinLock::new(VecDeque::new()),
                context: UnsafeCell::new(H::SavedContext::default()),
                idle: AtomicBool::new(false),
                armed: AtomicU64::new(u64::MAX),
            })
            .collect();
        Self {
            hal,
            cpus,
            sleepers: SpinLock::new(Vec::new()),
            live: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            events: AtomicU64::new(0),
            deadlock: AtomicBool::new(false),
            deterministic,
        }
    }

    /// Deterministic mode's state, in deterministic mode.
    pub fn deterministic(&self) -> Option<&Deterministic> {
        self.deterministic.as_ref()
    }

    /// How many processes have started and not ended.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }

    /// The slot of `cpu` (CPU numbers are below `cpu_count`, which sized the slots).
    fn slot(&self, cpu: CpuId) -> &CpuSlot<H> {
        &self.cpus[cpu.0 as usize % self.cpus.len()]
    }

    /// Counts a new process: call before its first [`Scheduler::enqueue`].
    pub(crate) fn add_live(&self) {
        self.live.fetch_add(1, Ordering::AcqRel);
    }

    /// Makes `process` ready on the current CPU's queue and wakes an idle CPU to take it.
    /// Also how a [`WaitQueue`] wakes its processes.
    pub(crate) fn enqueue(&self, process: ProcessBox<H>) {
        if let Some(det) = &self.deterministic {
            // The current simulated CPU's queue; no other CPU runs to be woken.
            self.cpus[det.current_cpu() % self.cpus.len()]
                .queue
                .lock()
                .push_back(process);
            self.events.fetch_add(1, Ordering::SeqCst);
            return;
        }
        let cpu = self.hal.current_cpu();
        self.slot(cpu).queue.lock().push_back(process);
        self.events.fetch_add(1, Ordering::SeqCst);
        self.wake_idle(cpu);
    }

    /// Wakes one idle CPU other than `except`, if there is one.
    fn wake_idle(&self, except: CpuId) {
        for (index, slot) in self.cpus.iter().enumerate() {
            if index != except.0 as usize && slot.idle.load(Ordering::Acquire) {
                // CPU numbers fit in u32 (they come from `CpuId`).
                self.hal.wake_cpu(CpuId(index as u32));
                return;
            }
        }
    }

    /// The saved context of `cpu`'s scheduler loop, which a process on that CPU switches
    /// back to.
    pub(crate) fn cpu_context(&self, cpu: CpuId) -> *mut H::SavedContext {
        self.slot(cpu).context.get()
    }

    /// Runs the current CPU's scheduler loop until no process is left, or until every
    /// process left is blocked forever.
    pub fn run_cpu(&self) -> Stopped {
        if let Some(det) = &self.deterministic {
            return self.run_deterministic(det);
        }
        let hal = self.hal;
        // The loop runs on the CPU's own stack and never migrates: the CPU stays the same.
        let cpu = hal.current_cpu();
        let slot = self.slot(cpu);
        hal.set_interrupts_enabled(true);
        // One clock reading per scheduling decision: the end of a run is the start of the
        // next (the clock is slow to read on some hosts).
        let mut now = hal.now_ns();
        loop {
            if let Some(process) = self.next_process(cpu, now) {
                now = self.run(cpu, process, now);
                continue;
            }
            if self.live() == 0 || self.deadlock.load(Ordering::Acquire) {
                break;
            }
            slot.idle.store(true, Ordering::Release);
            // Look again after announcing idleness: an enqueue that missed the flag has
            // pushed before this look, and one that saw it wakes this CPU.
            if self.has_work() {
                slot.idle.store(false, Ordering::Release);
                // `has_work` may have seen a sleeper come due: look again with the time
                // it saw (a stale `now` would leave the sleeper where it is and spin).
                now = hal.now_ns();
                continue;
            }
            if self.is_deadlocked() {
                self.deadlock.store(true, Ordering::Release);
                break;
            }
            self.arm(slot, self.next_wake().unwrap_or(u64::MAX));
            tracing::trace!(cpu = cpu.0, "idle: waiting for an interrupt");
            hal.wait_for_interrupt();
            slot.idle.store(false, Ordering::Release);
            now = hal.now_ns();
            // A timer that fired is disarmed (it is one-shot): forget it, so that the same
            // deadline is armed again when it is wanted again.
            if now >= slot.armed.load(Ordering::Relaxed) {
                slot.armed.store(u64::MAX, Ordering::Relaxed);
            }
        }
        slot.idle.store(false, Ordering::Release);
        self.arm(slot, u64::MAX);
        // Let the other CPUs see that nothing is left.
        for index in 0..self.cpus.len() {
            if index != cpu.0 as usize {
                hal.wake_cpu(CpuId(index as u32));
            }
        }
        if self.deadlock.load(Ordering::Acquire) {
            Stopped::Deadlock
        } else {
            Stopped::AllEnded
        }
    }

    /// Whether processes are left but none is queued, running or sleeping, and nothing
    /// changed while this looked.
    fn is_deadlocked(&self) -> bool {
        let before = self.events.load(Ordering::SeqCst);
        let quiet = self.live() > 0
            && self.running.load(Ordering::SeqCst) == 0
            && self.sleepers.lock().is_empty()
            && self.cpus.iter().all(|slot| slot.queue.lock().is_empty())
            && self.running.load(Ordering::SeqCst) == 0;
        quiet && self.events.load(Ordering::SeqCst) == before
    }

    /// Whether there is anything to do now: a ready process on any queue, a sleeper whose
    /// time has come, or nothing left at all.
    fn has_work(&self) -> bool {
        let now = self.hal.now_ns();
        self.cpus.iter().any(|slot| !slot.queue.lock().is_empty())
            || self.next_wake().is_some_and(|wake| wake <= now)
            || self.live() == 0
    }

    /// Arms `slot`'s (the current CPU's) timer for `deadline_ns` unless it already is (a
    /// deadline armed and not yet passed; see where `run_cpu` forgets fired ones).
    fn arm(&self, slot: &CpuSlot<H>, deadline_ns: u64) {
        if slot.armed.swap(deadline_ns, Ordering::Relaxed) != deadline_ns {
            self.hal.set_timer_deadline(deadline_ns);
        }
    }

    /// The earliest sleeper's wake-up time.
    fn next_wake(&self) -> Option<u64> {
        self.sleepers
            .lock()
            .iter()
            .map(|sleeper| sleeper.wake_ns)
            .min()
    }

    /// The next process for `cpu`: due sleepers join its queue first, then its own queue's
    /// front, then the back of the fullest other queue. The process counts as running from
    /// the moment it leaves its queue (under the queue's lock, so that a CPU looking for a
    /// deadlock sees it either queued or running).
    fn next_process(&self, cpu: CpuId, now: u64) -> Option<ProcessBox<H>> {
        let slot = self.slot(cpu);
        self.wake_sleepers(slot, now);
        {
            let mut queue = slot.queue.lock();
            if let Some(process) = queue.pop_front() {
                self.note_taken();
                return Some(process);
            }
        }
        self.steal(cpu)
    }

    /// Counts a process taken off a queue.
    fn note_taken(&self) {
        self.running.fetch_add(1, Ordering::SeqCst);
        self.events.fetch_add(1, Ordering::SeqCst);
    }

    /// Moves every sleeper whose time has come by `now` to `slot`'s queue, holding the
    /// sleepers' lock throughout so that they are never in neither place.
    fn wake_sleepers(&self, slot: &CpuSlot<H>, now: u64) {
        let mut sleepers = self.sleepers.lock();
        if sleepers.is_empty() {
            return;
        }
        let mut due = Vec::new();
        let mut index = 0;
        while index < sleepers.len() {
            if sleepers[index].wake_ns <= now {
                due.push(sleepers.swap_remove(index).process);
            } else {
                index += 1;
            }
        }
        if !due.is_empty() {
            tracing::trace!(count = due.len(), "sleepers woken");
            slot.queue.lock().extend(due);
            self.events.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Takes a process from the back of the fullest other CPU's queue.
    fn steal(&self, thief: CpuId) -> Option<ProcessBox<H>> {
        let victim = self
            .cpus
            .iter()
            .enumerate()
            .filter(|(index, _)| *index != thief.0 as usize)
            .max_by_key(|(_, slot)| slot.queue.lock().len())?;
        let mut queue = victim.1.queue.lock();
        let process = queue.pop_back()?;
        tracing::trace!(cpu = thief.0, pid = process.pid(), "stole a process");
        self.note_taken();
        Some(process)
    }

    /// Runs `process` on `cpu` from `now` until it switches back, then does what it
    /// asked. Returns the time it switched back.
    fn run(&self, cpu: CpuId, process: ProcessBox<H>, now: u64) -> u64 {
        let slot = self.slot(cpu);
        let started = now;
        let end_tick = slice_end_tick(now);
        process.begin_slice(now, end_tick);
        self.arm(slot, end_tick.saturating_mul(TICK_NS));
        let context = process.context();
        tracing::trace!(cpu = cpu.0, pid = process.pid(), "switch to process");
        let entered = process.span().enter();
        // Safety: the CPU slot's context is this loop's own, saved here and continued
        // only by the process that is about to run on this CPU; the process's context
        // was made by `new_context` or saved by its last switch out, its stack is alive
        // (the box holds it) and no CPU runs it (it was taken out of a queue).
        unsafe { self.hal.switch(slot.context.get(), context) };
        drop(entered);
        let now = self.hal.now_ns();
        process.end_slice(now);
        let request = process.request();
        tracing::trace!(
            cpu = cpu.0,
            pid = process.pid(),
            ran_ns = now.saturating_sub(started),
            request = match request {
                Request::Yield => "yield",
                Request::Sleep { .. } => "sleep",
                Request::Wait { .. } => "wait",
                Request::Exit => "exit",
            },
            "process switched back"
        );
        match request {
            Request::Yield => {
                slot.queue.lock().push_back(process);
            }
            Request::Sleep { until_ns } => {
                self.sleepers.lock().push(Sleeper {
                    wake_ns: until_ns,
                    process,
                });
            }
            Request::Wait { queue, generation } => {
                // Safety: a process waits only on queues of objects it holds (through its
                // handles) while it waits, so the queue outlives this call.
                let queue = unsafe { queue.as_ref() };
                if let Some(process) = queue.park(process, generation) {
                    slot.queue.lock().push_back(process);
                }
            }
            Request::Exit => self.finish(process),
        }
        self.events.fetch_add(1, Ordering::SeqCst);
        self.running.fetch_sub(1, Ordering::SeqCst);
        now
    }

    /// Ends a process that switched back for the last time: reports it and frees it.
    fn finish(&self, process: ProcessBox<H>) {
        Process::report_exit(&process);
        // Frees the process's stack and everything else it still held.
        drop(process);
        self.live.fetch_sub(1, Ordering::AcqRel);
    }
}
