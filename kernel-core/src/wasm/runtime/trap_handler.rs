//! The trap handler kernel-core installs in the HAL: decides whether a fault is a
//! WebAssembly trap, records it with its backtrace and redirects to the landing pad of the
//! innermost activation.
//!
//! It runs on the trap path (a signal handler hosted, the trap vector on RISC-V): it does
//! not allocate, lock or panic, and reads only what the running call published before
//! entering WebAssembly and the registry of live linear memories.
//!
//! It trusts nothing the HAL reports without checking it against what the compiler and the
//! runtime know ([`classify`], a pure function of the trap information and the two
//! registries):
//!
//! - the pc must be a recorded trap site of published code;
//! - the cause must be one that site can produce: a memory fault only at a memory access
//!   (trap [`Trap::MemoryOutOfBounds`]; the stack-limit check is a compare and a trap
//!   instruction, and the stack guard page is never a recorded site), an arithmetic fault
//!   only at a division (x86-64 `div`/`idiv`: [`Trap::IntegerDivisionByZero`] or
//!   [`Trap::IntegerOverflow`]), an illegal instruction at any site (every trap code is
//!   also emitted as a Cranelift trap instruction: `ud2`, `unimp`), nothing else ever;
//! - a memory fault's address must lie in a live linear memory's reservation, past its
//!   accessible bytes: in its guard region.
//!
//! Anything else is a kernel bug ([`KernelBug`]), answered with [`TrapResponse::Fatal`] so
//! that the HAL reports the fault and stops, instead of being turned into a WebAssembly
//! trap.

use alloc::sync::Arc;

use super::code::{CodeInfo, FrameInfo};
pub use super::memory::{
    LIVE_MEMORIES, MAX_LIVE_MEMORIES, MemoryRegistry, MemoryReservation, RegistryFull,
};
use crate::hal::{Redirect, TrapCause, TrapInfo, TrapResponse};
use crate::wasm::abi::VMActivation;
use crate::wasm::trap::Trap;

/// How many frames a trap's backtrace keeps (the innermost ones).
pub const MAX_BACKTRACE: usize = 64;

/// A backtrace frame: which module (index into the call's code list) and where in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordedFrame {
    /// Index of the module in the store's code list.
    pub module: usize,
    /// The function and offset.
    pub frame: FrameInfo,
}

/// What the trap handler records about a trap.
#[derive(Debug, Clone, Copy)]
pub struct TrapRecord {
    /// The trap.
    pub trap: Trap,
    /// The faulting pc.
    pub pc: usize,
    /// The faulting data address, for memory faults.
    pub fault_address: Option<usize>,
    /// Frames, innermost first; only the first `depth` are meaningful.
    pub frames: [Option<RecordedFrame>; MAX_BACKTRACE],
    /// WebAssembly frames past the [`MAX_BACKTRACE`] kept, outermost ones (counted, not
    /// recorded).
    pub omitted_frames: usize,
}

/// The state of one entry into WebAssembly, on the Rust stack of the caller for the
/// duration of the call; the HAL's trap context word points at it.
#[repr(C)]
pub struct CallContext {
    /// Filled by the entry trampoline; first, so that a pointer to the context is a pointer
    /// to the activation.
    pub activation: VMActivation,
    /// The code of every module of the store, at the time of the call.
    pub code: *const [Arc<CodeInfo>],
    /// The trap, once one happened.
    pub trap: Option<TrapRecord>,
}

/// Why a fault is not a WebAssembly trap but a kernel bug.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelBug {
    /// The pc lies in no published module's code.
    OutsideCode,
    /// The pc lies in generated code but is not a recorded trap site.
    NotATrapSite,
    /// The cause is not one the trap site can produce (a memory fault at an integer
    /// overflow check, an arithmetic fault at a memory access, a breakpoint...).
    CauseDoesNotFitSite {
        /// The trap recorded at the pc.
        trap: Trap,
        /// What the HAL reported.
        cause: TrapCause,
    },
    /// A memory fault without a faulting address.
    NoFaultAddress,
    /// A memory fault at an address in no live linear memory's reservation.
    OutsideLinearMemory {
        /// The faulting address.
        address: usize,
    },
    /// A memory fault at an address a linear memory makes accessible: the page should
    /// have been there.
    InsideAccessibleMemory {
        /// The faulting address.
        address: usize,
    },
}

/// What a fault means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A WebAssembly trap: unwind to the innermost activation.
    Trap(Trap),
    /// A kernel bug: report and stop.
    KernelBug(KernelBug),
}

