//! The boot sequence shared by every platform: the banner, the report of what the platform
//! offers, and a self-check of the virtual memory HAL.

pub mod image;

use core::fmt::Write as _;
use core::ptr::NonNull;

use crate::console::ConsoleWriter;
use crate::hal::{
    BootInfo, Clock, Console, Cpus, Isa, MemoryError, MemoryKind, Protection, VirtualMemory,
};

/// What kernel-core found on the platform at boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootReport {
    /// The instruction set the JIT will compile for.
    pub isa: Isa,
    /// How many CPUs the kernel may use.
    pub cpus: usize,
    /// Bytes of memory marked usable in the memory map.
    pub usable_memory: usize,
    /// The size of the boot image in bytes (0 without one).
    pub boot_image_bytes: usize,
}

/// Prints the boot banner and the platform report to the console and returns the report.
pub fn announce<H: Console + Cpus + BootInfo + Clock>(hal: &H) -> BootReport {
    let usable_memory = hal
        .memory_map()
        .iter()
        .filter(|region| region.kind == MemoryKind::Usable)
        .fold(0usize, |sum, region| sum.saturating_add(region.size));
    let report = BootReport {
        isa: hal.isa(),
        cpus: hal.cpu_count(),
        usable_memory,
        boot_image_bytes: hal.boot_image().map_or(0, <[u8]>::len),
    };
    let mut out = ConsoleWriter(hal);
    // Writing to a console cannot fail (ConsoleWriter always returns Ok).
    let _ = writeln!(out, "{} booting on {}", crate::KERNEL_NAME, report.isa);
    let _ = writeln!(
        out,
        "cpus: {}, memory: {} MiB usable in {} regions, boot image: {} bytes, clock: {} ns",
        report.cpus,
        report.usable_memory / (1024 * 1024),
        hal.memory_map().len(),
        report.boot_image_bytes,
        hal.now_ns(),
    );
    let command_line = hal.command_line();
    if !command_line.is_empty() {
        let _ = writeln!(out, "command line: {command_line}");
    }
    report
}

/// Exercises the virtual memory HAL once: reserve, commit, write and read back, protect,
/// decommit (contents must read as zero when committed again) and release.
///
/// # Errors
/// The first [`MemoryError`] the HAL reports, or [`MemoryError::Platform`] with code -1
/// when the HAL broke its contract (decommitted memory did not read as zero).
pub fn check_virtual_memory<H: VirtualMemory>(hal: &H) -> Result<(), MemoryError> {
    let page = hal.page_size();
    let len = page.checked_mul(4).ok_or(MemoryError::OutOfMemory)?;
    let base = hal.reserve(len)?;
    let result = exercise_reservation(hal, base, page);
    // Safety: `base`/`len` is exactly the reservation made above, and nothing refers to it
    // any more: `exercise_reservation` has returned.
    let released = unsafe { hal.release(base, len) };
    result.and(released)
}

/// The body of [`check_virtual_memory`] on the reservation `[base, base + 4 pages)`.
fn exercise_reservation<H: VirtualMemory>(
    hal: &H,
    base: NonNull<u8>,
    page: usize,
) -> Result<(), MemoryError> {
    let two_pages = page * 2;
    // Safety: the first two pages lie inside the live 4-page reservation at `base`, and no
    // reference points into them yet.
    unsafe { hal.commit(base, two_pages, Protection::ReadWrite)? };
    let last = two_pages - 1;
    // Safety: both pages were just committed read+write; offsets 0 and `last` lie in them.
    unsafe {
        base.as_ptr().write_volatile(0x5a);
        base.as_ptr().add(last).write_volatile(0xa5);
    }
    // Safety: same committed pages; no reference into them exists.
    unsafe { hal.protect(base, two_pages, Protection::Read)? };
    // Safety: the pages are readable now and offsets 0 and `last` lie in them.
    let (first, end) = unsafe {
        (
            base.as_ptr().read_volatile(),
            base.as_ptr().add(last).read_volatile(),
        )
    };
    if (first, end) != (0x5a, 0xa5) {
        return Err(MemoryError::Platform(-1));
    }
    // Safety: the pages lie in the reservation and their contents are no longer needed.
    unsafe { hal.decommit(base, two_pages)? };
    // Safety: committing again inside the same live reservation.
    unsafe { hal.commit(base, page, Protection::Read)? };
    // Safety: the first page is committed readable.
    let again = unsafe { base.as_ptr().read_volatile() };
    if again != 0 {
        return Err(MemoryError::Platform(-1));
    }
    Ok(())
}
