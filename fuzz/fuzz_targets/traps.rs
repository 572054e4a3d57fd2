//! Modules built to trap at chosen points (memory bounds before and after growth,
//! division, conversions, `call_indirect`, `unreachable`, stack exhaustion): exactly the
//! trap or results a model predicts, and a store still usable afterwards. The oracle is
//! `tests::fuzz_oracles::traps`.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// AddressSanitizer's defaults for this target. Its fake stacks (on by default) put Rust
/// locals off the machine stack, and kernel-core derives WebAssembly's stack limit from the
/// address of a local in `Store::call`: with them, runaway recursion is not caught by the
/// limit and overflows the real stack. Remove once the limit comes from the real stack
/// pointer.
#[unsafe(no_mangle)]
pub extern "C" fn __asan_default_options() -> *const core::ffi::c_char {
    c"detect_stack_use_after_return=0".as_ptr()
}

fuzz_target!(|data: &[u8]| tests::fuzz_oracles::traps::check(data));
