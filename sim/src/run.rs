//! `sim run FILE [--invoke NAME] [ARGS...]`: run one module on the hosted kernel.

use std::io::Write as _;
use std::path::Path;

use hal_hosted::{HostedConfig, HostedHal};
use kernel_core::job::{self, JobOutput};
use kernel_core::boot::image::RunRequest;
use kernel_core::wasm::runtime::{Engine, EngineConfig};

use crate::exit::Status;
use crate::module_file;

/// The process's standard output and standard error.
pub struct StandardOutput;

impl JobOutput for StandardOutput {
    fn out(&self, line: &str) {
        // A closed standard output is not the job's failure; there is nowhere to report it.
        let _ = writeln!(std::io::stdout().lock(), "{line}");
    }

    fn err(&self, line: &str) {
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }
}

/// Runs the module at `path` as [`kernel_core::job::run_module`] does: instantiates it
/// (running the start function), then calls `invoke` with `args`, or `_start` when
/// exported, printing each result on its own line.
pub fn run(path: &Path, invoke: Option<&str>, args: &[String]) -> Status {
    let module = match module_file::read(path) {
        Ok(bytes) => bytes,
        Err(status) => return status,
    };
    let request = RunRequest {
        path: path.display().to_string(),
        module,
        invoke: invoke.map(str::to_owned),
        args: args.to_vec(),
    };
    let engine = Engine::new(
        HostedHal::new(HostedConfig::default()),
        EngineConfig::default(),
    );
    job::run_module(&engine, &request, &StandardOutput)
}
