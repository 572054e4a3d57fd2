//! `sim qemu run|wast|boot ...`: the work of `sim run`, `sim wast` and `sim boot`, done by
//! the RISC-V kernel (`hal-riscv`) in `qemu-system-riscv64 -machine virt`.
//!
//! The host converts its inputs (module text to binary, spec scripts to commands) into a
//! boot image (`kernel_core::boot::image`) exactly as the hosted command does, passes it
//! to QEMU as the initrd (`--cpus N` becomes `-smp N`), shows the
//! console from the kernel's [`CONSOLE_BEGIN`] line on (OpenSBI's banner comes before it),
//! sends lines marked [`STDERR_PREFIX`] to standard error, and exits with the status the
//! kernel powered off with: the hosted command's status. `sim qemu wast` boots one QEMU
//! per script, `--jobs` at a time, prints their outputs in the order of the scripts and
//! sums their counts into the final `N passed, M failed`.
//!
//! The kernel is `target/riscv64gc-unknown-none-elf/release/hal-riscv` of this workspace,
//! built with cargo when it is missing or older than its sources; `--kernel` names
//! another image.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant, SystemTime};
use std::{fs, io, thread};

use clap::{Args, Subcommand};
use kernel_core::boot::image::{
    BootImage, CONSOLE_BEGIN, Job, KernelOptions, STDERR_PREFIX, WastRequest,
};
use kernel_core::hal::unescape_program_bytes;
use kernel_core::job::JobStatus;
use kernel_core::sched::deterministic::FRAME_PREFIX;

use kernel_core::vfs::tree::TREE_PREFIX;

use crate::boot::{DeterminismArgs, KernelArgs, WasiArgs};
use crate::exit::Status;
use crate::wast::SpecVersion;

/// The machine's memory in MiB for every QEMU this invocation starts (`--ram`).
static RAM_MIB: AtomicU32 = AtomicU32::new(2048);

/// The QEMU binary.
const QEMU: &str = "qemu-system-riscv64";

/// The kernel's target triple.
const KERNEL_TARGET: &str = "riscv64gc-unknown-none-elf";

/// `sim qemu`'s options and subcommand.
#[derive(Debug, Args)]
pub struct QemuArgs {
    /// The kernel image to boot (default: this workspace's release build of `hal-riscv`,
    /// built when missing or out of date).
    #[arg(long, global = true, value_name = "PATH")]
    kernel: Option<PathBuf>,
    /// Stop a QEMU instance that has not powered off after this many seconds.
    #[arg(long, global = true, value_name = "SECS", default_value_t = 600)]
    timeout: u64,
    /// The machine's memory in MiB (QEMU's `-m`).
    #[arg(long, global = true, value_name = "MIB", default_value_t = 2048,
          value_parser = clap::value_parser!(u32).range(64..=65536))]
    ram: u32,
    /// QEMU's `-cpu` option instead of the default `rv64,v=true,vlen=128,vext_spec=v1.0`
    /// (for tests of machines without V or Sv48: `rv64,v=false`, `rv64,sv48=false`).
    #[arg(long, global = true, value_name = "CPU", hide = true)]
    qemu_cpu: Option<String>,
    /// The kernel's log filter: `target=level` directives and a default level, as in
    /// `SIM_LOG` (`--log kernel_core::sched=trace`); logs go to standard error.
    #[arg(long, global = true, value_name = "FILTER", value_parser = parse_log_filter)]
    log: Option<String>,
    /// Start QEMU stopped, waiting for a debugger on TCP port 1234 (`--gdb=PORT` for
    /// another): `gdb-multiarch KERNEL -ex 'target remote :PORT'`. No `--timeout`
    /// applies then.
    #[arg(long, global = true, value_name = "PORT", num_args = 0..=1,
          require_equals = true, default_missing_value = "1234")]
    gdb: Option<u16>,
    /// What the kernel does.
    #[command(subcommand)]
    command: QemuCommand,
}

