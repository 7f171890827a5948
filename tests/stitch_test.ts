// flags: --allow-ffi --v8-flags=--js-immutable-arraybuffer --allow-run=cat,strace,$DENO --allow-read=/proc/sys/vm/max_map_count,/tmp --allow-write=/tmp
// stitch() and alias() against the kernel: contents through every alias,
// the mappings the kernel reports, the system calls made (strace), failure
// at vm.max_map_count with nothing leaked.
import {
  assert,
  assertEquals,
  assertMatch,
  assertNotEquals,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { alias, guarded, mapFile, MemFd, MemkitError, pageSize, stitch } from "../mod.ts";
import { linesIn, procMaps } from "./fixtures/procmaps.ts";
import { lacks, need } from "./fixtures/skip.ts";
import { straceMarked } from "./fixtures/child.ts";

const PAGE = pageSize();
const fixture = new URL("./fixtures/stitch_child.ts", import.meta.url).pathname;

/** A memfd of `pages` pages whose page i starts with the byte `tag + i`. */
function tagged(name: string, pages: number, tag: number): MemFd {
  const fd = MemFd.create(name, { size: pages * PAGE });
  using m = fd.map();
  for (let i = 0; i < pages; i++) m.bytes()[i * PAGE] = (tag + i) & 0xff;
  return fd;
}

function firstBytes(m: { bytes(o: number, l: number): Uint8Array }, pages: number): number[] {
  return Array.from({ length: pages }, (_, i) => m.bytes(i * PAGE, 1)[0]);
}

Deno.test("stitch() joins chunks of two memfds in the order given", () => {
  using a = tagged("a", 4, 10);
  using b = tagged("b", 4, 20);
  using s = stitch([
    { source: a, offset: 2 * PAGE, length: 2 * PAGE },
    { source: b, offset: 0, length: PAGE },
    { source: a, offset: 0, length: PAGE },
    { source: b, offset: 3 * PAGE },
  ]);
  assertEquals(s.length, 5 * PAGE);
  assertEquals(firstBytes(s, 5), [12, 13, 20, 10, 23]);
  assertMatch(s.name, /^stitch of 4 chunks \(memfd:a, memfd:b\)$/);
});

Deno.test("writes through a stitched view land in the memfd, and the other way round", () => {
  using a = tagged("a", 2, 0);
  using b = tagged("b", 2, 0);
  using am = a.map();
  using bm = b.map();
  using s = stitch([{ source: b, offset: PAGE, length: PAGE }, { source: a }]);
  s.bytes()[5] = 0x55; // page 1 of b
  s.bytes()[PAGE + 6] = 0x66; // page 0 of a
  assertEquals(bm.bytes()[PAGE + 5], 0x55);
  assertEquals(am.bytes()[6], 0x66);
  am.bytes()[PAGE + 7] = 0x77; // page 1 of a
  assertEquals(s.bytes()[2 * PAGE + 7], 0x77);
});

Deno.test("repeated and overlapping chunks are the same memory at several places", () => {
  using a = tagged("a", 3, 0);
  using s = stitch([
    { source: a, offset: 0, length: 2 * PAGE },
    { source: a, offset: PAGE, length: 2 * PAGE }, // overlaps page 1
    { source: a, offset: 0, length: PAGE }, // repeats page 0
  ]);
  s.bytes()[PAGE + 1] = 9; // page 1, first copy
  assertEquals(s.bytes()[2 * PAGE + 1], 9); // page 1, second copy
  s.bytes()[1] = 8; // page 0, first copy
  assertEquals(s.bytes()[4 * PAGE + 1], 8);
});

Deno.test("the kernel shows one shared mapping per chunk, with the memfd's name and offset", () => {
  using a = tagged("kernel-a", 4, 0);
  using b = tagged("kernel-b", 4, 0);
  using s = stitch([
    { source: b, offset: 2 * PAGE, length: PAGE },
    { source: a, offset: 0, length: 2 * PAGE },
  ]);
  const lines = linesIn(s.address, s.length);
  assertEquals(lines.map((l) => [l.perms, l.path, l.line.split(/ +/)[2]]), [
    ["rw-s", "/memfd:kernel-b (deleted)", (2 * PAGE).toString(16).padStart(8, "0")],
    ["rw-s", "/memfd:kernel-a (deleted)", "00000000"],
  ]);
  assertEquals(lines[0].start, s.address);
  assertEquals(lines[1].end, s.address + BigInt(3 * PAGE));
});

Deno.test('stitch() with access "r" gives immutable views of the same memory', () => {
  using a = tagged("ro", 2, 1);
  using m = a.map();
  using s = stitch([{ source: a, offset: PAGE, length: PAGE }, { source: m }], { access: "r" });
  assertEquals(s.access, "r");
  assertEquals(firstBytes(s, 3), [2, 1, 2]);
  assertThrows(() => {
    s.bytes()[0] = 0;
  }, TypeError);
  m.bytes()[PAGE] = 42;
  assertEquals(s.bytes()[0], 42);
  assertEquals(linesIn(s.address, s.length).every((l) => l.perms === "r--s"), true);
});

// The QEMU guest (busybox and Deno only) has no strace.
const strace = need(lacks("strace", ["-V"]));

strace.test("neighbouring chunks that continue each other are placed with one mmap", () => {
  const count = (scenario: string) => {
    const { run, lines } = straceMarked("mmap,mremap,munmap,write", [
      "--allow-ffi",
      fixture,
      scenario,
    ]);
    const between = lines.join("\n");
    // Only the calls inside stitch's reservation: V8's collector may map
    // heap pages on the main thread too.
    const calls = [...between.matchAll(/\bmmap\(([^,]+), (\d+), [^)]*\) = (0x[0-9a-f]+)/g)]
      .map((m) => ({ text: m[0], start: BigInt(m[3]), end: BigInt(m[3]) + BigInt(m[2]) }));
    const fixed = calls.filter((c) => c.text.includes("MAP_FIXED"));
    const reservation = calls.find((c) =>
      !c.text.includes("MAP_FIXED") && fixed.some((f) => f.start === c.start)
    );
    const inside = calls.filter((c) =>
      reservation !== undefined && reservation.start <= c.start && c.end <= reservation.end
    );
    return {
      mmap: inside.length,
      fixed: inside.filter((c) => c.text.includes("MAP_FIXED")).length,
      stdout: run.stdout,
      trace: between,
    };
  };
  const contiguous = count("contiguous");
  // One reservation and one MAP_FIXED for 64 chunks that follow each other.
  assertEquals([contiguous.mmap, contiguous.fixed], [2, 1], contiguous.trace);
  const reversed = count("reversed");
  assertEquals([reversed.mmap, reversed.fixed], [65, 64]);
  const bad = count("unaligned");
  assertStringIncludes(bad.stdout, "RangeError: Cannot stitch chunk 1: offset 100");
  assertEquals(bad.mmap, 0, `no mapping was attempted:\n${bad.trace}`);
});

