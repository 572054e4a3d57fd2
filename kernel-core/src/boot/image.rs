//! The boot image: what the kernel is to do (run a module, run spec scripts, boot a set of
//! programs), with its settings; encoded by `sim`, decoded by the kernel's boot path.
//!
//! `sim` converts its inputs on the host (module text to binary, spec scripts to
//! [`Command`]s with `sim::wast_script`) and encodes them with [`BootImage::encode`].
//! Hosted, the bytes go to the HAL in memory; under QEMU they are the initrd. The kernel's
//! boot path ([`crate::boot::main`]) reads them back with [`BootImage::decode`]. Both
//! sides are built from this one module, so the format needs no negotiation beyond the
//! magic and [`FORMAT_VERSION`].
//!
//! # Format
//!
//! ```text
//! image   := MAGIC version:u8 options wasi kind:u8 body
//! options := cpu_limit_ns:option<u64> memory_limit:u64 max_processes:u32 max_handles:u32
//!            flags:u8   (flags: 1 quiet, 2 bench times)
//! wasi    := env:vec<str> preopens:vec<guest:str source> stdin:option<bytes>
//!            realtime_ns:u64 seed:bytes
//! source  := 0 host_path:str | 1 tree:bytes                  (tree: crate::vfs::tree)
//! run     := path:str module:bytes invoke:option<str> args:vec<str>      (kind 1)
//! wast    := features:u64 scripts:vec<path:str commands:vec<command>>   (kind 2)
//! boot    := programs:vec<name:str module:bytes> determinism            (kind 3)
//! determinism := 0 | 1 cpus:u32 seed:option<u64> replay:option<bytes> flags:u8
//!            (flags: 1 keep the trace, 2 keep a recording, 4 send them over the console)
//! trailer := log_filter:option<str>   (optional: absent, or zero padding, means none)
//! u32/u64 := unsigned LEB128        u128 := 16 bytes, little-endian
//! bytes   := len:u32 byte*          str := bytes, UTF-8
//! option  := 0 | 1 value            vec := count:u32 value*
//! enums   := tag:u8 fields          (tags in declaration order, see the encoders)
//! ```
//!
//! Decoding never panics and never allocates more than the input could describe: every
//! count is checked against the bytes left before anything is reserved.
//!
//! # Console protocol
//!
//! The kernel prints its boot messages, then [`CONSOLE_BEGIN`] on a line of its own, then
//! the job's output; the host shows only what follows the marker. Lines the hosted `sim`
//! prints on standard error start with [`STDERR_PREFIX`], which the host strips and routes
//! to its own standard error. The kernel ends the job by powering off with the status the
//! hosted command would exit with.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::spec::{Action, Command, CommandKind};
use crate::spec::{Expected, FloatPattern, RefKind, SpecValue, V128Pattern};

/// The first bytes of every bundle.
pub const MAGIC: [u8; 8] = *b"K23WBNDL";

/// The version of the format this module writes and reads.
pub const FORMAT_VERSION: u8 = 4;

/// The line the kernel prints just before the job's output.
pub const CONSOLE_BEGIN: &str = "k23-bundle: begin";

pub use crate::hal::STDERR_PREFIX;

/// What the kernel boots: its settings and its work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootImage {
    /// The kernel's settings.
    pub options: KernelOptions,
    /// The WASI environment, directories and input of every process.
    pub wasi: WasiOptions,
    /// What to do.
    pub job: Job,
}

/// What WASI programs of this boot see besides their arguments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WasiOptions {
    /// The environment, `KEY=VALUE` strings (`--env`).
    pub env: Vec<String>,
    /// The preopened directories (`--dir`), descriptors 3, 4, ... in this order.
    pub preopens: Vec<Preopen>,
    /// Standard input, read up front (under QEMU when it is not a terminal); `None`: the
    /// console.
    pub stdin: Option<Vec<u8>>,
    /// The host's wall-clock time when the image was made, nanoseconds since the Unix
    /// epoch (for platforms without a wall clock).
    pub realtime_ns: u64,
    /// Seed bytes from the host's entropy source, for platforms without one (the kernel
    /// then uses a seeded generator, not cryptographic).
    pub seed: Vec<u8>,
}

/// One preopened directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preopen {
    /// The name the guest sees (`fd_prestat_dir_name`).
    pub guest: String,
    /// Where its files are.
    pub source: PreopenSource,
}

/// Where a preopened directory's files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreopenSource {
    /// A host directory, opened through the HAL's storage (hosted).
    Host(String),
    /// A tree carried in the image ([`crate::vfs::tree`]), kept in RAM (under QEMU).
    Tree(Vec<u8>),
}

/// Settings of the kernel for one boot: the limits every program is held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelOptions {
    /// CPU time each process may use before it is ended with `interrupted`; `None` for no
    /// limit.
    pub cpu_limit_ns: Option<u64>,
    /// Linear memory each process may have, all its memories together, in bytes:
    /// `memory.grow` past it returns -1, and a program that starts with more fails to
    /// start.
    pub memory_limit: u64,
    /// Processes that may exist at once: `spawn` past it returns -5.
    pub max_processes: u32,
    /// Handles each process may hold: `channel` past it returns -5.
    pub max_handles: u32,
    /// No exit lines: `sim boot` prints one per process unless this is set (benchmarks
    /// that start millions of processes set it).
    pub quiet: bool,
    /// Print, after a `sim run` job's module has run, one line per interval it measured
    /// with `bench.start` / `bench.end` on standard error: `bench: N ns`
    /// ([`crate::syscall::bench`]).
    pub bench_times: bool,
}

impl KernelOptions {
    /// The default memory limit: 256 MiB per process.
    pub const DEFAULT_MEMORY_LIMIT: u64 = 256 << 20;
    /// The default process limit.
    pub const DEFAULT_MAX_PROCESSES: u32 = 512;
    /// The default handle limit per process.
    pub const DEFAULT_MAX_HANDLES: u32 = 256;
}

