//! Syscalls: the `k23` imports of syscall ABI v0, served to the calling process.
//!
//! A program imports syscalls from the module `"k23"` by name, with exactly the type the
//! ABI gives (DESIGN.md, "Syscall ABI v0"). [`link`] makes one host function per import,
//! bound to the process that instantiates the program. Host functions reach the caller's
//! memory only through [`Caller`]'s bounds-checked accessors: a bad pointer or length is
//! the error result [`Errno::BadPointer`], never a fault of the kernel and never a touch of
//! another process's memory.
//!
//! | import    | signature                                   | result                      |
//! |-----------|---------------------------------------------|-----------------------------|
//! | `print`   | `(ptr i32, len i32) -> i32`                 | `len`, or -2                |
//! | `exit`    | `(code i32)`                                | never returns               |
//! | `yield`   | `()`                                        |                             |
//! | `sleep`   | `(ns i64)`                                  | after at least `ns`         |
//! | `now`     | `() -> i64`                                 | monotonic nanoseconds       |
//! | `getpid`  | `() -> i32`                                 | this process's id           |
//! | `spawn`   | `(name_ptr i32, name_len i32, handle i32) -> i32` | the child's pid, or -1, -2, -4, -5, -6 |
//!
//! Handles (and so `spawn`'s `handle` argument) come with channels: until then any handle
//! other than -1 is a bad handle (-1).

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::KernelHal;
use crate::kernel::ProgramSpawnError;
use crate::process::Process;
use crate::wasm::env::{EntityIndex, FuncType, ValType};
use crate::wasm::runtime::{Caller, Extern, HostCallback, Module, Store, Val};

/// The import module of the syscalls.
pub const SYSCALL_MODULE: &str = "k23";

/// The error results of syscall ABI v0 (negative `i32`s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Errno {
    /// A handle the process does not hold, or of the wrong kind.
    BadHandle = -1,
    /// A pointer or length outside the caller's memory.
    BadPointer = -2,
    /// The channel is closed.
    Closed = -3,
    /// No boot program has that name.
    NoSuchProgram = -4,
    /// Memory (or another limited resource) ran out.
    OutOfMemory = -5,
    /// An argument is out of range.
    InvalidArgument = -6,
    /// The operation would block.
    WouldBlock = -7,
}

/// The failure message with which `exit` unwinds the process's WebAssembly code.
const EXIT_UNWIND: &str = "process exited";

/// The syscalls, by name, with their types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Syscall {
    Print,
    Exit,
    Yield,
    Sleep,
    Now,
    GetPid,
    Spawn,
}

impl Syscall {
    const ALL: [Self; 7] = [
        Self::Print,
        Self::Exit,
        Self::Yield,
        Self::Sleep,
        Self::Now,
        Self::GetPid,
        Self::Spawn,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Print => "print",
            Self::Exit => "exit",
            Self::Yield => "yield",
            Self::Sleep => "sleep",
            Self::Now => "now",
            Self::GetPid => "getpid",
            Self::Spawn => "spawn",
        }
    }

    /// Parameter and result types.
    fn signature(self) -> (&'static [ValType], &'static [ValType]) {
        use ValType::{I32, I64};
        match self {
            Self::Print => (&[I32, I32], &[I32]),
            Self::Exit => (&[I32], &[]),
            Self::Yield => (&[], &[]),
            Self::Sleep => (&[I64], &[]),
            Self::Now => (&[], &[I64]),
            Self::GetPid => (&[], &[I32]),
            Self::Spawn => (&[I32, I32, I32], &[I32]),
        }
    }

    fn func_type(self) -> FuncType {
        let (params, results) = self.signature();
        FuncType {
            params: params.into(),
            results: results.into(),
        }
    }
}

