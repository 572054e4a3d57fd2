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
use std::process::{Command, Output};
use std::sync::OnceLock;

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

/// The channel syscalls, for the IPC programs.
const IPC_IMPORTS: &str = r#"
  (import "k23" "channel" (func $channel (param i32) (result i32)))
  (import "k23" "send" (func $send (param i32 i32 i32) (result i32)))
  (import "k23" "recv" (func $recv (param i32 i32 i32) (result i32)))
  (import "k23" "close" (func $close (param i32) (result i32)))
  (import "k23" "spawn_handles" (func $spawn_handles (param i32 i32 i32 i32) (result i32)))
"#;

/// The length of message `i` of the stream: 64 KiB, empty, or up to 4000 bytes.
const MESSAGE_LEN: &str = r#"
  (func $len (param $i i32) (result i32)
    (if (result i32) (i32.eq (i32.rem_u (local.get $i) (i32.const 10)) (i32.const 0))
      (then (i32.const 65536))
      (else (if (result i32) (i32.eq (i32.rem_u (local.get $i) (i32.const 10)) (i32.const 1))
        (then (i32.const 0))
        (else (i32.add (i32.rem_u (i32.mul (local.get $i) (i32.const 1237)) (i32.const 4000))
                       (i32.const 1)))))))
"#;

/// Receives `count` messages from `producer` over a channel it spawned it with, checking
/// every length and byte, until the channel reports closed. Exits 0 when all arrived in
/// order; 20 when the moved send handle still worked, 21-24 for a lost, reordered or
/// damaged message.
pub fn consumer(count: u32) -> String {
    format!(
        r#"(module {IMPORTS} {IPC_IMPORTS}
  (memory 2)
  (data (i32.const 0) "producer")
  {MESSAGE_LEN}
  (func (export "_start") (local $i i32) (local $n i32) (local $j i32)
    (if (i32.ne (call $channel (i32.const 0x100)) (i32.const 0)) (then (call $exit (i32.const 19))))
    (if (i32.lt_s (call $spawn (i32.const 0) (i32.const 8) (i32.load (i32.const 0x100))) (i32.const 1))
      (then (call $exit (i32.const 18))))
    ;; The send handle moved to the producer: it is not ours any more.
    (if (i32.ne (call $send (i32.load (i32.const 0x100)) (i32.const 0) (i32.const 1)) (i32.const -1))
      (then (call $exit (i32.const 20))))
    (block $closed
      (loop $next
        (local.set $n (call $recv (i32.load (i32.const 0x104)) (i32.const 0x10000) (i32.const 65536)))
        (br_if $closed (i32.eq (local.get $n) (i32.const -3)))
        (if (i32.lt_s (local.get $n) (i32.const 0)) (then (call $exit (i32.const 21))))
        (if (i32.ne (local.get $n) (call $len (local.get $i))) (then (call $exit (i32.const 22))))
        (local.set $j (i32.const 0))
        (block $checked
          (loop $byte
            (br_if $checked (i32.ge_u (local.get $j) (local.get $n)))
            (if (i32.ne (i32.load8_u (i32.add (i32.const 0x10000) (local.get $j)))
                        (i32.and (i32.add (i32.mul (local.get $i) (i32.const 7)) (local.get $j)) (i32.const 255)))
              (then (call $exit (i32.const 23))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $byte)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (if (i32.ne (local.get $i) (i32.const {count})) (then (call $exit (i32.const 24))))))"#
    )
}

/// Sends `count` messages of varying lengths on handle 0, then exits at once: the last
/// ones are still queued when it is gone.
pub fn producer(count: u32) -> String {
    format!(
        r#"(module {IMPORTS} {IPC_IMPORTS}
  (memory 2)
  {MESSAGE_LEN}
  (func (export "_start") (local $i i32) (local $n i32) (local $j i32)
    (loop $next
      (local.set $n (call $len (local.get $i)))
      (local.set $j (i32.const 0))
      (block $filled
        (loop $byte
          (br_if $filled (i32.ge_u (local.get $j) (local.get $n)))
          (i32.store8 (i32.add (i32.const 0x10000) (local.get $j))
            (i32.add (i32.mul (local.get $i) (i32.const 7)) (local.get $j)))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br $byte)))
      (if (i32.ne (call $send (i32.const 0) (i32.const 0x10000) (local.get $n)) (i32.const 0))
        (then (call $exit (i32.const 30))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $i) (i32.const {count}))))))"#
    )
}

/// A 100-byte message and a 10-byte buffer: `recv` says -6 and keeps it for the next one.
/// Exits with the number of the first failed check, 0 when all passed.
pub fn small_buffer() -> String {
    format!(
        r#"(module {IMPORTS} {IPC_IMPORTS}
  (memory 1)
  (func $check (param $got i32) (param $want i32) (param $code i32)
    (if (i32.ne (local.get $got) (local.get $want)) (then (call $exit (local.get $code)))))
  (func (export "_start")
    (call $check (call $channel (i32.const 0x100)) (i32.const 0) (i32.const 1))
    (i32.store8 (i32.const 0x263) (i32.const 77))
    (call $check (call $send (i32.load (i32.const 0x100)) (i32.const 0x200) (i32.const 100)) (i32.const 0) (i32.const 2))
    (call $check (call $recv (i32.load (i32.const 0x104)) (i32.const 0x1000) (i32.const 10)) (i32.const -6) (i32.const 3))
    (call $check (call $recv (i32.load (i32.const 0x104)) (i32.const 0x1000) (i32.const 99)) (i32.const -6) (i32.const 4))
    (call $check (call $recv (i32.load (i32.const 0x104)) (i32.const 0x1000) (i32.const 100)) (i32.const 100) (i32.const 5))
    (call $check (i32.load8_u (i32.const 0x1063)) (i32.const 77) (i32.const 6))))"#
    )
}

