//! Stores: the instances, memories, tables, globals and host functions that can reach each
//! other, and calls into them.
//!
//! # Aliasing
//!
//! A store is reached in two ways: through the [`Store`] its owner holds, and, while a call
//! into WebAssembly runs, from builtins (`builtins.rs`) and host calls (`host.rs`) through
//! the raw pointers of the instances' VMContexts. The rules that keep these from
//! overlapping, which Miri checks on the tests that do not run generated code:
//!
//! - The [`StoreInner`] is allocated once and owned through its *root* pointer
//!   (the `inner` field of [`Store`], from `Box::leak`, freed in `Drop`). Every other pointer to it
//!   (each instance's [`InstanceState::store`], [`StoreInner::root`]) is a copy of the
//!   root, and every pointer into it that generated code holds (the VMContext header's
//!   store context and builtin array) is made from the root without a reference.
//! - `&StoreInner` and `&mut StoreInner` are made from the root only for a short, bounded
//!   time: each method of [`Store`] makes one for its own duration, a builtin for the
//!   operation it performs. No reference to the store is in use while generated code or a
//!   host or epoch callback runs: [`StoreInner::call_raw`] copies out what it needs,
//!   drops its borrow, calls, and borrows again afterwards; `Store::call` calls a host
//!   function through the function's own pointer; the epoch handler is taken out of the
//!   store while it runs ([`StoreInner::epoch_interrupt`]) and put back afterwards.
//! - Objects that generated code or other objects point at live in [`StableBox`]es
//!   (instance states and VMContexts, host functions, the host's definitions) or in
//!   memory the HAL reserved (linear memories), so moving their owner never invalidates
//!   those pointers.
//! - A `&mut Store` is needed to run anything, so the owner holds no other reference to
//!   the store while its code runs; what a host callback receives ([`Caller`]) reaches
//!   only the caller's linear memory, which the store does not borrow during the call.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use core::marker::PhantomData;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::builtins::builtin_array;
use super::code::CodeInfo;
use super::engine::{Engine, Module, ModuleCode, RuntimeHal, describe_function};
use super::epoch::{EpochAction, EpochHandler};
use super::host::{Caller, HostCallback, HostFunc};
use super::instance::InstanceState;
use super::memory::LinearMemory;
use super::stable::StableBox;
use super::table::Table;
use super::trap_handler::{CallContext, TrapRecord};
use super::values::{FuncRef, Val};
use crate::wasm::abi::{
    Builtin, EntryTrampoline, VALUE_SLOT_SIZE, VMActivation, VMStoreContext, WASM_PAGE_SIZE,
    counted_stack_budget,
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
        /// Innermost frame first, at most
        /// [`MAX_BACKTRACE`](super::trap_handler::MAX_BACKTRACE).
        backtrace: Vec<BacktraceFrame>,
        /// How many outer WebAssembly frames the backtrace leaves out.
        omitted_frames: usize,
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

/// The store proper, owned through [`Store`]'s root pointer and reached by builtins
/// through copies of it (see the module's aliasing rules).
pub(crate) struct StoreInner<'e, H: RuntimeHal> {
    pub(crate) engine: &'e Engine<H>,
    /// A number no other store of this kernel has (see [`NEXT_STORE_ID`]).
    pub(crate) id: u64,
    /// The root pointer of this store (what [`Store`] owns), for instances to point back.
    pub(crate) root: NonNull<Self>,
    /// What the VMContext header's `store_context` points at.
    pub(crate) context: VMStoreContext,
    /// The builtin array the VMContext header's `builtin_functions` points at.
    pub(crate) builtins: [usize; Builtin::COUNT],
    /// Engine-wide function types of this store, by id.
    pub(crate) types: Vec<FuncType>,
    /// The code of every module instantiated here, for the trap handler.
    pub(crate) code: Vec<Arc<CodeInfo>>,
    /// The module whose entry trampoline calls go through (any module's: they are
    /// identical). Holding it keeps that code published even when the instantiation that
    /// recorded it failed and nothing else holds the module.
    pub(crate) entry: Option<Arc<ModuleCode>>,
    pub(crate) instances: Vec<StableBox<InstanceState>>,
    pub(crate) memories: Vec<MemoryEntry>,
    pub(crate) tables: Vec<TableEntry>,
    pub(crate) globals: Vec<GlobalEntry>,
    pub(crate) host_funcs: Vec<StableBox<HostFunc<'e>>>,
    /// The budget and floor set with [`Store::set_stack_budget`]: each outermost call
    /// allows `budget` bytes below the caller's frame, never below `floor`.
    pub(crate) stack_budget: Option<(usize, usize)>,
    /// What runs when generated code passes the epoch deadline (taken out while it runs).
    pub(crate) epoch_handler: Option<EpochHandler<'e>>,
    /// The most WebAssembly pages all linear memories together may have.
    pub(crate) memory_limit_pages: u64,
    /// Definitions of memories, tables and globals made by the host, not by an instance.
    pub(crate) host_memory_definitions: Vec<StableBox<VMMemoryDefinition>>,
    pub(crate) host_table_definitions: Vec<StableBox<VMTableDefinition>>,
    pub(crate) host_global_definitions: Vec<StableBox<VMGlobalDefinition>>,
}

