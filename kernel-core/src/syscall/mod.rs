//! Syscalls: the `k23` imports of syscall ABI v0, served to the calling process, and the
//! linker that also hands `wasi_snapshot_preview1` imports to [`crate::wasi`].
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
//! | `channel` | `(out_ptr i32) -> i32`                      | 0, the send then receive handle at `out_ptr`; or -2, -5 |
//! | `send`    | `(h i32, ptr i32, len i32) -> i32`          | 0, or -1, -2, -3, -6        |
//! | `recv`    | `(h i32, ptr i32, cap i32) -> i32`          | the length, or -1, -2, -3, -6 |
//! | `close`   | `(h i32) -> i32`                            | 0, or -1                    |
//!
//! `spawn` with `handle >= 0` moves that handle into the child, where it is handle 0; the
//! parent no longer holds it (when the spawn fails, it keeps it). -1 means no handle.
//!
//! An extension of ABI v0 (a channel is one-way and `spawn` moves one handle, so two
//! processes could not otherwise talk both ways):
//! `spawn_handles(name_ptr i32, name_len i32, handles_ptr i32, count i32) -> i32` moves the
//! `count` handles listed at `handles_ptr` (little-endian `i32`s) into the child as its
//! handles 0, 1, ...; the errors are `spawn`'s (-1 when a handle is not held or is listed
//! twice).
//! `recv` checks that the whole buffer `[ptr, ptr + cap)` lies in the caller's memory before
//! it takes anything, so a failed `recv` never loses a message. Channels are described in
//! [`crate::ipc`].
//!
//! In deterministic mode (`crate::sched::deterministic`) every call is a trace event with
//! its arguments and result, and the seed may preempt the caller right after it returns.
//!
//! [`link`] also serves the benchmark markers `bench.start` and `bench.end` of sightglass
//! programs ([`bench`](mod@bench)): they record the kernel's clock into the process.

pub mod bench;

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::KernelHal;
use crate::ipc::{Channel, ChannelEnd, End, MAX_MESSAGE};
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
pub(crate) const EXIT_UNWIND: &str = "process exited";

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
    SpawnHandles,
    Channel,
    Send,
    Recv,
    Close,
}

impl Syscall {
    const ALL: [Self; 12] = [
        Self::Print,
        Self::Exit,
        Self::Yield,
        Self::Sleep,
        Self::Now,
        Self::GetPid,
        Self::Spawn,
        Self::SpawnHandles,
        Self::Channel,
        Self::Send,
        Self::Recv,
        Self::Close,
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
            Self::SpawnHandles => "spawn_handles",
            Self::Channel => "channel",
            Self::Send => "send",
            Self::Recv => "recv",
            Self::Close => "close",
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
            Self::Spawn | Self::Send | Self::Recv => (&[I32, I32, I32], &[I32]),
            Self::SpawnHandles => (&[I32, I32, I32, I32], &[I32]),
            Self::Channel | Self::Close => (&[I32], &[I32]),
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
        if import.module == crate::wasi::MODULE {
            let EntityIndex::Function(func) = import.entity else {
                return Err(unlinkable("is not a function"));
            };
            let (Some(expected), Some(callback)) = (
                crate::wasi::function_type(&import.name),
                crate::wasi::host_function(&import.name, process),
            ) else {
                return Err(unlinkable("is not a WASI preview 1 function"));
            };
            if info.function_type(func) != Some(&expected) {
                return Err(unlinkable(&format!(
                    "has the wrong type: the function is {:?} -> {:?}",
                    expected.params, expected.results
                )));
            }
            imports.push(Extern::Func(store.new_host_func(expected, callback)));
            continue;
        }
        if import.module == bench::MODULE {
            let EntityIndex::Function(func) = import.entity else {
                return Err(unlinkable("is not a function"));
            };
            let (Some(expected), Some(callback)) = (
                bench::function_type(&import.name),
                bench::host_function(&import.name, process),
            ) else {
                return Err(unlinkable("is not a benchmark marker (start or end)"));
            };
            if info.function_type(func) != Some(&expected) {
                return Err(unlinkable("has the wrong type: the marker is [] -> []"));
            }
            imports.push(Extern::Func(store.new_host_func(expected, callback)));
            continue;
        }
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
        // A span per call, under the process's (left while the call blocks, see
        // `Process::switch_out`).
        let span = tracing::trace_span!("syscall", name = syscall.name(), pid = process.pid());
        let _entered = span.enter();
        tracing::trace!(?args, "syscall");
        let outcome = serve(syscall, process, caller, args, results);
        tracing::trace!(?results, "syscall returned");
        after_syscall(process, syscall.name(), args, results, outcome.is_err());
        outcome
    })
}

