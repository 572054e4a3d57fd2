//! The kernel's one boot path, shared by every platform: from the boot information to
//! shutdown with a status once no process is left.
//!
//! `sim` (hosted) and the hal-riscv kernel binary each build their HAL and call [`main`];
//! neither holds boot logic of its own. [`main`] reads the boot image ([`image`]), makes
//! the engine and the [`Kernel`], compiles the boot programs, starts the first process
//! (the init program of `sim boot`, or the job process of `sim run` and `sim wast`),
//! starts the other CPUs, runs the scheduler on every CPU and, once the last process has
//! ended, shuts the machine down: with status 0 after `sim boot`, with the job's status
//! after a job. Without a boot image the kernel checks its platform and powers off.

pub mod image;

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt::Write as _;

use self::image::{BootImage, Job, PreopenSource, RunRequest, WasiOptions, WastRequest};
use crate::KernelHal;
use crate::console::ConsoleWriter;
use crate::hal::{BootInfo, Clock, Console, CpuId, Cpus, Isa, MemoryKind};
use crate::job::{self, ConsoleOutput, JobStatus};
use crate::kernel::{BootProgram, Kernel, LoadFailure, ProgramSpawnError};
use crate::process::program::ProgramEnvironment;
use crate::process::{Process, ProcessExit, ProcessMain};
use crate::replay::{Fnv1a64, Recording};
use crate::sched::deterministic::{FRAME_PREFIX, Setup};
use crate::sched::{self, Deterministic, Stopped};
use crate::sync::SpinLock;
use crate::vfs::memfs::MemFs;
use crate::vfs::{FileSystem, tree};
use crate::wasi::state::{SeededRandom, StdinBuffer, WasiSystem};
use crate::wasm::env::{ModuleError, ModuleErrorKind, WASM2_FEATURES};
use crate::wasm::runtime::{Engine, EngineConfig, LoadError, Module};

/// The stack of a job's process (`sim run`, `sim wast`): it compiles modules, which needs
/// more room than running them, and its WebAssembly gets a budget of 15.625 MiB of it,
/// 7.8 MiB of which counted in frame costs (`Process::wasm_stack_budget`).
pub const JOB_STACK_SIZE: usize = 16 * 1024 * 1024;

/// Boots the kernel on `hal` and never returns: the machine is shut down with the boot's
/// status (see the [module documentation](self)).
pub fn main<H: KernelHal>(hal: H) -> ! {
    let (hal, status) = run(hal);
    hal.shutdown(status)
}

