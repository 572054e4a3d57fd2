//! The kernel's costs as whole boots of the hosted kernel: a process switch (two processes
//! yielding to each other), a syscall round trip (`getpid`), an IPC round trip (one message
//! each way over two channels) and a spawn to exit of a small program. Each function boots
//! the hosted kernel on one CPU with programs that do the work `iters` times and returns
//! the boot's wall time; compiling and booting take about a millisecond, which large
//! iteration counts make negligible.

use std::time::{Duration, Instant};

use hal_hosted::{HostedConfig, HostedHal};
use kernel_core::boot::image::{BootImage, BootRequest, Job, KernelOptions, Program, RunRequest};

/// Boots the hosted kernel on one CPU with `job` and returns how long the boot took.
///
/// # Panics
/// When the boot ends with a status other than 0 (a benchmark program failed).
#[must_use]
pub fn boot(job: Job) -> Duration {
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

/// Time of `2 * iters` process switches between two processes that yield to each other,
/// halved: the time of `iters` switches.
#[must_use]
pub fn process_switches(iters: u64) -> Duration {
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
    boot(Job::Boot(BootRequest {
        programs,
        determinism: None,
    })) / 2
}

/// Time of a boot running a program that calls `getpid` `iters` times.
#[must_use]
pub fn getpid_calls(iters: u64) -> Duration {
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

/// Time of `iters` IPC round trips of `size` bytes each way between two processes.
#[must_use]
pub fn ipc_round_trips(iters: u64, size: u32) -> Duration {
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
    boot(Job::Boot(BootRequest {
        programs,
        determinism: None,
    }))
}

/// Time of `iters` spawns of a program that exits at once, each waited for: the parent
/// learns that the child ended when the child's send end, dropped with the child, closes
/// the channel.
#[must_use]
pub fn spawns_to_exit(iters: u64) -> Duration {
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
    boot(Job::Boot(BootRequest {
        programs,
        determinism: None,
    }))
}
