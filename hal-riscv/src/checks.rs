//! Boot self-checks of execution contexts and interrupts (temporary: they live in the
//! kernel binary until kernel-core's boot path and scheduler exercise the same paths).
//!
//! - [`contexts`]: two contexts on 8 MiB stacks (every page backed, checked) play
//!   ping-pong through `ExecutionContexts::switch`; callee-saved registers and `fcsr` stay
//!   each context's own.
//! - [`migration`] (2 CPUs or more): a context suspended on CPU 0 is continued by CPU 1
//!   and sees CPU 1's number.
//! - [`timer`]: with interrupts enabled, a plain loop on CPU 0 (and on CPU 1) is
//!   interrupted by the timer, the installed handler runs with the clock reading and the
//!   loop goes on; a disarmed timer stays silent.
//! - [`nested`]: synchronous traps taken with interrupts on (a demand fault, a breakpoint
//!   handled by an installed trap handler) run with interrupts off, take no interrupt in
//!   the handler even with the timer pending, and return with interrupts on again, the
//!   pending interrupt then taken at once.
//! - [`wake`]: a `wake_cpu` from CPU 1 ends CPU 0's `wait_for_interrupt`, and a wake-up
//!   sent before the wait is not lost, with interrupts enabled and disabled (on one CPU,
//!   CPU 0 wakes itself).
//!
//! CPU 1 runs [`serve`], which carries out the commands CPU 0 posts in [`COMMAND`].

use core::arch::asm;
use core::hint::black_box;
use core::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};

use alloc::boxed::Box;
use hal_riscv::context::SavedContext;
use hal_riscv::memory_map::PAGE_SIZE;
use hal_riscv::stack::Stack;
use hal_riscv::{Platform, arch, clock, memory, sbi, trap};
use kernel_core::hal::{
    Clock, CpuId, Cpus, ExecutionContexts, Interrupts, Protection, Redirect, TrapCause, TrapInfo,
    TrapResponse, Traps, VirtualMemory,
};

/// The size of the stacks of the context checks: large, to check backing at that size.
const CONTEXT_STACK_SIZE: usize = 8 * 1024 * 1024;

/// Round trips of the ping-pong.
const ROUNDS: usize = 1000;

/// `fcsr.frm` = round towards zero, which one context sets to check it stays its own.
const ROUND_TOWARDS_ZERO: usize = 1;

/// The result of a check: what to print, or why it failed.
pub type CheckResult = Result<alloc::string::String, alloc::string::String>;

/// The rounding mode (`frm`) of the running hart.
fn rounding_mode() -> usize {
    let mode: usize;
    // Safety: reading `frm` has no side effect (the floating-point unit is on).
    unsafe { asm!("frrm {}", out(reg) mode, options(nomem, nostack)) };
    mode
}

/// Sets the rounding mode (`frm`) of the running hart.
fn set_rounding_mode(mode: usize) {
    // Safety: writing `frm` changes only how floating-point results round, which the
    // checks here restore before they return.
    unsafe { asm!("fsrm {}", in(reg) mode, options(nomem, nostack)) };
}

/// The state the ping-pong contexts share, reached through the raw pointer each gets.
struct PingPong {
    /// The platform, for `switch`.
    platform: *const Platform,
    /// The checking code (on the boot stack).
    main: SavedContext,
    /// The first context.
    ping: SavedContext,
    /// The second context.
    pong: SavedContext,
    /// Switches made by the two contexts.
    switches: usize,
    /// The usable range of `ping`'s stack.
    ping_bounds: core::ops::Range<usize>,
    /// Whether a context saw something wrong (a register or its stack).
    failure: Option<&'static str>,
}

