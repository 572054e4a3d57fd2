//! Where generated code is, for debuggers and profilers: a hook the platform side installs
//! (hosted: `sim`'s perf map and GDB JIT interface) and the engine calls when it publishes
//! a module's code and before it releases it.
//!
//! The hook is HAL-neutral on purpose: kernel-core only says "this module's code, with
//! these functions, names, addresses and sizes, is now executable" (or "is going away");
//! what to do with it (write a file, build an ELF image for GDB) is the installer's
//! business, and a kernel without a hook (hal-riscv) pays one atomic load per module.

use alloc::boxed::Box;
use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};

use super::code::CodeInfo;
use crate::wasm::indices::FuncIndex;

/// Told about every module whose code the engine publishes or releases. Calls may come
/// from any CPU, at the same time, while the module is being loaded or dropped: an
/// implementation synchronizes itself and must not call back into the engine.
pub trait CodeObserver: Sync {
    /// `code` was just published and may run from now on.
    fn published(&self, code: &CodeInfo);
    /// `code` is about to be released: its addresses may be reused for other code.
    fn released(&self, code: &CodeInfo);
}

/// The installed observer (a leaked box holding the trait object), or null.
static OBSERVER: AtomicPtr<&'static dyn CodeObserver> = AtomicPtr::new(ptr::null_mut());

/// Installs the code observer of this kernel; the first installation wins.
///
/// # Errors
/// `Err(())` when an observer is already installed (this one is then not).
#[expect(clippy::result_unit_err, reason = "there is only one way to fail")]
pub fn set_code_observer(observer: &'static dyn CodeObserver) -> Result<(), ()> {
    let boxed = Box::into_raw(Box::new(observer));
    match OBSERVER.compare_exchange(ptr::null_mut(), boxed, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => Ok(()),
        Err(_) => {
            // Safety: `boxed` came from `Box::into_raw` above and was not published.
            drop(unsafe { Box::from_raw(boxed) });
            Err(())
        }
    }
}

/// The installed observer, if any.
fn observer() -> Option<&'static dyn CodeObserver> {
    let installed = OBSERVER.load(Ordering::Acquire);
    // Safety: a non-null pointer is a leaked box set once by `set_code_observer` and never
    // freed or changed again.
    (!installed.is_null()).then(|| unsafe { *installed })
}

/// Tells the observer that `code` was published.
pub(crate) fn notify_published(code: &CodeInfo) {
    if let Some(observer) = observer() {
        observer.published(code);
    }
}

/// Tells the observer that `code` is about to be released.
pub(crate) fn notify_released(code: &CodeInfo) {
    if let Some(observer) = observer() {
        observer.released(code);
    }
}

/// One defined function of published code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishedFunction<'a> {
    /// The function's index in its module.
    pub index: FuncIndex,
    /// Its name from the name section (untrusted: see [`super::escape_name`]).
    pub name: Option<&'a str>,
    /// The address of its first instruction.
    pub address: usize,
    /// The length of its code in bytes.
    pub len: usize,
}

impl CodeInfo {
    /// Every defined function of the module, in address order.
    pub fn published_functions(&self) -> impl Iterator<Item = PublishedFunction<'_>> {
        self.functions
            .iter()
            .zip(0u32..)
            .map(move |(function, defined)| {
                let index =
                    FuncIndex::from_u32(self.num_imported_functions.saturating_add(defined));
                PublishedFunction {
                    index,
                    name: self.function_name(index),
                    address: self.start + function.offset as usize,
                    len: function.len as usize,
                }
            })
    }
}
