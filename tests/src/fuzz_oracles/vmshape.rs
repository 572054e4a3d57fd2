//! The VMContext layout under arbitrary (often hostile) counts, against a model computed
//! in 64-bit arithmetic.
//!
//! [`VMShape::new`] must fail exactly when the model says the counts are inconsistent or
//! the VMContext would not fit in `u32::MAX` bytes, and otherwise give the model's layout:
//! the header first, then the arrays in [`VMArray::ALL`] order, each at the least offset
//! aligned for its element past the previous one (so in order, aligned, disjoint), all
//! inside `size`. Every `vmctx_*` accessor returns the element's offset for an index below
//! the array's count and `None` for any other index. Never a panic.

use kernel_core::wasm::env::vmshape::{ArrayLayout, HEADER_FIELDS, LayoutError, VMArray};
use kernel_core::wasm::env::{VMCounts, VMShape};
use kernel_core::wasm::indices::{
    DefinedGlobalIndex, DefinedMemoryIndex, DefinedTableIndex, DefinedTagIndex, FuncIndex,
    FuncRefIndex, GlobalIndex, MemoryIndex, OwnedMemoryIndex, TableIndex, TagIndex,
};

/// Reads `N` little-endian `u32` words from `data` (missing bytes are zero).
fn words<const N: usize>(data: &[u8]) -> [u32; N] {
    let mut words = [0u32; N];
    for (word, chunk) in words.iter_mut().zip(data.chunks(4)) {
        let mut bytes = [0u8; 4];
        bytes[..chunk.len()].copy_from_slice(chunk);
        *word = u32::from_le_bytes(bytes);
    }
    words
}

/// The counts of the input: eleven little-endian `u32` words. Each word's top two bits
/// choose how the rest is read, so that small counts (the interesting ones for order and
/// alignment) are as likely as ones near the 4 GiB limit.
fn counts(data: &[u8]) -> VMCounts {
    let words: [u32; 11] = words(data);
    let shaped = words.map(|word| match word >> 30 {
        0 => word & 0xf,
        1 => word & 0xffff,
        2 => u32::MAX - (word & 0xffff),
        _ => word,
    });
    VMCounts {
        imported_functions: shaped[0],
        imported_tables: shaped[1],
        imported_memories: shaped[2],
        imported_globals: shaped[3],
        imported_tags: shaped[4],
        defined_tables: shaped[5],
        defined_memories: shaped[6],
        owned_memories: shaped[7],
        defined_globals: shaped[8],
        defined_tags: shaped[9],
        escaped_functions: shaped[10],
    }
}

/// The layout the model expects: each array's `(offset, end)` in 64-bit arithmetic, and
/// the total size; or the error.
fn model(counts: &VMCounts) -> Result<(Vec<(u64, u64)>, u64), LayoutError> {
    if counts.owned_memories > counts.defined_memories {
        return Err(LayoutError::OwnedExceedsDefined);
    }
    let mut next = u64::from(VMShape::DYNAMIC_DATA_START);
    let mut arrays = Vec::new();
    for array in VMArray::ALL {
        let offset = next.next_multiple_of(u64::from(array.align()));
        let end = offset + u64::from(array.count(counts)) * u64::from(array.stride());
        if end > u64::from(u32::MAX) {
            return Err(LayoutError::TooLarge {
                array: array.name(),
            });
        }
        arrays.push((offset, end));
        next = end;
    }
    Ok((arrays, next))
}

/// Indices worth asking each accessor about, for an array of `count` elements.
fn probe_indices(count: u32, extra: u32) -> [u32; 8] {
    [
        0,
        1,
        count.wrapping_sub(1),
        count,
        count.saturating_add(1),
        u32::MAX,
        extra,
        extra % count.max(1),
    ]
}

/// Checks that `accessor(index)` is the element's offset when `index < layout.count`, and
/// `None` otherwise.
#[track_caller]
fn check_accessor(
    name: &str,
    shape: &VMShape,
    layout: ArrayLayout,
    extra: u32,
    accessor: impl Fn(u32) -> Option<u32>,
) {
    for index in probe_indices(layout.count, extra) {
        let got = accessor(index);
        if index < layout.count {
            let expected = u64::from(layout.offset) + u64::from(index) * u64::from(layout.stride);
            assert_eq!(
                got.map(u64::from),
                Some(expected),
                "{name}({index}) of {layout:?}"
            );
            assert!(
                expected + u64::from(layout.stride) <= u64::from(shape.size()),
                "{name}({index}) ends past the VMContext"
            );
        } else {
            assert_eq!(got, None, "{name}({index}) past the count {}", layout.count);
        }
    }
}

