//! Tests of trap delivery: demand paging through `Resume`, landing pads through `Redirect`
//! (with the cause of each kind of fault, and from an exhausted thread stack), the fatal
//! path and the alternate stacks' lifecycle (in child processes).
//!
//! The faulting code is a handful of naked assembly functions ("probes") that keep a frame
//! pointer; the test handler redirects a fault in any of them to [`landing`], which
//! unwinds the probe's frame and returns a value computed from the redirect's registers to
//! the probe's caller: the same shape as kernel-core returning to the landing pad of a
//! WebAssembly activation.

use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use kernel_core::hal::{
    Access, Protection, Redirect, TrapCause, TrapInfo, TrapResponse, Traps, VirtualMemory,
};

use crate::{HostedConfig, HostedHal};

/// Serialises the tests that install a (process-global) handler.
static HANDLER_LOCK: Mutex<()> = Mutex::new(());

fn lock() -> MutexGuard<'static, ()> {
    HANDLER_LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The HAL, shared with the handler (which must not allocate, so cannot make one).
fn hal() -> &'static HostedHal {
    static HAL: OnceLock<HostedHal> = OnceLock::new();
    HAL.get_or_init(|| HostedHal::new(HostedConfig::default()))
}

/// The trap context word the tests' threads set; faults on threads without it are fatal.
const TEST_CONTEXT: usize = 0x7e57_c0de;
/// The frame pointer the handler gives [`landing`] (which restores the probe's own).
const LANDING_FP: usize = 0xf00d;

/// What the test handler does with a fault.
static MODE: AtomicUsize = AtomicUsize::new(MODE_FATAL);
const MODE_FATAL: usize = 0;
/// Commit the faulting page of the demand reservation and resume.
const MODE_DEMAND_PAGING: usize = 1;
/// Redirect to [`landing`] with the encoded cause as the value to return.
const MODE_LANDING: usize = 2;

/// The reservation whose pages are committed on demand.
static DEMAND_BASE: AtomicUsize = AtomicUsize::new(0);
static DEMAND_LEN: AtomicUsize = AtomicUsize::new(0);

/// What the handler saw, one entry per fault (up to [`RECORDS`]).
const RECORDS: usize = 8;
static RUNS: AtomicUsize = AtomicUsize::new(0);
static CAUSES: [AtomicU64; RECORDS] = [const { AtomicU64::new(0) }; RECORDS];
static ADDRESSES: [AtomicUsize; RECORDS] = [const { AtomicUsize::new(0) }; RECORDS];
static PCS: [AtomicUsize; RECORDS] = [const { AtomicUsize::new(0) }; RECORDS];
/// An address on the stack the handler last ran on.
static HANDLER_STACK: AtomicUsize = AtomicUsize::new(0);

/// A fault's cause as a number, with `address + 1` for memory faults' addresses (0 for
/// none), so that it fits an atomic.
fn encode(cause: TrapCause) -> u64 {
    match cause {
        TrapCause::MemoryFault(Access::Read) => 1,
        TrapCause::MemoryFault(Access::Write) => 2,
        TrapCause::MemoryFault(Access::Execute) => 3,
        TrapCause::MemoryFault(Access::Unknown) => 4,
        TrapCause::IllegalInstruction => 5,
        TrapCause::ArithmeticFault => 6,
        TrapCause::Breakpoint => 7,
        TrapCause::Other(code) => 0x100 + code,
    }
}

fn reset(mode: usize) {
    MODE.store(mode, Ordering::SeqCst);
    RUNS.store(0, Ordering::SeqCst);
    for record in 0..RECORDS {
        CAUSES[record].store(0, Ordering::SeqCst);
        ADDRESSES[record].store(0, Ordering::SeqCst);
        PCS[record].store(0, Ordering::SeqCst);
    }
    HANDLER_STACK.store(0, Ordering::SeqCst);
}

