//! Sv48 page tables: entry encoding, walking, mapping, changing and unmapping pages.
//!
//! Sv48 translates 48-bit virtual addresses through four levels of 512-entry tables
//! (RISC-V privileged specification, "Sv48: Page-Based 48-bit Virtual-Memory System"):
//! level 3 (the root) maps 512 GiB per entry, level 2 1 GiB, level 1 2 MiB and level 0
//! 4 KiB. An entry with any of R, W, X set is a leaf (a page of its level's size);
//! otherwise a valid entry points at the next table.
//!
//! The code is plain computation over a [`TableMemory`], which reads and writes table
//! entries by physical address and hands out zeroed table frames: the kernel's reaches the
//! tables through its identity map of RAM, the unit tests' is a map of arrays. So the same
//! code that runs under QEMU is tested on the host.
//!
//! Besides the hardware's states, a level-0 entry with V clear but [`Pte::BACKED`] set
//! keeps the frame of a page that is committed but currently inaccessible
//! (`Protection::None`): the hardware ignores every other bit of an invalid entry, so
//! the frame survives until the page is decommitted.

/// The size of a page, and of a page table.
pub const PAGE_SIZE: usize = 4096;

/// Entries per table.
pub const ENTRIES: usize = 512;

/// The number of translation levels of Sv48.
pub const LEVELS: usize = 4;

/// `satp.MODE` for Sv48.
pub const SATP_MODE_SV48: u64 = 9;

/// One past the highest virtual address of the lower half of the Sv48 address space
/// (addresses are sign-extended from bit 47; the kernel uses the lower half only).
pub const LOWER_HALF_END: usize = 1 << 47;

/// The `satp` value that selects Sv48 translation with the root table at `root`, ASID 0.
pub const fn satp(root: usize) -> u64 {
    (SATP_MODE_SV48 << 60) | (root as u64 >> 12)
}

/// The size of a page mapped by one leaf entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PageSize {
    /// 4 KiB, a level-0 leaf.
    Size4K,
    /// 2 MiB, a level-1 leaf ("megapage").
    Size2M,
    /// 1 GiB, a level-2 leaf ("gigapage").
    Size1G,
}

impl PageSize {
    /// The page size in bytes.
    pub const fn bytes(self) -> usize {
        PAGE_SIZE << (9 * self.level())
    }

    /// The level whose leaves have this size.
    pub const fn level(self) -> usize {
        match self {
            Self::Size4K => 0,
            Self::Size2M => 1,
            Self::Size1G => 2,
        }
    }

    /// The leaf size of `level` (0 to 2).
    const fn of_level(level: usize) -> Self {
        match level {
            0 => Self::Size4K,
            1 => Self::Size2M,
            _ => Self::Size1G,
        }
    }
}

/// A page table entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pte(pub u64);

impl Pte {
    /// Valid.
    pub const V: u64 = 1 << 0;
    /// Readable.
    pub const R: u64 = 1 << 1;
    /// Writable.
    pub const W: u64 = 1 << 2;
    /// Executable.
    pub const X: u64 = 1 << 3;
    /// Accessible from U-mode (never set: there is no U-mode).
    pub const U: u64 = 1 << 4;
    /// Global: present in every address space.
    pub const G: u64 = 1 << 5;
    /// Accessed. Set up front, so that the hardware never faults to have it set.
    pub const A: u64 = 1 << 6;
    /// Dirty. Set up front, as [`Pte::A`].
    pub const D: u64 = 1 << 7;
    /// Software bit (RSW, ignored by the hardware): an invalid level-0 entry that still
    /// owns its frame (a committed page with no access).
    pub const BACKED: u64 = 1 << 8;
    /// The permission bits.
    pub const PERMISSIONS: u64 = Self::R | Self::W | Self::X;
    /// Where the physical page number starts.
    const PPN_SHIFT: u32 = 10;
    /// The 44 bits of the physical page number.
    const PPN_MASK: u64 = ((1 << 44) - 1) << Self::PPN_SHIFT;

