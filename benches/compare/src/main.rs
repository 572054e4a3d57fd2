//! `compare`: the same work through kernel-core (hosted), Wasmtime 48, wasmi 2.0 and native
//! code, side by side in one run, printed as the Markdown tables of `BENCHMARKS.md`.
//!
//! ```text
//! cargo run --release --manifest-path benches/compare/Cargo.toml -- [--runs N] [--quick]
//!     [--only compute,sightglass,compile,api,kernel,qemu,sizes] [--sightglass DIR]
//!     [--sim PATH --kernel PATH]
//! ```
//!
//! Every number is the median of `--runs` runs (default 5); within a run the peers take
//! turns, so that a change of the machine's load touches them alike. Ratios are
//! kernel-core's time over the peer's (below 1: kernel-core is faster).

mod generate;
mod kc;
mod nat;
mod qemu;
mod wasi;
mod wi;
mod wt;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How a program run ended: its exit status, the time between `bench.start` and
/// `bench.end`, and its standard output.
#[derive(Debug)]
pub struct Outcome {
    /// The exit status (0 when `_start` returned).
    pub status: i32,
    /// The measured region.
    pub measured: Option<Duration>,
    /// Standard output.
    pub stdout: Vec<u8>,
}

/// A WebAssembly result as the unsigned value C returned (`u32` zero-extended).
#[must_use]
pub fn value_u64(value: i64, is_i32: bool) -> u64 {
    if is_i32 {
        u64::from(value as u32)
    } else {
        value as u64
    }
}

/// The compute kernels of `c/compute.c`, built to WebAssembly by `build.rs`.
const COMPUTE_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/compute.wasm"));

/// Command-line settings.
struct Args {
    runs: usize,
    quick: bool,
    only: Option<Vec<String>>,
    sightglass: Option<PathBuf>,
    sim: PathBuf,
    kernel: PathBuf,
    dump: Option<(String, PathBuf)>,
    wasm: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut args = Args {
        runs: 5,
        quick: false,
        only: None,
        sightglass: None,
        sim: [
            root.join("target/release/sim"),
            root.join("target/debug/sim"),
        ]
        .into_iter()
        .find(|path| path.is_file())
        .unwrap_or_else(|| root.join("target/release/sim")),
        kernel: root.join("target/riscv64gc-unknown-none-elf/release/hal-riscv"),
        dump: None,
        wasm: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--runs" => {
                args.runs = value("--runs")?
                    .parse()
                    .map_err(|_| "--runs takes a number".to_string())?;
                if args.runs == 0 {
                    return Err("--runs must be at least 1".into());
                }
            }
            "--quick" => args.quick = true,
            "--only" => {
                args.only = Some(value("--only")?.split(',').map(str::to_owned).collect());
            }
            "--sightglass" => args.sightglass = Some(PathBuf::from(value("--sightglass")?)),
            "--sim" => args.sim = PathBuf::from(value("--sim")?),
            "--kernel" => args.kernel = PathBuf::from(value("--kernel")?),
            "--wasm" => args.wasm = Some(PathBuf::from(value("--wasm")?)),
            "--dump" => {
                let export = value("--dump")?;
                args.dump = Some((export, PathBuf::from(value("--dump")?)));
            }
            "-h" | "--help" => {
                println!(
                    "compare [--runs N] [--quick] [--only compute,sightglass,compile,api,kernel,qemu,sizes] \
                     [--sightglass DIR] [--sim PATH] [--kernel PATH] [--dump EXPORT|INDEX DIR [--wasm FILE]]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other} (see --help)")),
        }
    }
    Ok(args)
}

impl Args {
    fn wants(&self, section: &str) -> bool {
        match &self.only {
            Some(only) => only.iter().any(|name| name == section),
            // QEMU's rows need the sim binary and the RISC-V kernel built: opt-in.
            None => section != "qemu",
        }
    }
}

/// The median of `samples` (the upper one for an even count).
fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

fn geomean(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    (values.iter().map(|v| v.ln()).sum::<f64>() / values.len() as f64).exp()
}

