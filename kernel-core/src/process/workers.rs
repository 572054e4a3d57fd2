//! Compile helpers: a process compiles a large module on every CPU of the kernel.
//!
//! [`ProcessWorkers`] gives the engine ([`CompileWorkers`]) one kernel task
//! ([`Process::spawn_task`]) per other CPU. The tasks are queued like processes, so the
//! scheduler places them the way it places everything (idle CPUs are woken and steal
//! them): threads hosted, harts under QEMU, the same code on both. The process that asked
//! works too, then waits on a [`WaitQueue`] until the last task has finished; the
//! helpers' share of the work is whatever they took before the work ran out, so a CPU busy
//! with other processes only means fewer helpers, never a wait for one.

use alloc::boxed::Box;
use alloc::sync::Arc;

use super::{Process, ProcessExit};
use crate::KernelHal;
use crate::boot::JOB_STACK_SIZE;
use crate::sched::WaitQueue;
use crate::sync::SpinLock;
use crate::wasm::runtime::CompileWorkers;

/// The helpers of one [`CompileWorkers::run_everywhere`] call.
struct Helpers<H: KernelHal> {
    /// Helpers started and not yet finished.
    running: SpinLock<usize>,
    /// Where the asking process waits for `running` to reach zero.
    finished: WaitQueue<H>,
}

/// The compile helpers of a running process (its kernel's CPUs). Use it only on the
/// process's own stack: the process blocks in it until its helpers are done.
pub struct ProcessWorkers<H: KernelHal>(pub &'static Process<H>);

impl<H: KernelHal> CompileWorkers for ProcessWorkers<H> {
    fn cpus(&self) -> usize {
        self.0.kernel().hal().cpu_count()
    }

    fn run_everywhere(&self, work: Arc<dyn Fn() + Send + Sync>) {
        let process = self.0;
        let kernel = process.kernel();
        let helpers = Arc::new(Helpers::<H> {
            running: SpinLock::new(0),
            finished: WaitQueue::new(),
        });
        for _ in 1..kernel.hal().cpu_count() {
            let task_work = Arc::clone(&work);
            let task_helpers = Arc::clone(&helpers);
            *helpers.running.lock() += 1;
            let main = Box::new(move |task: &'static Process<H>| {
                task_work();
                // The work is dropped before the count says so (the promise of
                // `run_everywhere`).
                drop(task_work);
                let mut running = task_helpers.running.lock();
                *running -= 1;
                if *running == 0 {
                    task_helpers.finished.wake_all(&task.kernel().sched);
                }
                ProcessExit::Code(0)
            });
            if Process::spawn_task(kernel, "compile", JOB_STACK_SIZE, main).is_err() {
                // No memory for another stack: work with the helpers there are (the
                // task's main, with its references, was dropped unrun).
                *helpers.running.lock() -= 1;
                break;
            }
        }
        work();
        drop(work);
        loop {
            let generation = {
                let running = helpers.running.lock();
                if *running == 0 {
                    break;
                }
                helpers.finished.generation()
            };
            process.wait(&helpers.finished, generation);
        }
    }
}