/// Boots the kernel on `hal`, runs it until no process is left, and returns the boot's
/// status with the platform (which the kernel keeps for good). [`main`] then shuts the
/// machine down; a benchmark or test may boot again instead. CPUs other than the first
/// stay parked in their scheduler loop's end, so only the first boot may use them.
pub fn run<H: KernelHal>(hal: H) -> (&'static H, u8) {
    let (image, log_filter) = match hal.boot_image().map(BootImage::decode_with_log_filter) {
        None => {
            let hal: &'static H = Box::leak(Box::new(hal));
            return (hal, self_check(hal));
        }
        Some(Ok(decoded)) => decoded,
        Some(Err(error)) => {
            report_failure(&hal, format_args!("cannot read the boot image: {error}"));
            return (Box::leak(Box::new(hal)), JobStatus::KernelFailure.code());
        }
    };
    let deterministic = match &image.job {
        Job::Boot(request) => match deterministic_setup(&hal, request) {
            Ok(setup) => setup,
            Err(status) => return (Box::leak(Box::new(hal)), status.code()),
        },
        Job::Run(_) | Job::Wast(_) | Job::RunBatch(_) => None,
    };
    let mut config = EngineConfig::default();
    if deterministic.is_some() {
        // No timer: the epoch is the count of check points passed (`sched::deterministic`).
        config.compile.count_epoch_checks = true;
    } else {
        hal.install_timer_handler(sched::on_timer);
    }
    let over_console = match &image.job {
        Job::Boot(request) => request
            .determinism
            .as_ref()
            .is_some_and(|request| request.over_console),
        Job::Run(_) | Job::Wast(_) | Job::RunBatch(_) => false,
    };
    let engine: &'static Engine<H> = Box::leak(Box::new(Engine::new(hal, config)));
    let hal = engine.hal();
    crate::log::set_clock(hal);
    if let Some(text) = log_filter {
        match crate::log::LogFilter::parse(&text) {
            Ok(filter) => crate::log::install(hal, filter),
            Err(error) => report_failure(hal, format_args!("log filter ignored: {error}")),
        }
    }
    tracing::info!(
        target: "kernel_core::boot",
        cpus = hal.cpu_count(),
        job = match &image.job {
            Job::Run(_) => "run",
            Job::Wast(_) => "wast",
            Job::RunBatch(_) => "batch",
            Job::Boot(_) => "boot",
        },
        "booting"
    );
    let is_boot = matches!(image.job, Job::Boot(_));
    let programs = match &image.job {
        Job::Boot(request) => request
            .programs
            .iter()
            .map(|program| load_program(engine, &program.name, &program.module))
            .collect(),
        Job::Run(_) | Job::Wast(_) | Job::RunBatch(_) => Vec::new(),
    };
    let wasi = match wasi_system(hal, &image.wasi) {
        Ok(wasi) => wasi,
        Err(message) => {
            hal.write_error_bytes(format!("error: {message}\n").as_bytes());
            return (hal, JobStatus::Usage.code());
        }
    };
    let kernel: &'static Kernel<H> = Box::leak(Box::new(Kernel::new(
        engine,
        programs,
        image.options,
        is_boot && !image.options.quiet,
        deterministic.map(Deterministic::new),
        wasi,
    )));
    let started = match image.job {
        Job::Run(request) => spawn_job(kernel, "run", run_job(request)),
        Job::Wast(request) => spawn_job(kernel, "wast", wast_job(request)),
        Job::RunBatch(requests) => spawn_job(kernel, "batch", batch_job(requests)),
        Job::Boot(request) => start_init(kernel, request.programs.first().map(|p| p.name.as_str())),
    };
    if let Err(status) = started {
        return (hal, status.code());
    }
    // Deterministic mode runs every simulated CPU on this one: the others stay parked.
    let other_cpus = if kernel.deterministic().is_some() {
        0..0
    } else {
        1..hal.cpu_count()
    };
    for cpu in other_cpus {
        // CPU numbers are below `cpu_count`, which the HAL keeps small.
        let cpu = CpuId(u32::try_from(cpu).unwrap_or(u32::MAX));
        let arg = core::ptr::from_ref(kernel) as usize;
        if let Err(error) = hal.start_cpu(cpu, cpu_entry::<H>, arg) {
            // The kernel runs on the CPUs it has; one that will not start is reported.
            report_failure(hal, format_args!("cannot start CPU {}: {error:?}", cpu.0));
        }
    }
    if kernel.scheduler().run_cpu() == Stopped::Deadlock {
        kernel.report_deadlock();
    }
    write_back_trees(kernel);
    let mut status = if is_boot {
        0
    } else {
        job::exit_code_byte(kernel.last_status())
    };
    if let Some(det) = kernel.deterministic()
        && !finish_deterministic(hal, det, over_console)
    {
        status = JobStatus::Trap.code();
    }
    (hal, status)
}

