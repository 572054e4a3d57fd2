//! kernel-core's description of a translated module: everything outside function bodies.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::ops::Range;

use super::const_expr::ConstExpr;
use super::types::{FuncType, RefType, ValType};
use crate::wasm::indices::{
    DefinedFuncIndex, FuncIndex, FuncRefIndex, GlobalIndex, MemoryIndex, TableIndex, TagIndex,
    TypeIndex,
};

/// An item of one of the module's index spaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntityIndex {
    /// A function.
    Function(FuncIndex),
    /// A table.
    Table(TableIndex),
    /// A linear memory.
    Memory(MemoryIndex),
    /// A global.
    Global(GlobalIndex),
    /// An exception tag.
    Tag(TagIndex),
}

/// An import: a name pair and the index-space slot it fills.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    /// The module name.
    pub module: String,
    /// The field name.
    pub name: String,
    /// The slot the import fills (imports come first in each index space).
    pub entity: EntityIndex,
}

/// An export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    /// The export name, unique within the module.
    pub name: String,
    /// What is exported.
    pub entity: EntityIndex,
}

/// A table type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableType {
    /// The element type.
    pub element: RefType,
    /// The initial number of elements.
    pub minimum: u64,
    /// The maximum number of elements, if bounded.
    pub maximum: Option<u64>,
    /// Whether the table is indexed with i64.
    pub table64: bool,
}

/// A linear memory type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryType {
    /// The initial size in pages.
    pub minimum: u64,
    /// The maximum size in pages, if bounded.
    pub maximum: Option<u64>,
    /// Whether the memory is shared between threads.
    pub shared: bool,
    /// Whether the memory is indexed with i64.
    pub memory64: bool,
    /// Log2 of the page size (16 for the standard 64 KiB pages).
    pub page_size_log2: u8,
}

/// A global's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GlobalType {
    /// The value type.
    pub content: ValType,
    /// Whether `global.set` may change it.
    pub mutable: bool,
}

/// An exception tag's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagType {
    /// The function type giving the tag's parameters.
    pub signature: TypeIndex,
}

/// When and where an element segment is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElementKind {
    /// Copied into `table` at `offset` when the module is instantiated.
    Active {
        /// The table initialised.
        table: TableIndex,
        /// The index of the first element written.
        offset: ConstExpr,
    },
    /// Available to `table.init` until dropped.
    Passive,
    /// Only declares functions that `ref.func` may name; never used at run time.
    Declared,
}

/// The contents of an element segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElementItems {
    /// Plain function indices.
    Functions(Box<[FuncIndex]>),
    /// One constant expression per element.
    Expressions(Box<[ConstExpr]>),
}

/// An element segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElementSegment {
    /// Active, passive or declared.
    pub kind: ElementKind,
    /// The type of every element.
    pub element_type: RefType,
    /// The elements.
    pub items: ElementItems,
}

/// When and where a data segment is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataKind {
    /// Copied into `memory` at `offset` when the module is instantiated.
    Active {
        /// The memory initialised.
        memory: MemoryIndex,
        /// The address of the first byte written.
        offset: ConstExpr,
    },
    /// Available to `memory.init` until dropped.
    Passive,
}

/// A data segment; its bytes stay in the module binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataSegment {
    /// Active or passive.
    pub kind: DataKind,
    /// Where the segment's bytes lie in the module binary.
    pub bytes: Range<usize>,
}

