//! The physical frame allocator: a bitmap over the usable RAM of the memory map.
//!
//! One bit per 4 KiB frame (1 = in use), zones for the usable ranges, and a cursor that
//! makes the common case (frames handed out in a row) a constant-time scan. The bitmap is
//! allocated once, when the allocator is made; allocating and freeing frames never touches
//! the heap, so the heap itself may grow by taking frames, and the trap path may take a
//! frame for a page it backs on demand.
//!
//! Plain computation, tested on the host.

use alloc::vec;
use alloc::vec::Vec;

use crate::memory_map::{PAGE_SIZE, Range};

/// One usable range: its first frame and where its bits start in the bitmap.
#[derive(Debug, Clone, Copy)]
struct Zone {
    /// Physical address of the first frame.
    start: usize,
    /// Number of frames.
    frames: usize,
    /// Index of the zone's first bit.
    first_bit: usize,
}

/// Why a frame could not be freed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreeError {
    /// The address is not a frame of this allocator (outside its zones or unaligned).
    NotManaged,
    /// The frame is free already.
    AlreadyFree,
}

/// Hands out and takes back physical frames of [`PAGE_SIZE`] bytes.
#[derive(Debug)]
pub struct FrameAllocator {
    zones: Vec<Zone>,
    /// One bit per frame, 1 for in use; bits past the last frame are 1.
    bitmap: Vec<u64>,
    total: usize,
    free: usize,
    /// The word where the next search starts.
    cursor: usize,
}

impl FrameAllocator {
    /// An allocator owning every whole frame inside `ranges`, all free. The ranges must
    /// not overlap.
    pub fn new(ranges: &[Range]) -> Self {
        let mut zones: Vec<Zone> = ranges
            .iter()
            .map(|range| {
                let start = range.start.next_multiple_of(PAGE_SIZE);
                let end = range.end & !(PAGE_SIZE - 1);
                Zone {
                    start,
                    frames: end.saturating_sub(start) / PAGE_SIZE,
                    first_bit: 0,
                }
            })
            .filter(|zone| zone.frames > 0)
            .collect();
        zones.sort_unstable_by_key(|zone| zone.start);
        let mut total = 0;
        for zone in &mut zones {
            zone.first_bit = total;
            total += zone.frames;
        }
        let mut bitmap = vec![0u64; total.div_ceil(64)];
        if !total.is_multiple_of(64)
            && let Some(last) = bitmap.last_mut()
        {
            *last = !0 << (total % 64);
        }
        Self {
            zones,
            bitmap,
            total,
            free: total,
            cursor: 0,
        }
    }

    /// The number of frames managed.
    pub fn total_frames(&self) -> usize {
        self.total
    }

    /// The number of free frames.
    pub fn free_frames(&self) -> usize {
        self.free
    }

    /// Takes a free frame and returns its physical address (contents undefined), or
    /// `None` when every frame is in use.
    pub fn allocate(&mut self) -> Option<usize> {
        if self.free == 0 {
            return None;
        }
        let words = self.bitmap.len();
        for step in 0..words {
            let word = (self.cursor + step) % words;
            let bits = self.bitmap[word];
            if bits != u64::MAX {
                let bit = bits.trailing_ones() as usize;
                self.bitmap[word] |= 1 << bit;
                self.free -= 1;
                self.cursor = word;
                return Some(self.address(word * 64 + bit));
            }
        }
        None
    }

    /// Gives back the frame at `frame`.
    ///
    /// # Errors
    /// [`FreeError`] when `frame` is not a frame of this allocator or is free already;
    /// nothing changes then.
    pub fn free(&mut self, frame: usize) -> Result<(), FreeError> {
        let bit = self.bit(frame).ok_or(FreeError::NotManaged)?;
        let (word, mask) = (bit / 64, 1u64 << (bit % 64));
        if self.bitmap[word] & mask == 0 {
            return Err(FreeError::AlreadyFree);
        }
        self.bitmap[word] &= !mask;
        self.free += 1;
        // Reuse low frames first: keeps the working set compact.
        self.cursor = self.cursor.min(word);
        Ok(())
    }

