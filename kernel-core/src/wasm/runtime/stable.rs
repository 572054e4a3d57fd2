//! A heap allocation with a stable address that raw pointers may alias.
//!
//! The runtime keeps many objects that generated code, builtins and other objects point at
//! (the store itself, instance states and their VMContexts, host functions, the host's
//! memory, table and global definitions). A `Box` would not do: moving a `Box` (into a
//! vector, out of a function) asserts that it is the only pointer to its contents, which
//! invalidates every raw pointer made from it before (Stacked and Tree Borrows treat a
//! `Box` like a `&mut`). [`StableBox`] keeps the pointer `Box::leak` returned: every
//! raw pointer handed out ([`StableBox::as_ptr`]) shares its provenance, moving the
//! `StableBox` asserts nothing, and references are made only for as long as a borrow of the
//! `StableBox` lasts ([`Deref`], [`DerefMut`]).

use alloc::boxed::Box;
use core::fmt;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;

/// An owned heap allocation whose address never changes and which raw pointers from
/// [`StableBox::as_ptr`] may alias (see the module documentation).
///
/// Whoever dereferences such a raw pointer must make sure that no reference made through
/// [`Deref`] or [`DerefMut`] is in use at the same time in a conflicting way (a `&mut`
/// alongside any other access, or a write alongside a `&`).
pub(crate) struct StableBox<T: ?Sized> {
    pointer: NonNull<T>,
    /// The `StableBox` owns a `T` (for the drop check and auto traits).
    owns: PhantomData<T>,
}

impl<T> StableBox<T> {
    /// Moves `value` to the heap.
    pub(crate) fn new(value: T) -> Self {
        Self::from_box(Box::new(value))
    }
}

impl<T: ?Sized> StableBox<T> {
    /// Takes over the allocation of `value`.
    pub(crate) fn from_box(value: Box<T>) -> Self {
        Self {
            pointer: NonNull::from(Box::leak(value)),
            owns: PhantomData,
        }
    }

    /// The address of the contents, with the allocation's own provenance: valid until the
    /// `StableBox` drops, as long as no conflicting reference is in use.
    pub(crate) const fn as_ptr(&self) -> *mut T {
        self.pointer.as_ptr()
    }
}

impl<T: ?Sized> Deref for StableBox<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // Safety: the allocation lives until `self` drops, which the borrow of `self`
        // prevents; raw pointers from `as_ptr` are only written while no reference from
        // here is in use (the contract of the type).
        unsafe { self.pointer.as_ref() }
    }
}

impl<T: ?Sized> DerefMut for StableBox<T> {
    fn deref_mut(&mut self) -> &mut T {
        // Safety: as for `deref`; raw pointers from `as_ptr` are not used while the
        // returned reference is (the contract of the type).
        unsafe { self.pointer.as_mut() }
    }
}

impl<T: ?Sized> Drop for StableBox<T> {
    fn drop(&mut self) {
        // Safety: the pointer came from `Box::leak` and is given back once; the owner is
        // going away, so no reference from `deref` remains, and raw pointers into the
        // allocation are not used after their owner dropped (the contract of the type).
        drop(unsafe { Box::from_raw(self.pointer.as_ptr()) });
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for StableBox<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_pointers_stay_valid_when_the_box_moves() {
        let boxed = StableBox::new(7u64);
        let pointer = boxed.as_ptr();
        let mut moved = alloc::vec![boxed];
        moved.reserve(100);
        // Safety: the allocation is alive (owned by `moved`) and no reference to it is in
        // use.
        unsafe { *pointer += 1 };
        assert_eq!(*moved[0], 8);
        *moved[0] += 1;
        // Safety: as above; the `&mut` of the line before is no longer used.
        assert_eq!(unsafe { *pointer }, 9);
    }
}
