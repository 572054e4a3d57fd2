//! Boot information: what the platform found before kernel-core started.

/// What a range of physical (or, hosted, simulated) memory is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryKind {
    /// Free for the kernel's use.
    Usable,
    /// Taken by the kernel image, firmware, the boot image or a device.
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

/// Boot information handed over by the platform. Everything it returns stays valid and
/// unchanged for the life of the platform value.
pub trait BootInfo {
    /// The memory map, sorted by base address, ranges not overlapping.
    fn memory_map(&self) -> &[MemoryRegion];

    /// The kernel command line (empty when there is none).
    fn command_line(&self) -> &str;

    /// The boot image: what the kernel is to do and the programs it boots, encoded by
    /// [`crate::boot::image`] (the initrd under QEMU; built in memory by `sim` hosted).
    /// `None` when the platform was given none.
    fn boot_image(&self) -> Option<&[u8]>;
}
