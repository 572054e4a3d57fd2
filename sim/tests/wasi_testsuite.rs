//! The official WASI test suite (WebAssembly/wasi-testsuite, preview 1), hosted and under
//! QEMU: every prebuilt program of `../shared/ext/wasi-testsuite/{assemblyscript,c,rust}`
//! run the way upstream's runner does it (`specification.md` there): its arguments, exactly
//! its environment, its `root` folder preopened as `/` on a fresh copy, a timeout (5 s
//! hosted, as upstream; generous under QEMU), then its exit code and the start of its
//! standard output checked. Each test prints `SUITE (HAL): N passed, M failed` and fails
//! with every failing program's name and differences.
//!
//! `WASI_TEST_SIM=PATH` runs the hosted half with another runtime taking `sim run`'s
//! command line (`run [--env K=V]... [--dir HOST::GUEST]... FILE ARGS...`), to check this
//! runner itself against a runtime known to pass (Wasmtime does).

#[path = "programs/wasi_harness.rs"]
mod harness;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use harness::{Hal, Invocation, Outcome};
use serde_json::Value;

/// Upstream's timeout per program.
const HOSTED_TIMEOUT: Duration = Duration::from_secs(5);
/// Under QEMU a program is compiled by Cranelift inside the emulator first.
const QEMU_TIMEOUT: Duration = Duration::from_secs(120);

/// What one test case expects, in the order upstream checks it.
#[derive(Debug, Default, PartialEq)]
struct Spec {
    args: Vec<String>,
    env: Vec<(String, String)>,
    /// The folder preopened as `/`, relative to the test's folder.
    root: Option<String>,
    exit_code: i32,
    /// What standard output must start with.
    stdout: String,
    /// What standard error must start with.
    stderr: String,
}

/// A string field of a JSON object, or an error naming it.
fn string(value: &Value, what: &str) -> Result<String, String> {
    value
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("{what} is not a string: {value}"))
}

/// Reads `args`, `env` and `root` (the keys of a legacy spec and of a `run` operation).
fn read_run(object: &serde_json::Map<String, Value>, spec: &mut Spec) -> Result<(), String> {
    if let Some(args) = object.get("args") {
        let args = args.as_array().ok_or("`args` is not an array")?;
        spec.args = args
            .iter()
            .map(|arg| string(arg, "an argument"))
            .collect::<Result<_, _>>()?;
    }
    if let Some(env) = object.get("env") {
        let env = env.as_object().ok_or("`env` is not an object")?;
        spec.env = env
            .iter()
            .map(|(key, value)| Ok((key.clone(), string(value, key)?)))
            .collect::<Result<_, String>>()?;
    }
    match object.get("root") {
        None | Some(Value::Null) => {}
        Some(root) => spec.root = Some(string(root, "`root`")?),
    }
    Ok(())
}

fn exit_code(value: &Value) -> Result<i32, String> {
    value
        .as_i64()
        .and_then(|code| i32::try_from(code).ok())
        .ok_or_else(|| format!("`exit_code` is not an integer: {value}"))
}

/// Parses a test's JSON: the legacy form (`args`, `env`, `root`, `exit_code`, `stdout`,
/// `stderr`) or the operation form (`run`, `read`, `wait`; the networking operations and
/// proposals, which preview 1 does not have, are errors).
fn parse_spec(json: &str) -> Result<Spec, String> {
    let value: Value = serde_json::from_str(json).map_err(|error| error.to_string())?;
    let object = value.as_object().ok_or("not a JSON object")?;
    let mut spec = Spec::default();
    if let Some(operations) = object.get("operations") {
        for key in object.keys() {
            if key != "operations" && key != "proposals" {
                return Err(format!("unknown key `{key}` beside `operations`"));
            }
        }
        if let Some(proposals) = object.get("proposals") {
            let proposals = proposals.as_array().ok_or("`proposals` is not an array")?;
            if !proposals.is_empty() {
                return Err(format!("needs proposals {proposals:?}, not preview 1"));
            }
        }
        let operations = operations
            .as_array()
            .ok_or("`operations` is not an array")?;
        let (mut runs, mut waits) = (0, 0);
        for operation in operations {
            let operation = operation
                .as_object()
                .ok_or("an operation is not an object")?;
            let kind = operation.get("type").and_then(Value::as_str);
            match kind {
                Some("run") => {
                    runs += 1;
                    read_run(operation, &mut spec)?;
                }
                Some("wait") => {
                    waits += 1;
                    if let Some(code) = operation.get("exit_code") {
                        spec.exit_code = exit_code(code)?;
                    }
                }
                Some("read") => {
                    let payload = match operation.get("payload") {
                        None => String::new(),
                        Some(payload) => string(payload, "`payload`")?,
                    };
                    match operation
                        .get("id")
                        .and_then(Value::as_str)
                        .unwrap_or("stdout")
                    {
                        "stdout" => spec.stdout.push_str(&payload),
                        "stderr" => spec.stderr.push_str(&payload),
                        other => return Err(format!("`read` of unknown stream `{other}`")),
                    }
                }
                other => return Err(format!("unsupported operation {other:?}")),
            }
        }
        if runs != 1 || waits != 1 {
            return Err(format!(
                "{runs} `run` and {waits} `wait` operations, not one each"
            ));
        }
        return Ok(spec);
    }
    for key in object.keys() {
        if !["args", "env", "root", "exit_code", "stdout", "stderr"].contains(&key.as_str()) {
            return Err(format!("unknown key `{key}`"));
        }
    }
    read_run(object, &mut spec)?;
    if let Some(code) = object.get("exit_code") {
        spec.exit_code = exit_code(code)?;
    }
    if let Some(stdout) = object.get("stdout") {
        spec.stdout = string(stdout, "`stdout`")?;
    }
    if let Some(stderr) = object.get("stderr") {
        spec.stderr = string(stderr, "`stderr`")?;
    }
    Ok(spec)
}

