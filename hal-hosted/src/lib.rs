//! The kernel-core HAL inside a Linux process: the platform of the simulator `sim`.
//!
//! Memory comes from `mmap`, the console is the process's standard output and input, the
//! clock is `CLOCK_MONOTONIC`, CPUs are threads, and faults arrive as POSIX signals
//! (SIGSEGV, SIGBUS, SIGILL, SIGFPE) handled on per-thread alternate stacks. Each CPU
//! thread has a POSIX timer that signals it with a real-time signal (see [`interrupts`]),
//! and execution contexts are `mmap`ed stacks switched by a few lines of assembly (see
//! [`context`]).
//!
//! Contexts migrate: a context suspended on one CPU thread may be resumed on another (work
//! stealing). The compiler, however, assumes that the address of a thread-local never
//! changes within a function, and may compute it once and keep it across a call to
//! `switch`. Every function of this crate that touches a thread-local is therefore a small
//! `#[inline(never)]` accessor, so that no thread-local address outlives the call that
//! computed it; code added here must keep that rule.
//!
//! Only x86-64 Linux hosts are supported: trap delivery reads and edits the x86-64 registers
//! of the interrupted thread in the signal context.

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
compile_error!(
    "hal-hosted supports x86_64 Linux hosts only: its trap delivery edits x86-64 signal contexts"
);

mod console;
pub mod context;
mod cpus;
pub mod interrupts;
mod memory;
mod storage;
#[cfg(target_arch = "x86_64")]
mod traps;

use std::sync::Mutex;

use kernel_core::hal::{
    BootInfo, Clock, Console, Entropy, Isa, Machine, MemoryKind, MemoryRegion, Storage, WallClock,
};

pub use context::{SavedContext, Stack};
pub use cpus::current_cpu_index;
use interrupts::CpuState;

/// How to set up the hosted platform.
#[derive(Debug, Clone, Default)]
pub struct HostedConfig {
    /// Number of simulated CPUs; `None` for one per host CPU.
    pub cpus: Option<usize>,
    /// The kernel command line.
    pub command_line: String,
    /// The boot image (encoded by `kernel_core::boot::image`), if any.
    pub boot_image: Option<Vec<u8>>,
    /// Keep the console's output in memory instead of writing it to standard output and
    /// standard error, for an embedder to read with [`HostedHal::take_output`] (the
    /// comparison harness checks a program's output this way).
    pub capture_output: bool,
}

/// The console's output kept in memory ([`HostedConfig::capture_output`]).
#[derive(Debug, Default)]
struct CapturedOutput {
    /// What went to standard output.
    stdout: Vec<u8>,
    /// What went to standard error.
    stderr: Vec<u8>,
}

/// The hosted platform. One value per process; it lives until the process ends.
pub struct HostedHal {
    cpu_count: usize,
    command_line: String,
    memory_map: Vec<MemoryRegion>,
    boot_image: Option<&'static [u8]>,
    /// The interrupt state of each CPU, shared with the timer signal handler. Leaked: a CPU
    /// thread and its signal handler may use it for the rest of the process's life.
    cpu_states: &'static [CpuState],
    /// Whether each CPU has been started; CPU 0 is the thread that made the HAL.
    cpu_started: Mutex<Vec<bool>>,
    /// The console's output, when it is captured.
    captured: Option<Mutex<CapturedOutput>>,
}

