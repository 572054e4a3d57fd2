//! [`Platform`]: the kernel-core HAL on riscv64 S-mode, built from the device tree, with
//! paging and the trap vector on.
//!
//! Also the devices the panic path uses ([`panic_console`], [`panic_test_device`]): QEMU
//! `virt`'s defaults until [`Platform::from_device_tree`] has read the real addresses.

use alloc::vec;
use alloc::vec::Vec;
use core::ops;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use kernel_core::hal::{
    BootInfo, Clock, Console, ContextError, CpuError, CpuId, Cpus, Entropy, ExecutionContexts,
    Interrupts, Isa, IsaFeatures, Machine, MemoryError, MemoryKind, MemoryRegion, Protection,
    Storage, TimerHandler, TrapHandler, Traps, VectorFeatures, VirtualMemory, WallClock,
};

use crate::arch;
use crate::clock::Timebase;
use crate::context::{self, SavedContext};
use crate::cpus::{self, HartTable};
use crate::device_tree::MachineDescription;
use crate::memory::{self, Layout};
use crate::memory_map::{self, PAGE_SIZE, Range};
use crate::sbi;
use crate::sifive_test::{self, TestDevice};
use crate::stack::Stack;
use crate::trap;
use crate::uart::{self, Uart};

/// The console UART's base address, for the panic path.
static PANIC_UART_BASE: AtomicUsize = AtomicUsize::new(uart::DEFAULT_BASE);
/// The console UART's register shift, for the panic path.
static PANIC_UART_REG_SHIFT: AtomicU32 = AtomicU32::new(0);
/// The `sifive_test` register, 0 for none, for the panic path.
static PANIC_TEST_DEVICE_BASE: AtomicUsize = AtomicUsize::new(sifive_test::DEFAULT_BASE);

