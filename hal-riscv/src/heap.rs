//! The kernel heap: the global allocator, over a small static boot heap first and then
//! over the heap area of the address space, which grows by mapping fresh frames.
//!
//! The boot heap ([`BOOT_HEAP_SIZE`] bytes in `.bss`) serves the allocations made before
//! paging is on (reading the device tree, the frame allocator's bitmap). Once
//! [`crate::memory::init`] ran, a request the heaps cannot serve grows the main heap at
//! [`crate::memory::HEAP_BASE`] by at least [`GROWTH_STEP`] bytes
//! ([`crate::memory::grow_heap`]) and is retried: the heap is limited by RAM, not by a
//! size fixed at build time. Both heaps are `linked_list_allocator` heaps under one lock;
//! a block is given back to the heap whose range holds it.
//!
//! Small blocks (at most [`LARGEST_CLASS`] bytes, alignment included) do not go through the
//! linked lists: they come from per-size free lists ([`SizeClasses`]), refilled a chunk at
//! a time from the heaps. A linked-list heap finds a block by walking its free list, so
//! with many small blocks freed and kept in between (loading a module with 100 000
//! imports) every allocation walked thousands of fragments and loading became quadratic:
//! 20 000 imports took 7 s under QEMU, 100 000 more than 300 s. A size class is one pop
//! and one push.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::ptr::{NonNull, null_mut};

use linked_list_allocator::Heap;

use crate::memory;
use crate::page_table::PAGE_SIZE;
use crate::sync::SpinLock;

/// The size of the boot heap.
pub const BOOT_HEAP_SIZE: usize = 4 * 1024 * 1024;

/// The smallest amount the main heap grows by.
pub const GROWTH_STEP: usize = 8 * 1024 * 1024;

/// The largest block the size classes serve; larger ones go to the heaps directly.
pub const LARGEST_CLASS: usize = 2048;

/// The smallest size class (it holds the free list's link).
const SMALLEST_CLASS: usize = 16;

/// How many size classes there are: 16, 32, ..., [`LARGEST_CLASS`] bytes.
const CLASSES: usize = (LARGEST_CLASS / SMALLEST_CLASS).trailing_zeros() as usize + 1;

/// The bytes a size class takes from the heaps at a time (aligned to a page, so that every
/// block in it is aligned to its own size).
const CHUNK: usize = 64 * 1024;

/// Free lists of small blocks, one per power-of-two size: each free block holds the
/// address of the next (0 ends the list).
struct SizeClasses {
    heads: [usize; CLASSES],
}

impl SizeClasses {
    /// The class serving `layout`, if it is small enough: blocks of a class are aligned to
    /// their size, so the class is the power of two at least as large as both the size and
    /// the alignment.
    fn class_of(layout: Layout) -> Option<usize> {
        let size = layout.size().max(layout.align()).max(SMALLEST_CLASS);
        if size > LARGEST_CLASS {
            return None;
        }
        let rounded = size.next_power_of_two();
        Some((rounded / SMALLEST_CLASS).trailing_zeros() as usize)
    }

    /// The block size of class `class`.
    const fn block_size(class: usize) -> usize {
        SMALLEST_CLASS << class
    }
}

/// The boot heap's memory, page aligned.
#[repr(C, align(4096))]
struct BootRegion(UnsafeCell<[MaybeUninit<u8>; BOOT_HEAP_SIZE]>);

// Safety: the region is only ever accessed through the allocator, which gets it exactly
// once (`init`, guarded by `Heaps::boot_ready`) and serialises all access with its lock.
unsafe impl Sync for BootRegion {}

/// The boot heap's memory.
static BOOT_REGION: BootRegion =
    BootRegion(UnsafeCell::new([MaybeUninit::uninit(); BOOT_HEAP_SIZE]));

/// The two heaps.
struct Heaps {
    boot: Heap,
    boot_ready: bool,
    main: Heap,
    main_ready: bool,
    classes: SizeClasses,
}

/// The global allocator.
struct KernelAllocator(SpinLock<Heaps>);

#[global_allocator]
static ALLOCATOR: KernelAllocator = KernelAllocator(SpinLock::new(Heaps {
    boot: Heap::empty(),
    boot_ready: false,
    main: Heap::empty(),
    main_ready: false,
    classes: SizeClasses {
        heads: [0; CLASSES],
    },
}));

/// Hands the boot region to the allocator. Call once before the first allocation; later
/// calls do nothing.
pub fn init() {
    let mut heaps = ALLOCATOR.0.lock();
    if heaps.boot_ready {
        return;
    }
    let start = BOOT_REGION.0.get().cast::<u8>();
    // Safety: the region is `BOOT_HEAP_SIZE` bytes of static memory that nothing but the
    // allocator uses, handed over once (guarded by `boot_ready`).
    unsafe { heaps.boot.init(start, BOOT_HEAP_SIZE) };
    heaps.boot_ready = true;
}

impl Heaps {
    /// Whether `pointer` lies in the boot heap.
    fn in_boot_heap(&self, pointer: *mut u8) -> bool {
        let start = self.boot.bottom() as usize;
        (start..start + self.boot.size()).contains(&(pointer as usize))
    }

