//! Per-thread alternate signal stacks, so that a thread that exhausted its own stack still
//! runs the trap handler.
//!
//! A thread gets one the first time it calls [`prepare_current_thread`], unless it already
//! has one at least [`size`] bytes large (the Rust standard library gives every thread a
//! small one, a few KiB, for its stack-overflow message: that one is replaced, not freed,
//! since the standard library frees it itself). Ours is an anonymous mapping with a
//! `PROT_NONE` guard page below it, so that overflowing the alternate stack faults instead
//! of writing over a neighbouring mapping. A thread-local destructor disables and unmaps it
//! when the thread exits.

use core::cell::Cell;
use core::ffi::c_void;

/// The smallest alternate stack we accept, before accounting for the CPU's signal frame.
const MIN_SIZE: usize = 64 * 1024;

/// The alternate stack this thread installed, if any.
struct AltStack {
    /// Whether [`prepare_current_thread`] already ran on this thread.
    prepared: Cell<bool>,
    /// The start of our mapping (the guard page), or null when we mapped nothing.
    mapping: Cell<*mut c_void>,
    /// The length of our mapping, guard page included.
    mapping_len: Cell<usize>,
}

impl Drop for AltStack {
    fn drop(&mut self) {
        let mapping = self.mapping.get();
        if mapping.is_null() {
            return;
        }
        let stack = mapping.wrapping_byte_add(page_size());
        // Disable the alternate stack first if it is still ours (the standard library may
        // already have disabled it when its own per-thread guard was dropped), so that no
        // signal is delivered on memory about to be unmapped.
        let current = current_altstack();
        if let Some(current) = current
            && current.ss_flags & libc::SS_DISABLE == 0
            && current.ss_sp == stack
        {
            let disable = libc::stack_t {
                ss_sp: core::ptr::null_mut(),
                ss_flags: libc::SS_DISABLE,
                ss_size: 0,
            };
            // Safety: `disable` is a valid `stack_t`; disabling the alternate stack of the
            // current thread, which is not running on it (this is a destructor, not a
            // signal handler), cannot affect any other memory.
            let status = unsafe { libc::sigaltstack(&raw const disable, core::ptr::null_mut()) };
            if status != 0 {
                // Still installed: leaking the mapping is better than unmapping a stack
                // the kernel may still deliver signals on.
                return;
            }
        }
        // Safety: `mapping`/`mapping_len` describe exactly the mapping made in
        // `install_new`, which nothing else refers to: the thread no longer uses it as its
        // alternate stack (checked above) and it is exiting.
        unsafe { libc::munmap(mapping, self.mapping_len.get()) };
    }
}

thread_local! {
    static ALT_STACK: AltStack = const {
        AltStack {
            prepared: Cell::new(false),
            mapping: Cell::new(core::ptr::null_mut()),
            mapping_len: Cell::new(0),
        }
    };
}

/// Gives the calling thread an alternate signal stack of at least [`size`] bytes, once.
///
/// # Panics
///
/// When the stack cannot be mapped or installed (the host is out of memory).
#[inline(never)]
pub(super) fn prepare_current_thread() {
    // A thread whose thread-locals are being destroyed keeps whatever stack it has.
    let _ = ALT_STACK.try_with(|alt| {
        if alt.prepared.replace(true) {
            return;
        }
        let wanted = size();
        if let Some(current) = current_altstack() {
            let enabled = current.ss_flags & libc::SS_DISABLE == 0;
            let in_use = current.ss_flags & libc::SS_ONSTACK != 0;
            if (enabled && current.ss_size >= wanted) || in_use {
                // Big enough already, or we are running on it and cannot change it.
                return;
            }
        }
        install_new(alt, wanted);
    });
}

/// The size of the alternate stacks we make: [`MIN_SIZE`] plus what the kernel says the
/// CPU's signal frame needs (`AT_MINSIGSTKSZ`, several KiB with AVX-512 or AMX state),
/// rounded up to pages.
pub(super) fn size() -> usize {
    // Safety: `getauxval` only reads the auxiliary vector; it returns 0 for an unknown
    // entry.
    let frame = unsafe { libc::getauxval(libc::AT_MINSIGSTKSZ) };
    let frame = usize::try_from(frame).unwrap_or(0).max(libc::MINSIGSTKSZ);
    MIN_SIZE.saturating_add(frame).next_multiple_of(page_size())
}

fn page_size() -> usize {
    rustix::param::page_size()
}

/// The calling thread's alternate stack settings, or `None` if they cannot be read.
fn current_altstack() -> Option<libc::stack_t> {
    let mut current = libc::stack_t {
        ss_sp: core::ptr::null_mut(),
        ss_flags: 0,
        ss_size: 0,
    };
    // Safety: a null new stack only queries; `current` is a valid `stack_t` to write.
    let status = unsafe { libc::sigaltstack(core::ptr::null(), &raw mut current) };
    (status == 0).then_some(current)
}

/// Maps a guard page and `size` bytes of stack, and makes them the thread's alternate
/// signal stack.
fn install_new(alt: &AltStack, size: usize) {
    let guard = page_size();
    let len = size + guard;
    // Safety: a fresh private anonymous mapping at an address of the kernel's choosing
    // cannot alias any existing Rust object.
    let mapping = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
            -1,
            0,
        )
    };
    assert!(
        mapping != libc::MAP_FAILED,
        "cannot map an alternate signal stack: {}",
        std::io::Error::last_os_error()
    );
    // Safety: the first page of the mapping just made; nothing uses it.
    let mut status = unsafe { libc::mprotect(mapping, guard, libc::PROT_NONE) };
    let stack = libc::stack_t {
        ss_sp: mapping.wrapping_byte_add(guard),
        ss_flags: 0,
        ss_size: size,
    };
    if status == 0 {
        // Safety: `stack` describes `size` writable bytes of our own mapping, which stays
        // mapped until the thread-local destructor has disabled it again.
        status = unsafe { libc::sigaltstack(&raw const stack, core::ptr::null_mut()) };
    }
    if status != 0 {
        let error = std::io::Error::last_os_error();
        // Safety: the mapping made above, never installed as a stack.
        unsafe { libc::munmap(mapping, len) };
        panic!("cannot install an alternate signal stack: {error}");
    }
    alt.mapping.set(mapping);
    alt.mapping_len.set(len);
}
