//! The console: the kernel's byte stream to and from the operator.

/// The byte that starts a console line meant for standard error (ASCII "record
/// separator"), on consoles with a single stream.
pub const STDERR_PREFIX: u8 = 0x1e;

/// A byte console (standard output and input hosted, the UART on RISC-V).
///
/// Writes may be called from any CPU at any time, including from the trap path; an
/// implementation must not allocate and must not deadlock when a write interrupts another
/// write on the same CPU (a lock-free or best-effort path is fine). Bytes of one call are
/// not interleaved with bytes of another call.
pub trait Console {
    /// Writes every byte of `bytes`, blocking until the device has taken them.
    fn write_bytes(&self, bytes: &[u8]);

    /// Writes `bytes`, one or more whole lines, to the error stream: standard error hosted.
    /// A console with a single stream (a UART) keeps the default, which marks each line
    /// with [`STDERR_PREFIX`] so that the host reading it (`sim qemu`) can route the line
    /// to its own standard error. Not for the trap path: the default allocates, so that
    /// each line goes out in one write.
    fn write_error_bytes(&self, bytes: &[u8]) {
        for line in bytes.split_inclusive(|&byte| byte == b'\n') {
            let mut marked = alloc::vec::Vec::with_capacity(line.len() + 1);
            marked.push(STDERR_PREFIX);
            marked.extend_from_slice(line);
            self.write_bytes(&marked);
        }
    }

    /// Reads the bytes available right now into `buf` without blocking and returns how
    /// many were read (0 when none is pending).
    fn read_bytes(&self, buf: &mut [u8]) -> usize;

    /// Whether the input has ended (end of file: a closed pipe, `/dev/null`): no byte will
    /// ever be read again. A console that cannot tell keeps the default, `false`.
    fn input_ended(&self) -> bool {
        false
    }
}
