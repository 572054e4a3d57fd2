//! The engine (the platform and its configuration) and modules compiled into executable
//! memory.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use core::fmt;
use core::marker::PhantomData;
use core::ptr::NonNull;

use super::code::{CodeInfo, FunctionCode};
use super::trap_handler::handle_trap;
use crate::hal::{Cpus, MemoryError, Protection, Traps, VirtualMemory};
use crate::wasm::compile::{
    CompileError, CompileInputs, CompileJob, CompileOptions, TrampolineCache, has_simd_unit,
};
use crate::wasm::env::{LayoutError, ModuleError, ModuleInfo, VMShape, WasmFeatures, translate};

/// The platform services the WebAssembly runtime needs.
pub trait RuntimeHal: VirtualMemory + Traps + Cpus {}

impl<H: VirtualMemory + Traps + Cpus> RuntimeHal for H {}

/// The other CPUs a module's compilation may use. The kernel implements it with its
/// scheduler (one compile task per CPU, see `crate::process::workers`), so that compiling
/// works the same on every platform; without it a module compiles on the calling CPU.
pub trait CompileWorkers {
    /// How many CPUs [`CompileWorkers::run_everywhere`] may run `work` on at once, the
    /// calling one included.
    fn cpus(&self) -> usize;

    /// Calls `work` on the calling CPU and, at the same time, on as many other CPUs as can
    /// help, and returns once every one of those calls has returned and dropped its `work`.
    fn run_everywhere(&self, work: Arc<dyn Fn() + Send + Sync>);
}

/// Modules smaller than this (bytes of function bodies) compile on the calling CPU alone:
/// starting helpers would cost more than they save.
const PARALLEL_MIN_BODY_BYTES: usize = 16 * 1024;

/// Modules with fewer defined functions than this compile on the calling CPU alone.
const PARALLEL_MIN_FUNCTIONS: usize = 16;

/// Settings of an engine.
#[derive(Debug, Clone, Copy)]
pub struct EngineConfig {
    /// How many bytes of stack WebAssembly may use below the point where the host calls
    /// into it, when the store has no budget of its own (`Store::set_stack_budget`);
    /// half of it is counted in frame costs, past which calls trap with `call stack
    /// exhausted` (see `compile::stack_cost`).
    pub wasm_stack_size: usize,
    /// How modules are compiled (epoch checks on by default).
    pub compile: CompileOptions,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            wasm_stack_size: 1024 * 1024,
            compile: CompileOptions::default(),
        }
    }
}

/// The WebAssembly engine of one platform: compiles modules for the platform's ISA and
/// owns the trap handler.
#[derive(Debug)]
pub struct Engine<H: RuntimeHal> {
    hal: H,
    config: EngineConfig,
    /// The trampolines compiled so far, for every module of this engine.
    trampolines: TrampolineCache,
}

impl<H: RuntimeHal> Engine<H> {
    /// Makes an engine and installs the runtime's trap handler in the HAL.
    pub fn new(hal: H, config: EngineConfig) -> Self {
        hal.install_trap_handler(handle_trap);
        Self {
            hal,
            config,
            trampolines: TrampolineCache::new(),
        }
    }

    /// The platform.
    pub const fn hal(&self) -> &H {
        &self.hal
    }

    /// The engine's settings.
    pub const fn config(&self) -> &EngineConfig {
        &self.config
    }
}

/// Why a module could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    /// Malformed, invalid or unsupported at translation.
    Module(ModuleError),
    /// The VMContext would be too large.
    Layout(LayoutError),
    /// The compiler refused a function.
    Compile(CompileError),
    /// Executable memory could not be had.
    Memory(MemoryError),
    /// Compiling the module would take more memory than the platform has free.
    NotEnoughMemory {
        /// The module's compile memory estimate, in bytes.
        needed: u64,
        /// The memory free, in bytes.
        available: u64,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Module(error) => error.fmt(f),
            Self::Layout(error) => write!(f, "unsupported module: {error}"),
            Self::Compile(error) => write!(f, "unsupported module: {error}"),
            Self::Memory(error) => write!(f, "cannot load code: {error}"),
            Self::NotEnoughMemory { needed, available } => write!(
                f,
                "not enough memory to compile: it may need {} MiB, {} MiB are free",
                needed.div_ceil(1 << 20),
                available >> 20
            ),
        }
    }
}

