//! Exit statuses: `sim` ends with the statuses of [`kernel_core::job::ExitStatus`], the
//! same the kernel powers off with under `sim qemu` (listed in the README), or with the
//! exit code of the program `sim run` ran.

pub use kernel_core::job::ExitStatus as Status;
