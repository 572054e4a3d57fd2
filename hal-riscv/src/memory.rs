//! The kernel's address space: Sv48 page tables, the frame allocator, the heap area, and
//! the reservations behind `VirtualMemory`, backed on demand.
//!
//! # Layout (the lower half of Sv48, 128 TiB)
//!
//! | range                                    | what                                         |
//! |------------------------------------------|----------------------------------------------|
//! | identity (physical = virtual)            | the MMIO pages the kernel drives (UART, `sifive_test`), the kernel image (text RX, rodata R, data and bss RW, the boot stack's guard page unmapped) and the rest of RAM read+write: the direct map through which page tables and frames are reached |
//! | [`HEAP_BASE`], up to [`HEAP_LIMIT`]      | the kernel heap, grown a chunk at a time      |
//! | [`RESERVATION_BASE`]..[`RESERVATION_END`] | `VirtualMemory::reserve` (linear memories, code, stacks) |
//!
//! No page is ever writable and executable: W^X holds for the image, the direct map is
//! never executable, and code in reservations is written read+write and then published
//! read+execute. It holds for frames too: while a frame backs a page of code, its alias in
//! the direct map is read-only (the direct map's superpage around it is split into 4 KiB
//! pages for that). The firmware's own RAM (OpenSBI, from the device tree's reserved
//! regions) is not mapped at all.
//!
//! # Demand paging
//!
//! `commit` only records the protection ([`Reservations`]); the page table is not
//! touched. The first access to a committed page faults, and the trap path calls
//! [`back_on_demand`] *before* kernel-core's trap handler: when the page is committed
//! with a protection that allows the access and has no frame yet, it takes a zeroed
//! frame, maps it and the faulting instruction is retried. Every other fault (a guard
//! page, a reserved page, an access the protection forbids) goes on to kernel-core. The
//! design brief puts demand paging in kernel-core; it lives here because kernel-core's
//! `VirtualMemory` contract (like `mmap` with `MAP_NORESERVE` hosted) already promises
//! committed pages that read as zero, which the HAL keeps by backing them when touched.
//!
//! # Locks
//!
//! [`REGIONS`] (the reservation bookkeeping, which allocates) is taken before the heap's
//! lock, which is taken before [`PAGING`] (tables and frames, which never allocates). The
//! trap path takes `REGIONS` then `PAGING`, and refuses (treating the fault as not a
//! demand fault) when the interrupted code holds either on the same CPU.

use alloc::vec::Vec;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};

use kernel_core::hal::{Access, MemoryError, MemoryKind, Protection};

use crate::arch;
use crate::cpus;
use crate::frame_allocator::FrameAllocator;
use crate::memory_map::{self, Range};
use crate::page_table::{self, MapError, PAGE_SIZE, PageTable, Pte, TableMemory};
use crate::region_allocator::RegionAllocator;
use crate::reservations::{PageState, Reservations};
use crate::sbi;
use crate::sync::SpinLock;

/// The first address of the heap area.
pub const HEAP_BASE: usize = 0x0000_0800_0000_0000;
/// The most the heap area may grow to (address space only; RAM is the real limit).
pub const HEAP_LIMIT: usize = 1 << 40;
/// The first address reservations are taken from.
pub const RESERVATION_BASE: usize = 0x0000_1000_0000_0000;
/// One past the last address reservations are taken from: 111 TiB, room for more than
/// 14 000 reservations of 8 GiB (one per 32-bit linear memory).
pub const RESERVATION_END: usize = 0x0000_7f00_0000_0000;

/// Above this many pages, a range's TLB entries are dropped all at once.
const FLUSH_ALL_THRESHOLD: usize = 64;

