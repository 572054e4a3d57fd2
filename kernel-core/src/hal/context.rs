//! Execution contexts: stacks with guard pages and switching between them.

use super::MemoryError;

/// Why an execution context could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContextError {
    /// The stack could not be allocated.
    Memory(MemoryError),
}

/// Stacks and context switches (the assembly lives in the HAL).
pub trait ExecutionContexts {
    /// A stack with an inaccessible guard page below it; freed when dropped.
    type Stack;
    /// The saved callee-saved registers, stack pointer and resume address of a suspended
    /// context.
    type SavedContext;

    /// Allocates a stack of at least `size` usable bytes with a guard page below it, so
    /// that overflowing it faults instead of corrupting memory.
    ///
    /// # Errors
    /// [`ContextError::Memory`] when the memory cannot be had.
    fn allocate_stack(&self, size: usize) -> Result<Self::Stack, ContextError>;

    /// Prepares `stack` so that the first switch to the returned context calls
    /// `entry(arg)` on it. `entry` must never return.
    fn new_context(
        &self,
        stack: &Self::Stack,
        entry: fn(usize) -> !,
        arg: usize,
    ) -> Self::SavedContext;

    /// Saves the current context into `from` and continues `to`.
    ///
    /// # Safety
    /// `to` must hold a context made by [`ExecutionContexts::new_context`] or saved by an
    /// earlier switch, whose stack is still alive and not running on any CPU.
    unsafe fn switch(&self, from: &mut Self::SavedContext, to: &Self::SavedContext);
}
