//! The portable core of the k23-style WebAssembly microkernel.
//!
//! kernel-core is `no_std` + `alloc` and runs unchanged on every platform: it reaches the
//! machine only through the traits of [`hal`], implemented by `hal-hosted` (a Linux
//! process) and `hal-riscv` (riscv64 under OpenSBI). It holds the boot sequence
//! ([`boot`]), and the WebAssembly environment ([`wasm`]): module translation and the
//! VMContext layout shared by the compiler and the runtime.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod boot;
pub mod console;
pub mod hal;
pub mod ipc;
pub mod job;
pub mod kernel;
pub mod process;
pub mod sched;
pub mod spec;
pub mod spectest;
pub mod sync;
pub mod syscall;
pub mod vfs;
pub mod wasi;
pub mod wasm;

/// Everything the kernel needs of its platform: the HAL traits together, on a value that
/// lives for the whole boot and is shared by every CPU.
pub trait KernelHal:
    wasm::runtime::RuntimeHal
    + hal::ExecutionContexts
    + hal::Interrupts
    + hal::Clock
    + hal::Console
    + hal::Machine
    + hal::BootInfo
    + hal::Storage
    + hal::Entropy
    + hal::WallClock
    + Sync
    + Send
    + 'static
{
}

impl<H> KernelHal for H where
    H: wasm::runtime::RuntimeHal
        + hal::ExecutionContexts
        + hal::Interrupts
        + hal::Clock
        + hal::Console
        + hal::Machine
        + hal::BootInfo
        + hal::Storage
        + hal::Entropy
        + hal::WallClock
        + Sync
        + Send
        + 'static
{
}

/// The kernel's name and version, as printed in the boot banner.
pub const KERNEL_NAME: &str = concat!("k23-wasm kernel-core ", env!("CARGO_PKG_VERSION"));
