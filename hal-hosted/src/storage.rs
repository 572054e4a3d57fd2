//! Host directories as kernel-core file systems (`sim --dir`), like User-Mode Linux's
//! hostfs: changes go straight to the host.
//!
//! kernel-core resolves paths itself and hands this file system single names; every
//! operation here walks from the directory's own descriptor one component at a time with
//! `openat(O_PATH | O_DIRECTORY | O_NOFOLLOW)` and acts with the `*at` calls relative to
//! the last directory, never following a symbolic link. So even a link planted on the
//! host while the guest runs cannot lead outside the directory.
//!
//! A node is named by its path below the root, interned once as a number; a node renamed
//! on the host keeps its old path (and so no longer resolves).

use std::collections::HashMap;
use std::ffi::CString;
use std::sync::{Arc, Mutex};

use kernel_core::vfs::{DirEntry, Errno, FileSystem, FsResult, NodeId, NodeKind, Stat};
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timestamps};

/// The interned node paths.
#[derive(Default)]
struct Paths {
    by_id: Vec<String>,
    by_path: HashMap<String, NodeId>,
}

/// A host directory served as a file system.
pub struct HostFs {
    /// The directory (`O_PATH`).
    root: OwnedFd,
    paths: Mutex<Paths>,
}

/// Opens host directory `path` as a file system.
///
/// # Errors
/// Why it cannot be opened.
pub fn open(path: &str) -> Result<Arc<dyn FileSystem>, Errno> {
    let root = rustix::fs::open(
        path,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno)?;
    let mut paths = Paths::default();
    paths.by_id.push(String::new());
    paths.by_path.insert(String::new(), 0);
    Ok(Arc::new(HostFs {
        root,
        paths: Mutex::new(paths),
    }))
}

/// The WASI error number of a host error.
fn errno(error: rustix::io::Errno) -> Errno {
    use rustix::io::Errno as E;
    match error {
        E::NOENT => Errno::NoEnt,
        E::EXIST => Errno::Exist,
        E::NOTDIR => Errno::NotDir,
        E::ISDIR => Errno::IsDir,
        E::NOTEMPTY => Errno::NotEmpty,
        E::LOOP => Errno::Loop,
        E::ACCESS => Errno::Access,
        E::PERM => Errno::Perm,
        E::INVAL => Errno::Inval,
        E::XDEV => Errno::XDev,
        E::NOSPC => Errno::NoSpc,
        E::FBIG => Errno::FBig,
        E::NAMETOOLONG => Errno::NameTooLong,
        E::BUSY => Errno::Busy,
        E::BADF => Errno::BadF,
        E::ROFS => Errno::RoFs,
        E::MFILE | E::NFILE => Errno::MFile,
        E::NOMEM => Errno::NoMem,
        E::ILSEQ => Errno::IlSeq,
        _ => Errno::Io,
    }
}

/// A name as a C string (`EILSEQ` for an interior NUL).
fn c_name(name: &str) -> FsResult<CString> {
    CString::new(name).map_err(|_| Errno::IlSeq)
}

/// Nanoseconds of a `stat` time (seconds and nanoseconds).
fn nanos(seconds: i64, nanoseconds: impl TryInto<u64>) -> u64 {
    u64::try_from(seconds)
        .unwrap_or(0)
        .saturating_mul(1_000_000_000)
        .saturating_add(nanoseconds.try_into().unwrap_or(0))
}

fn kind_of(file_type: FileType) -> NodeKind {
    match file_type {
        FileType::Directory => NodeKind::Directory,
        FileType::RegularFile => NodeKind::File,
        FileType::Symlink => NodeKind::Symlink,
        _ => NodeKind::Other,
    }
}

impl HostFs {
    /// The path of `node`.
    fn path(&self, node: NodeId) -> FsResult<String> {
        let paths = self.paths.lock().map_err(|_| Errno::Io)?;
        paths
            .by_id
            .get(usize::try_from(node).map_err(|_| Errno::BadF)?)
            .cloned()
            .ok_or(Errno::BadF)
    }

    /// The number of the node at `path`.
    fn intern(&self, path: String) -> FsResult<NodeId> {
        let mut paths = self.paths.lock().map_err(|_| Errno::Io)?;
        if let Some(&id) = paths.by_path.get(&path) {
            return Ok(id);
        }
        let id = paths.by_id.len() as NodeId;
        paths.by_id.push(path.clone());
        paths.by_path.insert(path, id);
        Ok(id)
    }

