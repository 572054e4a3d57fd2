//! The main function of a boot program's process: instantiate the module with its
//! syscalls, run `_start`, and turn the outcome into the process's exit.

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::workers::ProcessWorkers;
use super::{Process, ProcessExit, ProcessMain};
use crate::KernelHal;
use crate::job::RunEnvironment;
use crate::syscall;
use crate::wasm::runtime::{CallError, CompileWorkers, Extern, InstantiationError, Module, Store};

/// The main function of a process running `module`.
pub fn main<H: KernelHal>(module: Module<'static, H>) -> ProcessMain<H> {
    Box::new(move |process| run(process, &module))
}

/// Prepares a store for `process`'s WebAssembly code: the stack budget of its own stack,
/// the kernel's memory limit, and its epoch handler and first deadline, so that the
/// scheduler can preempt it.
pub fn prepare_store<H: KernelHal>(store: &mut Store<'static, H>, process: &'static Process<H>) {
    store.set_stack_budget(process.wasm_stack_floor(), process.wasm_stack_budget());
    store.set_memory_limit(process.kernel().options().memory_limit);
    store.set_epoch_handler(Box::new(move || process.on_epoch()));
    store.set_epoch_deadline(process.slice_end_tick());
    if process.kernel().deterministic().is_some() {
        process.set_epoch_deadline_cell(Some(store.epoch_deadline_ptr()));
    }
}

/// How a call into `process`'s code that failed ends the process: a call to `exit` is
/// an ordinary end with its code, anything else a trap.
pub fn exit_for_error<H: KernelHal>(process: &Process<H>, error: CallError) -> ProcessExit {
    match (&error, process.exit_code()) {
        (CallError::Trap { detail, .. }, Some(code))
            if syscall::is_exit_unwind(detail.as_deref()) =>
        {
            ProcessExit::Code(code)
        }
        _ => ProcessExit::Trap(error),
    }
}

/// The `sim run` job's connection to its process: the syscalls, the process's stack and
/// epoch handler, and `exit` as an ordinary end.
pub struct ProgramEnvironment<H: KernelHal>(
    /// The job's process.
    pub &'static Process<H>,
    /// Its compile helpers.
    pub ProcessWorkers<H>,
);

impl<H: KernelHal> ProgramEnvironment<H> {
    /// The environment of the job running in `process`.
    pub fn new(process: &'static Process<H>) -> Self {
        Self(process, ProcessWorkers(process))
    }
}

impl<H: KernelHal> RunEnvironment<'static, H> for ProgramEnvironment<H> {
    fn link(
        &self,
        store: &mut Store<'static, H>,
        module: &Module<'static, H>,
    ) -> Result<Vec<Extern>, String> {
        prepare_store(store, self.0);
        syscall::link(store, module, self.0)
    }

    fn exit_code(&self, error: &CallError) -> Option<i32> {
        match exit_for_error(self.0, error.clone()) {
            ProcessExit::Code(code) => Some(code),
            _ => None,
        }
    }

    fn compile_workers(&self) -> Option<&dyn CompileWorkers> {
        Some(&self.1)
    }
}

/// Runs `module` in a store of its own, which is gone when this returns.
fn run<H: KernelHal>(process: &'static Process<H>, module: &Module<'static, H>) -> ProcessExit {
    let exit = run_in_store(process, module);
    process.set_epoch_deadline_cell(None);
    exit
}

/// Instantiates `module` (running its start function) and calls `_start` when exported.
fn run_in_store<H: KernelHal>(
    process: &'static Process<H>,
    module: &Module<'static, H>,
) -> ProcessExit {
    let mut store = Store::new(process.kernel().engine());
    prepare_store(&mut store, process);
    let imports = match syscall::link(&mut store, module, process) {
        Ok(imports) => imports,
        Err(message) => return ProcessExit::Failed(message),
    };
    let instance = match store.instantiate(module, &imports) {
        Ok(instance) => instance,
        Err(InstantiationError::Trap(error)) => return exit_for_error(process, error),
        Err(error) => return ProcessExit::Failed(error.to_string()),
    };
    match store.export(instance, "_start") {
        Some(Extern::Func(start)) => match store.call(start, &[]) {
            Ok(_) => ProcessExit::Code(process.exit_code().unwrap_or(0)),
            Err(error) => exit_for_error(process, error),
        },
        _ => ProcessExit::Code(process.exit_code().unwrap_or(0)),
    }
}
