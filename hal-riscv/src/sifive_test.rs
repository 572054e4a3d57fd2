//! QEMU's `sifive_test` device: one register whose writes end the emulator with a status.
//!
//! Writing `0x5555` ends QEMU with exit status 0; writing `(code << 16) | 0x3333` ends it
//! with status `code`. Without the device (real hardware), [`TestDevice::exit`] falls back
//! to the SBI system reset extension, which powers off without a status.

use crate::sbi;

/// The device's address on QEMU's `virt` machine.
pub const DEFAULT_BASE: usize = 0x10_0000;

/// The register value for "finished, passed" (exit status 0).
const FINISHER_PASS: u32 = 0x5555;
/// The low half of the register value for "finished, failed with the code in the upper half".
const FINISHER_FAIL: u32 = 0x3333;

/// The `sifive_test` device, when the machine has one.
#[derive(Debug, Clone, Copy)]
pub struct TestDevice {
    /// The register's address, `None` on a machine without the device.
    base: Option<usize>,
}

impl TestDevice {
    /// The device with its register at `base`, or none (`None`).
    ///
    /// # Safety
    /// A `Some` base must be the MMIO address of a `sifive_test` compatible device, mapped
    /// (or paging off).
    pub const unsafe fn new(base: Option<usize>) -> Self {
        Self { base }
    }

    /// The register value that ends QEMU with `status`.
    pub const fn finisher_value(status: u8) -> u32 {
        match status {
            0 => FINISHER_PASS,
            code => ((code as u32) << 16) | FINISHER_FAIL,
        }
    }

    /// Ends the machine with `status` (0 for success). Never returns: when neither the
    /// device nor the firmware stops the machine, the hart waits for interrupts forever.
    pub fn exit(&self, status: u8) -> ! {
        if let Some(base) = self.base {
            // Safety: `new`'s contract: `base` is the device's register; writing it stops
            // the emulator and touches no memory Rust owns.
            unsafe { (base as *mut u32).write_volatile(Self::finisher_value(status)) };
        }
        let _refused = sbi::system_shutdown(status != 0);
        loop {
            // Safety: `wfi` only pauses the hart until an interrupt is pending; it has no
            // effect on memory or registers.
            unsafe { core::arch::asm!("wfi", options(nomem, nostack)) };
        }
    }
}