/// What follows every syscall (`k23` and WASI) in deterministic mode: the call and its
/// result go into the trace, and the seed may preempt the process right after it.
pub(crate) fn after_syscall<H: KernelHal>(
    process: &Process<H>,
    name: &str,
    args: &[Val],
    results: &[Val],
    unwound: bool,
) {
    if let Some(det) = process.kernel().deterministic() {
        trace(det, name, args, results, unwound);
        if !unwound && det.preempt_after_syscall() {
            det.event(format_args!("preempted after {name}"));
            process.yield_now();
        }
    }
}

/// Adds a syscall and its result to deterministic mode's trace.
fn trace(
    det: &crate::sched::Deterministic,
    name: &str,
    args: &[Val],
    results: &[Val],
    unwound: bool,
) {
    let mut line = String::from(name);
    line.push('(');
    for (index, arg) in args.iter().enumerate() {
        if index > 0 {
            line.push_str(", ");
        }
        push_value(&mut line, arg);
    }
    line.push(')');
    if unwound {
        line.push_str(" unwinds");
    } else if let Some(result) = results.first() {
        line.push_str(" = ");
        push_value(&mut line, result);
    }
    det.event(format_args!("syscall {line}"));
}

/// Appends a syscall argument or result (an integer) to `line`.
fn push_value(line: &mut String, value: &Val) {
    use core::fmt::Write as _;
    // Writing to a String cannot fail.
    let _ = match value {
        Val::I32(value) => write!(line, "{value}"),
        Val::I64(value) => write!(line, "{value}"),
        other => write!(line, "{other:?}"),
    };
}

/// Serves one call of `syscall` by `process`.
fn serve<H: KernelHal>(
    syscall: Syscall,
    process: &'static Process<H>,
    caller: &mut Caller<'_>,
    args: &[Val],
    results: &mut [Val],
) -> Result<(), String> {
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
            let now = process.kernel().now_ns();
            Val::I64(i64::try_from(now).unwrap_or(i64::MAX))
        }
        Syscall::GetPid => Val::I32(i32::try_from(process.pid()).unwrap_or(i32::MAX)),
        Syscall::Spawn => Val::I32(spawn(process, caller, args)),
        Syscall::SpawnHandles => Val::I32(spawn_handles(process, caller, args)),
        Syscall::Channel => Val::I32(channel(process, caller, args)),
        Syscall::Send => Val::I32(send(process, caller, args)),
        Syscall::Recv => Val::I32(recv(process, caller, args)),
        Syscall::Close => Val::I32(match process.handles().take(i32_arg(args, 0)) {
            Some(end) => {
                drop(end);
                0
            }
            None => Errno::BadHandle as i32,
        }),
    };
    if let Some(slot) = results.first_mut() {
        *slot = result;
    }
    Ok(())
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
            process.kernel().hal().write_program_bytes(bytes, false);
            len
        }
        None => Errno::BadPointer as i32,
    }
}

/// `sleep(ns)`: blocks for at least `ns` nanoseconds (a negative or zero time yields).
fn sleep<H: KernelHal>(process: &Process<H>, ns: i64) {
    match u64::try_from(ns) {
        Ok(ns) if ns > 0 => {
            let until = process.kernel().now_ns().saturating_add(ns);
            process.sleep_until(until);
        }
        _ => process.yield_now(),
    }
}

/// `spawn(name_ptr, name_len, handle) -> pid`: starts the boot program of that name,
/// moving `handle` (unless -1) into it as its handle 0.
fn spawn<H: KernelHal>(process: &'static Process<H>, caller: &Caller<'_>, args: &[Val]) -> i32 {
    let handle = i32_arg(args, 2);
    let handles: &[i32] = if handle == -1 { &[] } else { &[handle] };
    spawn_moving(
        process,
        caller,
        (i32_arg(args, 0), i32_arg(args, 1)),
        handles,
    )
}

/// `spawn_handles(name_ptr, name_len, handles_ptr, count) -> pid`: starts the boot program
/// of that name, moving the `count` handles listed at `handles_ptr` (`i32`s) into it as
/// its handles 0, 1, ...
fn spawn_handles<H: KernelHal>(
    process: &'static Process<H>,
    caller: &Caller<'_>,
    args: &[Val],
) -> i32 {
    let count = i32_arg(args, 3);
    let Some(bytes) = count
        .checked_mul(4)
        .and_then(|len| caller.read(i32_arg(args, 2), len))
    else {
        return Errno::BadPointer as i32;
    };
    let handles: Vec<i32> = bytes
        .chunks_exact(4)
        .map(|word| i32::from_le_bytes([word[0], word[1], word[2], word[3]]))
        .collect();
    spawn_moving(
        process,
        caller,
        (i32_arg(args, 0), i32_arg(args, 1)),
        &handles,
    )
}

