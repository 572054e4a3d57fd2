//! CPUs as threads: CPU 0 is the thread that made the HAL, every other CPU a thread of
//! its own started on demand.
//!
//! The thread-locals here are read through `#[inline(never)]` accessors only: a context
//! may resume on another thread than the one it left (see the crate documentation).

use core::cell::Cell;
use core::sync::atomic::{AtomicPtr, Ordering};

use kernel_core::hal::{CpuError, CpuId, Cpus, Isa, IsaFeatures, VectorFeatures};

use crate::interrupts::CpuState;
use crate::{HOST_ISA, HostedHal};

thread_local! {
    /// The CPU number of the current thread, if it is a CPU.
    static CURRENT_CPU: Cell<Option<u32>> = const { Cell::new(None) };
    /// The interrupt state of the CPU the current thread is, or null. An atomic because
    /// the timer signal handler reads it; no destructor, so reading it never allocates or
    /// registers anything.
    static CURRENT_STATE: AtomicPtr<CpuState> = const { AtomicPtr::new(core::ptr::null_mut()) };
}

/// Marks the calling thread as CPU `index` with the interrupt state `state`, and gives it
/// an alternate signal stack for the timer and trap signals.
#[inline(never)]
pub(crate) fn adopt_current_thread_as(index: u32, state: &'static CpuState) {
    CURRENT_CPU.with(|cpu| cpu.set(Some(index)));
    CURRENT_STATE.with(|slot| slot.store(core::ptr::from_ref(state).cast_mut(), Ordering::Relaxed));
    crate::traps::prepare_alternate_stack();
}

/// The CPU number of the calling thread, or `None` when it is not one of the simulated
/// CPUs (a helper thread of the simulator).
///
/// Never inlined, so that a caller that switches contexts (and may resume on another
/// thread) reads the thread-local anew at every call.
#[must_use]
#[inline(never)]
pub fn current_cpu_index() -> Option<u32> {
    CURRENT_CPU.with(Cell::get)
}

/// The interrupt state of the CPU the calling thread is, if it is one. Async-signal-safe.
#[inline(never)]
pub(crate) fn current_cpu_state() -> Option<&'static CpuState> {
    let pointer = CURRENT_STATE
        .try_with(|slot| slot.load(Ordering::Relaxed))
        .unwrap_or(core::ptr::null_mut());
    // Safety: the only non-null values stored are `&'static CpuState` references (in
    // `adopt_current_thread_as`); the states are leaked, so they live forever.
    unsafe { pointer.as_ref() }
}

impl HostedHal {
    /// The interrupt state of the current CPU; a thread that is not a CPU counts as the
    /// boot CPU (as in [`Cpus::current_cpu`]).
    pub(crate) fn current_state(&self) -> &'static CpuState {
        current_cpu_state().unwrap_or(&self.cpu_states[0])
    }
}

/// The host's optional features: the 128-bit SSE vector unit when the CPU has the
/// baseline the JIT's SIMD lowering uses (SSE3, SSSE3, SSE4.1, SSE4.2, POPCNT; no AVX).
fn host_isa_features() -> IsaFeatures {
    let baseline = std::is_x86_feature_detected!("sse3")
        && std::is_x86_feature_detected!("ssse3")
        && std::is_x86_feature_detected!("sse4.1")
        && std::is_x86_feature_detected!("sse4.2")
        && std::is_x86_feature_detected!("popcnt");
    IsaFeatures {
        vector: baseline.then_some(VectorFeatures { vlen_bits: 128 }),
    }
}

impl Cpus for HostedHal {
    fn isa(&self) -> Isa {
        HOST_ISA
    }

    /// x86-64 with its SIMD baseline, as the host's CPUID reports it.
    fn isa_features(&self) -> IsaFeatures {
        host_isa_features()
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
        let mut started = self
            .cpu_started
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let slot = started.get_mut(cpu.0 as usize).ok_or(CpuError::NoSuchCpu)?;
        if *slot {
            return Err(CpuError::AlreadyStarted);
        }
        let state = &self.cpu_states[cpu.0 as usize];
        std::thread::Builder::new()
            .name(format!("cpu{}", cpu.0))
            .spawn(move || {
                adopt_current_thread_as(cpu.0, state);
                entry(cpu, arg)
            })
            .map_err(|error| CpuError::Platform(error.raw_os_error().map_or(-1, i64::from)))?;
        *slot = true;
        Ok(())
    }

    fn wake_cpu(&self, cpu: CpuId) {
        if let Some(state) = self.cpu_states.get(cpu.0 as usize) {
            state.raise();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_reports_its_sse_vector_unit() {
        // Every x86-64 machine this project runs on has the baseline.
        assert_eq!(
            host_isa_features().vector,
            Some(VectorFeatures { vlen_bits: 128 })
        );
    }
}
