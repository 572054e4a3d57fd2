//! Execution contexts on x86-64 (System V): `mmap`ed stacks with a guard page, and a
//! context switch in a few lines of assembly.
//!
//! A suspended context is nothing but its stack pointer: [`switch`] pushes the registers
//! the System V ABI makes the callee save (`rbp`, `rbx`, `r12` to `r15`) and the
//! floating-point control state (MXCSR and the x87 control word), stores `rsp` into the
//! `from` slot, loads the `to` slot's stack pointer and pops the same frame there. The
//! frame on a suspended stack, from its saved stack pointer upwards:
//!
//! | offset | contents                                   |
//! |--------|--------------------------------------------|
//! | 0      | MXCSR (4 bytes), x87 control word (2), pad |
//! | 8      | `r15`                                      |
//! | 16     | `r14`                                      |
//! | 24     | `r13`                                      |
//! | 32     | `r12`                                      |
//! | 40     | `rbx`                                      |
//! | 48     | `rbp`                                      |
//! | 56     | return address                             |
//!
//! [`new_context`] writes such a frame at the top of a fresh stack whose return address is
//! [`context_trampoline`], with the entry function in `r12` and its argument in `r13`.
//!
//! Stacks are backed by Linux on demand: the first touch of a page is a page fault that
//! the host kernel serves silently, so it never raises a signal and never re-enters
//! kernel-core (whose memory manager may hold its locks on this very stack); that is the
//! hosted equivalent of the trait's "backed when allocated".

use core::ffi::c_void;
use core::ops::Range;
use core::ptr::NonNull;

use kernel_core::hal::{ContextError, ExecutionContexts, MemoryError};
use rustix::mm::{MapFlags, MprotectFlags, ProtFlags};

use crate::HostedHal;

/// MXCSR at process start: every exception masked, round to nearest.
const DEFAULT_MXCSR: u32 = 0x1f80;
/// The x87 control word at process start: exceptions masked, 64-bit precision, round to
/// nearest.
const DEFAULT_X87_CONTROL: u16 = 0x037f;
/// The size of the frame [`switch`] keeps on a suspended stack (see the module docs).
const SWITCH_FRAME: usize = 64;

/// A stack with a `PROT_NONE` guard page below it; unmapped when dropped.
///
/// Its read-write pages are backed by Linux on first touch, which never raises a signal
/// and so never re-enters kernel-core (see the module documentation).
#[derive(Debug)]
pub struct Stack {
    /// The start of the mapping (the guard page).
    mapping: NonNull<u8>,
    /// The length of the mapping, guard page included.
    len: usize,
}

// Safety: a `Stack` owns its mapping exclusively (nothing else unmaps it), and mappings
// are process-wide, so it may be dropped or used from any thread.
unsafe impl Send for Stack {}

impl Drop for Stack {
    fn drop(&mut self) {
        // Safety: exactly the mapping made in `allocate_stack`, owned by this value; the
        // trait's contract forbids dropping a stack that a context still runs or will run
        // on.
        let result =
            unsafe { rustix::mm::munmap(self.mapping.as_ptr().cast::<c_void>(), self.len) };
        debug_assert!(result.is_ok(), "munmap of a stack failed: {result:?}");
    }
}

/// The saved state of a suspended context: its stack pointer, 0 for an empty slot.
#[derive(Debug, Default)]
#[repr(transparent)]
pub struct SavedContext {
    stack_pointer: usize,
}

/// Saves the callee-saved state on the current stack, stores the stack pointer in
/// `*from`, loads the one in `*to` and restores the state saved there.
///
/// The store into `*from` is the last access to the old stack, so a context may be resumed
/// elsewhere as soon as the switch to the new one has been published to that CPU.
///
/// # Safety
/// As [`ExecutionContexts::switch`]: `*to` holds the stack pointer of a suspended context
/// (saved by this function or made by [`new_context`]).
#[unsafe(naked)]
unsafe extern "C" fn switch(from: *mut usize, to: *const usize) {
    core::arch::naked_asm!(
        "push rbp",
        "push rbx",
        "push r12",
        "push r13",
        "push r14",
        "push r15",
        "sub rsp, 8",
        "stmxcsr dword ptr [rsp]",
        "fnstcw word ptr [rsp + 4]",
        "mov qword ptr [rdi], rsp",
        "mov rsp, qword ptr [rsi]",
        "ldmxcsr dword ptr [rsp]",
        "fldcw word ptr [rsp + 4]",
        "add rsp, 8",
        "pop r15",
        "pop r14",
        "pop r13",
        "pop r12",
        "pop rbx",
        "pop rbp",
        "ret",
    )
}

