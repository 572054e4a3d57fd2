//! Numeric operators: constants, integer and float arithmetic, comparisons, conversions,
//! reinterpretations, sign extension and saturating truncation.
//!
//! Each maps onto the Cranelift instruction with the same semantics:
//!
//! * shifts and rotates take their count modulo the width in both languages;
//! * `sdiv`/`udiv`/`srem`/`urem` trap on a zero divisor (`INTEGER_DIVISION_BY_ZERO`) and
//!   `sdiv` on `MIN / -1` (`INTEGER_OVERFLOW`); `srem` of `MIN` by `-1` is 0, as
//!   WebAssembly wants. Both backends emit these checks themselves (riscv64 with explicit
//!   conditional traps, x86-64 with a zero test, a `-1` special case for `srem`, and the
//!   `idiv` fault for `sdiv` overflow, each recorded in the trap table);
//! * `fmin`/`fmax` propagate NaN and order -0 below +0, `nearest` rounds to even;
//! * `fcvt_to_sint`/`fcvt_to_uint` trap with `BAD_CONVERSION_TO_INTEGER` on NaN and
//!   `INTEGER_OVERFLOW` out of range; the `_sat` forms saturate and give 0 for NaN;
//! * comparisons produce an `i8` 0/1 that is zero-extended to the `i32` WebAssembly wants.

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::immediates::{Ieee32, Ieee64};
use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Type, Value, types};
use wasmparser::Operator;

use super::CompileError;
use super::func_translator::FuncTranslator;

/// A two-operand instruction of the builder.
type Binary = fn(cranelift_frontend::FuncInstBuilder<'_, '_>, Value, Value) -> Value;
/// A one-operand instruction of the builder.
type Unary = fn(cranelift_frontend::FuncInstBuilder<'_, '_>, Value) -> Value;
/// A conversion to a type.
type Convert = fn(cranelift_frontend::FuncInstBuilder<'_, '_>, Type, Value) -> Value;