    /// The empty entry: nothing mapped, no frame.
    pub const EMPTY: Self = Self(0);

    /// A leaf mapping the frame at `physical` with the permission bits `permissions`
    /// (some of R, W, X), global, accessed and dirty.
    pub const fn leaf(physical: usize, permissions: u64) -> Self {
        Self(
            Self::encode_ppn(physical)
                | (permissions & Self::PERMISSIONS)
                | Self::V
                | Self::G
                | Self::A
                | Self::D,
        )
    }

    /// An entry pointing at the next-level table at `physical`.
    pub const fn table(physical: usize) -> Self {
        Self(Self::encode_ppn(physical) | Self::V)
    }

    /// An invalid level-0 entry that keeps the frame at `physical` (no access).
    pub const fn backed_without_access(physical: usize) -> Self {
        Self(Self::encode_ppn(physical) | Self::BACKED)
    }

    const fn encode_ppn(physical: usize) -> u64 {
        ((physical as u64) >> 12 << Self::PPN_SHIFT) & Self::PPN_MASK
    }

    /// Whether the entry is valid (the hardware uses it).
    pub const fn is_valid(self) -> bool {
        self.0 & Self::V != 0
    }

    /// Whether the entry is a valid leaf.
    pub const fn is_leaf(self) -> bool {
        self.is_valid() && self.0 & Self::PERMISSIONS != 0
    }

    /// Whether the entry is a valid pointer to a next-level table.
    pub const fn is_table(self) -> bool {
        self.is_valid() && self.0 & Self::PERMISSIONS == 0
    }

    /// Whether the entry owns a frame: a valid leaf, or an invalid entry marked
    /// [`Pte::BACKED`].
    pub const fn has_frame(self) -> bool {
        self.is_leaf() || (!self.is_valid() && self.0 & Self::BACKED != 0)
    }

    /// The physical address the entry points at (a frame or a table).
    pub const fn address(self) -> usize {
        (((self.0 & Self::PPN_MASK) >> Self::PPN_SHIFT) << 12) as usize
    }

    /// The permission bits of a leaf.
    pub const fn permissions(self) -> u64 {
        self.0 & Self::PERMISSIONS
    }
}

/// Why a mapping could not be made or changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapError {
    /// A table frame could not be had.
    OutOfMemory,
    /// An address or length is not aligned to the page size used, or not canonical.
    Misaligned,
    /// Something is mapped there already.
    AlreadyMapped,
    /// A larger page covers part of the range (only 4 KiB pages can be changed one by one).
    Superpage,
}

/// The physical memory holding page tables, as the page table code sees it.
pub trait TableMemory {
    /// Reads entry `index` (below [`ENTRIES`]) of the table at `table`.
    fn read(&self, table: usize, index: usize) -> Pte;
    /// Writes entry `index` of the table at `table`.
    fn write(&mut self, table: usize, index: usize, entry: Pte);
    /// A zeroed frame for a new table, if memory is left.
    fn allocate_table(&mut self) -> Option<usize>;
    /// Takes back a table frame that holds only empty entries.
    fn free_table(&mut self, table: usize);
}

/// The index into the level-`level` table for `virt`.
const fn index(virt: usize, level: usize) -> usize {
    (virt >> (12 + 9 * level)) & (ENTRIES - 1)
}

/// The bytes one entry of a level-`level` table covers.
const fn span(level: usize) -> usize {
    PAGE_SIZE << (9 * level)
}

/// The first address of the next level-`level` entry after the one covering `virt`
/// (below [`LOWER_HALF_END`], so the sum cannot overflow).
fn next_boundary(virt: usize, level: usize) -> usize {
    (virt & !(span(level) - 1)) + span(level)
}

/// A leaf found by [`PageTable::lookup`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leaf {
    /// The entry: a valid leaf, or an invalid level-0 entry with state ([`Pte::BACKED`]).
    pub entry: Pte,
    /// The size of the page it maps.
    pub size: PageSize,
}

/// An Sv48 address space: the physical address of its root table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageTable {
    root: usize,
}

