//! One module's compilation as a job several CPUs can share.
//!
//! A [`CompileJob`] owns what every function's compilation reads (the module, its layout,
//! its binary, the Cranelift target) and hands out the defined functions one at a time:
//! each CPU that calls [`CompileJob::work`] takes the next function nobody has taken,
//! compiles it with a Cranelift context of its own, and keeps the result under the
//! function's index. [`CompileJob::finish`] then compiles the trampolines, lays the
//! functions out in index order and patches the calls.
//!
//! A function's code depends only on its body, the module and the target, never on which
//! CPU compiled it or when, so the blob is byte for byte the one a single CPU makes
//! (`parallel_compile_is_identical_to_sequential` checks it). Errors are deterministic
//! too: once function `i` fails, functions after `i` are no longer started but every
//! function before it is still compiled, and [`CompileJob::finish`] reports the failure
//! of the lowest index, the one a sequential compile stops at.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};

use cranelift_codegen::isa::OwnedTargetIsa;

use super::environ::ModuleEnvironment;
use super::isa::{Regalloc, target_isa_for};
use super::link::{self, Artifact};
use super::{
    CompileError, CompileOptions, CompiledModule, Compiler, func_translator, too_many, trampolines,
    type_key,
};
use crate::hal::{Isa, IsaFeatures};
use crate::sync::SpinLock;
use crate::wasm::env::{ModuleInfo, VMShape};
use crate::wasm::indices::{FuncIndex, TypeIndex};

/// Function bodies of at least this many bytes are compiled with the single-pass register
/// allocator ([`Regalloc::SinglePass`]): the backtracking one's time grows faster than
/// linearly with the values live at once, which only very large functions reach. The
/// choice depends on the body alone, so the code is still the same on every CPU.
pub const LARGE_FUNCTION: usize = 64 * 1024;

/// The trampolines an engine has compiled, kept for the next modules: every module whose
/// type has the same parameters and results gets the same array shim and wasm-to-host
/// trampoline, and every module the same entry trampoline, so that loading a module
/// compiles only its own functions. The cached code (position-independent, without
/// relocations) is copied into each module's blob, which stays self-contained and byte
/// for byte what it would be without the cache.
#[derive(Default)]
pub struct TrampolineCache {
    /// The target and options the cached code was made for (the first module's).
    target: SpinLock<Option<(Isa, IsaFeatures, CompileOptions)>>,
    /// (array shim, wasm-to-host trampoline) by function type (`type_key`).
    types: SpinLock<BTreeMap<Vec<u8>, (Artifact, Artifact)>>,
    /// The entry trampoline.
    entry: SpinLock<Option<Artifact>>,
}

impl TrampolineCache {
    /// An empty cache.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the cache holds code for `key`'s target and options: it takes those of
    /// the first module compiled with it and serves no other.
    fn serves(&self, key: (Isa, IsaFeatures, CompileOptions)) -> bool {
        *self.target.lock().get_or_insert(key) == key
    }

    /// How many function types have their trampolines in the cache.
    #[must_use]
    pub fn types(&self) -> usize {
        self.types.lock().len()
    }
}

impl core::fmt::Debug for TrampolineCache {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TrampolineCache")
            .field("types", &self.types())
            .finish_non_exhaustive()
    }
}

/// The inputs a [`CompileJob`] compiles, given back by [`CompileJob::finish`].
#[derive(Debug)]
pub struct CompileInputs {
    /// The module, as [`crate::wasm::env::translate`] made it from `wasm`.
    pub module: ModuleInfo,
    /// Its VMContext layout, as [`VMShape::for_module`] made it.
    pub shape: VMShape,
    /// The module binary.
    pub wasm: Box<[u8]>,
}

/// A module's compilation, shared by the CPUs that work on it (see the
/// [module documentation](self)).
pub struct CompileJob {
    inputs: CompileInputs,
    target: OwnedTargetIsa,
    /// The target for functions of at least [`LARGE_FUNCTION`] bytes.
    large_target: OwnedTargetIsa,
    isa: Isa,
    features: IsaFeatures,
    options: CompileOptions,
    /// The next defined function nobody has taken.
    next: AtomicUsize,
    /// The lowest defined index whose compilation failed (`usize::MAX`: none yet).
    first_failure: AtomicUsize,
    /// Compiled functions (or their errors) by defined index, as workers hand them in.
    done: SpinLock<Vec<(usize, Result<Artifact, CompileError>)>>,
}

