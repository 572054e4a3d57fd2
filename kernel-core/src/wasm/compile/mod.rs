//! The WebAssembly compiler: translates a module's functions into Cranelift IR and native
//! code for one ISA, with the trampolines of [`crate::wasm::abi`].
//!
//! [`compile_module`] produces one position-independent blob: every defined function, then
//! one array shim and one wasm-to-host trampoline per distinct function type, then the
//! entry trampoline, each 16-byte aligned, with the calls between functions already
//! patched. Alongside it come the trap table (code offset → [`Trap`]) and, per function,
//! the map from code offsets back to WebAssembly byte offsets.
//!
//! Supported: all of WebAssembly 1.0; from 2.0 the sign-extension operators, non-trapping
//! float-to-int conversions, multi-value blocks and functions, typed `select`, `funcref` /
//! `externref` values, `ref.null`, `ref.is_null`, `ref.func`, `table.get`, `table.set` and
//! `table.size`; bulk memory (`memory.copy`/`fill`/`init`, `data.drop`) and the table
//! operations `table.grow`/`fill`/`copy`/`init` and `elem.drop`, as calls to builtins;
//! fixed-width SIMD (`v128` and all its operators); multiple memories and tables.
//! Anything else (relaxed SIMD, tail calls, exceptions, atomics, GC, 64-bit memories and
//! tables, custom page sizes) is a [`CompileError::Unsupported`] naming the operator or
//! feature.
//!
//! The compiler reads only [`crate::wasm::env`] (module information, VMContext layout),
//! [`crate::wasm::vm`] (field offsets of the JIT-visible structures) and
//! [`crate::wasm::abi`]; the runtime never sees Cranelift.
//!
//! Layout of the translator:
//!
//! | module | what |
//! | --- | --- |
//! | `isa` | the Cranelift target for an [`Isa`] |
//! | `traps` | [`Trap`] ↔ Cranelift trap codes |
//! | `environ` | module-wide facts: signatures, where memories, globals, tables live |
//! | `func_translator` | one function body: locals, the operator loop, dispatch |
//! | `control` | blocks, loops, `if`, branches, `return`, dead code |
//! | `variables` | locals, globals, `drop`, `select` |
//! | `numeric` | integer and float arithmetic, comparisons, conversions |
//! | `memory` | loads, stores, `memory.size`, `memory.grow` |
//! | `calls` | `call`, `call_indirect` |
//! | `references` | `ref.*`, `table.get`, `table.set`, `table.size` |
//! | `bulk` | bulk memory and table operations, calls to the runtime's builtins |
//! | `simd` | the fixed-width SIMD operators on `v128` |
//! | `trampolines` | array shims, wasm-to-host trampolines, the entry trampoline |
//! | `job` | one module's compilation, shared by the CPUs that work on it |
//! | `link` | laying the blob out and patching calls |

mod bulk;
mod calls;
mod control;
mod environ;
mod epoch;
mod func_translator;
mod inspect;
mod isa;
mod job;
mod link;
mod memory;
mod numeric;
mod references;
mod simd;
pub mod stack_cost;
mod trampolines;
mod traps;
mod variables;

#[cfg(test)]
mod tests;

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use cranelift_codegen::Context;
use cranelift_codegen::control::ControlPlane;
use cranelift_codegen::ir::{self, ExternalName, UserFuncName};
use cranelift_codegen::isa::TargetIsa;
use cranelift_codegen::{CodegenError, FinalizedRelocTarget};
use cranelift_frontend::FunctionBuilderContext;

pub use self::inspect::{FunctionListing, inspect_function};
pub use self::isa::{has_simd_unit, target_isa, target_isa_with};
pub use self::job::{CompileInputs, CompileJob, TrampolineCache};
use self::link::{Artifact, Relocation};
pub use self::traps::{trap_code, trap_from_code};
use crate::hal::{Isa, IsaFeatures};
use crate::wasm::env::{FuncType, ModuleInfo, VMShape};
use crate::wasm::indices::FuncIndex;
use crate::wasm::trap::Trap;

