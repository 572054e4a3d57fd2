//! The kernel heap: the global allocator (`linked_list_allocator`) over a static region
//! of [`HEAP_SIZE`] bytes in `.bss`, so inside the kernel image's reserved range.
//!
//! A static region keeps the heap independent of the device tree: it works before the
//! device tree is parsed (which allocates) and never overlaps the firmware, the device
//! tree blob or an initrd. The rest of RAM is left to the memory map.

use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, Ordering};

use linked_list_allocator::LockedHeap;

/// The size of the heap in bytes.
pub const HEAP_SIZE: usize = 16 * 1024 * 1024;

/// The memory the heap hands out, page aligned.
#[repr(C, align(4096))]
struct HeapRegion(UnsafeCell<[MaybeUninit<u8>; HEAP_SIZE]>);

// Safety: the region is only ever accessed through the allocator, which `init` hands it to
// exactly once and which serialises all access with its lock.
unsafe impl Sync for HeapRegion {}

/// The heap's memory.
static HEAP_REGION: HeapRegion = HeapRegion(UnsafeCell::new([MaybeUninit::uninit(); HEAP_SIZE]));

/// The global allocator; empty (every allocation fails) until [`init`].
#[global_allocator]
static ALLOCATOR: LockedHeap = LockedHeap::empty();

/// Set by the first [`init`].
static INITIALIZED: AtomicBool = AtomicBool::new(false);

/// Hands the heap region to the allocator. Call once before the first allocation; later
/// calls do nothing.
pub fn init() {
    if INITIALIZED.swap(true, Ordering::AcqRel) {
        return;
    }
    let start = HEAP_REGION.0.get().cast::<u8>();
    // Safety: the region is `HEAP_SIZE` bytes of static memory that nothing but the
    // allocator uses, handed over once (guarded by `INITIALIZED`).
    unsafe { ALLOCATOR.lock().init(start, HEAP_SIZE) };
}

/// Bytes of the heap currently free (for reports).
pub fn free_bytes() -> usize {
    ALLOCATOR.lock().free()
}
