//! The trampolines of [`crate::wasm::abi`]: array shims, wasm-to-host trampolines and the
//! entry trampoline.
//!
//! * An **array shim** (`tail`, `(callee_vmctx, caller_vmctx, values, wasm_call,
//!   stack_left)`) loads the parameters from `values` (one [`VALUE_SLOT_SIZE`]-byte slot
//!   each), calls `wasm_call` with `stack_left`, and stores the results into the slots from
//!   the first.
//! * A **wasm-to-host trampoline** (the WebAssembly signature of its type, whose
//!   `stack_left` it does not need: host functions do not call WebAssembly) spills the
//!   parameters into slots in its frame, calls `VMHostFuncContext::host_call` with the C
//!   convention as `(host_context, caller_vmctx, values, capacity)`, traps with
//!   `host function failed` on a non-zero status, and returns the results from the slots.
//! * The **entry trampoline** (C convention) records its frame pointer, stack pointer and
//!   exception handler address in the `VMActivation`, then calls the array shim with
//!   `try_call_indirect` and a catch-all handler: 1 on a normal return, 0 when a trap
//!   resumed at the handler.
//!
//! The entry trampoline's stack pointer, as `get_stack_pointer` reads it in its body, is
//! the one the handler expects: Cranelift keeps SP fixed between prologue and epilogue
//! (outgoing arguments live in the fixed frame), the shim takes its five arguments in
//! registers so the call pushes no stack arguments, and a `tail` callee pops only stack
//! arguments (none here), so the call site's SP — which the handler is entered with, as
//! for any exceptional return — equals the recorded value.

use alloc::vec::Vec;

use cranelift_codegen::ir::{
    self, AbiParam, BlockArg, BlockCall, ExceptionTableData, ExceptionTableItem, Function,
    InstBuilder, MemFlagsData, Signature, StackSlotData, StackSlotKind, UserFuncName, types,
};
use cranelift_codegen::isa::{CallConv, TargetIsa};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};

use super::CompileError;
use super::environ::{ModuleEnvironment, POINTER, ir_type, offset32, wasm_signature};
use super::traps::trap_code;
use crate::wasm::abi::{
    ACTIVATION_ENTRY_FP, ACTIVATION_ENTRY_SP, ACTIVATION_HANDLER_PC, HOST_FUNC_HOST_CALL,
    VALUE_SLOT_SIZE,
};
use crate::wasm::indices::TypeIndex;
use crate::wasm::trap::Trap;

/// Flags for the trampolines' own memory accesses (value slots, runtime structures): the
/// runtime hands over valid, aligned pointers.
fn trusted() -> MemFlagsData {
    MemFlagsData::trusted()
}

/// The offset of value slot `index`.
fn slot_offset(index: usize) -> Result<i32, CompileError> {
    u32::try_from(index)
        .ok()
        .and_then(|index| index.checked_mul(VALUE_SLOT_SIZE))
        .ok_or_else(|| CompileError::Unsupported("too many values for the value slots".into()))
        .and_then(offset32)
}

/// The IR types of `type_index`'s parameters and results.
fn value_types(
    env: &ModuleEnvironment<'_>,
    type_index: TypeIndex,
) -> Result<(Vec<ir::Type>, Vec<ir::Type>), CompileError> {
    let ty = env.func_type(type_index)?;
    let params = ty
        .params
        .iter()
        .map(|t| ir_type(*t))
        .collect::<Result<_, _>>()?;
    let results = ty
        .results
        .iter()
        .map(|t| ir_type(*t))
        .collect::<Result<_, _>>()?;
    Ok((params, results))
}

/// The array shim of function type `type_index`.
pub(super) fn array_shim(
    env: &ModuleEnvironment<'_>,
    type_index: TypeIndex,
    builder_context: &mut FunctionBuilderContext,
) -> Result<Function, CompileError> {
    let wasm = wasm_signature(env.func_type(type_index)?)?;
    let (params, results) = value_types(env, type_index)?;
    let mut signature = Signature::new(CallConv::Tail);
    signature.params.extend([AbiParam::new(POINTER); 4]);
    signature.params.push(AbiParam::new(types::I64));
    let mut func =
        Function::with_name_signature(UserFuncName::user(1, type_index.as_u32()), signature);
    {
        let mut builder = FunctionBuilder::new(&mut func, builder_context);
        let block = builder.create_block();
        builder.append_block_params_for_function_params(block);
        builder.switch_to_block(block);
        builder.seal_block(block);
        let [callee_vmctx, caller_vmctx, values, wasm_call, stack_left] =
            *builder.block_params(block)
        else {
            return Err(CompileError::Codegen("array shim parameters".into()));
        };
        let mut args = Vec::with_capacity(params.len() + 3);
        args.extend([callee_vmctx, caller_vmctx, stack_left]);
        for (index, &ty) in params.iter().enumerate() {
            args.push(
                builder
                    .ins()
                    .load(ty, trusted(), values, slot_offset(index)?),
            );
        }
        let wasm = builder.import_signature(wasm);
        let call = builder.ins().call_indirect(wasm, wasm_call, &args);
        let returned = builder.inst_results(call).to_vec();
        debug_assert_eq!(returned.len(), results.len());
        for (index, value) in returned.into_iter().enumerate() {
            builder
                .ins()
                .store(trusted(), value, values, slot_offset(index)?);
        }
        builder.ins().return_(&[]);
        builder.finalize(env.isa.frontend_config());
    }
    Ok(func)
}

