//! The hardware abstraction layer: what kernel-core asks of the machine it runs on.
//!
//! One trait per hardware capability. kernel-core is generic over these traits (static
//! dispatch, `H: VirtualMemory + Console`, ...) and reaches the machine through nothing
//! else: kernel-core has no operating-system conditionals, no libc and no assembly. Two
//! crates implement them: `hal-hosted` (a Linux process: mmap, POSIX signals, threads) and
//! `hal-riscv` (riscv64 supervisor mode under OpenSBI: page tables, `stvec`, SBI, harts).
//!
//! Each method documents the invariants an implementation must keep. Where a capability
//! has an obvious Linux analogue it is named, so that a new port can start from the
//! hosted implementation.

mod boot;
pub mod conformance;
mod console;
mod context;
mod cpu;
mod memory;
mod storage;
mod time;
mod trap;

pub use boot::{BootInfo, MemoryKind, MemoryRegion};
pub use console::{
    Console, ESCAPE_PREFIX, STDERR_PREFIX, escape_program_bytes, is_escaped, unescape_program_bytes,
};
pub use context::{ContextError, ExecutionContexts};
pub use cpu::{CpuError, CpuId, Cpus, Isa, IsaFeatures, Machine, VectorFeatures};
pub use memory::{MemoryError, Protection, VirtualMemory};
pub use storage::{Entropy, Storage, WallClock};
pub use time::{Clock, Interrupts, TimerHandler};
pub use trap::{Access, Redirect, TrapCause, TrapHandler, TrapInfo, TrapResponse, Traps};
