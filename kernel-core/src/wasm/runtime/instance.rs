//! Instances: a VMContext laid out by the module's `VMShape`, and the state behind it.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::ptr::NonNull;

use super::engine::ModuleCode;
use super::stable::StableBox;
use super::store::{Func, InstanceId, MemoryId, TableId};
use crate::wasm::vm::vmcontext::{VMContext, VMGlobalDefinition, VMMemoryDefinition};

/// Bytes before the VMContext in its allocation, holding the pointer to the
/// [`InstanceState`] (16, to keep the VMContext 16-aligned).
const STATE_POINTER_SPACE: usize = 16;

/// Everything the runtime keeps about an instance. Kept in a [`StableBox`], so its address
/// is stable; the word before the VMContext points at it, which is how builtins and host
/// calls find it ([`InstanceState::from_vmctx`]).
#[derive(Debug)]
pub(crate) struct InstanceState {
    /// The VMContext allocation: the state pointer, then the VMContext. Generated code
    /// reads and writes the VMContext through raw pointers made from this allocation's own
    /// pointer ([`InstanceState::vmctx`]), never through a reference.
    allocation: StableBox<[u128]>,
    /// The module this instantiates.
    pub(crate) module: Arc<ModuleCode>,
    /// The store's root pointer (a `*mut StoreInner<H>`), for builtins: see the aliasing
    /// rules in the `store` module.
    pub(crate) store: NonNull<()>,
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
    pub(crate) fn new(module: Arc<ModuleCode>, store: NonNull<()>, id: InstanceId) -> Self {
        let bytes = STATE_POINTER_SPACE + module.shape.size() as usize;
        let allocation = StableBox::from_box(vec![0u128; bytes.div_ceil(16)].into_boxed_slice());
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

    /// Writes the address of `state` (its stable root pointer, which builtins may use
    /// while no reference to the state is in use) before its VMContext.
    pub(crate) fn link_back(state: &StableBox<Self>) {
        let address = state.as_ptr();
        // Safety: the allocation is at least STATE_POINTER_SPACE (16) bytes long and
        // 16-aligned, and is written only through raw pointers made from its own pointer.
        unsafe { state.allocation.as_ptr().cast::<*mut Self>().write(address) };
    }

    /// The VMContext: a raw pointer with the allocation's own provenance, valid (for reads
    /// and writes) as long as the instance lives.
    pub(crate) fn vmctx(&self) -> *mut VMContext {
        // Safety: the allocation is at least STATE_POINTER_SPACE bytes long.
        unsafe {
            self.allocation
                .as_ptr()
                .cast::<u8>()
                .add(STATE_POINTER_SPACE)
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

    /// The state of the instance whose VMContext is `vmctx`, as the raw pointer
    /// [`InstanceState::link_back`] wrote (the state's stable root pointer). Dereference
    /// it only for as long as the instance is known to live and no `&mut` to the state
    /// (or to the store that owns it) is in use: in practice, a builtin or host call
    /// reads the fields it needs at once, while the instance's code is suspended in it.
    ///
    /// # Safety
    /// `vmctx` must be the VMContext of a live instance whose state was linked back.
    pub(crate) unsafe fn from_vmctx(vmctx: *mut VMContext) -> NonNull<Self> {
        // Safety: the caller guarantees a live instance; its state pointer sits
        // STATE_POINTER_SPACE bytes before the VMContext, written by `link_back` (never
        // null: it is a `StableBox`'s address).
        unsafe {
            let slot = vmctx
                .cast::<u8>()
                .sub(STATE_POINTER_SPACE)
                .cast::<*mut Self>();
            NonNull::new_unchecked(slot.read())
        }
    }
}
