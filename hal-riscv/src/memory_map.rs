//! The memory map handed to kernel-core: RAM as the device tree lists it, cut around the
//! reserved ranges (firmware, device tree blob, kernel image) into page-aligned, sorted,
//! non-overlapping [`MemoryKind::Usable`] and [`MemoryKind::Reserved`] regions.
//!
//! Plain computation on address ranges, so it also builds for the host, where its unit
//! tests run.

use alloc::vec::Vec;

use kernel_core::hal::{MemoryKind, MemoryRegion};

/// The page size the map is aligned to.
pub const PAGE_SIZE: usize = 4096;

/// A half-open range of addresses `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// The first address.
    pub start: usize,
    /// One past the last address (`start` for an empty range).
    pub end: usize,
}

impl Range {
    /// The range `[start, end)`, empty when `end <= start`.
    pub const fn new(start: usize, end: usize) -> Self {
        Self {
            start,
            end: if end < start { start } else { end },
        }
    }

    /// The range of `size` bytes at `base`, cut at the end of the address space.
    pub const fn from_base_size(base: usize, size: usize) -> Self {
        Self::new(base, base.saturating_add(size))
    }

    /// Whether the range holds no address.
    pub const fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// The largest page-aligned range inside this one.
    fn align_inward(self) -> Self {
        Self::new(align_up(self.start), align_down(self.end))
    }

    /// The smallest page-aligned range holding this one (cut at the last page of the
    /// address space).
    fn align_outward(self) -> Self {
        Self::new(align_down(self.start), align_up(self.end))
    }
}

/// `address` rounded down to a page boundary.
const fn align_down(address: usize) -> usize {
    address & !(PAGE_SIZE - 1)
}

/// `address` rounded up to a page boundary, or the last page boundary on overflow.
const fn align_up(address: usize) -> usize {
    match address.checked_add(PAGE_SIZE - 1) {
        Some(sum) => align_down(sum),
        None => align_down(usize::MAX),
    }
}

/// Sorts `ranges` by start, drops the empty ones and merges those that overlap or touch.
fn normalize(mut ranges: Vec<Range>) -> Vec<Range> {
    ranges.retain(|range| !range.is_empty());
    ranges.sort_unstable_by_key(|range| range.start);
    let mut merged: Vec<Range> = Vec::with_capacity(ranges.len());
    for range in ranges {
        match merged.last_mut() {
            Some(last) if range.start <= last.end => last.end = last.end.max(range.end),
            _ => merged.push(range),
        }
    }
    merged
}

/// Appends the region `range` of `kind` to `map` (nothing for an empty range).
fn push(map: &mut Vec<MemoryRegion>, range: Range, kind: MemoryKind) {
    if !range.is_empty() {
        map.push(MemoryRegion {
            base: range.start,
            size: range.end - range.start,
            kind,
        });
    }
}

