//! The `bench.start` / `bench.end` imports of sightglass-style benchmarks: the kernel
//! records its clock at each call into the process, and `sim run --bench-times` prints one
//! `bench: N ns` line per closed interval on standard error, hosted and under QEMU (the
//! same kernel code prints them over the console there).

mod programs;

use std::process::Output;

use programs::{scratch, sim, write};

/// Two intervals: a loop of `iterations` and an empty one; a stray `end` between them
/// records nothing. Prints `done` at the end.
fn marked(iterations: u32) -> String {
    format!(
        r#"(module
          (import "bench" "start" (func $start))
          (import "bench" "end" (func $end))
          (import "k23" "print" (func $print (param i32 i32) (result i32)))
          (memory 1)
          (data (i32.const 0) "done\n")
          (func (export "_start") (local $i i32)
            (call $start)
            (loop $l
              (local.set $i (i32.add (local.get $i) (i32.const 1)))
              (br_if $l (i32.lt_u (local.get $i) (i32.const {iterations}))))
            (call $end)
            (call $end)
            (call $start)
            (call $end)
            (drop (call $print (i32.const 0) (i32.const 5)))))"#
    )
}

/// The nanoseconds of each `bench:` line of `output`'s standard error, checking that
/// every such line has the documented form.
fn intervals(output: &Output) -> Vec<u64> {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter(|line| line.starts_with("bench"))
        .map(|line| {
            let ns = line
                .strip_prefix("bench: ")
                .and_then(|rest| rest.strip_suffix(" ns"))
                .unwrap_or_else(|| panic!("a bench line of the form `bench: N ns`: {line:?}"));
            ns.parse()
                .unwrap_or_else(|_| panic!("a number of nanoseconds: {line:?}"))
        })
        .collect()
}

fn check_two_intervals(output: &Output) {
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "done\n");
    let times = intervals(output);
    assert_eq!(times.len(), 2, "two closed intervals: {output:?}");
    // The first interval holds a loop of a million iterations: at least a microsecond on
    // any machine, a hardware clock's tick included.
    assert!(times[0] >= 1_000, "the loop took time: {times:?}");
}

#[test]
fn bench_times_prints_each_interval() {
    let dir = scratch("bench-markers");
    let program = write(&dir, "marked", &marked(1_000_000));
    let path = program.to_str().unwrap();
    check_two_intervals(&sim(&["run", "--bench-times", path]));
    // Without the option the markers still link and run; nothing is printed.
    let quiet = sim(&["run", path]);
    assert!(quiet.status.success(), "{quiet:?}");
    assert!(intervals(&quiet).is_empty(), "{quiet:?}");
}

#[test]
fn unknown_or_mistyped_markers_are_clear_link_errors() {
    let dir = scratch("bench-markers-bad");
    for (name, import, why) in [
        (
            "stop",
            r#"(import "bench" "stop" (func))"#,
            "is not a benchmark marker",
        ),
        (
            "typed",
            r#"(import "bench" "start" (func (param i32)))"#,
            "has the wrong type",
        ),
    ] {
        let program = write(
            &dir,
            name,
            &format!(r#"(module {import} (func (export "_start")))"#),
        );
        let output = sim(&["run", "--bench-times", program.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{output:?}");
        assert!(stderr.contains(why), "{name}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn bench_times_prints_each_interval_in_qemu() {
    let dir = scratch("bench-markers-qemu");
    // QEMU's emulation is 20 to 40 times slower: fewer iterations still take far more
    // than a microsecond.
    let program = write(&dir, "marked", &marked(100_000));
    let output = sim(&[
        "qemu",
        "--kernel",
        programs::riscv_kernel(),
        "--timeout",
        "900",
        "run",
        "--bench-times",
        program.to_str().unwrap(),
    ]);
    check_two_intervals(&output);
}
