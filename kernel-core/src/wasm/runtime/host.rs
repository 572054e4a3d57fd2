//! Host functions: Rust closures WebAssembly can import and call.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use super::instance::InstanceState;
use super::stable::StableBox;
use super::values::Val;
use crate::wasm::abi::{HOST_FUNC_MAGIC, VALUE_SLOT_SIZE, VMHostFuncContext};
use crate::wasm::env::FuncType;
use crate::wasm::vm::vmcontext::{VMCONTEXT_MAGIC, VMContext};

/// The Rust side of a host function: reads the arguments, writes the results (one slot per
/// result type, pre-filled with zeros), or fails with a message (a trap of the caller). The
/// [`Caller`] gives access to the calling instance's memory 0.
pub type HostCallback<'e> =
    Box<dyn Fn(&mut Caller<'_>, &[Val], &mut [Val]) -> Result<(), String> + 'e>;

/// What a host function may reach of the WebAssembly instance that called it: memory 0,
/// through bounds-checked accessors. Pointers are offsets into that memory, as WebAssembly
/// code sees them (an `i32` taken as unsigned).
#[derive(Debug)]
pub struct Caller<'a> {
    memory: Option<&'a mut [u8]>,
}

impl<'a> Caller<'a> {
    /// A caller whose memory 0 is `memory` (`None`: no memory, or a call from the host).
    #[must_use]
    pub fn new(memory: Option<&'a mut [u8]>) -> Self {
        Self { memory }
    }

    /// The range `[ptr, ptr + len)` of memory 0, when it lies inside the memory.
    fn range(&self, ptr: i32, len: i32) -> Option<core::ops::Range<usize>> {
        let memory = self.memory.as_deref()?;
        let start = usize::try_from(ptr.cast_unsigned()).ok()?;
        let len = usize::try_from(len).ok()?;
        let end = start.checked_add(len)?;
        (end <= memory.len()).then_some(start..end)
    }

    /// The `len` bytes at `ptr`, or `None` when the caller has no memory, `len` is
    /// negative or the range leaves the memory.
    #[must_use]
    pub fn read(&self, ptr: i32, len: i32) -> Option<&[u8]> {
        let range = self.range(ptr, len)?;
        self.memory.as_deref()?.get(range)
    }

    /// Writes `bytes` at `ptr`; `None` (and nothing written) when they do not fit.
    pub fn write(&mut self, ptr: i32, bytes: &[u8]) -> Option<()> {
        let len = i32::try_from(bytes.len()).ok()?;
        let range = self.range(ptr, len)?;
        self.memory
            .as_deref_mut()?
            .get_mut(range)?
            .copy_from_slice(bytes);
        Some(())
    }

    /// The size of memory 0 in bytes (0 without one).
    #[must_use]
    pub fn memory_len(&self) -> usize {
        self.memory.as_deref().map_or(0, <[u8]>::len)
    }
}

/// A host function as the store keeps it. The [`VMHostFuncContext`] comes first: its
/// address is the host function's `callee_vmctx`.
#[repr(C)]
pub(crate) struct HostFunc<'e> {
    pub(crate) context: VMHostFuncContext,
    pub(crate) ty: FuncType,
    pub(crate) callback: HostCallback<'e>,
    /// The message of the last failure, reported as the trap's detail.
    pub(crate) last_error: Option<String>,
}

impl<'e> HostFunc<'e> {
    /// Boxes a host function of engine-wide type `type_index`, its context's `data`
    /// pointing back at it (with the box's own provenance, so that host calls may use it
    /// while the store holds the box).
    pub(crate) fn new(
        ty: FuncType,
        type_index: u32,
        callback: HostCallback<'e>,
    ) -> StableBox<Self> {
        let func = StableBox::new(Self {
            context: VMHostFuncContext {
                magic: HOST_FUNC_MAGIC,
                type_index,
                host_call,
                data: core::ptr::null_mut(),
            },
            ty,
            callback,
            last_error: None,
        });
        let data = func.as_ptr().cast();
        // Safety: the box was just made and no reference to it is in use.
        unsafe { (*func.as_ptr()).context.data = data };
        func
    }

    /// The address of the host function's [`VMHostFuncContext`] (its `callee_vmctx`),
    /// with the provenance of the box `func`.
    pub(crate) fn context_pointer(func: &StableBox<Self>) -> *mut VMHostFuncContext {
        // Safety: the box is alive while borrowed; no reference is made.
        unsafe { &raw mut (*func.as_ptr()).context }
    }