/// A duration for a table cell, in a unit that suits it.
fn show(time: Duration) -> String {
    let ns = time.as_secs_f64() * 1e9;
    if ns < 1e3 {
        format!("{ns:.1} ns")
    } else if ns < 1e6 {
        format!("{:.2} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.3} s", ns / 1e9)
    }
}

fn ratio(ours: Duration, theirs: Duration) -> f64 {
    ours.as_secs_f64() / theirs.as_secs_f64()
}

fn progress(message: &str) {
    eprintln!("compare: {message}");
}

/// The four columns of a comparison row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Peer {
    Kc,
    Wasmtime,
    Wasmi,
    Native,
}

const PEERS: [Peer; 4] = [Peer::Kc, Peer::Wasmtime, Peer::Wasmi, Peer::Native];

/// A runner of one row for one peer: the measured time, or why it failed.
type Runner<'a> = Box<dyn FnMut(Peer) -> Result<Duration, String> + 'a>;

/// One peer's measurements of a row: every run's time in run order, or why it failed.
struct Cell {
    samples: Vec<Duration>,
    error: Option<String>,
}

impl Cell {
    fn median(&self) -> Option<Duration> {
        if self.error.is_some() || self.samples.is_empty() {
            return None;
        }
        Some(median(&mut self.samples.clone()))
    }
}

/// Runs `runner` for every peer, `runs` times in turn. wasmi alone, when its first run
/// took longer than `slow`, runs only once (marked in the table): the interpreter's
/// heavy rows would otherwise take minutes each.
fn measure_row(runs: usize, slow: Duration, mut runner: Runner<'_>) -> [Cell; 4] {
    let mut cells: [Cell; 4] = std::array::from_fn(|_| Cell {
        samples: Vec::new(),
        error: None,
    });
    for run in 0..runs {
        for (index, peer) in PEERS.into_iter().enumerate() {
            let cell = &mut cells[index];
            let too_slow = peer == Peer::Wasmi && cell.samples.first().is_some_and(|t| *t > slow);
            if cell.error.is_some() || (run > 0 && too_slow) {
                continue;
            }
            match runner(peer) {
                Ok(time) => cell.samples.push(time),
                Err(error) => cell.error = Some(error),
            }
        }
    }
    cells
}

/// kernel-core's time over the peer's: the median of the per-run ratios when both ran
/// every run (each pair ran back to back, so a change of load touches both), else the
/// ratio of the medians.
fn cell_ratio(ours: &Cell, theirs: &Cell) -> Option<f64> {
    let (ours_median, theirs_median) = (ours.median()?, theirs.median()?);
    if ours.samples.len() == theirs.samples.len() {
        let mut ratios: Vec<f64> = ours
            .samples
            .iter()
            .zip(&theirs.samples)
            .filter(|(_, theirs)| !theirs.is_zero())
            .map(|(ours, theirs)| ratio(*ours, *theirs))
            .collect();
        if !ratios.is_empty() {
            ratios.sort_by(f64::total_cmp);
            return Some(ratios[ratios.len() / 2]);
        }
    }
    (!theirs_median.is_zero()).then(|| ratio(ours_median, theirs_median))
}

/// Geometric means of kernel-core's ratios to Wasmtime and to native code.
#[derive(Default)]
struct Ratios {
    wasmtime: Vec<f64>,
    native: Vec<f64>,
    wasmi: Vec<f64>,
}

/// Appends a comparison row and collects kernel-core's ratios for the geomeans.
fn row(table: &mut String, name: &str, cells: &[Cell; 4], runs: usize, ratios: &mut Ratios) {
    let show_cell = |cell: &Cell| match (&cell.error, cell.median()) {
        (Some(error), _) => format!(
            "failed: {}",
            error.replace('|', "/").chars().take(60).collect::<String>()
        ),
        (None, Some(time)) if cell.samples.len() < runs => {
            format!("{} ({} run)", show(time), cell.samples.len())
        }
        (None, Some(time)) => show(time),
        (None, None) => "—".into(),
    };
    let rel = |other: &Cell, list: &mut Vec<f64>| match cell_ratio(&cells[0], other) {
        Some(value) => {
            list.push(value);
            format!("{value:.2}x")
        }
        None => "—".into(),
    };
    let vs_wasmtime = rel(&cells[1], &mut ratios.wasmtime);
    let vs_native = rel(&cells[3], &mut ratios.native);
    let vs_wasmi = rel(&cells[2], &mut ratios.wasmi);
    writeln!(
        table,
        "| {name} | {} | {} | {} | {} | {vs_wasmtime} | {vs_native} | {vs_wasmi} |",
        show_cell(&cells[0]),
        show_cell(&cells[1]),
        show_cell(&cells[2]),
        show_cell(&cells[3]),
    )
    .expect("writing to a string");
}

