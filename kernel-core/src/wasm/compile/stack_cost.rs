//! Stack accounting in WebAssembly terms: how deep a call chain may go is decided by a
//! count that is the same on every ISA, not by the size of the machine frames.
//!
//! Cranelift's frames for one function differ between ISAs: x86-64 spills an `f64` into 16
//! bytes where riscv64 uses 8, riscv64 keeps in spill slots sums that x86-64 folds into an
//! addressing mode (a recursion keeping 1000 `global + i` values has 48-byte frames on
//! x86-64 and 7.6 KB ones on riscv64), and the callee-saved registers differ. A stack limit
//! on machine addresses alone therefore stops the same program at different depths on the
//! two HALs. So each function has a **cost**, computed from its WebAssembly alone, and
//! every WebAssembly call passes what is left of the budget in those costs (the
//! `stack_left` parameter after the two VMContexts, see [`crate::wasm::abi`]): a counted
//! function traps with `call stack exhausted` when it was left less than its cost, and
//! passes on the rest to its callees. The same program makes the same calls on every ISA,
//! so it runs out at the same call. Kept in a register along the chain, the count needs
//! no memory: a compare, a branch and a subtract at the entry of a counted function, and
//! one more argument per call.
//!
//! The cost approximates the machine frame from above for ordinary code:
//! [`FRAME_BASE_COST`] for the return address and the frame pointer, and for each
//! parameter, local and operand-stack slot at the function's deepest point the largest
//! spill slot any of our ISAs gives its type (8 bytes for integers and references, 16 for
//! floats and vectors). Only half of a call's stack budget
//! is counted ([`counted_stack_budget`]); the machine limit
//! ([`VMStoreContext::stack_limit`]) at the whole budget stays as a backstop, so that
//! frames up to twice their cost never reach it. Frames do pass their cost: Cranelift
//! computes what follows a call from the values on the stack before using any of it, so
//! a value and what was computed from it can both be spilled (measured: 24 bytes a value
//! for `f64`s and `v128`s each turned into an `i64`, on x86-64). A frame over twice its
//! cost would be stopped by the machine limit, at a depth that may differ between ISAs.
//!
//! Counted: every function that makes calls (recursion needs calls) and every leaf whose
//! cost passes [`UNCOUNTED_LEAF_COST`]; small leaves end any chain and fit in the margin.
//! Host functions do not call WebAssembly, so the count never crosses the host.
//!
//! [`VMStoreContext::stack_limit`]: crate::wasm::abi::VMStoreContext::stack_limit
//! [`counted_stack_budget`]: crate::wasm::abi::counted_stack_budget

use alloc::vec::Vec;

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{self, Function, InstBuilder, Value, types};

use super::CompileError;
use super::func_translator::FuncTranslator;
use super::trap_code;
use crate::wasm::env::ValType;
use crate::wasm::trap::Trap;

/// Bytes every counted frame costs besides its slots: the return address and the frame
/// pointer, and 16 more for alignment and the odd saved register. (A callee-saved
/// register a frame saves holds a value live across a call, which its slot pays for.)
pub const FRAME_BASE_COST: u64 = 32;

/// Bytes an operand-stack slot at the function's deepest point costs: the largest value
/// (`v128`), as the stack's types are not followed.
pub const STACK_SLOT_COST: u64 = 16;

/// The largest cost of a function without calls that is not counted: its frame, about
/// this size, fits in the uncounted half of any budget
/// ([`counted_stack_budget`](crate::wasm::abi::counted_stack_budget)).
pub const UNCOUNTED_LEAF_COST: u64 = 4096;

/// The cost of a parameter or local of IR type `ty`: the largest spill slot any supported
/// ISA gives it (x86-64 spills floats and vectors into 16 bytes; integers and references,
/// which are pointers, take 8).
fn slot_cost(ty: ir::Type) -> u64 {
    if ty.is_int() { 8 } else { 16 }
}

/// The cost of a function whose parameters and locals have these IR types and whose
/// operand stack is at most `max_stack` values deep.
fn ir_frame_cost(locals: impl IntoIterator<Item = ir::Type>, max_stack: usize) -> u64 {
    let stack = u64::try_from(max_stack).unwrap_or(u64::MAX);
    locals
        .into_iter()
        .map(slot_cost)
        .fold(FRAME_BASE_COST, u64::saturating_add)
        .saturating_add(stack.saturating_mul(STACK_SLOT_COST))
}

