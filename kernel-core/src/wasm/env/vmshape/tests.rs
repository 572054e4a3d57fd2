//! Tests of the VMContext layout: offsets against the real structures, and properties over
//! arbitrary (including hostile) counts against a reference model in 128-bit arithmetic.

use core::mem::{offset_of, size_of};

use proptest::prelude::*;

use super::*;
use crate::wasm::vm::vmcontext::VMContextHeader;

#[test]
fn header_offsets_match_the_structure_and_the_contract() {
    let expected = [
        ("magic", offset_of!(VMContextHeader, magic), 0),
        (
            "store_context",
            offset_of!(VMContextHeader, store_context),
            8,
        ),
        (
            "builtin_functions",
            offset_of!(VMContextHeader, builtin_functions),
            16,
        ),
        ("callee", offset_of!(VMContextHeader, callee), 24),
        ("epoch_ptr", offset_of!(VMContextHeader, epoch_ptr), 32),
        (
            "gc_heap_base",
            offset_of!(VMContextHeader, gc_heap_base),
            40,
        ),
        (
            "gc_heap_bound",
            offset_of!(VMContextHeader, gc_heap_bound),
            48,
        ),
        (
            "gc_heap_data",
            offset_of!(VMContextHeader, gc_heap_data),
            56,
        ),
        ("type_ids", offset_of!(VMContextHeader, type_ids), 64),
    ];
    assert_eq!(HEADER_FIELDS.len(), expected.len());
    for ((name, offset), (expected_name, real, documented)) in HEADER_FIELDS.iter().zip(expected) {
        assert_eq!(*name, expected_name);
        assert_eq!(*offset as usize, real, "{name}");
        assert_eq!(*offset, documented, "{name}");
    }
    assert_eq!(
        VMShape::DYNAMIC_DATA_START as usize,
        size_of::<VMContextHeader>()
    );
    assert_eq!(VMShape::DYNAMIC_DATA_START, 72);
}

#[test]
fn strides_are_the_structure_sizes() {
    let expected = [
        (VMArray::ImportedMemories, size_of::<VMMemoryImport>(), 16),
        (
            VMArray::DefinedMemories,
            size_of::<*mut VMMemoryDefinition>(),
            8,
        ),
        (VMArray::OwnedMemories, size_of::<VMMemoryDefinition>(), 16),
        (
            VMArray::ImportedFunctions,
            size_of::<VMFunctionImport>(),
            24,
        ),
        (VMArray::ImportedTables, size_of::<VMTableImport>(), 16),
        (VMArray::ImportedGlobals, size_of::<VMGlobalImport>(), 8),
        (VMArray::ImportedTags, size_of::<VMTagImport>(), 8),
        (VMArray::DefinedTables, size_of::<VMTableDefinition>(), 16),
        (VMArray::DefinedGlobals, size_of::<VMGlobalDefinition>(), 16),
        (VMArray::DefinedTags, size_of::<VMTagDefinition>(), 4),
        (VMArray::FuncRefs, size_of::<VMFuncRef>(), 32),
    ];
    assert_eq!(VMArray::ALL.len(), expected.len());
    for (array, (expected_array, real, documented)) in VMArray::ALL.into_iter().zip(expected) {
        assert_eq!(array, expected_array, "layout order");
        assert_eq!(array.stride() as usize, real, "{}", array.name());
        assert_eq!(array.stride(), documented, "{}", array.name());
    }
}

#[test]
fn empty_module_layout_is_the_header_padded_for_globals() {
    let shape = VMShape::new(VMCounts::default()).unwrap();
    // The arrays are empty, but the globals' 16-byte alignment still pads 72 to 80, as in
    // the seed.
    assert_eq!(shape.array(VMArray::DefinedGlobals).offset, 80);
    assert_eq!(shape.size(), 80);
    let first = shape.array(VMArray::ImportedMemories);
    assert_eq!((first.offset, first.count, first.stride), (72, 0, 16));
}

#[test]
fn globals_are_16_aligned_and_func_refs_8_aligned_after_odd_tags() {
    let counts = VMCounts {
        imported_globals: 1,
        defined_globals: 2,
        defined_tags: 3,
        escaped_functions: 2,
        ..VMCounts::default()
    };
    let shape = VMShape::new(counts).unwrap();
    // 72 + 8 (one global import) = 80, already 16-aligned; 80 + 32 = 112; tags 112..124.
    assert_eq!(shape.array(VMArray::DefinedGlobals).offset, 80);
    assert_eq!(shape.array(VMArray::DefinedTags).offset, 112);
    assert_eq!(shape.array(VMArray::FuncRefs).offset, 128);
    assert_eq!(shape.size(), 128 + 64);
}

