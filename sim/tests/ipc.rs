//! Channels, handles, spawning with handles, and the kernel's limits on the hosted HAL,
//! with one CPU and with several; the demo system; memory staying flat over thousands of
//! processes. `tests/qemu.rs` runs the same programs under QEMU.

mod programs;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use programs::{BootOutput, scenarios, scratch, sim, write};

/// `sim boot` on the hosted kernel.
use programs::hosted_boot as boot;

#[test]
fn a_thousand_messages_arrive_in_order_and_two_hundred_spawns_get_their_own_pids() {
    for cpus in [1, 2] {
        scenarios::messages_and_spawns(&boot, &scratch(&format!("messages-{cpus}")), cpus);
    }
}

#[test]
fn every_syscall_misuse_gets_its_error() {
    scenarios::syscall_errors(&boot, &scratch("syscall-errors"));
}

#[test]
fn every_limit_is_reached_and_answered() {
    scenarios::limits(&boot, &scratch("limits"));
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
        // The sleeper is the only process not blocked: the deadlock is seen once it ends.
        scenarios::deadlock(&boot, &scratch(&format!("deadlock-{cpus}")), cpus);
    }
    let dir = scratch("deadlock-run");
    let stuck = write(&dir, "stuck", &programs::self_deadlock());
    let run = sim(&["run", stuck.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&run.stderr).starts_with("trap: killed: deadlock"));
}
