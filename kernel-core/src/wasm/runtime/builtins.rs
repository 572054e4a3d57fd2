//! The runtime functions generated code calls through the VMContext's builtin array.
//!
//! Each is a thin `extern "C"` shim with the signature [`crate::wasm::abi`] gives it: it
//! finds the calling instance and its store from the VMContext and calls the operation in
//! `bulk` (or `StoreInner::grow_memory`), turning its result into the status or size
//! generated code expects. None of them panics or unwinds: an index that does not fit is a
//! failure status, like any out-of-bounds range.

use super::engine::RuntimeHal;
use super::instance::InstanceState;
use super::store::{InstanceId, StoreInner};
use crate::wasm::abi::{
    BUILTIN_OK, BUILTIN_OUT_OF_BOUNDS, Builtin, DataDropFn, ElemDropFn, EpochInterruptFn,
    MemoryCopyFn, MemoryFillFn, MemoryGrowFn, MemoryInitFn, TableCopyFn, TableFillFn, TableGrowFn,
    TableInitFn,
};
use crate::wasm::trap::Trap;
use crate::wasm::vm::vmcontext::VMContext;

/// The builtin array of stores on platform `H`, indexed by [`Builtin`].
pub(crate) fn builtin_array<H: RuntimeHal>() -> [usize; Builtin::COUNT] {
    let mut array = [0; Builtin::COUNT];
    for builtin in Builtin::ALL {
        array[builtin as usize] = match builtin {
            Builtin::MemoryGrow => memory_grow::<H> as MemoryGrowFn as usize,
            Builtin::MemoryCopy => memory_copy::<H> as MemoryCopyFn as usize,
            Builtin::MemoryFill => memory_fill::<H> as MemoryFillFn as usize,
            Builtin::MemoryInit => memory_init::<H> as MemoryInitFn as usize,
            Builtin::DataDrop => data_drop::<H> as DataDropFn as usize,
            Builtin::TableGrow => table_grow::<H> as TableGrowFn as usize,
            Builtin::TableCopy => table_copy::<H> as TableCopyFn as usize,
            Builtin::TableFill => table_fill::<H> as TableFillFn as usize,
            Builtin::TableInit => table_init::<H> as TableInitFn as usize,
            Builtin::ElemDrop => elem_drop::<H> as ElemDropFn as usize,
            Builtin::EpochInterrupt => epoch_interrupt::<H> as EpochInterruptFn as usize,
        };
    }
    array
}

