//! Hosted against QEMU: the same wasm-smith modules run in kernel-core on hal-hosted (in
//! this process) and in the RISC-V kernel (`hal-riscv`) under QEMU, which must agree
//! exactly.
//!
//! Booting QEMU takes seconds, far too long for each of libFuzzer's inputs, so the work is
//! split in two:
//!
//! 1. [`script`] (in process, per input): generates the module the `differential` target
//!    would (the same configuration, fuel and arguments), runs it hosted, and writes what
//!    happened as a spec script ([`Script`]): the module, then for every call an
//!    `assert_return` with the hosted results as exact bit patterns (NaN payloads and
//!    `v128` lanes included; references by nullness) or an `assert_trap` with the hosted
//!    trap's message, then an `assert_return` on every exported global, then the final
//!    memory (below).
//! 2. [`run_in_qemu`] (per batch): the scripts of many inputs become one boot image
//!    (`Job::Wast`, [`kernel_core::boot::image`]) passed as the initrd of one QEMU boot;
//!    the kernel runs every script in a fresh spectest store and prints each failing
//!    command as `path:line: message`. Any failure is a disagreement between the HALs.
//!
//! [`boot_qemu`], the boot itself (an image in, the console out), also serves
//! `sim/tests/parity.rs`, which runs `sim run` requests in batches (`Job::RunBatch`).
//!
//! The final memory is compared exactly, without a hash: the module is registered as
//! `fuzz`, and a checker module imports its memory as memory 0, declares memory 1 of the
//! hosted size holding the hosted bytes (data segments over the non-zero runs), and
//! exports `pages` (memory 0's size) and `first_difference` (the first 8-byte-aligned
//! offset at which the two differ, or -1). The script expects the hosted page count and -1.
//! It needs multiple memories, so the scripts are validated with WebAssembly 2.0 plus
//! multi-memory (the generated modules have at most one memory either way).
//!
//! What is not a finding: a module kernel-core refuses hosted (unsupported, or over a
//! resource), and stack exhaustion. Stack sizes differ between the HALs: a call that
//! exhausts the stack hosted ends its script there (nothing after it is compared), and a
//! script whose first failure in QEMU is an exhaustion is counted as such and skipped.

use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use arbitrary::Unstructured;
use kernel_core::boot::image::{BootImage, CONSOLE_BEGIN, Job, KernelOptions, Script, WastRequest};
use kernel_core::spec::{
    Action, Command, CommandKind, Expected, FloatPattern, RefKind, SpecValue, V128Pattern,
};
use kernel_core::wasm::env::{WASM2_FEATURES, WasmFeatures};
use kernel_core::wasm::runtime::{CallError, Extern, InstantiationError, Module, Store, Val};
use kernel_core::wasm::trap::Trap;

use super::differential;
use crate::hosted_engine;

/// How many times every export is called (as in the `differential` target).
const ROUNDS: usize = 2;

/// The name of the generated module in its script.
const MODULE: &str = "m";

/// The name the generated module is registered under for the memory checker.
const REGISTERED: &str = "fuzz";

/// The WebAssembly features the scripts are validated with in QEMU: 2.0, plus multiple
/// memories for the memory checker.
#[must_use]
pub fn features() -> WasmFeatures {
    WASM2_FEATURES.union(WasmFeatures::MULTI_MEMORY)
}

