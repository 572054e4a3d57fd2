//! The `path_*` functions: opening, creating, removing, renaming and linking by path,
//! always resolved by [`crate::vfs::resolve`] inside the directory descriptor given.

use alloc::sync::Arc;

use super::fd::{file_type, times, write_filestat};
use super::state::{Descriptor, Object};
use super::types::{Errno, LOOKUP_SYMLINK_FOLLOW, WasiResult, fdflags, oflags, rights};
use super::{Args, Memory};
use crate::KernelHal;
use crate::process::Process;
use crate::vfs::{self, FileSystem, NodeId, NodeKind, Resolved};

/// Runs `path_*` function `name`.
pub(super) fn dispatch<H: KernelHal>(
    name: &str,
    process: &'static Process<H>,
    memory: &mut Memory<'_, '_>,
    args: &Args<'_>,
) -> WasiResult<()> {
    match name {
        "path_create_directory" => {
            let (fs, dir) = directory(process, args.u32(0), rights::PATH_CREATE_DIRECTORY)?;
            let path = memory.string(args.u32(1), args.u32(2))?;
            let found = vfs::resolve(&*fs, dir, &path, false)?;
            match (found.node, found.name) {
                (None, Some(name)) => fs.create_directory(found.parent, &name),
                _ => Err(Errno::Exist),
            }
        }
        "path_filestat_get" => {
            let (fs, dir) = directory(process, args.u32(0), rights::PATH_FILESTAT_GET)?;
            let path = memory.string(args.u32(2), args.u32(3))?;
            let node = existing(&*fs, dir, &path, args.u32(1) & LOOKUP_SYMLINK_FOLLOW != 0)?;
            let stat = fs.stat(node)?;
            write_filestat(memory, args.u32(4), file_type(stat.kind), &stat)
        }
        "path_filestat_set_times" => {
            let (fs, dir) = directory(process, args.u32(0), rights::PATH_FILESTAT_SET_TIMES)?;
            let path = memory.string(args.u32(2), args.u32(3))?;
            let (access, modify) = times(process, args.u64(4), args.u64(5), args.u32(6))?;
            let node = existing(&*fs, dir, &path, args.u32(1) & LOOKUP_SYMLINK_FOLLOW != 0)?;
            fs.set_times(node, access, modify)
        }
        "path_link" => {
            let (fs, dir) = directory(process, args.u32(0), rights::PATH_LINK_SOURCE)?;
            let (new_fs, new_dir) = directory(process, args.u32(4), rights::PATH_LINK_TARGET)?;
            same_fs(&fs, &new_fs)?;
            let path = memory.string(args.u32(2), args.u32(3))?;
            let new_path = memory.string(args.u32(5), args.u32(6))?;
            let old = vfs::resolve(&*fs, dir, &path, args.u32(1) & LOOKUP_SYMLINK_FOLLOW != 0)?;
            let (Some(node), Some(name)) = (old.node, old.name.clone()) else {
                return Err(if old.node.is_some() {
                    Errno::Perm
                } else {
                    Errno::NoEnt
                });
            };
            let kind = fs.stat(node)?.kind;
            if old.trailing_slash && kind != NodeKind::Directory {
                return Err(Errno::NotDir);
            }
            if kind == NodeKind::Directory {
                return Err(Errno::Perm);
            }
            let new = vfs::resolve(&*new_fs, new_dir, &new_path, false)?;
            match (new.node, new.name) {
                (None, Some(_)) if new.trailing_slash => Err(Errno::NoEnt),
                (None, Some(new_name)) => fs.link(old.parent, &name, new.parent, &new_name),
                _ => Err(Errno::Exist),
            }
        }
        "path_open" => open(process, memory, args),
        "path_readlink" => {
            let (fs, dir) = directory(process, args.u32(0), rights::PATH_READLINK)?;
            let path = memory.string(args.u32(1), args.u32(2))?;
            let node = existing(&*fs, dir, &path, false)?;
            let target = fs.read_link(node)?;
            let len = target.len().min(args.u32(4) as usize);
            memory.write(args.u32(3), &target.as_bytes()[..len])?;
            memory.write_u32(args.u32(5), len as u32)
        }
        "path_remove_directory" => {
            let (fs, dir) = directory(process, args.u32(0), rights::PATH_REMOVE_DIRECTORY)?;
            let path = memory.string(args.u32(1), args.u32(2))?;
            let found = vfs::resolve(&*fs, dir, &path, false)?;
            let Some(node) = found.node else {
                return Err(Errno::NoEnt);
            };
            let Some(name) = found.name else {
                return Err(Errno::Busy);
            };
            if fs.stat(node)?.kind != NodeKind::Directory {
                return Err(Errno::NotDir);
            }
            fs.remove_directory(found.parent, &name)
        }
        "path_rename" => {
            let (fs, dir) = directory(process, args.u32(0), rights::PATH_RENAME_SOURCE)?;
            let (new_fs, new_dir) = directory(process, args.u32(3), rights::PATH_RENAME_TARGET)?;
            same_fs(&fs, &new_fs)?;
            let path = memory.string(args.u32(1), args.u32(2))?;
            let new_path = memory.string(args.u32(4), args.u32(5))?;
            let old = vfs::resolve(&*fs, dir, &path, false)?;
            let (Some(node), Some(name)) = (old.node, old.name.clone()) else {
                return Err(if old.node.is_some() {
                    Errno::Busy
                } else {
                    Errno::NoEnt
                });
            };
            let new = vfs::resolve(&*new_fs, new_dir, &new_path, false)?;
            let Some(new_name) = new.name.clone() else {
                return Err(Errno::Busy);
            };
            let kind = fs.stat(node)?.kind;
            if kind != NodeKind::Directory && (old.trailing_slash || new.trailing_slash) {
                return Err(Errno::NotDir);
            }
            fs.rename(old.parent, &name, new.parent, &new_name)
        }
        "path_symlink" => {
            let target = memory.string(args.u32(0), args.u32(1))?;
            // A link that could only ever point outside the preopen is refused, as
            // Wasmtime refuses it.
            if target.starts_with('/') {
                return Err(Errno::Perm);
            }
            let (fs, dir) = directory(process, args.u32(2), rights::PATH_SYMLINK)?;
            let path = memory.string(args.u32(3), args.u32(4))?;
            let found = vfs::resolve(&*fs, dir, &path, false)?;
            match (found.node, found.name) {
                (None, Some(_)) if found.trailing_slash => Err(Errno::NoEnt),
                (None, Some(name)) => fs.symlink(&target, found.parent, &name),
                _ => Err(Errno::Exist),
            }
        }
        "path_unlink_file" => {
            let (fs, dir) = directory(process, args.u32(0), rights::PATH_UNLINK_FILE)?;
            let path = memory.string(args.u32(1), args.u32(2))?;
            let found = vfs::resolve(&*fs, dir, &path, false)?;
            let (Some(node), Some(name)) = (found.node, found.name) else {
                return Err(if found.node.is_some() {
                    Errno::IsDir
                } else {
                    Errno::NoEnt
                });
            };
            let kind = fs.stat(node)?.kind;
            if kind == NodeKind::Directory {
                return Err(Errno::IsDir);
            }
            if found.trailing_slash {
                return Err(Errno::NotDir);
            }
            fs.unlink(found.parent, &name)
        }
        _ => Err(Errno::NoSys),
    }
}

