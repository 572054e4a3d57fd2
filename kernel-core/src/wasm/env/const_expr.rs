//! Constant expressions: global initialisers and segment offsets.

use alloc::boxed::Box;

use super::types::RefType;
use crate::wasm::indices::{FuncIndex, GlobalIndex};

/// One instruction of a constant expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConstOp {
    /// `i32.const`.
    I32Const(i32),
    /// `i64.const`.
    I64Const(i64),
    /// `f32.const`, as its bit pattern.
    F32Const(u32),
    /// `f64.const`, as its bit pattern.
    F64Const(u64),
    /// `v128.const`, little-endian.
    V128Const(u128),
    /// `ref.null`.
    RefNull(RefType),
    /// `ref.func`.
    RefFunc(FuncIndex),
    /// `global.get` of an (imported, or under extended-const, earlier) global.
    GlobalGet(GlobalIndex),
    /// `i32.add` (extended constant expressions).
    I32Add,
    /// `i32.sub` (extended constant expressions).
    I32Sub,
    /// `i32.mul` (extended constant expressions).
    I32Mul,
    /// `i64.add` (extended constant expressions).
    I64Add,
    /// `i64.sub` (extended constant expressions).
    I64Sub,
    /// `i64.mul` (extended constant expressions).
    I64Mul,
}

/// A validated constant expression: a stack program leaving exactly one value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConstExpr {
    /// The instructions, without the final `end`.
    pub ops: Box<[ConstOp]>,
}

impl ConstExpr {
    /// The functions this expression takes a reference to (`ref.func`).
    pub fn referenced_functions(&self) -> impl Iterator<Item = FuncIndex> + '_ {
        self.ops.iter().filter_map(|op| match op {
            ConstOp::RefFunc(func) => Some(*func),
            _ => None,
        })
    }
}
