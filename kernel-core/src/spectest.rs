//! The JIT runtime as a spec-script engine: [`crate::spec::SpecEngine`] over a
//! [`Store`], with the `spectest` host module the official scripts import.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::spec::{CallError, InstantiateError, SpecEngine, SpecValue};
use crate::wasm::env::{
    FuncType, GlobalType, MemoryType, ModuleErrorKind, RefType, TableType, ValType, WasmFeatures,
    translate,
};
use crate::wasm::runtime::{
    self, Engine, Extern, Func, FuncRef, InstanceId, InstantiationError, LoadError, Module,
    RuntimeHal, Store, Val,
};
use crate::wasm::trap::Trap;

/// Runs spec scripts on the JIT runtime: one store per script, imports resolved from
/// `spectest` and from registered instances.
pub struct RuntimeSpecEngine<'e, H: RuntimeHal> {
    engine: &'e Engine<H>,
    store: Store<'e, H>,
    features: WasmFeatures,
    spectest: BTreeMap<&'static str, Extern>,
    registered: BTreeMap<String, InstanceId>,
    /// Function references handed to the script, by the id the script sees.
    funcrefs: Vec<FuncRef>,
}

impl<'e, H: RuntimeHal> RuntimeSpecEngine<'e, H> {
    /// A fresh store with the `spectest` module, validating modules against `features`.
    ///
    /// # Errors
    /// A message when the `spectest` memory or table cannot be made.
    pub fn new(engine: &'e Engine<H>, features: WasmFeatures) -> Result<Self, String> {
        let mut store = Store::new(engine);
        let spectest = spectest_module(&mut store).map_err(|error| error.to_string())?;
        Ok(Self {
            engine,
            store,
            features,
            spectest,
            registered: BTreeMap::new(),
            funcrefs: Vec::new(),
        })
    }

    /// The import `module::name`: from the instance last registered as `module`, which
    /// shadows the built-in `spectest` module when registered under that name (as
    /// `register` rebinds a name in the reference interpreter and Wasmtime), else from the
    /// built-in `spectest`.
    fn resolve(&self, module: &str, name: &str) -> Option<Extern> {
        if let Some(&instance) = self.registered.get(module) {
            return self.store.export(instance, name);
        }
        if module == "spectest" {
            return self.spectest.get(name).copied();
        }
        None
    }

    fn value_from_spec(&mut self, value: &SpecValue) -> Result<Val, CallError> {
        Ok(match *value {
            SpecValue::I32(bits) => Val::I32(bits.cast_signed()),
            SpecValue::I64(bits) => Val::I64(bits.cast_signed()),
            SpecValue::F32(bits) => Val::F32(bits),
            SpecValue::F64(bits) => Val::F64(bits),
            SpecValue::V128(bits) => Val::V128(bits),
            SpecValue::ExternRef(reference) => Val::ExternRef(reference),
            SpecValue::FuncRef(None) => Val::FuncRef(None),
            SpecValue::FuncRef(Some(id)) => {
                Val::FuncRef(Some(*self.funcrefs.get(id as usize).ok_or_else(|| {
                    CallError::Other(format!("unknown function reference {id}"))
                })?))
            }
        })
    }

    fn value_to_spec(&mut self, value: &Val) -> SpecValue {
        match *value {
            Val::I32(value) => SpecValue::I32(value.cast_unsigned()),
            Val::I64(value) => SpecValue::I64(value.cast_unsigned()),
            Val::F32(bits) => SpecValue::F32(bits),
            Val::F64(bits) => SpecValue::F64(bits),
            Val::V128(bits) => SpecValue::V128(bits),
            Val::ExternRef(reference) => SpecValue::ExternRef(reference),
            Val::FuncRef(None) => SpecValue::FuncRef(None),
            Val::FuncRef(Some(reference)) => {
                let id = match self.funcrefs.iter().position(|known| *known == reference) {
                    Some(id) => id,
                    None => {
                        self.funcrefs.push(reference);
                        self.funcrefs.len() - 1
                    }
                };
                SpecValue::FuncRef(Some(u32::try_from(id).unwrap_or(u32::MAX)))
            }
        }
    }
}

/// The spec's message for a runtime call error.
fn call_error(error: &runtime::CallError) -> CallError {
    match error {
        runtime::CallError::Trap {
            trap: Trap::StackOverflow,
            ..
        } => CallError::Exhaustion(String::from(Trap::StackOverflow.message())),
        runtime::CallError::Trap { .. } => CallError::Trap(error.to_string()),
        runtime::CallError::BadArguments(message) => CallError::Other(message.clone()),
    }
}

fn load_error(error: LoadError) -> InstantiateError {
    match error {
        LoadError::Module(error) if error.kind == ModuleErrorKind::Invalid => {
            InstantiateError::Invalid(error.to_string())
        }
        other => InstantiateError::Unsupported(other.to_string()),
    }
}

impl<'e, H: RuntimeHal> SpecEngine for RuntimeSpecEngine<'e, H> {
    type Instance = InstanceId;

