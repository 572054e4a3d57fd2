//! A file system kept in RAM: the preopened directories under QEMU, built from the trees
//! in the boot image and written back to the host at shutdown ([`super::tree`]).

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use super::{DirEntry, Errno, FileSystem, FsResult, NodeId, NodeKind, Stat};
use crate::sync::SpinLock;

/// The largest file a [`MemFs`] holds (a write past it is `EFBIG`), so that a guest
/// cannot ask for more memory than the kernel has with one `pwrite` at a large offset.
pub const MAX_FILE_SIZE: u64 = 1 << 30;

/// The most nodes a [`MemFs`] holds (creating more is `ENOSPC`): the tree lives in the
/// kernel's heap, which a guest must not be able to exhaust by creating files.
pub const MAX_NODES: usize = 100_000;

/// The device number every [`MemFs`] reports.
const DEVICE: u64 = 1;

/// What a node holds.
#[derive(Debug, Clone)]
enum Content {
    Directory(BTreeMap<String, NodeId>),
    File(Vec<u8>),
    Symlink(String),
}

/// One node and its times.
#[derive(Debug, Clone)]
struct Node {
    content: Content,
    links: u64,
    access_ns: u64,
    modify_ns: u64,
    change_ns: u64,
}

/// The nodes, by number.
#[derive(Debug, Default)]
struct Nodes {
    nodes: BTreeMap<NodeId, Node>,
    next: NodeId,
    changed: bool,
}

/// A file system in RAM.
pub struct MemFs {
    nodes: SpinLock<Nodes>,
    /// The wall clock for timestamps (nanoseconds since the Unix epoch).
    clock: Box<dyn Fn() -> u64 + Send + Sync>,
}

/// The root's node number.
const ROOT: NodeId = 1;

impl MemFs {
    /// An empty file system whose timestamps come from `clock`.
    #[must_use]
    pub fn new(clock: Box<dyn Fn() -> u64 + Send + Sync>) -> Self {
        let now = clock();
        let mut nodes = Nodes {
            nodes: BTreeMap::new(),
            next: ROOT + 1,
            changed: false,
        };
        nodes.nodes.insert(
            ROOT,
            Node {
                content: Content::Directory(BTreeMap::new()),
                links: 2,
                access_ns: now,
                modify_ns: now,
                change_ns: now,
            },
        );
        Self {
            nodes: SpinLock::new(nodes),
            clock,
        }
    }

    /// Whether anything changed since the file system was made (or since
    /// [`MemFs::mark_unchanged`]).
    pub fn changed(&self) -> bool {
        self.nodes.lock().changed
    }

    /// Forgets earlier changes (after the initial tree was loaded).
    pub fn mark_unchanged(&self) {
        self.nodes.lock().changed = false;
    }

    /// Adds a node below `dir` as `name`.
    fn add(&self, dir: NodeId, name: &str, content: Content) -> FsResult<NodeId> {
        check_name(name)?;
        let now = (self.clock)();
        let mut nodes = self.nodes.lock();
        let is_dir = matches!(content, Content::Directory(_));
        if nodes.nodes.len() >= MAX_NODES {
            return Err(Errno::NoSpc);
        }
        let id = nodes.next;
        {
            let parent = nodes.nodes.get_mut(&dir).ok_or(Errno::NoEnt)?;
            let Content::Directory(entries) = &mut parent.content else {
                return Err(Errno::NotDir);
            };
            if entries.contains_key(name) {
                return Err(Errno::Exist);
            }
            entries.insert(String::from(name), id);
            parent.modify_ns = now;
            parent.change_ns = now;
            if is_dir {
                parent.links += 1;
            }
        }
        nodes.next += 1;
        nodes.changed = true;
        nodes.nodes.insert(
            id,
            Node {
                content,
                links: if is_dir { 2 } else { 1 },
                access_ns: now,
                modify_ns: now,
                change_ns: now,
            },
        );
        Ok(id)
    }
}

/// Refuses names that are not one component.
fn check_name(name: &str) -> FsResult<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Err(Errno::Inval);
    }
    Ok(())
}

impl Nodes {
    fn get(&self, node: NodeId) -> FsResult<&Node> {
        self.nodes.get(&node).ok_or(Errno::BadF)
    }

    fn get_mut(&mut self, node: NodeId) -> FsResult<&mut Node> {
        self.nodes.get_mut(&node).ok_or(Errno::BadF)
    }

