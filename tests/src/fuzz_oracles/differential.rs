//! Differential execution: wasm-smith modules run in kernel-core (the Cranelift JIT on
//! hal-hosted) and in `wasmi` 2.0, the reference.
//!
//! Both engines load and instantiate the same module (no imports); then every exported
//! function is called, twice over, with the same arguments drawn from the input, and
//! each call must give the same results, or trap in both with the same [`Trap`]. At the
//! end the exported memories' bytes and the exported globals' values must be equal.
//! `v128` values are compared bit for bit; reference arguments are null, and reference
//! results and globals are compared by nullness.
//!
//! What is not a finding: a module kernel-core refuses as unsupported (a feature it does
//! not implement yet) or either engine runs out of a resource for (memory, stack depth).
//! Once either engine reports stack exhaustion the two may legitimately have done
//! different amounts of work, so the comparison stops there.
//!
//! Termination: `wasm_smith::Module::ensure_termination` adds a mutable `i32` fuel global
//! (wasm-smith 0.263 starts it at the fuel given and does not export it), decrements it at
//! each function entry and loop head, and runs `unreachable` when it reaches zero. Running
//! out of fuel is therefore an ordinary `unreachable` trap in both engines, and since the
//! global is never reset the fuel bounds the work of all the calls together.

use arbitrary::{Arbitrary, Unstructured};
use kernel_core::wasm::env::{ModuleErrorKind, RefType, ValType, WASM2_FEATURES};
use kernel_core::wasm::runtime::{
    CallError, Extern, InstantiationError, LoadError, Module, Store, Val,
};
use kernel_core::wasm::trap::Trap;
use wasmi::TrapCode;

use crate::hosted_engine;

/// Fuel of each module: calls and loop iterations across the whole run.
pub const FUEL: u32 = 1000;

/// Largest linear memory a generated module may declare or grow to, in bytes.
const MAX_MEMORY_BYTES: u64 = 16 * 65536;

/// How many times every export is called.
const ROUNDS: usize = 2;

/// Switches for the WebAssembly 2.0 features beyond the numeric ones; the module generator
/// and wasmi follow them. All are on: the JIT compiles every 2.0 operator.
const BULK_MEMORY: bool = true;
/// See [`BULK_MEMORY`].
const REFERENCE_TYPES: bool = true;
/// See [`BULK_MEMORY`]; wasmi runs SIMD with its `simd` cargo feature (tests/Cargo.toml).
const SIMD: bool = true;

/// The wasm-smith configuration: WebAssembly 2.0 (1.0 with sign extension, saturating
/// conversions, multiple values and the switches above; no relaxed SIMD), floats with NaNs
/// canonicalized, scalar and in lanes (so that every result is deterministic), one memory of at most [`MAX_MEMORY_BYTES`] (a declared maximum is
/// required, so growth is bounded in both engines), one table, no imports, everything
/// exported.
#[must_use]
pub fn smith_config() -> wasm_smith::Config {
    wasm_smith::Config {
        allow_floats: true,
        canonicalize_nans: true,
        compact_imports_enabled: false,
        max_imports: 0,
        export_everything: true,
        sign_extension_ops_enabled: true,
        saturating_float_to_int_enabled: true,
        multi_value_enabled: true,
        bulk_memory_enabled: BULK_MEMORY,
        reference_types_enabled: REFERENCE_TYPES,
        simd_enabled: SIMD,
        relaxed_simd_enabled: false,
        exceptions_enabled: false,
        gc_enabled: false,
        tail_call_enabled: false,
        threads_enabled: false,
        memory64_enabled: false,
        wide_arithmetic_enabled: false,
        extended_const_enabled: false,
        custom_page_sizes_enabled: false,
        max_memories: 1,
        max_tables: 1,
        max_memory32_bytes: MAX_MEMORY_BYTES,
        memory_max_size_required: true,
        max_table_elements: 1000,
        max_funcs: 30,
        ..wasm_smith::Config::default()
    }
}

