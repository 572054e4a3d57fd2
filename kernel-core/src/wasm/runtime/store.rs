//! Stores: the instances, memories, tables, globals and host functions that can reach each
//! other, and calls into them.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use core::ptr::NonNull;
use core::sync::atomic::AtomicUsize;

use super::builtins::builtin_array;
use super::code::CodeInfo;
use super::engine::{Engine, Module, RuntimeHal, describe_function};
use super::epoch::{EpochAction, EpochHandler};
use super::host::{Caller, HostCallback, HostFunc};
use super::instance::InstanceState;
use super::memory::LinearMemory;
use super::table::Table;
use super::trap_handler::{CallContext, TrapRecord};
use super::values::{FuncRef, Val};
use crate::wasm::abi::{
    Builtin, EntryTrampoline, VALUE_SLOT_SIZE, VMActivation, VMStoreContext, WASM_PAGE_SIZE,
};
use crate::wasm::env::{FuncType, GlobalType, MemoryType, TableType};
use crate::wasm::indices::FuncIndex;
use crate::wasm::trap::Trap;
use crate::wasm::vm::vmcontext::{
    VMContext, VMFuncRef, VMGlobalDefinition, VMMemoryDefinition, VMTableDefinition,
};

/// An instance of a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InstanceId(pub(crate) usize);

/// A host function of a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HostFuncId(pub(crate) usize);

/// A linear memory of a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MemoryId(pub(crate) usize);

/// A table of a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TableId(pub(crate) usize);

/// A global of a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GlobalId(pub(crate) usize);

/// A function of a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Func {
    /// A WebAssembly function (or a host function re-exported by an instance), by its
    /// `VMFuncRef`.
    Wasm(FuncRef),
    /// A host function not (yet) seen through an instance.
    Host(HostFuncId),
}

/// Something an instance exports or imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extern {
    /// A function.
    Func(Func),
    /// A linear memory.
    Memory(MemoryId),
    /// A table.
    Table(TableId),
    /// A global.
    Global(GlobalId),
}

/// One frame of a WebAssembly backtrace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BacktraceFrame {
    /// `module!function` (names from the name section, `<func N>` without one).
    pub function: String,
    /// The function index in its module.
    pub func: FuncIndex,
    /// Byte offset of the instruction in the module binary.
    pub wasm_offset: Option<u32>,
}

impl fmt::Display for BacktraceFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (func {})", self.function, self.func)?;
        if let Some(offset) = self.wasm_offset {
            write!(f, " at offset {offset:#x}")?;
        }
        Ok(())
    }
}

/// Why a call did not return values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// WebAssembly trapped.
    Trap {
        /// The trap.
        trap: Trap,
        /// What a failing host function said, for [`Trap::HostError`].
        detail: Option<String>,
        /// Innermost frame first.
        backtrace: Vec<BacktraceFrame>,
    },
    /// The arguments do not match the function's type.
    BadArguments(String),
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Trap { trap, detail, .. } => {
                f.write_str(trap.message())?;
                if let Some(detail) = detail {
                    write!(f, ": {detail}")?;
                }
                Ok(())
            }
            Self::BadArguments(message) => f.write_str(message),
        }
    }
}

/// Why instantiation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstantiationError {
    /// The imports do not fit the module's imports (count, kind or type), or (WebAssembly
    /// 1.0) a segment does not fit its table or memory.
    Unlinkable(String),
    /// A segment initialisation or the start function trapped.
    Trap(CallError),
    /// The module uses something the runtime does not support.
    Unsupported(String),
    /// Memory for a linear memory or table could not be had.
    OutOfMemory,
    /// The store's linear memories would exceed its memory limit
    /// ([`Store::set_memory_limit`]).
    MemoryLimit {
        /// The limit, in bytes.
        limit: u64,
    },
}

impl fmt::Display for InstantiationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unlinkable(message) => write!(f, "unlinkable: {message}"),
            Self::Trap(error) => error.fmt(f),
            Self::Unsupported(message) => write!(f, "unsupported: {message}"),
            Self::OutOfMemory => f.write_str("out of memory"),
            Self::MemoryLimit { limit } => {
                write!(f, "linear memory past the limit of {limit} bytes")
            }
        }
    }
}

pub(crate) struct MemoryEntry {
    pub(crate) memory: LinearMemory,
    pub(crate) definition: NonNull<VMMemoryDefinition>,
    pub(crate) owner: *mut VMContext,
}