/// The handler of the in-process tests.
fn test_handler(info: &TrapInfo) -> TrapResponse {
    if info.context != TEST_CONTEXT {
        return TrapResponse::Fatal;
    }
    let local = 0_u8;
    HANDLER_STACK.store(core::ptr::addr_of!(local) as usize, Ordering::SeqCst);
    let record = RUNS.fetch_add(1, Ordering::SeqCst);
    let (Some(cause), Some(address), Some(pc)) =
        (CAUSES.get(record), ADDRESSES.get(record), PCS.get(record))
    else {
        // More faults than any test takes: a redirect gone wrong is faulting again and
        // again. Stop instead of looping.
        return TrapResponse::Fatal;
    };
    cause.store(encode(info.cause), Ordering::SeqCst);
    address.store(info.fault_address.map_or(0, |a| a + 1), Ordering::SeqCst);
    pc.store(info.pc, Ordering::SeqCst);
    match MODE.load(Ordering::SeqCst) {
        MODE_DEMAND_PAGING => demand_page(info),
        MODE_LANDING => TrapResponse::Redirect(Redirect {
            pc: landing as unsafe extern "C" fn() as usize,
            sp: info.fp,
            fp: LANDING_FP,
            args: [info.fp, encode(info.cause) as usize],
        }),
        _ => TrapResponse::Fatal,
    }
}

/// Commits the page of the demand reservation that faulted, read+write.
fn demand_page(info: &TrapInfo) -> TrapResponse {
    let (TrapCause::MemoryFault(_), Some(address)) = (info.cause, info.fault_address) else {
        return TrapResponse::Fatal;
    };
    let base = DEMAND_BASE.load(Ordering::SeqCst);
    let len = DEMAND_LEN.load(Ordering::SeqCst);
    if address < base || address - base >= len {
        return TrapResponse::Fatal;
    }
    let hal = hal();
    let page = hal.page_size();
    let Some(page_start) = NonNull::new((address & !(page - 1)) as *mut u8) else {
        return TrapResponse::Fatal;
    };
    // Safety: the page lies inside the demand reservation (checked above), which the test
    // keeps alive while faults on it can happen; committing adds access, removing none.
    match unsafe { hal.commit(page_start, page, Protection::ReadWrite) } {
        Ok(()) => TrapResponse::Resume,
        Err(_) => TrapResponse::Fatal,
    }
}

/// Loads the 64-bit word at `address`.
#[unsafe(naked)]
unsafe extern "C" fn probe_load(address: usize) -> u64 {
    core::arch::naked_asm!(
        "push rbp",
        "mov rbp, rsp",
        "sub rsp, 16",
        "mov rax, qword ptr [rdi]",
        "leave",
        "ret",
    )
}

/// Stores `value` at `address` and returns 0.
#[unsafe(naked)]
unsafe extern "C" fn probe_store(address: usize, value: u64) -> u64 {
    core::arch::naked_asm!(
        "push rbp",
        "mov rbp, rsp",
        "sub rsp, 16",
        "mov qword ptr [rdi], rsi",
        "xor eax, eax",
        "leave",
        "ret",
    )
}

/// Calls the code at `address` and returns what it returns.
#[unsafe(naked)]
unsafe extern "C" fn probe_call(address: usize) -> u64 {
    core::arch::naked_asm!(
        "push rbp",
        "mov rbp, rsp",
        "sub rsp, 16",
        "call rdi",
        "leave",
        "ret",
    )
}

/// Executes `ud2`.
#[unsafe(naked)]
unsafe extern "C" fn probe_ud2() -> u64 {
    core::arch::naked_asm!(
        "push rbp",
        "mov rbp, rsp",
        "sub rsp, 16",
        "ud2",
        "leave",
        "ret",
    )
}

/// Divides `dividend` by `divisor` (unsigned).
#[unsafe(naked)]
unsafe extern "C" fn probe_divide(dividend: u64, divisor: u64) -> u64 {
    core::arch::naked_asm!(
        "push rbp",
        "mov rbp, rsp",
        "sub rsp, 16",
        "mov rax, rdi",
        "xor edx, edx",
        "div rsi",
        "leave",
        "ret",
    )
}

/// Pushes until the stack runs out.
#[unsafe(naked)]
unsafe extern "C" fn probe_exhaust_stack() -> u64 {
    core::arch::naked_asm!("push rbp", "mov rbp, rsp", "2:", "push rax", "jmp 2b")
}

/// The landing pad. A redirect enters it with `rsp` at a probe's saved frame pointer,
/// `rdi` equal to that same address, `rbp` = [`LANDING_FP`] and `rsi` = a value, so that
/// each of the five registers a redirect sets is checked: it returns the value to the
/// probe's caller if they are as expected, 0 otherwise (and crashes if `rip` or `rsp` was
/// not applied).
#[unsafe(naked)]
unsafe extern "C" fn landing() {
    core::arch::naked_asm!(
        "mov rax, rsi",
        "xor ecx, ecx",
        "cmp rdi, rsp",
        "cmovne rax, rcx",
        "cmp rbp, {fp}",
        "cmovne rax, rcx",
        "pop rbp",
        "ret",
        fp = const LANDING_FP,
    )
}

