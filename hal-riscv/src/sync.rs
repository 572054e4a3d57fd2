//! A spin lock that knows which CPU holds it.
//!
//! The trap path must never wait for a lock the interrupted code holds on the same CPU:
//! that wait would never end. [`SpinLock::try_lock_from_trap`] therefore refuses (instead
//! of spinning) when the current CPU is the holder, and [`SpinLock::lock`] panics in that
//! case, which is always a bug (a lock taken twice on one CPU), rather than hanging.
//!
//! Locks are held with interrupts enabled too (kernel and JIT code run with `sstatus.SIE`
//! set). That is sound because the interrupt path (timer, IPI) takes no lock at all: only
//! synchronous traps (demand paging) take locks, through
//! [`SpinLock::try_lock_from_trap`]. The holder is a CPU, not an execution context: code
//! must not switch contexts while holding a lock (another context on the same CPU taking
//! it would panic, and the holder might resume on another CPU).

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::cpus::current_cpu_index;

/// The owner value of a free lock.
const UNLOCKED: usize = usize::MAX;

/// A mutual-exclusion lock for kernel data shared between CPUs and the trap path.
#[derive(Debug)]
pub struct SpinLock<T> {
    /// The CPU index holding the lock, or [`UNLOCKED`].
    owner: AtomicUsize,
    value: UnsafeCell<T>,
}

// Safety: the lock hands out access to `value` to one holder at a time (the `owner`
// compare-exchange with acquire/release ordering), so sharing the lock between CPUs only
// ever moves the `T` between them, which `T: Send` allows.
unsafe impl<T: Send> Sync for SpinLock<T> {}

impl<T> SpinLock<T> {
    /// A free lock around `value`.
    pub const fn new(value: T) -> Self {
        Self {
            owner: AtomicUsize::new(UNLOCKED),
            value: UnsafeCell::new(value),
        }
    }

    /// Takes the lock, spinning while another CPU holds it.
    ///
    /// # Panics
    /// When the current CPU holds the lock already.
    pub fn lock(&self) -> SpinGuard<'_, T> {
        match self.try_lock_from_trap() {
            Some(guard) => guard,
            None => panic!("spin lock taken twice on CPU {}", current_cpu_index()),
        }
    }

    /// Takes the lock, spinning while another CPU holds it; `None` when the current CPU
    /// holds it already (the trap path interrupted the holder).
    pub fn try_lock_from_trap(&self) -> Option<SpinGuard<'_, T>> {
        let cpu = current_cpu_index();
        loop {
            match self.owner.compare_exchange_weak(
                UNLOCKED,
                cpu,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(SpinGuard { lock: self }),
                Err(owner) if owner == cpu => return None,
                Err(_) => core::hint::spin_loop(),
            }
        }
    }
}

/// Access to the value of a held [`SpinLock`]; releases it when dropped.
#[derive(Debug)]
pub struct SpinGuard<'a, T> {
    lock: &'a SpinLock<T>,
}

impl<T> Deref for SpinGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // Safety: the guard exists only while this CPU holds the lock, so no other
        // reference to the value exists.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for SpinGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // Safety: as for `deref`, and `&mut self` makes this the only access through the
        // guard.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.owner.store(UNLOCKED, Ordering::Release);
    }
}
