//! Translation of one function body into Cranelift IR.
//!
//! [`translate_function`] sets up the function (signature, stack limit, locals), then reads
//! the operators one by one and hands each to the family that knows it: `control`,
//! `variables`, `calls`, `memory`, `numeric`. Each family's `translate_*` returns
//! `Ok(false)` for an operator it does not know, so supporting a new proposal means one new
//! module and one new line in [`FuncTranslator::translate_operator`]. Whatever no family
//! knows is a [`CompileError::Unsupported`] naming the operator.
//!
//! Implemented: all of WebAssembly 1.0, plus sign-extension operators, non-trapping
//! float-to-int conversions, multi-value block types, typed `select`, `funcref` /
//! `externref` values (as pointers) in signatures, locals and globals, `ref.null`,
//! `ref.is_null`, `ref.func`, `table.get` / `table.set` / `table.size`, and (in `bulk`,
//! as builtin calls) bulk memory, `table.grow` / `fill` / `copy` / `init` and
//! `elem.drop`, and (in `simd`) fixed-width SIMD. Not yet: relaxed SIMD, tail calls,
//! exceptions, threads, GC, 64-bit memories.
//!
//! The value stack holds SSA values; locals are `cranelift_frontend` variables; control
//! frames are in `control`. While the current position is unreachable (after `br`,
//! `return`, `unreachable`...) nothing is emitted until the `else` or `end` that makes
//! code reachable again.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use cranelift_codegen::ir::immediates::Offset32;
use cranelift_codegen::ir::{
    self, Function, GlobalValueData, InstBuilder, SigRef, SourceLoc, UserFuncName, Value, types,
};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};
use wasmparser::{BinaryReader, FunctionBody, Operator};

use super::CompileError;
use super::control::ControlFrame;
use super::environ::{
    ModuleEnvironment, POINTER, ir_type, mutable_flags, offset32, parser_ir_type,
};
use crate::wasm::abi::{Builtin, STORE_CONTEXT_STACK_LIMIT};
use crate::wasm::env::VMShape;
use crate::wasm::indices::{FuncIndex, TypeIndex};

/// Translates the body of defined function `index` (`body` is its bytes, locals included,
/// found at `body_offset` in the module binary) into a Cranelift function.
pub(super) fn translate_function(
    env: &ModuleEnvironment<'_>,
    index: FuncIndex,
    body: &[u8],
    body_offset: usize,
    builder_context: &mut FunctionBuilderContext,
) -> Result<Function, CompileError> {
    let type_index = env.function_type_index(index)?;
    let func_type = env.func_type(type_index)?;
    let signature = env.wasm_signature(type_index)?;
    let mut func = Function::with_name_signature(UserFuncName::user(0, index.as_u32()), signature);

    // The prologue traps with STACK_OVERFLOW below
    // `(*(vmctx + STORE_CONTEXT)).stack_limit`.
    let vmctx = func.create_global_value(GlobalValueData::VMContext);
    let flags = func
        .dfg
        .mem_flags
        .insert(mutable_flags())
        .map_err(|_| CompileError::Codegen("too many memory flag sets".into()))?;
    let store_context = func.create_global_value(GlobalValueData::Load {
        base: vmctx,
        offset: Offset32::new(offset32(VMShape::STORE_CONTEXT)?),
        global_type: POINTER,
        flags,
    });
    let stack_limit = func.create_global_value(GlobalValueData::Load {
        base: store_context,
        offset: Offset32::new(offset32(STORE_CONTEXT_STACK_LIMIT)?),
        global_type: POINTER,
        flags,
    });
    func.stack_limit = Some(stack_limit);

    let body_offset = u64::try_from(body_offset).map_err(|_| CompileError::invalid("offset"))?;
    let body = FunctionBody::new(BinaryReader::new(body, body_offset));
    let mut results = Vec::with_capacity(func_type.results.len());
    let epoch_branches;
    let stack_charge;
    let cost;
    let points = super::epoch::CheckPoints::of(&body)?;
    for result in &func_type.results {
        results.push(ir_type(*result)?);
    }
    {
        let builder = FunctionBuilder::new(&mut func, builder_context);
        let mut translator = FuncTranslator::new(env, builder, srcloc(body_offset)?);
        translator.declare_locals(&body)?;
        translator.begin_stack_charge()?;
        translator.begin_epoch_checks(points)?;
        translator.push_function_frame(&results);
        let mut operators = body.get_operators_reader()?;
        while !operators.eof() {
            let (op, offset) = operators.read_with_offset()?;
            translator.builder.set_srcloc(srcloc(offset)?);
            translator.translate_operator(&op)?;
            translator.max_stack = translator.max_stack.max(translator.stack.len());
        }
        operators.finish()?;
        if !translator.control.is_empty() {
            return Err(CompileError::invalid("function body ends inside a block"));
        }
        cost = translator.frame_cost();
        stack_charge = translator.stack_charge.take();
        translator.builder.finalize(env.isa.frontend_config());
        epoch_branches = translator.epoch_branches;
    }
    if let Some(charge) = stack_charge {
        charge.settle(&mut func, cost, points.calls)?;
    }
    super::epoch::attribute_folded_traps(&mut func, &epoch_branches);
    Ok(func)
}

