//! Jobs: running one module (`sim run`) or spec scripts (`sim wast`), with the output and
//! exit statuses of the command-line contract, on any platform.
//!
//! The hosted `sim` and the RISC-V kernel (`sim qemu`, which hands the job over in a boot
//! bundle) both call these functions, so they print the same lines and end with the same
//! [`JobStatus`]. Output goes through [`JobOutput`]: standard output and standard error
//! hosted; on a console, [`ConsoleOutput`] marks standard-error lines with
//! [`STDERR_PREFIX`], which the host strips (see [`crate::boot::image`]).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::boot::image::{RunRequest, WastRequest};
use crate::hal::Console;
use crate::spec::text::{self, NumberError};
use crate::spectest::RuntimeSpecEngine;
use crate::wasm::env::{
    ModuleError, ModuleErrorKind, RefType, ValType, WASM2_FEATURES, WasmFeatures,
};
use crate::wasm::runtime::{
    CallError, CompileWorkers, Engine, Extern, InstantiationError, LoadError, Module, RuntimeHal,
    Store, Val,
};

/// How a job ended, as the kernel reports it: the status it powers off with (or, hosted,
/// the simulator exits with). The command line's own statuses, which add those of the host
/// side (unreadable files, QEMU problems), are `sim`'s (`sim/src/exit.rs`); for every
/// outcome here `sim` uses the same number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    /// Everything worked.
    Success = 0,
    /// WebAssembly trapped.
    Trap = 1,
    /// Bad arguments: no such export, wrong argument count or value, no boot program.
    Usage = 2,
    /// The module is malformed or invalid.
    InvalidModule = 3,
    /// The module is valid but uses something the kernel does not support, its VMContext
    /// would be too large, or it passes a compile limit.
    UnsupportedModule = 4,
    /// The module's imports cannot be satisfied.
    Unlinkable = 6,
    /// A spec script had failing commands.
    ScriptFailures = 7,
    /// The kernel itself failed (a HAL self-check, the spectest module, a bad boot image,
    /// no memory for the first process).
    KernelFailure = 70,
}

impl JobStatus {
    /// Every status, for decoding exit codes.
    pub const ALL: [Self; 8] = [
        Self::Success,
        Self::Trap,
        Self::Usage,
        Self::InvalidModule,
        Self::UnsupportedModule,
        Self::Unlinkable,
        Self::ScriptFailures,
        Self::KernelFailure,
    ];

    /// The status as an exit code.
    #[must_use]
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The status with exit code `code`, if there is one.
    #[must_use]
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.code() == code)
    }

    /// The status for a module that failed translation.
    #[must_use]
    pub fn for_module_error(error: &ModuleError) -> Self {
        match error.kind {
            ModuleErrorKind::Invalid => Self::InvalidModule,
            ModuleErrorKind::Unsupported | ModuleErrorKind::Limit => Self::UnsupportedModule,
        }
    }
}

/// Where a job prints: a line at a time, on standard output or standard error.
pub trait JobOutput {
    /// Prints `line` (without its newline) on standard output.
    fn out(&self, line: &str);
    /// Prints `line` (without its newline) on standard error.
    fn err(&self, line: &str);
}

/// Standard output and standard error over the console ([`Console::write_error_bytes`] for
/// standard error).
pub struct ConsoleOutput<'c, C: Console + ?Sized>(pub &'c C);

impl<C: Console + ?Sized> JobOutput for ConsoleOutput<'_, C> {
    fn out(&self, line: &str) {
        self.0.write_bytes(line.as_bytes());
        self.0.write_bytes(b"\n");
    }

    fn err(&self, line: &str) {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        self.0.write_error_bytes(&bytes);
    }
}