/// One test case: `NAME.wasm` and its spec.
struct Case {
    name: String,
    wasm: PathBuf,
    spec: Result<Spec, String>,
}

/// Every test case of `suite` (`assemblyscript`, `c`, `rust`), sorted by name.
fn cases(suite: &str) -> Vec<Case> {
    let dir = harness::shared_ext("wasi-testsuite")
        .join(suite)
        .join("wasm32-wasip1");
    let mut cases: Vec<Case> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "wasm"))
        .map(|wasm| {
            let json = wasm.with_extension("json");
            let spec = if json.exists() {
                parse_spec(&std::fs::read_to_string(&json).unwrap())
                    .map_err(|error| format!("{}: {error}", json.display()))
            } else {
                Ok(Spec::default())
            };
            let name = wasm.file_stem().unwrap().to_string_lossy().into_owned();
            Case { name, wasm, spec }
        })
        .collect();
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    cases
}

/// How `outcome` differs from `spec`: one line per difference, none when it passed.
fn differences(spec: &Spec, outcome: &Outcome) -> Vec<String> {
    let mut out = Vec::new();
    if outcome.timed_out || outcome.status != Some(spec.exit_code) {
        out.push(format!(
            "{}, expected exit status {}",
            outcome.status_text(),
            spec.exit_code
        ));
    }
    for (stream, expected, actual) in [
        ("stdout", &spec.stdout, &outcome.stdout),
        ("stderr", &spec.stderr, &outcome.stderr),
    ] {
        if !actual.starts_with(expected.as_bytes()) {
            out.push(format!(
                "{stream} should start with {expected:?}, is {:?}",
                harness::preview(actual)
            ));
        }
    }
    out
}

/// Runs every case of `suite` on `hal`, prints the tally and the failures, and fails if
/// any case failed (or the suite does not have `count` cases).
fn suite_passes(suite: &str, hal: Hal, count: usize) {
    let cases = cases(suite);
    let names: Vec<&str> = cases.iter().map(|case| case.name.as_str()).collect();
    assert_eq!(
        cases.len(),
        count,
        "{suite} should have {count} tests: {names:?}"
    );
    let timeout = match hal {
        Hal::Hosted => HOSTED_TIMEOUT,
        Hal::Qemu => QEMU_TIMEOUT,
    };
    if hal == Hal::Qemu {
        harness::kernel();
    }
    let scratch = harness::scratch(&format!("testsuite-{suite}-{}", hal.name()));
    let started = Instant::now();
    // Parallel threads; the harness lets one program per host CPU run at a time.
    let results = harness::parallel_map(&cases, harness::parallelism(), |case| {
        run_case(case, hal, timeout, &scratch)
    });
    let slowest = results
        .iter()
        .max_by(|a, b| a.1.cmp(&b.1))
        .map(|(name, time, _)| format!("{name} {:.1} s", time.as_secs_f64()))
        .unwrap_or_default();
    let failures: Vec<String> = results
        .into_iter()
        .filter_map(|(_, _, failure)| failure)
        .collect();
    let passed = cases.len() - failures.len();
    println!(
        "wasi-testsuite {suite} ({}): {passed} passed, {} failed ({:.1} s; slowest: {slowest})",
        hal.name(),
        failures.len(),
        started.elapsed().as_secs_f64()
    );
    if failures.is_empty() {
        let _ = std::fs::remove_dir_all(&scratch);
    }
    assert!(
        failures.is_empty(),
        "wasi-testsuite {suite} ({}): {passed} passed, {} failed:\n{}",
        hal.name(),
        failures.len(),
        failures.join("\n")
    );
}

