//! Execution contexts: switching between stacks (`kernel_core::hal::ExecutionContexts`).
//!
//! A suspended context is its stack pointer. [`switch`] pushes the registers the RISC-V
//! calling convention makes the callee save (`ra`, `s0`-`s11`, `fs0`-`fs11`) and `fcsr`
//! (the rounding mode JIT code relies on) as a [`SwitchFrame`] on the running stack,
//! stores the stack pointer, loads the other context's and pops its frame. To the
//! compiler it is an ordinary call, so every caller-saved register is dead across it
//! already.
//!
//! Two registers are deliberately left alone:
//!
//! - `tp` holds the CPU number of the hart ([`crate::cpus`]): a context may resume on
//!   another hart than the one it left (work stealing), and must then see that hart's
//!   number;
//! - `sscratch` holds the hart's trap stack ([`crate::trap`]), which belongs to the hart,
//!   not to the context.
//!
//! Neither are `sstatus.SIE` (whether interrupts are on is the hart's state: a context
//! resumes with the interrupt state of the code that switched to it) nor the vector
//! registers and `vcsr` (all caller-saved; `vxrm` is set once per hart and never changed).
//!
//! A new context ([`prepare`]) is a frame whose `ra` is [`context_trampoline`], with the
//! entry function in `s0` and its argument in `s1`: the first switch to it "returns" into
//! the trampoline, which calls [`context_main`] with a zero frame pointer (the end of the
//! frame chain for backtraces).

use core::arch::naked_asm;
use core::mem::{offset_of, size_of};

/// The state of a suspended context: its stack pointer, at a [`SwitchFrame`]. The default
/// value (a null stack pointer) is an empty slot: [`switch`] may save into it, and stops
/// the kernel (an illegal instruction in `switch`) rather than continue it.
#[derive(Debug, Default)]
pub struct SavedContext {
    /// The stack pointer of the suspended context, 0 for none.
    sp: usize,
}

/// What [`switch`] keeps on the stack of a suspended context, at its stack pointer.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct SwitchFrame {
    /// Where the context continues (`ra` of the `switch` call, or the trampoline).
    pub ra: usize,
    /// `s0` (the frame pointer) to `s11`.
    pub saved: [usize; 12],
    /// `fs0` to `fs11`, as 64-bit patterns.
    pub float_saved: [u64; 12],
    /// The floating-point control and status register (rounding mode, flags).
    pub fcsr: usize,
}

const SWITCH_FRAME_SIZE: usize = size_of::<SwitchFrame>();
const _: () = assert!(
    SWITCH_FRAME_SIZE.is_multiple_of(16),
    "the switch frame keeps sp 16-byte aligned"
);
const _: () = assert!(offset_of!(SwitchFrame, ra) == 0);
const _: () = assert!(offset_of!(SwitchFrame, saved) == 8);
const _: () = assert!(offset_of!(SwitchFrame, float_saved) == 104);
const _: () = assert!(offset_of!(SwitchFrame, fcsr) == 200);
const _: () = assert!(offset_of!(SavedContext, sp) == 0);

