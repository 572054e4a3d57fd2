//! Values crossing the boundary between the host and WebAssembly.

use core::ptr::NonNull;

use crate::wasm::abi::VALUE_SLOT_SIZE;
use crate::wasm::env::{RefType, ValType};
use crate::wasm::vm::vmcontext::VMFuncRef;

/// A function reference: a pointer to a `VMFuncRef` that lives as long as its store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FuncRef(pub NonNull<VMFuncRef>);

/// A WebAssembly value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Val {
    /// `i32`.
    I32(i32),
    /// `i64`.
    I64(i64),
    /// `f32`, as its bit pattern (NaN payloads are kept).
    F32(u32),
    /// `f64`, as its bit pattern.
    F64(u64),
    /// `v128`.
    V128(u128),
    /// `funcref`.
    FuncRef(Option<FuncRef>),
    /// `externref`: an opaque host value.
    ExternRef(Option<u32>),
}

impl Val {
    /// The value's type.
    #[must_use]
    pub const fn ty(&self) -> ValType {
        match self {
            Self::I32(_) => ValType::I32,
            Self::I64(_) => ValType::I64,
            Self::F32(_) => ValType::F32,
            Self::F64(_) => ValType::F64,
            Self::V128(_) => ValType::V128,
            Self::FuncRef(_) => ValType::Ref(RefType::Func),
            Self::ExternRef(_) => ValType::Ref(RefType::Extern),
        }
    }

    /// The zero value of `ty` (null for references).
    #[must_use]
    pub const fn zero(ty: ValType) -> Self {
        match ty {
            ValType::I32 => Self::I32(0),
            ValType::I64 => Self::I64(0),
            ValType::F32 => Self::F32(0),
            ValType::F64 => Self::F64(0),
            ValType::V128 => Self::V128(0),
            ValType::Ref(RefType::Extern) => Self::ExternRef(None),
            ValType::Ref(_) => Self::FuncRef(None),
        }
    }

    /// The value as the 16 little-endian bytes of a value slot (and of a global's storage).
    #[must_use]
    pub fn to_slot(&self) -> [u8; VALUE_SLOT_SIZE as usize] {
        let bits: u128 = match *self {
            Self::I32(value) => u128::from(value.cast_unsigned()),
            Self::I64(value) => u128::from(value.cast_unsigned()),
            Self::F32(bits) => u128::from(bits),
            Self::F64(bits) => u128::from(bits),
            Self::V128(bits) => bits,
            Self::FuncRef(reference) => reference.map_or(0, |r| r.0.as_ptr() as usize) as u128,
            Self::ExternRef(reference) => reference.map_or(0, |value| u128::from(value) + 1),
        };
        bits.to_le_bytes()
    }

    /// Reads a value of type `ty` from the 16 little-endian bytes of a value slot.
    #[must_use]
    pub fn from_slot(ty: ValType, slot: [u8; VALUE_SLOT_SIZE as usize]) -> Self {
        let bits = u128::from_le_bytes(slot);
        // Truncations below keep exactly the bytes the type occupies.
        #[expect(
            clippy::cast_possible_truncation,
            reason = "taking the low bytes is the point"
        )]
        match ty {
            ValType::I32 => Self::I32((bits as u32).cast_signed()),
            ValType::I64 => Self::I64((bits as u64).cast_signed()),
            ValType::F32 => Self::F32(bits as u32),
            ValType::F64 => Self::F64(bits as u64),
            ValType::V128 => Self::V128(bits),
            ValType::Ref(RefType::Extern) => {
                Self::ExternRef((bits as u64).checked_sub(1).map(|value| value as u32))
            }
            ValType::Ref(_) => {
                Self::FuncRef(NonNull::new(bits as usize as *mut VMFuncRef).map(FuncRef))
            }
        }
    }
}
