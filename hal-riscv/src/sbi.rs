//! Calls into the SBI firmware (OpenSBI) with `ecall`: hart state management (HSM), IPIs
//! and system reset.
//!
//! The calling convention is the one of the RISC-V SBI specification (v2.0, chapter 3): the
//! extension id goes in `a7`, the function id in `a6`, arguments in `a0`..`a5`; the firmware
//! returns an error code in `a0` (0 for success) and a value in `a1`, and preserves every
//! other register.

use core::arch::asm;

/// An SBI error code: a negative number from the SBI specification (table 1).
pub type SbiError = i64;

/// The call failed for an unspecified reason (`SBI_ERR_FAILED`).
pub const ERR_FAILED: SbiError = -1;
/// A parameter is invalid, for instance an unknown hart id (`SBI_ERR_INVALID_PARAM`).
pub const ERR_INVALID_PARAM: SbiError = -3;
/// The hart is already started (`SBI_ERR_ALREADY_AVAILABLE`).
pub const ERR_ALREADY_AVAILABLE: SbiError = -6;

/// The hart state management extension ("HSM").
const EXTENSION_HSM: usize = 0x48_534D;
/// HSM `sbi_hart_start`.
const FUNCTION_HART_START: usize = 0;
/// The IPI extension ("sPI").
const EXTENSION_IPI: usize = 0x73_5049;
/// IPI `sbi_send_ipi`.
const FUNCTION_SEND_IPI: usize = 0;
/// The timer extension ("TIME").
const EXTENSION_TIME: usize = 0x5449_4D45;
/// TIME `sbi_set_timer`.
const FUNCTION_SET_TIMER: usize = 0;
/// The remote fence extension ("RFNC").
const EXTENSION_RFENCE: usize = 0x5246_4E43;
/// RFNC `sbi_remote_fence_i`.
const FUNCTION_REMOTE_FENCE_I: usize = 0;
/// RFNC `sbi_remote_sfence_vma`.
const FUNCTION_REMOTE_SFENCE_VMA: usize = 1;
/// The `hart_mask_base` that names every hart.
const ALL_HARTS: usize = usize::MAX;
/// The system reset extension ("SRST").
const EXTENSION_SYSTEM_RESET: usize = 0x5352_5354;
/// SRST `sbi_system_reset`.
const FUNCTION_SYSTEM_RESET: usize = 0;
/// `sbi_system_reset` type: shut down.
const RESET_TYPE_SHUTDOWN: usize = 0;
/// `sbi_system_reset` reason: none.
const RESET_REASON_NONE: usize = 0;
/// `sbi_system_reset` reason: system failure.
const RESET_REASON_FAILURE: usize = 1;

/// Makes the SBI call `extension`/`function` with three arguments and returns `a1`, or the
/// error code from `a0`.
fn call(extension: usize, function: usize, arguments: [usize; 3]) -> Result<usize, SbiError> {
    let error: usize;
    let value: usize;
    // Safety: an `ecall` from S-mode traps into the firmware, which reads a0-a2, a6 and a7,
    // writes a0 and a1 and preserves every other register (SBI calling convention). The
    // asm is not `nomem`, so memory written before the call is in place when the firmware
    // (or a hart it starts) reads it. None of the calls made here writes memory the kernel
    // owns: the one pointer passed (`hart_start`'s opaque value) is only handed on.
    unsafe {
        asm!(
            "ecall",
            inlateout("a0") arguments[0] => error,
            inlateout("a1") arguments[1] => value,
            in("a2") arguments[2],
            in("a6") function,
            in("a7") extension,
            options(nostack),
        );
    }
    match error {
        0 => Ok(value),
        // The SBI returns a signed `long` in a0: reinterpret the bits.
        code => Err(code as i64),
    }
}