/// A compiled module: native code for every defined function and for the trampolines of
/// [`crate::wasm::abi`], with the tables the runtime needs to run it and to explain traps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledModule {
    /// All functions and trampolines, calls between them already patched: a
    /// position-independent blob to copy into executable memory as is.
    pub code: Vec<u8>,
    /// Each defined function, by `DefinedFuncIndex`.
    pub functions: Vec<CompiledFunction>,
    /// Every instruction that may trap, as (offset in `code`, trap), sorted by offset.
    pub traps: Vec<(u32, Trap)>,
    /// The array shim of each function type, by `TypeIndex`: offset in `code`.
    pub array_shims: Vec<u32>,
    /// The wasm-to-host trampoline of each function type, by `TypeIndex`: offset in
    /// `code`.
    pub wasm_to_host: Vec<u32>,
    /// The offset in `code` of the entry trampoline.
    pub entry_trampoline: u32,
}

/// Where one defined function lies in [`CompiledModule::code`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledFunction {
    /// Offset of the first instruction in the blob (16-byte aligned).
    pub offset: u32,
    /// Length of the function's code in bytes.
    pub len: u32,
    /// (offset in the blob, WebAssembly byte offset in the module binary) for each run of
    /// instructions generated from one operator, sorted by code offset. A code offset maps
    /// to the last entry at or before it.
    pub srclocs: Vec<(u32, u32)>,
}

impl CompiledModule {
    /// The function containing blob offset `offset`, with its `DefinedFuncIndex`.
    #[must_use]
    pub fn function_at(&self, offset: u32) -> Option<(usize, &CompiledFunction)> {
        let after = self.functions.partition_point(|f| f.offset <= offset);
        let index = after.checked_sub(1)?;
        let function = &self.functions[index];
        (offset - function.offset < function.len).then_some((index, function))
    }

    /// The trap recorded at blob offset `offset`, if that instruction may trap.
    #[must_use]
    pub fn trap_at(&self, offset: u32) -> Option<Trap> {
        let index = self
            .traps
            .binary_search_by_key(&offset, |&(at, _)| at)
            .ok()?;
        Some(self.traps[index].1)
    }

    /// The WebAssembly byte offset of the operator that generated the code at blob offset
    /// `offset`, if it lies in a function.
    #[must_use]
    pub fn wasm_offset_at(&self, offset: u32) -> Option<u32> {
        let (_, function) = self.function_at(offset)?;
        let after = function.srclocs.partition_point(|&(at, _)| at <= offset);
        Some(function.srclocs.get(after.checked_sub(1)?)?.1)
    }
}

/// Why a module could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompileError {
    /// The module uses an operator, type or feature the compiler does not implement yet.
    Unsupported(String),
    /// The module information, the binary or the layout contradict each other (a module
    /// that did not come out of validation and [`crate::wasm::env::translate`]).
    Invalid(String),
    /// No Cranelift backend for the ISA in this build, or its settings were refused.
    Isa(String),
    /// Cranelift failed to compile a function.
    Codegen(String),
    /// The generated code needs something the blob cannot provide (a libcall, an
    /// unknown relocation, a trap code with no [`Trap`]), or is too large.
    Link(String),
}

impl CompileError {
    /// [`CompileError::Unsupported`] for an operator.
    fn unsupported_operator(op: &wasmparser::Operator<'_>) -> Self {
        Self::Unsupported(alloc::format!("operator {}", operator_name(op)))
    }

    /// [`CompileError::Invalid`] with `what`.
    fn invalid(what: impl Into<String>) -> Self {
        Self::Invalid(what.into())
    }
}

/// The name of an operator as wasmparser spells its variant (`I32Add`, `V128Load`).
fn operator_name(op: &wasmparser::Operator<'_>) -> String {
    let debug = alloc::format!("{op:?}");
    let end = debug
        .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .unwrap_or(debug.len());
    debug[..end].to_string()
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unsupported(what) => write!(f, "unsupported by the compiler: {what}"),
            Self::Invalid(what) => write!(f, "inconsistent module: {what}"),
            Self::Isa(what) => write!(f, "target ISA: {what}"),
            Self::Codegen(what) => write!(f, "code generation failed: {what}"),
            Self::Link(what) => write!(f, "linking compiled code failed: {what}"),
        }
    }
}

