//! WASI state: the kernel-wide part ([`WasiSystem`]: environment, preopened file systems,
//! standard input, entropy, wall clock) and each process's own ([`WasiState`]: its
//! arguments and its descriptor table).

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::types::{Errno, WasiResult, fdflags, rights};
use crate::sync::SpinLock;
use crate::vfs::memfs::MemFs;
use crate::vfs::{FileSystem, NodeId};

/// The most descriptors a process may hold.
pub const MAX_DESCRIPTORS: usize = 1024;

/// What a descriptor refers to.
#[derive(Clone)]
pub enum Object {
    /// Standard input (the console, or the bytes `sim qemu` carried in the boot image).
    Stdin,
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
    /// A directory.
    Directory {
        /// Its file system.
        fs: Arc<dyn FileSystem>,
        /// The directory.
        node: NodeId,
        /// The guest name when it is a preopen.
        preopen: Option<String>,
        /// Its stack of ancestors is not kept: `..` never leaves it.
        _private: (),
    },
    /// A regular file (or another non-directory).
    File {
        /// Its file system.
        fs: Arc<dyn FileSystem>,
        /// The file.
        node: NodeId,
        /// The offset of the next `fd_read`/`fd_write`.
        position: u64,
    },
}

/// One entry of a descriptor table.
#[derive(Clone)]
pub struct Descriptor {
    /// What it refers to.
    pub object: Object,
    /// Its rights.
    pub base: u64,
    /// The rights of descriptors opened through it.
    pub inheriting: u64,
    /// Its `fdflags`.
    pub flags: u16,
}

impl Descriptor {
    /// `Ok` when the descriptor holds every right of `needed`, else `ENOTCAPABLE`.
    ///
    /// # Errors
    /// `ENOTCAPABLE`.
    pub fn require(&self, needed: u64) -> WasiResult<()> {
        if self.base & needed == needed {
            Ok(())
        } else {
            Err(Errno::NotCapable)
        }
    }
}

/// A process's WASI state.
pub struct WasiState {
    /// `argv`.
    pub args: Vec<String>,
    /// The descriptor table.
    pub fds: BTreeMap<u32, Descriptor>,
}

impl WasiState {
    /// The state of a new process named `name` (its `argv[0]`), with the standard streams
    /// and the kernel's preopens as descriptors 3, 4, ...
    #[must_use]
    pub fn new(name: &str, system: &WasiSystem) -> Self {
        let mut fds = BTreeMap::new();
        let stdio = |object| Descriptor {
            object,
            base: rights::STDIO,
            inheriting: 0,
            flags: 0,
        };
        fds.insert(0, stdio(Object::Stdin));
        fds.insert(1, stdio(Object::Stdout));
        fds.insert(2, stdio(Object::Stderr));
        for (index, (guest, fs)) in system.preopens.iter().enumerate() {
            fds.insert(
                3 + index as u32,
                Descriptor {
                    object: Object::Directory {
                        fs: fs.clone(),
                        node: fs.root(),
                        preopen: Some(guest.clone()),
                        _private: (),
                    },
                    base: rights::DIRECTORY,
                    inheriting: rights::DIRECTORY | rights::FILE,
                    flags: 0,
                },
            );
        }
        Self {
            args: alloc::vec![String::from(name)],
            fds,
        }
    }

    /// The descriptor `fd`.
    ///
    /// # Errors
    /// `EBADF`.
    pub fn get(&self, fd: u32) -> WasiResult<&Descriptor> {
        self.fds.get(&fd).ok_or(Errno::BadF)
    }

    /// The descriptor `fd`, to change.
    ///
    /// # Errors
    /// `EBADF`.
    pub fn get_mut(&mut self, fd: u32) -> WasiResult<&mut Descriptor> {
        self.fds.get_mut(&fd).ok_or(Errno::BadF)
    }

    /// Adds `descriptor` under the lowest free number.
    ///
    /// # Errors
    /// `EMFILE` past [`MAX_DESCRIPTORS`].
    pub fn insert(&mut self, descriptor: Descriptor) -> WasiResult<u32> {
        if self.fds.len() >= MAX_DESCRIPTORS {
            return Err(Errno::MFile);
        }
        let mut fd = 0u32;
        for &used in self.fds.keys() {
            if used != fd {
                break;
            }
            fd += 1;
        }
        self.fds.insert(fd, descriptor);
        Ok(fd)
    }
}

/// A small pseudo-random generator (xoshiro256**). Not cryptographic: it serves
/// `random_get` only where the HAL has no entropy source (under QEMU), seeded from the
/// boot image's seed bytes (which `sim` takes from the host's `getrandom`) and the clock.
pub struct SeededRandom {
    state: [u64; 4],
}

impl SeededRandom {
    /// A generator seeded from `seed` and `salt`.
    #[must_use]
    pub fn new(seed: &[u8], salt: u64) -> Self {
        let mut mix = salt ^ 0x9e37_79b9_7f4a_7c15;
        for chunk in seed.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            mix = splitmix(mix ^ u64::from_le_bytes(word));
        }
        let mut state = [0u64; 4];
        for slot in &mut state {
            mix = splitmix(mix);
            *slot = mix;
        }
        if state == [0; 4] {
            state[0] = 1;
        }
        Self { state }
    }

    /// The next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.state;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Fills `buf`.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Standard input's bytes read ahead (by `poll_oneoff`) or carried in the boot image.
pub struct StdinBuffer {
    /// Bytes not yet delivered.
    pub pending: Vec<u8>,
    /// The input is the boot image's: once `pending` is empty, end of file.
    pub from_image: bool,
}

/// The kernel-wide WASI state of one boot.
pub struct WasiSystem {
    /// The environment, as `KEY=VALUE` strings.
    pub env: Vec<String>,
    /// The preopened directories: guest name and file system.
    pub preopens: Vec<(String, Arc<dyn FileSystem>)>,
    /// The RAM file systems among the preopens (by preopen index), written back at
    /// shutdown under QEMU.
    pub memory_trees: Vec<(usize, Arc<MemFs>)>,
    /// Standard input read ahead.
    pub stdin: SpinLock<StdinBuffer>,
    /// The generator behind `random_get` when the HAL has no entropy source.
    pub random: SpinLock<SeededRandom>,
    /// The wall-clock time at boot (nanoseconds since the Unix epoch) and the monotonic
    /// clock then, for platforms without a wall clock.
    pub realtime_at_boot: (u64, u64),
}

impl WasiSystem {
    /// A system without environment, preopens or input (`sim wast`, tests).
    #[must_use]
    pub fn empty() -> Self {
        Self {
            env: Vec::new(),
            preopens: Vec::new(),
            memory_trees: Vec::new(),
            stdin: SpinLock::new(StdinBuffer {
                pending: Vec::new(),
                from_image: false,
            }),
            random: SpinLock::new(SeededRandom::new(&[], 0)),
            realtime_at_boot: (0, 0),
        }
    }
}

/// The flags a descriptor's `fdflags` may be changed to by `fd_fdstat_set_flags`.
pub const SETTABLE_FLAGS: u16 = fdflags::APPEND | fdflags::NONBLOCK;
