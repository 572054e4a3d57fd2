//! Linear memory: loads, stores, `memory.size` and `memory.grow`.
//!
//! A 32-bit memory is a reservation of [`crate::wasm::abi::MEMORY_RESERVATION`] bytes with
//! every page past the current size inaccessible, so an access is
//! `base + zero_extend(address) + offset` computed in 64 bits with no bounds check: an
//! access past the end hits the guard and faults, and the fault's pc is in the trap table
//! as `out of bounds memory access` because every access carries that trap code.
//!
//! The base never moves (the reservation is made once), so its load is read-only and
//! Cranelift hoists it; `current_length` changes with `memory.grow` and is loaded afresh.

use cranelift_codegen::ir::{InstBuilder, Type, Value, types};
use wasmparser::{MemArg, MemArgTarget, Operator};

use super::CompileError;
use super::environ::{
    MEMORY_BASE, MEMORY_LENGTH, MemoryLocation, POINTER, heap_flags, mutable_flags, readonly_flags,
};
use super::func_translator::FuncTranslator;
use crate::wasm::abi::{Builtin, WASM_PAGE_SIZE};

/// How a load extends what it reads.
#[derive(Clone, Copy)]
enum Load {
    /// The full width of the type.
    Plain,
    /// `bits` bits, sign-extended.
    Signed(u8),
    /// `bits` bits, zero-extended.
    Unsigned(u8),
}