/// Where the first switch to a new context "returns" to: calls
/// `context_start(entry = r12, arg = r13)`. `rsp` is 16-byte aligned here (the top of the
/// stack), so it is correctly aligned at the call; `rbp` is zeroed to end frame-pointer
/// walks.
#[unsafe(naked)]
unsafe extern "C" fn context_trampoline() -> ! {
    core::arch::naked_asm!(
        "xor ebp, ebp",
        "mov rdi, r12",
        "mov rsi, r13",
        "call {start}",
        "ud2",
        start = sym context_start,
    )
}

/// Calls the entry function of a new context. The entry never returns (its type says so);
/// if it panics, the unwind stops at this `extern "C"` boundary and aborts the process.
extern "C" fn context_start(entry: usize, arg: usize) -> ! {
    // Safety: `entry` is the `fn(usize) -> !` that `new_context` stored in `r12`, passed
    // here unchanged; function and data pointers have the same size on x86-64.
    let entry = unsafe { core::mem::transmute::<usize, fn(usize) -> !>(entry) };
    entry(arg)
}

/// Writes the initial frame of a context on `stack` (see the module docs).
fn new_context(stack: &Stack, entry: fn(usize) -> !, arg: usize) -> SavedContext {
    let top = stack.mapping.as_ptr() as usize + stack.len;
    let stack_pointer = top - SWITCH_FRAME;
    let trampoline: unsafe extern "C" fn() -> ! = context_trampoline;
    let frame: [u64; 8] = [
        u64::from(DEFAULT_MXCSR) | (u64::from(DEFAULT_X87_CONTROL) << 32),
        0,                     // r15
        0,                     // r14
        arg as u64,            // r13
        entry as usize as u64, // r12
        0,                     // rbx
        0,                     // rbp
        trampoline as usize as u64,
    ];
    // Safety: `[top - 64, top)` lies in the read-write part of the stack's mapping (a stack
    // has at least one page above its guard), which `stack` owns; the caller hands the
    // stack to this new context, so no live frame uses that memory. Aligned: `top` is a
    // page boundary.
    unsafe { core::ptr::write(stack_pointer as *mut [u64; 8], frame) };
    SavedContext { stack_pointer }
}

impl ExecutionContexts for HostedHal {
    type Stack = Stack;
    type SavedContext = SavedContext;

    fn allocate_stack(&self, size: usize) -> Result<Stack, ContextError> {
        let page = rustix::param::page_size();
        let usable = size
            .max(1)
            .checked_next_multiple_of(page)
            .ok_or(ContextError::Memory(MemoryError::OutOfMemory))?;
        let len = usable
            .checked_add(page)
            .ok_or(ContextError::Memory(MemoryError::OutOfMemory))?;
        let error = |errno: rustix::io::Errno| {
            ContextError::Memory(if errno == rustix::io::Errno::NOMEM {
                MemoryError::OutOfMemory
            } else {
                MemoryError::Platform(errno.raw_os_error())
            })
        };
        // Safety: a fresh private anonymous mapping at an address of the kernel's choosing
        // cannot alias any existing Rust object.
        let mapping = unsafe {
            rustix::mm::mmap_anonymous(
                core::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE | MapFlags::STACK,
            )
        }
        .map_err(error)?;
        let stack = Stack {
            mapping: NonNull::new(mapping.cast::<u8>())
                .ok_or(ContextError::Memory(MemoryError::OutOfMemory))?,
            len,
        };
        // Safety: the first page of the mapping just made, which nothing uses; on error
        // `stack` is dropped, unmapping the whole mapping.
        unsafe { rustix::mm::mprotect(mapping, page, MprotectFlags::empty()) }.map_err(error)?;
        Ok(stack)
    }

    fn stack_bounds(&self, stack: &Stack) -> Range<usize> {
        let start = stack.mapping.as_ptr() as usize;
        start + rustix::param::page_size()..start + stack.len
    }

    fn new_context(&self, stack: &Stack, entry: fn(usize) -> !, arg: usize) -> SavedContext {
        new_context(stack, entry, arg)
    }

    unsafe fn switch(&self, from: *mut SavedContext, to: *const SavedContext) {
        // Safety: the caller guarantees `to` is valid for reads.
        let target = unsafe { (*to).stack_pointer };
        assert!(target != 0, "switch to an empty SavedContext");
        // Safety: `SavedContext` is a transparent `usize`, so the casts give valid pointers
        // to the stack pointer slots; the caller guarantees `*to` is a suspended context
        // whose stack is alive and not running, which is all `switch` needs.
        unsafe { switch(from.cast::<usize>(), to.cast::<usize>()) }
    }
}

#[cfg(test)]
mod tests;