pub(crate) struct TableEntry {
    pub(crate) table: Table,
    pub(crate) definition: NonNull<VMTableDefinition>,
    pub(crate) owner: *mut VMContext,
}

pub(crate) struct GlobalEntry {
    pub(crate) definition: NonNull<VMGlobalDefinition>,
    pub(crate) ty: GlobalType,
}

/// The part of a store generated code and builtins reach through raw pointers; boxed so
/// its address is stable.
#[expect(
    clippy::vec_box,
    reason = "generated code and other instances hold pointers to these: each must keep its address when the vector grows"
)]
pub(crate) struct StoreInner<'e, H: RuntimeHal> {
    pub(crate) engine: &'e Engine<H>,
    /// What the VMContext header's `store_context` points at.
    pub(crate) context: VMStoreContext,
    /// The builtin array the VMContext header's `builtin_functions` points at.
    pub(crate) builtins: [usize; Builtin::COUNT],
    /// Engine-wide function types of this store, by id.
    pub(crate) types: Vec<FuncType>,
    /// The code of every module instantiated here, for the trap handler.
    pub(crate) code: Vec<Arc<CodeInfo>>,
    /// The entry trampoline (any module's: they are identical).
    pub(crate) entry: Option<usize>,
    pub(crate) instances: Vec<Box<InstanceState>>,
    pub(crate) memories: Vec<MemoryEntry>,
    pub(crate) tables: Vec<TableEntry>,
    pub(crate) globals: Vec<GlobalEntry>,
    pub(crate) host_funcs: Vec<Box<HostFunc<'e>>>,
    /// The stack limit set with [`Store::set_stack_limit`], if any.
    pub(crate) fixed_stack_limit: Option<usize>,
    /// What runs when generated code passes the epoch deadline.
    pub(crate) epoch_handler: Option<EpochHandler<'e>>,
    /// The most WebAssembly pages all linear memories together may have.
    pub(crate) memory_limit_pages: u64,
    /// Definitions of memories, tables and globals made by the host, not by an instance.
    pub(crate) host_memory_definitions: Vec<Box<VMMemoryDefinition>>,
    pub(crate) host_table_definitions: Vec<Box<VMTableDefinition>>,
    pub(crate) host_global_definitions: Vec<Box<VMGlobalDefinition>>,
}

/// A store: instances and the objects they share. Dropping it frees them all.
pub struct Store<'e, H: RuntimeHal> {
    pub(crate) inner: Box<StoreInner<'e, H>>,
}

impl<'e, H: RuntimeHal> Store<'e, H> {
    /// An empty store.
    pub fn new(engine: &'e Engine<H>) -> Self {
        Self {
            inner: Box::new(StoreInner {
                engine,
                context: VMStoreContext::default(),
                builtins: builtin_array::<H>(),
                types: Vec::new(),
                code: Vec::new(),
                entry: None,
                instances: Vec::new(),
                memories: Vec::new(),
                tables: Vec::new(),
                globals: Vec::new(),
                host_funcs: Vec::new(),
                fixed_stack_limit: None,
                epoch_handler: None,
                memory_limit_pages: u64::MAX,
                host_memory_definitions: Vec::new(),
                host_table_definitions: Vec::new(),
                host_global_definitions: Vec::new(),
            }),
        }
    }

    /// Instantiates `module` with `imports` (one per module import, in order), runs its
    /// segment initialisation and start function.
    ///
    /// # Errors
    /// [`InstantiationError`]; after a trap the objects the module already changed keep
    /// their changes (WebAssembly 2.0 semantics).
    pub fn instantiate(
        &mut self,
        module: &Module<'e, H>,
        imports: &[Extern],
    ) -> Result<InstanceId, InstantiationError> {
        self.inner.instantiate(module, imports)
    }

    /// The export `name` of `instance`.
    #[must_use]
    pub fn export(&self, instance: InstanceId, name: &str) -> Option<Extern> {
        self.inner.export(instance, name)
    }

    /// Every export of `instance`, in the module's order.
    #[must_use]
    pub fn exports(&self, instance: InstanceId) -> Vec<(String, Extern)> {
        let Some(state) = self.inner.instances.get(instance.0) else {
            return Vec::new();
        };
        state
            .module
            .info
            .exports
            .iter()
            .filter_map(|export| {
                Some((
                    export.name.clone(),
                    self.inner.export(instance, &export.name)?,
                ))
            })
            .collect()
    }