impl core::error::Error for CompileError {}

impl From<wasmparser::BinaryReaderError> for CompileError {
    fn from(error: wasmparser::BinaryReaderError) -> Self {
        Self::Invalid(alloc::format!(
            "{} (at offset {:#x})",
            error.message(),
            error.offset()
        ))
    }
}

/// How generated code is built, beyond the target ISA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompileOptions {
    /// Emit an epoch check at every function entry and loop header (see `epoch`), so that
    /// the scheduler can preempt the code. On by default; off only to measure their cost.
    pub epoch_checks: bool,
    /// Make every epoch check also count itself: it adds one to the counter behind the
    /// VMContext's `epoch_ptr` before comparing (see `epoch`). Only deterministic mode
    /// sets it (`sched::deterministic`), where one host thread runs every process and the
    /// count of check points passed is the logical clock; normal mode's code is unchanged.
    pub count_epoch_checks: bool,
}

impl Default for CompileOptions {
    fn default() -> Self {
        Self {
            epoch_checks: true,
            count_epoch_checks: false,
        }
    }
}

/// Compiles every defined function of `module` and the trampolines of its types for `isa`.
///
/// `module` must have been made by [`crate::wasm::env::translate`] from `wasm` (so the
/// module is valid), and `shape` by [`VMShape::for_module`] from `module`.
///
/// # Errors
/// [`CompileError::Unsupported`] for operators and types outside the implemented set (see
/// the [module documentation](self)), [`CompileError::Isa`] when this build has no
/// backend for `isa`, [`CompileError::Invalid`] when the inputs disagree, and
/// [`CompileError::Codegen`] / [`CompileError::Link`] when Cranelift's output cannot be
/// used: a module [`crate::wasm::env::translate`] accepts gets a result or an error, never
/// a panic.
pub fn compile_module(
    isa: Isa,
    options: CompileOptions,
    module: &ModuleInfo,
    wasm: &[u8],
    shape: &VMShape,
) -> Result<CompiledModule, CompileError> {
    compile_module_for(
        isa,
        IsaFeatures::WITH_128_BIT_VECTORS,
        options,
        module,
        wasm,
        shape,
    )
}

/// [`compile_module`] for CPUs with `features` (what the HAL reports): the ISA extensions
/// follow them ([`target_isa_with`]). The caller must not hand it a module using
/// `v128` when `features` has no vector unit ([`has_simd_unit`]).
///
/// # Errors
/// As [`compile_module`].
pub fn compile_module_for(
    isa: Isa,
    features: IsaFeatures,
    options: CompileOptions,
    module: &ModuleInfo,
    wasm: &[u8],
    shape: &VMShape,
) -> Result<CompiledModule, CompileError> {
    let inputs = CompileInputs {
        module: module.clone(),
        shape: shape.clone(),
        wasm: wasm.into(),
    };
    let job = CompileJob::new(isa, features, options, inputs)?;
    job.work();
    job.finish(None).map(|(compiled, _)| compiled)
}

/// A sort key identifying a function type: its parameter and result types.
fn type_key(ty: &FuncType) -> Vec<u8> {
    use crate::wasm::env::{RefType, ValType};
    let code = |v: &ValType| match v {
        ValType::I32 => 0,
        ValType::I64 => 1,
        ValType::F32 => 2,
        ValType::F64 => 3,
        ValType::V128 => 4,
        ValType::Ref(RefType::Func) => 5,
        ValType::Ref(RefType::Extern) => 6,
        ValType::Ref(RefType::Exn) => 7,
    };
    let mut key = Vec::with_capacity(ty.params.len() + ty.results.len() + 1);
    key.extend(ty.params.iter().map(code));
    key.push(0xff);
    key.extend(ty.results.iter().map(code));
    key
}