impl Default for KernelOptions {
    fn default() -> Self {
        Self {
            cpu_limit_ns: None,
            memory_limit: Self::DEFAULT_MEMORY_LIMIT,
            max_processes: Self::DEFAULT_MAX_PROCESSES,
            max_handles: Self::DEFAULT_MAX_HANDLES,
            quiet: false,
            bench_times: false,
        }
    }
}

/// The work of one boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Job {
    /// `sim run`: one module run as a process, optionally one export to call.
    Run(RunRequest),
    /// `sim wast`: spec scripts, already converted to commands, run by one process.
    Wast(WastRequest),
    /// `sim boot`: programs in the boot image, the first started as the init process.
    Boot(BootRequest),
    /// Many `sim run` jobs in one boot, one after the other in one process, each result
    /// between marker lines (`crate::job::run_batch`): the hosted-against-QEMU parity
    /// test's way of running hundreds of modules per QEMU boot.
    RunBatch(Vec<RunRequest>),
}

/// `sim boot INIT [PROGRAM...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootRequest {
    /// The boot programs, init first. `spawn` finds the others by name.
    pub programs: Vec<Program>,
    /// Deterministic mode (`sim boot --seed`, `--record`, `--replay`), when asked for.
    pub determinism: Option<DeterminismRequest>,
}

/// How a deterministic boot runs (see `crate::sched::deterministic`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeterminismRequest {
    /// How many CPUs one host CPU simulates (ignored on replay: the recording says).
    pub cpus: u32,
    /// The seed of the scheduling choices; `None`: the kernel draws one from its clock
    /// (an outside input, kept in the recording).
    pub seed: Option<u64>,
    /// A recording (`crate::replay`) to replay instead of `seed` and `cpus`.
    pub replay: Option<Vec<u8>>,
    /// Keep the trace's lines (`--trace FILE`).
    pub trace: bool,
    /// Keep a recording (`--record FILE`).
    pub record: bool,
    /// Send the trace and the recording over the console, framed (`sim qemu`), instead of
    /// handing them to the host in memory (hosted `sim`).
    pub over_console: bool,
}

/// The `flags` bit of [`DeterminismRequest::trace`].
const FLAG_TRACE: u8 = 1;
/// The `flags` bit of [`DeterminismRequest::record`].
const FLAG_RECORD: u8 = 2;
/// The `flags` bit of [`DeterminismRequest::over_console`].
const FLAG_OVER_CONSOLE: u8 = 4;

/// A program of the boot image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// The name `spawn` knows it by (the file stem).
    pub name: String,
    /// The binary module.
    pub module: Vec<u8>,
}

/// `sim run FILE [--invoke NAME] [ARGS...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRequest {
    /// The module file as the user named it (for messages).
    pub path: String,
    /// The binary module.
    pub module: Vec<u8>,
    /// The export to call; without one, `_start` when exported.
    pub invoke: Option<String>,
    /// The call's arguments as typed, parsed by the kernel against the export's type.
    pub args: Vec<String>,
}

/// `sim wast FILE...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WastRequest {
    /// The WebAssembly features to validate with, as the engine's feature bits
    /// (`kernel_core::wasm::env::WasmFeatures::bits`).
    pub features: u64,
    /// The scripts, in the order given.
    pub scripts: Vec<Script>,
}

/// One converted spec script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// The script file as the user named it (the `file` of `file:line: message`).
    pub path: String,
    /// Its commands.
    pub commands: Vec<Command>,
}

/// Why bytes are not a bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError {
    /// The offset at which decoding stopped.
    pub offset: usize,
    /// What was expected there.
    pub expected: &'static str,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bad bundle at byte {}: expected {}",
            self.offset, self.expected
        )
    }
}

/// The `kind` byte of a [`Job::Run`].
const KIND_RUN: u8 = 1;
/// The bit of the option flags for [`KernelOptions::quiet`].
const OPTION_QUIET: u8 = 1;
/// The bit of the option flags for [`KernelOptions::bench_times`].
const OPTION_BENCH_TIMES: u8 = 2;

/// The `kind` byte of a [`Job::Wast`].
const KIND_WAST: u8 = 2;
/// The `kind` byte of a [`Job::Boot`].
const KIND_BOOT: u8 = 3;
/// The `kind` byte of a [`Job::RunBatch`].
const KIND_RUN_BATCH: u8 = 4;

