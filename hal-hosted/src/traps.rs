//! Trap delivery through POSIX signals (x86-64 Linux).
//!
//! [`Traps::install_trap_handler`] stores kernel-core's handler and, once per process,
//! installs one signal handler for SIGSEGV, SIGBUS, SIGILL and SIGFPE (`SA_SIGINFO |
//! SA_ONSTACK`). On a fault the signal handler reads the interrupted registers from the
//! `ucontext_t` into a [`TrapInfo`], calls kernel-core's handler, and applies its answer to
//! the `ucontext_t`: returning from the signal handler then continues at the faulting
//! instruction ([`TrapResponse::Resume`]) or wherever the edited registers say
//! ([`TrapResponse::Redirect`]); [`TrapResponse::Fatal`] prints a report on standard error
//! and aborts the process. A trap signal that no fault raised (sent with `kill`, `si_code
//! <= 0`) never reaches kernel-core: it is reported as sent, with the sender's pid, and
//! ends the process as that signal's default action does.
//!
//! [`Traps::set_trap_context`] keeps the trap context word per thread and gives each thread
//! that calls it an alternate signal stack large enough for kernel-core's handler (see
//! [`altstack`]), so that a fault caused by exhausting the thread's own stack is still
//! delivered.
//!
//! Signal masks: while the handler runs, all four trap signals and the timer signal are
//! blocked (`sa_mask`, and no `SA_NODEFER`), so that kernel-core's timer handler never
//! runs in the middle of its trap handler. A fault inside kernel-core's handler therefore kills the process with
//! that signal's default action instead of recursing (Linux resets a blocked synchronous
//! fault signal to its default). The interrupted code's mask is saved in the `ucontext_t`
//! and restored by `sigreturn` whether the handler resumes or redirects, so the redirected
//! code runs with the mask it had at the fault.

mod altstack;
mod report;
#[cfg(test)]
mod tests;

use core::ffi::{c_int, c_void};
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::Once;

use kernel_core::hal::{Access, TrapCause, TrapHandler, TrapInfo, TrapResponse, Traps};

use crate::HostedHal;

/// The signals through which the CPU reports synchronous faults.
const TRAP_SIGNALS: [c_int; 4] = [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE];

/// The x86-64 exception vector of a page fault (`#PF`), as found in `REG_TRAPNO`.
const X86_TRAP_PAGE_FAULT: i64 = 14;
/// Page-fault error code bit: the access was a write.
const PF_WRITE: i64 = 1 << 1;
/// Page-fault error code bit: the access was an instruction fetch.
const PF_INSTRUCTION: i64 = 1 << 4;

// Indices into `mcontext_t::gregs`: small constants, well inside the 23-entry array.
const RIP: usize = libc::REG_RIP as usize;
const RSP: usize = libc::REG_RSP as usize;
const RBP: usize = libc::REG_RBP as usize;
const RDI: usize = libc::REG_RDI as usize;
const RSI: usize = libc::REG_RSI as usize;
const ERR: usize = libc::REG_ERR as usize;
const TRAPNO: usize = libc::REG_TRAPNO as usize;

/// kernel-core's handler as a data pointer (a [`TrapHandler`] cast), or null before
/// [`Traps::install_trap_handler`]. An atomic so that the signal handler can read it
/// without a lock.
static HANDLER: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());

/// Installs the signal handlers once per process.
static INSTALL_SIGNAL_HANDLERS: Once = Once::new();

thread_local! {
    /// This thread's trap context word. An atomic rather than a `Cell` because the signal
    /// handler reads it while the thread's own code may be between two accesses; only the
    /// owning thread (and its signal handler) ever touches it. No destructor, so reading it
    /// never registers anything or allocates.
    static CONTEXT: AtomicUsize = const { AtomicUsize::new(0) };
}

impl Traps for HostedHal {
    fn install_trap_handler(&self, handler: TrapHandler) {
        // Stored before the signal handlers are installed, so that they always find one.
        HANDLER.store(handler as *mut (), Ordering::Release);
        INSTALL_SIGNAL_HANDLERS.call_once(install_signal_handlers);
    }

