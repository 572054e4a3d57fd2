//! Instances: a VMContext laid out by the module's `VMShape`, and the state behind it.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::ptr::NonNull;

use super::engine::ModuleCode;
use super::store::{Func, InstanceId, MemoryId, TableId};
use crate::wasm::vm::vmcontext::{VMContext, VMGlobalDefinition, VMMemoryDefinition};

/// Bytes before the VMContext in its allocation, holding the pointer to the
/// [`InstanceState`] (16, to keep the VMContext 16-aligned).
const STATE_POINTER_SPACE: usize = 16;

/// Everything the runtime keeps about an instance. Boxed, so its address is stable; the
/// word before the VMContext points at it, which is how builtins find it.
#[derive(Debug)]
pub(crate) struct InstanceState {
    /// The VMContext allocation: the state pointer, then the VMContext.
    allocation: Box<[u128]>,
    /// The module this instantiates.
    pub(crate) module: Arc<ModuleCode>,
    /// The store (a `StoreInner<H>`), for builtins.
    pub(crate) store: *mut (),
    /// Every memory, by memory index.
    pub(crate) memories: Vec<MemoryId>,
    /// Every memory's definition (base and length), by memory index: host functions reach
    /// their caller's memory through these.
    pub(crate) memory_definitions: Vec<NonNull<VMMemoryDefinition>>,
    /// Every table, by table index.
    pub(crate) tables: Vec<TableId>,
    /// Every global's definition, by global index.
    pub(crate) globals: Vec<NonNull<VMGlobalDefinition>>,
    /// The imported functions, by function index.
    pub(crate) imported_funcs: Vec<Func>,
    /// Engine-wide type ids by module type index; the header's `type_ids` points here.
    pub(crate) type_ids: Box<[u32]>,
    /// This instance's position in its store, so builtins can reach it through the store.
    pub(crate) id: InstanceId,
    /// The references of every element segment, by element index, evaluated at
    /// instantiation as table words. A dropped segment is empty: `elem.drop` drops one,
    /// and instantiation drops every active and declared segment once it is done.
    pub(crate) elements: Vec<Box<[usize]>>,
    /// Which data segments are dropped, by data index: `data.drop` drops one, and
    /// instantiation drops every active segment once it is done. A dropped segment reads
    /// as empty; the bytes of the others stay in the module binary.
    pub(crate) dropped_data: Vec<bool>,
}

impl InstanceState {
    /// Allocates a zeroed VMContext for `module`, instance `id` of the store `store`
    /// points at; the caller fills it and calls
    /// [`InstanceState::link_back`] once the state is boxed.
    pub(crate) fn new(module: Arc<ModuleCode>, store: *mut (), id: InstanceId) -> Self {
        let bytes = STATE_POINTER_SPACE + module.shape.size() as usize;
        let allocation = vec![0u128; bytes.div_ceil(16)].into_boxed_slice();
        Self {
            allocation,
            module,
            store,
            memories: Vec::new(),
            memory_definitions: Vec::new(),
            tables: Vec::new(),
            globals: Vec::new(),
            imported_funcs: Vec::new(),
            type_ids: Box::new([]),
            id,
            elements: Vec::new(),
            dropped_data: Vec::new(),
        }
    }

    /// Writes this (boxed) state's address before the VMContext.
    pub(crate) fn link_back(self: &mut Box<Self>) {
        let state = core::ptr::from_mut::<Self>(&mut **self) as usize;
        self.allocation[0] = state as u128;
    }

    /// The VMContext.
    pub(crate) fn vmctx(&self) -> *mut VMContext {
        // Safety: the allocation is at least STATE_POINTER_SPACE bytes long.
        unsafe {
            self.allocation
                .as_ptr()
                .cast::<u8>()
                .add(STATE_POINTER_SPACE)
                .cast_mut()
                .cast()
        }
    }

    /// A pointer to the VMContext field at byte `offset`.
    pub(crate) fn field<T>(&self, offset: u32) -> *mut T {
        debug_assert!(
            offset as usize + core::mem::size_of::<T>() <= self.module.shape.size() as usize
        );
        // Safety: offsets come from the module's VMShape, inside the VMContext.
        unsafe { self.vmctx().cast::<u8>().add(offset as usize).cast() }
    }

    /// The state of the instance whose VMContext is `vmctx`.
    ///
    /// # Safety
    /// `vmctx` must be the VMContext of a live instance whose state was linked back.
    pub(crate) unsafe fn from_vmctx<'a>(vmctx: *mut VMContext) -> &'a Self {
        // Safety: the caller guarantees a live instance; its state pointer sits
        // STATE_POINTER_SPACE bytes before the VMContext.
        unsafe {
            let slot = vmctx.cast::<u8>().sub(STATE_POINTER_SPACE).cast::<usize>();
            &*(slot.read() as *const Self)
        }
    }
}
