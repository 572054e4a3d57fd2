//! The trap vector: faults and interrupts of supervisor mode, turned into kernel-core's
//! [`TrapInfo`] and answered.
//!
//! # Entry
//!
//! `stvec` points at [`hal_riscv_trap_entry`] (direct mode). Every hart keeps, in
//! `sscratch`, the top of the free part of its own trap stack (64 KiB with an unmapped
//! guard page below, backed up front so that it never faults). The entry swaps `sp` with
//! `sscratch`, so it never touches the interrupted stack: a kernel stack overflow into a
//! guard page still traps cleanly. It saves the whole state into a [`TrapFrame`] on the
//! trap stack (every integer register, the interrupted `sp`, every floating-point
//! register and `fcsr`, `sepc`, `sstatus`, `scause`, `stval`), points `sscratch` just below
//! the frame (so that a fault inside the handler stacks a second frame instead of
//! overwriting the first), and calls [`trap_dispatch`]. On return it restores the frame,
//! as the handler may have edited it, puts `sscratch` back and `sret`s.
//!
//! # Dispatch
//!
//! - Interrupts only record, and take no lock (they may interrupt any holder): a timer
//!   interrupt disarms the timer, calls kernel-core's [`TimerHandler`] (which advances its
//!   epoch) with the clock reading, and marks an interrupt pending on its CPU; a software
//!   interrupt (IPI, `wake_cpu`) is acknowledged and marks one pending. The pending mark is
//!   what [`take_pending`] (and so `Interrupts::wait_for_interrupt`) consumes.
//! - A page fault on a committed page that has no frame yet is served by
//!   [`memory::back_on_demand`] and the instruction retried, before kernel-core sees it.
//! - Everything else becomes a [`TrapInfo`] (pc = `sepc`, fp = `s0`, sp, `stval` as the
//!   fault address for page and access faults, the cause decoded from `scause`, the
//!   CPU's trap context word) for the handler kernel-core installed, whose answer is
//!   applied to the frame: resume, redirect (`sepc`, `sp`, `s0`, `a0`, `a1`), or fatal: the
//!   fault is reported on the UART (pc, `stval`, `scause`, sp, fp) and the machine
//!   powered off with status [`FATAL_STATUS`].
//! - A synchronous trap taken while a trap is being handled on the same CPU is fatal.
//!
//! # Interrupts enabled in S-mode
//!
//! Kernel and JIT code may run with `sstatus.SIE` set. Taking any trap clears `SIE` (its
//! old value goes to `SPIE`), so the whole handler runs with interrupts off and no
//! interrupt nests in it; the frame keeps `sstatus` as the trap left it and the exit
//! writes it back before `sret`, which sets `SIE` from `SPIE` again. Nothing here depends
//! on the interrupted context beyond its registers: `sscratch` and `tp` belong to the
//! hart, so a context that moved to another hart traps onto that hart's trap stack.

use core::arch::global_asm;
use core::fmt::{self, Write as _};
use core::mem::{offset_of, size_of};
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};

use kernel_core::boot::image::STDERR_PREFIX;
use kernel_core::hal::{
    Access, MemoryError, Protection, TimerHandler, TrapCause, TrapHandler, TrapInfo, TrapResponse,
};

use crate::arch;
use crate::clock::Timebase;
use crate::cpus::{self, MAX_CPUS};
use crate::memory::{self, DemandOutcome};
use crate::page_table::PAGE_SIZE;
use crate::platform;
use crate::sbi;

/// The size of each hart's trap stack, not counting its guard page.
pub const TRAP_STACK_SIZE: usize = 64 * 1024;

/// The status the machine powers off with after a fatal fault: `sim`'s "the kernel
/// itself failed".
pub const FATAL_STATUS: u8 = 70;

/// `scause`'s top bit: the trap is an interrupt.
const INTERRUPT: usize = 1 << (usize::BITS - 1);
/// Interrupt cause: supervisor software interrupt.
const INTERRUPT_SOFTWARE: usize = 1;
/// Interrupt cause: supervisor timer interrupt.
const INTERRUPT_TIMER: usize = 5;