/// What [`init`] maps.
#[derive(Debug)]
pub struct Layout<'a> {
    /// The kernel's code: read+execute.
    pub text: Range,
    /// The kernel's constants: read-only.
    pub rodata: Range,
    /// The kernel's data and bss (boot stack and boot heap included): read+write.
    pub writable: Range,
    /// Pages inside `writable` left unmapped (the boot stack's guard page).
    pub guard_pages: &'a [Range],
    /// RAM outside the image mapped read+write at the same address (the direct map).
    pub direct_map: &'a [Range],
    /// RAM the frame allocator hands out (inside `direct_map`).
    pub usable: &'a [Range],
    /// Device registers mapped read+write.
    pub mmio: &'a [Range],
}

/// Page tables and frames: everything the trap path may need, nothing that allocates.
struct Paging {
    table: PageTable,
    frames: FrameAllocator,
    /// One past the last mapped byte of the heap area.
    heap_end: usize,
}

/// The reservation bookkeeping.
struct Regions {
    allocator: RegionAllocator,
    reservations: Reservations,
}

/// Page tables and frames, once [`init`] ran.
static PAGING: SpinLock<Option<Paging>> = SpinLock::new(None);
/// Reservations, once [`init`] ran.
static REGIONS: SpinLock<Option<Regions>> = SpinLock::new(None);
/// The `satp` value of the kernel's tables (0 before [`init`]), for harts started later.
pub static KERNEL_SATP: AtomicU64 = AtomicU64::new(0);

/// The page tables' view of physical memory: the direct map, and frames from the frame
/// allocator.
struct DirectMap<'a>(&'a mut FrameAllocator);

impl TableMemory for DirectMap<'_> {
    fn read(&self, table: usize, index: usize) -> Pte {
        // Safety: `table` is a table frame from the frame allocator (or the root), inside
        // the direct map (or, before paging is on, physical memory), and `index` is below
        // 512 (`TableMemory` contract), so the entry lies inside the frame.
        Pte(unsafe { (table as *const u64).add(index).read_volatile() })
    }

    fn write(&mut self, table: usize, index: usize, entry: Pte) {
        // Safety: as for `read`; table frames belong to the page tables alone, and the
        // `PAGING` lock serialises every access to them.
        unsafe { (table as *mut u64).add(index).write_volatile(entry.0) }
    }

    fn allocate_table(&mut self) -> Option<usize> {
        let frame = self.0.allocate()?;
        zero_frame(frame);
        Some(frame)
    }

    fn free_table(&mut self, table: usize) {
        // The page table code only frees tables it allocated.
        let _ = self.0.free(table);
    }
}

/// Fills the frame at `frame` with zeros.
fn zero_frame(frame: usize) {
    // Safety: frames come from the frame allocator, which owns them: nothing else refers
    // to a frame it hands out, and every usable frame lies in the direct map.
    unsafe { core::ptr::write_bytes(frame as *mut u8, 0, PAGE_SIZE) };
}

/// The permission bits of `protection`.
const fn permissions(protection: Protection) -> u64 {
    match protection {
        Protection::None => 0,
        Protection::Read => Pte::R,
        Protection::ReadWrite => Pte::R | Pte::W,
        Protection::ReadExecute => Pte::R | Pte::X,
    }
}

/// The entry for a page backed by `frame` with `protection`.
const fn entry_for(frame: usize, protection: Protection) -> Pte {
    match protection {
        Protection::None => Pte::backed_without_access(frame),
        _ => Pte::leaf(frame, permissions(protection)),
    }
}

/// Ranges of `range` outside `holes`, page aligned.
fn without(range: Range, holes: &[Range]) -> Vec<Range> {
    memory_map::build(&[range], holes)
        .into_iter()
        .filter(|region| region.kind == MemoryKind::Usable)
        .map(|region| Range::from_base_size(region.base, region.size))
        .collect()
}

/// Why [`init`] could not turn paging on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitError {
    /// A mapping failed (out of frames, overlapping ranges).
    Map(MapError),
    /// The hart does not implement Sv48: `satp` kept its value when Sv48 was written.
    NoSv48,
}