/// Deterministic mode's setup for `request`, when it asks for deterministic mode: the
/// seed and CPUs given, drawn or replayed.
///
/// # Errors
/// The status to stop with, after saying why: an unreadable recording, or one made with
/// other programs.
fn deterministic_setup<H: KernelHal>(
    hal: &H,
    request: &image::BootRequest,
) -> Result<Option<Setup>, JobStatus> {
    let Some(determinism) = &request.determinism else {
        return Ok(None);
    };
    let programs: Vec<(String, u64)> = request
        .programs
        .iter()
        .map(|program| (program.name.clone(), Fnv1a64::of(&program.module)))
        .collect();
    if !(1..=64).contains(&determinism.cpus) && determinism.replay.is_none() {
        hal.write_error_bytes(b"error: deterministic mode simulates 1 to 64 CPUs\n");
        return Err(JobStatus::Usage);
    }
    let (seed, cpus, replay) = match &determinism.replay {
        Some(bytes) => {
            let recording = Recording::parse(bytes).map_err(|error| {
                hal.write_error_bytes(
                    format!("error: cannot read the recording: {error}\n").as_bytes(),
                );
                JobStatus::Usage
            })?;
            if recording.programs != programs {
                let changed = recording
                    .programs
                    .iter()
                    .find(|recorded| !programs.contains(recorded))
                    .or_else(|| {
                        programs
                            .iter()
                            .find(|now| !recording.programs.contains(now))
                    })
                    .map_or_else(String::new, |(name, _)| format!(" (`{name}` differs)"));
                hal.write_error_bytes(
                    format!(
                        "error: cannot replay: the recording was made with other program files{changed}\n"
                    )
                    .as_bytes(),
                );
                return Err(JobStatus::Usage);
            }
            (recording.seed, recording.cpus, Some(recording))
        }
        // No seed given: the clock's reading is the seed (kept in the recording).
        None => (
            determinism.seed.unwrap_or_else(|| hal.now_ns()),
            determinism.cpus,
            None,
        ),
    };
    Ok(Some(Setup {
        cpus,
        seed,
        programs,
        replay,
        trace: determinism.trace,
        record: determinism.record,
    }))
}

/// Ends a deterministic run: prints the trace hash, sends the trace and recording over the
/// console when asked to (`sim qemu`), and says whether a replay repeated its recording.
fn finish_deterministic<H: KernelHal>(hal: &H, det: &Deterministic, over_console: bool) -> bool {
    let (outputs, divergence) = det.finish();
    if over_console {
        for (tag, text) in [(b'T', &outputs.trace), (b'R', &outputs.recording)] {
            for line in text.iter().flat_map(|text| text.lines()) {
                let mut framed = Vec::with_capacity(line.len() + 3);
                framed.extend_from_slice(&[FRAME_PREFIX, tag]);
                framed.extend_from_slice(line.as_bytes());
                framed.push(b'\n');
                hal.write_bytes(&framed);
            }
        }
    }
    hal.write_error_bytes(format!("trace-hash: {:016x}\n", outputs.trace_hash).as_bytes());
    match divergence {
        None => true,
        Some(why) => {
            hal.write_error_bytes(
                format!("error: the replay did not repeat the recorded run: {why}\n").as_bytes(),
            );
            false
        }
    }
}

/// The WASI state of this boot: the environment, the preopened directories (host
/// directories through the HAL's storage, or trees from the image kept in RAM), standard
/// input from the image, and the seeded generator for platforms without entropy.
fn wasi_system<H: KernelHal>(hal: &'static H, options: &WasiOptions) -> Result<WasiSystem, String> {
    let realtime_at_boot = (options.realtime_ns, hal.now_ns());
    let mut system = WasiSystem::empty();
    system.env.clone_from(&options.env);
    system.realtime_at_boot = realtime_at_boot;
    system.random = SpinLock::new(SeededRandom::new(&options.seed, hal.now_ns()));
    if let Some(bytes) = &options.stdin {
        system.stdin = SpinLock::new(StdinBuffer {
            pending: bytes.clone(),
            from_image: true,
        });
    }
    for (index, preopen) in options.preopens.iter().enumerate() {
        let fs: Arc<dyn FileSystem> = match &preopen.source {
            PreopenSource::Host(path) => hal
                .open_directory(path)
                .map_err(|errno| format!("--dir {path}: cannot open it ({errno:?})"))?,
            PreopenSource::Tree(bytes) => {
                let clock = move || {
                    hal.realtime_ns().unwrap_or_else(|| {
                        realtime_at_boot
                            .0
                            .saturating_add(hal.now_ns().saturating_sub(realtime_at_boot.1))
                    })
                };
                let memfs = Arc::new(MemFs::new(Box::new(clock)));
                let entries = tree::decode(bytes)
                    .map_err(|error| format!("--dir {}: {error}", preopen.guest))?;
                tree::load(&*memfs, &entries).map_err(|errno| {
                    format!("--dir {}: cannot load the tree ({errno:?})", preopen.guest)
                })?;
                memfs.mark_unchanged();
                system.memory_trees.push((index, memfs.clone()));
                memfs
            }
        };
        system.preopens.push((preopen.guest.clone(), fs));
    }
    Ok(system)
}