/// The register state of an interrupted hart, as the trap entry saves it.
#[repr(C)]
#[derive(Debug)]
pub struct TrapFrame {
    /// `x0` to `x31` by number; slot 0 is unused, slot 2 holds the interrupted `sp`.
    pub registers: [usize; 32],
    /// `f0` to `f31`, as 64-bit patterns.
    pub float_registers: [u64; 32],
    /// The floating-point control and status register.
    pub fcsr: usize,
    /// The interrupted instruction (where `sret` continues).
    pub sepc: usize,
    /// `sstatus` at the trap (previous privilege and interrupt enable).
    pub sstatus: usize,
    /// Why the trap was taken.
    pub scause: usize,
    /// The faulting address, or the instruction bits of an illegal instruction.
    pub stval: usize,
    /// Keeps the size a multiple of 16 (the stack alignment).
    padding: usize,
}

/// Register numbers used by name.
const REGISTER_SP: usize = 2;
const REGISTER_FP: usize = 8;
const REGISTER_A0: usize = 10;
const REGISTER_A1: usize = 11;

const FRAME_SIZE: usize = size_of::<TrapFrame>();
const _: () = assert!(
    FRAME_SIZE.is_multiple_of(16),
    "the trap frame keeps sp aligned"
);
const _: () = assert!(offset_of!(TrapFrame, registers) == 0);
const _: () = assert!(offset_of!(TrapFrame, float_registers) == 256);
const _: () = assert!(offset_of!(TrapFrame, fcsr) == 512);
const _: () = assert!(offset_of!(TrapFrame, sepc) == 520);
const _: () = assert!(offset_of!(TrapFrame, sstatus) == 528);
const _: () = assert!(offset_of!(TrapFrame, scause) == 536);
const _: () = assert!(offset_of!(TrapFrame, stval) == 544);

global_asm!(
    r#"
    .section .text.hal_riscv_trap_entry, "ax", @progbits
    .balign 4
    .global hal_riscv_trap_entry
hal_riscv_trap_entry:
    csrrw sp, sscratch, sp
    addi sp, sp, -{frame_size}
    .irp n, 1,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    sd x\n, (8 * \n)(sp)
    .endr
    csrr t0, sscratch
    sd t0, (8 * 2)(sp)
    .option push
    .option arch, +d
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    fsd f\n, ({fregs} + 8 * \n)(sp)
    .endr
    frcsr t0
    .option pop
    sd t0, {fcsr}(sp)
    csrr t0, sepc
    sd t0, {sepc}(sp)
    csrr t0, sstatus
    sd t0, {sstatus}(sp)
    csrr t0, scause
    sd t0, {scause}(sp)
    csrr t0, stval
    sd t0, {stval}(sp)
    csrw sscratch, sp
    mv a0, sp
    call {dispatch}
    ld t0, {sepc}(sp)
    csrw sepc, t0
    ld t0, {sstatus}(sp)
    csrw sstatus, t0
    ld t0, {fcsr}(sp)
    .option push
    .option arch, +d
    fscsr t0
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    fld f\n, ({fregs} + 8 * \n)(sp)
    .endr
    .option pop
    addi t0, sp, {frame_size}
    csrw sscratch, t0
    .irp n, 1,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    ld x\n, (8 * \n)(sp)
    .endr
    ld sp, (8 * 2)(sp)
    sret
    "#,
    frame_size = const FRAME_SIZE,
    fregs = const offset_of!(TrapFrame, float_registers),
    fcsr = const offset_of!(TrapFrame, fcsr),
    sepc = const offset_of!(TrapFrame, sepc),
    sstatus = const offset_of!(TrapFrame, sstatus),
    scause = const offset_of!(TrapFrame, scause),
    stval = const offset_of!(TrapFrame, stval),
    dispatch = sym trap_dispatch,
);

unsafe extern "C" {
    /// The trap vector (above). Not a function to call: its address goes into `stvec`.
    fn hal_riscv_trap_entry();
}