/// The id of the next store made: what tells stores apart where an address would not
/// (a store made where a dropped one was).
static NEXT_STORE_ID: AtomicU64 = AtomicU64::new(0);

/// A store: instances and the objects they share. Dropping it frees them all.
pub struct Store<'e, H: RuntimeHal> {
    /// The root pointer of the store (from `Box::leak`, freed in `Drop`); see the
    /// module's aliasing rules.
    inner: NonNull<StoreInner<'e, H>>,
    /// The store owns its `StoreInner`.
    owns: PhantomData<StoreInner<'e, H>>,
}

impl<'e, H: RuntimeHal> Store<'e, H> {
    /// An empty store.
    pub fn new(engine: &'e Engine<H>) -> Self {
        let inner = Box::new(StoreInner {
            engine,
            id: NEXT_STORE_ID.fetch_add(1, Ordering::Relaxed),
            root: NonNull::dangling(),
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
            stack_budget: None,
            epoch_handler: None,
            memory_limit_pages: u64::MAX,
            host_memory_definitions: Vec::new(),
            host_table_definitions: Vec::new(),
            host_global_definitions: Vec::new(),
        });
        let root = NonNull::from(Box::leak(inner));
        // Safety: the allocation was just made and no reference to it is in use.
        unsafe { (*root.as_ptr()).root = root };
        Self {
            inner: root,
            owns: PhantomData,
        }
    }

