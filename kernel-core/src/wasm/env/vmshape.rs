//! The VMContext layout of a module: where each field and array lies.
//!
//! A VMContext is the fixed [`VMContextHeader`] followed by the per-module arrays, in this
//! order (the seed's, upstream k23's `vmshape.rs`):
//!
//! | array | element |
//! | --- | --- |
//! | `imported_memories` | [`VMMemoryImport`] |
//! | `defined_memories` | pointer to [`VMMemoryDefinition`] |
//! | `owned_memories` | [`VMMemoryDefinition`] |
//! | `imported_functions` | [`VMFunctionImport`] |
//! | `imported_tables` | [`VMTableImport`] |
//! | `imported_globals` | [`VMGlobalImport`] |
//! | `imported_tags` | [`VMTagImport`] |
//! | `defined_tables` | [`VMTableDefinition`] |
//! | `defined_globals` | [`VMGlobalDefinition`] (16-byte aligned) |
//! | `defined_tags` | [`VMTagDefinition`] |
//! | `func_refs` | [`VMFuncRef`] |
//!
//! Memory items come first so that their offsets fit short immediates. Each array starts
//! at the alignment of its element: 16 for the globals, as in the seed, and 8 for
//! `func_refs`, which the seed leaves misaligned after an odd number of 4-byte tags.
//!
//! Unlike the seed, every computation is checked: counts whose arrays do not fit in a
//! `u32`-sized VMContext give [`LayoutError`], and every accessor compares its index with
//! the count of the array it indexes, returning `None` when out of range.

use core::fmt;
use core::mem::{align_of, offset_of, size_of};

use super::module::ModuleInfo;
use crate::wasm::indices::{
    DefinedGlobalIndex, DefinedMemoryIndex, DefinedTableIndex, DefinedTagIndex, FuncIndex,
    FuncRefIndex, GlobalIndex, MemoryIndex, OwnedMemoryIndex, TableIndex, TagIndex,
};
use crate::wasm::vm::vmcontext::{
    VMContextHeader, VMFuncRef, VMFunctionImport, VMGlobalDefinition, VMGlobalImport,
    VMMemoryDefinition, VMMemoryImport, VMTableDefinition, VMTableImport, VMTagDefinition,
    VMTagImport,
};

/// How many items of each kind a VMContext holds: the input of the layout.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VMCounts {
    /// Imported functions.
    pub imported_functions: u32,
    /// Imported tables.
    pub imported_tables: u32,
    /// Imported memories.
    pub imported_memories: u32,
    /// Imported globals.
    pub imported_globals: u32,
    /// Imported tags.
    pub imported_tags: u32,
    /// Defined tables.
    pub defined_tables: u32,
    /// Defined memories.
    pub defined_memories: u32,
    /// Defined memories the instance owns (not shared); at most `defined_memories`.
    pub owned_memories: u32,
    /// Defined globals.
    pub defined_globals: u32,
    /// Defined tags.
    pub defined_tags: u32,
    /// Escaping functions (the `func_refs` array).
    pub escaped_functions: u32,
}

impl VMCounts {
    /// The counts of a translated module.
    #[must_use]
    pub fn for_module(module: &ModuleInfo) -> Self {
        Self {
            imported_functions: module.num_imported_functions,
            imported_tables: module.num_imported_tables,
            imported_memories: module.num_imported_memories,
            imported_globals: module.num_imported_globals,
            imported_tags: module.num_imported_tags,
            defined_tables: module.num_defined_tables(),
            defined_memories: module.num_defined_memories(),
            owned_memories: module.num_owned_memories(),
            defined_globals: module.num_defined_globals(),
            defined_tags: module.num_defined_tags(),
            escaped_functions: module.num_escaped_functions(),
        }
    }
}

/// The per-module arrays of a VMContext, in layout order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VMArray {
    /// [`VMMemoryImport`] per imported memory.
    ImportedMemories,
    /// A pointer to the [`VMMemoryDefinition`] of each defined memory.
    DefinedMemories,
    /// [`VMMemoryDefinition`] per owned memory.
    OwnedMemories,
    /// [`VMFunctionImport`] per imported function.
    ImportedFunctions,
    /// [`VMTableImport`] per imported table.
    ImportedTables,
    /// [`VMGlobalImport`] per imported global.
    ImportedGlobals,
    /// [`VMTagImport`] per imported tag.
    ImportedTags,
    /// [`VMTableDefinition`] per defined table.
    DefinedTables,
    /// [`VMGlobalDefinition`] per defined global.
    DefinedGlobals,
    /// [`VMTagDefinition`] per defined tag.
    DefinedTags,
    /// [`VMFuncRef`] per escaping function.
    FuncRefs,
}