impl core::fmt::Display for InitError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Map(error) => write!(f, "cannot build the kernel page tables: {error:?}"),
            Self::NoSv48 => f.write_str(
                "this machine does not implement Sv48 paging (satp ignored the Sv48 mode); \
                 the kernel needs Sv48's 128 TiB address space for its 8 GiB linear-memory \
                 reservations and does not fall back to Sv39",
            ),
        }
    }
}

impl From<MapError> for InitError {
    fn from(error: MapError) -> Self {
        Self::Map(error)
    }
}

/// Builds the kernel's page tables for `layout` and turns Sv48 translation on, after
/// checking that the hart implements Sv48 (by writing `satp` and reading it back).
///
/// # Errors
/// [`InitError::Map`] when a mapping failed (out of frames, overlapping ranges),
/// [`InitError::NoSv48`] when the hart has no Sv48 (paging stays off).
///
/// # Safety
/// Call once, on the boot hart, with translation off, before any other function of this
/// module; `layout` must describe the machine: the image's sections, RAM that nothing
/// else uses (`usable`), devices. The code, stack and statics in use must lie in the
/// image or the direct map (they are mapped at the same addresses).
pub unsafe fn init(layout: &Layout<'_>) -> Result<(), InitError> {
    let mut frames = FrameAllocator::new(layout.usable);
    let mut memory = DirectMap(&mut frames);
    let table = PageTable::new(&mut memory)?;
    let identity = |memory: &mut DirectMap<'_>, range: Range, permissions: u64| {
        let range = Range::new(
            range.start & !(PAGE_SIZE - 1),
            range.end.next_multiple_of(PAGE_SIZE),
        );
        if range.is_empty() {
            return Ok(());
        }
        table.map_range(
            memory,
            range.start,
            range.start,
            range.end - range.start,
            permissions,
        )
    };
    identity(&mut memory, layout.text, Pte::R | Pte::X)?;
    identity(&mut memory, layout.rodata, Pte::R)?;
    for range in without(layout.writable, layout.guard_pages) {
        identity(&mut memory, range, Pte::R | Pte::W)?;
    }
    for &range in layout.direct_map.iter().chain(layout.mmio) {
        identity(&mut memory, range, Pte::R | Pte::W)?;
    }
    let satp = page_table::satp(table.root());
    // Safety: the tables map the image and the direct map at their physical addresses
    // (this function's contract), so execution continues undisturbed; on a hart without
    // Sv48 the write has no effect and translation stays off.
    unsafe { arch::write_satp(satp) };
    if arch::read_satp() != satp {
        return Err(InitError::NoSv48);
    }
    KERNEL_SATP.store(satp, Ordering::Release);
    *PAGING.lock() = Some(Paging {
        table,
        frames,
        heap_end: HEAP_BASE,
    });
    *REGIONS.lock() = Some(Regions {
        allocator: RegionAllocator::new(RESERVATION_BASE, RESERVATION_END),
        reservations: Reservations::new(),
    });
    Ok(())
}

/// The frame `address` is mapped to and the permission bits of the mapping (R, W, X of
/// [`Pte`]), if a valid mapping covers it: for self-checks.
pub fn mapping(address: usize) -> Option<(usize, u64)> {
    let mut paging = PAGING.lock();
    let Paging { table, frames, .. } = paging.as_mut()?;
    let memory = DirectMap(frames);
    let leaf = table.lookup(&memory, address)?;
    let physical = table.translate(&memory, address)?;
    Some((physical, leaf.entry.permissions()))
}

/// Frames free and frames in all, for reports (`(0, 0)` before [`init`]).
pub fn frame_counts() -> (usize, usize) {
    PAGING.lock().as_ref().map_or((0, 0), |paging| {
        (paging.frames.free_frames(), paging.frames.total_frames())
    })
}