/// Writes every RAM tree that changed to the console, framed (see
/// [`tree::write_framed`]), for `sim qemu` to apply to the host directory.
fn write_back_trees<H: KernelHal>(kernel: &Kernel<H>) {
    for (index, memfs) in &kernel.wasi().memory_trees {
        if !memfs.changed() {
            continue;
        }
        match tree::dump(&**memfs) {
            Ok(entries) => tree::write_framed(kernel.hal(), *index, &tree::encode(&entries)),
            Err(errno) => report_failure(
                kernel.hal(),
                format_args!("cannot write back directory {index}: {errno:?}"),
            ),
        }
    }
}

/// Where every CPU but the first starts: runs its scheduler loop, then waits for the
/// machine to be shut down.
fn cpu_entry<H: KernelHal>(_cpu: CpuId, arg: usize) -> ! {
    // Safety: `main` passes the address of the leaked, never freed kernel.
    let kernel: &'static Kernel<H> = unsafe { &*(arg as *const Kernel<H>) };
    // CPU 0 reports how the scheduler stopped.
    let _ = kernel.scheduler().run_cpu();
    loop {
        kernel.hal().wait_for_interrupt();
    }
}

/// Compiles boot program `name`; a failure is reported now and kept for `spawn`.
fn load_program<H: KernelHal>(
    engine: &'static Engine<H>,
    name: &str,
    bytes: &[u8],
) -> BootProgram<H> {
    let module = Module::new(engine, bytes, WASM2_FEATURES).map_err(|error| {
        let message = format!("error: boot program {name}: {error}\n");
        engine.hal().write_error_bytes(message.as_bytes());
        LoadFailure {
            message: error.to_string(),
            over_limit: matches!(
                &error,
                LoadError::Module(ModuleError {
                    kind: ModuleErrorKind::Limit,
                    ..
                })
            ),
        }
    });
    BootProgram {
        name: String::from(name),
        module,
    }
}

/// Starts the init program `name`, or says why it cannot start.
fn start_init<H: KernelHal>(
    kernel: &'static Kernel<H>,
    name: Option<&str>,
) -> Result<(), JobStatus> {
    let hal = kernel.hal();
    let Some(name) = name else {
        hal.write_error_bytes(b"error: no boot programs\n");
        return Err(JobStatus::Usage);
    };
    match kernel
        .spawn_program(name, Vec::new())
        .map_err(|(error, _)| error)
    {
        Ok(_) => Ok(()),
        // The load error was printed when the program was compiled.
        Err(ProgramSpawnError::LoadFailed) => Err(JobStatus::InvalidModule),
        Err(ProgramSpawnError::OverLimit) => Err(JobStatus::UnsupportedModule),
        Err(ProgramSpawnError::NoSuchProgram) => Err(JobStatus::Usage),
        Err(ProgramSpawnError::OutOfMemory) => {
            report_failure(hal, format_args!("no memory for the init process"));
            Err(JobStatus::KernelFailure)
        }
    }
}

/// Starts a job's process.
fn spawn_job<H: KernelHal>(
    kernel: &'static Kernel<H>,
    name: &str,
    main: ProcessMain<H>,
) -> Result<(), JobStatus> {
    Process::spawn(kernel, name, JOB_STACK_SIZE, main, Vec::new())
        .map(drop)
        .map_err(|_| {
            report_failure(kernel.hal(), format_args!("no memory for the job process"));
            JobStatus::KernelFailure
        })
}