/// The wasm-to-host trampoline of function type `type_index`.
pub(super) fn wasm_to_host(
    env: &ModuleEnvironment<'_>,
    type_index: TypeIndex,
    builder_context: &mut FunctionBuilderContext,
) -> Result<Function, CompileError> {
    let signature = wasm_signature(env.func_type(type_index)?)?;
    let (params, results) = value_types(env, type_index)?;
    let capacity = params.len().max(results.len());
    let mut host = Signature::new(env.isa.default_call_conv());
    host.params.extend([AbiParam::new(POINTER); 3]);
    host.params.push(AbiParam::new(types::I32));
    host.returns.push(AbiParam::new(types::I32));
    let mut func =
        Function::with_name_signature(UserFuncName::user(2, type_index.as_u32()), signature);
    {
        let mut builder = FunctionBuilder::new(&mut func, builder_context);
        let block = builder.create_block();
        builder.append_block_params_for_function_params(block);
        builder.switch_to_block(block);
        builder.seal_block(block);
        let incoming = builder.block_params(block).to_vec();
        let (host_context, caller_vmctx) = (incoming[0], incoming[1]);

        let bytes = slot_offset(capacity.max(1))?.unsigned_abs();
        let slots = builder.create_sized_stack_slot(StackSlotData::new(
            StackSlotKind::ExplicitSlot,
            bytes,
            VALUE_SLOT_SIZE.trailing_zeros() as u8,
        ));
        for (index, &value) in incoming[3..].iter().enumerate() {
            builder
                .ins()
                .stack_store(POINTER, value, slots, slot_offset(index)?);
        }
        let values = builder.ins().stack_addr(POINTER, slots, 0);
        let host_call = builder.ins().load(
            POINTER,
            trusted().with_readonly(),
            host_context,
            offset32(HOST_FUNC_HOST_CALL)?,
        );
        let capacity = builder.ins().iconst(
            types::I32,
            i64::try_from(capacity).map_err(|_| CompileError::invalid("value count"))?,
        );
        let host = builder.import_signature(host);
        let call = builder.ins().call_indirect(
            host,
            host_call,
            &[host_context, caller_vmctx, values, capacity],
        );
        let status = builder.inst_results(call)[0];
        builder.ins().trapnz(status, trap_code(Trap::HostError));
        let mut returned = Vec::with_capacity(results.len());
        for (index, &ty) in results.iter().enumerate() {
            returned.push(
                builder
                    .ins()
                    .stack_load(POINTER, ty, slots, slot_offset(index)?),
            );
        }
        builder.ins().return_(&returned);
        builder.finalize(env.isa.frontend_config());
    }
    Ok(func)
}

/// The module's entry trampoline.
pub(super) fn entry_trampoline(
    isa: &dyn TargetIsa,
    builder_context: &mut FunctionBuilderContext,
) -> Result<Function, CompileError> {
    // (activation, array_shim, wasm_call, callee_vmctx, caller_vmctx, values, stack_left)
    // -> i32
    let mut signature = Signature::new(isa.default_call_conv());
    signature.params.extend([AbiParam::new(POINTER); 6]);
    signature.params.push(AbiParam::new(types::I64));
    signature.returns.push(AbiParam::new(types::I32));
    let mut shim = Signature::new(CallConv::Tail);
    shim.params.extend([AbiParam::new(POINTER); 4]);
    shim.params.push(AbiParam::new(types::I64));

    let mut func = Function::with_name_signature(UserFuncName::user(3, 0), signature);
    {
        let mut builder = FunctionBuilder::new(&mut func, builder_context);
        let entry = builder.create_block();
        let call_block = builder.create_block();
        let normal = builder.create_block();
        let handler = builder.create_block();
        builder.append_block_params_for_function_params(entry);
        builder.switch_to_block(entry);
        builder.seal_block(entry);
        let [
            activation,
            array_shim,
            wasm_call,
            callee_vmctx,
            caller_vmctx,
            values,
            stack_left,
        ] = *builder.block_params(entry)
        else {
            return Err(CompileError::Codegen("entry trampoline parameters".into()));
        };
        // The verifier wants the `try_call` block referenced by
        // `get_exception_handler_address` not to be the entry block.
        builder.ins().jump(call_block, &[]);
        builder.switch_to_block(call_block);
        builder.seal_block(call_block);

        let frame_pointer = builder.ins().get_frame_pointer(POINTER);
        let stack_pointer = builder.ins().get_stack_pointer(POINTER);
        // Handler 0 of the exception table of the `try_call_indirect` ending this block.
        let handler_pc = builder
            .ins()
            .get_exception_handler_address(POINTER, call_block, 0);
        for (value, offset) in [
            (frame_pointer, ACTIVATION_ENTRY_FP),
            (stack_pointer, ACTIVATION_ENTRY_SP),
            (handler_pc, ACTIVATION_HANDLER_PC),
        ] {
            builder
                .ins()
                .store(trusted(), value, activation, offset32(offset)?);
        }

        let shim = builder.import_signature(shim);
        let pool = &mut builder.func.dfg.value_lists;
        let normal_call = BlockCall::new(normal, core::iter::empty::<BlockArg>(), pool);
        let handler_call = BlockCall::new(handler, core::iter::empty::<BlockArg>(), pool);
        let table = builder
            .func
            .dfg
            .exception_tables
            .push(ExceptionTableData::new(
                shim,
                normal_call,
                [ExceptionTableItem::Default(handler_call)],
            ));
        builder.ins().try_call_indirect(
            array_shim,
            &[callee_vmctx, caller_vmctx, values, wasm_call, stack_left],
            table,
        );

        builder.switch_to_block(normal);
        builder.seal_block(normal);
        let one = builder.ins().iconst(types::I32, 1);
        builder.ins().return_(&[one]);

        builder.switch_to_block(handler);
        builder.seal_block(handler);
        let zero = builder.ins().iconst(types::I32, 0);
        builder.ins().return_(&[zero]);
        builder.finalize(isa.frontend_config());
    }
    Ok(func)
}
