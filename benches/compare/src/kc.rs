//! kernel-core (hosted): the runtime API of `kernel_core::wasm::runtime` on the hosted
//! HAL, the code the kernel runs processes with, minus the scheduler.

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use hal_hosted::{HostedConfig, HostedHal};
use kernel_core::wasm::env::{FuncType, ValType, WASM2_FEATURES};
use kernel_core::wasm::runtime::{
    Caller, Engine, EngineConfig, Extern, Func, InstanceId, Module, Store, Val,
};

use crate::wasi::{IMPORTS, Memory, Stop, Ty, Wasi};
use crate::{Outcome, value_u64};

/// The engine of the process (it installs the process-wide trap handler).
fn engine() -> &'static Engine<HostedHal> {
    static ENGINE: OnceLock<Engine<HostedHal>> = OnceLock::new();
    ENGINE.get_or_init(|| {
        Engine::new(
            HostedHal::new(HostedConfig::default()),
            EngineConfig::default(),
        )
    })
}

fn load(wasm: &[u8]) -> Result<Module<'static, HostedHal>, String> {
    Module::new(engine(), wasm, WASM2_FEATURES).map_err(|error| error.to_string())
}

/// Compiles `wasm` and returns how long it took.
pub fn compile(wasm: &[u8]) -> Result<Duration, String> {
    let start = Instant::now();
    let module = load(wasm)?;
    let elapsed = start.elapsed();
    drop(module);
    Ok(elapsed)
}

fn export(
    store: &Store<'static, HostedHal>,
    instance: InstanceId,
    name: &str,
) -> Result<Func, String> {
    match store.export(instance, name) {
        Some(Extern::Func(func)) => Ok(func),
        _ => Err(format!("no exported function {name}")),
    }
}

/// An instance of a module without imports, whose exports take one `i32`.
pub struct Instance {
    store: Store<'static, HostedHal>,
    instance: InstanceId,
}

impl Instance {
    /// Compiles and instantiates `wasm`.
    pub fn new(wasm: &[u8]) -> Result<Self, String> {
        let module = load(wasm)?;
        let mut store = Store::new(engine());
        let instance = store
            .instantiate(&module, &[])
            .map_err(|error| error.to_string())?;
        Ok(Self { store, instance })
    }

    /// Calls `name(arg)`; returns the time of the call and its result.
    pub fn call(&mut self, name: &str, arg: i32) -> Result<(Duration, u64), String> {
        let func = export(&self.store, self.instance, name)?;
        let start = Instant::now();
        let results = self
            .store
            .call(func, &[Val::I32(arg)])
            .map_err(|error| error.to_string())?;
        let elapsed = start.elapsed();
        let value = match results.first() {
            Some(Val::I32(value)) => value_u64(i64::from(*value), true),
            Some(Val::I64(value)) => value_u64(*value, false),
            _ => 0,
        };
        Ok((elapsed, value))
    }

    /// The time of one call of the exported `name()` (no parameters, no results).
    pub fn empty_calls(&mut self, name: &str, iters: u32) -> Result<Duration, String> {
        let func = export(&self.store, self.instance, name)?;
        let start = Instant::now();
        for _ in 0..iters {
            self.store
                .call(func, &[])
                .map_err(|error| error.to_string())?;
        }
        Ok(start.elapsed() / iters)
    }

    /// The time of one call of the exported `name()` that traps, error included.
    pub fn traps(&mut self, name: &str, iters: u32) -> Result<Duration, String> {
        let func = export(&self.store, self.instance, name)?;
        let start = Instant::now();
        for _ in 0..iters {
            if self.store.call(func, &[]).is_ok() {
                return Err(format!("{name} did not trap"));
            }
        }
        Ok(start.elapsed() / iters)
    }
}

/// The time of one instantiation of `wasm` (compiled once) in a new store, the store's
/// drop included.
pub fn instantiations(wasm: &[u8], iters: u32) -> Result<Duration, String> {
    let module = load(wasm)?;
    let start = Instant::now();
    for _ in 0..iters {
        let mut store = Store::new(engine());
        store
            .instantiate(&module, &[])
            .map_err(|error| error.to_string())?;
    }
    Ok(start.elapsed() / iters)
}

