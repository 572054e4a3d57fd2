//! Small WASI programs written here (`tests/wasi-programs/`: Rust with std, C with
//! wasi-libc), each built twice, for wasm32-wasip1 and natively for the host, and run both
//! ways on fresh copies of the same fixture directory with the same arguments, environment
//! and standard input: the kernel's run (hosted, and under QEMU) must print the same
//! standard output, leave the same directory tree and exit with the same status as the
//! native program under Linux. The wasm side gets the fixture as `--dir FIXTURE::.`, the
//! native side as its working directory.
//!
//! And `c/escapes.c`: every way out of a preopen it can try, one line each, compared with
//! `c/escapes.expected` (the answers Wasmtime gives).
//!
//! Needs the `wasm32-wasip1` Rust target (`rust-toolchain.toml`) and Debian's `clang lld
//! wasi-libc libclang-rt-dev-wasm32` (`scripts/test.sh` installs them when missing).

#[path = "programs/wasi_harness.rs"]
mod harness;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use harness::{Hal, Invocation, Node, Outcome};

/// A native program or the hosted kernel: a few seconds at most.
const HOSTED_TIMEOUT: Duration = Duration::from_secs(20);
/// Under QEMU the kernel compiles each program inside the emulator first.
const QEMU_TIMEOUT: Duration = Duration::from_secs(180);

/// `tests/wasi-programs/`.
fn sources() -> PathBuf {
    harness::workspace().join("tests/wasi-programs")
}

/// Where the programs are built: `target/wasi-programs/`.
fn out_dir() -> PathBuf {
    harness::target_dir().join("wasi-programs")
}

/// The C programs, built by clang for both targets.
const C_PROGRAMS: [&str; 3] = ["files", "ops", "escapes"];

/// Builds every program once per test binary: the Rust ones with cargo for wasm32-wasip1
/// and for the host, the C ones with clang (wasi-libc) and the host's clang.
fn build() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let manifest = sources().join("Cargo.toml");
        for target in [Some("wasm32-wasip1"), None] {
            let mut cargo = Command::new(env!("CARGO"));
            cargo
                .args(["build", "--quiet", "--release", "--manifest-path"])
                .arg(&manifest)
                .arg("--target-dir")
                .arg(out_dir());
            if let Some(target) = target {
                cargo.args(["--target", target]);
            }
            let status = cargo.status().expect("cargo runs");
            assert!(
                status.success(),
                "building tests/wasi-programs for {} failed (the wasm32-wasip1 target comes \
                 with rust-toolchain.toml: `rustup toolchain install`)",
                target.unwrap_or("the host")
            );
        }
        let c_out = out_dir().join("c");
        std::fs::create_dir_all(&c_out).unwrap();
        for program in C_PROGRAMS {
            let source = sources().join("c").join(format!("{program}.c"));
            let mut wasm = Command::new("clang");
            // Without DWARF: a smaller module for QEMU's boot image; the names stay.
            wasm.args(["--target=wasm32-wasi", "-O2", "-Wall", "-Werror"])
                .arg("-Wl,--strip-debug");
            // Debian 12's wasi-libc is in clang's default search path for the target;
            // later releases use this sysroot.
            if Path::new("/usr/share/wasi-sysroot").is_dir() {
                wasm.arg("--sysroot=/usr/share/wasi-sysroot");
            }
            wasm.arg("-o")
                .arg(c_out.join(format!("{program}.wasm")))
                .arg(&source);
            compile(wasm, &source);
            if program != "escapes" {
                let mut native = Command::new("clang");
                native
                    .args(["-O2", "-Wall", "-Werror", "-o"])
                    .arg(c_out.join(program))
                    .arg(&source);
                compile(native, &source);
            }
        }
    });
}

