//! The HAL conformance suite: one set of checks that every HAL implementation must pass.
//!
//! [`run`] exercises, through the traits only, what kernel-core relies on: virtual memory,
//! execution contexts (switching, stack bounds, callee-saved state, migration to another
//! CPU), the timer, waiting and waking, and trap delivery (`Resume` after demand paging,
//! `Redirect` to a landing function). `hal-hosted` runs it as an integration test; the
//! kernel's self-check mode runs it under QEMU against `hal-riscv`.
//!
//! The suite changes global platform state, which the caller must know about:
//! - it installs its own [`TrapHandler`](super::TrapHandler) and
//!   [`TimerHandler`](super::TimerHandler): a caller that wants its own must install them
//!   after the suite;
//! - it starts CPU 1 (when there is more than one CPU), which can be started only once:
//!   the suite must run on another CPU (normally CPU 0) before anything starts CPU 1, and
//!   afterwards CPU 1 stays parked forever in a loop of
//!   [`Interrupts::wait_for_interrupt`], unusable by the kernel;
//! - it leaves the current CPU's timer disarmed and restores its interrupt-enable state
//!   and trap context word.
//!
//! Waits are bounded by the clock where the HAL allows it: a check that sees nothing
//! happen within its limit fails with an error instead of hanging. The timer is first
//! checked by polling the clock, so that the later checks can use it as a backstop.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use core::cell::UnsafeCell;
use core::fmt;
use core::hint::black_box;
use core::ops::Range;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use super::{
    Access, Clock, CpuError, CpuId, Cpus, ExecutionContexts, Interrupts, Isa, MemoryError,
    Protection, Redirect, TrapCause, TrapInfo, TrapResponse, Traps, VirtualMemory,
};

/// The first failed check of [`run`]: which one, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConformanceError {
    /// The name of the check, as printed by [`run`] (`"timer"`, `"traps"`, ...).
    pub check: &'static str,
    /// What the HAL did wrong, in words.
    pub reason: String,
}

impl fmt::Display for ConformanceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "HAL conformance check `{}` failed: {}",
            self.check, self.reason
        )
    }
}

/// Everything the suite needs of a HAL, as one bound.
trait Platform:
    VirtualMemory + ExecutionContexts + Interrupts + Clock + Cpus + Traps + Sync + 'static
{
}

impl<T> Platform for T where
    T: VirtualMemory + ExecutionContexts + Interrupts + Clock + Cpus + Traps + Sync + 'static
{
}