/// The script of one input: its module run hosted, written down as expectations. `None`
/// when the input makes no module, or one kernel-core does not run hosted (refused,
/// out of a resource while instantiating): nothing to compare.
///
/// # Panics
/// When kernel-core refuses a call whose arguments were made from the function's type.
#[must_use]
pub fn script(path: String, data: &[u8]) -> Option<Script> {
    let mut input = Unstructured::new(data);
    let wasm = differential::generate(&mut input)?;
    let module = Module::new(hosted_engine(), &wasm, WASM2_FEATURES).ok()?;
    let mut store = Store::new(hosted_engine());
    let mut commands = Vec::new();
    let mut push = |kind: CommandKind| {
        let line = u32::try_from(commands.len() + 1).expect("fewer than 2^32 commands");
        commands.push(Command { line, kind });
    };
    let instance = match store.instantiate(&module, &[]) {
        Ok(instance) => instance,
        Err(InstantiationError::Trap(CallError::Trap { trap, .. }))
            if trap != Trap::StackOverflow =>
        {
            push(CommandKind::AssertUninstantiable {
                bytes: wasm,
                message: trap.message().to_owned(),
            });
            return Some(Script { path, commands });
        }
        Err(_) => return None,
    };
    push(CommandKind::Module {
        name: Some(MODULE.to_owned()),
        bytes: wasm,
    });

    let exports = store.exports(instance);
    for _ in 0..ROUNDS {
        for (name, export) in &exports {
            let Extern::Func(func) = *export else {
                continue;
            };
            let ty = store.func_type(func).expect("an exported function").clone();
            let Some(args) = ty
                .params
                .iter()
                .map(|ty| differential::argument(*ty, &mut input))
                .collect::<Option<Vec<_>>>()
            else {
                continue;
            };
            let action = Action::Invoke {
                module: Some(MODULE.to_owned()),
                field: name.clone(),
                args: args.iter().map(spec_value).collect(),
            };
            match store.call(func, &args) {
                Ok(results) => push(CommandKind::AssertReturn {
                    action,
                    expected: results.iter().map(expected).collect(),
                }),
                // The HALs' stacks differ: nothing after an exhaustion is compared.
                Err(CallError::Trap {
                    trap: Trap::StackOverflow,
                    ..
                }) => return Some(Script { path, commands }),
                Err(CallError::Trap { trap, .. }) => push(CommandKind::AssertTrap {
                    action,
                    message: trap.message().to_owned(),
                }),
                Err(error @ CallError::BadArguments(_)) => {
                    panic!("kernel-core refused the call: {error}")
                }
            }
        }
    }

    // The final state: every exported global, then every exported memory.
    for (name, export) in &exports {
        if let Extern::Global(global) = *export {
            let (_, value) = store.global(global).expect("an exported global");
            push(CommandKind::AssertReturn {
                action: Action::Get {
                    module: Some(MODULE.to_owned()),
                    field: name.clone(),
                },
                expected: vec![expected(&value)],
            });
        }
    }
    let mut registered = false;
    for (name, export) in &exports {
        let Extern::Memory(memory) = *export else {
            continue;
        };
        if !registered {
            push(CommandKind::Register {
                as_name: REGISTERED.to_owned(),
                module: Some(MODULE.to_owned()),
            });
            registered = true;
        }
        let data = store.memory_data(memory).expect("an exported memory");
        let checker = name_checker(name);
        push(CommandKind::Module {
            name: Some(checker.clone()),
            bytes: memory_checker(name, data),
        });
        let pages = u32::try_from(data.len() / 65536).expect("a 32-bit memory");
        for (field, value) in [("pages", pages), ("first_difference", u32::MAX)] {
            push(CommandKind::AssertReturn {
                action: Action::Invoke {
                    module: Some(checker.clone()),
                    field: field.to_owned(),
                    args: Vec::new(),
                },
                expected: vec![Expected::I32(value)],
            });
        }
    }
    Some(Script { path, commands })
}

/// The script name of the checker of memory `name`.
fn name_checker(name: &str) -> String {
    format!("memory {name:?}")
}

/// The argument `value` in a script.
fn spec_value(value: &Val) -> SpecValue {
    match *value {
        Val::I32(value) => SpecValue::I32(value.cast_unsigned()),
        Val::I64(value) => SpecValue::I64(value.cast_unsigned()),
        Val::F32(bits) => SpecValue::F32(bits),
        Val::F64(bits) => SpecValue::F64(bits),
        Val::V128(bits) => SpecValue::V128(bits),
        // Arguments are only ever null references (see `differential::argument`).
        Val::FuncRef(_) => SpecValue::FuncRef(None),
        Val::ExternRef(_) => SpecValue::ExternRef(None),
    }
}

