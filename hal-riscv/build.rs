//! Links the kernel binary with `linker.ld` when building for riscv64.
//!
//! The linker script places the entry point at 0x8020_0000, where OpenSBI jumps on QEMU's
//! `virt` machine. It is passed to the binaries only (the library needs none), and only
//! for a riscv64 target, so that host builds of the library (its unit tests) link normally.

use std::env;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=linker.ld");
    let manifest_dir =
        env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR for build scripts");
    let target_arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if target_arch == "riscv64" {
        let script = Path::new(&manifest_dir).join("linker.ld");
        println!("cargo:rustc-link-arg-bins=-T{}", script.display());
    }
}
