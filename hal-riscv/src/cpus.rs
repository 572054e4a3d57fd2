//! Harts as kernel-core CPUs: which CPU runs, starting harts through SBI HSM, waking them
//! with IPIs.
//!
//! A started hart turns on the kernel's page tables (`memory::KERNEL_SATP`) in its first
//! instructions, then installs the trap vector on the trap stack prepared for it before
//! it runs its entry function. At most [`MAX_CPUS`] harts are used.
//!
//! CPU numbers are dense: CPU 0 is the boot hart (the one OpenSBI entered the kernel on),
//! CPUs 1.. are the other harts of the device tree, in its order. Every hart holds its CPU
//! number in `tp` from its first instructions on (the entry code of the kernel binary sets
//! it to 0 on the boot hart, `secondary_entry` sets it on the others), so
//! [`current_cpu_index`] needs no memory access. Rust code never writes `tp`: LLVM reserves
//! it as the thread pointer, and this kernel has no thread-local variables.

use alloc::vec::Vec;
use core::arch::{asm, naked_asm};
use core::mem::{offset_of, size_of};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};

use kernel_core::hal::{CpuError, CpuId};

use crate::memory::KERNEL_SATP;
use crate::stack::Stack;
use crate::{sbi, trap};

/// The most CPUs the kernel uses (harts past that are left stopped).
pub const MAX_CPUS: usize = 64;

/// How many harts have been started besides the boot hart.
static STARTED_SECONDARIES: AtomicUsize = AtomicUsize::new(0);

/// Whether any hart besides the boot hart has been started: then TLB and instruction
/// cache maintenance must reach the other harts too.
pub fn other_harts_running() -> bool {
    STARTED_SECONDARIES.load(Ordering::Acquire) > 0
}

/// The size of the stack each started hart gets (the boot hart's is set by the binary),
/// above a guard page.
pub const STACK_SIZE: usize = 64 * 1024;

/// The stack alignment of the RISC-V calling convention.
const STACK_ALIGN: usize = 16;

/// `sstatus.FS = Initial`: enables the floating-point registers, which code compiled for
/// `riscv64gc` may use.
pub const SSTATUS_FS_INITIAL: usize = 1 << 13;

/// The `sstatus` bits every hart sets in its first instructions: the floating-point unit.
/// The vector unit is turned on later, once the device tree said the harts have one
/// ([`crate::arch::enable_vector_unit`]).
pub const SSTATUS_UNITS_ON: usize = SSTATUS_FS_INITIAL;

/// The CPU number of the running hart, from `tp`.
pub fn current_cpu_index() -> usize {
    let index: usize;
    // Safety: reading `tp` has no side effect; every hart set it to its CPU number before
    // running Rust code (module documentation).
    unsafe { asm!("mv {}, tp", out(reg) index, options(nomem, nostack, preserves_flags)) };
    index
}

/// What a started hart needs, stored at the top of its stack block: its stack pointer
/// starts just below it, so the stack never overwrites it.
#[repr(C)]
struct StartRecord {
    /// The CPU number, loaded into `tp` by [`secondary_entry`].
    cpu: usize,
    /// The function the hart runs.
    entry: fn(CpuId, usize) -> !,
    /// The argument for `entry`.
    arg: usize,
}

/// The bytes reserved for the [`StartRecord`] at the top of a stack block, keeping the
/// stack pointer below it aligned.
const RECORD_SLOT: usize = size_of::<StartRecord>().next_multiple_of(STACK_ALIGN);

const _: () = assert!(
    offset_of!(StartRecord, cpu) == 0,
    "secondary_entry loads `cpu` from 0(a1)"
);
const _: () = assert!(RECORD_SLOT < STACK_SIZE);

/// Where a hart started by [`HartTable::start`] begins, in S-mode with paging and
/// interrupts off, its hart id in `a0` and its [`StartRecord`] in `a1` (SBI HSM
/// `hart_start`). Turns on the kernel's page tables, sets the stack pointer below the
/// record, `tp` to the CPU number, enables the floating-point unit and calls
/// [`secondary_main`] with the record.
///
/// # Safety
/// Only for SBI `hart_start` as done by [`HartTable::start`]: `a1` must point at a
/// [`StartRecord`] at the top of an otherwise unused stack block, 16-byte aligned, mapped
/// by the kernel's page tables; this code and `KERNEL_SATP` are identity-mapped, so
/// execution continues at the same addresses once translation is on.
#[unsafe(naked)]
unsafe extern "C" fn secondary_entry(hart_id: usize, record: *const StartRecord) -> ! {
    naked_asm!(
        "la t0, {satp}",
        "ld t0, 0(t0)",
        "csrw satp, t0",
        "sfence.vma",
        "mv sp, a1",
        "ld tp, {cpu_offset}(a1)",
        "li t0, {units_on}",
        "csrs sstatus, t0",
        // Round to nearest, ties to even, flags clear (`fcsr` = 0): JIT code relies on the
        // rounding mode (`kernel_core::wasm::compile`). The vector unit, when the hart has
        // one, is turned on later (`arch::enable_vector_unit`).
        "csrw fcsr, zero",
        "mv a0, a1",
        "call {main}",
        // `secondary_main` never returns.
        "unimp",
        cpu_offset = const offset_of!(StartRecord, cpu),
        units_on = const SSTATUS_UNITS_ON,
        main = sym secondary_main,
        satp = sym KERNEL_SATP,
    )
}