impl BootImage {
    /// The bundle's bytes.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Writer(Vec::new());
        out.0.extend_from_slice(&MAGIC);
        out.byte(FORMAT_VERSION);
        out.option(self.options.cpu_limit_ns.as_ref(), |out, value| {
            out.u64(*value);
        });
        out.u64(self.options.memory_limit);
        out.u64(u64::from(self.options.max_processes));
        out.u64(u64::from(self.options.max_handles));
        out.byte(
            (u8::from(self.options.quiet) * OPTION_QUIET)
                | (u8::from(self.options.bench_times) * OPTION_BENCH_TIMES),
        );
        out.vec(&self.wasi.env, |out, var| out.str(var));
        out.vec(&self.wasi.preopens, |out, preopen| {
            out.str(&preopen.guest);
            match &preopen.source {
                PreopenSource::Host(path) => {
                    out.byte(0);
                    out.str(path);
                }
                PreopenSource::Tree(tree) => {
                    out.byte(1);
                    out.bytes(tree);
                }
            }
        });
        out.option(self.wasi.stdin.as_deref(), Writer::bytes);
        out.u64(self.wasi.realtime_ns);
        out.bytes(&self.wasi.seed);
        match &self.job {
            Job::Run(run) => {
                out.byte(KIND_RUN);
                out.run_request(run);
            }
            Job::RunBatch(runs) => {
                out.byte(KIND_RUN_BATCH);
                out.vec(runs, Writer::run_request);
            }
            Job::Boot(boot) => {
                out.byte(KIND_BOOT);
                out.vec(&boot.programs, |out, program| {
                    out.str(&program.name);
                    out.bytes(&program.module);
                });
                out.option(boot.determinism.as_ref(), |out, determinism| {
                    out.u32(determinism.cpus);
                    out.option(determinism.seed.as_ref(), |out, seed| out.u64(*seed));
                    out.option(determinism.replay.as_deref(), Writer::bytes);
                    let flags = [
                        (determinism.trace, FLAG_TRACE),
                        (determinism.record, FLAG_RECORD),
                        (determinism.over_console, FLAG_OVER_CONSOLE),
                    ];
                    out.byte(
                        flags
                            .iter()
                            .filter(|(set, _)| *set)
                            .fold(0, |bits, (_, bit)| bits | bit),
                    );
                });
            }
            Job::Wast(wast) => {
                out.byte(KIND_WAST);
                out.u64(wast.features);
                out.vec(&wast.scripts, |out, script| {
                    out.str(&script.path);
                    out.vec(&script.commands, Writer::command);
                });
            }
        }
        out.0
    }

    /// [`BootImage::encode`] followed by the trailer carrying a log filter (the kernel's
    /// `tracing` filter under QEMU: `target=level` directives and a default level,
    /// [`crate::log::LogFilter`]).
    #[must_use]
    pub fn encode_with_log_filter(&self, log_filter: Option<&str>) -> Vec<u8> {
        let mut out = Writer(self.encode());
        out.option(log_filter, Writer::str);
        out.0
    }

    /// Reads a bundle written by [`BootImage::encode`] or
    /// [`BootImage::encode_with_log_filter`], with the log filter of its trailer.
    ///
    /// # Errors
    /// As [`BootImage::decode`], and for a trailer that is neither absent, zero padding nor
    /// a log filter.
    pub fn decode_with_log_filter(bytes: &[u8]) -> Result<(Self, Option<String>), DecodeError> {
        let mut input = Reader { bytes, offset: 0 };
        let image = Self::decode_from(&mut input)?;
        let filter = if input.offset == bytes.len() {
            None
        } else {
            input.option(Reader::string)?
        };
        Ok((image, filter))
    }

    /// Reads a bundle written by [`BootImage::encode`]. Bytes after the bundle are ignored
    /// (an initrd may be padded; a log filter's trailer is read by
    /// [`BootImage::decode_with_log_filter`]).
    ///
    /// # Errors
    /// A [`DecodeError`] when the bytes are not a bundle of this format version.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::decode_from(&mut Reader { bytes, offset: 0 })
    }

    /// [`BootImage::decode`] from `input`, which is left after the job.
    fn decode_from(input: &mut Reader<'_>) -> Result<Self, DecodeError> {
        if input.take(MAGIC.len(), "the bundle magic")? != MAGIC {
            return Err(input.error_at(0, "the bundle magic"));
        }
        if input.byte("the format version")? != FORMAT_VERSION {
            return Err(input.error_at(MAGIC.len(), "format version 4"));
        }
        let cpu_limit_ns = input.option(Reader::u64)?;
        let memory_limit = input.u64()?;
        let max_processes = input.u32()?;
        let max_handles = input.u32()?;
        let flags = input.byte("the option flags")?;
        if flags & !(OPTION_QUIET | OPTION_BENCH_TIMES) != 0 {
            return Err(input.error_at(input.offset - 1, "option flags 0 to 3"));
        }
        let options = KernelOptions {
            cpu_limit_ns,
            memory_limit,
            max_processes,
            max_handles,
            quiet: flags & OPTION_QUIET != 0,
            bench_times: flags & OPTION_BENCH_TIMES != 0,
        };
        let wasi = WasiOptions {
            env: input.vec(Reader::string)?,
            preopens: input.vec(|input| {
                let guest = input.string()?;
                let source = match input.tag(2, "a preopen source")? {
                    0 => PreopenSource::Host(input.string()?),
                    _ => PreopenSource::Tree(input.byte_vec()?),
                };
                Ok(Preopen { guest, source })
            })?,
            stdin: input.option(Reader::byte_vec)?,
            realtime_ns: input.u64()?,
            seed: input.byte_vec()?,
        };
        let kind_offset = input.offset;
        let job = match input.byte("the bundle kind")? {
            KIND_RUN => Job::Run(input.run_request()?),
            KIND_RUN_BATCH => Job::RunBatch(input.vec(Reader::run_request)?),
            KIND_BOOT => Job::Boot(BootRequest {
                programs: input.vec(|input| {
                    Ok(Program {
                        name: input.string()?,
                        module: input.byte_vec()?,
                    })
                })?,
                determinism: input.option(Reader::determinism)?,
            }),
            KIND_WAST => Job::Wast(WastRequest {
                features: input.u64()?,
                scripts: input.vec(|input| {
                    Ok(Script {
                        path: input.string()?,
                        commands: input.vec(Reader::command)?,
                    })
                })?,
            }),
            _ => return Err(input.error_at(kind_offset, "bundle kind 1, 2, 3 or 4")),
        };
        Ok(Self { options, wasi, job })
    }

    /// Whether `bytes` start with the bundle magic (as opposed to no initrd, or another
    /// kind of initrd).
    #[must_use]
    pub fn is_boot_image(bytes: &[u8]) -> bool {
        bytes.starts_with(&MAGIC)
    }
}

/// The encoder: appends to a byte vector.
struct Writer(Vec<u8>);

impl Writer {
    fn run_request(&mut self, run: &RunRequest) {
        self.str(&run.path);
        self.bytes(&run.module);
        self.option(run.invoke.as_deref(), Writer::str);
        self.vec(&run.args, |out, arg| out.str(arg));
    }

    fn byte(&mut self, value: u8) {
        self.0.push(value);
    }

    fn u64(&mut self, mut value: u64) {
        loop {
            // The low seven bits; the cast keeps exactly them.
            let low = (value & 0x7f) as u8;
            value >>= 7;
            if value == 0 {
                self.byte(low);
                return;
            }
            self.byte(low | 0x80);
        }
    }

    fn u32(&mut self, value: u32) {
        self.u64(u64::from(value));
    }

