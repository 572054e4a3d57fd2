//! Replays every input kept under `tests/fuzz-regressions/<target>/` through the oracle of
//! its fuzz target (`tests::fuzz_oracles`), the same code the cargo-fuzz targets in
//! `fuzz/` run. A file there is a finding that was fixed, or a seed worth keeping.
//! The `hosted_qemu` inputs are also replayed in the RISC-V kernel under QEMU, in one boot.

use std::path::{Path, PathBuf};
use std::process::Command;

use tests::fuzz_oracles::{TARGETS, hosted_qemu};

#[test]
fn every_kept_fuzz_input_passes_its_oracle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz-regressions");
    let mut replayed = 0;
    for (target, oracle) in TARGETS {
        let directory = root.join(target);
        let Ok(entries) = std::fs::read_dir(&directory) else {
            continue;
        };
        let mut files: Vec<_> = entries
            .map(|entry| entry.expect("a directory entry").path())
            .filter(|path| path.is_file())
            .collect();
        files.sort();
        for file in files {
            let data = std::fs::read(&file).expect("a readable regression input");
            eprintln!("{target}: {}", file.display());
            oracle(&data);
            replayed += 1;
        }
    }
    assert!(
        replayed > 0,
        "no regression inputs under {}",
        root.display()
    );
}

/// The QEMU half of the `hosted_qemu` replay: the scripts of every kept input of that
/// target (and of `differential`, whose inputs make the same modules) in one boot of the
/// RISC-V kernel, which must agree with the hosted run on every command. Builds the
/// kernel first when needed, as `sim/tests/qemu.rs` does; needs `qemu-system-riscv64`.
#[test]
fn kept_hosted_qemu_inputs_agree_in_qemu() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz-regressions");
    let mut inputs = Vec::new();
    for target in ["hosted_qemu", "differential"] {
        let Ok(entries) = std::fs::read_dir(root.join(target)) else {
            continue;
        };
        let mut files: Vec<_> = entries
            .map(|entry| entry.expect("a directory entry").path())
            .filter(|path| path.is_file())
            .collect();
        files.sort();
        for file in files {
            let name = format!("{target}/{}", file.file_name().unwrap().to_string_lossy());
            inputs.push((name, std::fs::read(&file).expect("a readable input")));
        }
    }
    let kernel = kernel();
    match hosted_qemu::check_in_qemu(&kernel, &inputs) {
        Ok((modules, commands)) => {
            eprintln!("{modules} modules, {commands} commands agree in QEMU");
            assert!(modules > 0, "no kept input made a module");
        }
        Err(disagreements) => panic!("QEMU disagrees with the hosted run:\n{disagreements}"),
    }
}

/// The RISC-V kernel: `$K23_KERNEL`, or this workspace's release build, built when needed.
fn kernel() -> PathBuf {
    if std::env::var_os("K23_KERNEL").is_none() {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let built = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "-p", "hal-riscv", "--release"])
            .args(["--target", "riscv64gc-unknown-none-elf"])
            .current_dir(&workspace)
            .status()
            .expect("cargo runs");
        assert!(built.success(), "the kernel builds");
    }
    hosted_qemu::kernel_path()
}

/// The memory checker of `hosted_qemu` in QEMU, both ways: against the bytes the module
/// really holds it finds no difference, against bytes one off it finds the word of that
/// byte, and a wrong expectation is reported as a failure.
#[test]
fn hosted_qemu_memory_checker_finds_differences_in_qemu() {
    use kernel_core::boot::image::Script;
    use kernel_core::spec::{Action, Command, CommandKind, Expected};

    let module =
        wat::parse_str(r#"(module (memory (export "mem") 1 2) (data (i32.const 21) "\07\00\09"))"#)
            .unwrap();
    let mut memory = vec![0; 65536];
    memory[21] = 7;
    memory[23] = 9;
    let mut wrong = memory.clone();
    wrong[65535] = 1;
    let invoke = |module: &str, field: &str, value: u32| CommandKind::AssertReturn {
        action: Action::Invoke {
            module: Some(module.to_owned()),
            field: field.to_owned(),
            args: Vec::new(),
        },
        expected: vec![Expected::I32(value)],
    };
    let kinds = vec![
        CommandKind::Module {
            name: Some("m".to_owned()),
            bytes: module,
        },
        CommandKind::Register {
            as_name: "fuzz".to_owned(),
            module: Some("m".to_owned()),
        },
        CommandKind::Module {
            name: Some("right".to_owned()),
            bytes: hosted_qemu::memory_checker("mem", &memory),
        },
        CommandKind::Module {
            name: Some("wrong".to_owned()),
            bytes: hosted_qemu::memory_checker("mem", &wrong),
        },
        invoke("right", "pages", 1),
        invoke("right", "first_difference", u32::MAX),
        invoke("wrong", "first_difference", 65528),
        // Wrong on purpose: the one failure expected.
        invoke("right", "pages", 2),
    ];
    let commands = kinds
        .into_iter()
        .zip(1..)
        .map(|(kind, line)| Command { line, kind })
        .collect();
    let image = hosted_qemu::boot_image(vec![Script {
        path: "checker".to_owned(),
        commands,
    }]);
    let report = hosted_qemu::run_in_qemu(&kernel(), &image, std::time::Duration::from_secs(300))
        .unwrap_or_else(|problem| panic!("{problem}"));
    assert_eq!(
        (report.passed, report.failed),
        (7, 1),
        "{:?}",
        report.failures
    );
    assert!(
        report.failures[0].starts_with("checker:8: "),
        "{:?}",
        report.failures
    );
}