    /// Opens the directory at `path` (`O_PATH`), one component at a time, following no
    /// link.
    fn walk(&self, path: &str) -> FsResult<OwnedFd> {
        let mut dir = rustix::io::dup(&self.root).map_err(errno)?;
        for part in path.split('/').filter(|part| !part.is_empty()) {
            dir = rustix::fs::openat(
                &dir,
                c_name(part)?.as_c_str(),
                OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(errno)?;
        }
        Ok(dir)
    }

    /// The directory holding `node` and its name there (`None` for the root).
    fn parent(&self, node: NodeId) -> FsResult<(OwnedFd, Option<CString>)> {
        let path = self.path(node)?;
        match path.rsplit_once('/') {
            Some((parent, name)) => Ok((self.walk(parent)?, Some(c_name(name)?))),
            None if path.is_empty() => Ok((self.walk("")?, None)),
            None => Ok((self.walk("")?, Some(c_name(&path)?))),
        }
    }

    /// Opens `node` with `flags` (never following a link).
    fn open_node(&self, node: NodeId, flags: OFlags) -> FsResult<OwnedFd> {
        let (dir, name) = self.parent(node)?;
        let name = name.unwrap_or_else(|| c".".into());
        rustix::fs::openat(
            &dir,
            name.as_c_str(),
            flags | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno)
    }

    /// The directory `dir` as a directory descriptor for `*at` calls.
    fn dir(&self, dir: NodeId) -> FsResult<OwnedFd> {
        self.walk(&self.path(dir)?)
    }
}

impl FileSystem for HostFs {
    fn root(&self) -> NodeId {
        0
    }

    fn lookup(&self, dir: NodeId, name: &str) -> FsResult<NodeId> {
        let dir_path = self.path(dir)?;
        let fd = self.walk(&dir_path)?;
        rustix::fs::statat(&fd, c_name(name)?.as_c_str(), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(errno)?;
        let path = if dir_path.is_empty() {
            name.to_owned()
        } else {
            format!("{dir_path}/{name}")
        };
        self.intern(path)
    }

    fn stat(&self, node: NodeId) -> FsResult<Stat> {
        let (dir, name) = self.parent(node)?;
        let stat = match name {
            Some(name) => rustix::fs::statat(&dir, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW),
            None => rustix::fs::fstat(&dir),
        }
        .map_err(errno)?;
        Ok(Stat {
            device: stat.st_dev,
            inode: stat.st_ino,
            kind: kind_of(FileType::from_raw_mode(stat.st_mode)),
            links: stat.st_nlink,
            size: u64::try_from(stat.st_size).unwrap_or(0),
            access_ns: nanos(stat.st_atime, stat.st_atime_nsec),
            modify_ns: nanos(stat.st_mtime, stat.st_mtime_nsec),
            change_ns: nanos(stat.st_ctime, stat.st_ctime_nsec),
        })
    }

    fn create_file(&self, dir: NodeId, name: &str) -> FsResult<NodeId> {
        let fd = self.dir(dir)?;
        rustix::fs::openat(
            &fd,
            c_name(name)?.as_c_str(),
            OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o666),
        )
        .map_err(errno)?;
        self.lookup(dir, name)
    }

    fn create_directory(&self, dir: NodeId, name: &str) -> FsResult<()> {
        let fd = self.dir(dir)?;
        rustix::fs::mkdirat(&fd, c_name(name)?.as_c_str(), Mode::from_raw_mode(0o777))
            .map_err(errno)
    }

    fn read_at(&self, node: NodeId, offset: u64, buf: &mut [u8]) -> FsResult<usize> {
        let fd = self.open_node(node, OFlags::RDONLY)?;
        let mut done = 0;
        while done < buf.len() {
            match rustix::io::pread(&fd, &mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(read) => done += read,
                Err(rustix::io::Errno::INTR) => {}
                Err(error) => return Err(errno(error)),
            }
        }
        Ok(done)
    }

    fn write_at(&self, node: NodeId, offset: u64, data: &[u8]) -> FsResult<usize> {
        let fd = self.open_node(node, OFlags::WRONLY)?;
        let mut done = 0;
        while done < data.len() {
            match rustix::io::pwrite(&fd, &data[done..], offset + done as u64) {
                Ok(0) => return Err(Errno::Io),
                Ok(written) => done += written,
                Err(rustix::io::Errno::INTR) => {}
                Err(error) => return Err(errno(error)),
            }
        }
        Ok(done)
    }

    fn set_len(&self, node: NodeId, len: u64) -> FsResult<()> {
        let fd = self.open_node(node, OFlags::WRONLY)?;
        rustix::fs::ftruncate(&fd, len).map_err(errno)
    }

