// flags: --allow-ffi --allow-read=/dev/mem,/dev/zero,/proc/iomem,/tmp --allow-write=/dev/zero,/tmp --allow-run=cat,strace --allow-sys=uid --v8-flags=--js-immutable-arraybuffer,--expose-gc
// PhysicalMemory on this host: the kernel has no /dev/mem (CONFIG_DEVMEM
// unset), so the error must say so; /dev/zero, a character device that maps
// like memory holding zeros, exercises the mapping, copying and exact-width
// paths; /proc/iomem is checked against cat(1). The real /dev/mem runs in
// the QEMU guest (tests/vm/).
import { assert, assertEquals, assertMatch, assertStringIncludes, assertThrows } from "@std/assert";
import {
  decodeSmbios,
  decodeSmbiosTable,
  findSmbiosEntryPoint,
  MemkitError,
  parseSmbiosEntryPoint,
  PhysicalMemory,
  physicalRanges,
  smbiosUuid,
} from "../mod.ts";
import { parseIomem } from "../src/iomem.ts";
import { lacks, need, probed } from "./fixtures/skip.ts";
import { straceMarked } from "./fixtures/child.ts";

const devmemExists = (() => {
  try {
    Deno.statSync("/dev/mem");
    return true;
  } catch {
    return false;
  }
})();

probed({
  name: "opening /dev/mem on a kernel without CONFIG_DEVMEM says so",
  skip: devmemExists && "this kernel has /dev/mem, so its absence cannot be shown",
  fn() {
    const e = assertThrows(() => PhysicalMemory.open(), MemkitError);
    assertEquals(e.code, "ENOENT");
    assertEquals(e.path, "/dev/mem");
    assertStringIncludes(e.message, "CONFIG_DEVMEM");
  },
});

Deno.test("a path that is not a character device is refused before it is opened", () => {
  const file = Deno.makeTempFileSync({ prefix: "memkit-phys-" });
  try {
    const e = assertThrows(
      () => PhysicalMemory.open({ device: file }),
      MemkitError,
    );
    assertEquals(e.code, "ENODEV");
    assertStringIncludes(e.message, "not a character device");
  } finally {
    Deno.removeSync(file);
  }
});

Deno.test("a device without --allow-read is NotCapable, and write needs --allow-write", () => {
  assertThrows(() => PhysicalMemory.open({ device: "/dev/null" }), Deno.errors.NotCapable);
  assertThrows(
    () => PhysicalMemory.open({ device: "/dev/mem", write: true }),
    Deno.errors.NotCapable,
    'Requires write access to "/dev/mem"',
  );
});

Deno.test("bad arguments are TypeError or RangeError before any system call", () => {
  using mem = PhysicalMemory.open({ device: "/dev/zero" });
  assertThrows(() => mem.map(-1, 16), RangeError);
  assertThrows(() => mem.map(0.5, 16), TypeError);
  assertThrows(() => mem.map(0, 0), RangeError);
  assertThrows(() => mem.map(2 ** 53, 1), RangeError);
  assertThrows(() => mem.map(0, 16, { cache: "write-combining" as "default" }), TypeError);
  assertThrows(() => mem.map(0, 16, { access: "rw" }), TypeError, "opened read-only");
  assertThrows(() => mem.readU16(1), RangeError, "not a multiple of 2");
  assertThrows(() => mem.readU64(0xf0004), RangeError);
  assertThrows(() => mem.writeU8(0, 1), TypeError, "read-only");
  assertThrows(
    () => PhysicalMemory.open({ device: "/dev/zero", cache: "wc" as "default" }),
    TypeError,
  );
});

Deno.test("map() covers only the pages needed and its views start at the exact address", () => {
  using mem = PhysicalMemory.open({ device: "/dev/zero" });
  using m = mem.map(0x12ffe, 4); // straddles a page boundary: two pages
  assertEquals(m.length, 4);
  assertEquals(m.address % 4096n, 0xffen);
  assertEquals(m.name, "/dev/zero@0x12ffe");
  assertEquals([...m.bytes()], [0, 0, 0, 0]);
  assertEquals(m.view(Uint16Array).length, 2);
  assertThrows(() => {
    m.bytes()[0] = 1;
  }, TypeError);
  m.close();
  assertEquals(m.closed, true);
});

