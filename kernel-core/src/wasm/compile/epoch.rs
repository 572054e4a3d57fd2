//! Epoch checks: where generated code offers the CPU back to the scheduler.
//!
//! The kernel preempts WebAssembly without doing any work in its timer interrupt: the
//! interrupt only advances a global epoch counter, and generated code compares that
//! counter with its store's deadline ([`VMStoreContext::epoch_deadline`]) at the entry of
//! every function that makes calls and at every loop header (so on every back edge). Past
//! the deadline it calls [`Builtin::EpochInterrupt`], which lets the scheduler run
//! something else and returns once this code may go on, or asks it to trap with
//! `interrupted`.
//!
//! A function without calls and without loops gets no check: it runs straight through
//! its body (at most [`CompileLimits::max_function_size`] bytes) and returns, so that
//! code running for long must pass a loop header or the entry of a function that calls
//! (recursion needs calls). Leaving the check out of such leaves matters for loading: the
//! check's call to the builtin on its cold path makes a leaf a function with a call, and
//! was 60% of the compile time of a module of 20 000 small leaf functions (885 ms of CPU
//! time hosted with the check, 357 ms without).
//!
//! The check points are WebAssembly positions (entries of functions with calls, `loop`
//! instructions), the same on every ISA, which is what makes a count of them a
//! machine-independent clock.
//!
//! [`CompileLimits::max_function_size`]: crate::wasm::env::CompileLimits::max_function_size
//!
//! In deterministic mode (`CompileOptions::count_epoch_checks`) each check also adds one
//! to the counter before the compare, so the counter is the number of check points passed:
//! the logical clock of `sched::deterministic`.
//!
//! The check loads the epoch through its address, loaded once at function entry, compares
//! it with the store's deadline, kept in a Cranelift variable, and branches to a cold
//! block that calls the builtin. The deadline is loaded (through the store context,
//! reached from the VMContext) at function entry and again after every call the function
//! makes: after each WebAssembly call (`call`, `call_indirect`) and after each builtin
//! call, the epoch builtin of the check's own cold path included. Caching it is exact,
//! not an approximation: the deadline changes only while the function is inside a call.
//! Its writers are `Store::set_epoch_deadline` (which needs `&mut Store`, so no code of
//! the store runs), the epoch builtin (`Store::epoch_interrupt`, a builtin call), and the
//! scheduler's `Process::begin_slice` in deterministic mode, which moves it while the
//! process is switched out, that is inside a syscall or the epoch builtin. Nothing writes
//! it from another CPU while the code runs: preemption, the CPU-time limit and the end of
//! a slice all go through the global epoch counter, which every check reads afresh. So
//! after each call the variable holds what a load would read, and deterministic mode
//! sees the same check points and the same decisions as with a load at every check.
//! Keeping the deadline in a variable (as Wasmtime does) saves the hot loop the two
//! dependent loads through the store context and keeps that pointer out of the loop's
//! registers.
//!
//! The check's cost on tight loops was large when it loaded the deadline at every check
//! (measured with `benches/benches/kernel.rs`, paired runs: a counting loop of three
//! instructions ran 2.0 times slower, a memory loop 1.5 times, recursive calls were
//! unaffected): besides the check's own instructions, the call on the
//! cold path makes every value live across the loop need a callee-saved register or a
//! stack slot. A stub with Cranelift's `preserve_all` convention between the check and the
//! builtin would keep the loop's registers; see the README's performance section.
//!
//! [`VMStoreContext::epoch_deadline`]: crate::wasm::abi::VMStoreContext::epoch_deadline

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Value, types};

use super::CompileError;
use super::environ::offset32;
use super::func_translator::FuncTranslator;
use super::trap_code;
use crate::wasm::abi::{Builtin, STORE_CONTEXT_EPOCH_DEADLINE};
use crate::wasm::env::VMShape;
use crate::wasm::trap::Trap;

/// Which epoch checks a function body needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct CheckPoints {
    /// It calls functions (`call`, `call_indirect`, or the tail and reference calls):
    /// a check at its entry.
    pub calls: bool,
    /// It has loops: a check at each loop header.
    pub loops: bool,
}

