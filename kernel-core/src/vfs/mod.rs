//! The virtual file system: path resolution over a node-level [`FileSystem`].
//!
//! kernel-core resolves every path itself, one component at a time ([`resolve`]): it
//! follows symbolic links (at most [`MAX_SYMLINKS`] per resolution), never lets `..` climb
//! above the directory the resolution started from, refuses absolute link targets and
//! treats a non-directory in the middle of a path as `ENOTDIR`. A [`FileSystem`] only
//! looks up single names in directories, so no implementation can be led outside its
//! tree by a path. Two implementations exist: [`memfs::MemFs`] (a tree in RAM, used under
//! QEMU, built from the boot image's [`tree`]) and the host directory of `hal-hosted`.

pub mod memfs;
pub mod tree;

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;

pub use crate::wasi::types::Errno;

/// An opaque node of one file system (an inode number for [`memfs::MemFs`]).
pub type NodeId = u64;

/// Results of file-system operations: WASI error numbers.
pub type FsResult<T> = Result<T, Errno>;

/// The most symbolic links one resolution follows before it fails with `ELOOP`.
pub const MAX_SYMLINKS: u32 = 32;

/// What a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// A directory.
    Directory,
    /// A regular file.
    File,
    /// A symbolic link.
    Symlink,
    /// Anything else (a device, a socket): neither read nor written.
    Other,
}

/// The attributes of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// The device (file system) number.
    pub device: u64,
    /// The inode number.
    pub inode: u64,
    /// What it is.
    pub kind: NodeKind,
    /// Its number of hard links.
    pub links: u64,
    /// Its size in bytes (a link: its target's length).
    pub size: u64,
    /// Last access, nanoseconds since the Unix epoch.
    pub access_ns: u64,
    /// Last modification.
    pub modify_ns: u64,
    /// Last status change.
    pub change_ns: u64,
}

/// One entry of a directory (without `.` and `..`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// Its name.
    pub name: String,
    /// Its inode number.
    pub inode: u64,
    /// What it is.
    pub kind: NodeKind,
}

/// A tree of nodes that kernel-core walks one name at a time.
///
/// Every method names nodes by [`NodeId`]s this file system returned; names are single
/// path components (no `/`, never `.` or `..`). No method follows a symbolic link: a
/// link is a node of kind [`NodeKind::Symlink`] whose target [`FileSystem::read_link`]
/// gives. Errors are WASI error numbers, as POSIX would give them (`ENOENT`, `EEXIST`,
/// `ENOTDIR`, `EISDIR`, `ENOTEMPTY`, ...).
pub trait FileSystem: Send + Sync {
    /// The root directory.
    fn root(&self) -> NodeId;
    /// The node named `name` in directory `dir`.
    fn lookup(&self, dir: NodeId, name: &str) -> FsResult<NodeId>;
    /// The node's attributes.
    fn stat(&self, node: NodeId) -> FsResult<Stat>;
    /// Creates an empty regular file `name` in `dir` (`EEXIST` if the name is taken).
    fn create_file(&self, dir: NodeId, name: &str) -> FsResult<NodeId>;
    /// Creates an empty directory `name` in `dir`.
    fn create_directory(&self, dir: NodeId, name: &str) -> FsResult<()>;
    /// Reads from `offset` into `buf`; 0 at or past the end.
    fn read_at(&self, node: NodeId, offset: u64, buf: &mut [u8]) -> FsResult<usize>;
    /// Writes `data` at `offset` (extending the file, zero-filled).
    fn write_at(&self, node: NodeId, offset: u64, data: &[u8]) -> FsResult<usize>;
    /// Truncates or extends (zero-filled) the file to `len` bytes.
    fn set_len(&self, node: NodeId, len: u64) -> FsResult<()>;
    /// The directory's entries, without `.` and `..`, in an order that stays the same while
    /// the directory does not change.
    fn read_directory(&self, dir: NodeId) -> FsResult<Vec<DirEntry>>;
    /// Sets the access and/or modification time (nanoseconds since the Unix epoch).
    fn set_times(
        &self,
        node: NodeId,
        access_ns: Option<u64>,
        modify_ns: Option<u64>,
    ) -> FsResult<()>;
    /// Removes the non-directory `name` from `dir`.
    fn unlink(&self, dir: NodeId, name: &str) -> FsResult<()>;
    /// Removes the empty directory `name` from `dir`.
    fn remove_directory(&self, dir: NodeId, name: &str) -> FsResult<()>;
    /// Moves `name` of `dir` to `new_name` of `new_dir`, replacing what POSIX `rename`
    /// would replace.
    fn rename(&self, dir: NodeId, name: &str, new_dir: NodeId, new_name: &str) -> FsResult<()>;
    /// Makes `new_name` of `new_dir` another link to the non-directory `name` of `dir`.
    fn link(&self, dir: NodeId, name: &str, new_dir: NodeId, new_name: &str) -> FsResult<()>;
    /// Creates the symbolic link `name` in `dir` pointing at `target`.
    fn symlink(&self, target: &str, dir: NodeId, name: &str) -> FsResult<()>;
    /// The target of a symbolic link (`EINVAL` for another kind of node).
    fn read_link(&self, node: NodeId) -> FsResult<String>;
    /// Flushes the node's data to its storage.
    fn sync(&self, node: NodeId) -> FsResult<()>;
}

