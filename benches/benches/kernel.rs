//! The kernel's costs: a process switch (two processes yielding to each other), a syscall
//! round trip (`getpid`), an IPC round trip (one message each way over two channels, 64
//! bytes and 16 KiB), a spawn to exit of a small program, and what the epoch checks (the preemption points compiled into
//! every function entry and loop header) cost on loop-heavy code, against the same code
//! compiled without them, in one run.
//!
//! The switch and syscall benchmarks boot the hosted kernel on one CPU for each
//! measurement (`kernel_core::boot::run`) with a program that does the work `iters` times
//! and time the whole boot; compiling and booting take about a millisecond, which
//! criterion's iteration counts (millions) make negligible.
#![expect(
    missing_docs,
    reason = "criterion_main! generates an undocumented main"
)]

use std::hint::black_box;
use std::time::Instant;

use benches::kernel;

use criterion::{Criterion, criterion_group, criterion_main};
use hal_hosted::{HostedConfig, HostedHal};
use kernel_core::wasm::compile::CompileOptions;
use kernel_core::wasm::env::WASM2_FEATURES;
use kernel_core::wasm::runtime::{Engine, EngineConfig, Extern, Func, Module, Store, Val};

fn process_switch(c: &mut Criterion) {
    c.bench_function("process switch (two processes yielding)", |b| {
        b.iter_custom(kernel::process_switches);
    });
}

fn syscall_round_trip(c: &mut Criterion) {
    c.bench_function("syscall round trip (getpid)", |b| {
        b.iter_custom(kernel::getpid_calls);
    });
}

fn ipc_round_trip(c: &mut Criterion) {
    for size in [64, 16 * 1024] {
        c.bench_function(&format!("IPC round trip ({size} bytes each way)"), |b| {
            b.iter_custom(|iters| kernel::ipc_round_trips(iters, size));
        });
    }
}

fn spawn_to_exit(c: &mut Criterion) {
    c.bench_function("spawn to exit of a small program", |b| {
        b.iter_custom(kernel::spawns_to_exit);
    });
}

/// Loop-heavy code: a counting loop, a memory loop, and calls (function entries).
const LOOPS: &str = r#"
(module
  (memory 1)
  (func (export "count") (param i64) (result i64)
    (local $i i64)
    (loop $l
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br_if $l (i64.lt_u (local.get $i) (local.get 0))))
    (local.get $i))
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
    (local.get $acc))
  (func $fib (export "fib") (param i32) (result i32)
    (if (result i32) (i32.lt_u (local.get 0) (i32.const 2))
      (then (local.get 0))
      (else (i32.add (call $fib (i32.sub (local.get 0) (i32.const 1)))
                     (call $fib (i32.sub (local.get 0) (i32.const 2))))))))
"#;

/// An instance of [`LOOPS`] compiled with or without epoch checks, and its exports.
struct Loops {
    store: Store<'static, HostedHal>,
    count: Func,
    sum: Func,
    fib: Func,
}

impl Loops {
    fn new(epoch_checks: bool) -> Self {
        let wasm = wat::parse_str(LOOPS).expect("the program parses");
        let engine: &'static Engine<HostedHal> = Box::leak(Box::new(Engine::new(
            HostedHal::new(HostedConfig::default()),
            EngineConfig {
                compile: CompileOptions {
                    epoch_checks,
                    ..CompileOptions::default()
                },
                ..EngineConfig::default()
            },
        )));
        let module = Module::new(engine, &wasm, WASM2_FEATURES).expect("compiles");
        let mut store = Store::new(engine);
        let instance = store.instantiate(&module, &[]).expect("instantiates");
        let export = |store: &Store<'_, HostedHal>, name: &str| match store.export(instance, name) {
            Some(Extern::Func(func)) => func,
            _ => panic!("no export {name}"),
        };
        let (count, sum, fib) = (
            export(&store, "count"),
            export(&store, "sum"),
            export(&store, "fib"),
        );
        Self {
            store,
            count,
            sum,
            fib,
        }
    }
}

/// One call of a [`Loops`] export.
type Workload = fn(&mut Loops);

/// The epoch checks' cost measured in pairs: each round runs the same work with and
/// without checks back to back, so that a machine whose load changes during the run
/// affects both alike; prints the median ratio of 200 rounds per workload.
fn epoch_checks_paired(_: &mut Criterion) {
    let mut with = Loops::new(true);
    let mut without = Loops::new(false);
    let workloads: [(&str, Workload); 3] = [
        ("count 1M", |loops| {
            loops
                .store
                .call(loops.count, &[Val::I64(black_box(1_000_000))])
                .unwrap();
        }),
        ("memory loop 100k", |loops| {
            loops
                .store
                .call(loops.sum, &[Val::I32(black_box(100_000))])
                .unwrap();
        }),
        ("fib(25)", |loops| {
            loops
                .store
                .call(loops.fib, &[Val::I32(black_box(25))])
                .unwrap();
        }),
    ];
    for (name, work) in workloads {
        let mut ratios: Vec<f64> = (0..200)
            .map(|_| {
                let start = Instant::now();
                work(&mut with);
                let checked = start.elapsed();
                let start = Instant::now();
                work(&mut without);
                let unchecked = start.elapsed();
                checked.as_secs_f64() / unchecked.as_secs_f64()
            })
            .collect();
        ratios.sort_by(f64::total_cmp);
        println!(
            "epoch checks, paired: {name}: with / without = {:.3} (median of 200 rounds)",
            ratios[ratios.len() / 2]
        );
    }
}

fn epoch_checks(c: &mut Criterion) {
    let mut group = c.benchmark_group("epoch checks");
    for (label, epoch_checks) in [("with", true), ("without", false)] {
        let Loops {
            mut store,
            count,
            sum,
            fib,
        } = Loops::new(epoch_checks);
        group.bench_function(format!("count 1M ({label})"), |b| {
            b.iter(|| {
                store
                    .call(count, &[Val::I64(black_box(1_000_000))])
                    .unwrap()
            });
        });
        group.bench_function(format!("memory loop 100k ({label})"), |b| {
            b.iter(|| store.call(sum, &[Val::I32(black_box(100_000))]).unwrap());
        });
        group.bench_function(format!("fib(25) ({label})"), |b| {
            b.iter(|| store.call(fib, &[Val::I32(black_box(25))]).unwrap());
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    epoch_checks_paired,
    epoch_checks,
    process_switch,
    syscall_round_trip,
    ipc_round_trip,
    spawn_to_exit
);
criterion_main!(benches);
