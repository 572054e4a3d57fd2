//! The hal-riscv kernel binary: boots on QEMU's `virt` machine under OpenSBI, builds the
//! [`Platform`] and hands it to kernel-core's one boot path, [`kernel_core::boot::main`].
//!
//! ```text
//! qemu-system-riscv64 -machine virt -nographic -bios default -m 2G -kernel hal-riscv \
//!     [-smp N] [-initrd BOOT_IMAGE]
//! ```
//!
//! OpenSBI jumps to [`entry::_start`] (0x8020_0000, `linker.ld`) in S-mode with paging
//! off, the boot hart's id in `a0` and the device tree's address in `a1`. The entry code
//! sets up the boot stack and calls [`kmain`], which builds the [`Platform`] (paging,
//! traps) and then:
//!
//! - with an initrd (a boot image made by `sim qemu`), prints the kernel-core banner and
//!   the [`CONSOLE_BEGIN`] marker line (the host shows what follows it);
//! - without one, checks that no frame of code is writable (W^X), a check of this
//!   platform's page tables that the kernel's own self-check cannot make.
//!
//! Then it calls [`kernel_core::boot::main`] on a [`BOOT_PATH_STACK_SIZE`] stack backed up
//! front (the boot path compiles the boot programs and runs CPU 0's scheduler loop there),
//! which powers the machine off with the boot's status.
//!
//! A panic prints its message on the UART and ends QEMU with status 70, as a fatal fault
//! does (`hal_riscv::trap::FATAL_STATUS`).
#![no_std]
#![no_main]

extern crate alloc;

mod entry;

use core::fmt::Write as _;
use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, Ordering};

use hal_riscv::memory_map::PAGE_SIZE;
use hal_riscv::page_table::Pte;
use hal_riscv::stack::Stack;
use hal_riscv::{Platform, heap, memory, platform, trap};
use kernel_core::boot::image::{CONSOLE_BEGIN, STDERR_PREFIX};
use kernel_core::console::ConsoleWriter;
use kernel_core::hal::{BootInfo, Console, Machine, MemoryError, Protection, VirtualMemory};

/// The exit status of a kernel panic: the kernel itself failed.
const PANIC_STATUS: u8 = trap::FATAL_STATUS;

/// The stack the boot path runs on: it compiles the boot programs (Cranelift wants room)
/// and runs CPU 0's scheduler loop. Backed up front, like every kernel stack: a stack page
/// must never be first touched while the memory manager holds its locks.
const BOOT_PATH_STACK_SIZE: usize = 8 * 1024 * 1024;

/// The boot hart's Rust entry: initialises the heap, builds the platform from the device
/// tree and runs kernel-core's boot path.
///
/// # Safety
/// Called once, by [`entry::_start`] on the boot hart, with the firmware's `a0` (hart id)
/// and `a1` (device tree address), on the boot stack with `.bss` zeroed and `tp` = 0.
unsafe extern "C" fn kmain(hart_id: usize, device_tree: *const u8) -> ! {
    heap::init();
    let guard_pages = [entry::boot_stack_guard()];
    // Safety: called once on the boot hart with the firmware's device tree (this
    // function's contract); paging is off and the boot stack is in the image.
    let platform = unsafe { Platform::from_device_tree(hart_id, device_tree, &guard_pages) };
    if platform.boot_image().is_some() {
        kernel_core::boot::announce(&platform);
        platform.write_bytes(CONSOLE_BEGIN.as_bytes());
        platform.write_bytes(b"\n");
    } else {
        w_xor_x_check(&platform);
    }
    let mut stack = match Stack::new_backed(BOOT_PATH_STACK_SIZE) {
        Ok(stack) => stack,
        Err(error) => fail(
            &platform,
            format_args!("cannot allocate the boot stack: {error}"),
        ),
    };
    stack.run(move || kernel_core::boot::main(platform));
    // `boot::main` powers the machine off; it never returns.
    unreachable!("the boot path returned")
}

/// Prints `message` as an error line and powers off with status 70 (the kernel failed).
fn fail(platform: &Platform, message: core::fmt::Arguments<'_>) -> ! {
    let mut out = ConsoleWriter(platform);
    // Writing to the console cannot fail (ConsoleWriter always returns Ok).
    let _ = writeln!(
        out,
        "{}kernel failure: {message}",
        char::from(STDERR_PREFIX)
    );
    platform.shutdown(PANIC_STATUS)
}

/// Publishes a page of code and checks that no mapping of its frame is writable while it
/// is code, and that the frame's direct-map alias is writable again once it is released.
fn w_xor_x_check(platform: &Platform) {
    let check = || -> Result<bool, MemoryError> {
        let page = platform.reserve(PAGE_SIZE)?;
        // Safety: the fresh reservation; the write below is the only access before the
        // page becomes code, and nothing uses the page after it is released.
        unsafe {
            platform.commit(page, PAGE_SIZE, Protection::ReadWrite)?;
            // `ret`: a page of code.
            page.as_ptr().cast::<u32>().write_volatile(0x0000_8067);
            platform.publish_code(page, PAGE_SIZE)?;
        }
        let code = memory::mapping(page.as_ptr() as usize);
        let alias = code.and_then(|(frame, _)| Some((frame, memory::mapping(frame)?.1)));
        // Safety: the reservation made above, no longer used.
        unsafe { platform.release(page, PAGE_SIZE)? };
        let after = alias.and_then(|(frame, _)| memory::mapping(frame));
        Ok(code.map(|(_, bits)| bits) == Some(Pte::R | Pte::X)
            && alias.map(|(_, bits)| bits) == Some(Pte::R)
            && after.map(|(_, bits)| bits) == Some(Pte::R | Pte::W))
    };
    match check() {
        Ok(true) => {}
        Ok(false) => fail(platform, format_args!("a frame of code is writable")),
        Err(error) => fail(platform, format_args!("W^X self-check: {error}")),
    }
}

/// Set by the first panic, so that a panic while reporting one ends QEMU at once.
static PANICKING: AtomicBool = AtomicBool::new(false);

/// Prints the panic message on the UART and ends QEMU with status [`PANIC_STATUS`].
#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    if !PANICKING.swap(true, Ordering::AcqRel) {
        let console = platform::panic_console();
        // Writing to the console cannot fail (ConsoleWriter always returns Ok).
        // A line for standard error (`sim qemu` shows it there).
        let _ = writeln!(
            ConsoleWriter(&console),
            "{}hal-riscv: kernel {info}",
            char::from(STDERR_PREFIX)
        );
    }
    platform::panic_test_device().exit(PANIC_STATUS)
}
