//! The host side of the sightglass programs, shared by every runtime of the comparison:
//! `bench.start` / `bench.end` (the measured region) and the few WASI preview 1 calls the
//! programs make around it (standard output into a buffer, read-only files of the
//! program's directory, preopened as `.`, and `proc_exit`). The calls are described once
//! ([`IMPORTS`]) and dispatched by name ([`Wasi::call`]), so that each runtime only adapts
//! its own values and memory. Their cost lies outside the measured region.

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The WASI module name.
pub const WASI: &str = "wasi_snapshot_preview1";

/// A value type of the host functions: every one takes `i32`s and `i64`s only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// `i32`.
    I32,
    /// `i64`.
    I64,
}

/// One host function: module, name, parameters, results.
pub type Import = (&'static str, &'static str, &'static [Ty], &'static [Ty]);

use Ty::{I32, I64};

/// Every host function a sightglass program may import.
pub const IMPORTS: &[Import] = &[
    ("bench", "start", &[], &[]),
    ("bench", "end", &[], &[]),
    (WASI, "fd_close", &[I32], &[I32]),
    (WASI, "fd_fdstat_get", &[I32, I32], &[I32]),
    (WASI, "fd_prestat_get", &[I32, I32], &[I32]),
    (WASI, "fd_prestat_dir_name", &[I32, I32, I32], &[I32]),
    (WASI, "fd_read", &[I32, I32, I32, I32], &[I32]),
    (WASI, "fd_write", &[I32, I32, I32, I32], &[I32]),
    (WASI, "fd_seek", &[I32, I64, I32, I32], &[I32]),
    (
        WASI,
        "path_open",
        &[I32, I32, I32, I32, I32, I64, I64, I32, I32],
        &[I32],
    ),
    (WASI, "proc_exit", &[I32], &[]),
];

/// Linear memory as a host function sees it.
pub trait Memory {
    /// The `len` bytes at `ptr`, when inside the memory.
    fn read(&self, ptr: u32, len: u32) -> Option<Vec<u8>>;
    /// Writes `bytes` at `ptr`; `None` when they do not fit.
    fn write(&mut self, ptr: u32, bytes: &[u8]) -> Option<()>;
}

/// A linear memory as a byte slice.
pub struct Slice<'a>(pub &'a mut [u8]);

impl Memory for Slice<'_> {
    fn read(&self, ptr: u32, len: u32) -> Option<Vec<u8>> {
        let start = usize::try_from(ptr).ok()?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        self.0.get(start..end).map(<[u8]>::to_vec)
    }

    fn write(&mut self, ptr: u32, bytes: &[u8]) -> Option<()> {
        let start = usize::try_from(ptr).ok()?;
        let end = start.checked_add(bytes.len())?;
        self.0.get_mut(start..end)?.copy_from_slice(bytes);
        Some(())
    }
}

const ESUCCESS: i32 = 0;
const EBADF: i32 = 8;
const EINVAL: i32 = 28;
const ENOENT: i32 = 44;
const ENOTSUP: i32 = 58;

/// The file descriptor of the preopened directory `.`.
const DIR_FD: i32 = 3;

/// Why a host function stopped the program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// `proc_exit(status)`.
    Exit(i32),
    /// Memory out of range or a bad call: a trap.
    Fault(String),
}

/// An open file: its contents (read whole at `path_open`) and the position.
#[derive(Debug)]
struct OpenFile {
    data: Vec<u8>,
    position: usize,
}

/// One program run's host state.
#[derive(Debug)]
pub struct Wasi {
    dir: PathBuf,
    /// What the program wrote to standard output.
    pub stdout: Vec<u8>,
    /// What it wrote to standard error.
    pub stderr: Vec<u8>,
    files: Vec<Option<OpenFile>>,
    started: Option<Instant>,
    /// The time between `bench.start` and `bench.end` (the last such pair).
    pub measured: Option<Duration>,
}

