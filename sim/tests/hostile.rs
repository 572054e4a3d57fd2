//! `sim` against hostile surroundings: endless or huge input files, binary files given as
//! text, output that cannot be written, signals sent from outside, malformed arguments.
//! Every child runs under a timeout, so that a regression fails instead of hanging.

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// How long any child may take (debug builds, a shared machine).
const TIMEOUT: Duration = Duration::from_secs(60);

fn sim() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sim"));
    command.stdin(Stdio::null());
    command
}

/// Waits for `child` at most [`TIMEOUT`]; kills it and fails the test past that.
fn wait(mut child: Child, what: &str) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`{what}` did not end within {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `sim ARGS` with stdout and stderr captured, under the timeout.
fn run(args: &[&str]) -> Output {
    let child = sim()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sim starts");
    let what = args.join(" ");
    // Read the pipes on threads so that a chatty child cannot block on a full pipe.
    let mut child = child;
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut bytes).unwrap();
        bytes
    });
    let err = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut stderr, &mut bytes).unwrap();
        bytes
    });
    let status = wait(child, &what);
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// Writes `contents` to a fresh file named `name` in a per-test directory.
fn fixture(test: &str, name: &str, contents: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sim-hostile-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

#[test]
fn endless_input_files_are_refused_at_the_size_limit() {
    for command in ["run", "wast", "layout", "boot"] {
        let output = run(&[command, "/dev/zero"]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(5), "sim {command}: {stderr}");
        assert!(
            stderr.contains("larger than the 64 MiB limit"),
            "sim {command}: {stderr}"
        );
    }
}

#[test]
fn a_megabyte_line_gives_a_short_escaped_error() {
    let mut text = b"(module (oops \x1b[2J\0 ".to_vec();
    text.extend(std::iter::repeat_n(b'a', 1 << 20));
    text.extend_from_slice(b"))\n");
    let module = fixture("long", "long.wat", &text);
    let output = run(&["run", module.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.len() < 1000, "{} bytes of stderr", stderr.len());
    assert!(!stderr.contains(['\0', '\x1b']), "{stderr}");
    assert!(stderr.contains("long.wat:1:"), "{stderr}");

    let script = fixture("long", "long.wast", &text);
    let output = run(&["wast", script.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(7));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.len() < 1000, "{} bytes of stdout", stdout.len());
    assert!(!stdout.contains(['\0', '\x1b']), "{stdout}");
    assert!(stdout.ends_with("0 passed, 1 failed\n"), "{stdout}");
}

#[test]
fn binary_files_given_to_wast_print_no_raw_bytes() {
    let binary = fixture(
        "binary",
        "module.wasm",
        b"\0asm\x01\0\0\0\x01\x04\x01\x60\0\0",
    );
    let text_with_nuls = fixture("binary", "nuls.wast", b"(module)\n\0\0\x07\x1b(oops)\n");
    for path in [binary, text_with_nuls] {
        let output = run(&["wast", path.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(7));
        let stdout = String::from_utf8(output.stdout).unwrap();
        assert!(
            !stdout.contains(|c: char| c.is_control() && c != '\n'),
            "{stdout:?}"
        );
        assert!(stdout.ends_with("passed, 1 failed\n"), "{stdout}");
    }
}

/// Runs `sim ARGS` with standard output on `/dev/full`.
fn run_to_full_disk(args: &[&str]) -> (ExitStatus, String) {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full opens");
    let child = sim()
        .args(args)
        .stdout(full)
        .stderr(Stdio::piped())
        .spawn()
        .expect("sim starts");
    let mut child = child;
    let mut stderr = child.stderr.take().unwrap();
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut text).unwrap();
        text
    });
    let status = wait(child, &args.join(" "));
    (status, err.join().unwrap())
}

#[test]
fn output_that_cannot_be_written_fails_the_command() {
    let module = fixture(
        "full",
        "one.wat",
        br#"(module (func (export "one") (result i32) (i32.const 1)))"#,
    );
    let (status, stderr) = run_to_full_disk(&["run", module.to_str().unwrap(), "--invoke", "one"]);
    assert_eq!(status.code(), Some(74), "{stderr}");
    assert!(stderr.contains("could not be written"), "{stderr}");

    let script = fixture(
        "full",
        "ok.wast",
        br#"(module (func (export "one") (result i32) (i32.const 1)))
            (assert_return (invoke "one") (i32.const 1))"#,
    );
    let (status, stderr) = run_to_full_disk(&["wast", script.to_str().unwrap()]);
    assert_eq!(status.code(), Some(74), "{stderr}");

    let (status, stderr) = run_to_full_disk(&["layout", module.to_str().unwrap()]);
    assert_eq!(status.code(), Some(74), "{stderr}");
}

#[test]
fn a_signal_sent_from_outside_is_not_reported_as_a_fault() {
    let module = fixture(
        "signal",
        "loop.wat",
        br#"(module (func (export "_start") (loop (br 0))))"#,
    );
    let mut child = sim()
        .args(["run", module.to_str().unwrap(), "--cpus", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sim starts");
    let mut stderr = child.stderr.take().unwrap();
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut text).unwrap();
        text
    });
    // Long enough for the kernel to boot and the loop to run in JIT code.
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the loop ended by itself"
    );
    let killed = Command::new("kill")
        .args(["-SEGV", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let status = wait(child, "sim run loop.wat");
    let stderr = err.join().unwrap();
    assert_eq!(status.signal(), Some(11), "{status:?}: {stderr}");
    assert!(
        stderr.contains("received SIGSEGV sent by process"),
        "{stderr}"
    );
    assert!(!stderr.contains("fatal fault"), "{stderr}");
}

#[test]
fn malformed_arguments_are_usage_errors() {
    let module = fixture(
        "args",
        "add.wat",
        br#"(module (func (export "add") (param i32 i32) (result i32)
              (i32.add (local.get 0) (local.get 1))))"#,
    );
    let module = module.to_str().unwrap();
    for bad in ["--5", "-+5", "0x-1", "0x+ff"] {
        let output = run(&["run", module, "--invoke", "add", "--", bad, "0"]);
        assert_eq!(output.status.code(), Some(2), "{bad}");
        assert_eq!(output.stdout, b"", "{bad}");
    }
    let output = run(&["run", module, "1", "2"]);
    assert_eq!(output.status.code(), Some(2));
    let output = run(&["run", module, "--invoke", "add", "--", "-5", "0x10"]);
    assert_eq!(String::from_utf8(output.stdout).unwrap(), "11\n");
}
