//! Linear memories: a reservation with guard pages, committed up to the current size, and
//! the registry of every live reservation that the trap handler checks fault addresses
//! against.

use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering, fence};

use crate::hal::{MemoryError, Protection, VirtualMemory};
use crate::sync::SpinLock;
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
        if LIVE_MEMORIES
            .register(base.as_ptr() as usize, reservation)
            .is_err()
        {
            // Safety: `base` is the reservation made above and nothing uses it.
            let _ = unsafe { hal.release(base, reservation) };
            return Err(MemoryError::OutOfMemory);
        }
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
            LIVE_MEMORIES.unregister(base.as_ptr() as usize);
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
        LIVE_MEMORIES.set_accessible(self.base.as_ptr() as usize, self.byte_len());
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
        LIVE_MEMORIES.unregister(self.base.as_ptr() as usize);
        if let Ok(len) = usize::try_from(MEMORY_RESERVATION) {
            // Safety: the caller guarantees nothing uses the reservation any more.
            let _ = unsafe { hal.release(self.base, len) };
        }
    }
}

/// How many linear memories may be alive at once in the whole kernel: 4096 reservations
/// of 8 GiB are 32 TiB of address space, a quarter of what either HAL can hand out.
pub const MAX_LIVE_MEMORIES: usize = 4096;

/// Every live linear memory's reservation, for the trap handler.
pub static LIVE_MEMORIES: MemoryRegistry<MAX_LIVE_MEMORIES> = MemoryRegistry::new();

/// One live reservation as the trap handler sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryReservation {
    /// The first byte of the reservation (the memory's base).
    pub start: usize,
    /// How many bytes from `start` are accessible (the memory's current size).
    pub accessible: usize,
    /// How many bytes from `start` are reserved; past `accessible` they are the guard
    /// region, where a fault is an out-of-bounds access.
    pub reserved: usize,
}

impl MemoryReservation {
    /// Whether `address` lies in the reservation but past its accessible bytes.
    #[must_use]
    pub const fn guards(&self, address: usize) -> bool {
        let offset = address.wrapping_sub(self.start);
        offset >= self.accessible && offset < self.reserved
    }
}

/// The registry is full: [`MAX_LIVE_MEMORIES`] memories are alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistryFull;

/// One slot of a [`MemoryRegistry`]; atomics so that readers may race with writers (the
/// sequence number tells them to retry).
#[derive(Debug)]
struct Slot {
    start: AtomicUsize,
    accessible: AtomicUsize,
    reserved: AtomicUsize,
}

impl Slot {
    const fn empty() -> Self {
        Self {
            start: AtomicUsize::new(0),
            accessible: AtomicUsize::new(0),
            reserved: AtomicUsize::new(0),
        }
    }

    fn load(&self) -> MemoryReservation {
        MemoryReservation {
            start: self.start.load(Ordering::Relaxed),
            accessible: self.accessible.load(Ordering::Relaxed),
            reserved: self.reserved.load(Ordering::Relaxed),
        }
    }

    fn store(&self, reservation: MemoryReservation) {
        self.start.store(reservation.start, Ordering::Relaxed);
        self.accessible
            .store(reservation.accessible, Ordering::Relaxed);
        self.reserved.store(reservation.reserved, Ordering::Relaxed);
    }
}

/// Live linear-memory reservations, sorted by address, in a fixed array: what the trap
/// handler needs to tell a guard-region hit from a stray fault.
///
/// Writers (creating, growing and releasing memories: never the trap path) take a spin
/// lock among themselves and bump a sequence number around every change (a seqlock).
/// [`MemoryRegistry::lookup`], for the trap path, takes no lock and allocates nothing: it
/// reads the sequence number, searches, and retries when a writer was active meanwhile.
/// A writer never runs WebAssembly while it holds the lock, so a fault on the writer's own
/// CPU cannot wait for it.
#[derive(Debug)]
pub struct MemoryRegistry<const N: usize> {
    writer: SpinLock<()>,
    /// Odd while a writer changes the slots.
    sequence: AtomicUsize,
    len: AtomicUsize,
    slots: [Slot; N],
}