/// Every channel syscall misused, one check a line: a bad handle, a handle of the wrong
/// kind, a bad pointer, a bad or too large length, a closed channel. Exits with the number
/// of the first failed check, 0 when all passed.
pub fn channel_misuse() -> String {
    format!(
        r#"(module {IMPORTS} {IPC_IMPORTS}
  (memory 1)
  (data (i32.const 0) "worker")
  (func $check (param $got i32) (param $want i32) (param $code i32)
    (if (i32.ne (local.get $got) (local.get $want)) (then (call $exit (local.get $code)))))
  (func (export "_start") (local $s i32) (local $r i32)
    (call $check (call $channel (i32.const 0x100)) (i32.const 0) (i32.const 1))
    (local.set $s (i32.load (i32.const 0x100)))
    (local.set $r (i32.load (i32.const 0x104)))
    ;; Handles nobody gave us.
    (call $check (call $send (i32.const 42) (i32.const 0) (i32.const 1)) (i32.const -1) (i32.const 2))
    (call $check (call $recv (i32.const 42) (i32.const 0) (i32.const 1)) (i32.const -1) (i32.const 3))
    (call $check (call $close (i32.const 42)) (i32.const -1) (i32.const 4))
    (call $check (call $send (i32.const -7) (i32.const 0) (i32.const 1)) (i32.const -1) (i32.const 5))
    ;; The wrong kind of end.
    (call $check (call $send (local.get $r) (i32.const 0) (i32.const 1)) (i32.const -1) (i32.const 6))
    (call $check (call $recv (local.get $s) (i32.const 0) (i32.const 1)) (i32.const -1) (i32.const 7))
    ;; Pointers and lengths outside memory, and too long a message.
    (call $check (call $send (local.get $s) (i32.const 65530) (i32.const 100)) (i32.const -2) (i32.const 8))
    (call $check (call $send (local.get $s) (i32.const 0) (i32.const -1)) (i32.const -2) (i32.const 9))
    (call $check (call $send (local.get $s) (i32.const 0) (i32.const 65537)) (i32.const -6) (i32.const 10))
    (call $check (call $recv (local.get $r) (i32.const 65530) (i32.const 100)) (i32.const -2) (i32.const 11))
    (call $check (call $recv (local.get $r) (i32.const 0) (i32.const -1)) (i32.const -2) (i32.const 12))
    (call $check (call $channel (i32.const 65535)) (i32.const -2) (i32.const 13))
    (call $check (call $spawn (i32.const 0) (i32.const 6) (i32.const 42)) (i32.const -1) (i32.const 14))
    (call $check (call $spawn_handles (i32.const 0) (i32.const 6) (i32.const 65534) (i32.const 1)) (i32.const -2) (i32.const 15))
    (i32.store (i32.const 0x200) (local.get $s))
    (i32.store (i32.const 0x204) (local.get $s))
    (call $check (call $spawn_handles (i32.const 0) (i32.const 6) (i32.const 0x200) (i32.const 2)) (i32.const -1) (i32.const 16))
    ;; A failed spawn leaves the handle with us.
    (call $check (call $spawn (i32.const 0) (i32.const 5) (local.get $s)) (i32.const -4) (i32.const 17))
    (call $check (call $send (local.get $s) (i32.const 0) (i32.const 1)) (i32.const 0) (i32.const 18))
    ;; Closed: the queued message is still delivered, then -3.
    (call $check (call $close (local.get $s)) (i32.const 0) (i32.const 19))
    (call $check (call $close (local.get $s)) (i32.const -1) (i32.const 20))
    (call $check (call $recv (local.get $r) (i32.const 0) (i32.const 10)) (i32.const 1) (i32.const 21))
    (call $check (call $recv (local.get $r) (i32.const 0) (i32.const 10)) (i32.const -3) (i32.const 22))
    (call $check (call $channel (i32.const 0x100)) (i32.const 0) (i32.const 23))
    (call $check (call $close (i32.load (i32.const 0x104))) (i32.const 0) (i32.const 24))
    (call $check (call $send (i32.load (i32.const 0x100)) (i32.const 0) (i32.const 1)) (i32.const -3) (i32.const 25))))"#
    )
}

