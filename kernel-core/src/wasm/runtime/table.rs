//! Tables: arrays of references that generated code indexes through a `VMTableDefinition`.

use alloc::vec::Vec;
use core::ops::Range;
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

    /// The maximum number of elements the table may grow to: its declared maximum, at
    /// most [`MAX_ELEMENTS`].
    #[must_use]
    pub fn maximum(&self) -> u64 {
        self.maximum
            .map_or(MAX_ELEMENTS, |maximum| maximum.min(MAX_ELEMENTS))
    }

    /// The `len` elements from `start`, or `None` when they are not all inside the table.
    #[must_use]
    pub fn slice(&self, start: u64, len: u64) -> Option<&[usize]> {
        self.elements.get(range(start, len)?)
    }

    /// Writes `values` from element `start`; `false`, and nothing written, when they do
    /// not all fit.
    pub fn write(&mut self, start: u64, values: &[usize]) -> bool {
        let Ok(len) = u64::try_from(values.len()) else {
            return false;
        };
        match range(start, len).and_then(|range| self.elements.get_mut(range)) {
            Some(slots) => {
                slots.copy_from_slice(values);
                true
            }
            None => false,
        }
    }

    /// Sets the `len` elements from `start` to `value`; `false`, and nothing written, when
    /// they are not all inside the table.
    pub fn fill(&mut self, start: u64, value: usize, len: u64) -> bool {
        match range(start, len).and_then(|range| self.elements.get_mut(range)) {
            Some(slots) => {
                slots.fill(value);
                true
            }
            None => false,
        }
    }

    /// Copies the `len` elements from `src` to `dst` within the table, as if through a
    /// temporary buffer (the ranges may overlap); `false`, and nothing written, when either
    /// range is not inside the table.
    pub fn copy_within(&mut self, dst: u64, src: u64, len: u64) -> bool {
        let table_len = self.elements.len();
        let (Some(source), Some(destination)) = (range(src, len), range(dst, len)) else {
            return false;
        };
        if source.end > table_len || destination.end > table_len {
            return false;
        }
        self.elements.copy_within(source, destination.start);
        true
    }

    /// Grows the table by `delta` elements set to `init`; returns the previous number of
    /// elements, or `None` past [`Table::maximum`] or when the memory cannot be had (then
    /// the table is unchanged). Generated code sees the new base and length at once.
    pub fn grow(&mut self, delta: u64, init: usize) -> Option<usize> {
        let old = self.elements.len();
        let new = u64::try_from(old)
            .ok()?
            .checked_add(delta)
            .filter(|&new| new <= self.maximum())?;
        let new = usize::try_from(new).ok()?;
        // Amortised: a table grown one element at a time does not reallocate every time.
        self.elements.try_reserve(new - old).ok()?;
        self.elements.resize(new, init);
        self.publish();
        Some(old)
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

/// The index range of `len` elements from `start`, or `None` when it does not fit a
/// `usize`.
fn range(start: u64, len: u64) -> Option<Range<usize>> {
    let end = usize::try_from(start.checked_add(len)?).ok()?;
    let start = usize::try_from(start).ok()?;
    Some(start..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(minimum: u64, maximum: Option<u64>) -> Table {
        Table::new(
            &TableType {
                element: RefType::Extern,
                minimum,
                maximum,
                table64: false,
            },
            0,
        )
        .expect("small table")
    }

    #[test]
    fn ranges_are_checked_before_anything_is_written() {
        let mut table = table(4, None);
        assert!(table.write(1, &[1, 2, 3]));
        assert!(!table.write(2, &[9, 9, 9]));
        assert!(!table.fill(3, 9, 2));
        assert!(!table.fill(u64::MAX, 9, 2));
        assert!(!table.copy_within(2, 0, 3));
        assert!(!table.copy_within(0, 2, 3));
        assert_eq!(table.slice(0, 4), Some(&[0, 1, 2, 3][..]));
        assert_eq!(table.slice(4, 0), Some(&[][..]));
        assert_eq!(table.slice(5, 0), None);
        assert!(table.fill(4, 9, 0));
        assert!(table.copy_within(4, 4, 0));
    }

    #[test]
    fn copies_within_a_table_may_overlap() {
        let mut table = table(5, None);
        assert!(table.write(0, &[1, 2, 3, 4, 5]));
        assert!(table.copy_within(1, 0, 4));
        assert_eq!(table.slice(0, 5), Some(&[1, 1, 2, 3, 4][..]));
        assert!(table.copy_within(0, 1, 4));
        assert_eq!(table.slice(0, 5), Some(&[1, 2, 3, 4, 4][..]));
    }

    #[test]
    fn growth_stops_at_the_maximum_and_republishes() {
        let mut definition = VMTableDefinition {
            base: core::ptr::null_mut(),
            current_elements: 0,
        };
        let mut table = table(1, Some(3));
        // Safety: `definition` outlives `table`'s changes in this test.
        unsafe { table.attach(NonNull::from(&mut definition)) };
        assert_eq!(table.grow(2, 7), Some(1));
        assert_eq!(table.grow(1, 7), None);
        assert_eq!(table.grow(u64::MAX, 7), None);
        assert_eq!(table.grow(0, 7), Some(3));
        assert_eq!(table.slice(0, 3), Some(&[0, 7, 7][..]));
        assert_eq!(definition.current_elements, 3);
        assert_eq!(definition.base, table.elements.as_mut_ptr().cast());
        assert_eq!(self::table(0, Some(u64::MAX)).maximum(), MAX_ELEMENTS);
    }
}