    /// Calls the callback with typed values.
    pub(crate) fn call(&self, caller: &mut Caller<'_>, args: &[Val]) -> Result<Vec<Val>, String> {
        let mut results: Vec<Val> = self.ty.results.iter().map(|ty| Val::zero(*ty)).collect();
        (self.callback)(caller, args, &mut results)?;
        let well_typed = results.len() == self.ty.results.len()
            && results
                .iter()
                .zip(self.ty.results.iter())
                .all(|(value, ty)| value.ty() == *ty);
        if well_typed {
            Ok(results)
        } else {
            Err(String::from("host function returned wrong types"))
        }
    }
}

/// The C entry of every host function, called by wasm-to-host trampolines.
///
/// # Safety
/// `context` must be the `VMHostFuncContext` of a live [`HostFunc`], and `values` must
/// point at `capacity` value slots holding the arguments of the function's type, with room
/// for its results.
unsafe extern "C" fn host_call(
    context: *mut VMHostFuncContext,
    caller_vmctx: *mut VMContext,
    values: *mut u8,
    capacity: u32,
) -> u32 {
    // Safety: the caller guarantees `context` belongs to a live `HostFunc`, whose `data`
    // points back at it with the provenance of its `StableBox`.
    let pointer = unsafe { (*context).data.cast::<HostFunc<'_>>() };
    let fail = |message: String| {
        // Safety: the shared borrow of the function (below) has ended when this runs;
        // nothing else refers to `last_error` during a host call (the store reads it
        // only after the call into WebAssembly returned).
        unsafe { (*pointer).last_error = Some(message) };
        1
    };
    // Safety: live, as above; host functions are only read during calls (their
    // `last_error` aside, written through the raw pointer once this borrow ended).
    let func = unsafe { &*pointer };
    // Safety: wasm-to-host trampolines pass the VMContext of the calling instance, which
    // is live and linked back, and whose code is suspended in this call.
    let memory = unsafe { caller_memory(caller_vmctx) };
    let mut caller = Caller::new(memory);
    let slot = VALUE_SLOT_SIZE as usize;
    let needed = func.ty.params.len().max(func.ty.results.len());
    if (capacity as usize) < needed {
        return fail(String::from("host call with too few value slots"));
    }
    let read = |index: usize| {
        let mut bytes = [0u8; VALUE_SLOT_SIZE as usize];
        // Safety: `index < capacity`, and the caller guarantees `capacity` slots.
        unsafe {
            core::ptr::copy_nonoverlapping(values.add(index * slot), bytes.as_mut_ptr(), slot)
        };
        bytes
    };
    let args: Vec<Val> = func
        .ty
        .params
        .iter()
        .enumerate()
        .map(|(index, ty)| Val::from_slot(*ty, read(index)))
        .collect();
    match func.call(&mut caller, &args) {
        Ok(results) => {
            for (index, value) in results.iter().enumerate() {
                let bytes = value.to_slot();
                // Safety: `index < results.len() <= capacity` slots, as above.
                unsafe {
                    core::ptr::copy_nonoverlapping(bytes.as_ptr(), values.add(index * slot), slot)
                };
            }
            0
        }
        Err(message) => fail(message),
    }
}

/// Memory 0 of the instance whose VMContext is `vmctx`, as a byte slice; `None` when the
/// caller is not an instance (the host called the host function directly, or through
/// a start function or export that is the host function itself, whose caller context is
/// then its own [`VMHostFuncContext`]) or has no memory.
///
/// # Safety
/// `vmctx` must point at a VMContext of a live, linked instance or at a live
/// [`VMHostFuncContext`] (both start with their magic), and an instance's code must stay
/// suspended in this host call for as long as the slice is used (so nothing else reads or
/// writes the memory or changes its size meanwhile).
unsafe fn caller_memory<'a>(vmctx: *mut VMContext) -> Option<&'a mut [u8]> {
    // Safety: both kinds of caller context start with a `u32` magic (the caller's
    // contract).
    let magic = unsafe { vmctx.cast::<u32>().read() };
    if magic != VMCONTEXT_MAGIC {
        return None;
    }
    // Safety: the magic says it is an instance's VMContext, live by the caller's contract;
    // the shared borrow of its memory list ends in this statement, and no `&mut` to the
    // state is in use while its code is suspended in a host call.
    let definition = *unsafe { InstanceState::from_vmctx(vmctx).as_ref() }
        .memory_definitions
        .first()?;
    // Safety: memory definitions live as long as the store of the instance; the base and
    // length describe committed read+write bytes (the memory's accessible size), which no
    // one else touches while the instance's code waits for this host call.
    unsafe {
        let definition = definition.as_ptr();
        let len = (*definition)
            .current_length
            .load(core::sync::atomic::Ordering::Relaxed);
        let base = (*definition).base;
        if base.is_null() {
            return None;
        }
        Some(core::slice::from_raw_parts_mut(base, len))
    }
}