impl VMArray {
    /// Every array, in layout order.
    pub const ALL: [Self; 11] = [
        Self::ImportedMemories,
        Self::DefinedMemories,
        Self::OwnedMemories,
        Self::ImportedFunctions,
        Self::ImportedTables,
        Self::ImportedGlobals,
        Self::ImportedTags,
        Self::DefinedTables,
        Self::DefinedGlobals,
        Self::DefinedTags,
        Self::FuncRefs,
    ];

    /// The array's name, as the seed names the field.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::ImportedMemories => "imported_memories",
            Self::DefinedMemories => "defined_memories",
            Self::OwnedMemories => "owned_memories",
            Self::ImportedFunctions => "imported_functions",
            Self::ImportedTables => "imported_tables",
            Self::ImportedGlobals => "imported_globals",
            Self::ImportedTags => "imported_tags",
            Self::DefinedTables => "defined_tables",
            Self::DefinedGlobals => "defined_globals",
            Self::DefinedTags => "defined_tags",
            Self::FuncRefs => "func_refs",
        }
    }

    /// The size of one element in bytes.
    #[must_use]
    pub const fn stride(self) -> u32 {
        self.element_size_and_align().0
    }

    /// The alignment the array starts at.
    #[must_use]
    pub const fn align(self) -> u32 {
        self.element_size_and_align().1
    }

    #[expect(
        clippy::cast_possible_truncation,
        reason = "every VM structure is a few dozen bytes; the assertions in vmcontext.rs pin them"
    )]
    const fn element_size_and_align(self) -> (u32, u32) {
        const fn of<T>() -> (u32, u32) {
            (size_of::<T>() as u32, align_of::<T>() as u32)
        }
        match self {
            Self::ImportedMemories => of::<VMMemoryImport>(),
            Self::DefinedMemories => of::<*mut VMMemoryDefinition>(),
            Self::OwnedMemories => of::<VMMemoryDefinition>(),
            Self::ImportedFunctions => of::<VMFunctionImport>(),
            Self::ImportedTables => of::<VMTableImport>(),
            Self::ImportedGlobals => of::<VMGlobalImport>(),
            Self::ImportedTags => of::<VMTagImport>(),
            Self::DefinedTables => of::<VMTableDefinition>(),
            Self::DefinedGlobals => of::<VMGlobalDefinition>(),
            Self::DefinedTags => of::<VMTagDefinition>(),
            Self::FuncRefs => of::<VMFuncRef>(),
        }
    }

    /// The number of elements of this array for `counts`.
    #[must_use]
    pub const fn count(self, counts: &VMCounts) -> u32 {
        match self {
            Self::ImportedMemories => counts.imported_memories,
            Self::DefinedMemories => counts.defined_memories,
            Self::OwnedMemories => counts.owned_memories,
            Self::ImportedFunctions => counts.imported_functions,
            Self::ImportedTables => counts.imported_tables,
            Self::ImportedGlobals => counts.imported_globals,
            Self::ImportedTags => counts.imported_tags,
            Self::DefinedTables => counts.defined_tables,
            Self::DefinedGlobals => counts.defined_globals,
            Self::DefinedTags => counts.defined_tags,
            Self::FuncRefs => counts.escaped_functions,
        }
    }
}

/// Where one array lies in the VMContext.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArrayLayout {
    /// Offset of the first element from the start of the VMContext.
    pub offset: u32,
    /// Number of elements.
    pub count: u32,
    /// Size of one element in bytes.
    pub stride: u32,
}

impl ArrayLayout {
    /// The offset of element `index`, or `None` when `index >= count`.
    #[must_use]
    pub const fn element(&self, index: u32) -> Option<u32> {
        if index < self.count {
            // Cannot overflow: offset + count * stride <= size <= u32::MAX was checked when
            // the layout was computed, and index < count.
            Some(self.offset + index * self.stride)
        } else {
            None
        }
    }

