//! Reading the flattened device tree the firmware passes in `a1`: what the HAL needs to
//! know about the machine, with QEMU `virt`'s values where the tree is silent.

use alloc::vec::Vec;

use fdt::Fdt;
use fdt::node::FdtNode;

pub use fdt::FdtError;

use crate::clock::DEFAULT_TIMEBASE_HZ;
use crate::memory_map::Range;
use crate::uart;

/// The machine as the device tree describes it.
#[derive(Debug, Clone)]
pub struct MachineDescription {
    /// The NS16550 UART's registers (`compatible = "ns16550a"`).
    pub uart_base: usize,
    /// The UART's `reg-shift` (log2 of the register spacing).
    pub uart_reg_shift: u32,
    /// The `sifive_test` device's register, if there is one.
    pub test_device_base: Option<usize>,
    /// The `time` CSR's frequency (`/cpus/timebase-frequency`).
    pub timebase_hz: u64,
    /// The hart ids of the enabled `/cpus/cpu@N` nodes, in tree order.
    pub hart_ids: Vec<usize>,
    /// Whether every enabled hart has the V extension (`v` among the single-letter
    /// extensions of its `riscv,isa`).
    pub vector: bool,
    /// RAM: the `reg` ranges of the `device_type = "memory"` nodes.
    pub memory: Vec<Range>,
    /// Memory the firmware keeps for itself: `/memreserve/` entries and `/reserved-memory`
    /// children (OpenSBI's own region). The kernel neither uses nor maps it.
    pub firmware: Vec<Range>,
    /// The device tree blob itself.
    pub device_tree: Range,
    /// The initial RAM disk the boot loader placed (`/chosen/linux,initrd-start` and
    /// `linux,initrd-end`), if any: `sim qemu`'s boot bundle.
    pub initrd: Option<Range>,
    /// `/chosen/bootargs`, empty when absent.
    pub command_line: &'static str,
}

/// The first `reg` range of `node`.
fn first_reg(node: FdtNode<'_, '_>) -> Option<Range> {
    let region = node.reg()?.next()?;
    Some(Range::from_base_size(
        region.starting_address as usize,
        region.size.unwrap_or(0),
    ))
}

/// The value of `node`'s property `name` as a number, if it holds one cell or two.
fn number(node: FdtNode<'_, '_>, name: &str) -> Option<usize> {
    node.property(name)?.as_usize()
}

/// Whether `node` is enabled (`status` absent, `"okay"` or `"ok"`).
fn is_enabled(node: FdtNode<'_, '_>) -> bool {
    match node.property("status").and_then(|status| status.as_str()) {
        None => true,
        Some(status) => status == "okay" || status == "ok",
    }
}

/// Whether a `riscv,isa` string (`rv64imafdcvh_zicsr_...`) names the V extension among its
/// single-letter extensions.
fn has_vector_extension(isa: &str) -> bool {
    let base = isa.split('_').next().unwrap_or("");
    base.strip_prefix("rv64")
        .or_else(|| base.strip_prefix("rv32"))
        .is_some_and(|letters| letters.contains('v'))
}

impl MachineDescription {
    /// Reads the device tree blob at `device_tree`.
    ///
    /// # Errors
    /// The [`FdtError`] when `device_tree` is null or does not hold a device tree.
    ///
    /// # Safety
    /// `device_tree` must be null or point at readable memory holding a device tree blob,
    /// left unchanged for the rest of the kernel's life (it is borrowed for `'static`:
    /// [`MachineDescription::device_tree`] says where it is, so that nobody reuses it).
    pub unsafe fn parse(device_tree: *const u8) -> Result<Self, FdtError> {
        // Safety: the caller's contract: the blob is readable, and unchanged for 'static.
        let fdt: Fdt<'static> = unsafe { Fdt::from_ptr(device_tree) }?;
        let serial = fdt.find_compatible(&["ns16550a", "ns16550"]);
        let uart_base = serial
            .and_then(first_reg)
            .map_or(uart::DEFAULT_BASE, |reg| reg.start);
        let uart_reg_shift = serial
            .and_then(|node| number(node, "reg-shift"))
            .and_then(|shift| u32::try_from(shift).ok())
            .unwrap_or(0);
        let test_device_base = match fdt.find_compatible(&["sifive,test1", "sifive,test0"]) {
            Some(node) => first_reg(node).map(|reg| reg.start),
            None => None,
        };
        let cpus = fdt.find_node("/cpus");
        let hart_nodes = || {
            cpus.into_iter()
                .flat_map(FdtNode::children)
                .filter(|node| node.name.split('@').next() == Some("cpu") && is_enabled(*node))
        };
        let hart_ids: Vec<usize> = hart_nodes()
            .filter_map(|node| number(node, "reg"))
            .collect();
        let vector = !hart_ids.is_empty()
            && hart_nodes().all(|node| {
                node.property("riscv,isa")
                    .and_then(|isa| isa.as_str())
                    .is_some_and(has_vector_extension)
            });
        // The property sits in /cpus on `virt`; the specification also allows each cpu node.
        let timebase_hz = cpus
            .and_then(|node| number(node, "timebase-frequency"))
            .or_else(|| {
                fdt.cpus()
                    .find_map(|cpu| cpu.property("timebase-frequency")?.as_usize())
            })
            .map_or(DEFAULT_TIMEBASE_HZ, |hz| hz as u64);
        let memory = fdt
            .find_node("/")
            .into_iter()
            .flat_map(FdtNode::children)
            .filter(|node| node.property("device_type").and_then(|p| p.as_str()) == Some("memory"))
            .filter_map(|node| node.reg())
            .flatten()
            .map(|region| {
                Range::from_base_size(region.starting_address as usize, region.size.unwrap_or(0))
            })
            .collect();
        let mut firmware: Vec<Range> = fdt
            .memory_reservations()
            .map(|entry| Range::from_base_size(entry.address() as usize, entry.size()))
            .collect();
        firmware.extend(
            fdt.find_node("/reserved-memory")
                .into_iter()
                .flat_map(FdtNode::children)
                .filter_map(|node| node.reg())
                .flatten()
                .map(|region| {
                    Range::from_base_size(
                        region.starting_address as usize,
                        region.size.unwrap_or(0),
                    )
                }),
        );
        let chosen = fdt.find_node("/chosen");
        let command_line = chosen
            .and_then(|chosen| chosen.property("bootargs"))
            .and_then(|bootargs| bootargs.as_str())
            .unwrap_or("");
        let initrd = chosen.and_then(|chosen| {
            let start = number(chosen, "linux,initrd-start")?;
            let end = number(chosen, "linux,initrd-end")?;
            (start < end).then(|| Range::new(start, end))
        });
        Ok(Self {
            uart_base,
            uart_reg_shift,
            test_device_base,
            timebase_hz,
            hart_ids,
            vector,
            memory,
            firmware,
            device_tree: Range::from_base_size(device_tree as usize, fdt.total_size()),
            initrd,
            command_line,
        })
    }
}
