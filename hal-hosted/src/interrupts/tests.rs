//! Tests of the hosted timer interrupts: each CPU's timer signals that CPU's thread.

use core::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kernel_core::hal::{Clock, CpuId, Cpus, Interrupts};

use crate::{HostedConfig, HostedHal};

/// The thread id the timer handler last ran on, and how many times it ran.
static HANDLER_TID: AtomicI32 = AtomicI32::new(0);
static TICKS: AtomicU64 = AtomicU64::new(0);
/// CPU 1's thread id and the thread id its timer handler saw (0 until known).
static CPU1_TID: AtomicI32 = AtomicI32::new(0);
static CPU1_SAW: AtomicI32 = AtomicI32::new(0);

fn record(_now_ns: u64) {
    // Safety: `gettid` has no preconditions and is async-signal-safe.
    HANDLER_TID.store(unsafe { libc::gettid() }, Ordering::SeqCst);
    TICKS.fetch_add(1, Ordering::SeqCst);
}

/// Arms the current CPU's timer 2 ms ahead and waits for it; returns the thread id the
/// handler ran on.
fn tick_here(hal: &HostedHal) -> i32 {
    let before = TICKS.load(Ordering::SeqCst);
    hal.set_timer_deadline(hal.now_ns() + 2_000_000);
    let start = Instant::now();
    while TICKS.load(Ordering::SeqCst) == before {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the timer did not fire"
        );
        hal.wait_for_interrupt();
    }
    HANDLER_TID.load(Ordering::SeqCst)
}

fn second_cpu(_cpu: CpuId, arg: usize) -> ! {
    // Safety: `arg` is the leaked `&'static HostedHal` of the test.
    let hal = unsafe { &*(arg as *const HostedHal) };
    // Safety: `gettid` has no preconditions.
    CPU1_TID.store(unsafe { libc::gettid() }, Ordering::SeqCst);
    CPU1_SAW.store(tick_here(hal), Ordering::SeqCst);
    hal.wake_cpu(CpuId(0));
    loop {
        hal.wait_for_interrupt();
    }
}

#[test]
fn timers_fire_on_the_thread_of_their_cpu() {
    let hal: &'static HostedHal = Box::leak(Box::new(HostedHal::new(HostedConfig {
        cpus: Some(2),
        ..HostedConfig::default()
    })));
    hal.install_timer_handler(record);
    // Safety: `gettid` has no preconditions.
    let own = unsafe { libc::gettid() };
    assert_eq!(tick_here(hal), own);

    hal.start_cpu(CpuId(1), second_cpu, core::ptr::from_ref(hal) as usize)
        .unwrap();
    let start = Instant::now();
    while CPU1_SAW.load(Ordering::SeqCst) == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "CPU 1 never ticked"
        );
        // A backstop, in case the wake-up from CPU 1 were lost.
        hal.set_timer_deadline(hal.now_ns() + 100_000_000);
        hal.wait_for_interrupt();
    }
    hal.set_timer_deadline(u64::MAX);
    let cpu1 = CPU1_TID.load(Ordering::SeqCst);
    assert_ne!(cpu1, own);
    assert_eq!(CPU1_SAW.load(Ordering::SeqCst), cpu1);
}

#[test]
fn interrupt_enable_state_round_trips() {
    let hal = HostedHal::new(HostedConfig::default());
    let initially = hal.set_interrupts_enabled(false);
    assert!(initially, "a fresh thread has the timer signal unblocked");
    assert!(!hal.set_interrupts_enabled(false));
    assert!(!hal.set_interrupts_enabled(true));
    assert!(hal.set_interrupts_enabled(true));
}

#[test]
fn a_wake_before_the_wait_is_kept() {
    let hal = HostedHal::new(HostedConfig::default());
    hal.wake_cpu(hal.current_cpu());
    let start = Instant::now();
    hal.wait_for_interrupt();
    assert!(start.elapsed() < Duration::from_secs(1));
}