/// Whether `pc` lies in the first bytes of `probe` (each probe is a few instructions).
fn in_probe(pc: usize, probe: usize) -> bool {
    (probe..probe + 32).contains(&pc)
}

fn recorded(record: usize) -> (u64, Option<usize>, usize) {
    let address = ADDRESSES[record].load(Ordering::SeqCst);
    (
        CAUSES[record].load(Ordering::SeqCst),
        address.checked_sub(1),
        PCS[record].load(Ordering::SeqCst),
    )
}

/// The calling thread's alternate signal stack.
fn current_altstack() -> libc::stack_t {
    let mut current = libc::stack_t {
        ss_sp: core::ptr::null_mut(),
        ss_flags: 0,
        ss_size: 0,
    };
    // Safety: a null new stack only queries; `current` is a valid `stack_t` to write.
    let status = unsafe { libc::sigaltstack(core::ptr::null(), &raw mut current) };
    assert_eq!(status, 0);
    current
}

#[test]
fn demand_paging_resumes_the_faulting_access() {
    let _guard = lock();
    let hal = hal();
    reset(MODE_DEMAND_PAGING);
    let page = hal.page_size();
    let base = hal.reserve(2 * page).unwrap();
    DEMAND_BASE.store(base.as_ptr() as usize, Ordering::SeqCst);
    DEMAND_LEN.store(2 * page, Ordering::SeqCst);
    hal.install_trap_handler(test_handler);
    let previous = hal.set_trap_context(TEST_CONTEXT);

    let first = base.as_ptr().cast::<u64>();
    let second = base.as_ptr().wrapping_add(page + 8).cast::<u64>();
    // Safety: both words lie in the reservation, aligned; the handler commits each page on
    // its first access and resumes, so the accesses complete on read+write memory that no
    // Rust reference covers.
    let (zero, one, two) = unsafe {
        let zero = first.read_volatile();
        first.write_volatile(0x1111);
        second.write_volatile(0x2222);
        (zero, first.read_volatile(), second.read_volatile())
    };
    assert_eq!((zero, one, two), (0, 0x1111, 0x2222));

    assert_eq!(RUNS.load(Ordering::SeqCst), 2, "one fault per page");
    let (cause, address, _) = recorded(0);
    assert_eq!(cause, encode(TrapCause::MemoryFault(Access::Read)));
    assert_eq!(address, Some(first as usize));
    let (cause, address, _) = recorded(1);
    assert_eq!(cause, encode(TrapCause::MemoryFault(Access::Write)));
    assert_eq!(address, Some(second as usize));

    assert_eq!(hal.set_trap_context(previous), TEST_CONTEXT);
    MODE.store(MODE_FATAL, Ordering::SeqCst);
    // Safety: exactly the reservation made above; nothing uses it any more.
    unsafe { hal.release(base, 2 * page) }.unwrap();
}

#[test]
fn redirect_reaches_the_landing_pad_with_each_cause() {
    let _guard = lock();
    let hal = hal();
    reset(MODE_LANDING);
    hal.install_trap_handler(test_handler);
    let previous = hal.set_trap_context(TEST_CONTEXT);
    let page = hal.page_size();
    let inaccessible = hal.reserve(page).unwrap().as_ptr() as usize;

    // Safety: each probe follows the C ABI and either completes or faults; a fault
    // is redirected to `landing`, which pops the probe's frame and returns to this caller
    // with only caller-saved registers changed. The inaccessible page is a reservation of
    // ours with no access, so touching it only faults.
    let results = unsafe {
        [
            probe_divide(42, 6),
            probe_ud2(),
            probe_divide(7, 0),
            probe_load(inaccessible),
            probe_store(inaccessible + 8, 1),
            probe_call(inaccessible),
        ]
    };
    let expected = [
        7,
        encode(TrapCause::IllegalInstruction),
        encode(TrapCause::ArithmeticFault),
        encode(TrapCause::MemoryFault(Access::Read)),
        encode(TrapCause::MemoryFault(Access::Write)),
        encode(TrapCause::MemoryFault(Access::Execute)),
    ];
    assert_eq!(results, expected);
    assert_eq!(
        RUNS.load(Ordering::SeqCst),
        5,
        "one fault per faulting probe"
    );

    let (_, address, pc) = recorded(0);
    assert_eq!(address, None);
    assert!(in_probe(
        pc,
        probe_ud2 as unsafe extern "C" fn() -> u64 as usize
    ));
    let (_, address, pc) = recorded(1);
    assert_eq!(address, None);
    assert!(in_probe(
        pc,
        probe_divide as unsafe extern "C" fn(u64, u64) -> u64 as usize
    ));
    let (_, address, pc) = recorded(2);
    assert_eq!(address, Some(inaccessible));
    assert!(in_probe(
        pc,
        probe_load as unsafe extern "C" fn(usize) -> u64 as usize
    ));
    let (_, address, _) = recorded(3);
    assert_eq!(address, Some(inaccessible + 8));
    let (_, address, pc) = recorded(4);
    assert_eq!((address, pc), (Some(inaccessible), inaccessible));

    assert_eq!(hal.set_trap_context(previous), TEST_CONTEXT);
    MODE.store(MODE_FATAL, Ordering::SeqCst);
    // Safety: exactly the reservation made above; nothing uses it any more.
    unsafe { hal.release(NonNull::new(inaccessible as *mut u8).unwrap(), page) }.unwrap();
}

