//! Loading a module file: WebAssembly binary, or text turned into binary.

use std::path::Path;

use kernel_core::wasm::env::{ModuleError, ModuleErrorKind, ModuleInfo, WasmFeatures, translate};

use crate::exit::Status;

/// Reads `path` (binary when it starts with the `\0asm` magic, text otherwise), validates
/// it against `features` and translates it. Problems are reported on stderr.
///
/// # Errors
/// The exit status for the failure: [`Status::Io`], [`Status::InvalidModule`] or
/// [`Status::UnsupportedModule`].
pub fn load(path: &Path, features: WasmFeatures) -> Result<ModuleInfo, Status> {
    let raw = std::fs::read(path).map_err(|error| {
        eprintln!("error: cannot read {}: {error}", path.display());
        Status::Io
    })?;
    let bytes = if raw.starts_with(b"\0asm") {
        raw
    } else {
        wat::parse_bytes(&raw)
            .map(std::borrow::Cow::into_owned)
            .map_err(|mut error| {
                error.set_path(path);
                eprintln!("error: malformed module text: {error}");
                Status::InvalidModule
            })?
    };
    translate(&bytes, features).map_err(|error| report(path, &error))
}

fn report(path: &Path, error: &ModuleError) -> Status {
    eprintln!("error: {}: {error}", path.display());
    match error.kind {
        ModuleErrorKind::Invalid => Status::InvalidModule,
        ModuleErrorKind::Unsupported => Status::UnsupportedModule,
    }
}
