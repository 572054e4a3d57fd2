//! The report of a fatal fault, written from the signal handler: a fixed buffer on the
//! stack, numbers formatted by hand, one raw `write(2)` to standard error, then `abort`.
//! Nothing here allocates, locks or panics.

use core::ffi::c_int;

use kernel_core::hal::{Access, TrapCause, TrapInfo};

/// A line of text built on the stack. Text past the capacity is dropped.
pub(super) struct Line {
    bytes: [u8; 256],
    len: usize,
}

impl Line {
    /// An empty line.
    pub(super) const fn new() -> Self {
        Self {
            bytes: [0; 256],
            len: 0,
        }
    }

    /// The text so far.
    pub(super) fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }

    /// Appends `text`, or as much of it as fits.
    pub(super) fn push(&mut self, text: &[u8]) {
        for &byte in text {
            let Some(slot) = self.bytes.get_mut(self.len) else {
                return;
            };
            *slot = byte;
            self.len += 1;
        }
    }

    /// Appends `value` as `0x` and lowercase hexadecimal digits, without leading zeros.
    pub(super) fn push_hex(&mut self, value: usize) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        self.push(b"0x");
        let mut started = false;
        for shift in (0..usize::BITS).step_by(4).rev() {
            let nibble = (value >> shift) & 0xf;
            started |= nibble != 0 || shift == 0;
            if started {
                self.push(&[DIGITS[nibble]]);
            }
        }
    }

    /// Appends `value` in decimal, without leading zeros.
    pub(super) fn push_decimal(&mut self, value: u64) {
        let mut divisor = 10_000_000_000_000_000_000_u64;
        let mut started = false;
        while divisor > 0 {
            let digit = (value / divisor) % 10;
            started |= digit != 0 || divisor == 1;
            if started {
                // `digit` is below 10.
                self.push(&[b'0' + digit as u8]);
            }
            divisor /= 10;
        }
    }
}

/// The conventional name of a trap signal.
fn signal_name(signal: c_int) -> Option<&'static [u8]> {
    match signal {
        libc::SIGSEGV => Some(b"SIGSEGV"),
        libc::SIGBUS => Some(b"SIGBUS"),
        libc::SIGILL => Some(b"SIGILL"),
        libc::SIGFPE => Some(b"SIGFPE"),
        _ => None,
    }
}

/// Formats the report of a fatal fault:
/// `fatal fault outside WebAssembly: signal SIGSEGV at pc=0x.. address=0x.. sp=0x..
/// fp=0x.. access=write`, the address only for memory faults, the access only when known.
pub(super) fn format(signal: c_int, info: &TrapInfo, handler_installed: bool) -> Line {
    let mut line = Line::new();
    line.push(b"fatal fault outside WebAssembly: signal ");
    match signal_name(signal) {
        Some(name) => line.push(name),
        None => line.push_decimal(signal.unsigned_abs().into()),
    }
    line.push(b" at pc=");
    line.push_hex(info.pc);
    if let Some(address) = info.fault_address {
        line.push(b" address=");
        line.push_hex(address);
    }
    line.push(b" sp=");
    line.push_hex(info.sp);
    line.push(b" fp=");
    line.push_hex(info.fp);
    let access: Option<&[u8]> = match info.cause {
        TrapCause::MemoryFault(Access::Read) => Some(b"read"),
        TrapCause::MemoryFault(Access::Write) => Some(b"write"),
        TrapCause::MemoryFault(Access::Execute) => Some(b"execute"),
        _ => None,
    };
    if let Some(access) = access {
        line.push(b" access=");
        line.push(access);
    }
    if !handler_installed {
        line.push(b" (no trap handler installed)");
    }
    line.push(b"\n");
    line
}

/// Writes all of `bytes` to standard error with raw `write(2)` calls, retrying on
/// interruption and giving up on any other error (there is nowhere else to report it).
fn write_stderr(mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // Safety: `bytes` is a valid, initialised buffer of `bytes.len()` bytes; `write` is
        // async-signal-safe and only reads it.
        let written =
            unsafe { libc::write(libc::STDERR_FILENO, bytes.as_ptr().cast(), bytes.len()) };
        match usize::try_from(written) {
            Ok(0) => return,
            Ok(count) => bytes = bytes.get(count..).unwrap_or(&[]),
            Err(_) => {
                // Safety: the calling thread's errno slot, valid for the thread's life.
                if unsafe { *libc::__errno_location() } != libc::EINTR {
                    return;
                }
            }
        }
    }
}

/// Reports a fault kernel-core could not handle (or a fault taken with no handler
/// installed) and stops the process with `SIGABRT`.
pub(super) fn fatal(signal: c_int, info: &TrapInfo, handler_installed: bool) -> ! {
    write_stderr(format(signal, info, handler_installed).as_bytes());
    // Safety: `sigaction` is a plain C struct for which all-zero bytes are a valid value;
    // with `SIG_DFL` (0) as the handler it restores the default action of `signal`, so a
    // fault of the same kind during `abort` kills the process instead of re-entering us.
    // Both calls are async-signal-safe.
    unsafe {
        let mut default: libc::sigaction = core::mem::zeroed();
        default.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(signal, &raw const default, core::ptr::null_mut());
        libc::abort()
    }
}

/// Formats the report of a trap signal that was sent rather than raised by a fault:
/// `received SIGSEGV sent by process 1234 (uid 1000), not a fault: terminating`.
pub(super) fn format_sent(signal: c_int, sender_pid: i32, sender_uid: u32) -> Line {
    let mut line = Line::new();
    line.push(b"received ");
    match signal_name(signal) {
        Some(name) => line.push(name),
        None => {
            line.push(b"signal ");
            line.push_decimal(signal.unsigned_abs().into());
        }
    }
    line.push(b" sent by process ");
    line.push_decimal(sender_pid.unsigned_abs().into());
    line.push(b" (uid ");
    line.push_decimal(sender_uid.into());
    line.push(b"), not a fault: terminating\n");
    line
}

/// Reports a trap signal someone sent (`siginfo.si_code <= 0`) and ends the process as the
/// signal's default action would have (killed by that signal), so that the parent sees what
/// happened. Called from the signal handler, with `signal` blocked.
pub(super) fn sent_signal(signal: c_int, siginfo: &libc::siginfo_t) -> ! {
    // Safety: for a signal sent with `kill`, `tkill` or `sigqueue` (`si_code <= 0`, which
    // the caller checked) the `siginfo_t` union holds the sender's pid and uid.
    let (pid, uid) = unsafe { (siginfo.si_pid(), siginfo.si_uid()) };
    write_stderr(format_sent(signal, pid, uid).as_bytes());
    // Safety: `sigaction` and `sigset_t` are plain C structs for which all-zero bytes are
    // valid values; `SIG_DFL` (0) restores the default action, `raise` makes the signal
    // pending (it is blocked while this handler runs) and unblocking it delivers it, which
    // terminates the process. Every call is async-signal-safe; `_exit` is the fallback if
    // the default action somehow returned.
    unsafe {
        let mut default: libc::sigaction = core::mem::zeroed();
        default.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(signal, &raw const default, core::ptr::null_mut());
        libc::raise(signal);
        let mut set: libc::sigset_t = core::mem::zeroed();
        libc::sigemptyset(&raw mut set);
        libc::sigaddset(&raw mut set, signal);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &raw const set, core::ptr::null_mut());
        libc::_exit(128 + signal)
    }
}
