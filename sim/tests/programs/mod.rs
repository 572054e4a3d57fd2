//! Boot programs for the kernel tests, hosted (`tests/boot.rs`) and under QEMU
//! (`tests/qemu.rs`): WebAssembly text using syscall ABI v0, written into a scratch
//! directory, and a runner for `sim boot` that splits its output.
//!
//! Long loops take a count, because QEMU's emulation runs them 20 to 40 times slower than
//! the host: each side picks a count that takes a second or two.

#![allow(
    dead_code,
    reason = "each test binary uses its own part of these helpers"
)]

use std::path::{Path, PathBuf};
use std::process::Output;

/// The syscall imports every program declares (unused ones cost nothing).
const IMPORTS: &str = r#"
  (import "k23" "print" (func $print (param i32 i32) (result i32)))
  (import "k23" "exit" (func $exit (param i32)))
  (import "k23" "yield" (func $yield))
  (import "k23" "sleep" (func $sleep (param i64)))
  (import "k23" "now" (func $now (result i64)))
  (import "k23" "getpid" (func $getpid (result i32)))
  (import "k23" "spawn" (func $spawn (param i32 i32 i32) (result i32)))
"#;

/// A fresh directory for one test's files.
pub fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sim-boot-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes program `name` (`name.wat` in `dir`) and returns its path.
pub fn write(dir: &Path, name: &str, wat: &str) -> PathBuf {
    let path = dir.join(format!("{name}.wat"));
    std::fs::write(&path, wat).unwrap();
    path
}

/// A program that spawns each of `children` in order (exit 1 if a spawn fails), then
/// returns.
pub fn init(children: &[&str]) -> String {
    let names: String = children.concat();
    let mut calls = String::new();
    let mut offset = 0;
    for child in children {
        calls.push_str(&format!(
            "(if (i32.lt_s (call $spawn (i32.const {offset}) (i32.const {len}) (i32.const -1)) (i32.const 1))
               (then (call $exit (i32.const 1))))\n",
            len = child.len()
        ));
        offset += child.len();
    }
    format!(
        r#"(module {IMPORTS}
  (memory 1)
  (data (i32.const 0) "{names}")
  (func (export "_start") {calls}))"#
    )
}

/// Prints `tick 0` .. `tick 9`, sleeping 20 ms before each; exits 3 when a sleep returns
/// more than `late_ms` late.
pub fn ticker(late_ms: u64) -> String {
    let late_ns = late_ms * 1_000_000;
    format!(
        r#"(module {IMPORTS}
  (memory 1)
  (data (i32.const 0) "tick 0\n")
  (func (export "_start") (local $i i32) (local $t i64)
    (loop $l
      (local.set $t (call $now))
      (call $sleep (i64.const 20000000))
      (if (i64.gt_s (i64.sub (i64.sub (call $now) (local.get $t)) (i64.const 20000000))
                    (i64.const {late_ns}))
        (then (call $exit (i32.const 3))))
      (i32.store8 (i32.const 5) (i32.add (i32.const 48) (local.get $i)))
      (drop (call $print (i32.const 0) (i32.const 7)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 10))))))"#
    )
}

/// Counts to `iterations` in a loop with no syscall, then prints `spinner done`.
pub fn spinner(iterations: u64) -> String {
    format!(
        r#"(module {IMPORTS}
  (memory 1)
  (data (i32.const 0) "spinner done\n")
  (func (export "_start") (local $i i64)
    (loop $l
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br_if $l (i64.lt_u (local.get $i) (i64.const {iterations}))))
    (drop (call $print (i32.const 0) (i32.const 13)))))"#
    )
}

/// `(loop (br 0))`, forever.
pub const FOREVER: &str = r#"(module (func (export "_start") (loop (br 0))))"#;

/// Traps with `unreachable` at once.
pub const TRAPPER: &str = r#"(module (func (export "_start") unreachable))"#;

/// Sleeps 50 ms, prints `worker done` and exits with code 0.
pub fn worker() -> String {
    format!(
        r#"(module {IMPORTS}
  (memory 1)
  (data (i32.const 0) "worker done\n")
  (func (export "_start")
    (call $sleep (i64.const 50000000))
    (drop (call $print (i32.const 0) (i32.const 12)))))"#
    )
}