/// The exact expectation of a hosted result: every bit of numbers and vectors, the
/// nullness of references (function identities are per engine).
fn expected(value: &Val) -> Expected {
    match *value {
        Val::I32(value) => Expected::I32(value.cast_unsigned()),
        Val::I64(value) => Expected::I64(value.cast_unsigned()),
        Val::F32(bits) => Expected::F32(FloatPattern::Exact(bits)),
        Val::F64(bits) => Expected::F64(FloatPattern::Exact(bits)),
        Val::V128(bits) => Expected::V128(V128Pattern::I8x16(bits.to_le_bytes())),
        Val::FuncRef(None) => Expected::RefNull(Some(RefKind::Func)),
        Val::FuncRef(Some(_)) => Expected::RefFunc,
        Val::ExternRef(None) => Expected::RefNull(Some(RefKind::Extern)),
        Val::ExternRef(Some(host)) => Expected::RefExtern(Some(host)),
    }
}

/// The checker of memory `name` of the registered module: memory 0 is that memory, memory
/// 1 holds `expected`; `pages` is memory 0's size, `first_difference` the first 8-byte
/// word at which the two differ, or -1 (the caller compares the sizes first).
///
/// # Panics
/// When the text does not assemble: a bug here.
#[must_use]
pub fn memory_checker(name: &str, expected: &[u8]) -> Vec<u8> {
    let pages = expected.len() / 65536;
    let mut text = String::new();
    let _ = write!(
        text,
        "(module\n  (memory $actual (import \"{REGISTERED}\" \"{}\") 0)\n  (memory $expected {pages})\n",
        escape(name.as_bytes())
    );
    // One data segment per run of non-zero bytes; runs fewer than 16 zeros apart are one.
    let mut at = 0;
    while let Some(offset) = expected[at..].iter().position(|&byte| byte != 0) {
        let start = at + offset;
        let (mut end, mut cursor) = (start, start);
        while cursor < expected.len() && cursor - end < 16 {
            if expected[cursor] != 0 {
                end = cursor + 1;
            }
            cursor += 1;
        }
        let _ = writeln!(
            text,
            "  (data (memory $expected) (i32.const {start}) \"{}\")",
            escape(&expected[start..end])
        );
        at = cursor;
    }
    let _ = write!(
        text,
        r#"  (func (export "pages") (result i32) (memory.size $actual))
  (func (export "first_difference") (result i32) (local $at i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $at) (i32.const {bytes})))
        (if (i64.ne (i64.load $actual (local.get $at)) (i64.load $expected (local.get $at)))
          (then (return (local.get $at))))
        (local.set $at (i32.add (local.get $at) (i32.const 8)))
        (br $next)))
    (i32.const -1)))
"#,
        bytes = expected.len()
    );
    wat::parse_str(&text).expect("the memory checker assembles")
}

/// `bytes` as the inside of a WebAssembly text string.
fn escape(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 3);
    for byte in bytes {
        let _ = write!(text, "\\{byte:02x}");
    }
    text
}

/// The boot image of a batch of scripts.
#[must_use]
pub fn boot_image(scripts: Vec<Script>) -> Vec<u8> {
    BootImage {
        wasi: kernel_core::boot::image::WasiOptions::default(),
        options: KernelOptions::default(),
        job: Job::Wast(WastRequest {
            features: features().bits(),
            scripts,
        }),
    }
    .encode()
}

/// What one QEMU boot said about a batch.
#[derive(Debug, Default)]
pub struct QemuReport {
    /// The `path:line: message` lines of failing commands, in order.
    pub failures: Vec<String>,
    /// Commands that passed and failed, from the closing `N passed, M failed` line.
    pub passed: u64,
    /// See [`Self::passed`].
    pub failed: u64,
    /// Wall time of the boot.
    pub elapsed: Duration,
}

impl QemuReport {
    /// The failures that are disagreements: those of every script whose first failure
    /// is not a stack exhaustion in QEMU. Returns them with the number of scripts
    /// skipped for an exhaustion.
    #[must_use]
    pub fn disagreements(&self) -> (Vec<&str>, usize) {
        let mut exhausted: Vec<&str> = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        let mut disagreements = Vec::new();
        for line in &self.failures {
            let path = script_path(line);
            if !seen.contains(&path) {
                seen.push(path);
                if line.contains(": exhaustion: ") {
                    exhausted.push(path);
                }
            }
            if !exhausted.contains(&path) {
                disagreements.push(line.as_str());
            }
        }
        (disagreements, exhausted.len())
    }
}