/// The Rust side of [`secondary_entry`]: runs the record's `entry(cpu, arg)`.
///
/// # Safety
/// `record` must be the [`StartRecord`] written by [`HartTable::start`] for this hart.
unsafe extern "C" fn secondary_main(record: *const StartRecord) -> ! {
    // Safety: `HartTable::start` wrote the record before `hart_start` (fenced) and never
    // writes or frees it after the call succeeded; the block it lives in is leaked.
    let record = unsafe { record.read() };
    // Safety: `HartTable::start` prepared this CPU's trap stack before starting the hart,
    // and this is the hart of CPU `record.cpu`.
    unsafe { trap::enter_cpu(record.cpu) };
    if crate::arch::vector_unit_present() {
        // Safety: the device tree said the harts have the V extension.
        unsafe { crate::arch::enable_vector_unit() };
    }
    let cpu = CpuId(u32::try_from(record.cpu).expect("CPU numbers fit in u32 (HartTable::start)"));
    (record.entry)(cpu, record.arg)
}

/// The harts of the machine, by CPU number.
#[derive(Debug)]
pub struct HartTable {
    /// The hart id of each CPU; index 0 is the boot hart.
    hart_ids: Vec<usize>,
    /// Whether each CPU has been started (the boot hart runs from the start).
    started: Vec<AtomicBool>,
}

impl HartTable {
    /// The table of the boot hart `boot_hart` and the harts `hart_ids` (the boot hart may
    /// or may not be among them; duplicates are dropped), at most [`MAX_CPUS`] of them.
    pub fn new(boot_hart: usize, hart_ids: &[usize]) -> Self {
        let mut ids = Vec::with_capacity(hart_ids.len() + 1);
        ids.push(boot_hart);
        for &id in hart_ids {
            if !ids.contains(&id) && ids.len() < MAX_CPUS {
                ids.push(id);
            }
        }
        let started = (0..ids.len())
            .map(|cpu| AtomicBool::new(cpu == 0))
            .collect();
        Self {
            hart_ids: ids,
            started,
        }
    }

    /// How many CPUs there are, at least 1.
    pub fn count(&self) -> usize {
        self.hart_ids.len()
    }

    /// The hart id of `cpu`, if there is such a CPU.
    pub fn hart_id(&self, cpu: CpuId) -> Option<usize> {
        self.hart_ids.get(usize::try_from(cpu.0).ok()?).copied()
    }

    /// Starts `cpu` on a fresh stack of [`STACK_SIZE`] bytes (backed up front, with a guard
    /// page below), running `entry(cpu, arg)`.
    ///
    /// # Errors
    /// [`CpuError::NoSuchCpu`]; [`CpuError::AlreadyStarted`] for the boot CPU and for a CPU
    /// started before; [`CpuError::Platform`] with the SBI error code when the firmware
    /// refused, or with [`sbi::ERR_FAILED`] when the stack could not be allocated.
    pub fn start(
        &self,
        cpu: CpuId,
        entry: fn(CpuId, usize) -> !,
        arg: usize,
    ) -> Result<(), CpuError> {
        let index = usize::try_from(cpu.0).map_err(|_| CpuError::NoSuchCpu)?;
        let hart_id = *self.hart_ids.get(index).ok_or(CpuError::NoSuchCpu)?;
        if self.started[index].swap(true, Ordering::AcqRel) {
            return Err(CpuError::AlreadyStarted);
        }
        if trap::prepare_cpu(index).is_err() {
            self.started[index].store(false, Ordering::Release);
            return Err(CpuError::Platform(sbi::ERR_FAILED));
        }
        let Ok(stack) = Stack::new_backed(STACK_SIZE) else {
            self.started[index].store(false, Ordering::Release);
            return Err(CpuError::Platform(sbi::ERR_FAILED));
        };
        // The top of the stack is 16-byte aligned and `RECORD_SLOT` bytes below it hold the
        // record (checked at compile time to fit in the stack).
        let record = (stack.top() - RECORD_SLOT) as *mut StartRecord;
        // Safety: `record` is aligned (16 divides the slot size and the top) and points at
        // backed, writable memory of the new stack, which nothing else uses.
        unsafe {
            record.write(StartRecord {
                cpu: index,
                entry,
                arg,
            })
        };
        // Make the record visible to the started hart before the firmware starts it.
        fence(Ordering::SeqCst);
        let start_address = secondary_entry as *const () as usize;
        // Safety: `secondary_entry` is sound to start a hart at with `a1` = the address of
        // a `StartRecord` at the top of an unused, 16-byte aligned, mapped stack; the stack
        // is never released once the hart started (it becomes that hart's stack).
        match unsafe { sbi::hart_start(hart_id, start_address, record as usize) } {
            Ok(()) => {
                core::mem::forget(stack);
                STARTED_SECONDARIES.fetch_add(1, Ordering::AcqRel);
                Ok(())
            }
            Err(code) => {
                // The hart did not start: nothing uses the stack, which is released.
                drop(stack);
                if code == sbi::ERR_ALREADY_AVAILABLE {
                    Err(CpuError::AlreadyStarted)
                } else {
                    self.started[index].store(false, Ordering::Release);
                    Err(CpuError::Platform(code))
                }
            }
        }
    }

    /// Sends an IPI to `cpu` (nothing when there is no such CPU): a supervisor software
    /// interrupt, which ends a `wfi` on that hart if it enabled software interrupts in
    /// `sie` (whether or not `sstatus.SIE` is set). The receiver clears `sip.SSIP`.
    pub fn wake(&self, cpu: CpuId) {
        if let Some(hart_id) = self.hart_id(cpu) {
            // The only possible error is an unknown hart, which `hart_id` rules out.
            let _ = sbi::send_ipi(hart_id);
        }
    }
}