/// Starts the boot program named at `name` (pointer, length), moving `handles` into it.
/// Every handle must be held and named once; on any failure the parent keeps them all.
fn spawn_moving<H: KernelHal>(
    process: &'static Process<H>,
    caller: &Caller<'_>,
    name: (i32, i32),
    handles: &[i32],
) -> i32 {
    let Some(name) = caller.read(name.0, name.1) else {
        return Errno::BadPointer as i32;
    };
    {
        let table = process.handles();
        let held = handles.iter().all(|&handle| table.get(handle).is_some());
        let distinct = handles
            .iter()
            .enumerate()
            .all(|(index, handle)| !handles[..index].contains(handle));
        if !(held && distinct) {
            return Errno::BadHandle as i32;
        }
    }
    let moved: Vec<(i32, ChannelEnd<H>)> = {
        let mut table = process.handles();
        handles
            .iter()
            .filter_map(|&handle| Some((handle, table.take(handle)?)))
            .collect()
    };
    let (numbers, ends): (Vec<i32>, Vec<ChannelEnd<H>>) = moved.into_iter().unzip();
    let result = match core::str::from_utf8(name) {
        Ok(name) => process.kernel().spawn_program(name, ends),
        Err(_) => Err((ProgramSpawnError::NoSuchProgram, ends)),
    };
    match result {
        Ok(pid) => i32::try_from(pid).unwrap_or(i32::MAX),
        Err((error, ends)) => {
            let mut table = process.handles();
            for (number, end) in numbers.into_iter().zip(ends) {
                // Back under its own number, which the move freed.
                table.restore(number, end);
            }
            match error {
                ProgramSpawnError::NoSuchProgram => Errno::NoSuchProgram as i32,
                ProgramSpawnError::LoadFailed => Errno::InvalidArgument as i32,
                ProgramSpawnError::OutOfMemory | ProgramSpawnError::OverLimit => {
                    Errno::OutOfMemory as i32
                }
            }
        }
    }
}

/// `channel(out_ptr) -> 0`: makes a channel and writes its send and receive handles.
fn channel<H: KernelHal>(process: &Process<H>, caller: &mut Caller<'_>, args: &[Val]) -> i32 {
    let out = i32_arg(args, 0);
    // Both handles must fit before anything is made.
    if caller.read(out, 8).is_none() {
        return Errno::BadPointer as i32;
    }
    let mut handles = process.handles();
    if !handles.has_room(2) {
        return Errno::OutOfMemory as i32;
    }
    let (send_end, receive_end) = Channel::create(process.kernel().scheduler());
    let (Ok(send), Ok(receive)) = (handles.insert(send_end), handles.insert(receive_end)) else {
        // `has_room(2)` above: both fit.
        return Errno::OutOfMemory as i32;
    };
    let mut bytes = [0u8; 8];
    bytes[..4].copy_from_slice(&send.to_le_bytes());
    bytes[4..].copy_from_slice(&receive.to_le_bytes());
    match caller.write(out, &bytes) {
        Some(()) => 0,
        None => Errno::BadPointer as i32,
    }
}

/// The channel end named by `handle`, cloned out of the table so that blocking does not
/// hold the table.
fn end_of<H: KernelHal>(process: &Process<H>, handle: i32) -> Option<ChannelEnd<H>> {
    process.handles().get(handle).map(ChannelEnd::duplicate)
}

/// `send(h, ptr, len) -> 0`: queues one message, blocking while the channel is full.
fn send<H: KernelHal>(process: &Process<H>, caller: &Caller<'_>, args: &[Val]) -> i32 {
    let Some(end) = end_of(process, i32_arg(args, 0)) else {
        return Errno::BadHandle as i32;
    };
    if end.end() != End::Send {
        return Errno::BadHandle as i32;
    }
    let len = i32_arg(args, 2);
    if usize::try_from(len).is_ok_and(|len| len > MAX_MESSAGE) {
        return Errno::InvalidArgument as i32;
    }
    let Some(message) = caller.read(i32_arg(args, 1), len) else {
        return Errno::BadPointer as i32;
    };
    match end.send(process, message) {
        Ok(()) => 0,
        Err(errno) => errno as i32,
    }
}

/// `recv(h, ptr, cap) -> len`: takes one message, blocking until there is one.
fn recv<H: KernelHal>(process: &Process<H>, caller: &mut Caller<'_>, args: &[Val]) -> i32 {
    let Some(end) = end_of(process, i32_arg(args, 0)) else {
        return Errno::BadHandle as i32;
    };
    if end.end() != End::Receive {
        return Errno::BadHandle as i32;
    }
    let (ptr, capacity) = (i32_arg(args, 1), i32_arg(args, 2));
    let Ok(capacity_bytes) = usize::try_from(capacity) else {
        return Errno::BadPointer as i32;
    };
    if caller.read(ptr, capacity).is_none() {
        return Errno::BadPointer as i32;
    }
    let mut deliver = |message: &[u8]| {
        // The whole buffer was checked above and the message is no longer than it.
        let _ = caller.write(ptr, message);
    };
    match end.recv(process, capacity_bytes, &mut deliver) {
        // At most MAX_MESSAGE bytes: fits an i32.
        Ok(len) => i32::try_from(len).unwrap_or(i32::MAX),
        Err(errno) => errno as i32,
    }
}
