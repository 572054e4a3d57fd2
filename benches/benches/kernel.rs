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
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use hal_hosted::{HostedConfig, HostedHal};
use kernel_core::boot::image::{BootImage, BootRequest, Job, KernelOptions, Program, RunRequest};
use kernel_core::wasm::compile::CompileOptions;
use kernel_core::wasm::env::WASM2_FEATURES;
use kernel_core::wasm::runtime::{Engine, EngineConfig, Extern, Func, Module, Store, Val};

/// Boots the hosted kernel on one CPU with `job` and returns how long the boot took.
fn boot(job: Job) -> Duration {
    let image = BootImage {
        wasi: kernel_core::boot::image::WasiOptions::default(),
        options: KernelOptions {
            quiet: true,
            ..KernelOptions::default()
        },
        job,
    };
    let hal = HostedHal::new(HostedConfig {
        cpus: Some(1),
        boot_image: Some(image.encode()),
        ..HostedConfig::default()
    });
    let start = Instant::now();
    let (_, status) = kernel_core::boot::run(hal);
    let elapsed = start.elapsed();
    assert_eq!(status, 0, "the benchmark's boot succeeded");
    elapsed
}

/// A program that yields `count` times; `spawns` names a program it starts first.
fn yielder(count: u64, spawns: Option<&str>) -> Vec<u8> {
    let spawn = spawns.map_or(String::new(), |name| {
        format!(
            "(drop (call $spawn (i32.const 0) (i32.const {}) (i32.const -1)))",
            name.len()
        )
    });
    let name = spawns.unwrap_or("");
    wat::parse_str(format!(
        r#"(module
          (import "k23" "yield" (func $yield))
          (import "k23" "spawn" (func $spawn (param i32 i32 i32) (result i32)))
          (memory 1)
          (data (i32.const 0) "{name}")
          (func (export "_start") (local $i i64)
            {spawn}
            (loop $l
              (call $yield)
              (local.set $i (i64.add (local.get $i) (i64.const 1)))
              (br_if $l (i64.lt_u (local.get $i) (i64.const {count}))))))"#
    ))
    .expect("the yielder parses")
}

fn process_switch(c: &mut Criterion) {
    c.bench_function("process switch (two processes yielding)", |b| {
        b.iter_custom(|iters| {
            // Each process yields `iters` times: 2 * iters switches from one to the other.
            let programs = vec![
                Program {
                    name: "ping".into(),
                    module: yielder(iters, Some("pong")),
                },
                Program {
                    name: "pong".into(),
                    module: yielder(iters, None),
                },
            ];
            boot(Job::Boot(BootRequest { programs })) / 2
        });
    });
}

fn syscall_round_trip(c: &mut Criterion) {
    c.bench_function("syscall round trip (getpid)", |b| {
        b.iter_custom(|iters| {
            let module = wat::parse_str(format!(
                r#"(module
                  (import "k23" "getpid" (func $getpid (result i32)))
                  (func (export "_start") (local $i i64)
                    (loop $l
                      (drop (call $getpid))
                      (local.set $i (i64.add (local.get $i) (i64.const 1)))
                      (br_if $l (i64.lt_u (local.get $i) (i64.const {iters}))))))"#
            ))
            .expect("the program parses");
            boot(Job::Run(RunRequest {
                path: "getpid.wat".into(),
                module,
                invoke: None,
                args: Vec::new(),
            }))
        });
    });
}