    /// The type of `func`.
    #[must_use]
    pub fn func_type(&self, func: Func) -> Option<&FuncType> {
        self.inner.func_type(func)
    }

    /// The type and current value of a global.
    #[must_use]
    pub fn global(&self, global: GlobalId) -> Option<(GlobalType, Val)> {
        let entry = self.inner.globals.get(global.0)?;
        Some((entry.ty, read_global(entry.definition, entry.ty)))
    }

    /// The contents of a linear memory.
    #[must_use]
    pub fn memory_data(&mut self, memory: MemoryId) -> Option<&mut [u8]> {
        let entry = self.inner.memories.get_mut(memory.0)?;
        let len = entry.memory.byte_len();
        // Safety: the first `len` bytes of the memory are committed read+write, and the
        // mutable borrow of the store keeps WebAssembly from running meanwhile.
        Some(unsafe { core::slice::from_raw_parts_mut(entry.memory.base().as_ptr(), len) })
    }

    /// Adds a host function.
    pub fn new_host_func(&mut self, ty: FuncType, callback: HostCallback<'e>) -> Func {
        let type_index = self.inner.intern_type(&ty);
        self.inner
            .host_funcs
            .push(HostFunc::new(ty, type_index, callback));
        Func::Host(HostFuncId(self.inner.host_funcs.len() - 1))
    }

    /// Adds a linear memory made by the host.
    ///
    /// # Errors
    /// [`InstantiationError::Unsupported`] for 64-bit or shared memories,
    /// [`InstantiationError::OutOfMemory`] when it cannot be reserved.
    pub fn new_memory(&mut self, ty: &MemoryType) -> Result<MemoryId, InstantiationError> {
        let definition = Box::new(VMMemoryDefinition {
            base: core::ptr::null_mut(),
            current_length: AtomicUsize::new(0),
        });
        self.inner.host_memory_definitions.push(definition);
        let slot = self
            .inner
            .host_memory_definitions
            .last_mut()
            .map(|definition| NonNull::from(&mut **definition));
        let definition = slot.ok_or(InstantiationError::OutOfMemory)?;
        self.inner.add_memory(ty, definition, core::ptr::null_mut())
    }

    /// Adds a table made by the host, every element null.
    ///
    /// # Errors
    /// [`InstantiationError::OutOfMemory`] when the table is too large.
    pub fn new_table(&mut self, ty: &TableType) -> Result<TableId, InstantiationError> {
        let definition = Box::new(VMTableDefinition {
            base: core::ptr::null_mut(),
            current_elements: 0,
        });
        self.inner.host_table_definitions.push(definition);
        let slot = self
            .inner
            .host_table_definitions
            .last_mut()
            .map(|definition| NonNull::from(&mut **definition));
        let definition = slot.ok_or(InstantiationError::OutOfMemory)?;
        self.inner
            .add_table(ty, 0, definition, core::ptr::null_mut())
    }

    /// Adds a global made by the host.
    ///
    /// # Errors
    /// [`InstantiationError::Unlinkable`] when `value` is not of the global's type.
    pub fn new_global(
        &mut self,
        ty: GlobalType,
        value: Val,
    ) -> Result<GlobalId, InstantiationError> {
        if value.ty() != ty.content {
            return Err(InstantiationError::Unlinkable(String::from(
                "global value of the wrong type",
            )));
        }
        let mut definition = Box::new(VMGlobalDefinition { storage: [0; 16] });
        definition.storage = value.to_slot();
        let pointer = NonNull::from(&mut *definition);
        self.inner.host_global_definitions.push(definition);
        self.inner.globals.push(GlobalEntry {
            definition: pointer,
            ty,
        });
        Ok(GlobalId(self.inner.globals.len() - 1))
    }

    /// Makes `limit` the lowest stack address WebAssembly code of this store may use, for
    /// every call from now on: the code runs on a stack whose bounds the caller knows (a
    /// process's own stack), and `limit` leaves room below it for the host functions and
    /// builtins that code calls. Without it, each outermost call allows
    /// [`super::EngineConfig::wasm_stack_size`] bytes below the caller's frame.
    pub fn set_stack_limit(&mut self, limit: usize) {
        self.inner.fixed_stack_limit = Some(limit);
        self.inner.context.stack_limit = limit;
    }

    /// Limits the linear memory of this store, all memories together, to `bytes` (rounded
    /// down to WebAssembly pages): `memory.grow` past it fails (returns -1), and
    /// instantiating a module whose memories would pass it fails with
    /// [`InstantiationError::MemoryLimit`].
    pub fn set_memory_limit(&mut self, bytes: u64) {
        self.inner.memory_limit_pages = bytes / WASM_PAGE_SIZE;
    }

