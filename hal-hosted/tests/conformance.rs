//! The HAL conformance suite of kernel-core, run against the hosted HAL with two CPUs.

use hal_hosted::{HostedConfig, HostedHal};

#[test]
fn hosted_hal_passes_the_conformance_suite() {
    // The suite needs a `'static` HAL (CPU 1 keeps using it), and this thread becomes CPU 0.
    let hal: &'static HostedHal = Box::leak(Box::new(HostedHal::new(HostedConfig {
        cpus: Some(2),
        ..HostedConfig::default()
    })));
    let mut lines = Vec::new();
    let result = kernel_core::hal::conformance::run(hal, &mut |line| {
        lines.push(line.to_string());
    });
    for line in &lines {
        println!("{line}");
    }
    let passed = result.unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(passed, 6, "every check runs with two CPUs");
}
