// flags: --allow-ffi --allow-read=/proc --allow-run=sleep,true --allow-sys=uid --v8-flags=--js-immutable-arraybuffer
// Pagemap, scan, kpageflags and kpagecount against the kernel, as root:
// touched pages present, untouched ones absent, two aliases of one memfd
// page on one frame with the flags of shared memory. (tests/
// introspect_unprivileged_test.ts covers a user without CAP_SYS_ADMIN.)
import { assert, assertEquals, assertStringIncludes, assertThrows } from "@std/assert";
import {
  MemFd,
  MemkitError,
  PageBits,
  Pagemap,
  readKPageCounts,
  readKPageFlags,
  readMaps,
  type ScanOptions,
  type ScanRegion,
} from "../mod.ts";
import { hasPagemapScan, kernelHas, pagemapEnd, rawPagemap } from "./fixtures/kernel.ts";
import { probed } from "./fixtures/skip.ts";

const root = Deno.uid() === 0;
const PAGE = 4096;

Deno.test("touched pages are present and untouched ones absent, in columns", () => {
  using fd = MemFd.create("pm-touch", { size: 64 * PAGE });
  using m = fd.map();
  const touched = [0, 1, 7, 63];
  for (const i of touched) m.bytes()[i * PAGE + 5] = 1;
  using pm = Pagemap.open("self");
  const pages = pm.read({ start: m.address, pages: 64 });
  assertEquals(pages.pages, 64);
  assertEquals(pages.address, m.address);
  assertEquals(pages.presentCount, touched.length);
  assertEquals(pages.swappedCount, 0);
  for (let i = 0; i < 64; i++) {
    assertEquals(pages.present(i), touched.includes(i), `page ${i}`);
    assertEquals((pages.flags[i] & PageBits.PRESENT) !== 0, touched.includes(i));
    assertEquals(pages.raw[i] >> 63n, touched.includes(i) ? 1n : 0n);
  }
  assert(pages.file(0), "a memfd page is shared memory (bit 61)");
  assertEquals(pages.swapped(0), false);
  assertEquals(pages.pfn(2), null);
  assertEquals(pages.swapType(0), null);
  assertEquals(pages.pfnVisible, root);
  if (root) {
    assert(pages.pfn(0)! > 0);
    assertEquals(pages.frame[0], pages.pfn(0));
    assertEquals(BigInt(pages.frame[1]), pages.raw[1] & ((1n << 55n) - 1n));
  }
});

Deno.test("a freshly mapped range that nobody touched is absent", () => {
  using fd = MemFd.create("pm-fresh", { size: 256 * PAGE });
  using m = fd.map();
  using pm = Pagemap.open();
  const pages = pm.read({ start: m.address, pages: 256 });
  assertEquals(pages.presentCount, 0);
  // The kernel reports nothing but, where it keeps soft-dirty bits (6.1 in
  // the QEMU guest), the soft-dirty bit of a new mapping's empty entries.
  const raw = rawPagemap(m.address, 256);
  const SOFT_DIRTY = 1n << 55n;
  assertEquals(raw.every((v) => (v & ~SOFT_DIRTY) === 0n), true, "the raw entries");
  assertEquals([...pages.flags], [...raw].map((v) => v & SOFT_DIRTY ? PageBits.SOFT_DIRTY : 0));
  assertEquals(pm.translate(m.address), null);
});

probed({
  name: "two aliases of one memfd page report the same PFN, and translate() agrees",
  skip: !root && "not root: PFNs read as zero without CAP_SYS_ADMIN",
  fn() {
    using fd = MemFd.create("pm-alias", { size: 2 * PAGE });
    using a = fd.map();
    using b = fd.map({ access: "r" });
    a.bytes()[PAGE] = 7;
    assertEquals(b.bytes()[PAGE], 7); // faults the page in at b too
    using pm = Pagemap.open();
    const pa = pm.read({ start: a.address, pages: 2 }),
      pb = pm.read({ start: b.address, pages: 2 });
    assert(pa.pfn(1)! > 0);
    assertEquals(pa.pfn(1), pb.pfn(1));
    assertEquals(pb.present(0), false);
    const phys = pm.translate(a.address + BigInt(PAGE) + 123n)!;
    assertEquals(phys, BigInt(pa.pfn(1)!) * BigInt(PAGE) + 123n);
    assertEquals(pm.translate(b.address + BigInt(PAGE) + 123n), phys);
  },
});