    /// Sets the epoch at which this store's code calls its epoch handler (`u64::MAX`: never).
    pub fn set_epoch_deadline(&mut self, deadline: u64) {
        self.inner
            .context
            .epoch_deadline
            .store(deadline, core::sync::atomic::Ordering::Relaxed);
    }

    /// Installs what runs when this store's code reaches its epoch deadline; without one,
    /// reaching it only moves the deadline to `u64::MAX`.
    pub fn set_epoch_handler(&mut self, handler: EpochHandler<'e>) {
        self.inner.epoch_handler = Some(handler);
    }

    /// Whether `instance`'s module imports a table or a global.
    #[must_use]
    pub fn imports_tables_or_globals(&self, instance: InstanceId) -> bool {
        use crate::wasm::env::EntityIndex;
        self.inner.instances.get(instance.0).is_some_and(|state| {
            state.module.info.imports.iter().any(|import| {
                matches!(
                    import.entity,
                    EntityIndex::Table(_) | EntityIndex::Global(_)
                )
            })
        })
    }

    /// Gives back the linear memories `instance` defined (their address space and pages),
    /// for an instance nothing can reach any more: the spec-script runner's anonymous
    /// modules once the next module replaces them (a script of 40 000 modules would
    /// otherwise run out of address space at 8 GiB a memory).
    ///
    /// # Safety
    /// Nothing may use `instance` or its memories again: no export of it is held, no other
    /// instance imported any of its memories, and none of its functions is reachable
    /// (through a table or global it imported, for instance).
    pub unsafe fn release_instance_memories(&mut self, instance: InstanceId) {
        let Some(state) = self.inner.instances.get(instance.0) else {
            return;
        };
        let owner = state.vmctx();
        let hal = self.inner.engine.hal();
        for entry in &mut self.inner.memories {
            if entry.owner == owner {
                // Safety: the caller guarantees nothing uses the instance's memories.
                unsafe { entry.memory.release(hal) };
            }
        }
    }

    /// Calls `func` with `args`.
    ///
    /// # Errors
    /// [`CallError::BadArguments`] when the arguments do not fit the function's type,
    /// [`CallError::Trap`] when it traps.
    pub fn call(&mut self, func: Func, args: &[Val]) -> Result<Vec<Val>, CallError> {
        self.inner.call(func, args)
    }
}

impl<H: RuntimeHal> Drop for Store<'_, H> {
    fn drop(&mut self) {
        let hal = self.inner.engine.hal();
        for entry in &mut self.inner.memories {
            // Safety: the store is going away with every instance that could use the
            // memory; nothing runs any more.
            unsafe { entry.memory.release(hal) };
        }
    }
}

/// Reads a global's value.
pub(crate) fn read_global(definition: NonNull<VMGlobalDefinition>, ty: GlobalType) -> Val {
    // Safety: global definitions live as long as their store, which the caller borrows.
    let storage = unsafe { (*definition.as_ptr()).storage };
    Val::from_slot(ty.content, storage)
}

impl<'e, H: RuntimeHal> StoreInner<'e, H> {
    /// The engine-wide id of `ty` in this store, registering it when new.
    pub(crate) fn intern_type(&mut self, ty: &FuncType) -> u32 {
        let index = match self.types.iter().position(|known| known == ty) {
            Some(index) => index,
            None => {
                self.types.push(ty.clone());
                self.types.len() - 1
            }
        };
        u32::try_from(index).unwrap_or(u32::MAX)
    }

    pub(crate) fn add_memory(
        &mut self,
        ty: &MemoryType,
        definition: NonNull<VMMemoryDefinition>,
        owner: *mut VMContext,
    ) -> Result<MemoryId, InstantiationError> {
        if ty.memory64 || ty.shared || ty.page_size_log2 != 16 {
            return Err(InstantiationError::Unsupported(String::from(
                "64-bit, shared and custom-page-size memories",
            )));
        }
        if self.memory_pages().saturating_add(ty.minimum) > self.memory_limit_pages {
            return Err(InstantiationError::MemoryLimit {
                limit: self.memory_limit_pages.saturating_mul(WASM_PAGE_SIZE),
            });
        }
        let mut memory = LinearMemory::new(self.engine.hal(), ty)
            .map_err(|_| InstantiationError::OutOfMemory)?;
        // Safety: the definition lives in a store-owned box or in an instance's VMContext,
        // both kept until the store drops, and only this memory writes it.
        unsafe { memory.attach(definition) };
        self.memories.push(MemoryEntry {
            memory,
            definition,
            owner,
        });
        Ok(MemoryId(self.memories.len() - 1))
    }

