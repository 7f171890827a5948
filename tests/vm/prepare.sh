#!/usr/bin/env bash
# Prepares the QEMU guest that runs memkit's /dev/mem tests (this machine's
# kernel has no /dev/mem): QEMU and a static busybox from apt when missing,
# Debian's cloud kernel (downloaded and unpacked, never installed), and an
# uncompressed newc initramfs of busybox, Deno with the glibc libraries it
# links, build/libmemkit.so and memkit's sources, and the reference kernel
# module of tests/vm/kmod/ (built against the kernel's headers package).
#
#   bash tests/vm/prepare.sh     exit 0 ready, 77 SKIP (printed with the reason), else failure
#
# Everything lands in tests/vm/cache/ (git-ignored): the kernel package and
# the base archive (busybox, Deno, libraries) are reused while their inputs
# are unchanged; the memkit archive is rebuilt each time (it is small).
# Environment: DENO (the Deno binary to put in the guest, default `deno`).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
CACHE=tests/vm/cache
mkdir -p "$CACHE"

skip() {
  echo "SKIP: $*"
  exit 77
}

is_static() { ! ldd "$1" >/dev/null 2>&1; }

# ---- tools: QEMU and a static busybox ----
need=()
command -v qemu-system-x86_64 >/dev/null 2>&1 || need+=(qemu-system-x86)
BUSYBOX=""
for b in /bin/busybox /usr/bin/busybox; do
  if [ -x "$b" ] && is_static "$b"; then BUSYBOX=$b; break; fi
done
[ -n "$BUSYBOX" ] || need+=(busybox-static)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    skip "${need[*]} missing, and apt-get cannot install it here (needs root and apt)"
  fi
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -q --no-install-recommends "${need[@]}" >"$CACHE/apt.log" 2>&1; then
    apt-get update -q >>"$CACHE/apt.log" 2>&1
    apt-get install -y -q --no-install-recommends "${need[@]}" >>"$CACHE/apt.log" 2>&1 ||
      skip "apt-get cannot install ${need[*]} (see $CACHE/apt.log)"
  fi
  command -v qemu-system-x86_64 >/dev/null 2>&1 || skip "qemu-system-x86_64 still missing"
  for b in /bin/busybox /usr/bin/busybox; do
    if [ -x "$b" ] && is_static "$b"; then BUSYBOX=$b; break; fi
  done
  [ -n "$BUSYBOX" ] || skip "no static busybox after installing busybox-static"
fi

# ---- the kernel: linux-image-<ver>-cloud-amd64, unpacked ----
KERNEL=$CACHE/vmlinuz
if [ ! -s "$KERNEL" ]; then
  command -v apt-get >/dev/null 2>&1 || skip "no apt-get to download the kernel package"
  pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
    sed -n 's/^ *Depends: \(linux-image-[0-9].*-cloud-amd64\)$/\1/p' | head -n 1)
  if [ -z "$pkg" ]; then
    apt-get update -q >"$CACHE/apt.log" 2>&1
    pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
      sed -n 's/^ *Depends: \(linux-image-[0-9].*-cloud-amd64\)$/\1/p' | head -n 1)
  fi
  [ -n "$pkg" ] || skip "apt knows no linux-image-cloud-amd64 here"
  debs=("$CACHE"/"$pkg"_*.deb)
  if [ ! -e "${debs[0]}" ]; then
    (cd "$CACHE" && apt-get download "$pkg" >download.log 2>&1) ||
      skip "cannot download $pkg (see $CACHE/download.log)"
  fi
  rm -rf "$CACHE/kernel"
  debs=("$CACHE"/"$pkg"_*.deb)
  dpkg -x "${debs[0]}" "$CACHE/kernel" || exit 1
  cp "$CACHE"/kernel/boot/vmlinuz-* "$KERNEL" || exit 1
  cp "$CACHE"/kernel/boot/config-* "$CACHE/config" || exit 1
  rm -rf "$CACHE/kernel"
fi
for opt in CONFIG_DEVMEM CONFIG_STRICT_DEVMEM CONFIG_IO_STRICT_DEVMEM CONFIG_SERIAL_8250_CONSOLE \
  CONFIG_DEVTMPFS CONFIG_BLK_DEV_INITRD; do
  grep -q "^$opt=y" "$CACHE/config" || { echo "the guest kernel lacks $opt=y"; exit 1; }
done

