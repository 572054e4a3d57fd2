//! Traps: how a fault reaches kernel-core and how kernel-core's answer goes back.
//!
//! The HAL captures the state of a faulting CPU into a [`TrapInfo`] and calls the handler
//! kernel-core installed; the handler decides (is the pc in JIT code? which trap code? which
//! activation to return to?) and answers with a [`TrapResponse`] that the HAL applies to the
//! saved state (the `ucontext` on Linux, the trap frame on RISC-V).

/// The kind of access that faulted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A load.
    Read,
    /// A store.
    Write,
    /// An instruction fetch.
    Execute,
    /// The platform cannot tell.
    Unknown,
}

/// What the CPU reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrapCause {
    /// An access to an unmapped or protected address (SIGSEGV/SIGBUS; page faults).
    MemoryFault(Access),
    /// An illegal or trapping instruction (SIGILL from `ud2`; `unimp` on RISC-V).
    IllegalInstruction,
    /// An arithmetic fault (SIGFPE: division by zero or overflow on x86-64).
    ArithmeticFault,
    /// A breakpoint instruction.
    Breakpoint,
    /// Any other cause, with the platform's own code (signal number, `scause`).
    Other(u64),
}

/// The state of a CPU at a trap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrapInfo {
    /// The address of the faulting instruction.
    pub pc: usize,
    /// The frame pointer at the fault.
    pub fp: usize,
    /// The stack pointer at the fault.
    pub sp: usize,
    /// The faulting data address, for memory faults.
    pub fault_address: Option<usize>,
    /// What happened.
    pub cause: TrapCause,
    /// The CPU-local trap context word at the time of the fault, as last set with
    /// [`Traps::set_trap_context`] on this CPU (0 when never set). kernel-core keeps a
    /// pointer to the innermost WebAssembly activation there.
    pub context: usize,
}

/// Where to continue after a trap instead of the faulting instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Redirect {
    /// The instruction to continue at.
    pub pc: usize,
    /// The stack pointer to continue with.
    pub sp: usize,
    /// The frame pointer to continue with.
    pub fp: usize,
    /// The first two integer argument registers (`rdi`, `rsi`; `a0`, `a1`).
    pub args: [usize; 2],
}

/// kernel-core's answer to a trap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrapResponse {
    /// The cause was fixed (a page was backed on demand): retry the faulting instruction.
    Resume,
    /// Continue elsewhere, with the given registers; every other register keeps its value.
    Redirect(Redirect),
    /// A kernel bug: kernel-core has reported it; the HAL must stop the machine.
    Fatal,
}

/// The function kernel-core installs to decide about traps. It runs on the trap path
/// (a signal handler on an alternate stack hosted, the trap vector on RISC-V): it must not
/// allocate, block or take locks that the interrupted code may hold.
pub type TrapHandler = fn(&TrapInfo) -> TrapResponse;

/// Trap delivery.
///
/// On a fault the HAL fills a [`TrapInfo`] from the saved state, calls the installed
/// handler on a stack of its own (so that a fault caused by stack exhaustion can still be
/// handled), and applies the answer: [`TrapResponse::Resume`] retries the instruction,
/// [`TrapResponse::Redirect`] sets pc, sp, fp and the two argument registers and
/// continues there, [`TrapResponse::Fatal`] reports the fault (pc, address, cause) on the
/// console and stops the machine with a failure status. A fault taken while no handler is
/// installed is fatal.
pub trait Traps {
    /// Installs `handler` for synchronous faults on every CPU (like `sigaction` for SIGSEGV,
    /// SIGBUS, SIGILL and SIGFPE with an alternate signal stack, or `stvec`). Installing
    /// twice replaces the handler.
    fn install_trap_handler(&self, handler: TrapHandler);

    /// Sets the current CPU's trap context word, passed to the handler as
    /// [`TrapInfo::context`] for faults on this CPU, and returns the previous value.
    /// Also prepares this CPU (or, hosted, this thread) to take faults, for example by
    /// giving it an alternate signal stack.
    fn set_trap_context(&self, context: usize) -> usize;
}
