//! Module translation and VMContext layout, side by side with wasmparser's validator alone
//! (the floor translation cannot go below, since it validates first).
#![expect(
    missing_docs,
    reason = "criterion_main! generates an undocumented main"
)]

use criterion::{Criterion, criterion_group, criterion_main};
use kernel_core::wasm::env::{VMCounts, VMShape, WASM2_FEATURES, translate};

/// A module with many small exported functions, a table and data: the shape of compiled
/// programs.
fn many_functions(count: usize) -> Vec<u8> {
    let mut text =
        String::from("(module (memory 1) (table 16 funcref) (data (i32.const 0) \"hello\")\n");
    for index in 0..count {
        text.push_str(&format!(
            "(func (export \"f{index}\") (param i32) (result i32) local.get 0 i32.const {index} i32.add)\n"
        ));
    }
    text.push_str("(elem (i32.const 0) func 0 1 2 3))");
    wat::parse_str(&text).expect("benchmark module is valid")
}

fn bench_translate(c: &mut Criterion) {
    let bytes = many_functions(2000);
    let mut group = c.benchmark_group("2000 functions");
    group.bench_function("wasmparser validate_all", |b| {
        b.iter(|| {
            wasmparser::Validator::new_with_features(WASM2_FEATURES)
                .validate_all(&bytes)
                .unwrap()
        });
    });
    group.bench_function("kernel-core translate", |b| {
        b.iter(|| translate(&bytes, WASM2_FEATURES).unwrap());
    });
    group.finish();

    let module = translate(&bytes, WASM2_FEATURES).unwrap();
    let counts = VMCounts::for_module(&module);
    c.bench_function("VMShape::new", |b| {
        b.iter(|| VMShape::new(std::hint::black_box(counts)))
    });
}

criterion_group!(benches, bench_translate);
criterion_main!(benches);
