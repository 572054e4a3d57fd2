//! Module-wide facts the translator needs: signatures, value types, and where each memory,
//! global, table and imported function lives relative to the VMContext.
//!
//! Offsets come from [`VMShape`] (arrays) and `offset_of!` on the structures of
//! [`crate::wasm::vm::vmcontext`] (fields); nothing here hard-codes a number.

use alloc::vec::Vec;
use core::mem::offset_of;

use cranelift_codegen::ir::{self, AbiParam, ArgumentPurpose, MemFlagsData, Signature, types};
use cranelift_codegen::isa::{CallConv, TargetIsa};

use super::CompileError;
use super::traps::trap_code;
use crate::wasm::abi::Builtin;
use crate::wasm::env::{FuncType, ModuleInfo, RefType, VMShape, ValType};
use crate::wasm::indices::{
    DefinedGlobalIndex, DefinedMemoryIndex, DefinedTableIndex, FuncIndex, GlobalIndex, MemoryIndex,
    OwnedMemoryIndex, TableIndex, TypeIndex,
};
use crate::wasm::trap::Trap;
use crate::wasm::vm::vmcontext::{
    VMFunctionImport, VMGlobalDefinition, VMGlobalImport, VMMemoryDefinition, VMMemoryImport,
    VMTableDefinition, VMTableImport,
};

/// The pointer type of every supported target.
pub(super) const POINTER: ir::Type = types::I64;

/// The IR type of a `v128` wherever it crosses an operator boundary: on the value stack,
/// in locals, globals, block parameters, signatures and value slots. SIMD operators
/// reinterpret it (a no-op `bitcast`) as the lane shape they work on.
pub(super) const V128: ir::Type = types::I8X16;

/// How generated code reaches a memory's [`VMMemoryDefinition`].
#[derive(Debug, Clone, Copy)]
pub(super) enum MemoryLocation {
    /// Inline in the VMContext at this offset (owned memories).
    Inline(i32),
    /// Through the pointer at this VMContext offset (imported memories through
    /// `VMMemoryImport::from`, shared defined memories through `defined_memories`).
    Pointer(i32),
}

/// How generated code reaches a table's [`VMTableDefinition`].
#[derive(Debug, Clone, Copy)]
pub(super) enum TableLocation {
    /// Inline in the VMContext at this offset (defined tables).
    Inline(i32),
    /// Through the pointer at this VMContext offset (`VMTableImport::from`).
    Pointer(i32),
}

/// Where a global's value lives.
#[derive(Debug, Clone, Copy)]
pub(super) enum GlobalLocation {
    /// Inline in the VMContext at this offset (defined globals).
    Inline(i32),
    /// Through the pointer at this VMContext offset (`VMGlobalImport::from`).
    Pointer(i32),
}

/// A global as the translator sees it.
#[derive(Debug, Clone, Copy)]
pub(super) struct GlobalInfo {
    /// Where the value is.
    pub location: GlobalLocation,
    /// The IR type of the value.
    pub ty: ir::Type,
    /// Whether `global.set` may change it; immutable globals are loaded as read-only.
    pub mutable: bool,
}

use super::CompileOptions;

/// Everything about a module that does not change from one function to the next.
pub(super) struct ModuleEnvironment<'a> {
    /// The module being compiled.
    pub module: &'a ModuleInfo,
    /// Its VMContext layout.
    pub shape: &'a VMShape,
    /// The target.
    pub isa: &'a dyn TargetIsa,
    /// How to compile.
    pub options: CompileOptions,
    memories: Vec<MemoryLocation>,
}

impl<'a> ModuleEnvironment<'a> {
    /// Gathers the module-wide facts.
    ///
    /// # Errors
    /// [`CompileError::Unsupported`] for 64-bit memories and custom page sizes,
    /// [`CompileError::Invalid`] when `shape` does not describe `module`.
    pub fn new(
        module: &'a ModuleInfo,
        shape: &'a VMShape,
        isa: &'a dyn TargetIsa,
        options: CompileOptions,
    ) -> Result<Self, CompileError> {
        let expected = VMShape::for_module(module)
            .map_err(|e| CompileError::invalid(alloc::format!("{e}")))?;
        if *shape != expected {
            return Err(CompileError::invalid(
                "the VMShape was not made for this module",
            ));
        }
        let mut memories = Vec::with_capacity(module.memories.len());
        let mut owned = 0u32;
        for (index, memory) in module.memories.iter().enumerate() {
            if memory.memory64 {
                return Err(CompileError::Unsupported("64-bit memories".into()));
            }
            if memory.page_size_log2 != 16 {
                return Err(CompileError::Unsupported("custom page sizes".into()));
            }
            let index = u32::try_from(index).map_err(|_| CompileError::invalid("memory count"))?;
            let location = match index.checked_sub(module.num_imported_memories) {
                None => {
                    let import = shape
                        .vmctx_memory_import(MemoryIndex::from_u32(index))
                        .ok_or_else(|| missing("memory import", index))?;
                    MemoryLocation::Pointer(field(import, offset_of!(VMMemoryImport, from))?)
                }
                Some(defined) if memory.shared => {
                    let pointer = shape
                        .vmctx_memory_pointer(DefinedMemoryIndex::from_u32(defined))
                        .ok_or_else(|| missing("defined memory pointer", index))?;
                    MemoryLocation::Pointer(offset32(pointer)?)
                }
                Some(_) => {
                    let definition = shape
                        .vmctx_memory_definition(OwnedMemoryIndex::from_u32(owned))
                        .ok_or_else(|| missing("owned memory", index))?;
                    owned += 1;
                    MemoryLocation::Inline(offset32(definition)?)
                }
            };
            memories.push(location);
        }
        Ok(Self {
            module,
            shape,
            isa,
            options,
            memories,
        })
    }