const ROW_HEADER: &str = "| | kernel-core | Wasmtime 48 | wasmi 2.0 | native | kc / Wasmtime | kc / native | kc / wasmi |\n|---|---|---|---|---|---|---|---|\n";

fn geomean_row(table: &mut String, label: &str, ratios: &Ratios) {
    writeln!(
        table,
        "| **{label}** | | | | | **{:.2}x** | **{:.2}x** | **{:.3}x** |",
        geomean(&ratios.wasmtime),
        geomean(&ratios.native),
        geomean(&ratios.wasmi),
    )
    .expect("writing to a string");
}

/// The compute kernels: (row, export, argument, quick argument).
const COMPUTE: &[(&str, &str, u32, u32)] = &[
    ("fib, recursive: n", "cb_fib", 32, 27),
    ("matrix multiply, f64: n x n, n", "cb_matmul", 128, 64),
    ("sieve: primes below", "cb_sieve", 4 << 20, 1 << 20),
    ("quicksort, i32: elements", "cb_sort", 500_000, 100_000),
    ("n-body, 5 bodies: steps", "cb_nbody", 500_000, 50_000),
    (
        "hashing loop, FNV-1a over 64 KiB: rounds",
        "cb_hash",
        300,
        30,
    ),
    ("CoreMark-like mix: iterations", "cb_mix", 5000, 500),
];

fn compute(args: &Args, out: &mut String, all: &mut Ratios) -> Result<(), String> {
    progress("compute kernels");
    let mut kc = kc::Instance::new(COMPUTE_WASM)?;
    let mut wt = wt::Instance::new(COMPUTE_WASM)?;
    let mut wi = wi::Instance::new(COMPUTE_WASM)?;
    let mut table = String::from(ROW_HEADER);
    let mut ratios = Ratios::default();
    for &(label, export, full, quick) in COMPUTE {
        let arg = if args.quick { quick } else { full };
        let label = format!("{label} = {arg}");
        progress(&label);
        let (_, expected) = nat::call(export, arg)?;
        let cells = measure_row(
            args.runs,
            Duration::from_secs(5),
            Box::new(|peer| {
                let (time, value) = match peer {
                    Peer::Kc => kc.call(export, arg.cast_signed())?,
                    Peer::Wasmtime => wt.call(export, arg.cast_signed())?,
                    Peer::Wasmi => wi.call(export, arg.cast_signed())?,
                    Peer::Native => nat::call(export, arg)?,
                };
                if value == expected {
                    Ok(time)
                } else {
                    Err(format!("result {value}, native {expected}"))
                }
            }),
        );
        row(&mut table, &label, &cells, args.runs, &mut ratios);
    }
    geomean_row(&mut table, "geomean", &ratios);
    all.wasmtime.extend(&ratios.wasmtime);
    all.native.extend(&ratios.native);
    all.wasmi.extend(&ratios.wasmi);
    out.push_str("### Compute (C, clang -O2; one call, data set up inside the call)\n\n");
    out.push_str(&table);
    out.push('\n');
    Ok(())
}

