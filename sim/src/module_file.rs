//! Reading input files: at most [`MAX_INPUT_BYTES`] of any file, and modules as
//! WebAssembly binary or text turned into binary.

use std::io::Read;
use std::path::Path;

use sim::diagnostic;

use crate::exit::Status;

/// The most bytes `sim` reads from one input file (module or spec script): 64 MiB, far
/// above any real module or script, so that `sim run /dev/zero` ends with an error instead
/// of reading until the host runs out of memory.
pub const MAX_INPUT_BYTES: u64 = 64 << 20;

/// Reads all of `path`, which may be any readable file (pipes and devices included) of at
/// most [`MAX_INPUT_BYTES`]. Problems are reported on stderr.
///
/// # Errors
/// [`Status::Io`] when the file cannot be opened or read, or is larger than the limit.
pub fn read_input(path: &Path) -> Result<Vec<u8>, Status> {
    let report = |what: &dyn std::fmt::Display| {
        eprintln!(
            "error: cannot read {}: {what}",
            diagnostic::printable(&path.display().to_string(), diagnostic::MESSAGE_CHARS)
        );
        Status::Io
    };
    let file = std::fs::File::open(path).map_err(|error| report(&error))?;
    let metadata = file.metadata().map_err(|error| report(&error))?;
    if metadata.is_dir() {
        return Err(report(&"it is a directory"));
    }
    let too_large = || {
        report(&format_args!(
            "larger than the {} MiB limit for input files",
            MAX_INPUT_BYTES >> 20
        ))
    };
    if metadata.is_file() && metadata.len() > MAX_INPUT_BYTES {
        return Err(too_large());
    }
    // Devices and pipes have no meaningful size: read one byte past the limit to tell.
    let mut contents = Vec::new();
    file.take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut contents)
        .map_err(|error| report(&error))?;
    if contents.len() as u64 > MAX_INPUT_BYTES {
        return Err(too_large());
    }
    Ok(contents)
}

/// Reads `path`: binary when it starts with the `\0asm` magic, text otherwise. Problems
/// are reported on stderr, quoting at most a short, escaped part of the offending line.
///
/// # Errors
/// The exit status for the failure: [`Status::Io`] or [`Status::InvalidModule`].
pub fn read(path: &Path) -> Result<Vec<u8>, Status> {
    let raw = read_input(path)?;
    if raw.starts_with(b"\0asm") {
        return Ok(raw);
    }
    let malformed = |message: &str| {
        eprintln!("error: malformed module text: {message}");
        Status::InvalidModule
    };
    let text = std::str::from_utf8(&raw).map_err(|error| {
        malformed(&format!(
            "{}: neither a binary module (no `\\0asm` magic) nor UTF-8 text: {error}",
            diagnostic::printable(&path.display().to_string(), diagnostic::MESSAGE_CHARS)
        ))
    })?;
    let render = |error: wast::Error| {
        malformed(&diagnostic::parse_error(
            &error.message(),
            path,
            text,
            error.span().offset(),
        ))
    };
    let buffer = wast::parser::ParseBuffer::new(text).map_err(render)?;
    let mut module = wast::parser::parse::<wast::Wat<'_>>(&buffer).map_err(render)?;
    module.encode().map_err(render)
}
