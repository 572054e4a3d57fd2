//! `sim boot` and the kernel's processes on the hosted HAL: preemption, isolation of
//! traps and runaway loops, many processes, syscall errors, and the CPU-time limit of
//! `sim run`; each with one CPU and with several. `tests/qemu.rs` runs the same
//! scenarios under QEMU.

mod programs;

use programs::{scenarios, scratch, sim, write};

/// Spinner iterations: about a second of work on the host.
const SPIN: u64 = 1_500_000_000;

/// `sim boot` on the hosted kernel.
use programs::hosted_boot as boot;

#[test]
fn a_sleeping_process_keeps_its_rhythm_beside_pure_loops() {
    for cpus in [1, 2] {
        scenarios::rhythm(&boot, &scratch(&format!("rhythm-{cpus}")), cpus, SPIN, 500);
    }
}

#[test]
fn a_loop_and_a_trap_end_only_their_own_processes() {
    for cpus in [1, 3] {
        scenarios::isolation(&boot, &scratch(&format!("isolation-{cpus}")), cpus);
    }
}

#[test]
fn two_hundred_processes_one_after_the_other_and_fifty_at_once() {
    for cpus in [1, 2] {
        scenarios::many_processes(&boot, &scratch(&format!("many-{cpus}")), cpus);
    }
}

#[test]
fn deep_recursion_growing_memory_is_call_stack_exhausted() {
    let dir = scratch("deep-grow");
    let path = write(&dir, "deep", programs::DEEP_GROW);
    let output = boot(2, &[], std::slice::from_ref(&path));
    assert_eq!(output.status, Some(0), "{}", output.err);
    assert_eq!(output.status_of("deep"), "trap: call stack exhausted");
    let run = sim(&["run", path.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(1));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.starts_with("trap: call stack exhausted\n"), "{err}");
}

#[test]
fn cpu_limit_ends_a_runaway_module() {
    let dir = scratch("cpu-limit");
    let path = write(&dir, "forever", programs::FOREVER);
    let run = sim(&["run", "--cpu-limit", "0.2", path.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(1));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.starts_with("trap: interrupted\n"), "{err}");
}

#[test]
fn exit_codes_and_unlinkable_programs() {
    let dir = scratch("exit-codes");
    let exits = write(
        &dir,
        "exits",
        r#"(module (import "k23" "exit" (func $exit (param i32)))
             (func (export "_start") (call $exit (i32.const 7)) unreachable))"#,
    );
    let run = sim(&["run", exits.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(7), "{run:?}");
    let unknown = write(
        &dir,
        "unknown",
        r#"(module (import "k23" "reboot" (func)) (func (export "_start")))"#,
    );
    let output = boot(1, &[], &[unknown]);
    assert_eq!(output.status, Some(0));
    assert_eq!(
        output.status_of("unknown"),
        "error: unlinkable: import k23::reboot is not a syscall"
    );
}