impl<const N: usize> Default for MemoryRegistry<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> MemoryRegistry<N> {
    /// An empty registry.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            writer: SpinLock::new(()),
            sequence: AtomicUsize::new(0),
            len: AtomicUsize::new(0),
            slots: [const { Slot::empty() }; N],
        }
    }

    /// Runs `change` on the slots as the only writer, with the sequence number odd.
    fn write<T>(&self, change: impl FnOnce(&[Slot; N], &mut usize) -> T) -> T {
        let _writer = self.writer.lock();
        let sequence = self.sequence.load(Ordering::Relaxed);
        self.sequence
            .store(sequence.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        let mut len = self.len.load(Ordering::Relaxed);
        let result = change(&self.slots, &mut len);
        self.len.store(len, Ordering::Relaxed);
        self.sequence
            .store(sequence.wrapping_add(2), Ordering::Release);
        result
    }

    /// Records the reservation `[start, start + reserved)`, with nothing accessible yet.
    /// Entries overlapping it are dropped: the HAL handed the range out again, so they
    /// describe reservations that no longer exist.
    ///
    /// # Errors
    /// [`RegistryFull`] when `N` reservations are registered.
    pub fn register(&self, start: usize, reserved: usize) -> Result<(), RegistryFull> {
        let end = start.saturating_add(reserved);
        self.write(|slots, len| {
            let mut kept = 0;
            for slot in &slots[..*len] {
                let entry = slot.load();
                let overlaps =
                    entry.start < end && start < entry.start.saturating_add(entry.reserved);
                if !overlaps {
                    slots[kept].store(entry);
                    kept += 1;
                }
            }
            *len = kept;
            if kept == N {
                return Err(RegistryFull);
            }
            let position = (0..kept)
                .find(|&index| slots[index].start.load(Ordering::Relaxed) > start)
                .unwrap_or(kept);
            for index in (position..kept).rev() {
                slots[index + 1].store(slots[index].load());
            }
            slots[position].store(MemoryReservation {
                start,
                accessible: 0,
                reserved,
            });
            *len = kept + 1;
            Ok(())
        })
    }

    /// Records that the first `accessible` bytes of the reservation at `start` are now
    /// accessible (after a growth). Does nothing for an unknown `start`.
    pub fn set_accessible(&self, start: usize, accessible: usize) {
        self.write(|slots, len| {
            if let Some(slot) = slots[..*len]
                .iter()
                .find(|slot| slot.start.load(Ordering::Relaxed) == start)
            {
                slot.accessible.store(accessible, Ordering::Relaxed);
            }
        });
    }

    /// Forgets the reservation at `start` (before it is released). Does nothing for an
    /// unknown `start`.
    pub fn unregister(&self, start: usize) {
        self.write(|slots, len| {
            let Some(position) =
                (0..*len).find(|&index| slots[index].start.load(Ordering::Relaxed) == start)
            else {
                return;
            };
            for index in position..*len - 1 {
                slots[index].store(slots[index + 1].load());
            }
            *len -= 1;
        });
    }

    /// The reservation containing `address`, if a live one does. For the trap path: no
    /// lock, no allocation; it retries only while a writer on another CPU is changing
    /// the registry.
    #[must_use]
    pub fn lookup(&self, address: usize) -> Option<MemoryReservation> {
        loop {
            let before = self.sequence.load(Ordering::Acquire);
            if before.is_multiple_of(2) {
                let len = self.len.load(Ordering::Relaxed).min(N);
                // A binary search over the sorted slots: the last one starting at or
                // below `address`. Torn reads during a write give a wrong answer that
                // the sequence check below throws away.
                let position = self.slots[..len]
                    .partition_point(|slot| slot.start.load(Ordering::Relaxed) <= address);
                let found = position
                    .checked_sub(1)
                    .map(|index| self.slots[index].load())
                    .filter(|entry| address.wrapping_sub(entry.start) < entry.reserved);
                fence(Ordering::Acquire);
                if self.sequence.load(Ordering::Relaxed) == before {
                    return found;
                }
            }
            core::hint::spin_loop();
        }
    }

    /// How many reservations are registered.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// Whether no reservation is registered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_find_the_reservation_and_its_guard() {
        let registry = MemoryRegistry::<4>::new();
        registry.register(0x3000, 0x1000).unwrap();
        registry.register(0x1000, 0x1000).unwrap();
        registry.set_accessible(0x1000, 0x800);
        let found = registry.lookup(0x1900).unwrap();
        assert_eq!(
            found,
            MemoryReservation {
                start: 0x1000,
                accessible: 0x800,
                reserved: 0x1000
            }
        );
        assert!(found.guards(0x1900));
        assert!(!found.guards(0x17ff));
        assert!(registry.lookup(0x2000).is_none());
        assert!(registry.lookup(0xfff).is_none());
        assert_eq!(
            registry.lookup(0x3fff).map(|entry| entry.start),
            Some(0x3000)
        );
        registry.unregister(0x1000);
        assert!(registry.lookup(0x1900).is_none());
        assert_eq!(registry.len(), 1);
    }

    #[test]
    fn a_full_registry_refuses_and_a_reused_range_replaces_its_stale_entry() {
        let registry = MemoryRegistry::<2>::new();
        registry.register(0x1000, 0x1000).unwrap();
        registry.register(0x2000, 0x1000).unwrap();
        assert_eq!(registry.register(0x5000, 0x1000), Err(RegistryFull));
        // The HAL reuses [0x1800, 0x2800): both old entries are stale.
        registry.register(0x1800, 0x1000).unwrap();
        assert_eq!(registry.len(), 1);
        assert_eq!(
            registry.lookup(0x2700).map(|entry| entry.start),
            Some(0x1800)
        );
    }

    #[test]
    fn the_registry_matches_a_model() {
        // A small deterministic walk compared with a sorted vector.
        let registry = MemoryRegistry::<8>::new();
        let mut model = alloc::vec::Vec::<(usize, usize)>::new();
        let mut state = 12345u32;
        for _ in 0..500 {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let slot = (state >> 16) as usize % 12;
            let start = 0x10_000 + slot * 0x1000;
            if model.iter().any(|&(at, _)| at == start) {
                registry.unregister(start);
                model.retain(|&(at, _)| at != start);
            } else if registry.register(start, 0x1000).is_ok() {
                model.push((start, 0));
                let accessible = (state as usize >> 4) % 0x1000;
                registry.set_accessible(start, accessible);
                model.last_mut().unwrap().1 = accessible;
            } else {
                assert_eq!(model.len(), 8);
            }
            for probe in (0x10_000..0x10_000 + 12 * 0x1000).step_by(0x400) {
                let expected = model
                    .iter()
                    .find(|&&(at, _)| probe >= at && probe < at + 0x1000)
                    .map(|&(start, accessible)| MemoryReservation {
                        start,
                        accessible,
                        reserved: 0x1000,
                    });
                assert_eq!(registry.lookup(probe), expected);
            }
        }
    }
}