/// `ping`: sends `iters` messages of `size` bytes to `pong` and waits for each back.
fn ping(iters: u64, size: u32) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module
          (import "k23" "channel" (func $channel (param i32) (result i32)))
          (import "k23" "send" (func $send (param i32 i32 i32) (result i32)))
          (import "k23" "recv" (func $recv (param i32 i32 i32) (result i32)))
          (import "k23" "spawn_handles" (func $spawn (param i32 i32 i32 i32) (result i32)))
          (memory 1)
          (data (i32.const 0) "pong")
          (func (export "_start") (local $i i64)
            (drop (call $channel (i32.const 0x100)))
            (drop (call $channel (i32.const 0x108)))
            (i32.store (i32.const 0x110) (i32.load (i32.const 0x104)))
            (i32.store (i32.const 0x114) (i32.load (i32.const 0x108)))
            (drop (call $spawn (i32.const 0) (i32.const 4) (i32.const 0x110) (i32.const 2)))
            (loop $l
              (drop (call $send (i32.load (i32.const 0x100)) (i32.const 0x1000) (i32.const {size})))
              (drop (call $recv (i32.load (i32.const 0x10c)) (i32.const 0x1000) (i32.const 0x8000)))
              (local.set $i (i64.add (local.get $i) (i64.const 1)))
              (br_if $l (i64.lt_u (local.get $i) (i64.const {iters}))))))"#
    ))
    .expect("ping parses")
}

/// `pong`: sends every message it receives on handle 0 back on handle 1, until closed.
const PONG: &str = r#"(module
  (import "k23" "send" (func $send (param i32 i32 i32) (result i32)))
  (import "k23" "recv" (func $recv (param i32 i32 i32) (result i32)))
  (memory 1)
  (func (export "_start") (local $n i32)
    (loop $l
      (local.set $n (call $recv (i32.const 0) (i32.const 0x1000) (i32.const 0x8000)))
      (if (i32.ge_s (local.get $n) (i32.const 0))
        (then
          (drop (call $send (i32.const 1) (i32.const 0x1000) (local.get $n)))
          (br $l))))))"#;

fn ipc_round_trip(c: &mut Criterion) {
    for size in [64, 16 * 1024] {
        c.bench_function(&format!("IPC round trip ({size} bytes each way)"), |b| {
            b.iter_custom(|iters| {
                let programs = vec![
                    Program {
                        name: "ping".into(),
                        module: ping(iters, size),
                    },
                    Program {
                        name: "pong".into(),
                        module: wat::parse_str(PONG).expect("pong parses"),
                    },
                ];
                boot(Job::Boot(BootRequest { programs }))
            });
        });
    }
}

fn spawn_to_exit(c: &mut Criterion) {
    c.bench_function("spawn to exit of a small program", |b| {
        b.iter_custom(|iters| {
            // The parent learns that the child ended when the child's send end, dropped
            // with the child, closes the channel.
            let parent = wat::parse_str(format!(
                r#"(module
                  (import "k23" "channel" (func $channel (param i32) (result i32)))
                  (import "k23" "recv" (func $recv (param i32 i32 i32) (result i32)))
                  (import "k23" "spawn" (func $spawn (param i32 i32 i32) (result i32)))
                  (import "k23" "close" (func $close (param i32) (result i32)))
                  (memory 1)
                  (data (i32.const 0) "child")
                  (func (export "_start") (local $i i64)
                    (loop $l
                      (drop (call $channel (i32.const 0x100)))
                      (drop (call $spawn (i32.const 0) (i32.const 5) (i32.load (i32.const 0x100))))
                      (drop (call $recv (i32.load (i32.const 0x104)) (i32.const 0) (i32.const 0)))
                      (drop (call $close (i32.load (i32.const 0x104))))
                      (local.set $i (i64.add (local.get $i) (i64.const 1)))
                      (br_if $l (i64.lt_u (local.get $i) (i64.const {iters}))))))"#
            ))
            .expect("the parent parses");
            let programs = vec![
                Program {
                    name: "parent".into(),
                    module: parent,
                },
                Program {
                    name: "child".into(),
                    module: wat::parse_str(r#"(module (func (export "_start")))"#)
                        .expect("the child parses"),
                },
            ];
            boot(Job::Boot(BootRequest { programs }))
        });
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
                compile: CompileOptions { epoch_checks },
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
