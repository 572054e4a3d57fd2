//! `HostedConfig::capture_output`: everything the console is given, the kernel's lines and
//! programs' bytes alike, lands in the capture and nowhere else.

use hal_hosted::{HostedConfig, HostedHal};
use kernel_core::hal::Console;

#[test]
fn captured_output_holds_kernel_and_program_bytes() {
    let hal = HostedHal::new(HostedConfig {
        cpus: Some(1),
        capture_output: true,
        ..HostedConfig::default()
    });
    hal.write_bytes(b"kernel line\n");
    hal.write_program_bytes(b"program \x1d\x1e\r bytes\n", false);
    hal.write_error_bytes(b"kernel error\n");
    hal.write_program_bytes(b"program error\n", true);
    let (stdout, stderr) = hal.take_output();
    assert_eq!(stdout, b"kernel line\nprogram \x1d\x1e\r bytes\n");
    assert_eq!(stderr, b"kernel error\nprogram error\n");
    assert_eq!(hal.take_output(), (Vec::new(), Vec::new()));
}