/// Opens channels until one fails: exits 0 when exactly `expected` succeeded and the next
/// said -5.
pub fn handle_hog(expected: u32) -> String {
    format!(
        r#"(module {IMPORTS} {IPC_IMPORTS}
  (memory 1)
  (func (export "_start") (local $opened i32) (local $r i32)
    (block $full
      (loop $next
        (local.set $r (call $channel (i32.const 0x100)))
        (br_if $full (i32.ne (local.get $r) (i32.const 0)))
        (local.set $opened (i32.add (local.get $opened) (i32.const 1)))
        (br $next)))
    (if (i32.ne (local.get $r) (i32.const -5)) (then (call $exit (i32.const 1))))
    (if (i32.ne (local.get $opened) (i32.const {expected})) (then (call $exit (i32.const 2))))))"#
    )
}

/// Spawns `idle` until a spawn fails: exits 0 when exactly `expected` succeeded and the
/// next said -5.
pub fn process_hog(expected: u32) -> String {
    format!(
        r#"(module {IMPORTS}
  (memory 1)
  (data (i32.const 0) "idle")
  (func (export "_start") (local $started i32) (local $r i32)
    (block $full
      (loop $next
        (local.set $r (call $spawn (i32.const 0) (i32.const 4) (i32.const -1)))
        (br_if $full (i32.lt_s (local.get $r) (i32.const 0)))
        (local.set $started (i32.add (local.get $started) (i32.const 1)))
        (br $next)))
    (if (i32.ne (local.get $r) (i32.const -5)) (then (call $exit (i32.const 1))))
    (if (i32.ne (local.get $started) (i32.const {expected})) (then (call $exit (i32.const 2))))))"#
    )
}

/// Sleeps 100 ms.
pub fn idle() -> String {
    format!(r#"(module {IMPORTS} (func (export "_start") (call $sleep (i64.const 100000000))))"#)
}

/// Grows its one-page memory to `pages` pages, then once more: exits 0 when the first
/// growth worked and the second returned -1.
pub fn memory_hog(pages: u32) -> String {
    let grow = pages - 1;
    format!(
        r#"(module {IMPORTS}
  (memory 1)
  (func (export "_start")
    (if (i32.ne (memory.grow (i32.const {grow})) (i32.const 1)) (then (call $exit (i32.const 1))))
    (if (i32.ne (memory.grow (i32.const 1)) (i32.const -1)) (then (call $exit (i32.const 2))))))"#
    )
}

/// Spawns `count` `exiter`s, keeps their pids and exits 0 when all are distinct (9 when
/// not, 1 when a spawn failed).
pub fn many_spawns(count: u32) -> String {
    format!(
        r#"(module {IMPORTS}
  (memory 1)
  (data (i32.const 0) "exiter")
  (func (export "_start") (local $i i32) (local $j i32) (local $pid i32)
    (loop $spawn
      (local.set $pid (call $spawn (i32.const 0) (i32.const 6) (i32.const -1)))
      (if (i32.lt_s (local.get $pid) (i32.const 1)) (then (call $exit (i32.const 1))))
      (i32.store (i32.add (i32.const 0x1000) (i32.shl (local.get $i) (i32.const 2))) (local.get $pid))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $spawn (i32.lt_u (local.get $i) (i32.const {count}))))
    (local.set $i (i32.const 0))
    (loop $outer
      (local.set $j (i32.add (local.get $i) (i32.const 1)))
      (block $inner_done
        (loop $inner
          (br_if $inner_done (i32.ge_u (local.get $j) (i32.const {count})))
          (if (i32.eq (i32.load (i32.add (i32.const 0x1000) (i32.shl (local.get $i) (i32.const 2))))
                      (i32.load (i32.add (i32.const 0x1000) (i32.shl (local.get $j) (i32.const 2)))))
            (then (call $exit (i32.const 9))))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br $inner)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $outer (i32.lt_u (local.get $i) (i32.const {count}))))))"#
    )
}