Deno.test("bad chunks are rejected before anything is mapped, naming the chunk", () => {
  using a = tagged("bad", 2, 0);
  const mine = () => procMaps().filter((l) => l.path.includes("memfd:bad")).length;
  const before = mine();
  const cases: [unknown, RegExp, ErrorConstructor | typeof Deno.errors.BadResource][] = [
    [[], /the list of chunks is empty/, RangeError],
    ["x", /expected an array of chunks/, TypeError],
    [[{ source: a }, null], /chunk 1: expected \{ source, offset, length \}/, TypeError],
    [[{ source: {} }], /chunk 0: its source must be a MemFd or a Mapping/, TypeError],
    [[{ source: a, offset: 4095 }], /chunk 0: offset 4095/, RangeError],
    [[{ source: a }, { source: a, length: 100 }], /chunk 1: offset 0 and length 100/, RangeError],
    [
      [{ source: a, offset: PAGE, length: 2 * PAGE }],
      /chunk 0: bytes 4096 to 12288 are beyond/,
      RangeError,
    ],
    [[{ source: a, offset: 2 * PAGE }], /chunk 0: offset 8192 is at or past the end/, RangeError],
    [[{ source: a, offset: -PAGE }], /the offset of chunk 0 "-4096"/, RangeError],
    [[{ source: a, length: 1.5 }], /the length of chunk 0 "1.5"/, TypeError],
  ];
  for (const [chunks, message, type] of cases) {
    const err = assertThrows(() => stitch(chunks as never), type as ErrorConstructor);
    assertMatch(err.message, message);
  }
  assertThrows(() => stitch([{ source: a }], { access: "x" as "r" }), TypeError);
  const closed = MemFd.create("closed", { size: PAGE });
  closed.close();
  assertMatch(
    assertThrows(() => stitch([{ source: a }, { source: closed }]), Deno.errors.BadResource)
      .message,
    /chunk 1: memfd "closed" is closed/,
  );
  assertEquals(mine(), before);
});

