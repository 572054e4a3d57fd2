//! Booting the hosted kernel: `sim` without arguments, `sim boot`, and the hosted
//! half of `sim run` and `sim wast`.
//!
//! Every command that runs WebAssembly builds a boot image (`kernel_core::boot::image`)
//! and hands it to [`kernel_core::boot::main`] on a [`HostedHal`]: the same boot path the
//! RISC-V kernel takes under `sim qemu`. The kernel ends the process with its status.

use std::path::{Path, PathBuf};

use hal_hosted::{HostedConfig, HostedHal};
use kernel_core::boot::image::{
    BootImage, BootRequest, DeterminismRequest, Job, KernelOptions, Program,
};
use kernel_core::hal::Machine as _;

use crate::exit::Status;
use crate::module_file;

/// How the hosted kernel is set up, from the command line.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct KernelArgs {
    /// Number of simulated CPUs (default: one per host CPU).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub cpus: Option<u16>,
    /// CPU time each process may use, in seconds; past it the process ends with the trap
    /// `interrupted`.
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    pub cpu_limit: Option<u64>,
    /// Linear memory each process may have, in MiB (default 256); `memory.grow` past it
    /// returns -1.
    #[arg(long, value_name = "MIB", value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub memory_limit: Option<u32>,
    /// Processes that may exist at once (default 512); `spawn` past it returns -5.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_processes: Option<u32>,
    /// Handles each process may hold (default 256); `channel` past it returns -5.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(2..=1_000_000))]
    pub max_handles: Option<u32>,
}

impl KernelArgs {
    /// The kernel's options for these arguments.
    pub fn options(self) -> KernelOptions {
        let defaults = KernelOptions::default();
        KernelOptions {
            cpu_limit_ns: self.cpu_limit,
            memory_limit: self
                .memory_limit
                .map_or(defaults.memory_limit, |mib| u64::from(mib) << 20),
            max_processes: self.max_processes.unwrap_or(defaults.max_processes),
            max_handles: self.max_handles.unwrap_or(defaults.max_handles),
            quiet: false,
        }
    }
}

/// Deterministic mode's options of `sim boot` and `sim qemu boot`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DeterminismArgs {
    /// Deterministic mode: one host CPU runs the `--cpus N` simulated CPUs (default 1) in
    /// turn on a logical clock, with every scheduling choice drawn from seed S; prints
    /// `trace-hash: <hex>` at the end.
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,
    /// Write the trace (one line per scheduling decision and syscall, with its logical
    /// time, CPU and pid) to FILE. Needs `--seed`, `--record` or `--replay`.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// Deterministic mode, recording the seed (drawn from the clock unless `--seed` gives
    /// one) and every outside input to FILE, for `--replay`.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Replay the run recorded in FILE (hosted or under QEMU): the same output and trace
    /// hash. Refused when the program files changed.
    #[arg(long, value_name = "FILE", conflicts_with = "seed")]
    pub replay: Option<PathBuf>,
}

impl DeterminismArgs {
    /// The boot image's determinism request for these arguments (`None`: normal mode),
    /// with `cpus` simulated CPUs; `over_console` under QEMU.
    ///
    /// # Errors
    /// The status to exit with, after the problem was reported on stderr.
    pub fn request(
        &self,
        cpus: Option<u16>,
        over_console: bool,
    ) -> Result<Option<DeterminismRequest>, Status> {
        if self.seed.is_none() && self.record.is_none() && self.replay.is_none() {
            if self.trace.is_some() {
                eprintln!("error: --trace needs deterministic mode: --seed, --record or --replay");
                return Err(Status::Usage);
            }
            return Ok(None);
        }
        let replay = match &self.replay {
            Some(path) => match std::fs::read(path) {
                Ok(bytes) => Some(bytes),
                Err(error) => {
                    eprintln!("error: {}: {error}", path.display());
                    return Err(Status::Io);
                }
            },
            None => None,
        };
        Ok(Some(DeterminismRequest {
            cpus: u32::from(cpus.unwrap_or(1)),
            seed: self.seed,
            replay,
            trace: self.trace.is_some(),
            record: self.record.is_some(),
            over_console,
        }))
    }