/// What `sim qemu` runs in the kernel.
#[derive(Debug, Subcommand)]
pub enum QemuCommand {
    /// Run a module in the kernel, as `sim run` does.
    Run {
        /// The module file (`.wasm` or `.wat`).
        file: PathBuf,
        /// The export to call; its results are printed one per line.
        #[arg(long)]
        invoke: Option<String>,
        /// Arguments of the call, in the spec scripts' notation: `-5`, `0xff`, `1.5`, `0x1p3`,
        /// `nan:0x200000`, `i32x4 1 2 3 4`, `ref.null`, `ref.extern 7` (see the README).
        #[arg(allow_hyphen_values = true)]
        args: Vec<String>,
        /// After the run, print on stderr one line per interval the program measured with
        /// the `bench.start` / `bench.end` imports: `bench: N ns`.
        #[arg(long)]
        bench_times: bool,
        /// CPUs (harts) and limits of the kernel.
        #[command(flatten)]
        kernel: KernelArgs,
        /// The WASI environment and directories.
        #[command(flatten)]
        wasi: WasiArgs,
    },
    /// Boot the kernel with these programs, as `sim boot` does (without programs, the
    /// built-in demo).
    Boot {
        /// The init program (`.wasm` or `.wat`).
        init: Option<PathBuf>,
        /// More boot programs, which processes start with `spawn`.
        programs: Vec<PathBuf>,
        /// CPUs (harts) and limits of the kernel.
        #[command(flatten)]
        kernel: KernelArgs,
        /// Deterministic mode, trace, record and replay (one hart runs them all).
        #[command(flatten)]
        determinism: DeterminismArgs,
        /// The WASI environment and directories of every program.
        #[command(flatten)]
        wasi: WasiArgs,
    },
    /// Run spec scripts in the kernel, as `sim wast` does; one QEMU per script.
    Wast {
        /// The scripts.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The WebAssembly version the scripts are written against.
        #[arg(long, value_enum, default_value = "v2")]
        spec: SpecVersion,
        /// How many QEMU instances run at once (default: the available parallelism).
        #[arg(long, value_name = "N")]
        jobs: Option<usize>,
    },
}

/// Checks a `--log` filter on the host, so that a bad one is a usage error.
fn parse_log_filter(text: &str) -> Result<String, String> {
    kernel_core::log::LogFilter::parse(text).map(|_| text.to_owned())
}

/// The `--log` filter, when given.
static LOG_FILTER: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The `--gdb` port, when given.
static GDB_PORT: std::sync::OnceLock<u16> = std::sync::OnceLock::new();

/// The bundle's bytes, with the `--log` filter in its trailer.
fn encode(image: &BootImage) -> Vec<u8> {
    image.encode_with_log_filter(LOG_FILTER.get().map(String::as_str))
}

/// Runs `sim qemu`; returns the exit code.
pub fn run(options: QemuArgs) -> u8 {
    if let Some(cpu) = &options.qemu_cpu {
        let _ = QEMU_CPU.set(cpu.clone());
    }
    if let Some(filter) = &options.log {
        let _ = LOG_FILTER.set(filter.clone());
    }
    let mut timeout = Duration::from_secs(options.timeout);
    if let Some(port) = options.gdb {
        let _ = GDB_PORT.set(port);
        // A debugging session takes as long as it takes.
        timeout = Duration::from_secs(u64::from(u32::MAX));
    }
    RAM_MIB.store(options.ram, Ordering::Relaxed);
    let code = match options.command {
        QemuCommand::Run {
            file,
            invoke,
            args,
            kernel,
            wasi,
            bench_times,
        } => {
            let stdin = wasi_stdin(std::slice::from_ref(&file));
            match wasi.options(true, stdin).and_then(|options| {
                crate::run::image(
                    &file,
                    invoke.as_deref(),
                    &args,
                    kernel,
                    bench_times,
                    options,
                )
            }) {
                Ok(image) => run_image(
                    options.kernel,
                    &file,
                    &image,
                    kernel.cpus,
                    timeout,
                    None,
                    &wasi.host_dirs(),
                ),
                Err(status) => status.code(),
            }
        }
        QemuCommand::Boot {
            init,
            programs,
            kernel,
            determinism,
            wasi,
        } => {
            let files: Vec<PathBuf> = init.iter().chain(&programs).cloned().collect();
            let stdin = wasi_stdin(&files);
            match determinism.request(kernel.cpus, true).and_then(|request| {
                let deterministic = request.is_some();
                let options = wasi.options(true, stdin)?;
                crate::boot::boot_image(
                    init.as_deref(),
                    &programs,
                    kernel.options(),
                    request,
                    options,
                )
                .map(|image| (image, deterministic))
            }) {
                Ok((image, deterministic)) => {
                    let path = init.unwrap_or_else(|| PathBuf::from("demo"));
                    // Deterministic mode runs every simulated CPU on one hart.
                    let (harts, files) = if deterministic {
                        (Some(1), Some(&determinism))
                    } else {
                        (kernel.cpus, None)
                    };
                    run_image(
                        options.kernel,
                        &path,
                        &image,
                        harts,
                        timeout,
                        files,
                        &wasi.host_dirs(),
                    )
                }
                Err(status) => status.code(),
            }
        }
        QemuCommand::Wast { files, spec, jobs } => {
            let jobs = jobs
                .or_else(|| thread::available_parallelism().ok().map(usize::from))
                .unwrap_or(1)
                .max(1);
            // One debugger port: the scripts' QEMUs wait for it one after the other.
            let jobs = if options.gdb.is_some() { 1 } else { jobs };
            run_scripts(options.kernel, &files, spec, jobs, timeout).code()
        }
    };
    unless_output_failed(code)
}