    fn u128(&mut self, value: u128) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }

    /// A length or count. Bundles hold less than 4 GiB (the host builds them in memory
    /// and QEMU loads them into guest RAM), so every length fits a `u32`.
    fn len(&mut self, len: usize) {
        self.u32(u32::try_from(len).expect("bundle parts are smaller than 4 GiB"));
    }

    fn bytes(&mut self, bytes: &[u8]) {
        self.len(bytes.len());
        self.0.extend_from_slice(bytes);
    }

    fn str(&mut self, text: &str) {
        self.bytes(text.as_bytes());
    }

    fn option<T: ?Sized>(&mut self, value: Option<&T>, write: impl FnOnce(&mut Self, &T)) {
        match value {
            None => self.byte(0),
            Some(value) => {
                self.byte(1);
                write(self, value);
            }
        }
    }

    fn vec<T>(&mut self, values: &[T], mut write: impl FnMut(&mut Self, &T)) {
        self.len(values.len());
        for value in values {
            write(self, value);
        }
    }

    fn name(&mut self, name: Option<&String>) {
        self.option(name.map(String::as_str), Writer::str);
    }

    fn command(&mut self, command: &Command) {
        self.u32(command.line);
        match &command.kind {
            CommandKind::Module { name, bytes } => {
                self.byte(0);
                self.name(name.as_ref());
                self.bytes(bytes);
            }
            CommandKind::BadModule { name, message } => {
                self.byte(1);
                self.name(name.as_ref());
                self.str(message);
            }
            CommandKind::ModuleDefinition { name, bytes } => {
                self.byte(2);
                self.name(name.as_ref());
                self.bytes(bytes);
            }
            CommandKind::ModuleInstance {
                instance,
                definition,
            } => {
                self.byte(3);
                self.name(instance.as_ref());
                self.name(definition.as_ref());
            }
            CommandKind::Register { as_name, module } => {
                self.byte(4);
                self.str(as_name);
                self.name(module.as_ref());
            }
            CommandKind::Action(action) => {
                self.byte(5);
                self.action(action);
            }
            CommandKind::AssertReturn { action, expected } => {
                self.byte(6);
                self.action(action);
                self.vec(expected, Writer::expected);
            }
            CommandKind::AssertTrap { action, message } => {
                self.byte(7);
                self.action(action);
                self.str(message);
            }
            CommandKind::AssertExhaustion { action, message } => {
                self.byte(8);
                self.action(action);
                self.str(message);
            }
            CommandKind::AssertInvalid { bytes, message } => {
                self.byte(9);
                self.bytes(bytes);
                self.str(message);
            }
            CommandKind::AssertMalformed { bytes, message } => {
                self.byte(10);
                self.option(bytes.as_deref(), Writer::bytes);
                self.str(message);
            }
            CommandKind::AssertUnlinkable { bytes, message } => {
                self.byte(11);
                self.bytes(bytes);
                self.str(message);
            }
            CommandKind::AssertUninstantiable { bytes, message } => {
                self.byte(12);
                self.bytes(bytes);
                self.str(message);
            }
            CommandKind::Unsupported { directive, reason } => {
                self.byte(13);
                self.str(directive);
                self.str(reason);
            }
        }
    }

    fn action(&mut self, action: &Action) {
        match action {
            Action::Invoke {
                module,
                field,
                args,
            } => {
                self.byte(0);
                self.name(module.as_ref());
                self.str(field);
                self.vec(args, Writer::value);
            }
            Action::Get { module, field } => {
                self.byte(1);
                self.name(module.as_ref());
                self.str(field);
            }
        }
    }

    fn value(&mut self, value: &SpecValue) {
        match *value {
            SpecValue::I32(bits) => {
                self.byte(0);
                self.u32(bits);
            }
            SpecValue::I64(bits) => {
                self.byte(1);
                self.u64(bits);
            }
            SpecValue::F32(bits) => {
                self.byte(2);
                self.u32(bits);
            }
            SpecValue::F64(bits) => {
                self.byte(3);
                self.u64(bits);
            }
            SpecValue::V128(bits) => {
                self.byte(4);
                self.u128(bits);
            }
            SpecValue::FuncRef(id) => {
                self.byte(5);
                self.option(id.as_ref(), |out, id| out.u32(*id));
            }
            SpecValue::ExternRef(host) => {
                self.byte(6);
                self.option(host.as_ref(), |out, host| out.u32(*host));
            }
        }
    }

    fn float32(&mut self, pattern: FloatPattern<u32>) {
        match pattern {
            FloatPattern::Exact(bits) => {
                self.byte(0);
                self.u32(bits);
            }
            FloatPattern::CanonicalNan => self.byte(1),
            FloatPattern::ArithmeticNan => self.byte(2),
        }
    }

    fn float64(&mut self, pattern: FloatPattern<u64>) {
        match pattern {
            FloatPattern::Exact(bits) => {
                self.byte(0);
                self.u64(bits);
            }
            FloatPattern::CanonicalNan => self.byte(1),
            FloatPattern::ArithmeticNan => self.byte(2),
        }
    }

    fn v128(&mut self, pattern: &V128Pattern) {
        match pattern {
            V128Pattern::I8x16(lanes) => {
                self.byte(0);
                self.0.extend_from_slice(lanes);
            }
            V128Pattern::I16x8(lanes) => {
                self.byte(1);
                lanes.iter().for_each(|&lane| self.u32(u32::from(lane)));
            }
            V128Pattern::I32x4(lanes) => {
                self.byte(2);
                lanes.iter().for_each(|&lane| self.u32(lane));
            }
            V128Pattern::I64x2(lanes) => {
                self.byte(3);
                lanes.iter().for_each(|&lane| self.u64(lane));
            }
            V128Pattern::F32x4(lanes) => {
                self.byte(4);
                lanes.iter().for_each(|&lane| self.float32(lane));
            }
            V128Pattern::F64x2(lanes) => {
                self.byte(5);
                lanes.iter().for_each(|&lane| self.float64(lane));
            }
        }
    }

    fn ref_kind(&mut self, kind: Option<RefKind>) {
        self.byte(match kind {
            None => 0,
            Some(RefKind::Func) => 1,
            Some(RefKind::Extern) => 2,
        });
    }

    fn expected(&mut self, expected: &Expected) {
        match expected {
            Expected::I32(bits) => {
                self.byte(0);
                self.u32(*bits);
            }
            Expected::I64(bits) => {
                self.byte(1);
                self.u64(*bits);
            }
            Expected::F32(pattern) => {
                self.byte(2);
                self.float32(*pattern);
            }
            Expected::F64(pattern) => {
                self.byte(3);
                self.float64(*pattern);
            }
            Expected::V128(pattern) => {
                self.byte(4);
                self.v128(pattern);
            }
            Expected::RefNull(kind) => {
                self.byte(5);
                self.ref_kind(*kind);
            }
            Expected::RefFunc => self.byte(6),
            Expected::RefExtern(host) => {
                self.byte(7);
                self.option(host.as_ref(), |out, host| out.u32(*host));
            }
            Expected::Either(choices) => {
                self.byte(8);
                self.vec(choices, Writer::expected);
            }
        }
    }
}