impl HostedHal {
    /// Sets up the platform: counts CPUs, reads the host's memory size, and keeps the boot
    /// image for the life of the process. The calling thread becomes CPU 0 (and gets an
    /// alternate signal stack for the timer and trap signals).
    ///
    /// Meant to be made once per process; tests make several, each on its own thread, and
    /// a thread belongs to the HAL that adopted it last. The boot image and the per-CPU
    /// interrupt state (a few words per CPU) are leaked.
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
        let boot_image = config
            .boot_image
            .map(|bytes| &*Box::leak(bytes.into_boxed_slice()));
        let cpu_states: &'static [CpuState] =
            Box::leak((0..cpu_count).map(|_| CpuState::new()).collect());
        cpus::adopt_current_thread_as(0, &cpu_states[0]);
        let mut cpu_started = vec![false; cpu_count];
        cpu_started[0] = true;
        Self {
            cpu_count,
            command_line: config.command_line,
            memory_map,
            boot_image,
            cpu_states,
            cpu_started: Mutex::new(cpu_started),
            captured: config
                .capture_output
                .then(|| Mutex::new(CapturedOutput::default())),
        }
    }

    /// The console's standard output and standard error so far, taken (empty unless
    /// [`HostedConfig::capture_output`] was set).
    pub fn take_output(&self) -> (Vec<u8>, Vec<u8>) {
        self.captured
            .as_ref()
            .map_or_else(Default::default, |captured| {
                let mut captured = captured.lock().unwrap_or_else(|poison| poison.into_inner());
                (
                    core::mem::take(&mut captured.stdout),
                    core::mem::take(&mut captured.stderr),
                )
            })
    }

    /// Appends `bytes` to the captured standard output or standard error; `false` when
    /// the console is not captured.
    fn capture(&self, bytes: &[u8], error: bool) -> bool {
        let Some(captured) = &self.captured else {
            return false;
        };
        let mut captured = captured.lock().unwrap_or_else(|poison| poison.into_inner());
        let stream = if error {
            &mut captured.stderr
        } else {
            &mut captured.stdout
        };
        stream.extend_from_slice(bytes);
        true
    }
}

impl Console for HostedHal {
    fn write_bytes(&self, bytes: &[u8]) {
        if !self.capture(bytes, false) {
            console::write_stdout(bytes);
        }
    }

    fn write_error_bytes(&self, bytes: &[u8]) {
        if !self.capture(bytes, true) {
            console::write_stderr(bytes);
        }
    }

    /// Two streams of its own: programs' bytes go out as they are, to standard output or
    /// standard error (or the capture).
    fn write_program_bytes(&self, bytes: &[u8], to_error: bool) {
        if to_error {
            self.write_error_bytes(bytes);
        } else {
            self.write_bytes(bytes);
        }
    }

    fn read_bytes(&self, buf: &mut [u8]) -> usize {
        console::read_stdin_nonblocking(buf)
    }

    fn input_ended(&self) -> bool {
        console::stdin_ended()
    }
}

impl Storage for HostedHal {
    fn open_directory(
        &self,
        path: &str,
    ) -> Result<std::sync::Arc<dyn kernel_core::vfs::FileSystem>, kernel_core::vfs::Errno> {
        storage::open(path)
    }
}

impl Entropy for HostedHal {
    /// `getrandom(2)`.
    fn fill_random(&self, buf: &mut [u8]) -> bool {
        let mut done = 0;
        while done < buf.len() {
            match rustix::rand::getrandom(&mut buf[done..], rustix::rand::GetRandomFlags::empty()) {
                Ok(read) => done += read,
                Err(rustix::io::Errno::INTR) => {}
                Err(_) => return false,
            }
        }
        true
    }
}

impl WallClock for HostedHal {
    /// `CLOCK_REALTIME`.
    fn realtime_ns(&self) -> Option<u64> {
        let now = rustix::time::clock_gettime(rustix::time::ClockId::Realtime);
        let seconds = u64::try_from(now.tv_sec).ok()?;
        let nanos = u64::try_from(now.tv_nsec).ok()?;
        Some(seconds.saturating_mul(1_000_000_000).saturating_add(nanos))
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

    fn boot_image(&self) -> Option<&[u8]> {
        self.boot_image
    }
}

impl Machine for HostedHal {
    /// Ends the process with `status`; when that is success but console output was lost
    /// (standard output to `/dev/full`, a closed pipe), with 74 instead.
    fn shutdown(&self, status: u8) -> ! {
        std::process::exit(i32::from(console::final_status(status)))
    }
}

/// The ISA of the host this crate was built for (the only one it supports, see the
/// `compile_error!` at the top).
#[cfg(target_arch = "x86_64")]
const HOST_ISA: Isa = Isa::X86_64;