/// The script path of a `path:line: message` failure line.
#[must_use]
pub fn script_path(line: &str) -> &str {
    line.split(':').next().unwrap_or(line)
}

/// The RISC-V kernel: `$K23_KERNEL`, else a `hal-riscv` beside the running executable
/// (a fuzz binary copied with its kernel), else this workspace's release build.
#[must_use]
pub fn kernel_path() -> PathBuf {
    if let Some(path) = std::env::var_os("K23_KERNEL") {
        return PathBuf::from(path);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("hal-riscv")))
        .filter(|path| path.is_file())
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../target/riscv64gc-unknown-none-elf/release/hal-riscv")
        })
}

/// Whether QEMU and the kernel are there; says on stderr what is missing.
fn qemu_available(kernel: &Path) -> bool {
    let qemu = Process::new("qemu-system-riscv64")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !qemu {
        eprintln!(
            "hosted_qemu: no qemu-system-riscv64: modules run hosted only, nothing is compared"
        );
    } else if !kernel.is_file() {
        eprintln!(
            "hosted_qemu: no kernel at {} (build it, or set K23_KERNEL): modules run hosted \
             only, nothing is compared",
            kernel.display()
        );
    }
    qemu && kernel.is_file()
}

/// Boots `kernel` in QEMU with the boot image `image` (as `sim qemu` does: `virt`, the
/// vector unit with VLEN 128, one hart) and reads what the wast job printed.
///
/// # Errors
/// When QEMU cannot start, runs past `timeout`, or the kernel does not end the job with
/// status 0 (every command passed) or 7 (some failed) and its closing line: the message
/// says what happened, with the end of the console output.
pub fn run_in_qemu(kernel: &Path, image: &[u8], timeout: Duration) -> Result<QemuReport, String> {
    let boot = boot_qemu(kernel, image, timeout)?;
    parse_console(&boot)
}

/// What one QEMU boot printed and how it ended.
#[derive(Debug)]
pub struct QemuBoot {
    /// The console output, standard-error lines still marked with
    /// [`kernel_core::boot::image::STDERR_PREFIX`].
    pub console: String,
    /// QEMU's exit status: the kernel's status.
    pub status: std::process::ExitStatus,
    /// What QEMU printed on its own standard error.
    pub stderr: String,
    /// Wall time of the boot.
    pub elapsed: Duration,
}

impl QemuBoot {
    /// The job's output: the console after the [`CONSOLE_BEGIN`] line.
    ///
    /// # Errors
    /// When the kernel never printed that line: the end of the console, to show why.
    pub fn job_output(&self) -> Result<&str, String> {
        self.console
            .split_once(CONSOLE_BEGIN)
            .map(|(_, job)| job)
            .ok_or_else(|| {
                format!(
                    "no `{CONSOLE_BEGIN}` line ({}); console:\n{}",
                    self.status,
                    self.tail()
                )
            })
    }

    /// The last 40 lines of the console and QEMU's standard error, for messages.
    #[must_use]
    pub fn tail(&self) -> String {
        let lines: Vec<&str> = self.console.lines().collect();
        let from = lines.len().saturating_sub(40);
        format!("{}\n{}", lines[from..].join("\n"), self.stderr)
    }
}

/// Boots `kernel` in QEMU with the boot image `image` (as `sim qemu` does: `virt`, the
/// vector unit with VLEN 128, one hart, here 1 GiB of memory) and returns its console.
///
/// # Errors
/// When QEMU cannot start or runs past `timeout`, with the end of the console output.
pub fn boot_qemu(kernel: &Path, image: &[u8], timeout: Duration) -> Result<QemuBoot, String> {
    boot_qemu_on(kernel, image, timeout, 1)
}