/// The decoder: a cursor over the input.
struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

/// How deeply `(either ...)` patterns may nest; the spec scripts nest them once. The
/// limit keeps a hostile bundle from exhausting the kernel stack.
const MAX_EITHER_DEPTH: u32 = 8;

impl<'a> Reader<'a> {
    fn run_request(&mut self) -> Result<RunRequest, DecodeError> {
        Ok(RunRequest {
            path: self.string()?,
            module: self.byte_vec()?,
            invoke: self.option(Reader::string)?,
            args: self.vec(Reader::string)?,
        })
    }

    fn error_at(&self, offset: usize, expected: &'static str) -> DecodeError {
        DecodeError { offset, expected }
    }

    fn error(&self, expected: &'static str) -> DecodeError {
        self.error_at(self.offset, expected)
    }

    fn take(&mut self, len: usize, expected: &'static str) -> Result<&'a [u8], DecodeError> {
        let end = self
            .offset
            .checked_add(len)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| self.error(expected))?;
        let taken = &self.bytes[self.offset..end];
        self.offset = end;
        Ok(taken)
    }

    fn byte(&mut self, expected: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, expected)?[0])
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        let start = self.offset;
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte("a LEB128 number")?;
            let bits = u64::from(byte & 0x7f);
            // The tenth byte may only carry the top bit of a u64.
            if shift == 63 && bits > 1 {
                return Err(self.error_at(start, "a LEB128 number below 2^64"));
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.error_at(start, "a LEB128 number of at most 10 bytes"))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        let start = self.offset;
        let value = self.u64()?;
        u32::try_from(value).map_err(|_| self.error_at(start, "a number below 2^32"))
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        let start = self.offset;
        let value = self.u64()?;
        u16::try_from(value).map_err(|_| self.error_at(start, "a number below 2^16"))
    }

    fn u128(&mut self) -> Result<u128, DecodeError> {
        let bytes = self.take(16, "a 128-bit value")?;
        let mut array = [0u8; 16];
        array.copy_from_slice(bytes);
        Ok(u128::from_le_bytes(array))
    }

    /// A count of items of at least one byte each: never more than the bytes left.
    fn count(&mut self) -> Result<usize, DecodeError> {
        let start = self.offset;
        let count = self.u32()? as usize;
        if count > self.bytes.len() - self.offset {
            return Err(self.error_at(start, "a count that fits the bytes left"));
        }
        Ok(count)
    }

    fn slice(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.count()?;
        self.take(len, "the bytes of a byte string")
    }

    fn determinism(&mut self) -> Result<DeterminismRequest, DecodeError> {
        let cpus = self.u32()?;
        let seed = self.option(Reader::u64)?;
        let replay = self.option(Reader::byte_vec)?;
        let flags = self.byte("the determinism flags")?;
        if flags & !(FLAG_TRACE | FLAG_RECORD | FLAG_OVER_CONSOLE) != 0 {
            return Err(self.error_at(self.offset - 1, "determinism flags below 8"));
        }
        Ok(DeterminismRequest {
            cpus,
            seed,
            replay,
            trace: flags & FLAG_TRACE != 0,
            record: flags & FLAG_RECORD != 0,
            over_console: flags & FLAG_OVER_CONSOLE != 0,
        })
    }

    fn byte_vec(&mut self) -> Result<Vec<u8>, DecodeError> {
        Ok(self.slice()?.to_vec())
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let start = self.offset;
        let bytes = self.slice()?;
        core::str::from_utf8(bytes)
            .map(String::from)
            .map_err(|_| self.error_at(start, "a UTF-8 string"))
    }

    fn option<T>(
        &mut self,
        read: impl FnOnce(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, DecodeError> {
        match self.byte("an option tag")? {
            0 => Ok(None),
            1 => read(self).map(Some),
            _ => Err(self.error_at(self.offset - 1, "an option tag 0 or 1")),
        }
    }

    fn vec<T>(
        &mut self,
        mut read: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let count = self.count()?;
        // Items are larger than their encoding: reserve for a bounded number up front.
        let mut values = Vec::with_capacity(count.min(256));
        for _ in 0..count {
            values.push(read(self)?);
        }
        Ok(values)
    }

    /// A tag byte below `limit`.
    fn tag(&mut self, limit: u8, expected: &'static str) -> Result<u8, DecodeError> {
        let tag = self.byte(expected)?;
        if tag >= limit {
            return Err(self.error_at(self.offset - 1, expected));
        }
        Ok(tag)
    }

    fn command(&mut self) -> Result<Command, DecodeError> {
        let line = self.u32()?;
        let kind = match self.tag(14, "a command tag")? {
            0 => CommandKind::Module {
                name: self.option(Reader::string)?,
                bytes: self.byte_vec()?,
            },
            1 => CommandKind::BadModule {
                name: self.option(Reader::string)?,
                message: self.string()?,
            },
            2 => CommandKind::ModuleDefinition {
                name: self.option(Reader::string)?,
                bytes: self.byte_vec()?,
            },
            3 => CommandKind::ModuleInstance {
                instance: self.option(Reader::string)?,
                definition: self.option(Reader::string)?,
            },
            4 => CommandKind::Register {
                as_name: self.string()?,
                module: self.option(Reader::string)?,
            },
            5 => CommandKind::Action(self.action()?),
            6 => CommandKind::AssertReturn {
                action: self.action()?,
                expected: self.vec(|input| input.expected(0))?,
            },
            7 => CommandKind::AssertTrap {
                action: self.action()?,
                message: self.string()?,
            },
            8 => CommandKind::AssertExhaustion {
                action: self.action()?,
                message: self.string()?,
            },
            9 => CommandKind::AssertInvalid {
                bytes: self.byte_vec()?,
                message: self.string()?,
            },
            10 => CommandKind::AssertMalformed {
                bytes: self.option(Reader::byte_vec)?,
                message: self.string()?,
            },
            11 => CommandKind::AssertUnlinkable {
                bytes: self.byte_vec()?,
                message: self.string()?,
            },
            12 => CommandKind::AssertUninstantiable {
                bytes: self.byte_vec()?,
                message: self.string()?,
            },
            _ => CommandKind::Unsupported {
                directive: self.string()?,
                reason: self.string()?,
            },
        };
        Ok(Command { line, kind })
    }

    fn action(&mut self) -> Result<Action, DecodeError> {
        Ok(match self.tag(2, "an action tag")? {
            0 => Action::Invoke {
                module: self.option(Reader::string)?,
                field: self.string()?,
                args: self.vec(Reader::value)?,
            },
            _ => Action::Get {
                module: self.option(Reader::string)?,
                field: self.string()?,
            },
        })
    }

    fn value(&mut self) -> Result<SpecValue, DecodeError> {
        Ok(match self.tag(7, "a value tag")? {
            0 => SpecValue::I32(self.u32()?),
            1 => SpecValue::I64(self.u64()?),
            2 => SpecValue::F32(self.u32()?),
            3 => SpecValue::F64(self.u64()?),
            4 => SpecValue::V128(self.u128()?),
            5 => SpecValue::FuncRef(self.option(Reader::u32)?),
            _ => SpecValue::ExternRef(self.option(Reader::u32)?),
        })
    }

    fn float32(&mut self) -> Result<FloatPattern<u32>, DecodeError> {
        Ok(match self.tag(3, "a float pattern tag")? {
            0 => FloatPattern::Exact(self.u32()?),
            1 => FloatPattern::CanonicalNan,
            _ => FloatPattern::ArithmeticNan,
        })
    }

    fn float64(&mut self) -> Result<FloatPattern<u64>, DecodeError> {
        Ok(match self.tag(3, "a float pattern tag")? {
            0 => FloatPattern::Exact(self.u64()?),
            1 => FloatPattern::CanonicalNan,
            _ => FloatPattern::ArithmeticNan,
        })
    }

    /// `N` lanes read with `read` (`filler` only initialises the array).
    fn lanes<T: Copy, const N: usize>(
        &mut self,
        filler: T,
        mut read: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<[T; N], DecodeError> {
        let mut lanes = [filler; N];
        for lane in &mut lanes {
            *lane = read(self)?;
        }
        Ok(lanes)
    }

    fn v128(&mut self) -> Result<V128Pattern, DecodeError> {
        let nan32 = FloatPattern::CanonicalNan;
        let nan64 = FloatPattern::CanonicalNan;
        Ok(match self.tag(6, "a v128 pattern tag")? {
            0 => V128Pattern::I8x16(self.lanes(0, |input| input.byte("an i8 lane"))?),
            1 => V128Pattern::I16x8(self.lanes(0, Reader::u16)?),
            2 => V128Pattern::I32x4(self.lanes(0, Reader::u32)?),
            3 => V128Pattern::I64x2(self.lanes(0, Reader::u64)?),
            4 => V128Pattern::F32x4(self.lanes(nan32, Reader::float32)?),
            _ => V128Pattern::F64x2(self.lanes(nan64, Reader::float64)?),
        })
    }

    fn expected(&mut self, depth: u32) -> Result<Expected, DecodeError> {
        Ok(match self.tag(9, "an expected-result tag")? {
            0 => Expected::I32(self.u32()?),
            1 => Expected::I64(self.u64()?),
            2 => Expected::F32(self.float32()?),
            3 => Expected::F64(self.float64()?),
            4 => Expected::V128(self.v128()?),
            5 => Expected::RefNull(match self.tag(3, "a reference kind")? {
                0 => None,
                1 => Some(RefKind::Func),
                _ => Some(RefKind::Extern),
            }),
            6 => Expected::RefFunc,
            7 => Expected::RefExtern(self.option(Reader::u32)?),
            _ => {
                if depth >= MAX_EITHER_DEPTH {
                    return Err(self.error("`either` patterns nested at most 8 deep"));
                }
                Expected::Either(self.vec(|input| input.expected(depth + 1))?)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use alloc::string::ToString;
    use alloc::vec;

    use super::*;

    fn name(text: &str) -> Option<String> {
        Some(text.to_string())
    }

    fn invoke(field: &str, args: Vec<SpecValue>) -> Action {
        Action::Invoke {
            module: name("m"),
            field: field.to_string(),
            args,
        }
    }

    /// One command of every kind, with every value and pattern variant.
    fn every_command() -> Vec<Command> {
        let values = vec![
            SpecValue::I32(0xffff_ffff),
            SpecValue::I64(u64::MAX),
            SpecValue::F32(0x7fc0_0001),
            SpecValue::F64(0x8000_0000_0000_0000),
            SpecValue::V128(u128::MAX - 5),
            SpecValue::FuncRef(None),
            SpecValue::FuncRef(Some(7)),
            SpecValue::ExternRef(None),
            SpecValue::ExternRef(Some(u32::MAX)),
        ];
        let expected = vec![
            Expected::I32(1),
            Expected::I64(1 << 63),
            Expected::F32(FloatPattern::Exact(0x3f80_0000)),
            Expected::F32(FloatPattern::CanonicalNan),
            Expected::F64(FloatPattern::ArithmeticNan),
            Expected::F64(FloatPattern::Exact(u64::MAX)),
            Expected::V128(V128Pattern::I8x16([0xff; 16])),
            Expected::V128(V128Pattern::I16x8([0x8000; 8])),
            Expected::V128(V128Pattern::I32x4([1, 2, 3, u32::MAX])),
            Expected::V128(V128Pattern::I64x2([0, u64::MAX])),
            Expected::V128(V128Pattern::F32x4([
                FloatPattern::Exact(1),
                FloatPattern::CanonicalNan,
                FloatPattern::ArithmeticNan,
                FloatPattern::Exact(0),
            ])),
            Expected::V128(V128Pattern::F64x2([
                FloatPattern::ArithmeticNan,
                FloatPattern::Exact(9),
            ])),
            Expected::RefNull(None),
            Expected::RefNull(Some(RefKind::Func)),
            Expected::RefNull(Some(RefKind::Extern)),
            Expected::RefFunc,
            Expected::RefExtern(None),
            Expected::RefExtern(Some(3)),
            Expected::Either(vec![Expected::I32(1), Expected::Either(vec![])]),
        ];
        let kinds = vec![
            CommandKind::Module {
                name: name("a"),
                bytes: b"\0asm\x01\0\0\0".to_vec(),
            },
            CommandKind::Module {
                name: None,
                bytes: Vec::new(),
            },
            CommandKind::BadModule {
                name: None,
                message: "unknown operator ünïcode".to_string(),
            },
            CommandKind::ModuleDefinition {
                name: name("d"),
                bytes: vec![1, 2, 3],
            },
            CommandKind::ModuleInstance {
                instance: name("i"),
                definition: None,
            },
            CommandKind::Register {
                as_name: "reg".to_string(),
                module: name("a"),
            },
            CommandKind::Action(invoke("f", values.clone())),
            CommandKind::Action(Action::Get {
                module: None,
                field: "g".to_string(),
            }),
            CommandKind::AssertReturn {
                action: invoke("r", values),
                expected,
            },
            CommandKind::AssertTrap {
                action: invoke("t", vec![]),
                message: "unreachable".to_string(),
            },
            CommandKind::AssertExhaustion {
                action: invoke("e", vec![]),
                message: "call stack exhausted".to_string(),
            },
            CommandKind::AssertInvalid {
                bytes: vec![0; 300],
                message: "type mismatch".to_string(),
            },
            CommandKind::AssertMalformed {
                bytes: None,
                message: "unexpected token".to_string(),
            },
            CommandKind::AssertMalformed {
                bytes: Some(vec![0xff]),
                message: "magic header not detected".to_string(),
            },
            CommandKind::AssertUnlinkable {
                bytes: vec![4],
                message: "unknown import".to_string(),
            },
            CommandKind::AssertUninstantiable {
                bytes: vec![5],
                message: "out of bounds memory access".to_string(),
            },
            CommandKind::Unsupported {
                directive: "thread".to_string(),
                reason: "threads".to_string(),
            },
        ];
        kinds
            .into_iter()
            .zip([1, 2, 127, 128, 300, 16_384, u32::MAX].into_iter().cycle())
            .map(|(kind, line)| Command { line, kind })
            .collect()
    }

    /// An image of `job` with no options.
    fn image(job: Job) -> BootImage {
        BootImage {
            wasi: WasiOptions::default(),
            options: KernelOptions::default(),
            job,
        }
    }

    fn wast_bundle() -> BootImage {
        image(Job::Wast(WastRequest {
            features: 0x8000_0000_0001_2345,
            scripts: vec![
                Script {
                    path: "dir/a.wast".to_string(),
                    commands: every_command(),
                },
                Script {
                    path: String::new(),
                    commands: Vec::new(),
                },
            ],
        }))
    }

    fn run_bundle() -> BootImage {
        BootImage {
            wasi: WasiOptions::default(),
            options: KernelOptions {
                cpu_limit_ns: Some(1_500_000_000),
                memory_limit: 1 << 20,
                max_processes: 7,
                max_handles: 300,
                quiet: true,
                bench_times: true,
            },
            job: Job::Run(RunRequest {
                path: "fac.wat".to_string(),
                module: (0..=255).collect(),
                invoke: name("fac"),
                args: vec!["20".to_string(), "-0x1".to_string(), String::new()],
            }),
        }
    }

    /// A boot bundle, with WASI options of every kind.
    fn boot_bundle() -> BootImage {
        let mut image = image(Job::Boot(BootRequest {
            programs: vec![
                Program {
                    name: "init".to_string(),
                    module: vec![0, 0x61, 0x73, 0x6d],
                },
                Program {
                    name: String::new(),
                    module: Vec::new(),
                },
            ],
            determinism: None,
        }));
        image.wasi = WasiOptions {
            env: vec!["A=1".to_string(), "B=two words".to_string()],
            preopens: vec![
                Preopen {
                    guest: "/".to_string(),
                    source: PreopenSource::Host("/tmp/root".to_string()),
                },
                Preopen {
                    guest: "data".to_string(),
                    source: PreopenSource::Tree(vec![0, 1, 2, 3]),
                },
            ],
            stdin: Some(b"input".to_vec()),
            realtime_ns: 1_700_000_000_000_000_000,
            seed: vec![9; 32],
        };
        image
    }

    fn deterministic_boot_bundle() -> BootImage {
        image(Job::Boot(BootRequest {
            programs: Vec::new(),
            determinism: Some(DeterminismRequest {
                cpus: 4,
                seed: Some(u64::MAX),
                replay: Some(b"k23-recording 1\n".to_vec()),
                trace: true,
                record: false,
                over_console: true,
            }),
        }))
    }

    #[test]
    fn round_trips() {
        let no_invoke = image(Job::Run(RunRequest {
            path: "x.wasm".to_string(),
            module: Vec::new(),
            invoke: None,
            args: Vec::new(),
        }));
        let batch = image(Job::RunBatch(vec![
            RunRequest {
                path: "a.wat".to_string(),
                module: vec![1, 2, 3],
                invoke: name("f"),
                args: vec!["1".to_string()],
            },
            RunRequest {
                path: String::new(),
                module: Vec::new(),
                invoke: None,
                args: Vec::new(),
            },
        ]));
        let empty_batch = image(Job::RunBatch(Vec::new()));
        for bundle in [
            wast_bundle(),
            run_bundle(),
            boot_bundle(),
            deterministic_boot_bundle(),
            no_invoke,
            batch,
            empty_batch,
        ] {
            let bytes = bundle.encode();
            assert!(BootImage::is_boot_image(&bytes));
            assert_eq!(BootImage::decode(&bytes), Ok(bundle.clone()));
            // Padding after the bundle (an initrd rounded up) is ignored.
            let mut padded = bytes.clone();
            padded.extend_from_slice(&[0; 4096]);
            assert_eq!(BootImage::decode(&padded), Ok(bundle));
        }
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "decodes every prefix or corruption of a bundle, safe code: minutes under Miri"
    )]
    fn every_truncation_is_an_error() {
        for bundle in [wast_bundle(), run_bundle(), boot_bundle()] {
            let bytes = bundle.encode();
            for len in 0..bytes.len() {
                assert!(
                    BootImage::decode(&bytes[..len]).is_err(),
                    "prefix of {len} bytes"
                );
            }
        }
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "decodes every prefix or corruption of a bundle, safe code: minutes under Miri"
    )]
    fn corrupted_bytes_never_panic() {
        // Flip every byte of the encoding in turn: decoding must fail or give some
        // bundle, never panic or allocate without bound.
        let bytes = wast_bundle().encode();
        for index in 0..bytes.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut corrupted = bytes.clone();
                corrupted[index] ^= flip;
                let _ = BootImage::decode(&corrupted);
            }
        }
    }

    #[test]
    fn the_log_filter_rides_in_an_optional_trailer() {
        let image = run_bundle();
        let plain = image.encode();
        let with = image.encode_with_log_filter(Some("kernel_core::sched=trace"));
        assert!(with.starts_with(&plain));
        // Older readers ignore the trailer; a padded initrd has none.
        assert_eq!(BootImage::decode(&with).unwrap(), image);
        let decoded = BootImage::decode_with_log_filter(&with).unwrap();
        assert_eq!(
            decoded,
            (image.clone(), Some("kernel_core::sched=trace".into()))
        );
        assert_eq!(BootImage::decode_with_log_filter(&plain).unwrap().1, None);
        let mut padded = plain.clone();
        padded.extend_from_slice(&[0; 16]);
        assert_eq!(BootImage::decode_with_log_filter(&padded).unwrap().1, None);
        let none = image.encode_with_log_filter(None);
        assert_eq!(BootImage::decode_with_log_filter(&none).unwrap().1, None);
        // A truncated or foreign trailer is an error, never a panic.
        for cut in plain.len()..with.len() {
            assert!(BootImage::decode_with_log_filter(&with[..cut]).is_err() || cut == plain.len());
        }
        let mut foreign = plain;
        foreign.push(7);
        assert!(BootImage::decode_with_log_filter(&foreign).is_err());
    }

    #[test]
    fn rejects_foreign_input() {
        assert_eq!(
            BootImage::decode(b"070701 cpio").unwrap_err().expected,
            "the bundle magic"
        );
        let mut bytes = run_bundle().encode();
        bytes[MAGIC.len()] = FORMAT_VERSION + 1;
        assert_eq!(
            BootImage::decode(&bytes).unwrap_err().expected,
            "format version 4"
        );
        bytes[MAGIC.len()] = FORMAT_VERSION;
        // The run bundle has a CPU limit: option tag 1 and its LEB128 bytes come first.
        // Then the memory limit (3 bytes of LEB128), the process and handle limits (1 and
        // 2 bytes), the option flags, then the (empty) WASI options: no variables, no
        // preopens, no stdin, realtime 0, no seed bytes, one byte each.
        let kind = MAGIC.len() + 2 + 5 + 3 + 1 + 2 + 1 + 5;
        assert_eq!(bytes[kind], KIND_RUN);
        bytes[kind] = 9;
        assert_eq!(BootImage::decode(&bytes).unwrap_err().offset, kind);
        // The option flags (quiet and bench times): an unknown bit is refused.
        let flags = kind - 6;
        assert_eq!(bytes[flags], 3);
        bytes[kind] = KIND_RUN;
        bytes[flags] = 4;
        let error = BootImage::decode(&bytes).unwrap_err();
        assert_eq!(
            (error.offset, error.expected),
            (flags, "option flags 0 to 3")
        );
    }

    #[test]
    fn counts_larger_than_the_input_are_refused() {
        // A Run bundle whose path claims 2^32 - 1 bytes.
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&[FORMAT_VERSION, 0, 1, 1, 1, 0, KIND_RUN]);
        bytes.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        let error = BootImage::decode(&bytes).unwrap_err();
        assert_eq!(error.expected, "a count that fits the bytes left");
    }

    #[test]
    fn leb128_edges() {
        for value in [
            0,
            1,
            127,
            128,
            255,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut out = Writer(Vec::new());
            out.u64(value);
            let mut input = Reader {
                bytes: &out.0,
                offset: 0,
            };
            assert_eq!(input.u64(), Ok(value));
            assert_eq!(input.offset, out.0.len());
        }
        // Eleven continuation bytes, and a tenth byte with more than the top bit.
        for bad in [
            &[0x80u8; 11][..],
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02],
        ] {
            let mut input = Reader {
                bytes: bad,
                offset: 0,
            };
            assert!(input.u64().is_err());
        }
    }

    #[test]
    fn deeply_nested_either_is_refused() {
        let mut pattern = Expected::I32(0);
        for _ in 0..=MAX_EITHER_DEPTH {
            pattern = Expected::Either(vec![pattern]);
        }
        let bundle = image(Job::Wast(WastRequest {
            features: 0,
            scripts: vec![Script {
                path: "deep.wast".to_string(),
                commands: vec![Command {
                    line: 1,
                    kind: CommandKind::AssertReturn {
                        action: invoke("f", vec![]),
                        expected: vec![pattern],
                    },
                }],
            }],
        }));
        assert!(BootImage::decode(&bundle.encode()).is_err());
    }
}