/// The sightglass directory: `--sightglass`, `$SIGHTGLASS_DIR`, or the team's shared
/// material beside the repository (`../shared/ext/sightglass`).
fn sightglass_dir(args: &Args) -> Option<PathBuf> {
    if let Some(dir) = &args.sightglass {
        return Some(dir.clone());
    }
    if let Some(dir) = std::env::var_os("SIGHTGLASS_DIR") {
        return Some(PathBuf::from(dir));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    [
        root.join("../shared/ext/sightglass"),
        PathBuf::from("/work/shared/ext/sightglass"),
    ]
    .into_iter()
    .find(|dir| dir.is_dir())
    .map(|dir| dir.canonicalize().unwrap_or(dir))
}

/// Sightglass programs kept out of the geomeans (see [`sightglass`]).
const EXCLUDED: &[&str] = &["noop", "shootout-nestedloop"];

fn sightglass(args: &Args, out: &mut String, all: &mut Ratios) -> Result<(), String> {
    let Some(root) = sightglass_dir(args) else {
        out.push_str(
            "### Sightglass\n\nNot run: no sightglass directory (pass --sightglass DIR).\n\n",
        );
        return Ok(());
    };
    let build = std::env::temp_dir().join(format!("compare-sightglass-{}", std::process::id()));
    std::fs::create_dir_all(&build).map_err(|error| format!("{}: {error}", build.display()))?;
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .map_err(|error| format!("{}: {error}", root.display()))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.join("benchmark.wasm").is_file())
        .collect();
    dirs.sort();
    let mut table = String::from(ROW_HEADER);
    let mut ratios = Ratios::default();
    for dir in dirs {
        let name = dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        progress(&format!("sightglass {name}"));
        let wasm = std::fs::read(dir.join("benchmark.wasm")).map_err(|error| error.to_string())?;
        let expected = std::fs::read(dir.join("benchmark.stdout.expected")).unwrap_or_default();
        let native = nat::build_sightglass(&dir, &build);
        let cells = measure_row(
            args.runs,
            Duration::from_secs(3),
            Box::new(|peer| {
                let outcome = match peer {
                    Peer::Kc => kc::sightglass(&wasm, &dir)?,
                    Peer::Wasmtime => wt::sightglass(&wasm, &dir)?,
                    Peer::Wasmi => wi::sightglass(&wasm, &dir)?,
                    Peer::Native => {
                        nat::run_sightglass(native.as_ref().map_err(Clone::clone)?, &dir)?
                    }
                };
                if outcome.status != 0 {
                    return Err(format!("exit status {}", outcome.status));
                }
                if outcome.stdout != expected {
                    return Err(format!(
                        "stdout differs from benchmark.stdout.expected ({} bytes, expected {})",
                        outcome.stdout.len(),
                        expected.len()
                    ));
                }
                outcome
                    .measured
                    .ok_or_else(|| "no bench.start/bench.end".to_string())
            }),
        );
        // noop measures only the bench.start/bench.end calls, and the WebAssembly build of
        // nestedloop has its loops folded away by the compiler that made it (a newer clang
        // than the native build's): no compute ratio from either.
        if EXCLUDED.contains(&name.as_str()) {
            row(
                &mut table,
                &format!("{name} (not in the geomean)"),
                &cells,
                args.runs,
                &mut Ratios::default(),
            );
        } else {
            row(&mut table, &name, &cells, args.runs, &mut ratios);
        }
    }
    geomean_row(&mut table, "geomean (without noop and nestedloop)", &ratios);
    let _ = std::fs::remove_dir_all(&build);
    all.wasmtime.extend(&ratios.wasmtime);
    all.native.extend(&ratios.native);
    all.wasmi.extend(&ratios.wasmi);
    writeln!(
        out,
        "### Sightglass ({}; time between bench.start and bench.end; stdout checked against benchmark.stdout.expected)\n",
        root.display()
    )
    .expect("writing to a string");
    out.push_str(&table);
    out.push('\n');
    Ok(())
}

/// The machine's CPUs: the threads of Wasmtime's parallel compile and the CPUs of the
/// kernel's parallel compile row.
fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// A compiler of the compile rows: the time to load a module.
type CompileFn = fn(&[u8]) -> Result<Duration, String>;

/// A kernel row: the time of `iters` operations.
type KernelFn = fn(u64) -> Duration;

