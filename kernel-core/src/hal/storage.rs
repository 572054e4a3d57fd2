//! Storage, entropy and the wall clock: what WASI programs need of the machine beyond the
//! console.

use alloc::sync::Arc;

use crate::vfs::{Errno, FileSystem};

/// Directories of the host that kernel-core may serve as file systems (hosted: the
/// `--dir` directories of `sim`, like User-Mode Linux's hostfs; changes go straight to
/// the host).
pub trait Storage {
    /// Opens the host directory `path` as a file system. Its implementation must keep
    /// every operation inside that directory: it is given single names, never paths, and
    /// must not follow symbolic links itself (like `openat` with `O_NOFOLLOW` on one
    /// component relative to a directory descriptor).
    ///
    /// # Errors
    /// Why the directory cannot be opened; `ENOTSUP` on a platform without host storage
    /// (under QEMU the trees come in the boot image instead).
    fn open_directory(&self, path: &str) -> Result<Arc<dyn FileSystem>, Errno>;
}

/// A source of random bytes.
pub trait Entropy {
    /// Fills `buf` with random bytes from the platform (like `getrandom(2)`) and returns
    /// `true`; returns `false`, leaving `buf` as it was, on a platform without a source
    /// (kernel-core then uses its seeded, non-cryptographic generator).
    fn fill_random(&self, buf: &mut [u8]) -> bool;
}

/// The wall clock.
pub trait WallClock {
    /// Nanoseconds since the Unix epoch (like `clock_gettime(CLOCK_REALTIME)`), or `None`
    /// on a platform without a wall clock (kernel-core then adds the monotonic time since
    /// boot to the time the boot image carries).
    fn realtime_ns(&self) -> Option<u64>;
}