/// [`boot_qemu`] on `harts` harts (QEMU's `-smp`).
///
/// # Errors
/// As [`boot_qemu`].
pub fn boot_qemu_on(
    kernel: &Path,
    image: &[u8],
    timeout: Duration,
    harts: u16,
) -> Result<QemuBoot, String> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let bundle = std::env::temp_dir().join(format!(
        "hosted-qemu-{}-{}.bundle",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&bundle, image).map_err(|error| format!("cannot write the bundle: {error}"))?;
    let started = Instant::now();
    let child = Process::new("qemu-system-riscv64")
        .args([
            "-machine",
            "virt",
            "-cpu",
            "rv64,v=true,vlen=128,vext_spec=v1.0",
        ])
        .args(["-nographic", "-bios", "default", "-m", "1024M", "-smp"])
        .arg(harts.to_string())
        .arg("-kernel")
        .arg(kernel)
        .arg("-initrd")
        .arg(&bundle)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let result = match child {
        Ok(mut child) => {
            let mut stdout = child.stdout.take().expect("a piped stdout");
            let reader = std::thread::spawn(move || {
                let mut output = Vec::new();
                let _ = stdout.read_to_end(&mut output);
                output
            });
            let mut stderr = child.stderr.take().expect("a piped stderr");
            let errors = std::thread::spawn(move || {
                let mut text = String::new();
                let _ = stderr.read_to_string(&mut text);
                text
            });
            let status = loop {
                match child.try_wait() {
                    Ok(Some(status)) => break Ok(status),
                    Ok(None) if started.elapsed() > timeout => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break Err(format!("QEMU ran past {} s", timeout.as_secs()));
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                    Err(error) => break Err(format!("cannot wait for QEMU: {error}")),
                }
            };
            let output = reader.join().unwrap_or_default();
            let stderr = errors.join().unwrap_or_default();
            let console = String::from_utf8_lossy(&output).into_owned();
            match status {
                Ok(status) => Ok(QemuBoot {
                    console,
                    status,
                    stderr,
                    elapsed: started.elapsed(),
                }),
                Err(problem) => {
                    let lines: Vec<&str> = console.lines().collect();
                    let from = lines.len().saturating_sub(40);
                    Err(format!(
                        "{problem}; console:\n{}\n{stderr}",
                        lines[from..].join("\n")
                    ))
                }
            }
        }
        Err(error) => Err(format!("cannot start qemu-system-riscv64: {error}")),
    };
    let _ = std::fs::remove_file(&bundle);
    result
}

/// Reads the wast job's output from the console of `boot`.
fn parse_console(boot: &QemuBoot) -> Result<QemuReport, String> {
    let job = boot.job_output()?;
    let mut report = QemuReport {
        elapsed: boot.elapsed,
        ..QemuReport::default()
    };
    let mut closed = false;
    for line in job.lines().map(|line| line.trim_end_matches('\r')) {
        if let Some((passed, failed)) = line
            .strip_suffix(" failed")
            .and_then(|rest| rest.split_once(" passed, "))
            .and_then(|(passed, failed)| Some((passed.parse().ok()?, failed.parse().ok()?)))
        {
            (report.passed, report.failed) = (passed, failed);
            closed = true;
        } else if !line.is_empty() {
            report.failures.push(line.to_owned());
        }
    }
    match boot.status.code() {
        Some(0 | 7) if closed => Ok(report),
        _ => Err(format!(
            "the kernel ended with {}; console:\n{}",
            boot.status,
            boot.tail()
        )),
    }
}

/// The oracle of `cargo test`'s replay of one kept input: its module runs hosted and its
/// script is written (the QEMU half of the replay boots once for all kept inputs, in
/// `tests/fuzz_regressions.rs`, see [`check_in_qemu`]).
///
/// # Panics
/// As [`script`].
pub fn check(data: &[u8]) {
    let _ = script("input".to_owned(), data);
}

/// Runs the scripts of `inputs` (each a name and a fuzz input) in one QEMU boot of
/// `kernel`, and returns how many inputs made a script and how many commands passed.
///
/// # Errors
/// The disagreements, one `name:line: message` line each, or what went wrong with the
/// boot.
pub fn check_in_qemu(kernel: &Path, inputs: &[(String, Vec<u8>)]) -> Result<(usize, u64), String> {
    let scripts: Vec<Script> = inputs
        .iter()
        .filter_map(|(name, data)| script(name.clone(), data))
        .collect();
    let count = scripts.len();
    let report = run_in_qemu(kernel, &boot_image(scripts), QEMU_TIMEOUT)?;
    let (disagreements, _) = report.disagreements();
    if disagreements.is_empty() {
        Ok((count, report.passed))
    } else {
        Err(disagreements.join("\n"))
    }
}