/// What the module of a `sim run` job is connected to: its imports, and how a call that
/// failed because the program asked to end maps to an exit code. The kernel runs the job
/// as a process and gives it the syscalls (`crate::boot`); `()` gives nothing (every
/// import is unlinkable), for running the job directly on an engine.
pub trait RunEnvironment<'e, H: RuntimeHal> {
    /// Prepares `store` for `module` and returns the values of its imports, in order.
    ///
    /// # Errors
    /// A message when the imports cannot be satisfied.
    fn link(&self, store: &mut Store<'e, H>, module: &Module<'e, H>)
    -> Result<Vec<Extern>, String>;

    /// The exit code when `error` is the program ending itself (`exit`), `None` for a trap.
    fn exit_code(&self, error: &CallError) -> Option<i32>;

    /// The other CPUs the module's compilation may use; `None` (the default): only the
    /// calling one.
    fn compile_workers(&self) -> Option<&dyn CompileWorkers> {
        None
    }
}

impl<'e, H: RuntimeHal> RunEnvironment<'e, H> for () {
    fn link(&self, _: &mut Store<'e, H>, module: &Module<'e, H>) -> Result<Vec<Extern>, String> {
        match module.imports().next() {
            Some((module_name, name)) => {
                Err(format!("import {module_name}::{name} is not provided"))
            }
            None => Ok(Vec::new()),
        }
    }

    fn exit_code(&self, _: &CallError) -> Option<i32> {
        None
    }
}

/// An exit code from a program's `exit`: its low eight bits, as POSIX shells see them.
#[must_use]
pub const fn exit_code_byte(code: i32) -> u8 {
    code.cast_unsigned() as u8
}

/// `sim run`: instantiates the module (running its start function) and calls the
/// `--invoke`d export, or `_start` when exported. Returns the exit code: an
/// [`JobStatus`], or the program's own code when it called `exit`.
pub fn run_module<'e, H: RuntimeHal, O: JobOutput + ?Sized, E: RunEnvironment<'e, H>>(
    engine: &'e Engine<H>,
    request: &RunRequest,
    output: &O,
    environment: &E,
) -> u8 {
    let failed = |error: &CallError| match environment.exit_code(error) {
        Some(code) => exit_code_byte(code),
        None => report_trap(error, output).code(),
    };
    let path = &request.path;
    let workers = environment.compile_workers();
    let module = match Module::new_with(engine, &request.module, WASM2_FEATURES, workers) {
        Ok(module) => module,
        Err(error) => {
            output.err(&format!("error: {path}: {error}"));
            return match error {
                LoadError::Module(error) => JobStatus::for_module_error(&error),
                _ => JobStatus::UnsupportedModule,
            }
            .code();
        }
    };
    let mut store = Store::new(engine);
    let imports = match environment.link(&mut store, &module) {
        Ok(imports) => imports,
        Err(message) => {
            output.err(&format!("error: {path}: {message}"));
            return JobStatus::Unlinkable.code();
        }
    };
    let instance = match store.instantiate(&module, &imports) {
        Ok(instance) => instance,
        Err(InstantiationError::Trap(error)) => return failed(&error),
        Err(InstantiationError::Unlinkable(message)) => {
            output.err(&format!("error: {path}: unlinkable: {message}"));
            return JobStatus::Unlinkable.code();
        }
        Err(error) => {
            output.err(&format!("error: {path}: {error}"));
            return JobStatus::UnsupportedModule.code();
        }
    };
    let (name, program_arguments) = match request.invoke.as_deref() {
        Some(name) => (name, false),
        // The arguments are the program's own (WASI `args_get`), not the call's.
        None if store.export(instance, "_start").is_some() => ("_start", true),
        // Arguments are for `--invoke` or (with WASI) the program's `_start`; with neither
        // they would be silently dropped.
        None if !request.args.is_empty() => {
            output.err(
                "error: arguments given, but there is no `--invoke` and no `_start` to take them",
            );
            return JobStatus::Usage.code();
        }
        None => return JobStatus::Success.code(),
    };
    let Some(Extern::Func(func)) = store.export(instance, name) else {
        output.err(&format!(
            "error: the module exports no function `{}`",
            quoted(name)
        ));
        return JobStatus::Usage.code();
    };
    let params = store
        .func_type(func)
        .map(|ty| ty.params.to_vec())
        .unwrap_or_default();
    let texts = if program_arguments {
        Vec::new()
    } else {
        group_args(&request.args)
    };
    if params.len() != texts.len() {
        output.err(&format!(
            "error: `{}` takes {} arguments, {} given",
            quoted(name),
            params.len(),
            texts.len()
        ));
        return JobStatus::Usage.code();
    }
    let mut values = Vec::with_capacity(params.len());
    for (text, ty) in texts.iter().zip(&params) {
        match parse_value(text, *ty) {
            Ok(value) => values.push(value),
            Err(reason) => {
                output.err(&format!(
                    "error: `{}` is not a valid {ty}: {reason}",
                    quoted(text)
                ));
                return JobStatus::Usage.code();
            }
        }
    }
    match store.call(func, &values) {
        Ok(results) => {
            for value in results {
                output.out(&format_value(&value));
            }
            JobStatus::Success.code()
        }
        Err(error) => failed(&error),
    }
}

