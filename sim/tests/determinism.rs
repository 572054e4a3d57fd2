//! Deterministic mode (`sim boot --seed`), its trace (`--trace`, `trace-hash:`) and record
//! and replay (`--record`, `--replay`), hosted and under QEMU.
//!
//! The workload has a process of every kind: one that sleeps (`ticker`), one preempted
//! while it spins (`spinner`), one that traps, and two that talk over a channel
//! (`consumer` makes it and spawns `producer` with the send end); the built-in demo adds
//! `spawn_handles` and two-way messages. The QEMU tests boot `qemu-system-riscv64` and
//! build the kernel first, as `tests/qemu.rs` does.

mod programs;

use std::path::{Path, PathBuf};
use std::process::Output;

use programs::{consumer, init, producer, scenarios, scratch, sim, spinner, ticker, write};

/// The workload's programs in `dir`, init first.
fn workload(dir: &Path) -> Vec<PathBuf> {
    vec![
        write(
            dir,
            "init",
            &init(&["ticker", "spinner", "trapper", "consumer"]),
        ),
        write(dir, "ticker", &ticker(10_000)),
        write(dir, "spinner", &spinner(3_000_000)),
        write(dir, "trapper", programs::TRAPPER),
        write(dir, "consumer", &consumer(40)),
        write(dir, "producer", &producer(40)),
    ]
}

/// One boot's outputs: standard output and error, exactly, the status and the files.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Run {
    status: Option<i32>,
    stdout: String,
    stderr: String,
    trace: Option<String>,
    recording: Option<String>,
}

impl Run {
    /// The `trace-hash:` line's hash.
    fn hash(&self) -> &str {
        self.stderr
            .lines()
            .find_map(|line| line.strip_prefix("trace-hash: "))
            .unwrap_or_else(|| panic!("no trace-hash line: {self:#?}"))
    }

    /// The status of process `name`, from its exit line.
    fn status_of(&self, name: &str) -> &str {
        let suffix = format!(" name={name} status=");
        self.stderr
            .lines()
            .find_map(|line| Some(line.split_once(&suffix)?.1))
            .unwrap_or_else(|| panic!("no exit line for {name}: {self:#?}"))
    }
}

