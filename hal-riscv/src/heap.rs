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
}

/// The global allocator.
struct KernelAllocator(SpinLock<Heaps>);

#[global_allocator]
static ALLOCATOR: KernelAllocator = KernelAllocator(SpinLock::new(Heaps {
    boot: Heap::empty(),
    boot_ready: false,
    main: Heap::empty(),
    main_ready: false,
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

    fn allocate(&mut self, layout: Layout) -> Option<NonNull<u8>> {
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
        if heaps.in_boot_heap(pointer) {
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