#[test]
fn stack_exhaustion_is_handled_on_the_alternate_stack() {
    let _guard = lock();
    reset(MODE_LANDING);
    hal().install_trap_handler(test_handler);
    let (result, altstack_base, altstack_size) = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| {
            hal().set_trap_context(TEST_CONTEXT);
            let altstack = current_altstack();
            // Safety: the probe pushes until it faults on the thread's guard page; the
            // handler runs on the alternate stack and redirects to `landing`, which
            // restores the stack pointer from the frame pointer and returns here.
            let result = unsafe { probe_exhaust_stack() };
            (result, altstack.ss_sp as usize, altstack.ss_size)
        })
        .unwrap()
        .join()
        .unwrap();
    MODE.store(MODE_FATAL, Ordering::SeqCst);
    assert_eq!(result, encode(TrapCause::MemoryFault(Access::Write)));
    assert_eq!(RUNS.load(Ordering::SeqCst), 1);
    assert!(altstack_size >= super::altstack::size());
    let handler_stack = HANDLER_STACK.load(Ordering::SeqCst);
    assert!(
        (altstack_base..altstack_base + altstack_size).contains(&handler_stack),
        "the handler ran at {handler_stack:#x}, outside the alternate stack"
    );
}

#[test]
fn trap_context_is_per_thread_and_returns_the_previous_value() {
    std::thread::spawn(|| {
        assert_eq!(hal().set_trap_context(1), 0);
        assert_eq!(hal().set_trap_context(2), 1);
        std::thread::spawn(|| assert_eq!(hal().set_trap_context(3), 0))
            .join()
            .unwrap();
        assert_eq!(hal().set_trap_context(0), 2);
    })
    .join()
    .unwrap();
    let previous = hal().set_trap_context(9);
    assert_eq!(hal().set_trap_context(previous), 9);
}

#[test]
fn report_format() {
    let info = TrapInfo {
        pc: 0x5555_0000_1234,
        fp: 0x7ffe_0000_0010,
        sp: 0x7ffe_0000_0000,
        fault_address: Some(0),
        cause: TrapCause::MemoryFault(Access::Write),
        context: 0,
    };
    let line = super::report::format(libc::SIGSEGV, &info, true);
    assert_eq!(
        core::str::from_utf8(line.as_bytes()).unwrap(),
        "fatal fault outside WebAssembly: signal SIGSEGV at pc=0x555500001234 address=0x0 \
         sp=0x7ffe00000000 fp=0x7ffe00000010 access=write\n"
    );
    let info = TrapInfo {
        pc: usize::MAX,
        fault_address: None,
        cause: TrapCause::Other(5),
        ..info
    };
    let line = super::report::format(5, &info, false);
    assert_eq!(
        core::str::from_utf8(line.as_bytes()).unwrap(),
        "fatal fault outside WebAssembly: signal 5 at pc=0xffffffffffffffff \
         sp=0x7ffe00000000 fp=0x7ffe00000010 (no trap handler installed)\n"
    );
}

#[test]
fn sent_signal_report_format() {
    let line = super::report::format_sent(libc::SIGSEGV, 1234, 1000);
    assert_eq!(
        core::str::from_utf8(line.as_bytes()).unwrap(),
        "received SIGSEGV sent by process 1234 (uid 1000), not a fault: terminating\n"
    );
}