/// The memory map of the RAM ranges `ram` with the ranges `reserved` taken out.
///
/// RAM is shrunk to whole pages and reserved ranges grown to whole pages. Every page of
/// RAM appears exactly once: as [`MemoryKind::Reserved`] where a reserved range covers it,
/// as [`MemoryKind::Usable`] elsewhere. Reserved ranges outside RAM are left out. The
/// regions are sorted by base address and do not overlap (the [`kernel_core::hal::BootInfo`]
/// contract); neighbouring regions of the same kind may touch.
pub fn build(ram: &[Range], reserved: &[Range]) -> Vec<MemoryRegion> {
    // Merge before aligning: a page split between two touching ranges is still RAM.
    let ram: Vec<Range> = normalize(ram.to_vec())
        .into_iter()
        .map(Range::align_inward)
        .filter(|range| !range.is_empty())
        .collect();
    // Drop empty ranges before aligning: growing one would reserve a page for nothing.
    let reserved = normalize(
        reserved
            .iter()
            .filter(|range| !range.is_empty())
            .map(|range| range.align_outward())
            .collect(),
    );
    let mut map = Vec::new();
    for memory in ram {
        let mut cursor = memory.start;
        for hole in &reserved {
            let clipped = Range::new(hole.start.max(memory.start), hole.end.min(memory.end));
            if clipped.is_empty() {
                continue;
            }
            push(
                &mut map,
                Range::new(cursor, clipped.start),
                MemoryKind::Usable,
            );
            push(&mut map, clipped, MemoryKind::Reserved);
            cursor = clipped.end;
        }
        push(&mut map, Range::new(cursor, memory.end), MemoryKind::Usable);
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usable(base: usize, size: usize) -> MemoryRegion {
        MemoryRegion {
            base,
            size,
            kind: MemoryKind::Usable,
        }
    }

    fn reserved(base: usize, size: usize) -> MemoryRegion {
        MemoryRegion {
            base,
            size,
            kind: MemoryKind::Reserved,
        }
    }

    #[test]
    fn qemu_virt_layout() {
        let ram = [Range::from_base_size(0x8000_0000, 256 << 20)];
        let holes = [
            Range::from_base_size(0x8000_0000, 0x4_0000), // OpenSBI
            Range::new(0x8020_0000, 0x8130_0000),         // kernel image
            Range::from_base_size(0x8fe0_0000, 0x1234),   // device tree, not page sized
        ];
        assert_eq!(
            build(&ram, &holes),
            [
                reserved(0x8000_0000, 0x4_0000),
                usable(0x8004_0000, 0x8020_0000 - 0x8004_0000),
                reserved(0x8020_0000, 0x8130_0000 - 0x8020_0000),
                usable(0x8130_0000, 0x8fe0_0000 - 0x8130_0000),
                reserved(0x8fe0_0000, 0x2000),
                usable(0x8fe0_2000, 0x9000_0000 - 0x8fe0_2000),
            ]
        );
    }

    #[test]
    fn overlapping_touching_and_outside_holes() {
        let ram = [Range::new(0x10_000, 0x20_000)];
        let holes = [
            Range::new(0x12_000, 0x14_000),
            Range::new(0x13_000, 0x15_000), // overlaps the first
            Range::new(0x15_000, 0x16_000), // touches the second
            Range::new(0x0, 0x1000),        // outside RAM
            Range::new(0x1f_000, 0x30_000), // runs past the end of RAM
        ];
        assert_eq!(
            build(&ram, &holes),
            [
                usable(0x10_000, 0x2000),
                reserved(0x12_000, 0x4000),
                usable(0x16_000, 0x9000),
                reserved(0x1f_000, 0x1000),
            ]
        );
    }

    #[test]
    fn unsorted_and_unaligned_ram() {
        let ram = [
            Range::new(0x30_100, 0x40_000),
            Range::new(0x10_000, 0x20_fff),
        ];
        assert_eq!(
            build(&ram, &[]),
            [usable(0x10_000, 0x10_000), usable(0x31_000, 0xf_000)]
        );
    }

    #[test]
    fn end_of_address_space() {
        let ram = [Range::from_base_size(usize::MAX - 0x3fff, usize::MAX)];
        let holes = [Range::from_base_size(usize::MAX - 0x10, 0x10)];
        let top = align_down(usize::MAX);
        assert_eq!(build(&ram, &holes), [usable(top - 0x3000, 0x3000)]);
    }

    /// A xorshift generator: enough randomness for the model check without a dependency.
    struct Random(u64);

    impl Random {
        fn below(&mut self, bound: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % bound as u64) as usize
        }

        /// A range inside `[0, limit)`, up to a quarter of it long, with bounds at multiples
        /// of [`GRAIN`].
        fn range(&mut self, limit: usize) -> Range {
            let cells = limit / GRAIN;
            let start = self.below(cells);
            let end = (start + self.below(cells / 4 + 1)).min(cells);
            Range::new(start * GRAIN, end * GRAIN)
        }
    }

    /// The unit of the random ranges, smaller than a page so that alignment is exercised.
    const GRAIN: usize = 256;

    /// Checks `build` against a model that marks each page of a small address space.
    #[test]
    fn matches_page_model() {
        const PAGES: usize = 64;
        const CELLS_PER_PAGE: usize = PAGE_SIZE / GRAIN;
        let limit = PAGES * PAGE_SIZE;
        let mut random = Random(0x9e37_79b9_7f4a_7c15);
        for _ in 0..2000 {
            let ram: Vec<Range> = (0..random.below(4)).map(|_| random.range(limit)).collect();
            let holes: Vec<Range> = (0..random.below(5)).map(|_| random.range(limit)).collect();
            let in_ram = |cell: usize| {
                ram.iter()
                    .any(|r| r.start <= cell * GRAIN && (cell + 1) * GRAIN <= r.end)
            };
            let mut model = [None; PAGES];
            for (page, slot) in model.iter_mut().enumerate() {
                let first_cell = page * CELLS_PER_PAGE;
                if (first_cell..first_cell + CELLS_PER_PAGE).all(in_ram) {
                    let (start, end) = (page * PAGE_SIZE, (page + 1) * PAGE_SIZE);
                    let taken = holes
                        .iter()
                        .any(|h| !h.is_empty() && h.start < end && start < h.end);
                    *slot = Some(if taken {
                        MemoryKind::Reserved
                    } else {
                        MemoryKind::Usable
                    });
                }
            }
            let map = build(&ram, &holes);
            let mut seen = [None; PAGES];
            let mut previous_end = 0;
            for region in &map {
                assert!(
                    region.size > 0 && region.base % PAGE_SIZE == 0 && region.size % PAGE_SIZE == 0
                );
                assert!(
                    region.base >= previous_end,
                    "sorted, not overlapping: {map:?}"
                );
                previous_end = region.base + region.size;
                for slot in &mut seen[region.base / PAGE_SIZE..previous_end / PAGE_SIZE] {
                    *slot = Some(region.kind);
                }
            }
            assert_eq!(seen, model, "ram {ram:?} holes {holes:?} map {map:?}");
        }
    }
}
