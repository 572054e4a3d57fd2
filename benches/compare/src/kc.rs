//! kernel-core (hosted): the runtime API of `kernel_core::wasm::runtime` on the hosted
//! HAL, the code the kernel runs processes with, minus the scheduler; and whole boots of
//! the hosted kernel for what only the kernel does (sightglass programs as processes with
//! the kernel's WASI and `bench` markers, compilation on the kernel's CPUs).

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use hal_hosted::{HostedConfig, HostedHal};
use kernel_core::boot::image::{
    BootImage, Job, KernelOptions, Preopen, PreopenSource, RunRequest, WasiOptions,
};
use kernel_core::wasm::env::{FuncType, WASM2_FEATURES};
use kernel_core::wasm::runtime::{
    Caller, Engine, EngineConfig, Extern, Func, InstanceId, Module, Store, TypedFunc, Val,
};

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

    /// The exported `name()` (no parameters, no results) as a typed function, as the
    /// peers call it.
    fn typed_unit(&self, name: &str) -> Result<TypedFunc<(), ()>, String> {
        let func = export(&self.store, self.instance, name)?;
        self.store
            .typed_func::<(), ()>(func)
            .map_err(|error| error.to_string())
    }

    /// The time of one call of the exported `name()` (no parameters, no results).
    pub fn empty_calls(&mut self, name: &str, iters: u32) -> Result<Duration, String> {
        let func = self.typed_unit(name)?;
        let start = Instant::now();
        for _ in 0..iters {
            func.call(&mut self.store, ())
                .map_err(|error| error.to_string())?;
        }
        Ok(start.elapsed() / iters)
    }

    /// The time of one call of the exported `name()` that traps, error included.
    pub fn traps(&mut self, name: &str, iters: u32) -> Result<Duration, String> {
        let func = self.typed_unit(name)?;
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

/// What a boot of the hosted kernel printed and how it ended.
struct Boot {
    /// The boot's status (the `sim run` job's exit code).
    status: u8,
    /// The console's standard output.
    stdout: Vec<u8>,
    /// The console's standard error.
    stderr: Vec<u8>,
    /// The boot's wall time, from the HAL's making to the kernel's end.
    elapsed: Duration,
}

/// Boots the hosted kernel on `cpus` CPUs with `image`, its console captured.
fn boot(image: &BootImage, cpus: usize) -> Boot {
    let start = Instant::now();
    let hal = HostedHal::new(HostedConfig {
        cpus: Some(cpus),
        boot_image: Some(image.encode()),
        capture_output: true,
        ..HostedConfig::default()
    });
    let (hal, status) = kernel_core::boot::run(hal);
    let elapsed = start.elapsed();
    let (stdout, stderr) = hal.take_output();
    Boot {
        status,
        stdout,
        stderr,
        elapsed,
    }
}

/// The boot image of `sim run` for `wasm` (no arguments), with `options` and `wasi`.
fn run_image(wasm: &[u8], options: KernelOptions, wasi: WasiOptions) -> BootImage {
    BootImage {
        options,
        wasi,
        job: Job::Run(RunRequest {
            path: "benchmark.wasm".into(),
            module: wasm.to_vec(),
            invoke: None,
            args: Vec::new(),
        }),
    }
}

/// Runs a sightglass program as a process of the hosted kernel on one CPU, as `sim run
/// --bench-times --dir DIR::. benchmark.wasm` does: the kernel's WASI with the program's
/// directory preopened as `.`, the kernel's `bench.start` / `bench.end`; the measured
/// region is the sum of the intervals the kernel printed (`bench: N ns` lines).
pub fn sightglass(wasm: &[u8], dir: &Path) -> Result<Outcome, String> {
    let dir = dir
        .canonicalize()
        .map_err(|error| format!("{}: {error}", dir.display()))?;
    let wasi = WasiOptions {
        preopens: vec![Preopen {
            guest: ".".into(),
            source: PreopenSource::Host(dir.display().to_string()),
        }],
        realtime_ns: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |time| u64::try_from(time.as_nanos()).unwrap_or(u64::MAX)),
        ..WasiOptions::default()
    };
    let options = KernelOptions {
        quiet: true,
        bench_times: true,
        ..KernelOptions::default()
    };
    let run = boot(&run_image(wasm, options, wasi), 1);
    let stderr = String::from_utf8_lossy(&run.stderr);
    let mut measured: Option<Duration> = None;
    for line in stderr.lines() {
        if let Some(ns) = line
            .strip_prefix("bench: ")
            .and_then(|rest| rest.strip_suffix(" ns"))
        {
            let ns: u64 = ns
                .parse()
                .map_err(|_| format!("a bench line that is not a time: {line}"))?;
            measured = Some(measured.unwrap_or_default() + Duration::from_nanos(ns));
        } else if !line.is_empty() {
            // Anything else the kernel printed (a trap, a link error) fails the cell.
            return Err(format!("the kernel printed: {line}"));
        }
    }
    Ok(Outcome {
        status: i32::from(run.status),
        measured,
        stdout: run.stdout,
    })
}

