//! The kernel's shared state: the engine, the scheduler, the boot programs and the
//! settings of this boot, made once by [`crate::boot::main`] and kept for good.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicI32, AtomicU32, Ordering};

use crate::KernelHal;
use crate::boot::image::KernelOptions;
use crate::ipc::ChannelEnd;
use crate::process::{self, PROGRAM_STACK_SIZE, Process, ProcessExit, SpawnError};
use crate::sched::Scheduler;
use crate::sync::SpinLock;
use crate::wasi::state::WasiSystem;
use crate::wasm::runtime::{Engine, Module};

/// A program of the boot image, compiled at boot (or why it could not be).
pub struct BootProgram<H: KernelHal> {
    /// The name `spawn` knows it by.
    pub name: String,
    /// The compiled module, or why it did not load.
    pub module: Result<Module<'static, H>, LoadFailure>,
}

/// Why a boot program did not load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadFailure {
    /// The load error, in words.
    pub message: String,
    /// Whether it passed a compile limit (then `spawn` answers -5, the limit error).
    pub over_limit: bool,
}

/// Why `spawn` of a boot program failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgramSpawnError {
    /// The boot image has no program of that name.
    NoSuchProgram,
    /// The program failed to load at boot (its error was printed then).
    LoadFailed,
    /// The program passed a compile limit at boot.
    OverLimit,
    /// Memory for the process ran out, or the process limit is reached.
    OutOfMemory,
}

/// The kernel of one boot.
pub struct Kernel<H: KernelHal> {
    engine: &'static Engine<H>,
    /// The scheduler of every CPU.
    pub(crate) sched: Scheduler<H>,
    programs: Vec<BootProgram<H>>,
    options: KernelOptions,
    next_pid: AtomicU32,
    /// Whether each process's end is printed as an exit line (`sim boot`).
    report_exits: bool,
    /// The status of the process that ended last: a job's exit status.
    last_status: AtomicI32,
    /// The processes that have not ended, by pid, with their names.
    live_processes: SpinLock<BTreeMap<u32, String>>,
    /// The WASI environment, preopens and input of this boot.
    wasi: WasiSystem,
}

impl<H: KernelHal> Kernel<H> {
    /// A kernel on `engine` with the compiled boot programs and the WASI state `wasi`.
    pub fn new(
        engine: &'static Engine<H>,
        programs: Vec<BootProgram<H>>,
        options: KernelOptions,
        report_exits: bool,
        wasi: WasiSystem,
    ) -> Self {
        Self {
            engine,
            sched: Scheduler::new(engine.hal()),
            programs,
            options: KernelOptions {
                max_handles: options.max_handles.max(1),
                ..options
            },
            next_pid: AtomicU32::new(1),
            report_exits,
            last_status: AtomicI32::new(0),
            live_processes: SpinLock::new(BTreeMap::new()),
            wasi,
        }
    }

    /// The platform.
    pub fn hal(&self) -> &'static H {
        self.engine.hal()
    }

    /// The WebAssembly engine.
    pub fn engine(&self) -> &'static Engine<H> {
        self.engine
    }

    /// The settings of this boot.
    pub fn options(&self) -> &KernelOptions {
        &self.options
    }

    /// The WASI state shared by every process.
    pub fn wasi(&self) -> &WasiSystem {
        &self.wasi
    }

    /// The scheduler.
    pub fn scheduler(&self) -> &Scheduler<H> {
        &self.sched
    }

    /// A fresh process id for a process named `name`, counted as live until
    /// [`Kernel::process_ended`].
    pub(crate) fn next_pid(&self, name: &str) -> u32 {
        let pid = self.next_pid.fetch_add(1, Ordering::Relaxed);
        self.live_processes.lock().insert(pid, String::from(name));
        pid
    }

    /// The scheduler stopped because every process left is blocked forever: reports each
    /// as killed (an exit line, or for a job a message and the trap status).
    pub(crate) fn report_deadlock(&self) {
        let blocked = core::mem::take(&mut *self.live_processes.lock());
        if self.report_exits {
            for (pid, name) in blocked {
                let exit = ProcessExit::Killed("deadlock (blocked forever on a channel)");
                let mut line = process::exit_line(pid, &name, &exit);
                line.push('\n');
                self.hal().write_error_bytes(line.as_bytes());
            }
        } else {
            self.hal().write_error_bytes(
                b"trap: killed: deadlock (every process left is blocked forever on a channel)\n",
            );
        }
        self.last_status.store(
            i32::from(crate::job::JobStatus::Trap.code()),
            Ordering::Release,
        );
    }

    /// The exit status of the process that ended last, as an integer (a job's status).
    pub fn last_status(&self) -> i32 {
        self.last_status.load(Ordering::Acquire)
    }

    /// Starts boot program `name` as a new process, with `handles` as its handles 0, 1,
    /// ...; returns its pid.
    ///
    /// # Errors
    /// [`ProgramSpawnError`], with the handles given back.
    pub fn spawn_program(
        &'static self,
        name: &str,
        handles: Vec<ChannelEnd<H>>,
    ) -> Result<u32, (ProgramSpawnError, Vec<ChannelEnd<H>>)> {
        let Some(program) = self.programs.iter().find(|program| program.name == name) else {
            return Err((ProgramSpawnError::NoSuchProgram, handles));
        };
        let module = match &program.module {
            Ok(module) => module,
            Err(failure) if failure.over_limit => {
                return Err((ProgramSpawnError::OverLimit, handles));
            }
            Err(_) => return Err((ProgramSpawnError::LoadFailed, handles)),
        };
        if self.sched.live() >= self.options.max_processes as usize {
            return Err((ProgramSpawnError::OutOfMemory, handles));
        }
        Process::spawn(
            self,
            name,
            PROGRAM_STACK_SIZE,
            crate::process::program::main(module.clone()),
            handles,
        )
        .map_err(|(SpawnError::OutOfMemory, handles)| (ProgramSpawnError::OutOfMemory, handles))
    }

    /// A process ended: prints its exit line when this boot reports them, and records its
    /// status.
    pub(crate) fn process_ended(&self, pid: u32, name: &str, exit: &ProcessExit) {
        self.live_processes.lock().remove(&pid);
        let status = match exit {
            ProcessExit::Code(code) => *code,
            ProcessExit::Trap(_) | ProcessExit::Failed(_) | ProcessExit::Killed(_) => -1,
        };
        self.last_status.store(status, Ordering::Release);
        if self.report_exits {
            let mut line = process::exit_line(pid, name, exit);
            line.push('\n');
            self.hal().write_error_bytes(line.as_bytes());
        }
    }
}