/// Whether the CPU can report `cause` at a site whose trap is `trap`.
#[must_use]
pub const fn cause_fits_trap(cause: TrapCause, trap: Trap) -> bool {
    match cause {
        // Loads and stores into a guard region are the only faulting memory accesses
        // generated code makes: tables, the stack limit and bulk operations are checked
        // explicitly.
        TrapCause::MemoryFault(_) => matches!(trap, Trap::MemoryOutOfBounds),
        // Every trap is (also) emitted as a Cranelift trap instruction.
        TrapCause::IllegalInstruction => true,
        // x86-64 `div`/`idiv` raise #DE for a zero divisor and for `MIN / -1`.
        TrapCause::ArithmeticFault => {
            matches!(trap, Trap::IntegerDivisionByZero | Trap::IntegerOverflow)
        }
        TrapCause::Breakpoint | TrapCause::Other(_) => false,
    }
}

/// Decides what the fault `info` means, from the code of the interrupted store and the
/// registry of live linear memories alone: a pure function, so that tests can hand it
/// trap information no real fault would produce.
#[must_use]
pub fn classify<const N: usize>(
    info: &TrapInfo,
    code: &[Arc<CodeInfo>],
    memories: &MemoryRegistry<N>,
) -> Verdict {
    let Some(module) = code.iter().find(|module| module.contains(info.pc)) else {
        return Verdict::KernelBug(KernelBug::OutsideCode);
    };
    let Some(trap) = module.trap_at(info.pc) else {
        return Verdict::KernelBug(KernelBug::NotATrapSite);
    };
    if !cause_fits_trap(info.cause, trap) {
        return Verdict::KernelBug(KernelBug::CauseDoesNotFitSite {
            trap,
            cause: info.cause,
        });
    }
    if let TrapCause::MemoryFault(_) = info.cause {
        let Some(address) = info.fault_address else {
            return Verdict::KernelBug(KernelBug::NoFaultAddress);
        };
        let Some(reservation) = memories.lookup(address) else {
            return Verdict::KernelBug(KernelBug::OutsideLinearMemory { address });
        };
        if !reservation.guards(address) {
            return Verdict::KernelBug(KernelBug::InsideAccessibleMemory { address });
        }
    }
    Verdict::Trap(trap)
}

/// The [`crate::hal::TrapHandler`] of the WebAssembly runtime: [`classify`] against the
/// interrupted call's code and [`LIVE_MEMORIES`], then, for a trap, the backtrace and the
/// redirect to the landing pad; [`TrapResponse::Fatal`] for anything else.
pub fn handle_trap(info: &TrapInfo) -> TrapResponse {
    let context = info.context as *mut CallContext;
    if context.is_null() {
        return TrapResponse::Fatal;
    }
    // Safety: a non-zero trap context is only ever set by `Store::call`, to a `CallContext`
    // that lives on this CPU's stack until the call returns and the context is reset; the
    // trap interrupted that call, so the context is alive and no other code touches it.
    let context = unsafe { &mut *context };
    // Safety: `code` points at the store's code list, which the call borrows and which
    // cannot change while WebAssembly runs.
    let code = unsafe { &*context.code };
    let trap = match classify(info, code, &LIVE_MEMORIES) {
        Verdict::Trap(trap) => trap,
        Verdict::KernelBug(_) => return TrapResponse::Fatal,
    };
    let activation = &context.activation;
    let (frames, omitted_frames) = walk_frames(code, info, activation);
    context.trap = Some(TrapRecord {
        trap,
        pc: info.pc,
        fault_address: info.fault_address,
        frames,
        omitted_frames,
    });
    TrapResponse::Redirect(Redirect {
        pc: activation.handler_pc,
        sp: activation.entry_sp,
        fp: activation.entry_fp,
        args: [0, 0],
    })
}

/// Walks the frame-pointer chain from the fault up to the entry trampoline's frame: the
/// innermost [`MAX_BACKTRACE`] WebAssembly frames, and how many more there were.
fn walk_frames(
    code: &[Arc<CodeInfo>],
    info: &TrapInfo,
    activation: &VMActivation,
) -> ([Option<RecordedFrame>; MAX_BACKTRACE], usize) {
    let mut frames = [None; MAX_BACKTRACE];
    let mut depth = 0;
    let mut omitted = 0usize;
    let mut record = |pc: usize| {
        let found = code
            .iter()
            .enumerate()
            .find(|(_, module)| module.contains(pc));
        if let Some((index, module)) = found
            && let Some(frame) = module.frame_at(pc)
        {
            if depth < MAX_BACKTRACE {
                frames[depth] = Some(RecordedFrame {
                    module: index,
                    frame,
                });
                depth += 1;
            } else {
                omitted = omitted.saturating_add(1);
            }
        }
    };
    record(info.pc);
    let mut fp = info.fp;
    // Every frame between the fault and the entry trampoline is a Cranelift frame with
    // frame pointers preserved: `[fp]` is the caller's fp, `[fp + 8]` the return address.
    // The walk stays within [sp, entry_fp) and strictly upwards, so it ends.
    while fp >= info.sp
        && fp < activation.entry_fp
        && fp.is_multiple_of(core::mem::align_of::<usize>())
    {
        let slot = fp as *const usize;
        // Safety: `fp` lies between the faulting stack pointer and the entry trampoline's
        // frame, on the stack of the interrupted WebAssembly call, and is aligned; JIT
        // frames keep the saved fp and return address in the two words at `fp`.
        let (caller_fp, return_address) = unsafe { (slot.read(), slot.add(1).read()) };
        // The return address follows the call; the call itself is one byte before.
        record(return_address.wrapping_sub(1));
        if caller_fp <= fp {
            break;
        }
        fp = caller_fp;
    }
    (frames, omitted)
}