/// The file system and node of directory descriptor `fd`, which must hold `needed`.
fn directory<H: KernelHal>(
    process: &Process<H>,
    fd: u32,
    needed: u64,
) -> WasiResult<(Arc<dyn FileSystem>, NodeId)> {
    let wasi = process.wasi();
    let descriptor = wasi.get(fd)?;
    match &descriptor.object {
        Object::Directory { fs, node, .. } => {
            descriptor.require(needed)?;
            Ok((fs.clone(), *node))
        }
        _ => Err(Errno::NotDir),
    }
}

/// Both descriptors are on one file system (`EXDEV` otherwise).
fn same_fs(a: &Arc<dyn FileSystem>, b: &Arc<dyn FileSystem>) -> WasiResult<()> {
    if core::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b)) {
        Ok(())
    } else {
        Err(Errno::XDev)
    }
}

/// The node `path` names, which must exist (a trailing slash: a directory).
fn existing(fs: &dyn FileSystem, dir: NodeId, path: &str, follow: bool) -> WasiResult<NodeId> {
    let found: Resolved = vfs::resolve(fs, dir, path, follow)?;
    let node = found.node.ok_or(Errno::NoEnt)?;
    if found.trailing_slash && fs.stat(node)?.kind != NodeKind::Directory {
        return Err(Errno::NotDir);
    }
    Ok(node)
}

