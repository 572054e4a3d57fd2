//! `sim wast FILE...`: run spec scripts on the hosted kernel.

use std::path::PathBuf;

use kernel_core::boot::image::{BootImage, Job, KernelOptions, Script, WastRequest};
use kernel_core::spec::{Command, CommandKind};
use kernel_core::wasm::env::{WASM1_FEATURES, WASM2_FEATURES, WasmFeatures};

use crate::exit::Status;

/// Which WebAssembly version the scripts are written against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SpecVersion {
    /// WebAssembly 1.0 (the `wasm-v1` scripts).
    V1,
    /// WebAssembly 2.0, fixed-width SIMD included (the `wasm-v2` scripts).
    V2,
    /// WebAssembly 2.0 plus multiple memories (the `proposals/simd` scripts, one of which
    /// uses lane loads on a second memory; `wasm-v2` asserts a second memory is invalid,
    /// so it cannot share this set).
    Simd,
}

impl SpecVersion {
    /// The features modules are validated with.
    pub fn features(self) -> WasmFeatures {
        match self {
            Self::V1 => WASM1_FEATURES,
            Self::V2 => WASM2_FEATURES,
            Self::Simd => WASM2_FEATURES.union(WasmFeatures::MULTI_MEMORY),
        }
    }
}

/// Reads and converts every script. A script that does not parse becomes a script of one
/// command that fails with the parser's message, so it counts (and prints) in its place.
///
/// # Errors
/// [`Status::Io`] when a file cannot be read or is larger than
/// [`crate::module_file::MAX_INPUT_BYTES`] (reported on stderr).
pub fn load_scripts(files: &[PathBuf]) -> Result<Vec<Script>, Status> {
    files
        .iter()
        .map(|path| {
            let source = crate::module_file::read_input(path)?;
            let path_text = path.display().to_string();
            let parsed = if source.starts_with(b"\0asm") {
                Err((
                    1,
                    String::from("a binary WebAssembly module, not a spec script"),
                ))
            } else {
                match std::str::from_utf8(&source) {
                    Ok(source) => sim::wast_script::parse_script(source, path)
                        .map_err(|error| (error.line, error.message)),
                    Err(error) => Err((1, format!("the script is not UTF-8: {error}"))),
                }
            };
            let commands = parsed.unwrap_or_else(|(line, message)| {
                vec![Command {
                    line,
                    kind: CommandKind::Unsupported {
                        directive: String::from("script"),
                        reason: message,
                    },
                }]
            });
            Ok(Script {
                path: path_text,
                commands,
            })
        })
        .collect()
}

/// Runs every script in one process of the hosted kernel (`kernel_core::job::run_scripts`):
/// each failure as `file:line: message`, then the total `N passed, M failed`.
pub fn run(files: &[PathBuf], version: SpecVersion) -> Status {
    let scripts = match load_scripts(files) {
        Ok(scripts) => scripts,
        Err(status) => return status,
    };
    let image = BootImage {
        wasi: kernel_core::boot::image::WasiOptions::default(),
        options: KernelOptions::default(),
        job: Job::Wast(WastRequest {
            features: version.features().bits(),
            scripts,
        }),
    };
    // One CPU: the job is a single process.
    crate::boot::hosted(Some(&image), Some(1))
}