/// What a check found when it did not fail.
enum Outcome {
    /// The check passed; the text says what was measured.
    Passed(String),
    /// The check does not apply to this platform (one CPU only), with the reason.
    Skipped(&'static str),
}

/// A check: `Ok` with its outcome, or `Err` with the reason it failed.
type Check<H> = fn(&'static H) -> Result<Outcome, String>;

/// One millisecond in nanoseconds.
const MILLISECOND: u64 = 1_000_000;
/// How long any single event may take before a check gives up on it.
const LIMIT_NS: u64 = 1_000 * MILLISECOND;
/// The stacks the suite allocates.
const STACK_SIZE: usize = 64 * 1024;

/// Runs every check against `hal`, printing one line per check through `out` (without a
/// trailing newline), and returns how many checks passed (skipped checks do not count).
///
/// See the module documentation for what the suite does to the platform: it installs its
/// own trap and timer handlers, and starts CPU 1 and leaves it parked.
///
/// # Errors
/// The first check that fails, with the reason; the checks after it do not run.
pub fn run<H>(
    hal: &'static H,
    out: &mut dyn FnMut(fmt::Arguments<'_>),
) -> Result<usize, ConformanceError>
where
    H: VirtualMemory + ExecutionContexts + Interrupts + Clock + Cpus + Traps + Sync,
{
    let checks: [(&'static str, Check<H>); 6] = [
        ("virtual memory", check_virtual_memory::<H>),
        ("execution contexts", check_contexts::<H>),
        ("timer", check_timer::<H>),
        ("wake before wait", check_wake_before_wait::<H>),
        ("traps", check_traps::<H>),
        ("second cpu", check_second_cpu::<H>),
    ];
    let mut passed = 0;
    for (check, function) in checks {
        match function(hal) {
            Ok(Outcome::Passed(detail)) => {
                out(format_args!("hal conformance: {check}: ok ({detail})"));
                passed += 1;
            }
            Ok(Outcome::Skipped(why)) => {
                out(format_args!("hal conformance: {check}: skipped ({why})"));
            }
            Err(reason) => {
                out(format_args!("hal conformance: {check}: FAILED: {reason}"));
                return Err(ConformanceError { check, reason });
            }
        }
    }
    Ok(passed)
}

// ---------------------------------------------------------------------------------------
// Virtual memory

/// Reserve, commit, write and read back, protect, decommit (contents must read as zero when
/// committed again) and release.
fn check_virtual_memory<H: Platform>(hal: &'static H) -> Result<Outcome, String> {
    let page = hal.page_size();
    if !page.is_power_of_two() {
        return Err(format!("page size {page} is not a power of two"));
    }
    let len = page.checked_mul(4).ok_or("page size overflows")?;
    let base = hal
        .reserve(len)
        .map_err(|error| format!("reserve: {error}"))?;
    if !(base.as_ptr() as usize).is_multiple_of(page) {
        return Err(format!("reservation {base:p} is not page aligned"));
    }
    let result = exercise_reservation(hal, base, page);
    // Safety: `base`/`len` is exactly the reservation made above, and nothing refers to it
    // any more: `exercise_reservation` has returned.
    let released = unsafe { hal.release(base, len) };
    result?;
    released.map_err(|error| format!("release: {error}"))?;
    Ok(Outcome::Passed(format!("page size {page}")))
}

/// The body of [`check_virtual_memory`] on the reservation `[base, base + 4 pages)`.
fn exercise_reservation<H: VirtualMemory>(
    hal: &H,
    base: NonNull<u8>,
    page: usize,
) -> Result<(), String> {
    let step = |what: &str, result: Result<(), MemoryError>| {
        result.map_err(|error| format!("{what}: {error}"))
    };
    let two_pages = page * 2;
    // Safety: the first two pages lie inside the live 4-page reservation at `base`, and no
    // reference points into them yet.
    step("commit", unsafe {
        hal.commit(base, two_pages, Protection::ReadWrite)
    })?;
    let last = two_pages - 1;
    // Safety: both pages were just committed read+write; offsets 0 and `last` lie in them.
    unsafe {
        base.as_ptr().write_volatile(0x5a);
        base.as_ptr().add(last).write_volatile(0xa5);
    }
    // Safety: same committed pages; no reference into them exists.
    step("protect", unsafe {
        hal.protect(base, two_pages, Protection::Read)
    })?;
    // Safety: the pages are readable now and offsets 0 and `last` lie in them.
    let (first, end) = unsafe {
        (
            base.as_ptr().read_volatile(),
            base.as_ptr().add(last).read_volatile(),
        )
    };
    if (first, end) != (0x5a, 0xa5) {
        return Err(format!(
            "read back {first:#x}, {end:#x} instead of 0x5a, 0xa5 after protect"
        ));
    }
    // Safety: the pages lie in the reservation and their contents are no longer needed.
    step("decommit", unsafe { hal.decommit(base, two_pages) })?;
    // Safety: committing again inside the same live reservation.
    step("commit again", unsafe {
        hal.commit(base, page, Protection::Read)
    })?;
    // Safety: the first page is committed readable.
    let again = unsafe { base.as_ptr().read_volatile() };
    if again != 0 {
        return Err(format!("decommitted memory reads {again:#x}, not zero"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Execution contexts

/// How many times the token goes round main → context 0 → context 1 → main.
const ROUNDS: u64 = 10_000;

/// What the caller and its two contexts share during [`check_contexts`].
struct PingPong<H: ExecutionContexts + 'static> {
    hal: &'static H,
    /// The caller's context while a context runs.
    main: UnsafeCell<H::SavedContext>,
    /// The two contexts while they are suspended.
    contexts: [UnsafeCell<H::SavedContext>; 2],
    /// Each context's stack bounds.
    bounds: [Range<usize>; 2],
    /// The token passed around.
    token: AtomicU64,
    /// The address of a local of each context, as seen in the context's first round.
    local_addresses: [AtomicUsize; 2],
    /// Each context's result of [`mix`] after all rounds.
    results: [AtomicU64; 2],
}

/// The step context `index` applies to the token.
fn step(index: usize, token: u64) -> u64 {
    if index == 0 {
        token.wrapping_mul(3).wrapping_add(1)
    } else {
        token ^ 0x5555
    }
}

/// A computation with many live integers and floats, fed one round at a time; `between`
/// runs between rounds (a context switch, or nothing for the reference). Its result
/// depends on every local, so a register that a switch fails to keep changes it.
#[inline(always)]
fn mix(seed: u64, rounds: u64, mut between: impl FnMut(u64)) -> u64 {
    let (mut a, mut b, mut c, mut d) = (seed, seed ^ 0x9e37, seed.rotate_left(17), !seed);
    let (mut e, mut f, mut g, mut h) = (seed | 1, seed >> 3, seed.wrapping_mul(7), 42_u64);
    let (mut x, mut y, mut z) = (seed as f64 * 0.5, 1.25_f64, -3.0_f64);
    for round in 0..rounds {
        a = a
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(round);
        b = b.rotate_left(7) ^ a;
        c = c.wrapping_add(b);
        d ^= c >> 3;
        e = e.wrapping_sub(d);
        f = f.wrapping_add(e.rotate_right(11));
        g ^= f.wrapping_mul(3);
        h = h.wrapping_add(g ^ round);
        x = x * 0.999 + (round % 7) as f64;
        y = y * 0.5 + x * 0.25;
        z = z - y * 0.125 + 1.0;
        between(round);
    }
    let floats = (x + y + z).to_bits();
    a ^ b ^ c ^ d ^ e ^ f ^ g ^ h ^ floats
}

/// The seed of context `index`'s [`mix`].
fn seed(index: usize) -> u64 {
    0x1234_5678_9abc_def0 ^ (index as u64 + 1)
}

/// The entry of the two ping-pong contexts; `arg` is the address of the [`PingPong`] with
/// the context's index in its lowest bit.
fn ping_pong_entry<H: Platform>(arg: usize) -> ! {
    let index = arg & 1;
    // Safety: `arg` without its low bit is the address of the `PingPong` that
    // `check_contexts` keeps alive (on its own stack) until both contexts are suspended
    // for the last time.
    let shared = unsafe { &*((arg & !1) as *const PingPong<H>) };
    let local = black_box(0_u8);
    shared.local_addresses[index].store(core::ptr::addr_of!(local) as usize, Ordering::Relaxed);
    let next = if index == 0 {
        shared.contexts[1].get()
    } else {
        shared.main.get()
    };
    let this = shared.contexts[index].get();
    let result = mix(black_box(seed(index)), ROUNDS + 1, |round| {
        let token = shared.token.load(Ordering::Relaxed);
        shared.token.store(step(index, token), Ordering::Relaxed);
        if round < ROUNDS {
            // Safety: `this` is this context's own slot and `next` the suspended context
            // the protocol continues with (context 1, or the caller), both in `shared`.
            unsafe { shared.hal.switch(this, next) };
        }
    });
    shared.results[index].store(result, Ordering::Relaxed);
    // Safety: as above; this is the last switch away, never resumed.
    unsafe { shared.hal.switch(this, next) };
    panic!("a finished conformance context was resumed");
}

/// Ping-pong between the caller and two contexts, checking the token, stack bounds and
/// that callee-saved state survives every switch.
fn check_contexts<H: Platform>(hal: &'static H) -> Result<Outcome, String> {
    let page = hal.page_size();
    let stacks = [
        hal.allocate_stack(STACK_SIZE)
            .map_err(|error| format!("allocate_stack: {error:?}"))?,
        hal.allocate_stack(STACK_SIZE)
            .map_err(|error| format!("allocate_stack: {error:?}"))?,
    ];
    let bounds = [hal.stack_bounds(&stacks[0]), hal.stack_bounds(&stacks[1])];
    for range in &bounds {
        if !range.start.is_multiple_of(page) || !range.end.is_multiple_of(16) {
            return Err(format!("stack bounds {range:#x?} misaligned"));
        }
        if range.end.saturating_sub(range.start) < STACK_SIZE {
            return Err(format!(
                "stack bounds {range:#x?} smaller than {STACK_SIZE}"
            ));
        }
    }
    let mut shared = PingPong {
        hal,
        main: UnsafeCell::new(H::SavedContext::default()),
        contexts: [
            UnsafeCell::new(H::SavedContext::default()),
            UnsafeCell::new(H::SavedContext::default()),
        ],
        bounds,
        token: AtomicU64::new(0),
        local_addresses: [AtomicUsize::new(0), AtomicUsize::new(0)],
        results: [AtomicU64::new(0), AtomicU64::new(0)],
    };
    let address = core::ptr::addr_of!(shared) as usize;
    for (index, stack) in stacks.iter().enumerate() {
        *shared.contexts[index].get_mut() =
            hal.new_context(stack, ping_pong_entry::<H>, address | index);
    }
    let shared = &shared;
    let start = hal.now_ns();
    let mut failure = None;
    let own = mix(black_box(seed(2)), ROUNDS + 1, |round| {
        shared.token.store(round, Ordering::Relaxed);
        // Safety: the caller's slot and context 0's, which is suspended (made by
        // `new_context`, or saved by its last switch to context 1, which switched back
        // here); both stacks are alive until the end of this function.
        unsafe { hal.switch(shared.main.get(), shared.contexts[0].get()) };
        let token = shared.token.load(Ordering::Relaxed);
        if failure.is_none() && token != step(1, step(0, round)) {
            failure = Some(format!(
                "round {round}: token {token:#x} after the switches"
            ));
        }
    });
    let elapsed = hal.now_ns().saturating_sub(start);
    if let Some(failure) = failure {
        return Err(failure);
    }
    if own != mix(black_box(seed(2)), ROUNDS + 1, |_| ()) {
        return Err("the caller's callee-saved state changed across switches".into());
    }
    for index in 0..2 {
        let expected = mix(black_box(seed(index)), ROUNDS + 1, |_| ());
        if shared.results[index].load(Ordering::Relaxed) != expected {
            return Err(format!(
                "context {index}'s callee-saved state changed across switches"
            ));
        }
        let local = shared.local_addresses[index].load(Ordering::Relaxed);
        if !shared.bounds[index].contains(&local) {
            return Err(format!(
                "a local of context {index} at {local:#x} lies outside its stack {:#x?}",
                shared.bounds[index]
            ));
        }
    }
    // Both contexts are suspended for good: their stacks may go.
    drop(stacks);
    let switches = 3 * (ROUNDS + 1);
    Ok(Outcome::Passed(format!(
        "{switches} switches, {} ns each",
        elapsed / switches
    )))
}

// ---------------------------------------------------------------------------------------
// Timer

/// Timer interrupts counted by [`count_tick`].
static TICKS: AtomicU64 = AtomicU64::new(0);
/// The clock reading passed to the last [`count_tick`].
static LAST_TICK_NS: AtomicU64 = AtomicU64::new(0);

/// The suite's timer handler.
fn count_tick(now_ns: u64) {
    LAST_TICK_NS.store(now_ns, Ordering::Relaxed);
    TICKS.fetch_add(1, Ordering::Release);
}

/// Busy-waits (reading the clock) for `duration_ns`.
fn spin<H: Clock>(hal: &H, duration_ns: u64) {
    let until = hal.now_ns().saturating_add(duration_ns);
    while hal.now_ns() < until {
        core::hint::spin_loop();
    }
}

/// Calls `wait_for_interrupt` until `done()` holds, for at most [`LIMIT_NS`]; returns how
/// long it took, or `None` when the limit passed first.
fn wait_until<H: Platform>(hal: &H, done: impl Fn() -> bool) -> Option<u64> {
    let start = hal.now_ns();
    loop {
        let elapsed = hal.now_ns().saturating_sub(start);
        if done() {
            return Some(elapsed);
        }
        if elapsed > LIMIT_NS {
            return None;
        }
        hal.wait_for_interrupt();
    }
}

/// The timer: fires (polled, then ending waits), not early, at once for a past deadline,
/// never when disarmed, and only once interrupts are enabled again.
fn check_timer<H: Platform>(hal: &'static H) -> Result<Outcome, String> {
    hal.install_timer_handler(count_tick);
    let was_enabled = hal.set_interrupts_enabled(true);
    let result = timer_steps(hal);
    hal.set_timer_deadline(u64::MAX);
    hal.set_interrupts_enabled(was_enabled);
    result
}

/// The body of [`check_timer`], with interrupts enabled.
fn timer_steps<H: Platform>(hal: &'static H) -> Result<Outcome, String> {
    let ticked = |before: u64| move || TICKS.load(Ordering::Acquire) > before;

    // Polled, so that a timer that never fires is an error rather than a hang.
    let before = TICKS.load(Ordering::Acquire);
    let deadline = hal.now_ns() + MILLISECOND;
    hal.set_timer_deadline(deadline);
    let until = hal.now_ns() + LIMIT_NS;
    while !ticked(before)() {
        if hal.now_ns() > until {
            return Err("a deadline 1 ms ahead did not fire within 1 s (polled)".into());
        }
        core::hint::spin_loop();
    }
    let polled_late = LAST_TICK_NS.load(Ordering::Relaxed).wrapping_sub(deadline);
    if LAST_TICK_NS.load(Ordering::Relaxed) < deadline {
        return Err("the timer fired before its deadline".into());
    }

    // Ending a wait.
    let before = TICKS.load(Ordering::Acquire);
    let deadline = hal.now_ns() + MILLISECOND;
    hal.set_timer_deadline(deadline);
    wait_until(hal, ticked(before))
        .ok_or("a deadline 1 ms ahead did not end wait_for_interrupt within 1 s")?;
    if LAST_TICK_NS.load(Ordering::Relaxed) < deadline {
        return Err("the timer fired before its deadline".into());
    }
    let waited_late = LAST_TICK_NS.load(Ordering::Relaxed) - deadline;

    // A deadline in the past fires at once.
    let before = TICKS.load(Ordering::Acquire);
    hal.set_timer_deadline(hal.now_ns().saturating_sub(MILLISECOND).max(1));
    let past =
        wait_until(hal, ticked(before)).ok_or("a deadline in the past did not fire within 1 s")?;

    // u64::MAX disarms, even a deadline about to fire. A caller preempted past the
    // deadline before disarming proves nothing: that attempt is repeated.
    let mut disarmed = false;
    for _ in 0..5 {
        let before = TICKS.load(Ordering::Acquire);
        let deadline = hal.now_ns() + 5 * MILLISECOND;
        hal.set_timer_deadline(deadline);
        hal.set_timer_deadline(u64::MAX);
        if hal.now_ns() >= deadline {
            continue;
        }
        spin(hal, 20 * MILLISECOND);
        if ticked(before)() {
            return Err("the timer fired after being disarmed with u64::MAX".into());
        }
        disarmed = true;
        break;
    }
    if !disarmed {
        return Err("could not disarm the timer within 5 ms of arming it, 5 times".into());
    }

    // While interrupts are disabled the interrupt stays pending; it is taken on enabling.
    hal.set_interrupts_enabled(false);
    let before = TICKS.load(Ordering::Acquire);
    hal.set_timer_deadline(1);
    spin(hal, 5 * MILLISECOND);
    let early = ticked(before)();
    if hal.set_interrupts_enabled(true) {
        return Err("set_interrupts_enabled(true) said interrupts were enabled".into());
    }
    if early {
        return Err("the timer handler ran while interrupts were disabled".into());
    }
    wait_until(hal, ticked(before))
        .ok_or("a timer interrupt pending while disabled was not taken within 1 s")?;
    Ok(Outcome::Passed(format!(
        "late by {} us polled, {} us waiting; past deadline after {} us",
        polled_late / 1000,
        waited_late / 1000,
        past / 1000
    )))
}

// ---------------------------------------------------------------------------------------
// Waking

/// A wake-up sent to the current CPU before it waits ends the wait at once, with
/// interrupts enabled and disabled. The timer is armed as a backstop 1 s ahead, so a lost
/// wake-up is an error rather than a hang.
fn check_wake_before_wait<H: Platform>(hal: &'static H) -> Result<Outcome, String> {
    let current = hal.current_cpu();
    let was_enabled = hal.set_interrupts_enabled(true);
    let mut result = Ok(());
    for enabled in [true, false] {
        hal.set_interrupts_enabled(enabled);
        hal.wake_cpu(current);
        let start = hal.now_ns();
        hal.set_timer_deadline(start + LIMIT_NS);
        hal.wait_for_interrupt();
        let elapsed = hal.now_ns() - start;
        hal.set_timer_deadline(u64::MAX);
        if elapsed >= LIMIT_NS / 2 {
            result = Err(format!(
                "a wake_cpu sent before wait_for_interrupt was lost (interrupts {})",
                if enabled { "enabled" } else { "disabled" }
            ));
            break;
        }
    }
    hal.set_interrupts_enabled(was_enabled);
    result.map(|()| Outcome::Passed(format!("on {current:?}")))
}

// ---------------------------------------------------------------------------------------
// Traps

/// What the trap handler does with a fault.
static TRAP_MODE: AtomicU32 = AtomicU32::new(TRAP_FATAL);
/// Anything is fatal.
const TRAP_FATAL: u32 = 0;
/// Commit the faulting page of `[DEMAND_BASE, + DEMAND_LEN)` read+write and resume.
const TRAP_RESUME: u32 = 1;
/// Redirect to `LANDING_PC` on `LANDING_SP`.
const TRAP_REDIRECT: u32 = 2;

/// The HAL the trap handler commits pages with: a `*const H` for the `H` of the
/// `trap_handler::<H>` installed alongside it.
static TRAP_HAL: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());
static DEMAND_BASE: AtomicUsize = AtomicUsize::new(0);
static DEMAND_LEN: AtomicUsize = AtomicUsize::new(0);
static LANDING_PC: AtomicUsize = AtomicUsize::new(0);
static LANDING_SP: AtomicUsize = AtomicUsize::new(0);
static LANDING_ARG: AtomicUsize = AtomicUsize::new(0);

/// What the handler saw: the number of faults and the last one's cause, address + 1 (0
/// for none) and trap context word.
static TRAP_COUNT: AtomicUsize = AtomicUsize::new(0);
static TRAP_CAUSE: AtomicU64 = AtomicU64::new(0);
static TRAP_ADDRESS: AtomicUsize = AtomicUsize::new(0);
static TRAP_CONTEXT: AtomicUsize = AtomicUsize::new(0);

/// The trap context word the traps check sets.
const TRAP_CONTEXT_WORD: usize = 0x7e57_c0de;

/// A cause as a number (for an atomic).
fn encode(cause: TrapCause) -> u64 {
    match cause {
        TrapCause::MemoryFault(Access::Read) => 1,
        TrapCause::MemoryFault(Access::Write) => 2,
        TrapCause::MemoryFault(Access::Execute) => 3,
        TrapCause::MemoryFault(Access::Unknown) => 4,
        TrapCause::IllegalInstruction => 5,
        TrapCause::ArithmeticFault => 6,
        TrapCause::Breakpoint => 7,
        TrapCause::Other(code) => code.wrapping_add(0x100),
    }
}

/// The suite's trap handler: records the fault and answers as [`TRAP_MODE`] says. Touches
/// only atomics, and in [`TRAP_RESUME`] mode commits one page (as kernel-core's demand
/// paging does).
fn trap_handler<H: Platform>(info: &TrapInfo) -> TrapResponse {
    TRAP_COUNT.fetch_add(1, Ordering::SeqCst);
    TRAP_CAUSE.store(encode(info.cause), Ordering::SeqCst);
    TRAP_ADDRESS.store(info.fault_address.map_or(0, |a| a + 1), Ordering::SeqCst);
    TRAP_CONTEXT.store(info.context, Ordering::SeqCst);
    match TRAP_MODE.load(Ordering::SeqCst) {
        TRAP_RESUME => {
            let (TrapCause::MemoryFault(_), Some(address)) = (info.cause, info.fault_address)
            else {
                return TrapResponse::Fatal;
            };
            let base = DEMAND_BASE.load(Ordering::SeqCst);
            if address < base || address - base >= DEMAND_LEN.load(Ordering::SeqCst) {
                return TrapResponse::Fatal;
            }
            // Safety: `TRAP_HAL` holds the `&'static H` that `check_traps::<H>` stored
            // before installing this very instance of the handler.
            let Some(hal) = (unsafe { TRAP_HAL.load(Ordering::SeqCst).cast::<H>().as_ref() })
            else {
                return TrapResponse::Fatal;
            };
            let page = hal.page_size();
            let Some(start) = NonNull::new((address & !(page - 1)) as *mut u8) else {
                return TrapResponse::Fatal;
            };
            // Safety: the page lies in the demand reservation (checked above), which the
            // check keeps alive while it can fault; committing only adds access.
            match unsafe { hal.commit(start, page, Protection::ReadWrite) } {
                Ok(()) => TrapResponse::Resume,
                Err(_) => TrapResponse::Fatal,
            }
        }
        TRAP_REDIRECT => TrapResponse::Redirect(Redirect {
            pc: LANDING_PC.load(Ordering::SeqCst),
            sp: LANDING_SP.load(Ordering::SeqCst),
            fp: 0,
            args: [
                LANDING_ARG.load(Ordering::SeqCst),
                info.fault_address.unwrap_or(0),
            ],
        }),
        _ => TrapResponse::Fatal,
    }
}

/// What the traps check shares with its faulting context and landing function.
struct Landing<H: ExecutionContexts + 'static> {
    hal: &'static H,
    /// The checker's context while the faulting context runs.
    main: UnsafeCell<H::SavedContext>,
    /// The faulting context.
    faulting: UnsafeCell<H::SavedContext>,
    /// Where the landing function saves itself for good (never resumed).
    abandoned: UnsafeCell<H::SavedContext>,
    /// The address the faulting context reads.
    target: usize,
    /// The landing stack's bounds.
    landing_bounds: Range<usize>,
    /// Set by the faulting context if its read did not fault.
    read_completed: AtomicBool,
    /// The fault address the landing function received (+ 1; 0 when it did not run).
    landed_address: AtomicUsize,
    /// Whether a local of the landing function lay in the landing stack.
    landed_in_bounds: AtomicBool,
}

/// The faulting context: reads `target`, which faults and is redirected to [`landing`].
fn faulting_entry<H: Platform>(arg: usize) -> ! {
    // Safety: `arg` is the address of the `Landing` that `check_traps` keeps alive until
    // this context is abandoned.
    let shared = unsafe { &*(arg as *const Landing<H>) };
    // Safety: `target` is a reserved page with no access: the read faults, and the fault
    // is redirected elsewhere; nothing here relies on the read completing.
    let value = unsafe { (shared.target as *const u64).read_volatile() };
    black_box(value);
    shared.read_completed.store(true, Ordering::SeqCst);
    // Safety: this context's own slot and the suspended checker.
    unsafe { shared.hal.switch(shared.faulting.get(), shared.main.get()) };
    panic!("an abandoned conformance context was resumed");
}

/// Where the trap handler redirects the faulting context: a fresh stack, entered as if
/// called with `(shared, fault_address)`.
extern "C" fn landing<H: Platform>(arg: usize, fault_address: usize) -> ! {
    // Safety: `arg` is the `Landing` address the handler was given (`LANDING_ARG`), alive
    // until this function switches away for good.
    let shared = unsafe { &*(arg as *const Landing<H>) };
    let local = black_box(0_u8);
    shared.landed_in_bounds.store(
        shared
            .landing_bounds
            .contains(&(core::ptr::addr_of!(local) as usize)),
        Ordering::SeqCst,
    );
    shared
        .landed_address
        .store(fault_address.wrapping_add(1), Ordering::SeqCst);
    // Safety: a slot of `shared` no one resumes, and the suspended checker.
    unsafe { shared.hal.switch(shared.abandoned.get(), shared.main.get()) };
    panic!("an abandoned conformance landing was resumed");
}

/// Trap delivery: a read and a write of reserved pages resumed after demand commits, then a
/// fault redirected to a landing function on another stack.
fn check_traps<H: Platform>(hal: &'static H) -> Result<Outcome, String> {
    TRAP_HAL.store(core::ptr::from_ref(hal).cast_mut().cast(), Ordering::SeqCst);
    hal.install_trap_handler(trap_handler::<H>);
    let previous_context = hal.set_trap_context(TRAP_CONTEXT_WORD);
    let page = hal.page_size();
    let len = 3 * page;
    let base = hal
        .reserve(len)
        .map_err(|error| format!("reserve: {error}"))?;
    let result = trap_steps(hal, base.as_ptr() as usize, page);
    TRAP_MODE.store(TRAP_FATAL, Ordering::SeqCst);
    hal.set_trap_context(previous_context);
    // Safety: exactly the reservation made above; the faulting context that read from it
    // is abandoned and nothing else refers to it.
    let released = unsafe { hal.release(base, len) };
    let outcome = result?;
    released.map_err(|error| format!("release: {error}"))?;
    Ok(outcome)
}

/// Checks the last recorded fault.
fn expect_fault(what: &str, count: usize, address: usize, access: Access) -> Result<(), String> {
    let seen = TRAP_COUNT.load(Ordering::SeqCst);
    if seen != count {
        return Err(format!("{what}: {seen} faults recorded, expected {count}"));
    }
    let cause = TRAP_CAUSE.load(Ordering::SeqCst);
    let fine = [
        encode(TrapCause::MemoryFault(access)),
        encode(TrapCause::MemoryFault(Access::Unknown)),
    ];
    if !fine.contains(&cause) {
        return Err(format!(
            "{what}: cause code {cause}, expected a {access:?} memory fault"
        ));
    }
    let seen = TRAP_ADDRESS.load(Ordering::SeqCst).checked_sub(1);
    if seen != Some(address) {
        return Err(format!(
            "{what}: fault address {seen:#x?}, expected {address:#x}"
        ));
    }
    let context = TRAP_CONTEXT.load(Ordering::SeqCst);
    if context != TRAP_CONTEXT_WORD {
        return Err(format!(
            "{what}: trap context word {context:#x}, expected {TRAP_CONTEXT_WORD:#x}"
        ));
    }
    Ok(())
}

/// The body of [`check_traps`] on the 3-page reservation at `base`.
fn trap_steps<H: Platform>(hal: &'static H, base: usize, page: usize) -> Result<Outcome, String> {
    // Resume: pages 0 and 1 are committed on demand by the handler.
    TRAP_COUNT.store(0, Ordering::SeqCst);
    DEMAND_BASE.store(base, Ordering::SeqCst);
    DEMAND_LEN.store(2 * page, Ordering::SeqCst);
    TRAP_MODE.store(TRAP_RESUME, Ordering::SeqCst);
    let first = base + 8;
    let second = base + page + 16;
    // Safety: both words lie in the reservation, aligned; the handler commits each page on
    // its first access and resumes, so the accesses complete on read+write memory that no
    // Rust reference covers.
    let zero = unsafe { (first as *const u64).read_volatile() };
    expect_fault("read of a reserved page", 1, first, Access::Read)?;
    // Safety: as above.
    unsafe { (second as *mut u64).write_volatile(0xfeed) };
    expect_fault("write to a reserved page", 2, second, Access::Write)?;
    // Safety: both pages are committed read+write now.
    let (again, written) = unsafe {
        (
            (first as *const u64).read_volatile(),
            (second as *const u64).read_volatile(),
        )
    };
    if (zero, again, written) != (0, 0, 0xfeed) {
        return Err(format!(
            "after resuming: read {zero:#x} and {again:#x} (expected 0), {written:#x} (expected 0xfeed)"
        ));
    }
    if TRAP_COUNT.load(Ordering::SeqCst) != 2 {
        return Err("committed pages faulted again".into());
    }

    // Redirect: a context reads page 2 (never committed) and lands on another stack.
    let stacks = [
        hal.allocate_stack(STACK_SIZE)
            .map_err(|error| format!("allocate_stack: {error:?}"))?,
        hal.allocate_stack(STACK_SIZE)
            .map_err(|error| format!("allocate_stack: {error:?}"))?,
    ];
    let landing_bounds = hal.stack_bounds(&stacks[1]);
    let target = base + 2 * page + 24;
    let mut shared = Landing {
        hal,
        main: UnsafeCell::new(H::SavedContext::default()),
        faulting: UnsafeCell::new(H::SavedContext::default()),
        abandoned: UnsafeCell::new(H::SavedContext::default()),
        target,
        landing_bounds: landing_bounds.clone(),
        read_completed: AtomicBool::new(false),
        landed_address: AtomicUsize::new(0),
        landed_in_bounds: AtomicBool::new(false),
    };
    let address = core::ptr::addr_of!(shared) as usize;
    *shared.faulting.get_mut() = hal.new_context(&stacks[0], faulting_entry::<H>, address);
    let top = landing_bounds.end;
    let entry_sp = match hal.isa() {
        // As if called: the return address slot (here 0, `landing` never returns) below a
        // 16-byte aligned stack pointer.
        Isa::X86_64 => {
            let slot = top - 8;
            // Safety: the top word of the landing stack, which `stacks[1]` owns and no
            // context uses.
            unsafe { (slot as *mut usize).write_volatile(0) };
            slot
        }
        // The stack pointer is 16-byte aligned at every call.
        Isa::Riscv64 => top,
    };
    let landing_pc = landing::<H> as extern "C" fn(usize, usize) -> ! as usize;
    LANDING_PC.store(landing_pc, Ordering::SeqCst);
    LANDING_SP.store(entry_sp, Ordering::SeqCst);
    LANDING_ARG.store(address, Ordering::SeqCst);
    TRAP_MODE.store(TRAP_REDIRECT, Ordering::SeqCst);
    let shared = &shared;
    // Safety: the checker's slot and the new faulting context, whose stack lives until
    // the end of this function; it comes back here through `landing`.
    unsafe { hal.switch(shared.main.get(), shared.faulting.get()) };
    TRAP_MODE.store(TRAP_FATAL, Ordering::SeqCst);
    if shared.read_completed.load(Ordering::SeqCst) {
        return Err("a read of a reserved page did not fault".into());
    }
    expect_fault("read redirected", 3, target, Access::Read)?;
    let landed = shared.landed_address.load(Ordering::SeqCst).checked_sub(1);
    if landed != Some(target) {
        return Err(format!(
            "the landing function got argument {landed:#x?}, expected {target:#x}"
        ));
    }
    if !shared.landed_in_bounds.load(Ordering::SeqCst) {
        return Err("the landing function did not run on the redirect's stack".into());
    }
    // Both contexts are abandoned: their stacks may go.
    drop(stacks);
    Ok(Outcome::Passed(
        "resume after demand commit, redirect to a landing".into(),
    ))
}

// ---------------------------------------------------------------------------------------
// The second CPU: waking it from another, and a context migrating to it

/// What the checking CPU shares with CPU 1; leaked, since CPU 1 keeps it forever.
struct SecondCpu<H: ExecutionContexts + 'static> {
    hal: &'static H,
    /// The CPU running the suite, which CPU 1 wakes.
    boot_cpu: CpuId,
    /// The migrating context while suspended.
    traveller: UnsafeCell<H::SavedContext>,
    /// The checking CPU's context while the traveller runs there.
    boot_slot: UnsafeCell<H::SavedContext>,
    /// CPU 1's context while the traveller runs there.
    second_slot: UnsafeCell<H::SavedContext>,
    /// `current_cpu()` seen by the traveller before and after migrating (+ 1; 0 unset).
    traveller_cpus: [AtomicU32; 2],
    /// The id CPU 1's entry was given and `current_cpu()` there (+ 1; 0 unset).
    second_cpu_ids: [AtomicU32; 2],
    /// Set (with the clock reading) just before CPU 1 wakes the checking CPU.
    woken_at: AtomicU64,
}

/// The context that starts on the checking CPU and finishes on CPU 1.
fn traveller_entry<H: Platform>(arg: usize) -> ! {
    // Safety: `arg` is the address of the leaked `SecondCpu`, alive forever.
    let shared = unsafe { &*(arg as *const SecondCpu<H>) };
    shared.traveller_cpus[0].store(shared.hal.current_cpu().0 + 1, Ordering::SeqCst);
    // Safety: this context's slot and the checking CPU's suspended context.
    unsafe {
        shared
            .hal
            .switch(shared.traveller.get(), shared.boot_slot.get())
    };
    shared.traveller_cpus[1].store(shared.hal.current_cpu().0 + 1, Ordering::SeqCst);
    // Safety: this context's slot and CPU 1's suspended context; never resumed after.
    unsafe {
        shared
            .hal
            .switch(shared.traveller.get(), shared.second_slot.get())
    };
    panic!("a finished conformance context was resumed");
}

/// CPU 1's entry: resume the traveller, wake the checking CPU after a short delay, park.
fn second_cpu_entry<H: Platform>(cpu: CpuId, arg: usize) -> ! {
    // Safety: `arg` is the address of the leaked `SecondCpu`, alive forever.
    let shared = unsafe { &*(arg as *const SecondCpu<H>) };
    let hal = shared.hal;
    shared.second_cpu_ids[0].store(cpu.0 + 1, Ordering::SeqCst);
    shared.second_cpu_ids[1].store(hal.current_cpu().0 + 1, Ordering::SeqCst);
    // Safety: CPU 1's slot and the traveller, suspended by its switch on the checking CPU
    // before this CPU was started; its stack lives until the checking CPU sees `woken_at`.
    unsafe { hal.switch(shared.second_slot.get(), shared.traveller.get()) };
    spin(hal, 5 * MILLISECOND);
    shared.woken_at.store(hal.now_ns().max(1), Ordering::SeqCst);
    hal.wake_cpu(shared.boot_cpu);
    loop {
        hal.wait_for_interrupt();
    }
}

/// Starts CPU 1, migrates a context to it, and lets it wake the checking CPU.
fn check_second_cpu<H: Platform>(hal: &'static H) -> Result<Outcome, String> {
    if hal.cpu_count() < 2 {
        return Ok(Outcome::Skipped("one CPU"));
    }
    let boot_cpu = hal.current_cpu();
    let second = CpuId(1);
    if boot_cpu == second {
        return Err("the suite must not run on CPU 1, which it starts".into());
    }
    let stack = hal
        .allocate_stack(STACK_SIZE)
        .map_err(|error| format!("allocate_stack: {error:?}"))?;
    let shared: &'static SecondCpu<H> = Box::leak(Box::new(SecondCpu {
        hal,
        boot_cpu,
        traveller: UnsafeCell::new(H::SavedContext::default()),
        boot_slot: UnsafeCell::new(H::SavedContext::default()),
        second_slot: UnsafeCell::new(H::SavedContext::default()),
        traveller_cpus: [AtomicU32::new(0), AtomicU32::new(0)],
        second_cpu_ids: [AtomicU32::new(0), AtomicU32::new(0)],
        woken_at: AtomicU64::new(0),
    }));
    let address = core::ptr::from_ref(shared) as usize;
    let context = hal.new_context(&stack, traveller_entry::<H>, address);
    // Safety: CPU 1 is not started yet, so this CPU is the only one touching `shared`.
    unsafe { *shared.traveller.get() = context };
    // Safety: the checking CPU's slot and the new traveller, whose stack lives until CPU 1
    // is done with it.
    unsafe { hal.switch(shared.boot_slot.get(), shared.traveller.get()) };

    let was_enabled = hal.set_interrupts_enabled(true);
    hal.set_timer_deadline(u64::MAX);
    let started = hal.start_cpu(second, second_cpu_entry::<H>, address);
    let result = match started {
        Ok(()) => {
            // The backstop: a lost wake-up ends the wait here, and fails the check.
            let start = hal.now_ns();
            hal.set_timer_deadline(start + LIMIT_NS);
            let woken = wait_until(hal, || shared.woken_at.load(Ordering::SeqCst) != 0);
            let woken_at = shared.woken_at.load(Ordering::SeqCst);
            let latency = hal.now_ns().saturating_sub(woken_at);
            hal.set_timer_deadline(u64::MAX);
            match woken {
                None => Err("CPU 1 did not wake this CPU within 1 s".into()),
                Some(_) if latency >= LIMIT_NS / 2 => {
                    Err("wake_cpu from CPU 1 did not end this CPU's wait".into())
                }
                Some(_) => Ok(latency),
            }
        }
        Err(CpuError::AlreadyStarted) => Err("CPU 1 was already started".into()),
        Err(error) => Err(format!("start_cpu(1): {error:?}")),
    };
    hal.set_interrupts_enabled(was_enabled);
    let latency = match result {
        Ok(latency) => latency,
        Err(error) => {
            // The traveller's stack may still be in use by CPU 1: leak it.
            core::mem::forget(stack);
            return Err(error);
        }
    };
    // CPU 1 set `woken_at` after the traveller's last switch: its stack is free.
    drop(stack);
    let ids = shared
        .second_cpu_ids
        .each_ref()
        .map(|id| id.load(Ordering::SeqCst));
    if ids != [2, 2] {
        return Err(format!(
            "CPU 1's entry got id {} and current_cpu() {} (each + 1)",
            ids[0], ids[1]
        ));
    }
    let cpus = shared
        .traveller_cpus
        .each_ref()
        .map(|id| id.load(Ordering::SeqCst));
    if cpus != [boot_cpu.0 + 1, 2] {
        return Err(format!(
            "a context migrating from {boot_cpu:?} to CPU 1 saw current_cpu() {} then {} (each + 1)",
            cpus[0], cpus[1]
        ));
    }
    Ok(Outcome::Passed(format!(
        "context migrated to CPU 1, wake-up latency {} us",
        latency / 1000
    )))
}
