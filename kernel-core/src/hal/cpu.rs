//! CPUs: how many there are, which one runs, starting and waking them; the machine itself.

use core::fmt;

/// The instruction set the platform runs, which is the one the JIT must compile for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// x86-64 (the hosted simulator on a Linux/x86-64 host).
    X86_64,
    /// riscv64gc (hal-riscv).
    Riscv64,
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::X86_64 => "x86_64",
            Self::Riscv64 => "riscv64",
        })
    }
}

/// The optional instruction-set features of the CPUs, which the JIT may use: what the
/// machine really has, as the HAL found it (the device tree's ISA string and probes on
/// riscv64, CPUID hosted). Every CPU of the machine has the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IsaFeatures {
    /// The vector unit that runs WebAssembly's 128-bit SIMD, if the CPUs have one: the V
    /// extension on riscv64 (turned on by the HAL, `vcsr` cleared), SSE4.2 with SSSE3 and
    /// POPCNT on x86-64. `None` means modules using `v128` cannot run.
    pub vector: Option<VectorFeatures>,
}

impl IsaFeatures {
    /// What the JIT assumes when compiling ahead of any machine (tests, listings): a
    /// vector unit with 128-bit registers.
    pub const WITH_128_BIT_VECTORS: Self = Self {
        vector: Some(VectorFeatures { vlen_bits: 128 }),
    };

    /// No optional feature at all: the base ISA only.
    pub const BASE: Self = Self { vector: None };
}

/// A vector unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VectorFeatures {
    /// The width of one vector register in bits (riscv64 `VLEN`, `8 * vlenb`; 128 for
    /// x86-64's XMM registers). WebAssembly SIMD needs at least 128.
    pub vlen_bits: u32,
}

/// A CPU number, dense from 0 to [`Cpus::cpu_count`] - 1 (not necessarily the hart id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CpuId(pub u32);

/// Why a CPU could not be started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuError {
    /// There is no CPU with that id.
    NoSuchCpu,
    /// The CPU is already running.
    AlreadyStarted,
    /// The platform refused (an SBI error code, an OS error number).
    Platform(i64),
}

/// The CPUs of the machine.
pub trait Cpus {
    /// The instruction set of every CPU.
    fn isa(&self) -> Isa;

    /// The optional features every CPU has (constant after boot). Must not claim what the
    /// CPUs lack: the JIT emits instructions for every feature reported, and code using a
    /// missing one faults with an illegal instruction outside any trap site.
    fn isa_features(&self) -> IsaFeatures;

    /// How many CPUs the kernel may use, at least 1, constant after boot.
    fn cpu_count(&self) -> usize;

    /// The CPU this code runs on. Stable while interrupts are off or the caller is pinned.
    fn current_cpu(&self) -> CpuId;

    /// Starts CPU `cpu`, which then calls `entry(cpu, arg)` on its own stack; `entry` never
    /// returns. Each CPU is started at most once (like `pthread_create`, or SBI HSM
    /// `hart_start`).
    ///
    /// # Errors
    /// [`CpuError::NoSuchCpu`], [`CpuError::AlreadyStarted`] or [`CpuError::Platform`].
    fn start_cpu(
        &self,
        cpu: CpuId,
        entry: fn(CpuId, usize) -> !,
        arg: usize,
    ) -> Result<(), CpuError>;

    /// Wakes `cpu` if it is waiting for an interrupt (an IPI); harmless when it is running.
    fn wake_cpu(&self, cpu: CpuId);
}

/// The machine as a whole.
pub trait Machine {
    /// Ends the machine with `status` (0 for success): exits the simulator process, or
    /// powers off QEMU through the `sifive_test` device. Never returns.
    fn shutdown(&self, status: u8) -> !;
}