/// What instances share of a module: its description, layout and published code.
#[derive(Debug)]
pub(crate) struct ModuleCode {
    pub(crate) info: ModuleInfo,
    pub(crate) shape: VMShape,
    pub(crate) code: Arc<CodeInfo>,
    /// Address of each type's array shim.
    pub(crate) array_shims: Box<[usize]>,
    /// Address of each type's wasm-to-host trampoline.
    pub(crate) wasm_to_host: Box<[usize]>,
    /// Address of the entry trampoline.
    pub(crate) entry: usize,
    /// The module binary (data segments are read from it).
    pub(crate) wasm: Box<[u8]>,
    region: (NonNull<u8>, usize),
    release: unsafe fn(*const (), NonNull<u8>, usize),
    hal: *const (),
}

// Safety: the code region is immutable after publication; the raw pointers are the HAL
// (which outlives every module, see `Module::new`) and the region, both only used to
// release the region once, in `drop`.
unsafe impl Send for ModuleCode {}
// Safety: as above: shared access only reads immutable data.
unsafe impl Sync for ModuleCode {}

impl Drop for ModuleCode {
    fn drop(&mut self) {
        super::observer::notify_released(&self.code);
        // Safety: `release` was made for the HAL type `hal` points at, the HAL outlives
        // the module (the engine borrow in `Module`), and the last user of the code is
        // gone (this is the last `Arc`).
        unsafe { (self.release)(self.hal, self.region.0, self.region.1) }
    }
}

/// Releases a code region through the HAL of type `H` behind `hal`.
///
/// # Safety
/// `hal` must point at a live `H`, and the region must be a live reservation of it that
/// nothing uses any more.
unsafe fn release_region<H: VirtualMemory>(hal: *const (), base: NonNull<u8>, len: usize) {
    // Safety: the caller guarantees both conditions.
    unsafe {
        let _ = (*hal.cast::<H>()).release(base, len);
    }
}

/// A module compiled into executable memory, ready to be instantiated in stores of the
/// engine it was loaded with.
#[derive(Debug)]
pub struct Module<'e, H: RuntimeHal> {
    pub(crate) inner: Arc<ModuleCode>,
    /// The code was published through this engine's HAL, which must outlive it.
    engine: PhantomData<&'e Engine<H>>,
}

impl<H: RuntimeHal> Clone for Module<'_, H> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            engine: PhantomData,
        }
    }
}

impl<'e, H: RuntimeHal> Module<'e, H> {
    /// Validates `wasm` against `features`, compiles it for the platform's ISA on the
    /// calling CPU and publishes the code.
    ///
    /// # Errors
    /// [`LoadError`] for invalid or unsupported modules and when memory runs out.
    pub fn new(
        engine: &'e Engine<H>,
        wasm: &[u8],
        features: WasmFeatures,
    ) -> Result<Self, LoadError> {
        Self::new_with(engine, wasm, features, None)
    }