/// Exits with its pid modulo 256.
pub fn exiter() -> String {
    format!(
        r#"(module {IMPORTS}
  (func (export "_start") (call $exit (i32.and (call $getpid) (i32.const 255)))))"#
    )
}

/// Checks the exit lines of [`many_spawns`]: `count` exiters, each with its pid modulo
/// 256 as its status.
pub fn check_many_spawns(output: &BootOutput, count: usize) {
    assert_eq!(output.status, Some(0), "{}", output.err);
    assert_eq!(output.status_of("spawner"), "0", "{}", output.err);
    let exiters: Vec<_> = output
        .exits
        .iter()
        .filter(|exit| exit.1 == "exiter")
        .collect();
    assert_eq!(exiters.len(), count, "{}", output.err);
    for (pid, _, status) in exiters {
        assert_eq!(*status, (pid % 256).to_string(), "{}", output.err);
    }
}

/// Spawns the next `trapper` and traps, until pid `last`; the processes whose pid is a
/// multiple of 1000 print it and sleep 200 ms first (so that a test can measure the
/// simulator meanwhile).
pub fn trap_chain(last: u32) -> String {
    format!(
        r#"(module {IMPORTS}
  (memory 1)
  (data (i32.const 0) "trapper")
  (func $digits (param $n i32) (result i32)
    ;; Writes $n in decimal and a newline at 0x100; returns the length.
    (local $len i32) (local $m i32)
    (local.set $m (local.get $n))
    (loop $count
      (local.set $len (i32.add (local.get $len) (i32.const 1)))
      (local.set $m (i32.div_u (local.get $m) (i32.const 10)))
      (br_if $count (i32.ne (local.get $m) (i32.const 0))))
    (i32.store8 (i32.add (i32.const 0x100) (local.get $len)) (i32.const 10))
    (local.set $m (local.get $len))
    (loop $write
      (local.set $m (i32.sub (local.get $m) (i32.const 1)))
      (i32.store8 (i32.add (i32.const 0x100) (local.get $m))
        (i32.add (i32.const 48) (i32.rem_u (local.get $n) (i32.const 10))))
      (local.set $n (i32.div_u (local.get $n) (i32.const 10)))
      (br_if $write (i32.ne (local.get $m) (i32.const 0))))
    (i32.add (local.get $len) (i32.const 1)))
  (func (export "_start") (local $pid i32)
    (local.set $pid (call $getpid))
    (if (i32.eqz (i32.rem_u (local.get $pid) (i32.const 1000)))
      (then
        (drop (call $print (i32.const 0x100) (call $digits (local.get $pid))))
        (call $sleep (i64.const 200000000))))
    (if (i32.lt_u (local.get $pid) (i32.const {last}))
      (then (drop (call $spawn (i32.const 0) (i32.const 7) (i32.const -1)))))
    unreachable))"#
    )
}

/// Checks the demo system's output: the echo replies, each program's line, and every
/// process's end.
pub fn check_demo(output: &BootOutput) {
    assert_eq!(output.status, Some(0), "{output:#?}");
    for line in [
        "init: echo replied HELLO 1",
        "init: echo replied HELLO 3",
        "echo: the channel is closed, exiting",
        "ticker: tick 5",
        "spinner: looping forever",
        "faulty: dividing by zero",
    ] {
        assert!(
            output.out.iter().any(|out| out == line),
            "{line}: {output:#?}"
        );
    }
    assert_eq!(output.status_of("init"), "0");
    assert_eq!(output.status_of("echo"), "0");
    assert_eq!(output.status_of("ticker"), "0");
    assert_eq!(output.status_of("faulty"), "trap: integer divide by zero");
    assert_eq!(output.status_of("spinner"), "trap: interrupted");
}

