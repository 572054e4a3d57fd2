#!/usr/bin/env bash
# The project's test command (README): everything CI checks, runnable on a fresh machine.
#
# Installs what is missing (the pinned toolchain with its riscv64 and wasm32-wasip1
# targets, QEMU, clang with wasi-libc, nightly
# with Miri), builds and boots the RISC-V kernel, runs the tests (host, and inside QEMU),
# checks fmt and clippy for both targets, runs kernel-core's unit tests under Miri and the
# fuzz targets briefly.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain (rust-toolchain.toml)"
rustup toolchain install >/dev/null
rustc --version

if ! command -v qemu-system-riscv64 >/dev/null; then
    step "installing qemu-system-misc"
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq qemu-system-misc >/dev/null
fi

# sim/tests/debugging.rs breaks on a JIT-compiled function through GDB's JIT interface;
# the WASI tests (sim/tests/wasi_programs.rs) build C programs with clang and wasi-libc;
# sim/tests/qemu_terminal.rs types into `sim qemu run` through a pty made by python3.
packages="gdb clang lld wasi-libc libclang-rt-dev-wasm32 python3"
if ! dpkg -s $packages >/dev/null 2>&1; then
    step "installing $packages"
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $packages >/dev/null
fi

# The kernel first: the QEMU tests of `cargo test` (sim/tests/qemu.rs) boot it.
step "RISC-V build: kernel-core and the hal-riscv kernel"
cargo build --quiet -p kernel-core -p hal-riscv --target riscv64gc-unknown-none-elf --release

step "RISC-V boot in QEMU: the HAL conformance suite on one hart, then on two"
scripts/qemu-boot.sh target/riscv64gc-unknown-none-elf/release/hal-riscv
scripts/qemu-boot.sh target/riscv64gc-unknown-none-elf/release/hal-riscv -smp 2

# tests/tests/fuzz_regressions.rs replays the kept fuzz inputs, those of `hosted_qemu` and
# `differential` also in one QEMU boot of the kernel built above.
step "tests (host, and the spec sets and trap tests inside QEMU)"
cargo test --quiet
cargo test --quiet -p hal-riscv --lib

step "rustfmt"
cargo fmt --all --check
cargo fmt --manifest-path fuzz/Cargo.toml --check

step "clippy (host, riscv64, fuzz targets)"
cargo clippy --quiet --all-targets -- -D warnings
cargo clippy --quiet -p hal-riscv --lib --tests -- -D warnings
cargo clippy --quiet -p kernel-core -p hal-riscv --target riscv64gc-unknown-none-elf --release -- -D warnings
CARGO_TARGET_DIR=target/fuzz-check cargo clippy --quiet --manifest-path fuzz/Cargo.toml -- -D warnings

# Miri (nightly): kernel-core's unit tests under the interpreter, which checks the unsafe
# code they reach (the store's aliasing rules, StableBox, builtins and host calls called
# directly, the heap-backed test HAL) for undefined behaviour, Stacked Borrows included.
# Tests that run JIT code or compile with Cranelift, and slow proptests of safe code, are
# `#[cfg_attr(miri, ignore = ...)]` (the README lists them). Code addresses and table
# words are integers turned back into pointers, hence permissive provenance. Measured on
# this 2-core machine while shared with other builds: from nothing, about 1 min for the
# Miri sysroot (`cargo miri setup`, run by the first `cargo miri test`) and 2 min to
# check-build the dependencies; then 50 s for the tests (50 run, 23 ignored).
step "Miri: kernel-core unit tests (cargo +nightly miri test)"
if ! cargo +nightly --version >/dev/null 2>&1; then
    rustup toolchain install nightly --profile minimal
fi
if ! cargo +nightly miri --version >/dev/null 2>&1 \
    || ! rustup component list --toolchain nightly --installed | grep -q '^rust-src'; then
    rustup component add --toolchain nightly miri rust-src
fi
MIRIFLAGS="-Zmiri-permissive-provenance" cargo +nightly miri test --quiet -p kernel-core

# Fuzzing (fuzz/, cargo-fuzz and libFuzzer, which need nightly): every target for a short
# fixed time, seeded with the kept regression inputs. Measured on a 2-core machine with
# cargo-fuzz installed (four targets then): 6 min to build the targets from nothing with
# AddressSanitizer and 16 codegen units (cargo-fuzz's default of one makes faster fuzzers,
# which 20 s runs do not need, but leaves a core idle: 13.5 min measured under load), then
# FUZZ_SECONDS (default 20) per target, five targets; `hosted_qemu` boots QEMU (the kernel
# built above) once more when it exits, a few seconds. Installing cargo-fuzz adds about
# 40 s (2 min on a loaded machine). FUZZ_SECONDS=0 skips the step. Longer campaigns:
# fuzz/README.md.
fuzz_seconds="${FUZZ_SECONDS:-20}"
if [ "$fuzz_seconds" -gt 0 ]; then
    step "fuzz targets, ${fuzz_seconds} s each (cargo +nightly fuzz)"
    if ! cargo +nightly --version >/dev/null 2>&1; then
        rustup toolchain install nightly --profile minimal
    fi
    if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
        cargo install cargo-fuzz --locked
    fi
    # The same build options for `build` and `run`, or `run` rebuilds.
    fuzz_build=(--codegen-units 16)
    cargo +nightly fuzz build "${fuzz_build[@]}"
    for target in $(cargo +nightly fuzz list); do
        # A fresh corpus each time (a long campaign's fuzz/corpus would take minutes just
        # to load), seeded with the kept regression inputs.
        corpus="fuzz/target/ci-corpus/$target"
        rm -rf "$corpus" && mkdir -p "$corpus"
        # libFuzzer reports on stderr: show its final statistics, or the end on failure.
        if ! cargo +nightly fuzz run "${fuzz_build[@]}" "$target" "$corpus" \
            "tests/fuzz-regressions/$target" -- \
            -max_total_time="$fuzz_seconds" -print_final_stats=1 \
            >"fuzz/target/$target.log" 2>&1; then
            tail -n 60 "fuzz/target/$target.log"
            echo "fuzz target $target failed: the input is in fuzz/artifacts/$target/" >&2
            exit 1
        fi
        echo "$target: $(grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec)' \
            "fuzz/target/$target.log" | tr -s ' \n' ' ')"
        grep -E '^hosted_qemu: [0-9]+ inputs' "fuzz/target/$target.log" || true
    done
fi

step "all checks passed"