    fn instantiate(&mut self, bytes: &[u8]) -> Result<InstanceId, InstantiateError> {
        let module = Module::new(self.engine, bytes, self.features).map_err(load_error)?;
        let imports = module
            .imports()
            .map(|(module_name, name)| {
                self.resolve(module_name, name).ok_or_else(|| {
                    InstantiateError::Unlinkable(format!("unknown import {module_name}::{name}"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.store
            .instantiate(&module, &imports)
            .map_err(|error| match error {
                InstantiationError::Unlinkable(message) => InstantiateError::Unlinkable(message),
                InstantiationError::Trap(error) => InstantiateError::Trap(error.to_string()),
                other => InstantiateError::Unsupported(other.to_string()),
            })
    }

    fn validate(&mut self, bytes: &[u8]) -> Result<(), InstantiateError> {
        match translate(bytes, self.features) {
            Ok(_) => Ok(()),
            Err(error) if error.kind == ModuleErrorKind::Invalid => {
                Err(InstantiateError::Invalid(error.to_string()))
            }
            Err(error) => Err(InstantiateError::Unsupported(error.to_string())),
        }
    }

    fn release(&mut self, instance: &InstanceId) {
        // Its functions stay reachable if it imported a table or a global (it may have
        // stored references to them there), so then it keeps everything.
        if self.store.imports_tables_or_globals(*instance) {
            return;
        }
        // Safety: the runner no longer names the instance, it was never registered (so no
        // module imported from it), and it imported no table or global through which its
        // functions could be reached.
        unsafe { self.store.release_instance_memories(*instance) };
    }

    fn register(&mut self, name: &str, instance: &InstanceId) -> Result<(), String> {
        self.registered.insert(name.to_string(), *instance);
        Ok(())
    }

    fn invoke(
        &mut self,
        instance: &InstanceId,
        field: &str,
        args: &[SpecValue],
    ) -> Result<Vec<SpecValue>, CallError> {
        let Some(Extern::Func(func)) = self.store.export(*instance, field) else {
            return Err(CallError::Other(format!("no exported function {field}")));
        };
        let args = args
            .iter()
            .map(|arg| self.value_from_spec(arg))
            .collect::<Result<Vec<_>, _>>()?;
        let results = self
            .store
            .call(func, &args)
            .map_err(|error| call_error(&error))?;
        Ok(results
            .iter()
            .map(|value| self.value_to_spec(value))
            .collect())
    }

    fn get_global(&mut self, instance: &InstanceId, field: &str) -> Result<SpecValue, CallError> {
        let Some(Extern::Global(global)) = self.store.export(*instance, field) else {
            return Err(CallError::Other(format!("no exported global {field}")));
        };
        let (_, value) = self
            .store
            .global(global)
            .ok_or_else(|| CallError::Other(String::from("dangling global")))?;
        Ok(self.value_to_spec(&value))
    }
}

/// The `spectest` module of the reference interpreter: print functions that print
/// nothing, four globals of value 666 or 666.6, a table and a memory.
fn spectest_module<H: RuntimeHal>(
    store: &mut Store<'_, H>,
) -> Result<BTreeMap<&'static str, Extern>, InstantiationError> {
    let mut exports = BTreeMap::new();
    let prints: [(&str, &[ValType]); 7] = [
        ("print", &[]),
        ("print_i32", &[ValType::I32]),
        ("print_i64", &[ValType::I64]),
        ("print_f32", &[ValType::F32]),
        ("print_f64", &[ValType::F64]),
        ("print_i32_f32", &[ValType::I32, ValType::F32]),
        ("print_f64_f64", &[ValType::F64, ValType::F64]),
    ];
    for (name, params) in prints {
        let ty = FuncType {
            params: params.into(),
            results: Box::new([]),
        };
        let func: Func = store.new_host_func(ty, Box::new(|_, _, _| Ok(())));
        exports.insert(name, Extern::Func(func));
    }
    let globals = [
        ("global_i32", ValType::I32, Val::I32(666)),
        ("global_i64", ValType::I64, Val::I64(666)),
        ("global_f32", ValType::F32, Val::F32(666.6f32.to_bits())),
        ("global_f64", ValType::F64, Val::F64(666.6f64.to_bits())),
    ];
    for (name, content, value) in globals {
        let global = store.new_global(
            GlobalType {
                content,
                mutable: false,
            },
            value,
        )?;
        exports.insert(name, Extern::Global(global));
    }
    let table = TableType {
        element: RefType::Func,
        minimum: 10,
        maximum: Some(20),
        table64: false,
    };
    exports.insert("table", Extern::Table(store.new_table(&table)?));
    let memory = MemoryType {
        minimum: 1,
        maximum: Some(2),
        shared: false,
        memory64: false,
        page_size_log2: 16,
    };
    exports.insert("memory", Extern::Memory(store.new_memory(&memory)?));
    Ok(exports)
}