fn srcloc(offset: u64) -> Result<SourceLoc, CompileError> {
    match u32::try_from(offset) {
        Ok(offset) if offset != u32::MAX => Ok(SourceLoc::new(offset)),
        _ => Err(CompileError::Unsupported(
            "modules larger than 4 GiB".into(),
        )),
    }
}

/// The state of one function's translation.
pub(super) struct FuncTranslator<'env, 'b> {
    /// The module-wide facts.
    pub env: &'env ModuleEnvironment<'env>,
    /// The IR being built.
    pub builder: FunctionBuilder<'b>,
    /// The WebAssembly value stack.
    pub stack: Vec<Value>,
    /// The enclosing blocks, innermost last; the function's own frame first.
    pub control: Vec<ControlFrame>,
    /// Whether the current position can be reached; nothing is emitted while it cannot.
    pub reachable: bool,
    /// While unreachable: how many blocks opened in the dead code are still open.
    pub unreachable_depth: u32,
    /// The function's own VMContext (its `callee_vmctx` parameter).
    pub vmctx: Value,
    /// What its caller left of the stack budget, in frame costs (its `stack_left`
    /// parameter; see `stack_cost`).
    pub(super) stack_left: Value,
    /// Every local, parameters first, with its type.
    pub(super) locals: Vec<(Variable, ir::Type)>,
    /// Signatures imported into the function, by type index.
    signatures: BTreeMap<TypeIndex, SigRef>,
    /// Functions imported for direct calls, by function index.
    functions: BTreeMap<FuncIndex, ir::FuncRef>,
    /// The signature of each builtin, once imported, by [`Builtin`] number.
    builtin_signatures: [Option<SigRef>; Builtin::COUNT],
    /// The epoch counter's address, loaded at function entry, and the variable holding
    /// the store's epoch deadline, when the function has epoch checks
    /// ([`super::epoch`]).
    pub(super) epoch_state: Option<(Value, Variable)>,
    /// Every epoch-check branch with the block it continues in.
    pub(super) epoch_branches: Vec<(ir::Inst, ir::Block)>,
    /// The function's stack count (see `stack_cost`), its cost not yet known.
    pub(super) stack_charge: Option<super::stack_cost::StackCharge>,
    /// The deepest the operand stack has been so far.
    pub(super) max_stack: usize,
}

impl<'env, 'b> FuncTranslator<'env, 'b> {
    fn new(
        env: &'env ModuleEnvironment<'env>,
        mut builder: FunctionBuilder<'b>,
        at: SourceLoc,
    ) -> Self {
        builder.set_srcloc(at);
        let entry = builder.create_block();
        builder.append_block_params_for_function_params(entry);
        builder.switch_to_block(entry);
        builder.seal_block(entry);
        let params = builder.block_params(entry).to_vec();
        let mut locals = Vec::with_capacity(params.len());
        // Parameters 0 and 1 are the callee's and the caller's VMContext, 2 the stack
        // budget left.
        for &param in params.iter().skip(3) {
            let ty = builder.func.dfg.value_type(param);
            let variable = builder.declare_var(ty);
            builder.def_var(variable, param);
            locals.push((variable, ty));
        }
        Self {
            env,
            builder,
            stack: Vec::new(),
            control: Vec::new(),
            reachable: true,
            unreachable_depth: 0,
            vmctx: params[0],
            stack_left: params[2],
            locals,
            signatures: BTreeMap::new(),
            functions: BTreeMap::new(),
            builtin_signatures: [None; Builtin::COUNT],
            epoch_state: None,
            epoch_branches: Vec::new(),
            stack_charge: None,
            max_stack: 0,
        }
    }

