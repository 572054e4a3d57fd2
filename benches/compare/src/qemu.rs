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

/// Spawns `sim qemu run` on `file` with `cpus` harts; returns the time to the first byte
/// of its standard output. Waits for QEMU to exit.
fn first_byte(sim: &Path, kernel: &Path, file: &Path, cpus: u32) -> Result<Duration, String> {
    let start = Instant::now();
    let mut child = Command::new(sim)
        .arg("qemu")
        .arg("run")
        .arg("--kernel")
        .arg(kernel)
        .arg("--cpus")
        .arg(cpus.to_string())
        .arg(file)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|error| format!("{}: {error}", sim.display()))?;
    let mut stdout = child.stdout.take().ok_or("no stdout")?;
    let mut byte = [0u8; 1];
    let read = stdout.read(&mut byte).map_err(|error| error.to_string())?;
    let elapsed = start.elapsed();
    let mut rest = Vec::new();
    let _ = stdout.read_to_end(&mut rest);
    let status = child.wait().map_err(|error| error.to_string())?;
    if read == 0 || byte[0] != b'!' {
        return Err(format!("no output from {} ({status})", file.display()));
    }
    Ok(elapsed)
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
    std::fs::write(&tiny, wat::parse_str(TINY).map_err(|error| error.to_string())?)
        .map_err(|error| error.to_string())?;
    let large_wasm = generate::large_module(3000, true);
    let large = dir.join("large.wasm");
    std::fs::write(&large, &large_wasm).map_err(|error| error.to_string())?;
    out.push_str("### QEMU (`sim qemu run`, from spawning sim to the program's first output byte)\n\n| program | harts | time to first output | compile inside QEMU (difference) |\n|---|---|---|---|\n");
    for cpus in [1, 4] {
        progress(&format!("QEMU, {cpus} harts"));
        let mut small = Vec::new();
        let mut big = Vec::new();
        for _ in 0..runs {
            small.push(first_byte(sim, kernel, &tiny, cpus)?);
            big.push(first_byte(sim, kernel, &large, cpus)?);
        }
        let (small, big) = (median(&mut small), median(&mut big));
        writeln!(out, "| tiny module, `_start` prints at once | {cpus} | {} | |", show(small))
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
