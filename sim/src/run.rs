//! `sim run FILE [--invoke NAME] [ARGS...]`: run one module as a process of the hosted
//! kernel. Without `--invoke`, `ARGS` are the program's arguments (WASI `args_get`, after
//! `argv[0]`, the file name as given).

use std::path::Path;

use kernel_core::boot::image::{BootImage, Job, KernelOptions, RunRequest, WasiOptions};

use crate::boot::{self, KernelArgs, WasiArgs};
use crate::exit::Status;
use crate::module_file;

/// The boot image of `sim run`: the module, instantiated (running the start function) with
/// the syscalls; then `invoke` called with `args`, or `_start` when exported, its results
/// printed one per line; with `bench_times`, then the intervals it measured with
/// `bench.start` / `bench.end` on stderr.
///
/// # Errors
/// The status to exit with when the file cannot be read or parsed.
pub fn image(
    path: &Path,
    invoke: Option<&str>,
    args: &[String],
    kernel: KernelArgs,
    bench_times: bool,
    wasi: WasiOptions,
) -> Result<BootImage, Status> {
    let module = module_file::read(path)?;
    Ok(BootImage {
        wasi,
        options: KernelOptions {
            bench_times,
            ..kernel.options()
        },
        job: Job::Run(RunRequest {
            path: path.display().to_string(),
            module,
            invoke: invoke.map(str::to_owned),
            args: args.to_vec(),
        }),
    })
}

/// Runs `sim run` on the hosted kernel, which ends the process with the job's status.
pub fn run(
    path: &Path,
    invoke: Option<&str>,
    args: &[String],
    kernel: KernelArgs,
    bench_times: bool,
    wasi: &WasiArgs,
) -> Status {
    let wasi = match wasi.options(false, None) {
        Ok(wasi) => wasi,
        Err(status) => return status,
    };
    match image(path, invoke, args, kernel, bench_times, wasi) {
        Ok(image) => boot::hosted(Some(&image), kernel.cpus),
        Err(status) => status,
    }
}
