//! Translation of a module binary into a [`ModuleInfo`], with validation first.

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use wasmparser::{
    AbstractHeapType, CompositeInnerType, ExternalKind, FuncValidatorAllocations, HeapType,
    KnownCustom, Name, Operator, OperatorsReader, Parser, Payload, TableInit, TypeRef,
    ValidPayload, Validator, WasmFeatures,
};

use super::const_expr::{ConstExpr, ConstOp};
use super::limits::{CompileLimits, compile_memory_estimate, function_cost};
use super::module::{
    DataKind, DataSegment, ElementItems, ElementKind, ElementSegment, EntityIndex, Export,
    GlobalType, Import, MemoryType, ModuleInfo, TableType, TagType,
};
use super::types::{FuncType, RefType, ValType};
use crate::wasm::indices::{FuncIndex, GlobalIndex, MemoryIndex, TableIndex, TagIndex, TypeIndex};

/// What kind of problem a [`ModuleError`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleErrorKind {
    /// The bytes are not a well-formed, valid module for the chosen features.
    Invalid,
    /// The module is valid but uses something kernel-core does not implement.
    Unsupported,
    /// The module is valid but a function passes a [`CompileLimits`] limit: it would
    /// cost too much to compile.
    Limit,
}

/// Why a module could not be translated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleError {
    /// Invalid or unsupported.
    pub kind: ModuleErrorKind,
    /// What is wrong, in words.
    pub message: String,
    /// The byte offset in the module the problem was found at, when known.
    pub offset: Option<u64>,
}

impl ModuleError {
    fn unsupported(what: impl Into<String>, offset: u64) -> Self {
        Self {
            kind: ModuleErrorKind::Unsupported,
            message: what.into(),
            offset: Some(offset),
        }
    }
}

impl From<wasmparser::BinaryReaderError> for ModuleError {
    fn from(error: wasmparser::BinaryReaderError) -> Self {
        Self {
            kind: ModuleErrorKind::Invalid,
            message: error.message().to_string(),
            offset: Some(error.offset()),
        }
    }
}

impl fmt::Display for ModuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ModuleErrorKind::Invalid => f.write_str("invalid module: ")?,
            ModuleErrorKind::Unsupported => f.write_str("unsupported module: ")?,
            ModuleErrorKind::Limit => f.write_str("module over a compile limit: ")?,
        }
        f.write_str(&self.message)?;
        if let Some(offset) = self.offset {
            write!(f, " (at offset {offset:#x})")?;
        }
        Ok(())
    }
}

/// Validates `bytes` against `features` and describes the module.
///
/// Validation covers the whole module, function bodies included, before anything is
/// translated, so every count and index seen afterwards is within wasmparser's limits.
///
/// # Errors
/// [`ModuleErrorKind::Invalid`] for malformed or invalid bytes (never a panic, whatever the
/// input); [`ModuleErrorKind::Unsupported`] for valid modules using types kernel-core does
/// not describe (GC and typed function references, shared abstract types).
pub fn translate(bytes: &[u8], features: WasmFeatures) -> Result<ModuleInfo, ModuleError> {
    let largest_function = validate(bytes, features, &CompileLimits::DEFAULT)?;
    let mut module = ModuleInfo {
        compile_memory: compile_memory_estimate(bytes.len(), largest_function),
        ..ModuleInfo::default()
    };
    for payload in Parser::new(0).parse_all(bytes) {
        translate_payload(&mut module, bytes, payload?)?;
    }
    module.escaped_functions = escaped_functions(&module);
    Ok(module)
}