/// The store of the instance whose VMContext is `vmctx`, and the instance's id in it.
///
/// # Safety
/// `vmctx` must be the VMContext of a live instance of a store on platform `H`, and the
/// call must come from that instance's generated code (so the store is lent out to the
/// running call and nothing else uses it), for as long as the result is used.
unsafe fn caller<'s, H: RuntimeHal>(
    vmctx: *mut VMContext,
) -> (&'s mut StoreInner<'s, H>, InstanceId) {
    // The reference to the state ends in this block: everything afterwards goes through
    // the store, which owns the state.
    let (store, id) = {
        // Safety: the caller guarantees a live instance; its state sits just before the
        // vmctx.
        let instance = unsafe { InstanceState::from_vmctx(vmctx) };
        (instance.store, instance.id)
    };
    // Safety: the instance's store pointer is valid while the instance lives, and
    // generated code runs only inside `Store::call`, which lent the store out.
    (unsafe { &mut *store.cast::<StoreInner<'s, H>>() }, id)
}

/// The status generated code traps on.
fn status(result: Result<(), Trap>) -> u64 {
    match result {
        Ok(()) => BUILTIN_OK,
        Err(_) => BUILTIN_OUT_OF_BOUNDS,
    }
}

/// `memory.grow`: grows memory `memory_index` of the calling instance by `delta` pages.
/// Returns the previous size in pages, or `u64::MAX` when it cannot grow.
///
/// # Safety
/// `vmctx` must be the VMContext of a live instance of a store on platform `H`, called
/// from that instance's generated code (so the store is not otherwise borrowed).
unsafe extern "C" fn memory_grow<H: RuntimeHal>(
    vmctx: *mut VMContext,
    memory_index: u64,
    delta: u64,
) -> u64 {
    // Safety: the caller's contract is `caller`'s.
    let (store, instance) = unsafe { caller::<H>(vmctx) };
    let memory = usize::try_from(memory_index).ok().and_then(|index| {
        store
            .instances
            .get(instance.0)?
            .memories
            .get(index)
            .copied()
    });
    memory
        .and_then(|memory| store.grow_memory(memory, delta))
        .unwrap_or(u64::MAX)
}

/// `memory.copy`; see [`Builtin::MemoryCopy`].
///
/// # Safety
/// As for [`memory_grow`].
unsafe extern "C" fn memory_copy<H: RuntimeHal>(
    vmctx: *mut VMContext,
    dst_memory: u64,
    dst: u64,
    src_memory: u64,
    src: u64,
    len: u64,
) -> u64 {
    // Safety: the caller's contract is `caller`'s.
    let (store, instance) = unsafe { caller::<H>(vmctx) };
    status(store.memory_copy(instance, dst_memory, dst, src_memory, src, len))
}

/// `memory.fill`; see [`Builtin::MemoryFill`].
///
/// # Safety
/// As for [`memory_grow`].
unsafe extern "C" fn memory_fill<H: RuntimeHal>(
    vmctx: *mut VMContext,
    memory_index: u64,
    dst: u64,
    byte: u64,
    len: u64,
) -> u64 {
    // Safety: the caller's contract is `caller`'s.
    let (store, instance) = unsafe { caller::<H>(vmctx) };
    let [byte, ..] = byte.to_le_bytes();
    status(store.memory_fill(instance, memory_index, dst, byte, len))
}

/// `memory.init`; see [`Builtin::MemoryInit`].
///
/// # Safety
/// As for [`memory_grow`].
unsafe extern "C" fn memory_init<H: RuntimeHal>(
    vmctx: *mut VMContext,
    memory_index: u64,
    data_index: u64,
    dst: u64,
    src: u64,
    len: u64,
) -> u64 {
    // Safety: the caller's contract is `caller`'s.
    let (store, instance) = unsafe { caller::<H>(vmctx) };
    status(store.memory_init(instance, memory_index, data_index, dst, src, len))
}

/// `data.drop`; see [`Builtin::DataDrop`].
///
/// # Safety
/// As for [`memory_grow`].
unsafe extern "C" fn data_drop<H: RuntimeHal>(vmctx: *mut VMContext, data_index: u64) {
    // Safety: the caller's contract is `caller`'s.
    let (store, instance) = unsafe { caller::<H>(vmctx) };
    store.data_drop(instance, data_index);
}

/// `table.grow`; see [`Builtin::TableGrow`].
///
/// # Safety
/// As for [`memory_grow`]; `init` must be a valid element of the table (a `VMFuncRef`
/// pointer of the store for `funcref` tables), which validated generated code guarantees.
unsafe extern "C" fn table_grow<H: RuntimeHal>(
    vmctx: *mut VMContext,
    table_index: u64,
    init: u64,
    delta: u64,
) -> u64 {
    // Safety: the caller's contract is `caller`'s.
    let (store, instance) = unsafe { caller::<H>(vmctx) };
    usize::try_from(init)
        .ok()
        .and_then(|init| store.table_grow(instance, table_index, init, delta))
        .unwrap_or(u64::MAX)
}

/// `table.copy`; see [`Builtin::TableCopy`].
///
/// # Safety
/// As for [`memory_grow`].
unsafe extern "C" fn table_copy<H: RuntimeHal>(
    vmctx: *mut VMContext,
    dst_table: u64,
    dst: u64,
    src_table: u64,
    src: u64,
    len: u64,
) -> u64 {
    // Safety: the caller's contract is `caller`'s.
    let (store, instance) = unsafe { caller::<H>(vmctx) };
    status(store.table_copy(instance, dst_table, dst, src_table, src, len))
}

/// `table.fill`; see [`Builtin::TableFill`].
///
/// # Safety
/// As for [`table_grow`], with `value` for `init`.
unsafe extern "C" fn table_fill<H: RuntimeHal>(
    vmctx: *mut VMContext,
    table_index: u64,
    dst: u64,
    value: u64,
    len: u64,
) -> u64 {
    // Safety: the caller's contract is `caller`'s.
    let (store, instance) = unsafe { caller::<H>(vmctx) };
    let Ok(value) = usize::try_from(value) else {
        return BUILTIN_OUT_OF_BOUNDS;
    };
    status(store.table_fill(instance, table_index, dst, value, len))
}

/// `table.init`; see [`Builtin::TableInit`].
///
/// # Safety
/// As for [`memory_grow`].
unsafe extern "C" fn table_init<H: RuntimeHal>(
    vmctx: *mut VMContext,
    table_index: u64,
    elem_index: u64,
    dst: u64,
    src: u64,
    len: u64,
) -> u64 {
    // Safety: the caller's contract is `caller`'s.
    let (store, instance) = unsafe { caller::<H>(vmctx) };
    status(store.table_init(instance, table_index, elem_index, dst, src, len))
}

/// `elem.drop`; see [`Builtin::ElemDrop`].
///
/// # Safety
/// As for [`memory_grow`].
unsafe extern "C" fn elem_drop<H: RuntimeHal>(vmctx: *mut VMContext, elem_index: u64) {
    // Safety: the caller's contract is `caller`'s.
    let (store, instance) = unsafe { caller::<H>(vmctx) };
    store.elem_drop(instance, elem_index);
}

/// The epoch deadline passed: runs the store's epoch handler (which may let other work
/// run first). Returns 0 to go on, non-zero to trap with `interrupted`.
///
/// # Safety
/// `vmctx` must be the VMContext of a live instance of a store on platform `H`, called
/// from that instance's generated code (so the store is not otherwise borrowed).
unsafe extern "C" fn epoch_interrupt<H: RuntimeHal>(vmctx: *mut VMContext) -> u64 {
    // Safety: the caller's contract is `caller`'s.
    let (store, _) = unsafe { caller::<H>(vmctx) };
    u64::from(store.epoch_interrupt())
}