/// Whether the boots of `sim qemu run` and `sim qemu boot` forward this process's
/// standard input (a terminal) to the guest's UART as it is typed.
static LIVE_STDIN: AtomicBool = AtomicBool::new(false);

/// The byte sent to the guest's UART after the last byte of a live standard input:
/// ASCII EOT, which hal-riscv's console takes as the end of the input
/// (`hal_riscv::console_input::END_OF_INPUT`).
const END_OF_INPUT: u8 = 0x04;

/// QEMU's escape character on its multiplexed console (`-nographic`): Ctrl-A. Sent twice,
/// it reaches the guest once.
const QEMU_ESCAPE: u8 = 0x01;

/// Standard input for WASI programs under QEMU when one of `files` imports WASI (a
/// program that does not could not read it, and a pipe that never closes must not hang
/// it). A pipe or a file is read up front and goes in the boot image (end of file after
/// it). A terminal is read live: `None` here (the kernel reads the console), and the boot
/// forwards what is typed to the guest's UART, then [`END_OF_INPUT`] when the terminal
/// reaches end of file (Ctrl-D at the start of a line); see [`forward_stdin`].
fn wasi_stdin(files: &[PathBuf]) -> Option<Vec<u8>> {
    use std::io::{IsTerminal as _, Read as _};
    let stdin = io::stdin();
    let imports_wasi = files.iter().any(|file| {
        fs::read(file).is_ok_and(|bytes| {
            bytes
                .windows(kernel_core::wasi::MODULE.len())
                .any(|window| window == kernel_core::wasi::MODULE.as_bytes())
        })
    });
    if !imports_wasi {
        return None;
    }
    if stdin.is_terminal() {
        LIVE_STDIN.store(true, Ordering::Relaxed);
        return None;
    }
    let mut bytes = Vec::new();
    stdin.lock().read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

/// Applies the trees the kernel wrote back to the `--dir` host directories.
fn apply_trees(trees: &[(usize, Vec<u8>)], dirs: &[PathBuf]) -> Result<(), String> {
    for (index, bytes) in trees {
        let dir = dirs
            .get(*index)
            .ok_or_else(|| format!("the kernel wrote back an unknown directory {index}"))?;
        let entries = kernel_core::vfs::tree::decode(bytes)
            .map_err(|error| format!("the tree of {} came back garbled: {error}", dir.display()))?;
        crate::boot::apply_tree(dir, &entries)
            .map_err(|error| format!("cannot update {}: {error}", dir.display()))?;
    }
    Ok(())
}

/// `sim qemu run` and `sim qemu boot`: one boot with `image`, its console shown as it
/// arrives; in deterministic mode, the framed trace and recording lines written to the
/// files of `determinism`.
fn run_image(
    kernel: Option<PathBuf>,
    path: &Path,
    image: &BootImage,
    cpus: Option<u16>,
    timeout: Duration,
    determinism: Option<&DeterminismArgs>,
    dirs: &[PathBuf],
) -> u8 {
    let kernel = match prepare(kernel) {
        Ok(kernel) => kernel,
        Err(status) => return status.code(),
    };
    let outcome = boot(
        &kernel,
        &encode(image),
        cpus.unwrap_or(1),
        timeout,
        determinism.is_some(),
        |line| {
            line.print();
        },
    );
    if let Err(message) = apply_trees(&outcome.trees, dirs) {
        eprintln!("error: {message}");
        return Status::KernelFailure.code();
    }
    let code = match outcome.finish() {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {}: {message}", path.display());
            return Status::KernelFailure.code();
        }
    };
    if let Some(determinism) = determinism {
        let framed = |wanted: u8| -> String {
            outcome
                .lines
                .iter()
                .filter_map(|line| match line {
                    Line::Framed(tag, text) if *tag == wanted => Some(format!("{text}\n")),
                    _ => None,
                })
                .collect()
        };
        let (trace, recording) = (framed(b'T'), framed(b'R'));
        if let Err(status) = determinism.write_outputs(Some(&trace), Some(&recording)) {
            return status.code();
        }
    }
    code
}