/// The `wasmi` engine, with the same features as [`smith_config`] and a call depth that
/// fuel runs out before (kernel-core's stack may still run out first: not a finding).
fn wasmi_engine() -> wasmi::Engine {
    let mut config = wasmi::Config::default();
    config
        .wasm_bulk_memory(BULK_MEMORY)
        .wasm_reference_types(REFERENCE_TYPES)
        .wasm_simd(SIMD)
        .wasm_relaxed_simd(false)
        .wasm_tail_call(false)
        .wasm_extended_const(false)
        .wasm_multi_memory(false)
        .set_max_recursion_depth(4 * FUEL as usize)
        .compilation_mode(wasmi::CompilationMode::Eager);
    wasmi::Engine::new(&config)
}

/// A value both engines understand. References are compared by nullness only: the
/// engines' function references cannot be compared with each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Value {
    I32(i32),
    I64(i64),
    F32(u32),
    F64(u64),
    V128(u128),
    FuncRef { null: bool },
    ExternRef { null: bool },
}

impl Value {
    /// A deterministic argument of type `ty` from the input: a boundary value or raw bits,
    /// zero once the input is used up; null for references.
    fn arbitrary(ty: ValType, input: &mut Unstructured<'_>) -> Option<Self> {
        let choice = u8::arbitrary(input).unwrap_or(0);
        let raw = u64::arbitrary(input).unwrap_or(0);
        let bits: u64 = match choice % 8 {
            0 => 0,
            1 => 1,
            2 => u64::MAX,
            3 => 1 << 31,
            4 => (1 << 31) - 1,
            5 => 1 << 63,
            _ => raw,
        };
        #[expect(
            clippy::cast_possible_truncation,
            reason = "the low bits are the 32-bit values"
        )]
        let value = match ty {
            ValType::I32 => Self::I32((bits as u32).cast_signed()),
            ValType::I64 => Self::I64(bits.cast_signed()),
            ValType::F32 => Self::F32(bits as u32),
            ValType::F64 => Self::F64(bits),
            ValType::V128 => {
                let low = u64::arbitrary(input).unwrap_or(0);
                Self::V128(u128::from(bits) << 64 | u128::from(low))
            }
            ValType::Ref(RefType::Func) => Self::FuncRef { null: true },
            ValType::Ref(RefType::Extern) => Self::ExternRef { null: true },
            ValType::Ref(RefType::Exn) => return None,
        };
        Some(value)
    }

    fn to_kernel(self) -> Val {
        match self {
            Self::I32(value) => Val::I32(value),
            Self::I64(value) => Val::I64(value),
            Self::F32(bits) => Val::F32(bits),
            Self::F64(bits) => Val::F64(bits),
            Self::V128(bits) => Val::V128(bits),
            // Only null references are ever passed in.
            Self::FuncRef { .. } => Val::FuncRef(None),
            Self::ExternRef { .. } => Val::ExternRef(None),
        }
    }

    fn to_wasmi(self) -> wasmi::Val {
        match self {
            Self::I32(value) => wasmi::Val::I32(value),
            Self::I64(value) => wasmi::Val::I64(value),
            Self::F32(bits) => wasmi::Val::F32(wasmi::F32::from_bits(bits)),
            Self::F64(bits) => wasmi::Val::F64(wasmi::F64::from_bits(bits)),
            Self::V128(bits) => wasmi::Val::V128(wasmi::V128::from(bits)),
            Self::FuncRef { .. } => wasmi::Val::default_for_ty(wasmi::ValType::FuncRef),
            Self::ExternRef { .. } => wasmi::Val::default_for_ty(wasmi::ValType::ExternRef),
        }
    }

    fn from_kernel(value: &Val) -> Self {
        match *value {
            Val::I32(value) => Self::I32(value),
            Val::I64(value) => Self::I64(value),
            Val::F32(bits) => Self::F32(bits),
            Val::F64(bits) => Self::F64(bits),
            Val::V128(bits) => Self::V128(bits),
            Val::FuncRef(reference) => Self::FuncRef {
                null: reference.is_none(),
            },
            Val::ExternRef(reference) => Self::ExternRef {
                null: reference.is_none(),
            },
        }
    }

    fn from_wasmi(value: &wasmi::Val) -> Self {
        match value {
            wasmi::Val::I32(value) => Self::I32(*value),
            wasmi::Val::I64(value) => Self::I64(*value),
            wasmi::Val::F32(value) => Self::F32(value.to_bits()),
            wasmi::Val::F64(value) => Self::F64(value.to_bits()),
            wasmi::Val::V128(value) => Self::V128(value.as_u128()),
            wasmi::Val::FuncRef(reference) => Self::FuncRef {
                null: reference.is_null(),
            },
            wasmi::Val::ExternRef(reference) => Self::ExternRef {
                null: reference.is_null(),
            },
        }
    }

    /// Equal, counting any two NaNs as equal: the NaNs of arithmetic are canonicalized in
    /// generated code, but WebAssembly leaves the payload of some NaNs open.
    fn same(self, other: Self) -> bool {
        match (self, other) {
            (Self::F32(a), Self::F32(b)) => {
                a == b || (f32::from_bits(a).is_nan() && f32::from_bits(b).is_nan())
            }
            (Self::F64(a), Self::F64(b)) => {
                a == b || (f64::from_bits(a).is_nan() && f64::from_bits(b).is_nan())
            }
            (a, b) => a == b,
        }
    }
}

