//! Processes: a program instance with its own store, its own stack, and an exit status.
//!
//! A process runs on a stack of its own (a fiber, [`crate::hal::ExecutionContexts`]) with
//! an inaccessible guard page below it. Its WebAssembly store (linear memories, tables,
//! globals) is created on that stack when the process starts and dropped before it ends,
//! and WebAssembly gets a fixed budget of it ([`Process::wasm_stack_budget`]): the
//! stack's size less [`HOST_STACK_RESERVE`] at the bottom, the room kept for the host
//! functions and builtins that WebAssembly calls, and less [`KERNEL_FRAMES_ROOM`] at the
//! top for the kernel's own frames that call into WebAssembly. The budget is counted from
//! the frame of the call into WebAssembly, not from the stack's top, so that it is the
//! same number of bytes on every HAL whatever the depth of the kernel's frames there.
//!
//! A process leaves the CPU only by switching back to its CPU's scheduler loop
//! ([`Process::switch_out`]) with a [`Request`]: to run again later (a `yield` syscall, or
//! the epoch handler at the end of its time slice), to sleep, or to end. It may resume on
//! another CPU. A trap ends the process that trapped, with the trap's message as its
//! status; the scheduler then frees everything it held.

mod handles;
pub mod program;
pub mod workers;

pub use handles::HandleTable;

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell, UnsafeCell};
use core::fmt;
use core::ops::Deref;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::KernelHal;
use crate::hal::ContextError;
use crate::ipc::ChannelEnd;
use crate::kernel::Kernel;
use crate::sched::WaitQueue;
use crate::syscall::bench::{BenchInterval, BenchTimes};
use crate::wasi::state::WasiState;
use crate::wasm::runtime::CallError;
use crate::wasm::runtime::epoch::{self, EpochAction};

/// The stack of a boot program's process.
pub const PROGRAM_STACK_SIZE: usize = 1024 * 1024;

/// The bytes of a process's stack kept below the JIT's stack limit for the host functions
/// (syscalls) and builtins WebAssembly calls, and for the scheduler switch they may make.
pub const HOST_STACK_RESERVE: usize = 256 * 1024;

/// The bytes at the top of a process's stack kept for the kernel's frames below which
/// WebAssembly runs (the process's main function, the job, `Store::call`): they are not
/// part of WebAssembly's budget. Measured: about 11 KiB in a debug build of the hosted
/// kernel, 8 KiB in the riscv64 release kernel.
pub const KERNEL_FRAMES_ROOM: usize = 128 * 1024;

/// What a process asks of the scheduler when it switches back to it.
pub enum Request<H: KernelHal> {
    /// Run it again later (it yielded, or its time slice ended).
    Yield,
    /// Run it again once the clock reads `until_ns`.
    Sleep {
        /// The [`crate::hal::Clock::now_ns`] instant to wake at.
        until_ns: u64,
    },
    /// Park it on `queue`, unless the queue was woken since `generation` (see
    /// [`crate::sched::WaitQueue`]).
    Wait {
        /// The queue, which outlives the wait (its object is held by the process).
        queue: NonNull<WaitQueue<H>>,
        /// The queue's generation when the process found it must wait.
        generation: u64,
    },
    /// It has ended: report and free it.
    Exit,
}

impl<H: KernelHal> Clone for Request<H> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<H: KernelHal> Copy for Request<H> {}

/// How a process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessExit {
    /// It called `exit(code)`, or returned from `_start` (code 0).
    Code(i32),
    /// It trapped.
    Trap(CallError),
    /// It could not start (its imports cannot be satisfied, its module failed to load).
    Failed(String),
    /// The kernel ended it, for the reason given (a deadlock).
    Killed(&'static str),
}

impl fmt::Display for ProcessExit {
    /// The `status=` part of an exit line: the code, `trap: message` or `error: message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Code(code) => write!(f, "{code}"),
            Self::Trap(error) => write!(f, "trap: {error}"),
            Self::Failed(message) => write!(f, "error: {message}"),
            Self::Killed(reason) => write!(f, "killed: {reason}"),
        }
    }
}

/// What a process runs on its stack: returns how it ended.
pub type ProcessMain<H> = Box<dyn FnOnce(&'static Process<H>) -> ProcessExit + Send>;

/// Why a process could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpawnError {
    /// Its stack could not be allocated.
    OutOfMemory,
}

