//! Host functions: Rust closures WebAssembly can import and call.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use super::values::Val;
use crate::wasm::abi::{HOST_FUNC_MAGIC, VALUE_SLOT_SIZE, VMHostFuncContext};
use crate::wasm::env::FuncType;
use crate::wasm::vm::vmcontext::VMContext;

/// The Rust side of a host function: reads the arguments, writes the results (one slot per
/// result type, pre-filled with zeros), or fails with a message (a trap of the caller).
pub type HostCallback = Box<dyn Fn(&[Val], &mut [Val]) -> Result<(), String> + Send + Sync>;

/// A host function as the store keeps it. The [`VMHostFuncContext`] comes first: its
/// address is the host function's `callee_vmctx`.
#[repr(C)]
pub(crate) struct HostFunc {
    pub(crate) context: VMHostFuncContext,
    pub(crate) ty: FuncType,
    pub(crate) callback: HostCallback,
    /// The message of the last failure, reported as the trap's detail.
    pub(crate) last_error: Option<String>,
}

impl HostFunc {
    /// Boxes a host function of engine-wide type `type_index`. The box's address is
    /// stable: the store never moves it.
    pub(crate) fn new(ty: FuncType, type_index: u32, callback: HostCallback) -> Box<Self> {
        let mut func = Box::new(Self {
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
        func.context.data = core::ptr::from_mut::<Self>(&mut func).cast();
        func
    }

    /// Calls the callback with typed values.
    pub(crate) fn call(&mut self, args: &[Val]) -> Result<Vec<Val>, String> {
        let mut results: Vec<Val> = self.ty.results.iter().map(|ty| Val::zero(*ty)).collect();
        (self.callback)(args, &mut results)?;
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
    _caller_vmctx: *mut VMContext,
    values: *mut u8,
    capacity: u32,
) -> u32 {
    // Safety: the caller guarantees `context` belongs to a live `HostFunc`, whose `data`
    // points back at it; the trampoline that calls this holds no other reference to it.
    let func = unsafe { &mut *(*context).data.cast::<HostFunc>() };
    let slot = VALUE_SLOT_SIZE as usize;
    let needed = func.ty.params.len().max(func.ty.results.len());
    if (capacity as usize) < needed {
        func.last_error = Some(String::from("host call with too few value slots"));
        return 1;
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
    match func.call(&args) {
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
        Err(message) => {
            func.last_error = Some(message);
            1
        }
    }
}
