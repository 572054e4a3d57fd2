//! The hal-riscv kernel: boots on QEMU's `virt` machine under OpenSBI, turns on paging
//! and the trap vector, and either runs the job of a boot bundle (`sim qemu`) or checks
//! itself and powers off.
//!
//! ```text
//! qemu-system-riscv64 -machine virt -nographic -bios default -m 2G -kernel hal-riscv \
//!     [-initrd BUNDLE]
//! ```
//!
//! OpenSBI jumps to [`entry::_start`] (0x8020_0000, `linker.ld`) in S-mode with paging
//! off, the boot hart's id in `a0` and the device tree's address in `a1`. The entry code
//! sets up the boot stack and calls [`kmain`], which builds the [`Platform`] (paging,
//! traps) and prints the kernel-core banner. Then:
//!
//! - with an initrd holding a boot bundle (`kernel_core::boot::image`), it prints the
//!   [`CONSOLE_BEGIN`] marker, runs the job with the WebAssembly runtime on a
//!   [`JOB_STACK_SIZE`] stack with a guard page, and powers off with the job's status;
//! - without one, it checks virtual memory (W^X for frames of code included), the timer
//!   interrupt, the other CPUs (each takes a demand fault on its own trap stack),
//!   execution contexts and interrupts with `sstatus.SIE` on (the temporary [`checks`],
//!   CPU 1 helping) and a WebAssembly trap, prints `hal-riscv: boot ok` and powers off
//!   with status 0.
//!
//! A panic prints its message on the UART and ends QEMU with status 70, as a fatal fault
//! does (`hal_riscv::trap::FATAL_STATUS`).
#![no_std]
#![no_main]

extern crate alloc;

mod checks;
mod entry;

use alloc::string::ToString;
use core::fmt::Write as _;
use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use hal_riscv::memory_map::PAGE_SIZE;
use hal_riscv::page_table::Pte;
use hal_riscv::stack::Stack;
use hal_riscv::{Platform, arch, heap, memory, platform, trap};
use kernel_core::boot::image::{BootImage, CONSOLE_BEGIN, STDERR_PREFIX};
use kernel_core::console::ConsoleWriter;
use kernel_core::hal::{
    Clock, Console, CpuId, Cpus, Interrupts, Machine, MemoryError, Protection, VirtualMemory,
};
use kernel_core::job::{self, ConsoleOutput, ExitStatus};
use kernel_core::wasm::env::WASM1_FEATURES;
use kernel_core::wasm::runtime::{Engine, EngineConfig, Extern, Module, Store};

/// The exit status of a kernel panic: the kernel itself failed.
const PANIC_STATUS: u8 = trap::FATAL_STATUS;

/// The stack the job runs on: room for `EngineConfig::wasm_stack_size` of WebAssembly
/// below the runtime's frames, and for the compiler. Backed up front (a stack page first
/// touched inside the memory manager could not be backed).
const JOB_STACK_SIZE: usize = 4 * 1024 * 1024;

/// `(module (func (export "f") unreachable))`: the boot self-check's trap.
const TRAPPING_MODULE: &[u8] = &[
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
    0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type section: () -> ()
    0x03, 0x02, 0x01, 0x00, // function section: one function of type 0
    0x07, 0x05, 0x01, 0x01, b'f', 0x00, 0x00, // export section: "f" = func 0
    0x0a, 0x05, 0x01, 0x03, 0x00, 0x00, 0x0b, // code section: unreachable, end
];

/// The boot hart's Rust entry: initialises the heap, builds the platform from the device
/// tree, prints the banner and runs the bundle's job or the self-checks.
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
    kernel_core::boot::announce(&platform);
    match platform.initrd() {
        Some(bytes) if BootImage::is_boot_image(bytes) => run_bundle(platform, bytes),
        Some(_) => {
            platform.write_bytes(b"hal-riscv: the initrd is not a boot bundle; ignored\n");
            self_check(platform)
        }
        None => self_check(platform),
    }
}

