#!/bin/bash -eu
# ClusterFuzzLite / OSS-Fuzz build script: builds every cargo-fuzz target of fuzz/ and puts
# each binary in $OUT with its seed corpus (the kept inputs of tests/fuzz-regressions/<target>,
# zipped as <target>_seed_corpus.zip, which the engines unpack into the starting corpus).
#
# The engines set $SRC, $OUT, $CC, $CXX, $CFLAGS, $CXXFLAGS and $RUSTFLAGS (sanitizer and
# coverage flags); cargo-fuzz adds its own to $RUSTFLAGS. Run locally with those set, e.g.
#   OUT=/tmp/cflite-out SRC=/work CC=clang CXX=clang++ CFLAGS=-O1 CXXFLAGS=-O1 \
#   RUSTFLAGS='--cfg fuzzing' .clusterfuzzlite/build.sh
# The `hosted_qemu` target also needs qemu-system-riscv64 and the RISC-V kernel when it
# runs, which the engines' runner images lack: there it runs its modules hosted only and
# says so on stderr (see fuzz/README.md).

# The repository: this script's parent directory when run from a checkout, else $SRC/k23-wasm.
repository="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ ! -f "$repository/fuzz/Cargo.toml" ]; then
    repository="$SRC/k23-wasm"
fi
cd "$repository"

# The repository pins a stable toolchain (rust-toolchain.toml); sanitizers need nightly.
# The engines' image names its nightly in $RUSTUP_TOOLCHAIN, which overrides the pin;
# elsewhere `+nightly`, or `+$FUZZ_TOOLCHAIN`.
if [ -n "${FUZZ_TOOLCHAIN:-}" ]; then
    toolchain=("+$FUZZ_TOOLCHAIN")
elif [ -n "${RUSTUP_TOOLCHAIN:-}" ]; then
    toolchain=()
else
    toolchain=(+nightly)
fi
target_dir="${CARGO_TARGET_DIR:-$repository/fuzz/target}"
triple="$(rustc ${toolchain[@]+"${toolchain[@]}"} -vV | sed -n 's/^host: //p')"

cargo ${toolchain[@]+"${toolchain[@]}"} fuzz build -O --target-dir "$target_dir"

mkdir -p "$OUT"
for target in $(cargo ${toolchain[@]+"${toolchain[@]}"} fuzz list); do
    cp "$target_dir/$triple/release/$target" "$OUT/"
    seeds="tests/fuzz-regressions/$target"
    if [ -d "$seeds" ] && [ -n "$(ls -A "$seeds")" ]; then
        rm -f "$OUT/${target}_seed_corpus.zip"
        zip -q -j "$OUT/${target}_seed_corpus.zip" "$seeds"/*
    fi
done