    /// [`Module::new`], compiling the functions on every CPU `workers` offers as well as
    /// on the calling one (when the module is large enough to gain from it). The code is
    /// identical either way.
    ///
    /// # Errors
    /// As [`Module::new`].
    pub fn new_with(
        engine: &'e Engine<H>,
        wasm: &[u8],
        features: WasmFeatures,
        workers: Option<&dyn CompileWorkers>,
    ) -> Result<Self, LoadError> {
        let started =
            tracing::enabled!(target: "kernel_core::wasm::compile", tracing::Level::DEBUG)
                .then(crate::log::clock_ns);
        let info = translate(wasm, features).map_err(LoadError::Module)?;
        if let Some(available) = engine.hal.available_memory()
            && info.compile_memory > available as u64
        {
            return Err(LoadError::NotEnoughMemory {
                needed: info.compile_memory,
                available: available as u64,
            });
        }
        let isa = engine.hal.isa();
        let isa_features = engine.hal.isa_features();
        if !has_simd_unit(isa_features) && uses_simd(wasm, features) {
            return Err(LoadError::Compile(CompileError::Unsupported(
                alloc::format!(
                    "SIMD: the module uses v128, and this machine's {isa} CPUs have no 128-bit \
                 vector unit{}",
                    match isa {
                        crate::hal::Isa::Riscv64 => " (the V extension)",
                        crate::hal::Isa::X86_64 => " (SSE4.2)",
                    }
                ),
            )));
        }
        let shape = VMShape::for_module(&info).map_err(LoadError::Layout)?;
        let job_memory = info.compile_memory;
        let inputs = CompileInputs {
            module: info,
            shape,
            wasm: wasm.into(),
        };
        let job = CompileJob::new(isa, isa_features, engine.config.compile, inputs)
            .map_err(LoadError::Compile)?;
        // Each CPU compiling at once may need the memory of the largest function: with
        // too little free for all of them, the module compiles on one CPU.
        let memory_for = |cpus: usize| {
            engine
                .hal
                .available_memory()
                .is_none_or(|available| job_memory.saturating_mul(cpus as u64) <= available as u64)
        };
        let job = match workers {
            Some(workers)
                if workers.cpus() > 1
                    && job.functions() >= PARALLEL_MIN_FUNCTIONS
                    && job.body_bytes() >= PARALLEL_MIN_BODY_BYTES
                    && memory_for(workers.cpus()) =>
            {
                let job = Arc::new(job);
                let shared = Arc::clone(&job);
                workers.run_everywhere(Arc::new(move || shared.work()));
                // Every helper has dropped its reference (`run_everywhere`'s promise);
                // one that had not would only cost the parallel part: `finish` compiles
                // what is left.
                Arc::try_unwrap(job).map_err(|_| {
                    LoadError::Compile(CompileError::Codegen(
                        "a compile helper kept the module".into(),
                    ))
                })?
            }
            _ => job,
        };
        let (compiled, inputs) = job
            .finish(Some(&engine.trampolines))
            .map_err(LoadError::Compile)?;
        let CompileInputs {
            module: info,
            shape,
            wasm,
        } = inputs;
        let hal = &engine.hal;
        let page = hal.page_size();
        let len = compiled.code.len().max(1).div_ceil(page) * page;
        let base = hal.reserve(len).map_err(LoadError::Memory)?;
        // Safety: the whole fresh reservation is committed and written before anything
        // can run it; on failure it is released unused.
        let published = unsafe {
            hal.commit(base, len, Protection::ReadWrite).and_then(|()| {
                core::ptr::copy_nonoverlapping(
                    compiled.code.as_ptr(),
                    base.as_ptr(),
                    compiled.code.len(),
                );
                hal.publish_code(base, len)
            })
        };
        if let Err(error) = published {
            // Safety: the reservation made above, never run.
            let _ = unsafe { hal.release(base, len) };
            return Err(LoadError::Memory(error));
        }
        let start = base.as_ptr() as usize;
        let functions = compiled
            .functions
            .into_iter()
            .map(|function| FunctionCode {
                offset: function.offset,
                len: function.len,
                srclocs: function.srclocs.into_boxed_slice(),
            })
            .collect();
        let code = Arc::new(CodeInfo {
            start,
            len: compiled.code.len(),
            module_name: info.name.clone(),
            functions,
            num_imported_functions: info.num_imported_functions,
            traps: compiled.traps.into_boxed_slice(),
            function_names: info.function_names.clone(),
        });
        super::observer::notify_published(&code);
        if let Some(started) = started {
            tracing::debug!(
                target: "kernel_core::wasm::compile",
                module = %code.module_name.as_deref().map_or_else(String::new, super::code::escape_name),
                isa = %isa,
                functions = code.functions.len(),
                wasm_bytes = wasm.len(),
                code_bytes = code.len,
                compile_us = crate::log::clock_ns().saturating_sub(started) / 1000,
                "compiled and published"
            );
        }
        let address = |offset: &u32| start + *offset as usize;
        let inner = ModuleCode {
            array_shims: compiled.array_shims.iter().map(address).collect(),
            wasm_to_host: compiled.wasm_to_host.iter().map(address).collect(),
            entry: address(&compiled.entry_trampoline),
            wasm,
            info,
            shape,
            code,
            region: (base, len),
            release: release_region::<H>,
            hal: core::ptr::from_ref(hal).cast(),
        };
        Ok(Self {
            inner: Arc::new(inner),
            engine: PhantomData,
        })
    }