    /// The function type `index`.
    pub fn func_type(&self, index: TypeIndex) -> Result<&'a FuncType, CompileError> {
        self.module
            .types
            .get(index.index())
            .ok_or_else(|| missing("type", index.as_u32()))
    }

    /// The type index of function `index`.
    pub fn function_type_index(&self, index: FuncIndex) -> Result<TypeIndex, CompileError> {
        self.module
            .functions
            .get(index.index())
            .copied()
            .ok_or_else(|| missing("function", index.as_u32()))
    }

    /// Whether function `index` is imported.
    pub fn is_imported_function(&self, index: FuncIndex) -> bool {
        index.as_u32() < self.module.num_imported_functions
    }

    /// The WebAssembly-convention signature of type `index`:
    /// `(callee_vmctx, caller_vmctx, params...) -> results` with the `tail` convention.
    pub fn wasm_signature(&self, index: TypeIndex) -> Result<Signature, CompileError> {
        wasm_signature(self.func_type(index)?)
    }

    /// The C signature of `builtin`: the VMContext, then [`Builtin::params`] 64-bit
    /// integers, returning one when [`Builtin::returns_value`] (the function types of
    /// [`crate::wasm::abi`], such as [`crate::wasm::abi::MemoryCopyFn`]).
    pub fn builtin_signature(&self, builtin: Builtin) -> Signature {
        let mut signature = Signature::new(self.isa.default_call_conv());
        signature.params.push(AbiParam::new(POINTER));
        for _ in 0..builtin.params() {
            signature.params.push(AbiParam::new(types::I64));
        }
        if builtin.returns_value() {
            signature.returns.push(AbiParam::new(types::I64));
        }
        signature
    }

    /// Where memory `index`'s definition is.
    pub fn memory(&self, index: u32) -> Result<MemoryLocation, CompileError> {
        self.memories
            .get(index as usize)
            .copied()
            .ok_or_else(|| missing("memory", index))
    }

    /// Where table `index`'s definition is.
    pub fn table(&self, index: u32) -> Result<TableLocation, CompileError> {
        let table = self
            .module
            .tables
            .get(index as usize)
            .ok_or_else(|| missing("table", index))?;
        if table.table64 {
            return Err(CompileError::Unsupported("64-bit tables".into()));
        }
        Ok(match index.checked_sub(self.module.num_imported_tables) {
            None => {
                let import = self
                    .shape
                    .vmctx_table_import(TableIndex::from_u32(index))
                    .ok_or_else(|| missing("table import", index))?;
                TableLocation::Pointer(field(import, offset_of!(VMTableImport, from))?)
            }
            Some(defined) => {
                let definition = self
                    .shape
                    .vmctx_table_definition(DefinedTableIndex::from_u32(defined))
                    .ok_or_else(|| missing("defined table", index))?;
                TableLocation::Inline(offset32(definition)?)
            }
        })
    }

    /// Global `index`: where it is and its type.
    pub fn global(&self, index: u32) -> Result<GlobalInfo, CompileError> {
        let global = self
            .module
            .globals
            .get(index as usize)
            .ok_or_else(|| missing("global", index))?;
        let ty = ir_type(global.content)?;
        let location = match index.checked_sub(self.module.num_imported_globals) {
            None => {
                let import = self
                    .shape
                    .vmctx_global_import(GlobalIndex::from_u32(index))
                    .ok_or_else(|| missing("global import", index))?;
                GlobalLocation::Pointer(field(import, offset_of!(VMGlobalImport, from))?)
            }
            Some(defined) => {
                let definition = self
                    .shape
                    .vmctx_global_definition(DefinedGlobalIndex::from_u32(defined))
                    .ok_or_else(|| missing("defined global", index))?;
                GlobalLocation::Inline(field(definition, offset_of!(VMGlobalDefinition, storage))?)
            }
        };
        Ok(GlobalInfo {
            location,
            ty,
            mutable: global.mutable,
        })
    }

    /// The VMContext offsets of imported function `index`'s `wasm_call` and `vmctx`.
    pub fn function_import(&self, index: FuncIndex) -> Result<(i32, i32), CompileError> {
        let import = self
            .shape
            .vmctx_function_import(index)
            .ok_or_else(|| missing("function import", index.as_u32()))?;
        Ok((
            field(import, offset_of!(VMFunctionImport, wasm_call))?,
            field(import, offset_of!(VMFunctionImport, vmctx))?,
        ))
    }
}