    /// A shared borrow of the store for as long as `self` is borrowed.
    pub(super) fn inner(&self) -> &StoreInner<'e, H> {
        // Safety: the root is valid until `self` drops; builtins and host calls make their
        // `&mut` only while a call (which needs `&mut self`) runs, so none is in use
        // while `self` is borrowed.
        unsafe { self.inner.as_ref() }
    }

    /// An exclusive borrow of the store for as long as `self` is borrowed mutably. Do not
    /// hold it across a call into generated code or a callback: use
    /// [`StoreInner::call_raw`].
    /// The root pointer, for calls that borrow the store only while no code runs.
    pub(super) const fn root(&self) -> NonNull<StoreInner<'e, H>> {
        self.inner
    }

    fn inner_mut(&mut self) -> &mut StoreInner<'e, H> {
        // Safety: as for `inner`; `&mut self` rules out every other borrow made through
        // this `Store`.
        unsafe { self.inner.as_mut() }
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
        let (id, start) = self.inner_mut().instantiate(module, imports)?;
        if let Some((funcref, ty)) = start {
            // Safety: `&mut self` keeps every other borrow of the store out, and no
            // reference made from the root is in use (the one above ended).
            unsafe { StoreInner::call_raw(self.inner, &funcref, &ty, &[]) }
                .map_err(InstantiationError::Trap)?;
        }
        Ok(id)
    }

    /// The export `name` of `instance`.
    #[must_use]
    pub fn export(&self, instance: InstanceId, name: &str) -> Option<Extern> {
        self.inner().export(instance, name)
    }

    /// Every export of `instance`, in the module's order.
    #[must_use]
    pub fn exports(&self, instance: InstanceId) -> Vec<(String, Extern)> {
        let inner = self.inner();
        let Some(state) = inner.instances.get(instance.0) else {
            return Vec::new();
        };
        state
            .module
            .info
            .exports
            .iter()
            .filter_map(|export| Some((export.name.clone(), inner.export(instance, &export.name)?)))
            .collect()
    }

    /// The type of `func`.
    #[must_use]
    pub fn func_type(&self, func: Func) -> Option<&FuncType> {
        self.inner().func_type(func)
    }

    /// The type and current value of a global.
    #[must_use]
    pub fn global(&self, global: GlobalId) -> Option<(GlobalType, Val)> {
        let entry = self.inner().globals.get(global.0)?;
        Some((entry.ty, read_global(entry.definition, entry.ty)))
    }

    /// The contents of a linear memory.
    #[must_use]
    pub fn memory_data(&mut self, memory: MemoryId) -> Option<&mut [u8]> {
        let entry = self.inner_mut().memories.get_mut(memory.0)?;
        let len = entry.memory.byte_len();
        // Safety: the first `len` bytes of the memory are committed read+write, and the
        // mutable borrow of the store keeps WebAssembly from running meanwhile.
        Some(unsafe { core::slice::from_raw_parts_mut(entry.memory.base().as_ptr(), len) })
    }

    /// Adds a host function.
    pub fn new_host_func(&mut self, ty: FuncType, callback: HostCallback<'e>) -> Func {
        let inner = self.inner_mut();
        let type_index = inner.intern_type(&ty);
        inner
            .host_funcs
            .push(HostFunc::new(ty, type_index, callback));
        Func::Host(HostFuncId(inner.host_funcs.len() - 1))
    }

    /// Adds a linear memory made by the host.
    ///
    /// # Errors
    /// [`InstantiationError::Unsupported`] for 64-bit or shared memories,
    /// [`InstantiationError::OutOfMemory`] when it cannot be reserved.
    pub fn new_memory(&mut self, ty: &MemoryType) -> Result<MemoryId, InstantiationError> {
        let inner = self.inner_mut();
        let definition = StableBox::new(VMMemoryDefinition {
            base: core::ptr::null_mut(),
            current_length: AtomicUsize::new(0),
        });
        let pointer = NonNull::new(definition.as_ptr()).ok_or(InstantiationError::OutOfMemory)?;
        let id = inner.add_memory(ty, pointer, core::ptr::null_mut())?;
        inner.host_memory_definitions.push(definition);
        Ok(id)
    }

    /// Adds a table made by the host, every element null.
    ///
    /// # Errors
    /// [`InstantiationError::OutOfMemory`] when the table is too large.
    pub fn new_table(&mut self, ty: &TableType) -> Result<TableId, InstantiationError> {
        let inner = self.inner_mut();
        let definition = StableBox::new(VMTableDefinition {
            base: core::ptr::null_mut(),
            current_elements: 0,
        });
        let pointer = NonNull::new(definition.as_ptr()).ok_or(InstantiationError::OutOfMemory)?;
        let id = inner.add_table(ty, 0, pointer, core::ptr::null_mut())?;
        inner.host_table_definitions.push(definition);
        Ok(id)
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
        let inner = self.inner_mut();
        let definition = StableBox::new(VMGlobalDefinition {
            storage: value.to_slot(),
        });
        let pointer = NonNull::new(definition.as_ptr()).ok_or(InstantiationError::OutOfMemory)?;
        inner.host_global_definitions.push(definition);
        inner.globals.push(GlobalEntry {
            definition: pointer,
            ty,
        });
        Ok(GlobalId(inner.globals.len() - 1))
    }

    /// Gives WebAssembly code of this store `budget` bytes of stack below the frame of
    /// each outermost call (a call from the host that is not made by a host function
    /// called from WebAssembly), but never any below `floor`, the lowest address the
    /// stack it runs on allows (room for the host functions and builtins kept below
    /// it). The room WebAssembly gets does not depend on how deep the host's own frames
    /// are at the call, which differs between ISAs and builds; half of it is counted in
    /// frame costs that are the same on every ISA
    /// ([`counted_stack_budget`](crate::wasm::abi::counted_stack_budget)), the machine
    /// limit at the whole `budget` a backstop.
    pub fn set_stack_budget(&mut self, floor: usize, budget: usize) {
        let inner = self.inner_mut();
        inner.stack_budget = Some((floor, budget));
        inner.context.stack_limit = 0;
    }

    /// Limits the linear memory of this store, all memories together, to `bytes` (rounded
    /// down to WebAssembly pages): `memory.grow` past it fails (returns -1), and
    /// instantiating a module whose memories would pass it fails with
    /// [`InstantiationError::MemoryLimit`].
    pub fn set_memory_limit(&mut self, bytes: u64) {
        self.inner_mut().memory_limit_pages = bytes / WASM_PAGE_SIZE;
    }

    /// Sets the epoch at which this store's code calls its epoch handler (`u64::MAX`: never).
    pub fn set_epoch_deadline(&mut self, deadline: u64) {
        self.inner_mut()
            .context
            .epoch_deadline
            .store(deadline, core::sync::atomic::Ordering::Relaxed);
    }

    /// Where this store's epoch deadline lives, for a scheduler that moves it while the
    /// store's code is switched out (deterministic mode starts every time slice with a
    /// fresh deadline). The pointer is valid until the store drops; write it only with
    /// atomic stores, and only while none of the store's code runs on another CPU.
    pub fn epoch_deadline_ptr(&self) -> NonNull<core::sync::atomic::AtomicU64> {
        // Safety: the root pointer is valid until `self` drops (see `inner`); taking a
        // field's address makes no reference.
        let field = unsafe { &raw mut (*self.inner.as_ptr()).context.epoch_deadline };
        // A field of a valid allocation is not null.
        NonNull::new(field).unwrap_or(NonNull::dangling())
    }

    /// Installs what runs when this store's code reaches its epoch deadline; without one,
    /// reaching it only moves the deadline to `u64::MAX`.
    pub fn set_epoch_handler(&mut self, handler: EpochHandler<'e>) {
        self.inner_mut().epoch_handler = Some(handler);
    }

    /// Whether `instance`'s module imports a table or a global.
    #[must_use]
    pub fn imports_tables_or_globals(&self, instance: InstanceId) -> bool {
        use crate::wasm::env::EntityIndex;
        self.inner().instances.get(instance.0).is_some_and(|state| {
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
        let inner = self.inner_mut();
        let Some(state) = inner.instances.get(instance.0) else {
            return;
        };
        let owner = state.vmctx();
        let hal = inner.engine.hal();
        for entry in &mut inner.memories {
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
        let inner = self.inner_mut();
        let ty = inner.checked_type(func, args)?;
        match func {
            Func::Host(id) => {
                let host = inner
                    .host_funcs
                    .get(id.0)
                    .map(StableBox::as_ptr)
                    .ok_or_else(|| CallError::BadArguments(String::from("no such function")))?;
                // Safety: host functions live as long as the store, in their own
                // allocation, and are only read during calls; the borrow of the store
                // above has ended, so the callback may reach the store through builtins.
                let host = unsafe { &*host };
                host.call(&mut Caller::new(None), args)
                    .map_err(|detail| CallError::Trap {
                        trap: Trap::HostError,
                        detail: Some(detail),
                        backtrace: Vec::new(),
                        omitted_frames: 0,
                    })
            }
            Func::Wasm(reference) => {
                // Safety: `FuncRef`s of this store point at live VMFuncRefs.
                let funcref = unsafe { *reference.0.as_ptr() };
                // Safety: `&mut self` keeps every other borrow of the store out, and the
                // borrow of the store above has ended.
                unsafe { StoreInner::call_raw(self.inner, &funcref, &ty, args) }
            }
        }
    }
}

impl<H: RuntimeHal> Drop for Store<'_, H> {
    fn drop(&mut self) {
        let inner = self.inner_mut();
        let hal = inner.engine.hal();
        for entry in &mut inner.memories {
            // Safety: the store is going away with every instance that could use the
            // memory; nothing runs any more.
            unsafe { entry.memory.release(hal) };
        }
        // Safety: the root came from `Box::leak` in `Store::new` and is freed once, here;
        // the borrow above has ended, and nothing uses the store's pointers any more.
        drop(unsafe { Box::from_raw(self.inner.as_ptr()) });
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
    ///
    /// The handler may switch to other work before it returns (the scheduler's yield), so
    /// it runs with no borrow of the store in use: it is taken out of the store for the
    /// call and put back afterwards (unless a new one was installed meanwhile).
    ///
    /// # Safety
    /// `store` must be the root pointer of a live store, and no reference to the store may
    /// be in use (true inside a builtin called by the store's generated code).
    pub(crate) unsafe fn epoch_interrupt(store: NonNull<Self>) -> bool {
        // Safety: the caller guarantees a live store and no reference in use; this borrow
        // ends in this statement.
        let mut handler = unsafe { (*store.as_ptr()).epoch_handler.take() };
        let action = match handler.as_mut() {
            Some(handler) => handler(),
            None => EpochAction::Continue { deadline: u64::MAX },
        };
        // Safety: as above: the handler's run is over and it held no borrow of the store.
        let inner = unsafe { &mut *store.as_ptr() };
        if inner.epoch_handler.is_none() {
            inner.epoch_handler = handler;
        }
        match action {
            EpochAction::Continue { deadline } => {
                inner
                    .context
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

    /// The type of `func`, once `args` are checked against it.
    fn checked_type(&self, func: Func, args: &[Val]) -> Result<FuncType, CallError> {
        let ty = self
            .func_type(func)
            .ok_or_else(|| CallError::BadArguments(String::from("no such function")))?;
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
        Ok(ty.clone())
    }

    /// Calls through a `VMFuncRef` of type `ty` (already checked against `args`), with no
    /// borrow of the store in use while the code runs: what the call needs is copied out
    /// of the store first, and the store is borrowed again only once the code returned.
    ///
    /// # Safety
    /// `store` must be the root pointer of a live store whose owner lent it out
    /// exclusively for this call (`&mut Store`), with no reference to it in use; `funcref`
    /// must be a function of this store.
    pub(crate) unsafe fn call_raw(
        store: NonNull<Self>,
        funcref: &VMFuncRef,
        ty: &FuncType,
        args: &[Val],
    ) -> Result<Vec<Val>, CallError> {
        let slot = VALUE_SLOT_SIZE as usize;
        let slots = ty.params.len().max(ty.results.len()).max(1);
        let mut values = vec![0u8; slots * slot];
        for (index, value) in args.iter().enumerate() {
            values[index * slot..(index + 1) * slot].copy_from_slice(&value.to_slot());
        }
        // Safety: the caller's contract, and `values` has a slot for every parameter and
        // result of `ty`, the funcref's type.
        unsafe { Self::call_slots(store, funcref, &mut values) }?;
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

    /// Calls through a `VMFuncRef` with its arguments in `values`, one
    /// [`VALUE_SLOT_SIZE`]-byte slot each, where its results are left; see
    /// [`StoreInner::call_raw`].
    ///
    /// # Safety
    /// As [`StoreInner::call_raw`], and `values` must have a slot for every parameter and
    /// every result of the function's type, the parameters written in them.
    pub(crate) unsafe fn call_slots(
        store: NonNull<Self>,
        funcref: &VMFuncRef,
        values: &mut [u8],
    ) -> Result<(), CallError> {
        let mut context = CallContext {
            activation: VMActivation::default(),
            code: core::ptr::slice_from_raw_parts(core::ptr::null(), 0),
            trap: None,
        };
        let (entry, engine, outermost, stack_left) = {
            // Safety: the caller guarantees a live store with no reference in use; this
            // borrow ends with the block, before any code runs.
            let inner = unsafe { &mut *store.as_ptr() };
            let entry = inner
                .entry
                .as_ref()
                .map(|module| module.entry)
                .ok_or_else(|| CallError::BadArguments(String::from("no module loaded")))?;
            // A pointer into the list's own buffer, which nothing changes while code runs
            // (instantiation needs `&mut Store`, builtins never touch it).
            context.code = core::ptr::from_ref::<[Arc<CodeInfo>]>(&inner.code);
            // Half the budget is counted in frame costs (`compile::stack_cost`), the same
            // on every ISA, and passed down the calls; the machine limit at the whole
            // budget is a backstop. (Host functions do not call WebAssembly; a nested
            // call, were there one, would count what is left above the machine limit.)
            let here = core::ptr::from_ref(&context) as usize;
            let outermost = inner.context.stack_limit == 0;
            let budget = if outermost {
                let (floor, budget) = inner
                    .stack_budget
                    .unwrap_or((0, inner.engine.config().wasm_stack_size));
                inner.context.stack_limit = here.saturating_sub(budget).max(floor);
                budget
            } else {
                here.saturating_sub(inner.context.stack_limit)
            };
            (entry, inner.engine, outermost, counted_stack_budget(budget))
        };
        let hal = engine.hal();
        let context_pointer = core::ptr::from_mut(&mut context);
        let previous = hal.set_trap_context(context_pointer as usize);
        // Safety: `entry` is the entry trampoline of published code the store keeps alive
        // (see `ModuleCode::entry`), with the C signature `EntryTrampoline`.
        let entry: EntryTrampoline =
            unsafe { core::mem::transmute::<usize, EntryTrampoline>(entry) };
        // Safety: the funcref's shim, code and vmctx belong to live instances or host
        // functions of this store; `values` has a slot for every parameter and result;
        // the activation is the first field of `context`, which outlives the call, and
        // the trap context points at it so a trap lands back here. No reference to the
        // store is in use, so builtins and host calls may borrow it.
        let returned = unsafe {
            entry(
                context_pointer.cast::<VMActivation>(),
                funcref.array_call,
                funcref.wasm_call,
                funcref.vmctx,
                funcref.vmctx,
                values.as_mut_ptr(),
                stack_left,
            )
        };
        hal.set_trap_context(previous);
        // Safety: the trap handler may have written the record behind the compiler's
        // back, through the trap context pointer; read it afresh.
        let record = unsafe { core::ptr::read_volatile(&raw const (*context_pointer).trap) };
        // Safety: the code returned; no builtin or host call borrows the store any more.
        let inner = unsafe { &mut *store.as_ptr() };
        if outermost {
            inner.context.stack_limit = 0;
        }
        if returned == 0 {
            return Err(inner.trap_error(record));
        }
        Ok(())
    }

    fn trap_error(&mut self, record: Option<TrapRecord>) -> CallError {
        let Some(record) = record else {
            return CallError::Trap {
                trap: Trap::Killed,
                detail: Some(String::from("trap without a record")),
                backtrace: Vec::new(),
                omitted_frames: 0,
            };
        };
        tracing::debug!(
            target: "kernel_core::wasm::trap",
            trap = record.trap.message(),
            pc = record.pc,
            fault_address = record.fault_address,
            frames = record.frames.iter().flatten().count() + record.omitted_frames,
            "trap"
        );
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
            omitted_frames: record.omitted_frames,
        }
    }
}