unsafe extern "C" {
    /// The first byte of the kernel image and of its code (`linker.ld`).
    static __kernel_start: u8;
    /// The first byte of the read-only data, page aligned (`linker.ld`).
    static __rodata_start: u8;
    /// The first byte of the writable data, page aligned (`linker.ld`).
    static __data_start: u8;
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

/// The image's sections: code, read-only data, writable data (`.data` and `.bss`).
fn kernel_sections() -> (Range, Range, Range) {
    let (start, rodata, data, end) = (
        &raw const __kernel_start as usize,
        &raw const __rodata_start as usize,
        &raw const __data_start as usize,
        &raw const __kernel_end as usize,
    );
    (
        Range::new(start, rodata),
        Range::new(rodata, data),
        Range::new(data, end),
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
/// [`BootInfo`], [`Cpus`], [`Machine`], [`VirtualMemory`], [`Traps`], [`Interrupts`] and
/// [`ExecutionContexts`].
///
/// The memory and trap state behind it is global (the trap path reaches it without a
/// platform value), so the value itself is cheap to move, for instance into a
/// `kernel_core::wasm::runtime::Engine`.
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
    /// The initrd's bytes, if the boot loader placed one.
    initrd: Option<&'static [u8]>,
    /// What the harts have: the V extension when the device tree's `riscv,isa` names it,
    /// with the VLEN read from `vlenb`.
    isa_features: IsaFeatures,
}

impl Platform {
    /// Reads the device tree, turns on paging (W^X kernel mappings, the direct map of RAM,
    /// the frame allocator) and the trap vector, and builds the platform. The heap must be
    /// initialised ([`crate::heap::init`]).
    ///
    /// `guard_pages` are pages of the kernel image left unmapped (the boot stack's guard).
    ///
    /// # Panics
    /// When `device_tree` holds no device tree, or the page tables or the trap stack
    /// cannot be built (RAM too small).
    ///
    /// # Safety
    /// Call once, on the boot hart `boot_hart`, with paging off, with the device tree
    /// pointer the firmware passed (see [`MachineDescription::parse`]), while running on a
    /// stack inside the kernel image.
    pub unsafe fn from_device_tree(
        boot_hart: usize,
        device_tree: *const u8,
        guard_pages: &[Range],
    ) -> Self {
        // Safety: the caller passes the firmware's device tree, which lies in RAM the memory
        // map reserves, so nothing overwrites it.
        let machine = match unsafe { MachineDescription::parse(device_tree) } {
            Ok(machine) => machine,
            Err(error) => panic!("no device tree at {device_tree:p}: {error}"),
        };
        PANIC_UART_BASE.store(machine.uart_base, Ordering::Release);
        PANIC_UART_REG_SHIFT.store(machine.uart_reg_shift, Ordering::Release);
        PANIC_TEST_DEVICE_BASE.store(machine.test_device_base.unwrap_or(0), Ordering::Release);
        // Safety: the device tree names the UART (or QEMU virt's default is used); it is
        // mapped read+write below, and only this driver programs it.
        let console = unsafe { Uart::new(machine.uart_base, machine.uart_reg_shift) };
        // Safety: the device tree names the device, or there is none; mapped below.
        let test_device = unsafe { TestDevice::new(machine.test_device_base) };
        let image = kernel_image();
        let mut reserved = machine.firmware.clone();
        reserved.push(image);
        reserved.push(machine.device_tree);
        reserved.extend(machine.initrd);
        let memory_map = memory_map::build(&machine.memory, &reserved);
        let usable = usable_ranges(&memory_map);
        // The direct map: RAM but the firmware's and the image's own (the device tree and
        // the initrd are read through it).
        let mut not_mapped = machine.firmware.clone();
        not_mapped.push(image);
        let direct_map = usable_ranges(&memory_map::build(&machine.memory, &not_mapped));
        let uart_registers = Range::from_base_size(
            machine.uart_base,
            (8usize << machine.uart_reg_shift).max(PAGE_SIZE),
        );
        let mut mmio = vec![uart_registers];
        mmio.extend(
            machine
                .test_device_base
                .map(|base| Range::from_base_size(base, PAGE_SIZE)),
        );
        let (text, rodata, writable) = kernel_sections();
        let layout = Layout {
            text,
            rodata,
            writable,
            guard_pages,
            direct_map: &direct_map,
            usable: &usable,
            mmio: &mmio,
        };
        // Safety: once, on the boot hart, paging off (this function's contract); the
        // layout comes from the linker script and the device tree, and the stack in use is
        // in the image.
        if let Err(error) = unsafe { memory::init(&layout) } {
            panic!("{error}");
        }
        let timebase = Timebase::new(machine.timebase_hz);
        trap::set_timebase(timebase);
        if let Err(error) = trap::prepare_cpu(0) {
            panic!("cannot allocate the boot hart's trap stack: {error}");
        }
        // Safety: on the boot hart (CPU 0), whose trap stack was just prepared.
        unsafe { trap::enter_cpu(0) };
        let isa_features = if machine.vector {
            // Safety: the device tree says every hart has the V extension.
            unsafe { arch::enable_vector_unit() };
            // Safety: the unit was just turned on.
            let vlen_bits = unsafe { arch::vector_register_bits() };
            IsaFeatures {
                vector: Some(VectorFeatures {
                    vlen_bits: u32::try_from(vlen_bits).unwrap_or(u32::MAX),
                }),
            }
        } else {
            IsaFeatures::BASE
        };
        let initrd = machine.initrd.map(|range| {
            // Safety: the boot loader placed the initrd there; the memory map reserves it,
            // so no frame overlaps it, and the direct map keeps it readable for good.
            unsafe {
                core::slice::from_raw_parts(range.start as *const u8, range.end - range.start)
            }
        });
        Self {
            console,
            test_device,
            timebase,
            harts: HartTable::new(boot_hart, &machine.hart_ids),
            memory_map,
            command_line: machine.command_line,
            initrd,
            isa_features,
        }
    }

    /// The initrd the boot loader placed (QEMU's `-initrd`), if any: the boot image
    /// ([`BootInfo::boot_image`]), borrowed for as long as the kernel runs.
    pub fn initrd(&self) -> Option<&'static [u8]> {
        self.initrd
    }

    /// Timer interrupts taken so far by the running CPU.
    pub fn timer_interrupts(&self) -> u64 {
        trap::timer_interrupts(cpus::current_cpu_index())
    }

    /// Software interrupts (wake-ups) taken so far by the running CPU.
    pub fn software_interrupts(&self) -> u64 {
        trap::software_interrupts(cpus::current_cpu_index())
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

    fn input_ended(&self) -> bool {
        self.console.input_ended()
    }
}

/// No host storage under QEMU: the `--dir` trees come in the boot image and are kept in
/// RAM by kernel-core.
impl Storage for Platform {
    fn open_directory(
        &self,
        _path: &str,
    ) -> Result<alloc::sync::Arc<dyn kernel_core::vfs::FileSystem>, kernel_core::vfs::Errno> {
        Err(kernel_core::vfs::Errno::NotSup)
    }
}

/// QEMU's `virt` machine as booted here offers no entropy source (no `virtio-rng`, no
/// `Zkr` seed CSR is relied on): kernel-core falls back to its seeded generator, which is
/// not cryptographic.
impl Entropy for Platform {
    fn fill_random(&self, _buf: &mut [u8]) -> bool {
        false
    }
}

/// No real-time clock is read: kernel-core adds the monotonic time to the host's time the
/// boot image carries.
impl WallClock for Platform {
    fn realtime_ns(&self) -> Option<u64> {
        None
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

    /// The initrd (QEMU's `-initrd`): the boot loader placed it, the memory map reserves
    /// it and the direct map keeps it readable.
    fn boot_image(&self) -> Option<&[u8]> {
        self.initrd
    }
}

impl Cpus for Platform {
    fn isa(&self) -> Isa {
        Isa::Riscv64
    }

    /// The V extension only when the device tree lists it, with the probed VLEN.
    fn isa_features(&self) -> IsaFeatures {
        self.isa_features
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

/// The usable regions of `map` as ranges.
fn usable_ranges(map: &[MemoryRegion]) -> Vec<Range> {
    map.iter()
        .filter(|region| region.kind == MemoryKind::Usable)
        .map(|region| Range::from_base_size(region.base, region.size))
        .collect()
}

/// The address of `addr` for the memory module.
fn address(addr: NonNull<u8>) -> usize {
    addr.as_ptr() as usize
}

/// Reserved address space comes from a window of the Sv48 lower half; committed pages are
/// backed on demand by the trap path (see [`crate::memory`]).
impl VirtualMemory for Platform {
    fn page_size(&self) -> usize {
        PAGE_SIZE
    }

    /// The free frames: what the heap can grow into and demand paging can back.
    fn available_memory(&self) -> Option<usize> {
        Some(memory::frame_counts().0.saturating_mul(PAGE_SIZE))
    }

    fn reserve(&self, len: usize) -> Result<NonNull<u8>, MemoryError> {
        memory::reserve(len)
    }

    unsafe fn commit(
        &self,
        addr: NonNull<u8>,
        len: usize,
        protection: Protection,
    ) -> Result<(), MemoryError> {
        memory::commit(address(addr), len, protection)
    }

    unsafe fn protect(
        &self,
        addr: NonNull<u8>,
        len: usize,
        protection: Protection,
    ) -> Result<(), MemoryError> {
        memory::protect(address(addr), len, protection)
    }

    unsafe fn decommit(&self, addr: NonNull<u8>, len: usize) -> Result<(), MemoryError> {
        memory::decommit(address(addr), len)
    }

    unsafe fn release(&self, addr: NonNull<u8>, len: usize) -> Result<(), MemoryError> {
        memory::release(address(addr), len)
    }

    unsafe fn publish_code(&self, addr: NonNull<u8>, len: usize) -> Result<(), MemoryError> {
        memory::publish_code(address(addr), len)
    }
}

impl Traps for Platform {
    fn install_trap_handler(&self, handler: TrapHandler) {
        trap::install_handler(handler);
    }

    fn set_trap_context(&self, context: usize) -> usize {
        // Every CPU took its trap vector and trap stack when it started.
        trap::set_context(context)
    }
}

/// The timer is the SBI's (`sbi_set_timer`, which OpenSBI implements with the Sstc
/// `stimecmp` where the hart has it). A timer interrupt calls the installed
/// [`TimerHandler`] and, like a wake-up IPI, marks an interrupt pending on its CPU
/// ([`crate::trap`]), which [`Interrupts::wait_for_interrupt`] consumes.
impl Interrupts for Platform {
    fn install_timer_handler(&self, handler: TimerHandler) {
        trap::install_timer_handler(handler);
    }

    fn set_timer_deadline(&self, deadline_ns: u64) {
        let ticks = if deadline_ns == u64::MAX {
            // Disarmed: `ns_to_ticks` would give a (very distant) finite deadline.
            u64::MAX
        } else {
            self.timebase.ns_to_ticks(deadline_ns)
        };
        sbi::set_timer(ticks);
    }

    fn set_interrupts_enabled(&self, enabled: bool) -> bool {
        let previous = if enabled {
            arch::set_sstatus(arch::SSTATUS_SIE)
        } else {
            arch::clear_sstatus(arch::SSTATUS_SIE)
        };
        previous & arch::SSTATUS_SIE != 0
    }

    /// With `sstatus.SIE` off, so that no interrupt is handled between the look at the
    /// pending mark and the `wfi`: returns at once when an interrupt was taken since the
    /// previous return; otherwise `wfi`, which ends once a timer or software interrupt is
    /// pending (both are enabled in `sie` on every hart, and `wfi` does not need `SIE`),
    /// then opens interrupts for an instant so that the interrupt is taken and recorded
    /// (whatever the caller's interrupt state), and consumes the mark.
    fn wait_for_interrupt(&self) {
        let was_enabled = arch::clear_sstatus(arch::SSTATUS_SIE) & arch::SSTATUS_SIE != 0;
        let cpu = cpus::current_cpu_index();
        if !trap::take_pending(cpu) {
            arch::wait_for_interrupt();
            arch::take_interrupts();
            trap::take_pending(cpu);
        }
        if was_enabled {
            arch::set_sstatus(arch::SSTATUS_SIE);
        }
    }
}

/// Stacks are [`Stack`]s, backed up front; a context is its saved stack pointer, switched
/// by [`context::switch`].
impl ExecutionContexts for Platform {
    type Stack = Stack;
    type SavedContext = SavedContext;

    fn allocate_stack(&self, size: usize) -> Result<Stack, ContextError> {
        Stack::new_backed(size).map_err(ContextError::Memory)
    }

    fn stack_bounds(&self, stack: &Stack) -> ops::Range<usize> {
        stack.bottom()..stack.top()
    }

    fn new_context(&self, stack: &Stack, entry: fn(usize) -> !, arg: usize) -> SavedContext {
        // Safety: the top of a `Stack` is page aligned and its pages are mapped
        // read+write for as long as the `Stack` lives (backed up front). The frame (a
        // `context::SwitchFrame`) goes at the stack's top, which no running context uses:
        // the trait's contract has every context made on a stack of its own (its safe
        // signature cannot enforce that; a context still running on `stack` would be
        // corrupted).
        unsafe { context::prepare(stack.top(), entry, arg) }
    }

    unsafe fn switch(&self, from: *mut SavedContext, to: *const SavedContext) {
        // Safety: the caller keeps the trait's contract, which is `context::switch`'s.
        unsafe { context::switch(from, to) }
    }
}
