//! Executing WebAssembly: the kernel-core JIT next to the wasmi interpreter and native Rust
//! on the same programs, in one run, so the ratios hold whatever the machine is doing.
#![expect(
    missing_docs,
    reason = "criterion_main! generates an undocumented main"
)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use kernel_core::wasm::env::WASM2_FEATURES;
use kernel_core::wasm::runtime::{Extern, Module, Store, Val};

const PROGRAM: &str = r#"
(module
  (func $fib (export "fib") (param i32) (result i32)
    (if (result i32) (i32.lt_u (local.get 0) (i32.const 2))
      (then (local.get 0))
      (else (i32.add (call $fib (i32.sub (local.get 0) (i32.const 1)))
                     (call $fib (i32.sub (local.get 0) (i32.const 2)))))))
  (memory 1)
  (func (export "sum") (param i32) (result i64)
    (local $i i32) (local $acc i64)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get 0)))
        (i32.store (i32.shl (i32.and (local.get $i) (i32.const 4095)) (i32.const 2)) (local.get $i))
        (local.set $acc (i64.add (local.get $acc)
          (i64.extend_i32_u (i32.load (i32.shl (i32.and (local.get $i) (i32.const 4095)) (i32.const 2))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $acc)))
"#;

fn native_fib(n: u32) -> u32 {
    if n < 2 {
        n
    } else {
        native_fib(n - 1) + native_fib(n - 2)
    }
}

fn native_sum(n: u32, memory: &mut [u32; 4096]) -> u64 {
    let mut acc = 0u64;
    for i in 0..n {
        memory[(i & 4095) as usize] = i;
        acc += u64::from(black_box(memory[(i & 4095) as usize]));
    }
    acc
}

fn bench_execute(c: &mut Criterion) {
    let bytes = wat::parse_str(PROGRAM).expect("benchmark program");

    let engine = tests::hosted_engine();
    let module = Module::new(engine, &bytes, WASM2_FEATURES).expect("loads");
    let mut store = Store::new(engine);
    let instance = store.instantiate(&module, &[]).expect("instantiates");
    let Some(Extern::Func(fib)) = store.export(instance, "fib") else {
        panic!("fib")
    };
    let Some(Extern::Func(sum)) = store.export(instance, "sum") else {
        panic!("sum")
    };

    let wasmi_engine = wasmi::Engine::default();
    let wasmi_module = wasmi::Module::new(&wasmi_engine, &bytes[..]).expect("wasmi loads");
    let mut wasmi_store = wasmi::Store::new(&wasmi_engine, ());
    let wasmi_instance = wasmi::Linker::<()>::new(&wasmi_engine)
        .instantiate_and_start(&mut wasmi_store, &wasmi_module)
        .expect("wasmi instantiates");
    let wasmi_fib = wasmi_instance
        .get_typed_func::<i32, i32>(&wasmi_store, "fib")
        .expect("fib");
    let wasmi_sum = wasmi_instance
        .get_typed_func::<i32, i64>(&wasmi_store, "sum")
        .expect("sum");

    let mut group = c.benchmark_group("fib(25)");
    group.bench_function("kernel-core JIT", |b| {
        b.iter(|| store.call(fib, &[Val::I32(black_box(25))]).unwrap())
    });
    group.bench_function("wasmi 2.0", |b| {
        b.iter(|| wasmi_fib.call(&mut wasmi_store, black_box(25)).unwrap())
    });
    group.bench_function("native", |b| b.iter(|| native_fib(black_box(25))));
    group.finish();

    let mut group = c.benchmark_group("memory loop 100k");
    let mut memory = [0u32; 4096];
    group.bench_function("kernel-core JIT", |b| {
        b.iter(|| store.call(sum, &[Val::I32(black_box(100_000))]).unwrap())
    });
    group.bench_function("wasmi 2.0", |b| {
        b.iter(|| {
            wasmi_sum
                .call(&mut wasmi_store, black_box(100_000))
                .unwrap()
        })
    });
    group.bench_function("native", |b| {
        b.iter(|| native_sum(black_box(100_000), &mut memory))
    });
    group.finish();

    let mut group = c.benchmark_group("load module");
    group.bench_function("kernel-core compile + publish", |b| {
        b.iter(|| Module::new(engine, black_box(&bytes), WASM2_FEATURES).unwrap());
    });
    group.bench_function("wasmi 2.0 (lazy translation)", |b| {
        b.iter(|| wasmi::Module::new(&wasmi_engine, black_box(&bytes[..])).unwrap());
    });
    group.finish();
}

criterion_group!(benches, bench_execute);
criterion_main!(benches);