    fn entries(&self, dir: NodeId) -> FsResult<&BTreeMap<String, NodeId>> {
        match &self.get(dir)?.content {
            Content::Directory(entries) => Ok(entries),
            _ => Err(Errno::NotDir),
        }
    }

    fn entries_mut(&mut self, dir: NodeId) -> FsResult<&mut BTreeMap<String, NodeId>> {
        match &mut self.get_mut(dir)?.content {
            Content::Directory(entries) => Ok(entries),
            _ => Err(Errno::NotDir),
        }
    }

    fn kind(&self, node: NodeId) -> FsResult<NodeKind> {
        Ok(match self.get(node)?.content {
            Content::Directory(_) => NodeKind::Directory,
            Content::File(_) => NodeKind::File,
            Content::Symlink(_) => NodeKind::Symlink,
        })
    }

    /// Drops one link of `node`; frees it when none is left.
    fn drop_link(&mut self, node: NodeId, now: u64) {
        if let Some(entry) = self.nodes.get_mut(&node) {
            entry.links = entry.links.saturating_sub(1);
            entry.change_ns = now;
            let dir = matches!(entry.content, Content::Directory(_));
            if entry.links == 0 || (dir && entry.links <= 1) {
                self.nodes.remove(&node);
            }
        }
    }

    fn touch_dir(&mut self, dir: NodeId, now: u64) {
        if let Some(entry) = self.nodes.get_mut(&dir) {
            entry.modify_ns = now;
            entry.change_ns = now;
        }
    }

    /// Whether `ancestor` is `node` or one of the directories above it.
    fn contains(&self, ancestor: NodeId, node: NodeId) -> bool {
        if ancestor == node {
            return true;
        }
        let Ok(entries) = self.entries(ancestor) else {
            return false;
        };
        entries
            .values()
            .any(|&child| self.kind(child) == Ok(NodeKind::Directory) && self.contains(child, node))
    }
}

impl FileSystem for MemFs {
    fn root(&self) -> NodeId {
        ROOT
    }

    fn lookup(&self, dir: NodeId, name: &str) -> FsResult<NodeId> {
        let nodes = self.nodes.lock();
        nodes.entries(dir)?.get(name).copied().ok_or(Errno::NoEnt)
    }

    fn stat(&self, node: NodeId) -> FsResult<Stat> {
        let nodes = self.nodes.lock();
        let entry = nodes.get(node)?;
        let size = match &entry.content {
            Content::Directory(entries) => entries.len() as u64,
            Content::File(data) => data.len() as u64,
            Content::Symlink(target) => target.len() as u64,
        };
        Ok(Stat {
            device: DEVICE,
            inode: node,
            kind: nodes.kind(node)?,
            links: entry.links,
            size,
            access_ns: entry.access_ns,
            modify_ns: entry.modify_ns,
            change_ns: entry.change_ns,
        })
    }

    fn create_file(&self, dir: NodeId, name: &str) -> FsResult<NodeId> {
        self.add(dir, name, Content::File(Vec::new()))
    }

    fn create_directory(&self, dir: NodeId, name: &str) -> FsResult<()> {
        self.add(dir, name, Content::Directory(BTreeMap::new()))
            .map(drop)
    }

    fn read_at(&self, node: NodeId, offset: u64, buf: &mut [u8]) -> FsResult<usize> {
        let nodes = self.nodes.lock();
        match &nodes.get(node)?.content {
            Content::File(data) => {
                let start = usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(data.len());
                let len = buf.len().min(data.len() - start);
                buf[..len].copy_from_slice(&data[start..start + len]);
                Ok(len)
            }
            Content::Directory(_) => Err(Errno::IsDir),
            Content::Symlink(_) => Err(Errno::Inval),
        }
    }

    fn write_at(&self, node: NodeId, offset: u64, data: &[u8]) -> FsResult<usize> {
        let now = (self.clock)();
        let end = offset
            .checked_add(data.len() as u64)
            .filter(|end| *end <= MAX_FILE_SIZE)
            .ok_or(Errno::FBig)?;
        let mut nodes = self.nodes.lock();
        nodes.changed = true;
        let entry = nodes.get_mut(node)?;
        let Content::File(bytes) = &mut entry.content else {
            return Err(Errno::IsDir);
        };
        // Both below MAX_FILE_SIZE, which fits usize on every target.
        let (start, end) = (offset as usize, end as usize);
        if bytes.len() < end {
            bytes
                .try_reserve(end - bytes.len())
                .map_err(|_| Errno::NoSpc)?;
            bytes.resize(end, 0);
        }
        bytes[start..end].copy_from_slice(data);
        entry.modify_ns = now;
        entry.change_ns = now;
        Ok(data.len())
    }