Deno.test("read() copies, and readU8/16/32/64 read through a temporary or a live mapping", () => {
  using mem = PhysicalMemory.open({ device: "/dev/zero" });
  assertEquals(mem.read(0xf0000, 16), new Uint8Array(16));
  assertEquals(mem.read(0, 0), new Uint8Array(0));
  assertEquals(mem.readU8(0xf0001), 0);
  assertEquals(mem.readU16(0xf0002), 0);
  assertEquals(mem.readU32(0xf0004), 0);
  assertEquals(mem.readU64(0xf0008), 0n);
  using m = mem.map(0xf0000, 64);
  assertEquals(mem.readU32(0xf0010), 0); // through m
  m.close();
  assertEquals(mem.readU32(0xf0010), 0); // m closed: a temporary mapping again
});

Deno.test("/dev/zero opened for writing is refused: its writable mappings fault past their size", () => {
  // A writable MAP_SHARED of /dev/zero is a shmem object of the mapping's
  // size: a page past it raises SIGBUS. Exact-width writes are tested in the
  // QEMU guest, through /dev/mem into an ivshmem BAR.
  const err = assertThrows(
    () => PhysicalMemory.open({ device: "/dev/zero", write: true }),
    MemkitError,
  );
  assertEquals(err.code, "EROFS");
  assertStringIncludes(err.message, "only /dev/mem maps physical memory");
  using ro = PhysicalMemory.open({ device: "/dev/zero" });
  using m = ro.map(0x100000, 8192); // read-only: a private mapping, any offset is safe
  assertEquals(m.bytes()[8191], 0);
});

Deno.test("a closed PhysicalMemory is BadResource; close() is idempotent", () => {
  const mem = PhysicalMemory.open({ device: "/dev/zero" });
  mem.close();
  mem.close();
  assertEquals(mem.closed, true);
  assertThrows(() => mem.readU32(0), Deno.errors.BadResource);
  assertThrows(() => mem.map(0, 1), Deno.errors.BadResource);
});

Deno.test("physicalRanges() matches /proc/iomem as cat(1) reads it", () => {
  const out = new Deno.Command("cat", { args: ["/proc/iomem"], stdout: "piped" }).outputSync();
  const expected = parseIomem(new TextDecoder().decode(out.stdout));
  if (Deno.uid() !== 0) {
    assertThrows(() => physicalRanges(), MemkitError, "only to root");
    return;
  }
  const ranges = physicalRanges();
  assertEquals(ranges, expected);
  assert(ranges.some((r) => r.name === "System RAM" && r.depth === 0));
  for (const r of ranges) assert(r.start < r.end, `${r.name} ${r.start}-${r.end}`);
});

Deno.test("parseIomem() reads nesting and 64-bit addresses", () => {
  const ranges = parseIomem(
    "00001000-0009fbff : System RAM\n  000f0000-000fffff : System ROM\n" +
      "4000000000-7fffffffff : PCI Bus 0000:00\n",
  );
  assertEquals(ranges, [
    { start: 0x1000n, end: 0x9fc00n, name: "System RAM", depth: 0 },
    { start: 0xf0000n, end: 0x100000n, name: "System ROM", depth: 1 },
    { start: 0x4000000000n, end: 0x8000000000n, name: "PCI Bus 0000:00", depth: 0 },
  ]);
});

// ---- SMBIOS decoding against tables built here ----

const ascii = (s: string): number[] => [...s].map((c) => c.charCodeAt(0));

function withChecksum(bytes: number[], at: number, start: number, length: number): number[] {
  const sum = bytes.slice(start, start + length).reduce((a, b) => a + b, 0);
  bytes[at] = (0x100 - (sum % 0x100)) % 0x100;
  return bytes;
}

function entry2(table: number, length: number, count: number, minor = 8): Uint8Array {
  const b = new Array(31).fill(0);
  b.splice(0, 4, ...ascii("_SM_"));
  b[5] = 0x1f;
  b[6] = 2;
  b[7] = minor;
  b.splice(0x10, 5, ...ascii("_DMI_"));
  b[0x16] = length & 0xff;
  b[0x17] = length >> 8;
  new DataView(new Uint8Array(b).buffer); // layout reference
  for (let i = 0; i < 4; i++) b[0x18 + i] = (table >>> (8 * i)) & 0xff;
  b[0x1c] = count;
  withChecksum(b, 0x15, 0x10, 15);
  withChecksum(b, 4, 0, 31);
  return new Uint8Array(b);
}