/// The first ping-pong context: counts, checks its rounding mode survives `pong`'s, and
/// switches to `pong` until [`ROUNDS`] round trips are done, then back to `main`.
fn ping(arg: usize) -> ! {
    let state = arg as *mut PingPong;
    let local = 0u8;
    // Safety: `contexts` passes a pointer to its `PingPong`, alive until it is done, and
    // only one context of the three runs at a time, so the accesses never overlap.
    unsafe {
        if !(*state).ping_bounds.contains(&(&raw const local as usize)) {
            (*state).failure = Some("ping's locals are not on its stack");
        }
    }
    set_rounding_mode(ROUND_TOWARDS_ZERO);
    let mut round = 0;
    loop {
        // Values live across the switch: kept in callee-saved registers or on this stack.
        let kept = black_box([round, round * 3, round ^ 0x55, !round]);
        // Safety: as above; `pong` holds a context made by `new_context` or saved by its
        // last switch, on a live stack, not running.
        unsafe {
            (*state).switches += 1;
            let platform = &*(*state).platform;
            if round == ROUNDS {
                set_rounding_mode(0);
                platform.switch(&raw mut (*state).ping, &raw const (*state).main);
            } else {
                platform.switch(&raw mut (*state).ping, &raw const (*state).pong);
            }
            if kept != [round, round * 3, round ^ 0x55, !round] {
                (*state).failure = Some("ping's registers changed across a switch");
            }
            if rounding_mode() != ROUND_TOWARDS_ZERO {
                (*state).failure = Some("ping's rounding mode changed across a switch");
            }
        }
        round += 1;
    }
}

/// The second ping-pong context: counts, checks it runs with its own (default) rounding
/// mode, and switches back to `ping`.
fn pong(arg: usize) -> ! {
    let state = arg as *mut PingPong;
    let mut round = 0usize;
    loop {
        let kept = black_box([round.wrapping_mul(7), round + 11]);
        if rounding_mode() != 0 {
            // Safety: as in `ping`.
            unsafe { (*state).failure = Some("pong runs with ping's rounding mode") };
        }
        // Safety: as in `ping`.
        unsafe {
            (*state).switches += 1;
            let platform = &*(*state).platform;
            platform.switch(&raw mut (*state).pong, &raw const (*state).ping);
            if kept != [round.wrapping_mul(7), round + 11] {
                (*state).failure = Some("pong's registers changed across a switch");
            }
        }
        round += 1;
    }
}

/// Allocates a context stack and checks every page of it is backed.
fn backed_stack(platform: &Platform) -> Result<Stack, alloc::string::String> {
    let stack = platform
        .allocate_stack(CONTEXT_STACK_SIZE)
        .map_err(|error| alloc::format!("cannot allocate a context stack: {error:?}"))?;
    let bounds = platform.stack_bounds(&stack);
    if bounds.end - bounds.start < CONTEXT_STACK_SIZE
        || !bounds.start.is_multiple_of(PAGE_SIZE)
        || !bounds.end.is_multiple_of(16)
    {
        return Err(alloc::format!("bad stack bounds {bounds:#x?}"));
    }
    if let Some(page) = bounds
        .clone()
        .step_by(PAGE_SIZE)
        .find(|&page| memory::mapping(page).is_none())
    {
        return Err(alloc::format!("stack page {page:#x} is not backed"));
    }
    if memory::mapping(bounds.start - PAGE_SIZE).is_some() {
        return Err(alloc::format!(
            "the guard page below {:#x} is mapped",
            bounds.start
        ));
    }
    Ok(stack)
}

