//! Virtual memory through `mmap`, `mprotect` and `madvise`.

use core::ffi::c_void;
use core::ptr::NonNull;

use kernel_core::hal::{MemoryError, Protection, VirtualMemory};
use rustix::mm::{Advice, MapFlags, MprotectFlags, ProtFlags};

use crate::HostedHal;

/// Checks that `addr` and `len` are page aligned and `len` is not zero.
fn check_range(addr: usize, len: usize) -> Result<(), MemoryError> {
    let page = rustix::param::page_size();
    if len == 0
        || !addr.is_multiple_of(page)
        || !len.is_multiple_of(page)
        || addr.checked_add(len).is_none()
    {
        return Err(MemoryError::Misaligned);
    }
    Ok(())
}

fn platform_error(errno: rustix::io::Errno) -> MemoryError {
    if errno == rustix::io::Errno::NOMEM {
        MemoryError::OutOfMemory
    } else {
        MemoryError::Platform(errno.raw_os_error())
    }
}

fn mprotect_flags(protection: Protection) -> MprotectFlags {
    match protection {
        Protection::None => MprotectFlags::empty(),
        Protection::Read => MprotectFlags::READ,
        Protection::ReadWrite => MprotectFlags::READ | MprotectFlags::WRITE,
        Protection::ReadExecute => MprotectFlags::READ | MprotectFlags::EXEC,
    }
}

impl VirtualMemory for HostedHal {
    fn page_size(&self) -> usize {
        rustix::param::page_size()
    }

    fn reserve(&self, len: usize) -> Result<NonNull<u8>, MemoryError> {
        check_range(0, len)?;
        // Safety: a fresh private anonymous mapping at an address of the kernel's choosing
        // cannot alias any existing Rust object.
        let base = unsafe {
            rustix::mm::mmap_anonymous(
                core::ptr::null_mut(),
                len,
                ProtFlags::empty(),
                MapFlags::PRIVATE | MapFlags::NORESERVE,
            )
        }
        .map_err(platform_error)?;
        NonNull::new(base.cast::<u8>()).ok_or(MemoryError::OutOfMemory)
    }

    unsafe fn commit(
        &self,
        addr: NonNull<u8>,
        len: usize,
        protection: Protection,
    ) -> Result<(), MemoryError> {
        // Same contract as `protect`: anonymous pages of a reservation are backed on first
        // touch and read as zero until written.
        // Safety: the caller guarantees the range lies in a live reservation and that no
        // reference relies on an access this removes.
        unsafe { self.protect(addr, len, protection) }
    }

    unsafe fn protect(
        &self,
        addr: NonNull<u8>,
        len: usize,
        protection: Protection,
    ) -> Result<(), MemoryError> {
        check_range(addr.as_ptr() as usize, len)?;
        // Safety: the caller guarantees the range lies in one of our reservations, so no
        // memory the Rust program owns outside it changes protection.
        unsafe {
            rustix::mm::mprotect(
                addr.as_ptr().cast::<c_void>(),
                len,
                mprotect_flags(protection),
            )
        }
        .map_err(platform_error)
    }

    unsafe fn decommit(&self, addr: NonNull<u8>, len: usize) -> Result<(), MemoryError> {
        check_range(addr.as_ptr() as usize, len)?;
        let start = addr.as_ptr().cast::<c_void>();
        // Safety: the caller guarantees the range lies in a live reservation and its
        // contents are no longer used; MADV_DONTNEED on private anonymous memory drops the
        // pages, which read as zero afterwards.
        unsafe { rustix::mm::madvise(start, len, Advice::LinuxDontNeed) }
            .map_err(platform_error)?;
        // Safety: as above; removing all access to pages nobody uses.
        unsafe { rustix::mm::mprotect(start, len, MprotectFlags::empty()) }.map_err(platform_error)
    }

    unsafe fn release(&self, addr: NonNull<u8>, len: usize) -> Result<(), MemoryError> {
        check_range(addr.as_ptr() as usize, len)?;
        // Safety: the caller guarantees this is exactly a reservation of ours that nothing
        // uses any more.
        unsafe { rustix::mm::munmap(addr.as_ptr().cast::<c_void>(), len) }.map_err(platform_error)
    }

    unsafe fn publish_code(&self, addr: NonNull<u8>, len: usize) -> Result<(), MemoryError> {
        // x86-64 keeps instruction caches coherent with data writes, and the kernel's
        // mprotect is a serialising point for every thread: read+execute is all it takes.
        // Safety: the caller guarantees the range is committed pages of a live reservation
        // that nothing writes any more.
        unsafe { self.protect(addr, len, Protection::ReadExecute) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{HostedConfig, HostedHal};

    // The virtual memory conformance check runs in `tests/conformance.rs`, with the rest of
    // kernel-core's HAL conformance suite.

    #[test]
    fn misaligned_ranges_are_refused() {
        let hal = HostedHal::new(HostedConfig::default());
        assert_eq!(hal.reserve(0), Err(MemoryError::Misaligned));
        assert_eq!(
            hal.reserve(hal.page_size() + 1),
            Err(MemoryError::Misaligned)
        );
        let page = hal.page_size();
        let base = hal.reserve(page * 2).unwrap();
        // Safety: the range is inside the reservation just made (offset by one byte to
        // make it misaligned); the call must refuse it without touching anything.
        let result = unsafe { hal.commit(base.add(1), page, Protection::ReadWrite) };
        assert_eq!(result, Err(MemoryError::Misaligned));
        // Safety: exactly the reservation made above, unused.
        unsafe { hal.release(base, page * 2) }.unwrap();
    }
}