/// How long one QEMU boot may take.
const QEMU_TIMEOUT: Duration = Duration::from_secs(600);

/// Inputs (with a script) per QEMU boot in a campaign.
const BATCH_INPUTS: usize = 256;

/// Bytes of modules per QEMU boot in a campaign, at most (about).
const BATCH_BYTES: usize = 16 << 20;

/// A batch: each input with its script.
type Batch = Vec<(Vec<u8>, Script)>;

/// The state of a libFuzzer campaign: the batch being filled, and the worker thread that
/// boots QEMU for full batches while the fuzzer goes on.
struct Campaign {
    pending: Batch,
    pending_bytes: usize,
    /// Holds at most one full batch waiting for the worker: a fuzzer faster than QEMU
    /// waits here, so every input with a script is compared.
    sender: std::sync::mpsc::SyncSender<Batch>,
    worker: std::thread::JoinHandle<()>,
}

/// The campaign of this process, started by the first input.
static CAMPAIGN: std::sync::Mutex<Option<Campaign>> = std::sync::Mutex::new(None);

/// The hash of the last input [`fuzz`] ran.
static LAST_INPUT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Inputs seen, modules compared, QEMU boots, commands passed, scripts skipped for an
/// exhaustion in QEMU, and seconds spent in QEMU, over the campaign.
static INPUTS: AtomicUsize = AtomicUsize::new(0);
/// See [`INPUTS`].
static COMPARED: AtomicUsize = AtomicUsize::new(0);
/// See [`INPUTS`].
static BOOTS: AtomicUsize = AtomicUsize::new(0);
/// See [`INPUTS`].
static COMMANDS: AtomicUsize = AtomicUsize::new(0);
/// See [`INPUTS`].
static EXHAUSTED: AtomicUsize = AtomicUsize::new(0);
/// See [`INPUTS`].
static QEMU_SECONDS: AtomicUsize = AtomicUsize::new(0);

/// The `hosted_qemu` fuzz target's body: runs the input hosted now, and queues its script
/// for the next QEMU boot. A disagreement found by a boot aborts the process after saving
/// the offending inputs as `qemu-mismatch-<hash>` under libFuzzer's artifact directory.
/// Call [`finish`] at exit, so that the last batch is compared too. Without QEMU or the
/// kernel ([`kernel_path`]) it says so once and runs the modules hosted only.
///
/// # Panics
/// As [`script`], and when the QEMU worker has died.
pub fn fuzz(data: &[u8]) {
    // libFuzzer runs an input a second time when the first run allocated more than it
    // freed, as every run that joins the batch does, before it looks for leaks with a
    // (slow) LeakSanitizer pass. The second run returns here without allocating: no
    // duplicate in the batch, and libFuzzer sees no leak to look for.
    let hash = {
        use std::hash::{Hash as _, Hasher as _};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        data.hash(&mut hasher);
        hasher.finish()
    };
    if LAST_INPUT.swap(hash, Ordering::Relaxed) == hash {
        return;
    }
    let index = INPUTS.fetch_add(1, Ordering::Relaxed);
    let Some(script) = script(format!("input-{index}"), data) else {
        return;
    };
    let mut campaign = CAMPAIGN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let campaign = campaign.get_or_insert_with(|| {
        let (sender, receiver) = std::sync::mpsc::sync_channel::<Batch>(1);
        let kernel = kernel_path();
        let compare = qemu_available(&kernel);
        let worker = std::thread::spawn(move || {
            for batch in receiver {
                if compare {
                    check_batch(&kernel, &batch);
                }
            }
        });
        Campaign {
            pending: Vec::new(),
            pending_bytes: 0,
            sender,
            worker,
        }
    });
    campaign.pending_bytes += script_bytes(&script);
    campaign.pending.push((data.to_vec(), script));
    if campaign.pending.len() >= BATCH_INPUTS || campaign.pending_bytes >= BATCH_BYTES {
        let batch = std::mem::take(&mut campaign.pending);
        campaign.pending_bytes = 0;
        campaign
            .sender
            .send(batch)
            .expect("the QEMU worker is running");
    }
}