    /// The module's description.
    #[must_use]
    pub fn info(&self) -> &ModuleInfo {
        &self.inner.info
    }

    /// The names and kinds of the module's imports.
    pub fn imports(&self) -> impl Iterator<Item = (&str, &str)> {
        self.inner
            .info
            .imports
            .iter()
            .map(|import| (import.module.as_str(), import.name.as_str()))
    }
}

/// Whether the valid module `wasm` uses a `v128` type or operator anywhere: it validates
/// with `features` but not without SIMD (the validator rejects every `v128` value type,
/// in signatures, locals, globals and blocks, and every SIMD operator).
fn uses_simd(wasm: &[u8], features: WasmFeatures) -> bool {
    let without = features.difference(WasmFeatures::SIMD | WasmFeatures::RELAXED_SIMD);
    features.contains(WasmFeatures::SIMD)
        && wasmparser::Validator::new_with_features(without)
            .validate_all(wasm)
            .is_err()
}

/// Formats `module!function+offset` style frame descriptions.
pub(crate) fn describe_function(code: &CodeInfo, func: crate::wasm::indices::FuncIndex) -> String {
    use core::fmt::Write as _;
    let mut text = String::new();
    // Names come from the module: escaped, so that they cannot forge backtrace lines.
    if let Some(module) = &code.module_name {
        let _ = write!(text, "{}!", super::code::escape_name(module));
    }
    match code.function_name(func) {
        Some(name) => text.push_str(&super::code::escape_name(name)),
        None => {
            let _ = write!(text, "<func {func}>");
        }
    }
    text
}

#[cfg(test)]
impl<'e, H: RuntimeHal> Module<'e, H> {
    /// A module translated and laid out but not compiled, for tests that never run its code
    /// (under Miri, which would take minutes to run Cranelift): every function's code
    /// address is 0, and the trampolines' addresses are the start of one empty page.
    pub(crate) fn without_code(
        engine: &'e Engine<H>,
        wasm: &[u8],
        features: WasmFeatures,
    ) -> Result<Self, LoadError> {
        let info = translate(wasm, features).map_err(LoadError::Module)?;
        let shape = VMShape::for_module(&info).map_err(LoadError::Layout)?;
        let hal = &engine.hal;
        let len = hal.page_size();
        let base = hal.reserve(len).map_err(LoadError::Memory)?;
        let start = base.as_ptr() as usize;
        let code = Arc::new(CodeInfo {
            start,
            len: 0,
            module_name: info.name.clone(),
            functions: Box::new([]),
            num_imported_functions: info.num_imported_functions,
            traps: Box::new([]),
            function_names: info.function_names.clone(),
        });
        let trampolines = alloc::vec![start; info.types.len()].into_boxed_slice();
        let inner = ModuleCode {
            array_shims: trampolines.clone(),
            wasm_to_host: trampolines,
            entry: start,
            wasm: wasm.into(),
            info,
            shape,
            code,
            region: (base, len),
            release: release_region::<H>,
            hal: core::ptr::from_ref(hal).cast(),
        };
        Ok(Self {
            inner: Arc::new(inner),
            engine: PhantomData,
        })
    }
}
