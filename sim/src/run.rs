//! `sim run FILE [--invoke NAME] [ARGS...]`: run one module on the hosted kernel.

use std::path::Path;

use hal_hosted::{HostedConfig, HostedHal};
use kernel_core::wasm::env::{ValType, WASM2_FEATURES};
use kernel_core::wasm::runtime::{
    CallError, Engine, EngineConfig, Extern, InstantiationError, LoadError, Module, Store, Val,
};

use crate::exit::Status;
use crate::module_file;

/// Loads, instantiates (running the start function) and, with `invoke`, calls an export
/// with `args`, printing each result on its own line. Without `invoke`, calls `_start`
/// when the module exports it.
pub fn run(path: &Path, invoke: Option<&str>, args: &[String]) -> Status {
    let bytes = match module_file::read(path) {
        Ok(bytes) => bytes,
        Err(status) => return status,
    };
    let engine = Engine::new(
        HostedHal::new(HostedConfig::default()),
        EngineConfig::default(),
    );
    let module = match Module::new(&engine, &bytes, WASM2_FEATURES) {
        Ok(module) => module,
        Err(error) => {
            eprintln!("error: {}: {error}", path.display());
            return match error {
                LoadError::Module(error) => Status::for_module_error(&error),
                _ => Status::UnsupportedModule,
            };
        }
    };
    if let Some((module_name, name)) = module.imports().next() {
        eprintln!(
            "error: {}: import {module_name}::{name} is not provided by `sim run`",
            path.display()
        );
        return Status::Unlinkable;
    }
    let mut store = Store::new(&engine);
    let instance = match store.instantiate(&module, &[]) {
        Ok(instance) => instance,
        Err(InstantiationError::Trap(error)) => return report_trap(&error),
        Err(InstantiationError::Unlinkable(message)) => {
            eprintln!("error: {}: unlinkable: {message}", path.display());
            return Status::Unlinkable;
        }
        Err(error) => {
            eprintln!("error: {}: {error}", path.display());
            return Status::UnsupportedModule;
        }
    };
    let name = match invoke {
        Some(name) => name,
        None if store.export(instance, "_start").is_some() => "_start",
        None => return Status::Success,
    };
    let Some(Extern::Func(func)) = store.export(instance, name) else {
        eprintln!("error: the module exports no function `{name}`");
        return Status::Usage;
    };
    let params = store
        .func_type(func)
        .map(|ty| ty.params.to_vec())
        .unwrap_or_default();
    if params.len() != args.len() {
        eprintln!(
            "error: `{name}` takes {} arguments, {} given",
            params.len(),
            args.len()
        );
        return Status::Usage;
    }
    let mut values = Vec::with_capacity(args.len());
    for (text, ty) in args.iter().zip(&params) {
        match parse_arg(text, *ty) {
            Some(value) => values.push(value),
            None => {
                eprintln!("error: `{text}` is not a valid {ty}");
                return Status::Usage;
            }
        }
    }
    match store.call(func, &values) {
        Ok(results) => {
            for value in results {
                println!("{}", format_value(&value));
            }
            Status::Success
        }
        Err(error) => report_trap(&error),
    }
}

/// Prints a trap and its WebAssembly backtrace on stderr.
fn report_trap(error: &CallError) -> Status {
    eprintln!("trap: {error}");
    if let CallError::Trap { backtrace, .. } = error
        && !backtrace.is_empty()
    {
        eprintln!("wasm backtrace:");
        for (depth, frame) in backtrace.iter().enumerate() {
            eprintln!("  {depth}: {frame}");
        }
    }
    match error {
        CallError::Trap { .. } => Status::Trap,
        CallError::BadArguments(_) => Status::Usage,
    }
}

/// Parses a command-line argument as a value of type `ty` (integers in decimal or `0x`
/// hexadecimal, floats as Rust parses them).
fn parse_arg(text: &str, ty: ValType) -> Option<Val> {
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
        // Accept both the signed and the unsigned range, as wasm integers have no sign.
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

/// Formats a result: integers in decimal, floats as Rust prints them.
fn format_value(value: &Val) -> String {
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
