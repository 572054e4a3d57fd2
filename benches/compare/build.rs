//! Builds the compute kernels of `c/compute.c` twice: to WebAssembly (clang
//! `--target=wasm32`, no libc, linked by wasm-ld) for the runtimes, and for the host
//! (clang -O2, through `cc`) for the native column.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=c/compute.c");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let wasm = out.join("compute.wasm");
    let status = Command::new("clang")
        .args([
            "--target=wasm32",
            "-O2",
            "-mbulk-memory",
            "-nostdlib",
            "-Wl,--no-entry",
            "-o",
        ])
        .arg(&wasm)
        .arg("c/compute.c")
        .status();
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => panic!(
            "clang --target=wasm32 failed ({status}): the comparison needs clang with the \
             WebAssembly target and wasm-ld (Debian: clang and lld)"
        ),
        Err(error) => panic!("cannot run clang ({error}): the comparison needs clang and lld"),
    }
    cc::Build::new()
        .compiler("clang")
        .opt_level(2)
        .file("c/compute.c")
        .compile("compute");
}
