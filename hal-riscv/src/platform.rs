//! [`Platform`]: the kernel-core HAL on riscv64 S-mode, built from the device tree.
//!
//! Also the devices the panic path uses ([`panic_console`], [`panic_test_device`]): QEMU
//! `virt`'s defaults until [`Platform::from_device_tree`] has read the real addresses.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use kernel_core::hal::{
    BootInfo, BootModule, Clock, Console, CpuError, CpuId, Cpus, Isa, Machine, MemoryRegion,
};

use crate::clock::Timebase;
use crate::cpus::{self, HartTable};
use crate::device_tree::MachineDescription;
use crate::memory_map::{self, Range};
use crate::sifive_test::{self, TestDevice};
use crate::uart::{self, Uart};

/// The console UART's base address, for the panic path.
static PANIC_UART_BASE: AtomicUsize = AtomicUsize::new(uart::DEFAULT_BASE);
/// The console UART's register shift, for the panic path.
static PANIC_UART_REG_SHIFT: AtomicU32 = AtomicU32::new(0);
/// The `sifive_test` register, 0 for none, for the panic path.
static PANIC_TEST_DEVICE_BASE: AtomicUsize = AtomicUsize::new(sifive_test::DEFAULT_BASE);

unsafe extern "C" {
    /// The first byte of the kernel image (`linker.ld`).
    static __kernel_start: u8;
    /// One past the last byte of the kernel image, `.bss` with the heap included (`linker.ld`).
    static __kernel_end: u8;
}

/// The address range of the kernel image: code, data, `.bss` (boot stack and heap).
pub fn kernel_image() -> Range {
    Range::new(
        &raw const __kernel_start as usize,
        &raw const __kernel_end as usize,
    )
}

/// The console UART for the panic path: the device tree's once the platform is built,
/// QEMU `virt`'s before.
pub fn panic_console() -> Uart {
    let base = PANIC_UART_BASE.load(Ordering::Acquire);
    let reg_shift = PANIC_UART_REG_SHIFT.load(Ordering::Acquire);
    // Safety: the address is QEMU virt's UART or the one the device tree names (stored by
    // `Platform::from_device_tree`); paging is off.
    unsafe { Uart::new(base, reg_shift) }
}

/// The `sifive_test` device for the panic path, as for [`panic_console`].
pub fn panic_test_device() -> TestDevice {
    let base = PANIC_TEST_DEVICE_BASE.load(Ordering::Acquire);
    // Safety: as for `panic_console`: QEMU virt's device or the device tree's, or none.
    unsafe { TestDevice::new((base != 0).then_some(base)) }
}

/// The riscv64 platform: implements the kernel-core HAL traits [`Console`], [`Clock`],
/// [`BootInfo`], [`Cpus`] and [`Machine`].
#[derive(Debug)]
pub struct Platform {
    /// The console UART.
    console: Uart,
    /// The device that ends QEMU.
    test_device: TestDevice,
    /// The `time` CSR's frequency.
    timebase: Timebase,
    /// The harts, CPU 0 being the boot hart.
    harts: HartTable,
    /// RAM with the firmware, the device tree and the kernel image reserved.
    memory_map: Vec<MemoryRegion>,
    /// `/chosen/bootargs`.
    command_line: &'static str,
}

impl Platform {
    /// Reads the device tree and builds the platform. The heap must be initialised
    /// ([`crate::heap::init`]).
    ///
    /// # Panics
    /// When `device_tree` holds no device tree.
    ///
    /// # Safety
    /// Call once, on the boot hart `boot_hart`, with paging off, and with the device tree
    /// pointer the firmware passed (see [`MachineDescription::parse`]).
    pub unsafe fn from_device_tree(boot_hart: usize, device_tree: *const u8) -> Self {
        // Safety: the caller passes the firmware's device tree, which lies in RAM the memory
        // map reserves, so nothing overwrites it.
        let machine = match unsafe { MachineDescription::parse(device_tree) } {
            Ok(machine) => machine,
            Err(error) => panic!("no device tree at {device_tree:p}: {error}"),
        };
        PANIC_UART_BASE.store(machine.uart_base, Ordering::Release);
        PANIC_UART_REG_SHIFT.store(machine.uart_reg_shift, Ordering::Release);
        PANIC_TEST_DEVICE_BASE.store(machine.test_device_base.unwrap_or(0), Ordering::Release);
        // Safety: the device tree names the UART (or QEMU virt's default is used); paging
        // is off, and only this driver programs it.
        let console = unsafe { Uart::new(machine.uart_base, machine.uart_reg_shift) };
        // Safety: the device tree names the device, or there is none.
        let test_device = unsafe { TestDevice::new(machine.test_device_base) };
        let mut reserved = machine.reserved;
        reserved.push(kernel_image());
        Self {
            console,
            test_device,
            timebase: Timebase::new(machine.timebase_hz),
            harts: HartTable::new(boot_hart, &machine.hart_ids),
            memory_map: memory_map::build(&machine.memory, &reserved),
            command_line: machine.command_line,
        }
    }

    /// The hart id of `cpu`, if there is such a CPU.
    pub fn hart_id(&self, cpu: CpuId) -> Option<usize> {
        self.harts.hart_id(cpu)
    }
}

impl Console for Platform {
    fn write_bytes(&self, bytes: &[u8]) {
        self.console.write_bytes(bytes);
    }

    fn read_bytes(&self, buf: &mut [u8]) -> usize {
        self.console.read_bytes(buf)
    }
}

impl Clock for Platform {
    fn now_ns(&self) -> u64 {
        self.timebase.now_ns()
    }
}

impl BootInfo for Platform {
    fn memory_map(&self) -> &[MemoryRegion] {
        &self.memory_map
    }

    fn command_line(&self) -> &str {
        self.command_line
    }

    fn boot_modules(&self) -> &[BootModule<'_>] {
        // Loading programs from an initrd is not implemented yet.
        &[]
    }
}

impl Cpus for Platform {
    fn isa(&self) -> Isa {
        Isa::Riscv64
    }

    fn cpu_count(&self) -> usize {
        self.harts.count()
    }

    fn current_cpu(&self) -> CpuId {
        // CPU numbers come from `HartTable`, whose length is at most the number of cpu
        // nodes: they fit in u32.
        CpuId(cpus::current_cpu_index() as u32)
    }

    fn start_cpu(
        &self,
        cpu: CpuId,
        entry: fn(CpuId, usize) -> !,
        arg: usize,
    ) -> Result<(), CpuError> {
        self.harts.start(cpu, entry, arg)
    }

    fn wake_cpu(&self, cpu: CpuId) {
        self.harts.wake(cpu);
    }
}

impl Machine for Platform {
    fn shutdown(&self, status: u8) -> ! {
        self.test_device.exit(status)
    }
}
