//! Supervisor-mode control registers and fences, each behind a small function with the
//! reason it is sound.

use core::arch::asm;
use core::sync::atomic::{AtomicBool, Ordering};

/// `sstatus.SIE`: interrupts enabled in S-mode.
pub const SSTATUS_SIE: usize = 1 << 1;
/// `sstatus.VS = Initial`: enables the vector unit (only on harts that have one).
pub const SSTATUS_VS_INITIAL: usize = 1 << 9;
/// `sie.SSIE`: supervisor software interrupts (IPIs).
pub const SIE_SSIE: usize = 1 << 1;
/// `sie.STIE`: supervisor timer interrupts.
pub const SIE_STIE: usize = 1 << 5;
/// `sip.SSIP`: a supervisor software interrupt is pending.
pub const SIP_SSIP: usize = 1 << 1;

/// Writes `satp` (turning translation on or switching tables) and flushes the TLB.
///
/// # Safety
/// `value` must select page tables under which the code running now, its stack and every
/// static it uses stay mapped at the same addresses.
pub unsafe fn write_satp(value: u64) {
    // Safety: the caller guarantees execution continues at the same addresses; the fence
    // drops translations cached from earlier tables.
    unsafe { asm!("csrw satp, {}", "sfence.vma", in(reg) value, options(nostack)) };
}

/// Reads `satp` back: after [`write_satp`] it holds the written value only when the hart
/// implements the paging mode asked for (the privileged spec: a write of an unsupported
/// `MODE` has no effect at all).
pub fn read_satp() -> u64 {
    let value: u64;
    // Safety: reading `satp` in S-mode has no side effect.
    unsafe { asm!("csrr {}, satp", out(reg) value, options(nomem, nostack)) };
    value
}

/// Drops every cached translation of this hart (`sfence.vma` with no operands), after
/// page table entries changed.
pub fn flush_tlb() {
    // Safety: a fence only orders page table accesses and drops cached translations; it
    // changes no register or memory.
    unsafe { asm!("sfence.vma", options(nostack)) };
}

/// Drops this hart's cached translations of the page at `address`.
pub fn flush_tlb_page(address: usize) {
    // Safety: as for `flush_tlb`.
    unsafe { asm!("sfence.vma {}, zero", in(reg) address, options(nostack)) };
}

/// Makes this hart's instruction fetches see earlier stores (`fence.i`).
pub fn fence_i() {
    // Safety: `fence.i` only synchronises the instruction stream with memory.
    unsafe { asm!("fence.i", options(nostack)) };
}

/// Sets the bits `mask` of `sstatus` and returns its previous value.
pub fn set_sstatus(mask: usize) -> usize {
    let previous: usize;
    // Safety: only used with SIE, FS and VS bits (interrupt enable, unit enables), which
    // change no memory; enabling interrupts is what the caller asks for.
    unsafe { asm!("csrrs {}, sstatus, {}", out(reg) previous, in(reg) mask, options(nostack)) };
    previous
}

/// Clears the bits `mask` of `sstatus` and returns its previous value.
pub fn clear_sstatus(mask: usize) -> usize {
    let previous: usize;
    // Safety: as for `set_sstatus`; clearing SIE only masks interrupts.
    unsafe { asm!("csrrc {}, sstatus, {}", out(reg) previous, in(reg) mask, options(nostack)) };
    previous
}

/// Sets the bits `mask` of `sie` (which interrupts may be taken).
pub fn enable_interrupt_sources(mask: usize) {
    // Safety: enabling interrupt sources only decides which pending interrupts trap; the
    // trap vector is installed before any source is enabled.
    unsafe { asm!("csrs sie, {}", in(reg) mask, options(nostack)) };
}

/// Clears the bits `mask` of `sip` (acknowledges software interrupts).
pub fn clear_pending(mask: usize) {
    // Safety: clearing a pending bit only drops an interrupt request.
    unsafe { asm!("csrc sip, {}", in(reg) mask, options(nostack)) };
}

/// Installs the trap vector (direct mode) and the trap stack pointer in `sscratch`.
///
/// # Safety
/// `vector` must be the address of a 4-byte aligned trap entry that expects `sscratch` to
/// hold `trap_stack_top`, the top of a mapped stack that nothing else uses.
pub unsafe fn install_trap_vector(vector: usize, trap_stack_top: usize) {
    // Safety: the caller guarantees both values; `sscratch` is written first, so a trap
    // taken right after `stvec` finds its stack.
    unsafe {
        asm!(
            "csrw sscratch, {stack}",
            "csrw stvec, {vector}",
            stack = in(reg) trap_stack_top,
            vector = in(reg) vector,
            options(nostack),
        );
    }
}

/// Waits for an interrupt (`wfi`); returns at once when one is pending and enabled in
/// `sie`, and may return spuriously.
pub fn wait_for_interrupt() {
    // Safety: `wfi` only pauses the hart.
    unsafe { asm!("wfi", options(nomem, nostack)) };
}

/// Opens interrupts for an instant (`sstatus.SIE` on, then off): the interrupts pending
/// and enabled in `sie` are taken and handled by the trap vector. Leaves `SIE` off.
pub fn take_interrupts() {
    // Safety: only toggles `sstatus.SIE`; the trap vector is installed before any source
    // is enabled in `sie`, and its handlers for interrupts touch only atomics, so taking
    // them here cannot disturb the caller. The `nop` keeps an instruction boundary with
    // `SIE` on (the CSR write itself makes interrupts visible on QEMU and by the spec).
    unsafe {
        asm!(
            "csrsi sstatus, 2",
            "nop",
            "csrci sstatus, 2",
            options(nostack)
        )
    };
}

/// Whether the harts have the V extension (set from the device tree).
static VECTOR_UNIT: AtomicBool = AtomicBool::new(false);

/// Whether [`enable_vector_unit`] was called on the boot hart: the harts have a vector
/// unit, and every hart turns it on.
pub fn vector_unit_present() -> bool {
    VECTOR_UNIT.load(Ordering::Acquire)
}

/// Turns on this hart's vector unit (`sstatus.VS = Initial`) with fixed-point rounding to
/// nearest, ties up (`vcsr` = 0: `vxrm` = RNU, `vxsat` clear), which JIT code relies on.
///
/// # Safety
/// The hart must implement the V extension: `vcsr` does not exist otherwise (and some
/// implementations keep `sstatus.VS` writable all the same).
pub unsafe fn enable_vector_unit() {
    set_sstatus(SSTATUS_VS_INITIAL);
    // Safety: the caller guarantees the V extension, so `vcsr` (0x00f) exists; with
    // `sstatus.VS` on, S-mode may write it. Only rounding and saturation state change.
    unsafe { asm!("csrw 0x00f, zero", options(nomem, nostack)) };
    VECTOR_UNIT.store(true, Ordering::Release);
}

/// The width of this hart's vector registers in bits (`8 * vlenb`).
///
/// # Safety
/// The vector unit must be on ([`enable_vector_unit`]): `vlenb` does not exist otherwise.
pub unsafe fn vector_register_bits() -> u64 {
    let bytes: u64;
    // Safety: the caller guarantees the V extension with the unit on, so the read-only
    // CSR `vlenb` (0xc22) exists; reading it has no side effect.
    unsafe { asm!("csrr {}, 0xc22", out(reg) bytes, options(nomem, nostack)) };
    bytes * 8
}