/// Drops every hart's cached translations of `pages` pages at `start`.
fn flush(start: usize, pages: usize) {
    if pages == 0 {
        return;
    }
    if pages > FLUSH_ALL_THRESHOLD {
        arch::flush_tlb();
    } else {
        for page in 0..pages {
            arch::flush_tlb_page(start + page * PAGE_SIZE);
        }
    }
    if cpus::other_harts_running() {
        // The firmware implements remote fences on every hart QEMU offers; should it
        // refuse, there is no other way to reach the other harts' TLBs.
        let _ = sbi::remote_sfence_vma(start, pages * PAGE_SIZE);
    }
}

/// Checks that `addr`/`len` are page aligned, non-empty and do not wrap.
fn check_range(addr: usize, len: usize) -> Result<(), MemoryError> {
    if len == 0
        || !addr.is_multiple_of(PAGE_SIZE)
        || !len.is_multiple_of(PAGE_SIZE)
        || addr.checked_add(len).is_none()
    {
        return Err(MemoryError::Misaligned);
    }
    Ok(())
}

/// Rewrites the entries of every backed page in `[addr, addr + len)` with `change`
/// (which gets the old entry and returns the new one, or `None` to unmap it and free its
/// frame), then flushes the TLBs of the pages whose entry was valid.
fn rewrite_backed(
    paging: &mut Paging,
    addr: usize,
    len: usize,
    prune: bool,
    change: impl Fn(Pte) -> Option<Pte>,
) -> Result<(), MemoryError> {
    let mut was_valid = 0;
    let mut alias_result = Ok(());
    let Paging { table, frames, .. } = paging;
    let table = *table;
    let mut memory = DirectMap(frames);
    let mut to_free = FreeList::default();
    table
        .update_range(
            &mut memory,
            addr,
            addr + len,
            prune,
            &mut |memory, _, entry: Pte| {
                was_valid += usize::from(entry.is_valid());
                let new = change(entry).unwrap_or(Pte::EMPTY);
                if is_code(entry) != is_code(new) {
                    // The frame becomes code (its alias turns read-only first) or stops
                    // being code (its alias turns writable again, before the frame is
                    // freed and reused).
                    let result = set_alias(table, memory, entry.address(), !is_code(new));
                    alias_result = alias_result.and(result);
                }
                if new == Pte::EMPTY && entry.has_frame() {
                    to_free.push(entry.address());
                }
                new
            },
        )
        // Reservations hold 4 KiB pages only: a superpage here is a kernel bug.
        .map_err(|_| MemoryError::Platform(-1))?;
    // No hart may still reach a frame through a stale translation once it is free.
    if was_valid > 0 {
        flush(addr, len / PAGE_SIZE);
    }
    to_free.drain(frames);
    alias_result
}

/// Whether `entry` maps a page of code.
const fn is_code(entry: Pte) -> bool {
    entry.is_leaf() && entry.0 & Pte::X != 0
}

/// Sets the direct map's alias of `frame`: read+write normally, read-only while the frame
/// backs a page of code, so that no code is writable through any mapping (W^X holds for
/// frames, not only for pages). Splits the direct map's superpage around the frame the
/// first time.
fn set_alias(
    table: PageTable,
    memory: &mut DirectMap<'_>,
    frame: usize,
    writable: bool,
) -> Result<(), MemoryError> {
    table
        .split(memory, frame)
        .map_err(|_| MemoryError::OutOfMemory)?;
    let permissions = if writable { Pte::R | Pte::W } else { Pte::R };
    table
        .set_entry(memory, frame, Pte::leaf(frame, permissions))
        .map_err(|_| MemoryError::OutOfMemory)?;
    flush(frame, 1);
    Ok(())
}

/// Frames to give back after a page table walk, chained through the frames themselves
/// (no allocation: the walk runs with the `PAGING` lock held).
#[derive(Default)]
struct FreeList {
    head: Option<usize>,
}