/// Modules just past each compile limit, with the message each must be refused with.
pub fn over_limit_modules() -> Vec<(&'static str, String, &'static str)> {
    let blocks = "(block ".repeat(60) + &")".repeat(60);
    let many_blocks = format!(
        "(module (func (export \"_start\") {}))",
        blocks.repeat(65_537 / 60 + 1)
    );
    let nested = format!(
        "(module (func (export \"_start\") {}{}))",
        "(block ".repeat(1000),
        ")".repeat(1000)
    );
    let stack = format!(
        "(module (func (export \"_start\") {}{}))",
        "(i32.const 1) ".repeat(10_001),
        "(drop) ".repeat(10_001)
    );
    let br_table = format!(
        "(module (func (export \"_start\") (block (br_table {} 0 (i32.const 0)))))",
        "0 ".repeat(65_537)
    );
    let big = format!(
        "(module (func (export \"_start\") (local i32) {}))",
        "(local.set 0 (i32.const 1000000)) ".repeat(1_100_000 / 6)
    );
    vec![
        ("blocks", many_blocks, "more than 65536 blocks"),
        ("nesting", nested, "blocks nested deeper than 1000"),
        (
            "stack",
            stack,
            "more than 10000 values on the operand stack",
        ),
        ("br_table", br_table, "more than 65536 br_table targets"),
        ("size", big, "past the limit of 1048576"),
    ]
}

/// Spawns `huge`, a program over a compile limit: exits 0 when `spawn` says -5.
pub fn spawn_huge() -> String {
    format!(
        r#"(module {IMPORTS}
  (memory 1)
  (data (i32.const 0) "huge")
  (func (export "_start")
    (if (i32.ne (call $spawn (i32.const 0) (i32.const 4) (i32.const -1)) (i32.const -5))
      (then (call $exit (i32.const 1))))))"#
    )
}

/// Waits for a message on a channel whose only send end it holds itself: blocked forever.
pub fn self_deadlock() -> String {
    format!(
        r#"(module {IMPORTS} {IPC_IMPORTS}
  (memory 1)
  (data (i32.const 0) "sleeper")
  (func (export "_start")
    (drop (call $spawn (i32.const 0) (i32.const 7) (i32.const -1)))
    (drop (call $channel (i32.const 0x100)))
    (drop (call $recv (i32.load (i32.const 0x104)) (i32.const 0) (i32.const 10)))))"#
    )
}

/// Checks a boot that deadlocked: the blocked process is killed, the others ended.
pub fn check_deadlock(output: &BootOutput) {
    assert_eq!(output.status, Some(0), "{}", output.err);
    assert_eq!(
        output.status_of("stuck"),
        "killed: deadlock (blocked forever on a channel)",
        "{}",
        output.err
    );
    assert_eq!(output.status_of("sleeper"), "0", "{}", output.err);
}

/// Runs `sim` with `args` and waits for it.
pub fn sim(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(args)
        .output()
        .expect("sim runs")
}

/// The arguments of `boot --cpus N [EXTRA...] PROGRAMS...`.
pub fn boot_args(cpus: u32, extra: &[&str], programs: &[PathBuf]) -> Vec<String> {
    let mut args = vec!["boot".to_owned(), "--cpus".to_owned(), cpus.to_string()];
    args.extend(extra.iter().map(|arg| (*arg).to_owned()));
    args.extend(programs.iter().map(|path| path.display().to_string()));
    args
}

/// `sim boot --cpus N [EXTRA...] PROGRAMS...` on the hosted kernel.
pub fn hosted_boot(cpus: u32, extra: &[&str], programs: &[PathBuf]) -> BootOutput {
    let args = boot_args(cpus, extra, programs);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    BootOutput::parse(&sim(&args))
}

/// How a test boots the kernel with programs: `(cpus, extra arguments, programs)`, hosted
/// or under QEMU.
pub type Boot<'a> = &'a dyn Fn(u32, &[&str], &[PathBuf]) -> BootOutput;

/// Scenarios that run the same on both HALs: each writes its programs into `dir`, boots
/// them through `boot`, and checks the outcome.
pub mod scenarios {
    use std::path::Path;

    use super::*;

    /// A ticker keeps its rhythm beside two spinners of `spin` iterations.
    pub fn rhythm(boot: Boot<'_>, dir: &Path, cpus: u32, spin: u64, late_ms: u64) {
        check_rhythm(&boot(cpus, &[], &rhythm_programs(dir, spin, late_ms)));
    }

    /// A loop, a trap and a worker: each ends alone.
    pub fn isolation(boot: Boot<'_>, dir: &Path, cpus: u32) {
        check_isolation(&boot(
            cpus,
            &["--cpu-limit", "0.3"],
            &isolation_programs(dir),
        ));
    }

