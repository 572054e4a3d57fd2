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