/// The oracle of the `vmshape` target: eleven counts (44 bytes) and an extra index.
///
/// # Panics
/// On a finding: a layout or an error that differs from the model, or an accessor that
/// answers out of range.
pub fn check(data: &[u8]) {
    let counts = counts(data);
    let [extra]: [u32; 1] = words(data.get(44..).unwrap_or_default());
    let result = VMShape::new(counts);
    let expected = model(&counts);
    let shape = match (result, expected) {
        (Err(error), Err(expected)) => {
            assert_eq!(error, expected, "{counts:?}");
            return;
        }
        (Ok(shape), Ok((arrays, size))) => {
            assert_eq!(u64::from(shape.size()), size, "{counts:?}");
            for ((array, layout), (offset, end)) in shape.arrays().zip(arrays) {
                assert_eq!(
                    (u64::from(layout.offset), u64::from(layout.end())),
                    (offset, end),
                    "{}",
                    array.name()
                );
            }
            shape
        }
        (result, expected) => panic!("{counts:?}: got {result:?}, the model says {expected:?}"),
    };

    // The header: its fields in order, all before the arrays.
    let mut previous = None;
    for (name, offset) in HEADER_FIELDS {
        assert!(previous < Some(offset), "header field {name} out of order");
        assert!(offset < VMShape::DYNAMIC_DATA_START, "header field {name}");
        previous = Some(offset);
    }

    // The arrays: in order, aligned, as little padding as alignment needs, disjoint,
    // inside the VMContext.
    assert_eq!(shape.counts(), &counts);
    let mut previous_end = VMShape::DYNAMIC_DATA_START;
    let layouts: Vec<(VMArray, ArrayLayout)> = shape.arrays().collect();
    assert_eq!(layouts.len(), VMArray::ALL.len());
    for (position, &(array, layout)) in layouts.iter().enumerate() {
        assert_eq!(
            array,
            VMArray::ALL[position],
            "arrays() out of layout order"
        );
        assert_eq!(shape.array(array), layout);
        assert_eq!(layout.count, array.count(&counts));
        assert_eq!(layout.stride, array.stride());
        assert!(array.align().is_power_of_two());
        assert_eq!(
            layout.offset % array.align(),
            0,
            "{} misaligned",
            array.name()
        );
        assert!(
            layout.offset >= previous_end && layout.offset - previous_end < array.align(),
            "{} does not follow the previous array",
            array.name()
        );
        assert!(layout.end() >= layout.offset && layout.end() <= shape.size());
        if layout.count > 0 {
            let last = layout.element(layout.count - 1);
            assert_eq!(last.map(|last| last + layout.stride), Some(layout.end()));
        }
        assert_eq!(layout.element(layout.count), None);
        assert_eq!(layout.element(u32::MAX), None);
        // Disjoint from every other non-empty array.
        for &(other, other_layout) in &layouts[position + 1..] {
            if layout.count > 0 && other_layout.count > 0 {
                assert!(
                    layout.end() <= other_layout.offset || other_layout.end() <= layout.offset,
                    "{} overlaps {}",
                    array.name(),
                    other.name()
                );
            }
        }
        previous_end = layout.end();
    }
    assert_eq!(previous_end, shape.size());

    // Every accessor, in range and out of range.
    let array = |which| shape.array(which);
    check_accessor(
        "vmctx_function_import",
        &shape,
        array(VMArray::ImportedFunctions),
        extra,
        |index| shape.vmctx_function_import(FuncIndex::from_u32(index)),
    );
    check_accessor(
        "vmctx_table_import",
        &shape,
        array(VMArray::ImportedTables),
        extra,
        |index| shape.vmctx_table_import(TableIndex::from_u32(index)),
    );
    check_accessor(
        "vmctx_memory_import",
        &shape,
        array(VMArray::ImportedMemories),
        extra,
        |index| shape.vmctx_memory_import(MemoryIndex::from_u32(index)),
    );
    check_accessor(
        "vmctx_global_import",
        &shape,
        array(VMArray::ImportedGlobals),
        extra,
        |index| shape.vmctx_global_import(GlobalIndex::from_u32(index)),
    );
    check_accessor(
        "vmctx_tag_import",
        &shape,
        array(VMArray::ImportedTags),
        extra,
        |index| shape.vmctx_tag_import(TagIndex::from_u32(index)),
    );
    check_accessor(
        "vmctx_table_definition",
        &shape,
        array(VMArray::DefinedTables),
        extra,
        |index| shape.vmctx_table_definition(DefinedTableIndex::from_u32(index)),
    );
    check_accessor(
        "vmctx_memory_pointer",
        &shape,
        array(VMArray::DefinedMemories),
        extra,
        |index| shape.vmctx_memory_pointer(DefinedMemoryIndex::from_u32(index)),
    );
    check_accessor(
        "vmctx_memory_definition",
        &shape,
        array(VMArray::OwnedMemories),
        extra,
        |index| shape.vmctx_memory_definition(OwnedMemoryIndex::from_u32(index)),
    );
    check_accessor(
        "vmctx_global_definition",
        &shape,
        array(VMArray::DefinedGlobals),
        extra,
        |index| shape.vmctx_global_definition(DefinedGlobalIndex::from_u32(index)),
    );
    check_accessor(
        "vmctx_tag_definition",
        &shape,
        array(VMArray::DefinedTags),
        extra,
        |index| shape.vmctx_tag_definition(DefinedTagIndex::from_u32(index)),
    );
    check_accessor(
        "vmctx_func_ref",
        &shape,
        array(VMArray::FuncRefs),
        extra,
        |index| shape.vmctx_func_ref(FuncRefIndex::from_u32(index)),
    );
}
