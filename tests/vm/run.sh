#!/usr/bin/env bash
# The QEMU guest: `make test-vm` (tests/vm/run.sh test) and `make bench-vm`
# (tests/vm/run.sh bench). Prepares the guest (tests/vm/prepare.sh: installs
# QEMU and busybox when missing, fetches the kernel, builds the initramfs),
# then boots it. Prints `SKIP: <reason>` and exits 0 only where QEMU or the
# kernel package cannot be had.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
DENO=${DENO:-deno}
export NO_COLOR=1 DENO_NO_UPDATE_CHECK=1
mode=${1:-test}

DENO="$DENO" bash tests/vm/prepare.sh
rc=$?
[ $rc -eq 77 ] && exit 0
[ $rc -ne 0 ] && exit $rc

# Software emulation unless the host has real KVM (a nested /dev/kvm backend,
# as on this machine, is far slower than TCG).
accel=tcg
if [ -w /dev/kvm ] && { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; }; then accel=kvm; fi
export MEMKIT_VM_ACCEL=$accel

if [ "$mode" = bench ]; then
  exec "$DENO" run --allow-run=timeout --allow-read=tests/vm/cache --allow-write=tests/vm/cache \
    --allow-env=MEMKIT_VM_ACCEL,MEMKIT_VM_TIMEOUT tests/vm/boot.ts bench
fi
flags=$(sed -n 's|^// flags:||p' tests/vm/vm_test.ts | head -n 1)
# shellcheck disable=SC2086
exec "$DENO" test $flags tests/vm/vm_test.ts