/// The environment variable that makes a test run its child-process half.
const SCENARIO: &str = "HAL_HOSTED_TRAP_SCENARIO";

/// Runs the test `test` (a function of this module) in a child process with
/// [`SCENARIO`] set to `scenario`.
fn run_child(test: &str, scenario: &str) -> Output {
    let module = module_path!()
        .split_once("::")
        .map_or(module_path!(), |(_, path)| path);
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            &format!("{module}::{test}"),
            "--nocapture",
            "--test-threads=1",
        ])
        .env(SCENARIO, scenario)
        .output()
        .unwrap()
}

/// The child half of [`fatal_faults_abort_with_a_report`]: faults with a handler that
/// answers `Fatal`.
fn fatal_fault_child(scenario: &str) -> ! {
    let no_core = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // Safety: `no_core` is a valid `rlimit`; no core file for the expected abort.
    unsafe { libc::setrlimit(libc::RLIMIT_CORE, &raw const no_core) };
    let hal = hal();
    hal.install_trap_handler(|_| TrapResponse::Fatal);
    hal.set_trap_context(1);
    let page = hal.page_size();
    let inaccessible = hal.reserve(page).unwrap().as_ptr() as usize;
    println!("inaccessible={inaccessible:#x}");
    match scenario {
        // Safety: the page is a reservation of ours with no access: the load faults and
        // the handler stops the process.
        "segv" => _ = unsafe { probe_load(inaccessible) },
        // Safety: `ud2` faults and the handler stops the process.
        "ill" => _ = unsafe { probe_ud2() },
        _ => {}
    }
    std::process::exit(3)
}

#[test]
fn fatal_faults_abort_with_a_report() {
    use std::os::unix::process::ExitStatusExt;

    if let Ok(scenario) = std::env::var(SCENARIO) {
        fatal_fault_child(&scenario);
    }
    let output = run_child("fatal_faults_abort_with_a_report", "segv");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.signal(), Some(libc::SIGABRT), "{stderr}");
    // The child prints after libtest's "test ... " on the same line.
    let address = stdout
        .split_once("inaccessible=")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in the child's output: {stdout}"));
    assert!(
        stderr.contains("fatal fault outside WebAssembly: signal SIGSEGV at pc=0x"),
        "{stderr}"
    );
    assert!(stderr.contains(&format!(" address={address} ")), "{stderr}");
    assert!(stderr.contains(" access=read\n"), "{stderr}");

    let output = run_child("fatal_faults_abort_with_a_report", "ill");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.signal(), Some(libc::SIGABRT), "{stderr}");
    assert!(
        stderr.contains("fatal fault outside WebAssembly: signal SIGILL at pc=0x"),
        "{stderr}"
    );
    assert!(!stderr.contains("address="), "{stderr}");
}

#[test]
fn alternate_stack_is_given_and_freed_with_the_thread() {
    if std::env::var(SCENARIO).is_err() {
        let output = run_child("alternate_stack_is_given_and_freed_with_the_thread", "run");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("1 passed"),
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        return;
    }
    // In a child process, so that no other test maps memory where the freed stack was.
    let (base, size) = std::thread::spawn(|| {
        let before = current_altstack();
        hal().set_trap_context(1);
        let after = current_altstack();
        assert_eq!(after.ss_flags & libc::SS_DISABLE, 0);
        assert!(after.ss_size >= super::altstack::size());
        assert_ne!(after.ss_sp, before.ss_sp);
        // A second call keeps the same stack.
        hal().set_trap_context(2);
        let again = current_altstack();
        assert_eq!((again.ss_sp, again.ss_size), (after.ss_sp, after.ss_size));
        (after.ss_sp as usize, after.ss_size)
    })
    .join()
    .unwrap();
    // `join` returns once the thread has exited, its thread-local destructors done: the
    // stack and its guard page are unmapped, so `mincore` finds nothing there.
    let page = hal().page_size();
    for address in (base - page..base + size).step_by(page) {
        let mut residency = 0_u8;
        // Safety: `mincore` only writes one byte for the one page asked about; the page
        // need not be mapped.
        let status =
            unsafe { libc::mincore(address as *mut libc::c_void, page, &raw mut residency) };
        assert_eq!(status, -1, "page {address:#x} is still mapped");
        assert_eq!(
            std::io::Error::last_os_error().raw_os_error(),
            Some(libc::ENOMEM)
        );
    }
}