    /// 200 processes one after the other, then 50 at once.
    pub fn many_processes(boot: Boot<'_>, dir: &Path, cpus: u32) {
        check_chain(&boot(cpus, &[], &[write(dir, "chain", &chain(200))]), 200);
        let output = boot(
            cpus,
            &[],
            &[
                write(dir, "fanout", &fanout(50)),
                write(dir, "child", &child()),
            ],
        );
        check_fanout(&output, 50);
    }

    /// 1000 messages in order, then 200 spawns with distinct pids.
    pub fn messages_and_spawns(boot: Boot<'_>, dir: &Path, cpus: u32) {
        let output = boot(
            cpus,
            &[],
            &[
                write(dir, "consumer", &consumer(1000)),
                write(dir, "producer", &producer(1000)),
            ],
        );
        assert_eq!(output.status_of("producer"), "0", "{}", output.err);
        assert_eq!(output.status_of("consumer"), "0", "{}", output.err);
        let output = boot(
            cpus,
            &[],
            &[
                write(dir, "spawner", &many_spawns(200)),
                write(dir, "exiter", &exiter()),
            ],
        );
        check_many_spawns(&output, 200);
    }

    /// Every syscall misuse gets its error; a too-long message stays queued.
    pub fn syscall_errors(boot: Boot<'_>, dir: &Path) {
        let output = boot(
            1,
            &[],
            &[
                write(dir, "misuse", &channel_misuse()),
                write(dir, "worker", &worker()),
            ],
        );
        assert_eq!(output.status_of("misuse"), "0", "{}", output.err);
        let output = boot(1, &[], &[write(dir, "basic", &misuse())]);
        assert_eq!(output.status_of("basic"), "0", "{}", output.err);
        let output = boot(1, &[], &[write(dir, "small", &small_buffer())]);
        assert_eq!(output.status_of("small"), "0", "{}", output.err);
    }

    /// The handle, process and memory limits are reached and answered.
    pub fn limits(boot: Boot<'_>, dir: &Path) {
        // Handles: two channels fit in four handles, the third does not.
        let output = boot(
            1,
            &["--max-handles", "4"],
            &[write(dir, "handles", &handle_hog(2))],
        );
        assert_eq!(output.status_of("handles"), "0", "{}", output.err);
        // Processes: the spawner and two children.
        let output = boot(
            2,
            &["--max-processes", "3"],
            &[
                write(dir, "processes", &process_hog(2)),
                write(dir, "idle", &idle()),
            ],
        );
        assert_eq!(output.status_of("processes"), "0", "{}", output.err);
        // Memory: 16 pages is 1 MiB; a program starting with 17 does not start.
        let output = boot(
            1,
            &["--memory-limit", "1"],
            &[write(dir, "grower", &memory_hog(16))],
        );
        assert_eq!(output.status_of("grower"), "0", "{}", output.err);
        let big = write(
            dir,
            "big",
            "(module (memory 17) (func (export \"_start\")))",
        );
        let output = boot(1, &["--memory-limit", "1"], &[big]);
        assert_eq!(
            output.status_of("big"),
            "error: linear memory past the limit of 1048576 bytes"
        );
    }

    /// A process blocked forever ends the boot as a deadlock once the others ended.
    pub fn deadlock(boot: Boot<'_>, dir: &Path, cpus: u32) {
        let output = boot(
            cpus,
            &[],
            &[
                write(dir, "stuck", &self_deadlock()),
                write(dir, "sleeper", &worker()),
            ],
        );
        check_deadlock(&output);
    }
}

/// The RISC-V kernel image for `sim qemu --kernel`, built once per test binary (the
/// workspace's release build for `riscv64gc-unknown-none-elf`, in `$CARGO_TARGET_DIR`).
pub fn riscv_kernel() -> &'static str {
    static KERNEL: OnceLock<String> = OnceLock::new();
    KERNEL.get_or_init(|| {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let built = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "-p", "hal-riscv", "--release"])
            .args(["--target", "riscv64gc-unknown-none-elf"])
            .current_dir(workspace)
            .status()
            .expect("cargo runs");
        assert!(built.success(), "the kernel builds");
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| workspace.join("target"), |dir| workspace.join(dir));
        let kernel = target.join("riscv64gc-unknown-none-elf/release/hal-riscv");
        kernel.to_str().unwrap().to_owned()
    })
}
