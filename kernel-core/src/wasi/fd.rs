//! The `fd_*` functions: reads, writes, seeks, attributes and the descriptor table.

use alloc::sync::Arc;
use alloc::vec::Vec;

use super::state::{Descriptor, Object, SETTABLE_FLAGS, WasiState};
use super::types::{Errno, WasiResult, fdflags, filetype, fstflags, rights};
use super::{Args, Memory};
use crate::KernelHal;
use crate::process::Process;
use crate::replay::InputKind;
use crate::vfs::{FileSystem, NodeId, NodeKind, Stat};

/// The largest single read or write, so that one call cannot make the kernel allocate
/// without bound.
const MAX_TRANSFER: usize = 16 << 20;

/// Runs `fd_*` function `name`.
pub(super) fn dispatch<H: KernelHal>(
    name: &str,
    process: &'static Process<H>,
    memory: &mut Memory<'_, '_>,
    args: &Args<'_>,
) -> WasiResult<()> {
    let fd = args.u32(0);
    match name {
        "fd_advise" => {
            if args.u32(3) > 5 {
                return Err(Errno::Inval);
            }
            let wasi = process.wasi();
            let descriptor = wasi.get(fd)?;
            file_of(descriptor)?;
            descriptor.require(rights::FD_ADVISE)
        }
        "fd_allocate" => {
            let (fs, node) = {
                let wasi = process.wasi();
                let descriptor = wasi.get(fd)?;
                let file = file_of(descriptor)?;
                descriptor.require(rights::FD_ALLOCATE)?;
                file
            };
            let end = args.u64(1).checked_add(args.u64(2)).ok_or(Errno::FBig)?;
            if fs.stat(node)?.size < end {
                fs.set_len(node, end)?;
            }
            Ok(())
        }
        "fd_close" => process.wasi().fds.remove(&fd).map(drop).ok_or(Errno::BadF),
        "fd_datasync" | "fd_sync" => {
            let (fs, node) = {
                let wasi = process.wasi();
                let descriptor = wasi.get(fd)?;
                let right = if name == "fd_sync" {
                    rights::FD_SYNC
                } else {
                    rights::FD_DATASYNC
                };
                match &descriptor.object {
                    Object::File { fs, node, .. } | Object::Directory { fs, node, .. } => {
                        descriptor.require(right)?;
                        (fs.clone(), *node)
                    }
                    _ => return Err(Errno::Inval),
                }
            };
            fs.sync(node)
        }
        "fd_fdstat_get" => {
            let wasi = process.wasi();
            let descriptor = wasi.get(fd)?;
            let kind = match &descriptor.object {
                Object::Stdin | Object::Stdout | Object::Stderr => filetype::CHARACTER_DEVICE,
                Object::Directory { .. } => filetype::DIRECTORY,
                Object::File { fs, node, .. } => file_type(fs.stat(*node)?.kind),
            };
            let mut bytes = [0u8; 24];
            bytes[0] = kind;
            bytes[2..4].copy_from_slice(&descriptor.flags.to_le_bytes());
            bytes[8..16].copy_from_slice(&descriptor.base.to_le_bytes());
            bytes[16..24].copy_from_slice(&descriptor.inheriting.to_le_bytes());
            drop(wasi);
            memory.write(args.u32(1), &bytes)
        }
        "fd_fdstat_set_flags" => {
            let flags = u16::try_from(args.u32(1)).map_err(|_| Errno::Inval)?;
            if flags & !fdflags::ALL != 0 {
                return Err(Errno::Inval);
            }
            let mut wasi = process.wasi();
            let descriptor = wasi.get_mut(fd)?;
            descriptor.require(rights::FD_FDSTAT_SET_FLAGS)?;
            if flags & !SETTABLE_FLAGS != 0 {
                return Err(Errno::NotSup);
            }
            descriptor.flags = flags;
            Ok(())
        }
        "fd_fdstat_set_rights" => {
            let (base, inheriting) = (args.u64(1), args.u64(2));
            let mut wasi = process.wasi();
            let descriptor = wasi.get_mut(fd)?;
            if base & !descriptor.base != 0 || inheriting & !descriptor.inheriting != 0 {
                return Err(Errno::NotCapable);
            }
            descriptor.base = base;
            descriptor.inheriting = inheriting;
            Ok(())
        }
        "fd_filestat_get" => {
            let stat = {
                let wasi = process.wasi();
                let descriptor = wasi.get(fd)?;
                match &descriptor.object {
                    Object::File { fs, node, .. } | Object::Directory { fs, node, .. } => {
                        descriptor.require(rights::FD_FILESTAT_GET)?;
                        fs.stat(*node)?
                    }
                    _ => {
                        return write_filestat(
                            memory,
                            args.u32(1),
                            filetype::CHARACTER_DEVICE,
                            &Stat {
                                device: 0,
                                inode: 0,
                                kind: NodeKind::Other,
                                links: 1,
                                size: 0,
                                access_ns: 0,
                                modify_ns: 0,
                                change_ns: 0,
                            },
                        );
                    }
                }
            };
            write_filestat(memory, args.u32(1), file_type(stat.kind), &stat)
        }
        "fd_filestat_set_size" => {
            let (fs, node) = {
                let wasi = process.wasi();
                let descriptor = wasi.get(fd)?;
                let file = file_of(descriptor)?;
                descriptor.require(rights::FD_FILESTAT_SET_SIZE)?;
                file
            };
            fs.set_len(node, args.u64(1))
        }
        "fd_filestat_set_times" => {
            let (fs, node) = {
                let wasi = process.wasi();
                let descriptor = wasi.get(fd)?;
                let target = match &descriptor.object {
                    Object::File { fs, node, .. } | Object::Directory { fs, node, .. } => {
                        (fs.clone(), *node)
                    }
                    _ => return Err(Errno::BadF),
                };
                descriptor.require(rights::FD_FILESTAT_SET_TIMES)?;
                target
            };
            let (access, modify) = times(process, args.u64(1), args.u64(2), args.u32(3))?;
            fs.set_times(node, access, modify)
        }
        "fd_pread" | "fd_read" => read(process, memory, args, name == "fd_pread"),
        "fd_pwrite" | "fd_write" => write(process, memory, args, name == "fd_pwrite"),
        "fd_prestat_get" => {
            let len = preopen_name(&process.wasi(), fd)?.len();
            let mut bytes = [0u8; 8];
            bytes[4..8].copy_from_slice(&(len as u32).to_le_bytes());
            memory.write(args.u32(1), &bytes)
        }
        "fd_prestat_dir_name" => {
            let name = preopen_name(&process.wasi(), fd)?;
            if (args.u32(2) as usize) < name.len() {
                return Err(Errno::NameTooLong);
            }
            memory.write(args.u32(1), name.as_bytes())
        }
        "fd_readdir" => readdir(process, memory, args),
        "fd_renumber" => {
            let to = args.u32(1);
            let mut wasi = process.wasi();
            wasi.get(to)?;
            let descriptor = wasi.fds.remove(&fd).ok_or(Errno::BadF)?;
            wasi.fds.insert(to, descriptor);
            Ok(())
        }
        "fd_seek" => {
            let position = seek(
                &mut process.wasi(),
                fd,
                args.u64(1).cast_signed(),
                args.u32(2),
            )?;
            memory.write_u64(args.u32(3), position)
        }
        "fd_tell" => {
            let position = {
                let wasi = process.wasi();
                let descriptor = wasi.get(fd)?;
                match &descriptor.object {
                    Object::File { position, .. } => {
                        descriptor.require(rights::FD_TELL)?;
                        *position
                    }
                    Object::Directory { .. } => return Err(Errno::BadF),
                    _ => return Err(Errno::SPipe),
                }
            };
            memory.write_u64(args.u32(1), position)
        }
        _ => Err(Errno::NoSys),
    }
}

