#!/usr/bin/env bash
# The whole suite, as `make test` runs it. Each step counts: a C test or a
# Deno test case by its own result, a static check as one test. Every test
# file runs with the flags its first `// flags:` line names (never the allow-all flag), with
# $DENO standing for the Deno binary. Every test program and file runs under
# a timeout (a hung test fails with its name). Skips are counted and listed
# with their reasons (`SKIP: <test>: <why>`), and the kernel log is scanned
# for BUG/WARNING/Oops after the run. Ends with
# `tests: N passed, N failed, N skipped`.
set -u
cd "$(dirname "$0")/.." || exit 1
DENO=${DENO:-deno}
CC=${CC:-cc}
SAN_CFLAGS=${SAN_CFLAGS:--O1 -g -std=c11 -Wall -Wextra -Werror -fsanitize=address,undefined -fno-sanitize-recover=all}
# Deno.execPath() is the resolved binary: --allow-run must name that path.
DENO_REAL=$(readlink -f "$(command -v "$DENO")")
export NO_COLOR=1 DENO_NO_UPDATE_CHECK=1
passed=0
failed=0
skipped=0
failures=()
skips=()
# Per test program or file; MEMKIT_TEST_TIMEOUT overrides (seconds).
timeout_c=${MEMKIT_TEST_TIMEOUT:-300}
timeout_deno=${MEMKIT_TEST_TIMEOUT:-900}
log=build/test-logs
mkdir -p "$log"
rm -f "$log/summary.txt"

pass() { passed=$((passed + $1)); }
fail() { failed=$((failed + $1)); failures+=("$2"); }
# One skipped test, with its reason.
skip() {
  skipped=$((skipped + 1))
  skips+=("$1")
}
# The kernel's log so far, to compare after the run (empty where unreadable).
kernel_log() { dmesg 2>/dev/null || true; }
kernel_last_line=$(kernel_log | tail -n 1)

# One static check: passes when the command exits 0.
static() {
  local name=$1
  shift
  if "$@" >"$log/$name.log" 2>&1; then
    echo "ok   $name"
    pass 1
  else
    echo "FAIL $name (see $log/$name.log)"
    sed 's/^/     /' "$log/$name.log" | tail -n 30
    fail 1 "$name"
  fi
}

