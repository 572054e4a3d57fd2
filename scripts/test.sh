#!/usr/bin/env bash
# The project's test command (README): everything CI checks, runnable on a fresh machine.
#
# Installs what is missing (the pinned toolchain with its riscv64 target, QEMU), then runs
# the host tests, builds and boots the RISC-V kernel in QEMU, and checks fmt and clippy
# for both targets.
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

step "host tests"
cargo test --quiet
cargo test --quiet -p hal-riscv --lib

step "RISC-V build: kernel-core and the hal-riscv kernel"
cargo build --quiet -p kernel-core -p hal-riscv --target riscv64gc-unknown-none-elf --release

step "RISC-V boot in QEMU"
scripts/qemu-boot.sh target/riscv64gc-unknown-none-elf/release/hal-riscv

step "rustfmt"
cargo fmt --all --check
cargo fmt --manifest-path fuzz/Cargo.toml --check

step "clippy (host, riscv64, fuzz targets)"
cargo clippy --quiet --all-targets -- -D warnings
cargo clippy --quiet -p hal-riscv --lib --tests -- -D warnings
cargo clippy --quiet -p kernel-core -p hal-riscv --target riscv64gc-unknown-none-elf --release -- -D warnings
CARGO_TARGET_DIR=target/fuzz-check cargo clippy --quiet --manifest-path fuzz/Cargo.toml -- -D warnings

step "all checks passed"