/// Spawns the next `chain` until its pid reaches `last`: `last` processes, one after the
/// other.
pub fn chain(last: u32) -> String {
    format!(
        r#"(module {IMPORTS}
  (memory 1)
  (data (i32.const 0) "chain")
  (func (export "_start")
    (if (i32.lt_u (call $getpid) (i32.const {last}))
      (then (if (i32.lt_s (call $spawn (i32.const 0) (i32.const 5) (i32.const -1)) (i32.const 1))
        (then (call $exit (i32.const 1))))))))"#
    )
}

/// Spawns `count` `child` processes in a loop.
pub fn fanout(count: u32) -> String {
    format!(
        r#"(module {IMPORTS}
  (memory 1)
  (data (i32.const 0) "child")
  (func (export "_start") (local $i i32)
    (loop $l
      (if (i32.lt_s (call $spawn (i32.const 0) (i32.const 5) (i32.const -1)) (i32.const 1))
        (then (call $exit (i32.const 1))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const {count}))))))"#
    )
}

/// Yields, sleeps 10 ms, and exits with code 42.
pub fn child() -> String {
    format!(
        r#"(module {IMPORTS}
  (func (export "_start")
    (call $yield)
    (call $sleep (i64.const 10000000))
    (call $exit (i32.const 42))))"#
    )
}

/// Recurses without end, growing its memory by a page at every level: the kernel must
/// end it with `call stack exhausted` (the memory manager runs at every depth).
pub const DEEP_GROW: &str = r#"(module
  (memory 1)
  (func $down (param i32) (result i32)
    (drop (memory.grow (i32.const 1)))
    (i32.add (call $down (i32.add (local.get 0) (i32.const 1))) (i32.const 1)))
  (func (export "_start") (drop (call $down (i32.const 0)))))"#;

/// Every syscall misused: bad pointers and lengths give -2, a handle gives -1, an unknown
/// program -4. Exits with the number of the first check that failed, 0 when all passed.
pub fn misuse() -> String {
    format!(
        r#"(module {IMPORTS}
  (memory 1)
  (data (i32.const 0) "nosuchprogram")
  (func $check (param $got i32) (param $want i32) (param $code i32)
    (if (i32.ne (local.get $got) (local.get $want)) (then (call $exit (local.get $code)))))
  (func (export "_start")
    (call $check (call $print (i32.const 65530) (i32.const 100)) (i32.const -2) (i32.const 10))
    (call $check (call $print (i32.const -1) (i32.const 2)) (i32.const -2) (i32.const 11))
    (call $check (call $print (i32.const 0) (i32.const -5)) (i32.const -2) (i32.const 12))
    (call $check (call $spawn (i32.const 65535) (i32.const 2) (i32.const -1)) (i32.const -2) (i32.const 13))
    (call $check (call $spawn (i32.const 0) (i32.const 13) (i32.const -1)) (i32.const -4) (i32.const 14))
    (call $check (call $spawn (i32.const 0) (i32.const 13) (i32.const 0)) (i32.const -1) (i32.const 15))
    (call $check (call $print (i32.const 0) (i32.const 0)) (i32.const 0) (i32.const 16))
    (call $exit (i32.const 0))))"#
    )
}

/// What a `sim boot` run printed.
#[derive(Debug)]
pub struct BootOutput {
    /// The exit status.
    pub status: Option<i32>,
    /// Standard output, by line.
    pub out: Vec<String>,
    /// The exit lines on standard error, `name status` per process, sorted by pid.
    pub exits: Vec<(u32, String, String)>,
    /// Standard error, whole.
    pub err: String,
}

impl BootOutput {
    /// Reads `sim boot`'s output.
    pub fn parse(output: &Output) -> Self {
        let out = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        let err = String::from_utf8_lossy(&output.stderr).into_owned();
        let mut exits: Vec<(u32, String, String)> = err
            .lines()
            .filter_map(|line| {
                let rest = line.strip_prefix("exit pid=")?;
                let (pid, rest) = rest.split_once(" name=")?;
                let (name, status) = rest.split_once(" status=")?;
                Some((pid.parse().ok()?, name.to_owned(), status.to_owned()))
            })
            .collect();
        exits.sort();
        Self {
            status: output.status.code(),
            out,
            exits,
            err,
        }
    }

