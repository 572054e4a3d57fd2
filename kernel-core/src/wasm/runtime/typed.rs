//! Typed calls: a WebAssembly function whose type is checked once, called with Rust values
//! and no allocation ([`Store::typed_func`], [`TypedFunc::call`]).
//!
//! [`Store::call`] takes and returns [`Val`]s: it checks the argument types, copies the
//! function's type out of the store and allocates the value slots and the results on
//! every call. A [`TypedFunc`] checks the type when it is made, keeps the function's
//! `VMFuncRef`, and passes the values in slots on the caller's stack.

use core::marker::PhantomData;

use super::RuntimeHal;
use super::store::{CallError, Func, Store, StoreInner};
use super::values::Val;
use crate::wasm::abi::VALUE_SLOT_SIZE;
use crate::wasm::env::ValType;
use crate::wasm::vm::vmcontext::VMFuncRef;

/// The most parameters or results a typed call carries.
const MAX_VALUES: usize = 4;

/// The bytes of [`MAX_VALUES`] value slots.
const SLOTS_BYTES: usize = MAX_VALUES * VALUE_SLOT_SIZE as usize;

/// A Rust type that is a WebAssembly number type.
pub trait WasmType: Copy {
    /// Its WebAssembly type.
    const TYPE: ValType;
    /// As a [`Val`].
    fn into_val(self) -> Val;
    /// From a [`Val`] of [`Self::TYPE`].
    fn from_val(value: Val) -> Self;
}

macro_rules! wasm_type {
    ($($rust:ty => $variant:ident, $ty:ident, |$v:ident| $into:expr, |$w:ident| $from:expr;)*) => {$(
        impl WasmType for $rust {
            const TYPE: ValType = ValType::$ty;
            fn into_val(self) -> Val {
                let $v = self;
                Val::$variant($into)
            }
            fn from_val(value: Val) -> Self {
                match value {
                    Val::$variant($w) => $from,
                    _ => Self::default(),
                }
            }
        }
    )*};
}

wasm_type! {
    i32 => I32, I32, |v| v, |w| w;
    i64 => I64, I64, |v| v, |w| w;
    f32 => F32, F32, |v| v.to_bits(), |w| f32::from_bits(w);
    f64 => F64, F64, |v| v.to_bits(), |w| f64::from_bits(w);
}

/// Parameters or results of a typed call: `()`, one [`WasmType`], or a tuple of up to
/// four of them.
pub trait WasmValues: Sized {
    /// Their WebAssembly types, in order.
    const TYPES: &'static [ValType];
    /// Writes them into the first slots of `slots`.
    fn store(self, slots: &mut [u8; SLOTS_BYTES]);
    /// Reads them from the first slots of `slots`.
    fn load(slots: &[u8; SLOTS_BYTES]) -> Self;
}

/// Slot `index` of `slots`.
fn slot(slots: &[u8; SLOTS_BYTES], index: usize) -> [u8; VALUE_SLOT_SIZE as usize] {
    let size = VALUE_SLOT_SIZE as usize;
    let mut bytes = [0u8; VALUE_SLOT_SIZE as usize];
    bytes.copy_from_slice(&slots[index * size..(index + 1) * size]);
    bytes
}

impl WasmValues for () {
    const TYPES: &'static [ValType] = &[];
    fn store(self, _: &mut [u8; SLOTS_BYTES]) {}
    fn load(_: &[u8; SLOTS_BYTES]) -> Self {}
}

impl<T: WasmType> WasmValues for T {
    const TYPES: &'static [ValType] = &[T::TYPE];
    fn store(self, slots: &mut [u8; SLOTS_BYTES]) {
        (self,).store(slots);
    }
    fn load(slots: &[u8; SLOTS_BYTES]) -> Self {
        <(T,)>::load(slots).0
    }
}

macro_rules! wasm_tuple {
    ($($name:ident $index:tt),+) => {
        impl<$($name: WasmType),+> WasmValues for ($($name,)+) {
            const TYPES: &'static [ValType] = &[$($name::TYPE),+];
            fn store(self, slots: &mut [u8; SLOTS_BYTES]) {
                let size = VALUE_SLOT_SIZE as usize;
                $(
                    slots[$index * size..($index + 1) * size]
                        .copy_from_slice(&self.$index.into_val().to_slot());
                )+
            }
            fn load(slots: &[u8; SLOTS_BYTES]) -> Self {
                ($($name::from_val(Val::from_slot($name::TYPE, slot(slots, $index))),)+)
            }
        }
    };
}

wasm_tuple!(A 0);
wasm_tuple!(A 0, B 1);
wasm_tuple!(A 0, B 1, C 2);
wasm_tuple!(A 0, B 1, C 2, D 3);

/// A WebAssembly function of a store, its type checked to be `P -> R`.
#[derive(Debug, Clone, Copy)]
pub struct TypedFunc<P, R> {
    /// The function, copied out of its store (where it lives as long as the store).
    funcref: VMFuncRef,
    /// The id of the store it belongs to, checked at each call.
    store: u64,
    /// The Rust types of its parameters and results.
    types: PhantomData<fn(P) -> R>,
}

impl<'e, H: RuntimeHal> Store<'e, H> {
    /// `func` as a [`TypedFunc`] taking `P` and returning `R`.
    ///
    /// # Errors
    /// [`CallError::BadArguments`] when `func` is not a WebAssembly function of this store
    /// (host functions are called with [`Store::call`]) or its type is not `P -> R`.
    pub fn typed_func<P: WasmValues, R: WasmValues>(
        &self,
        func: Func,
    ) -> Result<TypedFunc<P, R>, CallError> {
        let bad = |why: &str| CallError::BadArguments(alloc::format!("typed function: {why}"));
        let Func::Wasm(reference) = func else {
            return Err(bad("a host function (call it with Store::call)"));
        };
        let ty = self
            .func_type(func)
            .ok_or_else(|| bad("no such function"))?;
        if *ty.params != *P::TYPES || *ty.results != *R::TYPES {
            return Err(bad(&alloc::format!(
                "the function's type is {:?} -> {:?}",
                ty.params,
                ty.results
            )));
        }
        Ok(TypedFunc {
            // Safety: `FuncRef`s of this store point at live VMFuncRefs.
            funcref: unsafe { *reference.0.as_ptr() },
            store: self.inner().id,
            types: PhantomData,
        })
    }
}

impl<P: WasmValues, R: WasmValues> TypedFunc<P, R> {
    /// Calls the function in `store`, the store it came from.
    ///
    /// # Errors
    /// [`CallError::BadArguments`] for another store, and whatever [`Store::call`] would
    /// report (traps).
    pub fn call<H: RuntimeHal>(&self, store: &mut Store<'_, H>, params: P) -> Result<R, CallError> {
        if store.inner().id != self.store {
            return Err(CallError::BadArguments(
                "typed function: called with another store".into(),
            ));
        }
        let mut slots = [0u8; SLOTS_BYTES];
        params.store(&mut slots);
        // Safety: `&mut store` lends the store out for the call with no reference to it
        // in use; the funcref is a function of this store (checked above), of type
        // `P -> R` (checked when made), so `slots` has a slot for every parameter and
        // result (at most `MAX_VALUES` each), the parameters written.
        unsafe { StoreInner::call_slots(store.root(), &self.funcref, &mut slots) }?;
        Ok(R::load(&slots))
    }
}