/// The first word of the marker lines of [`run_batch`].
pub const BATCH_MARKER: &str = "k23-batch";

/// A batch of `sim run` jobs ([`crate::boot::image::Job::RunBatch`]): runs every request
/// in turn as [`run_module`] does, with the same environment, each between the standard
/// output lines `<BATCH_MARKER> <index> begin` and `<BATCH_MARKER> <index> status <code>`
/// (`code` the exit code `sim run` would end with). What a module prints in between, on
/// either stream, is its own. The modules share the job's process (its stack, its CPU
/// time, `--cpu-limit` included), each with a store of its own. Returns
/// [`JobStatus::Success`]: the statuses are in the marker lines.
pub fn run_batch<'e, H: RuntimeHal, O: JobOutput + ?Sized, E: RunEnvironment<'e, H>>(
    engine: &'e Engine<H>,
    requests: &[RunRequest],
    output: &O,
    environment: &E,
) -> JobStatus {
    for (index, request) in requests.iter().enumerate() {
        output.out(&format!("{BATCH_MARKER} {index} begin"));
        let code = run_module(engine, request, output, environment);
        output.out(&format!("{BATCH_MARKER} {index} status {code}"));
    }
    JobStatus::Success
}

/// Prints a trap and its WebAssembly backtrace on standard error.
fn report_trap<O: JobOutput + ?Sized>(error: &CallError, output: &O) -> JobStatus {
    output.err(&format!("trap: {error}"));
    if let CallError::Trap {
        backtrace,
        omitted_frames,
        ..
    } = error
        && !backtrace.is_empty()
    {
        output.err("wasm backtrace:");
        for (depth, frame) in backtrace.iter().enumerate() {
            output.err(&format!("  {depth}: {frame}"));
        }
        if *omitted_frames > 0 {
            output.err(&format!(
                "  ... {omitted_frames} more frames (the backtrace keeps the innermost {})",
                backtrace.len()
            ));
        }
    }
    match error {
        CallError::Trap { .. } => JobStatus::Trap,
        CallError::BadArguments(_) => JobStatus::Usage,
    }
}

/// `sim wast`: runs every script on a fresh spectest store, prints each failure as
/// `file:line: message`, then `N passed, M failed`.
pub fn run_scripts<H: RuntimeHal, O: JobOutput + ?Sized>(
    engine: &Engine<H>,
    request: &WastRequest,
    output: &O,
) -> JobStatus {
    let features = WasmFeatures::from_bits_retain(request.features);
    let (mut passed, mut failed) = (0u64, 0u64);
    for script in &request.scripts {
        let mut spec_engine = match RuntimeSpecEngine::new(engine, features) {
            Ok(spec_engine) => spec_engine,
            Err(error) => {
                output.err(&format!(
                    "kernel failure: cannot set up the spectest module: {error}"
                ));
                return JobStatus::KernelFailure;
            }
        };
        let summary = crate::spec::run(&mut spec_engine, &script.commands);
        for failure in &summary.failures {
            output.out(&format!(
                "{}:{}: {}",
                script.path, failure.line, failure.message
            ));
        }
        passed += u64::from(summary.passed);
        failed += u64::from(summary.failed);
    }
    output.out(&format!("{passed} passed, {failed} failed"));
    if failed == 0 {
        JobStatus::Success
    } else {
        JobStatus::ScriptFailures
    }
}

