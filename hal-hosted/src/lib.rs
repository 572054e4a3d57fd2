//! The kernel-core HAL inside a Linux process: the platform of the simulator `sim`.
//!
//! Memory comes from `mmap`, the console is the process's standard output and input, the
//! clock is `CLOCK_MONOTONIC`, CPUs are threads, and faults arrive as POSIX signals
//! (SIGSEGV, SIGBUS, SIGILL, SIGFPE) handled on per-thread alternate stacks. The timer
//! signal and context switching come with the issues that need them.
//!
//! Only x86-64 Linux hosts are supported: trap delivery reads and edits the x86-64 registers
//! of the interrupted thread in the signal context.

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
compile_error!(
    "hal-hosted supports x86_64 Linux hosts only: its trap delivery edits x86-64 signal contexts"
);

mod console;
mod cpus;
mod memory;
#[cfg(target_arch = "x86_64")]
mod traps;

use std::sync::Mutex;
use std::thread::Thread;

use kernel_core::hal::{
    BootInfo, BootModule, Clock, Console, Isa, Machine, MemoryKind, MemoryRegion,
};

pub use cpus::current_cpu_index;

/// How to set up the hosted platform.
#[derive(Debug, Clone, Default)]
pub struct HostedConfig {
    /// Number of simulated CPUs; `None` for one per host CPU.
    pub cpus: Option<usize>,
    /// The kernel command line.
    pub command_line: String,
    /// The boot image: program names (file stems) and their bytes.
    pub boot_modules: Vec<(String, Vec<u8>)>,
}

/// The hosted platform. One value per process; it lives until the process ends.
pub struct HostedHal {
    cpu_count: usize,
    command_line: String,
    memory_map: Vec<MemoryRegion>,
    boot_modules: Vec<BootModule<'static>>,
    /// The thread of each started CPU, for waking it; CPU 0 is the thread that made the HAL.
    cpu_threads: Mutex<Vec<Option<Thread>>>,
}

impl HostedHal {
    /// Sets up the platform: counts CPUs, reads the host's memory size, and keeps the boot
    /// image for the life of the process. The calling thread becomes CPU 0.
    #[must_use]
    pub fn new(config: HostedConfig) -> Self {
        let host_cpus = std::thread::available_parallelism().map_or(1, usize::from);
        let cpu_count = config.cpus.unwrap_or(host_cpus).max(1);
        let info = rustix::system::sysinfo();
        let total_ram = usize::try_from(info.totalram.saturating_mul(u64::from(info.mem_unit)))
            .unwrap_or(usize::MAX);
        // Hosted, physical addresses are invisible: the map is one usable region as large
        // as the host's RAM, standing for the memory the simulator may use.
        let memory_map = vec![MemoryRegion {
            base: 0,
            size: total_ram,
            kind: MemoryKind::Usable,
        }];
        // The boot image lives as long as the platform, which lives until the process ends.
        let boot_modules = config
            .boot_modules
            .into_iter()
            .map(|(name, bytes)| BootModule {
                name: Box::leak(name.into_boxed_str()),
                bytes: Box::leak(bytes.into_boxed_slice()),
            })
            .collect();
        cpus::adopt_current_thread_as(0);
        let mut cpu_threads = vec![None; cpu_count];
        cpu_threads[0] = Some(std::thread::current());
        Self {
            cpu_count,
            command_line: config.command_line,
            memory_map,
            boot_modules,
            cpu_threads: Mutex::new(cpu_threads),
        }
    }
}

impl Console for HostedHal {
    fn write_bytes(&self, bytes: &[u8]) {
        console::write_stdout(bytes);
    }

    fn read_bytes(&self, buf: &mut [u8]) -> usize {
        console::read_stdin_nonblocking(buf)
    }
}

impl Clock for HostedHal {
    fn now_ns(&self) -> u64 {
        let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        let seconds = u64::try_from(now.tv_sec).unwrap_or(0);
        let nanos = u64::try_from(now.tv_nsec).unwrap_or(0);
        seconds.saturating_mul(1_000_000_000).saturating_add(nanos)
    }
}

impl BootInfo for HostedHal {
    fn memory_map(&self) -> &[MemoryRegion] {
        &self.memory_map
    }

    fn command_line(&self) -> &str {
        &self.command_line
    }

    fn boot_modules(&self) -> &[BootModule<'_>] {
        &self.boot_modules
    }
}

impl Machine for HostedHal {
    fn shutdown(&self, status: u8) -> ! {
        std::process::exit(i32::from(status))
    }
}

/// The ISA of the host this crate was built for (the only one it supports, see the
/// `compile_error!` at the top).
#[cfg(target_arch = "x86_64")]
const HOST_ISA: Isa = Isa::X86_64;