    /// The offset one past the last element.
    #[must_use]
    pub const fn end(&self) -> u32 {
        // Cannot overflow, for the same reason as in `element`.
        self.offset + self.count * self.stride
    }
}

/// Why counts have no layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutError {
    /// The VMContext would not fit in `u32::MAX` bytes; `array` is the first that overflows.
    TooLarge {
        /// The array whose end overflows.
        array: &'static str,
    },
    /// More owned memories than defined memories.
    OwnedExceedsDefined,
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { array } => {
                write!(
                    f,
                    "VMContext too large: the `{array}` array ends past 4 GiB"
                )
            }
            Self::OwnedExceedsDefined => f.write_str("more owned memories than defined memories"),
        }
    }
}

/// The header fields of a VMContext and their offsets, in layout order.
pub const HEADER_FIELDS: [(&str, u32); 9] = [
    ("magic", VMShape::MAGIC),
    ("store_context", VMShape::STORE_CONTEXT),
    ("builtin_functions", VMShape::BUILTIN_FUNCTIONS),
    ("callee", VMShape::CALLEE),
    ("epoch_ptr", VMShape::EPOCH_PTR),
    ("gc_heap_base", VMShape::GC_HEAP_BASE),
    ("gc_heap_bound", VMShape::GC_HEAP_BOUND),
    ("gc_heap_data", VMShape::GC_HEAP_DATA),
    ("type_ids", VMShape::TYPE_IDS),
];

/// The VMContext layout of one module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VMShape {
    counts: VMCounts,
    arrays: [ArrayLayout; VMArray::ALL.len()],
    size: u32,
}

#[expect(
    clippy::cast_possible_truncation,
    reason = "header offsets are below 100, pinned by the assertions in vmcontext.rs"
)]
impl VMShape {
    /// Offset of `magic`.
    pub const MAGIC: u32 = offset_of!(VMContextHeader, magic) as u32;
    /// Offset of the `VMStoreContext` pointer.
    pub const STORE_CONTEXT: u32 = offset_of!(VMContextHeader, store_context) as u32;
    /// Offset of the builtin functions array pointer.
    pub const BUILTIN_FUNCTIONS: u32 = offset_of!(VMContextHeader, builtin_functions) as u32;
    /// Offset of `callee`.
    pub const CALLEE: u32 = offset_of!(VMContextHeader, callee) as u32;
    /// Offset of the epoch counter pointer.
    pub const EPOCH_PTR: u32 = offset_of!(VMContextHeader, epoch_ptr) as u32;
    /// Offset of the GC heap base.
    pub const GC_HEAP_BASE: u32 = offset_of!(VMContextHeader, gc_heap_base) as u32;
    /// Offset of the GC heap bound.
    pub const GC_HEAP_BOUND: u32 = offset_of!(VMContextHeader, gc_heap_bound) as u32;
    /// Offset of the collector-specific data pointer.
    pub const GC_HEAP_DATA: u32 = offset_of!(VMContextHeader, gc_heap_data) as u32;
    /// Offset of the type ids array pointer.
    pub const TYPE_IDS: u32 = offset_of!(VMContextHeader, type_ids) as u32;
    /// Where the per-module arrays begin: the end of the fixed header.
    pub const DYNAMIC_DATA_START: u32 = size_of::<VMContextHeader>() as u32;
}

impl VMShape {
    /// Computes the layout for `counts`.
    ///
    /// # Errors
    /// [`LayoutError::OwnedExceedsDefined`] for inconsistent counts and
    /// [`LayoutError::TooLarge`] when the VMContext would exceed `u32::MAX` bytes.
    pub fn new(counts: VMCounts) -> Result<Self, LayoutError> {
        if counts.owned_memories > counts.defined_memories {
            return Err(LayoutError::OwnedExceedsDefined);
        }
        let empty = ArrayLayout {
            offset: 0,
            count: 0,
            stride: 0,
        };
        let mut arrays = [empty; VMArray::ALL.len()];
        let mut next = Self::DYNAMIC_DATA_START;
        for (slot, array) in arrays.iter_mut().zip(VMArray::ALL) {
            let too_large = LayoutError::TooLarge {
                array: array.name(),
            };
            let count = array.count(&counts);
            let stride = array.stride();
            let offset = next
                .checked_next_multiple_of(array.align())
                .ok_or(too_large)?;
            let bytes = count.checked_mul(stride).ok_or(too_large)?;
            next = offset.checked_add(bytes).ok_or(too_large)?;
            *slot = ArrayLayout {
                offset,
                count,
                stride,
            };
        }
        Ok(Self {
            counts,
            arrays,
            size: next,
        })
    }

