//! The fixed-width SIMD operators: every `v128` instruction of WebAssembly 2.0.
//!
//! # Representation
//!
//! A `v128` is an [`I8X16`] wherever it crosses an operator boundary (the value stack,
//! locals, globals, block parameters, signatures, value slots; see
//! [`super::environ::V128`]). Each operator reinterprets its operands as the lane shape it
//! works on (`i16x8.add` as `I16X8`, `f32x4.add` as `F32X4`) with a `bitcast`, which
//! costs no code, and its result back to `I8X16`. Integer and float comparisons give lanes
//! of all ones or all zeros, as WebAssembly wants.
//!
//! # Semantics
//!
//! Most operators are one Cranelift instruction whose definition is WebAssembly's:
//! `swizzle` gives 0 for indices past 15, `shuffle` takes indices 0..32 over both
//! operands, shifts take their count modulo the lane width, `fmin`/`fmax` propagate NaN
//! and order -0 below +0, `fcvt_to_sint_sat`/`fcvt_to_uint_sat` saturate and give 0 for
//! NaN, `unarrow` reads signed lanes and saturates to unsigned ones (`narrow_u`),
//! `sqmul_round_sat` is `q15mulr_sat_s` (`0x8000 * 0x8000` saturates to `0x7fff`),
//! `avg_round` rounds up, `iabs` of the minimum is the minimum. The rest are short
//! compositions:
//!
//! * `pmin`/`pmax` are the proposal's definitions, `y < x ? y : x` and `x < y ? y : x`,
//!   as an `fcmp` mask and a `bitselect` (so NaNs and signed zeros choose `x`);
//! * `extadd_pairwise` widens both halves and adds adjacent lanes with `iadd_pairwise`;
//!   `extmul` widens one half of each operand and multiplies; `dot_i16x8_s` adds the
//!   pairs of the widened products (wrapping, as the spec does, for
//!   `-32768 * -32768 * 2`);
//! * `trunc_sat_f64x2_{s,u}_zero` convert to `I64X2` with saturation, then narrow against
//!   a zero vector (the saturated values fit, and the upper lanes become 0);
//!   `convert_low_i32x4_{s,u}` widen the low lanes to `I64X2` and convert;
//! * `load*_splat` and `load*_zero` load a scalar and `splat` it or put it in lane 0
//!   (`scalar_to_vector` zeroes the rest); `load*_lane`/`store*_lane` are a scalar access
//!   and `insertlane`/`extractlane`;
//! * `any_true` is `vany_true`, `all_true` `vall_true`, `bitmask` `vhigh_bits`.
//!
//! Linear-memory accesses use the addressing of the scalar ones (`heap_address` in
//! `memory`): no bounds checks, the guard pages fault, every access is in the trap table.
//!
//! # Targets
//!
//! On x86-64 everything is lowered with the SSE4.2 baseline of `isa` and no AVX: the
//! operators SSE has no single instruction for (such as `i64x2.abs`, `i64x2.mul`, the
//! `i8x16` shifts, the unsigned conversions, `fmin`/`fmax`) become short sequences, none a
//! libcall.
//!
//! On riscv64 with V and a VLEN of at least 128 bits (`has_v`, `zvl128b`), Cranelift
//! 0.135 lowers every one of the 236 operators; no operator needed another IR sequence or
//! scalar lanes to compile (`tests` compiles each one for both ISAs and checks it). What
//! the riscv64 port found instead:
//!
//! * **Misaligned vector elements.** Cranelift lowers the 8-byte extending loads
//!   (`v128.load8x8_s` ... `v128.load32x2_u`) as one 64-bit vector element (`vle64.v`).
//!   RVV lets an implementation fault on a vector element that is not naturally aligned
//!   (some do, and a trap handler need not emulate it), while a WebAssembly address may
//!   be anything. On riscv64 these loads are therefore a scalar 64-bit load
//!   (misaligned scalar accesses are handled like those of `i64.load`), `scalar_to_vector`
//!   and a widening of the low half. Every other access to linear memory is already safe:
//!   `v128.load`/`v128.store` move an `I8X16` (`vle8.v`/`vse8.v`), and splats, zeroing
//!   loads and lane accesses are scalar. A test checks that no 16-, 32- or 64-bit vector
//!   element access to linear memory is left.
//! * **Rounding modes are the platform's to keep.** RVV arithmetic has no static rounding
//!   mode: vector `fadd`/`fsub`/`fmul`/`fdiv`/`sqrt`, int-to-float conversions and
//!   `demote` round with `fcsr.frm`, and `avgr_u` (`vssrl`) and `q15mulr_sat_s` (`vsmul`)
//!   with `vxrm`. Cranelift sets and restores `frm` itself only around `ceil`, `floor`,
//!   `trunc` and `nearest`. WebAssembly code must therefore run with `frm` = RNE (0) and
//!   `vxrm` = RNU (0) and with `sstatus.VS` on: the HAL sets them when it turns the vector
//!   unit on (QEMU resets both to 0, and nothing in the kernel changes them), and a
//!   context switch must keep the vector state (`v0`-`v31`, `vl`, `vtype`, `vcsr`) per
//!   context like the float registers. The narrowing clips (`vnclip`) shift by 0 and do
//!   not depend on `vxrm`.
//! * **Vector arguments go through memory.** Cranelift's riscv64 calling conventions
//!   have no vector argument registers: `v128` parameters are passed on the stack and
//!   `v128` results through the return area. Correct, but a call with `v128` operands
//!   costs stores and loads.

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{self, Endianness, InstBuilder, MemFlagsData, Type, Value, types};
use wasmparser::{MemArg, Operator};

use super::CompileError;
use super::environ::{V128, heap_flags};
use super::func_translator::FuncTranslator;

#[cfg(test)]
mod tests;

use types::{F32, F32X4, F64, F64X2, I8, I8X16, I16, I16X8, I32, I32X4, I64, I64X2};