/// The WASI file type of a node kind.
pub(super) fn file_type(kind: NodeKind) -> u8 {
    match kind {
        NodeKind::Directory => filetype::DIRECTORY,
        NodeKind::File => filetype::REGULAR_FILE,
        NodeKind::Symlink => filetype::SYMBOLIC_LINK,
        NodeKind::Other => filetype::UNKNOWN,
    }
}

/// Writes a `filestat` at `ptr`.
pub(super) fn write_filestat(
    memory: &mut Memory<'_, '_>,
    ptr: u32,
    kind: u8,
    stat: &Stat,
) -> WasiResult<()> {
    let mut bytes = [0u8; 64];
    bytes[0..8].copy_from_slice(&stat.device.to_le_bytes());
    bytes[8..16].copy_from_slice(&stat.inode.to_le_bytes());
    bytes[16] = kind;
    bytes[24..32].copy_from_slice(&stat.links.to_le_bytes());
    bytes[32..40].copy_from_slice(&stat.size.to_le_bytes());
    bytes[40..48].copy_from_slice(&stat.access_ns.to_le_bytes());
    bytes[48..56].copy_from_slice(&stat.modify_ns.to_le_bytes());
    bytes[56..64].copy_from_slice(&stat.change_ns.to_le_bytes());
    memory.write(ptr, &bytes)
}

