//! Running code on a stack of its own: a reservation with an unmapped guard page at the
//! bottom, committed read+write and backed on demand as the stack grows into it.
//!
//! The kernel runs its job (compiling and running WebAssembly) on such a stack, much
//! larger than the boot stack: WebAssembly may use `EngineConfig::wasm_stack_size` bytes
//! below the point where the runtime calls into it, and the compiler and runtime need
//! room of their own. Overflowing the stack faults on the guard page, which the trap path
//! reports as a fatal fault (the trap stack is separate).

use core::arch::naked_asm;
use core::ptr::NonNull;

use kernel_core::hal::{MemoryError, Protection};

use crate::memory;
use crate::page_table::PAGE_SIZE;

/// A stack with a guard page below it; released when dropped.
#[derive(Debug)]
pub struct Stack {
    base: NonNull<u8>,
    len: usize,
}

impl Stack {
    /// A stack of `size` usable bytes (rounded up to pages) above a guard page, backed
    /// on demand.
    ///
    /// # Errors
    /// The [`MemoryError`] when the address space or frames are out.
    pub fn new(size: usize) -> Result<Self, MemoryError> {
        Self::make(size, memory::commit)
    }

    /// A stack of `size` usable bytes (rounded up to pages) above a guard page, backed at
    /// once: for a hart's first stack, which it uses before its trap vector (and so
    /// demand paging) is on.
    ///
    /// # Errors
    /// The [`MemoryError`] when the address space or frames are out.
    pub fn new_backed(size: usize) -> Result<Self, MemoryError> {
        Self::make(size, memory::populate)
    }

    /// Reserves the stack and its guard page and commits the stack with `commit`.
    fn make(
        size: usize,
        commit: fn(usize, usize, Protection) -> Result<(), MemoryError>,
    ) -> Result<Self, MemoryError> {
        let size = size.max(PAGE_SIZE).next_multiple_of(PAGE_SIZE);
        let len = size + PAGE_SIZE;
        let base = memory::reserve(len)?;
        if let Err(error) = commit(
            base.as_ptr() as usize + PAGE_SIZE,
            size,
            Protection::ReadWrite,
        ) {
            // The reservation made just above, never used.
            let _ = memory::release(base.as_ptr() as usize, len);
            return Err(error);
        }
        Ok(Self { base, len })
    }

    /// One past the highest byte of the stack: the initial stack pointer.
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
