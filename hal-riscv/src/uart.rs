//! The NS16550A UART, QEMU `virt`'s console, driven by polling.
//!
//! OpenSBI has already programmed the line (it prints its own banner through it), so the
//! driver only moves bytes: it waits for "transmit holding register empty" before each
//! byte written and takes received bytes while "data ready" is set. Registers are one byte
//! wide, `1 << reg_shift` bytes apart (the device tree's `reg-shift`, 0 on `virt`).
//!
//! Writes of one call are kept together by a lock recording the CPU that holds it. A write
//! that interrupts a write on the same CPU (from a trap handler) does not wait for the lock
//! it could never get: it writes at once and its bytes land inside the interrupted line.
//!
//! Received bytes end at [`END_OF_INPUT`](crate::console_input::END_OF_INPUT) (0x04),
//! which `sim qemu run` sends when a live standard input (a terminal) reaches end of
//! file: the byte is kept from the program and [`Console::input_ended`] is true from then
//! on (see [`crate::console_input`]).

use core::sync::atomic::{AtomicUsize, Ordering};

use kernel_core::hal::Console;

use crate::console_input::InputEnd;
use crate::cpus;

/// The UART's address on QEMU's `virt` machine, used when the device tree names none.
pub const DEFAULT_BASE: usize = 0x1000_0000;

/// Receive buffer register (read) and transmit holding register (write).
const REGISTER_DATA: usize = 0;
/// Line status register.
const REGISTER_LINE_STATUS: usize = 5;
/// Line status: a received byte is waiting in the receive buffer.
const LINE_STATUS_DATA_READY: u8 = 1 << 0;
/// Line status: the transmit holding register can take a byte.
const LINE_STATUS_TRANSMIT_EMPTY: u8 = 1 << 5;

/// The CPU index holding [`WRITE_LOCK`], or [`UNLOCKED`].
static WRITE_LOCK: AtomicUsize = AtomicUsize::new(UNLOCKED);
/// The value of [`WRITE_LOCK`] when no CPU holds it.
const UNLOCKED: usize = usize::MAX;

/// Whether the console's input has ended (there is one console UART).
static INPUT_END: InputEnd = InputEnd::new();

/// An NS16550A UART at a fixed MMIO address.
#[derive(Debug, Clone, Copy)]
pub struct Uart {
    /// Address of the first register.
    base: usize,
    /// log2 of the distance between registers.
    reg_shift: u32,
}

impl Uart {
    /// The UART whose registers start at `base`, `1 << reg_shift` bytes apart.
    ///
    /// # Safety
    /// `base` must be the MMIO address of an NS16550-compatible UART with byte-wide
    /// registers at that spacing, mapped (or paging off), and nothing else may program it.
    pub const unsafe fn new(base: usize, reg_shift: u32) -> Self {
        Self { base, reg_shift }
    }

    /// The address of register `index`.
    fn register(&self, index: usize) -> *mut u8 {
        (self.base + (index << self.reg_shift)) as *mut u8
    }

    /// Reads the line status register.
    fn line_status(&self) -> u8 {
        // Safety: `new`'s contract: the register is the UART's, reading it has no effect on
        // memory Rust owns.
        unsafe { self.register(REGISTER_LINE_STATUS).read_volatile() }
    }

    /// Writes one byte, waiting until the transmitter can take it.
    fn write_byte(&self, byte: u8) {
        while self.line_status() & LINE_STATUS_TRANSMIT_EMPTY == 0 {
            core::hint::spin_loop();
        }
        // Safety: `new`'s contract: the transmit holding register is the UART's, and the
        // line status said it is empty.
        unsafe { self.register(REGISTER_DATA).write_volatile(byte) }
    }

    /// Writes `bytes` without taking the write lock: for the panic path, which must print
    /// even when another CPU stopped while holding the lock. Bytes may interleave with
    /// another CPU's.
    pub fn write_bytes_unlocked(&self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_byte(byte);
        }
    }
}

impl Console for Uart {
    fn write_bytes(&self, bytes: &[u8]) {
        let cpu = cpus::current_cpu_index();
        let acquired = loop {
            match WRITE_LOCK.compare_exchange_weak(
                UNLOCKED,
                cpu,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => break true,
                // This CPU holds the lock: this write interrupted another one.
                Err(owner) if owner == cpu => break false,
                Err(_) => core::hint::spin_loop(),
            }
        };
        self.write_bytes_unlocked(bytes);
        if acquired {
            WRITE_LOCK.store(UNLOCKED, Ordering::Release);
        }
    }

    fn read_bytes(&self, buf: &mut [u8]) -> usize {
        INPUT_END.take(buf, || {
            if self.line_status() & LINE_STATUS_DATA_READY == 0 {
                return None;
            }
            // Safety: `new`'s contract: the receive buffer register is the UART's, and the
            // line status said a byte is waiting.
            Some(unsafe { self.register(REGISTER_DATA).read_volatile() })
        })
    }

    fn input_ended(&self) -> bool {
        INPUT_END.ended()
    }
}