/// `sim qemu wast`.
fn run_scripts(
    kernel: Option<PathBuf>,
    files: &[PathBuf],
    spec: SpecVersion,
    jobs: usize,
    timeout: Duration,
) -> Status {
    let features = spec.features();
    // Every script is read and converted before any QEMU starts, exactly as `sim wast`
    // does it (a script that does not parse fails in its place).
    let scripts = match crate::wast::load_scripts(files) {
        Ok(scripts) => scripts,
        Err(status) => return status,
    };
    let work: Vec<Vec<u8>> = scripts
        .into_iter()
        .map(|script| {
            encode(&BootImage {
                wasi: kernel_core::boot::image::WasiOptions::default(),
                options: KernelOptions::default(),
                job: Job::Wast(WastRequest {
                    features: features.bits(),
                    scripts: vec![script],
                }),
            })
        })
        .collect();
    let kernel = match prepare(kernel) {
        Ok(kernel) => kernel,
        Err(status) => return status,
    };
    let results = run_parallel(kernel, work, jobs, timeout);
    let (mut passed, mut failed) = (0u64, 0u64);
    let mut kernel_failed = false;
    for (index, outcome) in results {
        let path = files[index].display();
        let mut lines = outcome.lines.clone();
        let counts = match lines.last() {
            Some(Line::Out(bytes)) => std::str::from_utf8(bytes).ok().and_then(parse_counts),
            _ => None,
        };
        if counts.is_some() {
            lines.pop();
        }
        for line in &lines {
            line.print();
        }
        match (counts, outcome.finish().map(JobStatus::from_code)) {
            (Some((p, f)), Ok(Some(JobStatus::Success | JobStatus::ScriptFailures))) => {
                passed += p;
                failed += f;
            }
            (_, Err(message)) => {
                eprintln!("error: {path}: {message}");
                kernel_failed = true;
            }
            (_, Ok(status)) => {
                eprintln!(
                    "error: {path}: the kernel ended with status {} and no counts",
                    status.map_or(-1, |status| i32::from(status.code()))
                );
                kernel_failed = true;
            }
        }
    }
    Line::Out(format!("{passed} passed, {failed} failed\n").into_bytes()).print();
    if kernel_failed {
        Status::KernelFailure
    } else if failed > 0 {
        Status::ScriptFailures
    } else {
        Status::Success
    }
}

/// Runs every work item, `jobs` QEMUs at a time, and yields the results in the order of
/// `work` as soon as each is ready (the first script's output does not wait for the
/// last).
fn run_parallel(
    kernel: PathBuf,
    work: Vec<Vec<u8>>,
    jobs: usize,
    timeout: Duration,
) -> impl Iterator<Item = (usize, Outcome)> {
    let count = work.len();
    let work = Arc::new(work);
    let next = Arc::new(AtomicUsize::new(0));
    let (sender, receiver) = mpsc::channel();
    for _ in 0..jobs.min(count) {
        let (work, next, sender, kernel) = (
            Arc::clone(&work),
            Arc::clone(&next),
            sender.clone(),
            kernel.clone(),
        );
        thread::spawn(move || {
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(bundle) = work.get(index) else {
                    return;
                };
                let result = boot(&kernel, bundle, 1, timeout, false, |_| {});
                if sender.send((index, result)).is_err() {
                    return;
                }
            }
        });
    }
    drop(sender);
    let mut pending = BTreeMap::new();
    let mut expected = 0;
    std::iter::from_fn(move || {
        loop {
            if let Some(result) = pending.remove(&expected) {
                expected += 1;
                return Some((expected - 1, result));
            }
            if expected == count {
                return None;
            }
            let (index, result) = receiver.recv().ok()?;
            pending.insert(index, result);
        }
    })
}

