//! WASI preview 1: the `wasi_snapshot_preview1` imports, served as syscalls of an ordinary
//! process on every platform.
//!
//! [`host_function`] makes the host function of one import (the syscall linker,
//! [`crate::syscall::link`], calls it for imports of [`MODULE`]). Every function reaches
//! the caller's memory through [`Memory`], over [`Caller`]'s bounds-checked accessors: a
//! bad pointer is `EFAULT`, never a trap. Functions are split by area: arguments,
//! environment, clocks, randomness and the process here; descriptors in [`fd`]; paths in
//! [`path`]; `poll_oneoff` in [`poll`]. The descriptor table and the kernel-wide state are
//! in [`state`], the witx values in [`types`]. `proc_exit` ends the process like the
//! `k23` `exit` syscall. Sockets answer `ENOTSOCK` (or `EBADF`), `proc_raise` `ENOSYS`.

pub mod fd;
pub mod path;
pub mod poll;
pub mod state;
pub mod types;

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use self::types::{Errno, WasiResult, clock};
use crate::KernelHal;
use crate::process::Process;
use crate::wasm::env::{FuncType, ValType};
use crate::wasm::runtime::{Caller, HostCallback, Val};

/// The import module of WASI preview 1.
pub const MODULE: &str = "wasi_snapshot_preview1";

/// Every function: its name and its parameters (`i` an `i32`, `I` an `i64`). Each returns
/// an `i32` error number, except `proc_exit`, which returns nothing.
const FUNCTIONS: &[(&str, &str)] = &[
    ("args_get", "ii"),
    ("args_sizes_get", "ii"),
    ("environ_get", "ii"),
    ("environ_sizes_get", "ii"),
    ("clock_res_get", "ii"),
    ("clock_time_get", "iIi"),
    ("fd_advise", "iIIi"),
    ("fd_allocate", "iII"),
    ("fd_close", "i"),
    ("fd_datasync", "i"),
    ("fd_fdstat_get", "ii"),
    ("fd_fdstat_set_flags", "ii"),
    ("fd_fdstat_set_rights", "iII"),
    ("fd_filestat_get", "ii"),
    ("fd_filestat_set_size", "iI"),
    ("fd_filestat_set_times", "iIIi"),
    ("fd_pread", "iiiIi"),
    ("fd_prestat_get", "ii"),
    ("fd_prestat_dir_name", "iii"),
    ("fd_pwrite", "iiiIi"),
    ("fd_read", "iiii"),
    ("fd_readdir", "iiiIi"),
    ("fd_renumber", "ii"),
    ("fd_seek", "iIii"),
    ("fd_sync", "i"),
    ("fd_tell", "ii"),
    ("fd_write", "iiii"),
    ("path_create_directory", "iii"),
    ("path_filestat_get", "iiiii"),
    ("path_filestat_set_times", "iiiiIIi"),
    ("path_link", "iiiiiii"),
    ("path_open", "iiiiiIIii"),
    ("path_readlink", "iiiiii"),
    ("path_remove_directory", "iii"),
    ("path_rename", "iiiiii"),
    ("path_symlink", "iiiii"),
    ("path_unlink_file", "iii"),
    ("poll_oneoff", "iiii"),
    ("proc_exit", "i"),
    ("proc_raise", "i"),
    ("sched_yield", ""),
    ("random_get", "ii"),
    ("sock_accept", "iii"),
    ("sock_recv", "iiiiii"),
    ("sock_send", "iiiii"),
    ("sock_shutdown", "ii"),
];

/// The type of WASI function `name`, if there is one.
#[must_use]
pub fn function_type(name: &str) -> Option<FuncType> {
    let (name, params) = FUNCTIONS.iter().find(|(known, _)| *known == name)?;
    let params: Vec<ValType> = params
        .chars()
        .map(|c| if c == 'I' { ValType::I64 } else { ValType::I32 })
        .collect();
    let results: &[ValType] = if *name == "proc_exit" {
        &[]
    } else {
        &[ValType::I32]
    };
    Some(FuncType {
        params: params.into(),
        results: results.into(),
    })
}

/// The host function of WASI function `name` (one [`function_type`] knows) for `process`.
pub fn host_function<H: KernelHal>(
    name: &str,
    process: &'static Process<H>,
) -> Option<HostCallback<'static>> {
    let (name, _) = *FUNCTIONS.iter().find(|(known, _)| *known == name)?;
    Some(Box::new(move |caller, args, results| {
        if name == "proc_exit" {
            process.set_exit_code(args.first().map_or(0, |value| match value {
                Val::I32(code) => *code,
                _ => 0,
            }));
            return Err(String::from(crate::syscall::EXIT_UNWIND));
        }
        let mut memory = Memory(caller);
        let errno = match dispatch(name, process, &mut memory, &Args(args)) {
            Ok(()) => Errno::Success,
            Err(errno) => errno,
        };
        if let Some(slot) = results.first_mut() {
            *slot = Val::I32(i32::from(errno as u16));
        }
        Ok(())
    }))
}

