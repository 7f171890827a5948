// flags: --allow-ffi --v8-flags=--js-immutable-arraybuffer --allow-read=/proc/self/smaps,/proc/self/pagemap,/proc/kpageflags,/tmp --allow-write=/tmp,/proc/sys/vm/compact_memory --allow-run=setpriv,cp,$DENO --allow-sys=uid,osRelease
// Pinning and advice against the kernel: locks seen in smaps and in the
// page flags, populate seen in pagemap, dontneed on private and shared
// memory, remove and guard markers that never let a view fault (raw
// accesses in a child do), RLIMIT_MEMLOCK refusals named as nobody under
// prlimit, and bad input refused before any system call.
import { assert, assertEquals, assertStringIncludes, assertThrows } from "@std/assert";
import {
  adviceSupported,
  advise,
  compactMemory,
  KPAGE_FLAG_NAMES,
  lock,
  Mapping,
  MemFd,
  MemkitError,
  Pagemap,
  pageSize,
  readKPageFlags,
  readSmaps,
  unlock,
} from "../mod.ts";
import { lib } from "../ffi/loader.ts";
import { MK } from "../ffi/symbols.ts";
import { nobodyPackage } from "./fixtures/nobody.ts";
import { probed } from "./fixtures/skip.ts";
import { type ChildRun, denoRun } from "./fixtures/child.ts";

const PAGE = pageSize();
const fixture = new URL("./fixtures/advise_child.ts", import.meta.url).pathname;
const isRoot = Deno.uid() === 0;

/** The running kernel as [major, minor], from uname (not from memkit). */
const kernel = Deno.osRelease().split(/[.-]/).slice(0, 2).map(Number) as [number, number];
const atLeast = (major: number, minor: number) =>
  kernel[0] > major || (kernel[0] === major && kernel[1] >= minor);