/// A console line after the kernel's marker.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Line {
    /// Bytes for standard output, unescaped, with the line's `\n` when it had one.
    Out(Vec<u8>),
    /// Bytes for standard error (the prefix stripped), as for `Out`.
    Err(Vec<u8>),
    /// A trace (`T`) or recording (`R`) line of deterministic mode, for a file (the frame
    /// stripped).
    Framed(u8, String),
}

/// Whether a line could not be printed: `sim qemu` then ends with
/// [`Status::OutputFailed`] instead of success, as the hosted commands do.
static OUTPUT_FAILED: AtomicBool = AtomicBool::new(false);

impl Line {
    /// Prints the line where the hosted command prints it; a failure (a closed pipe, a
    /// full disk) is recorded for the exit status, as `println!` would panic on it.
    fn print(&self) {
        let written = match self {
            Line::Out(bytes) => io::stdout().lock().write_all(bytes),
            Line::Err(bytes) => io::stderr().lock().write_all(bytes),
            Line::Framed(..) => Ok(()),
        };
        if written.is_err() {
            OUTPUT_FAILED.store(true, Ordering::Relaxed);
        }
    }
}

/// `code`, or [`Status::OutputFailed`] when it is success but output was lost.
fn unless_output_failed(code: u8) -> u8 {
    if code == Status::Success.code() && OUTPUT_FAILED.load(Ordering::Relaxed) {
        eprintln!("error: output could not be written");
        Status::OutputFailed.code()
    } else {
        code
    }
}

/// `N passed, M failed`, if `line` is that.
fn parse_counts(line: &str) -> Option<(u64, u64)> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let (passed, failed) = line.strip_suffix(" failed")?.split_once(" passed, ")?;
    Some((passed.parse().ok()?, failed.parse().ok()?))
}

/// How one QEMU run went.
#[derive(Debug, Clone)]
struct Outcome {
    /// The lines after the marker.
    lines: Vec<Line>,
    /// Whether the marker was seen.
    begun: bool,
    /// QEMU's exit code; `None` when it was killed or could not run.
    exit_code: Option<i32>,
    /// Why QEMU did not end normally.
    problem: Option<String>,
    /// The console before the marker, for diagnostics.
    preamble: String,
    /// Trees being written back: hexadecimal so far, by preopen index.
    partial_trees: BTreeMap<usize, String>,
    /// Trees written back in full: preopen index and bytes.
    trees: Vec<(usize, Vec<u8>)>,
}

impl Outcome {
    /// Takes one framed line of a tree written back (`tree <index> <hex>` or
    /// `tree <index> end`, see `kernel_core::vfs::tree::write_framed`).
    fn take_tree_line(&mut self, frame: &str) {
        let mut words = frame.split(' ');
        let (Some("tree"), Some(Ok(index)), Some(body)) = (
            words.next(),
            words.next().map(str::parse::<usize>),
            words.next(),
        ) else {
            self.problem = Some(format!("a garbled write-back line: {frame}"));
            return;
        };
        if body == "end" {
            let hex = self.partial_trees.remove(&index).unwrap_or_default();
            let bytes: Option<Vec<u8>> = (0..hex.len())
                .step_by(2)
                .map(|at| {
                    hex.get(at..at + 2)
                        .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                })
                .collect();
            match bytes {
                Some(bytes) => self.trees.push((index, bytes)),
                None => self.problem = Some(String::from("a garbled write-back tree")),
            }
        } else {
            self.partial_trees.entry(index).or_default().push_str(body);
        }
    }

    /// The kernel's exit code, or why there is none.
    fn finish(&self) -> Result<u8, String> {
        if let Some(problem) = &self.problem {
            return Err(problem.clone());
        }
        if !self.begun {
            return Err(format!(
                "the kernel did not start the job (exit code {:?}); console:\n{}",
                self.exit_code, self.preamble
            ));
        }
        let code = self
            .exit_code
            .ok_or_else(|| String::from("QEMU was killed by a signal"))?;
        u8::try_from(code).map_err(|_| format!("QEMU exited with status {code}"))
    }
}