fn too_many() -> CompileError {
    CompileError::Link("more functions than a u32 counts".into())
}

/// Cranelift state reused across the functions of one module. After an error the builder
/// context may be left mid-function, so a `Compiler` is dropped at the first error.
struct Compiler<'a> {
    isa: &'a dyn TargetIsa,
    context: Context,
    builder_context: FunctionBuilderContext,
}

impl<'a> Compiler<'a> {
    fn new(isa: &'a dyn TargetIsa) -> Self {
        Self {
            isa,
            context: Context::new(),
            builder_context: FunctionBuilderContext::new(),
        }
    }

    /// Compiles one function to machine code, keeping what linking needs.
    fn compile(
        &mut self,
        func: ir::Function,
        wasm_function: Option<FuncIndex>,
    ) -> Result<Artifact, CompileError> {
        self.compile_for(self.isa, func, wasm_function)
    }

    /// [`Compiler::compile`] for `isa` (the same ISA with other settings, see
    /// `job::LARGE_FUNCTION`).
    fn compile_for(
        &mut self,
        isa: &dyn TargetIsa,
        mut func: ir::Function,
        wasm_function: Option<FuncIndex>,
    ) -> Result<Artifact, CompileError> {
        // Named only in errors: formatting it for every function costs more than some
        // small functions take to compile (a module may have a million of them).
        let what = || match wasm_function {
            Some(index) => alloc::format!("function {index}"),
            None => "a trampoline".to_string(),
        };
        if let Some(index) = wasm_function {
            func.name = UserFuncName::user(0, index.as_u32());
        }
        self.context.clear();
        self.context.func = func;
        if let Err(error) = self.context.compile(isa, &mut ControlPlane::default()) {
            let message = match &error.inner {
                CodegenError::Verifier(errors) => {
                    cranelift_codegen::print_errors::pretty_verifier_error(
                        error.func,
                        None,
                        errors.clone(),
                    )
                }
                other => other.to_string(),
            };
            return Err(CompileError::Codegen(alloc::format!(
                "{}: {message}",
                what()
            )));
        }
        let compiled = self
            .context
            .compiled_code()
            .ok_or_else(|| CompileError::Codegen(alloc::format!("{}: no code", what())))?;
        let buffer = &compiled.buffer;
        let mut relocations = Vec::with_capacity(buffer.relocs().len());
        for reloc in buffer.relocs() {
            let target = match &reloc.target {
                FinalizedRelocTarget::ExternalName(ExternalName::User(name)) => {
                    let name = &self.context.func.params.user_named_funcs()[*name];
                    (name.namespace == 0).then_some(name.index)
                }
                _ => None,
            };
            let Some(target) = target else {
                return Err(CompileError::Link(alloc::format!(
                    "{}: relocation {:?} to {:?} cannot be resolved in the blob",
                    what(),
                    reloc.kind,
                    reloc.target
                )));
            };
            relocations.push(Relocation {
                offset: reloc.offset,
                kind: reloc.kind,
                target: FuncIndex::from_u32(target),
                addend: reloc.addend,
            });
        }
        let mut traps = Vec::with_capacity(buffer.traps().len());
        for trap in buffer.traps() {
            let Some(kind) = trap_from_code(trap.code) else {
                return Err(CompileError::Link(alloc::format!(
                    "{}: trap code {} has no WebAssembly trap",
                    what(),
                    trap.code
                )));
            };
            traps.push((trap.offset, kind));
        }
        let mut srclocs: Vec<(u32, u32)> = Vec::new();
        for loc in buffer.get_srclocs_sorted() {
            if loc.loc.is_default() || loc.start == loc.end {
                continue;
            }
            if srclocs
                .last()
                .is_some_and(|&(_, wasm)| wasm == loc.loc.bits())
            {
                continue;
            }
            srclocs.push((loc.start, loc.loc.bits()));
        }
        Ok(Artifact {
            code: buffer.data().to_vec(),
            relocations,
            traps,
            srclocs,
        })
    }
}