/// Runs WASI function `name`.
fn dispatch<H: KernelHal>(
    name: &str,
    process: &'static Process<H>,
    memory: &mut Memory<'_, '_>,
    args: &Args<'_>,
) -> WasiResult<()> {
    match name {
        "args_get" => {
            let list = process.wasi().args.clone();
            write_strings(memory, &list, args.u32(0), args.u32(1))
        }
        "args_sizes_get" => {
            let list = process.wasi().args.clone();
            write_sizes(memory, &list, args.u32(0), args.u32(1))
        }
        "environ_get" => write_strings(
            memory,
            &process.kernel().wasi().env,
            args.u32(0),
            args.u32(1),
        ),
        "environ_sizes_get" => write_sizes(
            memory,
            &process.kernel().wasi().env,
            args.u32(0),
            args.u32(1),
        ),
        "clock_res_get" => {
            let resolution = match args.u32(0) {
                clock::REALTIME | clock::MONOTONIC => 1,
                clock::PROCESS_CPUTIME | clock::THREAD_CPUTIME => 1_000,
                _ => return Err(Errno::Inval),
            };
            memory.write_u64(args.u32(1), resolution)
        }
        "clock_time_get" => {
            let time = clock_time(process, args.u32(0))?;
            memory.write_u64(args.u32(2), time)
        }
        "random_get" => {
            let (ptr, len) = (args.u32(0), args.u32(1));
            memory.check(ptr, len)?;
            // In pieces, so that a large request costs the kernel no large buffer.
            let mut chunk = [0u8; 256];
            let mut done = 0u32;
            while done < len {
                let take = (len - done).min(chunk.len() as u32);
                let piece = &mut chunk[..take as usize];
                fill_random(process, piece);
                memory.write(ptr + done, piece)?;
                done += take;
            }
            Ok(())
        }
        "sched_yield" => {
            process.yield_now();
            Ok(())
        }
        "proc_raise" => Err(Errno::NoSys),
        "sock_accept" | "sock_recv" | "sock_send" | "sock_shutdown" => {
            process.wasi().get(args.u32(0))?;
            Err(Errno::NotSock)
        }
        "poll_oneoff" => poll::poll_oneoff(process, memory, args),
        name if name.starts_with("fd_") => fd::dispatch(name, process, memory, args),
        _ => path::dispatch(name, process, memory, args),
    }
}

/// The clock `id` in nanoseconds.
///
/// # Errors
/// `EINVAL` for an unknown clock.
pub fn clock_time<H: KernelHal>(process: &Process<H>, id: u32) -> WasiResult<u64> {
    let hal = process.kernel().hal();
    match id {
        clock::REALTIME => Ok(realtime_ns(process)),
        clock::MONOTONIC => Ok(hal.now_ns()),
        clock::PROCESS_CPUTIME | clock::THREAD_CPUTIME => Ok(process.cpu_time_ns()),
        _ => Err(Errno::Inval),
    }
}

/// The wall clock: the HAL's, or the boot image's time at boot plus the monotonic time
/// since.
pub fn realtime_ns<H: KernelHal>(process: &Process<H>) -> u64 {
    let hal = process.kernel().hal();
    hal.realtime_ns().unwrap_or_else(|| {
        let (realtime, monotonic) = process.kernel().wasi().realtime_at_boot;
        realtime.saturating_add(hal.now_ns().saturating_sub(monotonic))
    })
}

/// Fills `buf` from the HAL's entropy source, or from the kernel's seeded generator
/// where the HAL has none.
fn fill_random<H: KernelHal>(process: &Process<H>, buf: &mut [u8]) {
    if !process.kernel().hal().fill_random(buf) {
        process.kernel().wasi().random.lock().fill(buf);
    }
}

/// Writes `list` as NUL-terminated strings at `buf`, their addresses at `pointers`.
fn write_strings(
    memory: &mut Memory<'_, '_>,
    list: &[String],
    pointers: u32,
    buf: u32,
) -> WasiResult<()> {
    let mut offset = buf;
    for (index, item) in list.iter().enumerate() {
        memory.write_u32(pointers.wrapping_add(4 * index as u32), offset)?;
        memory.write(offset, item.as_bytes())?;
        memory.write(offset.wrapping_add(item.len() as u32), &[0])?;
        offset = offset.wrapping_add(item.len() as u32 + 1);
    }
    Ok(())
}

/// Writes the count of `list` and the bytes its NUL-terminated strings take.
fn write_sizes(
    memory: &mut Memory<'_, '_>,
    list: &[String],
    count: u32,
    size: u32,
) -> WasiResult<()> {
    let bytes: usize = list.iter().map(|item| item.len() + 1).sum();
    memory.write_u32(count, list.len() as u32)?;
    memory.write_u32(size, u32::try_from(bytes).map_err(|_| Errno::Overflow)?)
}

