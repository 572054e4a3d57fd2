//! The console: the kernel's byte stream to and from the operator.

/// The byte that starts a console line meant for standard error (ASCII "record
/// separator"), on consoles with a single stream.
pub const STDERR_PREFIX: u8 = 0x1e;

/// The byte that escapes, in a program's output on a single-stream console, a byte the
/// console's framing gives a meaning (ASCII "file separator"): see
/// [`escape_program_bytes`].
pub const ESCAPE_PREFIX: u8 = 0x1c;

/// Whether `byte` in a program's output is escaped on a single-stream console: the escape
/// itself, the frame prefixes (0x1d: deterministic mode's trace and recording lines and
/// written-back trees; 0x1e: [`STDERR_PREFIX`]) and carriage return (which the host drops
/// at line ends, where the firmware's lines have it).
#[must_use]
pub const fn is_escaped(byte: u8) -> bool {
    matches!(byte, ESCAPE_PREFIX | 0x1d | STDERR_PREFIX | b'\r')
}

/// `bytes` a program wrote, ready for a single-stream console: each byte
/// [`is_escaped`] becomes [`ESCAPE_PREFIX`] followed by the byte with bit 6 flipped (0x1c
/// `\\`, 0x1d `]`, 0x1e `^`, `\r` `M`), so that every line the host reads is the
/// kernel's framing or a program's bytes, never mistaken; [`unescape_program_bytes`]
/// undoes it. Borrowed when nothing needs escaping.
#[must_use]
pub fn escape_program_bytes(bytes: &[u8]) -> alloc::borrow::Cow<'_, [u8]> {
    if !bytes.iter().any(|&byte| is_escaped(byte)) {
        return alloc::borrow::Cow::Borrowed(bytes);
    }
    let mut escaped = alloc::vec::Vec::with_capacity(bytes.len() + 16);
    for &byte in bytes {
        if is_escaped(byte) {
            escaped.extend_from_slice(&[ESCAPE_PREFIX, byte ^ 0x40]);
        } else {
            escaped.push(byte);
        }
    }
    alloc::borrow::Cow::Owned(escaped)
}

/// The program's bytes [`escape_program_bytes`] made `escaped` from (an escape at the very
/// end, cut off, is dropped).
#[must_use]
pub fn unescape_program_bytes(escaped: &[u8]) -> alloc::vec::Vec<u8> {
    let mut bytes = alloc::vec::Vec::with_capacity(escaped.len());
    let mut iter = escaped.iter();
    while let Some(&byte) = iter.next() {
        if byte == ESCAPE_PREFIX {
            if let Some(&next) = iter.next() {
                bytes.push(next ^ 0x40);
            }
        } else {
            bytes.push(byte);
        }
    }
    bytes
}

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

    /// Writes bytes a program wrote to its standard output, or to its standard error when
    /// `to_error`. A console with a single stream keeps the default, which escapes them
    /// ([`escape_program_bytes`]) so that the host reading it gets every byte back as
    /// written, whatever the program writes; a console with two streams of its own
    /// (hosted) writes them as they are.
    fn write_program_bytes(&self, bytes: &[u8], to_error: bool) {
        let escaped = escape_program_bytes(bytes);
        if to_error {
            self.write_error_bytes(&escaped);
        } else {
            self.write_bytes(&escaped);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_bytes_survive_escaping() {
        let all: alloc::vec::Vec<u8> = (0..=255).collect();
        let escaped = escape_program_bytes(&all);
        assert!(
            !escaped
                .iter()
                .any(|&byte| matches!(byte, 0x1d | STDERR_PREFIX | b'\r')),
            "a frame byte left in {escaped:?}"
        );
        assert_eq!(unescape_program_bytes(&escaped), all);
        assert!(matches!(
            escape_program_bytes(b"plain text\n"),
            alloc::borrow::Cow::Borrowed(_)
        ));
    }
}
