//! Native code from the same C sources: the compute kernels linked into this binary (built
//! by `build.rs` with clang -O2), and the sightglass programs built with clang -O2 against
//! `c/sightglass.h` and run as processes in their directory.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::Outcome;

unsafe extern "C" {
    fn cb_fib(n: u32) -> u32;
    fn cb_matmul(n: u32) -> u64;
    fn cb_sieve(n: u32) -> u32;
    fn cb_sort(n: u32) -> u64;
    fn cb_nbody(steps: u32) -> u64;
    fn cb_hash(rounds: u32) -> u64;
    fn cb_mix(iters: u32) -> u32;
}

/// Calls the native build of the compute kernel `name` with `arg`; returns the time of
/// the call and its result.
pub fn call(name: &str, arg: u32) -> Result<(Duration, u64), String> {
    let arg = std::hint::black_box(arg);
    let start = Instant::now();
    // Safety: the kernels of c/compute.c take and return plain integers, clamp their
    // arguments to their static arrays and touch no other memory.
    let value = unsafe {
        match name {
            "cb_fib" => u64::from(cb_fib(arg)),
            "cb_matmul" => cb_matmul(arg),
            "cb_sieve" => u64::from(cb_sieve(arg)),
            "cb_sort" => cb_sort(arg),
            "cb_nbody" => cb_nbody(arg),
            "cb_hash" => cb_hash(arg),
            "cb_mix" => u64::from(cb_mix(arg)),
            _ => return Err(format!("no native kernel {name}")),
        }
    };
    Ok((start.elapsed(), std::hint::black_box(value)))
}

/// Builds the sightglass program of `dir` (its one `.c` file) into `out` with clang -O2.
pub fn build_sightglass(dir: &Path, out: &Path) -> Result<PathBuf, String> {
    let source = std::fs::read_dir(dir)
        .map_err(|error| format!("{}: {error}", dir.display()))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| path.extension().is_some_and(|ext| ext == "c"))
        .ok_or_else(|| format!("{}: no C source", dir.display()))?;
    let name = dir.file_name().unwrap_or_default();
    let binary = out.join(name);
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("c");
    let output = Command::new("clang")
        .arg("-O2")
        .arg("-I")
        .arg(&include)
        .arg(&source)
        .arg("-o")
        .arg(&binary)
        .arg("-lm")
        .output()
        .map_err(|error| format!("cannot run clang: {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "clang -O2 {}: {}",
            source.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(binary)
}

/// Runs a native sightglass build in `dir`; the measured time is what its `bench_end`
/// printed.
pub fn run_sightglass(binary: &Path, dir: &Path) -> Result<Outcome, String> {
    let output = Command::new(binary)
        .current_dir(dir)
        .output()
        .map_err(|error| format!("{}: {error}", binary.display()))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    let measured = stderr
        .lines()
        .rev()
        .filter_map(|line| line.strip_prefix("bench-ns "))
        .filter_map(|ns| ns.trim().parse::<u64>().ok())
        .next()
        .map(Duration::from_nanos);
    Ok(Outcome {
        status: output.status.code().unwrap_or(-1),
        measured,
        stdout: output.stdout,
    })
}