impl Memory for Caller<'_> {
    fn read(&self, ptr: u32, len: u32) -> Option<Vec<u8>> {
        Caller::read(self, ptr.cast_signed(), i32::try_from(len).ok()?).map(<[u8]>::to_vec)
    }

    fn write(&mut self, ptr: u32, bytes: &[u8]) -> Option<()> {
        Caller::write(self, ptr.cast_signed(), bytes)
    }
}

fn val_type(ty: Ty) -> ValType {
    match ty {
        Ty::I32 => ValType::I32,
        Ty::I64 => ValType::I64,
    }
}

/// Runs a sightglass program's `_start` with the comparison's WASI host functions.
pub fn sightglass(wasm: &[u8], dir: &Path) -> Result<Outcome, String> {
    let module = load(wasm)?;
    let wasi = Rc::new(RefCell::new(Wasi::new(dir.to_path_buf())));
    let stop: Rc<RefCell<Option<Stop>>> = Rc::new(RefCell::new(None));
    let mut store = Store::new(engine());
    let mut imports = Vec::new();
    let wanted: Vec<(String, String)> = module
        .imports()
        .map(|(module, name)| (module.to_owned(), name.to_owned()))
        .collect();
    for (module_name, name) in wanted {
        let Some(&(m, n, params, results)) = IMPORTS
            .iter()
            .find(|(m, n, ..)| *m == module_name && *n == name)
        else {
            return Err(format!("unsupported import {module_name}.{name}"));
        };
        let ty = FuncType {
            params: params.iter().copied().map(val_type).collect(),
            results: results.iter().copied().map(val_type).collect(),
        };
        let (wasi, stop) = (Rc::clone(&wasi), Rc::clone(&stop));
        let func = store.new_host_func(
            ty,
            Box::new(
                move |caller: &mut Caller<'_>, args: &[Val], out: &mut [Val]| {
                    let args: Vec<i64> = args
                        .iter()
                        .map(|arg| match arg {
                            Val::I32(value) => i64::from(*value),
                            Val::I64(value) => *value,
                            _ => 0,
                        })
                        .collect();
                    match wasi.borrow_mut().call(caller, m, n, &args) {
                        Ok(result) => {
                            if let (Some(value), Some(slot)) = (result, out.first_mut()) {
                                *slot = Val::I32(value);
                            }
                            Ok(())
                        }
                        Err(error) => {
                            let message = format!("{error:?}");
                            *stop.borrow_mut() = Some(error);
                            Err(message)
                        }
                    }
                },
            ),
        );
        imports.push(Extern::Func(func));
    }
    let instance = store
        .instantiate(&module, &imports)
        .map_err(|error| error.to_string())?;
    let start = export(&store, instance, "_start")?;
    let result = store.call(start, &[]);
    let status = match (result, stop.borrow_mut().take()) {
        (Ok(_), _) => 0,
        (Err(_), Some(Stop::Exit(status))) => status,
        (Err(error), _) => return Err(format!("trap: {error}")),
    };
    let wasi = wasi.borrow();
    Ok(Outcome {
        status,
        measured: wasi.measured,
        stdout: wasi.stdout.clone(),
    })
}

/// The time of one call from WebAssembly to an empty host function: `wasm` imports
/// `h.f: [] -> []` and exports `spin(n)`, which calls it `n` times.
pub fn host_calls(wasm: &[u8], iters: u32) -> Result<Duration, String> {
    let module = load(wasm)?;
    let mut store = Store::new(engine());
    let ty = FuncType {
        params: Box::new([]),
        results: Box::new([]),
    };
    let func = store.new_host_func(
        ty,
        Box::new(|_: &mut Caller<'_>, _: &[Val], _: &mut [Val]| Ok(())),
    );
    let instance = store
        .instantiate(&module, &[Extern::Func(func)])
        .map_err(|error| error.to_string())?;
    let spin = export(&store, instance, "spin")?;
    let start = Instant::now();
    store
        .call(spin, &[Val::I32(iters.cast_signed())])
        .map_err(|error| error.to_string())?;
    Ok(start.elapsed() / iters)
}
