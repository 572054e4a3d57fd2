//! Wasmtime 48 through its embedding API: Cranelift at `opt_level=speed`, no cache, epoch
//! interruption on (the same checks kernel-core compiles into every function entry and
//! loop header), and the same bounds-checking strategy as kernel-core: a 4 GiB reservation
//! with a 4 GiB guard region, so that generated code does no explicit bounds check and an
//! out-of-bounds access faults (signals-based traps).

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use wasmtime::{
    Caller, Config, Engine, Extern, FuncType, Instance as WtInstance, Linker, Module, OptLevel,
    Store, TypedFunc, Val, ValType,
};

use crate::wasi::{IMPORTS, Slice, Stop, Ty, Wasi};
use crate::{Outcome, value_u64};

/// Epochs are never advanced here: the deadline only has to be far away.
const DEADLINE: u64 = 1 << 40;

fn config(parallel: bool) -> Config {
    let mut config = Config::new();
    config
        .cranelift_opt_level(OptLevel::Speed)
        .parallel_compilation(parallel)
        .epoch_interruption(true)
        .memory_reservation(4 << 30)
        .memory_guard_size(4 << 30)
        .signals_based_traps(true);
    config
}

/// The engine: one compilation thread (`parallel` false) or Wasmtime's default thread
/// pool (one per CPU).
pub fn engine(parallel: bool) -> &'static Engine {
    static SERIAL: OnceLock<Engine> = OnceLock::new();
    static PARALLEL: OnceLock<Engine> = OnceLock::new();
    let cell = if parallel { &PARALLEL } else { &SERIAL };
    cell.get_or_init(|| Engine::new(&config(parallel)).expect("Wasmtime accepts the configuration"))
}

fn store<T: 'static>(data: T) -> Store<T> {
    let mut store = Store::new(engine(false), data);
    store.set_epoch_deadline(DEADLINE);
    store
}

/// Compiles `wasm` (eagerly, every function) and returns how long it took.
pub fn compile(wasm: &[u8], parallel: bool) -> Result<Duration, String> {
    let start = Instant::now();
    let module = Module::new(engine(parallel), wasm).map_err(|error| error.to_string())?;
    let elapsed = start.elapsed();
    drop(module);
    Ok(elapsed)
}

/// An instance of a module without imports.
pub struct Instance {
    store: Store<()>,
    instance: WtInstance,
}

impl Instance {
    /// Compiles and instantiates `wasm`.
    pub fn new(wasm: &[u8]) -> Result<Self, String> {
        let module = Module::new(engine(false), wasm).map_err(|error| error.to_string())?;
        let mut store = store(());
        let instance =
            WtInstance::new(&mut store, &module, &[]).map_err(|error| error.to_string())?;
        Ok(Self { store, instance })
    }

    /// Calls `name(arg)` (its result an `i32` or an `i64`); returns the time of the call
    /// and its result.
    pub fn call(&mut self, name: &str, arg: i32) -> Result<(Duration, u64), String> {
        let func = self
            .instance
            .get_func(&mut self.store, name)
            .ok_or_else(|| format!("no export {name}"))?;
        let is_i32 = matches!(func.ty(&self.store).results().next(), Some(ValType::I32));
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
        WtInstance::new(&mut store, &module, &[]).map_err(|error| error.to_string())?;
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
            engine,
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
                    _ => return Err(wasmtime::format_err!("no exported memory")),
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
                        Err(wasmtime::format_err!("{message}"))
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
        .instantiate(&mut store, &module)
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
        .instantiate(&mut store, &module)
        .map_err(|error| error.to_string())?;
    let spin = instance
        .get_typed_func::<i32, ()>(&mut store, "spin")
        .map_err(|error| error.to_string())?;
    let start = Instant::now();
    spin.call(&mut store, iters.cast_signed())
        .map_err(|error| error.to_string())?;
    Ok(start.elapsed() / iters)
}
