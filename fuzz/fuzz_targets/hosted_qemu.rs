//! wasm-smith modules run hosted (in this process) and in the RISC-V kernel under QEMU (a
//! batch of modules per boot): the same results, traps, globals and memories. The oracle,
//! batching included, is `tests::fuzz_oracles::hosted_qemu`; it needs
//! `qemu-system-riscv64` and the kernel (`cargo build -p hal-riscv --release --target
//! riscv64gc-unknown-none-elf`, or `K23_KERNEL=path`).
#![no_main]

use libfuzzer_sys::fuzz_target;

/// AddressSanitizer's defaults for this target: no fake stacks, as for `differential`
/// (the hosted run derives its stack limit from the address of a local).
#[unsafe(no_mangle)]
pub extern "C" fn __asan_default_options() -> *const core::ffi::c_char {
    c"detect_stack_use_after_return=0".as_ptr()
}

unsafe extern "C" {
    /// The C library's `atexit`.
    fn atexit(callback: extern "C" fn()) -> core::ffi::c_int;
}

/// Compares the last batch when libFuzzer exits (`-max_total_time`, `-runs`).
extern "C" fn finish() {
    tests::fuzz_oracles::hosted_qemu::finish();
}

fuzz_target!(
    init: {
        // Safety: `finish` is an `extern "C" fn()` that stays valid until the process ends.
        unsafe { atexit(finish) };
    },
    |data: &[u8]| tests::fuzz_oracles::hosted_qemu::fuzz(data)
);