impl FreeList {
    fn push(&mut self, frame: usize) {
        // Safety: the frame was just unmapped from a reservation and is owned by the frame
        // allocator's caller until freed; it lies in the direct map, and its first word is
        // used as the link.
        unsafe { (frame as *mut usize).write(self.head.unwrap_or(0)) };
        self.head = Some(frame);
    }

    fn drain(&mut self, frames: &mut FrameAllocator) {
        while let Some(frame) = self.head {
            // Safety: written by `push` above.
            let next = unsafe { (frame as *const usize).read() };
            self.head = (next != 0).then_some(next);
            // The frame came out of a page table entry, so the allocator handed it out.
            let _ = frames.free(frame);
        }
    }
}

/// `VirtualMemory::reserve`.
pub fn reserve(len: usize) -> Result<NonNull<u8>, MemoryError> {
    check_range(0, len)?;
    let mut regions = REGIONS.lock();
    let regions = regions.as_mut().ok_or(MemoryError::OutOfMemory)?;
    let start = regions
        .allocator
        .allocate(len, PAGE_SIZE)
        .ok_or(MemoryError::OutOfMemory)?;
    if regions.reservations.insert(start, len).is_err() {
        // The allocator never hands out a range twice: the bookkeeping disagrees with it.
        let _ = regions.allocator.release(start, len);
        return Err(MemoryError::Platform(-1));
    }
    NonNull::new(start as *mut u8).ok_or(MemoryError::OutOfMemory)
}

/// `VirtualMemory::commit`: records the protection; pages are backed when touched.
/// Frames the range held already are dropped, so every page reads as zero.
pub fn commit(addr: usize, len: usize, protection: Protection) -> Result<(), MemoryError> {
    check_range(addr, len)?;
    let mut regions = REGIONS.lock();
    let regions = regions.as_mut().ok_or(MemoryError::NotReserved)?;
    if !regions.reservations.contains(addr, len) {
        return Err(MemoryError::NotReserved);
    }
    {
        let mut paging = PAGING.lock();
        let paging = paging.as_mut().ok_or(MemoryError::NotReserved)?;
        rewrite_backed(paging, addr, len, false, |_| None)?;
    }
    regions
        .reservations
        .set(addr, len, Some(protection))
        .map_err(|_| MemoryError::NotReserved)
}

/// `VirtualMemory::protect`: changes the recorded protection and that of the pages
/// backed already (keeping their frames).
pub fn protect(addr: usize, len: usize, protection: Protection) -> Result<(), MemoryError> {
    check_range(addr, len)?;
    let mut regions = REGIONS.lock();
    let regions = regions.as_mut().ok_or(MemoryError::NotReserved)?;
    regions
        .reservations
        .set(addr, len, Some(protection))
        .map_err(|_| MemoryError::NotReserved)?;
    let mut paging = PAGING.lock();
    let paging = paging.as_mut().ok_or(MemoryError::NotReserved)?;
    rewrite_backed(paging, addr, len, false, |entry| {
        Some(entry_for(entry.address(), protection))
    })
}

/// `VirtualMemory::decommit`: frees the frames, the pages become reserved only.
pub fn decommit(addr: usize, len: usize) -> Result<(), MemoryError> {
    check_range(addr, len)?;
    let mut regions = REGIONS.lock();
    let regions = regions.as_mut().ok_or(MemoryError::NotReserved)?;
    regions
        .reservations
        .set(addr, len, None)
        .map_err(|_| MemoryError::NotReserved)?;
    let mut paging = PAGING.lock();
    let paging = paging.as_mut().ok_or(MemoryError::NotReserved)?;
    rewrite_backed(paging, addr, len, true, |_| None)
}

