//! Bulk memory and table operations: `memory.copy`, `memory.fill`, `memory.init`,
//! `data.drop`, `table.grow`, `table.fill`, `table.copy`, `table.init`, `elem.drop`.
//!
//! Each is a call to a [`Builtin`] through the VMContext's builtin array, with the caller's
//! VMContext first and every other operand as a 64-bit integer (`i32` operands
//! zero-extended, table elements as the pointer-sized words they are). The builtins check
//! bounds themselves and return a status; a non-zero status means the operation was out of
//! bounds and did nothing, and the code here traps on it with `trapnz`: `out of bounds
//! memory access` for the memory operations, `out of bounds table access` for the table
//! ones. `table.grow` returns the previous size or `u64::MAX`, whose low 32 bits are the
//! `i32` result (-1 on failure); the drops return nothing.

use alloc::vec::Vec;

use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Value, types};
use wasmparser::Operator;

use super::CompileError;
use super::environ::{POINTER, builtin_offset, offset32, readonly_flags};
use super::func_translator::{FuncTranslator, stack_underflow};
use super::traps::trap_code;
use crate::wasm::abi::Builtin;
use crate::wasm::env::{RefType, VMShape};
use crate::wasm::trap::Trap;

impl FuncTranslator<'_, '_> {
    /// Translates a bulk memory or table operator; `Ok(false)` when `op` is not one.
    pub(super) fn translate_bulk(&mut self, op: &Operator<'_>) -> Result<bool, CompileError> {
        match *op {
            Operator::MemoryCopy { dst_mem, src_mem } => {
                self.env.memory(dst_mem)?;
                self.env.memory(src_mem)?;
                let [dst, src, len] = self.pop_u64::<3>()?;
                let dst_mem = self.u64_const(dst_mem);
                let src_mem = self.u64_const(src_mem);
                self.call_checked(
                    Builtin::MemoryCopy,
                    &[dst_mem, dst, src_mem, src, len],
                    Trap::MemoryOutOfBounds,
                )?;
            }
            Operator::MemoryFill { mem } => {
                self.env.memory(mem)?;
                let [dst, byte, len] = self.pop_u64::<3>()?;
                let mem = self.u64_const(mem);
                self.call_checked(
                    Builtin::MemoryFill,
                    &[mem, dst, byte, len],
                    Trap::MemoryOutOfBounds,
                )?;
            }
            Operator::MemoryInit { data_index, mem } => {
                self.env.memory(mem)?;
                self.data_segment(data_index)?;
                let [dst, src, len] = self.pop_u64::<3>()?;
                let mem = self.u64_const(mem);
                let data = self.u64_const(data_index);
                self.call_checked(
                    Builtin::MemoryInit,
                    &[mem, data, dst, src, len],
                    Trap::MemoryOutOfBounds,
                )?;
            }
            Operator::DataDrop { data_index } => {
                self.data_segment(data_index)?;
                let data = self.u64_const(data_index);
                self.call_builtin(Builtin::DataDrop, &[data])?;
            }
            Operator::TableGrow { table } => {
                self.reference_table(table)?;
                let delta = self.pop()?;
                let init = self.pop()?;
                let delta = self.builder.ins().uextend(types::I64, delta);
                let table = self.u64_const(table);
                let previous = self.call_builtin(Builtin::TableGrow, &[table, init, delta])?;
                let previous = self.returned(previous)?;
                // A table has at most 10 million elements, so the low 32 bits are the old
                // size, and `u64::MAX` (failure) becomes -1.
                let previous = self.builder.ins().ireduce(types::I32, previous);
                self.push(previous);
            }
            Operator::TableFill { table } => {
                self.reference_table(table)?;
                let len = self.pop()?;
                let value = self.pop()?;
                let dst = self.pop()?;
                let len = self.builder.ins().uextend(types::I64, len);
                let dst = self.builder.ins().uextend(types::I64, dst);
                let table = self.u64_const(table);
                self.call_checked(
                    Builtin::TableFill,
                    &[table, dst, value, len],
                    Trap::TableOutOfBounds,
                )?;
            }
            Operator::TableCopy {
                dst_table,
                src_table,
            } => {
                self.reference_table(dst_table)?;
                self.reference_table(src_table)?;
                let [dst, src, len] = self.pop_u64::<3>()?;
                let dst_table = self.u64_const(dst_table);
                let src_table = self.u64_const(src_table);
                self.call_checked(
                    Builtin::TableCopy,
                    &[dst_table, dst, src_table, src, len],
                    Trap::TableOutOfBounds,
                )?;
            }
            Operator::TableInit { elem_index, table } => {
                self.reference_table(table)?;
                self.element_segment(elem_index)?;
                let [dst, src, len] = self.pop_u64::<3>()?;
                let table = self.u64_const(table);
                let elem = self.u64_const(elem_index);
                self.call_checked(
                    Builtin::TableInit,
                    &[table, elem, dst, src, len],
                    Trap::TableOutOfBounds,
                )?;
            }
            Operator::ElemDrop { elem_index } => {
                self.element_segment(elem_index)?;
                let elem = self.u64_const(elem_index);
                self.call_builtin(Builtin::ElemDrop, &[elem])?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Calls `builtin` with the caller's VMContext and `args`; its result, if it has one.
    ///
    /// # Errors
    /// [`CompileError::Invalid`] when `args` does not match the builtin's parameter count.
    pub(super) fn call_builtin(
        &mut self,
        builtin: Builtin,
        args: &[Value],
    ) -> Result<Option<Value>, CompileError> {
        self.call_builtin_with(builtin, args, readonly_flags())
    }

    /// [`Self::call_builtin`], with the loads of the builtin's address left where the call
    /// is (not hoisted out of loops): for calls on cold paths, where a hoisted address
    /// would only hold a register across the hot path.
    ///
    /// # Errors
    /// As [`Self::call_builtin`].
    pub(super) fn call_builtin_in_place(
        &mut self,
        builtin: Builtin,
        args: &[Value],
    ) -> Result<Option<Value>, CompileError> {
        self.call_builtin_with(builtin, args, MemFlagsData::trusted().with_readonly())
    }

    /// Calls `builtin`, loading its address with `flags`.
    fn call_builtin_with(
        &mut self,
        builtin: Builtin,
        args: &[Value],
        flags: MemFlagsData,
    ) -> Result<Option<Value>, CompileError> {
        if args.len() != builtin.params() {
            return Err(CompileError::invalid(alloc::format!(
                "{builtin:?} takes {} arguments, not {}",
                builtin.params(),
                args.len()
            )));
        }
        let signature = self.builtin_signature(builtin);
        let builtins = self.builder.ins().load(
            POINTER,
            flags,
            self.vmctx,
            offset32(VMShape::BUILTIN_FUNCTIONS)?,
        );
        let function = self
            .builder
            .ins()
            .load(POINTER, flags, builtins, builtin_offset(builtin));
        let mut call_args = Vec::with_capacity(args.len() + 1);
        call_args.push(self.vmctx);
        call_args.extend_from_slice(args);
        let call = self
            .builder
            .ins()
            .call_indirect(signature, function, &call_args);
        // A builtin may switch the process out (the epoch builtin, a blocking one), and
        // the scheduler moves the deadline meanwhile.
        self.reload_epoch_deadline()?;
        Ok(self.builder.inst_results(call).first().copied())
    }

    /// Calls a bulk builtin and traps with `trap` when its status is not zero.
    fn call_checked(
        &mut self,
        builtin: Builtin,
        args: &[Value],
        trap: Trap,
    ) -> Result<(), CompileError> {
        let status = self.call_builtin(builtin, args)?;
        let status = self.returned(status)?;
        self.builder.ins().trapnz(status, trap_code(trap));
        Ok(())
    }

    /// The result of a builtin that returns one.
    fn returned(&self, result: Option<Value>) -> Result<Value, CompileError> {
        result.ok_or_else(|| CompileError::invalid("a builtin returned no value"))
    }

    /// Pops `N` `i32` operands, deepest first, zero-extended to 64 bits.
    fn pop_u64<const N: usize>(&mut self) -> Result<[Value; N], CompileError> {
        let extended: Vec<Value> = self
            .pop_n(N)?
            .into_iter()
            .map(|value| self.builder.ins().uextend(types::I64, value))
            .collect();
        extended.try_into().map_err(|_| stack_underflow())
    }

    /// An index immediate as a 64-bit constant.
    fn u64_const(&mut self, value: u32) -> Value {
        self.builder.ins().iconst(types::I64, i64::from(value))
    }

    /// Checks that data segment `index` exists.
    fn data_segment(&self, index: u32) -> Result<(), CompileError> {
        if (index as usize) < self.env.module.data.len() {
            Ok(())
        } else {
            Err(CompileError::invalid(alloc::format!(
                "no data segment {index}"
            )))
        }
    }

    /// Checks that element segment `index` exists and holds pointer-sized references.
    fn element_segment(&self, index: u32) -> Result<(), CompileError> {
        let segment = self
            .env
            .module
            .elements
            .get(index as usize)
            .ok_or_else(|| CompileError::invalid(alloc::format!("no element segment {index}")))?;
        match segment.element_type {
            RefType::Func | RefType::Extern => Ok(()),
            other => Err(CompileError::Unsupported(alloc::format!(
                "element segments of {other}"
            ))),
        }
    }
}
