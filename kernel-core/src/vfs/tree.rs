//! A directory tree as bytes: how `sim qemu` carries a `--dir` into the boot image, and how
//! the kernel hands the changed tree back at shutdown.
//!
//! ```text
//! tree  := count:u32 entry*               (u32, u64: little-endian)
//! entry := path:bytes kind:u8 data:bytes modify_ns:u64
//! bytes := len:u32 byte*
//! ```
//!
//! `path` is relative to the tree's root, components joined by `/`, a directory before
//! what it holds. `kind` is 0 for a directory, 1 for a regular file (`data` its contents),
//! 2 for a symbolic link (`data` its target). Decoding never panics and refuses paths with
//! empty, `.` or `..` components.

use alloc::string::String;
use alloc::vec::Vec;

use super::{Errno, FileSystem, FsResult, NodeId, NodeKind};

/// The byte that starts a console line of a tree written back at shutdown (ASCII "group
/// separator").
pub const TREE_PREFIX: u8 = 0x1d;

/// The bytes of a tree carried by one console line.
const FRAME_CHUNK: usize = 2048;

/// Writes tree `index`'s bytes to the console as lines `<TREE_PREFIX>tree <index>
/// <hex>` and a last line `<TREE_PREFIX>tree <index> end`, which `sim qemu` collects,
/// decodes and applies to the host directory.
pub fn write_framed<C: crate::hal::Console + ?Sized>(console: &C, index: usize, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for chunk in bytes.chunks(FRAME_CHUNK) {
        let mut line = alloc::format!("{}tree {index} ", char::from(TREE_PREFIX)).into_bytes();
        for byte in chunk {
            line.push(HEX[usize::from(byte >> 4)]);
            line.push(HEX[usize::from(byte & 0xf)]);
        }
        line.push(b'\n');
        console.write_bytes(&line);
    }
    let end = alloc::format!("{}tree {index} end\n", char::from(TREE_PREFIX));
    console.write_bytes(end.as_bytes());
}

/// The longest path [`dump`] writes (as the host's `PATH_MAX`): a tree nested deeper
/// cannot be written back.
pub const MAX_PATH: usize = 4096;

/// One entry of a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEntry {
    /// The path below the root.
    pub path: String,
    /// Directory, file or symbolic link.
    pub kind: NodeKind,
    /// A file's contents or a link's target.
    pub data: Vec<u8>,
    /// The modification time, nanoseconds since the Unix epoch.
    pub modify_ns: u64,
}

/// Encodes `entries`.
#[must_use]
pub fn encode(entries: &[TreeEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for entry in entries {
        out.extend_from_slice(&(entry.path.len() as u32).to_le_bytes());
        out.extend_from_slice(entry.path.as_bytes());
        out.push(match entry.kind {
            NodeKind::Directory => 0,
            NodeKind::Symlink => 2,
            NodeKind::File | NodeKind::Other => 1,
        });
        out.extend_from_slice(&(entry.data.len() as u32).to_le_bytes());
        out.extend_from_slice(&entry.data);
        out.extend_from_slice(&entry.modify_ns.to_le_bytes());
    }
    out
}

/// Decodes a tree.
///
/// # Errors
/// A message when the bytes are not a tree.
pub fn decode(bytes: &[u8]) -> Result<Vec<TreeEntry>, &'static str> {
    let mut input = Input(bytes);
    let count = input.u32()?;
    let mut entries = Vec::new();
    for _ in 0..count {
        let len = input.u32()?;
        let path = core::str::from_utf8(input.take(len)?).map_err(|_| "a path is not UTF-8")?;
        if path
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
        {
            return Err("a path with an empty, `.` or `..` component");
        }
        let kind = match input.take(1)?[0] {
            0 => NodeKind::Directory,
            1 => NodeKind::File,
            2 => NodeKind::Symlink,
            _ => return Err("an unknown entry kind"),
        };
        let len = input.u32()?;
        let data = input.take(len)?.to_vec();
        let mut modify = [0u8; 8];
        modify.copy_from_slice(input.take(8)?);
        entries.push(TreeEntry {
            path: String::from(path),
            kind,
            data,
            modify_ns: u64::from_le_bytes(modify),
        });
    }
    Ok(entries)
}

/// The decoder's input.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], &'static str> {
        if self.0.len() < len {
            return Err("truncated tree");
        }
        let (head, tail) = self.0.split_at(len);
        self.0 = tail;
        Ok(head)
    }

    fn u32(&mut self) -> Result<usize, &'static str> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }
}