#[cfg(test)]
mod tests {
    use alloc::boxed::Box;
    use alloc::collections::BTreeMap;

    use super::*;
    use crate::hal::Access;

    const CODE_START: usize = 0x1000_0000;
    const LOAD_SITE: usize = CODE_START + 0x10;
    const OVERFLOW_SITE: usize = CODE_START + 0x20;
    const DIVISION_SITE: usize = CODE_START + 0x30;

    fn fake_code() -> Arc<CodeInfo> {
        Arc::new(CodeInfo {
            start: CODE_START,
            len: 0x100,
            module_name: None,
            functions: Box::new([]),
            num_imported_functions: 0,
            traps: Box::new([
                (0x10, Trap::MemoryOutOfBounds),
                (0x20, Trap::IntegerOverflow),
                (0x30, Trap::IntegerDivisionByZero),
            ]),
            function_names: BTreeMap::new(),
        })
    }

    fn fault(pc: usize, cause: TrapCause, fault_address: Option<usize>) -> TrapInfo {
        TrapInfo {
            pc,
            fp: 0,
            sp: 0,
            fault_address,
            cause,
            context: 0,
        }
    }

    #[test]
    fn classify_names_each_inconsistency() {
        let code = [fake_code()];
        let memories = MemoryRegistry::<4>::new();
        memories.register(0x4000_0000, 0x2_0000).unwrap();
        memories.set_accessible(0x4000_0000, 0x1_0000);
        let verdict = |pc, cause, address| classify(&fault(pc, cause, address), &code, &memories);
        let read = TrapCause::MemoryFault(Access::Read);
        assert_eq!(
            verdict(CODE_START + 0x200, read, Some(0x4001_0000)),
            Verdict::KernelBug(KernelBug::OutsideCode)
        );
        assert_eq!(
            verdict(CODE_START + 0x11, read, Some(0x4001_0000)),
            Verdict::KernelBug(KernelBug::NotATrapSite)
        );
        assert_eq!(
            verdict(OVERFLOW_SITE, read, Some(0x4001_0000)),
            Verdict::KernelBug(KernelBug::CauseDoesNotFitSite {
                trap: Trap::IntegerOverflow,
                cause: read
            })
        );
        assert_eq!(
            verdict(LOAD_SITE, TrapCause::Other(7), None),
            Verdict::KernelBug(KernelBug::CauseDoesNotFitSite {
                trap: Trap::MemoryOutOfBounds,
                cause: TrapCause::Other(7)
            })
        );
        assert_eq!(
            verdict(LOAD_SITE, read, None),
            Verdict::KernelBug(KernelBug::NoFaultAddress)
        );
        assert_eq!(
            verdict(LOAD_SITE, read, Some(0x4002_0000)),
            Verdict::KernelBug(KernelBug::OutsideLinearMemory {
                address: 0x4002_0000
            })
        );
        assert_eq!(
            verdict(LOAD_SITE, read, Some(0x4000_ffff)),
            Verdict::KernelBug(KernelBug::InsideAccessibleMemory {
                address: 0x4000_ffff
            })
        );
        assert_eq!(
            verdict(LOAD_SITE, read, Some(0x4001_0000)),
            Verdict::Trap(Trap::MemoryOutOfBounds)
        );
        assert_eq!(
            verdict(DIVISION_SITE, TrapCause::ArithmeticFault, None),
            Verdict::Trap(Trap::IntegerDivisionByZero)
        );
        assert_eq!(
            verdict(OVERFLOW_SITE, TrapCause::IllegalInstruction, None),
            Verdict::Trap(Trap::IntegerOverflow)
        );
    }

    #[test]
    fn every_cause_fits_only_its_sites() {
        for trap in Trap::ALL {
            assert!(cause_fits_trap(TrapCause::IllegalInstruction, trap));
            assert_eq!(
                cause_fits_trap(TrapCause::MemoryFault(Access::Unknown), trap),
                trap == Trap::MemoryOutOfBounds
            );
            assert_eq!(
                cause_fits_trap(TrapCause::ArithmeticFault, trap),
                matches!(trap, Trap::IntegerDivisionByZero | Trap::IntegerOverflow)
            );
            assert!(!cause_fits_trap(TrapCause::Breakpoint, trap));
        }
    }
}