/// The access and modification times `fst_flags` ask for (`None`: leave as is).
///
/// # Errors
/// `EINVAL` for a time both given and "now", or unknown flags.
pub(super) fn times<H: KernelHal>(
    process: &Process<H>,
    access: u64,
    modify: u64,
    flags: u32,
) -> WasiResult<(Option<u64>, Option<u64>)> {
    let flags = u16::try_from(flags).map_err(|_| Errno::Inval)?;
    if flags & !0xf != 0
        || flags & (fstflags::ATIM | fstflags::ATIM_NOW) == fstflags::ATIM | fstflags::ATIM_NOW
        || flags & (fstflags::MTIM | fstflags::MTIM_NOW) == fstflags::MTIM | fstflags::MTIM_NOW
    {
        return Err(Errno::Inval);
    }
    let now = super::realtime_ns(process);
    let pick = |set: u16, set_now: u16, value: u64| {
        if flags & set != 0 {
            Some(value)
        } else if flags & set_now != 0 {
            Some(now)
        } else {
            None
        }
    };
    Ok((
        pick(fstflags::ATIM, fstflags::ATIM_NOW, access),
        pick(fstflags::MTIM, fstflags::MTIM_NOW, modify),
    ))
}

/// The file system and node of a file descriptor (`EBADF` for anything else).
fn file_of(descriptor: &Descriptor) -> WasiResult<(Arc<dyn FileSystem>, NodeId)> {
    match &descriptor.object {
        Object::File { fs, node, .. } => Ok((fs.clone(), *node)),
        _ => Err(Errno::BadF),
    }
}

/// The guest name of preopen `fd`.
fn preopen_name(wasi: &WasiState, fd: u32) -> WasiResult<alloc::string::String> {
    match &wasi.get(fd)?.object {
        Object::Directory {
            preopen: Some(name),
            ..
        } => Ok(name.clone()),
        _ => Err(Errno::BadF),
    }
}

/// `fd_read` and `fd_pread`.
fn read<H: KernelHal>(
    process: &'static Process<H>,
    memory: &mut Memory<'_, '_>,
    args: &Args<'_>,
    positioned: bool,
) -> WasiResult<()> {
    let fd = args.u32(0);
    let iovecs = memory.iovecs(args.u32(1), args.u32(2))?;
    let out = if positioned { args.u32(4) } else { args.u32(3) };
    let total: usize = iovecs.iter().map(|&(_, len)| len as usize).sum();
    let wanted = total.min(MAX_TRANSFER);
    let (object, flags) = transfer_target(process, fd, rights::FD_READ, positioned)?;
    let data = match object {
        Object::Stdin => {
            if positioned {
                return Err(Errno::SPipe);
            }
            read_stdin(process, wanted, flags & fdflags::NONBLOCK != 0)?
        }
        Object::Stdout | Object::Stderr => return Err(Errno::BadF),
        Object::Directory { .. } => return Err(Errno::BadF),
        Object::File { fs, node, position } => {
            let offset = if positioned { args.u64(3) } else { position };
            let mut buf = alloc::vec![0u8; wanted];
            let len = fs.read_at(node, offset, &mut buf)?;
            buf.truncate(len);
            if !positioned
                && let Ok(descriptor) = process.wasi().get_mut(fd)
                && let Object::File { position, .. } = &mut descriptor.object
            {
                *position = offset + len as u64;
            }
            buf
        }
    };
    let mut done = 0usize;
    for (ptr, len) in iovecs {
        if done >= data.len() {
            break;
        }
        let chunk = &data[done..data.len().min(done + len as usize)];
        memory.write(ptr, chunk)?;
        done += chunk.len();
    }
    memory.write_u32(out, done as u32)
}

