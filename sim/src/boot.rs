//! Booting the hosted kernel: `sim` without arguments, `sim boot`, and the hosted
//! half of `sim run` and `sim wast`.
//!
//! Every command that runs WebAssembly builds a boot image (`kernel_core::boot::image`)
//! and hands it to [`kernel_core::boot::main`] on a [`HostedHal`]: the same boot path the
//! RISC-V kernel takes under `sim qemu`. The kernel ends the process with its status.

use std::path::{Path, PathBuf};

use hal_hosted::{HostedConfig, HostedHal};
use kernel_core::boot::image::{BootImage, BootRequest, Job, KernelOptions, Program};

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
) -> Result<BootImage, Status> {
    let Some(init) = init else {
        return Ok(crate::demo::image(options));
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
        job: Job::Boot(BootRequest { programs: loaded }),
    })
}