impl FuncTranslator<'_, '_> {
    /// Translates a numeric operator; `Ok(false)` when `op` is not one.
    #[expect(
        clippy::too_many_lines,
        reason = "one flat table of operators reads better than several"
    )]
    pub(super) fn translate_numeric(&mut self, op: &Operator<'_>) -> Result<bool, CompileError> {
        use types::{F32, F64, I8, I16, I32, I64};
        match op {
            Operator::I32Const { value } => {
                let value = self.builder.ins().iconst(I32, i64::from(*value));
                self.push(value);
            }
            Operator::I64Const { value } => {
                let value = self.builder.ins().iconst(I64, *value);
                self.push(value);
            }
            Operator::F32Const { value } => {
                let value = self.builder.ins().f32const(Ieee32::with_bits(value.bits()));
                self.push(value);
            }
            Operator::F64Const { value } => {
                let value = self.builder.ins().f64const(Ieee64::with_bits(value.bits()));
                self.push(value);
            }

            // Integer comparisons.
            Operator::I32Eqz | Operator::I64Eqz => {
                let value = self.pop()?;
                let zero = self.builder.ins().icmp_imm_u(IntCC::Equal, value, 0);
                self.push_bool(zero);
            }
            Operator::I32Eq | Operator::I64Eq => self.icmp(IntCC::Equal)?,
            Operator::I32Ne | Operator::I64Ne => self.icmp(IntCC::NotEqual)?,
            Operator::I32LtS | Operator::I64LtS => self.icmp(IntCC::SignedLessThan)?,
            Operator::I32LtU | Operator::I64LtU => self.icmp(IntCC::UnsignedLessThan)?,
            Operator::I32GtS | Operator::I64GtS => self.icmp(IntCC::SignedGreaterThan)?,
            Operator::I32GtU | Operator::I64GtU => self.icmp(IntCC::UnsignedGreaterThan)?,
            Operator::I32LeS | Operator::I64LeS => self.icmp(IntCC::SignedLessThanOrEqual)?,
            Operator::I32LeU | Operator::I64LeU => self.icmp(IntCC::UnsignedLessThanOrEqual)?,
            Operator::I32GeS | Operator::I64GeS => self.icmp(IntCC::SignedGreaterThanOrEqual)?,
            Operator::I32GeU | Operator::I64GeU => {
                self.icmp(IntCC::UnsignedGreaterThanOrEqual)?;
            }

            // Float comparisons: `ne` is true for NaN operands, the others false.
            Operator::F32Eq | Operator::F64Eq => self.fcmp(FloatCC::Equal)?,
            Operator::F32Ne | Operator::F64Ne => self.fcmp(FloatCC::NotEqual)?,
            Operator::F32Lt | Operator::F64Lt => self.fcmp(FloatCC::LessThan)?,
            Operator::F32Gt | Operator::F64Gt => self.fcmp(FloatCC::GreaterThan)?,
            Operator::F32Le | Operator::F64Le => self.fcmp(FloatCC::LessThanOrEqual)?,
            Operator::F32Ge | Operator::F64Ge => self.fcmp(FloatCC::GreaterThanOrEqual)?,

            // Integer arithmetic.
            Operator::I32Clz | Operator::I64Clz => self.unary(|b, x| b.clz(x))?,
            Operator::I32Ctz | Operator::I64Ctz => self.unary(|b, x| b.ctz(x))?,
            Operator::I32Popcnt | Operator::I64Popcnt => self.unary(|b, x| b.popcnt(x))?,
            Operator::I32Add | Operator::I64Add => self.binary(|b, x, y| b.iadd(x, y))?,
            Operator::I32Sub | Operator::I64Sub => self.binary(|b, x, y| b.isub(x, y))?,
            Operator::I32Mul | Operator::I64Mul => self.binary(|b, x, y| b.imul(x, y))?,
            Operator::I32DivS | Operator::I64DivS => self.binary(|b, x, y| b.sdiv(x, y))?,
            Operator::I32DivU | Operator::I64DivU => self.binary(|b, x, y| b.udiv(x, y))?,
            Operator::I32RemS | Operator::I64RemS => self.binary(|b, x, y| b.srem(x, y))?,
            Operator::I32RemU | Operator::I64RemU => self.binary(|b, x, y| b.urem(x, y))?,
            Operator::I32And | Operator::I64And => self.binary(|b, x, y| b.band(x, y))?,
            Operator::I32Or | Operator::I64Or => self.binary(|b, x, y| b.bor(x, y))?,
            Operator::I32Xor | Operator::I64Xor => self.binary(|b, x, y| b.bxor(x, y))?,
            Operator::I32Shl | Operator::I64Shl => self.binary(|b, x, y| b.ishl(x, y))?,
            Operator::I32ShrS | Operator::I64ShrS => self.binary(|b, x, y| b.sshr(x, y))?,
            Operator::I32ShrU | Operator::I64ShrU => self.binary(|b, x, y| b.ushr(x, y))?,
            Operator::I32Rotl | Operator::I64Rotl => self.binary(|b, x, y| b.rotl(x, y))?,
            Operator::I32Rotr | Operator::I64Rotr => self.binary(|b, x, y| b.rotr(x, y))?,

            // Float arithmetic.
            Operator::F32Abs | Operator::F64Abs => self.unary(|b, x| b.fabs(x))?,
            Operator::F32Neg | Operator::F64Neg => self.unary(|b, x| b.fneg(x))?,
            Operator::F32Ceil | Operator::F64Ceil => self.unary(|b, x| b.ceil(x))?,
            Operator::F32Floor | Operator::F64Floor => self.unary(|b, x| b.floor(x))?,
            Operator::F32Trunc | Operator::F64Trunc => self.unary(|b, x| b.trunc(x))?,
            Operator::F32Nearest | Operator::F64Nearest => self.unary(|b, x| b.nearest(x))?,
            Operator::F32Sqrt | Operator::F64Sqrt => self.unary(|b, x| b.sqrt(x))?,
            Operator::F32Add | Operator::F64Add => self.binary(|b, x, y| b.fadd(x, y))?,
            Operator::F32Sub | Operator::F64Sub => self.binary(|b, x, y| b.fsub(x, y))?,
            Operator::F32Mul | Operator::F64Mul => self.binary(|b, x, y| b.fmul(x, y))?,
            Operator::F32Div | Operator::F64Div => self.binary(|b, x, y| b.fdiv(x, y))?,
            Operator::F32Min | Operator::F64Min => self.binary(|b, x, y| b.fmin(x, y))?,
            Operator::F32Max | Operator::F64Max => self.binary(|b, x, y| b.fmax(x, y))?,
            Operator::F32Copysign | Operator::F64Copysign => {
                self.binary(|b, x, y| b.fcopysign(x, y))?;
            }

            // Integer width changes and sign extension.
            Operator::I32WrapI64 => self.convert(I32, |b, t, x| b.ireduce(t, x))?,
            Operator::I64ExtendI32S => self.convert(I64, |b, t, x| b.sextend(t, x))?,
            Operator::I64ExtendI32U => self.convert(I64, |b, t, x| b.uextend(t, x))?,
            Operator::I32Extend8S => self.sign_extend(I8, I32)?,
            Operator::I32Extend16S => self.sign_extend(I16, I32)?,
            Operator::I64Extend8S => self.sign_extend(I8, I64)?,
            Operator::I64Extend16S => self.sign_extend(I16, I64)?,
            Operator::I64Extend32S => self.sign_extend(I32, I64)?,

            // Float to integer, trapping.
            Operator::I32TruncF32S | Operator::I32TruncF64S => {
                self.convert(I32, |b, t, x| b.fcvt_to_sint(t, x))?;
            }
            Operator::I32TruncF32U | Operator::I32TruncF64U => {
                self.convert(I32, |b, t, x| b.fcvt_to_uint(t, x))?;
            }
            Operator::I64TruncF32S | Operator::I64TruncF64S => {
                self.convert(I64, |b, t, x| b.fcvt_to_sint(t, x))?;
            }
            Operator::I64TruncF32U | Operator::I64TruncF64U => {
                self.convert(I64, |b, t, x| b.fcvt_to_uint(t, x))?;
            }

            // Float to integer, saturating.
            Operator::I32TruncSatF32S | Operator::I32TruncSatF64S => {
                self.convert(I32, |b, t, x| b.fcvt_to_sint_sat(t, x))?;
            }
            Operator::I32TruncSatF32U | Operator::I32TruncSatF64U => {
                self.convert(I32, |b, t, x| b.fcvt_to_uint_sat(t, x))?;
            }
            Operator::I64TruncSatF32S | Operator::I64TruncSatF64S => {
                self.convert(I64, |b, t, x| b.fcvt_to_sint_sat(t, x))?;
            }
            Operator::I64TruncSatF32U | Operator::I64TruncSatF64U => {
                self.convert(I64, |b, t, x| b.fcvt_to_uint_sat(t, x))?;
            }

            // Integer to float, float to float.
            Operator::F32ConvertI32S | Operator::F32ConvertI64S => {
                self.convert(F32, |b, t, x| b.fcvt_from_sint(t, x))?;
            }
            Operator::F32ConvertI32U | Operator::F32ConvertI64U => {
                self.convert(F32, |b, t, x| b.fcvt_from_uint(t, x))?;
            }
            Operator::F64ConvertI32S | Operator::F64ConvertI64S => {
                self.convert(F64, |b, t, x| b.fcvt_from_sint(t, x))?;
            }
            Operator::F64ConvertI32U | Operator::F64ConvertI64U => {
                self.convert(F64, |b, t, x| b.fcvt_from_uint(t, x))?;
            }
            Operator::F32DemoteF64 => self.convert(F32, |b, t, x| b.fdemote(t, x))?,
            Operator::F64PromoteF32 => self.convert(F64, |b, t, x| b.fpromote(t, x))?,

            // Same bits, other type.
            Operator::I32ReinterpretF32 => self.reinterpret(I32)?,
            Operator::I64ReinterpretF64 => self.reinterpret(I64)?,
            Operator::F32ReinterpretI32 => self.reinterpret(F32)?,
            Operator::F64ReinterpretI64 => self.reinterpret(F64)?,

            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Pushes an `i8` condition as the `i32` 0 or 1 WebAssembly uses.
    fn push_bool(&mut self, condition: Value) {
        let value = self.builder.ins().uextend(types::I32, condition);
        self.push(value);
    }

    fn icmp(&mut self, cc: IntCC) -> Result<(), CompileError> {
        let (x, y) = self.pop2()?;
        let condition = self.builder.ins().icmp(cc, x, y);
        self.push_bool(condition);
        Ok(())
    }

    fn fcmp(&mut self, cc: FloatCC) -> Result<(), CompileError> {
        let (x, y) = self.pop2()?;
        let condition = self.builder.ins().fcmp(cc, x, y);
        self.push_bool(condition);
        Ok(())
    }

    fn unary(&mut self, instruction: Unary) -> Result<(), CompileError> {
        let x = self.pop()?;
        let value = instruction(self.builder.ins(), x);
        self.push(value);
        Ok(())
    }

    fn binary(&mut self, instruction: Binary) -> Result<(), CompileError> {
        let (x, y) = self.pop2()?;
        let value = instruction(self.builder.ins(), x, y);
        self.push(value);
        Ok(())
    }

    fn convert(&mut self, to: Type, instruction: Convert) -> Result<(), CompileError> {
        let x = self.pop()?;
        let value = instruction(self.builder.ins(), to, x);
        self.push(value);
        Ok(())
    }

    /// Sign-extends the low `narrow` bits of the top value to `wide`.
    fn sign_extend(&mut self, narrow: Type, wide: Type) -> Result<(), CompileError> {
        let x = self.pop()?;
        let low = self.builder.ins().ireduce(narrow, x);
        let value = self.builder.ins().sextend(wide, low);
        self.push(value);
        Ok(())
    }

    fn reinterpret(&mut self, to: Type) -> Result<(), CompileError> {
        let x = self.pop()?;
        let value = self.builder.ins().bitcast(to, MemFlagsData::new(), x);
        self.push(value);
        Ok(())
    }
}