/// Boots `kernel` on `cpus` harts with `bundle` as its initrd, calls `on_line` with every
/// line after the marker as it arrives, and gathers the outcome. Kills QEMU after
/// `timeout`. With `framed` (deterministic mode), lines framed by [`FRAME_PREFIX`] are
/// trace and recording lines; otherwise they are output like any other.
fn boot(
    kernel: &Path,
    bundle: &[u8],
    cpus: u16,
    timeout: Duration,
    framed: bool,
    on_line: impl Fn(&Line),
) -> Outcome {
    let mut outcome = Outcome {
        lines: Vec::new(),
        begun: false,
        exit_code: None,
        problem: None,
        preamble: String::new(),
        partial_trees: BTreeMap::new(),
        trees: Vec::new(),
    };
    let bundle_file = match BundleFile::write(bundle) {
        Ok(file) => file,
        Err(error) => {
            outcome.problem = Some(format!("cannot write the boot bundle: {error}"));
            return outcome;
        }
    };
    let mut child = match qemu_command(kernel, &bundle_file.path, cpus).spawn() {
        Ok(child) => child,
        Err(error) => {
            outcome.problem = Some(qemu_spawn_error(&error));
            return outcome;
        }
    };
    // A live standard input is forwarded once the kernel has begun: the firmware's UART
    // set-up drops a byte already received, and nothing reads the UART before.
    let mut begin = None;
    if let Some(input) = child.stdin.take() {
        let (sender, receiver) = mpsc::channel::<()>();
        begin = Some(sender);
        thread::spawn(move || {
            if receiver.recv().is_ok() {
                forward_stdin(io::stdin().lock(), input);
            }
        });
    }
    let (sender, receiver) = mpsc::channel();
    let stdout = child.stdout.take().expect("QEMU's stdout is piped");
    let reader = thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    if sender.send(line.clone()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match receiver.recv_timeout(left) {
            Ok(raw) => {
                // The line's end: `\n`, after a `\r` the firmware writes (a program's
                // `\r` comes escaped).
                let (body, newline) = match raw.strip_suffix(b"\n") {
                    Some(body) => (body.strip_suffix(b"\r").unwrap_or(body), true),
                    None => (&raw[..], false),
                };
                let text = String::from_utf8_lossy(body);
                let text = &*text;
                if !outcome.begun {
                    if text == CONSOLE_BEGIN {
                        outcome.begun = true;
                        if let Some(begin) = begin.take() {
                            let _ = begin.send(());
                        }
                    } else {
                        outcome.preamble.push_str(text);
                        outcome.preamble.push('\n');
                    }
                    continue;
                }
                // Deterministic mode's trace and recording lines (`<prefix>T...`,
                // `<prefix>R...`) and written-back trees (`<prefix>tree ...`) share a
                // prefix byte and differ by what follows it.
                if framed && let Some(rest) = text.strip_prefix(char::from(FRAME_PREFIX)) {
                    let mut chars = rest.chars();
                    if let Some(tag @ ('T' | 'R')) = chars.next() {
                        // The tag is ASCII.
                        outcome
                            .lines
                            .push(Line::Framed(tag as u8, chars.as_str().to_string()));
                        continue;
                    }
                }
                if let Some(frame) = text.strip_prefix(char::from(TREE_PREFIX)) {
                    outcome.take_tree_line(frame);
                    continue;
                }
                // A line for standard error may follow an unfinished line for standard
                // output (a fatal report in the middle of a line): split there. Programs'
                // bytes come escaped (`Console::write_program_bytes`), so a marker byte is
                // the kernel's.
                let tail = |bytes: &[u8]| {
                    let mut bytes = unescape_program_bytes(bytes);
                    if newline {
                        bytes.push(b'\n');
                    }
                    bytes
                };
                let lines = match body.iter().position(|&byte| byte == STDERR_PREFIX) {
                    None => vec![Line::Out(tail(body))],
                    Some(0) => vec![Line::Err(tail(&body[1..]))],
                    Some(at) => vec![
                        Line::Out(unescape_program_bytes(&body[..at])),
                        Line::Err(tail(&body[at + 1..])),
                    ],
                };
                for line in lines {
                    on_line(&line);
                    outcome.lines.push(line);
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                kill(&mut child);
                outcome.problem = Some(format!(
                    "the kernel did not power off within {} s (QEMU killed)",
                    timeout.as_secs()
                ));
                break;
            }
        }
    }
    let _ = reader.join();
    match child.wait() {
        Ok(status) => outcome.exit_code = status.code(),
        Err(error) => outcome.problem = Some(format!("cannot wait for QEMU: {error}")),
    }
    outcome
}

/// Copies what is read from `from` (the terminal) to `to` (QEMU's standard input, its
/// serial console) as it comes, [`QEMU_ESCAPE`] doubled so that QEMU's console
/// multiplexer passes it on; at the end of `from` (or on an error reading it), sends
/// [`END_OF_INPUT`] and closes `to`. Stops when QEMU no longer takes input.
fn forward_stdin(mut from: impl io::Read, mut to: impl io::Write) {
    let mut chunk = [0u8; 4096];
    let mut escaped = Vec::with_capacity(chunk.len());
    loop {
        let read = match from.read(&mut chunk) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        escaped.clear();
        for &byte in &chunk[..read] {
            if byte == QEMU_ESCAPE {
                escaped.push(QEMU_ESCAPE);
            }
            escaped.push(byte);
        }
        if to.write_all(&escaped).and_then(|()| to.flush()).is_err() {
            return;
        }
    }
    let _ = to.write_all(&[END_OF_INPUT]).and_then(|()| to.flush());
}

/// Stops QEMU (it may have ended already).
fn kill(child: &mut Child) {
    let _ = child.kill();
}

/// QEMU's default `-cpu`: a hart with a 128-bit V extension.
const DEFAULT_QEMU_CPU: &str = "rv64,v=true,vlen=128,vext_spec=v1.0";

/// The `--qemu-cpu` option, when given.
static QEMU_CPU: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The QEMU command line for `kernel` on `cpus` harts with the initrd `bundle`.
fn qemu_command(kernel: &Path, bundle: &Path, cpus: u16) -> Command {
    let mut command = Command::new(QEMU);
    let cpu = QEMU_CPU.get().map_or(DEFAULT_QEMU_CPU, String::as_str);
    command
        .args(["-machine", "virt", "-cpu", cpu])
        .args(["-nographic", "-bios", "default", "-m"])
        .arg(format!("{}M", RAM_MIB.load(Ordering::Relaxed)))
        .arg("-smp")
        .arg(cpus.to_string())
        .arg("-kernel")
        .arg(kernel)
        .arg("-initrd")
        .arg(bundle);
    if let Some(port) = GDB_PORT.get() {
        eprintln!(
            "QEMU is stopped, waiting for a debugger on tcp::{port}: \
             gdb-multiarch {} -ex 'target remote :{port}'",
            kernel.display()
        );
        command.arg("-S").arg("-gdb").arg(format!("tcp::{port}"));
    }
    // A live standard input goes to the UART through a pipe this process writes
    // (`forward_stdin`): QEMU never reads the terminal itself.
    let stdin = if LIVE_STDIN.load(Ordering::Relaxed) {
        Stdio::piped()
    } else {
        Stdio::null()
    };
    command
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    command
}

/// The message for a QEMU that could not be started.
fn qemu_spawn_error(error: &io::Error) -> String {
    if error.kind() == io::ErrorKind::NotFound {
        format!("{QEMU} not found: install qemu-system-misc")
    } else {
        format!("cannot start {QEMU}: {error}")
    }
}

/// A boot bundle in a temporary file, removed when dropped.
struct BundleFile {
    path: PathBuf,
}

impl BundleFile {
    fn write(bundle: &[u8]) -> io::Result<Self> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "sim-qemu-{}-{}.bundle",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        fs::write(&path, bundle)?;
        Ok(Self { path })
    }
}

