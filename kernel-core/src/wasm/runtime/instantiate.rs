//! Instantiation: linking imports, filling the VMContext, initialising segments, running
//! the start function.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::ptr::NonNull;
use core::sync::atomic::AtomicU64;

use super::epoch::EPOCH;

use super::engine::{Module, ModuleCode, RuntimeHal};
use super::host::HostFunc;
use super::instance::InstanceState;
use super::stable::StableBox;
use super::store::{
    CallError, Extern, Func, GlobalEntry, InstanceId, InstantiationError, StoreInner, read_global,
};
use super::values::{FuncRef, Val};
use crate::wasm::abi::VMStoreContext;
use crate::wasm::env::vmshape::VMShape;
use crate::wasm::env::{
    ConstExpr, ConstOp, DataKind, ElementItems, ElementKind, EntityIndex, FuncType, RefType,
};
use crate::wasm::indices::{
    DefinedGlobalIndex, DefinedMemoryIndex, DefinedTableIndex, FuncIndex, FuncRefIndex,
    OwnedMemoryIndex,
};
use crate::wasm::trap::Trap;
use crate::wasm::vm::vmcontext::{
    VMCONTEXT_MAGIC, VMFuncRef, VMFunctionBody, VMFunctionImport, VMGlobalDefinition,
    VMGlobalImport, VMMemoryDefinition, VMMemoryImport, VMSharedTypeIndex, VMTableDefinition,
    VMTableImport,
};

fn unlinkable(message: impl Into<String>) -> InstantiationError {
    InstantiationError::Unlinkable(message.into())
}

fn trap(trap: Trap) -> InstantiationError {
    InstantiationError::Trap(CallError::Trap {
        trap,
        detail: None,
        backtrace: Vec::new(),
        omitted_frames: 0,
    })
}

/// Index `index` of a typed index space as the `u32` the index type wants.
fn index_u32(index: usize) -> u32 {
    // Index spaces of validated modules are far smaller than u32::MAX.
    u32::try_from(index).unwrap_or(u32::MAX)
}

/// What instantiation leaves to do once the instance is in the store: its start function
/// (the function and its type), which runs with no borrow of the store in use.
pub(crate) type StartCall = Option<(VMFuncRef, FuncType)>;

impl<'e, H: RuntimeHal> StoreInner<'e, H> {
    /// Instantiates `module` with `imports` and initialises its segments; returns the new
    /// instance and its start function, which the caller runs ([`StoreInner::call_raw`]:
    /// generated code must not run while this borrow of the store is in use).
    ///
    /// A failure before the instance joins the store takes back what it had added
    /// (memories, tables, globals): they would point into its freed VMContext.
    pub(crate) fn instantiate(
        &mut self,
        module: &Module<'e, H>,
        imports: &[Extern],
    ) -> Result<(InstanceId, StartCall), InstantiationError> {
        let code = &module.inner;
        let info = &code.info;
        if imports.len() != info.imports.len() {
            return Err(unlinkable(format!(
                "expected {} imports, got {}",
                info.imports.len(),
                imports.len()
            )));
        }
        if info.num_defined_tags() > 0 || info.num_imported_tags > 0 {
            return Err(InstantiationError::Unsupported(String::from(
                "exception tags",
            )));
        }
        // The first module seen provides the entry trampoline of every call; the store
        // keeps its code alive, even when this instantiation fails and the caller drops
        // the module.
        if self.entry.is_none() {
            self.entry = Some(code.clone());
        }
        let id = InstanceId(self.instances.len());
        let mut state = StableBox::new(InstanceState::new(
            module.inner.clone(),
            self.root.cast(),
            id,
        ));
        InstanceState::link_back(&state);
        let before = (self.memories.len(), self.tables.len(), self.globals.len());
        if let Err(error) = self.build(&mut state, code, imports) {
            self.take_back(before);
            return Err(error);
        }
        self.instances.push(state);
        self.initialize_segments(id)?;
        let start = match info.start {
            Some(start) => {
                let ty = info
                    .function_type(start)
                    .cloned()
                    .ok_or_else(|| unlinkable("bad start function"))?;
                Some((self.funcref_of(id, start), ty))
            }
            None => None,
        };
        Ok((id, start))
    }