fn compile(args: &Args, out: &mut String) -> Result<(), String> {
    let count = if args.quick { 600 } else { 3000 };
    let large = generate::large_module(count, false);
    let mut modules = vec![(format!("generated, {count} functions"), large, count)];
    if let Some(root) = sightglass_dir(args) {
        for name in ["shootout-ed25519", "quicksort"] {
            if let Ok(wasm) = std::fs::read(root.join(name).join("benchmark.wasm")) {
                let functions = wasmparser::Parser::new(0)
                    .parse_all(&wasm)
                    .filter_map(Result::ok)
                    .filter(|payload| matches!(payload, wasmparser::Payload::CodeSectionEntry(_)))
                    .count();
                modules.push((format!("sightglass {name}"), wasm, functions));
            }
        }
    }
    let threads = cpus();
    let parallel = format!("kernel-core, kernel workers, {threads} CPUs");
    let columns: [(&str, CompileFn); 7] = [
        ("kernel-core, Module::new", kc::compile),
        ("kernel-core, kernel workers, 1 CPU", |wasm| {
            kc::kernel_compile(wasm, 1)
        }),
        (&parallel, |wasm| kc::kernel_compile(wasm, cpus())),
        ("Wasmtime, 1 thread", |wasm| wt::compile(wasm, false)),
        ("Wasmtime, parallel", |wasm| wt::compile(wasm, true)),
        ("wasmi, eager", |wasm| wi::compile(wasm, true)),
        ("wasmi, lazy (validation only)", |wasm| {
            wi::compile(wasm, false)
        }),
    ];
    writeln!(
        out,
        "### Compile (Module::new: validate, compile every function, make it executable, on the calling thread; kernel workers: a hosted kernel on 1 or {threads} CPUs compiling in a process as `sim run` does, the boot's own time subtracted; Wasmtime parallel = {threads} threads; kc / this: kernel-core's Module::new over this)\n\n| module | compiler | time | functions/s | MB/s | kc / this |\n|---|---|---|---|---|---|"
    )
    .expect("writing to a string");
    for (label, wasm, functions) in &modules {
        progress(&format!("compile {label}"));
        let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); columns.len()];
        for _ in 0..args.runs {
            for (index, (_, compile)) in columns.iter().enumerate() {
                samples[index].push(compile(wasm)?);
            }
        }
        let medians: Vec<Duration> = samples.iter_mut().map(|s| median(s)).collect();
        for (index, (name, _)) in columns.iter().enumerate() {
            let time = medians[index];
            writeln!(
                out,
                "| {label} ({} KB) | {name} | {} | {:.0} | {:.2} | {:.2}x |",
                wasm.len() / 1000,
                show(time),
                *functions as f64 / time.as_secs_f64(),
                wasm.len() as f64 / 1e6 / time.as_secs_f64(),
                ratio(medians[0], time),
            )
            .expect("writing to a string");
        }
    }
    out.push('\n');
    Ok(())
}

/// The small module of the API rows: a memory with data, a table with an element, a
/// global, an empty function and one that traps.
const SMALL: &str = r#"(module
  (memory 1)
  (data (i32.const 16) "hello, world")
  (table 4 funcref)
  (elem (i32.const 0) $nop)
  (global (mut i32) (i32.const 7))
  (func $nop (export "nop"))
  (func (export "trap") unreachable)
  (func (export "get") (param i32) (result i32) (i32.load (local.get 0))))"#;

/// Calls the empty host function `h.f` `n` times.
const SPIN: &str = r#"(module
  (import "h" "f" (func $f))
  (func (export "spin") (param $n i32)
    (loop $l
      (call $f)
      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))))"#;

