//! Locals, globals and the parametric operators (`drop`, `select`).
//!
//! Locals are `cranelift_frontend` variables. A defined global lives in the VMContext's
//! `defined_globals` array, an imported one behind its `VMGlobalImport::from` pointer; the
//! value is at offset 0 of its 16-byte `VMGlobalDefinition`. Immutable globals are loaded
//! as read-only, so Cranelift may merge and hoist the loads.

use cranelift_codegen::ir::{InstBuilder, Value};
use wasmparser::Operator;

use super::CompileError;
use super::environ::{GlobalInfo, GlobalLocation, POINTER, mutable_flags, readonly_flags};
use super::func_translator::FuncTranslator;

impl FuncTranslator<'_, '_> {
    /// Translates a variable or parametric operator; `Ok(false)` when `op` is not one.
    pub(super) fn translate_variable(&mut self, op: &Operator<'_>) -> Result<bool, CompileError> {
        match op {
            Operator::LocalGet { local_index } => {
                let (variable, _) = self.local(*local_index)?;
                let value = self.builder.use_var(variable);
                self.push(value);
            }
            Operator::LocalSet { local_index } => {
                let (variable, _) = self.local(*local_index)?;
                let value = self.pop()?;
                self.builder.def_var(variable, value);
            }
            Operator::LocalTee { local_index } => {
                let (variable, _) = self.local(*local_index)?;
                let value = *self
                    .peek_n(1)?
                    .first()
                    .ok_or_else(super::func_translator::stack_underflow)?;
                self.builder.def_var(variable, value);
            }
            Operator::GlobalGet { global_index } => {
                let value = self.global_get(*global_index)?;
                self.push(value);
            }
            Operator::GlobalSet { global_index } => {
                let value = self.pop()?;
                self.global_set(*global_index, value)?;
            }
            Operator::Drop => {
                self.pop()?;
            }
            Operator::Select | Operator::TypedSelect { .. } => {
                let condition = self.pop()?;
                let (if_true, if_false) = self.pop2()?;
                let value = self.builder.ins().select(condition, if_true, if_false);
                self.push(value);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The address of global `index`'s value: `(base, offset)`.
    fn global_address(&mut self, index: u32) -> Result<(Value, i32, GlobalInfo), CompileError> {
        let global = self.env.global(index)?;
        Ok(match global.location {
            GlobalLocation::Inline(offset) => (self.vmctx, offset, global),
            GlobalLocation::Pointer(offset) => {
                let definition =
                    self.builder
                        .ins()
                        .load(POINTER, readonly_flags(), self.vmctx, offset);
                (definition, 0, global)
            }
        })
    }

    fn global_get(&mut self, index: u32) -> Result<Value, CompileError> {
        let (base, offset, global) = self.global_address(index)?;
        let flags = if global.mutable {
            mutable_flags()
        } else {
            readonly_flags()
        };
        Ok(self.builder.ins().load(global.ty, flags, base, offset))
    }

    fn global_set(&mut self, index: u32, value: Value) -> Result<(), CompileError> {
        let (base, offset, global) = self.global_address(index)?;
        if !global.mutable {
            return Err(CompileError::invalid(alloc::format!(
                "global.set of immutable global {index}"
            )));
        }
        self.builder
            .ins()
            .store(mutable_flags(), value, base, offset);
        Ok(())
    }
}