/// `VirtualMemory::release`: frees the frames and the page tables of the reservation,
/// and gives its address range back for reuse.
pub fn release(addr: usize, len: usize) -> Result<(), MemoryError> {
    check_range(addr, len)?;
    let mut regions = REGIONS.lock();
    let regions = regions.as_mut().ok_or(MemoryError::NotReserved)?;
    regions
        .reservations
        .remove(addr, len)
        .map_err(|_| MemoryError::NotReserved)?;
    {
        let mut paging = PAGING.lock();
        let paging = paging.as_mut().ok_or(MemoryError::NotReserved)?;
        rewrite_backed(paging, addr, len, true, |_| None)?;
    }
    regions
        .allocator
        .release(addr, len)
        .map_err(|_| MemoryError::Platform(-1))
}

/// `VirtualMemory::publish_code`: read+execute, then `fence.i` on this hart and, when
/// other harts run, on them through the firmware (`protect` already flushed the TLBs).
pub fn publish_code(addr: usize, len: usize) -> Result<(), MemoryError> {
    protect(addr, len, Protection::ReadExecute)?;
    arch::fence_i();
    if cpus::other_harts_running() {
        sbi::remote_fence_i().map_err(|code| MemoryError::Platform(code as i32))?;
    }
    Ok(())
}

/// Commits `[addr, addr + len)` and backs every page at once (for memory that must never
/// fault: the trap path's own stacks, and every stack, which the memory manager itself
/// may run on). Takes the locks once for the whole range and drops cached translations
/// once at the end.
///
/// # Errors
/// [`MemoryError::Misaligned`], [`MemoryError::NotReserved`], or
/// [`MemoryError::OutOfMemory`] when the frames run out (the pages backed so far stay
/// committed and backed; releasing the reservation frees them).
pub fn populate(addr: usize, len: usize, protection: Protection) -> Result<(), MemoryError> {
    commit(addr, len, protection)?;
    let regions = REGIONS.lock();
    let regions = regions.as_ref().ok_or(MemoryError::NotReserved)?;
    let mut paging = PAGING.lock();
    let paging = paging.as_mut().ok_or(MemoryError::NotReserved)?;
    let Paging { table, frames, .. } = paging;
    let mut result = Ok(());
    let mut backed = 0;
    for page in (addr..addr + len).step_by(PAGE_SIZE) {
        // `commit` just recorded the range; a concurrent change of it is the caller's bug.
        if regions.reservations.state(page) != PageState::Committed(protection) {
            result = Err(MemoryError::NotReserved);
            break;
        }
        if table.lookup(&DirectMap(frames), page).is_some() {
            continue;
        }
        let Some(frame) = frames.allocate() else {
            result = Err(MemoryError::OutOfMemory);
            break;
        };
        zero_frame(frame);
        let entry = entry_for(frame, protection);
        if is_code(entry) && set_alias(*table, &mut DirectMap(frames), frame, false).is_err() {
            let _ = frames.free(frame);
            result = Err(MemoryError::OutOfMemory);
            break;
        }
        if table
            .set_entry(&mut DirectMap(frames), page, entry)
            .is_err()
        {
            if is_code(entry) {
                // Splitting succeeded above: making the alias writable again cannot fail.
                let _ = set_alias(*table, &mut DirectMap(frames), frame, true);
            }
            let _ = frames.free(frame);
            result = Err(MemoryError::OutOfMemory);
            break;
        }
        backed += 1;
    }
    // The entries were empty: only translations cached as invalid need dropping.
    if backed > 0 {
        flush(addr, len / PAGE_SIZE);
    }
    result
}

/// What [`back_on_demand`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemandOutcome {
    /// The page was committed and unbacked: it is backed now; retry the access.
    Backed,
    /// Not a demand fault (unreserved, not committed, already backed, or an access the
    /// protection forbids): kernel-core decides.
    NotDemand,
    /// The page should be backed but no frame is left.
    OutOfMemory,
    /// The interrupted code holds the memory locks on this CPU (a fault inside the memory
    /// code itself, a kernel bug).
    Busy,
}