/// The lane shapes of a `v128` argument: the keyword and its lane count.
const V128_SHAPES: [(&str, usize); 6] = [
    ("i8x16", 16),
    ("i16x8", 8),
    ("i32x4", 4),
    ("i64x2", 2),
    ("f32x4", 4),
    ("f64x2", 2),
];

/// Groups the command line's argument words into the text of each value: a `v128` shape
/// keyword takes its lanes (`i32x4 1 2 3 4`), `ref.null` an optional `func` or `extern`,
/// `ref.extern` its number; anything else is one value. A value may be given as one
/// argument (`"i32x4 1 2 3 4"`) or as several; an empty argument stays an (invalid) value.
#[must_use]
pub fn group_args(args: &[String]) -> Vec<String> {
    let mut words: Vec<&str> = Vec::new();
    for arg in args {
        if arg.trim().is_empty() {
            words.push(arg);
        } else {
            words.extend(arg.split_whitespace());
        }
    }
    let mut values = Vec::new();
    let mut rest = words.as_slice();
    while let Some((&first, tail)) = rest.split_first() {
        let taken = match first {
            "ref.null" => usize::from(matches!(tail.first(), Some(&("func" | "extern")))),
            "ref.extern" => 1,
            shape => V128_SHAPES
                .iter()
                .find(|(name, _)| *name == shape)
                .map_or(0, |(_, lanes)| *lanes),
        }
        .min(tail.len());
        values.push(
            core::iter::once(first)
                .chain(tail[..taken].iter().copied())
                .collect::<Vec<_>>()
                .join(" "),
        );
        rest = &tail[taken..];
    }
    values
}

/// Parses the text of one value (see [`group_args`]) as a value of type `ty`, in the spec
/// scripts' notation ([`crate::spec::text`]):
///
/// - `i32`, `i64`: decimal or `0x` hexadecimal, one optional sign, `_` between digits,
///   in either sign's range (`-1`, `4294967295` and `0xffffffff` are the same `i32`);
/// - `f32`, `f64`: decimal (`1.5`, `1e3`), hexadecimal (`0x1.8p3`, `0x10`), `inf`,
///   `nan`, `nan:0x200000` (a payload), with an optional sign (`-nan`); a finite literal
///   that rounds to infinity is refused;
/// - `v128`: a lane shape and its lanes, `i8x16` ... `i64x2` (integers as above, in the
///   lane's width) or `f32x4`, `f64x2` (floats as above): `i32x4 1 2 3 4`;
/// - `funcref`: `ref.null` or `ref.null func` (a function cannot be named from outside);
/// - `externref`: `ref.null`, `ref.null extern`, or `ref.extern N` (host value `N`, a
///   `u32`).
///
/// # Errors
/// Why the text is not such a value.
pub fn parse_value(text: &str, ty: ValType) -> Result<Val, String> {
    let number = |error: NumberError| error.to_string();
    match ty {
        ValType::I32 => Ok(Val::I32(
            (text::parse_int(text, 32).map_err(number)? as u32).cast_signed(),
        )),
        ValType::I64 => Ok(Val::I64(
            text::parse_int(text, 64).map_err(number)?.cast_signed(),
        )),
        ValType::F32 => Ok(Val::F32(text::parse_f32(text).map_err(number)?)),
        ValType::F64 => Ok(Val::F64(text::parse_f64(text).map_err(number)?)),
        ValType::V128 => parse_v128(text).map(Val::V128),
        ValType::Ref(RefType::Func) => match text {
            "ref.null" | "ref.null func" => Ok(Val::FuncRef(None)),
            _ => Err(String::from("expected `ref.null`")),
        },
        ValType::Ref(RefType::Extern) => match text {
            "ref.null" | "ref.null extern" => Ok(Val::ExternRef(None)),
            _ => match text.strip_prefix("ref.extern ") {
                Some(host) => Ok(Val::ExternRef(Some(
                    text::parse_int(host, 32).map_err(number)? as u32,
                ))),
                None => Err(String::from("expected `ref.null` or `ref.extern N`")),
            },
        },
        ValType::Ref(RefType::Exn) => Err(String::from("cannot be given as an argument")),
    }
}