/// Validates the whole module (as wasmparser's `validate_all` does) and checks every
/// function against `limits` on the way: the validator knows the operand and control
/// stack heights after each operator. Returns the compile memory of the costliest
/// function ([`function_cost`]).
fn validate(
    bytes: &[u8],
    features: WasmFeatures,
    limits: &CompileLimits,
) -> Result<u64, ModuleError> {
    let mut validator = Validator::new_with_features(features);
    let mut parser = Parser::new(0);
    parser.set_features(features);
    let mut functions = Vec::new();
    for payload in parser.parse_all(bytes) {
        if let ValidPayload::Func(function, body) = validator.payload(&payload?)? {
            functions.push((function, body));
        }
    }
    let mut allocations = FuncValidatorAllocations::default();
    let mut largest = 0u64;
    // The first limit passed; reported once the whole module validated, so that an
    // invalid module is always called invalid.
    let mut limit_error: Option<ModuleError> = None;
    for (function, body) in functions {
        let mut validator = function.into_validator(allocations);
        let index = validator.index();
        let over = |what: &str, offset: u64| ModuleError {
            kind: ModuleErrorKind::Limit,
            message: alloc::format!("function {index}: {what}"),
            offset: Some(offset),
        };
        let range = body.range();
        let size = usize::try_from(range.end.saturating_sub(range.start)).unwrap_or(usize::MAX);
        if limit_error.is_none() && size > limits.max_function_size {
            limit_error.get_or_insert(over(
                &alloc::format!(
                    "its body is {size} bytes, past the limit of {}",
                    limits.max_function_size
                ),
                range.start,
            ));
        }
        let mut reader = body.get_binary_reader();
        validator.read_locals(&mut reader)?;
        if limit_error.is_none() && validator.len_locals() > limits.max_locals {
            limit_error.get_or_insert(over(
                &alloc::format!("more than {} locals", limits.max_locals),
                reader.original_position(),
            ));
        }
        reader.set_features(features);
        let mut operators = OperatorsReader::new(reader);
        let mut br_table_targets = 0usize;
        let mut blocks = 0u32;
        while !operators.eof() {
            let (operator, offset) = operators.read_with_offset()?;
            if matches!(
                operator,
                Operator::Block { .. } | Operator::Loop { .. } | Operator::If { .. }
            ) {
                blocks = blocks.saturating_add(1);
                if limit_error.is_none() && blocks > limits.max_blocks {
                    limit_error.get_or_insert(over(
                        &alloc::format!("more than {} blocks", limits.max_blocks),
                        offset,
                    ));
                }
            }
            if let Operator::BrTable { targets } = &operator {
                br_table_targets = br_table_targets.saturating_add(targets.len() as usize);
                if limit_error.is_none() && br_table_targets > limits.max_br_table_targets {
                    limit_error.get_or_insert(over(
                        &alloc::format!(
                            "more than {} br_table targets",
                            limits.max_br_table_targets
                        ),
                        offset,
                    ));
                }
            }
            validator.op(offset, &operator)?;
            if limit_error.is_none() && validator.control_stack_height() > limits.max_nesting {
                limit_error.get_or_insert(over(
                    &alloc::format!("blocks nested deeper than {}", limits.max_nesting),
                    offset,
                ));
            }
            if limit_error.is_none() && validator.operand_stack_height() > limits.max_operand_stack
            {
                limit_error.get_or_insert(over(
                    &alloc::format!(
                        "more than {} values on the operand stack",
                        limits.max_operand_stack
                    ),
                    offset,
                ));
            }
        }
        operators.finish()?;
        largest = largest.max(function_cost(size, blocks));
        allocations = validator.into_allocations();
    }
    match limit_error {
        Some(error) => Err(error),
        None => Ok(largest),
    }
}

