//! Time and interrupts: the monotonic clock, per-CPU timer deadlines, waiting.

/// A monotonic clock.
pub trait Clock {
    /// Nanoseconds since an arbitrary point before boot. Never goes backwards on one CPU,
    /// and is consistent across CPUs (a value read on one CPU after a value read on another,
    /// ordered by a synchronising operation, is not smaller). Does not wrap in practice
    /// (584 years).
    fn now_ns(&self) -> u64;
}

/// Timer and interrupt control of the current CPU.
///
/// The timer interrupt only records (advances the CPU's epoch); it never calls into the
/// scheduler inline.
pub trait Interrupts {
    /// Arms the current CPU's one-shot timer for the [`Clock::now_ns`] instant
    /// `deadline_ns`, replacing any earlier deadline. A deadline in the past fires at once.
    fn set_timer_deadline(&self, deadline_ns: u64);

    /// Enables (`true`) or disables interrupts on the current CPU and returns whether they
    /// were enabled before.
    fn set_interrupts_enabled(&self, enabled: bool) -> bool;

    /// Waits until an interrupt (timer, wake) arrives for the current CPU (like `wfi`, or
    /// `sigsuspend` hosted). May return spuriously.
    fn wait_for_interrupt(&self);
}
