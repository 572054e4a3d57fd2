//! Timer interrupts and waiting, with POSIX timers, a real-time signal and futexes.
//!
//! Each CPU thread gets its own POSIX timer the first time it arms one:
//! `timer_create(CLOCK_MONOTONIC)` with `SIGEV_THREAD_ID`, so that it signals exactly that
//! thread with [`timer_signal`] (`SIGRTMIN + 2`; the trap signals are SIGSEGV, SIGBUS,
//! SIGILL and SIGFPE, and glibc keeps the real-time signals below `SIGRTMIN` for itself).
//! Deadlines are absolute `CLOCK_MONOTONIC` instants (`TIMER_ABSTIME`), the clock of
//! [`kernel_core::hal::Clock::now_ns`], so a deadline in the past fires at once.
//!
//! The signal handler runs on the thread's alternate signal stack (`SA_ONSTACK`; every CPU
//! thread gets one when it is adopted) and is async-signal-safe: it reads the clock, calls
//! kernel-core's [`TimerHandler`] (which only touches atomics), marks the CPU's interrupt
//! pending and wakes it with `FUTEX_WAKE`.
//!
//! "Interrupts enabled" is the timer signal being unblocked in the thread's signal mask.
//! Waiting is a futex wait on the CPU's pending flag; [`Cpus::wake_cpu`] sets the flag
//! and wakes the futex. A wake-up is never lost: the flag stays set until the next
//! [`Interrupts::wait_for_interrupt`] of that CPU consumes it, and a futex wait only
//! sleeps while the flag is still clear.
//!
//! [`Cpus::wake_cpu`]: kernel_core::hal::Cpus::wake_cpu

use core::cell::Cell;
use core::ffi::{c_int, c_void};
use core::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
use std::sync::Once;

use kernel_core::hal::{Interrupts, TimerHandler};

use crate::HostedHal;

/// The interrupt state of one CPU, shared by its thread, its timer signal handler and the
/// CPUs that wake it.
#[derive(Debug)]
pub(crate) struct CpuState {
    /// 1 when an interrupt (timer or wake-up) arrived since the CPU last returned from
    /// `wait_for_interrupt`, 0 otherwise. The futex word of the CPU's waits.
    pending: AtomicU32,
}

impl CpuState {
    pub(crate) const fn new() -> Self {
        Self {
            pending: AtomicU32::new(0),
        }
    }

    /// Marks an interrupt pending and wakes the CPU if it waits. Async-signal-safe.
    pub(crate) fn raise(&self) {
        self.pending.store(1, Ordering::Release);
        // Safety: `FUTEX_WAKE` on the address of a live, aligned 32-bit atomic only wakes
        // threads waiting on it; it neither reads nor writes other memory.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                self.pending.as_ptr(),
                libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
                c_int::MAX,
            );
        }
    }

    /// Consumes a pending interrupt, sleeping until one arrives if there is none.
    fn wait(&self) {
        if self.pending.swap(0, Ordering::Acquire) != 0 {
            return;
        }
        // Sleeps only while the flag is still 0: a `raise` between the swap above and this
        // call makes it return at once (EAGAIN). A signal also ends it (EINTR, or a restart
        // that re-checks the flag); a spurious return is allowed.
        // Safety: `FUTEX_WAIT` on a live, aligned 32-bit atomic with no timeout only
        // blocks the calling thread.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                self.pending.as_ptr(),
                libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
                0_u32,
                core::ptr::null::<libc::timespec>(),
            );
        }
        // Whatever ended the wait has now been seen; a later one is kept for the next wait.
        self.pending.swap(0, Ordering::Acquire);
    }
}

/// The signal that the CPU timers deliver: `SIGRTMIN + 2`.
#[must_use]
pub fn timer_signal() -> c_int {
    libc::SIGRTMIN() + 2
}

/// kernel-core's timer handler as a data pointer (a [`TimerHandler`] cast), or null.
static TIMER_HANDLER: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());

/// Installs the timer signal handler once per process.
static INSTALL_SIGNAL_HANDLER: Once = Once::new();

/// The POSIX timer of the current thread, deleted when the thread exits.
struct ThreadTimer {
    id: Cell<Option<libc::timer_t>>,
}

impl Drop for ThreadTimer {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            // Safety: `id` is a timer this thread created and nothing else refers to; the
            // thread is exiting and arms it no more.
            unsafe { libc::timer_delete(id) };
        }
    }
}