    /// Grows the main heap so that `layout` fits; false when memory is out.
    fn grow(&mut self, layout: Layout) -> bool {
        // Room for the request at any alignment, plus the allocator's bookkeeping.
        let Some(needed) = layout
            .size()
            .checked_add(layout.align())
            .and_then(|size| size.checked_add(PAGE_SIZE))
        else {
            return false;
        };
        let len = needed.max(GROWTH_STEP).next_multiple_of(PAGE_SIZE);
        let Some(start) = memory::grow_heap(len) else {
            return false;
        };
        if self.main_ready {
            // The heap area grows contiguously: the new pages start at the old top.
            debug_assert_eq!(self.main.top() as usize, start);
            // Safety: `grow_heap` mapped `len` bytes read+write right after the main
            // heap's top, and nothing else uses them.
            unsafe { self.main.extend(len) };
        } else {
            // Safety: as above: `len` fresh bytes at `start`, for the allocator alone.
            unsafe { self.main.init(start as *mut u8, len) };
            self.main_ready = true;
        }
        true
    }

    /// A block of size class `class`: the head of its free list, refilled with a fresh
    /// chunk from the heaps when empty.
    fn allocate_small(&mut self, class: usize) -> Option<NonNull<u8>> {
        if self.classes.heads[class] == 0 {
            let chunk = Layout::from_size_align(CHUNK, PAGE_SIZE).ok()?;
            let start = self.allocate_large(chunk)?.as_ptr() as usize;
            let size = SizeClasses::block_size(class);
            // Thread the chunk's blocks into the list, last first, so the list runs upward.
            let mut next = 0usize;
            for block in (start..start + CHUNK).step_by(size).rev() {
                // Safety: `block` lies in the chunk just allocated, which nothing else uses,
                // and is aligned to `size` >= 16 bytes (the chunk is page aligned).
                unsafe { (block as *mut usize).write(next) };
                next = block;
            }
            self.classes.heads[class] = next;
        }
        let block = self.classes.heads[class];
        // Safety: `block` is the head of the free list: a free block of this class whose
        // first word holds the next free block's address.
        self.classes.heads[class] = unsafe { (block as *const usize).read() };
        NonNull::new(block as *mut u8)
    }

    /// Gives a block of class `class` back to its free list.
    ///
    /// # Safety
    /// `block` must have come from [`Heaps::allocate_small`] for the same class and must
    /// no longer be used.
    unsafe fn deallocate_small(&mut self, block: NonNull<u8>, class: usize) {
        // Safety: the block is free (the caller's contract), at least 16 bytes and aligned
        // to its size: its first word can hold the link.
        unsafe {
            block
                .as_ptr()
                .cast::<usize>()
                .write(self.classes.heads[class])
        };
        self.classes.heads[class] = block.as_ptr() as usize;
    }

    fn allocate(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        match SizeClasses::class_of(layout) {
            Some(class) => self.allocate_small(class),
            None => self.allocate_large(layout),
        }
    }

    /// A block straight from the linked-list heaps (the main heap first, then the boot
    /// heap, then the main heap grown).
    fn allocate_large(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        if self.main_ready
            && let Ok(block) = self.main.allocate_first_fit(layout)
        {
            return Some(block);
        }
        if let Ok(block) = self.boot.allocate_first_fit(layout) {
            return Some(block);
        }
        if self.grow(layout) {
            return self.main.allocate_first_fit(layout).ok();
        }
        None
    }
}

// Safety: every block comes from one of two `linked_list_allocator` heaps over memory
// that only the allocator uses (the static boot region, pages `grow_heap` mapped for it),
// under one lock; `dealloc` gives each block back to the heap whose range holds it.
unsafe impl GlobalAlloc for KernelAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // Allocating from the trap path (never done) or while growing the heap (which
        // does not allocate) would find the lock held by this CPU: fail instead of
        // deadlocking.
        let Some(mut heaps) = self.0.try_lock_from_trap() else {
            return null_mut();
        };
        heaps
            .allocate(layout)
            .map_or(null_mut(), |block| block.as_ptr())
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        let Some(block) = NonNull::new(pointer) else {
            return;
        };
        let mut heaps = self.0.lock();
        if let Some(class) = SizeClasses::class_of(layout) {
            // Safety: blocks of a small layout come from its size class (`allocate`), and
            // the caller gives it back once (GlobalAlloc's contract).
            unsafe { heaps.deallocate_small(block, class) };
        } else if heaps.in_boot_heap(pointer) {
            // Safety: the caller passes a block `alloc` returned with this layout, and it
            // lies in the boot heap, so the boot heap handed it out.
            unsafe { heaps.boot.deallocate(block, layout) };
        } else {
            // Safety: as above, for the main heap (the only other source of blocks).
            unsafe { heaps.main.deallocate(block, layout) };
        }
    }
}

/// Bytes free in the heaps without growing them (for reports).
pub fn free_bytes() -> usize {
    let heaps = ALLOCATOR.0.lock();
    heaps.boot.free() + heaps.main.free()
}

/// Bytes the heaps hold in all (for reports).
pub fn size() -> usize {
    let heaps = ALLOCATOR.0.lock();
    heaps.boot.size() + heaps.main.size()
}