/// `path_open(fd, dirflags, path, path_len, oflags, rights_base, rights_inheriting,
/// fdflags, fd_out)`.
fn open<H: KernelHal>(
    process: &'static Process<H>,
    memory: &mut Memory<'_, '_>,
    args: &Args<'_>,
) -> WasiResult<()> {
    let open_flags = u16::try_from(args.u32(4)).map_err(|_| Errno::Inval)?;
    let flags = u16::try_from(args.u32(7)).map_err(|_| Errno::Inval)?;
    let (requested, requested_inheriting) = (args.u64(5), args.u64(6));
    let (fs, dir, dir_inheriting) = {
        let wasi = process.wasi();
        let descriptor = wasi.get(args.u32(0))?;
        match &descriptor.object {
            Object::Directory { fs, node, .. } => {
                descriptor.require(rights::PATH_OPEN)?;
                if open_flags & oflags::CREAT != 0 {
                    descriptor.require(rights::PATH_CREATE_FILE)?;
                }
                if open_flags & oflags::TRUNC != 0
                    && descriptor.base & rights::PATH_FILESTAT_SET_SIZE == 0
                {
                    return Err(Errno::Perm);
                }
                (fs.clone(), *node, descriptor.inheriting)
            }
            _ => return Err(Errno::NotDir),
        }
    };
    let path = memory.string(args.u32(2), args.u32(3))?;
    let follow = args.u32(1) & LOOKUP_SYMLINK_FOLLOW != 0;
    let found = vfs::resolve(&*fs, dir, &path, follow)?;
    let wants_directory = open_flags & oflags::DIRECTORY != 0;
    let node = match found.node {
        Some(node) => {
            if open_flags & oflags::CREAT != 0 && open_flags & oflags::EXCL != 0 {
                return Err(Errno::Exist);
            }
            node
        }
        None => {
            let name = found.name.as_deref().ok_or(Errno::NoEnt)?;
            if open_flags & oflags::CREAT == 0 {
                return Err(Errno::NoEnt);
            }
            if wants_directory || found.trailing_slash {
                return Err(Errno::IsDir);
            }
            fs.create_file(found.parent, name)?
        }
    };
    let kind = fs.stat(node)?.kind;
    let writes =
        requested & (rights::FD_WRITE | rights::FD_ALLOCATE | rights::FD_FILESTAT_SET_SIZE) != 0;
    let object = match kind {
        NodeKind::Symlink => {
            return Err(if wants_directory {
                Errno::NotDir
            } else {
                Errno::Loop
            });
        }
        NodeKind::Directory => {
            if open_flags & (oflags::TRUNC | oflags::CREAT) != 0 || writes {
                return Err(Errno::IsDir);
            }
            Object::Directory {
                fs: fs.clone(),
                node,
                preopen: None,
                _private: (),
            }
        }
        NodeKind::File | NodeKind::Other => {
            if wants_directory || found.trailing_slash {
                return Err(Errno::NotDir);
            }
            if open_flags & oflags::TRUNC != 0 {
                fs.set_len(node, 0)?;
            }
            Object::File {
                fs: fs.clone(),
                node,
                position: 0,
            }
        }
    };
    let kind_rights = if matches!(object, Object::Directory { .. }) {
        rights::DIRECTORY
    } else {
        rights::FILE
    };
    let descriptor = Descriptor {
        object,
        base: requested & dir_inheriting & kind_rights,
        inheriting: requested_inheriting & dir_inheriting,
        flags: flags & fdflags::ALL,
    };
    let new_fd = process.wasi().insert(descriptor)?;
    memory.write_u32(args.u32(8), new_fd).inspect_err(|_| {
        process.wasi().fds.remove(&new_fd);
    })?;
    Ok(())
}