    // Never inlined: a caller that switches contexts may resume on another thread, and the
    // thread-local's address must not be kept across that (see the crate documentation).
    #[inline(never)]
    fn set_trap_context(&self, context: usize) -> usize {
        altstack::prepare_current_thread();
        // A thread whose thread-locals are already torn down takes its faults with
        // context 0; there is nothing to set.
        CONTEXT
            .try_with(|slot| {
                let previous = slot.load(Ordering::Relaxed);
                slot.store(context, Ordering::Relaxed);
                previous
            })
            .unwrap_or(0)
    }
}

/// Gives the calling thread an alternate signal stack large enough for the trap and timer
/// handlers, once (see [`altstack`]).
///
/// # Panics
/// When the stack cannot be mapped (the host is out of memory).
pub(crate) fn prepare_alternate_stack() {
    altstack::prepare_current_thread();
}

/// The handler kernel-core installed, if any.
fn installed_handler() -> Option<TrapHandler> {
    let pointer = HANDLER.load(Ordering::Acquire);
    if pointer.is_null() {
        return None;
    }
    // Safety: the only non-null values ever stored in `HANDLER` are `TrapHandler` function
    // pointers cast to `*mut ()` (in `install_trap_handler`); casting back yields the same
    // function pointer, and function and data pointers have the same size on x86-64.
    Some(unsafe { core::mem::transmute::<*mut (), TrapHandler>(pointer) })
}