    /// Whether `frame` is a frame of this allocator that is in use.
    pub fn is_allocated(&self, frame: usize) -> bool {
        self.bit(frame)
            .is_some_and(|bit| self.bitmap[bit / 64] & (1 << (bit % 64)) != 0)
    }

    /// The address of frame number `bit`.
    fn address(&self, bit: usize) -> usize {
        let zone = self.zones[self.zones.partition_point(|zone| zone.first_bit <= bit) - 1];
        zone.start + (bit - zone.first_bit) * PAGE_SIZE
    }

    /// The bit of the frame at `frame`, if this allocator owns it.
    fn bit(&self, frame: usize) -> Option<usize> {
        if !frame.is_multiple_of(PAGE_SIZE) {
            return None;
        }
        let after = self.zones.partition_point(|zone| zone.start <= frame);
        let zone = self.zones.get(after.checked_sub(1)?)?;
        let index = (frame - zone.start) / PAGE_SIZE;
        (index < zone.frames).then_some(zone.first_bit + index)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn ranges() -> Vec<Range> {
        vec![
            Range::new(0x9000_0000, 0x9000_0000 + 3 * PAGE_SIZE),
            // Unaligned: shrinks to the whole frames inside.
            Range::new(0x8000_0010, 0x8004_1000),
            Range::new(0xa000_0000, 0xa000_0800),
        ]
    }

    #[test]
    fn hands_out_every_frame_once() {
        let mut frames = FrameAllocator::new(&ranges());
        assert_eq!(frames.total_frames(), 0x40 + 3);
        let mut seen = BTreeSet::new();
        while let Some(frame) = frames.allocate() {
            assert!(seen.insert(frame), "{frame:#x} twice");
            assert!(frames.is_allocated(frame));
        }
        assert_eq!(seen.len(), 0x43);
        assert_eq!(frames.free_frames(), 0);
        assert_eq!(seen.first(), Some(&0x8000_1000));
        assert_eq!(seen.last(), Some(&(0x9000_0000 + 2 * PAGE_SIZE)));
        assert!(!seen.contains(&0xa000_0000));
    }

    #[test]
    fn refuses_bad_frees() {
        let mut frames = FrameAllocator::new(&ranges());
        let frame = frames.allocate().unwrap();
        assert_eq!(frames.free(frame + 8), Err(FreeError::NotManaged));
        assert_eq!(frames.free(0x7000_0000), Err(FreeError::NotManaged));
        assert_eq!(frames.free(0x8004_1000), Err(FreeError::NotManaged));
        assert_eq!(frames.free(0x8000_2000), Err(FreeError::AlreadyFree));
        assert_eq!(frames.free(frame), Ok(()));
        assert_eq!(frames.free(frame), Err(FreeError::AlreadyFree));
        assert_eq!(frames.free_frames(), frames.total_frames());
    }

    #[test]
    fn empty_allocator() {
        let mut frames = FrameAllocator::new(&[Range::new(0x1000, 0x1800)]);
        assert_eq!(frames.total_frames(), 0);
        assert_eq!(frames.allocate(), None);
    }

    /// Random allocations and frees against a set of the frames in use.
    #[test]
    fn matches_a_set_model() {
        let mut frames = FrameAllocator::new(&ranges());
        let mut used: Vec<usize> = Vec::new();
        let mut state = 0x1234_5678_9abc_def1u64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            if !state.is_multiple_of(3) {
                match frames.allocate() {
                    Some(frame) => {
                        assert!(!used.contains(&frame));
                        used.push(frame);
                    }
                    None => assert_eq!(used.len(), frames.total_frames()),
                }
            } else if !used.is_empty() {
                let frame = used.swap_remove(state as usize % used.len());
                frames.free(frame).unwrap();
            }
            assert_eq!(frames.free_frames(), frames.total_frames() - used.len());
        }
    }
}
