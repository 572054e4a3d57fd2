//! The exit statuses of `sim`, one per kind of outcome (documented in the README).

use std::process::ExitCode;

/// How a `sim` command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Everything worked.
    Success = 0,
    /// WebAssembly trapped.
    Trap = 1,
    /// Bad arguments (clap reports its own usage errors with this status too).
    Usage = 2,
    /// The module is malformed or invalid.
    InvalidModule = 3,
    /// The module is valid but uses something the kernel does not support, or its
    /// VMContext would be too large.
    UnsupportedModule = 4,
    /// A file could not be read.
    Io = 5,
    /// The module's imports cannot be satisfied.
    Unlinkable = 6,
    /// A spec script had failing commands.
    ScriptFailures = 7,
    /// The kernel itself failed (a HAL self-check, an internal error).
    KernelFailure = 70,
}

impl Status {
    /// The status for a module that failed translation.
    pub fn for_module_error(error: &kernel_core::wasm::env::ModuleError) -> Self {
        match error.kind {
            kernel_core::wasm::env::ModuleErrorKind::Invalid => Self::InvalidModule,
            kernel_core::wasm::env::ModuleErrorKind::Unsupported => Self::UnsupportedModule,
        }
    }
}

impl From<Status> for ExitCode {
    fn from(status: Status) -> Self {
        ExitCode::from(status as u8)
    }
}
