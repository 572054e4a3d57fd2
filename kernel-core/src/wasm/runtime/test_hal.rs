//! A platform for the runtime's unit tests, which Miri can run: memory from the Rust heap,
//! no trap handling, no code execution.
//!
//! Each reservation is backed by at most [`BACKED`] bytes of heap (a linear memory
//! reserves 8 GiB): committing past them fails with [`MemoryError::OutOfMemory`], so a
//! test's memories stay within a few WebAssembly pages. Code is "published" without
//! becoming executable: tests compile and instantiate modules and call builtins and host
//! functions directly, but never jump into generated code.

use alloc::alloc::{Layout, alloc_zeroed, dealloc};
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::ptr::NonNull;

use crate::hal::{
    CpuError, CpuId, Cpus, Isa, IsaFeatures, MemoryError, Protection, TrapHandler, Traps,
    VirtualMemory,
};

/// The page size of the test platform.
const PAGE: usize = 4096;

/// The most heap bytes behind one reservation: four WebAssembly pages.
const BACKED: usize = 4 * 65536;

/// One reservation: the heap block behind it.
struct Reservation {
    base: NonNull<u8>,
    layout: Layout,
}

/// The test platform (see the module documentation).
pub(crate) struct TestHal {
    reservations: RefCell<Vec<Reservation>>,
    trap_context: Cell<usize>,
}

impl TestHal {
    /// A platform with nothing reserved.
    pub(crate) const fn new() -> Self {
        Self {
            reservations: RefCell::new(Vec::new()),
            trap_context: Cell::new(0),
        }
    }

    /// How many reservations are live (not released).
    pub(crate) fn live_reservations(&self) -> usize {
        self.reservations.borrow().len()
    }

    /// Checks that `[addr, addr + len)` lies inside the backed part of one reservation.
    fn check(&self, addr: NonNull<u8>, len: usize) -> Result<(), MemoryError> {
        if !addr.as_ptr().addr().is_multiple_of(PAGE) || !len.is_multiple_of(PAGE) {
            return Err(MemoryError::Misaligned);
        }
        let start = addr.as_ptr().addr();
        let end = start.checked_add(len).ok_or(MemoryError::OutOfMemory)?;
        let inside = self.reservations.borrow().iter().any(|reservation| {
            let base = reservation.base.as_ptr().addr();
            start >= base && end <= base + reservation.layout.size()
        });
        if inside {
            Ok(())
        } else {
            Err(MemoryError::OutOfMemory)
        }
    }
}

impl Drop for TestHal {
    fn drop(&mut self) {
        for reservation in self.reservations.get_mut().drain(..) {
            // Safety: the block was allocated with this layout and is freed once.
            unsafe { dealloc(reservation.base.as_ptr(), reservation.layout) };
        }
    }
}

impl VirtualMemory for TestHal {
    fn page_size(&self) -> usize {
        PAGE
    }

    fn reserve(&self, len: usize) -> Result<NonNull<u8>, MemoryError> {
        if len == 0 || !len.is_multiple_of(PAGE) {
            return Err(MemoryError::Misaligned);
        }
        let layout =
            Layout::from_size_align(len.min(BACKED), PAGE).map_err(|_| MemoryError::OutOfMemory)?;
        // Safety: the layout has a non-zero size.
        let base = NonNull::new(unsafe { alloc_zeroed(layout) }).ok_or(MemoryError::OutOfMemory)?;
        self.reservations
            .borrow_mut()
            .push(Reservation { base, layout });
        Ok(base)
    }

    unsafe fn commit(
        &self,
        addr: NonNull<u8>,
        len: usize,
        _protection: Protection,
    ) -> Result<(), MemoryError> {
        // Fresh heap blocks are zeroed and decommitted pages are zeroed again, so committed
        // pages read as zero.
        self.check(addr, len)
    }

    unsafe fn protect(
        &self,
        addr: NonNull<u8>,
        len: usize,
        _protection: Protection,
    ) -> Result<(), MemoryError> {
        self.check(addr, len)
    }

    unsafe fn decommit(&self, addr: NonNull<u8>, len: usize) -> Result<(), MemoryError> {
        self.check(addr, len)?;
        // Safety: the range lies inside a live heap block (checked) that the caller no
        // longer uses.
        unsafe { addr.as_ptr().write_bytes(0, len) };
        Ok(())
    }

    unsafe fn release(&self, addr: NonNull<u8>, _len: usize) -> Result<(), MemoryError> {
        let mut reservations = self.reservations.borrow_mut();
        let index = reservations
            .iter()
            .position(|reservation| reservation.base == addr)
            .ok_or(MemoryError::Platform(-1))?;
        let reservation = reservations.swap_remove(index);
        // Safety: the block was allocated with this layout, is freed once (it left the
        // list), and the caller no longer uses it.
        unsafe { dealloc(reservation.base.as_ptr(), reservation.layout) };
        Ok(())
    }

    unsafe fn publish_code(&self, addr: NonNull<u8>, len: usize) -> Result<(), MemoryError> {
        self.check(addr, len)
    }
}

impl Traps for TestHal {
    fn install_trap_handler(&self, _handler: TrapHandler) {}

    fn set_trap_context(&self, context: usize) -> usize {
        self.trap_context.replace(context)
    }
}

impl Cpus for TestHal {
    fn isa(&self) -> Isa {
        Isa::X86_64
    }

    fn isa_features(&self) -> IsaFeatures {
        IsaFeatures::WITH_128_BIT_VECTORS
    }

    fn cpu_count(&self) -> usize {
        1
    }

    fn current_cpu(&self) -> CpuId {
        CpuId(0)
    }

    fn start_cpu(
        &self,
        _cpu: CpuId,
        _entry: fn(CpuId, usize) -> !,
        _arg: usize,
    ) -> Result<(), CpuError> {
        Err(CpuError::NoSuchCpu)
    }

    fn wake_cpu(&self, _cpu: CpuId) {}
}
