//! Tests of context switching: a long ping-pong (and its cost), the floating-point control
//! state, stack bounds and the guard page.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use kernel_core::hal::{ExecutionContexts, VirtualMemory};

use super::{SavedContext, Stack};
use crate::{HostedConfig, HostedHal};

/// What a test shares with the context it runs.
struct Shared {
    hal: HostedHal,
    main: UnsafeCell<SavedContext>,
    context: UnsafeCell<SavedContext>,
    counter: AtomicU64,
    /// A value the context reads back (MXCSR).
    observed: AtomicU64,
}

fn shared() -> Box<Shared> {
    Box::new(Shared {
        hal: HostedHal::new(HostedConfig::default()),
        main: UnsafeCell::new(SavedContext::default()),
        context: UnsafeCell::new(SavedContext::default()),
        counter: AtomicU64::new(0),
        observed: AtomicU64::new(0),
    })
}

/// Increments the counter and switches back, forever.
fn counting_entry(arg: usize) -> ! {
    // Safety: `arg` is the address of the boxed `Shared`, which the test keeps alive while
    // it switches to this context.
    let shared = unsafe { &*(arg as *const Shared) };
    loop {
        shared.counter.fetch_add(1, Ordering::Relaxed);
        // Safety: this context's slot and the test's suspended context.
        unsafe { shared.hal.switch(shared.context.get(), shared.main.get()) };
    }
}

fn start(shared: &Shared, entry: fn(usize) -> !) -> Stack {
    let stack = shared.hal.allocate_stack(16 * 1024).unwrap();
    let context = shared
        .hal
        .new_context(&stack, entry, core::ptr::from_ref(shared) as usize);
    // Safety: no context runs yet; the test thread owns the slot.
    unsafe { *shared.context.get() = context };
    stack
}

#[test]
fn a_million_switches_ping_pong() {
    let shared = shared();
    let stack = start(&shared, counting_entry);
    const ROUND_TRIPS: u64 = 500_000;
    let begin = Instant::now();
    for _ in 0..ROUND_TRIPS {
        // Safety: the test's slot and the suspended counting context, whose stack lives
        // until the end of the test.
        unsafe { shared.hal.switch(shared.main.get(), shared.context.get()) };
    }
    let elapsed = begin.elapsed();
    assert_eq!(shared.counter.load(Ordering::Relaxed), ROUND_TRIPS);
    let switches = 2 * ROUND_TRIPS;
    println!(
        "{switches} switches in {elapsed:?}: {:.1} ns per switch",
        elapsed.as_nanos() as f64 / switches as f64
    );
    drop(stack);
}

fn read_mxcsr() -> u32 {
    let mut value = 0_u32;
    // Safety: `stmxcsr` stores the 4-byte MXCSR into `value`, nothing else.
    unsafe { core::arch::asm!("stmxcsr [{}]", in(reg) &raw mut value, options(nostack)) };
    value
}

fn write_mxcsr(value: u32) {
    // Safety: `ldmxcsr` loads MXCSR from `value`; the values used are valid (only the
    // rounding mode bits differ from the default).
    unsafe { core::arch::asm!("ldmxcsr [{}]", in(reg) &raw const value, options(nostack)) };
}

/// Round towards zero in MXCSR's rounding control bits.
const ROUND_TOWARD_ZERO: u32 = 0b11 << 13;

/// Records its MXCSR, sets another rounding mode, switches back; repeats.
fn mxcsr_entry(arg: usize) -> ! {
    // Safety: as in `counting_entry`.
    let shared = unsafe { &*(arg as *const Shared) };
    loop {
        shared
            .observed
            .store(u64::from(read_mxcsr()), Ordering::Relaxed);
        write_mxcsr(super::DEFAULT_MXCSR | (0b01 << 13));
        // Safety: as in `counting_entry`.
        unsafe { shared.hal.switch(shared.context.get(), shared.main.get()) };
    }
}

#[test]
fn rounding_mode_belongs_to_the_context() {
    let shared = shared();
    let stack = start(&shared, mxcsr_entry);
    let before = read_mxcsr();
    write_mxcsr(before | ROUND_TOWARD_ZERO);
    for _ in 0..2 {
        // Safety: as in the ping-pong test.
        unsafe { shared.hal.switch(shared.main.get(), shared.context.get()) };
        assert_eq!(
            read_mxcsr(),
            before | ROUND_TOWARD_ZERO,
            "the caller's rounding mode survives"
        );
    }
    write_mxcsr(before);
    // The first time the context starts with the default, then it keeps its own.
    let observed = shared.observed.load(Ordering::Relaxed);
    assert_eq!(observed, u64::from(super::DEFAULT_MXCSR | (0b01 << 13)));
    drop(stack);
}

#[test]
fn stacks_have_a_guard_page_and_rounded_bounds() {
    let hal = HostedHal::new(HostedConfig::default());
    let page = hal.page_size();
    let stack = hal.allocate_stack(page + 1).unwrap();
    let bounds = hal.stack_bounds(&stack);
    assert_eq!(bounds.start % page, 0);
    assert_eq!(bounds.end - bounds.start, 2 * page);
    // The page below the bounds is the guard: the kernel lists it with no access.
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let guard = bounds.start - page;
    let guard_line = maps
        .lines()
        .find(|line| line.starts_with(&format!("{guard:x}-")))
        .unwrap_or_else(|| panic!("no mapping starts at the guard page {guard:#x}:\n{maps}"));
    assert!(guard_line.contains(" ---p "), "{guard_line}");
    let empty = hal.allocate_stack(0).unwrap();
    assert_eq!(hal.stack_bounds(&empty).len(), page);
}
