//! `sim`: kernel-core on the hosted HAL, and the command line around it.
//!
//! Exit statuses are listed in [`exit`] and in the README.

mod boot;
mod compile;
mod demo;
mod exit;
mod jit_debug;
mod layout;
mod module_file;
mod qemu;
mod run;
mod wast;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kernel_core::boot::image::KernelOptions;

/// The WebAssembly microkernel, simulated in a Linux process.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// What to do; without a subcommand, boot the hosted kernel with the built-in demo
    /// system.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the VMContext layout of a module (`.wasm` binary or `.wat` text).
    Layout {
        /// The module file.
        file: PathBuf,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run a module: its start function, then `_start` or the `--invoke`d export.
    Run {
        /// The module file (`.wasm` or `.wat`).
        file: PathBuf,
        /// The export to call; its results are printed one per line.
        #[arg(long)]
        invoke: Option<String>,
        /// Arguments of the `--invoke`d call, in the spec scripts' notation: `-5`, `0xff`, `1.5`, `0x1p3`,
        /// `nan:0x200000`, `i32x4 1 2 3 4`, `ref.null`, `ref.extern 7` (see the README);
        /// without `--invoke`, the program's arguments (WASI), after its file name.
        #[arg(allow_hyphen_values = true)]
        args: Vec<String>,
        /// After the run, print on stderr one line per interval the program measured with
        /// the `bench.start` / `bench.end` imports: `bench: N ns`.
        #[arg(long)]
        bench_times: bool,
        /// CPUs and limits of the kernel the module runs in.
        #[command(flatten)]
        kernel: boot::KernelArgs,
        /// Profiling.
        #[command(flatten)]
        debug: DebugArgs,
        /// The WASI environment and directories.
        #[command(flatten)]
        wasi: boot::WasiArgs,
    },
    /// Boot the kernel with these programs (named by file stem, for `spawn`) and start the
    /// first as the init process; ends when no process is left, printing one exit line per
    /// process on stderr. Without programs, the built-in demo system.
    Boot {
        /// The init program (`.wasm` or `.wat`).
        init: Option<PathBuf>,
        /// More boot programs, which processes start with `spawn`.
        programs: Vec<PathBuf>,
        /// CPUs and limits of the kernel.
        #[command(flatten)]
        kernel: boot::KernelArgs,
        /// Deterministic mode, trace, record and replay.
        #[command(flatten)]
        determinism: boot::DeterminismArgs,
        /// Profiling.
        #[command(flatten)]
        debug: DebugArgs,
        /// The WASI environment and directories of every program.
        #[command(flatten)]
        wasi: boot::WasiArgs,
    },
    /// Boot the hosted kernel without work: it checks its HAL (the conformance suite that
    /// also runs when QEMU boots the kernel without an initrd) and reports.
    SelfCheck,
    /// Run spec scripts (`.wast`) and print `N passed, M failed`.
    Wast {
        /// The scripts.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The WebAssembly version the scripts are written against.
        #[arg(long, value_enum, default_value = "v2")]
        spec: wast::SpecVersion,
        /// Profiling.
        #[command(flatten)]
        debug: DebugArgs,
    },
    /// Print the Cranelift IR and the machine code of a module's functions, for either
    /// ISA from any host.
    Compile(compile::CompileArgs),
    /// Do the work of `run`, `wast` or `boot` in the RISC-V kernel under QEMU.
    Qemu(qemu::QemuArgs),
}

/// Debugging and profiling flags of the hosted commands that run WebAssembly.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
struct DebugArgs {
    /// Write `/tmp/perf-<pid>.map` (`START SIZE name` per JIT-compiled function) so that
    /// `perf report` names WebAssembly functions.
    #[arg(long)]
    perf_map: bool,
}

fn main() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
    let debug = match &cli.command {
        Some(
            Command::Run { debug, .. } | Command::Boot { debug, .. } | Command::Wast { debug, .. },
        ) => Some(*debug),
        None | Some(Command::SelfCheck) => Some(DebugArgs::default()),
        Some(Command::Layout { .. } | Command::Compile(_) | Command::Qemu(_)) => None,
    };
    if let Some(debug) = debug
        && let Err(error) = jit_debug::install(debug.perf_map)
    {
        eprintln!("error: cannot create the perf map: {error}");
        return ExitCode::from(exit::Status::Usage.code());
    }
    let status = match cli.command {
        None => boot::hosted(Some(&demo::image(KernelOptions::default())), None),
        Some(Command::SelfCheck) => boot::hosted(None, None),
        Some(Command::Layout { file, json }) => layout::run(&file, json).code(),
        Some(Command::Run {
            file,
            invoke,
            args,
            kernel,
            wasi,
            bench_times,
            ..
        }) => run::run(&file, invoke.as_deref(), &args, kernel, bench_times, &wasi).code(),
        Some(Command::Boot {
            init,
            programs,
            kernel,
            determinism,
            wasi,
            ..
        }) => match determinism.request(kernel.cpus, false).and_then(|request| {
            let deterministic = request.is_some();
            let options = wasi.options(false, None)?;
            boot::boot_image(
                init.as_deref(),
                &programs,
                kernel.options(),
                request,
                options,
            )
            .map(|image| (image, deterministic))
        }) {
            Ok((image, true)) => boot::hosted_deterministic(&image, &determinism),
            Ok((image, false)) => boot::hosted(Some(&image), kernel.cpus),
            Err(status) => status.code(),
        },
        Some(Command::Wast { files, spec, .. }) => wast::run(&files, spec).code(),
        Some(Command::Compile(args)) => compile::run(&args).code(),
        Some(Command::Qemu(args)) => qemu::run(args),
    };
    ExitCode::from(status)
}

/// Logs go to stderr, filtered by `SIM_LOG` (for example `SIM_LOG=kernel_core=trace`),
/// in colour only on a terminal.
fn init_tracing() {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_env("SIM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}
