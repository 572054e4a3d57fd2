//! Running WASI programs for the WASI tests (`tests/wasi_testsuite.rs`,
//! `tests/wasi_programs.rs`): `sim run` hosted or `sim qemu run` with the same command
//! line (`--env K=V`, `--dir HOST::GUEST`, the module, its arguments), a timeout, standard
//! input fed and both outputs captured; fixture directories copied fresh and snapshotted.
//!
//! Included with `#[path]` by each test binary (not through `programs/mod.rs`).

#![allow(
    dead_code,
    reason = "each test binary uses its own part of these helpers"
)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Where the program runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hal {
    /// `sim run`: the kernel in this process's host (hal-hosted).
    Hosted,
    /// `sim qemu run`: the RISC-V kernel booted in QEMU, once per program.
    Qemu,
}

impl Hal {
    /// `hosted` or `qemu`, for reports.
    pub fn name(self) -> &'static str {
        match self {
            Hal::Hosted => "hosted",
            Hal::Qemu => "qemu",
        }
    }
}

/// One run of a WASI program.
#[derive(Debug, Default)]
pub struct Invocation {
    /// The module.
    pub wasm: PathBuf,
    /// Its arguments (after its name).
    pub args: Vec<String>,
    /// Its environment, exactly these variables, in this order.
    pub env: Vec<(String, String)>,
    /// Preopened directories: host path, guest name.
    pub dirs: Vec<(PathBuf, String)>,
    /// What it reads from standard input.
    pub stdin: Vec<u8>,
}

/// What a run did.
#[derive(Debug)]
pub struct Outcome {
    /// The exit status; `None` if it was killed (by the timeout or a signal).
    pub status: Option<i32>,
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
    /// Whether the timeout ended it.
    pub timed_out: bool,
    /// Wall-clock time from start to end.
    pub elapsed: Duration,
    /// The command line, for reports.
    pub command: String,
}

impl Outcome {
    /// The status as a report shows it.
    pub fn status_text(&self) -> String {
        match (self.timed_out, self.status) {
            (true, _) => format!("timed out after {:.1} s", self.elapsed.as_secs_f64()),
            (false, Some(code)) => format!("exit status {code}"),
            (false, None) => "killed by a signal".to_owned(),
        }
    }
}

/// The workspace root (the parent of `sim/`).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The workspace's target directory (honouring `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    let workspace = workspace();
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace.join("target"), |dir| workspace.join(dir))
}

/// The team's shared material, `../shared` next to the repository (CI's checkout has it
/// there too): `shared/ext/SUBDIR`, or a panic that says where it was looked for.
pub fn shared_ext(subdir: &str) -> PathBuf {
    let path = workspace().join("../shared/ext").join(subdir);
    assert!(
        path.is_dir(),
        "{} is missing: these tests need the team's shared material (`../shared/ext`, next to \
         the repository; see its README)",
        path.display()
    );
    path.canonicalize().unwrap()
}

/// The riscv64 kernel image, built once per test binary (as `tests/qemu.rs` does), so that
/// no build output lands in the captured output of `sim qemu`.
pub fn kernel() -> &'static str {
    static KERNEL: OnceLock<String> = OnceLock::new();
    KERNEL.get_or_init(|| {
        let built = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "-p", "hal-riscv", "--release"])
            .args(["--target", "riscv64gc-unknown-none-elf"])
            .current_dir(workspace())
            .status()
            .expect("cargo runs");
        assert!(built.success(), "the kernel builds");
        let kernel = target_dir().join("riscv64gc-unknown-none-elf/release/hal-riscv");
        kernel.to_str().unwrap().to_owned()
    })
}

/// A counting semaphore: at most one program per host CPU at a time across the whole test
/// binary (the test harness runs test functions in parallel too), so that a run's timeout
/// measures the program and not the queue for a CPU.
struct Slots {
    free: Mutex<usize>,
    freed: Condvar,
}

fn slots() -> &'static Slots {
    static SLOTS: OnceLock<Slots> = OnceLock::new();
    SLOTS.get_or_init(|| Slots {
        free: Mutex::new(parallelism()),
        freed: Condvar::new(),
    })
}

/// How many programs run at once: the host's CPUs.
pub fn parallelism() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}

struct Slot;

impl Slot {
    fn take() -> Slot {
        let slots = slots();
        let mut free = slots.free.lock().unwrap();
        while *free == 0 {
            free = slots.freed.wait(free).unwrap();
        }
        *free -= 1;
        Slot
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let slots = slots();
        *slots.free.lock().unwrap() += 1;
        slots.freed.notify_one();
    }
}

/// The `sim` binary; `WASI_TEST_SIM` replaces it for hosted runs (to check these tests
/// against another runtime that takes the same `run` command line).
fn sim_binary(hal: Hal) -> PathBuf {
    match (hal, std::env::var_os("WASI_TEST_SIM")) {
        (Hal::Hosted, Some(other)) => PathBuf::from(other),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_sim")),
    }
}

