//! The kernel-core HAL for riscv64 in supervisor mode under OpenSBI (QEMU's `virt` machine).
//!
//! The kernel binary (`src/main.rs`) enters at 0x8020_0000, sets up a stack and calls
//! [`Platform::from_device_tree`], which reads the device tree the firmware passed and
//! returns one value implementing the kernel-core HAL traits:
//!
//! | module          | what it drives                                           |
//! |-----------------|----------------------------------------------------------|
//! | [`sbi`]         | `ecall`s into OpenSBI: hart start, IPIs, system reset    |
//! | [`uart`]        | the NS16550A UART (the console)                          |
//! | [`sifive_test`] | QEMU's `sifive_test` device (ending QEMU with a status)  |
//! | [`clock`]       | the `time` CSR                                           |
//! | [`cpus`]        | harts: the current CPU (`tp`), starting and waking harts |
//! | [`heap`]        | the global allocator over a static region in `.bss`      |
//! | [`device_tree`] | reading the flattened device tree                        |
//! | [`memory_map`]  | the memory map: RAM minus the reserved ranges            |
//! | [`platform`]    | [`Platform`], the HAL value tying these together         |
//!
//! Everything but [`memory_map`] is riscv64 only; that one is plain computation and also
//! builds for the host, where `cargo test -p hal-riscv --lib` runs its unit tests.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod memory_map;

#[cfg(target_arch = "riscv64")]
pub mod clock;
#[cfg(target_arch = "riscv64")]
pub mod cpus;
#[cfg(target_arch = "riscv64")]
pub mod device_tree;
#[cfg(target_arch = "riscv64")]
pub mod heap;
#[cfg(target_arch = "riscv64")]
pub mod platform;
#[cfg(target_arch = "riscv64")]
pub mod sbi;
#[cfg(target_arch = "riscv64")]
pub mod sifive_test;
#[cfg(target_arch = "riscv64")]
pub mod uart;

#[cfg(target_arch = "riscv64")]
pub use platform::Platform;
