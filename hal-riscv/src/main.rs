//! The hal-riscv kernel: boots on QEMU's `virt` machine under OpenSBI, announces
//! kernel-core and powers off.
//!
//! ```text
//! qemu-system-riscv64 -machine virt -nographic -bios default -m 256M -kernel hal-riscv
//! ```
//!
//! OpenSBI jumps to [`_start`] (0x8020_0000, `linker.ld`) in S-mode with paging off, the
//! boot hart's id in `a0` and the device tree's address in `a1`. The entry code sets up the
//! boot stack and calls [`kmain`], which builds the [`Platform`] and runs the boot
//! sequence. A panic prints its message on the UART and ends QEMU with status 1.
#![no_std]
#![no_main]

mod entry;

use core::fmt::Write as _;
use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, Ordering};

use hal_riscv::{Platform, heap, platform};
use kernel_core::console::ConsoleWriter;
use kernel_core::hal::{Console, Machine};

/// The exit status of a kernel panic.
const PANIC_STATUS: u8 = 1;

/// The boot hart's Rust entry: initialises the heap, builds the platform from the device
/// tree and runs the boot sequence, then powers off with status 0.
///
/// # Safety
/// Called once, by [`entry::_start`] on the boot hart, with the firmware's `a0` (hart id)
/// and `a1` (device tree address), on the boot stack with `.bss` zeroed and `tp` = 0.
unsafe extern "C" fn kmain(hart_id: usize, device_tree: *const u8) -> ! {
    heap::init();
    // Safety: called once on the boot hart with the firmware's device tree (this
    // function's contract); paging is off.
    let platform = unsafe { Platform::from_device_tree(hart_id, device_tree) };
    kernel_core::boot::announce(&platform);
    platform.write_bytes(b"hal-riscv: boot ok\n");
    platform.shutdown(0)
}

/// Set by the first panic, so that a panic while reporting one ends QEMU at once.
static PANICKING: AtomicBool = AtomicBool::new(false);

/// Prints the panic message on the UART and ends QEMU with status [`PANIC_STATUS`].
#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    if !PANICKING.swap(true, Ordering::AcqRel) {
        let console = platform::panic_console();
        // Writing to the console cannot fail (ConsoleWriter always returns Ok).
        let _ = writeln!(ConsoleWriter(&console), "\nhal-riscv: kernel {info}");
    }
    platform::panic_test_device().exit(PANIC_STATUS)
}