probed({
  name:
    "a memfd page's PFN has the flags of a shared memory page in kpageflags, and kpagecount counts both aliases",
  skip: !root && "not root: PFNs read as zero without CAP_SYS_ADMIN",
  fn() {
    using fd = MemFd.create("pm-flags", { size: PAGE });
    using a = fd.map();
    using b = fd.map();
    a.bytes()[0] = 1;
    b.bytes()[1] = 1;
    using pm = Pagemap.open();
    const pfn = pm.read({ start: a.address, pages: 1 }).pfn(0)!;
    const flags = readKPageFlags([pfn, BigInt(pfn)]);
    assertEquals(flags.pages, 2);
    assertEquals(flags.raw[0], flags.raw[1]);
    for (const f of ["SWAPBACKED", "MMAP", "UPTODATE"] as const) assert(flags.has(0, f), f);
    for (const f of ["ANON", "SLAB", "BUDDY", "ZERO_PAGE", "KSM"] as const) {
      assert(!flags.has(0, f), f);
    }
    assert(flags.names(0).includes("SWAPBACKED"));
    assertEquals([...readKPageCounts([pfn])], [2]);
    assertThrows(() => readKPageFlags([2 ** 50]), MemkitError, "past the end of physical memory");
    assertThrows(() => flags.has(0, "NOPE" as "LRU"), TypeError);
  },
});

Deno.test("scan() finds present ranges with PAGEMAP_SCAN, and the fallback gives the same regions", () => {
  const n = 3000; // every other page touched: 1500 regions, more than one vector
  using fd = MemFd.create("pm-scan", { size: n * PAGE });
  using m = fd.map();
  for (let i = 0; i < n; i += 2) m.bytes()[i * PAGE] = 1;
  using pm = Pagemap.open();
  const range = { start: m.address, length: n * PAGE };
  const present = pm.scan(range, { require: ["present"] });
  assertEquals(present.length, n / 2);
  present.forEach((r, k) => {
    assertEquals(r.start, m.address + BigInt(2 * k * PAGE));
    assertEquals(r.pages, 1);
    assertEquals(r.categories, ["file", "present"]);
  });
  assertEquals(pm.scan(range, { require: ["present"], fallback: true }), present);
  const every = pm.scan(range, { report: ["present", "written"] });
  assertEquals(every.length, n);
  assertEquals(pm.scan(range, { report: ["present", "written"], fallback: true }), every);
  const absent = pm.scan(range, { exclude: ["present"] });
  assertEquals(absent.length, n / 2);
  assertEquals(absent[0].categories, []);
  assertEquals(pm.scan(range, { exclude: ["present"], fallback: true }), absent);
  assertEquals(pm.scan(range, { require: ["swapped"] }), []);
  // Where the kernel lacks the ioctl (6.1 in the QEMU guest), scan() is the
  // fallback by itself: the regions are the runs of the raw pagemap entries.
  console.log(kernelHas("PAGEMAP_SCAN"));
  if (!hasPagemapScan()) {
    const raw = pm.read({ start: m.address, pages: n }).raw;
    const runs: ScanRegion[] = [];
    raw.forEach((v, i) => {
      const categories = v >> 63n ? ["file", "present"] as const : [] as const;
      const start = m.address + BigInt(i * PAGE);
      const last = runs.at(-1);
      if (last?.categories.length === categories.length) {
        last.end += BigInt(PAGE);
        last.pages++;
      } else runs.push({ start, end: start + BigInt(PAGE), pages: 1, categories });
    });
    assertEquals(pm.scan(range, { report: ["present", "file"] }), runs);
  }
});