fn api(args: &Args, out: &mut String) -> Result<(), String> {
    progress("instantiation, host-to-wasm calls, traps");
    let small = wat::parse_str(SMALL).map_err(|error| error.to_string())?;
    let (inst, calls, traps) = if args.quick {
        (500, 20_000, 500)
    } else {
        (5000, 500_000, 5000)
    };
    let mut kc = kc::Instance::new(&small)?;
    let mut wt = wt::Instance::new(&small)?;
    let mut wi = wi::Instance::new(&small)?;
    let mut table = String::from(ROW_HEADER);
    let mut ratios = Ratios::default();
    let cells = measure_row(
        args.runs,
        Duration::from_secs(60),
        Box::new(|peer| match peer {
            Peer::Kc => kc::instantiations(&small, inst),
            Peer::Wasmtime => wt::instantiations(&small, inst),
            Peer::Wasmi => wi::instantiations(&small, inst),
            Peer::Native => Err("n/a".into()),
        }),
    );
    row(
        &mut table,
        "instantiate the small module (new store each)",
        &cells,
        args.runs,
        &mut ratios,
    );
    let cells = measure_row(
        args.runs,
        Duration::from_secs(60),
        Box::new(|peer| match peer {
            Peer::Kc => kc.empty_calls("nop", calls),
            Peer::Wasmtime => wt.empty_calls("nop", calls),
            Peer::Wasmi => wi.empty_calls("nop", calls),
            Peer::Native => Err("n/a".into()),
        }),
    );
    row(
        &mut table,
        "host-to-wasm call of an empty function",
        &cells,
        args.runs,
        &mut ratios,
    );
    let spin = wat::parse_str(SPIN).map_err(|error| error.to_string())?;
    let cells = measure_row(
        args.runs,
        Duration::from_secs(60),
        Box::new(|peer| match peer {
            Peer::Kc => kc::host_calls(&spin, calls),
            Peer::Wasmtime => wt::host_calls(&spin, calls),
            Peer::Wasmi => wi::host_calls(&spin, calls),
            Peer::Native => Err("n/a".into()),
        }),
    );
    row(
        &mut table,
        "wasm-to-host call of an empty host function",
        &cells,
        args.runs,
        &mut ratios,
    );
    let cells = measure_row(
        args.runs,
        Duration::from_secs(60),
        Box::new(|peer| match peer {
            Peer::Kc => kc.traps("trap", traps),
            Peer::Wasmtime => wt.traps("trap", traps),
            Peer::Wasmi => wi.traps("trap", traps),
            Peer::Native => Err("n/a".into()),
        }),
    );
    row(
        &mut table,
        "trap round trip (call, unreachable, error back)",
        &cells,
        args.runs,
        &mut ratios,
    );
    out.push_str("### Runtime API (typed functions: kernel-core's Store::typed_func, Wasmtime's and wasmi's TypedFunc)\n\n");
    out.push_str(&table.replace("failed: n/a", "—"));
    out.push('\n');
    Ok(())
}

fn kernel(args: &Args, out: &mut String) {
    let scale = if args.quick { 10 } else { 1 };
    let rows: [(&str, u64, KernelFn); 5] = [
        (
            "process switch (two processes yielding)",
            200_000,
            benches::kernel::process_switches,
        ),
        (
            "syscall round trip (getpid)",
            1_000_000,
            benches::kernel::getpid_calls,
        ),
        ("IPC round trip, 64 bytes each way", 100_000, |iters| {
            benches::kernel::ipc_round_trips(iters, 64)
        }),
        ("IPC round trip, 16 KiB each way", 50_000, |iters| {
            benches::kernel::ipc_round_trips(iters, 16 * 1024)
        }),
        (
            "spawn to exit of a small program",
            2_000,
            benches::kernel::spawns_to_exit,
        ),
    ];
    out.push_str("### Kernel (hosted, one CPU; whole boots of `iters` operations, per operation)\n\n| operation | iters | time per operation |\n|---|---|---|\n");
    for (label, iters, run) in rows {
        progress(label);
        let iters = iters / scale;
        let mut samples: Vec<Duration> =
            (0..args.runs).map(|_| run(iters) / iters as u32).collect();
        writeln!(
            out,
            "| {label} | {iters} | {} |",
            show(median(&mut samples))
        )
        .expect("writing to a string");
    }
    out.push('\n');
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(error) => {
            eprintln!("compare: {error}");
            std::process::exit(2);
        }
    };
    if let Some((export, dir)) = &args.dump {
        let wasm = match &args.wasm {
            Some(path) => std::fs::read(path).unwrap_or_else(|error| {
                eprintln!("compare: {}: {error}", path.display());
                std::process::exit(1);
            }),
            None => COMPUTE_WASM.to_vec(),
        };
        if let Err(error) = dump(&wasm, export, dir) {
            eprintln!("compare: --dump: {error}");
            std::process::exit(1);
        }
        return;
    }
    let started = Instant::now();
    let mut out = String::new();
    let mut all = Ratios::default();
    let mut failed = false;
    let mut check = |section: &str, result: Result<(), String>| {
        if let Err(error) = result {
            eprintln!("compare: {section}: {error}");
            failed = true;
        }
    };
    if args.wants("compute") {
        check("compute", compute(&args, &mut out, &mut all));
    }
    if args.wants("sightglass") {
        check("sightglass", sightglass(&args, &mut out, &mut all));
    }
    if !all.wasmtime.is_empty() {
        writeln!(
            out,
            "**All compute rows (compute and sightglass, without noop and nestedloop), geomean: kernel-core / Wasmtime = {:.2}x (goal 1.05x), kernel-core / native = {:.2}x (goal 1.4x), kernel-core / wasmi = {:.3}x.**\n",
            geomean(&all.wasmtime),
            geomean(&all.native),
            geomean(&all.wasmi)
        )
        .expect("writing to a string");
    }
    if args
        .only
        .as_ref()
        .is_some_and(|only| only.iter().any(|name| name == "sizes"))
    {
        println!(
            "generated module: {} bytes",
            generate::large_module(3000, false).len()
        );
    }
    if args.wants("compile") {
        check("compile", compile(&args, &mut out));
    }
    if args.wants("api") {
        check("api", api(&args, &mut out));
    }
    if args.wants("kernel") {
        kernel(&args, &mut out);
    }
    if args.wants("qemu") {
        check(
            "qemu",
            qemu::rows(&args.sim, &args.kernel, args.runs, &mut out),
        );
    }
    print!("{out}");
    println!(
        "({} runs per cell, median; {} CPUs; whole comparison {:.0} s)",
        args.runs,
        std::thread::available_parallelism().map_or(1, usize::from),
        started.elapsed().as_secs_f64()
    );
    if failed {
        std::process::exit(1);
    }
}