    /// The status of the only process named `name`.
    pub fn status_of(&self, name: &str) -> &str {
        let matching: Vec<_> = self.exits.iter().filter(|exit| exit.1 == name).collect();
        assert_eq!(matching.len(), 1, "one exit line for {name}: {self:#?}");
        &matching[0].2
    }
}

/// Checks the rhythm scenario: every tick before either spinner is done, every process
/// ended with 0.
pub fn check_rhythm(output: &BootOutput) {
    assert_eq!(output.status, Some(0), "{output:#?}");
    let ticks: Vec<usize> = (0..10)
        .map(|index| {
            output
                .out
                .iter()
                .position(|line| *line == format!("tick {index}"))
                .unwrap_or_else(|| panic!("tick {index} printed: {output:#?}"))
        })
        .collect();
    let spinners: Vec<usize> = output
        .out
        .iter()
        .enumerate()
        .filter(|(_, line)| *line == "spinner done")
        .map(|(index, _)| index)
        .collect();
    assert_eq!(spinners.len(), 2, "{output:#?}");
    assert!(
        ticks.iter().max() < spinners.iter().min(),
        "the ticker finished before the spinners: {output:#?}"
    );
    assert_eq!(
        output.status_of("ticker"),
        "0",
        "the ticker kept its rhythm"
    );
    assert_eq!(output.exits.len(), 4, "{output:#?}");
    assert!(output.exits.iter().all(|exit| exit.2 == "0"), "{output:#?}");
}

/// Writes the rhythm scenario's programs: init, ticker, spinner (with `iterations`).
pub fn rhythm_programs(dir: &Path, iterations: u64, late_ms: u64) -> Vec<PathBuf> {
    vec![
        write(dir, "init", &init(&["ticker", "spinner", "spinner"])),
        write(dir, "ticker", &ticker(late_ms)),
        write(dir, "spinner", &spinner(iterations)),
    ]
}

/// Writes the isolation scenario: a process looping forever, one trapping, one working.
pub fn isolation_programs(dir: &Path) -> Vec<PathBuf> {
    vec![
        write(dir, "init", &init(&["forever", "trapper", "worker"])),
        write(dir, "forever", FOREVER),
        write(dir, "trapper", TRAPPER),
        write(dir, "worker", &worker()),
    ]
}

/// Checks the isolation scenario (run with a CPU limit): the worker finished while the
/// loop ran, the trap ended only its process, the loop ended with `interrupted`.
pub fn check_isolation(output: &BootOutput) {
    assert_eq!(output.status, Some(0), "{output:#?}");
    assert_eq!(output.out, ["worker done"], "{output:#?}");
    assert_eq!(output.status_of("init"), "0");
    assert_eq!(output.status_of("worker"), "0");
    assert_eq!(output.status_of("trapper"), "trap: unreachable");
    assert_eq!(output.status_of("forever"), "trap: interrupted");
}

/// Checks `count` chained processes: pids 1 to `count`, all 0.
pub fn check_chain(output: &BootOutput, count: u32) {
    assert_eq!(output.status, Some(0), "{}", output.err);
    let pids: Vec<u32> = output.exits.iter().map(|exit| exit.0).collect();
    assert_eq!(pids, (1..=count).collect::<Vec<_>>(), "{}", output.err);
    assert!(
        output
            .exits
            .iter()
            .all(|exit| exit.1 == "chain" && exit.2 == "0")
    );
}

/// Checks a fan-out of `count` children: each with its own exit line and status 42.
pub fn check_fanout(output: &BootOutput, count: usize) {
    assert_eq!(output.status, Some(0), "{}", output.err);
    assert_eq!(output.exits.len(), count + 1, "{}", output.err);
    assert_eq!(output.status_of("fanout"), "0");
    let children: Vec<_> = output
        .exits
        .iter()
        .filter(|exit| exit.1 == "child")
        .collect();
    assert_eq!(children.len(), count);
    assert!(children.iter().all(|exit| exit.2 == "42"), "{}", output.err);
}