impl CompileJob {
    /// A job compiling `inputs` for `isa` on CPUs with `features`.
    ///
    /// # Errors
    /// [`CompileError::Isa`] when this build has no backend for `isa`,
    /// [`CompileError::Invalid`] when the inputs disagree (the layout is not the module's,
    /// or a body lies outside the binary), and [`CompileError::Unsupported`] for memories
    /// the compiler does not implement.
    pub fn new(
        isa: Isa,
        features: IsaFeatures,
        options: CompileOptions,
        inputs: CompileInputs,
    ) -> Result<Self, CompileError> {
        let target = super::target_isa_with(isa, features)?;
        let large_target = target_isa_for(isa, features, Regalloc::SinglePass)?;
        // Checks the module against its layout once, for every worker.
        ModuleEnvironment::new(&inputs.module, &inputs.shape, &*target, options)?;
        let defined = inputs.module.num_defined_functions() as usize;
        if inputs.module.function_bodies.len() != defined {
            return Err(CompileError::invalid(alloc::format!(
                "{} function bodies for {defined} defined functions",
                inputs.module.function_bodies.len()
            )));
        }
        if let Some(range) = inputs
            .module
            .function_bodies
            .iter()
            .find(|range| inputs.wasm.get((*range).clone()).is_none())
        {
            return Err(CompileError::invalid(alloc::format!(
                "a function body ({range:?}) lies outside the module binary"
            )));
        }
        u32::try_from(defined)
            .ok()
            .and_then(|defined| defined.checked_add(inputs.module.num_imported_functions))
            .ok_or_else(too_many)?;
        Ok(Self {
            inputs,
            target,
            large_target,
            isa,
            features,
            options,
            next: AtomicUsize::new(0),
            first_failure: AtomicUsize::new(usize::MAX),
            done: SpinLock::new(Vec::new()),
        })
    }

    /// How many defined functions the module has: the pieces of work.
    #[must_use]
    pub fn functions(&self) -> usize {
        self.inputs.module.function_bodies.len()
    }

    /// The bytes of all function bodies together.
    #[must_use]
    pub fn body_bytes(&self) -> usize {
        self.inputs
            .module
            .function_bodies
            .iter()
            .map(core::ops::Range::len)
            .sum()
    }

    /// Compiles functions nobody has taken until none is left (or one before them
    /// failed). Any number of CPUs may call it at once; each result is kept for
    /// [`CompileJob::finish`].
    pub fn work(&self) {
        let module = &self.inputs.module;
        // Checked in `new`: the environment builds.
        let Ok(env) =
            ModuleEnvironment::new(module, &self.inputs.shape, &*self.target, self.options)
        else {
            return;
        };
        let mut compiler = Compiler::new(&*self.target);
        let mut finished = Vec::new();
        loop {
            let index = self.next.fetch_add(1, Ordering::Relaxed);
            if index >= self.functions() || index > self.first_failure.load(Ordering::Relaxed) {
                break;
            }
            let result = self.compile_function(&env, &mut compiler, index);
            if result.is_err() {
                self.first_failure.fetch_min(index, Ordering::Relaxed);
                // The builder context may be left mid-function: start afresh.
                compiler = Compiler::new(&*self.target);
            }
            finished.push((index, result));
        }
        if !finished.is_empty() {
            self.done.lock().append(&mut finished);
        }
    }