/// Runs the job of the boot bundle `bytes` and powers off with its status.
fn run_bundle(platform: Platform, bytes: &[u8]) -> ! {
    platform.write_bytes(CONSOLE_BEGIN.as_bytes());
    platform.write_bytes(b"\n");
    let bundle = match BootImage::decode(bytes) {
        Ok(bundle) => bundle,
        Err(error) => fail(
            &platform,
            format_args!("cannot read the boot bundle: {error}"),
        ),
    };
    let mut stack = match Stack::new_backed(JOB_STACK_SIZE) {
        Ok(stack) => stack,
        Err(error) => fail(
            &platform,
            format_args!("cannot allocate the job stack: {error}"),
        ),
    };
    let engine = Engine::new(platform, EngineConfig::default());
    let status = stack.run(|| job::run(&engine, &bundle, &ConsoleOutput(engine.hal())));
    engine.hal().shutdown(status.code())
}

/// Prints `message` as an error line on the job's standard error and powers off with
/// [`ExitStatus::KernelFailure`].
fn fail(platform: &Platform, message: core::fmt::Arguments<'_>) -> ! {
    let mut out = ConsoleWriter(platform);
    // Writing to the console cannot fail (ConsoleWriter always returns Ok).
    let _ = writeln!(
        out,
        "{}kernel failure: {message}",
        char::from(STDERR_PREFIX)
    );
    platform.shutdown(ExitStatus::KernelFailure.code())
}