    fn set_len(&self, node: NodeId, len: u64) -> FsResult<()> {
        if len > MAX_FILE_SIZE {
            return Err(Errno::FBig);
        }
        let now = (self.clock)();
        let mut nodes = self.nodes.lock();
        nodes.changed = true;
        let entry = nodes.get_mut(node)?;
        let Content::File(bytes) = &mut entry.content else {
            return Err(Errno::IsDir);
        };
        let len = len as usize;
        if len > bytes.len() {
            bytes
                .try_reserve(len - bytes.len())
                .map_err(|_| Errno::NoSpc)?;
        }
        bytes.resize(len, 0);
        entry.modify_ns = now;
        entry.change_ns = now;
        Ok(())
    }

    fn read_directory(&self, dir: NodeId) -> FsResult<Vec<DirEntry>> {
        let nodes = self.nodes.lock();
        nodes
            .entries(dir)?
            .iter()
            .map(|(name, &inode)| {
                Ok(DirEntry {
                    name: name.clone(),
                    inode,
                    kind: nodes.kind(inode)?,
                })
            })
            .collect()
    }

    fn set_times(
        &self,
        node: NodeId,
        access_ns: Option<u64>,
        modify_ns: Option<u64>,
    ) -> FsResult<()> {
        let now = (self.clock)();
        let mut nodes = self.nodes.lock();
        nodes.changed = true;
        let entry = nodes.get_mut(node)?;
        if let Some(access) = access_ns {
            entry.access_ns = access;
        }
        if let Some(modify) = modify_ns {
            entry.modify_ns = modify;
        }
        entry.change_ns = now;
        Ok(())
    }

    fn unlink(&self, dir: NodeId, name: &str) -> FsResult<()> {
        let now = (self.clock)();
        let mut nodes = self.nodes.lock();
        let node = *nodes.entries(dir)?.get(name).ok_or(Errno::NoEnt)?;
        if nodes.kind(node)? == NodeKind::Directory {
            return Err(Errno::IsDir);
        }
        nodes.entries_mut(dir)?.remove(name);
        nodes.touch_dir(dir, now);
        nodes.drop_link(node, now);
        nodes.changed = true;
        Ok(())
    }

    fn remove_directory(&self, dir: NodeId, name: &str) -> FsResult<()> {
        let now = (self.clock)();
        let mut nodes = self.nodes.lock();
        let node = *nodes.entries(dir)?.get(name).ok_or(Errno::NoEnt)?;
        if !nodes.entries(node)?.is_empty() {
            return Err(Errno::NotEmpty);
        }
        nodes.entries_mut(dir)?.remove(name);
        nodes.touch_dir(dir, now);
        if let Some(parent) = nodes.nodes.get_mut(&dir) {
            parent.links = parent.links.saturating_sub(1);
        }
        nodes.nodes.remove(&node);
        nodes.changed = true;
        Ok(())
    }

    fn rename(&self, dir: NodeId, name: &str, new_dir: NodeId, new_name: &str) -> FsResult<()> {
        check_name(new_name)?;
        let now = (self.clock)();
        let mut nodes = self.nodes.lock();
        let node = *nodes.entries(dir)?.get(name).ok_or(Errno::NoEnt)?;
        nodes.entries(new_dir)?;
        let kind = nodes.kind(node)?;
        if kind == NodeKind::Directory && nodes.contains(node, new_dir) {
            return Err(Errno::Inval);
        }
        if let Some(&existing) = nodes.entries(new_dir)?.get(new_name) {
            if existing == node {
                return Ok(());
            }
            match (kind, nodes.kind(existing)?) {
                (NodeKind::Directory, NodeKind::Directory) => {
                    if !nodes.entries(existing)?.is_empty() {
                        return Err(Errno::NotEmpty);
                    }
                    nodes.nodes.remove(&existing);
                    if let Some(parent) = nodes.nodes.get_mut(&new_dir) {
                        parent.links = parent.links.saturating_sub(1);
                    }
                }
                (NodeKind::Directory, _) => return Err(Errno::NotDir),
                (_, NodeKind::Directory) => return Err(Errno::IsDir),
                _ => nodes.drop_link(existing, now),
            }
        }
        nodes.entries_mut(dir)?.remove(name);
        nodes
            .entries_mut(new_dir)?
            .insert(String::from(new_name), node);
        if kind == NodeKind::Directory && dir != new_dir {
            if let Some(parent) = nodes.nodes.get_mut(&dir) {
                parent.links = parent.links.saturating_sub(1);
            }
            if let Some(parent) = nodes.nodes.get_mut(&new_dir) {
                parent.links += 1;
            }
        }
        nodes.touch_dir(dir, now);
        nodes.touch_dir(new_dir, now);
        if let Some(entry) = nodes.nodes.get_mut(&node) {
            entry.change_ns = now;
        }
        nodes.changed = true;
        Ok(())
    }

