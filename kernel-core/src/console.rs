//! Formatted output to the HAL console.

use core::fmt;

use crate::hal::Console;

/// Adapts a [`Console`] to [`core::fmt::Write`], so that `write!` prints to it without
/// allocating.
pub struct ConsoleWriter<'a, C: Console + ?Sized>(pub &'a C);

impl<C: Console + ?Sized> fmt::Write for ConsoleWriter<'_, C> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.0.write_bytes(text.as_bytes());
        Ok(())
    }
}