/// What a call did, as both engines can report it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// Returned these values.
    Values(Vec<Value>),
    /// Trapped.
    Trap(Trap),
    /// Ran out of a resource (stack, memory): the engines may differ from here on.
    Exhausted,
}

/// The kernel-core trap a `wasmi` trap code stands for; `None` for resource exhaustion.
/// `wasmi` reports `call_indirect` past the end of the table as `TableOutOfBounds`, which
/// kernel-core (like the spec interpreter) calls `undefined element`: both are accepted.
fn wasmi_trap(code: TrapCode) -> Option<&'static [Trap]> {
    Some(match code {
        TrapCode::UnreachableCodeReached => &[Trap::Unreachable],
        TrapCode::MemoryOutOfBounds => &[Trap::MemoryOutOfBounds],
        TrapCode::TableOutOfBounds => &[Trap::UndefinedElement, Trap::TableOutOfBounds],
        TrapCode::IndirectCallToNull => &[Trap::IndirectCallToNull],
        TrapCode::IntegerDivisionByZero => &[Trap::IntegerDivisionByZero],
        TrapCode::IntegerOverflow => &[Trap::IntegerOverflow],
        TrapCode::BadConversionToInteger => &[Trap::BadConversionToInteger],
        TrapCode::BadSignature => &[Trap::BadSignature],
        TrapCode::OutOfFuel => &[Trap::OutOfFuel],
        TrapCode::StackOverflow
        | TrapCode::GrowthOperationLimited
        | TrapCode::OutOfSystemMemory => return None,
    })
}

/// The outcome of a `wasmi` error.
///
/// # Panics
/// When the error is no trap: nothing else can happen to a well-typed call.
fn wasmi_outcome(error: &wasmi::Error, kernel: &Outcome) -> Outcome {
    let Some(code) = error.as_trap_code() else {
        panic!("wasmi failed without a trap: {error}");
    };
    match wasmi_trap(code) {
        None => Outcome::Exhausted,
        Some(traps) => match kernel {
            // Pick kernel-core's when it is one of the traps `code` may stand for.
            Outcome::Trap(trap) if traps.contains(trap) => Outcome::Trap(*trap),
            _ => Outcome::Trap(traps[0]),
        },
    }
}

