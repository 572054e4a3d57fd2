//! `sim` without arguments: boot kernel-core on the hosted HAL and report the platform.

use hal_hosted::{HostedConfig, HostedHal};
use kernel_core::hal::Console;

use crate::exit::Status;

/// Boots, prints the banner and platform report, checks the virtual memory HAL, and ends.
pub fn run() -> Status {
    let hal = HostedHal::new(HostedConfig::default());
    kernel_core::boot::announce(&hal);
    match kernel_core::boot::check_virtual_memory(&hal) {
        Ok(()) => {
            hal.write_bytes(b"virtual memory: reserve, commit, protect, decommit, release ok\n");
            Status::Success
        }
        Err(error) => {
            eprintln!("kernel failure: virtual memory self-check failed: {error}");
            Status::KernelFailure
        }
    }
}
