//! The kernel's entry point: the first instructions run on the boot hart.
//!
//! OpenSBI (as QEMU's `-bios default` starts it) enters the kernel on one hart only, the
//! boot hart it chose; every other hart stays stopped in the SBI hart state management
//! (HSM) extension until the kernel starts it with `hart_start`, which enters at
//! `hal_riscv::cpus`' own trampoline, never here. Firmware that enters on every hart at
//! once (older boot loaders) is handled too: the first hart to swap [`BOOT_HART_CLAIMED`]
//! boots, every later one parks in a `wfi` loop with interrupts off.

use core::arch::naked_asm;
use core::sync::atomic::AtomicU32;

use hal_riscv::cpus::SSTATUS_UNITS_ON;
use hal_riscv::memory_map::{PAGE_SIZE, Range};

/// The size of the boot hart's stack, above its guard page.
const BOOT_STACK_SIZE: usize = 64 * 1024;

/// The boot hart's stack: a guard page (left unmapped once paging is on, so that an
/// overflow faults) and the stack above it.
#[repr(C, align(4096))]
struct BootStack([u8; PAGE_SIZE + BOOT_STACK_SIZE]);

/// The boot hart's stack, in `.bss`. Only the entry code refers to it (as the stack
/// pointer's initial value) and [`boot_stack_guard`] (its address); no Rust code accesses
/// its contents.
static mut BOOT_STACK: BootStack = BootStack([0; PAGE_SIZE + BOOT_STACK_SIZE]);

/// The guard page at the bottom of the boot stack.
pub fn boot_stack_guard() -> Range {
    Range::from_base_size(&raw const BOOT_STACK as usize, PAGE_SIZE)
}

/// Nonzero once a hart has claimed the boot. In `.data`, not `.bss`: the winner zeroes
/// `.bss` after claiming, which must not reopen the claim for a late hart.
#[unsafe(link_section = ".data")]
static BOOT_HART_CLAIMED: AtomicU32 = AtomicU32::new(0);

/// The entry point (`ENTRY(_start)`, first in `.text`): claims the boot, enables the
/// floating-point unit, sets the stack and `tp` (CPU 0), zeroes `.bss` and calls
/// [`crate::kmain`] with the firmware's `a0` (hart id) and `a1` (device tree), untouched.
///
/// # Safety
/// Only for the firmware to jump to, once per hart, in S-mode with paging off.
#[unsafe(naked)]
#[unsafe(no_mangle)]
#[unsafe(link_section = ".text.entry")]
unsafe extern "C" fn _start(hart_id: usize, device_tree: *const u8) -> ! {
    naked_asm!(
        // Interrupts stay off until the kernel installs a trap vector.
        "csrw sie, zero",
        "csrci sstatus, 2",
        // Claim the boot: the first hart to swap in a 1 continues, the others park.
        "la t0, {claimed}",
        "li t1, 1",
        // (naked_asm is assembled without the function's target features: name the
        // A extension's atomics, which riscv64gc has, explicitly.)
        ".option push",
        ".option arch, +zaamo",
        "amoswap.w.aqrl t1, t1, (t0)",
        ".option pop",
        "bnez t1, 3f",
        "li t0, {units_on}",
        "csrs sstatus, t0",
        // Round to nearest, ties to even, flags clear (`fcsr` = 0): JIT code relies on the
        // rounding mode (`kernel_core::wasm::compile`). The vector unit, when the hart has
        // one, is turned on later (`arch::enable_vector_unit`).
        "csrw fcsr, zero",
        "la sp, {stack}",
        "li t0, {stack_end}",
        "add sp, sp, t0",
        "li tp, 0",
        // Zero .bss (8-byte aligned bounds, linker.ld); the stack is not in use yet.
        "la t0, __bss_start",
        "la t1, __bss_end",
        "1:",
        "bgeu t0, t1, 2f",
        "sd zero, 0(t0)",
        "addi t0, t0, 8",
        "j 1b",
        "2:",
        // a0 and a1 still hold the firmware's arguments.
        "call {kmain}",
        "3:",
        "wfi",
        "j 3b",
        claimed = sym BOOT_HART_CLAIMED,
        units_on = const SSTATUS_UNITS_ON,
        stack = sym BOOT_STACK,
        stack_end = const PAGE_SIZE + BOOT_STACK_SIZE,
        kmain = sym crate::kmain,
    )
}
