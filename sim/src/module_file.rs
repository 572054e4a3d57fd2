//! Reading a module file: WebAssembly binary, or text turned into binary.

use std::path::Path;

use crate::exit::Status;

/// Reads `path`: binary when it starts with the `\0asm` magic, text otherwise. Problems
/// are reported on stderr.
///
/// # Errors
/// The exit status for the failure: [`Status::Io`] or [`Status::InvalidModule`].
pub fn read(path: &Path) -> Result<Vec<u8>, Status> {
    let raw = std::fs::read(path).map_err(|error| {
        eprintln!("error: cannot read {}: {error}", path.display());
        Status::Io
    })?;
    if raw.starts_with(b"\0asm") {
        return Ok(raw);
    }
    wat::parse_bytes(&raw)
        .map(std::borrow::Cow::into_owned)
        .map_err(|mut error| {
            error.set_path(path);
            eprintln!("error: malformed module text: {error}");
            Status::InvalidModule
        })
}
