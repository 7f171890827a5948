// flags: --allow-ffi --v8-flags=--js-immutable-arraybuffer --allow-run=cat,python3,$DENO --allow-read=/proc/self/maps
// protect(), guarded() and their real faults: raw accesses in a child die of
// SIGSEGV where the protection says so, memkit's views never fault, the
// kernel's maps show each range's protection, and a protection is only this
// process's (a second process, Python, keeps its own access).
import { assert, assertEquals, assertMatch, assertStringIncludes, assertThrows } from "@std/assert";
import {
  findMapping,
  guarded,
  MemFd,
  MemkitError,
  pageSize,
  protect,
  protectionAt,
  stitch,
} from "../mod.ts";
import { hasProcmapQuery, kernelHas } from "./fixtures/kernel.ts";
import { linesIn, procMaps } from "./fixtures/procmaps.ts";
import { lacks, need } from "./fixtures/skip.ts";
import { type ChildRun, denoRun } from "./fixtures/child.ts";

const PAGE = pageSize();
const fixture = new URL("./fixtures/protect_child.ts", import.meta.url).pathname;

function child(scenario: string): ChildRun {
  return denoRun(["--allow-ffi", "--v8-flags=--js-immutable-arraybuffer", fixture, scenario]);
}

function faults(scenario: string): void {
  const r = child(scenario);
  assertStringIncludes(r.stdout, "touching", r.stderr);
  assertEquals(r.signal, "SIGSEGV", `${scenario}: expected a fault\n${r.stdout}\n${r.stderr}`);
}

Deno.test("a raw read just before a guarded() mapping faults", () => faults("guard-before"));
Deno.test("a raw write at the far end of the guard after it faults", () => faults("guard-after"));
Deno.test('a raw read of a page protected "none" faults', () => faults("none-page"));
Deno.test('a raw write to a page protected "r" faults', () => faults("read-only-page"));

Deno.test("memkit's views never reach a page its protection would make fault", () => {
  const r = child("views-never-fault");
  assertEquals(r.signal, null, r.stderr);
  const out = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
  assertEquals(out.survived, true);
  assertEquals([out.stale, out.staleLength], [undefined, 0], "write access went: detached");
  for (const key of ["bytes", "across", "view", "read", "write"]) {
    assertStringIncludes(out[key], "throws:TypeError", key);
  }
  assertEquals(out.firstBuffer, PAGE);
  assertStringIncludes(out.thirdWrite, "throws:TypeError");
  assertEquals(out.thirdBuffer, PAGE);
  assertEquals(out.firstAfter, 0);
  assertEquals(out.after, 5);
});

Deno.test("the kernel's maps show each protected range with its own protection", () => {
  using fd = MemFd.create("ranges", { size: 4 * PAGE });
  using m = fd.map();
  protect({ mapping: m, offset: PAGE, length: PAGE }, "none");
  protect({ mapping: m, offset: 2 * PAGE, length: PAGE }, "r");
  protect({ mapping: m, offset: 3 * PAGE }, "rx");
  assertEquals(m.access, "mixed");
  assertEquals(
    [0, 1, 2, 3].map((i) => m.accessAt(i * PAGE)),
    ["rw", "none", "r", "rx"],
  );
  assertEquals(linesIn(m.address, m.length).map((l) => l.perms), ["rw-s", "---s", "r--s", "r-xs"]);
  m.protect("r");
  assertEquals(m.access, "r");
  assertEquals(linesIn(m.address, m.length).map((l) => l.perms), ["r--s"]);
});

Deno.test("protect() rejects bad ranges before any system call", () => {
  using fd = MemFd.create("bad-range", { size: 2 * PAGE });
  using m = fd.map();
  assertThrows(() => protect({ mapping: m, offset: 100 }, "r"), RangeError, "page size");
  assertThrows(() => protect({ mapping: m, offset: 2 * PAGE }, "r"), RangeError, "beyond");
  assertThrows(() => protect({ mapping: m, length: 3 * PAGE }, "r"), RangeError);
  assertThrows(() => protect({ mapping: m, length: 100 }, "r"), RangeError, "page multiples");
  assertThrows(() => protect({ mapping: m }, "wx" as "r"), TypeError);
  assertThrows(() => protect({} as never, "r"), TypeError, "expected a Mapping");
  assertEquals(m.access, "rw");
});