/// A two-operand instruction of the builder.
type Binary = fn(cranelift_frontend::FuncInstBuilder<'_, '_>, Value, Value) -> Value;
/// A one-operand instruction of the builder.
type Unary = fn(cranelift_frontend::FuncInstBuilder<'_, '_>, Value) -> Value;

/// How a vector load fills the vector from what it reads.
#[derive(Clone, Copy)]
enum VectorLoad {
    /// 16 bytes.
    Full,
    /// 8 bytes as lanes of type `lane`, each extended to twice its width.
    Extend { lane: Type, signed: bool },
    /// One scalar of this type copied to every lane.
    Splat(Type),
    /// One scalar of this type in lane 0, the other lanes zero.
    Zero(Type),
}

impl FuncTranslator<'_, '_> {
    /// Translates a SIMD operator; `Ok(false)` when `op` is not one.
    #[expect(
        clippy::too_many_lines,
        reason = "one flat table of operators reads better than several"
    )]
    pub(super) fn translate_simd(&mut self, op: &Operator<'_>) -> Result<bool, CompileError> {
        match op {
            // Constants and memory.
            Operator::V128Const { value } => {
                let value = self.vector_constant(I8X16, value.bytes());
                self.push(value);
            }
            Operator::V128Load { memarg } => self.vector_load(memarg, VectorLoad::Full)?,
            Operator::V128Load8x8S { memarg } => self.extending_load(memarg, I8, true)?,
            Operator::V128Load8x8U { memarg } => self.extending_load(memarg, I8, false)?,
            Operator::V128Load16x4S { memarg } => self.extending_load(memarg, I16, true)?,
            Operator::V128Load16x4U { memarg } => self.extending_load(memarg, I16, false)?,
            Operator::V128Load32x2S { memarg } => self.extending_load(memarg, I32, true)?,
            Operator::V128Load32x2U { memarg } => self.extending_load(memarg, I32, false)?,
            Operator::V128Load8Splat { memarg } => {
                self.vector_load(memarg, VectorLoad::Splat(I8))?;
            }
            Operator::V128Load16Splat { memarg } => {
                self.vector_load(memarg, VectorLoad::Splat(I16))?;
            }
            Operator::V128Load32Splat { memarg } => {
                self.vector_load(memarg, VectorLoad::Splat(I32))?;
            }
            Operator::V128Load64Splat { memarg } => {
                self.vector_load(memarg, VectorLoad::Splat(I64))?;
            }
            Operator::V128Load32Zero { memarg } => {
                self.vector_load(memarg, VectorLoad::Zero(I32))?;
            }
            Operator::V128Load64Zero { memarg } => {
                self.vector_load(memarg, VectorLoad::Zero(I64))?;
            }
            Operator::V128Store { memarg } => {
                let value = self.pop()?;
                let address = self.pop()?;
                let (address, offset) = self.heap_address(memarg, address)?;
                self.builder
                    .ins()
                    .store(heap_flags(), value, address, offset);
            }
            Operator::V128Load8Lane { memarg, lane } => self.load_lane(memarg, I8X16, *lane)?,
            Operator::V128Load16Lane { memarg, lane } => self.load_lane(memarg, I16X8, *lane)?,
            Operator::V128Load32Lane { memarg, lane } => self.load_lane(memarg, I32X4, *lane)?,
            Operator::V128Load64Lane { memarg, lane } => self.load_lane(memarg, I64X2, *lane)?,
            Operator::V128Store8Lane { memarg, lane } => self.store_lane(memarg, I8X16, *lane)?,
            Operator::V128Store16Lane { memarg, lane } => self.store_lane(memarg, I16X8, *lane)?,
            Operator::V128Store32Lane { memarg, lane } => self.store_lane(memarg, I32X4, *lane)?,
            Operator::V128Store64Lane { memarg, lane } => self.store_lane(memarg, I64X2, *lane)?,

            // Lanes.
            Operator::I8x16ExtractLaneS { lane } => self.extract_lane(I8X16, *lane, Some(true))?,
            Operator::I8x16ExtractLaneU { lane } => self.extract_lane(I8X16, *lane, Some(false))?,
            Operator::I16x8ExtractLaneS { lane } => self.extract_lane(I16X8, *lane, Some(true))?,
            Operator::I16x8ExtractLaneU { lane } => self.extract_lane(I16X8, *lane, Some(false))?,
            Operator::I32x4ExtractLane { lane } => self.extract_lane(I32X4, *lane, None)?,
            Operator::I64x2ExtractLane { lane } => self.extract_lane(I64X2, *lane, None)?,
            Operator::F32x4ExtractLane { lane } => self.extract_lane(F32X4, *lane, None)?,
            Operator::F64x2ExtractLane { lane } => self.extract_lane(F64X2, *lane, None)?,
            Operator::I8x16ReplaceLane { lane } => self.replace_lane(I8X16, *lane)?,
            Operator::I16x8ReplaceLane { lane } => self.replace_lane(I16X8, *lane)?,
            Operator::I32x4ReplaceLane { lane } => self.replace_lane(I32X4, *lane)?,
            Operator::I64x2ReplaceLane { lane } => self.replace_lane(I64X2, *lane)?,
            Operator::F32x4ReplaceLane { lane } => self.replace_lane(F32X4, *lane)?,
            Operator::F64x2ReplaceLane { lane } => self.replace_lane(F64X2, *lane)?,
            Operator::I8x16Splat => self.splat(I8X16)?,
            Operator::I16x8Splat => self.splat(I16X8)?,
            Operator::I32x4Splat => self.splat(I32X4)?,
            Operator::I64x2Splat => self.splat(I64X2)?,
            Operator::F32x4Splat => self.splat(F32X4)?,
            Operator::F64x2Splat => self.splat(F64X2)?,
            Operator::I8x16Shuffle { lanes } => {
                let (a, b) = self.pop2()?;
                let mask = self
                    .builder
                    .func
                    .dfg
                    .immediates
                    .push(ir::ConstantData::from(&lanes[..]));
                let value = self.builder.ins().shuffle(a, b, mask);
                self.push(value);
            }
            Operator::I8x16Swizzle => self.vector_binary(I8X16, |b, x, y| b.swizzle(x, y))?,

            // Integer comparisons.
            Operator::I8x16Eq => self.vector_icmp(I8X16, IntCC::Equal)?,
            Operator::I8x16Ne => self.vector_icmp(I8X16, IntCC::NotEqual)?,
            Operator::I8x16LtS => self.vector_icmp(I8X16, IntCC::SignedLessThan)?,
            Operator::I8x16LtU => self.vector_icmp(I8X16, IntCC::UnsignedLessThan)?,
            Operator::I8x16GtS => self.vector_icmp(I8X16, IntCC::SignedGreaterThan)?,
            Operator::I8x16GtU => self.vector_icmp(I8X16, IntCC::UnsignedGreaterThan)?,
            Operator::I8x16LeS => self.vector_icmp(I8X16, IntCC::SignedLessThanOrEqual)?,
            Operator::I8x16LeU => self.vector_icmp(I8X16, IntCC::UnsignedLessThanOrEqual)?,
            Operator::I8x16GeS => self.vector_icmp(I8X16, IntCC::SignedGreaterThanOrEqual)?,
            Operator::I8x16GeU => self.vector_icmp(I8X16, IntCC::UnsignedGreaterThanOrEqual)?,
            Operator::I16x8Eq => self.vector_icmp(I16X8, IntCC::Equal)?,
            Operator::I16x8Ne => self.vector_icmp(I16X8, IntCC::NotEqual)?,
            Operator::I16x8LtS => self.vector_icmp(I16X8, IntCC::SignedLessThan)?,
            Operator::I16x8LtU => self.vector_icmp(I16X8, IntCC::UnsignedLessThan)?,
            Operator::I16x8GtS => self.vector_icmp(I16X8, IntCC::SignedGreaterThan)?,
            Operator::I16x8GtU => self.vector_icmp(I16X8, IntCC::UnsignedGreaterThan)?,
            Operator::I16x8LeS => self.vector_icmp(I16X8, IntCC::SignedLessThanOrEqual)?,
            Operator::I16x8LeU => self.vector_icmp(I16X8, IntCC::UnsignedLessThanOrEqual)?,
            Operator::I16x8GeS => self.vector_icmp(I16X8, IntCC::SignedGreaterThanOrEqual)?,
            Operator::I16x8GeU => self.vector_icmp(I16X8, IntCC::UnsignedGreaterThanOrEqual)?,
            Operator::I32x4Eq => self.vector_icmp(I32X4, IntCC::Equal)?,
            Operator::I32x4Ne => self.vector_icmp(I32X4, IntCC::NotEqual)?,
            Operator::I32x4LtS => self.vector_icmp(I32X4, IntCC::SignedLessThan)?,
            Operator::I32x4LtU => self.vector_icmp(I32X4, IntCC::UnsignedLessThan)?,
            Operator::I32x4GtS => self.vector_icmp(I32X4, IntCC::SignedGreaterThan)?,
            Operator::I32x4GtU => self.vector_icmp(I32X4, IntCC::UnsignedGreaterThan)?,
            Operator::I32x4LeS => self.vector_icmp(I32X4, IntCC::SignedLessThanOrEqual)?,
            Operator::I32x4LeU => self.vector_icmp(I32X4, IntCC::UnsignedLessThanOrEqual)?,
            Operator::I32x4GeS => self.vector_icmp(I32X4, IntCC::SignedGreaterThanOrEqual)?,
            Operator::I32x4GeU => self.vector_icmp(I32X4, IntCC::UnsignedGreaterThanOrEqual)?,
            Operator::I64x2Eq => self.vector_icmp(I64X2, IntCC::Equal)?,
            Operator::I64x2Ne => self.vector_icmp(I64X2, IntCC::NotEqual)?,
            Operator::I64x2LtS => self.vector_icmp(I64X2, IntCC::SignedLessThan)?,
            Operator::I64x2GtS => self.vector_icmp(I64X2, IntCC::SignedGreaterThan)?,
            Operator::I64x2LeS => self.vector_icmp(I64X2, IntCC::SignedLessThanOrEqual)?,
            Operator::I64x2GeS => self.vector_icmp(I64X2, IntCC::SignedGreaterThanOrEqual)?,

            // Float comparisons: all-ones lanes where true, `ne` true for NaN operands.
            Operator::F32x4Eq => self.vector_fcmp(F32X4, FloatCC::Equal)?,
            Operator::F32x4Ne => self.vector_fcmp(F32X4, FloatCC::NotEqual)?,
            Operator::F32x4Lt => self.vector_fcmp(F32X4, FloatCC::LessThan)?,
            Operator::F32x4Gt => self.vector_fcmp(F32X4, FloatCC::GreaterThan)?,
            Operator::F32x4Le => self.vector_fcmp(F32X4, FloatCC::LessThanOrEqual)?,
            Operator::F32x4Ge => self.vector_fcmp(F32X4, FloatCC::GreaterThanOrEqual)?,
            Operator::F64x2Eq => self.vector_fcmp(F64X2, FloatCC::Equal)?,
            Operator::F64x2Ne => self.vector_fcmp(F64X2, FloatCC::NotEqual)?,
            Operator::F64x2Lt => self.vector_fcmp(F64X2, FloatCC::LessThan)?,
            Operator::F64x2Gt => self.vector_fcmp(F64X2, FloatCC::GreaterThan)?,
            Operator::F64x2Le => self.vector_fcmp(F64X2, FloatCC::LessThanOrEqual)?,
            Operator::F64x2Ge => self.vector_fcmp(F64X2, FloatCC::GreaterThanOrEqual)?,

            // Bitwise operators and reductions.
            Operator::V128Not => self.vector_unary(I8X16, |b, x| b.bnot(x))?,
            Operator::V128And => self.vector_binary(I8X16, |b, x, y| b.band(x, y))?,
            Operator::V128AndNot => self.vector_binary(I8X16, |b, x, y| b.band_not(x, y))?,
            Operator::V128Or => self.vector_binary(I8X16, |b, x, y| b.bor(x, y))?,
            Operator::V128Xor => self.vector_binary(I8X16, |b, x, y| b.bxor(x, y))?,
            Operator::V128Bitselect => {
                let mask = self.pop()?;
                let (if_set, if_clear) = self.pop2()?;
                let value = self.builder.ins().bitselect(mask, if_set, if_clear);
                self.push(value);
            }
            Operator::V128AnyTrue => {
                let x = self.pop()?;
                let any = self.builder.ins().vany_true(x);
                let any = self.builder.ins().uextend(I32, any);
                self.push(any);
            }
            Operator::I8x16AllTrue => self.all_true(I8X16)?,
            Operator::I16x8AllTrue => self.all_true(I16X8)?,
            Operator::I32x4AllTrue => self.all_true(I32X4)?,
            Operator::I64x2AllTrue => self.all_true(I64X2)?,
            Operator::I8x16Bitmask => self.bitmask(I8X16)?,
            Operator::I16x8Bitmask => self.bitmask(I16X8)?,
            Operator::I32x4Bitmask => self.bitmask(I32X4)?,
            Operator::I64x2Bitmask => self.bitmask(I64X2)?,

            // Shifts: the count is taken modulo the lane width, by both languages.
            Operator::I8x16Shl => self.vector_shift(I8X16, |b, x, y| b.ishl(x, y))?,
            Operator::I8x16ShrS => self.vector_shift(I8X16, |b, x, y| b.sshr(x, y))?,
            Operator::I8x16ShrU => self.vector_shift(I8X16, |b, x, y| b.ushr(x, y))?,
            Operator::I16x8Shl => self.vector_shift(I16X8, |b, x, y| b.ishl(x, y))?,
            Operator::I16x8ShrS => self.vector_shift(I16X8, |b, x, y| b.sshr(x, y))?,
            Operator::I16x8ShrU => self.vector_shift(I16X8, |b, x, y| b.ushr(x, y))?,
            Operator::I32x4Shl => self.vector_shift(I32X4, |b, x, y| b.ishl(x, y))?,
            Operator::I32x4ShrS => self.vector_shift(I32X4, |b, x, y| b.sshr(x, y))?,
            Operator::I32x4ShrU => self.vector_shift(I32X4, |b, x, y| b.ushr(x, y))?,
            Operator::I64x2Shl => self.vector_shift(I64X2, |b, x, y| b.ishl(x, y))?,
            Operator::I64x2ShrS => self.vector_shift(I64X2, |b, x, y| b.sshr(x, y))?,
            Operator::I64x2ShrU => self.vector_shift(I64X2, |b, x, y| b.ushr(x, y))?,

            // Integer arithmetic, lane by lane.
            Operator::I8x16Abs => self.vector_unary(I8X16, |b, x| b.iabs(x))?,
            Operator::I16x8Abs => self.vector_unary(I16X8, |b, x| b.iabs(x))?,
            Operator::I32x4Abs => self.vector_unary(I32X4, |b, x| b.iabs(x))?,
            Operator::I64x2Abs => self.vector_unary(I64X2, |b, x| b.iabs(x))?,
            Operator::I8x16Neg => self.vector_unary(I8X16, |b, x| b.ineg(x))?,
            Operator::I16x8Neg => self.vector_unary(I16X8, |b, x| b.ineg(x))?,
            Operator::I32x4Neg => self.vector_unary(I32X4, |b, x| b.ineg(x))?,
            Operator::I64x2Neg => self.vector_unary(I64X2, |b, x| b.ineg(x))?,
            Operator::I8x16Popcnt => self.vector_unary(I8X16, |b, x| b.popcnt(x))?,
            Operator::I8x16Add => self.vector_binary(I8X16, |b, x, y| b.iadd(x, y))?,
            Operator::I16x8Add => self.vector_binary(I16X8, |b, x, y| b.iadd(x, y))?,
            Operator::I32x4Add => self.vector_binary(I32X4, |b, x, y| b.iadd(x, y))?,
            Operator::I64x2Add => self.vector_binary(I64X2, |b, x, y| b.iadd(x, y))?,
            Operator::I8x16Sub => self.vector_binary(I8X16, |b, x, y| b.isub(x, y))?,
            Operator::I16x8Sub => self.vector_binary(I16X8, |b, x, y| b.isub(x, y))?,
            Operator::I32x4Sub => self.vector_binary(I32X4, |b, x, y| b.isub(x, y))?,
            Operator::I64x2Sub => self.vector_binary(I64X2, |b, x, y| b.isub(x, y))?,
            Operator::I16x8Mul => self.vector_binary(I16X8, |b, x, y| b.imul(x, y))?,
            Operator::I32x4Mul => self.vector_binary(I32X4, |b, x, y| b.imul(x, y))?,
            Operator::I64x2Mul => self.vector_binary(I64X2, |b, x, y| b.imul(x, y))?,
            Operator::I8x16AddSatS => self.vector_binary(I8X16, |b, x, y| b.sadd_sat(x, y))?,
            Operator::I8x16AddSatU => self.vector_binary(I8X16, |b, x, y| b.uadd_sat(x, y))?,
            Operator::I8x16SubSatS => self.vector_binary(I8X16, |b, x, y| b.ssub_sat(x, y))?,
            Operator::I8x16SubSatU => self.vector_binary(I8X16, |b, x, y| b.usub_sat(x, y))?,
            Operator::I16x8AddSatS => self.vector_binary(I16X8, |b, x, y| b.sadd_sat(x, y))?,
            Operator::I16x8AddSatU => self.vector_binary(I16X8, |b, x, y| b.uadd_sat(x, y))?,
            Operator::I16x8SubSatS => self.vector_binary(I16X8, |b, x, y| b.ssub_sat(x, y))?,
            Operator::I16x8SubSatU => self.vector_binary(I16X8, |b, x, y| b.usub_sat(x, y))?,
            Operator::I8x16MinS => self.vector_binary(I8X16, |b, x, y| b.smin(x, y))?,
            Operator::I8x16MinU => self.vector_binary(I8X16, |b, x, y| b.umin(x, y))?,
            Operator::I8x16MaxS => self.vector_binary(I8X16, |b, x, y| b.smax(x, y))?,
            Operator::I8x16MaxU => self.vector_binary(I8X16, |b, x, y| b.umax(x, y))?,
            Operator::I16x8MinS => self.vector_binary(I16X8, |b, x, y| b.smin(x, y))?,
            Operator::I16x8MinU => self.vector_binary(I16X8, |b, x, y| b.umin(x, y))?,
            Operator::I16x8MaxS => self.vector_binary(I16X8, |b, x, y| b.smax(x, y))?,
            Operator::I16x8MaxU => self.vector_binary(I16X8, |b, x, y| b.umax(x, y))?,
            Operator::I32x4MinS => self.vector_binary(I32X4, |b, x, y| b.smin(x, y))?,
            Operator::I32x4MinU => self.vector_binary(I32X4, |b, x, y| b.umin(x, y))?,
            Operator::I32x4MaxS => self.vector_binary(I32X4, |b, x, y| b.smax(x, y))?,
            Operator::I32x4MaxU => self.vector_binary(I32X4, |b, x, y| b.umax(x, y))?,
            Operator::I8x16AvgrU => self.vector_binary(I8X16, |b, x, y| b.avg_round(x, y))?,
            Operator::I16x8AvgrU => self.vector_binary(I16X8, |b, x, y| b.avg_round(x, y))?,
            Operator::I16x8Q15MulrSatS => {
                self.vector_binary(I16X8, |b, x, y| b.sqmul_round_sat(x, y))?;
            }

            // Narrowing, widening, pairwise and widening products.
            Operator::I8x16NarrowI16x8S => self.vector_binary(I16X8, |b, x, y| b.snarrow(x, y))?,
            Operator::I8x16NarrowI16x8U => self.vector_binary(I16X8, |b, x, y| b.unarrow(x, y))?,
            Operator::I16x8NarrowI32x4S => self.vector_binary(I32X4, |b, x, y| b.snarrow(x, y))?,
            Operator::I16x8NarrowI32x4U => self.vector_binary(I32X4, |b, x, y| b.unarrow(x, y))?,
            Operator::I16x8ExtendLowI8x16S => self.vector_unary(I8X16, |b, x| b.swiden_low(x))?,
            Operator::I16x8ExtendHighI8x16S => self.vector_unary(I8X16, |b, x| b.swiden_high(x))?,
            Operator::I16x8ExtendLowI8x16U => self.vector_unary(I8X16, |b, x| b.uwiden_low(x))?,
            Operator::I16x8ExtendHighI8x16U => self.vector_unary(I8X16, |b, x| b.uwiden_high(x))?,
            Operator::I32x4ExtendLowI16x8S => self.vector_unary(I16X8, |b, x| b.swiden_low(x))?,
            Operator::I32x4ExtendHighI16x8S => self.vector_unary(I16X8, |b, x| b.swiden_high(x))?,
            Operator::I32x4ExtendLowI16x8U => self.vector_unary(I16X8, |b, x| b.uwiden_low(x))?,
            Operator::I32x4ExtendHighI16x8U => self.vector_unary(I16X8, |b, x| b.uwiden_high(x))?,
            Operator::I64x2ExtendLowI32x4S => self.vector_unary(I32X4, |b, x| b.swiden_low(x))?,
            Operator::I64x2ExtendHighI32x4S => self.vector_unary(I32X4, |b, x| b.swiden_high(x))?,
            Operator::I64x2ExtendLowI32x4U => self.vector_unary(I32X4, |b, x| b.uwiden_low(x))?,
            Operator::I64x2ExtendHighI32x4U => self.vector_unary(I32X4, |b, x| b.uwiden_high(x))?,
            Operator::I16x8ExtAddPairwiseI8x16S => self.extadd_pairwise(I8X16, true)?,
            Operator::I16x8ExtAddPairwiseI8x16U => self.extadd_pairwise(I8X16, false)?,
            Operator::I32x4ExtAddPairwiseI16x8S => self.extadd_pairwise(I16X8, true)?,
            Operator::I32x4ExtAddPairwiseI16x8U => self.extadd_pairwise(I16X8, false)?,
            Operator::I16x8ExtMulLowI8x16S => self.extmul(I8X16, Half::Low, true)?,
            Operator::I16x8ExtMulHighI8x16S => self.extmul(I8X16, Half::High, true)?,
            Operator::I16x8ExtMulLowI8x16U => self.extmul(I8X16, Half::Low, false)?,
            Operator::I16x8ExtMulHighI8x16U => self.extmul(I8X16, Half::High, false)?,
            Operator::I32x4ExtMulLowI16x8S => self.extmul(I16X8, Half::Low, true)?,
            Operator::I32x4ExtMulHighI16x8S => self.extmul(I16X8, Half::High, true)?,
            Operator::I32x4ExtMulLowI16x8U => self.extmul(I16X8, Half::Low, false)?,
            Operator::I32x4ExtMulHighI16x8U => self.extmul(I16X8, Half::High, false)?,
            Operator::I64x2ExtMulLowI32x4S => self.extmul(I32X4, Half::Low, true)?,
            Operator::I64x2ExtMulHighI32x4S => self.extmul(I32X4, Half::High, true)?,
            Operator::I64x2ExtMulLowI32x4U => self.extmul(I32X4, Half::Low, false)?,
            Operator::I64x2ExtMulHighI32x4U => self.extmul(I32X4, Half::High, false)?,
            Operator::I32x4DotI16x8S => {
                let (x, y) = self.pop2_vectors(I16X8)?;
                let x_low = self.builder.ins().swiden_low(x);
                let y_low = self.builder.ins().swiden_low(y);
                let low = self.builder.ins().imul(x_low, y_low);
                let x_high = self.builder.ins().swiden_high(x);
                let y_high = self.builder.ins().swiden_high(y);
                let high = self.builder.ins().imul(x_high, y_high);
                let value = self.builder.ins().iadd_pairwise(low, high);
                self.push_vector(value);
            }

            // Float arithmetic.
            Operator::F32x4Ceil => self.vector_unary(F32X4, |b, x| b.ceil(x))?,
            Operator::F32x4Floor => self.vector_unary(F32X4, |b, x| b.floor(x))?,
            Operator::F32x4Trunc => self.vector_unary(F32X4, |b, x| b.trunc(x))?,
            Operator::F32x4Nearest => self.vector_unary(F32X4, |b, x| b.nearest(x))?,
            Operator::F32x4Abs => self.vector_unary(F32X4, |b, x| b.fabs(x))?,
            Operator::F32x4Neg => self.vector_unary(F32X4, |b, x| b.fneg(x))?,
            Operator::F32x4Sqrt => self.vector_unary(F32X4, |b, x| b.sqrt(x))?,
            Operator::F32x4Add => self.vector_binary(F32X4, |b, x, y| b.fadd(x, y))?,
            Operator::F32x4Sub => self.vector_binary(F32X4, |b, x, y| b.fsub(x, y))?,
            Operator::F32x4Mul => self.vector_binary(F32X4, |b, x, y| b.fmul(x, y))?,
            Operator::F32x4Div => self.vector_binary(F32X4, |b, x, y| b.fdiv(x, y))?,
            Operator::F32x4Min => self.vector_binary(F32X4, |b, x, y| b.fmin(x, y))?,
            Operator::F32x4Max => self.vector_binary(F32X4, |b, x, y| b.fmax(x, y))?,
            Operator::F32x4PMin => self.pseudo_min_max(F32X4, false)?,
            Operator::F32x4PMax => self.pseudo_min_max(F32X4, true)?,
            Operator::F64x2Ceil => self.vector_unary(F64X2, |b, x| b.ceil(x))?,
            Operator::F64x2Floor => self.vector_unary(F64X2, |b, x| b.floor(x))?,
            Operator::F64x2Trunc => self.vector_unary(F64X2, |b, x| b.trunc(x))?,
            Operator::F64x2Nearest => self.vector_unary(F64X2, |b, x| b.nearest(x))?,
            Operator::F64x2Abs => self.vector_unary(F64X2, |b, x| b.fabs(x))?,
            Operator::F64x2Neg => self.vector_unary(F64X2, |b, x| b.fneg(x))?,
            Operator::F64x2Sqrt => self.vector_unary(F64X2, |b, x| b.sqrt(x))?,
            Operator::F64x2Add => self.vector_binary(F64X2, |b, x, y| b.fadd(x, y))?,
            Operator::F64x2Sub => self.vector_binary(F64X2, |b, x, y| b.fsub(x, y))?,
            Operator::F64x2Mul => self.vector_binary(F64X2, |b, x, y| b.fmul(x, y))?,
            Operator::F64x2Div => self.vector_binary(F64X2, |b, x, y| b.fdiv(x, y))?,
            Operator::F64x2Min => self.vector_binary(F64X2, |b, x, y| b.fmin(x, y))?,
            Operator::F64x2Max => self.vector_binary(F64X2, |b, x, y| b.fmax(x, y))?,
            Operator::F64x2PMin => self.pseudo_min_max(F64X2, false)?,
            Operator::F64x2PMax => self.pseudo_min_max(F64X2, true)?,

            // Conversions.
            Operator::I32x4TruncSatF32x4S => {
                self.vector_unary(F32X4, |b, x| b.fcvt_to_sint_sat(I32X4, x))?;
            }
            Operator::I32x4TruncSatF32x4U => {
                self.vector_unary(F32X4, |b, x| b.fcvt_to_uint_sat(I32X4, x))?;
            }
            Operator::F32x4ConvertI32x4S => {
                self.vector_unary(I32X4, |b, x| b.fcvt_from_sint(F32X4, x))?;
            }
            Operator::F32x4ConvertI32x4U => {
                self.vector_unary(I32X4, |b, x| b.fcvt_from_uint(F32X4, x))?;
            }
            Operator::I32x4TruncSatF64x2SZero => {
                let x = self.pop_vector(F64X2)?;
                let wide = self.builder.ins().fcvt_to_sint_sat(I64X2, x);
                let zero = self.vector_constant(I64X2, &[0; 16]);
                let value = self.builder.ins().snarrow(wide, zero);
                self.push_vector(value);
            }
            Operator::I32x4TruncSatF64x2UZero => {
                let x = self.pop_vector(F64X2)?;
                let wide = self.builder.ins().fcvt_to_uint_sat(I64X2, x);
                let zero = self.vector_constant(I64X2, &[0; 16]);
                let value = self.builder.ins().uunarrow(wide, zero);
                self.push_vector(value);
            }
            Operator::F64x2ConvertLowI32x4S => {
                let x = self.pop_vector(I32X4)?;
                let wide = self.builder.ins().swiden_low(x);
                let value = self.builder.ins().fcvt_from_sint(F64X2, wide);
                self.push_vector(value);
            }
            Operator::F64x2ConvertLowI32x4U => {
                let x = self.pop_vector(I32X4)?;
                let wide = self.builder.ins().uwiden_low(x);
                let value = self.builder.ins().fcvt_from_uint(F64X2, wide);
                self.push_vector(value);
            }
            Operator::F32x4DemoteF64x2Zero => self.vector_unary(F64X2, |b, x| b.fvdemote(x))?,
            Operator::F64x2PromoteLowF32x4 => {
                self.vector_unary(F32X4, |b, x| b.fvpromote_low(x))?;
            }

            _ => return Ok(false),
        }
        Ok(true)
    }

    /// A `v128` of zeros, for locals.
    pub(super) fn v128_zero(&mut self) -> Value {
        self.vector_constant(V128, &[0; 16])
    }

    /// A vector constant of type `ty` with these bytes (lane 0 first, little-endian).
    fn vector_constant(&mut self, ty: Type, bytes: &[u8]) -> Value {
        let constant = self
            .builder
            .func
            .dfg
            .constants
            .insert(ir::ConstantData::from(bytes));
        self.builder.ins().vconst(ty, constant)
    }

    /// `value` reinterpreted as `ty`: the same 128 bits, so no code.
    fn reinterpret_vector(&mut self, value: Value, ty: Type) -> Value {
        if self.builder.func.dfg.value_type(value) == ty {
            return value;
        }
        let flags = MemFlagsData::new().with_endianness(Endianness::Little);
        self.builder.ins().bitcast(ty, flags, value)
    }

    /// Pops a `v128` as a vector of type `ty`.
    fn pop_vector(&mut self, ty: Type) -> Result<Value, CompileError> {
        let value = self.pop()?;
        Ok(self.reinterpret_vector(value, ty))
    }

    /// Pops two `v128`s as vectors of type `ty`: `(below, top)`.
    fn pop2_vectors(&mut self, ty: Type) -> Result<(Value, Value), CompileError> {
        let top = self.pop_vector(ty)?;
        let below = self.pop_vector(ty)?;
        Ok((below, top))
    }

    /// Pushes a vector of any type as a `v128`.
    fn push_vector(&mut self, value: Value) {
        let value = self.reinterpret_vector(value, V128);
        self.push(value);
    }

    fn vector_unary(&mut self, ty: Type, instruction: Unary) -> Result<(), CompileError> {
        let x = self.pop_vector(ty)?;
        let value = instruction(self.builder.ins(), x);
        self.push_vector(value);
        Ok(())
    }

    fn vector_binary(&mut self, ty: Type, instruction: Binary) -> Result<(), CompileError> {
        let (x, y) = self.pop2_vectors(ty)?;
        let value = instruction(self.builder.ins(), x, y);
        self.push_vector(value);
        Ok(())
    }

    /// A shift of every lane of a `ty` vector by the `i32` on top of the stack.
    fn vector_shift(&mut self, ty: Type, instruction: Binary) -> Result<(), CompileError> {
        let count = self.pop()?;
        let x = self.pop_vector(ty)?;
        let value = instruction(self.builder.ins(), x, count);
        self.push_vector(value);
        Ok(())
    }

    fn vector_icmp(&mut self, ty: Type, cc: IntCC) -> Result<(), CompileError> {
        let (x, y) = self.pop2_vectors(ty)?;
        let value = self.builder.ins().icmp(cc, x, y);
        self.push_vector(value);
        Ok(())
    }

    fn vector_fcmp(&mut self, ty: Type, cc: FloatCC) -> Result<(), CompileError> {
        let (x, y) = self.pop2_vectors(ty)?;
        let value = self.builder.ins().fcmp(cc, x, y);
        self.push_vector(value);
        Ok(())
    }

    fn all_true(&mut self, ty: Type) -> Result<(), CompileError> {
        let x = self.pop_vector(ty)?;
        let all = self.builder.ins().vall_true(x);
        let all = self.builder.ins().uextend(I32, all);
        self.push(all);
        Ok(())
    }

    fn bitmask(&mut self, ty: Type) -> Result<(), CompileError> {
        let x = self.pop_vector(ty)?;
        let bits = self.builder.ins().vhigh_bits(I32, x);
        self.push(bits);
        Ok(())
    }

    /// `pmin` (`y < x ? y : x`) or `pmax` (`x < y ? y : x`): exactly the comparison and
    /// choice the proposal defines, so NaNs and signed zeros pick `x`.
    fn pseudo_min_max(&mut self, ty: Type, max: bool) -> Result<(), CompileError> {
        let (x, y) = self.pop2_vectors(ty)?;
        let mask = if max {
            self.builder.ins().fcmp(FloatCC::LessThan, x, y)
        } else {
            self.builder.ins().fcmp(FloatCC::LessThan, y, x)
        };
        let mask = self.reinterpret_vector(mask, ty);
        let value = self.builder.ins().bitselect(mask, y, x);
        self.push_vector(value);
        Ok(())
    }

    /// Adds adjacent lanes of a `narrow` vector into lanes twice as wide.
    fn extadd_pairwise(&mut self, narrow: Type, signed: bool) -> Result<(), CompileError> {
        let x = self.pop_vector(narrow)?;
        let low = self.widen(x, Half::Low, signed);
        let high = self.widen(x, Half::High, signed);
        let value = self.builder.ins().iadd_pairwise(low, high);
        self.push_vector(value);
        Ok(())
    }

    /// Multiplies one half of two `narrow` vectors into lanes twice as wide.
    fn extmul(&mut self, narrow: Type, half: Half, signed: bool) -> Result<(), CompileError> {
        let (x, y) = self.pop2_vectors(narrow)?;
        let x = self.widen(x, half, signed);
        let y = self.widen(y, half, signed);
        let value = self.builder.ins().imul(x, y);
        self.push_vector(value);
        Ok(())
    }

    /// One half of `x`, each lane extended to twice its width.
    fn widen(&mut self, x: Value, half: Half, signed: bool) -> Value {
        let ins = self.builder.ins();
        match (half, signed) {
            (Half::Low, true) => ins.swiden_low(x),
            (Half::High, true) => ins.swiden_high(x),
            (Half::Low, false) => ins.uwiden_low(x),
            (Half::High, false) => ins.uwiden_high(x),
        }
    }

    fn splat(&mut self, ty: Type) -> Result<(), CompileError> {
        let x = self.pop()?;
        let x = self.narrow_scalar(x, ty.lane_type());
        let value = self.builder.ins().splat(ty, x);
        self.push_vector(value);
        Ok(())
    }

    /// The `i32` operand of an `i8`/`i16` lane operation, reduced to the lane type.
    fn narrow_scalar(&mut self, x: Value, lane: Type) -> Value {
        if self.builder.func.dfg.value_type(x) == lane {
            x
        } else {
            self.builder.ins().ireduce(lane, x)
        }
    }

    /// Extracts lane `lane` of a `ty` vector; `extend` says how an `i8`/`i16` lane
    /// becomes an `i32`.
    fn extract_lane(
        &mut self,
        ty: Type,
        lane: u8,
        extend: Option<bool>,
    ) -> Result<(), CompileError> {
        let x = self.pop_vector(ty)?;
        let value = self.builder.ins().extractlane(x, lane);
        let value = match extend {
            Some(true) => self.builder.ins().sextend(I32, value),
            Some(false) => self.builder.ins().uextend(I32, value),
            None => value,
        };
        self.push(value);
        Ok(())
    }

    fn replace_lane(&mut self, ty: Type, lane: u8) -> Result<(), CompileError> {
        let scalar = self.pop()?;
        let x = self.pop_vector(ty)?;
        let scalar = self.narrow_scalar(scalar, ty.lane_type());
        let value = self.builder.ins().insertlane(x, scalar, lane);
        self.push_vector(value);
        Ok(())
    }

    fn vector_load(&mut self, memarg: &MemArg, kind: VectorLoad) -> Result<(), CompileError> {
        let address = self.pop()?;
        let (address, offset) = self.heap_address(memarg, address)?;
        let flags = heap_flags();
        let value = match kind {
            VectorLoad::Full => self.builder.ins().load(V128, flags, address, offset),
            VectorLoad::Extend { lane, signed } if self.vector_elements_need_alignment() => {
                // Eight bytes as one scalar (which may be misaligned), then widened in
                // registers: see the module documentation.
                let bytes = self.builder.ins().load(I64, flags, address, offset);
                let bytes = self.builder.ins().scalar_to_vector(I64X2, bytes);
                let narrow = self.reinterpret_vector(bytes, vector_of(lane));
                self.widen(narrow, Half::Low, signed)
            }
            VectorLoad::Extend { lane, signed } => {
                let ins = self.builder.ins();
                match (lane, signed) {
                    (I8, true) => ins.sload8x8(flags, address, offset),
                    (I8, false) => ins.uload8x8(flags, address, offset),
                    (I16, true) => ins.sload16x4(flags, address, offset),
                    (I16, false) => ins.uload16x4(flags, address, offset),
                    (_, true) => ins.sload32x2(flags, address, offset),
                    (_, false) => ins.uload32x2(flags, address, offset),
                }
            }
            VectorLoad::Splat(lane) => {
                let scalar = self.builder.ins().load(lane, flags, address, offset);
                self.builder.ins().splat(vector_of(lane), scalar)
            }
            VectorLoad::Zero(lane) => {
                let scalar = self.builder.ins().load(lane, flags, address, offset);
                self.builder.ins().scalar_to_vector(vector_of(lane), scalar)
            }
        };
        self.push_vector(value);
        Ok(())
    }

    /// Whether the target faults on (or traps to slow emulation for) vector memory
    /// accesses whose elements are not naturally aligned: riscv64's V extension allows it,
    /// and Cranelift lowers the 8-byte extending loads as one 64-bit vector element.
    fn vector_elements_need_alignment(&self) -> bool {
        self.env.isa.name() == "riscv64"
    }

    /// `v128.load8x8_s` ... `v128.load32x2_u`: eight bytes as `lane`s, each extended.
    fn extending_load(
        &mut self,
        memarg: &MemArg,
        lane: Type,
        signed: bool,
    ) -> Result<(), CompileError> {
        self.vector_load(memarg, VectorLoad::Extend { lane, signed })
    }

    /// `v128.loadN_lane`: replaces lane `lane` of a `ty` vector with a scalar from memory.
    fn load_lane(&mut self, memarg: &MemArg, ty: Type, lane: u8) -> Result<(), CompileError> {
        let x = self.pop_vector(ty)?;
        let address = self.pop()?;
        let (address, offset) = self.heap_address(memarg, address)?;
        let scalar = self
            .builder
            .ins()
            .load(ty.lane_type(), heap_flags(), address, offset);
        let value = self.builder.ins().insertlane(x, scalar, lane);
        self.push_vector(value);
        Ok(())
    }

    /// `v128.storeN_lane`: stores lane `lane` of a `ty` vector.
    fn store_lane(&mut self, memarg: &MemArg, ty: Type, lane: u8) -> Result<(), CompileError> {
        let x = self.pop_vector(ty)?;
        let address = self.pop()?;
        let (address, offset) = self.heap_address(memarg, address)?;
        let scalar = self.builder.ins().extractlane(x, lane);
        self.builder
            .ins()
            .store(heap_flags(), scalar, address, offset);
        Ok(())
    }
}

/// Which half of a vector a widening operator reads.
#[derive(Clone, Copy)]
enum Half {
    /// Lanes `0..n/2`.
    Low,
    /// Lanes `n/2..n`.
    High,
}

/// The 128-bit vector whose lanes are `lane`.
fn vector_of(lane: Type) -> Type {
    match lane {
        I8 => I8X16,
        I16 => I16X8,
        I32 => I32X4,
        F32 => F32X4,
        F64 => F64X2,
        _ => I64X2,
    }
}