    fn link(&self, dir: NodeId, name: &str, new_dir: NodeId, new_name: &str) -> FsResult<()> {
        check_name(new_name)?;
        let now = (self.clock)();
        let mut nodes = self.nodes.lock();
        let node = *nodes.entries(dir)?.get(name).ok_or(Errno::NoEnt)?;
        if nodes.kind(node)? == NodeKind::Directory {
            return Err(Errno::Perm);
        }
        if nodes.entries(new_dir)?.contains_key(new_name) {
            return Err(Errno::Exist);
        }
        nodes
            .entries_mut(new_dir)?
            .insert(String::from(new_name), node);
        nodes.touch_dir(new_dir, now);
        let entry = nodes.get_mut(node)?;
        entry.links += 1;
        entry.change_ns = now;
        nodes.changed = true;
        Ok(())
    }

    fn symlink(&self, target: &str, dir: NodeId, name: &str) -> FsResult<()> {
        self.add(dir, name, Content::Symlink(String::from(target)))
            .map(drop)
    }

    fn read_link(&self, node: NodeId) -> FsResult<String> {
        match &self.nodes.lock().get(node)?.content {
            Content::Symlink(target) => Ok(target.clone()),
            _ => Err(Errno::Inval),
        }
    }

    fn sync(&self, node: NodeId) -> FsResult<()> {
        self.nodes.lock().get(node).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fs() -> MemFs {
        MemFs::new(Box::new(|| 42))
    }

    #[test]
    fn files_grow_shrink_and_keep_their_links() {
        let fs = fs();
        let root = fs.root();
        let file = fs.create_file(root, "f").unwrap();
        assert_eq!(fs.create_file(root, "f"), Err(Errno::Exist));
        assert_eq!(fs.write_at(file, 3, b"abc").unwrap(), 3);
        let mut buf = [9u8; 8];
        assert_eq!(fs.read_at(file, 0, &mut buf).unwrap(), 6);
        assert_eq!(&buf[..6], b"\0\0\0abc");
        assert_eq!(fs.write_at(file, MAX_FILE_SIZE, b"x"), Err(Errno::FBig));
        fs.set_len(file, 1).unwrap();
        assert_eq!(fs.stat(file).unwrap().size, 1);
        fs.link(root, "f", root, "g").unwrap();
        assert_eq!(fs.stat(file).unwrap().links, 2);
        fs.unlink(root, "f").unwrap();
        assert_eq!(fs.lookup(root, "g").unwrap(), file);
        assert_eq!(fs.stat(file).unwrap().links, 1);
        assert!(fs.changed());
    }

    #[test]
    fn directories_follow_posix_rules() {
        let fs = fs();
        let root = fs.root();
        fs.create_directory(root, "a").unwrap();
        let a = fs.lookup(root, "a").unwrap();
        fs.create_directory(a, "b").unwrap();
        let b = fs.lookup(a, "b").unwrap();
        assert_eq!(fs.remove_directory(root, "a"), Err(Errno::NotEmpty));
        assert_eq!(fs.unlink(root, "a"), Err(Errno::IsDir));
        // A directory cannot move below itself.
        assert_eq!(fs.rename(root, "a", b, "a"), Err(Errno::Inval));
        fs.create_file(root, "file").unwrap();
        assert_eq!(fs.rename(root, "file", a, "b"), Err(Errno::IsDir));
        assert_eq!(fs.rename(a, "b", root, "file"), Err(Errno::NotDir));
        fs.rename(a, "b", root, "c").unwrap();
        assert_eq!(fs.lookup(root, "c").unwrap(), b);
        fs.remove_directory(root, "a").unwrap();
        let names: Vec<String> = fs
            .read_directory(root)
            .unwrap()
            .into_iter()
            .map(|entry| entry.name)
            .collect();
        assert_eq!(names, ["c", "file"]);
        assert_eq!(fs.create_directory(root, ".."), Err(Errno::Inval));
    }
}