/// Makes the host functions for `module`'s imports, bound to `process`, in import order.
///
/// # Errors
/// A message naming the first import that is not a syscall of this ABI, or has another
/// type.
pub fn link<H: KernelHal>(
    store: &mut Store<'static, H>,
    module: &Module<'static, H>,
    process: &'static Process<H>,
) -> Result<Vec<Extern>, String> {
    let info = module.info();
    let mut imports = Vec::with_capacity(info.imports.len());
    for import in &info.imports {
        let unlinkable = |why: &str| {
            format!(
                "unlinkable: import {}::{} {why}",
                import.module, import.name
            )
        };
        if import.module != SYSCALL_MODULE {
            return Err(unlinkable(
                "is not provided (syscalls are imported from \"k23\")",
            ));
        }
        let syscall = Syscall::ALL
            .into_iter()
            .find(|syscall| syscall.name() == import.name)
            .ok_or_else(|| unlinkable("is not a syscall"))?;
        let EntityIndex::Function(func) = import.entity else {
            return Err(unlinkable("is not a function"));
        };
        let expected = syscall.func_type();
        if info.function_type(func) != Some(&expected) {
            return Err(unlinkable(&format!(
                "has the wrong type: the syscall is {:?} -> {:?}",
                expected.params, expected.results
            )));
        }
        let func = store.new_host_func(expected, host_function(syscall, process));
        imports.push(Extern::Func(func));
    }
    Ok(imports)
}

/// Whether a process's WebAssembly code stopped because it called `exit`.
pub fn is_exit_unwind(detail: Option<&str>) -> bool {
    detail == Some(EXIT_UNWIND)
}

/// The host function of `syscall` for `process`.
fn host_function<H: KernelHal>(
    syscall: Syscall,
    process: &'static Process<H>,
) -> HostCallback<'static> {
    Box::new(move |caller, args, results| {
        let result = match syscall {
            Syscall::Print => Val::I32(print(process, caller, args)),
            Syscall::Exit => {
                process.set_exit_code(i32_arg(args, 0));
                return Err(String::from(EXIT_UNWIND));
            }
            Syscall::Yield => {
                process.yield_now();
                return Ok(());
            }
            Syscall::Sleep => {
                sleep(process, i64_arg(args, 0));
                return Ok(());
            }
            Syscall::Now => {
                let now = process.kernel().hal().now_ns();
                Val::I64(i64::try_from(now).unwrap_or(i64::MAX))
            }
            Syscall::GetPid => Val::I32(i32::try_from(process.pid()).unwrap_or(i32::MAX)),
            Syscall::Spawn => Val::I32(spawn(process, caller, args)),
        };
        if let Some(slot) = results.first_mut() {
            *slot = result;
        }
        Ok(())
    })
}

/// Argument `index` as an `i32` (the types were checked at link time).
fn i32_arg(args: &[Val], index: usize) -> i32 {
    match args.get(index) {
        Some(Val::I32(value)) => *value,
        _ => 0,
    }
}

/// Argument `index` as an `i64`.
fn i64_arg(args: &[Val], index: usize) -> i64 {
    match args.get(index) {
        Some(Val::I64(value)) => *value,
        _ => 0,
    }
}

/// `print(ptr, len) -> len`: writes the bytes to the console.
fn print<H: KernelHal>(process: &Process<H>, caller: &Caller<'_>, args: &[Val]) -> i32 {
    let len = i32_arg(args, 1);
    match caller.read(i32_arg(args, 0), len) {
        Some(bytes) => {
            process.kernel().hal().write_bytes(bytes);
            len
        }
        None => Errno::BadPointer as i32,
    }
}

/// `sleep(ns)`: blocks for at least `ns` nanoseconds (a negative or zero time yields).
fn sleep<H: KernelHal>(process: &Process<H>, ns: i64) {
    match u64::try_from(ns) {
        Ok(ns) if ns > 0 => {
            let until = process.kernel().hal().now_ns().saturating_add(ns);
            process.sleep_until(until);
        }
        _ => process.yield_now(),
    }
}

/// `spawn(name_ptr, name_len, handle) -> pid`: starts the boot program of that name.
fn spawn<H: KernelHal>(process: &'static Process<H>, caller: &Caller<'_>, args: &[Val]) -> i32 {
    let Some(name) = caller.read(i32_arg(args, 0), i32_arg(args, 1)) else {
        return Errno::BadPointer as i32;
    };
    // No handle can be held before channels exist: only "no handle" is valid.
    if i32_arg(args, 2) != -1 {
        return Errno::BadHandle as i32;
    }
    let Ok(name) = core::str::from_utf8(name) else {
        return Errno::NoSuchProgram as i32;
    };
    match process.kernel().spawn_program(name) {
        Ok(pid) => i32::try_from(pid).unwrap_or(i32::MAX),
        Err(ProgramSpawnError::NoSuchProgram) => Errno::NoSuchProgram as i32,
        Err(ProgramSpawnError::LoadFailed) => Errno::InvalidArgument as i32,
        Err(ProgramSpawnError::OutOfMemory) => Errno::OutOfMemory as i32,
    }
}
