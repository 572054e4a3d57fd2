//! The console: the kernel's byte stream to and from the operator.

/// A byte console (standard output and input hosted, the UART on RISC-V).
///
/// Writes may be called from any CPU at any time, including from the trap path; an
/// implementation must not allocate and must not deadlock when a write interrupts another
/// write on the same CPU (a lock-free or best-effort path is fine). Bytes of one call are
/// not interleaved with bytes of another call.
pub trait Console {
    /// Writes every byte of `bytes`, blocking until the device has taken them.
    fn write_bytes(&self, bytes: &[u8]);

    /// Reads the bytes available right now into `buf` without blocking and returns how
    /// many were read (0 when none is pending).
    fn read_bytes(&self, buf: &mut [u8]) -> usize;
}
