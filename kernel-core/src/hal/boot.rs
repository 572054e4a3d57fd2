//! Boot information: what the platform found before kernel-core started.

/// What a range of physical (or, hosted, simulated) memory is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryKind {
    /// Free for the kernel's use.
    Usable,
    /// Taken by the kernel image, firmware, the boot modules or a device.
    Reserved,
}

/// One range of the memory map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryRegion {
    /// First byte of the range.
    pub base: usize,
    /// Length of the range in bytes.
    pub size: usize,
    /// What the range is for.
    pub kind: MemoryKind,
}

/// A program in the boot image (a host file hosted, a file of the initrd under QEMU).
#[derive(Debug, Clone, Copy)]
pub struct BootModule<'a> {
    /// The name `spawn` knows it by (the file stem).
    pub name: &'a str,
    /// The module's bytes, WebAssembly binary or text.
    pub bytes: &'a [u8],
}

/// Boot information handed over by the platform. Everything it returns stays valid and
/// unchanged for the life of the platform value.
pub trait BootInfo {
    /// The memory map, sorted by base address, ranges not overlapping.
    fn memory_map(&self) -> &[MemoryRegion];

    /// The kernel command line (empty when there is none).
    fn command_line(&self) -> &str;

    /// The programs of the boot image, in the order they were given.
    fn boot_modules(&self) -> &[BootModule<'_>];
}