    pub(crate) fn add_table(
        &mut self,
        ty: &TableType,
        initial: usize,
        definition: NonNull<VMTableDefinition>,
        owner: *mut VMContext,
    ) -> Result<TableId, InstantiationError> {
        if ty.table64 {
            return Err(InstantiationError::Unsupported(String::from(
                "64-bit tables",
            )));
        }
        let mut table = Table::new(ty, initial).ok_or(InstantiationError::OutOfMemory)?;
        // Safety: as for memories: the definition outlives the table's changes.
        unsafe { table.attach(definition) };
        self.tables.push(TableEntry {
            table,
            definition,
            owner,
        });
        Ok(TableId(self.tables.len() - 1))
    }

    /// Generated code passed the epoch deadline: asks the epoch handler what to do and
    /// sets the new deadline. Returns whether the code must trap with `interrupted`.
    pub(crate) fn epoch_interrupt(&mut self) -> bool {
        let action = match self.epoch_handler.as_mut() {
            Some(handler) => handler(),
            None => EpochAction::Continue { deadline: u64::MAX },
        };
        match action {
            EpochAction::Continue { deadline } => {
                self.context
                    .epoch_deadline
                    .store(deadline, core::sync::atomic::Ordering::Relaxed);
                false
            }
            EpochAction::Interrupt => true,
        }
    }

    /// The pages of every linear memory of the store together.
    fn memory_pages(&self) -> u64 {
        self.memories
            .iter()
            .fold(0u64, |sum, entry| sum.saturating_add(entry.memory.pages()))
    }

    pub(crate) fn grow_memory(&mut self, memory: MemoryId, delta: u64) -> Option<u64> {
        if self.memory_pages().saturating_add(delta) > self.memory_limit_pages {
            return None;
        }
        let hal = self.engine.hal();
        self.memories.get_mut(memory.0)?.memory.grow(hal, delta)
    }

    pub(crate) fn func_type(&self, func: Func) -> Option<&FuncType> {
        match func {
            Func::Host(id) => self.host_funcs.get(id.0).map(|host| &host.ty),
            Func::Wasm(reference) => {
                // Safety: `FuncRef`s handed out by this store point at VMFuncRefs that
                // live as long as the store.
                let type_index = unsafe { (*reference.0.as_ptr()).type_index };
                self.types.get(type_index.0 as usize)
            }
        }
    }

    pub(crate) fn export(&self, instance: InstanceId, name: &str) -> Option<Extern> {
        use crate::wasm::env::EntityIndex;
        let state = self.instances.get(instance.0)?;
        let export = state
            .module
            .info
            .exports
            .iter()
            .find(|export| export.name == name)?;
        Some(match export.entity {
            EntityIndex::Function(func) => {
                let module = &state.module.info;
                match module.func_ref_index(func) {
                    Some(slot) => {
                        let offset = state.module.shape.vmctx_func_ref(slot)?;
                        Extern::Func(Func::Wasm(FuncRef(NonNull::new(
                            state.field::<VMFuncRef>(offset),
                        )?)))
                    }
                    None => Extern::Func(*state.imported_funcs.get(func.index())?),
                }
            }
            EntityIndex::Memory(memory) => Extern::Memory(*state.memories.get(memory.index())?),
            EntityIndex::Table(table) => Extern::Table(*state.tables.get(table.index())?),
            EntityIndex::Global(global) => {
                let definition = *state.globals.get(global.index())?;
                let position = self
                    .globals
                    .iter()
                    .position(|entry| entry.definition == definition)?;
                Extern::Global(GlobalId(position))
            }
            EntityIndex::Tag(_) => return None,
        })
    }