impl PageTable {
    /// A new, empty address space.
    ///
    /// # Errors
    /// [`MapError::OutOfMemory`] when no frame is left for the root table.
    pub fn new(memory: &mut impl TableMemory) -> Result<Self, MapError> {
        let root = memory.allocate_table().ok_or(MapError::OutOfMemory)?;
        Ok(Self { root })
    }

    /// The physical address of the root table (for `satp`).
    pub const fn root(&self) -> usize {
        self.root
    }

    /// Maps one page of `size` at `virt` to `physical` with `permissions` (some of R, W, X).
    ///
    /// # Errors
    /// [`MapError::Misaligned`] when either address is not aligned to `size` or `virt` is
    /// outside the lower half; [`MapError::AlreadyMapped`] when anything is mapped in the
    /// range already; [`MapError::OutOfMemory`] when a table is needed and none can be had.
    pub fn map(
        &self,
        memory: &mut impl TableMemory,
        virt: usize,
        physical: usize,
        size: PageSize,
        permissions: u64,
    ) -> Result<(), MapError> {
        if !virt.is_multiple_of(size.bytes())
            || !physical.is_multiple_of(size.bytes())
            || virt >= LOWER_HALF_END
            || permissions & Pte::PERMISSIONS == 0
        {
            return Err(MapError::Misaligned);
        }
        let (table, slot) = self.slot(memory, virt, size.level())?;
        if memory.read(table, slot) != Pte::EMPTY {
            return Err(MapError::AlreadyMapped);
        }
        memory.write(table, slot, Pte::leaf(physical, permissions));
        Ok(())
    }

    /// Maps `[virt, virt + len)` to `[physical, physical + len)` with `permissions`,
    /// using the largest pages both addresses' alignment allows.
    ///
    /// # Errors
    /// As for [`PageTable::map`]; `len` must be a multiple of [`PAGE_SIZE`]. Pages mapped
    /// before the error stay mapped.
    pub fn map_range(
        &self,
        memory: &mut impl TableMemory,
        virt: usize,
        physical: usize,
        len: usize,
        permissions: u64,
    ) -> Result<(), MapError> {
        if !len.is_multiple_of(PAGE_SIZE) || virt.checked_add(len).is_none() {
            return Err(MapError::Misaligned);
        }
        let mut offset = 0;
        while offset < len {
            let (v, p, left) = (virt + offset, physical + offset, len - offset);
            let size = [PageSize::Size1G, PageSize::Size2M, PageSize::Size4K]
                .into_iter()
                .find(|size| {
                    v.is_multiple_of(size.bytes())
                        && p.is_multiple_of(size.bytes())
                        && left >= size.bytes()
                })
                .unwrap_or(PageSize::Size4K);
            self.map(memory, v, p, size, permissions)?;
            offset += size.bytes();
        }
        Ok(())
    }

    /// The table and index of the level-`level` entry for `virt`, creating the tables
    /// above it.
    fn slot(
        &self,
        memory: &mut impl TableMemory,
        virt: usize,
        level: usize,
    ) -> Result<(usize, usize), MapError> {
        let mut table = self.root;
        for current in (level + 1..LEVELS).rev() {
            let slot = index(virt, current);
            let entry = memory.read(table, slot);
            table = if entry.is_table() {
                entry.address()
            } else if entry.is_leaf() {
                return Err(MapError::Superpage);
            } else {
                let next = memory.allocate_table().ok_or(MapError::OutOfMemory)?;
                memory.write(table, slot, Pte::table(next));
                next
            };
        }
        Ok((table, index(virt, level)))
    }

    /// Writes the level-0 entry of the 4 KiB page at `virt`, creating tables as needed,
    /// and returns the entry it replaced.
    ///
    /// # Errors
    /// [`MapError::Misaligned`], [`MapError::Superpage`] when a larger page covers `virt`,
    /// [`MapError::OutOfMemory`].
    pub fn set_entry(
        &self,
        memory: &mut impl TableMemory,
        virt: usize,
        entry: Pte,
    ) -> Result<Pte, MapError> {
        if !virt.is_multiple_of(PAGE_SIZE) || virt >= LOWER_HALF_END {
            return Err(MapError::Misaligned);
        }
        let (table, slot) = self.slot(memory, virt, 0)?;
        let old = memory.read(table, slot);
        memory.write(table, slot, entry);
        Ok(old)
    }

