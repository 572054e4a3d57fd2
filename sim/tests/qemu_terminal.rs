//! `sim qemu run` with standard input on a terminal: what is typed reaches the program
//! live, and end of file at the terminal (Ctrl-D) ends the program's input.
//!
//! The terminal is a pseudo-terminal made by Python's `pty` module (`python3` is needed,
//! as `qemu-system-riscv64` is): `sim` runs with the pty's slave as its standard input,
//! and the test types a line and then the terminal's end-of-file character into the
//! master.

mod programs;

use std::process::Command;
use std::time::Duration;

/// Generous: a loaded machine runs QEMU slowly.
const TIMEOUT: Duration = Duration::from_secs(600);

/// Runs argv[2:] with a pseudo-terminal as standard input, types argv[1] and then the
/// terminal's end-of-file character (at the start of a line, so that the read returns
/// end of file), and exits with the command's status after copying its standard output.
const DRIVER: &str = r#"
import os, pty, subprocess, sys, termios
master, slave = pty.openpty()
child = subprocess.Popen(sys.argv[2:], stdin=slave, stdout=subprocess.PIPE)
os.close(slave)
eof = termios.tcgetattr(master)[6][termios.VEOF]
os.write(master, sys.argv[1].encode() + eof)
out, _ = child.communicate(timeout=int(os.environ["DRIVER_TIMEOUT"]))
sys.stdout.buffer.write(out)
sys.exit(child.returncode)
"#;

/// `cat`: copies standard input to standard output until end of file, then exits 0.
const CAT: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; The iovec at 0 (buffer at 64), the count at 16.
  (func (export "_start")
    (loop $again
      (i32.store (i32.const 0) (i32.const 64))
      (i32.store (i32.const 4) (i32.const 1024))
      (if (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 16))
        (then unreachable))
      (if (i32.eqz (i32.load (i32.const 16))) (then return))
      (i32.store (i32.const 4) (i32.load (i32.const 16)))
      (if (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16))
        (then unreachable))
      (br $again))))
"#;

/// The kernel image, built once.
fn kernel() -> &'static str {
    programs::riscv_kernel()
}

#[test]
fn typed_input_reaches_the_program_and_ctrl_d_ends_it() {
    let program =
        std::env::temp_dir().join(format!("sim-qemu-terminal-{}.wat", std::process::id()));
    std::fs::write(&program, CAT).unwrap();
    // Ctrl-A is QEMU's console escape: it must reach the program like any byte.
    let typed = "typed live\n\u{1}x then more\n";
    let output = Command::new("python3")
        .arg("-c")
        .arg(DRIVER)
        .arg(typed)
        .arg(env!("CARGO_BIN_EXE_sim"))
        .args(["qemu", "--kernel", kernel(), "--timeout"])
        .arg(TIMEOUT.as_secs().to_string())
        .arg("run")
        .arg(&program)
        .env("DRIVER_TIMEOUT", (TIMEOUT.as_secs() + 30).to_string())
        .output()
        .expect("python3 runs (it makes the pseudo-terminal)");
    let _ = std::fs::remove_file(&program);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "status {}, stdout {stdout:?}, stderr {:?}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout, typed);
}