/// Reads up to `len` bytes of standard input: what is buffered, else what the console has,
/// blocking (sleeping with backoff, so no CPU spins) until something arrives or the input
/// ends (then an empty read).
///
/// # Errors
/// `EAGAIN` when `nonblocking` and nothing is there.
pub(super) fn read_stdin<H: KernelHal>(
    process: &Process<H>,
    len: usize,
    nonblocking: bool,
) -> WasiResult<Vec<u8>> {
    let mut backoff_ns = 100_000u64;
    loop {
        if let Some(bytes) = take_stdin(process, len) {
            return Ok(bytes);
        }
        if nonblocking {
            return Err(Errno::Again);
        }
        let until = process.kernel().now_ns().saturating_add(backoff_ns);
        process.sleep_until(until);
        backoff_ns = (backoff_ns * 2).min(20_000_000);
    }
}

/// Takes buffered standard input, or reads what the console has; `Some(empty)` at the
/// end of the input, `None` when nothing is there yet.
fn take_stdin<H: KernelHal>(process: &Process<H>, len: usize) -> Option<Vec<u8>> {
    if stdin_ready(process) {
        let mut buffer = process.kernel().wasi().stdin.lock();
        let take = len.min(buffer.pending.len());
        Some(buffer.pending.drain(..take).collect())
    } else {
        None
    }
}

/// Whether a read of standard input would not block: bytes are buffered (the console's
/// pending bytes are read ahead into the buffer) or the input has ended.
pub(super) fn stdin_ready<H: KernelHal>(process: &Process<H>) -> bool {
    let kernel = process.kernel();
    let hal = kernel.hal();
    let mut buffer = kernel.wasi().stdin.lock();
    if !buffer.pending.is_empty() || buffer.from_image {
        return true;
    }
    // Console input comes from outside the kernel: deterministic mode records it (and a
    // replay gives it back), the end of the input included.
    let mut chunk = [0u8; 4096];
    let read = kernel.external_input(InputKind::Console, &mut chunk, |chunk| {
        hal.read_bytes(chunk)
    });
    buffer.pending.extend_from_slice(&chunk[..read]);
    if read > 0 {
        return true;
    }
    let mut ended = [0u8; 1];
    kernel.external_input(InputKind::Console, &mut ended, |ended| {
        ended[0] = u8::from(hal.input_ended());
        1
    });
    ended[0] != 0
}

/// The object and flags of descriptor `fd` for a read or write (`right` is
/// `FD_READ` or `FD_WRITE`): not a directory, holding `right`, and `FD_SEEK` too when the
/// transfer is `positioned` (`fd_pread`, `fd_pwrite`).
///
/// # Errors
/// `EBADF` for a directory or a missing read/write right, `ENOTCAPABLE` without `FD_SEEK`.
fn transfer_target<H: KernelHal>(
    process: &Process<H>,
    fd: u32,
    right: u64,
    positioned: bool,
) -> WasiResult<(Object, u16)> {
    let wasi = process.wasi();
    let descriptor = wasi.get(fd)?;
    if let Object::Directory { .. } = descriptor.object {
        return Err(Errno::BadF);
    }
    if descriptor.base & right == 0 {
        return Err(Errno::BadF);
    }
    if positioned {
        descriptor.require(rights::FD_SEEK)?;
    }
    Ok((descriptor.object.clone(), descriptor.flags))
}