Deno.test("stitch() reports the chunk that hit vm.max_map_count and leaks nothing", () => {
  // Chunks alternating between two memfds: no two neighbours can share a
  // mapping, so 70000 chunks need 70000 mappings, over the default limit.
  const n = 70000;
  const limit = Number(
    new TextDecoder().decode(
      new Deno.Command("cat", { args: ["/proc/sys/vm/max_map_count"], stdout: "piped" })
        .outputSync().stdout,
    ).trim(),
  );
  if (limit >= n) {
    console.log(`  (vm.max_map_count is ${limit}: this machine allows ${n} mappings; skipped)`);
    return;
  }
  using a = MemFd.create("many-a", { size: (n / 2) * PAGE });
  using b = MemFd.create("many-b", { size: (n / 2) * PAGE });
  const chunks = Array.from({ length: n }, (_, i) => ({
    source: i % 2 ? b : a,
    offset: (i >> 1) * PAGE,
    length: PAGE,
  }));
  const mine = () => procMaps().filter((l) => /memfd:many-[ab]/.test(l.path)).length;
  const err = assertThrows(() => stitch(chunks), MemkitError);
  assertEquals(err.code, "ENOMEM");
  const failed = Number(/chunk (\d+) \(of 70000\)/.exec(err.message)?.[1]);
  assert(failed > 60000 && failed < n, err.message);
  assertStringIncludes(err.message, "needs 70000 mappings");
  assertStringIncludes(err.message, `vm.max_map_count is ${limit}`);
  assertEquals(mine(), 0, "every placed chunk was unmapped again");
  // And the process can still map: the failure left no reservation behind.
  using ok = stitch(chunks.slice(0, 1000));
  assertEquals(ok.length, 1000 * PAGE);
});

Deno.test("a resize cannot shrink a memfd under a stitched view; closing the view allows it", () => {
  using a = tagged("shrink", 4, 0);
  const s = stitch([{ source: a, offset: 3 * PAGE, length: PAGE }]);
  const err = assertThrows(() => a.resize(2 * PAGE), MemkitError);
  assertEquals(err.code, "EBUSY");
  assertStringIncludes(err.message, "reaches byte 16384");
  s.close();
  a.resize(2 * PAGE);
  assertEquals(a.size, 2 * PAGE);
});

Deno.test("a stitch of a stitched view keeps each source window and its resize guard", () => {
  using a = tagged("deep-a", 3, 10);
  using b = tagged("deep-b", 3, 20);
  using inner = stitch([{ source: a, offset: PAGE }, { source: b, offset: 0, length: PAGE }]);
  assertEquals(firstBytes(inner, 3), [11, 12, 20]);
  // The kernel would happily alias past the end of a window; memkit places
  // each source window on its own, so page 2 is b's page, not a's page 3.
  using outer = stitch([{ source: inner, offset: PAGE }, { source: inner, length: PAGE }]);
  assertEquals(firstBytes(outer, 3), [12, 20, 11]);
  outer.bytes()[PAGE + 3] = 0x33;
  const bm = b.map();
  assertEquals(bm.bytes()[3], 0x33);
  bm.close();
  inner.close();
  assertThrows(() => b.resize(0), MemkitError, "reaches byte 4096");
});

Deno.test("stitch() takes chunks of a mapped file and of guarded memory", () => {
  const path = Deno.makeTempFileSync({ prefix: "memkit-stitch-" });
  try {
    Deno.writeFileSync(path, new Uint8Array(2 * PAGE).map((_, i) => (i / PAGE) + 100));
    using f = mapFile(path);
    using g = guarded(PAGE);
    g.bytes()[0] = 7;
    using s = stitch([{ source: g }, { source: f, offset: PAGE }, { source: f, length: PAGE }], {
      access: "r",
    });
    assertEquals(firstBytes(s, 3), [7, 101, 100]);
    assertMatch(
      assertThrows(() => stitch([{ source: f }]), MemkitError).message,
      /chunk 0 comes from a source opened for access "r" only/,
    );
  } finally {
    Deno.removeSync(path);
  }
});

Deno.test("alias() gives a mapping a second address with its own protection", () => {
  using fd = tagged("alias", 2, 0);
  using rw = fd.map();
  using ro = alias(rw, { access: "r" });
  assertNotEquals(ro.address, rw.address);
  assertEquals([ro.length, ro.access, ro.name], [rw.length, "r", "alias of memfd:alias"]);
  rw.bytes()[PAGE + 1] = 0x11;
  assertEquals(ro.bytes()[PAGE + 1], 0x11);
  assertThrows(() => {
    ro.bytes()[0] = 1;
  }, TypeError);
  using again = alias(ro); // an alias of an alias, writable again
  again.bytes()[2] = 0x22;
  assertEquals(rw.bytes()[2], 0x22);
  const [line] = linesIn(ro.address, ro.length);
  assertEquals([line.perms, line.path], ["r--s", "/memfd:alias (deleted)"]);
});