/// Where a path led.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The directory holding the last component.
    pub parent: NodeId,
    /// The last component; `None` when the path named a directory itself (`.`, `a/..`).
    pub name: Option<String>,
    /// The node the path names, when it exists.
    pub node: Option<NodeId>,
    /// The path ended with `/`: it must name a directory.
    pub trailing_slash: bool,
}

/// Resolves `path` from directory `start` (see the [module documentation](self)). The
/// last component's symbolic link is followed when `follow_last` (or the path ends with
/// a slash); a missing last component is not an error (`node` is `None`), a missing
/// directory on the way is `ENOENT`.
///
/// # Errors
/// `ENOENT` (a missing directory, an empty path), `ENOTDIR`, `ELOOP`, and
/// `EPERM` (as Wasmtime answers) for an absolute path, an absolute link target or `..`
/// above `start`.
pub fn resolve(
    fs: &dyn FileSystem,
    start: NodeId,
    path: &str,
    follow_last: bool,
) -> FsResult<Resolved> {
    if path.is_empty() {
        return Err(Errno::NoEnt);
    }
    if path.contains('\0') {
        return Err(Errno::IlSeq);
    }
    if path.starts_with('/') {
        return Err(Errno::Perm);
    }
    let trailing_slash = path.ends_with('/');
    let follow_last = follow_last || trailing_slash;
    let mut stack: Vec<NodeId> = alloc::vec![start];
    let mut queue: VecDeque<String> = components(path);
    let mut links = 0u32;
    let top = |stack: &Vec<NodeId>| *stack.last().unwrap_or(&start);
    loop {
        let Some(component) = queue.pop_front() else {
            let dir = top(&stack);
            return Ok(Resolved {
                parent: dir,
                name: None,
                node: Some(dir),
                trailing_slash,
            });
        };
        let last = queue.is_empty();
        match component.as_str() {
            "." => {}
            ".." => {
                if stack.len() <= 1 {
                    return Err(Errno::Perm);
                }
                stack.pop();
            }
            name => {
                let dir = top(&stack);
                let found = match fs.lookup(dir, name) {
                    Err(Errno::NoEnt) if last => {
                        return Ok(Resolved {
                            parent: dir,
                            name: Some(component),
                            node: None,
                            trailing_slash,
                        });
                    }
                    other => other?,
                };
                let kind = fs.stat(found)?.kind;
                match kind {
                    NodeKind::Symlink if !last || follow_last => {
                        links += 1;
                        if links > MAX_SYMLINKS {
                            return Err(Errno::Loop);
                        }
                        let target = fs.read_link(found)?;
                        if target.starts_with('/') {
                            return Err(Errno::Perm);
                        }
                        if target.is_empty() {
                            return Err(Errno::NoEnt);
                        }
                        let mut expanded = components(&target);
                        if expanded.is_empty() {
                            expanded.push_back(String::from("."));
                        }
                        for part in expanded.into_iter().rev() {
                            queue.push_front(part);
                        }
                    }
                    _ if last => {
                        return Ok(Resolved {
                            parent: dir,
                            name: Some(component),
                            node: Some(found),
                            trailing_slash,
                        });
                    }
                    NodeKind::Directory => stack.push(found),
                    _ => return Err(Errno::NotDir),
                }
            }
        }
    }
}

/// The non-empty components of `path`, `.` dropped except where it is the whole path.
fn components(path: &str) -> VecDeque<String> {
    let mut parts: VecDeque<String> = path
        .split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .map(String::from)
        .collect();
    if parts.is_empty() && !path.is_empty() {
        parts.push_back(String::from("."));
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::memfs::MemFs;
    use super::*;

    fn fs() -> MemFs {
        let fs = MemFs::new(alloc::boxed::Box::new(|| 0));
        let root = fs.root();
        fs.create_directory(root, "d").unwrap();
        let d = fs.lookup(root, "d").unwrap();
        fs.create_file(d, "f").unwrap();
        fs.symlink("d/f", root, "to_f").unwrap();
        fs.symlink("../..", d, "up").unwrap();
        fs.symlink("/etc", root, "abs").unwrap();
        fs.symlink("loop", root, "loop").unwrap();
        fs
    }

    #[test]
    fn resolves_inside_and_refuses_escapes() {
        let fs = fs();
        let root = fs.root();
        let d = fs.lookup(root, "d").unwrap();
        let f = fs.lookup(d, "f").unwrap();
        assert_eq!(resolve(&fs, root, "d/f", false).unwrap().node, Some(f));
        assert_eq!(resolve(&fs, root, "to_f", true).unwrap().node, Some(f));
        assert_eq!(
            resolve(&fs, root, "d/../d/./f", true).unwrap().node,
            Some(f)
        );
        assert_eq!(resolve(&fs, root, "..", true), Err(Errno::Perm));
        assert_eq!(resolve(&fs, root, "/d", true), Err(Errno::Perm));
        assert_eq!(resolve(&fs, root, "d/up/x", true), Err(Errno::Perm));
        assert_eq!(resolve(&fs, root, "abs/x", true), Err(Errno::Perm));
        assert_eq!(resolve(&fs, root, "loop", true), Err(Errno::Loop));
        assert_eq!(resolve(&fs, root, "d/f/x", true), Err(Errno::NotDir));
        assert_eq!(resolve(&fs, root, "nope/x", true), Err(Errno::NoEnt));
        let missing = resolve(&fs, root, "d/new", true).unwrap();
        assert_eq!((missing.parent, missing.node), (d, None));
        assert_eq!(resolve(&fs, root, "", true), Err(Errno::NoEnt));
    }
}