/// The cost of a function with these parameters and locals whose operand stack is at
/// most `max_stack` values deep: what generated code counts for it.
///
/// # Errors
/// [`CompileError::Unsupported`] for a type the compiler does not support (`exnref`).
pub fn frame_cost(
    locals: impl IntoIterator<Item = ValType>,
    max_stack: usize,
) -> Result<u64, CompileError> {
    let types = locals
        .into_iter()
        .map(super::environ::ir_type)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ir_frame_cost(types, max_stack))
}

/// The instructions of one function's count, kept until its cost is known (after the
/// body is translated) to set it, or to take them out of an uncounted leaf.
#[derive(Debug)]
pub(super) struct StackCharge {
    /// The `iconst` of the cost, set by [`StackCharge::settle`].
    cost: Value,
    /// What the function leaves its callees: its `stack_left` less its cost.
    rest: Value,
    /// Every instruction of the count, the cost's included.
    insts: Vec<ir::Inst>,
}

impl StackCharge {
    /// Gives the count its cost now that the body is translated (its deepest operand stack
    /// known), or takes it out when the function is a leaf small enough not to count.
    ///
    /// # Errors
    /// [`CompileError::Codegen`] if the cost's placeholder is gone (a translator bug).
    pub(super) fn settle(
        self,
        func: &mut Function,
        cost: u64,
        makes_calls: bool,
    ) -> Result<(), CompileError> {
        if !makes_calls && cost <= UNCOUNTED_LEAF_COST {
            for inst in self.insts {
                func.layout.remove_inst(inst);
            }
            return Ok(());
        }
        let inst =
            func.dfg.value_def(self.cost).inst().ok_or_else(|| {
                CompileError::Codegen("the stack cost lost its instruction".into())
            })?;
        // Costs above `i64::MAX` cannot fit any budget; the compare is unsigned, so the
        // wrapped immediate still traps.
        #[expect(
            clippy::cast_possible_wrap,
            reason = "Cranelift immediates are i64 bit patterns"
        )]
        func.replace(inst).iconst(types::I64, cost as i64);
        Ok(())
    }
}

impl FuncTranslator<'_, '_> {
    /// Emits the function entry's count: trap with `call stack exhausted` when the caller
    /// left less than the cost, else keep what remains for the callees. The cost is a
    /// placeholder until [`StackCharge::settle`].
    pub(super) fn begin_stack_charge(&mut self) -> Result<(), CompileError> {
        let left = self.stack_left;
        let cost = self.builder.ins().iconst(types::I64, 0);
        let enough = self
            .builder
            .ins()
            .icmp(IntCC::UnsignedGreaterThanOrEqual, left, cost);
        let trap = self
            .builder
            .ins()
            .trapz(enough, trap_code(Trap::StackOverflow));
        let rest = self.builder.ins().isub(left, cost);
        let mut insts = Vec::with_capacity(4);
        for value in [cost, enough, rest] {
            insts.push(self.defining_inst(value)?);
        }
        insts.push(trap);
        self.stack_charge = Some(StackCharge { cost, rest, insts });
        Ok(())
    }

    /// What this function passes its callees as their `stack_left`.
    pub(super) fn stack_left_for_callees(&self) -> Result<Value, CompileError> {
        self.stack_charge
            .as_ref()
            .map(|charge| charge.rest)
            .ok_or_else(|| CompileError::Codegen("a call before the stack count".into()))
    }

    /// The instruction that defines `value`.
    fn defining_inst(&self, value: Value) -> Result<ir::Inst, CompileError> {
        self.builder
            .func
            .dfg
            .value_def(value)
            .inst()
            .ok_or_else(|| CompileError::Codegen("a count value without its instruction".into()))
    }

    /// The cost of this function so far: its parameters and locals, and the deepest
    /// operand stack seen.
    pub(super) fn frame_cost(&self) -> u64 {
        ir_frame_cost(self.locals.iter().map(|&(_, ty)| ty), self.max_stack)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_count_the_largest_spill_slot_of_each_type() {
        use crate::wasm::env::RefType;
        let cost = |locals: &[ValType], stack| frame_cost(locals.iter().copied(), stack).unwrap();
        assert_eq!(cost(&[], 0), FRAME_BASE_COST);
        assert_eq!(
            cost(
                &[ValType::I32, ValType::I64, ValType::Ref(RefType::Func)],
                0
            ),
            FRAME_BASE_COST + 24
        );
        assert_eq!(
            cost(&[ValType::F32, ValType::F64, ValType::V128], 3),
            FRAME_BASE_COST + 48 + 3 * STACK_SLOT_COST
        );
        assert_eq!(cost(&[], usize::MAX), u64::MAX);
    }
}
