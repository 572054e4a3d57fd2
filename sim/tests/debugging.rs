//! The debugging tools of `sim`: `sim compile` for both ISAs, the perf map, the GDB JIT
//! interface, escaped and truncated trap backtraces, and the kernel's logs filtered by
//! `SIM_LOG` hosted and by `sim qemu --log` in the RISC-V kernel.
//!
//! The GDB test needs `gdb` (`scripts/test.sh` installs it), the QEMU tests
//! `qemu-system-riscv64`, as `sim/tests/qemu.rs` does.

mod programs;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn sim(args: &[&str]) -> Output {
    sim_with_env(args, &[])
}

fn sim_with_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sim"));
    command.args(args).env_remove("SIM_LOG");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("sim runs")
}

/// Writes `contents` to a fresh file named `name` in a per-test directory.
fn fixture(test: &str, name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sim-debugging-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A module with a name section: `div` traps on a zero divisor, `outer` calls it.
const DIV: &str = r#"(module $demo
  (import "k23" "getpid" (func $getpid (result i32)))
  (func $div (export "div") (param i32 i32) (result i32)
    local.get 0 local.get 1 i32.div_s)
  (func $outer (export "outer") (param i32) (result i32)
    local.get 0 i32.const 0 call $div)
  (func (export "anonymous") (result i32) i32.const 7))
"#;