fn compile(mut command: Command, source: &Path) {
    let output = command.output().unwrap_or_else(|error| {
        panic!(
            "clang: {error} (install Debian's clang lld wasi-libc libclang-rt-dev-wasm32, as \
             scripts/test.sh does)"
        )
    });
    assert!(
        output.status.success(),
        "{command:?} failed for {} (needs Debian's clang lld wasi-libc \
         libclang-rt-dev-wasm32):\n{}",
        source.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A program, in both builds.
#[derive(Clone, Copy, Debug)]
enum Program {
    /// `src/bin/NAME.rs`.
    Rust(&'static str),
    /// `c/NAME.c`.
    C(&'static str),
}

impl Program {
    fn wasm(self) -> PathBuf {
        match self {
            Program::Rust(name) => out_dir().join(format!("wasm32-wasip1/release/{name}.wasm")),
            Program::C(name) => out_dir().join(format!("c/{name}.wasm")),
        }
    }

    fn native(self) -> PathBuf {
        match self {
            Program::Rust(name) => out_dir().join(format!("release/{name}")),
            Program::C(name) => out_dir().join(format!("c/{name}")),
        }
    }
}

/// The fixture every program starts from: text and binary files, nested and empty
/// directories.
fn make_fixture(dir: &Path) {
    std::fs::create_dir_all(dir.join("data/nested")).unwrap();
    std::fs::create_dir_all(dir.join("empty")).unwrap();
    std::fs::write(dir.join("hello.txt"), "hello, world\nsecond line\n").unwrap();
    std::fs::write(dir.join("junk.txt"), "delete me\n").unwrap();
    let numbers: String = (1..=500).map(|n| format!("{n}\n")).collect();
    std::fs::write(dir.join("data/numbers.txt"), numbers).unwrap();
    std::fs::write(dir.join("data/old.txt"), "old contents\n").unwrap();
    std::fs::write(dir.join("data/nested/deep.txt"), "deep\n").unwrap();
    std::fs::write(dir.join("data/nested/ünïcode name.txt"), "ü\n").unwrap();
    let binary: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(dir.join("big.bin"), binary).unwrap();
}

/// One comparison: a program, its arguments, environment and input, and the status both
/// builds must exit with.
struct Case {
    name: &'static str,
    program: Program,
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
    stdin: &'static str,
    /// How many times `stdin` is repeated (1: once).
    repeat: usize,
    status: i32,
}

const INPUT: &str = "first line\nsecond, with ünïcode ✓\n\n  indented\nno newline at the end";

const RUST_CASES: &[Case] = &[
    Case {
        name: "walk",
        program: Program::Rust("walk"),
        args: &[".", "data/nested", "missing"],
        env: &[],
        stdin: "",
        repeat: 1,
        status: 2,
    },
    Case {
        name: "filter",
        program: Program::Rust("filter"),
        args: &["7"],
        env: &[],
        stdin: INPUT,
        repeat: 1,
        status: 7,
    },
    Case {
        name: "filter-big-input",
        program: Program::Rust("filter"),
        args: &["0"],
        env: &[],
        stdin: "a line of the big input, to be reversed\n",
        repeat: 8000,
        status: 0,
    },
    Case {
        name: "filter-empty-input",
        program: Program::Rust("filter"),
        args: &[],
        env: &[],
        stdin: "",
        repeat: 1,
        status: 0,
    },
    Case {
        name: "args-env",
        program: Program::Rust("args_env"),
        args: &["one", "two words", "", "ünï ✓", "-n", "--flag", "a=b"],
        env: &[("B", "x=y"), ("A", "1"), ("EMPTY", ""), ("SPACE", "a b\nc")],
        stdin: "",
        repeat: 1,
        status: 0,
    },
    Case {
        name: "fsops",
        program: Program::Rust("fsops"),
        args: &["."],
        env: &[],
        stdin: "",
        repeat: 1,
        status: 0,
    },
];

const C_CASES: &[Case] = &[
    Case {
        name: "files",
        program: Program::C("files"),
        args: &[
            ".",
            "data",
            "data/nested",
            "hello.txt",
            "big.bin",
            "missing.txt",
        ],
        env: &[],
        stdin: INPUT,
        repeat: 1,
        status: 2,
    },
    Case {
        name: "ops",
        program: Program::C("ops"),
        args: &["5"],
        env: &[],
        stdin: "",
        repeat: 1,
        status: 5,
    },
];

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `case` natively and on `hal`, each on a fresh copy of the fixture; `Some(report)`
/// when they differ or the status is not the expected one.
fn compare(case: &Case, hal: Hal, scratch: &Path) -> Option<String> {
    let dir = scratch.join(case.name);
    let fixture = dir.join("fixture");
    make_fixture(&fixture);
    let (native_dir, wasm_dir) = (dir.join("native"), dir.join("wasm"));
    harness::copy_tree(&fixture, &native_dir);
    harness::copy_tree(&fixture, &wasm_dir);
    let stdin = case.stdin.repeat(case.repeat).into_bytes();
    let args: Vec<String> = case.args.iter().map(|arg| (*arg).to_owned()).collect();
    let env: Vec<(String, String)> = case
        .env
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect();
    let native = harness::run_native(
        &case.program.native(),
        &args,
        &env,
        &native_dir,
        &stdin,
        HOSTED_TIMEOUT,
    );
    let invocation = Invocation {
        wasm: case.program.wasm(),
        args,
        env,
        dirs: vec![(wasm_dir.clone(), ".".to_owned())],
        stdin,
    };
    let timeout = match hal {
        Hal::Hosted => HOSTED_TIMEOUT,
        Hal::Qemu => QEMU_TIMEOUT,
    };
    let wasm = harness::run(hal, &invocation, timeout);
    let mut problems = Vec::new();
    if native.status != Some(case.status) || native.timed_out {
        problems.push(format!(
            "the native build: {}, expected exit status {} (the test itself is wrong)",
            native.status_text(),
            case.status
        ));
    }
    if wasm.status != native.status || wasm.timed_out {
        problems.push(format!(
            "{}, native {}",
            wasm.status_text(),
            native.status_text()
        ));
    }
    if wasm.stdout != native.stdout {
        problems.push(format!(
            "stdout differs:\n{}",
            line_diff(&text(&native.stdout), &text(&wasm.stdout))
        ));
    }
    let trees = harness::tree_diff(
        "native",
        &harness::snapshot(&native_dir),
        hal.name(),
        &harness::snapshot(&wasm_dir),
    );
    if !trees.is_empty() {
        problems.push(format!("the directory trees differ:\n{trees}"));
    }
    if problems.is_empty() {
        let _ = std::fs::remove_dir_all(&dir);
        return None;
    }
    Some(report(case.name, &wasm, &problems))
}

fn report(name: &str, wasm: &Outcome, problems: &[String]) -> String {
    format!(
        "FAIL {name}:\n  {}\n  stderr: {:?}\n  command: {}",
        problems.join("\n  "),
        harness::preview(&wasm.stderr),
        wasm.command
    )
}

/// The lines that differ between `expected` and `actual` (the first dozen), numbered.
fn line_diff(expected: &str, actual: &str) -> String {
    let (expected, actual): (Vec<&str>, Vec<&str>) =
        (expected.lines().collect(), actual.lines().collect());
    let mut out = String::new();
    let differing = (0..expected.len().max(actual.len()))
        .filter(|&index| expected.get(index) != actual.get(index))
        .take(12);
    for index in differing {
        let line = |lines: &[&str]| lines.get(index).copied().unwrap_or("<none>").to_owned();
        out.push_str(&format!(
            "    line {}, native: {:?}\n    line {}, wasm:   {:?}\n",
            index + 1,
            line(&expected),
            index + 1,
            line(&actual)
        ));
    }
    out
}

/// Runs every case on `hal` (in parallel threads; one program per host CPU at a time)
/// and fails with each difference.
fn all_match(set: &str, cases: &[Case], hal: Hal) {
    build();
    if hal == Hal::Qemu {
        harness::kernel();
    }
    let scratch = harness::scratch(&format!("programs-{set}-{}", hal.name()));
    let started = std::time::Instant::now();
    let failures: Vec<String> = harness::parallel_map(cases, harness::parallelism(), |case| {
        compare(case, hal, &scratch)
    })
    .into_iter()
    .flatten()
    .collect();
    println!(
        "wasi programs {set} ({}): {} passed, {} failed ({:.1} s)",
        hal.name(),
        cases.len() - failures.len(),
        failures.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let _ = std::fs::remove_dir_all(&scratch);
}

#[test]
fn rust_programs_match_native_hosted() {
    all_match("rust", RUST_CASES, Hal::Hosted);
}

#[test]
fn c_programs_match_native_hosted() {
    all_match("c", C_CASES, Hal::Hosted);
}

#[test]
fn rust_programs_match_native_in_qemu() {
    all_match("rust", RUST_CASES, Hal::Qemu);
}

#[test]
fn c_programs_match_native_in_qemu() {
    all_match("c", C_CASES, Hal::Qemu);
}

/// The tree `escapes.c` runs in: `root/` (preopened as `/`) with symbolic links that point
/// out of it in every way, next to files outside that must stay untouched.
fn make_escape_fixture(dir: &Path) -> PathBuf {
    use std::os::unix::fs::symlink;
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("dir")).unwrap();
    std::fs::create_dir_all(dir.join("outside-dir")).unwrap();
    std::fs::write(dir.join("outside.txt"), "secret\n").unwrap();
    std::fs::write(root.join("file"), "inside\n").unwrap();
    std::fs::write(root.join("dir/inner.txt"), "inner\n").unwrap();
    for (link, target) in [
        ("abs", "/etc"),
        ("absroot", "/"),
        ("up", ".."),
        ("upfile", "../outside.txt"),
        ("dir/sneaky", "../../outside.txt"),
        ("dir/parent", ".."),
        ("loop1", "loop2"),
        ("loop2", "loop1"),
        ("self", "self"),
        ("tofile", "file"),
        ("filedir", "file/x"),
    ] {
        symlink(target, root.join(link)).unwrap();
    }
    root
}

/// `escapes.expected`: one `ATTEMPT => ANSWER [| ANSWER]...` per line.
fn expected_escapes() -> Vec<(String, Vec<String>)> {
    let path = sources().join("c/escapes.expected");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (attempt, answers) = line
                .split_once(" => ")
                .unwrap_or_else(|| panic!("escapes.expected: no ` => ` in {line:?}"));
            let answers = answers.split(" | ").map(str::to_owned).collect();
            (attempt.to_owned(), answers)
        })
        .collect()
}

/// `escapes.c`'s output as (attempt, answer): the attempt is padded to 44 columns.
fn parse_escapes(stdout: &str) -> Vec<(String, String)> {
    stdout
        .lines()
        .map(|line| {
            let (attempt, answer) = line.split_at(line.len().min(45));
            (attempt.trim_end().to_owned(), answer.trim().to_owned())
        })
        .collect()
}

/// The differences between `escapes.c`'s output and the expected listing.
fn escape_differences(stdout: &str) -> Vec<String> {
    let expected = expected_escapes();
    let actual = parse_escapes(stdout);
    if actual.is_empty() {
        return vec![format!("no output, expected {} lines", expected.len())];
    }
    let mut out = Vec::new();
    for index in 0..expected.len().max(actual.len()) {
        match (expected.get(index), actual.get(index)) {
            (Some((attempt, answers)), Some((got_attempt, got))) => {
                if attempt != got_attempt {
                    out.push(format!(
                        "line {}: expected {attempt:?}, got {got_attempt:?}",
                        index + 1
                    ));
                } else if !answers.contains(got) {
                    out.push(format!(
                        "{attempt}: {got}, expected {}",
                        answers.join(" or ")
                    ));
                }
            }
            (Some((attempt, _)), None) => out.push(format!("{attempt}: missing")),
            (None, Some((attempt, got))) => {
                out.push(format!("unexpected line {attempt:?} {got:?}"))
            }
            (None, None) => unreachable!(),
        }
    }
    out
}

fn escapes_are_refused(hal: Hal) {
    build();
    let scratch = harness::scratch(&format!("escapes-{}", hal.name()));
    let root = make_escape_fixture(&scratch);
    let outside_before: BTreeMap<String, Node> = harness::snapshot(&scratch)
        .into_iter()
        .filter(|(name, _)| !name.starts_with("root"))
        .collect();
    let invocation = Invocation {
        wasm: Program::C("escapes").wasm(),
        dirs: vec![(root.clone(), "/".to_owned())],
        ..Invocation::default()
    };
    let timeout = match hal {
        Hal::Hosted => HOSTED_TIMEOUT,
        Hal::Qemu => QEMU_TIMEOUT,
    };
    let outcome = harness::run(hal, &invocation, timeout);
    let stdout = text(&outcome.stdout);
    println!("{stdout}");
    let mut problems = escape_differences(&stdout);
    if outcome.status != Some(0) || outcome.timed_out {
        problems.push(format!("{}, expected exit status 0", outcome.status_text()));
    }
    let outside_after: BTreeMap<String, Node> = harness::snapshot(&scratch)
        .into_iter()
        .filter(|(name, _)| !name.starts_with("root"))
        .collect();
    let changed = harness::tree_diff("before", &outside_before, "after", &outside_after);
    if !changed.is_empty() {
        problems.push(format!(
            "the program changed the tree outside its preopen:\n{changed}"
        ));
    }
    assert!(
        problems.is_empty(),
        "{}",
        report("escapes", &outcome, &problems)
    );
    let _ = std::fs::remove_dir_all(&scratch);
}

#[test]
fn escapes_are_refused_hosted() {
    escapes_are_refused(Hal::Hosted);
}

#[test]
fn escapes_are_refused_in_qemu() {
    escapes_are_refused(Hal::Qemu);
}

/// The comparison of `escapes.c`'s output fails on a wrong answer, a changed order and a
/// missing line, and accepts the alternatives the listing allows.
#[test]
fn escape_listing_comparison_can_fail() {
    let expected = expected_escapes();
    assert!(expected.len() > 40, "the listing has every attempt");
    let line = |attempt: &str, answer: &str| format!("{attempt:<44} {answer}\n");
    let all: String = expected
        .iter()
        .map(|(attempt, answers)| line(attempt, &answers[answers.len() - 1]))
        .collect();
    assert_eq!(escape_differences(&all), Vec::<String>::new());
    let first: String = expected
        .iter()
        .map(|(attempt, answers)| line(attempt, &answers[0]))
        .collect();
    assert_eq!(escape_differences(&first), Vec::<String>::new());
    let (attempt, answers) = &expected[7];
    let last = &answers[answers.len() - 1];
    let wrong = all.replacen(&line(attempt, last), &line(attempt, "ok"), 1);
    assert_eq!(escape_differences(&wrong).len(), 1, "{wrong}");
    let missing: String = all.lines().skip(1).map(|l| format!("{l}\n")).collect();
    assert!(!escape_differences(&missing).is_empty());
}
