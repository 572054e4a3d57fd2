//! Stacks of their own: a reservation with an unmapped guard page at the bottom and the
//! stack above it, every page backed when the stack is made.
//!
//! The kernel runs its job (compiling and running WebAssembly), every execution context
//! (`kernel_core::hal::ExecutionContexts`) and every started hart on such a stack: much
//! larger than the boot stack, as WebAssembly may use `EngineConfig::wasm_stack_size`
//! bytes below the point where the runtime calls into it. Overflowing the stack faults on
//! the guard page, which the trap path reports (the trap stack is separate).
//!
//! Stack pages are never backed on demand: a first touch of a stack page faults into the
//! memory manager, and when the code touching it is the memory manager itself (holding
//! its locks, deep in a `memory.grow` called from a deep WebAssembly recursion), the fault
//! cannot be served and is fatal ("fault inside the memory manager"). So every page is
//! backed up front, and a stack costs its full size in frames from the start.

use core::arch::naked_asm;
use core::ptr::NonNull;

use kernel_core::hal::{MemoryError, Protection};

use crate::memory;
use crate::page_table::PAGE_SIZE;

/// A stack with a guard page below it, every page backed; released when dropped.
#[derive(Debug)]
pub struct Stack {
    /// The reservation: the guard page, then the stack.
    base: NonNull<u8>,
    /// The reservation's length: the guard page and the stack.
    len: usize,
}

// Safety: a `Stack` owns its reservation (nothing else releases or remaps it), and the
// memory functions it calls (`memory::release` when dropped) take the memory module's
// locks, so any CPU may hold and drop it.
unsafe impl Send for Stack {}

impl Stack {
    /// A stack of `size` usable bytes (rounded up to pages, at least one) above a guard
    /// page, every page backed at once (see the module documentation for why).
    ///
    /// # Errors
    /// The [`MemoryError`] when the address space or frames are out; nothing is left
    /// allocated then.
    pub fn new_backed(size: usize) -> Result<Self, MemoryError> {
        let size = size
            .max(PAGE_SIZE)
            .checked_next_multiple_of(PAGE_SIZE)
            .ok_or(MemoryError::OutOfMemory)?;
        let len = size
            .checked_add(PAGE_SIZE)
            .ok_or(MemoryError::OutOfMemory)?;
        let base = memory::reserve(len)?;
        let start = base.as_ptr() as usize + PAGE_SIZE;
        if let Err(error) = memory::populate(start, size, Protection::ReadWrite) {
            // The reservation made just above, never used: releasing it frees the frames
            // backed before `populate` failed.
            let _ = memory::release(base.as_ptr() as usize, len);
            return Err(error);
        }
        Ok(Self { base, len })
    }

    /// The lowest usable address (just above the guard page, page aligned).
    pub fn bottom(&self) -> usize {
        self.base.as_ptr() as usize + PAGE_SIZE
    }

    /// One past the highest byte of the stack: the initial stack pointer (page aligned).
    pub fn top(&self) -> usize {
        self.base.as_ptr() as usize + self.len
    }

    /// Runs `function` on this stack and returns its result.
    pub fn run<F: FnOnce() -> R, R>(&mut self, function: F) -> R {
        /// What the trampoline runs: the closure, then its result.
        struct Call<F, R> {
            function: Option<F>,
            result: Option<R>,
        }
        extern "C" fn trampoline<F: FnOnce() -> R, R>(call: *mut Call<F, R>) {
            // Safety: `run` passes a pointer to its own `Call`, alive and not otherwise
            // accessed until `call_on_stack` returns.
            let call = unsafe { &mut *call };
            if let Some(function) = call.function.take() {
                call.result = Some(function());
            }
        }
        let mut call = Call {
            function: Some(function),
            result: None,
        };
        let entry: extern "C" fn(*mut Call<F, R>) = trampoline::<F, R>;
        // Safety: `top` is the 16-byte aligned top of this stack's committed pages, which
        // nothing else runs on (`&mut self`); the trampoline has the C signature
        // `call_on_stack` expects and gets a pointer to `call`, which outlives the call.
        unsafe {
            call_on_stack(
                core::ptr::from_mut(&mut call).cast(),
                entry as usize,
                self.top(),
            );
        }
        call.result
            .expect("the trampoline ran the function (a panic would have stopped the kernel)")
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // Nothing runs on the stack any more (`run` has returned).
        let _ = memory::release(self.base.as_ptr() as usize, self.len);
    }
}

/// Calls `function(argument)` with the stack pointer at `top`, then returns on the
/// caller's stack. The return address and the caller's stack pointer are kept at the top
/// of the new stack; every other register the callee saves by the calling convention.
///
/// # Safety
/// `top` must be the 16-byte aligned top of a mapped stack nothing else uses, large
/// enough for `function`; `function` must be an `extern "C" fn(*mut u8)` that is sound
/// to call with `argument`.
#[unsafe(naked)]
unsafe extern "C" fn call_on_stack(argument: *mut u8, function: usize, top: usize) {
    naked_asm!(
        "addi a2, a2, -16",
        "sd ra, 8(a2)",
        "sd sp, 0(a2)",
        "mv sp, a2",
        "jalr a1",
        "ld ra, 8(sp)",
        "ld sp, 0(sp)",
        "ret",
    )
}