    /// Computes the layout of a translated module.
    ///
    /// # Errors
    /// As [`VMShape::new`]; a module within wasmparser's limits always fits.
    pub fn for_module(module: &ModuleInfo) -> Result<Self, LayoutError> {
        Self::new(VMCounts::for_module(module))
    }

    /// The counts this layout was computed from.
    #[must_use]
    pub const fn counts(&self) -> &VMCounts {
        &self.counts
    }

    /// The total size of the VMContext in bytes.
    #[must_use]
    pub const fn size(&self) -> u32 {
        self.size
    }

    /// Where `array` lies.
    #[must_use]
    pub const fn array(&self, array: VMArray) -> ArrayLayout {
        self.arrays[array as usize]
    }

    /// Every array with its layout, in layout order.
    pub fn arrays(&self) -> impl Iterator<Item = (VMArray, ArrayLayout)> + '_ {
        VMArray::ALL.into_iter().zip(self.arrays)
    }

    /// Offset of the [`VMFunctionImport`] of imported function `index`.
    #[must_use]
    pub const fn vmctx_function_import(&self, index: FuncIndex) -> Option<u32> {
        self.array(VMArray::ImportedFunctions)
            .element(index.as_u32())
    }

    /// Offset of the [`VMTableImport`] of imported table `index`.
    #[must_use]
    pub const fn vmctx_table_import(&self, index: TableIndex) -> Option<u32> {
        self.array(VMArray::ImportedTables).element(index.as_u32())
    }

    /// Offset of the [`VMMemoryImport`] of imported memory `index`.
    #[must_use]
    pub const fn vmctx_memory_import(&self, index: MemoryIndex) -> Option<u32> {
        self.array(VMArray::ImportedMemories)
            .element(index.as_u32())
    }

    /// Offset of the [`VMGlobalImport`] of imported global `index`.
    #[must_use]
    pub const fn vmctx_global_import(&self, index: GlobalIndex) -> Option<u32> {
        self.array(VMArray::ImportedGlobals).element(index.as_u32())
    }

    /// Offset of the [`VMTagImport`] of imported tag `index`.
    #[must_use]
    pub const fn vmctx_tag_import(&self, index: TagIndex) -> Option<u32> {
        self.array(VMArray::ImportedTags).element(index.as_u32())
    }

    /// Offset of the [`VMTableDefinition`] of defined table `index`.
    #[must_use]
    pub const fn vmctx_table_definition(&self, index: DefinedTableIndex) -> Option<u32> {
        self.array(VMArray::DefinedTables).element(index.as_u32())
    }

    /// Offset of the pointer to the [`VMMemoryDefinition`] of defined memory `index`.
    #[must_use]
    pub const fn vmctx_memory_pointer(&self, index: DefinedMemoryIndex) -> Option<u32> {
        self.array(VMArray::DefinedMemories).element(index.as_u32())
    }

    /// Offset of the [`VMMemoryDefinition`] of owned memory `index`.
    #[must_use]
    pub const fn vmctx_memory_definition(&self, index: OwnedMemoryIndex) -> Option<u32> {
        self.array(VMArray::OwnedMemories).element(index.as_u32())
    }

    /// Offset of the [`VMGlobalDefinition`] of defined global `index`.
    #[must_use]
    pub const fn vmctx_global_definition(&self, index: DefinedGlobalIndex) -> Option<u32> {
        self.array(VMArray::DefinedGlobals).element(index.as_u32())
    }

    /// Offset of the [`VMTagDefinition`] of defined tag `index`.
    #[must_use]
    pub const fn vmctx_tag_definition(&self, index: DefinedTagIndex) -> Option<u32> {
        self.array(VMArray::DefinedTags).element(index.as_u32())
    }

    /// Offset of the [`VMFuncRef`] of escaping function slot `index`.
    #[must_use]
    pub const fn vmctx_func_ref(&self, index: FuncRefIndex) -> Option<u32> {
        self.array(VMArray::FuncRefs).element(index.as_u32())
    }
}

#[cfg(test)]
mod tests;
