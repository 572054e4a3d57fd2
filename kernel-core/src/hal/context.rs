//! Execution contexts: stacks with guard pages and switching between them.
//!
//! kernel-core runs every process on a stack of its own (a fiber) and every CPU's
//! scheduler loop on the CPU's own stack; a context switch saves the callee-saved
//! registers of the running context and continues another one. The assembly lives in the
//! HAL (x86-64 hosted, riscv64 in hal-riscv); kernel-core only sees these operations.

use core::ops::Range;

use super::MemoryError;

/// Why an execution context could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContextError {
    /// The stack could not be allocated.
    Memory(MemoryError),
}

/// Stacks and context switches (the assembly lives in the HAL).
///
/// A context is suspended only by [`ExecutionContexts::switch`], which is an ordinary
/// function call for the compiler: every register the platform's C calling convention
/// makes the callee save is preserved across it, as are the floating-point control
/// registers (rounding mode); caller-saved registers are not.
pub trait ExecutionContexts {
    /// A stack with an inaccessible guard page below it; freed when dropped. Its pages are
    /// backed when it is allocated, so that touching it never faults into the memory
    /// manager (which may be holding its locks on this very stack).
    type Stack: Send;
    /// The saved state of a suspended context. The default value is an empty slot that
    /// [`ExecutionContexts::switch`] may save into but never continue.
    type SavedContext: Send + Default;

    /// Allocates a stack of at least `size` usable bytes with an inaccessible guard page
    /// below it, so that overflowing it faults instead of corrupting memory.
    ///
    /// # Errors
    /// [`ContextError::Memory`] when the memory cannot be had.
    fn allocate_stack(&self, size: usize) -> Result<Self::Stack, ContextError>;

    /// The usable bytes of `stack`, from its lowest address (just above the guard page) to
    /// one past its highest. The start is page aligned; the end is 16-byte aligned.
    fn stack_bounds(&self, stack: &Self::Stack) -> Range<usize>;

    /// Prepares `stack` so that the first switch to the returned context calls
    /// `entry(arg)` on it, with the stack pointer near its top. `entry` must never return
    /// (it ends by switching away for the last time).
    fn new_context(
        &self,
        stack: &Self::Stack,
        entry: fn(usize) -> !,
        arg: usize,
    ) -> Self::SavedContext;

    /// Saves the current context into `*from` and continues `*to`. Returns when some CPU
    /// switches back to `*from` (the context may resume on another CPU than the one it
    /// left: code after the call must not assume the CPU it ran on before).
    ///
    /// # Safety
    /// `from` must be valid for writes and `to` for reads until the switch is done; `*to`
    /// must hold a context made by [`ExecutionContexts::new_context`] or saved by an
    /// earlier switch, not resumed since, whose stack is alive and not running on any CPU.
    unsafe fn switch(&self, from: *mut Self::SavedContext, to: *const Self::SavedContext);
}
