//! wasmi 2.0, the interpreter, with its default configuration (lazy translation of each
//! function at its first call) for running, and eager translation for the compile rows.

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use wasmi::{
    Caller, CompilationMode, Config, Engine, Extern, FuncType, Instance as WiInstance, Linker,
    Module, Store, TypedFunc, Val, ValType,
};

use crate::wasi::{IMPORTS, Slice, Stop, Ty, Wasi};
use crate::{Outcome, value_u64};

/// The engine: lazy translation (`eager` false, wasmi's default) or eager.
pub fn engine(eager: bool) -> &'static Engine {
    static LAZY: OnceLock<Engine> = OnceLock::new();
    static EAGER: OnceLock<Engine> = OnceLock::new();
    let cell = if eager { &EAGER } else { &LAZY };
    cell.get_or_init(|| {
        let mut config = Config::default();
        // Deep recursion (sightglass's ackermann) needs more than wasmi's default stack;
        // kernel-core and Wasmtime run these programs with 512 KiB of machine stack.
        config.set_max_recursion_depth(1 << 20);
        config.set_max_stack_height(64 << 20);
        if eager {
            config.compilation_mode(CompilationMode::Eager);
        }
        Engine::new(&config)
    })
}

fn store<T: 'static>(data: T) -> Store<T> {
    Store::new(engine(false), data)
}

/// Translates `wasm` (every function when `eager`, else only validates it) and returns
/// how long it took.
pub fn compile(wasm: &[u8], eager: bool) -> Result<Duration, String> {
    let start = Instant::now();
    let module = Module::new(engine(eager), wasm).map_err(|error| error.to_string())?;
    let elapsed = start.elapsed();
    drop(module);
    Ok(elapsed)
}

/// An instance of a module without imports.
pub struct Instance {
    store: Store<()>,
    instance: WiInstance,
}

impl Instance {
    /// Compiles and instantiates `wasm`.
    pub fn new(wasm: &[u8]) -> Result<Self, String> {
        let module = Module::new(engine(false), wasm).map_err(|error| error.to_string())?;
        let mut store = store(());
        let instance = Linker::new(engine(false))
            .instantiate_and_start(&mut store, &module)
            .map_err(|error| error.to_string())?;
        Ok(Self { store, instance })
    }

    /// Calls `name(arg)` (its result an `i32` or an `i64`); returns the time of the call
    /// and its result.
    pub fn call(&mut self, name: &str, arg: i32) -> Result<(Duration, u64), String> {
        let func = self
            .instance
            .get_func(&mut self.store, name)
            .ok_or_else(|| format!("no export {name}"))?;
        let is_i32 = matches!(func.ty(&self.store).results().first(), Some(ValType::I32));
        let mut results = [Val::I32(0)];
        let start = Instant::now();
        func.call(&mut self.store, &[Val::I32(arg)], &mut results)
            .map_err(|error| error.to_string())?;
        let elapsed = start.elapsed();
        let value = match results[0] {
            Val::I32(value) => i64::from(value),
            Val::I64(value) => value,
            _ => 0,
        };
        Ok((elapsed, value_u64(value, is_i32)))
    }

    fn typed(&mut self, name: &str) -> Result<TypedFunc<(), ()>, String> {
        self.instance
            .get_typed_func::<(), ()>(&mut self.store, name)
            .map_err(|error| error.to_string())
    }

    /// The time of one call of the exported `name()`, through the typed API.
    pub fn empty_calls(&mut self, name: &str, iters: u32) -> Result<Duration, String> {
        let func = self.typed(name)?;
        let start = Instant::now();
        for _ in 0..iters {
            func.call(&mut self.store, ())
                .map_err(|error| error.to_string())?;
        }
        Ok(start.elapsed() / iters)
    }

    /// The time of one call of the exported `name()` that traps, error included.
    pub fn traps(&mut self, name: &str, iters: u32) -> Result<Duration, String> {
        let func = self.typed(name)?;
        let start = Instant::now();
        for _ in 0..iters {
            if func.call(&mut self.store, ()).is_ok() {
                return Err(format!("{name} did not trap"));
            }
        }
        Ok(start.elapsed() / iters)
    }
}

