//! CPUs as threads: CPU 0 is the thread that made the HAL, every other CPU a thread of
//! its own started on demand.

use std::cell::Cell;

use kernel_core::hal::{CpuError, CpuId, Cpus, Isa};

use crate::{HOST_ISA, HostedHal};

thread_local! {
    /// The CPU number of the current thread, if it is a CPU.
    static CURRENT_CPU: Cell<Option<u32>> = const { Cell::new(None) };
}

/// Marks the calling thread as CPU `index`.
pub(crate) fn adopt_current_thread_as(index: u32) {
    CURRENT_CPU.with(|cpu| cpu.set(Some(index)));
}

/// The CPU number of the calling thread, or `None` when it is not one of the simulated
/// CPUs (a helper thread of the simulator).
#[must_use]
pub fn current_cpu_index() -> Option<u32> {
    CURRENT_CPU.with(Cell::get)
}

impl Cpus for HostedHal {
    fn isa(&self) -> Isa {
        HOST_ISA
    }

    fn cpu_count(&self) -> usize {
        self.cpu_count
    }

    fn current_cpu(&self) -> CpuId {
        // Only CPU threads run kernel code; a foreign thread counts as the boot CPU.
        CpuId(current_cpu_index().unwrap_or(0))
    }

    fn start_cpu(
        &self,
        cpu: CpuId,
        entry: fn(CpuId, usize) -> !,
        arg: usize,
    ) -> Result<(), CpuError> {
        let mut threads = self
            .cpu_threads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let slot = threads.get_mut(cpu.0 as usize).ok_or(CpuError::NoSuchCpu)?;
        if slot.is_some() {
            return Err(CpuError::AlreadyStarted);
        }
        let handle = std::thread::Builder::new()
            .name(format!("cpu{}", cpu.0))
            .spawn(move || {
                adopt_current_thread_as(cpu.0);
                entry(cpu, arg)
            })
            .map_err(|error| CpuError::Platform(error.raw_os_error().map_or(-1, i64::from)))?;
        *slot = Some(handle.thread().clone());
        Ok(())
    }

    fn wake_cpu(&self, cpu: CpuId) {
        let threads = self
            .cpu_threads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(Some(thread)) = threads.get(cpu.0 as usize) {
            thread.unpark();
        }
    }
}