# Builds the C test `src` with compiler `cc` and `flags` (into build/ctest,
# or build/ctest-<label>) and runs it under the timeout, its output in
# $log/[<label>-]<name>.log. Returns the program's exit status, or 200 when
# it does not build (that failure already counted).
c_run() {
  local label=$1 cc=$2 flags=$3 src=$4 name dir out
  name=$(basename "$src" .c)
  dir=build/ctest${label:+-$label}
  out=$log/${label:+$label-}$name
  mkdir -p "$dir"
  # shellcheck disable=SC2086 # the flags are words
  if ! $cc $flags -Icbits -o "$dir/$name" "$src" cbits/*.c >"$out.build.log" 2>&1; then
    echo "FAIL ${label:+$label }$name: does not build"
    cat "$out.build.log"
    fail 1 "${label:+$label }$name (build)"
    return 200
  fi
  TSAN_OPTIONS=halt_on_error=1 ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    timeout -k 10 "$timeout_c" "$dir/$name" >"$out.log" 2>&1
}

echo "== C unit tests (ASan/UBSan)"
for src in tests/c/test_*.c; do
  [ -e "$src" ] || continue
  name=$(basename "$src" .c)
  c_run "" "$CC" "$SAN_CFLAGS" "$src"
  rc=$?
  [ $rc -eq 200 ] && continue
  ok=$(grep -c '^ok ' "$log/$name.log")
  notok=$(grep -c '^not ok ' "$log/$name.log")
  skip=$(grep -c '^skip ' "$log/$name.log")
  cat "$log/$name.log"
  pass "$ok"
  [ "$notok" -gt 0 ] && fail "$notok" "$name"
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    echo "FAIL $name: timed out after ${timeout_c}s"
    fail 1 "$name (timed out)"
  elif [ $rc -ne 0 ] && [ $rc -ne 77 ] && [ "$notok" -eq 0 ]; then
    fail 1 "$name (exit $rc)"
  fi
  while IFS= read -r line; do
    skip "$name: ${line#skip * - }"
  done < <(grep '^skip ' "$log/$name.log")
  [ "$skip" -gt 0 ] && echo "     ($skip skipped)"
done

# The same programs with another compiler or sanitizer: one result each
# (its checks already counted above). ThreadSanitizer covers every program,
# the threaded ones (fault handlers, lock waiters) included as they land.
other_build() {
  local label=$1 cc=$2 flags=$3 src name rc
  for src in tests/c/test_*.c; do
    [ -e "$src" ] || continue
    name=$(basename "$src" .c)
    c_run "$label" "$cc" "$flags" "$src"
    rc=$?
    [ $rc -eq 200 ] && continue
    if { [ $rc -eq 0 ] || [ $rc -eq 77 ]; } && ! grep -q '^not ok \|Sanitizer' "$log/$label-$name.log"; then
      echo "ok   $label $name"
      pass 1
    else
      echo "FAIL $label $name (exit $rc, see $log/$label-$name.log)"
      grep '^not ok \|Sanitizer' "$log/$label-$name.log" | head -n 20
      fail 1 "$label $name"
    fi
  done
}
echo "== C unit tests under ThreadSanitizer"
tsan_flags="-O1 -g -std=c11 -Wall -Wextra -Werror -fsanitize=thread"
# shellcheck disable=SC2086 # the flags are words
probe_c() { mkdir -p build/ctest && echo 'int main(void){return 0;}' | $1 $2 -x c - -o build/ctest/probe 2>/dev/null; }
if probe_c "$CC" "$tsan_flags"; then
  other_build tsan "$CC" "$tsan_flags"
else
  skip "tsan: $CC cannot link -fsanitize=thread (apt-get install libtsan2)"
fi
echo "== C library and unit tests with clang (ASan/UBSan)"
if [ "$CC" != clang ] && command -v clang >/dev/null 2>&1 && probe_c clang "$SAN_CFLAGS"; then
  static clang-build make --no-print-directory -s CC=clang BUILD=build/clang build/clang/libmemkit.so
  other_build clang clang "$SAN_CFLAGS"
elif [ "$CC" != clang ]; then
  skip "clang: not installed with its sanitizer runtimes (apt-get install clang libclang-rt-14-dev; .ci/run does)"
fi

echo "== static checks"
static fmt "$DENO" fmt --check
static lint "$DENO" lint
static check "$DENO" check mod.ts cli.ts ffi/bindgen.ts tests/ bench/ examples/
static doc-lint "$DENO" doc --lint mod.ts cli.ts cli/*.ts
static bindgen "$DENO" run --allow-read=cbits,ffi ffi/bindgen.ts --check
# The package as JSR would publish it: every export's imports are included.
static publish "$DENO" publish --dry-run --allow-dirty
# Every shell script of the suite and the build.
scripts=(tests/run.sh tests/vm/run.sh tests/vm/prepare.sh tests/vm/init .ci/run)
if command -v shellcheck >/dev/null 2>&1; then
  static shellcheck shellcheck -x "${scripts[@]}"
else
  echo "skip shellcheck: not installed (apt-get install shellcheck; .ci/run does)"
  skip "shellcheck: not installed (apt-get install shellcheck; .ci/run installs it)"
fi

echo "== deno test"
# Runs one deno test invocation and adds its counts.
run_deno_test() {
  local name=$1
  shift
  local out="$log/deno-$name.log"
  echo "-- $name: deno test $*"
  timeout -k 10 "$timeout_deno" "$DENO" test "$@" >"$out" 2>&1
  local rc=$?
  local summary
  summary=$(grep -E '^(ok|FAILED) \| [0-9]+ passed' "$out" | tail -n 1)
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    cat "$out"
    echo "FAIL $name: timed out after ${timeout_deno}s"
    fail 1 "$name (timed out)"
    return
  fi
  if [ -z "$summary" ]; then
    cat "$out"
    fail 1 "$name (no result: exit $rc)"
    return
  fi
  # Each ignored test, with the reason its file printed (SKIP: <test>: <why>).
  local test why
  while IFS= read -r test; do
    why=$(grep -F "SKIP: $test: " "$out" | head -n 1)
    why=${why#"SKIP: $test: "}
    skip "$name: $test: ${why:-no reason printed (use probed() in tests/fixtures/skip.ts)}"
  done < <(sed -nE 's/^(.*[^ ]) \.\.\. ignored( \(.*\))?$/\1/p' "$out" | sed -E 's/^.* \.\.\. //')
  local p f
  p=$(sed -E 's/^[A-Za-z]+ \| ([0-9]+) passed.*/\1/' <<<"$summary")
  f=$(sed -E 's/.*\| ([0-9]+) failed.*/\1/' <<<"$summary")
  if [ "$f" -gt 0 ] || [ $rc -ne 0 ]; then
    cat "$out"
    [ "$f" -eq 0 ] && f=1
  else
    grep -E '\.\.\. (ok|FAILED|ignored)' "$out" | sed 's/^/   /'
  fi
  pass "$p"
  [ "$f" -gt 0 ] && fail "$f" "$name"
  echo "   $summary"
}