function type1(serial: string, uuid: number[]): number[] {
  return [
    1,
    0x1b,
    0x01,
    0x01,
    1,
    2,
    3,
    4,
    ...uuid,
    6,
    5,
    6,
    ...ascii(`QEMU\0Standard PC\0pc-1.0\0${serial}\0SKU-9\0Family\0\0`),
  ];
}

const biosStruct = [
  0,
  0x18,
  0,
  0,
  1,
  2,
  0,
  0xe8,
  3,
  0,
  ...new Array(14).fill(0),
  ...ascii("SeaBIOS\0rel-1.16\x0004/01/2014\0\0"),
];
const endStruct = [127, 4, 0xff, 0xff, 0, 0];
const UUID = [
  0x33,
  0x22,
  0x11,
  0x00,
  0x55,
  0x44,
  0x77,
  0x66,
  0x88,
  0x99,
  0xaa,
  0xbb,
  0xcc,
  0xdd,
  0xee,
  0xff,
];

Deno.test("an SMBIOS 2.8 table decodes to its vendor, product, serial and mixed-endian UUID", () => {
  const table = new Uint8Array([...biosStruct, ...type1("SER-42", UUID), ...endStruct]);
  const segment = new Uint8Array(0x10000);
  segment.set(ascii("_SM_"), 0x100); // a stray anchor with a bad checksum is skipped
  segment.set(entry2(0xf1000, table.length, 3), 0x5a0);
  const ep = findSmbiosEntryPoint(segment, 0xf0000)!;
  assertEquals(ep.address, 0xf05a0n);
  assertEquals(ep.anchor, "_SM_");
  assertEquals(ep.tableAddress, 0xf1000n);
  assertEquals(ep.structureCount, 3);
  const s = decodeSmbios(ep, table);
  assertEquals(s.version, "2.8");
  assertEquals(s.structures.map((x) => x.type), [0, 1, 127]);
  assertEquals(s.bios, { vendor: "SeaBIOS", version: "rel-1.16", releaseDate: "04/01/2014" });
  assertEquals(s.system, {
    manufacturer: "QEMU",
    product: "Standard PC",
    version: "pc-1.0",
    serial: "SER-42",
    uuid: "00112233-4455-6677-8899-aabbccddeeff",
    sku: "SKU-9",
    family: "Family",
  });
});

Deno.test("before SMBIOS 2.6 the UUID is all network order; unset UUIDs are undefined", () => {
  assertEquals(
    smbiosUuid(new Uint8Array(UUID), { major: 2, minor: 5 }),
    "33221100-5544-7766-8899-aabbccddeeff",
  );
  assertEquals(smbiosUuid(new Uint8Array(16), { major: 3, minor: 0 }), undefined);
  assertEquals(smbiosUuid(new Uint8Array(16).fill(0xff), { major: 2, minor: 8 }), undefined);
});

Deno.test("a 3.x entry point wins over a 2.x one, and bad checksums are refused", () => {
  const e3 = [...ascii("_SM3_"), 0, 24, 3, 0, 0, 1, 0, 0x40, 0, 0, 0, ...new Array(8).fill(0)];
  e3[16] = 0x00;
  e3[17] = 0x10;
  e3[18] = 0x0f;
  withChecksum(e3, 5, 0, 24);
  const segment = new Uint8Array(0x10000);
  segment.set(entry2(0xf1000, 64, 3), 0x20);
  segment.set(e3, 0x40);
  const ep = findSmbiosEntryPoint(segment, 0xf0000)!;
  assertEquals(ep.anchor, "_SM3_");
  assertEquals(ep.tableAddress, 0xf1000n);
  assertEquals(ep.tableLength, 0x40);
  const broken = new Uint8Array(e3);
  broken[7] = 9;
  assertThrows(() => parseSmbiosEntryPoint(broken), SyntaxError, "bad checksum");
  assertThrows(() => parseSmbiosEntryPoint(new Uint8Array(32)), SyntaxError, "no");
});

Deno.test("structures without strings end with two NULs, and a short header is refused", () => {
  const s = decodeSmbiosTable(new Uint8Array([4, 5, 1, 0, 9, 0, 0, ...endStruct]));
  assertEquals(s.length, 2);
  assertEquals(s[0].strings, []);
  assertEquals([...s[0].data], [4, 5, 1, 0, 9]);
  assertThrows(() => decodeSmbiosTable(new Uint8Array([1, 2, 0, 0, 0, 0])), SyntaxError);
  assertMatch(String(decodeSmbiosTable(new Uint8Array(0)).length), /^0$/);
});