    /// Declares the body's locals, each initialised to zero (null for references).
    fn declare_locals(&mut self, body: &FunctionBody<'_>) -> Result<(), CompileError> {
        let mut reader = body.get_locals_reader()?;
        for _ in 0..reader.get_count() {
            let (count, ty) = reader.read()?;
            let ty = parser_ir_type(ty)?;
            let zero = match ty {
                types::F32 => self
                    .builder
                    .ins()
                    .f32const(ir::immediates::Ieee32::with_bits(0)),
                types::F64 => self
                    .builder
                    .ins()
                    .f64const(ir::immediates::Ieee64::with_bits(0)),
                super::environ::V128 => self.v128_zero(),
                _ => self.builder.ins().iconst(ty, 0),
            };
            for _ in 0..count {
                let variable = self.builder.declare_var(ty);
                self.builder.def_var(variable, zero);
                self.locals.push((variable, ty));
            }
        }
        Ok(())
    }

    /// Translates one operator.
    fn translate_operator(&mut self, op: &Operator<'_>) -> Result<(), CompileError> {
        if !self.reachable {
            return self.translate_unreachable(op);
        }
        let handled = self.translate_control(op)?
            || self.translate_variable(op)?
            || self.translate_call(op)?
            || self.translate_memory(op)?
            || self.translate_numeric(op)?
            || self.translate_reference(op)?
            || self.translate_bulk(op)?
            || self.translate_simd(op)?;
        if handled {
            Ok(())
        } else {
            Err(CompileError::unsupported_operator(op))
        }
    }

    /// Pushes a value on the WebAssembly stack.
    pub fn push(&mut self, value: Value) {
        self.stack.push(value);
    }

    /// Pops the top of the WebAssembly stack.
    pub fn pop(&mut self) -> Result<Value, CompileError> {
        self.stack.pop().ok_or_else(stack_underflow)
    }

    /// Pops the two top values: `(below, top)`.
    pub fn pop2(&mut self) -> Result<(Value, Value), CompileError> {
        let top = self.pop()?;
        let below = self.pop()?;
        Ok((below, top))
    }

    /// Pops the `n` top values, deepest first.
    pub fn pop_n(&mut self, n: usize) -> Result<Vec<Value>, CompileError> {
        let at = self
            .stack
            .len()
            .checked_sub(n)
            .ok_or_else(stack_underflow)?;
        Ok(self.stack.split_off(at))
    }

    /// The `n` top values, deepest first, left on the stack.
    pub fn peek_n(&self, n: usize) -> Result<&[Value], CompileError> {
        let at = self
            .stack
            .len()
            .checked_sub(n)
            .ok_or_else(stack_underflow)?;
        Ok(&self.stack[at..])
    }

    /// Local `index` and its type.
    pub fn local(&self, index: u32) -> Result<(Variable, ir::Type), CompileError> {
        self.locals
            .get(index as usize)
            .copied()
            .ok_or_else(|| CompileError::invalid(alloc::format!("no local {index}")))
    }

    /// The signature of function type `index`, imported into this function.
    pub fn signature(&mut self, index: TypeIndex) -> Result<SigRef, CompileError> {
        if let Some(&signature) = self.signatures.get(&index) {
            return Ok(signature);
        }
        let signature = self
            .builder
            .import_signature(self.env.wasm_signature(index)?);
        self.signatures.insert(index, signature);
        Ok(signature)
    }

    /// Defined function `index` as a direct call target.
    pub fn direct_callee(&mut self, index: FuncIndex) -> Result<ir::FuncRef, CompileError> {
        if let Some(&callee) = self.functions.get(&index) {
            return Ok(callee);
        }
        let signature = self.signature(self.env.function_type_index(index)?)?;
        let name = self
            .builder
            .func
            .declare_imported_user_function(ir::UserExternalName::new(0, index.as_u32()));
        let callee = self.builder.import_function(ir::ExtFuncData {
            name: ir::ExternalName::user(name),
            signature,
            colocated: true,
            patchable: false,
        });
        self.functions.insert(index, callee);
        Ok(callee)
    }

    /// The C signature of `builtin`, imported into this function.
    pub fn builtin_signature(&mut self, builtin: Builtin) -> SigRef {
        if let Some(signature) = self.builtin_signatures[builtin as usize] {
            return signature;
        }
        let signature = self
            .builder
            .import_signature(self.env.builtin_signature(builtin));
        self.builtin_signatures[builtin as usize] = Some(signature);
        signature
    }
}

/// A pop from an empty stack: impossible for a validated body.
pub(super) fn stack_underflow() -> CompileError {
    CompileError::invalid("WebAssembly value stack underflow")
}
