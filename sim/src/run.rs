//! `sim run FILE [--invoke NAME] [ARGS...]`: run one module as a process of the hosted
//! kernel.

use std::path::Path;

use kernel_core::boot::image::{BootImage, Job, RunRequest};

use crate::boot::{self, KernelArgs};
use crate::exit::Status;
use crate::module_file;

/// The boot image of `sim run`: the module, instantiated (running the start function) with
/// the syscalls; then `invoke` called with `args`, or `_start` when exported, its results
/// printed one per line.
///
/// # Errors
/// The status to exit with when the file cannot be read or parsed.
pub fn image(
    path: &Path,
    invoke: Option<&str>,
    args: &[String],
    kernel: KernelArgs,
) -> Result<BootImage, Status> {
    let module = module_file::read(path)?;
    Ok(BootImage {
        options: kernel.options(),
        job: Job::Run(RunRequest {
            path: path.display().to_string(),
            module,
            invoke: invoke.map(str::to_owned),
            args: args.to_vec(),
        }),
    })
}

/// Runs `sim run` on the hosted kernel, which ends the process with the job's status.
pub fn run(path: &Path, invoke: Option<&str>, args: &[String], kernel: KernelArgs) -> Status {
    match image(path, invoke, args, kernel) {
        Ok(image) => boot::hosted(Some(&image), kernel.cpus),
        Err(status) => status,
    }
}