/// The arguments of a call, by position (their types were checked at link time).
pub struct Args<'a>(&'a [Val]);

impl Args<'_> {
    /// Argument `index` as an unsigned 32-bit value.
    #[must_use]
    pub fn u32(&self, index: usize) -> u32 {
        match self.0.get(index) {
            Some(Val::I32(value)) => value.cast_unsigned(),
            _ => 0,
        }
    }

    /// Argument `index` as an unsigned 64-bit value.
    #[must_use]
    pub fn u64(&self, index: usize) -> u64 {
        match self.0.get(index) {
            Some(Val::I64(value)) => value.cast_unsigned(),
            _ => 0,
        }
    }
}

/// The caller's memory: every access bounds-checked, a bad range `EFAULT`.
pub struct Memory<'c, 'm>(&'c mut Caller<'m>);

impl Memory<'_, '_> {
    /// `len` as a length when `[ptr, ptr + len)` lies in memory.
    ///
    /// # Errors
    /// `EFAULT`.
    pub fn check(&self, ptr: u32, len: u32) -> WasiResult<usize> {
        let end = u64::from(ptr) + u64::from(len);
        if end > self.0.memory_len() as u64 {
            return Err(Errno::Fault);
        }
        Ok(len as usize)
    }

    /// The `len` bytes at `ptr`.
    ///
    /// # Errors
    /// `EFAULT`.
    pub fn read(&self, ptr: u32, len: u32) -> WasiResult<&[u8]> {
        let len = i32::try_from(len).map_err(|_| Errno::Fault)?;
        self.0.read(ptr.cast_signed(), len).ok_or(Errno::Fault)
    }

    /// Writes `bytes` at `ptr`.
    ///
    /// # Errors
    /// `EFAULT` (nothing written).
    pub fn write(&mut self, ptr: u32, bytes: &[u8]) -> WasiResult<()> {
        self.0.write(ptr.cast_signed(), bytes).ok_or(Errno::Fault)
    }

    /// The little-endian `u32` at `ptr`.
    ///
    /// # Errors
    /// `EFAULT`.
    pub fn u32(&self, ptr: u32) -> WasiResult<u32> {
        let bytes = self.read(ptr, 4)?;
        Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    /// The little-endian `u64` at `ptr`.
    ///
    /// # Errors
    /// `EFAULT`.
    pub fn u64(&self, ptr: u32) -> WasiResult<u64> {
        let bytes = self.read(ptr, 8)?;
        let mut word = [0u8; 8];
        word.copy_from_slice(bytes);
        Ok(u64::from_le_bytes(word))
    }

    /// Writes a little-endian `u32`.
    ///
    /// # Errors
    /// `EFAULT`.
    pub fn write_u32(&mut self, ptr: u32, value: u32) -> WasiResult<()> {
        self.write(ptr, &value.to_le_bytes())
    }

    /// Writes a little-endian `u64`.
    ///
    /// # Errors
    /// `EFAULT`.
    pub fn write_u64(&mut self, ptr: u32, value: u64) -> WasiResult<()> {
        self.write(ptr, &value.to_le_bytes())
    }

    /// The UTF-8 string of `len` bytes at `ptr`.
    ///
    /// # Errors
    /// `EFAULT`, or `EILSEQ` when it is not UTF-8.
    pub fn string(&self, ptr: u32, len: u32) -> WasiResult<String> {
        let bytes = self.read(ptr, len)?;
        core::str::from_utf8(bytes)
            .map(String::from)
            .map_err(|_| Errno::IlSeq)
    }

    /// The `count` I/O vectors (`buf: u32, len: u32`) at `ptr`.
    ///
    /// # Errors
    /// `EFAULT`, or `EINVAL` when there are too many.
    pub fn iovecs(&self, ptr: u32, count: u32) -> WasiResult<Vec<(u32, u32)>> {
        if count > 1024 {
            return Err(Errno::Inval);
        }
        let bytes = self.read(ptr, count * 8)?;
        Ok(bytes
            .chunks_exact(8)
            .map(|v| {
                (
                    u32::from_le_bytes([v[0], v[1], v[2], v[3]]),
                    u32::from_le_bytes([v[4], v[5], v[6], v[7]]),
                )
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preview1_function_has_its_witx_type() {
        assert_eq!(FUNCTIONS.len(), 46);
        let fd_write = function_type("fd_write").unwrap();
        assert_eq!(&*fd_write.params, &[ValType::I32; 4]);
        assert_eq!(&*fd_write.results, &[ValType::I32]);
        let path_open = function_type("path_open").unwrap();
        assert_eq!(
            &*path_open.params,
            &[
                ValType::I32,
                ValType::I32,
                ValType::I32,
                ValType::I32,
                ValType::I32,
                ValType::I64,
                ValType::I64,
                ValType::I32,
                ValType::I32
            ]
        );
        assert!(function_type("proc_exit").unwrap().results.is_empty());
        assert!(function_type("fd_dup").is_none());
    }
}
