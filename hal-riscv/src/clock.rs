//! The monotonic clock: the `time` CSR, a counter shared by all harts (QEMU `virt`'s CLINT
//! `mtime`), ticking at the device tree's `/cpus/timebase-frequency`.

use core::arch::asm;

/// The timebase on QEMU's `virt` machine (10 MHz), used when the device tree names none.
pub const DEFAULT_TIMEBASE_HZ: u64 = 10_000_000;

/// Nanoseconds in a second.
const NANOS_PER_SECOND: u128 = 1_000_000_000;

/// Reads the `time` CSR (`rdtime`): ticks since the machine started.
pub fn read_ticks() -> u64 {
    let ticks: u64;
    // Safety: reading `time` has no side effect. OpenSBI lets S-mode read it directly
    // (`mcounteren.TM`) or emulates the read, so it does not fault.
    unsafe { asm!("rdtime {}", out(reg) ticks, options(nomem, nostack)) };
    ticks
}

/// Converts counter ticks to nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timebase {
    /// Ticks per second, never zero.
    hz: u64,
}

impl Timebase {
    /// The timebase of a counter ticking `hz` times a second ([`DEFAULT_TIMEBASE_HZ`] when
    /// `hz` is zero).
    pub const fn new(hz: u64) -> Self {
        Self {
            hz: if hz == 0 { DEFAULT_TIMEBASE_HZ } else { hz },
        }
    }

    /// Ticks per second.
    pub const fn hz(&self) -> u64 {
        self.hz
    }

    /// `ticks` in nanoseconds, rounded down, saturating at `u64::MAX` (584 years).
    pub const fn ticks_to_ns(&self, ticks: u64) -> u64 {
        let ns = ticks as u128 * NANOS_PER_SECOND / self.hz as u128;
        if ns > u64::MAX as u128 {
            u64::MAX
        } else {
            ns as u64
        }
    }

    /// The first counter value at or after `ns` nanoseconds (rounded up), saturating at
    /// `u64::MAX`.
    pub const fn ns_to_ticks(&self, ns: u64) -> u64 {
        let ticks = (ns as u128 * self.hz as u128).div_ceil(NANOS_PER_SECOND);
        if ticks > u64::MAX as u128 {
            u64::MAX
        } else {
            ticks as u64
        }
    }

    /// The counter now, in nanoseconds.
    pub fn now_ns(&self) -> u64 {
        self.ticks_to_ns(read_ticks())
    }
}