impl FuncTranslator<'_, '_> {
    /// Translates a memory operator; `Ok(false)` when `op` is not one.
    pub(super) fn translate_memory(&mut self, op: &Operator<'_>) -> Result<bool, CompileError> {
        use types::{F32, F64, I32, I64};
        match op {
            Operator::I32Load { memarg } => self.load(memarg, I32, Load::Plain)?,
            Operator::I64Load { memarg } => self.load(memarg, I64, Load::Plain)?,
            Operator::F32Load { memarg } => self.load(memarg, F32, Load::Plain)?,
            Operator::F64Load { memarg } => self.load(memarg, F64, Load::Plain)?,
            Operator::I32Load8S { memarg } => self.load(memarg, I32, Load::Signed(8))?,
            Operator::I32Load8U { memarg } => self.load(memarg, I32, Load::Unsigned(8))?,
            Operator::I32Load16S { memarg } => self.load(memarg, I32, Load::Signed(16))?,
            Operator::I32Load16U { memarg } => self.load(memarg, I32, Load::Unsigned(16))?,
            Operator::I64Load8S { memarg } => self.load(memarg, I64, Load::Signed(8))?,
            Operator::I64Load8U { memarg } => self.load(memarg, I64, Load::Unsigned(8))?,
            Operator::I64Load16S { memarg } => self.load(memarg, I64, Load::Signed(16))?,
            Operator::I64Load16U { memarg } => self.load(memarg, I64, Load::Unsigned(16))?,
            Operator::I64Load32S { memarg } => self.load(memarg, I64, Load::Signed(32))?,
            Operator::I64Load32U { memarg } => self.load(memarg, I64, Load::Unsigned(32))?,
            Operator::I32Store { memarg }
            | Operator::I64Store { memarg }
            | Operator::F32Store { memarg }
            | Operator::F64Store { memarg } => self.store(memarg, None)?,
            Operator::I32Store8 { memarg } | Operator::I64Store8 { memarg } => {
                self.store(memarg, Some(8))?;
            }
            Operator::I32Store16 { memarg } | Operator::I64Store16 { memarg } => {
                self.store(memarg, Some(16))?;
            }
            Operator::I64Store32 { memarg } => self.store(memarg, Some(32))?,
            Operator::MemorySize { mem } => {
                let definition = self.memory_definition(*mem)?;
                let bytes =
                    self.builder
                        .ins()
                        .load(POINTER, mutable_flags(), definition, MEMORY_LENGTH);
                let pages = self
                    .builder
                    .ins()
                    .ushr_imm_u(bytes, i64::from(WASM_PAGE_SIZE.trailing_zeros()));
                let pages = self.builder.ins().ireduce(types::I32, pages);
                self.push(pages);
            }
            Operator::MemoryGrow { mem } => {
                let delta = self.pop()?;
                let result = self.memory_grow(*mem, delta)?;
                self.push(result);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The address of memory `index`'s `VMMemoryDefinition`.
    fn memory_definition(&mut self, index: u32) -> Result<Value, CompileError> {
        Ok(match self.env.memory(index)? {
            MemoryLocation::Inline(offset) => {
                self.builder.ins().iadd_imm_s(self.vmctx, i64::from(offset))
            }
            MemoryLocation::Pointer(offset) => {
                self.builder
                    .ins()
                    .load(POINTER, readonly_flags(), self.vmctx, offset)
            }
        })
    }

    /// `(address, immediate offset)` of an access: memory base plus the zero-extended
    /// 32-bit address, plus the static offset. (`pub(super)` for the SIMD loads and
    /// stores in `simd`.)
    pub(super) fn heap_address(
        &mut self,
        memarg: &MemArg,
        address: Value,
    ) -> Result<(Value, i32), CompileError> {
        let MemArgTarget::Memory(index) = memarg.target else {
            return Err(CompileError::Unsupported("GC array accesses".into()));
        };
        if memarg.ordering.is_some() {
            return Err(CompileError::Unsupported("atomic memory accesses".into()));
        }
        let base = match self.env.memory(index)? {
            MemoryLocation::Inline(offset) => {
                let offset = offset.checked_add(MEMORY_BASE).ok_or_else(|| {
                    CompileError::Unsupported("VMContext offsets past 2 GiB".into())
                })?;
                self.builder
                    .ins()
                    .load(POINTER, readonly_flags(), self.vmctx, offset)
            }
            MemoryLocation::Pointer(offset) => {
                let definition =
                    self.builder
                        .ins()
                        .load(POINTER, readonly_flags(), self.vmctx, offset);
                self.builder
                    .ins()
                    .load(POINTER, readonly_flags(), definition, MEMORY_BASE)
            }
        };
        let address = self.builder.ins().uextend(types::I64, address);
        let address = self.builder.ins().iadd(base, address);
        // A 32-bit memory's static offset is below 2^32: fold it into the access when it
        // fits the signed 32-bit immediate, add it in 64 bits otherwise.
        Ok(match i32::try_from(memarg.offset) {
            Ok(offset) => (address, offset),
            Err(_) => {
                let offset = i64::try_from(memarg.offset)
                    .map_err(|_| CompileError::Unsupported("64-bit memory offsets".into()))?;
                (self.builder.ins().iadd_imm_s(address, offset), 0)
            }
        })
    }

    fn load(&mut self, memarg: &MemArg, ty: Type, kind: Load) -> Result<(), CompileError> {
        let address = self.pop()?;
        let (address, offset) = self.heap_address(memarg, address)?;
        let flags = heap_flags();
        let ins = self.builder.ins();
        let value = match kind {
            Load::Plain => ins.load(ty, flags, address, offset),
            Load::Signed(8) => ins.sload8(ty, flags, address, offset),
            Load::Unsigned(8) => ins.uload8(ty, flags, address, offset),
            Load::Signed(16) => ins.sload16(ty, flags, address, offset),
            Load::Unsigned(16) => ins.uload16(ty, flags, address, offset),
            Load::Signed(_) => ins.sload32(flags, address, offset),
            Load::Unsigned(_) => ins.uload32(flags, address, offset),
        };
        self.push(value);
        Ok(())
    }

    /// Stores the top value, or its low `bits` bits.
    fn store(&mut self, memarg: &MemArg, bits: Option<u8>) -> Result<(), CompileError> {
        let value = self.pop()?;
        let address = self.pop()?;
        let (address, offset) = self.heap_address(memarg, address)?;
        let flags = heap_flags();
        let ins = self.builder.ins();
        match bits {
            None => ins.store(flags, value, address, offset),
            Some(8) => ins.istore8(flags, value, address, offset),
            Some(16) => ins.istore16(flags, value, address, offset),
            Some(_) => ins.istore32(flags, value, address, offset),
        };
        Ok(())
    }

    /// `memory.grow`: calls [`Builtin::MemoryGrow`] through the VMContext's builtin array;
    /// the result's low 32 bits are the old size in pages, or -1 for `u64::MAX`.
    fn memory_grow(&mut self, index: u32, delta: Value) -> Result<Value, CompileError> {
        self.env.memory(index)?;
        let index = self.builder.ins().iconst(types::I64, i64::from(index));
        let delta = self.builder.ins().uextend(types::I64, delta);
        let previous = self
            .call_builtin(Builtin::MemoryGrow, &[index, delta])?
            .ok_or_else(|| CompileError::invalid("memory.grow's builtin returned nothing"))?;
        // A 32-bit memory has at most 65536 pages, so the low 32 bits are the old size,
        // and `u64::MAX` (failure) becomes -1.
        Ok(self.builder.ins().ireduce(types::I32, previous))
    }
}