/// The process of `sim run`: the module with the syscalls, its export or `_start`.
fn run_job<H: KernelHal>(request: RunRequest) -> ProcessMain<H> {
    Box::new(move |process| {
        let kernel = process.kernel();
        let output = ConsoleOutput(kernel.hal());
        if request.invoke.is_none() {
            process.wasi().args = core::iter::once(request.path.clone())
                .chain(request.args.iter().cloned())
                .collect();
        }
        let code = job::run_module(
            kernel.engine(),
            &request,
            &output,
            &ProgramEnvironment::new(process),
        );
        if kernel.options().bench_times {
            for line in process.bench_times().report_lines() {
                job::JobOutput::err(&output, &line);
            }
        }
        ProcessExit::Code(i32::from(code))
    })
}

/// The process of a batch of `sim run` jobs: each module in turn, as [`run_job`] runs
/// one, between marker lines ([`job::run_batch`]).
fn batch_job<H: KernelHal>(requests: Vec<RunRequest>) -> ProcessMain<H> {
    Box::new(move |process| {
        let kernel = process.kernel();
        let status = job::run_batch(
            kernel.engine(),
            &requests,
            &ConsoleOutput(kernel.hal()),
            &ProgramEnvironment::new(process),
        );
        ProcessExit::Code(i32::from(status.code()))
    })
}

/// The process of `sim wast`: every script, then the counts.
fn wast_job<H: KernelHal>(request: WastRequest) -> ProcessMain<H> {
    Box::new(move |process| {
        let kernel = process.kernel();
        let status = job::run_scripts(kernel.engine(), &request, &ConsoleOutput(kernel.hal()));
        ProcessExit::Code(i32::from(status.code()))
    })
}

/// Without a boot image: prints the banner and the platform report and runs the HAL
/// conformance suite ([`crate::hal::conformance`]); returns 0 when every check passed.
fn self_check<H: KernelHal>(hal: &'static H) -> u8 {
    announce(hal);
    let mut out = ConsoleWriter(hal);
    let mut print = |line: core::fmt::Arguments<'_>| {
        // Writing to a console cannot fail (ConsoleWriter always returns Ok).
        let _ = writeln!(out, "self-check: {line}");
    };
    match crate::hal::conformance::run(hal, &mut print) {
        Ok(passed) => {
            print(format_args!("ok, {passed} checks passed"));
            0
        }
        Err(error) => {
            report_failure(hal, format_args!("HAL self-check: {error}"));
            JobStatus::KernelFailure.code()
        }
    }
}

/// Reports a failure of the kernel itself on the error stream.
fn report_failure<H: Console + ?Sized>(hal: &H, message: core::fmt::Arguments<'_>) {
    let line = format!("kernel failure: {message}\n");
    hal.write_error_bytes(line.as_bytes());
}

/// What kernel-core found on the platform at boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootReport {
    /// The instruction set the JIT will compile for.
    pub isa: Isa,
    /// How many CPUs the kernel may use.
    pub cpus: usize,
    /// Bytes of memory marked usable in the memory map.
    pub usable_memory: usize,
    /// The size of the boot image in bytes (0 without one).
    pub boot_image_bytes: usize,
}

/// Prints the boot banner and the platform report to the console and returns the report.
pub fn announce<H: Console + Cpus + BootInfo + Clock + ?Sized>(hal: &H) -> BootReport {
    let usable_memory = hal
        .memory_map()
        .iter()
        .filter(|region| region.kind == MemoryKind::Usable)
        .fold(0usize, |sum, region| sum.saturating_add(region.size));
    let report = BootReport {
        isa: hal.isa(),
        cpus: hal.cpu_count(),
        usable_memory,
        boot_image_bytes: hal.boot_image().map_or(0, <[u8]>::len),
    };
    let mut out = ConsoleWriter(hal);
    // Writing to a console cannot fail (ConsoleWriter always returns Ok).
    let _ = writeln!(out, "{} booting on {}", crate::KERNEL_NAME, report.isa);
    let _ = writeln!(
        out,
        "cpus: {}, memory: {} MiB usable in {} regions, boot image: {} bytes, clock: {} ns",
        report.cpus,
        report.usable_memory / (1024 * 1024),
        hal.memory_map().len(),
        report.boot_image_bytes,
        hal.now_ns(),
    );
    let command_line = hal.command_line();
    if !command_line.is_empty() {
        let _ = writeln!(out, "command line: {command_line}");
    }
    report
}