/// Saves the running context into `*from` and continues `*to`; returns when a switch to
/// `*from` continues it, possibly on another hart.
///
/// # Safety
/// `from` must be valid for writes and `to` for reads; `*to` must hold a context made by
/// [`prepare`] or saved by an earlier switch, not continued since, whose stack is alive
/// and not running on any hart. A context saved on one hart may be continued on another
/// only after the switch that saved it has completed, ordered by a release/acquire pair
/// (a lock, an atomic flag) between the two harts.
#[unsafe(naked)]
pub unsafe extern "C" fn switch(from: *mut SavedContext, to: *const SavedContext) {
    naked_asm!(
        "addi sp, sp, -{frame_size}",
        "sd ra, {ra}(sp)",
        ".irp n, 0,1,2,3,4,5,6,7,8,9,10,11",
        "sd s\\n, ({saved} + 8 * \\n)(sp)",
        ".endr",
        // (naked_asm is assembled without the function's target features: name the D
        // extension, which riscv64gc has, explicitly.)
        ".option push",
        ".option arch, +d",
        ".irp n, 0,1,2,3,4,5,6,7,8,9,10,11",
        "fsd fs\\n, ({float_saved} + 8 * \\n)(sp)",
        ".endr",
        "frcsr t0",
        ".option pop",
        "sd t0, {fcsr}(sp)",
        "sd sp, 0(a0)",
        // An empty slot (sp 0) is never continued: stop on an illegal instruction here
        // instead of running on address 0.
        "ld t0, 0(a1)",
        "beqz t0, 2f",
        "mv sp, t0",
        "ld t0, {fcsr}(sp)",
        ".option push",
        ".option arch, +d",
        "fscsr t0",
        ".irp n, 0,1,2,3,4,5,6,7,8,9,10,11",
        "fld fs\\n, ({float_saved} + 8 * \\n)(sp)",
        ".endr",
        ".option pop",
        ".irp n, 0,1,2,3,4,5,6,7,8,9,10,11",
        "ld s\\n, ({saved} + 8 * \\n)(sp)",
        ".endr",
        "ld ra, {ra}(sp)",
        "addi sp, sp, {frame_size}",
        "ret",
        "2:",
        "unimp",
        frame_size = const SWITCH_FRAME_SIZE,
        ra = const offset_of!(SwitchFrame, ra),
        saved = const offset_of!(SwitchFrame, saved),
        float_saved = const offset_of!(SwitchFrame, float_saved),
        fcsr = const offset_of!(SwitchFrame, fcsr),
    )
}

/// Writes the first frame of a context that runs `entry(arg)` on the stack whose top (one
/// past its highest byte) is `top`, and returns the context.
///
/// # Safety
/// `top` must be 16-byte aligned, the top of a mapped, writable stack of at least a page
/// that nothing runs on or refers into (the frame is written just below `top`).
pub unsafe fn prepare(top: usize, entry: fn(usize) -> !, arg: usize) -> SavedContext {
    debug_assert!(top.is_multiple_of(16), "stack tops are 16-byte aligned");
    let sp = top - SWITCH_FRAME_SIZE;
    let mut saved = [0; 12];
    saved[0] = entry as usize;
    saved[1] = arg;
    let frame = SwitchFrame {
        ra: context_trampoline as *const () as usize,
        saved,
        float_saved: [0; 12],
        // Round to nearest, ties to even, no flags: what every hart starts with.
        fcsr: 0,
    };
    // Safety: `sp` lies in the stack's top `SWITCH_FRAME_SIZE` bytes, mapped, writable
    // and unused (this function's contract), and is 16-byte aligned (both `top` and the
    // frame size are), so the frame is aligned too.
    unsafe { (sp as *mut SwitchFrame).write(frame) };
    SavedContext { sp }
}

/// Where the first switch to a context made by [`prepare`] lands, with the stack pointer
/// at the top of the stack, the entry function in `s0` and its argument in `s1`. Calls
/// [`context_main`] with them, the frame pointer cleared (the bottom of the frame chain).
///
/// # Safety
/// Only for [`switch`] to return into, from a frame written by [`prepare`].
#[unsafe(naked)]
unsafe extern "C" fn context_trampoline() -> ! {
    naked_asm!(
        "mv a0, s0",
        "mv a1, s1",
        "li s0, 0",
        "call {main}",
        // `context_main` never returns; should it, stop with a message.
        "call {returned}",
        "unimp",
        main = sym context_main,
        returned = sym entry_returned,
    )
}

/// Runs a new context's entry function.
///
/// # Safety
/// Only for [`context_trampoline`], with `entry` the address of a `fn(usize) -> !` (as
/// [`prepare`] stored it) and `arg` its argument.
unsafe extern "C" fn context_main(entry: usize, arg: usize) -> ! {
    // Safety: `prepare` stored a `fn(usize) -> !` as an address in `s0`, which the
    // trampoline passes unchanged; function pointers and `usize` have the same size on
    // riscv64, so the transmute gives the function back.
    let entry = unsafe { core::mem::transmute::<usize, fn(usize) -> !>(entry) };
    entry(arg)
}

/// Stops the kernel when an execution context's entry function returned, which its type
/// forbids (only reachable through corrupted state).
extern "C" fn entry_returned() -> ! {
    panic!("an execution context's entry function returned")
}