    /// Links and defines everything of the instance `state` (of module `code`) before its
    /// segments are initialised; on failure the caller takes back what was added.
    fn build(
        &mut self,
        state: &mut InstanceState,
        code: &Arc<ModuleCode>,
        imports: &[Extern],
    ) -> Result<(), InstantiationError> {
        state.type_ids = code
            .info
            .types
            .iter()
            .map(|ty| self.intern_type(ty))
            .collect();
        self.write_header(state);
        self.link_imports(state, imports)?;
        self.define_memories_and_tables(state)?;
        self.define_functions(state);
        self.define_globals(state)?;
        if !self.code.iter().any(|known| Arc::ptr_eq(known, &code.code)) {
            self.code.push(code.code.clone());
        }
        self.evaluate_segments(state)
    }

    /// Takes back the memories, tables and globals added since the store had `before`
    /// of each, by an instantiation that failed before its instance joined the store.
    fn take_back(&mut self, before: (usize, usize, usize)) {
        let (memories, tables, globals) = before;
        let hal = self.engine.hal();
        for mut entry in self.memories.drain(memories..) {
            // Safety: the memory was made for the failed instance, whose VMContext (the
            // only thing that pointed at it) is gone; nothing can reach it.
            unsafe { entry.memory.release(hal) };
        }
        self.tables.truncate(tables);
        self.globals.truncate(globals);
    }

    fn write_header(&self, state: &InstanceState) {
        let root = self.root.as_ptr();
        // Safety: the VMContext allocation is at least `DYNAMIC_DATA_START` bytes and the
        // header fields are at their `VMShape` offsets; every pointer stored points at
        // store- or instance-owned data that lives as long as the instance. The store's
        // fields are addressed from its root pointer without making a reference, so the
        // pointers stay valid when later borrows of the store come and go.
        unsafe {
            state.field::<u32>(VMShape::MAGIC).write(VMCONTEXT_MAGIC);
            state
                .field::<*mut VMStoreContext>(VMShape::STORE_CONTEXT)
                .write(&raw mut (*root).context);
            state
                .field::<*const usize>(VMShape::BUILTIN_FUNCTIONS)
                .write((&raw const (*root).builtins).cast::<usize>());
            state
                .field::<*const u32>(VMShape::TYPE_IDS)
                .write(state.type_ids.as_ptr());
            state
                .field::<*const AtomicU64>(VMShape::EPOCH_PTR)
                .write(core::ptr::from_ref(&EPOCH));
        }
    }

    fn link_imports(
        &mut self,
        state: &mut InstanceState,
        imports: &[Extern],
    ) -> Result<(), InstantiationError> {
        let code = state.module.clone();
        let info = &code.info;
        let shape = &code.shape;
        for (import, value) in info.imports.iter().zip(imports) {
            let mismatch = || {
                unlinkable(format!(
                    "incompatible import type for {}::{}",
                    import.module, import.name
                ))
            };
            match (import.entity, *value) {
                (EntityIndex::Function(func), Extern::Func(provided)) => {
                    let expected = info.function_type(func).ok_or_else(mismatch)?;
                    let provided_ty = self.func_type(provided).ok_or_else(mismatch)?;
                    if provided_ty != expected {
                        return Err(mismatch());
                    }
                    let type_index = info.functions[func.index()];
                    let record = match provided {
                        Func::Wasm(reference) => {
                            // Safety: FuncRefs of this store point at live VMFuncRefs.
                            let funcref = unsafe { *reference.0.as_ptr() };
                            VMFunctionImport {
                                wasm_call: funcref.wasm_call,
                                array_call: funcref.array_call,
                                vmctx: funcref.vmctx,
                            }
                        }
                        Func::Host(id) => {
                            let host = self.host_funcs.get(id.0).ok_or_else(mismatch)?;
                            VMFunctionImport {
                                wasm_call: code.wasm_to_host[type_index.index()]
                                    as *const VMFunctionBody,
                                array_call: code.array_shims[type_index.index()]
                                    as *const VMFunctionBody,
                                vmctx: HostFunc::context_pointer(host).cast(),
                            }
                        }
                    };
                    let offset = shape.vmctx_function_import(func).ok_or_else(mismatch)?;
                    // Safety: the offset is inside the VMContext (checked accessor).
                    unsafe { state.field::<VMFunctionImport>(offset).write(record) };
                    state.imported_funcs.push(provided);
                }
                (EntityIndex::Memory(memory), Extern::Memory(id)) => {
                    let expected = &info.memories[memory.index()];
                    let entry = self.memories.get(id.0).ok_or_else(mismatch)?;
                    let fits = entry.memory.pages() >= expected.minimum
                        && match expected.maximum {
                            None => true,
                            Some(maximum) => entry
                                .memory
                                .declared_maximum()
                                .is_some_and(|actual| actual <= maximum),
                        };
                    if !fits || expected.shared || expected.memory64 {
                        return Err(mismatch());
                    }
                    let offset = shape.vmctx_memory_import(memory).ok_or_else(mismatch)?;
                    let record = VMMemoryImport {
                        from: entry.definition.as_ptr(),
                        vmctx: entry.owner,
                    };
                    // Safety: the offset is inside the VMContext (checked accessor).
                    unsafe { state.field::<VMMemoryImport>(offset).write(record) };
                    state.memories.push(id);
                    state.memory_definitions.push(entry.definition);
                }
                (EntityIndex::Table(table), Extern::Table(id)) => {
                    let expected = &info.tables[table.index()];
                    let entry = self.tables.get(id.0).ok_or_else(mismatch)?;
                    let fits = entry.table.element_type() == expected.element
                        && entry.table.len() as u64 >= expected.minimum
                        && match expected.maximum {
                            None => true,
                            Some(maximum) => entry
                                .table
                                .declared_maximum()
                                .is_some_and(|actual| actual <= maximum),
                        };
                    if !fits {
                        return Err(mismatch());
                    }
                    let offset = shape.vmctx_table_import(table).ok_or_else(mismatch)?;
                    let record = VMTableImport {
                        from: entry.definition.as_ptr(),
                        vmctx: entry.owner,
                    };
                    // Safety: the offset is inside the VMContext (checked accessor).
                    unsafe { state.field::<VMTableImport>(offset).write(record) };
                    state.tables.push(id);
                }
                (EntityIndex::Global(global), Extern::Global(id)) => {
                    let expected = info.globals[global.index()];
                    let entry = self.globals.get(id.0).ok_or_else(mismatch)?;
                    if entry.ty != expected {
                        return Err(mismatch());
                    }
                    let offset = shape.vmctx_global_import(global).ok_or_else(mismatch)?;
                    let record = VMGlobalImport {
                        from: entry.definition.as_ptr(),
                    };
                    // Safety: the offset is inside the VMContext (checked accessor).
                    unsafe { state.field::<VMGlobalImport>(offset).write(record) };
                    state.globals.push(entry.definition);
                }
                _ => return Err(mismatch()),
            }
        }
        Ok(())
    }