/// Checks paging, the timer interrupt and the WebAssembly trap path, then powers off with
/// status 0 (70 when a check fails).
fn self_check(platform: Platform) -> ! {
    let mut out = ConsoleWriter(&platform);
    if let Err(error) = kernel_core::boot::check_virtual_memory(&platform) {
        fail(
            &platform,
            format_args!("virtual memory self-check: {error}"),
        );
    }
    w_xor_x_check(&platform);
    let (free, total) = memory::frame_counts();
    // Writing to the console cannot fail (ConsoleWriter always returns Ok).
    let _ = writeln!(
        out,
        "hal-riscv: Sv48 paging on, W^X checked, {} of {} MiB free, heap {} MiB, vector unit {}",
        free / 256,
        total / 256,
        heap::size() >> 20,
        if arch::vector_unit_present() {
            "on"
        } else {
            "off"
        },
    );
    let waited = timer_check(&platform);
    let _ = writeln!(out, "hal-riscv: timer interrupt after {waited} us");
    let started = start_other_cpus(&platform);
    if started > 0 {
        let _ = writeln!(out, "hal-riscv: {started} more CPUs started");
    }
    // Temporary checks of execution contexts and interrupts (`checks`), CPU 1 helping.
    let mut results = alloc::vec![checks::contexts(&platform)];
    if platform.cpu_count() > 1 {
        results.push(checks::migration(&platform));
    }
    results.push(checks::timer(&platform));
    results.push(checks::nested(&platform));
    results.push(checks::wake(&platform));
    if let Err(error) = checks::stop_serving(&platform) {
        results.push(Err(error));
    }
    for result in results {
        match result {
            Ok(report) => {
                let _ = writeln!(out, "hal-riscv: {report}");
            }
            Err(error) => fail(&platform, format_args!("self-check: {error}")),
        }
    }
    let mut stack = match Stack::new_backed(JOB_STACK_SIZE) {
        Ok(stack) => stack,
        Err(error) => fail(&platform, format_args!("cannot allocate a stack: {error}")),
    };
    let engine = Engine::new(platform, EngineConfig::default());
    let message = stack.run(|| {
        let module = Module::new(&engine, TRAPPING_MODULE, WASM1_FEATURES).ok()?;
        let mut store = Store::new(&engine);
        let instance = store.instantiate(&module, &[]).ok()?;
        let Some(Extern::Func(func)) = store.export(instance, "f") else {
            return None;
        };
        store.call(func, &[]).err()
    });
    let platform = engine.hal();
    let mut out = ConsoleWriter(platform);
    match message {
        Some(error) if error.to_string() == "unreachable" => {
            let _ = writeln!(out, "hal-riscv: WebAssembly trap ok ({error})");
        }
        other => fail(
            platform,
            format_args!("WebAssembly trap self-check: {other:?}"),
        ),
    }
    platform.write_bytes(b"hal-riscv: boot ok\n");
    platform.shutdown(0)
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

/// CPUs that ran [`secondary_check`] successfully.
static CPUS_CHECKED: AtomicUsize = AtomicUsize::new(0);

/// Starts every other CPU with [`secondary_check`], each on a page of its own, and waits
/// for them to report; returns how many did. Fails the boot when one does not within a
/// second.
fn start_other_cpus(platform: &Platform) -> usize {
    let others = platform.cpu_count() - 1;
    if others == 0 {
        return 0;
    }
    let len = platform.cpu_count() * PAGE_SIZE;
    let pages = match platform.reserve(len) {
        Ok(pages) => pages,
        Err(error) => fail(platform, format_args!("cannot reserve CPU pages: {error}")),
    };
    // Safety: the fresh reservation, committed whole; nothing refers into it yet.
    if let Err(error) = unsafe { platform.commit(pages, len, Protection::ReadWrite) } {
        fail(platform, format_args!("cannot commit CPU pages: {error}"));
    }
    for cpu in 1..platform.cpu_count() {
        let page = pages.as_ptr() as usize + cpu * PAGE_SIZE;
        // CPU numbers fit in u32 (at most MAX_CPUS).
        if let Err(error) = platform.start_cpu(CpuId(cpu as u32), secondary_check, page) {
            fail(platform, format_args!("cannot start CPU {cpu}: {error:?}"));
        }
    }
    let start = platform.now_ns();
    while CPUS_CHECKED.load(Ordering::Acquire) < others {
        if platform.now_ns() - start > 1_000_000_000 {
            fail(
                platform,
                format_args!("other CPUs did not report within a second"),
            );
        }
        core::hint::spin_loop();
    }
    // The pages stay committed: the parked CPUs may still hold translations of them.
    others
}

/// What a started CPU runs: writes and reads back its page (a demand fault served on
/// that CPU's own trap stack), reports, then parks with interrupts off (CPU 1 first
/// serves the checks of [`checks`]).
fn secondary_check(cpu: CpuId, page: usize) -> ! {
    let word = page as *mut u64;
    let value = 0x5eed_0000 + u64::from(cpu.0);
    // Safety: `page` is this CPU's own page of a committed read+write reservation made by
    // `start_other_cpus`, which nothing else touches.
    let read = unsafe {
        word.write_volatile(value);
        word.read_volatile()
    };
    if read == value {
        CPUS_CHECKED.fetch_add(1, Ordering::AcqRel);
    }
    if cpu == CpuId(1) {
        checks::serve();
    }
    loop {
        core::hint::spin_loop();
        // Safety: `wfi` only pauses the hart; interrupts stay masked (`sstatus.SIE` off).
        unsafe { core::arch::asm!("wfi", options(nomem, nostack)) };
    }
}

/// Arms the timer 1 ms ahead and waits for its interrupt; returns the microseconds
/// waited. Fails the boot after a second without one.
fn timer_check(platform: &Platform) -> u64 {
    let start = platform.now_ns();
    let before = platform.timer_interrupts();
    platform.set_timer_deadline(start + 1_000_000);
    let was_enabled = platform.set_interrupts_enabled(true);
    while platform.timer_interrupts() == before {
        if platform.now_ns() - start > 1_000_000_000 {
            fail(platform, format_args!("no timer interrupt within a second"));
        }
        platform.wait_for_interrupt();
    }
    platform.set_interrupts_enabled(was_enabled);
    (platform.now_ns() - start) / 1000
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
