//! The runtime functions generated code calls through the VMContext's builtin array.

use super::engine::RuntimeHal;
use super::instance::InstanceState;
use super::store::StoreInner;
use crate::wasm::abi::{Builtin, MemoryGrowFn};
use crate::wasm::vm::vmcontext::VMContext;

/// The builtin array of stores on platform `H`, indexed by [`Builtin`].
pub(crate) fn builtin_array<H: RuntimeHal>() -> [usize; Builtin::COUNT] {
    let mut array = [0; Builtin::COUNT];
    array[Builtin::MemoryGrow as usize] = memory_grow::<H> as MemoryGrowFn as usize;
    array
}

/// `memory.grow`: grows memory `memory_index` of the calling instance by `delta` pages.
/// Returns the previous size in pages, or `u64::MAX` when it cannot grow.
///
/// # Safety
/// `vmctx` must be the VMContext of a live instance of a store on platform `H`, called
/// from that instance's generated code (so the store is not otherwise borrowed).
unsafe extern "C" fn memory_grow<H: RuntimeHal>(
    vmctx: *mut VMContext,
    memory_index: u32,
    delta: u64,
) -> u64 {
    // Safety: the caller guarantees a live instance; its state sits just before the vmctx.
    let instance = unsafe { InstanceState::from_vmctx(vmctx) };
    // Safety: the instance's store pointer is valid while the instance lives, and
    // generated code runs only inside `Store::call`, which lent the store out.
    let store = unsafe { &mut *instance.store.cast::<StoreInner<'_, H>>() };
    let Some(&memory) = instance.memories.get(memory_index as usize) else {
        return u64::MAX;
    };
    store.grow_memory(memory, delta).unwrap_or(u64::MAX)
}