/// The outcome of a kernel-core call.
///
/// # Panics
/// On [`CallError::BadArguments`]: the arguments are made from the function's type.
fn kernel_outcome(result: Result<Vec<Val>, CallError>) -> Outcome {
    match result {
        Ok(values) => Outcome::Values(values.iter().map(Value::from_kernel).collect()),
        Err(CallError::Trap {
            trap: Trap::StackOverflow,
            ..
        }) => Outcome::Exhausted,
        Err(CallError::Trap { trap, .. }) => Outcome::Trap(trap),
        Err(error @ CallError::BadArguments(_)) => panic!("kernel-core refused the call: {error}"),
    }
}

/// Equal outcomes (NaNs of either payload count as equal).
fn same_outcome(kernel: &Outcome, reference: &Outcome) -> bool {
    match (kernel, reference) {
        (Outcome::Values(a), Outcome::Values(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| a.same(*b))
        }
        (a, b) => a == b,
    }
}

/// An argument of type `ty` drawn from `input` the way this target draws them (boundary
/// values or raw bits; null references), as a kernel-core value; `None` for a type no
/// argument is made for. The `hosted_qemu` target calls with the same arguments.
pub fn argument(ty: ValType, input: &mut Unstructured<'_>) -> Option<Val> {
    Value::arbitrary(ty, input).map(Value::to_kernel)
}

/// Generates the module of an input: wasm-smith with [`smith_config`] and fuel; `None`
/// when the input does not make one.
#[must_use]
pub fn generate(input: &mut Unstructured<'_>) -> Option<Vec<u8>> {
    let mut module = wasm_smith::Module::new(smith_config(), input).ok()?;
    module.ensure_termination(FUEL).ok()?;
    Some(module.to_bytes())
}

/// The oracle of the `differential` target.
///
/// # Panics
/// On a finding: the engines disagree on validity, on instantiation, on a call's results
/// or trap, or on the final state of an exported memory or global.
pub fn check(data: &[u8]) {
    let mut input = Unstructured::new(data);
    let Some(wasm) = generate(&mut input) else {
        return;
    };
    run(&wasm, &mut input);
}