Deno.test('protect("none") on part of a mapping is refused while a read-only view lives', () => {
  using fd = MemFd.create("ro-live", { size: 2 * PAGE });
  using m = fd.map({ access: "r" });
  const view = m.bytes();
  const err = assertThrows(() => m.protect("none", { offset: PAGE }), MemkitError);
  assertEquals(err.code, "EBUSY");
  assertEquals(view[PAGE], 0);
});

Deno.test("guarded() puts PROT_NONE pages on both sides of a shared anonymous mapping", () => {
  using g = guarded(2 * PAGE + 1, { guardPages: 3 });
  assertEquals(g.length, 2 * PAGE + 1);
  const lines = linesIn(g.address - BigInt(3 * PAGE), 9 * PAGE);
  assertEquals(lines.map((l) => l.perms), ["---p", "rw-s", "---p"]);
  assertEquals(lines[0].end - lines[0].start, BigInt(3 * PAGE));
  assertEquals(lines[1].start, g.address);
  assertEquals(lines[1].end - lines[1].start, BigInt(3 * PAGE)); // rounded up to whole pages
  assertEquals(lines[2].end - lines[2].start, BigInt(3 * PAGE));
  assertEquals(g.bytes().length, 2 * PAGE + 1);
  const before = g.address - BigInt(3 * PAGE);
  g.close();
  // (The freed range may be reused at once, by the thread that runs cat.)
  const after = linesIn(before, 9 * PAGE).map((l) => l.line);
  assertEquals(lines.filter((l) => after.includes(l.line)), [], "the guards go with it");
  assertThrows(() => guarded(0), RangeError);
  assertThrows(() => guarded(PAGE, { guardPages: -1 }), RangeError);
  using none = guarded(PAGE, { guardPages: 0, access: "none" });
  assertThrows(() => none.bytes(), TypeError);
});

// The QEMU guest (busybox and Deno only) has no Python.
const python = need(lacks("python3"));

