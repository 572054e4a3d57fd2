//! One function's Cranelift IR and machine code, for inspection (`sim compile`): the same
//! translation and code generation as [`super::compile_module_for`], stopped before
//! linking, so that the code is shown as Cranelift produced it (calls unpatched, with
//! their targets listed beside).

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::environ::ModuleEnvironment;
use super::{CompileError, CompileOptions, Compiler, func_translator, target_isa_with};
use crate::hal::{Isa, IsaFeatures};
use crate::wasm::env::{ModuleInfo, VMShape};
use crate::wasm::indices::FuncIndex;
use crate::wasm::trap::Trap;

/// What [`inspect_function`] produced for one defined function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionListing {
    /// The function's index in its module.
    pub index: FuncIndex,
    /// The Cranelift IR as translated from WebAssembly, before Cranelift's optimizations.
    pub ir: String,
    /// The machine code, with calls to other functions not yet patched.
    pub code: Vec<u8>,
    /// `(code offset, called function)` of each call that linking patches.
    pub calls: Vec<(u32, FuncIndex)>,
    /// `(code offset, trap)` of each instruction that may trap.
    pub traps: Vec<(u32, Trap)>,
    /// `(code offset, WebAssembly byte offset)` where a new operator's code starts.
    pub srclocs: Vec<(u32, u32)>,
}

/// Translates and compiles defined function `index` of `module` for `isa` with
/// `features`, as loading the module would.
///
/// `module` must come from [`crate::wasm::env::translate`] of `wasm`, and `shape` from
/// [`VMShape::for_module`] of `module`.
///
/// # Errors
/// [`CompileError::Invalid`] when `index` is imported or past the functions, and whatever
/// [`super::compile_module`] would report for this function.
pub fn inspect_function(
    isa: Isa,
    features: IsaFeatures,
    options: CompileOptions,
    module: &ModuleInfo,
    wasm: &[u8],
    shape: &VMShape,
    index: FuncIndex,
) -> Result<FunctionListing, CompileError> {
    let defined = index
        .as_u32()
        .checked_sub(module.num_imported_functions)
        .and_then(|defined| module.function_bodies.get(defined as usize))
        .ok_or_else(|| {
            CompileError::invalid(alloc::format!(
                "function {index} is not a defined function of the module"
            ))
        })?;
    let target = target_isa_with(isa, features)?;
    let env = ModuleEnvironment::new(module, shape, &*target, options)?;
    let mut compiler = Compiler::new(&*target);
    let body = wasm.get(defined.clone()).ok_or_else(|| {
        CompileError::invalid(alloc::format!(
            "body of function {index} lies outside the module binary"
        ))
    })?;
    let func = func_translator::translate_function(
        &env,
        index,
        body,
        defined.start,
        &mut compiler.builder_context,
    )?;
    let ir = func.display().to_string();
    let artifact = compiler.compile(func, Some(index))?;
    Ok(FunctionListing {
        index,
        ir,
        calls: artifact
            .relocations
            .iter()
            .map(|relocation| (relocation.offset, relocation.target))
            .collect(),
        code: artifact.code,
        traps: artifact.traps,
        srclocs: artifact.srclocs,
    })
}