#[test]
fn compile_prints_ir_and_x86_64_code() {
    let path = fixture("x86", "div.wat", DIV);
    let output = sim(&["compile", path.to_str().unwrap(), "--isa", "x86_64"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let out = text(&output.stdout);
    // Every defined function, none of the imported ones.
    assert!(out.contains(";; function 1 div (x86_64, "), "{out}");
    assert!(out.contains(";; function 2 outer (x86_64, "), "{out}");
    assert!(out.contains(";; function 3 (x86_64, "), "{out}");
    assert!(!out.contains(";; function 0 "), "{out}");
    assert!(out.contains(";; Cranelift IR\nfunction u0:1("), "{out}");
    assert!(out.contains("sdiv v"), "{out}");
    assert!(out.contains(";; x86_64 machine code"), "{out}");
    assert!(out.contains("push rbp"), "{out}");
    assert!(out.contains("idiv ecx") || out.contains("idiv"), "{out}");
    assert!(out.contains("; wasm 0x"), "{out}");
    assert!(
        out.contains("ud2") && out.contains("trap: integer divide by zero"),
        "{out}"
    );
    assert!(
        out.contains("call function 1 div (patched when linked)"),
        "{out}"
    );
}

#[test]
fn compile_prints_riscv64_code_from_this_host() {
    let path = fixture("riscv", "div.wat", DIV);
    let output = sim(&[
        "compile",
        path.to_str().unwrap(),
        "--isa",
        "riscv64",
        "--asm",
        "--func",
        "outer",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let out = text(&output.stdout);
    assert!(out.starts_with(";; function 2 outer (riscv64, "), "{out}");
    assert!(!out.contains("Cranelift IR"), "--asm alone: {out}");
    assert!(out.contains(";; riscv64 machine code"), "{out}");
    assert!(out.contains("addi sp, sp, -0x10"), "{out}");
    assert!(out.contains("sd ra, 8(sp)"), "{out}");
    assert!(out.contains("auipc ra, 0"), "{out}");
    assert!(
        out.contains("call function 1 div (patched when linked)"),
        "{out}"
    );
    assert!(out.contains("\n") && out.contains(" ret"), "{out}");
    // The IR alone, by index.
    let output = sim(&[
        "compile",
        path.to_str().unwrap(),
        "--isa",
        "riscv64",
        "--ir",
        "--func",
        "1",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let out = text(&output.stdout);
    assert!(
        out.contains("sdiv v") && !out.contains("machine code"),
        "{out}"
    );
}

#[test]
fn compile_shows_vector_instructions_capstone_cannot_decode_as_words() {
    let path = fixture(
        "vector",
        "simd.wat",
        "(module (func (param v128 v128) (result v128) local.get 0 local.get 1 i32x4.add))",
    );
    let output = sim(&[
        "compile",
        path.to_str().unwrap(),
        "--isa",
        "riscv64",
        "--asm",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let out = text(&output.stdout);
    // `vsetivli` and the vector loads, stores and add: four-byte words, each on its own
    // line, with the scalar code around them decoded.
    let words: Vec<&str> = out.lines().filter(|l| l.contains(".word 0x")).collect();
    assert!(words.len() >= 4, "{out}");
    assert!(words.iter().all(|l| l.contains("(not known to Capstone)")));
    assert!(
        words
            .iter()
            .all(|l| l.split_whitespace().nth(1).unwrap().len() == 8),
        "{out}"
    );
    assert!(out.contains(" ret"), "{out}");
    let x86 = sim(&[
        "compile",
        path.to_str().unwrap(),
        "--isa",
        "x86_64",
        "--asm",
    ]);
    let out = text(&x86.stdout);
    assert!(out.contains("paddd xmm"), "{out}");
    assert!(!out.contains("not known to Capstone"), "{out}");
}

#[test]
fn compile_refuses_what_has_no_code() {
    let path = fixture("refuse", "div.wat", DIV);
    let file = path.to_str().unwrap();
    for (func, message) in [
        ("0", "error: function 0 is imported"),
        ("9", "error: no function 9: the module has 4 functions"),
        ("nosuch", "error: the module has no function named `nosuch`"),
    ] {
        let output = sim(&["compile", file, "--func", func]);
        assert_eq!(output.status.code(), Some(2), "{func}");
        assert!(
            text(&output.stderr).starts_with(message),
            "{}",
            text(&output.stderr)
        );
    }
    let output = sim(&["compile", file, "--isa", "arm"]);
    assert_eq!(output.status.code(), Some(2));
    let bad = fixture("refuse", "bad.wat", "(module (func (result i32)))");
    assert_eq!(
        sim(&["compile", bad.to_str().unwrap()]).status.code(),
        Some(3)
    );
}

/// Runs `sim run --perf-map ARGS...` and returns its output with the perf map it wrote.
fn run_with_perf_map(args: &[&str]) -> (Output, String) {
    let child = Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(["run", "--perf-map"])
        .args(args)
        .env_remove("SIM_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sim runs");
    let map = PathBuf::from(format!("/tmp/perf-{}.map", child.id()));
    let output = child.wait_with_output().unwrap();
    let lines = std::fs::read_to_string(&map).expect("the perf map was written");
    let _ = std::fs::remove_file(&map);
    (output, lines)
}

#[test]
fn the_perf_map_names_every_function_with_its_code_range() {
    let path = fixture("perf", "div.wat", DIV);
    let (output, map) = run_with_perf_map(&[path.to_str().unwrap(), "--invoke", "outer", "5"]);
    assert_eq!(output.status.code(), Some(1), "the division traps");
    let lines: Vec<&str> = map.lines().collect();
    assert_eq!(lines.len(), 4, "{map}");
    let mut previous_end = 0;
    let mut names = Vec::new();
    for line in &lines {
        let mut parts = line.splitn(3, ' ');
        let start = u64::from_str_radix(parts.next().unwrap(), 16).expect("hex start");
        let size = u64::from_str_radix(parts.next().unwrap(), 16).expect("hex size");
        assert!(
            start >= previous_end && size > 0 && start % 16 == 0,
            "{map}"
        );
        previous_end = start + size;
        names.push(parts.next().unwrap().to_owned());
    }
    assert_eq!(
        names,
        [
            "demo!div",
            "demo!outer",
            "demo!wasm-function[3]",
            "demo!<trampolines>"
        ]
    );
}

/// A module whose names try to forge backtrace lines and drive the terminal.
fn hostile_names() -> String {
    let long = "L".repeat(5000);
    format!(
        r#"(module $"evil\n  9: forged!frame (func 9)"
  (func $"inner\1b[31mred\n  1: forged (func 1)" unreachable)
  (func $"middle\u{{202e}}\r\00" call 0)
  (func ${long} call 1)
  (func (export "run") call 2))
"#
    )
}

#[test]
fn backtrace_names_are_escaped_and_cannot_forge_lines() {
    let path = fixture("escape", "evil.wat", &hostile_names());
    let file = path.to_str().unwrap();
    let (output, map) = run_with_perf_map(&[file, "--invoke", "run"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(!stderr.contains('\u{1b}') && !stderr.contains('\r') && !stderr.contains('\0'));
    assert!(!stderr.contains('\u{202e}'), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 6, "one line per frame: {stderr}");
    assert_eq!(lines[0], "trap: unreachable");
    assert_eq!(lines[1], "wasm backtrace:");
    let module = r"evil\n  9: forged!frame (func 9)";
    assert_eq!(
        lines[2],
        format!(
            r"  0: {module}!inner\u{{1b}}[31mred\n  1: forged (func 1) (func 0) at offset 0x23"
        )
    );
    assert!(lines[3].starts_with(&format!(r"  1: {module}!middle\u{{202e}}\r\0 (func 1)")));
    let cut = format!(
        "  2: {module}!{}...[4800 more chars] (func 2)",
        "L".repeat(200)
    );
    assert!(lines[4].starts_with(&cut), "{}", lines[4]);
    assert!(lines[5].starts_with(&format!("  3: {module}!<func 3> (func 3)")));
    // The perf map too: one line per function and one for the trampolines, escaped the
    // same way.
    assert_eq!(map.lines().count(), 5, "{map}");
    assert!(!map.contains('\u{1b}') && !map.contains('\r'));
    assert!(
        map.contains(r"!inner\u{1b}[31mred\n  1: forged (func 1)"),
        "{map}"
    );
}

/// `rec(n)` recurses `n` times, then traps: `n + 1` frames of `rec` and one of `run`.
const DEEP: &str = r#"(module $deep
  (func $rec (param i32)
    local.get 0
    if
      local.get 0 i32.const 1 i32.sub call $rec
    else
      unreachable
    end)
  (func (export "run") (param i32) local.get 0 call $rec))
"#;

#[test]
fn backtraces_past_the_frame_limit_end_with_a_marker() {
    let path = fixture("deep", "deep.wat", DEEP);
    let file = path.to_str().unwrap();
    let output = sim(&["run", file, "--invoke", "run", "99"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    // The trap line, the header, 64 frames and the marker for the other 37.
    assert_eq!(lines.len(), 2 + 64 + 1, "{stderr}");
    assert!(lines[2].starts_with("  0: deep!rec (func 0)"));
    assert!(lines[65].starts_with("  63: deep!rec (func 0)"));
    assert_eq!(
        lines[66],
        "  ... 37 more frames (the backtrace keeps the innermost 64)"
    );
    // At the limit, no marker.
    let output = sim(&["run", file, "--invoke", "run", "62"]);
    let stderr = text(&output.stderr);
    assert_eq!(stderr.lines().count(), 2 + 64, "{stderr}");
    assert!(
        stderr
            .lines()
            .last()
            .unwrap()
            .starts_with("  63: deep!<func 1> (func 1)")
    );
}

#[test]
fn gdb_breaks_on_a_webassembly_function_by_name() {
    let path = fixture("gdb", "div.wat", DIV);
    let output = Command::new("gdb")
        .args(["-batch", "-nx"])
        .args(["-ex", "set breakpoint pending on"])
        .args([
            "-ex",
            "handle SIGILL SIGSEGV SIGFPE SIGBUS SIG34 SIG35 SIG36 nostop noprint pass",
        ])
        .args(["-ex", "break outer"])
        .args(["-ex", "run"])
        .args(["-ex", "bt 1"])
        .args(["-ex", "kill"])
        .arg("--args")
        .arg(env!("CARGO_BIN_EXE_sim"))
        .args(["run", path.to_str().unwrap(), "--invoke", "outer", "5"])
        .env_remove("SIM_LOG")
        .output()
        .expect("gdb is installed (scripts/test.sh installs it)");
    let out = text(&output.stdout);
    assert!(
        out.lines()
            .any(|line| line.starts_with("#0 ") && line.contains(" in outer ()")),
        "GDB stopped in the JIT-compiled `outer`: {out}{}",
        text(&output.stderr)
    );
}

/// Lines of `sim`'s standard error that are logs (not the job's own output).
fn log_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|line| line.contains(" kernel_core::") || line.contains(" kernel_core:"))
        .collect()
}

/// A process that yields and sleeps, so that the scheduler has something to say.
const YIELDER: &str = r#"(module
  (import "k23" "yield" (func $yield))
  (import "k23" "sleep" (func $sleep (param i64)))
  (func (export "_start") call $yield (call $sleep (i64.const 1000)) call $yield))
"#;

#[test]
fn sim_log_filters_the_kernels_events() {
    let path = fixture("log", "yielder.wat", YIELDER);
    let file = path.to_str().unwrap();
    let sched = sim_with_env(
        &["boot", file, "--cpus", "1"],
        &[("SIM_LOG", "kernel_core::sched=trace")],
    );
    assert!(sched.status.success());
    let stderr = text(&sched.stderr);
    let logs = log_lines(&stderr);
    assert!(
        logs.iter()
            .any(|l| l.contains("kernel_core::sched: switch to process")),
        "{stderr}"
    );
    assert!(
        logs.iter().any(|l| l.contains(r#"request="sleep""#)),
        "{stderr}"
    );
    assert!(
        logs.iter().all(|l| l.contains("kernel_core::sched")),
        "{stderr}"
    );

    let off = sim_with_env(&["boot", file, "--cpus", "1"], &[("SIM_LOG", "off")]);
    assert!(off.status.success());
    assert_eq!(text(&off.stderr), "exit pid=1 name=yielder status=0\n");

    let everything = sim_with_env(
        &["boot", file, "--cpus", "1"],
        &[("SIM_LOG", "kernel_core=trace")],
    );
    let stderr = text(&everything.stderr);
    for what in [
        "kernel_core::boot: booting",
        "kernel_core::wasm::compile: compiled and published",
        "kernel_core::process: spawned pid=1 name=yielder",
        r#"syscall{name="yield" pid=1}"#,
        "kernel_core::process: exited pid=1 name=yielder status=0",
    ] {
        assert!(stderr.contains(what), "{what}: {stderr}");
    }
}

#[test]
fn spans_follow_processes_across_blocking_and_cpus() {
    // The demo blocks in `recv`, sleeps, yields and is preempted, on two CPUs.
    let output = sim_with_env(
        &["boot", "--cpus", "2"],
        &[("SIM_LOG", "kernel_core=trace")],
    );
    assert!(output.status.success());
    let stderr = text(&output.stderr);
    let scheduler: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("switch to process") || l.contains("process switched back"))
        .collect();
    assert!(scheduler.len() > 20, "{stderr}");
    // The scheduler runs outside every process: no span left entered by a process (a
    // syscall that blocked) shows around its events.
    for line in &scheduler {
        assert!(
            !line.contains("process{") && !line.contains("syscall{"),
            "{line}"
        );
    }
    // A syscall that blocked is back in its spans when it returns, on whichever CPU.
    let returned: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("syscall returned"))
        .collect();
    assert!(
        returned
            .iter()
            .any(|l| l.contains(r#"syscall{name="recv""#)),
        "{stderr}"
    );
    for line in &returned {
        assert!(
            line.contains("process{pid=") && line.contains("}:syscall{name="),
            "{line}"
        );
    }
}

/// The kernel image, built once.
fn kernel() -> &'static str {
    programs::riscv_kernel()
}

#[test]
fn the_log_boot_argument_filters_the_same_way_in_qemu() {
    let path = fixture("qemu-log", "yielder.wat", YIELDER);
    let file = path.to_str().unwrap();
    let qemu = |filter: &str| {
        sim(&[
            "qemu",
            "--kernel",
            kernel(),
            "--timeout",
            "600",
            "--log",
            filter,
            "boot",
            file,
        ])
    };
    let sched = qemu("kernel_core::sched=trace");
    assert!(sched.status.success(), "{}", text(&sched.stderr));
    let stderr = text(&sched.stderr);
    let logs = log_lines(&stderr);
    assert!(
        logs.iter()
            .any(|l| l.contains("kernel_core::sched: switch to process")),
        "{stderr}"
    );
    assert!(
        logs.iter().any(|l| l.contains(r#"request="sleep""#)),
        "{stderr}"
    );
    assert!(
        logs.iter().all(|l| l.contains("kernel_core::sched")),
        "{stderr}"
    );

    let off = qemu("off");
    assert!(off.status.success());
    assert_eq!(text(&off.stderr), "exit pid=1 name=yielder status=0\n");

    let process = qemu("warn,kernel_core::process=info");
    let stderr = text(&process.stderr);
    assert!(
        stderr.contains("kernel_core::process: exited pid=1 name=yielder status=0"),
        "{stderr}"
    );
    assert!(!stderr.contains("kernel_core::sched"), "{stderr}");

    let bad = sim(&[
        "qemu",
        "--kernel",
        kernel(),
        "--log",
        "[span]=trace",
        "boot",
        file,
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("no span or field filters"),
        "{}",
        text(&bad.stderr)
    );
}

#[test]
fn qemu_waits_for_a_debugger_with_gdb() {
    use std::io::{Read as _, Write as _};
    let path = fixture("qemu-gdb", "div.wat", DIV);
    let port = 20_000 + (std::process::id() % 20_000) as u16;
    let mut child = Command::new(env!("CARGO_BIN_EXE_sim"))
        .args([
            "qemu",
            "--kernel",
            kernel(),
            &format!("--gdb={port}"),
            "run",
        ])
        .args([path.to_str().unwrap(), "--invoke", "outer", "5"])
        .env_remove("SIM_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sim runs");
    // QEMU is stopped (`-S`): it cannot have run the module and ended by itself.
    let mut stream = None;
    for _ in 0..100 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        if let Ok(connected) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            stream = Some(connected);
            break;
        }
    }
    let mut stream = stream.expect("QEMU listens for a debugger");
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert!(
        child.try_wait().unwrap().is_none(),
        "QEMU ran without a debugger"
    );
    // The GDB remote protocol's `continue`: the kernel runs the job to its end.
    stream.write_all(b"+$c#63").unwrap();
    let mut ack = [0u8; 1];
    stream.read_exact(&mut ack).unwrap();
    assert_eq!(&ack, b"+");
    let output = child.wait_with_output().unwrap();
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("waiting for a debugger on tcp::{port}")),
        "{stderr}"
    );
    assert!(stderr.contains("trap: integer divide by zero"), "{stderr}");
    let bad = sim(&["qemu", "--gdb=port", "run", path.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(2));
}