    fn read_directory(&self, dir: NodeId) -> FsResult<Vec<DirEntry>> {
        let fd = self.open_node(dir, OFlags::RDONLY | OFlags::DIRECTORY)?;
        let mut reader = rustix::fs::Dir::read_from(fd.as_fd()).map_err(errno)?;
        let mut entries = Vec::new();
        while let Some(entry) = reader.read() {
            let entry = entry.map_err(errno)?;
            let Ok(name) = entry.file_name().to_str() else {
                continue;
            };
            if name == "." || name == ".." {
                continue;
            }
            let kind = match entry.file_type() {
                FileType::Unknown => {
                    rustix::fs::statat(&fd, entry.file_name(), AtFlags::SYMLINK_NOFOLLOW)
                        .map_or(NodeKind::Other, |stat| {
                            kind_of(FileType::from_raw_mode(stat.st_mode))
                        })
                }
                other => kind_of(other),
            };
            entries.push(DirEntry {
                name: name.to_owned(),
                inode: entry.ino(),
                kind,
            });
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    fn set_times(
        &self,
        node: NodeId,
        access_ns: Option<u64>,
        modify_ns: Option<u64>,
    ) -> FsResult<()> {
        let spec = |time: Option<u64>| match time {
            Some(ns) => rustix::fs::Timespec {
                tv_sec: i64::try_from(ns / 1_000_000_000).unwrap_or(i64::MAX),
                tv_nsec: (ns % 1_000_000_000) as _,
            },
            None => rustix::fs::Timespec {
                tv_sec: 0,
                tv_nsec: rustix::fs::UTIME_OMIT,
            },
        };
        let times = Timestamps {
            last_access: spec(access_ns),
            last_modification: spec(modify_ns),
        };
        let (dir, name) = self.parent(node)?;
        let name = name.unwrap_or_else(|| c".".into());
        rustix::fs::utimensat(&dir, name.as_c_str(), &times, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(errno)
    }

    fn unlink(&self, dir: NodeId, name: &str) -> FsResult<()> {
        let fd = self.dir(dir)?;
        rustix::fs::unlinkat(&fd, c_name(name)?.as_c_str(), AtFlags::empty()).map_err(errno)
    }

    fn remove_directory(&self, dir: NodeId, name: &str) -> FsResult<()> {
        let fd = self.dir(dir)?;
        rustix::fs::unlinkat(&fd, c_name(name)?.as_c_str(), AtFlags::REMOVEDIR).map_err(errno)
    }

    fn rename(&self, dir: NodeId, name: &str, new_dir: NodeId, new_name: &str) -> FsResult<()> {
        let (from, to) = (self.dir(dir)?, self.dir(new_dir)?);
        rustix::fs::renameat(
            &from,
            c_name(name)?.as_c_str(),
            &to,
            c_name(new_name)?.as_c_str(),
        )
        .map_err(errno)
    }

    fn link(&self, dir: NodeId, name: &str, new_dir: NodeId, new_name: &str) -> FsResult<()> {
        let (from, to) = (self.dir(dir)?, self.dir(new_dir)?);
        rustix::fs::linkat(
            &from,
            c_name(name)?.as_c_str(),
            &to,
            c_name(new_name)?.as_c_str(),
            AtFlags::empty(),
        )
        .map_err(errno)
    }

    fn symlink(&self, target: &str, dir: NodeId, name: &str) -> FsResult<()> {
        let fd = self.dir(dir)?;
        rustix::fs::symlinkat(c_name(target)?.as_c_str(), &fd, c_name(name)?.as_c_str())
            .map_err(errno)
    }

    fn read_link(&self, node: NodeId) -> FsResult<String> {
        let (dir, name) = self.parent(node)?;
        let name = name.ok_or(Errno::Inval)?;
        let target = rustix::fs::readlinkat(&dir, name.as_c_str(), Vec::new()).map_err(errno)?;
        target.into_string().map_err(|_| Errno::IlSeq)
    }

    fn sync(&self, node: NodeId) -> FsResult<()> {
        let kind = self.stat(node)?.kind;
        let flags = if kind == NodeKind::Directory {
            OFlags::RDONLY | OFlags::DIRECTORY
        } else {
            OFlags::RDONLY
        };
        let fd = self.open_node(node, flags)?;
        rustix::fs::fsync(&fd).map_err(errno)
    }
}

#[cfg(test)]
mod tests {
    use kernel_core::vfs::{self, Errno, NodeKind};

    #[test]
    fn a_host_directory_is_served_without_escapes() {
        let base = std::env::temp_dir().join(format!("hostfs-test-{}", std::process::id()));
        let root = base.join("root");
        std::fs::create_dir_all(root.join("d")).unwrap();
        std::fs::write(base.join("secret"), b"outside").unwrap();
        std::fs::write(root.join("d/f"), b"inside").unwrap();
        std::os::unix::fs::symlink("../secret", root.join("up")).unwrap();
        std::os::unix::fs::symlink(base.join("secret"), root.join("abs")).unwrap();
        std::os::unix::fs::symlink("d", root.join("to_d")).unwrap();
        let fs = super::open(root.to_str().unwrap()).unwrap();
        let top = fs.root();
        let file = vfs::resolve(&*fs, top, "to_d/f", true)
            .unwrap()
            .node
            .unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(fs.read_at(file, 0, &mut buf).unwrap(), 6);
        assert_eq!(&buf[..6], b"inside");
        assert_eq!(vfs::resolve(&*fs, top, "up", true), Err(Errno::Perm));
        assert_eq!(vfs::resolve(&*fs, top, "abs", true), Err(Errno::Perm));
        // Not followed by the host side either: the link is a node of its own.
        let link = fs.lookup(top, "abs").unwrap();
        assert_eq!(fs.stat(link).unwrap().kind, NodeKind::Symlink);
        assert_eq!(fs.read_at(link, 0, &mut buf), Err(Errno::Loop));
        let made = fs.create_file(top, "new").unwrap();
        fs.write_at(made, 0, b"written").unwrap();
        assert_eq!(std::fs::read(root.join("new")).unwrap(), b"written");
        std::fs::remove_dir_all(&base).unwrap();
    }
}
