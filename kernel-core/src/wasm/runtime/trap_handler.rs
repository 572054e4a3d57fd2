//! The trap handler kernel-core installs in the HAL: decides whether a fault is a
//! WebAssembly trap, records it with its backtrace and redirects to the landing pad of the
//! innermost activation.
//!
//! It runs on the trap path (a signal handler hosted, the trap vector on RISC-V): it does
//! not allocate, lock or panic, and reads only what the running call published before
//! entering WebAssembly.

use alloc::sync::Arc;

use super::code::{CodeInfo, FrameInfo};
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

/// The [`crate::hal::TrapHandler`] of the WebAssembly runtime.
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
    let Some(module) = code.iter().find(|module| module.contains(info.pc)) else {
        return TrapResponse::Fatal;
    };
    let Some(trap) = module.trap_at(info.pc) else {
        return TrapResponse::Fatal;
    };
    // A guard-page hit must come from a memory access site, a trap instruction from a trap
    // site: both are in the table; any other combination is not generated code's doing.
    if matches!(info.cause, TrapCause::Breakpoint | TrapCause::Other(_)) {
        return TrapResponse::Fatal;
    }
    let activation = &context.activation;
    let frames = walk_frames(code, info, activation);
    context.trap = Some(TrapRecord {
        trap,
        pc: info.pc,
        fault_address: info.fault_address,
        frames,
    });
    TrapResponse::Redirect(Redirect {
        pc: activation.handler_pc,
        sp: activation.entry_sp,
        fp: activation.entry_fp,
        args: [0, 0],
    })
}

/// Walks the frame-pointer chain from the fault up to the entry trampoline's frame.
fn walk_frames(
    code: &[Arc<CodeInfo>],
    info: &TrapInfo,
    activation: &VMActivation,
) -> [Option<RecordedFrame>; MAX_BACKTRACE] {
    let mut frames = [None; MAX_BACKTRACE];
    let mut depth = 0;
    let mut record = |pc: usize| {
        let found = code
            .iter()
            .enumerate()
            .find(|(_, module)| module.contains(pc));
        if let Some((index, module)) = found
            && let Some(frame) = module.frame_at(pc)
            && depth < MAX_BACKTRACE
        {
            frames[depth] = Some(RecordedFrame {
                module: index,
                frame,
            });
            depth += 1;
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
    frames
}