/// The time of one instantiation of `wasm` (compiled once) in a new store, the store's
/// drop included.
pub fn instantiations(wasm: &[u8], iters: u32) -> Result<Duration, String> {
    let module = Module::new(engine(false), wasm).map_err(|error| error.to_string())?;
    let start = Instant::now();
    for _ in 0..iters {
        let mut store = store(());
        Linker::new(engine(false))
            .instantiate_and_start(&mut store, &module)
            .map_err(|error| error.to_string())?;
    }
    Ok(start.elapsed() / iters)
}

fn val_type(ty: Ty) -> ValType {
    match ty {
        Ty::I32 => ValType::I32,
        Ty::I64 => ValType::I64,
    }
}

/// The host state of a sightglass run: WASI and how the program stopped.
struct Host {
    wasi: Wasi,
    stop: Option<Stop>,
}

/// Runs a sightglass program's `_start` with the comparison's WASI host functions.
pub fn sightglass(wasm: &[u8], dir: &Path) -> Result<Outcome, String> {
    let engine = engine(false);
    let module = Module::new(engine, wasm).map_err(|error| error.to_string())?;
    let mut linker: Linker<Host> = Linker::new(engine);
    for &(m, n, params, results) in IMPORTS {
        let ty = FuncType::new(
            params.iter().copied().map(val_type),
            results.iter().copied().map(val_type),
        );
        linker
            .func_new(m, n, ty, move |mut caller: Caller<'_, Host>, args, out| {
                let args: Vec<i64> = args
                    .iter()
                    .map(|arg| match arg {
                        Val::I32(value) => i64::from(*value),
                        Val::I64(value) => *value,
                        _ => 0,
                    })
                    .collect();
                let memory = match caller.get_export("memory") {
                    Some(Extern::Memory(memory)) => memory,
                    _ => return Err(wasmi::Error::new("no exported memory")),
                };
                let (data, host) = memory.data_and_store_mut(&mut caller);
                match host.wasi.call(&mut Slice(data), m, n, &args) {
                    Ok(result) => {
                        if let (Some(value), Some(slot)) = (result, out.first_mut()) {
                            *slot = Val::I32(value);
                        }
                        Ok(())
                    }
                    Err(stop) => {
                        let message = format!("{stop:?}");
                        host.stop = Some(stop);
                        Err(wasmi::Error::new(message))
                    }
                }
            })
            .map_err(|error| error.to_string())?;
    }
    let mut store = store(Host {
        wasi: Wasi::new(dir.to_path_buf()),
        stop: None,
    });
    let instance = linker
        .instantiate_and_start(&mut store, &module)
        .map_err(|error| error.to_string())?;
    let start = instance
        .get_typed_func::<(), ()>(&mut store, "_start")
        .map_err(|error| error.to_string())?;
    let result = start.call(&mut store, ());
    let host = store.into_data();
    let status = match (result, host.stop) {
        (Ok(()), _) => 0,
        (Err(_), Some(Stop::Exit(status))) => status,
        (Err(error), _) => return Err(format!("trap: {error:?}")),
    };
    Ok(Outcome {
        status,
        measured: host.wasi.measured,
        stdout: host.wasi.stdout,
    })
}

/// The time of one call from WebAssembly to an empty host function: `wasm` imports
/// `h.f: [] -> []` and exports `spin(n)`, which calls it `n` times.
pub fn host_calls(wasm: &[u8], iters: u32) -> Result<Duration, String> {
    let module = Module::new(engine(false), wasm).map_err(|error| error.to_string())?;
    let mut linker: Linker<()> = Linker::new(engine(false));
    linker
        .func_wrap("h", "f", || {})
        .map_err(|error| error.to_string())?;
    let mut store = store(());
    let instance = linker
        .instantiate_and_start(&mut store, &module)
        .map_err(|error| error.to_string())?;
    let spin = instance
        .get_typed_func::<i32, ()>(&mut store, "spin")
        .map_err(|error| error.to_string())?;
    let start = Instant::now();
    spin.call(&mut store, iters.cast_signed())
        .map_err(|error| error.to_string())?;
    Ok(start.elapsed() / iters)
}