/// Runs `sim` with `args`, then `--trace` and `--record` into `dir` under `tag`.
fn boot(sim_args: &[String], dir: &Path, tag: &str) -> Run {
    let trace = dir.join(format!("{tag}.trace"));
    let recording = dir.join(format!("{tag}.recording"));
    let _ = std::fs::remove_file(&trace);
    let _ = std::fs::remove_file(&recording);
    let mut args: Vec<String> = sim_args.to_vec();
    let at = args.iter().position(|arg| arg == "boot").expect("a boot") + 1;
    for (flag, path) in [("--trace", &trace), ("--record", &recording)] {
        args.insert(at, path.display().to_string());
        args.insert(at, flag.to_owned());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output: Output = sim(&args);
    Run {
        status: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        trace: std::fs::read_to_string(&trace).ok(),
        recording: std::fs::read_to_string(&recording).ok(),
    }
}

/// `boot [EXTRA...] PROGRAMS...` as arguments.
fn boot_args(extra: &[&str], programs: &[PathBuf]) -> Vec<String> {
    let mut args = vec!["boot".to_owned()];
    args.extend(extra.iter().map(|arg| (*arg).to_owned()));
    args.extend(programs.iter().map(|path| path.display().to_string()));
    args
}

/// FNV-1a 64, written again here so that the test checks the kernel's hash.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A run of the workload went as it must: every process ended as it should, the trace
/// file hashes to the printed hash, and it holds the events every seed makes (whether
/// `recv` blocks depends on the seed).
fn check_workload(run: &Run) {
    assert_eq!(run.status, Some(0), "{run:#?}");
    assert_eq!(run.status_of("init"), "0", "{run:#?}");
    assert_eq!(run.status_of("ticker"), "0", "{run:#?}");
    assert_eq!(run.status_of("spinner"), "0", "{run:#?}");
    assert!(run.status_of("trapper").starts_with("trap: "), "{run:#?}");
    assert_eq!(run.status_of("consumer"), "0", "{run:#?}");
    assert_eq!(run.status_of("producer"), "0", "{run:#?}");
    let trace = run.trace.as_deref().expect("a trace file");
    assert_eq!(format!("{:016x}", fnv1a64(trace.as_bytes())), run.hash());
    for event in [
        " preempted\n",
        " sleep until ",
        " woken\n",
        " syscall channel(",
        " syscall send(",
        " syscall recv(",
        " status=trap: ",
    ] {
        assert!(trace.contains(event), "no `{event}` in the trace:\n{trace}");
    }
}

/// The same seed twice: byte-identical output, exit lines, trace and hash.
fn same_seed_twice(sim_args: impl Fn(&[&str]) -> Vec<String>, dir: &Path, cpus: &str) {
    let args = sim_args(&["--seed", "12345", "--cpus", cpus]);
    let first = boot(&args, dir, "first");
    check_workload(&first);
    let second = boot(&args, dir, "second");
    assert_eq!(
        first, second,
        "two runs with seed 12345 on {cpus} CPUs differ"
    );
}

#[test]
fn the_same_seed_repeats_a_run_on_1_and_4_cpus() {
    let dir = scratch("determinism-same-seed");
    let programs = workload(&dir);
    for cpus in ["1", "4"] {
        same_seed_twice(|extra| boot_args(extra, &programs), &dir, cpus);
    }
}

#[test]
fn the_demo_repeats_with_the_same_seed() {
    let dir = scratch("determinism-demo");
    for cpus in ["1", "4"] {
        let args = boot_args(&["--seed", "99", "--cpus", cpus], &[]);
        let first = boot(&args, &dir, "first");
        assert_eq!(first.status, Some(0), "{first:#?}");
        assert!(first.trace.as_deref().unwrap().contains("spawn_handles("));
        assert_eq!(first, boot(&args, &dir, "second"));
    }
}

#[test]
fn different_seeds_give_different_interleavings() {
    let dir = scratch("determinism-seeds");
    let programs = workload(&dir);
    let mut hashes = std::collections::BTreeSet::new();
    let mut blocked = false;
    for seed in ["1", "2", "3", "4"] {
        let run = boot(
            &boot_args(&["--seed", seed, "--cpus", "4"], &programs),
            &dir,
            "seed",
        );
        check_workload(&run);
        blocked |= run.trace.as_deref().unwrap().contains(" wait: blocked\n");
        hashes.insert(run.hash().to_owned());
    }
    assert!(hashes.len() >= 2, "four seeds gave one trace hash");
    assert!(blocked, "no seed made a process block on a channel");
}

#[test]
fn a_recording_replays_the_same_run_and_refuses_other_programs() {
    let dir = scratch("determinism-replay");
    let programs = workload(&dir);
    // No seed: the kernel draws one from its clock and records it.
    let recorded = boot(&boot_args(&["--cpus", "4"], &programs), &dir, "recorded");
    check_workload(&recorded);
    let recording = dir.join("kept.recording");
    std::fs::write(&recording, recorded.recording.as_deref().unwrap()).unwrap();
    let replay = boot_args(&["--replay", recording.to_str().unwrap()], &programs);
    let replayed = boot(&replay, &dir, "replayed");
    assert_eq!(replayed.stdout, recorded.stdout);
    assert_eq!(replayed.stderr, recorded.stderr);
    assert_eq!(replayed.trace, recorded.trace);

    // A changed program file is refused, naming it.
    let mut changed = programs.clone();
    changed[2] = write(&dir, "spinner", &spinner(3_000_001));
    let refused = boot(
        &boot_args(&["--replay", recording.to_str().unwrap()], &changed),
        &dir,
        "refused",
    );
    assert_eq!(refused.status, Some(2), "{refused:#?}");
    assert!(
        refused
            .stderr
            .contains("other program files (`spinner` differs)"),
        "{refused:#?}"
    );
    assert!(refused.stdout.is_empty(), "{refused:#?}");

    // A damaged recording is refused with the line at fault.
    let damaged = dir.join("damaged.recording");
    std::fs::write(&damaged, "k23-recording 1\nseed x\ncpus 1\n").unwrap();
    let output = sim(&[
        "boot",
        "--replay",
        damaged.to_str().unwrap(),
        programs[0].to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("line 2: bad seed"));
    // And --trace alone is a usage error.
    let output = sim(&[
        "boot",
        "--trace",
        "/dev/null",
        programs[0].to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn the_kernel_scenarios_pass_in_deterministic_mode() {
    let dir = scratch("determinism-scenarios");
    let boot = |cpus: u32, extra: &[&str], programs: &[PathBuf]| {
        let mut all = vec!["--seed", "2024"];
        all.extend_from_slice(extra);
        programs::hosted_boot(cpus, &all, programs)
    };
    // A woken ticker waits for slices of up to 20 ms of logical time, and the seed may
    // pick the spinners first several times: generous lateness, the order still checked.
    scenarios::rhythm(&boot, &dir, 2, 100_000_000, 1000);
    scenarios::isolation(&boot, &dir, 2);
    scenarios::many_processes(&boot, &dir, 4);
    scenarios::messages_and_spawns(&boot, &dir, 4);
    scenarios::syscall_errors(&boot, &dir);
    scenarios::limits(&boot, &dir);
    scenarios::deadlock(&boot, &dir, 3);
}

/// The kernel image, built once.
fn kernel() -> &'static str {
    programs::riscv_kernel()
}

/// `qemu --kernel ... boot [EXTRA...] PROGRAMS...` as arguments.
fn qemu_boot_args(extra: &[&str], programs: &[PathBuf]) -> Vec<String> {
    let mut args: Vec<String> = ["qemu", "--kernel", kernel(), "--timeout", "900"]
        .iter()
        .map(|arg| (*arg).to_owned())
        .collect();
    args.extend(boot_args(extra, programs));
    args
}

#[test]
fn qemu_repeats_a_seed_on_1_and_4_cpus_as_the_hosted_kernel_does() {
    let dir = scratch("determinism-qemu-same-seed");
    let programs = workload(&dir);
    for cpus in ["1", "4"] {
        same_seed_twice(|extra| qemu_boot_args(extra, &programs), &dir, cpus);
        // The logical clock counts WebAssembly positions: the hosted kernel on x86-64
        // makes the very same run.
        let extra = ["--seed", "12345", "--cpus", cpus];
        let hosted = boot(&boot_args(&extra, &programs), &dir, "hosted");
        let qemu = boot(&qemu_boot_args(&extra, &programs), &dir, "qemu");
        assert_eq!(hosted, qemu, "hosted and QEMU runs differ on {cpus} CPUs");
    }
}

#[test]
fn recordings_replay_across_hals() {
    let dir = scratch("determinism-qemu-replay");
    let programs = workload(&dir);
    // Recorded hosted, replayed under QEMU.
    let hosted = boot(&boot_args(&["--cpus", "4"], &programs), &dir, "hosted");
    check_workload(&hosted);
    let recording = dir.join("hosted.kept");
    std::fs::write(&recording, hosted.recording.as_deref().unwrap()).unwrap();
    let replay = ["--replay", recording.to_str().unwrap()];
    let in_qemu = boot(&qemu_boot_args(&replay, &programs), &dir, "in-qemu");
    assert_eq!(in_qemu.hash(), hosted.hash(), "{in_qemu:#?}");
    assert_eq!(in_qemu.stdout, hosted.stdout);
    assert_eq!(in_qemu.stderr, hosted.stderr);
    assert_eq!(in_qemu.trace, hosted.trace);

    // Recorded under QEMU (the seed from its clock), replayed hosted.
    let qemu = boot(&qemu_boot_args(&["--cpus", "2"], &programs), &dir, "qemu");
    check_workload(&qemu);
    let recording = dir.join("qemu.kept");
    std::fs::write(&recording, qemu.recording.as_deref().unwrap()).unwrap();
    let replay = ["--replay", recording.to_str().unwrap()];
    let hosted = boot(&boot_args(&replay, &programs), &dir, "hosted-replay");
    assert_eq!(hosted.hash(), qemu.hash(), "{hosted:#?}");
    assert_eq!(hosted.stdout, qemu.stdout);
    assert_eq!(hosted.stderr, qemu.stderr);
    assert_eq!(hosted.trace, qemu.trace);
}

/// A WASI program's random bytes, wall-clock reading and console input come from outside
/// the kernel: a recording keeps them, and its replay on the other HAL prints the same.
#[test]
fn wasi_inputs_replay_across_hals() {
    let dir = scratch("determinism-wasi-inputs");
    let program = dir.join("inputs.wat");
    std::fs::write(&program, include_str!("programs/wasi_inputs.wat")).unwrap();
    let programs = [program];
    let hosted = boot(&boot_args(&["--seed", "5"], &programs), &dir, "hosted");
    assert_eq!(hosted.status, Some(0), "{hosted:#?}");
    assert_eq!(hosted.status_of("inputs"), "0", "{hosted:#?}");
    let recording = hosted.recording.as_deref().unwrap();
    assert!(recording.contains("input random "), "{recording}");
    assert!(recording.contains("input clock "), "{recording}");
    let kept = dir.join("hosted.kept");
    std::fs::write(&kept, recording).unwrap();
    let replay = ["--replay", kept.to_str().unwrap()];
    let in_qemu = boot(&qemu_boot_args(&replay, &programs), &dir, "in-qemu");
    assert_eq!(in_qemu.stdout, hosted.stdout, "{in_qemu:#?}");
    assert_eq!(in_qemu.hash(), hosted.hash(), "{in_qemu:#?}");

    let qemu = boot(&qemu_boot_args(&["--seed", "9"], &programs), &dir, "qemu");
    assert_eq!(qemu.status_of("inputs"), "0", "{qemu:#?}");
    // Other random bytes than the hosted run's (16 hex digits, then the clock).
    assert_ne!(qemu.stdout[..16], hosted.stdout[..16], "{qemu:#?}");
    let kept = dir.join("qemu.kept");
    std::fs::write(&kept, qemu.recording.as_deref().unwrap()).unwrap();
    let replay = ["--replay", kept.to_str().unwrap()];
    let replayed = boot(&boot_args(&replay, &programs), &dir, "hosted-replay");
    assert_eq!(replayed.stdout, qemu.stdout, "{replayed:#?}");
    assert_eq!(replayed.hash(), qemu.hash(), "{replayed:#?}");
}