/// The wall time of booting the hosted kernel on `cpus` CPUs to run `wasm` (to be
/// instantiated only, it must not export `_start`), as `sim run` does: the module compiled
/// by the process with the kernel's compile workers, one per CPU
/// (`kernel_core::process::workers`).
pub fn boot_and_load(wasm: &[u8], cpus: usize) -> Result<Duration, String> {
    let options = KernelOptions {
        quiet: true,
        ..KernelOptions::default()
    };
    let run = boot(&run_image(wasm, options, WasiOptions::default()), cpus);
    if run.status != 0 {
        return Err(format!(
            "boot status {}: {}",
            run.status,
            String::from_utf8_lossy(&run.stderr).trim()
        ));
    }
    Ok(run.elapsed)
}

/// `wasm` without its export section, so that the `sim run` job only compiles and
/// instantiates it (a program's `_start` would run). Sections are length-prefixed, and
/// nothing inside a module refers to its exports.
fn without_exports(wasm: &[u8]) -> Result<Vec<u8>, String> {
    const EXPORT_SECTION: u8 = 7;
    let malformed = || "a malformed module".to_string();
    let mut out = wasm.get(..8).ok_or_else(malformed)?.to_vec();
    let mut offset = 8;
    while offset < wasm.len() {
        let id = wasm[offset];
        // The section's size: unsigned LEB128, at most 5 bytes.
        let (mut size, mut shift, mut cursor) = (0usize, 0, offset + 1);
        loop {
            let byte = *wasm.get(cursor).ok_or_else(malformed)?;
            cursor += 1;
            size |= usize::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                break;
            }
            if shift >= 35 {
                return Err(malformed());
            }
        }
        let end = cursor.checked_add(size).ok_or_else(malformed)?;
        let section = wasm.get(offset..end).ok_or_else(malformed)?;
        if id != EXPORT_SECTION {
            out.extend_from_slice(section);
        }
        offset = end;
    }
    Ok(out)
}

/// The time the hosted kernel on `cpus` CPUs takes to compile `wasm` in a process with its
/// compile workers: a boot that loads `wasm` without its exports ([`boot_and_load`]) less
/// the median of three boots that load an empty module (the boot's own cost, about a
/// millisecond).
pub fn kernel_compile(wasm: &[u8], cpus: usize) -> Result<Duration, String> {
    let wasm = without_exports(wasm)?;
    let wasm = wasm.as_slice();
    let empty = wat::parse_str("(module)").map_err(|error| error.to_string())?;
    let mut base = [
        boot_and_load(&empty, cpus)?,
        boot_and_load(&empty, cpus)?,
        boot_and_load(&empty, cpus)?,
    ];
    base.sort();
    Ok(boot_and_load(wasm, cpus)?.saturating_sub(base[1]))
}