# ---- the base archive: busybox, Deno, the libraries Deno links ----
DENO_BIN=$(readlink -f "$(command -v "${DENO:-deno}")") || { echo "no Deno binary"; exit 1; }
stamp="$DENO_BIN $(stat -c '%s %Y' "$DENO_BIN" "$BUSYBOX" | tr '\n' ' ')"
if [ ! -s "$CACHE/base.cpio" ] || [ "$(cat "$CACHE/base.stamp" 2>/dev/null)" != "$stamp" ]; then
  root=$CACHE/base-root
  rm -rf "$root"
  mkdir -p "$root"/{bin,dev,proc,sys,tmp,etc,lib64,lib/x86_64-linux-gnu,memkit}
  cp "$BUSYBOX" "$root/bin/busybox"
  cp "$DENO_BIN" "$root/bin/deno"
  # The libraries ldd names, at the paths it names (the loader included).
  ldd "$DENO_BIN" | grep -o '/[^ ]*' | while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
  echo "root:x:0:0:root:/tmp:/bin/sh" >"$root/etc/passwd"
  echo "nobody:x:65534:65534:nobody:/tmp:/bin/sh" >>"$root/etc/passwd"
  echo "root:x:0:" >"$root/etc/group"
  (cd "$root" && find . | "$BUSYBOX" cpio -o -H newc >../base.cpio 2>/dev/null) || exit 1
  rm -rf "$root"
  echo "$stamp" >"$CACHE/base.stamp"
fi

# ---- the memkit archive: the library, the sources, the guest files ----
[ -s build/libmemkit.so ] || { echo "build/libmemkit.so missing: run make build"; exit 1; }
root=$CACHE/memkit-root
rm -rf "$root"
mkdir -p "$root/memkit/build/bench" "$root/memkit/tests/vm" "$root/memkit/bench"
cp tests/vm/init "$root/init"
chmod 755 "$root/init"
cp -r mod.ts cli.ts src ffi cli "$root/memkit/"
cp build/libmemkit.so "$root/memkit/build/"
cp -r tests/vm/guest "$root/memkit/tests/vm/"
# The host's test files and fixtures (init runs some of them), with the
# import map and lock they resolve @std through.
cp deno.json deno.lock "$root/memkit/"
cp tests/*_test.ts "$root/memkit/tests/"
cp -r tests/fixtures "$root/memkit/tests/"
# @std/* is npm:deno-std (deno.json): the parts the tests import, from the
# host's npm cache into the guest's DENO_DIR (init copies /deno-cache to
# /tmp/deno; the guest has no network and runs with --cached-only).
std=$(sed -n 's|.*"npm:deno-std@\([0-9.]*\)/.*|\1|p' deno.json | head -n 1)
[ -n "$std" ] || { echo "deno.json names no npm:deno-std version"; exit 1; }
npm=$("$DENO_BIN" info --json | sed -n 's|.*"npmCache": "\(.*\)".*|\1|p')
pkg=$npm/registry.npmjs.org/deno-std
if [ ! -d "$pkg/$std/assert" ] || [ ! -d "$pkg/$std/cli" ] || [ ! -d "$pkg/$std/fmt" ]; then
  # A fresh machine: fetch it once (the host tests and the CLI would too).
  "$DENO_BIN" cache --config deno.json tests/mapping_test.ts cli.ts >"$CACHE/std.log" 2>&1 ||
    { cat "$CACHE/std.log"; echo "cannot fetch npm:deno-std@$std"; exit 1; }
fi
to=$root/deno-cache/npm/registry.npmjs.org/deno-std
mkdir -p "$to/$std"
cp "$pkg/registry.json" "$to/"
# assert for the tests; cli and fmt for the CLI's doc examples.
cp -r "$pkg/$std/package.json" "$pkg/$std/assert" "$pkg/$std/internal" "$pkg/$std/cli" \
  "$pkg/$std/fmt" "$to/$std/" || exit 1
cp bench/phys_bench.ts "$root/memkit/bench/"
[ -f bench/kshared_bench.ts ] && cp bench/kshared_bench.ts "$root/memkit/bench/"
# The reference kernel module and its probe (tests/vm/kmod/build.sh: the
# headers from apt, unpacked, never installed). Where apt cannot provide
# them the guest says why it skips the module's checks.
mkdir -p "$root/memkit/tests/vm/kmod"
bash tests/vm/kmod/build.sh >"$CACHE/kmod.log" 2>&1
rc=$?
if [ $rc -eq 0 ]; then
  cp "$CACHE/kmod/memkit_kshared.ko" "$CACHE/kmod/kshared_probe" "$root/memkit/tests/vm/kmod/" || exit 1
  tail -n 1 "$CACHE/kmod.log"
elif [ $rc -eq 77 ]; then
  sed -n 's/^SKIP: //p' "$CACHE/kmod.log" | head -n 1 >"$root/memkit/tests/vm/kmod/skip"
  echo "the reference module is skipped: $(cat "$root/memkit/tests/vm/kmod/skip")"
else
  cat "$CACHE/kmod.log"
  echo "tests/vm/kmod/build.sh failed"
  exit 1
fi
cp build/bench/libphys_baseline.so "$root/memkit/build/bench/" 2>/dev/null || true
(cd "$root" && find . | "$BUSYBOX" cpio -o -H newc >../memkit.cpio 2>/dev/null) || exit 1
rm -rf "$root"
cat "$CACHE/base.cpio" "$CACHE/memkit.cpio" >"$CACHE/initrd.cpio"
echo "ready: $KERNEL $CACHE/initrd.cpio ($(du -m "$CACHE/initrd.cpio" | cut -f1) MB)"