impl From<ContextError> for SpawnError {
    fn from(_: ContextError) -> Self {
        Self::OutOfMemory
    }
}

/// A process.
pub struct Process<H: KernelHal> {
    /// The process id, unique for the life of the kernel.
    pid: u32,
    /// The boot program's name (or the job's).
    name: String,
    /// The kernel it runs in.
    kernel: &'static Kernel<H>,
    /// Its stack; dropped with the process, after its last switch out.
    stack: H::Stack,
    /// Its saved context while it does not run.
    context: UnsafeCell<H::SavedContext>,
    /// What it runs; taken when it starts.
    main: Cell<Option<ProcessMain<H>>>,
    /// What it asked for at its last switch out.
    request: Cell<Request<H>>,
    /// The CPU's trap context word while it ran, restored when it runs again.
    trap_context: Cell<usize>,
    /// When its current run began.
    run_start_ns: Cell<u64>,
    /// The epoch tick its current time slice ends at.
    slice_end_tick: Cell<u64>,
    /// CPU time used by the runs that ended.
    cpu_time_ns: Cell<u64>,
    /// The code given to `exit`, once called.
    exit_code: Cell<Option<i32>>,
    /// How it ended, once it has.
    exit: RefCell<Option<ProcessExit>>,
    /// Its handles (used only by its own syscalls, on its own stack).
    handles: RefCell<HandleTable<H>>,
    /// Its store's epoch deadline, in deterministic mode, which each slice moves.
    epoch_deadline: Cell<Option<NonNull<AtomicU64>>>,
    /// The process's `tracing` span, entered by the scheduler while the process runs.
    span: tracing::Span,
    /// Its WASI arguments and descriptors (used only by its own syscalls), made at its
    /// first WASI call from the kernel's WASI state (so that processes that never use
    /// WASI, and the spawn benchmarks, pay nothing for it).
    wasi: RefCell<Option<WasiState>>,
    /// Its `bench.start` / `bench.end` marks (used only by its own calls of them).
    bench: RefCell<BenchTimes>,
    /// Whether it is a task of the kernel's own ([`Process::spawn_task`]): no pid, no
    /// exit line, no exit status.
    kernel_task: bool,
}

// Safety: a process is used by one CPU at a time: the CPU running it (its own code, on its
// stack) or the scheduler loop that took it from a queue or just switched back from it.
// The queues' locks and the context switches order these uses.
unsafe impl<H: KernelHal> Sync for Process<H> {}
// Safety: as above; moving a process to another CPU moves its stack and state with it.
unsafe impl<H: KernelHal> Send for Process<H> {}

/// An owned process on its way between the scheduler's queues; its address is stable.
pub struct ProcessBox<H: KernelHal>(NonNull<Process<H>>);

// Safety: see `Process`: the box is the only handle to a process that is not running.
unsafe impl<H: KernelHal> Send for ProcessBox<H> {}

impl<H: KernelHal> Deref for ProcessBox<H> {
    type Target = Process<H>;

    fn deref(&self) -> &Process<H> {
        // Safety: the pointer came from `Box::leak` in `Process::spawn` and is freed only
        // when this box drops.
        unsafe { self.0.as_ref() }
    }
}

impl<H: KernelHal> Drop for ProcessBox<H> {
    fn drop(&mut self) {
        // Safety: made by `Box::leak` in `Process::spawn`; the box is the only owner, and
        // the process no longer runs (it is dropped only after its last switch out).
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}

impl<H: KernelHal> Process<H> {
    /// Makes process `name` running `main` on a fresh stack of `stack_size` bytes, with
    /// `handles` as its handles 0, 1, ..., and queues it. Returns its pid.
    ///
    /// # Errors
    /// [`SpawnError::OutOfMemory`] when its stack cannot be had or the handles do not fit
    /// its table, with the handles given back.
    pub fn spawn(
        kernel: &'static Kernel<H>,
        name: &str,
        stack_size: usize,
        main: ProcessMain<H>,
        handles: Vec<ChannelEnd<H>>,
    ) -> Result<u32, (SpawnError, Vec<ChannelEnd<H>>)> {
        Self::spawn_inner(kernel, name, stack_size, main, handles, false)
    }

