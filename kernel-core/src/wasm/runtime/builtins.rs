//! The runtime functions generated code calls through the VMContext's builtin array.
//!
//! Each is a thin `extern "C"` shim with the signature [`crate::wasm::abi`] gives it: it
//! finds the calling instance and its store from the VMContext and calls the operation in
//! `bulk` (or `StoreInner::grow_memory`), turning its result into the status or size
//! generated code expects. The store's `&mut` lasts only as long as the operation (see the
//! aliasing rules of the `store` module): the call that runs the generated code holds no
//! reference to the store meanwhile. None of them panics or unwinds: an index that does not
//! fit is a failure status, like any out-of-bounds range.

use core::ptr::NonNull;

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

/// The root pointer of the store of the instance whose VMContext is `vmctx`, and the
/// instance's id in it.
///
/// # Safety
/// `vmctx` must be the VMContext of a live instance of a store on platform `H`.
unsafe fn caller<'s, H: RuntimeHal>(
    vmctx: *mut VMContext,
) -> (NonNull<StoreInner<'s, H>>, InstanceId) {
    // Safety: the caller guarantees a live instance; its state sits behind the pointer
    // before the vmctx. The fields are read by value, without a reference that could
    // outlive this line.
    let (store, id) = unsafe {
        let state = InstanceState::from_vmctx(vmctx).as_ptr();
        ((*state).store, (*state).id)
    };
    (store.cast::<StoreInner<'s, H>>(), id)
}

/// Runs `operation` on the store of the instance whose VMContext is `vmctx`, with a
/// `&mut` borrow of the store that lasts only as long as `operation`.
///
/// # Safety
/// `vmctx` must be the VMContext of a live instance of a store on platform `H`, and the
/// call must come from that instance's generated code: the store is lent out to the
/// running call (`StoreInner::call_raw`), which holds no reference to it meanwhile, and
/// `operation` runs no code that could borrow the store again.
unsafe fn with_store<H: RuntimeHal, R>(
    vmctx: *mut VMContext,
    operation: impl FnOnce(&mut StoreInner<'_, H>, InstanceId) -> R,
) -> R {
    // Safety: the caller's contract is `caller`'s.
    let (store, instance) = unsafe { caller::<H>(vmctx) };
    // Safety: the store is live while its instance is, and no other reference to it is
    // in use (the caller's contract); the borrow ends when `operation` returns.
    operation(unsafe { &mut *store.as_ptr() }, instance)
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
pub(super) unsafe extern "C" fn memory_grow<H: RuntimeHal>(
    vmctx: *mut VMContext,
    memory_index: u64,
    delta: u64,
) -> u64 {
    // Safety: the caller's contract is `with_store`'s.
    unsafe {
        with_store::<H, _>(vmctx, |store, instance| {
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
        })
    }
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
    // Safety: the caller's contract is `with_store`'s.
    status(unsafe {
        with_store::<H, _>(vmctx, |store, instance| {
            store.memory_copy(instance, dst_memory, dst, src_memory, src, len)
        })
    })
}

/// `memory.fill`; see [`Builtin::MemoryFill`].
///
/// # Safety
/// As for [`memory_grow`].
pub(super) unsafe extern "C" fn memory_fill<H: RuntimeHal>(
    vmctx: *mut VMContext,
    memory_index: u64,
    dst: u64,
    byte: u64,
    len: u64,
) -> u64 {
    let [byte, ..] = byte.to_le_bytes();
    // Safety: the caller's contract is `with_store`'s.
    status(unsafe {
        with_store::<H, _>(vmctx, |store, instance| {
            store.memory_fill(instance, memory_index, dst, byte, len)
        })
    })
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
    // Safety: the caller's contract is `with_store`'s.
    status(unsafe {
        with_store::<H, _>(vmctx, |store, instance| {
            store.memory_init(instance, memory_index, data_index, dst, src, len)
        })
    })
}

/// `data.drop`; see [`Builtin::DataDrop`].
///
/// # Safety
/// As for [`memory_grow`].
unsafe extern "C" fn data_drop<H: RuntimeHal>(vmctx: *mut VMContext, data_index: u64) {
    // Safety: the caller's contract is `with_store`'s.
    unsafe {
        with_store::<H, _>(vmctx, |store, instance| {
            store.data_drop(instance, data_index)
        })
    };
}

/// `table.grow`; see [`Builtin::TableGrow`].
///
/// # Safety
/// As for [`memory_grow`]; `init` must be a valid element of the table (a `VMFuncRef`
/// pointer of the store for `funcref` tables), which validated generated code guarantees.
pub(super) unsafe extern "C" fn table_grow<H: RuntimeHal>(
    vmctx: *mut VMContext,
    table_index: u64,
    init: u64,
    delta: u64,
) -> u64 {
    let Ok(init) = usize::try_from(init) else {
        return u64::MAX;
    };
    // Safety: the caller's contract is `with_store`'s.
    unsafe {
        with_store::<H, _>(vmctx, |store, instance| {
            store.table_grow(instance, table_index, init, delta)
        })
    }
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
    // Safety: the caller's contract is `with_store`'s.
    status(unsafe {
        with_store::<H, _>(vmctx, |store, instance| {
            store.table_copy(instance, dst_table, dst, src_table, src, len)
        })
    })
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
    let Ok(value) = usize::try_from(value) else {
        return BUILTIN_OUT_OF_BOUNDS;
    };
    // Safety: the caller's contract is `with_store`'s.
    status(unsafe {
        with_store::<H, _>(vmctx, |store, instance| {
            store.table_fill(instance, table_index, dst, value, len)
        })
    })
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
    // Safety: the caller's contract is `with_store`'s.
    status(unsafe {
        with_store::<H, _>(vmctx, |store, instance| {
            store.table_init(instance, table_index, elem_index, dst, src, len)
        })
    })
}

/// `elem.drop`; see [`Builtin::ElemDrop`].
///
/// # Safety
/// As for [`memory_grow`].
unsafe extern "C" fn elem_drop<H: RuntimeHal>(vmctx: *mut VMContext, elem_index: u64) {
    // Safety: the caller's contract is `with_store`'s.
    unsafe {
        with_store::<H, _>(vmctx, |store, instance| {
            store.elem_drop(instance, elem_index)
        })
    };
}

/// The epoch deadline passed: runs the store's epoch handler (which may let other work
/// run first, with no borrow of the store in use). Returns 0 to go on, non-zero to trap
/// with `interrupted`.
///
/// # Safety
/// `vmctx` must be the VMContext of a live instance of a store on platform `H`, called
/// from that instance's generated code (so the store is not otherwise borrowed).
pub(super) unsafe extern "C" fn epoch_interrupt<H: RuntimeHal>(vmctx: *mut VMContext) -> u64 {
    // Safety: the caller's contract is `caller`'s; the store is lent out to the running
    // call, which holds no reference to it (`StoreInner::call_raw`).
    u64::from(unsafe {
        let (store, _) = caller::<H>(vmctx);
        StoreInner::epoch_interrupt(store)
    })
}