    pub(crate) fn call(&mut self, func: Func, args: &[Val]) -> Result<Vec<Val>, CallError> {
        let ty = self
            .func_type(func)
            .ok_or_else(|| CallError::BadArguments(String::from("no such function")))?
            .clone();
        let well_typed = args.len() == ty.params.len()
            && args
                .iter()
                .zip(ty.params.iter())
                .all(|(value, ty)| value.ty() == *ty);
        if !well_typed {
            return Err(CallError::BadArguments(format!(
                "expected {} arguments of types {:?}",
                ty.params.len(),
                ty.params
            )));
        }
        match func {
            Func::Host(id) => {
                let host = self
                    .host_funcs
                    .get_mut(id.0)
                    .ok_or_else(|| CallError::BadArguments(String::from("no such function")))?;
                host.call(&mut Caller::new(None), args)
                    .map_err(|detail| CallError::Trap {
                        trap: Trap::HostError,
                        detail: Some(detail),
                        backtrace: Vec::new(),
                    })
            }
            Func::Wasm(reference) => {
                // Safety: `FuncRef`s of this store point at live VMFuncRefs.
                let funcref = unsafe { *reference.0.as_ptr() };
                self.call_funcref(&funcref, &ty, args)
            }
        }
    }

    /// Calls through a `VMFuncRef` of type `ty` (already checked against `args`).
    pub(crate) fn call_funcref(
        &mut self,
        funcref: &VMFuncRef,
        ty: &FuncType,
        args: &[Val],
    ) -> Result<Vec<Val>, CallError> {
        let entry = self
            .entry
            .ok_or_else(|| CallError::BadArguments(String::from("no module loaded")))?;
        let slot = VALUE_SLOT_SIZE as usize;
        let slots = ty.params.len().max(ty.results.len()).max(1);
        let mut values = vec![0u8; slots * slot];
        for (index, value) in args.iter().enumerate() {
            values[index * slot..(index + 1) * slot].copy_from_slice(&value.to_slot());
        }
        let mut context = CallContext {
            activation: VMActivation::default(),
            code: core::ptr::from_ref::<[Arc<CodeInfo>]>(&self.code),
            trap: None,
        };
        let outermost = self.fixed_stack_limit.is_none() && self.context.stack_limit == 0;
        if outermost {
            let here = core::ptr::from_ref(&context) as usize;
            self.context.stack_limit = here.saturating_sub(self.engine.config().wasm_stack_size);
        }
        let hal = self.engine.hal();
        let context_pointer = core::ptr::from_mut(&mut context);
        let previous = hal.set_trap_context(context_pointer as usize);
        // Safety: `entry` is the entry trampoline of published code of this store (see
        // `ModuleCode::entry`), with the C signature `EntryTrampoline`.
        let entry: EntryTrampoline =
            unsafe { core::mem::transmute::<usize, EntryTrampoline>(entry) };
        // Safety: the funcref's shim, code and vmctx belong to live instances or host
        // functions of this store; `values` has a slot for every parameter and result;
        // the activation is the first field of `context`, which outlives the call, and
        // the trap context points at it so a trap lands back here.
        let returned = unsafe {
            entry(
                context_pointer.cast::<VMActivation>(),
                funcref.array_call,
                funcref.wasm_call,
                funcref.vmctx,
                funcref.vmctx,
                values.as_mut_ptr(),
            )
        };
        hal.set_trap_context(previous);
        if outermost {
            self.context.stack_limit = 0;
        }
        // Safety: the trap handler may have written the record behind the compiler's
        // back, through the trap context pointer; read it afresh.
        let record = unsafe { core::ptr::read_volatile(&raw const (*context_pointer).trap) };
        if returned == 0 {
            return Err(self.trap_error(record));
        }
        Ok(ty
            .results
            .iter()
            .enumerate()
            .map(|(index, ty)| {
                let mut bytes = [0u8; VALUE_SLOT_SIZE as usize];
                bytes.copy_from_slice(&values[index * slot..(index + 1) * slot]);
                Val::from_slot(*ty, bytes)
            })
            .collect())
    }

    fn trap_error(&mut self, record: Option<TrapRecord>) -> CallError {
        let Some(record) = record else {
            return CallError::Trap {
                trap: Trap::Killed,
                detail: Some(String::from("trap without a record")),
                backtrace: Vec::new(),
            };
        };
        let backtrace = record
            .frames
            .iter()
            .flatten()
            .filter_map(|frame| {
                let code = self.code.get(frame.module)?;
                Some(BacktraceFrame {
                    function: describe_function(code, frame.frame.func),
                    func: frame.frame.func,
                    wasm_offset: frame.frame.wasm_offset,
                })
            })
            .collect();
        let detail = if record.trap == Trap::HostError {
            self.host_funcs
                .iter_mut()
                .find_map(|host| host.last_error.take())
        } else {
            None
        };
        CallError::Trap {
            trap: record.trap,
            detail,
            backtrace,
        }
    }
}