/// The demand fault path: backs the page holding `address` when it is committed with a
/// protection allowing `access` and has no frame yet. Runs on the trap path: takes the
/// locks only when no code on this CPU holds them, and never allocates from the heap.
pub fn back_on_demand(address: usize, access: Access) -> DemandOutcome {
    if !(RESERVATION_BASE..RESERVATION_END).contains(&address) {
        return DemandOutcome::NotDemand;
    }
    back_page(address & !(PAGE_SIZE - 1), Some(access))
}

/// Backs the page at `page` if it is committed (with a protection allowing `access`,
/// when given) and has no frame.
fn back_page(page: usize, access: Option<Access>) -> DemandOutcome {
    let Some(regions) = REGIONS.try_lock_from_trap() else {
        return DemandOutcome::Busy;
    };
    let Some(regions) = regions.as_ref() else {
        return DemandOutcome::NotDemand;
    };
    let PageState::Committed(protection) = regions.reservations.state(page) else {
        return DemandOutcome::NotDemand;
    };
    let allowed = match (access, protection) {
        (_, Protection::None) => access.is_none(),
        (None | Some(Access::Read | Access::Unknown), _) => true,
        (Some(Access::Write), Protection::ReadWrite) => true,
        (Some(Access::Execute), Protection::ReadExecute) => true,
        (Some(Access::Write | Access::Execute), _) => false,
    };
    if !allowed {
        return DemandOutcome::NotDemand;
    }
    let Some(mut paging) = PAGING.try_lock_from_trap() else {
        return DemandOutcome::Busy;
    };
    let Some(paging) = paging.as_mut() else {
        return DemandOutcome::NotDemand;
    };
    let Paging { table, frames, .. } = paging;
    if table.lookup(&DirectMap(frames), page).is_some() {
        return DemandOutcome::NotDemand;
    }
    let Some(frame) = frames.allocate() else {
        return DemandOutcome::OutOfMemory;
    };
    zero_frame(frame);
    let entry = entry_for(frame, protection);
    if is_code(entry) && set_alias(*table, &mut DirectMap(frames), frame, false).is_err() {
        let _ = frames.free(frame);
        return DemandOutcome::OutOfMemory;
    }
    match table.set_entry(&mut DirectMap(frames), page, entry) {
        Ok(_) => {
            // The entry was empty: only translations cached as invalid need dropping.
            arch::flush_tlb_page(page);
            DemandOutcome::Backed
        }
        Err(_) => {
            if is_code(entry) {
                // Splitting succeeded above: making the alias writable again cannot fail.
                let _ = set_alias(*table, &mut DirectMap(frames), frame, true);
            }
            let _ = frames.free(frame);
            DemandOutcome::OutOfMemory
        }
    }
}

/// Maps `len` more bytes (a page multiple) of fresh frames read+write at the end of the
/// heap area and returns where they start; `None` when frames or the area run out, or
/// before [`init`]. Never allocates from the heap (it is what the heap calls when full).
pub fn grow_heap(len: usize) -> Option<usize> {
    if len == 0 || !len.is_multiple_of(PAGE_SIZE) {
        return None;
    }
    let mut paging = PAGING.try_lock_from_trap()?;
    let paging = paging.as_mut()?;
    let start = paging.heap_end;
    let end = start.checked_add(len)?;
    let pages = len / PAGE_SIZE;
    // Every page, plus the tables a run of them can need: one level-0 table per 512
    // pages and a few above. Checked first, so that the mapping cannot fail half-way.
    let tables = pages.div_ceil(512) + 3;
    if end > HEAP_BASE + HEAP_LIMIT || paging.frames.free_frames() < pages + tables {
        return None;
    }
    let Paging { table, frames, .. } = paging;
    for page in (start..end).step_by(PAGE_SIZE) {
        let frame = frames.allocate()?;
        table
            .set_entry(
                &mut DirectMap(frames),
                page,
                Pte::leaf(frame, Pte::R | Pte::W),
            )
            .ok()?;
    }
    paging.heap_end = end;
    // The entries were empty: only translations cached as invalid need dropping.
    flush(start, pages);
    Some(start)
}