/// Starts the stopped hart `hart_id` in S-mode at `start_address`, with its hart id in `a0`,
/// `opaque` in `a1`, paging and interrupts off (`sbi_hart_start`, like `pthread_create`
/// without a stack).
///
/// # Errors
/// The SBI error code, for instance [`ERR_ALREADY_AVAILABLE`] when the hart runs already or
/// [`ERR_INVALID_PARAM`] when there is no such hart.
///
/// # Safety
/// `start_address` must be the physical address of code that is sound to run on a fresh
/// hart with nothing but `a0` and `a1` set (no stack), and `opaque` must be what that code
/// expects in `a1`, valid for as long as it uses it.
pub unsafe fn hart_start(
    hart_id: usize,
    start_address: usize,
    opaque: usize,
) -> Result<(), SbiError> {
    call(
        EXTENSION_HSM,
        FUNCTION_HART_START,
        [hart_id, start_address, opaque],
    )
    .map(|_| ())
}

/// Sends an inter-processor interrupt (a supervisor software interrupt) to hart `hart_id`
/// (`sbi_send_ipi`).
///
/// # Errors
/// The SBI error code, [`ERR_INVALID_PARAM`] for an unknown hart.
pub fn send_ipi(hart_id: usize) -> Result<(), SbiError> {
    // The hart mask names hart `hart_mask_base + bit`: bit 0 with base `hart_id`.
    call(EXTENSION_IPI, FUNCTION_SEND_IPI, [1, hart_id, 0]).map(|_| ())
}

/// Programs this hart's timer to raise a supervisor timer interrupt once the `time` CSR
/// reaches `ticks`, and clears a pending timer interrupt (`sbi_set_timer`, like
/// `timer_settime` with an absolute one-shot deadline). `u64::MAX` disarms the timer.
pub fn set_timer(ticks: u64) {
    // `sbi_set_timer` has no error to report (SBI v2.0, section 6.1). On a 64-bit hart the
    // deadline is one register.
    let _ = call(EXTENSION_TIME, FUNCTION_SET_TIMER, [ticks as usize, 0, 0]);
}

/// Makes every other hart's instruction fetches see earlier stores (`sbi_remote_fence_i`
/// on all harts).
///
/// # Errors
/// The SBI error code.
pub fn remote_fence_i() -> Result<(), SbiError> {
    call(EXTENSION_RFENCE, FUNCTION_REMOTE_FENCE_I, [0, ALL_HARTS, 0]).map(|_| ())
}

/// Drops every hart's cached translations of `[start, start + size)`
/// (`sbi_remote_sfence_vma` on all harts; `size` `usize::MAX` for everything).
///
/// # Errors
/// The SBI error code.
pub fn remote_sfence_vma(start: usize, size: usize) -> Result<(), SbiError> {
    // Hart mask 0 with base -1: every hart (SBI v2.0, section 3.1).
    call4(
        EXTENSION_RFENCE,
        FUNCTION_REMOTE_SFENCE_VMA,
        [0, ALL_HARTS, start, size],
    )
    .map(|_| ())
}

/// [`call`] with four arguments.
fn call4(extension: usize, function: usize, arguments: [usize; 4]) -> Result<usize, SbiError> {
    let error: usize;
    let value: usize;
    // Safety: as for `call`; the remote fences pass no pointer at all.
    unsafe {
        asm!(
            "ecall",
            inlateout("a0") arguments[0] => error,
            inlateout("a1") arguments[1] => value,
            in("a2") arguments[2],
            in("a3") arguments[3],
            in("a6") function,
            in("a7") extension,
            options(nostack),
        );
    }
    match error {
        0 => Ok(value),
        code => Err(code as i64),
    }
}

/// Asks the firmware to power the machine off (`sbi_system_reset` with type shutdown),
/// reporting a system failure when `failure` is set. Returns only if the firmware refused.
///
/// OpenSBI on QEMU's `virt` machine shuts down through the `sifive_test` device with status
/// 0 whatever the reason: use [`crate::sifive_test`] to end QEMU with a status.
///
/// Returns the SBI error code the firmware answered with ([`ERR_FAILED`] should it report
/// success and return all the same).
pub fn system_shutdown(failure: bool) -> SbiError {
    let reason = if failure {
        RESET_REASON_FAILURE
    } else {
        RESET_REASON_NONE
    };
    match call(
        EXTENSION_SYSTEM_RESET,
        FUNCTION_SYSTEM_RESET,
        [RESET_TYPE_SHUTDOWN, reason, 0],
    ) {
        Ok(_) => ERR_FAILED,
        Err(code) => code,
    }
}
