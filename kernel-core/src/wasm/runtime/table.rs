//! Tables: arrays of references that generated code indexes through a `VMTableDefinition`.

use alloc::vec::Vec;
use core::ptr::NonNull;

use crate::wasm::env::{RefType, TableType};
use crate::wasm::vm::vmcontext::VMTableDefinition;

/// Tables larger than this many elements are refused (10 million, wasmparser's limit).
const MAX_ELEMENTS: u64 = 10_000_000;

/// A table of references. Elements are pointer-sized: a `*const VMFuncRef` for funcref
/// tables, an externref encoding for externref tables; 0 is null.
#[derive(Debug)]
pub struct Table {
    elements: Vec<usize>,
    element: RefType,
    maximum: Option<u64>,
    definition: Option<NonNull<VMTableDefinition>>,
}

impl Table {
    /// Makes a table of `ty.minimum` elements, all `initial`; `None` when too large.
    #[must_use]
    pub fn new(ty: &TableType, initial: usize) -> Option<Self> {
        if ty.minimum > MAX_ELEMENTS {
            return None;
        }
        let minimum = usize::try_from(ty.minimum).ok()?;
        let mut elements = Vec::new();
        elements.try_reserve_exact(minimum).ok()?;
        elements.resize(minimum, initial);
        Some(Self {
            elements,
            element: ty.element,
            maximum: ty.maximum,
            definition: None,
        })
    }

    /// The element type.
    #[must_use]
    pub const fn element_type(&self) -> RefType {
        self.element
    }

    /// The maximum the table type declares.
    #[must_use]
    pub const fn declared_maximum(&self) -> Option<u64> {
        self.maximum
    }

    /// The number of elements.
    #[must_use]
    pub fn len(&self) -> usize {
        self.elements.len()
    }

    /// Sets element `index`; `false` out of bounds.
    pub fn set(&mut self, index: usize, value: usize) -> bool {
        match self.elements.get_mut(index) {
            Some(slot) => {
                *slot = value;
                true
            }
            None => false,
        }
    }

    /// Connects the table to the definition generated code reads, and fills it in.
    ///
    /// # Safety
    /// `definition` must stay valid (and only be written through this table) for as long
    /// as the table changes.
    pub unsafe fn attach(&mut self, definition: NonNull<VMTableDefinition>) {
        self.definition = Some(definition);
        self.publish();
    }

    fn publish(&mut self) {
        if let Some(definition) = self.definition {
            // Safety: `attach`'s contract keeps the definition valid and writable.
            unsafe {
                (*definition.as_ptr()).base = self.elements.as_mut_ptr().cast();
                (*definition.as_ptr()).current_elements = self.elements.len();
            }
        }
    }
}