#[test]
fn hostile_counts_are_errors() {
    let counts = VMCounts {
        escaped_functions: u32::MAX,
        ..VMCounts::default()
    };
    assert_eq!(
        VMShape::new(counts),
        Err(LayoutError::TooLarge { array: "func_refs" })
    );
    let counts = VMCounts {
        imported_memories: u32::MAX / 16,
        ..VMCounts::default()
    };
    assert_eq!(
        VMShape::new(counts),
        Err(LayoutError::TooLarge {
            array: "imported_memories"
        })
    );
    let counts = VMCounts {
        defined_memories: 1,
        owned_memories: 2,
        ..VMCounts::default()
    };
    assert_eq!(VMShape::new(counts), Err(LayoutError::OwnedExceedsDefined));
}

#[test]
fn seed_defects_are_fixed() {
    // The seed checked imported-global indices against the number of *defined* globals,
    // and owned-memory, defined-global, tag and func-ref indices against array offsets.
    let counts = VMCounts {
        imported_globals: 1,
        defined_globals: 5,
        defined_memories: 1,
        owned_memories: 1,
        escaped_functions: 1,
        ..VMCounts::default()
    };
    let shape = VMShape::new(counts).unwrap();
    assert!(
        shape
            .vmctx_global_import(GlobalIndex::from_u32(0))
            .is_some()
    );
    assert_eq!(shape.vmctx_global_import(GlobalIndex::from_u32(1)), None);
    assert!(
        shape
            .vmctx_memory_definition(OwnedMemoryIndex::from_u32(0))
            .is_some()
    );
    assert_eq!(
        shape.vmctx_memory_definition(OwnedMemoryIndex::from_u32(1)),
        None
    );
    assert_eq!(
        shape.vmctx_global_definition(DefinedGlobalIndex::from_u32(5)),
        None
    );
    assert_eq!(shape.vmctx_func_ref(FuncRefIndex::from_u32(1)), None);
}

/// The layout recomputed in 128-bit arithmetic, where nothing overflows: either the error
/// [`VMShape::new`] must give, or every array's (offset, end) and the size.
fn model(counts: &VMCounts) -> Result<(Vec<(u128, u128)>, u128), LayoutError> {
    if counts.owned_memories > counts.defined_memories {
        return Err(LayoutError::OwnedExceedsDefined);
    }
    let mut next = u128::from(VMShape::DYNAMIC_DATA_START);
    let mut arrays = Vec::new();
    for array in VMArray::ALL {
        let align = u128::from(array.align());
        let offset = next.div_ceil(align) * align;
        let end = offset + u128::from(array.count(counts)) * u128::from(array.stride());
        if end > u128::from(u32::MAX) {
            return Err(LayoutError::TooLarge {
                array: array.name(),
            });
        }
        arrays.push((offset, end));
        next = end;
    }
    Ok((arrays, next))
}

/// Counts that are mostly small (realistic) and sometimes anything (hostile).
fn count() -> impl Strategy<Value = u32> {
    prop_oneof![4 => 0u32..64, 2 => 0u32..1_000_000, 1 => any::<u32>(), 1 => Just(u32::MAX)]
}

fn counts() -> impl Strategy<Value = VMCounts> {
    (
        (count(), count(), count(), count(), count()),
        (count(), count(), any::<u32>(), count(), count(), count()),
    )
        .prop_map(|(imports, defined)| {
            let (functions, tables, memories, globals, tags) = imports;
            let (def_tables, def_memories, owned, def_globals, def_tags, escaped) = defined;
            VMCounts {
                imported_functions: functions,
                imported_tables: tables,
                imported_memories: memories,
                imported_globals: globals,
                imported_tags: tags,
                defined_tables: def_tables,
                defined_memories: def_memories,
                owned_memories: owned % def_memories.saturating_add(1).max(1),
                defined_globals: def_globals,
                defined_tags: def_tags,
                escaped_functions: escaped,
            }
        })
}

/// Every index accessor, with the array it must index.
type Accessor = (VMArray, fn(&VMShape, u32) -> Option<u32>);