    /// Makes a task of the kernel's own running `main` on a fresh stack of `stack_size`
    /// bytes, and queues it: scheduled like any process (so it runs on whichever CPU is
    /// free), but it has pid 0 and no handles, and its end is neither printed nor counted
    /// as an exit status (a compile helper, [`workers`]).
    ///
    /// # Errors
    /// [`SpawnError::OutOfMemory`] when its stack cannot be had.
    pub fn spawn_task(
        kernel: &'static Kernel<H>,
        name: &str,
        stack_size: usize,
        main: ProcessMain<H>,
    ) -> Result<(), SpawnError> {
        Self::spawn_inner(kernel, name, stack_size, main, Vec::new(), true)
            .map(drop)
            .map_err(|(error, _)| error)
    }

    /// [`Process::spawn`] or [`Process::spawn_task`].
    fn spawn_inner(
        kernel: &'static Kernel<H>,
        name: &str,
        stack_size: usize,
        main: ProcessMain<H>,
        handles: Vec<ChannelEnd<H>>,
        kernel_task: bool,
    ) -> Result<u32, (SpawnError, Vec<ChannelEnd<H>>)> {
        let hal = kernel.hal();
        let mut table = HandleTable::new(kernel.options().max_handles as usize);
        if !table.has_room(handles.len()) {
            return Err((SpawnError::OutOfMemory, handles));
        }
        let stack = match hal.allocate_stack(stack_size) {
            Ok(stack) => stack,
            Err(error) => return Err((error.into(), handles)),
        };
        for handle in handles {
            // Checked above: every handle fits, under the numbers 0, 1, ... in order.
            let _ = table.insert(handle);
        }
        let pid = if kernel_task {
            0
        } else {
            kernel.next_pid(name)
        };
        let span = tracing::info_span!(
            target: "kernel_core::process",
            parent: None,
            "process",
            pid,
            name = %crate::wasm::runtime::escape_name(name)
        );
        tracing::debug!(
            target: "kernel_core::process",
            pid,
            name = %crate::wasm::runtime::escape_name(name),
            "spawned"
        );
        let process = Box::new(Self {
            pid,
            name: String::from(name),
            kernel,
            stack,
            context: UnsafeCell::new(H::SavedContext::default()),
            main: Cell::new(Some(main)),
            request: Cell::new(Request::Exit),
            trap_context: Cell::new(0),
            run_start_ns: Cell::new(0),
            slice_end_tick: Cell::new(0),
            cpu_time_ns: Cell::new(0),
            exit_code: Cell::new(None),
            exit: RefCell::new(None),
            handles: RefCell::new(table),
            epoch_deadline: Cell::new(None),
            span,
            wasi: RefCell::new(None),
            bench: RefCell::new(BenchTimes::default()),
            kernel_task,
        });
        let process = NonNull::from(Box::leak(process));
        let entry_arg = process.as_ptr() as usize;
        // Safety: freshly leaked above; nothing else refers to it yet.
        let stack_ref = unsafe { &process.as_ref().stack };
        let initial = hal.new_context(stack_ref, process_entry::<H>, entry_arg);
        // Safety: as above: the process is not running and only this function holds it.
        unsafe { *process.as_ref().context.get() = initial };
        kernel.sched.add_live();
        kernel.sched.enqueue(ProcessBox(process));
        Ok(pid)
    }

    /// The process's `tracing` span (disabled when logs of `kernel_core::process` at
    /// `info` are off).
    pub fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The program's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The kernel the process runs in.
    pub fn kernel(&self) -> &'static Kernel<H> {
        self.kernel
    }

    /// The usable bytes of the process's stack.
    pub fn stack_bounds(&self) -> core::ops::Range<usize> {
        self.kernel.hal().stack_bounds(&self.stack)
    }

