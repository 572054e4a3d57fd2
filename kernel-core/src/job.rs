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
use crate::spectest::RuntimeSpecEngine;
use crate::wasm::env::{ModuleError, ModuleErrorKind, ValType, WASM2_FEATURES, WasmFeatures};
use crate::wasm::runtime::{
    CallError, Engine, Extern, InstantiationError, LoadError, Module, RuntimeHal, Store, Val,
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
    let module = match Module::new(engine, &request.module, WASM2_FEATURES) {
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
    let name = match request.invoke.as_deref() {
        Some(name) => name,
        None if store.export(instance, "_start").is_some() => "_start",
        None => return JobStatus::Success.code(),
    };
    let Some(Extern::Func(func)) = store.export(instance, name) else {
        output.err(&format!("error: the module exports no function `{name}`"));
        return JobStatus::Usage.code();
    };
    let params = store
        .func_type(func)
        .map(|ty| ty.params.to_vec())
        .unwrap_or_default();
    if params.len() != request.args.len() {
        output.err(&format!(
            "error: `{name}` takes {} arguments, {} given",
            params.len(),
            request.args.len()
        ));
        return JobStatus::Usage.code();
    }
    let mut values = Vec::with_capacity(params.len());
    for (text, ty) in request.args.iter().zip(&params) {
        match parse_arg(text, *ty) {
            Some(value) => values.push(value),
            None => {
                output.err(&format!("error: `{text}` is not a valid {ty}"));
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

/// Prints a trap and its WebAssembly backtrace on standard error.
fn report_trap<O: JobOutput + ?Sized>(error: &CallError, output: &O) -> JobStatus {
    output.err(&format!("trap: {error}"));
    if let CallError::Trap { backtrace, .. } = error
        && !backtrace.is_empty()
    {
        output.err("wasm backtrace:");
        for (depth, frame) in backtrace.iter().enumerate() {
            output.err(&format!("  {depth}: {frame}"));
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

/// Parses a command-line argument as a value of type `ty` (integers in decimal or `0x`
/// hexadecimal in either sign's range, floats as Rust parses them), as `sim run` does.
pub fn parse_arg(text: &str, ty: ValType) -> Option<Val> {
    fn integer(text: &str) -> Option<i128> {
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let magnitude = match digits.strip_prefix("0x") {
            Some(hex) => i128::from_str_radix(hex, 16).ok()?,
            None => digits.parse::<i128>().ok()?,
        };
        Some(if negative { -magnitude } else { magnitude })
    }
    match ty {
        ValType::I32 => {
            let value = integer(text)?;
            i32::try_from(value)
                .ok()
                .or_else(|| u32::try_from(value).ok().map(u32::cast_signed))
                .map(Val::I32)
        }
        ValType::I64 => {
            let value = integer(text)?;
            i64::try_from(value)
                .ok()
                .or_else(|| u64::try_from(value).ok().map(u64::cast_signed))
                .map(Val::I64)
        }
        ValType::F32 => text
            .parse::<f32>()
            .ok()
            .map(|value| Val::F32(value.to_bits())),
        ValType::F64 => text
            .parse::<f64>()
            .ok()
            .map(|value| Val::F64(value.to_bits())),
        ValType::V128 | ValType::Ref(_) => None,
    }
}

/// Formats a result as `sim run` does: integers in decimal, floats as Rust prints them.
pub fn format_value(value: &Val) -> String {
    match value {
        Val::I32(value) => value.to_string(),
        Val::I64(value) => value.to_string(),
        Val::F32(bits) => f32::from_bits(*bits).to_string(),
        Val::F64(bits) => f64::from_bits(*bits).to_string(),
        Val::V128(bits) => format!("{bits:#034x}"),
        Val::FuncRef(None) | Val::ExternRef(None) => String::from("null"),
        Val::FuncRef(Some(_)) => String::from("funcref"),
        Val::ExternRef(Some(value)) => format!("externref {value}"),
    }
}