/// `fd_write` and `fd_pwrite`.
fn write<H: KernelHal>(
    process: &'static Process<H>,
    memory: &mut Memory<'_, '_>,
    args: &Args<'_>,
    positioned: bool,
) -> WasiResult<()> {
    let fd = args.u32(0);
    let iovecs = memory.iovecs(args.u32(1), args.u32(2))?;
    let out = if positioned { args.u32(4) } else { args.u32(3) };
    let mut data = Vec::new();
    for (ptr, len) in iovecs {
        if data.len() + len as usize > MAX_TRANSFER {
            break;
        }
        data.extend_from_slice(memory.read(ptr, len)?);
    }
    let (object, flags) = transfer_target(process, fd, rights::FD_WRITE, positioned)?;
    let hal = process.kernel().hal();
    let written = match object {
        Object::Stdout | Object::Stderr if positioned => return Err(Errno::SPipe),
        Object::Stdout => {
            hal.write_program_bytes(&data, false);
            data.len()
        }
        Object::Stderr => {
            hal.write_program_bytes(&data, true);
            data.len()
        }
        Object::Stdin | Object::Directory { .. } => return Err(Errno::BadF),
        Object::File { fs, node, position } => {
            let append = flags & fdflags::APPEND != 0;
            let offset = if positioned {
                args.u64(3)
            } else if append {
                fs.stat(node)?.size
            } else {
                position
            };
            let written = fs.write_at(node, offset, &data)?;
            if !positioned
                && let Ok(descriptor) = process.wasi().get_mut(fd)
                && let Object::File { position, .. } = &mut descriptor.object
            {
                *position = offset + written as u64;
            }
            written
        }
    };
    memory.write_u32(out, written as u32)
}

/// `fd_seek`: the new position.
fn seek(wasi: &mut WasiState, fd: u32, offset: i64, whence: u32) -> WasiResult<u64> {
    let descriptor = wasi.get_mut(fd)?;
    let needed = if offset == 0 && whence == 1 {
        rights::FD_TELL | rights::FD_SEEK
    } else {
        rights::FD_SEEK
    };
    if descriptor.base & needed == 0 {
        return Err(Errno::NotCapable);
    }
    match &mut descriptor.object {
        Object::File { fs, node, position } => {
            let base = match whence {
                0 => 0,
                1 => *position,
                2 => fs.stat(*node)?.size,
                _ => return Err(Errno::Inval),
            };
            let new = i128::from(base) + i128::from(offset);
            if new < 0 || new > i128::from(i64::MAX) {
                return Err(Errno::Inval);
            }
            *position = new as u64;
            Ok(*position)
        }
        Object::Directory { .. } => Err(Errno::BadF),
        _ => Err(Errno::SPipe),
    }
}

/// `fd_readdir(fd, buf, buf_len, cookie, bufused)`: entries from `cookie` on, `.` and
/// `..` first, each a 24-byte `dirent` and its name, the last one cut at the buffer's
/// end.
fn readdir<H: KernelHal>(
    process: &Process<H>,
    memory: &mut Memory<'_, '_>,
    args: &Args<'_>,
) -> WasiResult<()> {
    let (fs, node) = {
        let wasi = process.wasi();
        let descriptor = wasi.get(args.u32(0))?;
        match &descriptor.object {
            Object::Directory { fs, node, .. } => {
                descriptor.require(rights::FD_READDIR)?;
                (fs.clone(), *node)
            }
            _ => return Err(Errno::NotDir),
        }
    };
    let (buf, buf_len, cookie) = (args.u32(1), args.u32(2) as usize, args.u64(3));
    memory.check(buf, buf_len as u32)?;
    let own = fs.stat(node)?.inode;
    let mut entries = alloc::vec![
        (alloc::string::String::from("."), own, filetype::DIRECTORY),
        (alloc::string::String::from(".."), own, filetype::DIRECTORY),
    ];
    entries.extend(
        fs.read_directory(node)?
            .into_iter()
            .map(|entry| (entry.name, entry.inode, file_type(entry.kind))),
    );
    let mut out = Vec::with_capacity(buf_len);
    for (index, (name, inode, kind)) in entries
        .iter()
        .enumerate()
        .skip(cookie.min(usize::MAX as u64) as usize)
    {
        if out.len() >= buf_len {
            break;
        }
        let mut dirent = [0u8; 24];
        dirent[0..8].copy_from_slice(&(index as u64 + 1).to_le_bytes());
        dirent[8..16].copy_from_slice(&inode.to_le_bytes());
        dirent[16..20].copy_from_slice(&(name.len() as u32).to_le_bytes());
        dirent[20] = *kind;
        out.extend_from_slice(&dirent);
        out.extend_from_slice(name.as_bytes());
    }
    out.truncate(buf_len);
    memory.write(buf, &out)?;
    memory.write_u32(args.u32(4), out.len() as u32)
}
