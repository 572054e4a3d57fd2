//! The exit statuses of `sim` (listed in the README): the kernel's job statuses
//! ([`kernel_core::job::JobStatus`], the same numbers the kernel powers off with under
//! `sim qemu`) and those of the host side.

use kernel_core::job::JobStatus;
use kernel_core::wasm::env::ModuleError;

/// How a `sim` command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Everything worked.
    Success,
    /// WebAssembly trapped.
    Trap,
    /// Bad arguments: unknown command or option, no such export, wrong argument count or
    /// value, unusable program names.
    Usage,
    /// The module is malformed or invalid (binary or text).
    InvalidModule,
    /// The module is valid but uses something the kernel does not support, or its
    /// VMContext would be too large.
    UnsupportedModule,
    /// A file could not be read, or a kernel image is missing.
    Io,
    /// The module's imports cannot be satisfied.
    Unlinkable,
    /// A spec script had failing commands.
    ScriptFailures,
    /// The kernel itself failed, or QEMU is missing, failed or timed out.
    KernelFailure,
    /// The command would have succeeded, but its output could not be written (standard
    /// output on `/dev/full`, a closed pipe). The hosted kernel's console ends with the
    /// same number (hal-hosted's `Machine::shutdown`).
    OutputFailed,
}

impl Status {
    /// The exit code.
    pub const fn code(self) -> u8 {
        match self {
            Self::Io => 5,
            Self::OutputFailed => 74,
            Self::Success => JobStatus::Success.code(),
            Self::Trap => JobStatus::Trap.code(),
            Self::Usage => JobStatus::Usage.code(),
            Self::InvalidModule => JobStatus::InvalidModule.code(),
            Self::UnsupportedModule => JobStatus::UnsupportedModule.code(),
            Self::Unlinkable => JobStatus::Unlinkable.code(),
            Self::ScriptFailures => JobStatus::ScriptFailures.code(),
            Self::KernelFailure => JobStatus::KernelFailure.code(),
        }
    }

    /// The status for a module that failed translation.
    pub fn for_module_error(error: &ModuleError) -> Self {
        match JobStatus::for_module_error(error) {
            JobStatus::UnsupportedModule => Self::UnsupportedModule,
            _ => Self::InvalidModule,
        }
    }
}

impl From<JobStatus> for Status {
    fn from(status: JobStatus) -> Self {
        match status {
            JobStatus::Success => Self::Success,
            JobStatus::Trap => Self::Trap,
            JobStatus::Usage => Self::Usage,
            JobStatus::InvalidModule => Self::InvalidModule,
            JobStatus::UnsupportedModule => Self::UnsupportedModule,
            JobStatus::Unlinkable => Self::Unlinkable,
            JobStatus::ScriptFailures => Self::ScriptFailures,
            JobStatus::KernelFailure => Self::KernelFailure,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_statuses_keep_their_numbers() {
        for status in JobStatus::ALL {
            assert_eq!(Status::from(status).code(), status.code());
        }
        assert!(JobStatus::from_code(Status::Io.code()).is_none());
        assert!(JobStatus::from_code(Status::OutputFailed.code()).is_none());
    }
}