/// Compares the last batch of the campaign, waits for the worker and prints the
/// campaign's totals on stderr. Does nothing when no input came.
pub fn finish() {
    let campaign = CAMPAIGN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    let Some(campaign) = campaign else {
        return;
    };
    if !campaign.pending.is_empty() {
        let _ = campaign.sender.send(campaign.pending);
    }
    drop(campaign.sender);
    let _ = campaign.worker.join();
    eprintln!(
        "hosted_qemu: {} inputs, {} modules compared in {} QEMU boots ({} commands passed, \
         {} scripts skipped for stack exhaustion in QEMU, {} s in QEMU)",
        INPUTS.load(Ordering::Relaxed),
        COMPARED.load(Ordering::Relaxed),
        BOOTS.load(Ordering::Relaxed),
        COMMANDS.load(Ordering::Relaxed),
        EXHAUSTED.load(Ordering::Relaxed),
        QEMU_SECONDS.load(Ordering::Relaxed),
    );
}

/// The bytes of modules in `script`, to bound a batch's size.
fn script_bytes(script: &Script) -> usize {
    script
        .commands
        .iter()
        .map(|command| match &command.kind {
            CommandKind::Module { bytes, .. } | CommandKind::AssertUninstantiable { bytes, .. } => {
                bytes.len()
            }
            _ => 64,
        })
        .sum()
}

/// Boots QEMU for `batch`; on a disagreement or a failed boot saves the inputs concerned
/// and aborts.
fn check_batch(kernel: &Path, batch: &Batch) {
    let image = boot_image(batch.iter().map(|(_, script)| script.clone()).collect());
    let report = match run_in_qemu(kernel, &image, QEMU_TIMEOUT) {
        Ok(report) => report,
        Err(problem) => {
            eprintln!(
                "hosted_qemu: a QEMU boot of {} modules failed: {problem}",
                batch.len()
            );
            for (data, _) in batch {
                save(data);
            }
            std::process::abort();
        }
    };
    let (disagreements, exhausted) = report.disagreements();
    if !disagreements.is_empty() {
        eprintln!("hosted_qemu: QEMU disagrees with the hosted run:");
        for line in &disagreements {
            eprintln!("  {line}");
        }
        for (data, script) in batch {
            if disagreements
                .iter()
                .any(|line| script_path(line) == script.path)
            {
                save(data);
            }
        }
        std::process::abort();
    }
    BOOTS.fetch_add(1, Ordering::Relaxed);
    COMPARED.fetch_add(batch.len() - exhausted, Ordering::Relaxed);
    EXHAUSTED.fetch_add(exhausted, Ordering::Relaxed);
    COMMANDS.fetch_add(
        usize::try_from(report.passed).unwrap_or(usize::MAX),
        Ordering::Relaxed,
    );
    QEMU_SECONDS.fetch_add(
        usize::try_from(report.elapsed.as_secs()).unwrap_or(usize::MAX),
        Ordering::Relaxed,
    );
    eprintln!(
        "hosted_qemu: boot {}: {} modules agree ({} commands, {} skipped for exhaustion) in \
         {:.1} s; {} modules so far",
        BOOTS.load(Ordering::Relaxed),
        batch.len() - exhausted,
        report.passed,
        exhausted,
        report.elapsed.as_secs_f64(),
        COMPARED.load(Ordering::Relaxed),
    );
}

/// Saves a disagreeing input under libFuzzer's `-artifact_prefix` (default
/// `fuzz/artifacts/hosted_qemu/`) and says where.
fn save(data: &[u8]) {
    use std::hash::{Hash as _, Hasher as _};
    let prefix = std::env::args()
        .find_map(|arg| arg.strip_prefix("-artifact_prefix=").map(str::to_owned))
        .unwrap_or_else(|| "fuzz/artifacts/hosted_qemu/".to_owned());
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    data.hash(&mut hasher);
    let path = format!("{prefix}qemu-mismatch-{:016x}", hasher.finish());
    match std::fs::write(&path, data) {
        Ok(()) => eprintln!("hosted_qemu: the input is in {path}"),
        Err(error) => eprintln!("hosted_qemu: cannot write {path}: {error}"),
    }
}