/// The WebAssembly-convention signature of `ty`.
pub(super) fn wasm_signature(ty: &FuncType) -> Result<Signature, CompileError> {
    let mut signature = Signature::new(CallConv::Tail);
    signature
        .params
        .push(AbiParam::special(POINTER, ArgumentPurpose::VMContext));
    signature.params.push(AbiParam::new(POINTER));
    // What is left of the stack budget, in frame costs (`stack_cost`).
    signature.params.push(AbiParam::new(types::I64));
    for param in &ty.params {
        signature.params.push(AbiParam::new(ir_type(*param)?));
    }
    for result in &ty.results {
        signature.returns.push(AbiParam::new(ir_type(*result)?));
    }
    Ok(signature)
}

/// The IR type of a WebAssembly value type.
pub(super) fn ir_type(ty: ValType) -> Result<ir::Type, CompileError> {
    match ty {
        ValType::I32 => Ok(types::I32),
        ValType::I64 => Ok(types::I64),
        ValType::F32 => Ok(types::F32),
        ValType::F64 => Ok(types::F64),
        // References are pointers: a `*const VMFuncRef` for funcref, null as 0.
        ValType::Ref(RefType::Func | RefType::Extern) => Ok(POINTER),
        ValType::V128 => Ok(V128),
        ValType::Ref(RefType::Exn) => Err(CompileError::Unsupported("exnref".into())),
    }
}

/// The IR type of a value type as wasmparser spells it (block types, typed `select`).
pub(super) fn parser_ir_type(ty: wasmparser::ValType) -> Result<ir::Type, CompileError> {
    match ty {
        wasmparser::ValType::I32 => Ok(types::I32),
        wasmparser::ValType::I64 => Ok(types::I64),
        wasmparser::ValType::F32 => Ok(types::F32),
        wasmparser::ValType::F64 => Ok(types::F64),
        wasmparser::ValType::V128 => Ok(V128),
        wasmparser::ValType::Ref(reference)
            if reference == wasmparser::RefType::FUNCREF
                || reference == wasmparser::RefType::EXTERNREF =>
        {
            Ok(POINTER)
        }
        wasmparser::ValType::Ref(reference) => Err(CompileError::Unsupported(alloc::format!(
            "the reference type {reference}"
        ))),
    }
}

/// Flags for loads of VMContext fields and runtime structures that never change while
/// an instance lives (pointers to definitions, memory bases, type ids): aligned, never
/// trapping, free to hoist and merge.
pub(super) fn readonly_flags() -> MemFlagsData {
    MemFlagsData::trusted().with_readonly().with_can_move()
}

/// Flags for loads and stores of runtime structures that may change (table bounds, memory
/// lengths, mutable globals): aligned, never trapping.
pub(super) fn mutable_flags() -> MemFlagsData {
    MemFlagsData::trusted()
}

/// Flags for accesses to linear memory: little-endian, possibly unaligned, and recorded
/// in the trap table as `out of bounds memory access` (the guard pages fault).
pub(super) fn heap_flags() -> MemFlagsData {
    MemFlagsData::new()
        .with_endianness(ir::Endianness::Little)
        .with_trap_code(Some(trap_code(Trap::MemoryOutOfBounds)))
}

/// The offset of a [`VMMemoryDefinition`] field.
pub(super) const MEMORY_BASE: i32 = offset_of!(VMMemoryDefinition, base) as i32;
/// The offset of [`VMMemoryDefinition::current_length`].
pub(super) const MEMORY_LENGTH: i32 = offset_of!(VMMemoryDefinition, current_length) as i32;
/// The offset of [`VMTableDefinition::base`].
pub(super) const TABLE_BASE: i32 = offset_of!(VMTableDefinition, base) as i32;
/// The offset of [`VMTableDefinition::current_elements`].
pub(super) const TABLE_LENGTH: i32 = offset_of!(VMTableDefinition, current_elements) as i32;

/// The byte offset of the builtin's pointer in the builtin array, as an IR offset.
pub(super) const fn builtin_offset(builtin: Builtin) -> i32 {
    builtin.offset() as i32
}

/// A VMContext offset as an IR offset.
pub(super) fn offset32(offset: u32) -> Result<i32, CompileError> {
    i32::try_from(offset)
        .map_err(|_| CompileError::Unsupported("VMContext offsets past 2 GiB".into()))
}

/// `base + field` as an IR offset.
fn field(base: u32, field: usize) -> Result<i32, CompileError> {
    let field = u32::try_from(field).map_err(|_| CompileError::invalid("field offset"))?;
    offset32(
        base.checked_add(field)
            .ok_or_else(|| CompileError::invalid("VMContext offset overflows"))?,
    )
}

fn missing(what: &str, index: u32) -> CompileError {
    CompileError::invalid(alloc::format!(
        "no {what} {index} in the module or its layout"
    ))
}