/// What the trap path keeps per CPU.
#[derive(Debug)]
struct HartState {
    /// The trap context word of [`kernel_core::hal::Traps::set_trap_context`].
    context: AtomicUsize,
    /// How many synchronous traps this CPU is handling (more than one is fatal).
    depth: AtomicUsize,
    /// The top of the CPU's trap stack, 0 before [`prepare_cpu`].
    trap_stack_top: AtomicUsize,
    /// Timer interrupts taken (the CPU's epoch).
    timer_interrupts: AtomicU64,
    /// Software interrupts (IPIs) taken.
    software_interrupts: AtomicU64,
    /// Set by every timer and software interrupt, cleared by [`take_pending`].
    pending: AtomicBool,
}

/// The per-CPU state, by CPU number.
static HARTS: [HartState; MAX_CPUS] = [const {
    HartState {
        context: AtomicUsize::new(0),
        depth: AtomicUsize::new(0),
        trap_stack_top: AtomicUsize::new(0),
        timer_interrupts: AtomicU64::new(0),
        software_interrupts: AtomicU64::new(0),
        pending: AtomicBool::new(false),
    }
}; MAX_CPUS];

/// kernel-core's handler as a data pointer, null before one is installed.
static HANDLER: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());

/// kernel-core's timer handler as a data pointer, null before one is installed.
static TIMER_HANDLER: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());

/// The `time` CSR's frequency, for the clock reading handed to the timer handler (0
/// before [`set_timebase`]: QEMU `virt`'s default then).
static TIMEBASE_HZ: AtomicU64 = AtomicU64::new(0);

/// The state of the running CPU.
fn current_hart() -> &'static HartState {
    // CPU numbers are below MAX_CPUS (`HartTable` keeps no more CPUs than that).
    &HARTS[cpus::current_cpu_index() % MAX_CPUS]
}

/// Allocates CPU `cpu`'s trap stack (a reservation with a guard page at the bottom, the
/// rest backed at once). Called for each CPU before it enables its trap vector.
///
/// # Errors
/// The [`MemoryError`] when the stack cannot be had.
pub fn prepare_cpu(cpu: usize) -> Result<(), MemoryError> {
    let hart = HARTS.get(cpu).ok_or(MemoryError::Platform(-1))?;
    if hart.trap_stack_top.load(Ordering::Acquire) != 0 {
        return Ok(());
    }
    let base = memory::reserve(TRAP_STACK_SIZE + PAGE_SIZE)?.as_ptr() as usize;
    memory::populate(base + PAGE_SIZE, TRAP_STACK_SIZE, Protection::ReadWrite)?;
    hart.trap_stack_top
        .store(base + PAGE_SIZE + TRAP_STACK_SIZE, Ordering::Release);
    Ok(())
}

/// Points the running hart (CPU `cpu`) at the trap vector and its trap stack, and lets
/// timer and software interrupts through `sie` (they are taken once `sstatus.SIE` is set).
///
/// # Safety
/// Call on the hart of CPU `cpu`, after [`prepare_cpu`] for it succeeded.
pub unsafe fn enter_cpu(cpu: usize) {
    let top = HARTS[cpu].trap_stack_top.load(Ordering::Acquire);
    assert!(top != 0, "trap stack of CPU {cpu} not prepared");
    // Safety: the entry is 4-byte aligned (`.balign 4`) and expects `sscratch` to hold
    // the top of a trap stack; `prepare_cpu` backed this one, used by this hart only.
    unsafe { arch::install_trap_vector(hal_riscv_trap_entry as *const () as usize, top) };
    // No deadline until kernel-core sets one (the firmware may have left one armed, or
    // expired, which would end every `wfi` at once).
    sbi::set_timer(u64::MAX);
    arch::enable_interrupt_sources(arch::SIE_SSIE | arch::SIE_STIE);
}

/// Sets the timebase the timer interrupt converts the `time` CSR with.
pub fn set_timebase(timebase: Timebase) {
    TIMEBASE_HZ.store(timebase.hz(), Ordering::Release);
}

/// Installs kernel-core's timer handler for every CPU.
pub fn install_timer_handler(handler: TimerHandler) {
    TIMER_HANDLER.store(handler as *mut (), Ordering::Release);
}

/// The timer handler kernel-core installed, if any.
fn installed_timer_handler() -> Option<TimerHandler> {
    let pointer = TIMER_HANDLER.load(Ordering::Acquire);
    if pointer.is_null() {
        return None;
    }
    // Safety: the only non-null values stored in `TIMER_HANDLER` are `TimerHandler`
    // function pointers cast to data pointers (`install_timer_handler`); function and
    // data pointers have the same size on riscv64, so the cast back gives the same
    // function.
    Some(unsafe { core::mem::transmute::<*mut (), TimerHandler>(pointer) })
}

