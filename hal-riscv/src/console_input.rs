//! Console input with an end: the byte that marks the end of standard input under QEMU.
//!
//! A serial line has no end of file. When `sim qemu run` forwards a terminal to the UART
//! live, it sends [`END_OF_INPUT`] (0x04, ASCII EOT, what Ctrl-D types) once the host's
//! read of the terminal returns end of file. [`InputEnd::take`] stops at that byte, keeps
//! it from the program and remembers that the input has ended; after it, nothing more is
//! read. This is plain computation, built for the host too so that its unit tests run
//! with `cargo test -p hal-riscv --lib`.

use core::sync::atomic::{AtomicBool, Ordering};

/// The byte `sim qemu` sends after the last byte of a live standard input: ASCII EOT.
pub const END_OF_INPUT: u8 = 0x04;

/// Whether the end-of-input byte has been received.
#[derive(Debug, Default)]
pub struct InputEnd {
    /// Set once [`END_OF_INPUT`] has been taken.
    ended: AtomicBool,
}

impl InputEnd {
    /// An input that has not ended.
    pub const fn new() -> Self {
        Self {
            ended: AtomicBool::new(false),
        }
    }

    /// Fills `buf` with the bytes `next` gives (it returns `None` when no byte is
    /// waiting) and returns how many. Stops at [`END_OF_INPUT`], which is not stored and
    /// marks the input as ended; once ended, `next` is not called again.
    pub fn take(&self, buf: &mut [u8], mut next: impl FnMut() -> Option<u8>) -> usize {
        let mut count = 0;
        for slot in buf.iter_mut() {
            if self.ended() {
                break;
            }
            match next() {
                Some(END_OF_INPUT) => self.ended.store(true, Ordering::Release),
                Some(byte) => {
                    *slot = byte;
                    count += 1;
                }
                None => break,
            }
        }
        count
    }

    /// Whether the end-of-input byte has been received: no byte will be read again.
    pub fn ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source handing out `bytes` one by one, counting the calls.
    fn source(
        bytes: &[u8],
    ) -> (
        impl FnMut() -> Option<u8> + '_,
        std::rc::Rc<std::cell::Cell<usize>>,
    ) {
        let calls = std::rc::Rc::new(std::cell::Cell::new(0));
        let counter = calls.clone();
        let mut iter = bytes.iter().copied();
        (
            move || {
                counter.set(counter.get() + 1);
                iter.next()
            },
            calls,
        )
    }

    #[test]
    fn bytes_pass_until_none_is_waiting() {
        let input = InputEnd::new();
        let mut buf = [0u8; 8];
        let (next, _) = source(b"abc");
        assert_eq!(input.take(&mut buf, next), 3);
        assert_eq!(&buf[..3], b"abc");
        assert!(!input.ended());
    }

    #[test]
    fn end_of_input_is_not_passed_on_and_ends_the_input() {
        let input = InputEnd::new();
        let mut buf = [0u8; 8];
        let (next, calls) = source(b"hi\n\x04late");
        assert_eq!(input.take(&mut buf, next), 3);
        assert_eq!(&buf[..3], b"hi\n");
        assert!(input.ended());
        // Nothing is read after the end, not even what follows the marker.
        assert_eq!(calls.get(), 4);
        let (next, calls) = source(b"more");
        assert_eq!(input.take(&mut buf, next), 0);
        assert_eq!(calls.get(), 0);
    }

    #[test]
    fn end_of_input_alone() {
        let input = InputEnd::new();
        let mut buf = [0u8; 4];
        let (next, _) = source(&[END_OF_INPUT]);
        assert_eq!(input.take(&mut buf, next), 0);
        assert!(input.ended());
    }

    #[test]
    fn a_full_buffer_leaves_the_marker_for_the_next_read() {
        let input = InputEnd::new();
        let mut buf = [0u8; 2];
        let mut bytes = b"ab\x04".iter().copied();
        assert_eq!(input.take(&mut buf, || bytes.next()), 2);
        assert!(!input.ended());
        assert_eq!(input.take(&mut buf, || bytes.next()), 0);
        assert!(input.ended());
    }
}