impl Drop for BundleFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Checks that QEMU is there and finds (or builds) the kernel.
///
/// # Errors
/// The status to exit with, after reporting the problem on stderr.
fn prepare(kernel: Option<PathBuf>) -> Result<PathBuf, Status> {
    match Command::new(QEMU)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(_) => {}
        Err(error) => {
            eprintln!("error: {}", qemu_spawn_error(&error));
            return Err(Status::KernelFailure);
        }
    }
    if let Some(kernel) = kernel {
        if kernel.is_file() {
            return Ok(kernel);
        }
        eprintln!("error: no kernel image at {}", kernel.display());
        return Err(Status::Io);
    }
    let workspace = workspace_root();
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map_or_else(|| workspace.join("target"), |dir| workspace.join(dir));
    let kernel = target_dir
        .join(KERNEL_TARGET)
        .join("release")
        .join("hal-riscv");
    if kernel_is_current(&kernel, &workspace) {
        return Ok(kernel);
    }
    eprintln!(
        "sim qemu: building the kernel (cargo build -p hal-riscv --target {KERNEL_TARGET} --release)"
    );
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let built = Command::new(cargo)
        .args([
            "build",
            "-p",
            "hal-riscv",
            "--target",
            KERNEL_TARGET,
            "--release",
        ])
        .current_dir(&workspace)
        .stdout(Stdio::null())
        .status();
    match built {
        Ok(status) if status.success() && kernel.is_file() => Ok(kernel),
        Ok(status) => {
            eprintln!("error: building the kernel failed ({status})");
            Err(Status::KernelFailure)
        }
        Err(error) => {
            eprintln!("error: cannot run cargo to build the kernel: {error}");
            Err(Status::KernelFailure)
        }
    }
}