/// Whether a timer or software interrupt was taken on CPU `cpu` since the previous call
/// for it; clears the mark.
pub fn take_pending(cpu: usize) -> bool {
    HARTS
        .get(cpu)
        .is_some_and(|hart| hart.pending.swap(false, Ordering::AcqRel))
}

/// Installs kernel-core's handler for every CPU.
pub fn install_handler(handler: TrapHandler) {
    HANDLER.store(handler as *mut (), Ordering::Release);
}

/// The handler kernel-core installed, if any.
fn installed_handler() -> Option<TrapHandler> {
    let pointer = HANDLER.load(Ordering::Acquire);
    if pointer.is_null() {
        return None;
    }
    // Safety: the only non-null values stored in `HANDLER` are `TrapHandler` function
    // pointers cast to data pointers (`install_handler`); function and data pointers have
    // the same size on riscv64, so the cast back gives the same function.
    Some(unsafe { core::mem::transmute::<*mut (), TrapHandler>(pointer) })
}

/// Sets the running CPU's trap context word; returns the previous one.
pub fn set_context(context: usize) -> usize {
    current_hart().context.swap(context, Ordering::Relaxed)
}

/// Timer interrupts CPU `cpu` has taken.
pub fn timer_interrupts(cpu: usize) -> u64 {
    HARTS
        .get(cpu)
        .map_or(0, |hart| hart.timer_interrupts.load(Ordering::Relaxed))
}

/// Software interrupts (IPIs) CPU `cpu` has taken.
pub fn software_interrupts(cpu: usize) -> u64 {
    HARTS
        .get(cpu)
        .map_or(0, |hart| hart.software_interrupts.load(Ordering::Relaxed))
}

/// The Rust side of the trap entry: handles the trap saved in `frame` and edits the frame
/// to say where to continue.
///
/// # Safety
/// Only for the trap entry, with `frame` pointing at the frame it just saved on this
/// hart's trap stack.
unsafe extern "C" fn trap_dispatch(frame: *mut TrapFrame) {
    // Safety: the entry passes the frame it saved, on the trap stack, which nothing else
    // refers to until the entry restores it after this function returns.
    let frame = unsafe { &mut *frame };
    let hart = current_hart();
    if frame.scause & INTERRUPT != 0 {
        handle_interrupt(hart, frame.scause & !INTERRUPT);
        return;
    }
    if hart.depth.fetch_add(1, Ordering::Relaxed) > 0 {
        fatal(frame, None, "fault while handling a trap");
    }
    handle_exception(hart, frame);
    hart.depth.fetch_sub(1, Ordering::Relaxed);
}

/// Records an interrupt. Interrupt context: the interrupted code may hold any lock, so
/// this touches atomics only (and the firmware, through `ecall`).
fn handle_interrupt(hart: &HartState, cause: usize) {
    match cause {
        INTERRUPT_TIMER => {
            // One-shot: disarm (which also clears the pending bit) until the next
            // `set_timer_deadline`.
            sbi::set_timer(u64::MAX);
            hart.timer_interrupts.fetch_add(1, Ordering::Relaxed);
            if let Some(handler) = installed_timer_handler() {
                let timebase = Timebase::new(TIMEBASE_HZ.load(Ordering::Acquire));
                handler(timebase.now_ns());
            }
            hart.pending.store(true, Ordering::Release);
        }
        INTERRUPT_SOFTWARE => {
            arch::clear_pending(arch::SIP_SSIP);
            hart.software_interrupts.fetch_add(1, Ordering::Relaxed);
            hart.pending.store(true, Ordering::Release);
        }
        // No other source is enabled in `sie`.
        _ => {}
    }
}

