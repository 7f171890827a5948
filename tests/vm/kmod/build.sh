#!/usr/bin/env bash
# Builds the reference kernel module (memkit_kshared.ko) for the QEMU
# guest's kernel, and the static probe that exercises it (kshared_probe).
#
#   bash tests/vm/kmod/build.sh    exit 0 built, 77 SKIP (printed with the reason), else failure
#
# The guest kernel is the linux-image-<release>_<version>_amd64.deb that
# tests/vm/prepare.sh downloaded into tests/vm/cache/. Its headers package
# (linux-headers-<release>, same version) and what that depends on from the
# same source (linux-headers-<abi>-common, linux-kbuild-<major.minor>) are
# fetched with `apt-get download` and unpacked with `dpkg-deb -x` into
# tests/vm/cache/kheaders/, never installed. Debian built the kernel with
# gcc-12, the compiler the headers name. The module's vermagic is checked
# against a module of the kernel package. Products: tests/vm/cache/kmod/.
# Idempotent: the downloads and the unpacked tree are reused; make rebuilds
# what changed.
set -uo pipefail
cd "$(dirname "$0")/../../.." || exit 1
ROOT=$PWD
CACHE=tests/vm/cache
DEBS=$CACHE/kmod-debs
TREE=$CACHE/kheaders
OUT=$CACHE/kmod
mkdir -p "$CACHE" "$DEBS" "$OUT"

skip() {
  echo "SKIP: $*"
  exit 77
}

# ---- which kernel: the package the guest boots ----
images=("$CACHE"/linux-image-*_amd64.deb)
[ -e "${images[0]}" ] || skip "no guest kernel package in $CACHE (run tests/vm/prepare.sh)"
image=$(basename "${images[0]}")
pkg=${image%%_*}                 # linux-image-6.1.0-50-cloud-amd64
version=${image#*_}
version=${version%_amd64.deb}    # 6.1.176-1
release=${pkg#linux-image-}      # 6.1.0-50-cloud-amd64
headers=linux-headers-$release

command -v gcc-12 >/dev/null 2>&1 || skip "no gcc-12 (the compiler Debian built $release with)"
command -v make >/dev/null 2>&1 || skip "no make"

# ---- the headers: downloaded and unpacked, never installed ----
KDIR=$TREE/usr/src/$headers
unpacked() { [ -f "$KDIR/Makefile" ] && [ "$(cut -d' ' -f1 "$TREE/stamp" 2>/dev/null)" = "$version" ]; }
deb_of() { compgen -G "$DEBS/${1}_${version}_*.deb" | head -n 1; }
fetch() {
  local name=$1
  [ -n "$(deb_of "$name")" ] && return 0
  (cd "$DEBS" && apt-get download "$name=$version" >>download.log 2>&1) && return 0
  apt-get update -q >>"$DEBS/download.log" 2>&1
  (cd "$DEBS" && apt-get download "$name=$version" >>download.log 2>&1) ||
    skip "apt cannot download $name=$version (see $DEBS/download.log)"
}
# Unpacked once for this version: no apt needed again (offline reruns).
if ! unpacked; then
  command -v apt-get >/dev/null 2>&1 || skip "no apt-get to download $headers"
  deps=$(apt-cache depends "$headers=$version" 2>/dev/null | sed -n 's/^ *Depends: \(linux-[a-z]*-.*\)$/\1/p')
  if [ -z "$deps" ]; then
    apt-get update -q >>"$DEBS/download.log" 2>&1
    deps=$(apt-cache depends "$headers=$version" 2>/dev/null | sed -n 's/^ *Depends: \(linux-[a-z]*-.*\)$/\1/p')
  fi
  [ -n "$deps" ] || skip "apt knows no $headers=$version here"
  names=("$headers")
  for d in $deps; do
    # linux-compiler-gcc-12-x86 only depends on gcc-12 (checked above).
    case $d in linux-headers-* | linux-kbuild-*) names+=("$d") ;; esac
  done
  for n in "${names[@]}"; do fetch "$n"; done
  rm -rf "$TREE"
  mkdir -p "$TREE"
  for n in "${names[@]}"; do dpkg-deb -x "$(deb_of "$n")" "$TREE" || exit 1; done
  # The arch tree's Makefile includes the common tree by its installed path.
  sed -i "s|^include /usr/src/|include $ROOT/$TREE/usr/src/|" "$KDIR/Makefile" || exit 1
  echo "$version ${names[*]}" >"$TREE/stamp"
fi

# ---- the module ----
make -s -C "$KDIR" M="$ROOT/tests/vm/kmod" modules || { echo "the module did not build"; exit 1; }
ko=tests/vm/kmod/memkit_kshared.ko
vermagic() { objcopy -O binary --only-section=.modinfo "$1" /dev/stdout | tr '\0' '\n' | sed -n 's/^vermagic=//p'; }
want=$CACHE/kmod/vermagic.kernel
if [ ! -s "$want" ]; then
  # A module of the kernel package itself says what the kernel accepts.
  one=$(dpkg-deb -c "${images[0]}" | grep -o '\./lib/modules/[^ ]*/kernel/lib/crc7\.ko$' | head -n 1)
  [ -n "$one" ] || { echo "no crc7.ko in $image to compare the vermagic with"; exit 1; }
  dpkg-deb --fsys-tarfile "${images[0]}" | tar -xO "$one" >"$OUT/crc7.ko" || exit 1
  vermagic "$OUT/crc7.ko" >"$want"
  rm -f "$OUT/crc7.ko"
fi
got=$(vermagic "$ko")
if [ "$got" != "$(cat "$want")" ]; then
  echo "vermagic \"$got\" is not the guest kernel's \"$(cat "$want")\""
  exit 1
fi
# Without its debug information (300 KB of the initramfs); vermagic and
# the symbol versions are untouched.
objcopy --strip-debug "$ko" "$OUT/memkit_kshared.ko" || exit 1

# ---- the probe: static, for the guest's busybox userland ----
probe=$OUT/kshared_probe
if [ ! -x "$probe" ] || [ tests/vm/kmod/kshared_probe.c -nt "$probe" ] ||
  [ cbits/memkit_kshared.h -nt "$probe" ]; then
  gcc -static -O2 -std=gnu11 -Wall -Wextra -Werror -Icbits -o "$probe" \
    tests/vm/kmod/kshared_probe.c -lpthread || { echo "the probe did not build"; exit 1; }
fi
echo "built: $OUT/memkit_kshared.ko (vermagic $got), $probe"
