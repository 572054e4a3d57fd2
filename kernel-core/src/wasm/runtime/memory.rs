//! Linear memories: a reservation with guard pages, committed up to the current size.

use core::ptr::NonNull;
use core::sync::atomic::Ordering;

use crate::hal::{MemoryError, Protection, VirtualMemory};
use crate::wasm::abi::{MEMORY_RESERVATION, WASM_PAGE_SIZE};
use crate::wasm::env::MemoryType;
use crate::wasm::vm::vmcontext::VMMemoryDefinition;

/// The most pages a 32-bit memory can have (4 GiB).
const MAX_PAGES_32: u64 = 1 << 16;

/// A 32-bit linear memory. Every byte past the current size, up to the end of the
/// [`MEMORY_RESERVATION`], is inaccessible, so generated code needs no bounds checks.
#[derive(Debug)]
pub struct LinearMemory {
    base: NonNull<u8>,
    pages: u64,
    maximum: u64,
    declared_maximum: Option<u64>,
    /// The definition generated code reads; updated on every growth.
    definition: Option<NonNull<VMMemoryDefinition>>,
    /// Whether the reservation was given back ([`LinearMemory::release`]).
    released: bool,
}

impl LinearMemory {
    /// Reserves the memory and commits its initial pages.
    ///
    /// # Errors
    /// The HAL's error when the reservation or the commit fails.
    pub fn new<H: VirtualMemory>(hal: &H, ty: &MemoryType) -> Result<Self, MemoryError> {
        let reservation =
            usize::try_from(MEMORY_RESERVATION).map_err(|_| MemoryError::OutOfMemory)?;
        let base = hal.reserve(reservation)?;
        let maximum = ty.maximum.unwrap_or(MAX_PAGES_32).min(MAX_PAGES_32);
        let mut memory = Self {
            base,
            pages: 0,
            maximum,
            declared_maximum: ty.maximum,
            definition: None,
            released: false,
        };
        if memory.grow(hal, ty.minimum).is_none() {
            // Safety: `base` is the reservation made above and nothing uses it.
            let _ = unsafe { hal.release(base, reservation) };
            return Err(MemoryError::OutOfMemory);
        }
        Ok(memory)
    }

    /// The first byte of the memory.
    #[must_use]
    pub const fn base(&self) -> NonNull<u8> {
        self.base
    }

    /// The current size in pages.
    #[must_use]
    pub const fn pages(&self) -> u64 {
        self.pages
    }

    /// The current size in bytes.
    #[must_use]
    pub const fn byte_len(&self) -> usize {
        // At most 4 GiB: fits a 64-bit usize.
        (self.pages * WASM_PAGE_SIZE) as usize
    }

    /// The maximum the memory type declares.
    #[must_use]
    pub const fn declared_maximum(&self) -> Option<u64> {
        self.declared_maximum
    }

    /// Connects the memory to the definition generated code reads, and fills it in.
    ///
    /// # Safety
    /// `definition` must stay valid (and only be written through this memory) for as long
    /// as the memory grows.
    pub unsafe fn attach(&mut self, definition: NonNull<VMMemoryDefinition>) {
        self.definition = Some(definition);
        self.publish();
    }

    fn publish(&self) {
        if let Some(definition) = self.definition {
            // Safety: `attach`'s contract keeps the definition valid; `base` is a plain
            // pointer field and `current_length` is atomic, so concurrent readers in
            // generated code see either the old or the new length.
            unsafe {
                (*definition.as_ptr()).base = self.base.as_ptr();
                (*definition.as_ptr())
                    .current_length
                    .store(self.byte_len(), Ordering::Release);
            }
        }
    }

    /// Grows the memory by `delta` pages; returns the previous size in pages, or `None`
    /// when the maximum would be exceeded or the memory cannot be committed.
    pub fn grow<H: VirtualMemory>(&mut self, hal: &H, delta: u64) -> Option<u64> {
        let old = self.pages;
        let new = old
            .checked_add(delta)
            .filter(|&pages| pages <= self.maximum)?;
        if delta > 0 {
            let start = usize::try_from(old * WASM_PAGE_SIZE).ok()?;
            let len = usize::try_from(delta * WASM_PAGE_SIZE).ok()?;
            // Safety: `[start, start + len)` lies inside the reservation (new <= 65536
            // pages <= 4 GiB < MEMORY_RESERVATION) and above every committed page, so no
            // reference into it exists.
            unsafe { hal.commit(self.base.add(start), len, Protection::ReadWrite) }.ok()?;
        }
        self.pages = new;
        self.publish();
        Some(old)
    }

    /// Releases the memory's reservation; it has no pages afterwards. Releasing twice does
    /// nothing the second time.
    ///
    /// # Safety
    /// Nothing may use the memory afterwards (no instance, no generated code).
    pub unsafe fn release<H: VirtualMemory>(&mut self, hal: &H) {
        if core::mem::replace(&mut self.released, true) {
            return;
        }
        self.pages = 0;
        self.maximum = 0;
        if let Ok(len) = usize::try_from(MEMORY_RESERVATION) {
            // Safety: the caller guarantees nothing uses the reservation any more.
            let _ = unsafe { hal.release(self.base, len) };
        }
    }
}