Deno.test("scan() merges touched runs and reports categories asked for", () => {
  using fd = MemFd.create("pm-runs", { size: 16 * PAGE });
  using m = fd.map();
  m.bytes().fill(1, 3 * PAGE, 9 * PAGE);
  using pm = Pagemap.open();
  const r = pm.scan({ start: m.address, end: m.address + BigInt(16 * PAGE) }, {
    anyOf: ["present", "swapped"],
    report: ["present"],
  });
  assertEquals(r.map((x) => [Number(x.start - m.address) / PAGE, x.pages, x.categories]), [
    [3, 6, ["present"]],
  ]);
  const third = m.address + BigInt(3 * PAGE);
  if (hasPagemapScan()) {
    const whole = pm.scan({ start: 0, end: 1n << 64n }, {
      require: ["present"],
      report: ["present"],
    });
    assert(whole.some((x) => x.start <= third && third < x.end), "the whole address space scan");
  } else {
    // The fallback reads every entry of the range (2^35 for the whole
    // address space: hours under TCG): the stack, and the last GiB below
    // the top of the address space (nothing mapped there) to 2^64.
    const stack = readMaps("self").find((e) => e.kind === "stack")!;
    const opts: ScanOptions = { require: ["present"], report: ["present"] };
    const present = pm.scan({ start: stack.start, end: stack.end }, opts);
    assert(present.some((x) => stack.start <= x.start && x.end <= stack.end), "the stack");
    assertEquals(pm.scan({ start: pagemapEnd() - (1n << 30n), end: 1n << 64n }, opts), []);
  }
  const e = assertThrows(
    () => pm.scan({ start: m.address, length: PAGE }, { require: ["pfn-zero"], fallback: true }),
    MemkitError,
  );
  assertEquals(e.code, "EOPNOTSUPP");
  assertStringIncludes(e.message, "PAGEMAP_SCAN");
  // Without the ioctl, the categories only it computes are refused, naming it.
  if (hasPagemapScan()) {
    assertEquals(pm.scan({ start: m.address, length: PAGE }, { require: ["pfn-zero"] }), []);
  } else {
    const e = assertThrows(
      () => pm.scan({ start: m.address, length: PAGE }, { require: ["pfn-zero"] }),
      MemkitError,
    );
    assertEquals(e.code, "EOPNOTSUPP");
    assertStringIncludes(e.message, "PAGEMAP_SCAN");
  }
});

Deno.test("bad input to Pagemap is a TypeError or RangeError, a closed one BadResource", () => {
  using pm = Pagemap.open();
  assertThrows(
    () => pm.read({ start: 4097n, pages: 1 }),
    RangeError,
    "not a multiple of the page size",
  );
  assertThrows(() => pm.read({ start: 4096n, pages: 0 }), RangeError);
  assertThrows(() => pm.read({ start: 4096n, pages: 1.5 }), RangeError);
  assertThrows(() => pm.read({ start: -4096, pages: 1 }), TypeError);
  assertThrows(() => pm.read({ start: (1n << 64n) - 4096n, pages: 2 }), RangeError, "past the end");
  // The top of user space: 0x7ffffffff000 with 4-level page tables, higher
  // with 5 (the QEMU guest's CPU has LA57).
  const end = pagemapEnd();
  assertThrows(
    () => pm.read({ start: end - 4096n, pages: 4 }),
    RangeError,
    `pagemap of self ends at 0x${end.toString(16)}`,
  );
  assertThrows(() => pm.scan({ start: 1, length: PAGE }), RangeError);
  assertThrows(
    () => pm.scan({ start: 0, length: PAGE }, { require: ["shiny" as "file"] }),
    TypeError,
  );
  assertThrows(
    () => pm.scan({ start: 0, length: PAGE }, { require: ["file"], exclude: ["file"] }),
    RangeError,
  );
  assertThrows(() => Pagemap.open(0), RangeError);
  assertThrows(() => readKPageFlags([-1]), TypeError);
  pm.close();
  pm.close();
  assertEquals(pm.closed, true);
  assertThrows(() => pm.read({ start: 4096n, pages: 1 }), Deno.errors.BadResource);
});

Deno.test("the pagemap of a missing pid is NotFound, and of a process that exits after open too", async () => {
  assertThrows(() => Pagemap.open(4194000), Deno.errors.NotFound, "no process with pid 4194000");
  const child = new Deno.Command("sleep", { args: ["30"] }).spawn();
  using pm = Pagemap.open(child.pid);
  assertEquals(pm.read({ start: 4096n, pages: 1 }).pages, 1);
  child.kill("SIGKILL");
  await child.status;
  assertThrows(() => pm.read({ start: 4096n, pages: 1 }), Deno.errors.NotFound, "no address space");
  assertThrows(
    () => pm.scan({ start: 0n, length: 1 << 30 }),
    Deno.errors.NotFound,
    "no address space",
  );
  const done = new Deno.Command("true").spawn();
  await done.status;
  assertThrows(() => Pagemap.open(done.pid), Deno.errors.NotFound);
});

