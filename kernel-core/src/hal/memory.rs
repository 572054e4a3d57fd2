//! Virtual memory: reserving address space, committing and protecting pages, publishing code.

use core::fmt;
use core::ptr::NonNull;

/// The access a committed page allows.
///
/// There is deliberately no writable-and-executable protection: code is written while
/// [`Protection::ReadWrite`] and then made [`Protection::ReadExecute`] with
/// [`VirtualMemory::publish_code`] (W^X).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protection {
    /// No access: any touch faults (guard pages, reserved but unused space).
    None,
    /// Read only.
    Read,
    /// Read and write.
    ReadWrite,
    /// Read and execute (published code).
    ReadExecute,
}

/// Why a virtual memory operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryError {
    /// The platform has no address space or backing memory left for the request.
    OutOfMemory,
    /// An address or length is not page aligned, is zero, or overflows the address space.
    Misaligned,
    /// The range is not inside a reservation made by [`VirtualMemory::reserve`].
    NotReserved,
    /// The platform refused the operation for another reason (the OS error number on Linux).
    Platform(i32),
}

impl fmt::Display for MemoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutOfMemory => f.write_str("out of memory"),
            Self::Misaligned => f.write_str("address or length not page aligned"),
            Self::NotReserved => f.write_str("range is not reserved"),
            Self::Platform(code) => write!(f, "platform error {code}"),
        }
    }
}

/// Virtual memory of the current address space.
///
/// The model is the one of `mmap`: address space is first *reserved* (no access, no backing
/// memory), pages inside a reservation are then *committed* with a protection (backed on
/// demand, reading as zero), re-*protected*, *decommitted* (backing memory returned, contents
/// lost, no access) and finally the whole reservation is *released*.
///
/// Every address and length passed in must be a multiple of [`VirtualMemory::page_size`];
/// implementations return [`MemoryError::Misaligned`] otherwise and change nothing.
/// Operations on one range are atomic with respect to each other only as far as the
/// caller serialises them: kernel-core keeps the region map and never issues two
/// overlapping operations at once.
pub trait VirtualMemory {
    /// The size of a page in bytes, a power of two, constant for the life of the platform.
    fn page_size(&self) -> usize;

    /// Reserves `len` bytes of address space with no access (like `mmap(PROT_NONE,
    /// MAP_NORESERVE)` on Linux). The range is page aligned and distinct from every other
    /// live reservation.
    ///
    /// # Errors
    /// [`MemoryError::Misaligned`] when `len` is zero or not a page multiple;
    /// [`MemoryError::OutOfMemory`] when no such range is free.
    fn reserve(&self, len: usize) -> Result<NonNull<u8>, MemoryError>;

    /// Commits the pages of `[addr, addr + len)` with `protection`; they read as zero
    /// (like `mprotect` over fresh anonymous memory on Linux).
    ///
    /// # Errors
    /// [`MemoryError::Misaligned`], or [`MemoryError::OutOfMemory`] when backing memory
    /// cannot be promised; on error no page changed.
    ///
    /// # Safety
    /// The range must lie inside one live reservation of this platform, and no Rust
    /// reference may point into pages whose access this removes.
    unsafe fn commit(
        &self,
        addr: NonNull<u8>,
        len: usize,
        protection: Protection,
    ) -> Result<(), MemoryError>;

    /// Changes the protection of committed pages (like `mprotect` on Linux). Contents are
    /// kept.
    ///
    /// # Errors
    /// [`MemoryError::Misaligned`] or [`MemoryError::Platform`]; on error the protection of
    /// the range is unspecified but no page was freed.
    ///
    /// # Safety
    /// As for [`VirtualMemory::commit`]: the range must be committed pages of one live
    /// reservation, and no Rust reference may rely on an access this removes.
    unsafe fn protect(
        &self,
        addr: NonNull<u8>,
        len: usize,
        protection: Protection,
    ) -> Result<(), MemoryError>;

    /// Returns the backing memory of `[addr, addr + len)` to the platform; the pages become
    /// inaccessible and read as zero if committed again (like `madvise(MADV_DONTNEED)`
    /// followed by `mprotect(PROT_NONE)` on Linux). The range stays reserved.
    ///
    /// # Errors
    /// [`MemoryError::Misaligned`] or [`MemoryError::Platform`].
    ///
    /// # Safety
    /// The range must lie inside one live reservation and nothing may still use its contents.
    unsafe fn decommit(&self, addr: NonNull<u8>, len: usize) -> Result<(), MemoryError>;

    /// Releases a whole reservation made by [`VirtualMemory::reserve`] (like `munmap`).
    ///
    /// # Errors
    /// [`MemoryError::Misaligned`] or [`MemoryError::Platform`].
    ///
    /// # Safety
    /// `addr` and `len` must be exactly a live reservation returned by `reserve`, and
    /// nothing may use any part of it afterwards.
    unsafe fn release(&self, addr: NonNull<u8>, len: usize) -> Result<(), MemoryError>;

    /// How many bytes of memory are free to back new pages and kernel allocations, when
    /// the platform knows (the free frames on bare metal); `None` when another system
    /// manages it (hosted, Linux lends memory as it is touched). kernel-core refuses work
    /// that would need more than this (compiling a module), instead of failing halfway.
    fn available_memory(&self) -> Option<usize> {
        None
    }

    /// Publishes freshly written machine code: makes `[addr, addr + len)` read+execute and
    /// synchronises the instruction caches of every CPU (`fence.i` on RISC-V), so that any
    /// CPU may jump into it afterwards. The pages are never writable and executable at once.
    ///
    /// # Errors
    /// [`MemoryError::Misaligned`] or [`MemoryError::Platform`].
    ///
    /// # Safety
    /// The range must be committed read+write pages of one live reservation, and no Rust
    /// reference may still write to them.
    unsafe fn publish_code(&self, addr: NonNull<u8>, len: usize) -> Result<(), MemoryError>;
}
