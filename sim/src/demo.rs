//! The built-in demo system: `sim` with no arguments (and `sim boot`, `sim qemu boot`
//! without programs) boots the programs of the workspace's `programs/` folder, built into
//! `sim`: `init` starts the others and talks to `echo` over two channels, `ticker` prints
//! while `spinner` loops forever on another CPU (or the same one), `faulty` traps. Every
//! process ends by itself or by the demo's CPU-time limit of one second.

use kernel_core::boot::image::{BootImage, BootRequest, Job, KernelOptions, Program};

/// The demo's programs (WebAssembly text), init first.
const PROGRAMS: [(&str, &str); 5] = [
    ("init", include_str!("../../programs/init.wat")),
    ("echo", include_str!("../../programs/echo.wat")),
    ("ticker", include_str!("../../programs/ticker.wat")),
    ("spinner", include_str!("../../programs/spinner.wat")),
    ("faulty", include_str!("../../programs/faulty.wat")),
];

/// CPU time each demo process may use: the spinner's lifetime.
const CPU_LIMIT_NS: u64 = 1_000_000_000;

/// The demo's boot image with `options` (its CPU limit unless one is given).
///
/// # Panics
/// When a built-in program does not parse: a bug of this build, caught by its tests.
pub fn image(mut options: KernelOptions) -> BootImage {
    options.cpu_limit_ns = options.cpu_limit_ns.or(Some(CPU_LIMIT_NS));
    let programs = PROGRAMS
        .iter()
        .map(|(name, text)| Program {
            name: (*name).to_owned(),
            module: wat::parse_str(text).expect("the demo programs are valid text"),
        })
        .collect();
    BootImage {
        wasi: kernel_core::boot::image::WasiOptions::default(),
        options,
        job: Job::Boot(BootRequest { programs }),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_demo_program_parses() {
        let image = super::image(kernel_core::boot::image::KernelOptions::default());
        assert_eq!(image.options.cpu_limit_ns, Some(super::CPU_LIMIT_NS));
    }
}