Deno.test("alias() of the JavaScript heap is refused with the reason and what works instead", () => {
  const err = assertThrows(() => alias(new Uint8Array(1 << 20)), MemkitError);
  assertEquals(err.code, "EINVAL");
  assertStringIncludes(err.message, "its memory is private");
  assertStringIncludes(err.message, "since 4.14");
  assertStringIncludes(err.message, "MemFd");
  assertStringIncludes(err.message, "userfaultfd");
  assertThrows(() => alias(new ArrayBuffer(0)), RangeError);
  assertThrows(() => alias("x" as never), TypeError);
});

Deno.test("alias() of a shared buffer memkit did not map places it page by page, correctly", () => {
  // A stitched view's buffer, seen only as an ArrayBuffer: its pages come from
  // two memfds, and the alias must show each page's own source.
  using a = tagged("foreign-a", 2, 30);
  using b = tagged("foreign-b", 2, 40);
  using s = stitch([{ source: a }, { source: b }]);
  using m = alias(s.bytes().buffer);
  assertEquals(firstBytes(m, 4), [30, 31, 40, 41]);
  m.bytes()[3 * PAGE + 9] = 0x99;
  assertEquals(s.bytes()[3 * PAGE + 9], 0x99);
});

Deno.test("stitch() and alias() of closed mappings are BadResource errors", () => {
  const fd = tagged("gone", 1, 0);
  const m = fd.map();
  m.close();
  assertThrows(() => alias(m), Deno.errors.BadResource);
  assertThrows(() => stitch([{ source: m }]), Deno.errors.BadResource);
  fd.close();
});

Deno.test("alias() of a memkit view's buffer knows its memfd: no shrinking under it", () => {
  using fd = tagged("buffer-owner", 2, 50);
  const m = fd.map();
  using a = alias(m.bytes().buffer);
  m.close(); // the alias alone maps the memfd now
  const err = assertThrows(() => fd.resize(0), MemkitError);
  assertEquals(err.code, "EBUSY");
  assertEquals(firstBytes(a, 2), [50, 51]);
  a.close();
  fd.resize(0);
});

Deno.test("mappings whose length is not a page multiple can be aliased and stitched", () => {
  using fd = MemFd.create("odd", { size: 5000 });
  using m = fd.map();
  m.bytes()[4999] = 9;
  using a = alias(m);
  assertEquals([a.length, a.bytes()[4999]], [5000, 9]);
  using s = stitch([{ source: m }, { source: m, length: PAGE }]);
  assertEquals([s.length, s.bytes()[4999], s.bytes()[2 * PAGE + 4999 - PAGE]], [3 * PAGE, 9, 0]);
  fd.resize(6000); // growing within the mapped pages is fine
  fd.resize(4097); // so is shrinking within the last mapped page
  assertThrows(() => fd.resize(4096), MemkitError, "reaches byte");
});

Deno.test("a view too large to reserve says so, not vm.max_map_count", () => {
  // Two windows of 64 TiB: all of x86-64's 128 TiB of user space, never free.
  using big = MemFd.create("big", { size: 2 ** 46 });
  const err = assertThrows(() => stitch([{ source: big }, { source: big }]), MemkitError);
  assertEquals(err.code, "ENOMEM");
  assertStringIncludes(err.message, "reserving the address space");
});

Deno.test("stitch() reads memkit's own state, not getters user code may patch", () => {
  using a = tagged("patched", 2, 60);
  using m = a.map();
  const fdGetter = Object.getOwnPropertyDescriptor(MemFd.prototype, "fd")!;
  const addressGetter = Object.getOwnPropertyDescriptor(
    Object.getPrototypeOf(m),
    "address",
  )!;
  Object.defineProperty(MemFd.prototype, "fd", { get: () => 0, configurable: true });
  Object.defineProperty(Object.getPrototypeOf(m), "address", {
    get: () => 0n,
    configurable: true,
  });
  try {
    using s = stitch([{ source: a }, { source: m, offset: PAGE }]);
    assertEquals(firstBytes(s, 3), [60, 61, 61]);
  } finally {
    Object.defineProperty(MemFd.prototype, "fd", fdGetter);
    Object.defineProperty(Object.getPrototypeOf(m), "address", addressGetter);
  }
});
