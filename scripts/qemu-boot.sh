#!/usr/bin/env bash
# Boots a hal-riscv kernel image in QEMU's virt machine and checks that it printed the
# kernel-core banner and powered off with status 0 through the sifive_test device.
# Usage: scripts/qemu-boot.sh KERNEL_ELF [extra qemu arguments...]
set -uo pipefail
kernel=${1:?usage: scripts/qemu-boot.sh KERNEL_ELF [qemu args...]}
shift
log=$(mktemp)
trap 'rm -f "$log"' EXIT
timeout 60 qemu-system-riscv64 -machine virt -nographic -bios default -m 256M \
    -kernel "$kernel" "$@" </dev/null | tee "$log"
status=${PIPESTATUS[0]}
if [ "$status" -eq 124 ]; then
    echo "qemu-boot: the kernel did not power off within 60 s" >&2
    exit 1
fi
if [ "$status" -ne 0 ]; then
    echo "qemu-boot: QEMU exited with status $status" >&2
    exit 1
fi
if ! grep -q "k23-wasm kernel-core .* booting on riscv64" "$log"; then
    echo "qemu-boot: the kernel-core banner is missing from the console" >&2
    exit 1
fi
if ! grep -q "^self-check: ok" "$log"; then
    echo "qemu-boot: the kernel's self-check did not report ok" >&2
    exit 1
fi
echo "qemu-boot: banner and self-check seen, exit status 0"
