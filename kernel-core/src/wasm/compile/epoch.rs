//! Epoch checks: where generated code offers the CPU back to the scheduler.
//!
//! The kernel preempts WebAssembly without doing any work in its timer interrupt: the
//! interrupt only advances a global epoch counter, and generated code compares that
//! counter with its store's deadline ([`VMStoreContext::epoch_deadline`]) at every
//! function entry and at every loop header (so on every back edge). Past the deadline it
//! calls [`Builtin::EpochInterrupt`], which lets the scheduler run something else and
//! returns once this code may go on, or asks it to trap with `interrupted`.
//!
//! The check points are WebAssembly positions (function entries, `loop` instructions), the
//! same on every ISA, which is what makes a count of them a machine-independent clock.
//!
//! The fast path is one load of the epoch, a compare with the deadline kept in a variable,
//! and a branch. The deadline variable is loaded at function entry and reloaded on the
//! slow path; a stale (smaller) value after a call only costs one extra reload, because
//! deadlines only move forward while code runs.
//!
//! [`VMStoreContext::epoch_deadline`]: crate::wasm::abi::VMStoreContext::epoch_deadline

use cranelift_codegen::ir::{InstBuilder, Value, types};
use cranelift_frontend::Variable;

use super::CompileError;
use super::environ::{offset32, readonly_flags};
use super::func_translator::FuncTranslator;
use super::trap_code;
use crate::wasm::abi::{Builtin, STORE_CONTEXT_EPOCH_DEADLINE};
use crate::wasm::env::VMShape;
use crate::wasm::trap::Trap;

/// What a function keeps for its epoch checks.
#[derive(Debug, Clone, Copy)]
pub(super) struct EpochState {
    /// The address of the epoch counter (`*(vmctx + EPOCH_PTR)`).
    epoch_ptr: Value,
    /// The store context (`*(vmctx + STORE_CONTEXT)`).
    store_context: Value,
    /// The deadline as last loaded.
    deadline: Variable,
}

impl FuncTranslator<'_, '_> {
    /// Sets up the epoch checks at function entry (loads the pointers and the deadline)
    /// and emits the entry check. Does nothing when the module is compiled without epoch
    /// checks.
    pub(super) fn begin_epoch_checks(&mut self) -> Result<(), CompileError> {
        if !self.env.options.epoch_checks {
            return Ok(());
        }
        let pointer = super::environ::POINTER;
        let epoch_ptr = self.builder.ins().load(
            pointer,
            readonly_flags(),
            self.vmctx,
            offset32(VMShape::EPOCH_PTR)?,
        );
        let store_context = self.builder.ins().load(
            pointer,
            readonly_flags(),
            self.vmctx,
            offset32(VMShape::STORE_CONTEXT)?,
        );
        let deadline = self.builder.declare_var(types::I64);
        let value = self.load_deadline(store_context)?;
        self.builder.def_var(deadline, value);
        self.epoch = Some(EpochState {
            epoch_ptr,
            store_context,
            deadline,
        });
        self.epoch_check()
    }

    /// Emits one epoch check at the current position (a function entry or a loop header).
    pub(super) fn epoch_check(&mut self) -> Result<(), CompileError> {
        let Some(state) = self.epoch else {
            return Ok(());
        };
        let flags = super::environ::mutable_flags();
        let epoch = self
            .builder
            .ins()
            .load(types::I64, flags, state.epoch_ptr, 0);
        let deadline = self.builder.use_var(state.deadline);
        let past = self.builder.ins().icmp(
            cranelift_codegen::ir::condcodes::IntCC::UnsignedGreaterThanOrEqual,
            epoch,
            deadline,
        );
        let reload = self.builder.create_block();
        let interrupt = self.builder.create_block();
        let done = self.builder.create_block();
        self.builder.set_cold_block(reload);
        self.builder.set_cold_block(interrupt);
        let fast = self.builder.ins().brif(past, reload, &[], done, &[]);
        self.epoch_branches.push((fast, done));

        // The cached deadline may be stale: reload it before bothering the scheduler.
        self.builder.switch_to_block(reload);
        self.builder.seal_block(reload);
        let current = self.load_deadline(state.store_context)?;
        self.builder.def_var(state.deadline, current);
        let still_past = self.builder.ins().icmp(
            cranelift_codegen::ir::condcodes::IntCC::UnsignedGreaterThanOrEqual,
            epoch,
            current,
        );
        let slow = self
            .builder
            .ins()
            .brif(still_past, interrupt, &[], done, &[]);
        self.epoch_branches.push((slow, done));

        self.builder.switch_to_block(interrupt);
        self.builder.seal_block(interrupt);
        let status = self
            .call_builtin(Builtin::EpochInterrupt, &[])?
            .ok_or_else(|| CompileError::invalid("the epoch builtin returns a status"))?;
        self.builder
            .ins()
            .trapnz(status, trap_code(Trap::Interrupted));
        let next = self.load_deadline(state.store_context)?;
        self.builder.def_var(state.deadline, next);
        self.builder.ins().jump(done, &[]);

        self.builder.switch_to_block(done);
        self.builder.seal_block(done);
        Ok(())
    }

    /// Loads the store's current epoch deadline.
    ///
    /// (See [`attribute_folded_traps`] for why the branches are recorded.)
    fn load_deadline(&mut self, store_context: Value) -> Result<Value, CompileError> {
        Ok(self.builder.ins().load(
            types::I64,
            super::environ::mutable_flags(),
            store_context,
            offset32(STORE_CONTEXT_EPOCH_DEADLINE)?,
        ))
    }
}

/// Gives each epoch-check branch whose continuation is nothing but a trap the trap's
/// source location.
///
/// Cranelift's mid-end turns a branch to a block that only traps into a conditional
/// trap at the branch (`brif c, a, trap_block` becomes `trapz c; jump a`), which keeps the
/// branch's source location. After an epoch check the continuation block holds the code
/// of the next operator: when that is `unreachable`, the trap would be reported at the
/// check's position (a function entry or a `loop`) on the fast path, and at the
/// `unreachable` on the slow path, which rejoins the block. Copying the trap's location to
/// the branches makes the report the same whichever path ran.
pub(super) fn attribute_folded_traps(
    func: &mut cranelift_codegen::ir::Function,
    branches: &[(cranelift_codegen::ir::Inst, cranelift_codegen::ir::Block)],
) {
    for &(branch, continuation) in branches {
        let Some(first) = func.layout.first_inst(continuation) else {
            continue;
        };
        if func.dfg.insts[first].opcode() == cranelift_codegen::ir::Opcode::Trap {
            let location = func.srcloc(first);
            func.set_srcloc(branch, location);
        }
    }
}
