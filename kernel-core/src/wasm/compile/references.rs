//! References and table access that need no runtime call: `ref.null`, `ref.is_null`,
//! `ref.func`, `table.get`, `table.set`, `table.size`.
//!
//! A `funcref` is a `*const VMFuncRef`, null as 0; `ref.func f` is the address of `f`'s
//! slot in the VMContext's `func_refs` array (every function `ref.func` may name escapes,
//! so it has one). A table's elements are those pointers, `current_elements` of them from
//! `VMTableDefinition::base`; `table.get` and `table.set` trap with
//! `out of bounds table access` at or past the end. `externref` tables hold the runtime's
//! pointer-sized encoding of external references, also 0 for null, which generated code
//! only moves around. `table.grow`, `table.fill`, `table.copy`, `table.init` and
//! `elem.drop` call builtins (`bulk`).

use core::mem::size_of;

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{InstBuilder, Value, types};
use wasmparser::{AbstractHeapType, HeapType, Operator};

use super::CompileError;
use super::environ::{
    POINTER, TABLE_BASE, TABLE_LENGTH, TableLocation, mutable_flags, offset32, readonly_flags,
};
use super::func_translator::FuncTranslator;
use super::traps::trap_code;
use crate::wasm::env::RefType;
use crate::wasm::indices::FuncIndex;
use crate::wasm::trap::Trap;
use crate::wasm::vm::vmcontext::VMFuncRef;

impl FuncTranslator<'_, '_> {
    /// Translates a reference or table operator; `Ok(false)` when `op` is not one (or is
    /// one that needs a builtin).
    pub(super) fn translate_reference(&mut self, op: &Operator<'_>) -> Result<bool, CompileError> {
        match op {
            Operator::RefNull { hty } => {
                if !matches!(
                    hty,
                    HeapType::Abstract {
                        shared: false,
                        ty: AbstractHeapType::Func | AbstractHeapType::Extern
                    }
                ) {
                    return Err(CompileError::Unsupported(alloc::format!(
                        "ref.null {hty:?}"
                    )));
                }
                let null = self.builder.ins().iconst(POINTER, 0);
                self.push(null);
            }
            Operator::RefIsNull => {
                let reference = self.pop()?;
                let is_null = self.builder.ins().icmp_imm_u(IntCC::Equal, reference, 0);
                let is_null = self.builder.ins().uextend(types::I32, is_null);
                self.push(is_null);
            }
            Operator::RefFunc { function_index } => {
                let function = FuncIndex::from_u32(*function_index);
                let offset = self
                    .env
                    .module
                    .func_ref_index(function)
                    .and_then(|slot| self.env.shape.vmctx_func_ref(slot))
                    .ok_or_else(|| {
                        CompileError::invalid(alloc::format!(
                            "ref.func {function} names a function without a VMFuncRef"
                        ))
                    })?;
                let reference = self
                    .builder
                    .ins()
                    .iadd_imm_s(self.vmctx, i64::from(offset32(offset)?));
                self.push(reference);
            }
            Operator::TableSize { table } => {
                let definition = self.table_definition(*table)?;
                let length =
                    self.builder
                        .ins()
                        .load(POINTER, mutable_flags(), definition, TABLE_LENGTH);
                let length = self.builder.ins().ireduce(types::I32, length);
                self.push(length);
            }
            Operator::TableGet { table } => {
                self.reference_table(*table)?;
                let index = self.pop()?;
                let slot = self.table_slot(*table, index, Trap::TableOutOfBounds)?;
                let element = self.builder.ins().load(POINTER, mutable_flags(), slot, 0);
                self.push(element);
            }
            Operator::TableSet { table } => {
                self.reference_table(*table)?;
                let element = self.pop()?;
                let index = self.pop()?;
                let slot = self.table_slot(*table, index, Trap::TableOutOfBounds)?;
                self.builder.ins().store(mutable_flags(), element, slot, 0);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Refuses element access to tables whose elements are not pointer-sized references.
    pub(super) fn reference_table(&self, table: u32) -> Result<(), CompileError> {
        let element = self
            .env
            .module
            .tables
            .get(table as usize)
            .map(|table| table.element)
            .ok_or_else(|| CompileError::invalid(alloc::format!("no table {table}")))?;
        if matches!(element, RefType::Func | RefType::Extern) {
            Ok(())
        } else {
            Err(CompileError::Unsupported(alloc::format!(
                "element access to {element} tables"
            )))
        }
    }

    /// The address of table `table`'s `VMTableDefinition`.
    pub(super) fn table_definition(&mut self, table: u32) -> Result<Value, CompileError> {
        Ok(match self.env.table(table)? {
            TableLocation::Inline(offset) => {
                self.builder.ins().iadd_imm_s(self.vmctx, i64::from(offset))
            }
            TableLocation::Pointer(offset) => {
                self.builder
                    .ins()
                    .load(POINTER, readonly_flags(), self.vmctx, offset)
            }
        })
    }

    /// The address of element `index` (an `i32`) of `table`, trapping with `trap` when the
    /// index is not below the table's current length. Base and length are loaded afresh:
    /// both change when the table grows.
    pub(super) fn table_slot(
        &mut self,
        table: u32,
        index: Value,
        trap: Trap,
    ) -> Result<Value, CompileError> {
        let definition = self.table_definition(table)?;
        let base = self
            .builder
            .ins()
            .load(POINTER, mutable_flags(), definition, TABLE_BASE);
        let length = self
            .builder
            .ins()
            .load(POINTER, mutable_flags(), definition, TABLE_LENGTH);
        let index = self.builder.ins().uextend(types::I64, index);
        let out_of_bounds =
            self.builder
                .ins()
                .icmp(IntCC::UnsignedGreaterThanOrEqual, index, length);
        self.builder.ins().trapnz(out_of_bounds, trap_code(trap));
        let shift = size_of::<*const VMFuncRef>().trailing_zeros();
        let scaled = self.builder.ins().ishl_imm_u(index, i64::from(shift));
        Ok(self.builder.ins().iadd(base, scaled))
    }
}