    /// Writes the trace and the recording of a finished run to their files.
    ///
    /// # Errors
    /// [`Status::Io`] after reporting a file that could not be written.
    pub fn write_outputs(
        &self,
        trace: Option<&str>,
        recording: Option<&str>,
    ) -> Result<(), Status> {
        for (path, text) in [(&self.trace, trace), (&self.record, recording)] {
            if let Some(path) = path
                && let Err(error) = std::fs::write(path, text.unwrap_or_default())
            {
                eprintln!("error: {}: {error}", path.display());
                return Err(Status::Io);
            }
        }
        Ok(())
    }
}

/// `sim boot --seed/--record/--replay`: boots the hosted kernel in deterministic mode on
/// one host CPU, writes the trace and recording files, and ends the process with the
/// kernel's status.
pub fn hosted_deterministic(image: &BootImage, determinism: &DeterminismArgs) -> ! {
    let hal = HostedHal::new(HostedConfig {
        cpus: Some(1),
        boot_image: Some(image.encode()),
        ..HostedConfig::default()
    });
    let (hal, mut status) = kernel_core::boot::run(hal);
    if let Some(outputs) = kernel_core::sched::deterministic::take_outputs()
        && let Err(failed) =
            determinism.write_outputs(outputs.trace.as_deref(), outputs.recording.as_deref())
    {
        status = failed.code();
    }
    hal.shutdown(status)
}

/// Parses a positive number of seconds into nanoseconds.
fn parse_seconds(text: &str) -> Result<u64, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if !(seconds.is_finite() && seconds > 0.0 && seconds < 1e9) {
        return Err(format!("`{text}` is not a positive number of seconds"));
    }
    // Within range by the check above; the cast rounds toward zero.
    Ok((seconds * 1e9) as u64)
}

/// Boots the hosted kernel with `image` (`None`: the platform self-check) on `cpus` CPUs.
/// The kernel ends the process.
pub fn hosted(image: Option<&BootImage>, cpus: Option<u16>) -> ! {
    let hal = HostedHal::new(HostedConfig {
        cpus: cpus.map(usize::from),
        boot_image: image.map(BootImage::encode),
        ..HostedConfig::default()
    });
    kernel_core::boot::main(hal)
}

/// The boot image of `sim boot INIT [PROGRAM...]`: each program named by its file stem;
/// without `init`, the built-in demo.
///
/// # Errors
/// The status to exit with, after the problem was reported on stderr.
pub fn boot_image(
    init: Option<&Path>,
    programs: &[PathBuf],
    options: KernelOptions,
    determinism: Option<DeterminismRequest>,
) -> Result<BootImage, Status> {
    let Some(init) = init else {
        let mut image = crate::demo::image(options);
        if let Job::Boot(request) = &mut image.job {
            request.determinism = determinism;
        }
        return Ok(image);
    };
    let mut loaded: Vec<Program> = Vec::with_capacity(programs.len() + 1);
    for path in std::iter::once(init).chain(programs.iter().map(PathBuf::as_path)) {
        let Some(name) = path.file_stem().and_then(|stem| stem.to_str()) else {
            eprintln!("error: {}: no usable file name", path.display());
            return Err(Status::Usage);
        };
        if loaded.iter().any(|program| program.name == name) {
            eprintln!("error: two boot programs are named `{name}`");
            return Err(Status::Usage);
        }
        let module = module_file::read(path)?;
        loaded.push(Program {
            name: name.to_owned(),
            module,
        });
    }
    Ok(BootImage {
        options,
        job: Job::Boot(BootRequest {
            programs: loaded,
            determinism,
        }),
    })
}