Deno.test("the SMBIOS decoders refuse anything but bytes", () => {
  assertThrows(() => decodeSmbiosTable("_SM3_" as never), TypeError, "Uint8Array");
  assertThrows(() => parseSmbiosEntryPoint([0x5f] as never), TypeError, "Uint8Array");
  assertThrows(() => findSmbiosEntryPoint({} as never, 0), TypeError, "Uint8Array");
  assertThrows(() => smbiosUuid(null as never, { major: 3, minor: 0 }), TypeError, "Uint8Array");
});

Deno.test("readU8 never touches a page a collected mapping left PROT_NONE", async () => {
  using mem = PhysicalMemory.open({ device: "/dev/zero" });
  // A 2-page mapping, its second page protected "none", the Mapping object
  // dropped and collected while a view of its first page stays alive.
  const view = (() => {
    const m = mem.map(0x100000, 2 * 4096);
    m.protect("none", { offset: 4096, length: 4096 });
    return m.bytes(0, 16);
  })();
  for (let i = 0; i < 3; i++) {
    await new Promise((r) => setTimeout(r, 0));
    (globalThis as { gc?: () => void }).gc!();
  }
  assertEquals(view[0], 0);
  assertEquals(mem.readU8(0x100000 + 4096 + 8), 0); // through a page of its own, not a fault
});

// The QEMU guest (busybox and Deno only) has no strace.
const strace = need(lacks("strace", ["-V"]));
const readsChild = new URL("./fixtures/phys_reads.ts", import.meta.url).pathname;

/**
 * Runs a tests/fixtures/phys_reads.ts scenario under strace: the munmap
 * calls of one page (the slow path's own window) its main thread made during
 * the 1,000 reads (between its markers), and the JSON line it ended with.
 */
function readsUnderStrace(scenario: string): { munmaps: number; report: Record<string, unknown> } {
  // V8 also frees heap pages on the main thread (hundreds of KiB at a
  // time), so only one-page unmaps count.
  const { run, lines } = straceMarked("munmap,write", [
    "--allow-ffi",
    "--allow-read=/dev/zero",
    "--v8-flags=--expose-gc,--js-immutable-arraybuffer",
    readsChild,
    scenario,
  ]);
  const munmaps = lines.filter((l) => /^munmap\(0x[0-9a-f]+, 4096\)/.test(l)).length;
  return { munmaps, report: JSON.parse(run.stdout.trim().split("\n").at(-1)!) };
}

strace.test("readU32 keeps its fast path while only a view of the mapping is reachable: no munmap in 1,000 reads", () => {
  // The bug: with the Mapping object collected and only a view kept (as
  // bench/phys_bench.ts keeps it), every read mapped and unmapped a page.
  const view = readsUnderStrace("view");
  assertEquals(view.report, { scenario: "view", collected: true, sum: 0, viewReads: 0 });
  assertEquals(view.munmaps, 0);
  // With the Mapping kept: no system call either.
  assertEquals(readsUnderStrace("mapping").munmaps, 0);
  // The positive control: strace sees the slow path's munmap, one a read,
  // once the mapping is closed.
  assert(readsUnderStrace("closed").munmaps >= 1000);
});

strace.test('readU32 of a page a collected mapping left "none" maps a page of its own for each read', () => {
  // The fast path knows the last protection of each page from the region
  // after the Mapping is gone: through a "none" page it would fault.
  const guarded = readsUnderStrace("guarded");
  assertEquals(guarded.report, { scenario: "guarded", collected: true, sum: 0, viewReads: 0 });
  assert(guarded.munmaps >= 1000, `${guarded.munmaps} munmaps`);
});

Deno.test("a permission revoked after open() stops the second (uncached) open of the device", () => {
  // Revocation lasts for the rest of this process: this test comes last.
  using mem = PhysicalMemory.open({ device: "/dev/zero" });
  mem.map(0xf0000, 16).close(); // the default-cache descriptor
  Deno.permissions.revokeSync({ name: "read", path: "/dev/zero" });
  assertThrows(() => mem.map(0xf0000, 16, { cache: "uncached" }), Deno.errors.NotCapable);
});