    /// Makes the page at `virt` a 4 KiB page of its own: a 1 GiB or 2 MiB leaf covering it
    /// is replaced by a table of smaller leaves mapping the same frames with the same
    /// permissions, down to level 0. The translations stay the same, so cached ones need
    /// no flush until one of the pages changes (flushing its address drops the cached
    /// superpage too). Nothing happens when no leaf covers `virt` or it is 4 KiB already.
    ///
    /// # Errors
    /// [`MapError::Misaligned`] outside the lower half, [`MapError::OutOfMemory`] when a
    /// table cannot be had (the translations are unchanged then).
    pub fn split(&self, memory: &mut impl TableMemory, virt: usize) -> Result<(), MapError> {
        if virt >= LOWER_HALF_END {
            return Err(MapError::Misaligned);
        }
        let mut table = self.root;
        for level in (1..LEVELS).rev() {
            let slot = index(virt, level);
            let entry = memory.read(table, slot);
            if entry.is_leaf() {
                let child = memory.allocate_table().ok_or(MapError::OutOfMemory)?;
                let step = span(level - 1);
                for (index, address) in (entry.address()..).step_by(step).take(ENTRIES).enumerate()
                {
                    memory.write(
                        child,
                        index,
                        Pte((entry.0 & !Pte::PPN_MASK) | Pte::encode_ppn(address)),
                    );
                }
                memory.write(table, slot, Pte::table(child));
                table = child;
            } else if entry.is_table() {
                table = entry.address();
            } else {
                return Ok(());
            }
        }
        Ok(())
    }

    /// The leaf covering `virt`: a valid leaf of any size, or a non-empty invalid level-0
    /// entry; `None` when nothing is there.
    pub fn lookup(&self, memory: &impl TableMemory, virt: usize) -> Option<Leaf> {
        if virt >= LOWER_HALF_END {
            return None;
        }
        let mut table = self.root;
        for level in (0..LEVELS).rev() {
            let entry = memory.read(table, index(virt, level));
            if entry.is_leaf() {
                return (level < LEVELS - 1).then_some(Leaf {
                    entry,
                    size: PageSize::of_level(level),
                });
            }
            if level == 0 {
                return (entry != Pte::EMPTY).then_some(Leaf {
                    entry,
                    size: PageSize::Size4K,
                });
            }
            if !entry.is_table() {
                return None;
            }
            table = entry.address();
        }
        None
    }

    /// The physical address `virt` translates to through a valid leaf.
    pub fn translate(&self, memory: &impl TableMemory, virt: usize) -> Option<usize> {
        let leaf = self.lookup(memory, virt)?;
        leaf.entry
            .is_valid()
            .then(|| leaf.entry.address() + (virt & (leaf.size.bytes() - 1)))
    }

    /// Calls `change(memory, virt, entry)` for every non-empty level-0 entry of the 4 KiB
    /// pages in `[start, end)` and stores what it returns. Subtrees with nothing mapped are
    /// skipped, so the cost follows what is mapped, not the size of the range. Tables that
    /// end up holding only empty entries are freed when `prune` is set (the root never is).
    ///
    /// `change` may change other mappings through `memory` (the walk keeps no entry of
    /// them), but not those of `[start, end)`.
    ///
    /// # Errors
    /// [`MapError::Misaligned`] for unaligned bounds, [`MapError::Superpage`] when a
    /// larger page lies in the range (entries before it may have been changed).
    pub fn update_range<M: TableMemory>(
        &self,
        memory: &mut M,
        start: usize,
        end: usize,
        prune: bool,
        change: &mut impl FnMut(&mut M, usize, Pte) -> Pte,
    ) -> Result<(), MapError> {
        if !start.is_multiple_of(PAGE_SIZE)
            || !end.is_multiple_of(PAGE_SIZE)
            || end > LOWER_HALF_END
            || start > end
        {
            return Err(MapError::Misaligned);
        }
        update_table(memory, self.root, LEVELS - 1, start, end, prune, change).map(drop)
    }
}

