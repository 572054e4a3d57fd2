//! Ranges of virtual address space: a first-fit allocator over a window, with released
//! ranges merged back into their free neighbours and reused.
//!
//! `VirtualMemory::reserve` takes its reservations from here. Plain computation, tested
//! on the host.

use alloc::collections::BTreeMap;

/// Why a range could not be released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseError {
    /// The range is empty, leaves the window, or overlaps free space (it was not
    /// allocated, or was released already).
    NotAllocated,
}

/// Allocates ranges of a window `[start, end)` of addresses.
#[derive(Debug, Clone)]
pub struct RegionAllocator {
    /// Free ranges, start → end, disjoint and never touching (touching ones are merged).
    free: BTreeMap<usize, usize>,
    start: usize,
    end: usize,
}

impl RegionAllocator {
    /// An allocator whose whole window `[start, end)` is free.
    pub fn new(start: usize, end: usize) -> Self {
        let mut free = BTreeMap::new();
        if start < end {
            free.insert(start, end);
        }
        Self { free, start, end }
    }

    /// Takes the lowest free range of `len` bytes starting at a multiple of `align` (a
    /// power of two); `None` when none is left or `len` is zero.
    pub fn allocate(&mut self, len: usize, align: usize) -> Option<usize> {
        if len == 0 || !align.is_power_of_two() {
            return None;
        }
        let (block_start, block_end, base) = self.free.iter().find_map(|(&start, &end)| {
            let base = start.checked_next_multiple_of(align)?;
            (base.checked_add(len)? <= end).then_some((start, end, base))
        })?;
        self.free.remove(&block_start);
        if block_start < base {
            self.free.insert(block_start, base);
        }
        if base + len < block_end {
            self.free.insert(base + len, block_end);
        }
        Some(base)
    }

    /// Gives back `[start, start + len)`, which must have been allocated and not released
    /// since (the whole allocation or a part of it).
    ///
    /// # Errors
    /// [`ReleaseError::NotAllocated`] when the range is empty, outside the window, or
    /// overlaps free space; nothing changes then.
    pub fn release(&mut self, start: usize, len: usize) -> Result<(), ReleaseError> {
        let end = start.checked_add(len).ok_or(ReleaseError::NotAllocated)?;
        if len == 0 || start < self.start || end > self.end {
            return Err(ReleaseError::NotAllocated);
        }
        let before = self.free.range(..end).next_back().map(|(&s, &e)| (s, e));
        if before.is_some_and(|(_, free_end)| free_end > start) {
            return Err(ReleaseError::NotAllocated);
        }
        let mut merged = (start, end);
        if let Some((free_start, free_end)) = before
            && free_end == start
        {
            self.free.remove(&free_start);
            merged.0 = free_start;
        }
        if let Some(after_end) = self.free.remove(&end) {
            merged.1 = after_end;
        }
        self.free.insert(merged.0, merged.1);
        Ok(())
    }

    /// Bytes free in the window.
    pub fn free_bytes(&self) -> usize {
        self.free.iter().map(|(start, end)| end - start).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: usize = 1 << 30;

    #[test]
    fn first_fit_with_alignment_and_reuse() {
        let mut regions = RegionAllocator::new(0x1000, 0x1000 + 64 * GIB);
        let a = regions.allocate(8 * GIB, 0x1000).unwrap();
        let b = regions.allocate(0x3000, 0x1000).unwrap();
        let c = regions.allocate(GIB, GIB).unwrap();
        assert_eq!((a, b), (0x1000, 0x1000 + 8 * GIB));
        assert_eq!(c, 9 * GIB);
        // The gap before `c` is used by a small request.
        assert_eq!(regions.allocate(0x1000, 0x1000), Some(b + 0x3000));
        regions.release(a, 8 * GIB).unwrap();
        assert_eq!(regions.allocate(8 * GIB, 0x1000), Some(a), "reused");
        assert_eq!(regions.allocate(64 * GIB, 0x1000), None);
        assert_eq!(regions.allocate(0, 0x1000), None);
        assert_eq!(regions.allocate(0x1000, 3), None);
    }

    #[test]
    fn refuses_double_and_foreign_releases() {
        let mut regions = RegionAllocator::new(0x10_000, 0x20_000);
        let a = regions.allocate(0x4000, 0x1000).unwrap();
        assert_eq!(regions.release(a, 0x4000), Ok(()));
        assert_eq!(regions.release(a, 0x4000), Err(ReleaseError::NotAllocated));
        assert_eq!(
            regions.release(0x1000, 0x1000),
            Err(ReleaseError::NotAllocated)
        );
        assert_eq!(
            regions.release(0x1f_000, 0x2000),
            Err(ReleaseError::NotAllocated)
        );
        assert_eq!(
            regions.release(usize::MAX, 2),
            Err(ReleaseError::NotAllocated)
        );
        assert_eq!(regions.free_bytes(), 0x10_000);
    }

    /// Random allocations and releases against a page-granular model: no two live ranges
    /// overlap, every release merges back, and the free space adds up.
    #[test]
    fn matches_a_page_model() {
        const PAGES: usize = 256;
        const PAGE: usize = 0x1000;
        let mut regions = RegionAllocator::new(0, PAGES * PAGE);
        let mut used = [false; PAGES];
        let mut live: Vec<(usize, usize)> = Vec::new();
        let mut state = 0x0123_4567_89ab_cdefu64;
        let mut next = |bound: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % bound as u64) as usize
        };
        for _ in 0..20_000 {
            if next(2) == 0 {
                let len = (next(16) + 1) * PAGE;
                let align = PAGE << next(4);
                match regions.allocate(len, align) {
                    Some(start) => {
                        assert_eq!(start % align, 0);
                        for (page, slot) in used[start / PAGE..(start + len) / PAGE]
                            .iter_mut()
                            .enumerate()
                        {
                            assert!(!*slot, "page {} handed out twice", start / PAGE + page);
                            *slot = true;
                        }
                        live.push((start, len));
                    }
                    None => {
                        // First fit: no free run of `len` bytes at an aligned start.
                        let fits = (0..PAGES).step_by(align / PAGE).any(|first| {
                            first + len / PAGE <= PAGES
                                && used[first..first + len / PAGE].iter().all(|u| !u)
                        });
                        assert!(!fits, "refused {len:#x} aligned {align:#x} with room left");
                    }
                }
            } else if !live.is_empty() {
                let (start, len) = live.swap_remove(next(live.len()));
                regions.release(start, len).unwrap();
                used[start / PAGE..(start + len) / PAGE].fill(false);
            }
            let free = used.iter().filter(|u| !**u).count() * PAGE;
            assert_eq!(regions.free_bytes(), free);
        }
    }
}
