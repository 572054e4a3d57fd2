//! Booting the hosted kernel: `sim` without arguments, `sim boot`, and the hosted
//! half of `sim run` and `sim wast`.
//!
//! Every command that runs WebAssembly builds a boot image (`kernel_core::boot::image`)
//! and hands it to [`kernel_core::boot::main`] on a [`HostedHal`]: the same boot path the
//! RISC-V kernel takes under `sim qemu`. The kernel ends the process with its status.

use std::path::{Path, PathBuf};

use hal_hosted::{HostedConfig, HostedHal};
use std::time::{SystemTime, UNIX_EPOCH};

use kernel_core::boot::image::{
    BootImage, BootRequest, DeterminismRequest, Job, KernelOptions, Preopen, PreopenSource,
    Program, WasiOptions,
};
use kernel_core::hal::Machine as _;
use kernel_core::vfs::NodeKind;
use kernel_core::vfs::tree::{self, TreeEntry};

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
            bench_times: false,
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
    wasi: WasiOptions,
) -> Result<BootImage, Status> {
    let Some(init) = init else {
        let mut image = crate::demo::image(options);
        image.wasi = wasi;
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
        wasi,
        options,
        job: Job::Boot(BootRequest {
            programs: loaded,
            determinism,
        }),
    })
}

/// What WASI programs see, from the command line (`sim run`, `sim boot` and their `sim
/// qemu` forms), as in `wasmtime run`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct WasiArgs {
    /// An environment variable of WASI programs (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// A host directory WASI programs may use, preopened under the name GUEST (default:
    /// HOST as written); repeatable. Hosted, changes go straight to the host directory;
    /// under QEMU the tree is carried in the boot image and the changed tree is written
    /// back when the kernel shuts down.
    #[arg(long = "dir", value_name = "HOST[::GUEST]")]
    pub dirs: Vec<String>,
}

impl WasiArgs {
    /// The host directories, in `--dir` order.
    pub fn host_dirs(&self) -> Vec<PathBuf> {
        self.dirs
            .iter()
            .map(|dir| PathBuf::from(dir.split_once("::").map_or(dir.as_str(), |(host, _)| host)))
            .collect()
    }

    /// The WASI options of the boot image: host paths hosted (`in_image` false), the
    /// trees themselves under QEMU, with `stdin` as standard input when given.
    ///
    /// # Errors
    /// The status to exit with, after the problem was reported on stderr.
    pub fn options(&self, in_image: bool, stdin: Option<Vec<u8>>) -> Result<WasiOptions, Status> {
        let mut options = WasiOptions {
            env: Vec::new(),
            preopens: Vec::new(),
            stdin,
            realtime_ns: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |time| u64::try_from(time.as_nanos()).unwrap_or(u64::MAX)),
            seed: host_seed(),
        };
        for var in &self.env {
            if !var.contains('=') {
                eprintln!("error: --env {var}: expected KEY=VALUE");
                return Err(Status::Usage);
            }
            options.env.push(var.clone());
        }
        for dir in &self.dirs {
            let (host, guest) = dir.split_once("::").unwrap_or((dir, dir));
            if !Path::new(host).is_dir() {
                eprintln!("error: --dir {dir}: `{host}` is not a directory");
                return Err(Status::Usage);
            }
            let source = if in_image {
                match read_tree(Path::new(host)) {
                    Ok(entries) => PreopenSource::Tree(tree::encode(&entries)),
                    Err(error) => {
                        eprintln!("error: --dir {dir}: {error}");
                        return Err(Status::Usage);
                    }
                }
            } else {
                PreopenSource::Host(host.to_owned())
            };
            options.preopens.push(Preopen {
                guest: guest.to_owned(),
                source,
            });
        }
        Ok(options)
    }
}

/// Seed bytes from the host's entropy source (for platforms without one).
fn host_seed() -> Vec<u8> {
    let mut seed = vec![0u8; 32];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut file| std::io::Read::read_exact(&mut file, &mut seed))
        .is_err()
    {
        let time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |time| time.as_nanos());
        seed[..16].copy_from_slice(&time.to_le_bytes());
    }
    seed
}