    fn define_memories_and_tables(
        &mut self,
        state: &mut InstanceState,
    ) -> Result<(), InstantiationError> {
        let code = state.module.clone();
        let info = &code.info;
        let shape = &code.shape;
        let vmctx = state.vmctx();
        for (defined, ty) in info
            .memories
            .iter()
            .skip(info.num_imported_memories as usize)
            .enumerate()
        {
            if ty.shared {
                return Err(InstantiationError::Unsupported(String::from(
                    "shared memories",
                )));
            }
            // Shared memories are refused above, so every defined memory is owned and the
            // owned index is the defined index.
            let offset = shape
                .vmctx_memory_definition(OwnedMemoryIndex::from_u32(index_u32(defined)))
                .ok_or(InstantiationError::OutOfMemory)?;
            let definition = NonNull::new(state.field::<VMMemoryDefinition>(offset))
                .ok_or(InstantiationError::OutOfMemory)?;
            let id = self.add_memory(ty, definition, vmctx)?;
            let pointer_offset = shape
                .vmctx_memory_pointer(DefinedMemoryIndex::from_u32(index_u32(defined)))
                .ok_or(InstantiationError::OutOfMemory)?;
            // Safety: the offset is inside the VMContext (checked accessor).
            unsafe {
                state
                    .field::<*mut VMMemoryDefinition>(pointer_offset)
                    .write(definition.as_ptr())
            };
            state.memories.push(id);
            state.memory_definitions.push(definition);
        }
        for (defined, ty) in info
            .tables
            .iter()
            .skip(info.num_imported_tables as usize)
            .enumerate()
        {
            let offset = shape
                .vmctx_table_definition(DefinedTableIndex::from_u32(index_u32(defined)))
                .ok_or(InstantiationError::OutOfMemory)?;
            let definition = NonNull::new(state.field::<VMTableDefinition>(offset))
                .ok_or(InstantiationError::OutOfMemory)?;
            // Tables with an initialiser expression need typed references, which
            // translation refuses; every table starts null.
            let id = self.add_table(ty, 0, definition, vmctx)?;
            state.tables.push(id);
        }
        Ok(())
    }

    /// Fills the `func_refs` array and the per-function `Func` list.
    fn define_functions(&mut self, state: &mut InstanceState) {
        let code = state.module.clone();
        let info = &code.info;
        let shape = &code.shape;
        for (slot, &func) in info.escaped_functions.iter().enumerate() {
            let funcref = self.make_funcref(state, func);
            if let Some(offset) = shape.vmctx_func_ref(FuncRefIndex::from_u32(index_u32(slot))) {
                // Safety: the offset is inside the VMContext (checked accessor).
                unsafe { state.field::<VMFuncRef>(offset).write(funcref) };
            }
        }
    }