/// [`PageTable::update_range`] within the level-`level` table at `table`, which covers
/// `[start, end)` at least; returns whether the table holds only empty entries afterwards.
fn update_table<M: TableMemory>(
    memory: &mut M,
    table: usize,
    level: usize,
    start: usize,
    end: usize,
    prune: bool,
    change: &mut impl FnMut(&mut M, usize, Pte) -> Pte,
) -> Result<bool, MapError> {
    let mut virt = start;
    while virt < end {
        let slot = index(virt, level);
        let chunk_end = next_boundary(virt, level).min(end);
        let entry = memory.read(table, slot);
        if level == 0 {
            if entry != Pte::EMPTY {
                let new = change(memory, virt, entry);
                memory.write(table, slot, new);
            }
        } else if entry.is_leaf() {
            return Err(MapError::Superpage);
        } else if entry.is_table() {
            let child = entry.address();
            let empty = update_table(memory, child, level - 1, virt, chunk_end, prune, change)?;
            if empty && prune {
                memory.write(table, slot, Pte::EMPTY);
                memory.free_table(child);
            }
        }
        virt = chunk_end;
    }
    Ok((0..ENTRIES).all(|slot| memory.read(table, slot) == Pte::EMPTY))
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use super::*;

    /// Page tables in host memory: frames at fake physical addresses.
    #[derive(Default)]
    struct FakeMemory {
        tables: HashMap<usize, Box<[Pte; ENTRIES]>>,
        next: usize,
        /// Fail allocations once this many tables are live.
        limit: Option<usize>,
    }

    impl FakeMemory {
        fn new() -> Self {
            Self {
                next: 0x1000_0000,
                ..Self::default()
            }
        }
    }

    impl TableMemory for FakeMemory {
        fn read(&self, table: usize, index: usize) -> Pte {
            self.tables[&table][index]
        }

        fn write(&mut self, table: usize, index: usize, entry: Pte) {
            self.tables.get_mut(&table).expect("a live table")[index] = entry;
        }

        fn allocate_table(&mut self) -> Option<usize> {
            if self.limit.is_some_and(|limit| self.tables.len() >= limit) {
                return None;
            }
            let frame = self.next;
            self.next += PAGE_SIZE;
            self.tables.insert(frame, Box::new([Pte::EMPTY; ENTRIES]));
            Some(frame)
        }

        fn free_table(&mut self, table: usize) {
            let freed = self.tables.remove(&table).expect("freeing a live table");
            assert!(freed.iter().all(|entry| *entry == Pte::EMPTY));
        }
    }

    const RW: u64 = Pte::R | Pte::W;

    #[test]
    fn entry_encoding_matches_the_specification() {
        let leaf = Pte::leaf(0x8020_3000, Pte::R | Pte::X);
        // PPN 0x80203 at bit 10, then D A G X R V.
        assert_eq!(leaf.0, (0x80203 << 10) | 0b1110_1011);
        assert!(leaf.is_leaf() && !leaf.is_table() && leaf.has_frame());
        assert_eq!(leaf.address(), 0x8020_3000);
        let table = Pte::table(0x8765_4000);
        assert_eq!(table.0, (0x87654 << 10) | 1);
        assert!(table.is_table() && !table.is_leaf() && !table.has_frame());
        let parked = Pte::backed_without_access(0x9000_0000);
        assert!(!parked.is_valid() && parked.has_frame());
        assert_eq!(parked.address(), 0x9000_0000);
        assert_eq!(satp(0x8040_0000), (9 << 60) | 0x80400);
        // The largest physical address Sv48 can name (56 bits).
        let top = (1usize << 56) - PAGE_SIZE;
        assert_eq!(Pte::leaf(top, Pte::R).address(), top);
    }

    #[test]
    fn maps_and_translates_every_page_size() {
        let mut memory = FakeMemory::new();
        let table = PageTable::new(&mut memory).unwrap();
        table
            .map(&mut memory, 0x4000_0000, 0x8000_0000, PageSize::Size1G, RW)
            .unwrap();
        table
            .map(
                &mut memory,
                0x20_0000,
                0x8020_0000,
                PageSize::Size2M,
                Pte::R,
            )
            .unwrap();
        table
            .map(
                &mut memory,
                0x7fff_ffff_f000,
                0x1000,
                PageSize::Size4K,
                Pte::X | Pte::R,
            )
            .unwrap();
        assert_eq!(table.translate(&memory, 0x4000_0000), Some(0x8000_0000));
        assert_eq!(table.translate(&memory, 0x7fff_ffff), Some(0xbfff_ffff));
        assert_eq!(table.translate(&memory, 0x3f_fff8), Some(0x803f_fff8));
        assert_eq!(table.translate(&memory, 0x7fff_ffff_f123), Some(0x1123));
        assert_eq!(table.translate(&memory, 0x40_0000), None);
        assert_eq!(table.translate(&memory, LOWER_HALF_END), None);
        let leaf = table.lookup(&memory, 0x4123_4567).unwrap();
        assert_eq!(leaf.size, PageSize::Size1G);
        assert_eq!(leaf.entry.permissions(), RW);
    }

    #[test]
    fn refuses_overlaps_and_misalignment() {
        let mut memory = FakeMemory::new();
        let table = PageTable::new(&mut memory).unwrap();
        table
            .map(&mut memory, 0x20_0000, 0x20_0000, PageSize::Size2M, RW)
            .unwrap();
        let map =
            |memory: &mut FakeMemory, virt, size| table.map(memory, virt, 0x1_0000_0000, size, RW);
        assert_eq!(
            map(&mut memory, 0x20_0000, PageSize::Size2M),
            Err(MapError::AlreadyMapped)
        );
        assert_eq!(
            map(&mut memory, 0x20_1000, PageSize::Size4K),
            Err(MapError::Superpage)
        );
        assert_eq!(
            map(&mut memory, 0, PageSize::Size1G),
            Err(MapError::AlreadyMapped)
        );
        assert_eq!(
            map(&mut memory, 0x1000, PageSize::Size2M),
            Err(MapError::Misaligned)
        );
        assert_eq!(
            table.map(&mut memory, 0x40_0000, 0x1000, PageSize::Size2M, RW),
            Err(MapError::Misaligned)
        );
        assert_eq!(
            map(&mut memory, LOWER_HALF_END, PageSize::Size4K),
            Err(MapError::Misaligned)
        );
        assert_eq!(
            table.map(&mut memory, 0x40_0000, 0x40_0000, PageSize::Size4K, 0),
            Err(MapError::Misaligned)
        );
    }

    #[test]
    fn map_range_uses_the_largest_pages() {
        let mut memory = FakeMemory::new();
        let table = PageTable::new(&mut memory).unwrap();
        // 4 KiB up to the 2 MiB boundary, 2 MiB pages up to 1 GiB, one 1 GiB page, then
        // 2 MiB and 4 KiB again.
        let start = 0x3fe0_0000 - 0x3000;
        let len = 0x3000 + 0x20_0000 + (1 << 30) + 0x20_0000 + 0x1000;
        table.map_range(&mut memory, start, start, len, RW).unwrap();
        let sizes: Vec<PageSize> = [start, 0x3fe0_0000, 0x4000_0000, 0x8000_0000, 0x8020_0000]
            .into_iter()
            .map(|virt| table.lookup(&memory, virt).unwrap().size)
            .collect();
        use PageSize::*;
        assert_eq!(sizes, [Size4K, Size2M, Size1G, Size2M, Size4K]);
        for virt in (start..start + len).step_by(0x1_0000) {
            assert_eq!(table.translate(&memory, virt), Some(virt));
        }
        assert_eq!(table.translate(&memory, start + len), None);
        // Root, one level-2 table, two level-1 tables, two level-0 tables.
        assert_eq!(memory.tables.len(), 6);
    }

    #[test]
    fn out_of_memory_is_reported() {
        let mut memory = FakeMemory::new();
        let table = PageTable::new(&mut memory).unwrap();
        memory.limit = Some(2);
        assert_eq!(
            table.map(&mut memory, 0x1000, 0x1000, PageSize::Size4K, RW),
            Err(MapError::OutOfMemory)
        );
    }

    #[test]
    fn update_range_visits_only_what_is_mapped_and_prunes() {
        let mut memory = FakeMemory::new();
        let table = PageTable::new(&mut memory).unwrap();
        let base = 0x1000_0000_0000;
        for page in [0, 1, 511, 512, 262_144] {
            let virt = base + page * PAGE_SIZE;
            table
                .set_entry(&mut memory, virt, Pte::leaf(page * PAGE_SIZE, RW))
                .unwrap();
        }
        let parked = base + 3 * PAGE_SIZE;
        table
            .set_entry(&mut memory, parked, Pte::backed_without_access(0x5000))
            .unwrap();
        // Read-only over the first 512 pages: five entries are visited.
        let mut visited = Vec::new();
        table
            .update_range(
                &mut memory,
                base,
                base + 512 * PAGE_SIZE,
                false,
                &mut |_, virt, entry| {
                    visited.push(virt);
                    if entry.is_valid() {
                        Pte::leaf(entry.address(), Pte::R)
                    } else {
                        entry
                    }
                },
            )
            .unwrap();
        assert_eq!(
            visited,
            [base, base + 0x1000, base + 0x3000, base + 511 * 0x1000]
        );
        assert_eq!(
            table.lookup(&memory, base).unwrap().entry.permissions(),
            Pte::R
        );
        assert_eq!(
            table
                .lookup(&memory, base + 512 * PAGE_SIZE)
                .unwrap()
                .entry
                .permissions(),
            RW
        );
        // Unmapping a whole 8 GiB range (as a released linear memory) frees every table
        // but the root.
        table
            .update_range(&mut memory, base, base + (8 << 30), true, &mut |_, _, _| {
                Pte::EMPTY
            })
            .unwrap();
        assert_eq!(memory.tables.len(), 1);
        assert_eq!(table.lookup(&memory, base), None);
    }

    #[test]
    fn update_range_stops_at_superpages() {
        let mut memory = FakeMemory::new();
        let table = PageTable::new(&mut memory).unwrap();
        table
            .map(&mut memory, 0x20_0000, 0, PageSize::Size2M, RW)
            .unwrap();
        assert_eq!(
            table.update_range(&mut memory, 0, 0x40_0000, true, &mut |_, _, entry| entry),
            Err(MapError::Superpage)
        );
        assert_eq!(
            table.set_entry(&mut memory, 0x20_0000, Pte::EMPTY),
            Err(MapError::Superpage)
        );
    }

    #[test]
    fn split_keeps_every_translation() {
        let mut memory = FakeMemory::new();
        let table = PageTable::new(&mut memory).unwrap();
        let (virt, physical) = (0x4000_0000, 0x1_8000_0000);
        table
            .map(&mut memory, virt, physical, PageSize::Size1G, RW)
            .unwrap();
        table
            .map(&mut memory, 0x20_0000, 0x60_0000, PageSize::Size2M, Pte::R)
            .unwrap();
        let target = virt + 0x1234_5000;
        table.split(&mut memory, target).unwrap();
        assert_eq!(
            table.lookup(&memory, target).unwrap().size,
            PageSize::Size4K
        );
        // The rest of the gigapage: 2 MiB pages, except the 2 MiB holding `target`.
        assert_eq!(table.lookup(&memory, virt).unwrap().size, PageSize::Size2M);
        assert_eq!(
            table.lookup(&memory, target + 0x1000).unwrap().size,
            PageSize::Size4K
        );
        for offset in (0..1 << 30).step_by(0x3_3000) {
            assert_eq!(
                table.translate(&memory, virt + offset),
                Some(physical + offset)
            );
            assert_eq!(
                table
                    .lookup(&memory, virt + offset)
                    .unwrap()
                    .entry
                    .permissions(),
                RW
            );
        }
        table.split(&mut memory, 0x20_0000).unwrap();
        assert_eq!(table.translate(&memory, 0x3f_f000), Some(0x7f_f000));
        assert_eq!(
            table
                .lookup(&memory, 0x3f_f000)
                .unwrap()
                .entry
                .permissions(),
            Pte::R
        );
        // Once split, a page can change alone.
        table
            .set_entry(
                &mut memory,
                target,
                Pte::leaf(physical + 0x1234_5000, Pte::R),
            )
            .unwrap();
        assert_eq!(
            table
                .lookup(&memory, target + 0x1000)
                .unwrap()
                .entry
                .permissions(),
            RW
        );
        // Nothing mapped, or 4 KiB already: nothing to do.
        let tables = memory.tables.len();
        table.split(&mut memory, 0x7000_0000_0000).unwrap();
        table.split(&mut memory, target).unwrap();
        assert_eq!(memory.tables.len(), tables);
    }

    /// A xorshift generator for the model check.
    struct Random(u64);

    impl Random {
        fn below(&mut self, bound: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % bound as u64) as usize
        }
    }

    /// Random page writes and range updates against a map from page to entry.
    #[test]
    fn matches_a_page_model() {
        let mut memory = FakeMemory::new();
        let table = PageTable::new(&mut memory).unwrap();
        let mut model: BTreeMap<usize, Pte> = BTreeMap::new();
        let mut random = Random(0x2545_f491_4f6c_dd1d);
        // Pages spread over two 1 GiB regions, so that tables are shared and pruned.
        let page_address = |page: usize| {
            let region = if page.is_multiple_of(2) {
                0x2000_0000_0000
            } else {
                0x2000_4000_0000
            };
            region + (page / 2) * PAGE_SIZE * 37 % (1 << 30)
        };
        for round in 0..4000 {
            match random.below(3) {
                0 | 1 => {
                    let virt = page_address(random.below(3000));
                    let entry = match random.below(3) {
                        0 => Pte::EMPTY,
                        1 => Pte::backed_without_access(round * PAGE_SIZE),
                        _ => Pte::leaf(round * PAGE_SIZE, RW),
                    };
                    table.set_entry(&mut memory, virt, entry).unwrap();
                    if entry == Pte::EMPTY {
                        model.remove(&virt);
                    } else {
                        model.insert(virt, entry);
                    }
                }
                _ => {
                    let a = page_address(random.below(3000));
                    let b = page_address(random.below(3000));
                    let (start, end) = (a.min(b), a.max(b) + PAGE_SIZE);
                    let clear = random.below(2) == 0;
                    table
                        .update_range(&mut memory, start, end, true, &mut |_, _, entry| {
                            if clear {
                                Pte::EMPTY
                            } else {
                                Pte(entry.0 ^ Pte::W)
                            }
                        })
                        .unwrap();
                    let keys: Vec<usize> = model.range(start..end).map(|(k, _)| *k).collect();
                    for key in keys {
                        if clear {
                            model.remove(&key);
                        } else {
                            let entry = model[&key];
                            model.insert(key, Pte(entry.0 ^ Pte::W));
                        }
                    }
                }
            }
        }
        for page in 0..3000 {
            let virt = page_address(page);
            assert_eq!(
                table.lookup(&memory, virt).map(|leaf| leaf.entry),
                model.get(&virt).copied(),
                "page {virt:#x}"
            );
        }
        // Clearing everything leaves only the root.
        table
            .update_range(
                &mut memory,
                0x2000_0000_0000,
                0x2000_8000_0000,
                true,
                &mut |_, _, _| Pte::EMPTY,
            )
            .unwrap();
        assert_eq!(memory.tables.len(), 1);
    }
}