impl Wasi {
    /// The state of a program whose directory (preopened as `.`) is `dir`.
    #[must_use]
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            stdout: Vec::new(),
            stderr: Vec::new(),
            files: Vec::new(),
            started: None,
            measured: None,
        }
    }

    /// Calls the host function `module.name` with `args` (each `i32` widened to `i64`);
    /// returns its result, if it has one.
    ///
    /// # Errors
    /// [`Stop::Exit`] for `proc_exit`, [`Stop::Fault`] for an unknown function or memory
    /// out of range.
    pub fn call(
        &mut self,
        memory: &mut dyn Memory,
        module: &str,
        name: &str,
        args: &[i64],
    ) -> Result<Option<i32>, Stop> {
        let arg = |index: usize| args.get(index).copied().unwrap_or(0);
        // WebAssembly's i32 values as the unsigned pointers and lengths WASI reads.
        let u = |index: usize| arg(index) as u32;
        match (module, name) {
            ("bench", "start") => {
                self.started = Some(Instant::now());
                Ok(None)
            }
            ("bench", "end") => {
                let started = self
                    .started
                    .take()
                    .ok_or_else(|| Stop::Fault("bench.end before bench.start".into()))?;
                self.measured = Some(started.elapsed());
                Ok(None)
            }
            (WASI, "proc_exit") => Err(Stop::Exit(arg(0) as i32)),
            (WASI, "fd_close") => Ok(Some(self.close(arg(0) as i32))),
            (WASI, "fd_fdstat_get") => self.fdstat(memory, arg(0) as i32, u(1)).map(Some),
            (WASI, "fd_prestat_get") => {
                if arg(0) as i32 != DIR_FD {
                    return Ok(Some(EBADF));
                }
                let mut prestat = [0u8; 8];
                prestat[4..].copy_from_slice(&1u32.to_le_bytes());
                put(memory, u(1), &prestat)?;
                Ok(Some(ESUCCESS))
            }
            (WASI, "fd_prestat_dir_name") => {
                if arg(0) as i32 != DIR_FD {
                    return Ok(Some(EBADF));
                }
                if u(2) < 1 {
                    return Ok(Some(EINVAL));
                }
                put(memory, u(1), b".")?;
                Ok(Some(ESUCCESS))
            }
            (WASI, "fd_write") => self
                .write(memory, arg(0) as i32, u(1), u(2), u(3))
                .map(Some),
            (WASI, "fd_read") => self.read(memory, arg(0) as i32, u(1), u(2), u(3)).map(Some),
            (WASI, "fd_seek") => self
                .seek(memory, arg(0) as i32, arg(1), arg(2) as i32, u(3))
                .map(Some),
            (WASI, "path_open") => self
                .open(memory, arg(0) as i32, u(2), u(3), arg(4) as i32, u(8))
                .map(Some),
            _ => Err(Stop::Fault(format!("no host function {module}.{name}"))),
        }
    }

    fn file(&mut self, fd: i32) -> Option<&mut OpenFile> {
        let index = usize::try_from(fd.checked_sub(DIR_FD + 1)?).ok()?;
        self.files.get_mut(index)?.as_mut()
    }

    fn close(&mut self, fd: i32) -> i32 {
        let Some(index) = fd
            .checked_sub(DIR_FD + 1)
            .and_then(|index| usize::try_from(index).ok())
        else {
            // Closing a standard stream or the directory: allowed and ignored.
            return if (0..=DIR_FD).contains(&fd) {
                ESUCCESS
            } else {
                EBADF
            };
        };
        match self.files.get_mut(index) {
            Some(slot @ Some(_)) => {
                *slot = None;
                ESUCCESS
            }
            _ => EBADF,
        }
    }

    fn fdstat(&mut self, memory: &mut dyn Memory, fd: i32, ptr: u32) -> Result<i32, Stop> {
        // filetype: 2 character device, 3 directory, 4 regular file; every right.
        let filetype = match fd {
            0..=2 => 2u8,
            DIR_FD => 3,
            _ if self.file(fd).is_some() => 4,
            _ => return Ok(EBADF),
        };
        let mut stat = [0u8; 24];
        stat[0] = filetype;
        stat[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        stat[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        put(memory, ptr, &stat)?;
        Ok(ESUCCESS)
    }

    /// The (pointer, length) pairs of an iovec array.
    fn iovecs(memory: &dyn Memory, iovs: u32, count: u32) -> Result<Vec<(u32, u32)>, Stop> {
        let bytes = get(memory, iovs, count.checked_mul(8).ok_or_else(fault)?)?;
        Ok(bytes
            .chunks_exact(8)
            .map(|pair| {
                let word = |at: usize| u32::from_le_bytes(pair[at..at + 4].try_into().unwrap());
                (word(0), word(4))
            })
            .collect())
    }

    fn write(
        &mut self,
        memory: &mut dyn Memory,
        fd: i32,
        iovs: u32,
        count: u32,
        written: u32,
    ) -> Result<i32, Stop> {
        let mut total = 0u32;
        for (ptr, len) in Self::iovecs(memory, iovs, count)? {
            let bytes = get(memory, ptr, len)?;
            match fd {
                1 => self.stdout.extend_from_slice(&bytes),
                2 => self.stderr.extend_from_slice(&bytes),
                _ => return Ok(EBADF),
            }
            total = total.wrapping_add(len);
        }
        put(memory, written, &total.to_le_bytes())?;
        Ok(ESUCCESS)
    }

    fn read(
        &mut self,
        memory: &mut dyn Memory,
        fd: i32,
        iovs: u32,
        count: u32,
        read: u32,
    ) -> Result<i32, Stop> {
        let iovecs = Self::iovecs(memory, iovs, count)?;
        let mut total = 0u32;
        if fd == 0 {
            // Standard input is empty.
            put(memory, read, &0u32.to_le_bytes())?;
            return Ok(ESUCCESS);
        }
        let Some(file) = self.file(fd) else {
            return Ok(EBADF);
        };
        let mut chunks = Vec::new();
        for (ptr, len) in iovecs {
            let available = file.data.len() - file.position;
            let take = available.min(len as usize);
            chunks.push((ptr, file.data[file.position..file.position + take].to_vec()));
            file.position += take;
            total = total.wrapping_add(take as u32);
        }
        for (ptr, bytes) in chunks {
            put(memory, ptr, &bytes)?;
        }
        put(memory, read, &total.to_le_bytes())?;
        Ok(ESUCCESS)
    }

    fn seek(
        &mut self,
        memory: &mut dyn Memory,
        fd: i32,
        offset: i64,
        whence: i32,
        result: u32,
    ) -> Result<i32, Stop> {
        let Some(file) = self.file(fd) else {
            // The standard streams cannot seek (ESPIPE); anything else is a bad descriptor.
            return Ok(if (0..=2).contains(&fd) { 70 } else { EBADF });
        };
        let base = match whence {
            0 => 0i64,
            1 => file.position as i64,
            2 => file.data.len() as i64,
            _ => return Ok(EINVAL),
        };
        let Some(position) = base.checked_add(offset).filter(|p| *p >= 0) else {
            return Ok(EINVAL);
        };
        file.position = usize::try_from(position)
            .unwrap_or(usize::MAX)
            .min(file.data.len());
        put(memory, result, &(position as u64).to_le_bytes())?;
        Ok(ESUCCESS)
    }

    fn open(
        &mut self,
        memory: &mut dyn Memory,
        dir: i32,
        path: u32,
        path_len: u32,
        oflags: i32,
        fd_out: u32,
    ) -> Result<i32, Stop> {
        if dir != DIR_FD {
            return Ok(EBADF);
        }
        if oflags != 0 {
            // Creating, truncating or opening a directory: the programs only read files.
            return Ok(ENOTSUP);
        }
        let name = get(memory, path, path_len)?;
        let Ok(name) = String::from_utf8(name) else {
            return Ok(EINVAL);
        };
        if name.split('/').any(|part| part == "..") || name.starts_with('/') {
            return Ok(ENOTSUP);
        }
        let Ok(data) = std::fs::read(self.dir.join(&name)) else {
            return Ok(ENOENT);
        };
        self.files.push(Some(OpenFile { data, position: 0 }));
        let fd = DIR_FD + i32::try_from(self.files.len()).map_err(|_| fault())?;
        put(memory, fd_out, &fd.to_le_bytes())?;
        Ok(ESUCCESS)
    }
}

fn fault() -> Stop {
    Stop::Fault("memory access out of bounds in a host call".into())
}

fn get(memory: &dyn Memory, ptr: u32, len: u32) -> Result<Vec<u8>, Stop> {
    memory.read(ptr, len).ok_or_else(fault)
}

fn put(memory: &mut dyn Memory, ptr: u32, bytes: &[u8]) -> Result<(), Stop> {
    memory.write(ptr, bytes).ok_or_else(fault)
}