/// Runs one case: its name, how long the program ran (from its start, not counting the
/// wait for a free CPU) and, when it failed, the report.
fn run_case(
    case: &Case,
    hal: Hal,
    timeout: Duration,
    scratch: &Path,
) -> (String, Duration, Option<String>) {
    let spec = match &case.spec {
        Ok(spec) => spec,
        Err(error) => {
            let report = format!("FAIL {}: bad spec: {error}", case.name);
            return (case.name.clone(), Duration::ZERO, Some(report));
        }
    };
    let mut invocation = Invocation {
        wasm: case.wasm.clone(),
        args: spec.args.clone(),
        env: spec.env.clone(),
        ..Invocation::default()
    };
    let fresh = scratch.join(&case.name);
    if let Some(root) = &spec.root {
        // A fresh copy of the fixture for every case: the programs change it.
        let fixture = case.wasm.parent().unwrap().join(root);
        harness::copy_tree(&fixture, &fresh);
        invocation.dirs.push((fresh.clone(), "/".to_owned()));
    }
    let outcome = harness::run(hal, &invocation, timeout);
    let failure = report(case, spec, &outcome);
    if failure.is_none() {
        let _ = std::fs::remove_dir_all(&fresh);
    }
    (case.name.clone(), outcome.elapsed, failure)
}

/// `Some(report)` when `outcome` does not meet `spec`.
fn report(case: &Case, spec: &Spec, outcome: &Outcome) -> Option<String> {
    let differences = differences(spec, outcome);
    if differences.is_empty() {
        return None;
    }
    let mut report = format!(
        "FAIL {} ({:.1} s):",
        case.name,
        outcome.elapsed.as_secs_f64()
    );
    for difference in differences {
        report.push_str(&format!("\n  {difference}"));
    }
    report.push_str(&format!(
        "\n  stdout: {:?}\n  stderr: {:?}\n  command: {}",
        harness::preview(&outcome.stdout),
        harness::preview(&outcome.stderr),
        outcome.command
    ));
    Some(report)
}

#[test]
fn assemblyscript_hosted() {
    suite_passes("assemblyscript", Hal::Hosted, 12);
}

#[test]
fn c_hosted() {
    suite_passes("c", Hal::Hosted, 14);
}

#[test]
fn rust_hosted() {
    suite_passes("rust", Hal::Hosted, 46);
}

#[test]
fn assemblyscript_in_qemu() {
    suite_passes("assemblyscript", Hal::Qemu, 12);
}

#[test]
fn c_in_qemu() {
    suite_passes("c", Hal::Qemu, 14);
}

#[test]
fn rust_in_qemu() {
    suite_passes("rust", Hal::Qemu, 46);
}

/// Every JSON of the suite parses, with the values upstream's files have.
#[test]
fn every_spec_parses() {
    let mut total = 0;
    for suite in ["assemblyscript", "c", "rust"] {
        for case in cases(suite) {
            let spec = case.spec.unwrap_or_else(|error| panic!("{error}"));
            if let Some(root) = &spec.root {
                let fixture = case.wasm.parent().unwrap().join(root);
                assert!(fixture.is_dir(), "{}: no {}", case.name, fixture.display());
            }
            total += 1;
        }
    }
    assert_eq!(total, 72);
    let args = cases("assemblyscript")
        .into_iter()
        .find(|case| case.name == "environ_get-multiple-variables")
        .unwrap();
    let env = args.spec.unwrap().env;
    assert_eq!(
        env,
        [("a", "text"), ("b", "escap \" ing"), ("c", "new\nline")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
    );
}

/// The operation form reads as the legacy one; what preview 1 cannot do is refused.
#[test]
fn operation_specs_parse() {
    let legacy = parse_spec(
        r#"{"args": ["a"], "env": {"K": "V"}, "root": "d", "exit_code": 3, "stdout": "hi"}"#,
    );
    let operations = parse_spec(
        r#"{"operations": [{"type": "run", "args": ["a"], "env": {"K": "V"}, "root": "d"},
            {"type": "read", "payload": "hi"}, {"type": "wait", "exit_code": 3}]}"#,
    );
    assert_eq!(legacy, operations);
    assert!(legacy.unwrap().root.is_some());
    assert!(parse_spec(r#"{"proposals": ["http"], "operations": []}"#).is_err());
    assert!(
        parse_spec(r#"{"operations": [{"type": "run"}, {"type": "connect"}, {"type": "wait"}]}"#)
            .is_err()
    );
    assert!(parse_spec(r#"{"exit": 3}"#).is_err());
    assert!(parse_spec(r#"{"args": "a"}"#).is_err());
}

/// The checker fails a wrong status, a wrong output start and a timeout, and says how.
#[test]
fn differences_are_reported() {
    let spec = Spec {
        exit_code: 33,
        stdout: "hello".to_owned(),
        ..Spec::default()
    };
    let outcome = |status, stdout: &str, timed_out| Outcome {
        status,
        stdout: stdout.as_bytes().to_vec(),
        stderr: Vec::new(),
        timed_out,
        elapsed: Duration::from_secs(5),
        command: String::new(),
    };
    assert!(differences(&spec, &outcome(Some(33), "hello world", false)).is_empty());
    assert_eq!(
        differences(&spec, &outcome(Some(0), "hello", false)),
        ["exit status 0, expected exit status 33"]
    );
    assert_eq!(
        differences(&spec, &outcome(Some(33), "help", false)),
        [r#"stdout should start with "hello", is "help""#]
    );
    assert_eq!(
        differences(&spec, &outcome(None, "hello", true)),
        ["timed out after 5.0 s, expected exit status 33"]
    );
}
