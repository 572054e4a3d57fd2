//! The console as the process's standard output and input, through raw `write`/`read`
//! (async-signal-safe and unbuffered, so the trap path may print).

use rustix::event::{PollFd, PollFlags, poll};
use rustix::io::Errno;

/// Writes all of `bytes` to standard output, retrying on interruption. Output that cannot
/// be written (a closed pipe) is dropped: the console has nowhere else to report it.
pub(crate) fn write_stdout(bytes: &[u8]) {
    write_all(rustix::stdio::stdout(), bytes);
}

/// Writes every byte to standard error (the console's error stream).
pub(crate) fn write_stderr(bytes: &[u8]) {
    write_all(rustix::stdio::stderr(), bytes);
}

/// Writes every byte to `fd`, retrying interrupted and partial writes; gives up silently on
/// any other error (the console has nowhere to report it).
fn write_all(fd: rustix::fd::BorrowedFd<'_>, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        match rustix::io::write(fd, bytes) {
            Ok(written) => bytes = &bytes[written..],
            Err(Errno::INTR | Errno::AGAIN) => {}
            Err(_) => return,
        }
    }
}

/// Reads what standard input has pending, without blocking.
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
        Ok(ready) if ready > 0 => rustix::io::read(stdin, buf).unwrap_or(0),
        _ => 0,
    }
}