python.test("a protection is this process's own: Python keeps writing the memfd we made read-only", () => {
  using fd = MemFd.create("shared-protect", { size: PAGE });
  using m = fd.map();
  m.write(new TextEncoder().encode("from deno"));
  m.protect("r");
  const script = `
import mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
with mmap.mmap(fd, ${PAGE}, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE) as mem:
    seen = bytes(mem[:9])
    mem[16:27] = b"from python"
print(seen.decode())
`;
  const r = new Deno.Command("python3", {
    args: ["-c", script, `/proc/${Deno.pid}/fd/${fd.fd}`],
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  assertEquals(r.code, 0, new TextDecoder().decode(r.stderr));
  assertEquals(new TextDecoder().decode(r.stdout).trim(), "from deno");
  assertEquals(new TextDecoder().decode(m.bytes(16, 11)), "from python");
  assertThrows(() => m.write(new Uint8Array(1)), TypeError);
  assertMatch(linesIn(m.address, PAGE)[0].perms, /^r--s$/);
});

Deno.test("protect() keeps working after many changes, toggling one page", () => {
  using fd = MemFd.create("toggle", { size: 4 * PAGE });
  using m = fd.map();
  for (let i = 0; i < 1000; i++) {
    m.protect(i % 2 ? "rw" : "r", { offset: PAGE, length: PAGE });
  }
  assertEquals(m.access, "rw");
  const lines = linesIn(m.address, m.length);
  assert(lines.length === 1 && lines[0].perms === "rw-s", "the kernel merged them back");
});

Deno.test("views of a mixed mapping share one buffer per run of pages that allow the access", () => {
  using fd = MemFd.create("runs", { size: 6 * PAGE });
  using m = fd.map();
  m.protect("none", { offset: 2 * PAGE, length: PAGE }); // rw rw none rw rw rw
  m.protect("r", { offset: 5 * PAGE }); //                  rw rw none rw rw r
  const a = m.bytes(10, 5);
  const b = m.bytes(PAGE + 3, 100);
  assertEquals(a.buffer, b.buffer, "pages 0-1: one writable run");
  assertEquals([a.buffer.byteLength, a.byteOffset, b.byteOffset], [2 * PAGE, 10, PAGE + 3]);
  const c = m.bytes(3 * PAGE, 8);
  assertEquals([c.buffer.byteLength, c.byteOffset], [2 * PAGE, 0], "pages 3-4: rw, not page 5");
  const d = m.bytes(4 * PAGE, 2 * PAGE); // rw and r pages: a read-only view of both
  assertEquals(d.buffer.byteLength, 3 * PAGE, "pages 3-5 all readable");
  assertThrows(() => {
    d[0] = 1;
  }, TypeError);
  for (let i = 0; i < 1000; i++) m.bytes(i % PAGE, 1); // no new buffers
  assertEquals(m.bytes(0, 1).buffer, a.buffer);
  m.protect("rw", { offset: 2 * PAGE, length: PAGE }); // raising access keeps old views
  assertEquals(a.length, 5);
  const e = m.bytes(0, 5 * PAGE);
  assertEquals(e.buffer.byteLength, 5 * PAGE, "one run now covers pages 0-4");
  m.protect("r", { offset: 0, length: PAGE }); // lowering detaches every writable view
  assertEquals([a.length, c.length, e.length], [0, 0, 0]);
});

Deno.test("protectionAt() agrees with the kernel's maps for memkit's mappings and everyone else's", () => {
  using fd = MemFd.create("where", { size: 4 * PAGE });
  using m = fd.map();
  protect({ mapping: m, offset: PAGE, length: PAGE }, "none");
  protect({ mapping: m, offset: 2 * PAGE, length: PAGE }, "rx");
  using g = guarded(PAGE);
  const expect = [
    [m.address, "rw", "rw-s"],
    [m.address + BigInt(PAGE + 100), "none", "---s"],
    [m.address + BigInt(2 * PAGE), "rx", "r-xs"],
    [m.address + BigInt(4 * PAGE - 1), "rw", "rw-s"],
    [g.address - 1n, "none", "---p"],
    [g.address, "rw", "rw-s"],
  ] as const;
  // PROCMAP_QUERY where the kernel has it, else (6.1 in the QEMU guest) the
  // text of /proc/self/maps: the same mapping as that method finds alone.
  console.log(kernelHas("PROCMAP_QUERY"));
  const method = hasProcmapQuery() ? "query" : "text";
  for (const [address, access, perms] of expect) {
    const p = protectionAt(address)!;
    assertEquals([p.access, p.perms], [access, perms], `at 0x${address.toString(16)}`);
    assert(p.start <= address && address < p.end);
    const e = findMapping(address, "self", { method })!;
    assertEquals([p.start, p.end, p.perms], [e.start, e.end, e.perms]);
  }
  // Every mapping of the process: the same permissions as cat(1) shows, at its first byte.
  for (const line of procMaps()) {
    if (line.start >= 1n << 47n) continue; // [vsyscall]: outside user space
    const p = protectionAt(line.start);
    if (p === null) continue; // unmapped between the two reads (another thread)
    if (p.start !== line.start) continue; // changed between the two reads
    assertEquals(p.perms, line.perms, line.line);
    assertEquals(p.shared, line.perms[3] === "s");
  }
  assertEquals(protectionAt(0n), null);
  assertEquals(
    protectionAt(g.address - BigInt(PAGE) - 1n)?.start !== g.address - BigInt(PAGE),
    true,
  );
  assertThrows(() => protectionAt(-1n), RangeError);
});

Deno.test("a protect() the kernel refuses halfway is undone: memkit's record stays the truth", () => {
  // A read-only stitch of a writable memfd and one sealed against writing:
  // mprotect to "rw" changes the first mapping, then refuses the second.
  using a = MemFd.create("writable", { size: PAGE });
  using b = MemFd.create("sealed", { size: PAGE });
  b.seal(["future-write"]);
  using s = stitch([{ source: a }, { source: b }], { access: "r" });
  const err = assertThrows(() => s.protect("rw"), MemkitError);
  assertEquals(err.code, "EACCES");
  assertEquals(s.access, "r");
  assertEquals(linesIn(s.address, s.length).map((l) => l.perms), ["r--s", "r--s"]);
  assertEquals(protectionAt(s.address)?.access, "r");
});

Deno.test("empty views are fine anywhere in a mixed mapping, the end included", () => {
  using fd = MemFd.create("empty", { size: 2 * PAGE });
  using m = fd.map();
  m.protect("r", { offset: PAGE });
  assertEquals(m.bytes(2 * PAGE, 0).length, 0);
  assertEquals(m.read(2 * PAGE, 0).length, 0);
  const empty = m.bytes(0, 0);
  empty.buffer.transfer(); // its own empty buffer: moving it harms nothing
  assertEquals(m.bytes(0, 0).length, 0);
  m.protect("none", { offset: PAGE });
  assertThrows(() => m.bytes(2 * PAGE, 0), TypeError, "none"); // like the last page
});