/// Everything known about a validated module apart from its function bodies' code.
///
/// Index spaces count imports first: `functions[..num_imported_functions]` are imports,
/// the rest have bodies; likewise for tables, memories, globals and tags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModuleInfo {
    /// The module's name from the name section, if any.
    pub name: Option<String>,
    /// Function types, by [`TypeIndex`].
    pub types: Vec<FuncType>,
    /// Imports, in section order.
    pub imports: Vec<Import>,
    /// The signature of every function, by [`FuncIndex`].
    pub functions: Vec<TypeIndex>,
    /// How many of `functions` are imported.
    pub num_imported_functions: u32,
    /// Every table, by [`TableIndex`].
    pub tables: Vec<TableType>,
    /// Initial element of each defined table when its type has one (typed references),
    /// by defined table; `None` means null.
    pub table_initializers: Vec<Option<ConstExpr>>,
    /// How many of `tables` are imported.
    pub num_imported_tables: u32,
    /// Every memory, by [`MemoryIndex`].
    pub memories: Vec<MemoryType>,
    /// How many of `memories` are imported.
    pub num_imported_memories: u32,
    /// Every global's type, by [`GlobalIndex`].
    pub globals: Vec<GlobalType>,
    /// The initialiser of every defined global, by defined global.
    pub global_initializers: Vec<ConstExpr>,
    /// How many of `globals` are imported.
    pub num_imported_globals: u32,
    /// Every tag, by [`TagIndex`].
    pub tags: Vec<TagType>,
    /// How many of `tags` are imported.
    pub num_imported_tags: u32,
    /// Exports, in section order.
    pub exports: Vec<Export>,
    /// The start function.
    pub start: Option<FuncIndex>,
    /// Element segments, by element index.
    pub elements: Vec<ElementSegment>,
    /// Data segments, by data index.
    pub data: Vec<DataSegment>,
    /// Where each defined function's body (locals and code) lies in the module binary, by
    /// [`DefinedFuncIndex`].
    pub function_bodies: Vec<Range<usize>>,
    /// Function names from the name section.
    pub function_names: BTreeMap<FuncIndex, String>,
    /// The functions that escape (exported, in an element segment, or named by `ref.func`
    /// in a constant expression), sorted and without duplicates. Position `i` is
    /// `FuncRefIndex(i)`: the function's `VMFuncRef` slot.
    pub escaped_functions: Vec<FuncIndex>,
    /// An upper bound of the memory compiling the module takes, in bytes
    /// ([`super::compile_memory_estimate`]).
    pub compile_memory: u64,
}

impl ModuleInfo {
    /// The number of tables defined (not imported) by the module.
    #[must_use]
    pub fn num_defined_tables(&self) -> u32 {
        count_after(self.tables.len(), self.num_imported_tables)
    }

    /// The number of memories defined (not imported) by the module.
    #[must_use]
    pub fn num_defined_memories(&self) -> u32 {
        count_after(self.memories.len(), self.num_imported_memories)
    }

    /// The number of defined memories owned by an instance: those that are not shared.
    #[must_use]
    pub fn num_owned_memories(&self) -> u32 {
        let defined = self
            .memories
            .iter()
            .skip(self.num_imported_memories as usize);
        count_after(defined.filter(|memory| !memory.shared).count(), 0)
    }

    /// The number of globals defined (not imported) by the module.
    #[must_use]
    pub fn num_defined_globals(&self) -> u32 {
        count_after(self.globals.len(), self.num_imported_globals)
    }

    /// The number of tags defined (not imported) by the module.
    #[must_use]
    pub fn num_defined_tags(&self) -> u32 {
        count_after(self.tags.len(), self.num_imported_tags)
    }

    /// The number of functions with a body in the module.
    #[must_use]
    pub fn num_defined_functions(&self) -> u32 {
        count_after(self.functions.len(), self.num_imported_functions)
    }

    /// The number of escaping functions, the length of the VMContext `func_refs` array.
    #[must_use]
    pub fn num_escaped_functions(&self) -> u32 {
        count_after(self.escaped_functions.len(), 0)
    }

    /// The signature of function `func`, or `None` when there is no such function.
    #[must_use]
    pub fn function_type(&self, func: FuncIndex) -> Option<&FuncType> {
        let type_index = self.functions.get(func.index())?;
        self.types.get(type_index.index())
    }

    /// The defined-function index of `func`, or `None` for an import or no such function.
    #[must_use]
    pub fn defined_function(&self, func: FuncIndex) -> Option<DefinedFuncIndex> {
        let defined = func.as_u32().checked_sub(self.num_imported_functions)?;
        (func.index() < self.functions.len()).then(|| DefinedFuncIndex::from_u32(defined))
    }

    /// The `func_refs` slot of `func`, or `None` when the function does not escape.
    #[must_use]
    pub fn func_ref_index(&self, func: FuncIndex) -> Option<FuncRefIndex> {
        let slot = self.escaped_functions.binary_search(&func).ok()?;
        Some(FuncRefIndex::from_u32(count_after(slot, 0)))
    }

    /// The name of `func` from the name section, if it has one.
    #[must_use]
    pub fn function_name(&self, func: FuncIndex) -> Option<&str> {
        self.function_names.get(&func).map(String::as_str)
    }
}

/// `total - imported` as a `u32`. Index spaces of a validated module are far below
/// `u32::MAX` (wasmparser limits them to millions), so the conversion cannot fail for a
/// `ModuleInfo` made by [`super::translate`]; it saturates for hand-built values.
fn count_after(total: usize, imported: u32) -> u32 {
    u32::try_from(total)
        .unwrap_or(u32::MAX)
        .saturating_sub(imported)
}