/// Runs `invocation` on `hal` and waits at most `timeout` for it (then kills it and every
/// process it started: QEMU too).
pub fn run(hal: Hal, invocation: &Invocation, timeout: Duration) -> Outcome {
    let mut args: Vec<String> = Vec::new();
    if hal == Hal::Qemu {
        // `sim qemu`'s own timeout a little past ours: ours reports it.
        let qemu_timeout = timeout.as_secs() + 30;
        args.extend(["qemu", "--kernel", kernel(), "--timeout"].map(String::from));
        args.push(qemu_timeout.to_string());
    }
    args.push("run".to_owned());
    for (key, value) in &invocation.env {
        args.push("--env".to_owned());
        args.push(format!("{key}={value}"));
    }
    for (host, guest) in &invocation.dirs {
        args.push("--dir".to_owned());
        args.push(format!("{}::{guest}", host.display()));
    }
    args.push(invocation.wasm.display().to_string());
    args.extend(invocation.args.iter().cloned());
    let binary = sim_binary(hal);
    let command = format!("{} {}", binary.display(), shell_words(&args));
    let mut cmd = Command::new(&binary);
    cmd.args(&args);
    execute(cmd, &invocation.stdin, timeout, command)
}

/// Runs a native program: `binary ARGS` in `cwd`, with exactly `env`.
pub fn run_native(
    binary: &Path,
    args: &[String],
    env: &[(String, String)],
    cwd: &Path,
    stdin: &[u8],
    timeout: Duration,
) -> Outcome {
    let mut cmd = Command::new(binary);
    cmd.args(args)
        .current_dir(cwd)
        .env_clear()
        .envs(env.iter().cloned());
    let command = format!(
        "(cd {} && {} {})",
        cwd.display(),
        binary.display(),
        shell_words(args)
    );
    execute(cmd, stdin, timeout, command)
}

fn execute(mut cmd: Command, stdin: &[u8], timeout: Duration, command: String) -> Outcome {
    let _slot = Slot::take();
    // Its own process group, so that a timeout kills QEMU with `sim`.
    cmd.process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|error| panic!("{command}: cannot start: {error}"));
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    // A program that does not read its input closes the pipe: the write error is expected.
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let reader = |mut stream: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = stream.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = reader(Box::new(child.stdout.take().unwrap()));
    let stderr = reader(Box::new(child.stderr.take().unwrap()));
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > timeout {
            timed_out = true;
            // The whole group, by its id (the child's pid): sim and the QEMU it started.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = started.elapsed();
    writer.join().unwrap();
    Outcome {
        status: status.code(),
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
        timed_out,
        elapsed,
        command,
    }
}

/// `args` quoted for a shell where needed, for reports.
fn shell_words(args: &[String]) -> String {
    args.iter()
        .map(|arg| {
            if !arg.is_empty()
                && arg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_=./:,+@".contains(c))
            {
                arg.clone()
            } else {
                format!("'{}'", arg.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A fresh, empty scratch directory `NAME` for this test binary.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sim-wasi-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Copies the tree `from` into the new directory `to`, every file and directory writable
/// (the shared material is read-only), symbolic links as links.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir(to).unwrap_or_else(|error| panic!("{}: {error}", to.display()));
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type().unwrap();
        if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&source).unwrap(), &target).unwrap();
        } else if kind.is_dir() {
            copy_tree(&source, &target);
        } else {
            std::fs::write(&target, std::fs::read(&source).unwrap()).unwrap();
        }
    }
}

/// One entry of a directory tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    /// A directory.
    Dir,
    /// A regular file and its contents.
    File(Vec<u8>),
    /// A symbolic link and its target.
    Symlink(PathBuf),
}

/// Every entry under `root` by its path relative to `root` (`a/b`), sorted.
pub fn snapshot(root: &Path) -> BTreeMap<String, Node> {
    fn walk(root: &Path, dir: &Path, into: &mut BTreeMap<String, Node>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let name = path.strip_prefix(root).unwrap().display().to_string();
            let kind = entry.file_type().unwrap();
            if kind.is_symlink() {
                into.insert(name, Node::Symlink(std::fs::read_link(&path).unwrap()));
            } else if kind.is_dir() {
                into.insert(name, Node::Dir);
                walk(root, &path, into);
            } else {
                into.insert(name, Node::File(std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut tree = BTreeMap::new();
    walk(root, root, &mut tree);
    tree
}

/// The differences between two snapshots, one line each; empty when they are equal.
pub fn tree_diff(
    left_name: &str,
    left: &BTreeMap<String, Node>,
    right_name: &str,
    right: &BTreeMap<String, Node>,
) -> String {
    let describe = |node: Option<&Node>| match node {
        None => "missing".to_owned(),
        Some(Node::Dir) => "a directory".to_owned(),
        Some(Node::File(bytes)) => format!("a file of {} bytes: {:?}", bytes.len(), preview(bytes)),
        Some(Node::Symlink(target)) => format!("a symlink to {}", target.display()),
    };
    let mut out = String::new();
    let names: std::collections::BTreeSet<&String> = left.keys().chain(right.keys()).collect();
    for name in names {
        let (l, r) = (left.get(name), right.get(name));
        if l != r {
            let _ = writeln!(
                out,
                "  {name}: {left_name} {}, {right_name} {}",
                describe(l),
                describe(r)
            );
        }
    }
    out
}

/// The start of `bytes` as text, for reports.
pub fn preview(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    if text.chars().count() > 400 {
        format!("{}...", text.chars().take(400).collect::<String>())
    } else {
        text.into_owned()
    }
}

/// Runs `job` over `items` on `threads` threads and returns the results in `items`' order.
pub fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    job: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(item) = items.get(index) else { break };
                    let result = job(item);
                    results.lock().unwrap()[index] = Some(result);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|result| result.unwrap())
        .collect()
}