    /// A `VMFuncRef` for function `func` of the instance being built.
    fn make_funcref(&self, state: &InstanceState, func: FuncIndex) -> VMFuncRef {
        let code = &state.module;
        let info = &code.info;
        let type_index = info.functions[func.index()];
        let type_id = VMSharedTypeIndex(state.type_ids[type_index.index()]);
        match info.defined_function(func) {
            Some(defined) => VMFuncRef {
                array_call: code.array_shims[type_index.index()] as *const VMFunctionBody,
                wasm_call: code.code.function_address(defined).unwrap_or(0)
                    as *const VMFunctionBody,
                type_index: type_id,
                vmctx: state.vmctx(),
            },
            None => {
                let offset = code.shape.vmctx_function_import(func).unwrap_or(0);
                // Safety: imports were written by `link_imports` at this checked offset.
                let import = unsafe { state.field::<VMFunctionImport>(offset).read() };
                VMFuncRef {
                    array_call: import.array_call,
                    wasm_call: import.wasm_call,
                    type_index: type_id,
                    vmctx: import.vmctx,
                }
            }
        }
    }

    /// A `VMFuncRef` for any function of a live instance (escaping or not).
    pub(crate) fn funcref_of(&self, instance: InstanceId, func: FuncIndex) -> VMFuncRef {
        self.make_funcref(&self.instances[instance.0], func)
    }

    fn define_globals(&mut self, state: &mut InstanceState) -> Result<(), InstantiationError> {
        let code = state.module.clone();
        let info = &code.info;
        for (defined, init) in info.global_initializers.iter().enumerate() {
            let global = info.num_imported_globals as usize + defined;
            let ty = info.globals[global];
            let value = self.evaluate(state, init)?;
            let offset = code
                .shape
                .vmctx_global_definition(DefinedGlobalIndex::from_u32(index_u32(defined)))
                .ok_or(InstantiationError::OutOfMemory)?;
            let definition = NonNull::new(state.field::<VMGlobalDefinition>(offset))
                .ok_or(InstantiationError::OutOfMemory)?;
            // Safety: the definition is inside the VMContext, 16-aligned (VMShape aligns
            // the globals array).
            unsafe { (*definition.as_ptr()).storage = value.to_slot() };
            state.globals.push(definition);
            self.globals.push(GlobalEntry { definition, ty });
        }
        Ok(())
    }

    /// Evaluates a constant expression in the context of the instance being built.
    fn evaluate(&self, state: &InstanceState, expr: &ConstExpr) -> Result<Val, InstantiationError> {
        let info = &state.module.info;
        let mut stack: Vec<Val> = Vec::new();
        let bad = || InstantiationError::Unsupported(String::from("malformed constant expression"));
        for op in expr.ops.iter() {
            let value = match *op {
                ConstOp::I32Const(value) => Val::I32(value),
                ConstOp::I64Const(value) => Val::I64(value),
                ConstOp::F32Const(bits) => Val::F32(bits),
                ConstOp::F64Const(bits) => Val::F64(bits),
                ConstOp::V128Const(bits) => Val::V128(bits),
                ConstOp::RefNull(RefType::Extern) => Val::ExternRef(None),
                ConstOp::RefNull(_) => Val::FuncRef(None),
                ConstOp::RefFunc(func) => {
                    let offset = info
                        .func_ref_index(func)
                        .and_then(|slot| state.module.shape.vmctx_func_ref(slot))
                        .ok_or_else(bad)?;
                    Val::FuncRef(NonNull::new(state.field::<VMFuncRef>(offset)).map(FuncRef))
                }
                ConstOp::GlobalGet(global) => {
                    let definition = *state.globals.get(global.index()).ok_or_else(bad)?;
                    read_global(definition, info.globals[global.index()])
                }
                ConstOp::I32Add | ConstOp::I32Sub | ConstOp::I32Mul => {
                    let (Some(Val::I32(right)), Some(Val::I32(left))) = (stack.pop(), stack.pop())
                    else {
                        return Err(bad());
                    };
                    Val::I32(match op {
                        ConstOp::I32Add => left.wrapping_add(right),
                        ConstOp::I32Sub => left.wrapping_sub(right),
                        _ => left.wrapping_mul(right),
                    })
                }
                ConstOp::I64Add | ConstOp::I64Sub | ConstOp::I64Mul => {
                    let (Some(Val::I64(right)), Some(Val::I64(left))) = (stack.pop(), stack.pop())
                    else {
                        return Err(bad());
                    };
                    Val::I64(match op {
                        ConstOp::I64Add => left.wrapping_add(right),
                        ConstOp::I64Sub => left.wrapping_sub(right),
                        _ => left.wrapping_mul(right),
                    })
                }
            };
            stack.push(value);
        }
        match (stack.pop(), stack.is_empty()) {
            (Some(value), true) => Ok(value),
            _ => Err(bad()),
        }
    }

