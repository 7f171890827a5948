// flags: --allow-ffi --v8-flags=--js-immutable-arraybuffer --allow-run=cat,strace,$DENO --allow-write=/tmp --allow-read=/tmp
// mapAnonymous() against the kernel: the memory is shared (a second address
// of it sees writes) and named as the kernel names any MAP_SHARED |
// MAP_ANONYMOUS mapping (made here with libc as the oracle); noreserve sets
// what MAP_NORESERVE sets; close() detaches its views and quarantines what
// handed one out; protect() and advise() work on it; hostile options are
// read once and refused before any system call; and strace counts the
// system calls of its cycle and of the MemFd cycle.
import { assert, assertEquals, assertStringIncludes, assertThrows } from "@std/assert";
import { alias, mapAnonymous, MemkitError, pageSize, stitch } from "../mod.ts";
import { QUARANTINE_RANGES, quarantined } from "../src/_region.ts";
import { linesIn, type MapsLine, procMaps } from "./fixtures/procmaps.ts";
import { childReport } from "./fixtures/child.ts";
import { lacks, probed } from "./fixtures/skip.ts";

const PAGE = pageSize();
const fixture = new URL("./fixtures/anonymous_child.ts", import.meta.url).pathname;

// The oracle: mmap and munmap from libc, not memkit.
const libc = Deno.dlopen("libc.so.6", {
  mmap: { parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"], result: "pointer" },
  munmap: { parameters: ["pointer", "usize"], result: "i32" },
});
const PROT_RW = 3;
const MAP_SHARED = 0x01;
const MAP_ANONYMOUS = 0x20;
const MAP_NORESERVE = 0x4000;
const MAP_FAILED = 2n ** 64n - 1n;

/** The maps line of a shared anonymous mapping libc made (unmapped again), or that it failed. */
function oracle(length: number, flags = 0): { line: MapsLine | undefined; failed: boolean } {
  const p = libc.symbols.mmap(
    null,
    BigInt(length),
    PROT_RW,
    MAP_SHARED | MAP_ANONYMOUS | flags,
    -1,
    0n,
  );
  const address = BigInt(Deno.UnsafePointer.value(p));
  if (p === null || address === MAP_FAILED) return { line: undefined, failed: true };
  const line = procMaps().find((l) => l.start === address);
  libc.symbols.munmap(p, BigInt(length));
  return { line, failed: false };
}

/** The maps line that starts at `address`. */
function lineAt(address: bigint): MapsLine | undefined {
  return procMaps().find((l) => l.start === address);
}

/** The VmFlags of the smaps entry starting at `address` (read with cat). */
function vmFlags(address: bigint): string[] {
  const r = new Deno.Command("cat", { args: [`/proc/${Deno.pid}/smaps`], stdout: "piped" })
    .outputSync();
  const text = new TextDecoder().decode(r.stdout);
  const head = `${address.toString(16)}-`;
  const start = text.split("\n").findIndex((l) => l.startsWith(head));
  if (start < 0) throw new Error(`Cannot find the smaps entry at 0x${address.toString(16)}`);
  const lines = text.split("\n").slice(start + 1);
  const flags = lines.find((l) => l.startsWith("VmFlags:"));
  return flags ? flags.slice("VmFlags:".length).trim().split(/\s+/) : [];
}

Deno.test("mapAnonymous() is shared memory: a second address of it sees every write", () => {
  using m = mapAnonymous(2 * PAGE);
  assert(m.bytes().every((b) => b === 0), "zero-filled");
  // mremap(old_size 0), alias()'s call, makes a second mapping of shared memory only.
  using again = alias(m);
  assert(again.address !== m.address);
  m.bytes()[PAGE + 3] = 42;
  assertEquals(again.bytes()[PAGE + 3], 42);
  again.write(new Uint8Array([7]), 9);
  assertEquals(m.read(9, 1), new Uint8Array([7]));
  using s = stitch([{ source: m, offset: PAGE, length: PAGE }, { source: m, length: PAGE }]);
  assertEquals([s.bytes()[3], s.bytes()[PAGE + 9]], [42, 7]);
});

Deno.test("the kernel shows mapAnonymous() as it shows any MAP_SHARED | MAP_ANONYMOUS mapping", () => {
  const probe = oracle(PAGE).line!;
  using m = mapAnonymous(PAGE);
  const line = lineAt(m.address)!;
  assertEquals(line.perms, probe.perms);
  assertEquals(line.perms, "rw-s");
  assertEquals(line.path, probe.path); // "/dev/zero (deleted)" on Linux 6
  assertEquals(line.end - line.start, BigInt(PAGE));
  assertEquals(m.name, `anonymous(${PAGE})`);
});

Deno.test("the length is rounded up to pages in the kernel; length and views are the bytes asked for", () => {
  using m = mapAnonymous(PAGE + 1);
  assertEquals(m.length, PAGE + 1);
  assertEquals(m.bytes().length, PAGE + 1);
  assertThrows(() => m.bytes(0, PAGE + 2), RangeError);
  const line = lineAt(m.address)!;
  assertEquals(line.end - line.start, BigInt(2 * PAGE));
});

Deno.test("noreserve: true sets what MAP_NORESERVE sets, as the kernel's VmFlags show", () => {
  // The oracle: libc's mappings with and without the flag, read while mapped.
  const flagsOf = (flags: number) => {
    const p = libc.symbols.mmap(
      null,
      BigInt(PAGE),
      PROT_RW,
      MAP_SHARED | MAP_ANONYMOUS | flags,
      -1,
      0n,
    );
    try {
      return vmFlags(BigInt(Deno.UnsafePointer.value(p))).includes("nr");
    } finally {
      libc.symbols.munmap(p, BigInt(PAGE));
    }
  };
  const [expected, expectedWithout] = [flagsOf(MAP_NORESERVE), flagsOf(0)];
  using a = mapAnonymous(PAGE, { noreserve: true });
  using b = mapAnonymous(PAGE, { noreserve: false });
  assertEquals(vmFlags(a.address).includes("nr"), expected);
  assertEquals(vmFlags(b.address).includes("nr"), expectedWithout);
  assert(
    expected || !expectedWithout,
    "the kernel's own flags tell the two apart, or neither has it",
  );
});

Deno.test("a size the kernel will not commit is ENOMEM with a hint, and noreserve maps it as the kernel does", () => {
  // 16 TiB: more than this machine's memory; whether it is refused is the
  // kernel's overcommit policy, asked of the kernel through libc.
  const size = 2 ** 44;
  const plain = oracle(size).failed;
  const reserved = oracle(size, MAP_NORESERVE).failed;
  if (plain) {
    const e = assertThrows(() => mapAnonymous(size), MemkitError);
    assertEquals(e.code, "ENOMEM");
    assertStringIncludes(e.message, "noreserve: true");
  } else {
    mapAnonymous(size).close();
  }
  if (reserved) {
    assertThrows(() => mapAnonymous(size, { noreserve: true }), MemkitError);
  } else {
    mapAnonymous(size, { noreserve: true }).close();
  }
});

Deno.test("close() detaches the views; a range that handed one out waits in the quarantine as private zero pages", () => {
  const m = mapAnonymous(PAGE);
  const view = m.bytes();
  view[0] = 5;
  const address = m.address;
  m.close();
  m.close(); // idempotent
  assertEquals([view.length, view[0], m.closed], [0, undefined, true]);
  assertThrows(() => m.bytes(), Deno.errors.BadResource, "is closed");
  assert(quarantined().some((r) => r.address === address));
  const line = lineAt(address)!;
  assertEquals([line.perms, line.path], ["rw-p", ""]);
  // Without a view: unmapped at once, never quarantined.
  const plain = mapAnonymous(PAGE);
  const at = plain.address;
  plain.close();
  assert(!quarantined().some((r) => r.address === at));
  assert(!linesIn(at, PAGE).some((l) => l.start === at && l.perms === "rw-s"));
});

Deno.test("a native write to a closed mapAnonymous() view's address lands in the quarantine, not a fault", () => {
  const r = childReport([
    "--allow-ffi",
    "--v8-flags=--js-immutable-arraybuffer",
    fixture,
    "late-native-write",
  ]);
  assertEquals(r, {
    viewLength: 0,
    quarantined: true,
    wrote: true,
    nextAddressDiffers: true,
    nextSum: 0,
  });
});

Deno.test('access "r" and "none" start protected; protect() raises them, since the memory allows "rw"', () => {
  using none = mapAnonymous(2 * PAGE, { access: "none" });
  assertEquals(none.access, "none");
  assertThrows(() => none.bytes(), TypeError, 'protection "none"');
  assertEquals(lineAt(none.address)!.perms, "---s");
  none.protect("rw", { offset: PAGE, length: PAGE });
  none.bytes(PAGE)[0] = 1;
  assertEquals([none.accessAt(0), none.accessAt(PAGE)], ["none", "rw"]);
  using r = mapAnonymous(PAGE, { access: "r" });
  assertThrows(() => {
    r.bytes()[0] = 1;
  }, TypeError);
  r.protect("rw");
  r.bytes()[0] = 2;
  assertEquals(r.read(0, 1), new Uint8Array([2]));
});

Deno.test("advise() and lock() work on it: dontneed keeps shared memory's data", () => {
  using m = mapAnonymous(PAGE);
  m.bytes()[0] = 3;
  m.advise("dontneed");
  assertEquals(m.bytes()[0], 3);
  m.lock({ onFault: true });
  m.unlock();
});

Deno.test("mapAnonymous() takes a primitive length from 1 to 2^47, else a TypeError or RangeError", () => {
  for (const bad of [0, -1, 2 ** 47 + 1]) {
    assertThrows(() => mapAnonymous(bad), RangeError, "Cannot use length", String(bad));
  }
  for (const bad of [1.5, NaN, Infinity, "8", 8n, null, undefined, { valueOf: () => PAGE }]) {
    assertThrows(() => mapAnonymous(bad as never), TypeError, "Cannot use length", String(bad));
  }
});

Deno.test("mapAnonymous() options are read once each, and refused unless they are what the doc says", () => {
  const reads: Record<string, number> = {};
  const counting = new Proxy({ access: "rw", noreserve: false, extra: 1 }, {
    get(t, k, r) {
      reads[String(k)] = (reads[String(k)] ?? 0) + 1;
      return Reflect.get(t, k, r);
    },
  });
  mapAnonymous(PAGE, counting as never).close();
  assertEquals(reads, { access: 1, noreserve: 1 });
  // A getter that changes its answer is asked once: the mapping has what it said then.
  let calls = 0;
  const fickle = {
    get access() {
      return calls++ === 0 ? "r" : "rw";
    },
  };
  using m = mapAnonymous(PAGE, fickle as never);
  assertEquals([m.access, calls], ["r", 1]);
  let converted = 0;
  const str = { [Symbol.toPrimitive]: () => (converted++, "rw"), toString: () => "rw" };
  const bool = { [Symbol.toPrimitive]: () => (converted++, true), valueOf: () => true };
  assertThrows(() => mapAnonymous(PAGE, { access: str } as never), TypeError, "Cannot use access");
  assertThrows(() => mapAnonymous(PAGE, { noreserve: bool } as never), TypeError, "noreserve");
  assertThrows(
    () => mapAnonymous(PAGE, { noreserve: 1 } as never),
    TypeError,
    "expected a boolean",
  );
  for (const access of ["rx", "x", "toString", "__proto__", ""]) {
    assertThrows(() => mapAnonymous(PAGE, { access } as never), TypeError, `"${access}"`);
  }
  assertEquals(converted, 0);
  for (const bad of [null, 7, "rw", () => {}]) {
    const e = assertThrows(() => mapAnonymous(PAGE, bad as never), TypeError, "Cannot use options");
    assert(!/Cannot read properties/.test((e as Error).message));
  }
  // A prototype's getter counts as a field (Reflect.get), read once as well.
  let protoReads = 0;
  const inherited = Object.create({
    get noreserve() {
      protoReads++;
      return false;
    },
  });
  mapAnonymous(PAGE, inherited).close();
  assertEquals(protoReads, 1);
});

// ---- system calls, counted by strace ----

const noStrace = lacks("strace", ["-o", "/dev/null", "true"]);

/** The calls made on the thread that printed the markers, by name, between two markers. */
function straceCycles(cycles: number): Record<string, string[]> {
  const log = Deno.makeTempFileSync({ prefix: "memkit-strace-", dir: "/tmp" });
  try {
    const r = new Deno.Command("strace", {
      args: [
        "-f",
        "-o",
        log,
        "-e",
        "trace=mmap,munmap,memfd_create,ftruncate,fstat,newfstatat,close,write",
        Deno.execPath(),
        "run",
        "--allow-ffi",
        "--v8-flags=--js-immutable-arraybuffer",
        fixture,
        "cycles",
        String(cycles),
      ],
      stdout: "piped",
      stderr: "piped",
    }).outputSync();
    assertEquals(r.code, 0, new TextDecoder().decode(r.stderr));
    const lines = Deno.readTextFileSync(log).split("\n");
    const out: Record<string, string[]> = {};
    let phase = "";
    let tid = "";
    for (const line of lines) {
      const mark = line.match(/^(\d+)\s+write\(1, "MARK ([a-z-]+)\\n"/);
      if (mark) {
        [tid, phase] = [mark[1], mark[2]];
        out[phase] = [];
        continue;
      }
      if (!phase || phase === "end" || !line.startsWith(`${tid} `) || line.includes("resumed>")) {
        continue;
      }
      out[phase].push(line.slice(tid.length).trimStart()); // strace pads short pids
    }
    return out;
  } finally {
    Deno.removeSync(log);
  }
}

/** How many of `calls` start with `name(` and contain every one of `parts`. */
function count(calls: string[], name: string, ...parts: string[]): number {
  return calls.filter((c) => c.startsWith(`${name}(`) && parts.every((p) => c.includes(p))).length;
}

probed({
  name:
    "strace: mapAnonymous() + close() is mmap + munmap; with a view, the quarantine adds one mmap",
  skip: noStrace,
  fn() {
    const n = 2 * QUARANTINE_RANGES;
    const calls = straceCycles(n);
    const MIB = "1048576";
    const plain = calls["anonymous"];
    assertEquals(count(plain, "mmap", MIB, "MAP_SHARED|MAP_ANONYMOUS"), n);
    assertEquals(count(plain, "munmap", MIB), n);
    assertEquals(plain.filter((c) => c.includes(MIB)).length, 2 * n, plain.join("\n"));
    const viewed = calls["anonymous-view"];
    // close(): private zero pages in place (MAP_FIXED), the range to the quarantine...
    assertEquals(count(viewed, "mmap", MIB, "MAP_PRIVATE|MAP_FIXED|MAP_ANONYMOUS"), n);
    // ...which hands its oldest range on once QUARANTINE_RANGES newer ones came
    // in: the next mapping is placed over it (MAP_FIXED), nothing is unmapped.
    // Fresh mmaps only until then (the quarantine was empty: the plain cycles
    // never fill it).
    const warm = n - QUARANTINE_RANGES - 1;
    assertEquals(count(viewed, "mmap", MIB, "(NULL,", "MAP_SHARED|MAP_ANONYMOUS"), n - warm);
    assertEquals(count(viewed, "mmap", MIB, "MAP_SHARED|MAP_FIXED|MAP_ANONYMOUS"), warm);
    assertEquals(count(viewed, "munmap", MIB), 0);
    // Two calls a cycle once warm: every call of the phase is one of those.
    assertEquals(viewed.filter((c) => c.includes(MIB)).length, 2 * n, viewed.join("\n"));
  },
});

probed({
  name: "strace: a viewed MemFd mapping is placed over a range out of the quarantine, once warm",
  skip: noStrace,
  fn() {
    const n = 2 * QUARANTINE_RANGES;
    const calls = straceCycles(n)["memfd-view"];
    const MIB = "1048576";
    // The viewed anonymous cycles before it left QUARANTINE_RANGES ranges in
    // the quarantine (and the plain MemFd cycles took the one free range):
    // the first map() is fresh, every later one is placed (MAP_FIXED).
    assertEquals(count(calls, "mmap", MIB, "(NULL,", "MAP_SHARED,"), 1, calls.join("\n"));
    assertEquals(count(calls, "mmap", MIB, "MAP_SHARED|MAP_FIXED,"), n - 1);
    assertEquals(count(calls, "mmap", MIB, "MAP_PRIVATE|MAP_FIXED|MAP_ANONYMOUS"), n);
    assertEquals(count(calls, "munmap", MIB), 0);
  },
});

Deno.test("a range out of the quarantine is reused only after QUARANTINE_RANGES later closes, and late native writes never show in the mapping placed there", () => {
  const r = childReport([
    "--allow-ffi",
    "--v8-flags=--js-immutable-arraybuffer",
    fixture,
    "reuse-late-write",
  ]);
  assertEquals(r, {
    afterOneLess: [true, false], // still in the quarantine
    afterAll: [false, true], // out of it, on the free list
    quarantineLength: QUARANTINE_RANGES,
    reused: true,
    whereReused: [false, false], // a live mapping's range is on neither list
    nextSum: 0,
    memfdFree: [false, true],
    memfdReused: true,
    memfdBytes: [0x11],
  });
});

probed({
  name: "strace: the MemFd cycle is memfd_create, ftruncate, one fstat, mmap, munmap and close",
  skip: noStrace,
  fn() {
    const n = 50;
    const calls = straceCycles(n)["memfd"];
    assertEquals(count(calls, "memfd_create", '"strace-cycle"'), n);
    assertEquals(count(calls, "ftruncate", "1048576"), n);
    // One size check, by map(): create() does not stat the memfd it just made.
    assertEquals(count(calls, "newfstatat") + count(calls, "fstat"), n, calls.join("\n"));
    // The viewed anonymous cycles before (as many) did not fill the quarantine:
    // no range on the free list, every map() is fresh.
    assertEquals(count(calls, "mmap", "1048576", "MAP_SHARED,"), n);
    assertEquals(count(calls, "munmap", "1048576"), n);
    assertEquals(count(calls, "close"), n);
  },
});