/// Fills the (empty) file system `fs` with `entries`.
///
/// # Errors
/// The first error of the file system (a parent missing, a name twice).
pub fn load(fs: &dyn FileSystem, entries: &[TreeEntry]) -> FsResult<()> {
    for entry in entries {
        let (parent_path, name) = match entry.path.rsplit_once('/') {
            Some((parent, name)) => (Some(parent), name),
            None => (None, entry.path.as_str()),
        };
        let mut parent = fs.root();
        for part in parent_path.into_iter().flat_map(|path| path.split('/')) {
            parent = fs.lookup(parent, part)?;
        }
        match entry.kind {
            NodeKind::Directory => fs.create_directory(parent, name)?,
            NodeKind::Symlink => {
                let target = core::str::from_utf8(&entry.data).map_err(|_| Errno::IlSeq)?;
                fs.symlink(target, parent, name)?;
            }
            NodeKind::File | NodeKind::Other => {
                let node = fs.create_file(parent, name)?;
                fs.write_at(node, 0, &entry.data)?;
            }
        }
    }
    // Times last: creating an entry changes its directory's modification time.
    for entry in entries {
        let mut node = fs.root();
        for part in entry.path.split('/') {
            node = fs.lookup(node, part)?;
        }
        fs.set_times(node, Some(entry.modify_ns), Some(entry.modify_ns))?;
    }
    Ok(())
}

/// Every entry of `fs`, directories before what they hold (a walk with a stack of its
/// own: a guest may nest directories deeper than a kernel stack).
///
/// # Errors
/// The first error of the file system; `ENAMETOOLONG` past [`MAX_PATH`].
pub fn dump(fs: &dyn FileSystem) -> FsResult<Vec<TreeEntry>> {
    let mut entries = Vec::new();
    let mut pending: Vec<(NodeId, String)> = alloc::vec![(fs.root(), String::new())];
    while let Some((dir, prefix)) = pending.pop() {
        let mut subdirectories = Vec::new();
        let mut here = Vec::new();
        for child in fs.read_directory(dir)? {
            let path = if prefix.is_empty() {
                child.name.clone()
            } else {
                alloc::format!("{prefix}/{}", child.name)
            };
            if path.len() > MAX_PATH {
                return Err(Errno::NameTooLong);
            }
            let node = fs.lookup(dir, &child.name)?;
            let stat = fs.stat(node)?;
            let data = match stat.kind {
                NodeKind::Directory | NodeKind::Other => Vec::new(),
                NodeKind::Symlink => fs.read_link(node)?.into_bytes(),
                NodeKind::File => {
                    let mut data = alloc::vec![0u8; usize::try_from(stat.size).unwrap_or(0)];
                    let read = fs.read_at(node, 0, &mut data)?;
                    data.truncate(read);
                    data
                }
            };
            if stat.kind == NodeKind::Directory {
                subdirectories.push((node, path.clone()));
            }
            here.push(TreeEntry {
                path,
                kind: stat.kind,
                data,
                modify_ns: stat.modify_ns,
            });
        }
        entries.extend(here);
        // Popped last first: reversed, each directory's subdirectories go in order.
        pending.extend(subdirectories.into_iter().rev());
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::super::memfs::MemFs;
    use super::*;

    #[test]
    fn deep_trees_need_no_deep_stack() {
        // Quadratic in the depth (every path is written whole): a shallower tree under
        // Miri, which interprets each step.
        let depth = if cfg!(miri) { 40 } else { 1_000 };
        let fs = MemFs::new(alloc::boxed::Box::new(|| 1));
        let mut dir = fs.root();
        for _ in 0..depth {
            fs.create_directory(dir, "d").unwrap();
            dir = fs.lookup(dir, "d").unwrap();
        }
        let entries = dump(&fs).unwrap();
        assert_eq!(entries.len(), depth);
        // Moving the top below the bottom is refused, after a search as deep as the tree.
        assert_eq!(fs.rename(fs.root(), "d", dir, "x"), Err(Errno::Inval));
        let copy = MemFs::new(alloc::boxed::Box::new(|| 1));
        load(&copy, &entries).unwrap();
    }

    #[test]
    fn round_trips_through_bytes_and_a_memfs() {
        let entries = alloc::vec![
            TreeEntry {
                path: "d".into(),
                kind: NodeKind::Directory,
                data: Vec::new(),
                modify_ns: 5
            },
            TreeEntry {
                path: "d/f".into(),
                kind: NodeKind::File,
                data: b"hi".to_vec(),
                modify_ns: 6
            },
            TreeEntry {
                path: "l".into(),
                kind: NodeKind::Symlink,
                data: b"d/f".to_vec(),
                modify_ns: 7
            },
        ];
        let bytes = encode(&entries);
        assert_eq!(decode(&bytes).unwrap(), entries);
        let fs = MemFs::new(alloc::boxed::Box::new(|| 1));
        load(&fs, &entries).unwrap();
        let mut dumped = dump(&fs).unwrap();
        dumped.sort_by(|a, b| a.path.cmp(&b.path));
        assert_eq!(dumped, entries);
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len]).is_err());
        }
    }
}