// libc, independent of memkit: private memory memkit does not make, and the
// oracle for what the kernel accepts.
const libc = Deno.dlopen("libc.so.6", {
  mmap: { parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"], result: "pointer" },
  munmap: { parameters: ["pointer", "usize"], result: "i32" },
  madvise: { parameters: ["pointer", "usize", "i32"], result: "i32" },
});
const PROT_RW = 3, MAP_PRIVATE_ANON = 0x22, MAP_SHARED_ANON = 0x21;

/** Whether libc's madvise(advice) succeeds on a fresh page of shared anonymous memory. */
function kernelAccepts(advice: number): boolean {
  const p = libc.symbols.mmap(null, BigInt(PAGE), PROT_RW, MAP_SHARED_ANON, -1, 0n)!;
  const ok = libc.symbols.madvise(p, BigInt(PAGE), advice) === 0;
  libc.symbols.munmap(p, BigInt(PAGE));
  return ok;
}

/** smaps `Locked:` and `Rss:` of the mapping that starts at `address`, in bytes. */
function smapsOf(address: bigint): { locked: number; rss: number } {
  const e = readSmaps("self").find((s) => s.start === address);
  if (e === undefined) throw new Error(`No smaps entry at 0x${address.toString(16)}`);
  return { locked: e.locked, rss: e.rss };
}

function skip(test: string, reason: string): void {
  console.log(`SKIP: ${test}: ${reason}`);
}

Deno.test("lock() shows in smaps Locked, onFault locks touched pages only, unlock() clears it", () => {
  using fd = MemFd.create("lock", { size: 4 * PAGE });
  using m = fd.map();
  assertEquals(smapsOf(m.address).locked, 0);
  lock(m);
  assertEquals(smapsOf(m.address), { locked: 4 * PAGE, rss: 4 * PAGE }); // prefaulted
  unlock(m);
  assertEquals(smapsOf(m.address).locked, 0);

  advise(m, "dontneed");
  assertEquals(smapsOf(m.address).rss, 0);
  m.lock({ onFault: true });
  assertEquals(smapsOf(m.address).locked, 0); // nothing touched yet
  m.bytes()[2 * PAGE] = 1;
  assertEquals(smapsOf(m.address).locked, PAGE);
  m.unlock();

  // A range: smaps shows the VMA split in two, the locked part first.
  m.lock({}, { offset: 0, length: 2 * PAGE });
  assertEquals(smapsOf(m.address).locked, 2 * PAGE);
  unlock({ mapping: m, offset: 0, length: 2 * PAGE });
  assertEquals(smapsOf(m.address).locked, 0);
});

Deno.test("a locked memfd page is MLOCKED and UNEVICTABLE in kpageflags (as root)", () => {
  const name = "a locked memfd page is MLOCKED and UNEVICTABLE in kpageflags";
  if (!isRoot) return skip(name, "kpageflags and PFNs are root's");
  const MLOCKED = 33n; // KPF_MLOCKED, one of the kernel-hacking bits past KPAGE_FLAG_NAMES
  const UNEVICTABLE = BigInt(KPAGE_FLAG_NAMES.indexOf("UNEVICTABLE"));
  const bits = (raw: bigint) => [(raw >> MLOCKED) & 1n, (raw >> UNEVICTABLE) & 1n];
  using fd = MemFd.create("kpage-lock", { size: 2 * PAGE });
  using m = fd.map();
  using pm = Pagemap.open();
  // Present before the lock: mlock2 marks them itself and drains its batch
  // (pages it faults in later may sit in a per-CPU batch for a while).
  m.bytes().fill(1);
  const pfns = () => {
    const pages = pm.read({ start: m.address, pages: 2 });
    return [pages.pfn(0)!, pages.pfn(1)!];
  };
  assertEquals([...readKPageFlags(pfns()).raw].map(bits), [[0n, 0n], [0n, 0n]]);
  lock(m);
  assertEquals([...readKPageFlags(pfns()).raw].map(bits), [[1n, 1n], [1n, 1n]]);
  unlock(m);
  assertEquals([...readKPageFlags(pfns()).raw].map((r) => bits(r)[0]), [0n, 0n]);
});

Deno.test("populate-read and populate-write make pages present in pagemap, and only those", () => {
  const has = kernelAccepts(23); // MADV_POPULATE_WRITE
  assertEquals(has, atLeast(5, 14));
  assertEquals(adviceSupported("populate-write"), has);
  assertEquals(adviceSupported("populate-read"), kernelAccepts(22));
  if (!has) return skip("populate", `Linux ${kernel.join(".")} lacks MADV_POPULATE_*`);
  using fd = MemFd.create("populate", { size: 8 * PAGE });
  using m = fd.map();
  using pm = Pagemap.open();
  const present = () => {
    const pages = pm.read({ start: m.address, pages: 8 });
    return [...Array(8).keys()].map((i) => pages.present(i) ? 1 : 0);
  };
  assertEquals(present(), [0, 0, 0, 0, 0, 0, 0, 0]);
  advise({ mapping: m, offset: PAGE, length: 2 * PAGE }, "populate-write");
  assertEquals(present(), [0, 1, 1, 0, 0, 0, 0, 0]);
  m.advise("populate-read", { offset: 6 * PAGE });
  assertEquals(present(), [0, 1, 1, 0, 0, 0, 1, 1]);
  assertEquals(smapsOf(m.address).rss, 4 * PAGE);

  // populate-write needs write access in memkit's record; a read-only
  // mapping is a TypeError, not a call the kernel would refuse.
  using ro = fd.map({ access: "r" });
  assertThrows(() => advise(ro, "populate-write"), TypeError, 'its protection is "r"');
  advise(ro, "populate-read");
  m.protect("none", { offset: 3 * PAGE, length: PAGE });
  assertThrows(() => advise(m, "populate-read"), TypeError, 'its protection is "none" at offset');
});

Deno.test("dontneed loses the data of private memory and keeps a memfd's", () => {
  const p = libc.symbols.mmap(null, BigInt(PAGE), PROT_RW, MAP_PRIVATE_ANON, -1, 0n)!;
  const address = BigInt(Deno.UnsafePointer.value(p));
  const raw = new Deno.UnsafePointerView(p);
  const bytes = new Uint8Array(raw.getArrayBuffer(PAGE));
  bytes[10] = 0x5a;
  assertEquals(lib().mk_advise_range(address, BigInt(PAGE), MK.MADV_DONTNEED), 0n);
  assertEquals(bytes[10], 0); // private: the page was freed, a fresh zero page now
  libc.symbols.munmap(p, BigInt(PAGE));

  using fd = MemFd.create("dontneed", { size: 2 * PAGE });
  using m = fd.map();
  const view = m.bytes();
  view[PAGE + 10] = 0x5a;
  using pm = Pagemap.open();
  assertEquals(pm.read({ start: m.address + BigInt(PAGE), pages: 1 }).present(0), true);
  advise(m, "dontneed");
  assertEquals(pm.read({ start: m.address + BigInt(PAGE), pages: 1 }).present(0), false); // no PTE any more
  assertEquals(view[PAGE + 10], 0x5a); // shared: the data stayed in the memfd
  assertEquals(pm.read({ start: m.address + BigInt(PAGE), pages: 1 }).present(0), true);
  using other = fd.map({ access: "r" });
  assertEquals(other.read(PAGE + 10, 1)[0], 0x5a);
});

Deno.test("remove frees a memfd's pages: they read zeros, nothing faults, the size stays", () => {
  using fd = MemFd.create("remove", { size: 3 * PAGE });
  using m = fd.map();
  const view = m.bytes();
  view.fill(9);
  advise({ mapping: m, offset: PAGE, length: PAGE }, "remove");
  assertEquals([view[PAGE - 1], view[PAGE], view[2 * PAGE - 1], view[2 * PAGE]], [9, 0, 0, 9]);
  assertEquals(fd.size, 3 * PAGE);
  using ro = fd.map({ access: "r" });
  assertThrows(() => advise(ro, "remove"), TypeError, '"remove" needs "rw"');
  assertEquals(ro.bytes()[0], 9);
});

Deno.test("remove on a write-sealed memfd is EPERM with the seal named", () => {
  using fd = MemFd.create("remove-sealed", { size: PAGE });
  using m = fd.map();
  m.bytes()[0] = 1;
  fd.seal(["future-write"]);
  const e = assertThrows(() => advise(m, "remove"), MemkitError);
  assertEquals(e.code, "EPERM");
  assertStringIncludes(e.message, "sealed against writes");
  assertEquals(m.bytes()[0], 1);
});

function child(args: string[]): ChildRun {
  return denoRun(["--allow-ffi", "--v8-flags=--js-immutable-arraybuffer", fixture, ...args]);
}

const guards = adviceSupported("guard");
const noGuards = !guards &&
  `Linux ${kernel.join(".")} refuses MADV_GUARD_INSTALL on shared memory (6.15 has it)`;

Deno.test("guard is probed as the kernel answers (6.13, and 6.15 for shared memory)", () => {
  assertEquals(guards, kernelAccepts(102)); // MADV_GUARD_INSTALL on shared memory
  if (atLeast(6, 15)) assertEquals(guards, true);
  if (!atLeast(6, 13)) assertEquals(guards, false);
  assertEquals(adviceSupported("unguard"), guards);
  if (guards) return;
  using fd = MemFd.create("no-guard", { size: PAGE });
  using m = fd.map();
  const e = assertThrows(() => advise(m, "guard"), MemkitError);
  assertEquals(e.code, "EOPNOTSUPP");
  assertStringIncludes(e.message, atLeast(6, 13) ? "Linux 6.15" : "Linux 6.13");
  assertEquals(m.access, "rw"); // refused before anything changed
});

probed({
  name: "a raw read of a guarded page faults (in a child)",
  skip: noGuards,
  fn() {
    const r = child(["guard-raw"]);
    assertStringIncludes(r.stdout, "touching", r.stderr);
    assertEquals(r.signal, "SIGSEGV", `${r.stdout}\n${r.stderr}`);
  },
});

probed({
  name: "no memkit view reaches a guarded page, protect() keeps it, unguard gives its data back",
  skip: noGuards,
  fn() {
    const r = child(["guard-views"]);
    assertEquals(r.signal, null, r.stderr);
    const v = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
    assertEquals(v.survived, true, r.stdout);
    assertEquals([v.stale, v.staleLength], [undefined, 0]); // detached first
    for (const k of ["bytes", "across", "view", "read", "write", "afterProtect"]) {
      assert(String(v[k]).startsWith("throws:TypeError"), `${k}: ${v[k]}`);
    }
    assertStringIncludes(v.protect, "throws:MemkitError:EBUSY");
    assertStringIncludes(v.protect, 'advise "unguard" first');
    assertStringIncludes(v.protectMiddle, "throws:MemkitError:EBUSY");
    assertStringIncludes(v.populate, 'throws:TypeError:Cannot advise "populate-read"');
    assertStringIncludes(v.lock, "throws:MemkitError:EBUSY");
    assertEquals(v.after, 7); // guard markers drop no data of shared memory
  },
});

probed({
  name: "guard is refused with EBUSY while read-only views live, and changes nothing",
  skip: noGuards,
  fn() {
    using fd = MemFd.create("guard-ro", { size: 2 * PAGE });
    using m = fd.map({ access: "r" });
    const view = m.bytes();
    const e = assertThrows(() => advise({ mapping: m, offset: PAGE }, "guard"), MemkitError);
    assertEquals(e.code, "EBUSY");
    assertEquals([m.access, view[PAGE]], ["r", 0]);
  },
});

probed({
  name: "guard on locked memory is refused and puts the protection back",
  skip: noGuards,
  fn() {
    using fd = MemFd.create("guard-locked", { size: 2 * PAGE });
    using m = fd.map();
    lock(m);
    const e = assertThrows(() => advise({ mapping: m, offset: PAGE }, "guard"), MemkitError);
    assertEquals(e.code, "EINVAL");
    assertStringIncludes(e.message, "unlock() first");
    assertEquals(m.access, "rw");
    m.bytes()[PAGE] = 1;
  },
});

Deno.test("bad input is a TypeError or RangeError before any system call", () => {
  using fd = MemFd.create("bad", { size: 2 * PAGE });
  using m = fd.map();
  assertThrows(() => advise(m, "sideways" as never), TypeError, 'advice "sideways"');
  assertThrows(() => advise(m, "free" as never), TypeError, "private anonymous memory only");
  assertThrows(() => advise(m, new String("dontneed") as never), TypeError, 'type "object"');
  assertThrows(() => advise(m, "toString" as never), TypeError); // no inherited keys
  assertThrows(() => advise(m, "__proto__" as never), TypeError);
  assertThrows(() => advise({} as never, "normal"), TypeError, "expected a Mapping");
  assertThrows(() => advise(null as never, "normal"), TypeError);
  const fake = Object.create(Mapping.prototype);
  assertThrows(() => lock(fake), TypeError, "expected a Mapping");
  assertThrows(() => lock({ mapping: fake }), TypeError);
  assertThrows(() => lock(m, { onFault: 1 as never }), TypeError, 'onFault "1"');
  assertThrows(() => lock(m, null as never), TypeError);
  assertThrows(() => advise({ mapping: m, offset: 1 }, "normal"), RangeError, "page size");
  assertThrows(() => advise({ mapping: m, offset: 2 * PAGE }, "normal"), RangeError, "beyond");
  assertThrows(() => advise({ mapping: m, length: 3 * PAGE }, "normal"), RangeError);
  assertThrows(() => advise({ mapping: m, length: 100 }, "normal"), RangeError, "page multiples");
  assertThrows(() => m.advise("normal", 5 as never), TypeError, "expected a range");
  // A getter runs once: the range checked is the range used.
  let reads = 0;
  const tricky = {
    mapping: m,
    get offset() {
      return reads++ === 0 ? 0 : 1;
    },
    length: PAGE,
  };
  advise(tricky, "willneed");
  assertEquals(reads, 1);
  m.close();
  assertThrows(() => lock(m), Deno.errors.BadResource, "closed");
  assertThrows(() => advise(m, "normal"), Deno.errors.BadResource);
});

Deno.test("every advice in the list works on a memfd's mapping, or names why not", () => {
  using fd = MemFd.create("all", { size: 4 * PAGE });
  using m = fd.map();
  m.bytes().fill(3);
  for (
    const a of [
      "normal",
      "random",
      "sequential",
      "willneed",
      "dontneed",
      "hugepage",
      "nohugepage",
      "cold",
      "pageout",
    ] as const
  ) {
    try {
      advise(m, a);
    } catch (e) {
      // hugepage: EINVAL on a kernel without THP, the one allowed refusal.
      assert(a === "hugepage" && e instanceof MemkitError && e.code === "EINVAL", `${a}: ${e}`);
    }
    assertEquals(m.bytes()[PAGE], 3, a); // no advice lost the data
  }
});

const nobody = nobodyPackage("memkit-advise-");

/** Runs the fixture as nobody under `prlimit --memlock=<limit>`. */
function lockAsNobody(limit: number, bytes: number): Record<string, unknown> {
  const r = new Deno.Command("setpriv", {
    args: [
      "--reuid=65534",
      "--regid=65534",
      "--clear-groups",
      "prlimit",
      `--memlock=${limit}:${limit}`,
      nobody.deno,
      "run",
      "--allow-ffi",
      `${nobody.root}tests/fixtures/advise_child.ts`,
      "lock",
      String(bytes),
    ],
    cwd: nobody.dir,
    env: { DENO_DIR: `${nobody.dir}/deno`, HOME: nobody.dir },
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  const stderr = new TextDecoder().decode(r.stderr);
  assertEquals([r.signal, r.code], [null, 0], stderr);
  return JSON.parse(new TextDecoder().decode(r.stdout).trim().split("\n").at(-1)!);
}

// util-linux's setpriv and prlimit (the QEMU guest's busybox has neither).
function canRunAsNobody(): boolean {
  try {
    return new Deno.Command("setpriv", {
      args: [
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "prlimit",
        "--memlock=0:0",
        "true",
      ],
      stdout: "null",
      stderr: "null",
    }).outputSync().success;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

probed({
  name: "an RLIMIT_MEMLOCK refusal names the limit and its value (nobody under prlimit)",
  skip: !isRoot ? "not root: cannot become nobody" : !canRunAsNobody() &&
    "setpriv --reuid and prlimit cannot run a program as nobody here (util-linux's do)",
  fn() {
    assertEquals(lockAsNobody(64 * 1024, 16 * PAGE), { scenario: "lock", ok: true, locked: 65536 });
    const over = lockAsNobody(64 * 1024, 1024 * 1024);
    assertEquals([over.name, over.code], ["MemkitError", "ENOMEM"]);
    assertEquals(
      over.message,
      'Cannot lock "memfd:lock-child": Cannot allocate memory: RLIMIT_MEMLOCK is "64 KiB", ' +
        "and locking 1 MiB more would exceed it (the limit counts every page this process has " +
        "locked); raise it (ulimit -l, prlimit --memlock, LimitMEMLOCK= in systemd) or run " +
        "with CAP_IPC_LOCK",
    );
    const zero = lockAsNobody(0, PAGE);
    assertEquals(zero.code, "EPERM");
    assertStringIncludes(String(zero.message), 'RLIMIT_MEMLOCK is "0 bytes"');
    assertStringIncludes(String(zero.message), "may lock nothing without CAP_IPC_LOCK");
  },
});

Deno.test("compactMemory() keeps a locked page's data, wherever its frame went (as root)", () => {
  if (!isRoot) {
    assertThrows(() => compactMemory(), MemkitError, "writable by root only");
    return;
  }
  using fd = MemFd.create("compact", { size: PAGE });
  using m = fd.map();
  m.bytes()[5] = 42;
  lock(m);
  using pm = Pagemap.open();
  const before = pm.translate(m.address);
  compactMemory();
  const after = pm.translate(m.address);
  // Moved or not is the kernel's choice (the tour says which); either way
  // the page is present, still locked, and holds its data.
  assert(before !== null && after !== null);
  assertEquals(smapsOf(m.address).locked, PAGE);
  assertEquals(m.bytes()[5], 42);
});
