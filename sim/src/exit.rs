//! Exit statuses: `sim` ends with the statuses of [`kernel_core::job::ExitStatus`], the
//! same the kernel powers off with under `sim qemu` (listed in the README).

use std::process::ExitCode;

pub use kernel_core::job::ExitStatus as Status;

/// The process exit code of `status`.
pub fn exit_code(status: Status) -> ExitCode {
    ExitCode::from(status.code())
}
