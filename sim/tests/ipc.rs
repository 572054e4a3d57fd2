//! Channels, handles, spawning with handles, and the kernel's limits on the hosted HAL,
//! with one CPU and with several; the demo system; memory staying flat over thousands of
//! processes. `tests/qemu.rs` runs the same programs under QEMU.

mod programs;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use programs::{BootOutput, scratch, write};

fn sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(args)
        .output()
        .expect("sim runs")
}

/// `sim boot --cpus N [EXTRA...] PROGRAMS...`.
fn boot(cpus: u32, extra: &[&str], programs: &[PathBuf]) -> BootOutput {
    let cpus = cpus.to_string();
    let mut args = vec!["boot", "--cpus", &cpus];
    args.extend_from_slice(extra);
    let paths: Vec<String> = programs.iter().map(|p| p.display().to_string()).collect();
    args.extend(paths.iter().map(String::as_str));
    BootOutput::parse(&sim(&args))
}

#[test]
fn a_thousand_messages_arrive_in_order_even_after_the_sender_exits() {
    for cpus in [1, 2] {
        let dir = scratch(&format!("stream-{cpus}"));
        let output = boot(
            cpus,
            &[],
            &[
                write(&dir, "consumer", &programs::consumer(1000)),
                write(&dir, "producer", &programs::producer(1000)),
            ],
        );
        assert_eq!(output.status_of("producer"), "0", "{}", output.err);
        assert_eq!(output.status_of("consumer"), "0", "{}", output.err);
    }
}

#[test]
fn a_message_too_long_for_the_buffer_stays_queued() {
    let dir = scratch("small");
    let output = boot(1, &[], &[write(&dir, "small", &programs::small_buffer())]);
    assert_eq!(output.status_of("small"), "0", "{}", output.err);
}

#[test]
fn every_channel_misuse_gets_its_error() {
    let dir = scratch("channel-misuse");
    let output = boot(
        1,
        &[],
        &[
            write(&dir, "misuse", &programs::channel_misuse()),
            write(&dir, "worker", &programs::worker()),
        ],
    );
    assert_eq!(output.status_of("misuse"), "0", "{}", output.err);
    // The syscalls of the first ABI table too.
    let output = boot(1, &[], &[write(&dir, "basic", &programs::misuse())]);
    assert_eq!(output.status_of("basic"), "0", "{}", output.err);
}

#[test]
fn two_hundred_spawns_get_distinct_pids_and_their_own_statuses() {
    for cpus in [1, 2] {
        let dir = scratch(&format!("spawns-{cpus}"));
        let output = boot(
            cpus,
            &[],
            &[
                write(&dir, "spawner", &programs::many_spawns(200)),
                write(&dir, "exiter", &programs::exiter()),
            ],
        );
        programs::check_many_spawns(&output, 200);
    }
}

#[test]
fn every_limit_is_reached_and_answered() {
    let dir = scratch("limits");
    // Handles: two channels fit in four handles, the third does not.
    let output = boot(
        1,
        &["--max-handles", "4"],
        &[write(&dir, "handles", &programs::handle_hog(2))],
    );
    assert_eq!(output.status_of("handles"), "0", "{}", output.err);
    // Processes: the spawner and two children.
    let output = boot(
        2,
        &["--max-processes", "3"],
        &[
            write(&dir, "processes", &programs::process_hog(2)),
            write(&dir, "idle", &programs::idle()),
        ],
    );
    assert_eq!(output.status_of("processes"), "0", "{}", output.err);
    // Memory: 16 pages is 1 MiB.
    let output = boot(
        1,
        &["--memory-limit", "1"],
        &[
            write(&dir, "grower", &programs::memory_hog(16)),
            write(
                &dir,
                "big",
                "(module (memory 17) (func (export \"_start\")))",
            ),
        ],
    );
    assert_eq!(output.status_of("grower"), "0", "{}", output.err);
    let output = boot(
        1,
        &["--memory-limit", "1"],
        &[write(
            &dir,
            "big",
            "(module (memory 17) (func (export \"_start\")))",
        )],
    );
    assert_eq!(
        output.status_of("big"),
        "error: linear memory past the limit of 1048576 bytes"
    );
}

#[test]
fn the_demo_system_runs_and_ends_by_itself() {
    let output = BootOutput::parse(&sim(&[]));
    programs::check_demo(&output);
}

#[test]
fn memory_stays_flat_over_ten_thousand_trapping_processes() {
    let dir = scratch("rss");
    let chain = write(&dir, "trapper", &programs::trap_chain(10_000));
    let mut child = Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(["boot", "--cpus", "2", chain.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("sim runs");
    let pid = child.id();
    let rss = || -> u64 {
        let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).unwrap();
        statm
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap()
            * 4096
    };
    let mut samples = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        // The process that printed this sleeps while we measure.
        samples.push((line, rss()));
    }
    assert!(child.wait().unwrap().success());
    let find = |marker: &str| samples.iter().find(|(line, _)| line == marker).unwrap().1;
    let (first, last) = (find("1000"), find("10000"));
    println!("RSS after 1000 processes: {first} bytes; after 10000: {last} bytes");
    assert!(
        last <= first + first / 10,
        "RSS grew from {first} to {last} bytes"
    );
}

#[test]
fn modules_over_a_compile_limit_are_refused_before_compiling() {
    let dir = scratch("compile-limits");
    for (name, wat, message) in programs::over_limit_modules() {
        let path = write(&dir, name, &wat);
        let run = sim(&["run", path.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(4), "{name}: {err}");
        assert!(
            err.contains("module over a compile limit") && err.contains(message),
            "{name}: {err}"
        );
    }
    // A boot program over a limit: reported at boot, and `spawn` says -5.
    let (_, huge, _) = programs::over_limit_modules().swap_remove(0);
    let output = boot(
        1,
        &[],
        &[
            write(&dir, "spawner", &programs::spawn_huge()),
            write(&dir, "huge", &huge),
        ],
    );
    assert_eq!(output.status_of("spawner"), "0", "{}", output.err);
    assert!(
        output
            .err
            .contains("error: boot program huge: module over a compile limit")
    );
}

#[test]
fn a_script_of_forty_thousand_modules_with_memories_runs_to_the_end() {
    // Each memory reserves 8 GiB of address space: without freeing the modules the script
    // can no longer name, the 16 382nd would fail with `out of memory`.
    let dir = scratch("many-modules");
    let mut script = "(module (memory 1))\n".repeat(40_000);
    script.push_str("(module (memory 1) (func (export \"f\") (result i32) (i32.const 7)))\n");
    script.push_str("(assert_return (invoke \"f\") (i32.const 7))\n");
    let path = dir.join("many.wast");
    std::fs::write(&path, script).unwrap();
    let output = sim(&["wast", path.to_str().unwrap()]);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "40002 passed, 0 failed\n",
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_deadlock_ends_the_boot_instead_of_hanging_it() {
    for cpus in [1, 2] {
        let dir = scratch(&format!("deadlock-{cpus}"));
        // The sleeper is the only process not blocked: the deadlock is seen once it ends.
        let output = boot(
            cpus,
            &[],
            &[
                write(&dir, "stuck", &programs::self_deadlock()),
                write(&dir, "sleeper", &programs::worker()),
            ],
        );
        programs::check_deadlock(&output);
    }
    let dir = scratch("deadlock-run");
    let stuck = write(&dir, "stuck", &programs::self_deadlock());
    let run = sim(&["run", stuck.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&run.stderr).starts_with("trap: killed: deadlock"));
}