/// Two contexts on backed 8 MiB stacks switch [`ROUNDS`] round trips.
pub fn contexts(platform: &Platform) -> CheckResult {
    let start = platform.now_ns();
    let ping_stack = backed_stack(platform)?;
    let pong_stack = backed_stack(platform)?;
    let allocated_us = (platform.now_ns() - start) / 1000;
    let pointer = Box::into_raw(Box::new(PingPong {
        platform,
        main: SavedContext::default(),
        ping: SavedContext::default(),
        pong: SavedContext::default(),
        switches: 0,
        ping_bounds: platform.stack_bounds(&ping_stack),
        failure: None,
    }));
    let kept = black_box([1usize, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    let switch_start = platform.now_ns();
    // Safety: `pointer` is the leaked box, alive until it is taken back below; `ping`
    // holds a fresh context on a live stack; the contexts only touch the state (through
    // their argument) while they run, which is while this code is suspended.
    unsafe {
        (*pointer).ping = platform.new_context(&ping_stack, ping, pointer as usize);
        (*pointer).pong = platform.new_context(&pong_stack, pong, pointer as usize);
        platform.switch(&raw mut (*pointer).main, &raw const (*pointer).ping);
    }
    let switch_ns = platform.now_ns() - switch_start;
    // Safety: the box leaked above; the contexts that referred to it stay suspended for
    // good.
    let state = unsafe { Box::from_raw(pointer) };
    if kept != [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12] {
        return Err("main's registers changed across the ping-pong".into());
    }
    if rounding_mode() != 0 {
        return Err("main's rounding mode changed".into());
    }
    if let Some(failure) = state.failure {
        return Err(failure.into());
    }
    if state.switches != 2 * ROUNDS + 1 {
        return Err(alloc::format!(
            "{} switches, not {}",
            state.switches,
            2 * ROUNDS + 1
        ));
    }
    // The contexts stay suspended for good: their stacks are released, never resumed.
    drop((ping_stack, pong_stack));
    Ok(alloc::format!(
        "contexts ok: {} switches between 2 contexts on backed {} MiB stacks, {} ns a \
         switch; 2 stacks backed in {allocated_us} us",
        state.switches,
        CONTEXT_STACK_SIZE >> 20,
        switch_ns / state.switches as u64,
    ))
}

/// What CPU 1 is asked to do ([`COMMAND`]).
mod command {
    /// Nothing; CPU 1 waits for a command.
    pub const IDLE: usize = 0;
    /// Continue the context in [`super::MIGRANT`].
    pub const RESUME: usize = 1;
    /// Wake CPU 0 after 20 ms.
    pub const WAKE_LATER: usize = 2;
    /// Wake CPU 0 now.
    pub const WAKE_NOW: usize = 3;
    /// Spin with interrupts on until a timer interrupt arrives.
    pub const TIMER: usize = 4;
    /// Stop serving (the platform is about to move).
    pub const STOP: usize = 5;
}

/// The command posted for CPU 1 ([`command`]); CPU 1 sets it back to `IDLE` when done.
static COMMAND: AtomicUsize = AtomicUsize::new(command::IDLE);
/// The platform CPU 1 uses while it carries out a command (CPU 0 keeps it alive and in
/// place until CPU 1 acknowledged `STOP`).
static PLATFORM: AtomicPtr<Platform> = AtomicPtr::new(core::ptr::null_mut());
/// When (`now_ns`) CPU 1 sent its last wake-up.
static WAKE_SENT_NS: AtomicU64 = AtomicU64::new(0);
/// What CPU 1's own checks found: 0 still running, 1 ok, 2 failed.
static SERVE_RESULT: AtomicUsize = AtomicUsize::new(0);

/// Posts `command` for CPU 1 and waits (at most a second) until it is done.
fn run_on_cpu1(platform: &Platform, command: usize) -> Result<(), alloc::string::String> {
    PLATFORM.store(core::ptr::from_ref(platform).cast_mut(), Ordering::Release);
    COMMAND.store(command, Ordering::Release);
    let start = platform.now_ns();
    while COMMAND.load(Ordering::Acquire) != command::IDLE {
        if platform.now_ns() - start > 1_000_000_000 {
            return Err(alloc::format!("CPU 1 did not carry out command {command}"));
        }
        core::hint::spin_loop();
    }
    Ok(())
}

/// CPU 1's side of the checks: carries out the commands CPU 0 posts until `STOP`, then
/// parks.
pub fn serve() -> ! {
    loop {
        let command = COMMAND.load(Ordering::Acquire);
        if command == command::IDLE {
            core::hint::spin_loop();
            continue;
        }
        // Safety: CPU 0 stored the platform before the command and keeps it alive and in
        // place until this CPU acknowledged `STOP`.
        let platform = unsafe { &*PLATFORM.load(Ordering::Acquire) };
        match command {
            command::RESUME => {
                let mut home = SavedContext::default();
                let migrant = MIGRANT.load(Ordering::Acquire);
                // Safety: CPU 0 published the context after the switch that saved it
                // returned (release/acquire through `MIGRANT` and `COMMAND`); its stack
                // is alive until CPU 0 sees this command done.
                unsafe {
                    (*migrant).home = &raw mut home;
                    platform.switch(&raw mut home, &raw const (*migrant).context);
                }
            }
            command::WAKE_LATER | command::WAKE_NOW => {
                if command == command::WAKE_LATER {
                    let start = platform.now_ns();
                    while platform.now_ns() - start < 20_000_000 {
                        core::hint::spin_loop();
                    }
                }
                WAKE_SENT_NS.store(platform.now_ns(), Ordering::Release);
                platform.wake_cpu(CpuId(0));
            }
            command::TIMER => {
                let ok = spin_until_timer(platform).is_ok();
                SERVE_RESULT.store(if ok { 1 } else { 2 }, Ordering::Release);
            }
            _ => {
                COMMAND.store(command::IDLE, Ordering::Release);
                break;
            }
        }
        COMMAND.store(command::IDLE, Ordering::Release);
    }
    loop {
        // Safety: `wfi` only pauses the hart; interrupts stay masked (`sstatus.SIE` off).
        unsafe { asm!("wfi", options(nomem, nostack)) };
    }
}

/// A context that moves between CPUs: where it records what it saw.
struct Migrant {
    /// The context itself while suspended.
    context: SavedContext,
    /// Where to switch back to: the slot of whoever continued it.
    home: *mut SavedContext,
    /// The CPU it ran on before and after it moved.
    cpus: [u32; 2],
    /// Its rounding mode after the move.
    rounding_mode: usize,
}

/// The migrating context, for CPU 1.
static MIGRANT: AtomicPtr<Migrant> = AtomicPtr::new(core::ptr::null_mut());

/// The migrating context: records its CPU, sets its rounding mode, switches home; once
/// continued (on another CPU), records the CPU and rounding mode again and switches to
/// its new home for good.
fn migrant(arg: usize) -> ! {
    let state = arg as *mut Migrant;
    // Safety: `migration` passes a pointer to its `Migrant`, alive until it is done; the
    // context and its continuer never run at once.
    unsafe {
        let platform = &*PLATFORM.load(Ordering::Acquire);
        (*state).cpus[0] = platform.current_cpu().0;
        set_rounding_mode(ROUND_TOWARDS_ZERO);
        platform.switch(&raw mut (*state).context, (*state).home);
        (*state).cpus[1] = platform.current_cpu().0;
        (*state).rounding_mode = rounding_mode();
        set_rounding_mode(0);
        platform.switch(&raw mut (*state).context, (*state).home);
    }
    unreachable!("the migrant is never continued a third time")
}

/// A context started on CPU 0 and continued on CPU 1.
pub fn migration(platform: &Platform) -> CheckResult {
    let stack = backed_stack(platform)?;
    let mut home = SavedContext::default();
    let pointer = Box::into_raw(Box::new(Migrant {
        context: SavedContext::default(),
        home: &raw mut home,
        cpus: [u32::MAX; 2],
        rounding_mode: usize::MAX,
    }));
    PLATFORM.store(core::ptr::from_ref(platform).cast_mut(), Ordering::Release);
    // Safety: `pointer` is the leaked box, alive until it is taken back below.
    unsafe {
        (*pointer).context = platform.new_context(&stack, migrant, pointer as usize);
        platform.switch(&raw mut home, &raw const (*pointer).context);
    }
    // The switch that saved the migrant is done: publish it for CPU 1.
    MIGRANT.store(pointer, Ordering::Release);
    let resumed = run_on_cpu1(platform, command::RESUME);
    MIGRANT.store(core::ptr::null_mut(), Ordering::Release);
    // Safety: the box leaked above; CPU 1 is done with it (or never started on it).
    let state = unsafe { Box::from_raw(pointer) };
    resumed?;
    if state.cpus != [0, 1] {
        return Err(alloc::format!("the migrant ran on CPUs {:?}", state.cpus));
    }
    if state.rounding_mode != ROUND_TOWARDS_ZERO {
        return Err("the migrant's rounding mode did not move with it".into());
    }
    drop(stack);
    Ok(
        "context migration ok: suspended on CPU 0, continued on CPU 1 (current_cpu 1, fcsr \
        kept)"
            .into(),
    )
}

/// Timer handler calls, and the last clock reading handed over.
static TIMER_CALLS: AtomicU64 = AtomicU64::new(0);
/// The `now_ns` of the last timer handler call.
static TIMER_NOW: AtomicU64 = AtomicU64::new(0);

/// The timer handler the checks install: atomics only.
fn record_timer(now_ns: u64) {
    TIMER_NOW.store(now_ns, Ordering::Relaxed);
    TIMER_CALLS.fetch_add(1, Ordering::Release);
}

/// [`spin_until_timer_once`], tried again (up to 3 times) when the interrupt came before
/// the loop's first iteration (QEMU's thread descheduled past the deadline on a busy
/// host), so that the interrupt is seen to hit the running loop.
fn spin_until_timer(platform: &Platform) -> Result<(u64, u64, u64), alloc::string::String> {
    let mut result = spin_until_timer_once(platform)?;
    for _ in 0..3 {
        if result.0 > 0 {
            break;
        }
        result = spin_until_timer_once(platform)?;
    }
    if result.0 == 0 {
        return Err("the timer interrupt never hit the running loop".into());
    }
    Ok(result)
}

/// Arms the timer 5 ms ahead, enables interrupts and spins in a plain loop until the
/// handler ran, then spins on; returns the loop's iterations before and after, and how
/// late the handler's clock reading was.
fn spin_until_timer_once(platform: &Platform) -> Result<(u64, u64, u64), alloc::string::String> {
    let before = TIMER_CALLS.load(Ordering::Acquire);
    let deadline = platform.now_ns() + 5_000_000;
    platform.set_timer_deadline(deadline);
    let was_enabled = platform.set_interrupts_enabled(true);
    let mut iterations = 0u64;
    while TIMER_CALLS.load(Ordering::Acquire) == before {
        iterations = black_box(iterations + 1);
        if platform.now_ns() > deadline + 1_000_000_000 {
            platform.set_interrupts_enabled(was_enabled);
            return Err("no timer interrupt within a second".into());
        }
    }
    let mut after = 0u64;
    while after < 100_000 {
        after = black_box(after + 1);
    }
    platform.set_interrupts_enabled(was_enabled);
    let late = TIMER_NOW.load(Ordering::Relaxed).wrapping_sub(deadline);
    if late > 1_000_000_000 {
        return Err(alloc::format!("the handler read the clock {late} ns off"));
    }
    Ok((iterations, after, late))
}

/// The timer interrupt while a plain loop runs with interrupts on, on CPU 0 and CPU 1;
/// a disarmed deadline does not fire.
pub fn timer(platform: &Platform) -> CheckResult {
    platform.install_timer_handler(record_timer);
    let ticks = platform.timer_interrupts();
    let calls = TIMER_CALLS.load(Ordering::Acquire);
    let (iterations, after, late) = spin_until_timer(platform)?;
    if platform.timer_interrupts() - ticks != TIMER_CALLS.load(Ordering::Acquire) - calls {
        return Err("the handler did not run once per timer interrupt".into());
    }
    // The interrupt left its mark: the next wait returns at once.
    let start = platform.now_ns();
    platform.wait_for_interrupt();
    let waited_us = (platform.now_ns() - start) / 1000;
    // Disarming: armed 1 ms ahead, disarmed, then 5 ms with interrupts on.
    let calls = TIMER_CALLS.load(Ordering::Acquire);
    platform.set_timer_deadline(platform.now_ns() + 1_000_000);
    platform.set_timer_deadline(u64::MAX);
    let was_enabled = platform.set_interrupts_enabled(true);
    let start = platform.now_ns();
    while platform.now_ns() - start < 5_000_000 {
        core::hint::spin_loop();
    }
    platform.set_interrupts_enabled(was_enabled);
    if TIMER_CALLS.load(Ordering::Acquire) != calls {
        return Err("a disarmed timer fired".into());
    }
    let mut report = alloc::format!(
        "timer ok: handler ran {late} ns after the deadline while a loop spun with \
         interrupts on ({iterations} iterations before, {after} after); the next wait \
         returned in {waited_us} us; u64::MAX disarmed"
    );
    if platform.cpu_count() > 1 {
        SERVE_RESULT.store(0, Ordering::Release);
        run_on_cpu1(platform, command::TIMER)?;
        if SERVE_RESULT.load(Ordering::Acquire) != 1 {
            return Err("CPU 1 took no timer interrupt while spinning".into());
        }
        report.push_str("; CPU 1 too");
    }
    Ok(report)
}

/// Clears CPU 0's pending mark and arms a safety deadline 2 s ahead, so that a lost
/// wake-up shows as a 2 s wait instead of a hang.
fn prepare_wait(platform: &Platform) {
    trap::take_pending(0);
    platform.set_timer_deadline(platform.now_ns() + 2_000_000_000);
}

/// One wake-up check with interrupts `enabled`: `command` (`WAKE_LATER` or `WAKE_NOW`)
/// for CPU 1, or CPU 0 waking itself on a single CPU. Returns the microseconds waited.
fn wake_once(
    platform: &Platform,
    enabled: bool,
    later: bool,
) -> Result<u64, alloc::string::String> {
    prepare_wait(platform);
    let was_enabled = platform.set_interrupts_enabled(enabled);
    let ipis = platform.software_interrupts();
    let start;
    if platform.cpu_count() == 1 {
        // Sent before the wait: must not be lost.
        platform.wake_cpu(CpuId(0));
        start = platform.now_ns();
    } else if later {
        WAKE_SENT_NS.store(0, Ordering::Release);
        PLATFORM.store(core::ptr::from_ref(platform).cast_mut(), Ordering::Release);
        COMMAND.store(command::WAKE_LATER, Ordering::Release);
        start = platform.now_ns();
    } else {
        run_on_cpu1(platform, command::WAKE_NOW)?;
        // Let the IPI arrive (taken now with interrupts on, pending in `sip` with them off).
        let settle = platform.now_ns();
        while platform.now_ns() - settle < 1_000_000 {
            core::hint::spin_loop();
        }
        start = platform.now_ns();
    }
    platform.wait_for_interrupt();
    // Waits may return spuriously: wait again until CPU 1 sent its wake-up (or the
    // safety deadline passed).
    let mut spurious = 0;
    while later
        && WAKE_SENT_NS.load(Ordering::Acquire) == 0
        && platform.now_ns() - start < 1_500_000_000
    {
        spurious += 1;
        platform.wait_for_interrupt();
    }
    let end = platform.now_ns();
    platform.set_interrupts_enabled(was_enabled);
    platform.set_timer_deadline(u64::MAX);
    if later {
        while COMMAND.load(Ordering::Acquire) != command::IDLE {
            core::hint::spin_loop();
        }
        if spurious > 0 {
            return Err(alloc::format!(
                "{spurious} spurious returns before the wake-up"
            ));
        }
    }
    if end - start > 1_000_000_000 {
        return Err("the wake-up was lost (the 2 s safety timer ended the wait)".into());
    }
    if platform.software_interrupts() == ipis {
        return Err("no software interrupt was taken".into());
    }
    Ok((end - start) / 1000)
}

/// `wake_cpu` ends a wait, and one sent before the wait is not lost, with interrupts on
/// and off.
pub fn wake(platform: &Platform) -> CheckResult {
    let mut report = alloc::string::String::from("wake ok:");
    let cases: &[(bool, bool)] = if platform.cpu_count() > 1 {
        &[(false, true), (true, true), (false, false), (true, false)]
    } else {
        &[(false, false), (true, false)]
    };
    for &(enabled, later) in cases {
        let waited = wake_once(platform, enabled, later)?;
        let what = match (platform.cpu_count() > 1, later) {
            (false, _) => "self-wake before the wait",
            (true, true) => "CPU 1's wake 20 ms into the wait",
            (true, false) => "CPU 1's wake before the wait",
        };
        let interrupts = if enabled { "on" } else { "off" };
        report.push_str(&alloc::format!(
            " [{what}, interrupts {interrupts}: wait ended after {waited} us]"
        ));
    }
    Ok(report)
}

/// Ends CPU 1's service (before the platform moves).
pub fn stop_serving(platform: &Platform) -> Result<(), alloc::string::String> {
    if platform.cpu_count() > 1 {
        run_on_cpu1(platform, command::STOP)?;
        PLATFORM.store(core::ptr::null_mut(), Ordering::Release);
    }
    Ok(())
}

/// What [`breakpoint_handler`] saw: timer handler calls on entry and on leaving, and
/// `sstatus` inside the handler.
static NESTED_SEEN: [AtomicU64; 3] = [const { AtomicU64::new(0) }; 3];

/// The trap handler [`nested`] installs: for its breakpoint, makes the timer interrupt
/// pending (a deadline in the past), waits 1 ms in the handler, and continues after the
/// breakpoint; anything else is fatal.
fn breakpoint_handler(info: &TrapInfo) -> TrapResponse {
    if info.cause != TrapCause::Breakpoint {
        return TrapResponse::Fatal;
    }
    NESTED_SEEN[0].store(TIMER_CALLS.load(Ordering::Acquire), Ordering::Relaxed);
    sbi::set_timer(0);
    let start = clock::read_ticks();
    while clock::read_ticks() - start < clock::DEFAULT_TIMEBASE_HZ / 1000 {
        core::hint::spin_loop();
    }
    NESTED_SEEN[1].store(TIMER_CALLS.load(Ordering::Acquire), Ordering::Relaxed);
    NESTED_SEEN[2].store(arch::clear_sstatus(0) as u64, Ordering::Relaxed);
    TrapResponse::Redirect(Redirect {
        // `ebreak` without compression: 4 bytes.
        pc: info.pc + 4,
        sp: info.sp,
        fp: info.fp,
        args: [0x5eed, 0],
    })
}

/// Traps taken with interrupts enabled: a demand fault and a breakpoint whose handler
/// makes the timer interrupt pending.
pub fn nested(platform: &Platform) -> CheckResult {
    // A demand fault with interrupts on.
    let page = platform
        .reserve(PAGE_SIZE)
        .map_err(|error| alloc::format!("reserve: {error}"))?;
    // Safety: the fresh reservation; nothing else refers to it.
    unsafe { platform.commit(page, PAGE_SIZE, Protection::ReadWrite) }
        .map_err(|error| alloc::format!("commit: {error}"))?;
    let was_enabled = platform.set_interrupts_enabled(true);
    // Safety: the page is committed read+write; the write is backed on demand.
    unsafe { page.as_ptr().cast::<u64>().write_volatile(7) };
    let after_fault = platform.set_interrupts_enabled(true);
    platform.set_interrupts_enabled(was_enabled);
    // Safety: the reservation made above, no longer used.
    unsafe { platform.release(page, PAGE_SIZE) }
        .map_err(|error| alloc::format!("release: {error}"))?;
    if !after_fault {
        return Err("interrupts were off after a demand fault taken with them on".into());
    }
    // A breakpoint with interrupts on, the timer made pending inside its handler.
    platform.install_trap_handler(breakpoint_handler);
    let before = TIMER_CALLS.load(Ordering::Acquire);
    let was_enabled = platform.set_interrupts_enabled(true);
    let marker: usize;
    // Safety: the breakpoint traps into `breakpoint_handler`, which continues after it
    // with a0 and a1 set (declared clobbered) and every other register as it was; the
    // timer interrupt it leaves pending only records.
    unsafe {
        asm!(
            ".option push",
            ".option norvc",
            "ebreak",
            ".option pop",
            lateout("a0") marker,
            lateout("a1") _,
        );
    }
    let calls_right_after = TIMER_CALLS.load(Ordering::Acquire);
    let still_enabled = platform.set_interrupts_enabled(was_enabled);
    platform.set_timer_deadline(u64::MAX);
    let seen = NESTED_SEEN
        .each_ref()
        .map(|seen| seen.load(Ordering::Relaxed));
    if marker != 0x5eed {
        return Err("the breakpoint's redirect did not set a0".into());
    }
    if seen[0] != before || seen[1] != before {
        return Err("a timer interrupt nested in the trap handler".into());
    }
    if seen[2] & arch::SSTATUS_SIE as u64 != 0 {
        return Err("the trap handler ran with interrupts on".into());
    }
    if seen[2] & SSTATUS_SPIE == 0 {
        return Err("sstatus.SPIE did not record interrupts on".into());
    }
    if calls_right_after != before + 1 || !still_enabled {
        return Err(alloc::format!(
            "after sret: {} timer interrupts (expected 1), interrupts {}",
            calls_right_after - before,
            if still_enabled { "on" } else { "off" }
        ));
    }
    Ok(
        "nested traps ok: a demand fault and a breakpoint taken with interrupts on ran \
        with SIE off (SPIE on), no timer interrupt nested in the handler though pending, \
        taken right after sret restored SIE"
            .into(),
    )
}

/// `sstatus.SPIE`: interrupts were on when the trap was taken.
const SSTATUS_SPIE: u64 = 1 << 5;