/// The kernel-core view of a synchronous trap's cause, and the fault address.
fn decode(scause: usize, stval: usize) -> (TrapCause, Option<usize>) {
    match scause {
        1 | 12 => (TrapCause::MemoryFault(Access::Execute), Some(stval)),
        5 | 13 => (TrapCause::MemoryFault(Access::Read), Some(stval)),
        7 | 15 => (TrapCause::MemoryFault(Access::Write), Some(stval)),
        2 => (TrapCause::IllegalInstruction, None),
        3 => (TrapCause::Breakpoint, None),
        other => (TrapCause::Other(other as u64), None),
    }
}

/// Handles a fault: demand paging first, then kernel-core's handler.
fn handle_exception(hart: &HartState, frame: &mut TrapFrame) {
    let (cause, fault_address) = decode(frame.scause, frame.stval);
    if let (TrapCause::MemoryFault(access), 12 | 13 | 15) = (cause, frame.scause) {
        match memory::back_on_demand(frame.stval, access) {
            DemandOutcome::Backed => return,
            DemandOutcome::NotDemand => {}
            DemandOutcome::OutOfMemory => {
                fatal(frame, None, "out of memory backing a committed page")
            }
            DemandOutcome::Busy => fatal(frame, None, "fault inside the memory manager"),
        }
    }
    let info = TrapInfo {
        pc: frame.sepc,
        fp: frame.registers[REGISTER_FP],
        sp: frame.registers[REGISTER_SP],
        fault_address,
        cause,
        context: hart.context.load(Ordering::Relaxed),
    };
    let handler = installed_handler();
    match handler.map_or(TrapResponse::Fatal, |handler| handler(&info)) {
        TrapResponse::Resume => {}
        TrapResponse::Redirect(redirect) => {
            frame.sepc = redirect.pc;
            frame.registers[REGISTER_SP] = redirect.sp;
            frame.registers[REGISTER_FP] = redirect.fp;
            frame.registers[REGISTER_A0] = redirect.args[0];
            frame.registers[REGISTER_A1] = redirect.args[1];
        }
        TrapResponse::Fatal => {
            let what = if handler.is_some() {
                "fatal fault outside WebAssembly"
            } else {
                "fault with no trap handler installed"
            };
            fatal(frame, Some(&info), what);
        }
    }
}

/// The name of a synchronous `scause`.
fn cause_name(scause: usize) -> &'static str {
    match scause {
        0 => "instruction address misaligned",
        1 => "instruction access fault",
        2 => "illegal instruction",
        3 => "breakpoint",
        4 => "load address misaligned",
        5 => "load access fault",
        6 => "store address misaligned",
        7 => "store access fault",
        8 | 9 => "environment call",
        12 => "instruction page fault",
        13 => "load page fault",
        15 => "store page fault",
        _ => "unknown cause",
    }
}

/// Set by the first fatal report, so that a fault while reporting powers off at once.
static REPORTING: AtomicUsize = AtomicUsize::new(0);

/// Writes to the UART without locks or allocation (the trap path may have interrupted a
/// holder of the console lock).
struct RawConsole;

impl fmt::Write for RawConsole {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        platform::panic_console().write_bytes_unlocked(text.as_bytes());
        Ok(())
    }
}

/// Reports a fault that cannot be handled and powers the machine off with
/// [`FATAL_STATUS`]:
/// `WHAT: scause=0x.. (NAME) at pc=0x.. stval=0x.. sp=0x.. fp=0x.. cpu=N`, as a line for
/// standard error ([`STDERR_PREFIX`]: `sim qemu` shows it there).
fn fatal(frame: &TrapFrame, info: Option<&TrapInfo>, what: &str) -> ! {
    if REPORTING.fetch_add(1, Ordering::AcqRel) == 0 {
        let (sp, fp) = info.map_or(
            (frame.registers[REGISTER_SP], frame.registers[REGISTER_FP]),
            |info| (info.sp, info.fp),
        );
        // Writing to the UART cannot fail (`RawConsole` always returns Ok).
        let _ = writeln!(
            RawConsole,
            "{}{what}: scause={:#x} ({}) at pc={:#x} stval={:#x} sp={sp:#x} fp={fp:#x} cpu={}",
            char::from(STDERR_PREFIX),
            frame.scause,
            cause_name(frame.scause),
            frame.sepc,
            frame.stval,
            cpus::current_cpu_index(),
        );
    }
    platform::panic_test_device().exit(FATAL_STATUS)
}