    /// Compiles defined function `index`.
    fn compile_function(
        &self,
        env: &ModuleEnvironment<'_>,
        compiler: &mut Compiler<'_>,
        index: usize,
    ) -> Result<Artifact, CompileError> {
        let module = &self.inputs.module;
        // Both fit in u32 with their sum (checked in `new`).
        let func_index = FuncIndex::from_u32(module.num_imported_functions + index as u32);
        let range = module.function_bodies[index].clone();
        let body = self
            .inputs
            .wasm
            .get(range.clone())
            .ok_or_else(|| CompileError::invalid("a function body lies outside the binary"))?;
        let func = func_translator::translate_function(
            env,
            func_index,
            body,
            range.start,
            &mut compiler.builder_context,
        )?;
        let target = if range.len() >= LARGE_FUNCTION {
            &*self.large_target
        } else {
            &*self.target
        };
        compiler.compile_for(target, func, Some(func_index))
    }

    /// Compiles what [`CompileJob::work`] left (everything, if nobody worked), then the
    /// trampolines, and links the blob; gives the inputs back.
    ///
    /// # Errors
    /// The error of the lowest-numbered function that failed, or of the trampolines or
    /// the link (see [`super::compile_module`]).
    ///
    /// The trampolines of function types `trampolines` has already seen (for the same
    /// target and options) are taken from it, the others compiled and added to it.
    pub fn finish(
        self,
        trampolines: Option<&TrampolineCache>,
    ) -> Result<(CompiledModule, CompileInputs), CompileError> {
        // Whatever no worker took (or a worker that stopped early left).
        self.work();
        let mut done = core::mem::take(&mut *self.done.lock());
        done.sort_unstable_by_key(|(index, _)| *index);
        let mut functions = Vec::with_capacity(done.len());
        for (expected, (index, result)) in done.into_iter().enumerate() {
            if index != expected {
                return Err(CompileError::Codegen(alloc::format!(
                    "defined function {expected} was not compiled"
                )));
            }
            functions.push(result?);
        }
        if functions.len() != self.functions() {
            return Err(CompileError::Codegen(alloc::format!(
                "{} of {} functions compiled",
                functions.len(),
                self.functions()
            )));
        }

        let module = &self.inputs.module;
        let env = ModuleEnvironment::new(module, &self.inputs.shape, &*self.target, self.options)?;
        let mut compiler = Compiler::new(&*self.target);
        let key = (self.isa, self.features, self.options);
        let cache = trampolines.filter(|cache| cache.serves(key));
        // One shim and one host trampoline per distinct function type.
        let mut distinct: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
        let mut type_slot = Vec::with_capacity(module.types.len());
        let mut shims = Vec::new();
        let mut host_trampolines = Vec::new();
        for (index, ty) in module.types.iter().enumerate() {
            let key = type_key(ty);
            let next = shims.len();
            let slot = *distinct.entry(key.clone()).or_insert(next);
            if slot == next {
                let cached = cache.and_then(|cache| cache.types.lock().get(&key).cloned());
                let (shim, host) = match cached {
                    Some(pair) => pair,
                    None => {
                        let type_index =
                            TypeIndex::from_u32(u32::try_from(index).map_err(|_| too_many())?);
                        let shim = trampolines::array_shim(
                            &env,
                            type_index,
                            &mut compiler.builder_context,
                        )?;
                        let shim = compiler.compile(shim, None)?;
                        let host = trampolines::wasm_to_host(
                            &env,
                            type_index,
                            &mut compiler.builder_context,
                        )?;
                        let host = compiler.compile(host, None)?;
                        if let Some(cache) = cache {
                            cache.types.lock().insert(key, (shim.clone(), host.clone()));
                        }
                        (shim, host)
                    }
                };
                shims.push(shim);
                host_trampolines.push(host);
            }
            type_slot.push(slot);
        }
        let cached = cache.and_then(|cache| cache.entry.lock().clone());
        let entry = match cached {
            Some(entry) => entry,
            None => {
                let entry =
                    trampolines::entry_trampoline(&*self.target, &mut compiler.builder_context)?;
                let entry = compiler.compile(entry, None)?;
                if let Some(cache) = cache {
                    *cache.entry.lock() = Some(entry.clone());
                }
                entry
            }
        };
        let compiled = link::link(
            functions,
            shims,
            host_trampolines,
            &type_slot,
            entry,
            module,
        )?;
        drop(env);
        drop(compiler);
        Ok((compiled, self.inputs))
    }
}
