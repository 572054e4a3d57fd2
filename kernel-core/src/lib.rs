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
pub mod job;
pub mod spec;
pub mod spectest;
pub mod wasm;

/// The kernel's name and version, as printed in the boot banner.
pub const KERNEL_NAME: &str = concat!("k23-wasm kernel-core ", env!("CARGO_PKG_VERSION"));