/// The workspace this `sim` was built from.
fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Whether `kernel` exists and is newer than every source it is built from (when the
/// sources are there to compare with).
fn kernel_is_current(kernel: &Path, workspace: &Path) -> bool {
    let Some(built) = modified(kernel) else {
        return false;
    };
    let sources = [
        "hal-riscv/src",
        "hal-riscv/Cargo.toml",
        "hal-riscv/build.rs",
        "hal-riscv/linker.ld",
        "kernel-core/src",
        "kernel-core/Cargo.toml",
    ];
    sources
        .iter()
        .filter_map(|source| newest(&workspace.join(source)))
        .all(|source| source <= built)
}

/// The modification time of `path`.
fn modified(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).and_then(|meta| meta.modified()).ok()
}

/// The newest modification time of `path` and, for a directory, of everything in it.
fn newest(path: &Path) -> Option<SystemTime> {
    let mut latest = modified(path)?;
    if let Ok(entries) = fs::read_dir(path) {
        for entry in entries.flatten() {
            if let Some(time) = newest(&entry.path()) {
                latest = latest.max(time);
            }
        }
    }
    Some(latest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_stdin_doubles_the_escape_and_ends_with_the_marker() {
        let mut sent = Vec::new();
        forward_stdin(&b"ab\x01c\n"[..], &mut sent);
        assert_eq!(sent, b"ab\x01\x01c\n\x04");
        let mut sent = Vec::new();
        forward_stdin(&b""[..], &mut sent);
        assert_eq!(sent, [END_OF_INPUT]);
    }

    #[test]
    fn counts_line() {
        assert_eq!(parse_counts("19245 passed, 0 failed"), Some((19245, 0)));
        assert_eq!(parse_counts("1 passed, 2 failed"), Some((1, 2)));
        assert_eq!(parse_counts("x passed, 2 failed"), None);
        assert_eq!(parse_counts("trap: unreachable"), None);
    }

    #[test]
    fn written_back_trees_are_collected_from_their_lines() {
        let mut outcome = Outcome {
            lines: Vec::new(),
            begun: true,
            exit_code: Some(0),
            problem: None,
            preamble: String::new(),
            partial_trees: BTreeMap::new(),
            trees: Vec::new(),
        };
        outcome.take_tree_line("tree 1 00ff");
        outcome.take_tree_line("tree 1 10");
        outcome.take_tree_line("tree 1 end");
        assert_eq!(outcome.trees, vec![(1, vec![0x00, 0xff, 0x10])]);
        assert_eq!(outcome.problem, None);
        outcome.take_tree_line("tree 2 0g");
        outcome.take_tree_line("tree 2 end");
        assert!(outcome.problem.is_some());
    }

    #[test]
    fn statuses_follow_the_exit_code() {
        let outcome = |exit_code, begun| Outcome {
            lines: Vec::new(),
            begun,
            exit_code,
            problem: None,
            preamble: String::new(),
            partial_trees: BTreeMap::new(),
            trees: Vec::new(),
        };
        assert_eq!(outcome(Some(1), true).finish(), Ok(Status::Trap.code()));
        assert_eq!(outcome(Some(7), true).finish(), Ok(7));
        // A program's own exit code passes through.
        assert_eq!(outcome(Some(99), true).finish(), Ok(99));
        assert!(outcome(Some(0), false).finish().is_err());
        assert!(outcome(None, true).finish().is_err());
        assert!(outcome(Some(256), true).finish().is_err());
    }
}