for file in tests/*_test.ts; do
  flags=$(sed -n 's|^// flags:||p' "$file" | head -n 1)
  flags=${flags//\$DENO/$DENO_REAL}
  # shellcheck disable=SC2086
  run_deno_test "$(basename "$file" .ts)" $flags "$file"
done
echo "== QEMU guest (/dev/mem)"
# tests/vm/: this kernel has no /dev/mem, so those tests run in a guest; each
# guest result counts here. SKIP (not a failure) only where QEMU or the
# kernel package cannot be installed.
DENO="$DENO" bash tests/vm/prepare.sh >"$log/vm-prepare.log" 2>&1
vm_rc=$?
if [ $vm_rc -eq 77 ]; then
  grep '^SKIP' "$log/vm-prepare.log"
  skip "vm: $(grep -m1 '^SKIP' "$log/vm-prepare.log" | sed 's/^SKIP: //')"
elif [ $vm_rc -ne 0 ]; then
  cat "$log/vm-prepare.log"
  fail 1 "vm (prepare)"
else
  tail -n 1 "$log/vm-prepare.log"
  accel=tcg
  if [ -w /dev/kvm ] && { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; }; then
    accel=kvm
  fi
  flags=$(sed -n 's|^// flags:||p' tests/vm/vm_test.ts | head -n 1)
  # Two boots under software emulation: the main one may take up to its own
  # timeout (tests/vm/vm_test.ts), then the SMBIOS one; this bound is above both.
  # shellcheck disable=SC2086
  timeout_deno=${MEMKIT_TEST_TIMEOUT:-2100} MEMKIT_VM_ACCEL=$accel run_deno_test vm $flags tests/vm/vm_test.ts
fi

# The introspection examples read this process's /proc files (and, as root, kpageflags).
run_deno_test doc --doc --allow-ffi --v8-flags=--js-immutable-arraybuffer \
  --allow-read=/proc/self/maps,/proc/self/smaps,/proc/self/smaps_rollup,/proc/self/pagemap,/proc/kpageflags,/proc/kpagecount \
  mod.ts src/*.ts ffi/errors.ts ffi/loader.ts cli/*.ts

# The kernel's own trouble during the run (liburing's habit): any BUG,
# WARNING, Oops or kernel general protection fault is a failure. User-space
# faults ("traps:", "segfault at") are the safety tests' children, not this.
# The lines after the last one seen at the start (all of them if it rolled out).
kernel_log | awk -v last="$kernel_last_line" 'seen { print } $0 == last { seen = 1; n = NR }
  { all[NR] = $0 } END { if (!seen || last == "") for (i = 1; i <= NR; i++) print all[i] }' \
  >"$log/kernel.log"
if grep -E '(BUG:|WARNING:|Oops|general protection fault)' "$log/kernel.log" |
  grep -v 'traps: ' >"$log/kernel-trouble.log"; then
  echo "FAIL kernel log (see $log/kernel.log)"
  cat "$log/kernel-trouble.log"
  fail 1 "kernel log"
else
  echo "ok   kernel log: no BUG, WARNING or Oops during the run"
  pass 1
fi

echo
if [ ${#skips[@]} -gt 0 ]; then
  for s in "${skips[@]}"; do echo "SKIP: $s"; done
fi
if [ ${#failures[@]} -gt 0 ]; then
  echo "failed: ${failures[*]}"
fi
echo "tests: $passed passed, $failed failed, $skipped skipped" | tee "$log/summary.txt"
[ "$failed" -eq 0 ]
