//! End-to-end runs of the `sim` binary: the boot report and `sim layout`.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(args)
        .output()
        .expect("sim runs")
}

/// Writes `contents` to a fresh file named `name` in a per-test directory.
fn fixture(test: &str, name: &str, contents: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sim-cli-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

fn layout_json(test: &str, name: &str, contents: &[u8]) -> Value {
    let path = fixture(test, name, contents);
    let output = sim(&["layout", path.to_str().unwrap(), "--json"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("one JSON object")
}

/// The counts of every array, by name, in layout order.
fn counts(layout: &Value) -> Vec<(String, u64)> {
    layout["arrays"]
        .as_array()
        .unwrap()
        .iter()
        .map(|array| {
            (
                array["name"].as_str().unwrap().to_owned(),
                array["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn expect_counts(layout: &Value, expected: [u64; 11]) {
    let names = [
        "imported_memories",
        "defined_memories",
        "owned_memories",
        "imported_functions",
        "imported_tables",
        "imported_globals",
        "imported_tags",
        "defined_tables",
        "defined_globals",
        "defined_tags",
        "func_refs",
    ];
    let expected: Vec<(String, u64)> = names
        .iter()
        .map(|name| (*name).to_owned())
        .zip(expected)
        .collect();
    assert_eq!(counts(layout), expected);
}

#[test]
fn self_check_reports_the_platform() {
    let output = sim(&["self-check"]);
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("booting on x86_64"), "{stdout}");
    assert!(stdout.contains("cpus: "), "{stdout}");
    assert!(stdout.contains("self-check: ok"), "{stdout}");
}

#[test]
fn layout_json_has_the_documented_header_and_consistent_arrays() {
    let layout = layout_json("header", "empty.wat", b"(module)");
    let header = &layout["header"];
    for (field, offset) in [
        ("magic", 0),
        ("store_context", 8),
        ("builtin_functions", 16),
        ("callee", 24),
        ("epoch_ptr", 32),
        ("gc_heap_base", 40),
        ("gc_heap_bound", 48),
        ("gc_heap_data", 56),
        ("type_ids", 64),
        ("dynamic_data_start", 72),
    ] {
        assert_eq!(header[field], offset, "{field}");
    }
    let arrays = layout["arrays"].as_array().unwrap();
    assert_eq!(arrays[0]["offset"], 72);
    assert_eq!(arrays[0]["stride"], 16);
    let mut end = 72;
    for array in arrays {
        let offset = array["offset"].as_u64().unwrap();
        assert!(offset >= end);
        end = offset + array["count"].as_u64().unwrap() * array["stride"].as_u64().unwrap();
    }
    assert_eq!(layout["size"].as_u64().unwrap(), end);
}

#[test]
fn layout_counts_imports_definitions_and_escaping_functions() {
    let text = br#"(module
      (import "env" "f" (func $f))
      (import "env" "unused" (func))
      (import "env" "mem" (memory 1))
      (import "env" "t" (table 1 funcref))
      (import "env" "g" (global i32))
      (import "env" "tag" (tag))
      (memory 1)
      (memory 1 1 shared)
      (table 1 funcref)
      (table 1 externref)
      (table 1 funcref)
      (global $r funcref (ref.func $in_global))
      (tag)
      (func $in_global)
      (func $declared)
      (func $private)
      (export "f" (func $f))
      (export "mem" (memory 0))
      (export "t" (table 0))
      (elem declare func $declared)
    )"#;
    let layout = layout_json("mixed", "mixed.wat", text);
    // func_refs: the re-exported import, the ref.func in a global and the declared function.
    expect_counts(&layout, [1, 2, 1, 2, 1, 1, 1, 3, 1, 1, 3]);
}

#[test]
fn layout_reads_binary_modules() {
    let bytes = wat::parse_str(r#"(module (func (export "a")) (func (export "b")))"#).unwrap();
    let layout = layout_json("binary", "two.wasm", &bytes);
    expect_counts(&layout, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
}

#[test]
fn bad_inputs_get_distinct_statuses() {
    let malformed = fixture(
        "bad",
        "malformed.wasm",
        b"\0asm\x01\0\0\0\x01\xff\xff\xff\xff\x0f",
    );
    let output = sim(&["layout", malformed.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&output.stderr).contains("invalid module"));

    let invalid = fixture("bad", "invalid.wat", b"(module (func (result i32)))");
    assert_eq!(
        sim(&["layout", invalid.to_str().unwrap()]).status.code(),
        Some(3)
    );

    let text = fixture("bad", "text.wat", b"(module (func $x (oops)))");
    assert_eq!(
        sim(&["layout", text.to_str().unwrap()]).status.code(),
        Some(3)
    );

    let missing = std::env::temp_dir().join("sim-cli-no-such-file.wasm");
    assert_eq!(
        sim(&["layout", missing.to_str().unwrap()]).status.code(),
        Some(5)
    );

    assert_eq!(sim(&["no-such-command"]).status.code(), Some(2));
}

const TRAPPING: &str = r#"(module $demo
  (type $v (func))
  (memory 1)
  (table 1 funcref)
  (func $fac (export "fac") (param i64) (result i64)
    (if (result i64) (i64.eqz (local.get 0))
      (then (i64.const 1))
      (else (i64.mul (local.get 0) (call $fac (i64.sub (local.get 0) (i64.const 1)))))))
  (func (export "half") (param f64) (result f64 f32) (f64.mul (local.get 0) (f64.const 0.5)) (f32.const 1.5))
  (func (export "unreachable") (unreachable))
  (func (export "load") (param i32) (result i32) (i32.load (local.get 0)))
  (func (export "div") (param i32 i32) (result i32) (i32.div_s (local.get 0) (local.get 1)))
  (func (export "trunc") (param f32) (result i32) (i32.trunc_f32_u (local.get 0)))
  (func (export "undefined") (call_indirect (type $v) (i32.const 5)))
  (func (export "null") (call_indirect (type $v) (i32.const 0)))
  (func $rec (export "recurse") (call $rec))
)"#;

#[test]
fn run_prints_results_one_per_line() {
    let module = fixture("run", "demo.wat", TRAPPING.as_bytes());
    let module = module.to_str().unwrap();
    let output = sim(&["run", module, "--invoke", "fac", "20"]);
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        "2432902008176640000\n"
    );
    let output = sim(&["run", module, "--invoke", "half", "-3"]);
    assert_eq!(String::from_utf8(output.stdout).unwrap(), "-1.5\n1.5\n");
    // No --invoke and no _start: instantiating (running the start function) is the job.
    assert!(sim(&["run", module]).status.success());
    assert_eq!(
        sim(&["run", module, "--invoke", "nope"]).status.code(),
        Some(2)
    );
    assert_eq!(
        sim(&["run", module, "--invoke", "div", "1"]).status.code(),
        Some(2)
    );
    assert_eq!(
        sim(&["run", module, "--invoke", "div", "x", "1"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn run_reports_every_trap_with_its_message_and_backtrace() {
    let module = fixture("traps", "demo.wat", TRAPPING.as_bytes());
    let module = module.to_str().unwrap();
    let cases: [(&[&str], &str); 9] = [
        (&["unreachable"], "unreachable"),
        (&["load", "65536"], "out of bounds memory access"),
        (&["div", "1", "0"], "integer divide by zero"),
        (&["div", "-2147483648", "-1"], "integer overflow"),
        (&["trunc", "-1"], "integer overflow"),
        (&["trunc", "NaN"], "invalid conversion to integer"),
        (&["undefined"], "undefined element"),
        (&["null"], "uninitialized element"),
        (&["recurse"], "call stack exhausted"),
    ];
    for (args, message) in cases {
        let mut command = vec!["run", module, "--invoke"];
        command.extend_from_slice(args);
        let output = sim(&command);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(
            stderr.starts_with(&format!("trap: {message}\n")),
            "{args:?}: {stderr}"
        );
        assert!(
            stderr.contains("wasm backtrace:\n  0: demo!"),
            "{args:?}: {stderr}"
        );
    }
}