thread_local! {
    static TIMER: ThreadTimer = const { ThreadTimer { id: Cell::new(None) } };
    /// The CPU state the timer signal of this thread marks pending (the CPU this thread
    /// is, or the boot CPU for a foreign thread), or null. Read by the signal handler.
    static TIMER_TARGET: AtomicPtr<CpuState> = const { AtomicPtr::new(core::ptr::null_mut()) };
}

/// The installed timer handler, if any.
fn installed_handler() -> Option<TimerHandler> {
    let pointer = TIMER_HANDLER.load(Ordering::Acquire);
    if pointer.is_null() {
        return None;
    }
    // Safety: the only non-null values stored in `TIMER_HANDLER` are `TimerHandler`
    // function pointers cast to `*mut ()`; function and data pointers have the same size
    // on x86-64, so casting back yields the same function pointer.
    Some(unsafe { core::mem::transmute::<*mut (), TimerHandler>(pointer) })
}

/// A signal set holding only the timer signal.
fn timer_signal_set() -> libc::sigset_t {
    // Safety: all-zero bytes are a valid `sigset_t`, which `sigemptyset` then initialises;
    // `sigaddset` gets a valid signal number.
    unsafe {
        let mut set: libc::sigset_t = core::mem::zeroed();
        libc::sigemptyset(&raw mut set);
        libc::sigaddset(&raw mut set, timer_signal());
        set
    }
}

/// Blocks (`how = SIG_BLOCK`) or unblocks (`SIG_UNBLOCK`) the timer signal on the calling
/// thread and returns whether it was blocked before.
fn change_timer_signal_mask(how: c_int) -> bool {
    let set = timer_signal_set();
    // Safety: all-zero bytes are a valid `sigset_t` to receive the old mask.
    let mut old: libc::sigset_t = unsafe { core::mem::zeroed() };
    // Safety: both sets are valid; `pthread_sigmask` only changes this thread's mask.
    let status = unsafe { libc::pthread_sigmask(how, &raw const set, &raw mut old) };
    debug_assert_eq!(
        status, 0,
        "pthread_sigmask cannot fail with valid arguments"
    );
    // Safety: `old` was filled by `pthread_sigmask`; the signal number is valid.
    unsafe { libc::sigismember(&raw const old, timer_signal()) == 1 }
}

/// Points the timer signal at [`on_timer_signal`], once per process.
fn install_signal_handler() {
    INSTALL_SIGNAL_HANDLER.call_once(|| {
        // Safety: all-zero bytes are a valid `sigaction` (no handler, no flags, empty
        // mask); every field we rely on is set below.
        let mut action: libc::sigaction = unsafe { core::mem::zeroed() };
        let entry: extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void) = on_timer_signal;
        action.sa_sigaction = entry as usize;
        // Without SA_NODEFER the timer signal itself is blocked while the handler runs.
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESTART;
        // Safety: `action.sa_mask` is a valid, exclusively borrowed `sigset_t`.
        unsafe { libc::sigemptyset(&raw mut action.sa_mask) };
        // Safety: `action` is fully initialised and points at a handler with the
        // `SA_SIGINFO` signature; the previous action is not wanted.
        let status =
            unsafe { libc::sigaction(timer_signal(), &raw const action, core::ptr::null_mut()) };
        assert_eq!(
            status,
            0,
            "sigaction(timer signal) failed: {}",
            std::io::Error::last_os_error()
        );
    });
}

/// The current `CLOCK_MONOTONIC` reading in nanoseconds. Async-signal-safe.
pub(crate) fn monotonic_now_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // Safety: `now` is a valid `timespec` to write; `clock_gettime` is async-signal-safe.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &raw mut now) };
    let seconds = u64::try_from(now.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(now.tv_nsec).unwrap_or(0);
    seconds.saturating_mul(1_000_000_000).saturating_add(nanos)
}

/// The CPU state this thread's timer marks pending. Never inlined (see the crate docs).
#[inline(never)]
fn timer_target() -> Option<&'static CpuState> {
    let pointer = TIMER_TARGET
        .try_with(|slot| slot.load(Ordering::Relaxed))
        .unwrap_or(core::ptr::null_mut());
    // Safety: only `&'static CpuState` references are stored (in `arm_thread_timer`).
    unsafe { pointer.as_ref() }
}