    /// The process's handles. Only its own syscalls use them, and never across a switch
    /// (a blocking call clones what it needs out of the table first).
    pub fn handles(&self) -> core::cell::RefMut<'_, HandleTable<H>> {
        self.handles.borrow_mut()
    }

    /// The process's WASI state. Only its own syscalls use it, and never across a switch
    /// (a blocking call copies what it needs first).
    pub fn wasi(&self) -> core::cell::RefMut<'_, WasiState> {
        core::cell::RefMut::map(self.wasi.borrow_mut(), |state| {
            state.get_or_insert_with(|| WasiState::new(&self.name, self.kernel.wasi()))
        })
    }

    /// The process's benchmark marks, which its `bench.start` / `bench.end` calls record.
    pub fn bench_times(&self) -> core::cell::RefMut<'_, BenchTimes> {
        self.bench.borrow_mut()
    }

    /// The intervals the process has measured with `bench.start` / `bench.end` so far, in
    /// the order they closed (at most [`crate::syscall::bench::MAX_INTERVALS`]).
    pub fn bench_intervals(&self) -> Vec<BenchInterval> {
        self.bench.borrow().intervals().to_vec()
    }

    /// The lowest address this process's WebAssembly code may use: the stack's bottom
    /// plus [`HOST_STACK_RESERVE`].
    pub fn wasm_stack_floor(&self) -> usize {
        self.stack_bounds().start + HOST_STACK_RESERVE
    }

    /// The bytes of stack this process's WebAssembly code gets below the frame of the
    /// kernel's call into it: the stack's size less [`HOST_STACK_RESERVE`] and
    /// [`KERNEL_FRAMES_ROOM`] (640 KiB for a program's 1 MiB stack, 15.625 MiB for a
    /// job's 16 MiB), the same on every HAL. Half of it is counted in frame costs
    /// ([`crate::wasm::abi::counted_stack_budget`]).
    pub fn wasm_stack_budget(&self) -> usize {
        self.stack_bounds()
            .len()
            .saturating_sub(HOST_STACK_RESERVE + KERNEL_FRAMES_ROOM)
    }

    /// The epoch tick the current time slice ends at: the store's deadline.
    pub fn slice_end_tick(&self) -> u64 {
        self.slice_end_tick.get()
    }

    /// Records `code` as the process's exit code (the `exit` syscall, which then unwinds
    /// the process's WebAssembly code).
    pub fn set_exit_code(&self, code: i32) {
        self.exit_code.set(Some(code));
    }

    /// The code given to `exit`, if it was called.
    pub fn exit_code(&self) -> Option<i32> {
        self.exit_code.get()
    }

    /// The saved context to continue the process with.
    pub(crate) fn context(&self) -> *mut H::SavedContext {
        self.context.get()
    }

    /// What the process asked for at its last switch out.
    pub(crate) fn request(&self) -> Request<H> {
        self.request.get()
    }

    /// The scheduler starts a run at `now_ns`, with a slice ending at tick `end_tick`.
    pub(crate) fn begin_slice(&self, now_ns: u64, end_tick: u64) {
        self.run_start_ns.set(now_ns);
        self.slice_end_tick.set(end_tick);
        if let Some(deadline) = self.epoch_deadline.get() {
            // Safety: set by `program::prepare_store` to its store's deadline and cleared
            // before that store drops; the process is switched out, so none of its code
            // runs while this writes (atomically).
            unsafe { deadline.as_ref() }.store(end_tick, Ordering::Relaxed);
        }
    }

    /// Registers (or with `None` forgets) the process's store's epoch deadline, which
    /// [`Process::begin_slice`] then moves to each slice's end (deterministic mode, where
    /// a slice's length is a drawn number of check points). The store must outlive the
    /// registration.
    pub(crate) fn set_epoch_deadline_cell(&self, deadline: Option<NonNull<AtomicU64>>) {
        self.epoch_deadline.set(deadline);
    }

    /// The scheduler ends a run at `now_ns`.
    pub(crate) fn end_slice(&self, now_ns: u64) {
        let ran = now_ns.saturating_sub(self.run_start_ns.get());
        self.cpu_time_ns
            .set(self.cpu_time_ns.get().saturating_add(ran));
    }

    /// CPU time used so far, the current run included.
    pub fn cpu_time_ns(&self) -> u64 {
        let now = self.kernel.now_ns();
        self.cpu_time_ns
            .get()
            .saturating_add(now.saturating_sub(self.run_start_ns.get()))
    }

    /// Switches back to the current CPU's scheduler loop asking for `request`, and returns
    /// when the scheduler runs the process again (perhaps on another CPU). Must be called
    /// on the process's own stack.
    pub fn switch_out(&self, request: Request<H>) {
        let hal = self.kernel.hal();
        self.request.set(request);
        // The trap context word belongs to this process's activations: take it along.
        self.trap_context.set(hal.set_trap_context(0));
        // A span entered inside the process (a syscall's) must not stay entered on this
        // CPU while other processes run: leave it now and enter it again on resuming.
        // Syscall spans are `trace`: below that level (one atomic load) there is none.
        let inner = if tracing::level_enabled!(tracing::Level::TRACE) {
            let current = tracing::Span::current();
            (current.id().is_some() && current.id() != self.span.id()).then_some(current)
        } else {
            None
        };
        if let Some(span) = &inner {
            span.with_subscriber(|(id, dispatch)| dispatch.exit(id));
        }
        let cpu = hal.current_cpu();
        let scheduler = self.kernel.sched.cpu_context(cpu);
        // Safety: this runs on the process's own stack (this function's contract), so
        // saving into the process's context is saving the running context; the CPU's
        // scheduler context was saved by `Scheduler::run` when it switched here and is
        // continued by nothing else.
        unsafe { hal.switch(self.context.get(), scheduler) };
        // Resumed, perhaps on another CPU: its trap context now belongs to this process.
        hal.set_trap_context(self.trap_context.get());
        if let Some(span) = &inner {
            span.with_subscriber(|(id, dispatch)| dispatch.enter(id));
        }
    }

    /// Gives the CPU to other ready processes; returns when this one runs again.
    pub fn yield_now(&self) {
        self.switch_out(Request::Yield);
    }

    /// Blocks until the clock reads at least `until_ns`.
    pub fn sleep_until(&self, until_ns: u64) {
        self.switch_out(Request::Sleep { until_ns });
    }

    /// Blocks on `queue` until it is woken after `generation` (read under the lock of the
    /// object waited on, see [`WaitQueue`]). Returns when the process runs again; the
    /// caller looks at its condition again.
    pub fn wait(&self, queue: &WaitQueue<H>, generation: u64) {
        self.switch_out(Request::Wait {
            queue: NonNull::from(queue),
            generation,
        });
    }

    /// The process's epoch handler: its WebAssembly code passed the store's deadline.
    /// Ends it with `interrupted` past its CPU-time limit; yields when its slice is over.
    pub fn on_epoch(&self) -> EpochAction {
        if let Some(limit) = self.kernel.options().cpu_limit_ns
            && self.cpu_time_ns() >= limit
        {
            tracing::info!(
                target: "kernel_core::sched",
                pid = self.pid,
                cpu_time_ns = self.cpu_time_ns(),
                "CPU-time limit passed: interrupted"
            );
            return EpochAction::Interrupt;
        }
        if epoch::current() >= self.slice_end_tick.get() {
            tracing::debug!(target: "kernel_core::sched", pid = self.pid, "preempted: time slice over");
            self.yield_now();
        }
        EpochAction::Continue {
            deadline: self.slice_end_tick.get(),
        }
    }

    /// Prints the process's exit line (when the kernel reports them) and hands its status
    /// to the kernel. Called by the scheduler once the process has switched out for the
    /// last time.
    pub(crate) fn report_exit(&self) {
        let exit = self
            .exit
            .borrow_mut()
            .take()
            .unwrap_or_else(|| ProcessExit::Failed(String::from("ended without a status")));
        tracing::info!(
            target: "kernel_core::process",
            pid = self.pid,
            name = %crate::wasm::runtime::escape_name(&self.name),
            status = %exit,
            cpu_time_ns = self.cpu_time_ns.get(),
            "exited"
        );
        if !self.kernel_task {
            self.kernel.process_ended(self.pid, &self.name, &exit);
        }
    }
}

/// Where a process starts: runs its main function on its own stack, records how it ended
/// and switches out for the last time.
fn process_entry<H: KernelHal>(arg: usize) -> ! {
    // Safety: `Process::spawn` passes the address of the leaked process, which lives
    // until the scheduler drops it after this function's last switch out.
    let process: &'static Process<H> = unsafe { &*(arg as *const Process<H>) };
    // The run began when the scheduler switched here: make its trap context ours.
    process.kernel.hal().set_trap_context(0);
    let exit = match process.main.take() {
        Some(main) => main(process),
        None => ProcessExit::Failed(String::from("started twice")),
    };
    *process.exit.borrow_mut() = Some(exit);
    process.switch_out(Request::Exit);
    // The scheduler never continues a process that asked to exit.
    loop {
        process.kernel.hal().wait_for_interrupt();
    }
}

/// Formats the exit line of a process: `exit pid=<n> name=<name> status=<status>`.
pub fn exit_line(pid: u32, name: &str, exit: &ProcessExit) -> String {
    alloc::format!("exit pid={pid} name={name} status={exit}")
}