/// Adds one section's worth of information to `module`.
fn translate_payload(
    module: &mut ModuleInfo,
    bytes: &[u8],
    payload: Payload<'_>,
) -> Result<(), ModuleError> {
    match payload {
        Payload::TypeSection(reader) => {
            for group in reader.into_iter_with_offsets() {
                let (offset, group) = group?;
                for sub_type in group.into_types() {
                    let CompositeInnerType::Func(func) = &sub_type.composite_type.inner else {
                        return Err(ModuleError::unsupported(
                            "GC struct and array types",
                            offset,
                        ));
                    };
                    module.types.push(FuncType {
                        params: val_types(func.params(), offset)?,
                        results: val_types(func.results(), offset)?,
                    });
                }
            }
        }
        Payload::ImportSection(reader) => {
            for import in reader.into_imports_with_offsets() {
                let (offset, import) = import?;
                let entity = match import.ty {
                    TypeRef::Func(type_index) | TypeRef::FuncExact(type_index) => {
                        module.num_imported_functions += 1;
                        module.functions.push(TypeIndex::from_u32(type_index));
                        EntityIndex::Function(last_index(&module.functions, FuncIndex::from_u32))
                    }
                    TypeRef::Table(table) => {
                        module.num_imported_tables += 1;
                        module.tables.push(table_type(&table, offset)?);
                        EntityIndex::Table(last_index(&module.tables, TableIndex::from_u32))
                    }
                    TypeRef::Memory(memory) => {
                        module.num_imported_memories += 1;
                        module.memories.push(memory_type(&memory));
                        EntityIndex::Memory(last_index(&module.memories, MemoryIndex::from_u32))
                    }
                    TypeRef::Global(global) => {
                        module.num_imported_globals += 1;
                        module.globals.push(global_type(&global, offset)?);
                        EntityIndex::Global(last_index(&module.globals, GlobalIndex::from_u32))
                    }
                    TypeRef::Tag(tag) => {
                        module.num_imported_tags += 1;
                        module.tags.push(TagType {
                            signature: TypeIndex::from_u32(tag.func_type_idx),
                        });
                        EntityIndex::Tag(last_index(&module.tags, TagIndex::from_u32))
                    }
                };
                module.imports.push(Import {
                    module: import.module.to_string(),
                    name: import.name.to_string(),
                    entity,
                });
            }
        }
        Payload::FunctionSection(reader) => {
            for type_index in reader {
                module.functions.push(TypeIndex::from_u32(type_index?));
            }
        }
        Payload::TableSection(reader) => {
            for table in reader.into_iter_with_offsets() {
                let (offset, table) = table?;
                module.tables.push(table_type(&table.ty, offset)?);
                module.table_initializers.push(match table.init {
                    TableInit::RefNull => None,
                    TableInit::Expr(expr) => Some(const_expr(&expr)?),
                });
            }
        }
        Payload::MemorySection(reader) => {
            for memory in reader {
                module.memories.push(memory_type(&memory?));
            }
        }
        Payload::TagSection(reader) => {
            for tag in reader {
                module.tags.push(TagType {
                    signature: TypeIndex::from_u32(tag?.func_type_idx),
                });
            }
        }
        Payload::GlobalSection(reader) => {
            for global in reader.into_iter_with_offsets() {
                let (offset, global) = global?;
                module.globals.push(global_type(&global.ty, offset)?);
                module
                    .global_initializers
                    .push(const_expr(&global.init_expr)?);
            }
        }
        Payload::ExportSection(reader) => {
            for export in reader {
                let export = export?;
                let entity = match export.kind {
                    ExternalKind::Func | ExternalKind::FuncExact => {
                        EntityIndex::Function(FuncIndex::from_u32(export.index))
                    }
                    ExternalKind::Table => EntityIndex::Table(TableIndex::from_u32(export.index)),
                    ExternalKind::Memory => {
                        EntityIndex::Memory(MemoryIndex::from_u32(export.index))
                    }
                    ExternalKind::Global => {
                        EntityIndex::Global(GlobalIndex::from_u32(export.index))
                    }
                    ExternalKind::Tag => EntityIndex::Tag(TagIndex::from_u32(export.index)),
                };
                module.exports.push(Export {
                    name: export.name.to_string(),
                    entity,
                });
            }
        }
        Payload::StartSection { func, .. } => module.start = Some(FuncIndex::from_u32(func)),
        Payload::ElementSection(reader) => {
            for element in reader.into_iter_with_offsets() {
                let (offset, element) = element?;
                module.elements.push(element_segment(element, offset)?);
            }
        }
        Payload::DataSection(reader) => {
            for data in reader {
                let data = data?;
                let kind = match data.kind {
                    wasmparser::DataKind::Passive => DataKind::Passive,
                    wasmparser::DataKind::Active {
                        memory_index,
                        offset_expr,
                    } => DataKind::Active {
                        memory: MemoryIndex::from_u32(memory_index),
                        offset: const_expr(&offset_expr)?,
                    },
                };
                // The segment's bytes are a sub-slice of `bytes`: the parser hands out
                // slices of its input, so the address difference is the offset.
                let start = (data.data.as_ptr() as usize).wrapping_sub(bytes.as_ptr() as usize);
                module.data.push(DataSegment {
                    kind,
                    bytes: start..start + data.data.len(),
                });
            }
        }
        Payload::CodeSectionEntry(body) => {
            let range = body.range();
            module
                .function_bodies
                .push(to_usize(range.start)..to_usize(range.end));
        }
        Payload::CustomSection(reader) => {
            if let KnownCustom::Name(names) = reader.as_known() {
                read_names(module, names);
            }
        }
        _ => {}
    }
    Ok(())
}

