//! Time and interrupts: the monotonic clock, per-CPU timer deadlines, waiting.

/// A monotonic clock.
pub trait Clock {
    /// Nanoseconds since an arbitrary point before boot. Never goes backwards on one CPU,
    /// and is consistent across CPUs (a value read on one CPU after a value read on another,
    /// ordered by a synchronising operation, is not smaller). Does not wrap in practice
    /// (584 years).
    fn now_ns(&self) -> u64;
}

/// What kernel-core runs when a CPU's timer fires, with the [`Clock::now_ns`] reading of
/// that moment. It runs in interrupt context (a signal handler hosted, the trap vector on
/// RISC-V), possibly while the interrupted code holds locks: it must only touch atomics.
pub type TimerHandler = fn(now_ns: u64);

/// Timer and interrupt control of the current CPU.
///
/// The timer interrupt only records: the HAL calls the installed [`TimerHandler`] (which
/// advances kernel-core's epoch) and marks an interrupt pending for
/// [`Interrupts::wait_for_interrupt`]; it never calls into the scheduler.
pub trait Interrupts {
    /// Installs `handler` for the timer interrupts of every CPU. Before this, a timer
    /// interrupt only ends a [`Interrupts::wait_for_interrupt`].
    fn install_timer_handler(&self, handler: TimerHandler);

    /// Arms the current CPU's one-shot timer for the [`Clock::now_ns`] instant
    /// `deadline_ns`, replacing any earlier deadline. A deadline in the past fires at once;
    /// `u64::MAX` disarms the timer.
    fn set_timer_deadline(&self, deadline_ns: u64);

    /// Enables (`true`) or disables interrupts on the current CPU and returns whether they
    /// were enabled before. While disabled, a timer interrupt or wake-up stays pending and
    /// is taken once they are enabled again.
    fn set_interrupts_enabled(&self, enabled: bool) -> bool;

    /// Waits until an interrupt arrives for the current CPU: its timer, or a
    /// [`super::Cpus::wake_cpu`] for it. Returns at once if one arrived since the previous
    /// return of `wait_for_interrupt` on this CPU (so a wake-up sent between the caller's
    /// last look at its run queue and this call is never lost). May return spuriously.
    /// Works whether interrupts are enabled or not.
    fn wait_for_interrupt(&self);
}