/// The timer signal handler: async-signal-safe (atomics, `clock_gettime`, a futex wake).
extern "C" fn on_timer_signal(_signal: c_int, _info: *mut libc::siginfo_t, _context: *mut c_void) {
    // Safety: the calling thread's errno slot, valid for the thread's life; saved and
    // restored so that the interrupted code never sees it change.
    let errno = unsafe { *libc::__errno_location() };
    let now = monotonic_now_ns();
    if let Some(handler) = installed_handler() {
        handler(now);
    }
    if let Some(state) = timer_target() {
        state.raise();
    }
    // Safety: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// Arms (or disarms, for `u64::MAX`) the calling thread's timer, creating it first if
/// needed; its signal will mark `target` pending. Never inlined (see the crate docs).
#[inline(never)]
fn arm_thread_timer(target: &'static CpuState, deadline_ns: u64) {
    TIMER_TARGET.with(|slot| slot.store(core::ptr::from_ref(target).cast_mut(), Ordering::Relaxed));
    TIMER.with(|timer| {
        let id = match timer.id.get() {
            Some(id) => id,
            None => {
                install_signal_handler();
                crate::traps::prepare_alternate_stack();
                let id = create_thread_timer();
                timer.id.set(Some(id));
                id
            }
        };
        let value = if deadline_ns == u64::MAX {
            // An all-zero `it_value` disarms.
            libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            }
        } else {
            // At least 1 ns: an absolute zero would disarm instead of firing at once.
            let deadline_ns = deadline_ns.max(1);
            libc::timespec {
                tv_sec: i64::try_from(deadline_ns / 1_000_000_000).unwrap_or(i64::MAX),
                tv_nsec: i64::try_from(deadline_ns % 1_000_000_000).unwrap_or(0),
            }
        };
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: value,
        };
        // Safety: `id` is this thread's live timer; `spec` is a valid `itimerspec`.
        let status = unsafe {
            libc::timer_settime(
                id,
                libc::TIMER_ABSTIME,
                &raw const spec,
                core::ptr::null_mut(),
            )
        };
        assert_eq!(
            status,
            0,
            "timer_settime failed: {}",
            std::io::Error::last_os_error()
        );
    });
}

/// Creates a `CLOCK_MONOTONIC` timer that signals the calling thread.
///
/// # Panics
/// When the host refuses (out of timers).
fn create_thread_timer() -> libc::timer_t {
    // Safety: all-zero bytes are a valid `sigevent`; the fields used are set below.
    let mut event: libc::sigevent = unsafe { core::mem::zeroed() };
    event.sigev_notify = libc::SIGEV_THREAD_ID;
    event.sigev_signo = timer_signal();
    // Safety: `gettid` has no preconditions.
    event.sigev_notify_thread_id = unsafe { libc::gettid() };
    let mut id: libc::timer_t = core::ptr::null_mut();
    // Safety: `event` is initialised and `id` a valid place for the new timer's id.
    let status = unsafe { libc::timer_create(libc::CLOCK_MONOTONIC, &raw mut event, &raw mut id) };
    assert_eq!(
        status,
        0,
        "timer_create failed: {}",
        std::io::Error::last_os_error()
    );
    id
}

impl Interrupts for HostedHal {
    fn install_timer_handler(&self, handler: TimerHandler) {
        TIMER_HANDLER.store(handler as *mut (), Ordering::Release);
        install_signal_handler();
    }

    fn set_timer_deadline(&self, deadline_ns: u64) {
        arm_thread_timer(self.current_state(), deadline_ns);
    }

    fn set_interrupts_enabled(&self, enabled: bool) -> bool {
        let how = if enabled {
            libc::SIG_UNBLOCK
        } else {
            libc::SIG_BLOCK
        };
        !change_timer_signal_mask(how)
    }

    fn wait_for_interrupt(&self) {
        let state = self.current_state();
        // Unblocked first, so that a timer signal held pending while interrupts were off
        // is delivered now and marks the state before we look at it.
        let was_blocked = change_timer_signal_mask(libc::SIG_UNBLOCK);
        state.wait();
        if was_blocked {
            change_timer_signal_mask(libc::SIG_BLOCK);
        }
    }
}

#[cfg(test)]
mod tests;