Deno.test("fresh results never share memory with each other, and their columns do not overlap", () => {
  // 64 pages: 1,088 bytes of columns, below the prefault size; 4096 pages: 68 KiB, above it.
  for (const n of [64, 4096]) {
    using fd = MemFd.create("pm-fresh-columns", { size: n * PAGE });
    using m = fd.map();
    m.bytes()[0] = 1;
    using pm = Pagemap.open();
    const a = pm.read({ start: m.address, pages: n });
    const b = pm.read({ start: m.address, pages: n });
    const columns = (r: typeof a) => [r.raw, r.frame, r.flags];
    for (const x of columns(a)) for (const y of columns(b)) assert(x.buffer !== y.buffer);
    // One buffer per result, each column its own bytes of it.
    const spans = columns(a).map((c) => [c.byteOffset, c.byteOffset + c.byteLength]);
    assertEquals(new Set(columns(a).map((c) => c.buffer)).size, 1);
    assertEquals(spans, [[0, 8 * n], [8 * n, 16 * n], [16 * n, 17 * n]]);
    assertEquals([a.raw.length, a.frame.length, a.flags.length], [n, n, n]);
    // Writing one result, or reading again into the other, leaves it as it was.
    const before = [a.raw.slice(), a.frame.slice(), a.flags.slice()];
    b.raw.fill(7n);
    b.frame.fill(7);
    b.flags.fill(7);
    m.bytes()[PAGE] = 1;
    const c = pm.read({ start: m.address, pages: n }, { into: b });
    assertEquals(c.presentCount, 2);
    assertEquals([a.raw, a.frame, a.flags], before);
    assertEquals([a.presentCount, a.present(0), a.present(1)], [1, true, false]);
    assertEquals([c.present(0), c.present(1)], [true, true]);
  }
});

Deno.test("a fresh result's frame and flags, decoded when first read, equal those read into columns", () => {
  const n = 8192; // 64 KiB of raw entries: above the size that is faulted in with one call
  using fd = MemFd.create("pm-lazy", { size: n * PAGE });
  using m = fd.map();
  for (let i = 0; i < n; i += 3) m.bytes()[i * PAGE] = 1;
  using pm = Pagemap.open();
  const eager = pm.read({ start: m.address, pages: n }, {
    into: pm.read({ start: m.address, pages: n }),
  });
  const lazy = pm.read({ start: m.address, pages: n });
  assertEquals([lazy.presentCount, lazy.pages], [eager.presentCount, n]);
  assertEquals(lazy.raw, eager.raw);
  assertEquals(lazy.flags, eager.flags);
  assertEquals(lazy.frame, eager.frame);
  assert(
    lazy.frame === lazy.frame && lazy.flags === lazy.flags,
    "decoded once, then the same arrays",
  );
  assertEquals([lazy.present(0), lazy.present(1), lazy.file(0)], [true, false, true]);
  // The columns share one buffer: transferred away before frame was read, all read empty.
  const moved = pm.read({ start: m.address, pages: n });
  const bytes = new Uint8Array(moved.raw.buffer.transfer());
  assertEquals([moved.frame.length, moved.flags.length, moved.pages], [0, 0, 0]);
  assertEquals(bytes.length, 17 * n);
  const again = pm.read({ start: m.address, pages: n }, { into: moved }); // no columns left to reuse: new ones
  assert(again.raw.buffer !== moved.raw.buffer);
  assertEquals(again.flags, eager.flags);
});

Deno.test("read({ into }) overwrites an earlier result's columns instead of allocating", () => {
  using fd = MemFd.create("pm-into", { size: 8 * PAGE });
  using m = fd.map();
  using pm = Pagemap.open();
  const first = pm.read({ start: m.address, pages: 8 });
  assertEquals(first.presentCount, 0);
  m.bytes()[2 * PAGE] = 1;
  const second = pm.read({ start: m.address, pages: 8 }, { into: first });
  assertEquals(second.flags, first.flags, "the same arrays");
  assert(second.flags.buffer === first.flags.buffer);
  assertEquals(second.presentCount, 1);
  assert(first.present(2), "the earlier result sees the new state: it was overwritten");
  const other = pm.read({ start: m.address, pages: 4 }, { into: first });
  assert(other.flags.buffer !== first.flags.buffer, "a different length gets new columns");
  assertThrows(() => pm.read({ start: m.address, pages: 8 }, { into: {} as never }), TypeError);
  // Columns JavaScript replaced since: checked again right before the native
  // call writes them (too short, wrong type, an immutable view).
  const tampered = pm.read({ start: m.address, pages: 8 }) as unknown as Record<string, unknown>;
  const check = (column: string, value: unknown) => {
    const saved = tampered[column];
    Object.defineProperty(tampered, column, { value, configurable: true });
    assertThrows(
      () => pm.read({ start: m.address, pages: 8 }, { into: tampered as never }),
      TypeError,
      "columns",
    );
    Object.defineProperty(tampered, column, { value: saved, configurable: true });
  };
  check("raw", new BigUint64Array(1));
  check("frame", new Uint8Array(8));
  const immutable = (new ArrayBuffer(8) as unknown as { transferToImmutable(): ArrayBuffer })
    .transferToImmutable();
  check("flags", new Uint8Array(immutable));
  using ro = fd.map({ access: "r" });
  check("flags", ro.bytes(0, 8));
});