/// A byte offset of wasmparser's as a `usize`; offsets lie inside the module's bytes, so
/// they fit.
fn to_usize(offset: u64) -> usize {
    usize::try_from(offset).unwrap_or(usize::MAX)
}

/// The index of the last element of an index space just pushed to.
fn last_index<T, I>(space: &[T], make: fn(u32) -> I) -> I {
    // Validated index spaces hold at most a few million entries.
    make(u32::try_from(space.len() - 1).unwrap_or(u32::MAX))
}

/// Records module and function names. The name section is a custom section: the spec does
/// not let a malformed one invalidate the module, so whatever cannot be read is skipped.
fn read_names(module: &mut ModuleInfo, names: wasmparser::NameSectionReader<'_>) {
    for name in names {
        match name {
            Ok(Name::Module { name, .. }) => module.name = Some(name.to_string()),
            Ok(Name::Function(map)) => {
                for naming in map.into_iter().map_while(Result::ok) {
                    module
                        .function_names
                        .insert(FuncIndex::from_u32(naming.index), naming.name.to_string());
                }
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
}

fn element_segment(
    element: wasmparser::Element<'_>,
    offset: u64,
) -> Result<ElementSegment, ModuleError> {
    let kind = match element.kind {
        wasmparser::ElementKind::Passive => ElementKind::Passive,
        wasmparser::ElementKind::Declared => ElementKind::Declared,
        wasmparser::ElementKind::Active {
            table_index,
            offset_expr,
        } => ElementKind::Active {
            table: TableIndex::from_u32(table_index.unwrap_or(0)),
            offset: const_expr(&offset_expr)?,
        },
    };
    let (element_type, items) = match element.items {
        wasmparser::ElementItems::Functions(reader) => {
            let functions = reader
                .into_iter()
                .map(|func| func.map(FuncIndex::from_u32))
                .collect::<Result<Box<[_]>, _>>()?;
            (RefType::Func, ElementItems::Functions(functions))
        }
        wasmparser::ElementItems::Expressions(ty, reader) => {
            let expressions = reader
                .into_iter()
                .map(|expr| const_expr(&expr?))
                .collect::<Result<Box<[_]>, _>>()?;
            (
                ref_type(ty, offset)?,
                ElementItems::Expressions(expressions),
            )
        }
    };
    Ok(ElementSegment {
        kind,
        element_type,
        items,
    })
}

fn val_types(types: &[wasmparser::ValType], offset: u64) -> Result<Box<[ValType]>, ModuleError> {
    types.iter().map(|ty| val_type(*ty, offset)).collect()
}

fn val_type(ty: wasmparser::ValType, offset: u64) -> Result<ValType, ModuleError> {
    Ok(match ty {
        wasmparser::ValType::I32 => ValType::I32,
        wasmparser::ValType::I64 => ValType::I64,
        wasmparser::ValType::F32 => ValType::F32,
        wasmparser::ValType::F64 => ValType::F64,
        wasmparser::ValType::V128 => ValType::V128,
        wasmparser::ValType::Ref(reference) => ValType::Ref(ref_type(reference, offset)?),
    })
}

fn ref_type(reference: wasmparser::RefType, offset: u64) -> Result<RefType, ModuleError> {
    match (reference.is_nullable(), reference.heap_type()) {
        (true, HeapType::Abstract { shared: false, ty }) => abstract_ref_type(ty, offset),
        _ => Err(ModuleError::unsupported(
            alloc::format!("reference type {reference}"),
            offset,
        )),
    }
}

fn abstract_ref_type(ty: AbstractHeapType, offset: u64) -> Result<RefType, ModuleError> {
    match ty {
        // The bottom types hold only null, which every reference of the top type can
        // represent: `nullfuncref` values are `funcref` values, and so on.
        AbstractHeapType::Func | AbstractHeapType::NoFunc => Ok(RefType::Func),
        AbstractHeapType::Extern | AbstractHeapType::NoExtern => Ok(RefType::Extern),
        AbstractHeapType::Exn | AbstractHeapType::NoExn => Ok(RefType::Exn),
        other => Err(ModuleError::unsupported(
            alloc::format!("heap type {other:?}"),
            offset,
        )),
    }
}

fn table_type(table: &wasmparser::TableType, offset: u64) -> Result<TableType, ModuleError> {
    if table.shared {
        return Err(ModuleError::unsupported("shared tables", offset));
    }
    Ok(TableType {
        element: ref_type(table.element_type, offset)?,
        minimum: table.initial,
        maximum: table.maximum,
        table64: table.table64,
    })
}

fn memory_type(memory: &wasmparser::MemoryType) -> MemoryType {
    MemoryType {
        minimum: memory.initial,
        maximum: memory.maximum,
        shared: memory.shared,
        memory64: memory.memory64,
        // The validator admits page sizes of 1 or 65536 bytes only.
        page_size_log2: memory
            .page_size_log2
            .map_or(16, |log2| if log2 == 0 { 0 } else { 16 }),
    }
}

fn global_type(global: &wasmparser::GlobalType, offset: u64) -> Result<GlobalType, ModuleError> {
    if global.shared {
        return Err(ModuleError::unsupported("shared globals", offset));
    }
    Ok(GlobalType {
        content: val_type(global.content_type, offset)?,
        mutable: global.mutable,
    })
}

/// Converts a validated constant expression.
fn const_expr(expr: &wasmparser::ConstExpr<'_>) -> Result<ConstExpr, ModuleError> {
    let mut reader = expr.get_operators_reader();
    let mut ops = Vec::new();
    loop {
        let offset = reader.original_position();
        let op = match reader.read()? {
            Operator::End => break,
            Operator::I32Const { value } => ConstOp::I32Const(value),
            Operator::I64Const { value } => ConstOp::I64Const(value),
            Operator::F32Const { value } => ConstOp::F32Const(value.bits()),
            Operator::F64Const { value } => ConstOp::F64Const(value.bits()),
            Operator::V128Const { value } => {
                ConstOp::V128Const(u128::from_le_bytes(*value.bytes()))
            }
            Operator::RefNull { hty } => match hty {
                HeapType::Abstract { shared: false, ty } => {
                    ConstOp::RefNull(abstract_ref_type(ty, offset)?)
                }
                _ => return Err(ModuleError::unsupported("typed null references", offset)),
            },
            Operator::RefFunc { function_index } => {
                ConstOp::RefFunc(FuncIndex::from_u32(function_index))
            }
            Operator::GlobalGet { global_index } => {
                ConstOp::GlobalGet(GlobalIndex::from_u32(global_index))
            }
            Operator::I32Add => ConstOp::I32Add,
            Operator::I32Sub => ConstOp::I32Sub,
            Operator::I32Mul => ConstOp::I32Mul,
            Operator::I64Add => ConstOp::I64Add,
            Operator::I64Sub => ConstOp::I64Sub,
            Operator::I64Mul => ConstOp::I64Mul,
            other => {
                return Err(ModuleError::unsupported(
                    alloc::format!("constant instruction {other:?}"),
                    offset,
                ));
            }
        };
        ops.push(op);
    }
    Ok(ConstExpr {
        ops: ops.into_boxed_slice(),
    })
}

/// The functions whose address escapes the module: exported functions, every function of
/// an element segment (active, passive or declared) and every `ref.func` of a constant
/// expression. Validation guarantees that `ref.func` in function bodies only names
/// functions already in this set.
fn escaped_functions(module: &ModuleInfo) -> Vec<FuncIndex> {
    let mut escaped: Vec<FuncIndex> = Vec::new();
    for export in &module.exports {
        if let EntityIndex::Function(func) = export.entity {
            escaped.push(func);
        }
    }
    for segment in &module.elements {
        match &segment.items {
            ElementItems::Functions(functions) => escaped.extend_from_slice(functions),
            ElementItems::Expressions(expressions) => {
                escaped.extend(expressions.iter().flat_map(ConstExpr::referenced_functions));
            }
        }
    }
    let initializers = module
        .global_initializers
        .iter()
        .chain(module.table_initializers.iter().flatten());
    escaped.extend(initializers.flat_map(ConstExpr::referenced_functions));
    escaped.sort_unstable();
    escaped.dedup();
    escaped
}