/// Runs `wasm` in both engines, with arguments from `input`.
///
/// # Panics
/// As [`check`].
pub fn run(wasm: &[u8], input: &mut Unstructured<'_>) {
    // Load. wasm-smith made a valid module and the engines must agree that it is valid:
    // kernel-core may refuse it as unsupported, never as invalid, and wasmi (configured
    // with the same features) must accept what kernel-core loads.
    let engine = wasmi_engine();
    let reference_module = wasmi::Module::new(&engine, wasm);
    let module = match Module::new(hosted_engine(), wasm, WASM2_FEATURES) {
        Ok(module) => module,
        Err(LoadError::Module(error)) if error.kind == ModuleErrorKind::Invalid => {
            match reference_module {
                Ok(_) => panic!("kernel-core calls a module wasmi loads invalid: {error}"),
                Err(_) => return,
            }
        }
        Err(
            LoadError::Module(_)
            | LoadError::Compile(kernel_core::wasm::compile::CompileError::Unsupported(_))
            | LoadError::Layout(_)
            | LoadError::Memory(_),
        ) => return,
        Err(error) => panic!("kernel-core failed to load a valid module: {error}"),
    };
    let reference_module = match reference_module {
        Ok(module) => module,
        Err(error) => panic!("wasmi refused a module kernel-core loaded: {error}"),
    };

    // Instantiate. Both succeed, or both fail (and if both trap, with the same trap).
    let mut store = Store::new(hosted_engine());
    let instance = store.instantiate(&module, &[]);
    let mut reference_store = wasmi::Store::new(&engine, ());
    let linker = wasmi::Linker::<()>::new(&engine);
    let reference_instance = linker.instantiate_and_start(&mut reference_store, &reference_module);
    let (instance, reference_instance) = match (instance, reference_instance) {
        (Ok(instance), Ok(reference)) => (instance, reference),
        (Err(InstantiationError::Unsupported(_) | InstantiationError::OutOfMemory), _) => return,
        (Err(error), Err(reference)) => {
            // wasmi reports a segment out of bounds as a table or memory error, not
            // always as a trap: only two traps are compared.
            if let (InstantiationError::Trap(trap), Some(_)) = (error, reference.as_trap_code()) {
                let kernel = kernel_outcome(Err(trap));
                let reference = wasmi_outcome(&reference, &kernel);
                if kernel != Outcome::Exhausted && reference != Outcome::Exhausted {
                    assert_eq!(kernel, reference, "instantiation trapped differently");
                }
            }
            return;
        }
        (Ok(_), Err(reference)) => {
            if reference
                .as_trap_code()
                .is_some_and(|code| wasmi_trap(code).is_none())
            {
                return;
            }
            panic!("only wasmi failed to instantiate: {reference}")
        }
        (Err(error), Ok(_)) => {
            if matches!(
                &error,
                InstantiationError::Trap(CallError::Trap {
                    trap: Trap::StackOverflow,
                    ..
                })
            ) {
                return;
            }
            panic!("only kernel-core failed to instantiate: {error}")
        }
    };

    // Call every exported function, in the module's export order.
    let exports = store.exports(instance);
    for round in 0..ROUNDS {
        for (name, export) in &exports {
            let Extern::Func(func) = *export else {
                continue;
            };
            let ty = store
                .func_type(func)
                .expect("an exported function's type")
                .clone();
            let Some(args) = ty
                .params
                .iter()
                .map(|ty| Value::arbitrary(*ty, input))
                .collect::<Option<Vec<_>>>()
            else {
                continue;
            };
            let kernel_args: Vec<Val> = args.iter().map(|arg| arg.to_kernel()).collect();
            let kernel = kernel_outcome(store.call(func, &kernel_args));

            let reference_func = reference_instance
                .get_export(&reference_store, name)
                .and_then(wasmi::Extern::into_func)
                .expect("wasmi exports the same function");
            let reference_args: Vec<wasmi::Val> = args.iter().map(|arg| arg.to_wasmi()).collect();
            let reference_type = reference_func.ty(&reference_store);
            let mut results: Vec<wasmi::Val> = reference_type
                .results()
                .iter()
                .map(|ty| wasmi::Val::default_for_ty(*ty))
                .collect();
            let reference =
                match reference_func.call(&mut reference_store, &reference_args, &mut results) {
                    Ok(()) => Outcome::Values(results.iter().map(Value::from_wasmi).collect()),
                    Err(error) => wasmi_outcome(&error, &kernel),
                };
            if kernel == Outcome::Exhausted || reference == Outcome::Exhausted {
                return;
            }
            assert!(
                same_outcome(&kernel, &reference),
                "round {round}, {name}{args:?}: kernel-core {kernel:?}, wasmi {reference:?}"
            );
        }
    }

    // The final state of exported memories and globals.
    for (name, export) in &exports {
        match *export {
            Extern::Memory(memory) => {
                let reference = reference_instance
                    .get_export(&reference_store, name)
                    .and_then(wasmi::Extern::into_memory)
                    .expect("wasmi exports the same memory");
                let reference = reference.data(&reference_store);
                let data = store.memory_data(memory).expect("an exported memory");
                assert_eq!(data.len(), reference.len(), "memory {name}: sizes differ");
                if let Some(at) = data.iter().zip(reference).position(|(a, b)| a != b) {
                    panic!(
                        "memory {name}: byte {at:#x} is {:#04x} in kernel-core, {:#04x} in wasmi",
                        data[at], reference[at]
                    );
                }
            }
            Extern::Global(global) => {
                let (_, value) = store.global(global).expect("an exported global");
                let reference = reference_instance
                    .get_export(&reference_store, name)
                    .and_then(wasmi::Extern::into_global)
                    .expect("wasmi exports the same global")
                    .get(&reference_store);
                let (value, reference) =
                    (Value::from_kernel(&value), Value::from_wasmi(&reference));
                assert!(
                    value.same(reference),
                    "global {name}: kernel-core {value:?}, wasmi {reference:?}"
                );
            }
            Extern::Func(_) | Extern::Table(_) => {}
        }
    }
}
