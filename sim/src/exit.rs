//! The exit statuses of `sim`, one per kind of outcome (documented in the README).

use std::process::ExitCode;

/// How a `sim` command ended. A usage error (bad arguments) exits with status 2, which
/// clap reports on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Everything worked.
    Success = 0,
    /// The module is malformed or invalid.
    InvalidModule = 3,
    /// The module is valid but uses something the kernel does not support, or its
    /// VMContext would be too large.
    UnsupportedModule = 4,
    /// A file could not be read.
    Io = 5,
    /// The kernel itself failed (a HAL self-check, an internal error).
    KernelFailure = 70,
}

impl From<Status> for ExitCode {
    fn from(status: Status) -> Self {
        ExitCode::from(status as u8)
    }
}