impl CheckPoints {
    /// Reads `body`'s operators for calls and loops.
    ///
    /// # Errors
    /// [`CompileError::Invalid`] when the body cannot be read.
    pub(super) fn of(body: &wasmparser::FunctionBody<'_>) -> Result<Self, CompileError> {
        use wasmparser::Operator;
        let mut points = Self {
            calls: false,
            loops: false,
        };
        let mut operators = body.get_operators_reader()?;
        while !(operators.eof() || points.calls && points.loops) {
            match operators.read()? {
                Operator::Call { .. }
                | Operator::CallIndirect { .. }
                | Operator::ReturnCall { .. }
                | Operator::ReturnCallIndirect { .. }
                | Operator::CallRef { .. }
                | Operator::ReturnCallRef { .. } => points.calls = true,
                Operator::Loop { .. } => points.loops = true,
                _ => {}
            }
        }
        Ok(points)
    }
}

impl FuncTranslator<'_, '_> {
    /// Prepares the function's epoch checks (when the module has epoch checks and the
    /// body has check points), and emits the entry's when it makes calls.
    pub(super) fn begin_epoch_checks(&mut self, points: CheckPoints) -> Result<(), CompileError> {
        if !self.env.options.epoch_checks || !(points.calls || points.loops) {
            return Ok(());
        }
        let fixed = MemFlagsData::trusted().with_readonly();
        let pointer = super::environ::POINTER;
        let epoch_ptr =
            self.builder
                .ins()
                .load(pointer, fixed, self.vmctx, offset32(VMShape::EPOCH_PTR)?);
        let deadline = self.builder.declare_var(types::I64);
        self.epoch_state = Some((epoch_ptr, deadline));
        self.reload_epoch_deadline()?;
        if points.calls {
            self.epoch_check()?;
        }
        Ok(())
    }

    /// Loads the store's epoch deadline into the function's deadline variable (when it
    /// has epoch checks): at function entry, and after every call, during which the
    /// deadline may have moved.
    ///
    /// # Errors
    /// [`CompileError::Invalid`] when an offset does not fit.
    pub(super) fn reload_epoch_deadline(&mut self) -> Result<(), CompileError> {
        let Some((_, variable)) = self.epoch_state else {
            return Ok(());
        };
        let deadline = self.load_epoch_deadline()?;
        self.builder.def_var(variable, deadline);
        Ok(())
    }

    /// The store's epoch deadline, loaded through the store context. Both loads are
    /// emitted where the deadline is needed (after a call), so that the store context's
    /// address is not held in a register across the function's loops.
    fn load_epoch_deadline(&mut self) -> Result<Value, CompileError> {
        // Not `can_move`: a load after a call must stay after it (the pointer never
        // changes, but keeping it in a register is what this avoids).
        let fixed = MemFlagsData::trusted().with_readonly();
        let store_context = self.builder.ins().load(
            super::environ::POINTER,
            fixed,
            self.vmctx,
            offset32(VMShape::STORE_CONTEXT)?,
        );
        Ok(self.builder.ins().load(
            types::I64,
            MemFlagsData::trusted(),
            store_context,
            offset32(STORE_CONTEXT_EPOCH_DEADLINE)?,
        ))
    }

    /// Emits one epoch check at the current position (a function entry or a loop header).
    pub(super) fn epoch_check(&mut self) -> Result<(), CompileError> {
        let Some((epoch_ptr, deadline)) = self.epoch_state else {
            return Ok(());
        };
        let changing = MemFlagsData::trusted();
        let mut epoch = self.builder.ins().load(types::I64, changing, epoch_ptr, 0);
        if self.env.options.count_epoch_checks {
            // Deterministic mode: the check counts itself (one host thread runs every
            // process there, so a plain load and store is exact).
            epoch = self.builder.ins().iadd_imm_u(epoch, 1);
            self.builder.ins().store(changing, epoch, epoch_ptr, 0);
        }
        let deadline = self.builder.use_var(deadline);
        let past = self
            .builder
            .ins()
            .icmp(IntCC::UnsignedGreaterThanOrEqual, epoch, deadline);
        let interrupt = self.builder.create_block();
        let done = self.builder.create_block();
        self.builder.set_cold_block(interrupt);
        let branch = self.builder.ins().brif(past, interrupt, &[], done, &[]);
        self.epoch_branches.push((branch, done));

        self.builder.switch_to_block(interrupt);
        self.builder.seal_block(interrupt);
        // The builtin call reloads the deadline the builtin moved (`call_builtin_with`).
        let status = self
            .call_builtin_in_place(Builtin::EpochInterrupt, &[])?
            .ok_or_else(|| CompileError::invalid("the epoch builtin returns a status"))?;
        self.builder
            .ins()
            .trapnz(status, trap_code(Trap::Interrupted));
        self.builder.ins().jump(done, &[]);

        self.builder.switch_to_block(done);
        self.builder.seal_block(done);
        Ok(())
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
