//! The epoch: the counter generated code compares with its store's deadline.
//!
//! There is one epoch for the whole kernel. Only the timer interrupt moves it (through
//! the scheduler's timer handler, with [`advance_to`]); generated code reads it at every
//! epoch check (see `wasm::compile::epoch`) and calls the store's [`EpochHandler`] once it
//! reaches the store's deadline. A store whose deadline is `u64::MAX` (the default) is
//! never interrupted, whatever the epoch.

use core::sync::atomic::{AtomicU64, Ordering};

/// The epoch counter every VMContext's `epoch_ptr` points at.
pub static EPOCH: AtomicU64 = AtomicU64::new(0);

/// The current epoch.
#[must_use]
pub fn current() -> u64 {
    EPOCH.load(Ordering::Relaxed)
}

/// Moves the epoch forward to `value` (never backwards). Async-signal-safe: one atomic.
pub fn advance_to(value: u64) {
    EPOCH.fetch_max(value, Ordering::Relaxed);
}

/// What a store's epoch handler decides when its code reached the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochAction {
    /// Go on until the epoch reaches this new deadline.
    Continue {
        /// The store's next deadline.
        deadline: u64,
    },
    /// Trap with `interrupted`.
    Interrupt,
}

/// Called (from generated code, through a builtin) when a store's code passes its epoch
/// deadline. It may switch to other work before it returns (the scheduler's yield).
pub type EpochHandler<'e> = alloc::boxed::Box<dyn FnMut() -> EpochAction + 'e>;