/// Points SIGSEGV, SIGBUS, SIGILL and SIGFPE at [`on_trap_signal`], on the alternate stack,
/// with the other trap signals and the timer signal blocked while it runs.
fn install_signal_handlers() {
    // Safety: `sigaction` is a plain C struct for which all-zero bytes are a valid value
    // (no handler, no flags, empty mask); every field we rely on is set below.
    let mut action: libc::sigaction = unsafe { core::mem::zeroed() };
    let entry: extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void) = on_trap_signal;
    action.sa_sigaction = entry as usize;
    action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
    // Safety: `action.sa_mask` is a valid, exclusively borrowed `sigset_t`.
    unsafe { libc::sigemptyset(&raw mut action.sa_mask) };
    for signal in TRAP_SIGNALS {
        // Safety: as above; `signal` is a valid signal number.
        unsafe { libc::sigaddset(&raw mut action.sa_mask, signal) };
    }
    // Safety: as above; the timer signal is a valid signal number.
    unsafe { libc::sigaddset(&raw mut action.sa_mask, crate::interrupts::timer_signal()) };
    for signal in TRAP_SIGNALS {
        // Safety: `action` is fully initialised and points at a handler with the
        // `SA_SIGINFO` signature; the previous action is not wanted (null).
        let status = unsafe { libc::sigaction(signal, &raw const action, core::ptr::null_mut()) };
        assert_eq!(
            status,
            0,
            "sigaction({signal}) failed: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// The signal handler for every trap signal.
///
/// Runs on the thread's alternate signal stack when it has one. It allocates nothing,
/// takes no lock and has no panicking path of its own; kernel-core's handler must keep the
/// same rules (a panic escaping it aborts the process, since this function cannot unwind).
extern "C" fn on_trap_signal(signal: c_int, siginfo: *mut libc::siginfo_t, ucontext: *mut c_void) {
    // Safety: `__errno_location` returns the calling thread's errno slot, valid for the
    // thread's life. It is saved here and restored on return so that the interrupted code
    // never sees an errno changed by the trap path (an `mprotect` in kernel-core's handler).
    let errno = unsafe { *libc::__errno_location() };
    // Safety: the kernel calls an `SA_SIGINFO` handler with pointers to a valid `siginfo_t`
    // and `ucontext_t` in the signal frame it built on this handler's stack; nothing else
    // refers to them while the handler runs, and they live until it returns.
    let (siginfo, ucontext) = unsafe { (&*siginfo, &mut *ucontext.cast::<libc::ucontext_t>()) };
    // A zero or negative `si_code` (`SI_USER`, `SI_TKILL`, `SI_QUEUE`): someone sent the
    // signal (`kill -SEGV`); no instruction faulted, so it is neither a WebAssembly trap nor
    // a kernel bug, whatever the interrupted pc.
    if siginfo.si_code <= 0 {
        report::sent_signal(signal, siginfo);
    }
    let info = trap_info(signal, siginfo, &ucontext.uc_mcontext);
    let gregs = &mut ucontext.uc_mcontext.gregs;
    let handler = installed_handler();
    match handler.map_or(TrapResponse::Fatal, |handler| handler(&info)) {
        TrapResponse::Resume => {}
        TrapResponse::Redirect(redirect) => {
            // Register values are bit patterns: the casts reinterpret, never truncate.
            gregs[RIP] = redirect.pc as i64;
            gregs[RSP] = redirect.sp as i64;
            gregs[RBP] = redirect.fp as i64;
            gregs[RDI] = redirect.args[0] as i64;
            gregs[RSI] = redirect.args[1] as i64;
        }
        TrapResponse::Fatal => report::fatal(signal, &info, handler.is_some()),
    }
    // Safety: as above, the calling thread's errno slot.
    unsafe { *libc::__errno_location() = errno };
}

/// Reads the state of the interrupted thread.
fn trap_info(signal: c_int, siginfo: &libc::siginfo_t, mcontext: &libc::mcontext_t) -> TrapInfo {
    let gregs = &mcontext.gregs;
    // A positive `si_code` means the kernel raised the signal for a fault; zero or negative
    // codes (`SI_USER`, `SI_TKILL`, `SI_QUEUE`) mean someone sent it.
    let from_fault = siginfo.si_code > 0;
    let (cause, fault_address) = match signal {
        libc::SIGSEGV | libc::SIGBUS if from_fault => {
            if siginfo.si_code == libc::SI_KERNEL {
                // A general-protection fault (a non-canonical address, for example): the
                // kernel reports no address and the error code is not a page-fault code.
                (TrapCause::MemoryFault(Access::Unknown), None)
            } else {
                // Safety: for a kernel-generated SIGSEGV or SIGBUS the `siginfo_t` union
                // holds the fault fields, of which `si_addr` is the faulting address.
                let address = unsafe { siginfo.si_addr() } as usize;
                let access = page_fault_access(gregs[TRAPNO], gregs[ERR]);
                (TrapCause::MemoryFault(access), Some(address))
            }
        }
        libc::SIGILL if from_fault => (TrapCause::IllegalInstruction, None),
        libc::SIGFPE if from_fault => (TrapCause::ArithmeticFault, None),
        _ => (TrapCause::Other(signal.unsigned_abs().into()), None),
    };
    TrapInfo {
        // Register values are bit patterns: the casts reinterpret, never truncate.
        pc: gregs[RIP] as usize,
        fp: gregs[RBP] as usize,
        sp: gregs[RSP] as usize,
        fault_address,
        cause,
        context: current_context(),
    }
}

/// The calling thread's trap context word. Never inlined (see the crate documentation).
#[inline(never)]
fn current_context() -> usize {
    CONTEXT
        .try_with(|slot| slot.load(Ordering::Relaxed))
        .unwrap_or(0)
}

/// Decodes the access from the page-fault error code the kernel copied into the signal
/// context (`REG_ERR`); only meaningful when the trap was a page fault (`REG_TRAPNO`).
fn page_fault_access(trap_number: i64, error_code: i64) -> Access {
    if trap_number != X86_TRAP_PAGE_FAULT {
        Access::Unknown
    } else if error_code & PF_INSTRUCTION != 0 {
        Access::Execute
    } else if error_code & PF_WRITE != 0 {
        Access::Write
    } else {
        Access::Read
    }
}