/// `--dump EXPORT|INDEX DIR [--wasm FILE]`: writes the machine code of one function of
/// `wasm` (the compute kernels unless `--wasm`), named by export or function index, as
/// kernel-core compiles it (`DIR/kernel-core.bin`, raw x86-64 at offset 0) and Wasmtime's
/// compiled module (`DIR/wasmtime.cwasm`, an ELF object with a symbol per function), for
/// `objdump`.
fn dump(wasm: &[u8], export: &str, dir: &Path) -> Result<(), String> {
    use kernel_core::hal::Isa;
    use kernel_core::wasm::compile::{CompileOptions, compile_module};
    use kernel_core::wasm::env::{VMShape, WASM2_FEATURES, translate};

    std::fs::create_dir_all(dir).map_err(|error| error.to_string())?;
    let by_export = wasmparser::Parser::new(0)
        .parse_all(wasm)
        .filter_map(Result::ok)
        .find_map(|payload| match payload {
            wasmparser::Payload::ExportSection(reader) => reader
                .into_iter()
                .filter_map(Result::ok)
                .find(|item| item.name == export)
                .map(|item| item.index),
            _ => None,
        });
    let index = by_export
        .or_else(|| export.parse().ok())
        .ok_or_else(|| format!("no export {export}"))?;
    let module = translate(wasm, WASM2_FEATURES).map_err(|error| format!("{error:?}"))?;
    let shape = VMShape::for_module(&module).map_err(|error| format!("{error:?}"))?;
    let compiled = compile_module(
        Isa::X86_64,
        CompileOptions::default(),
        &module,
        wasm,
        &shape,
    )
    .map_err(|error| format!("{error:?}"))?;
    let defined = index
        .checked_sub(module.num_imported_functions)
        .ok_or_else(|| format!("function {index} is imported"))?;
    let function = compiled
        .functions
        .get(defined as usize)
        .ok_or_else(|| format!("no function {defined}"))?;
    let code = &compiled.code[function.offset as usize..(function.offset + function.len) as usize];
    std::fs::write(dir.join("kernel-core.bin"), code).map_err(|error| error.to_string())?;
    let cwasm = wt::engine(false)
        .precompile_module(wasm)
        .map_err(|error| error.to_string())?;
    std::fs::write(dir.join("wasmtime.cwasm"), cwasm).map_err(|error| error.to_string())?;
    println!(
        "{export} is function {index}: objdump -D -b binary -m i386:x86-64 {0}/kernel-core.bin; objdump -d {0}/wasmtime.cwasm (function[{index}])",
        dir.display()
    );
    Ok(())
}
