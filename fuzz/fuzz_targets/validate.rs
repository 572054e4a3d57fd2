//! Arbitrary bytes (or wasm-smith modules of arbitrary configurations) into translation:
//! accepted exactly when `wasmparser::Validator` accepts them with the WebAssembly 2.0
//! features, and what is accepted compiles or fails with an error, never a panic. The
//! oracle is `tests::fuzz_oracles::validate`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tests::fuzz_oracles::validate::check(data));
