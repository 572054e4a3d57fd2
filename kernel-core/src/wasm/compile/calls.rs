//! Calls: `call` and `call_indirect`.
//!
//! Every WebAssembly call passes `(callee_vmctx, caller_vmctx, stack_left, args...)` with
//! the `tail` convention ([`crate::wasm::abi`]), `stack_left` being what the caller leaves
//! of the stack budget after its own cost (`stack_cost`). A defined function is called directly (a colocated
//! call the linker patches) with this instance's VMContext twice; an imported one through
//! the `wasm_call` and `vmctx` of its `VMFunctionImport`.
//!
//! `call_indirect` checks, in order: the index is below the table's `current_elements`
//! (else `undefined element`), the entry is not null (else `uninitialized element`), and the
//! entry's `VMFuncRef::type_index` equals the engine-wide id of the expected type, read
//! from `type_ids[type_index]` (else `indirect call type mismatch`). Then it calls the
//! entry's `wasm_call` with the entry's `vmctx`.

use alloc::vec::Vec;
use core::mem::{offset_of, size_of};

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Value, types};
use wasmparser::Operator;

use super::CompileError;
use super::environ::{POINTER, mutable_flags, offset32, readonly_flags};
use super::func_translator::FuncTranslator;
use super::traps::trap_code;
use crate::wasm::env::VMShape;
use crate::wasm::indices::{FuncIndex, TypeIndex};
use crate::wasm::trap::Trap;
use crate::wasm::vm::vmcontext::{VMFuncRef, VMSharedTypeIndex};

impl FuncTranslator<'_, '_> {
    /// Translates a call operator; `Ok(false)` when `op` is not one.
    pub(super) fn translate_call(&mut self, op: &Operator<'_>) -> Result<bool, CompileError> {
        match op {
            Operator::Call { function_index } => {
                self.call(FuncIndex::from_u32(*function_index))?;
            }
            Operator::CallIndirect {
                type_index,
                table_index,
            } => self.call_indirect(TypeIndex::from_u32(*type_index), *table_index)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Pops `type_index`'s parameters and prepends the two VMContexts and the stack
    /// budget this function leaves.
    fn call_arguments(
        &mut self,
        type_index: TypeIndex,
        callee_vmctx: Option<Value>,
    ) -> Result<Vec<Value>, CompileError> {
        let count = self.env.func_type(type_index)?.params.len();
        let params = self.pop_n(count)?;
        let mut args = Vec::with_capacity(count + 3);
        args.push(callee_vmctx.unwrap_or(self.vmctx));
        args.push(self.vmctx);
        args.push(self.stack_left_for_callees()?);
        args.extend(params);
        Ok(args)
    }

    fn push_results(&mut self, call: cranelift_codegen::ir::Inst) {
        let results = self.builder.inst_results(call).to_vec();
        self.stack.extend(results);
    }

    fn call(&mut self, index: FuncIndex) -> Result<(), CompileError> {
        let type_index = self.env.function_type_index(index)?;
        let call = if self.env.is_imported_function(index) {
            let (wasm_call, vmctx) = self.env.function_import(index)?;
            let signature = self.signature(type_index)?;
            let callee = self
                .builder
                .ins()
                .load(POINTER, readonly_flags(), self.vmctx, wasm_call);
            let callee_vmctx =
                self.builder
                    .ins()
                    .load(POINTER, readonly_flags(), self.vmctx, vmctx);
            let args = self.call_arguments(type_index, Some(callee_vmctx))?;
            self.builder.ins().call_indirect(signature, callee, &args)
        } else {
            let callee = self.direct_callee(index)?;
            let args = self.call_arguments(type_index, None)?;
            self.builder.ins().call(callee, &args)
        };
        self.reload_epoch_deadline()?;
        self.push_results(call);
        Ok(())
    }

    fn call_indirect(&mut self, type_index: TypeIndex, table: u32) -> Result<(), CompileError> {
        let signature = self.signature(type_index)?;
        let element = self.pop()?;
        let mut args = self.call_arguments(type_index, None)?;

        // Elements are `*const VMFuncRef`, null for an uninitialised entry.
        let slot = self.table_slot(table, element, Trap::UndefinedElement)?;
        let func_ref = self.builder.ins().load(POINTER, mutable_flags(), slot, 0);
        self.builder
            .ins()
            .trapz(func_ref, trap_code(Trap::IndirectCallToNull));

        // Signature check against the engine-wide id of the expected type.
        let type_ids = self.builder.ins().load(
            POINTER,
            readonly_flags(),
            self.vmctx,
            offset32(VMShape::TYPE_IDS)?,
        );
        let expected_offset = type_index
            .as_u32()
            .checked_mul(size_of::<VMSharedTypeIndex>() as u32)
            .ok_or_else(|| CompileError::invalid("type index"))?;
        let expected = self.builder.ins().load(
            types::I32,
            readonly_flags(),
            type_ids,
            offset32(expected_offset)?,
        );
        // A VMFuncRef never changes, but reading it depends on the null check above.
        let func_ref_flags = MemFlagsData::trusted().with_readonly();
        let actual = self.builder.ins().load(
            types::I32,
            func_ref_flags,
            func_ref,
            offset_of!(VMFuncRef, type_index) as i32,
        );
        let mismatch = self.builder.ins().icmp(IntCC::NotEqual, expected, actual);
        self.builder
            .ins()
            .trapnz(mismatch, trap_code(Trap::BadSignature));

        let callee = self.builder.ins().load(
            POINTER,
            func_ref_flags,
            func_ref,
            offset_of!(VMFuncRef, wasm_call) as i32,
        );
        let callee_vmctx = self.builder.ins().load(
            POINTER,
            func_ref_flags,
            func_ref,
            offset_of!(VMFuncRef, vmctx) as i32,
        );
        args[0] = callee_vmctx;
        let call = self.builder.ins().call_indirect(signature, callee, &args);
        self.reload_epoch_deadline()?;
        self.push_results(call);
        Ok(())
    }
}