/// The tree of host directory `root` ([`kernel_core::vfs::tree`]), entries sorted by name,
/// links not followed.
///
/// # Errors
/// The first I/O error.
pub fn read_tree(root: &Path) -> std::io::Result<Vec<TreeEntry>> {
    let mut entries = Vec::new();
    read_tree_into(root, "", &mut entries)?;
    Ok(entries)
}

fn read_tree_into(dir: &Path, prefix: &str, entries: &mut Vec<TreeEntry>) -> std::io::Result<()> {
    let mut children: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    children.sort_by_key(std::fs::DirEntry::file_name);
    for child in children {
        let Ok(name) = child.file_name().into_string() else {
            continue;
        };
        let path = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let metadata = std::fs::symlink_metadata(child.path())?;
        let modify_ns = metadata
            .modified()
            .ok()
            .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |time| u64::try_from(time.as_nanos()).unwrap_or(u64::MAX));
        let (kind, data) = if metadata.is_dir() {
            (NodeKind::Directory, Vec::new())
        } else if metadata.is_symlink() {
            let target = std::fs::read_link(child.path())?;
            (
                NodeKind::Symlink,
                target.to_string_lossy().into_owned().into_bytes(),
            )
        } else {
            (NodeKind::File, std::fs::read(child.path())?)
        };
        entries.push(TreeEntry {
            path: path.clone(),
            kind,
            data,
            modify_ns,
        });
        if kind == NodeKind::Directory {
            read_tree_into(&child.path(), &path, entries)?;
        }
    }
    Ok(())
}

/// Makes host directory `root` hold exactly `entries` (the tree the kernel wrote back):
/// removes what the tree no longer has, then creates and rewrites the rest.
///
/// # Errors
/// The first I/O error.
pub fn apply_tree(root: &Path, entries: &[TreeEntry]) -> std::io::Result<()> {
    use std::collections::BTreeMap;
    let wanted: BTreeMap<&str, &TreeEntry> = entries
        .iter()
        .map(|entry| (entry.path.as_str(), entry))
        .collect();
    let existing = read_tree(root)?;
    // Deepest first, so that a directory is emptied before it goes.
    for entry in existing.iter().rev() {
        let keep = wanted
            .get(entry.path.as_str())
            .is_some_and(|new| new.kind == entry.kind);
        if !keep {
            let path = root.join(&entry.path);
            if entry.kind == NodeKind::Directory {
                std::fs::remove_dir_all(&path)?;
            } else {
                std::fs::remove_file(&path)?;
            }
        }
    }
    let existing: BTreeMap<&str, &TreeEntry> = existing
        .iter()
        .map(|entry| (entry.path.as_str(), entry))
        .collect();
    for entry in entries {
        let path = root.join(&entry.path);
        let old = existing
            .get(entry.path.as_str())
            .filter(|old| old.kind == entry.kind);
        match entry.kind {
            NodeKind::Directory => {
                if !path.is_dir() {
                    std::fs::create_dir(&path)?;
                }
            }
            NodeKind::Symlink => {
                if old.is_none_or(|old| old.data != entry.data) {
                    let _ = std::fs::remove_file(&path);
                    std::os::unix::fs::symlink(
                        String::from_utf8_lossy(&entry.data).as_ref(),
                        &path,
                    )?;
                }
            }
            NodeKind::File | NodeKind::Other => {
                if old.is_none_or(|old| old.data != entry.data) {
                    std::fs::write(&path, &entry.data)?;
                }
                if old.is_none_or(|old| old.modify_ns != entry.modify_ns) {
                    let time = UNIX_EPOCH + std::time::Duration::from_nanos(entry.modify_ns);
                    std::fs::File::options()
                        .write(true)
                        .open(&path)
                        .and_then(|file| file.set_modified(time))?;
                }
            }
        }
    }
    Ok(())
}