    /// Evaluates every element segment's references into the instance's `elements` and
    /// marks every data segment present, before any segment is used.
    fn evaluate_segments(&self, state: &mut InstanceState) -> Result<(), InstantiationError> {
        let code = state.module.clone();
        let mut elements = Vec::with_capacity(code.info.elements.len());
        for segment in &code.info.elements {
            let values = match &segment.items {
                ElementItems::Functions(functions) => functions
                    .iter()
                    .map(|func| self.escaped_funcref_address(state, *func))
                    .collect::<Result<Box<[_]>, _>>()?,
                ElementItems::Expressions(expressions) => expressions
                    .iter()
                    .map(|expr| self.evaluate(state, expr).map(|value| table_word(&value)))
                    .collect::<Result<Box<[_]>, _>>()?,
            };
            elements.push(values);
        }
        state.elements = elements;
        state.dropped_data = vec![false; code.info.data.len()];
        Ok(())
    }

    /// Initialises the tables and memories from the segments, as the spec does: for each
    /// element segment in order, an active one is `table.init` then `elem.drop`, a
    /// declared one is dropped; then for each data segment in order, an active one is
    /// `memory.init` then `data.drop`. A segment that does not fit traps and the writes
    /// before it stay (the semantics of the current spec, which the `wasm-v1` scripts of
    /// the testsuite also follow).
    fn initialize_segments(&mut self, id: InstanceId) -> Result<(), InstantiationError> {
        let code = self.instances[id.0].module.clone();
        let info = &code.info;
        // Segment indices and lengths are below 2^32: they fit a u64 on every target.
        for (index, segment) in info.elements.iter().enumerate() {
            let len = self.instances[id.0]
                .elements
                .get(index)
                .map_or(0, |values| values.len() as u64);
            let index = index as u64;
            match &segment.kind {
                ElementKind::Active { table, offset } => {
                    let offset = self.segment_offset(&self.instances[id.0], offset)?;
                    self.table_init(id, u64::from(table.as_u32()), index, offset, 0, len)
                        .map_err(trap)?;
                    self.elem_drop(id, index);
                }
                ElementKind::Declared => self.elem_drop(id, index),
                ElementKind::Passive => {}
            }
        }
        for (index, segment) in info.data.iter().enumerate() {
            let DataKind::Active { memory, offset } = &segment.kind else {
                continue;
            };
            let index = index as u64;
            let offset = self.segment_offset(&self.instances[id.0], offset)?;
            let len = segment.bytes.len() as u64;
            self.memory_init(id, u64::from(memory.as_u32()), index, offset, 0, len)
                .map_err(trap)?;
            self.data_drop(id, index);
        }
        Ok(())
    }

    fn segment_offset(
        &self,
        state: &InstanceState,
        expr: &ConstExpr,
    ) -> Result<u64, InstantiationError> {
        match self.evaluate(state, expr)? {
            Val::I32(offset) => Ok(u64::from(offset.cast_unsigned())),
            Val::I64(offset) => Ok(offset.cast_unsigned()),
            _ => Err(InstantiationError::Unsupported(String::from(
                "segment offset type",
            ))),
        }
    }

    fn escaped_funcref_address(
        &self,
        state: &InstanceState,
        func: FuncIndex,
    ) -> Result<usize, InstantiationError> {
        let info = &state.module.info;
        let offset = info
            .func_ref_index(func)
            .and_then(|slot| state.module.shape.vmctx_func_ref(slot))
            .ok_or_else(|| {
                InstantiationError::Unsupported(String::from("element function does not escape"))
            })?;
        Ok(state.field::<VMFuncRef>(offset) as usize)
    }
}

/// The table word of a reference value.
fn table_word(value: &Val) -> usize {
    match value {
        Val::FuncRef(reference) => reference.map_or(0, |r| r.0.as_ptr() as usize),
        Val::ExternRef(reference) => reference.map_or(0, |value| value as usize + 1),
        _ => 0,
    }
}
