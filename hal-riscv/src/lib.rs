//! The kernel-core HAL for riscv64 in supervisor mode under OpenSBI (QEMU's `virt` machine).
//!
//! The kernel binary (`src/main.rs`) enters at 0x8020_0000, sets up a stack and calls
//! [`Platform::from_device_tree`], which reads the device tree the firmware passed and
//! returns one value implementing the kernel-core HAL traits:
//!
//! | module               | what it drives                                               |
//! |----------------------|--------------------------------------------------------------|
//! | [`sbi`]              | `ecall`s into OpenSBI: harts, IPIs, timer, fences, reset     |
//! | [`arch`]             | supervisor CSRs and fences                                   |
//! | [`uart`]             | the NS16550A UART (the console)                              |
//! | [`console_input`]    | the end-of-input byte of a live standard input               |
//! | [`sifive_test`]      | QEMU's `sifive_test` device (ending QEMU with a status)      |
//! | [`clock`]            | the `time` CSR                                               |
//! | [`cpus`]             | harts: the current CPU (`tp`), starting and waking harts     |
//! | [`sync`]             | a spin lock that knows its holder                            |
//! | [`memory`]           | the address space: paging, reservations, demand paging       |
//! | [`page_table`]       | Sv48 page table entries and walks                            |
//! | [`frame_allocator`]  | physical frames                                              |
//! | [`region_allocator`] | ranges of virtual address space                              |
//! | [`reservations`]     | what is reserved and committed, with which protection       |
//! | [`heap`]             | the global allocator: a boot heap, then a growing heap       |
//! | [`stack`]            | stacks with guard pages, backed up front, running code on them |
//! | [`context`]          | execution contexts: switching stacks                         |
//! | [`trap`]             | the trap vector, trap frames, interrupts, fatal reports      |
//! | [`device_tree`]      | reading the flattened device tree                            |
//! | [`memory_map`]       | the memory map: RAM minus the reserved ranges                |
//! | [`platform`]         | [`Platform`], the HAL value tying these together             |
//!
//! The modules of plain computation ([`page_table`], [`frame_allocator`],
//! [`region_allocator`], [`reservations`], [`memory_map`], [`console_input`]) also build for the host,
//! where `cargo test -p hal-riscv --lib` runs their unit tests; the others are riscv64
//! only.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod console_input;
pub mod frame_allocator;
pub mod memory_map;
pub mod page_table;
pub mod region_allocator;
pub mod reservations;

#[cfg(target_arch = "riscv64")]
pub mod arch;
#[cfg(target_arch = "riscv64")]
pub mod clock;
#[cfg(target_arch = "riscv64")]
pub mod context;
#[cfg(target_arch = "riscv64")]
pub mod cpus;
#[cfg(target_arch = "riscv64")]
pub mod device_tree;
#[cfg(target_arch = "riscv64")]
pub mod heap;
#[cfg(target_arch = "riscv64")]
pub mod memory;
#[cfg(target_arch = "riscv64")]
pub mod platform;
#[cfg(target_arch = "riscv64")]
pub mod sbi;
#[cfg(target_arch = "riscv64")]
pub mod sifive_test;
#[cfg(target_arch = "riscv64")]
pub mod stack;
#[cfg(target_arch = "riscv64")]
pub mod sync;
#[cfg(target_arch = "riscv64")]
pub mod trap;
#[cfg(target_arch = "riscv64")]
pub mod uart;

#[cfg(target_arch = "riscv64")]
pub use platform::Platform;