const ACCESSORS: [Accessor; 11] = [
    (VMArray::ImportedMemories, |s, i| {
        s.vmctx_memory_import(MemoryIndex::from_u32(i))
    }),
    (VMArray::DefinedMemories, |s, i| {
        s.vmctx_memory_pointer(DefinedMemoryIndex::from_u32(i))
    }),
    (VMArray::OwnedMemories, |s, i| {
        s.vmctx_memory_definition(OwnedMemoryIndex::from_u32(i))
    }),
    (VMArray::ImportedFunctions, |s, i| {
        s.vmctx_function_import(FuncIndex::from_u32(i))
    }),
    (VMArray::ImportedTables, |s, i| {
        s.vmctx_table_import(TableIndex::from_u32(i))
    }),
    (VMArray::ImportedGlobals, |s, i| {
        s.vmctx_global_import(GlobalIndex::from_u32(i))
    }),
    (VMArray::ImportedTags, |s, i| {
        s.vmctx_tag_import(TagIndex::from_u32(i))
    }),
    (VMArray::DefinedTables, |s, i| {
        s.vmctx_table_definition(DefinedTableIndex::from_u32(i))
    }),
    (VMArray::DefinedGlobals, |s, i| {
        s.vmctx_global_definition(DefinedGlobalIndex::from_u32(i))
    }),
    (VMArray::DefinedTags, |s, i| {
        s.vmctx_tag_definition(DefinedTagIndex::from_u32(i))
    }),
    (VMArray::FuncRefs, |s, i| {
        s.vmctx_func_ref(FuncRefIndex::from_u32(i))
    }),
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    #[cfg_attr(miri, ignore = "2000 proptest cases of safe arithmetic: minutes under Miri, and proptest persists failures in files, which Miri isolates")]
    fn layout_matches_the_model_or_is_an_error(counts in counts()) {
        match (VMShape::new(counts), model(&counts)) {
            (Err(error), Err(expected)) => prop_assert_eq!(error, expected),
            (Ok(shape), Ok((arrays, size))) => {
                prop_assert_eq!(u128::from(shape.size()), size);
                for ((array, layout), (offset, end)) in shape.arrays().zip(arrays) {
                    prop_assert_eq!(u128::from(layout.offset), offset, "{}", array.name());
                    prop_assert_eq!(u128::from(layout.end()), end, "{}", array.name());
                }
            }
            (got, expected) => prop_assert!(false, "got {got:?}, model says {expected:?}"),
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "2000 proptest cases of safe arithmetic: minutes under Miri, and proptest persists failures in files, which Miri isolates")]
    fn arrays_are_ordered_aligned_disjoint_and_inside(counts in counts()) {
        let Ok(shape) = VMShape::new(counts) else { return Ok(()) };
        let mut previous_end = VMShape::DYNAMIC_DATA_START;
        for (array, layout) in shape.arrays() {
            prop_assert_eq!(layout.count, array.count(&counts));
            prop_assert_eq!(layout.stride, array.stride());
            prop_assert_eq!(layout.offset % array.align(), 0, "{} aligned", array.name());
            prop_assert!(layout.offset >= previous_end, "{} after its predecessor", array.name());
            prop_assert!(layout.offset - previous_end < array.align(), "{} contiguous", array.name());
            prop_assert!(layout.end() <= shape.size(), "{} inside", array.name());
            previous_end = layout.end();
        }
        prop_assert_eq!(previous_end, shape.size());
    }

    #[test]
    #[cfg_attr(miri, ignore = "2000 proptest cases of safe arithmetic: minutes under Miri, and proptest persists failures in files, which Miri isolates")]
    fn indices_land_inside_their_array_or_are_refused(
        counts in counts(),
        pick in any::<u32>(),
        beyond in any::<u32>(),
    ) {
        let Ok(shape) = VMShape::new(counts) else { return Ok(()) };
        for (array, accessor) in ACCESSORS {
            let layout = shape.array(array);
            if layout.count > 0 {
                for index in [0, layout.count - 1, pick % layout.count] {
                    let offset = accessor(&shape, index);
                    prop_assert_eq!(
                        offset.map(u64::from),
                        Some(u64::from(layout.offset) + u64::from(index) * u64::from(layout.stride)),
                        "{}[{}]", array.name(), index
                    );
                    let offset = offset.unwrap_or_default();
                    prop_assert!(offset + layout.stride <= layout.end());
                }
            }
            for index in [layout.count, layout.count.saturating_add(beyond), u32::MAX] {
                if index >= layout.count {
                    prop_assert_eq!(accessor(&shape, index), None, "{}[{}]", array.name(), index);
                }
            }
        }
    }
}
