//! The console as the process's standard output and input, through raw `write`/`read`
//! (async-signal-safe and unbuffered, so the trap path may print).

use core::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use rustix::event::{PollFd, PollFlags, poll};
use rustix::io::Errno;

/// The status the machine shuts down with, in place of success, when console output was
/// lost (`EX_IOERR` of `sysexits.h`): `sim run ... > /dev/full` must not look like it
/// worked.
pub(crate) const OUTPUT_FAILED_STATUS: u8 = 74;

/// The `errno` of the first console write that failed, 0 while every write worked. An
/// atomic written without a lock, so that the trap path may print too.
static FIRST_WRITE_ERROR: AtomicI32 = AtomicI32::new(0);

/// The error of the first console write that failed (standard output or standard error),
/// if one did.
pub(crate) fn write_error() -> Option<Errno> {
    match FIRST_WRITE_ERROR.load(Ordering::Relaxed) {
        0 => None,
        raw => Some(Errno::from_raw_os_error(raw)),
    }
}

/// Writes all of `bytes` to standard output, retrying on interruption. Output that cannot
/// be written (a closed pipe, a full disk) is dropped and the failure recorded
/// ([`write_error`]), for the machine's shutdown to report.
pub(crate) fn write_stdout(bytes: &[u8]) {
    write_all(rustix::stdio::stdout(), bytes);
}

/// Writes every byte to standard error (the console's error stream).
pub(crate) fn write_stderr(bytes: &[u8]) {
    write_all(rustix::stdio::stderr(), bytes);
}

/// Writes every byte to `fd`, retrying interrupted and partial writes; on any other error
/// (or a write that makes no progress) gives up and records the first such error.
fn write_all(fd: rustix::fd::BorrowedFd<'_>, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        match rustix::io::write(fd, bytes) {
            Ok(0) => {
                record_write_error(Errno::IO);
                return;
            }
            Ok(written) => bytes = bytes.get(written..).unwrap_or(&[]),
            Err(Errno::INTR | Errno::AGAIN) => {}
            Err(error) => {
                record_write_error(error);
                return;
            }
        }
    }
}

/// Keeps `error` unless an earlier one is already kept.
fn record_write_error(error: Errno) {
    let raw = match error.raw_os_error() {
        0 => Errno::IO.raw_os_error(),
        raw => raw,
    };
    // Only the first error is kept; a later one failing the exchange is expected.
    let _ = FIRST_WRITE_ERROR.compare_exchange(0, raw, Ordering::Relaxed, Ordering::Relaxed);
}

/// The status to shut down with: `status`, or [`OUTPUT_FAILED_STATUS`] when `status` is
/// success but console output was lost (reported on standard error, which may work when
/// standard output did not).
pub(crate) fn final_status(status: u8) -> u8 {
    match write_error() {
        Some(error) if status == 0 => {
            let mut message = String::from("error: console output could not be written: ");
            message.push_str(&std::io::Error::from(error).to_string());
            message.push('\n');
            write_stderr(message.as_bytes());
            OUTPUT_FAILED_STATUS
        }
        _ => status,
    }
}

/// Whether standard input has ended (a read returned end of file).
static STDIN_ENDED: AtomicBool = AtomicBool::new(false);

/// Whether standard input has ended.
pub(crate) fn stdin_ended() -> bool {
    STDIN_ENDED.load(Ordering::Relaxed)
}

/// Reads what standard input has pending, without blocking; notes the end of the input.
pub(crate) fn read_stdin_nonblocking(buf: &mut [u8]) -> usize {
    if buf.is_empty() {
        return 0;
    }
    let stdin = rustix::stdio::stdin();
    let mut fds = [PollFd::new(&stdin, PollFlags::IN)];
    let no_wait = rustix::time::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    match poll(&mut fds, Some(&no_wait)) {
        Ok(ready) if ready > 0 => match rustix::io::read(stdin, buf) {
            Ok(0) => {
                STDIN_ENDED.store(true, Ordering::Relaxed);
                0
            }
            Ok(read) => read,
            Err(Errno::INTR | Errno::AGAIN) => 0,
            Err(_) => {
                STDIN_ENDED.store(true, Ordering::Relaxed);
                0
            }
        },
        _ => 0,
    }
}
