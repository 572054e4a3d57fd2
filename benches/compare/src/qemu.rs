//! QEMU's rows: the time from spawning `sim qemu run` (QEMU, OpenSBI, the kernel's boot, the
//! module's compilation) to the first byte the program prints, for a tiny module whose
//! `_start` prints at once; and the same for the generated 3 000-function module on 1 and
//! 4 harts, whose difference from the tiny one is the compile time inside QEMU (plus
//! reading the larger initrd).

use std::fmt::Write as _;
use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{generate, median, progress, show};

/// Prints `!` from `_start`, its first instruction a call to `k23.print`.
const TINY: &str = r#"(module
  (import "k23" "print" (func $print (param i32 i32) (result i32)))
  (memory 1)
  (data (i32.const 0) "!")
  (func (export "_start") (drop (call $print (i32.const 0) (i32.const 1)))))"#;

/// Spawns `command`; returns the time to the first byte of its standard output, which
/// must be `expected` when given. Kills the process after that byte when `kill`, else
/// waits for it to exit.
fn time_to_first_byte(
    mut command: Command,
    expected: Option<u8>,
    kill: bool,
) -> Result<Duration, String> {
    let start = Instant::now();
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .stdin(Stdio::null())
        .spawn()
        .map_err(|error| format!("{command:?}: {error}"))?;
    let mut stdout = child.stdout.take().ok_or("no stdout")?;
    let mut byte = [0u8; 1];
    let read = stdout.read(&mut byte).map_err(|error| error.to_string())?;
    let elapsed = start.elapsed();
    if kill {
        let _ = child.kill();
    } else {
        let mut rest = Vec::new();
        let _ = stdout.read_to_end(&mut rest);
    }
    let status = child.wait().map_err(|error| error.to_string())?;
    if read == 0 || expected.is_some_and(|expected| byte[0] != expected) {
        return Err(format!("no output from {command:?} ({status})"));
    }
    Ok(elapsed)
}

/// `sim qemu run` on `file` with `cpus` harts: the time to the program's first byte.
fn first_byte(sim: &Path, kernel: &Path, file: &Path, cpus: u32) -> Result<Duration, String> {
    let mut command = Command::new(sim);
    command
        .arg("qemu")
        .arg("run")
        .arg("--kernel")
        .arg(kernel)
        .arg("--cpus")
        .arg(cpus.to_string())
        .arg(file);
    time_to_first_byte(command, Some(b'!'), false)
}

/// QEMU and OpenSBI alone: the time to OpenSBI's first console byte (its banner), with the
/// kernel loaded as `sim qemu` loads it.
fn opensbi_first_byte(kernel: &Path, cpus: u32) -> Result<Duration, String> {
    let mut command = Command::new("qemu-system-riscv64");
    command
        .args([
            "-machine",
            "virt",
            "-cpu",
            "rv64,v=true,vlen=128,vext_spec=v1.0",
        ])
        .args(["-nographic", "-bios", "default", "-m", "2048M", "-smp"])
        .arg(cpus.to_string())
        .arg("-kernel")
        .arg(kernel);
    time_to_first_byte(command, None, true)
}

/// The hosted kernel for reference: `sim run` on `file`.
fn hosted_first_byte(sim: &Path, file: &Path) -> Result<Duration, String> {
    let mut command = Command::new(sim);
    command.arg("run").arg(file);
    time_to_first_byte(command, Some(b'!'), false)
}

/// Appends QEMU's rows to `out`.
pub fn rows(sim: &Path, kernel: &Path, runs: usize, out: &mut String) -> Result<(), String> {
    for path in [sim, kernel] {
        if !path.is_file() {
            return Err(format!(
                "{} is missing: build it first (cargo build --release -p sim; cargo build -p \
                 hal-riscv --target riscv64gc-unknown-none-elf --release) or pass --sim/--kernel",
                path.display()
            ));
        }
    }
    let dir = std::env::temp_dir().join(format!("compare-qemu-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|error| error.to_string())?;
    let tiny = dir.join("tiny.wasm");
    std::fs::write(
        &tiny,
        wat::parse_str(TINY).map_err(|error| error.to_string())?,
    )
    .map_err(|error| error.to_string())?;
    let large_wasm = generate::large_module(3000, true);
    let large = dir.join("large.wasm");
    std::fs::write(&large, &large_wasm).map_err(|error| error.to_string())?;
    out.push_str("### QEMU (`sim qemu run`, from spawning sim to the program's first output byte)\n\n| program | harts | time to first output | compile inside QEMU (difference) |\n|---|---|---|---|\n");
    for cpus in [1, 4] {
        progress(&format!("QEMU, {cpus} harts"));
        let mut small = Vec::new();
        let mut big = Vec::new();
        let mut opensbi = Vec::new();
        let mut hosted = Vec::new();
        for _ in 0..runs {
            opensbi.push(opensbi_first_byte(kernel, cpus)?);
            hosted.push(hosted_first_byte(sim, &tiny)?);
            small.push(first_byte(sim, kernel, &tiny, cpus)?);
            big.push(first_byte(sim, kernel, &large, cpus)?);
        }
        let (small, big) = (median(&mut small), median(&mut big));
        writeln!(
            out,
            "| (QEMU and OpenSBI alone: to OpenSBI's banner) | {cpus} | {} | |",
            show(median(&mut opensbi))
        )
        .expect("writing to a string");
        if cpus == 1 {
            writeln!(
                out,
                "| (hosted for reference: `sim run` of the tiny module) | host | {} | |",
                show(median(&mut hosted))
            )
            .expect("writing to a string");
        }
        writeln!(
            out,
            "| tiny module, `_start` prints at once | {cpus} | {} | |",
            show(small)
        )
        .expect("writing to a string");
        writeln!(
            out,
            "| generated module, 3 000 functions ({} KB) | {cpus} | {} | {} |",
            large_wasm.len() / 1000,
            show(big),
            show(big.saturating_sub(small))
        )
        .expect("writing to a string");
    }
    out.push('\n');
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