/// Parses `SHAPE LANE...` into a `v128`, lane 0 in the least significant bits.
fn parse_v128(text: &str) -> Result<u128, String> {
    let mut words = text.split_whitespace();
    let shape = words.next().unwrap_or("");
    let Some(&(_, count)) = V128_SHAPES.iter().find(|(name, _)| *name == shape) else {
        return Err(String::from(
            "expected a lane shape (i8x16, i16x8, i32x4, i64x2, f32x4, f64x2) and its lanes",
        ));
    };
    let lanes: Vec<&str> = words.collect();
    if lanes.len() != count {
        return Err(format!(
            "{shape} takes {count} lanes, {} given",
            lanes.len()
        ));
    }
    let width = 128 / count as u32;
    let mut value = 0u128;
    for (index, lane) in lanes.iter().enumerate() {
        let bits = match shape {
            "f32x4" => text::parse_f32(lane).map(u64::from),
            "f64x2" => text::parse_f64(lane),
            _ => text::parse_int(lane, width),
        }
        .map_err(|error| format!("lane {index} `{lane}`: {error}"))?;
        value |= u128::from(bits) << (index as u32 * width);
    }
    Ok(value)
}

/// Parses one value as `sim run` does ([`parse_value`]), `None` when it is not valid.
#[must_use]
pub fn parse_arg(text: &str, ty: ValType) -> Option<Val> {
    parse_value(text, ty).ok()
}

/// Formats a result as `sim run` prints it, in the notation [`parse_value`] reads back:
/// integers in signed decimal; floats as Rust prints them (`1.5`, `-0`, `inf`), NaNs as
/// `nan`, `-nan`, `nan:0x1` (sign and payload kept); a `v128` as `i32x4` and four lanes in
/// 8-digit hexadecimal; references as `ref.null func`, `ref.null extern`, `ref.extern N`,
/// and `ref.func` for a non-null function reference (which has no name outside).
#[must_use]
pub fn format_value(value: &Val) -> String {
    match value {
        Val::I32(value) => value.to_string(),
        Val::I64(value) => value.to_string(),
        Val::F32(bits) => text::format_f32(*bits),
        Val::F64(bits) => text::format_f64(*bits),
        Val::V128(bits) => {
            let mut out = String::from("i32x4");
            for lane in 0..4 {
                out.push_str(&format!(" {:#010x}", (*bits >> (32 * lane)) as u32));
            }
            out
        }
        Val::FuncRef(None) => String::from("ref.null func"),
        Val::ExternRef(None) => String::from("ref.null extern"),
        Val::FuncRef(Some(_)) => String::from("ref.func"),
        Val::ExternRef(Some(value)) => format!("ref.extern {value}"),
    }
}

/// At most this many characters of command-line text are quoted in an error message.
const QUOTED_CHARS: usize = 80;

/// `text` fit to quote in an error message: control characters escaped, cut after
/// [`QUOTED_CHARS`] characters (marked with `…`).
fn quoted(text: &str) -> String {
    let mut out = String::new();
    for (index, ch) in text.chars().enumerate() {
        if index == QUOTED_CHARS {
            out.push('…');
            break;
        }
        if ch.is_control() {
            out.extend(ch.escape_unicode());
        } else {
            out.push(ch);
        }
    }
    out
}
