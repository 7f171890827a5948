// flags: --allow-ffi --allow-read=/proc/self/pagemap,mod.ts --v8-flags=--js-immutable-arraybuffer
// The rules of "Units and types" (README), over the real API: addresses are
// bigints (physical ones too, exact above 2^53), every address + length has
// an `end`, counts of pages are `pages`, Pagemap.read() and scan() take the
// same ranges (read once, refused before any system call), and no two
// exports differ only by case but the deprecated aliases, which are the very
// functions and classes of their new names (lazyView calls LazyView.create).
import { assert, assertEquals, assertStrictEquals, assertThrows } from "@std/assert";
import * as memkit from "../mod.ts";
import {
  KPAGE_FLAG_NAMES,
  KPAGE_FLAGS,
  kpagecount,
  KPageFlags,
  kpageflags,
  KPageFlagTable,
  MAX_PHYS_ADDRESS,
  MemFd,
  Pagemap,
  pageSize,
  parseSmbiosEntryPoint,
  probeUserfaultfd,
  protection,
  protectionAt,
  readKPageCounts,
  readKPageFlags,
  readSmbios,
  RingBuffer,
  smbios,
  userfaultfdFeatures,
} from "../mod.ts";
import { parseIomem } from "../src/iomem.ts";

const PAGE = pageSize();

Deno.test("Mapping.end is address + length, a bigint, on a real memfd mapping", () => {
  using fd = MemFd.create("units-end", { size: 3 * PAGE });
  using m = fd.map();
  assertEquals(typeof m.address, "bigint");
  assertEquals(typeof m.length, "number");
  assertStrictEquals(m.end, m.address + BigInt(m.length));
  using part = fd.map({ offset: PAGE, length: PAGE });
  assertStrictEquals(part.end, part.address + BigInt(PAGE));
});

Deno.test("RingBuffer.end is the end of its double mapping: address + 2 * size", () => {
  using ring = RingBuffer.create(PAGE);
  assertStrictEquals(ring.end, ring.address + 2n * BigInt(ring.size));
});

/** A memfd mapping of `n` pages with pages `touched` written, and its pagemap. */
function touchedMapping(n: number, touched: number[]) {
  const fd = MemFd.create("units-pm", { size: n * PAGE });
  const m = fd.map();
  for (const i of touched) m.bytes()[i * PAGE] = 1;
  const pm = Pagemap.open();
  return {
    m,
    pm,
    [Symbol.dispose]() {
      pm.close();
      m.close();
      fd.close();
    },
  };
}

Deno.test("read({ start, pages }), { start, length } and { start, end } read what the positional form reads", () => {
  using t = touchedMapping(8, [0, 3, 7]);
  const { m, pm } = t;
  // The deprecated form keeps working, and is the reference here.
  const old = pm.read(m.address, 8);
  const forms = [
    pm.read({ start: m.address, pages: 8 }),
    pm.read({ start: m.address, length: m.length }),
    pm.read({ start: m.address, length: BigInt(m.length) }),
    pm.read({ start: m.address, end: m.end }),
    pm.read({ start: Number(m.address), end: Number(m.end) }),
  ];
  for (const pages of forms) {
    assertEquals(pages.address, old.address);
    assertEquals(pages.pages, 8);
    assertEquals([...pages.raw], [...old.raw]);
    assertEquals([...pages.flags], [...old.flags]);
    assertEquals(pages.presentCount, 3);
  }
  assertEquals([0, 1, 2, 3, 4, 5, 6, 7].filter((i) => forms[0].present(i)), [0, 3, 7]);
  // { into } works in the range form as in the positional one.
  const again = pm.read({ start: m.address, pages: 8 }, { into: forms[0] });
  assertStrictEquals(again.raw, forms[0].raw);
});

Deno.test("PagemapPages.end is address + pages * pageSize", () => {
  using t = touchedMapping(4, [1]);
  const pages = t.pm.read({ start: t.m.address, pages: 4 });
  assertStrictEquals(pages.end, pages.address + BigInt(4 * PAGE));
  assertEquals(pages.pages, 4);
  assertEquals(pages.length, 4); // deprecated: a length counts bytes elsewhere
  assertStrictEquals(pages.end, t.m.end);
});

Deno.test("scan({ start, pages }) finds what scan({ start, length }) and scan({ start, end }) find", () => {
  using t = touchedMapping(8, [2, 3, 4]);
  const { m, pm } = t;
  const opts = { require: ["present" as const] };
  const byPages = pm.scan({ start: m.address, pages: 8 }, opts);
  assertEquals(byPages.map((r) => [r.start - m.address, r.end - m.address, r.pages]), [
    [2n * BigInt(PAGE), 5n * BigInt(PAGE), 3],
  ]);
  assertEquals(pm.scan({ start: m.address, length: m.length }, opts), byPages);
  assertEquals(pm.scan({ start: m.address, end: m.end }, opts), byPages);
  assertEquals(pm.scan({ start: m.address, pages: 0 }, opts), []);
});

Deno.test("a malformed range is a TypeError or RangeError, in read() and scan() alike", () => {
  using t = touchedMapping(2, [0]);
  const { m, pm } = t;
  const start = m.address;
  const calls = [
    (r: unknown) => pm.read(r as memkit.AddressRange),
    (r: unknown) => pm.scan(r as memkit.AddressRange),
  ];
  for (const call of calls) {
    // Two of end, length and pages: which one would win is no guess to make.
    for (
      const r of [
        { start, end: m.end, length: 2 * PAGE },
        { start, end: m.end, pages: 2 },
        { start, length: 2 * PAGE, pages: 2 },
        { start, end: m.end, length: 2 * PAGE, pages: 2 },
      ]
    ) {
      assertThrows(() => call(r), TypeError, "one of end, length and pages");
    }
    assertThrows(() => call({ start }), TypeError, "not a start alone");
    assertThrows(() => call(null), TypeError);
    assertThrows(() => call({ start, pages: "2" }), TypeError, "pages");
    assertThrows(() => call({ start, pages: 2n }), TypeError, "pages");
    assertThrows(() => call({ start, pages: -1 }), RangeError, "pages");
    assertThrows(() => call({ start, pages: 1.5 }), RangeError, "pages");
    assertThrows(
      () => call({ start, length: PAGE + 1 }),
      RangeError,
      "not a multiple of the page size",
    );
    assertThrows(() => call({ start: start + 1n, pages: 1 }), RangeError, "not a multiple");
    assertThrows(() => call({ start, end: start - BigInt(PAGE) }), RangeError, "below the start");
    assertThrows(() => call({ start, end: 2n ** 64n + BigInt(PAGE) }), RangeError, "2^64");
    assertThrows(() => call({ start: -4096, pages: 1 }), TypeError, "start");
  }
  assertThrows(() => pm.scan(start as never), TypeError, "expected a range");
  // read() needs at least one page; scan() of none finds none.
  assertThrows(() => pm.read({ start, pages: 0 }), RangeError, "expected 1 to 2^40");
  assertThrows(() => pm.read({ start, end: start }), RangeError, "expected 1 to 2^40");
});

Deno.test("a range is read once: a getter that throws stops the call, one that changes is not read again", () => {
  using t = touchedMapping(4, [0, 1]);
  const { m, pm } = t;
  class Boom extends Error {}
  const throwing = {
    start: m.address,
    get pages(): number {
      throw new Boom("from the caller's getter");
    },
  };
  assertThrows(() => pm.read(throwing), Boom);
  assertThrows(() => pm.scan(throwing), Boom);

  // Two pages on the first read, 2^40 (past the end of everything) after.
  let reads = 0;
  const shifting = {
    start: m.address,
    get pages(): number {
      return reads++ === 0 ? 2 : 2 ** 40;
    },
  };
  assertEquals(pm.read(shifting).pages, 2);
  assertEquals(reads, 1);
  reads = 0;
  assertEquals(pm.scan(shifting, { require: ["present"] }).map((r) => r.pages), [2]);
  assertEquals(reads, 1);

  // Through a Proxy: each field one get, whatever the traps answer next.
  const gets: string[] = [];
  const proxy = new Proxy({ start: m.address, pages: 4 }, {
    get(target, key, receiver) {
      gets.push(String(key));
      return Reflect.get(target, key, receiver);
    },
  });
  assertEquals(pm.read(proxy).pages, 4);
  assertEquals(gets.toSorted(), ["end", "length", "pages", "start"]);
});

Deno.test("parseIomem() returns bigint bounds, exact above 2^53 where a number would round", () => {
  const text = "00001000-0009fbff : System RAM\n" +
    "fc00000000000000-fcffffffffffffff : PCI Bus 0000:00\n" +
    "  fc00000000000100-fc000000000001ff : 0000:00:02.0\n" +
    "ffffffffffff0000-ffffffffffffffff : top\n";
  const ranges = parseIomem(text);
  assertEquals(ranges, [
    { start: 0x1000n, end: 0x9fc00n, name: "System RAM", depth: 0 },
    { start: 0xfc00000000000000n, end: 0xfd00000000000000n, name: "PCI Bus 0000:00", depth: 0 },
    { start: 0xfc00000000000100n, end: 0xfc00000000000200n, name: "0000:00:02.0", depth: 1 },
    { start: 0xffffffffffff0000n, end: 2n ** 64n, name: "top", depth: 0 },
  ]);
  // What a number makes of the same text: the child's start rounds to its
  // parent's (a double is 2048 apart up there), and both its bounds to one.
  assertEquals(parseInt("fc00000000000100", 16), parseInt("fc00000000000000", 16));
  assertEquals(parseInt("fc00000000000200", 16), parseInt("fc00000000000000", 16));
  assertEquals(ranges[2].end - ranges[2].start, 0x100n);
});

Deno.test("physical addresses memkit returns are bigints: SMBIOS entry points, MAX_PHYS_ADDRESS", () => {
  assertStrictEquals(MAX_PHYS_ADDRESS, 2n ** 52n);
  // A 3.x entry point whose table is above 2^53 (a number would round it).
  const ep = new Uint8Array(24);
  ep.set([..."_SM3_"].map((c) => c.charCodeAt(0)));
  ep[6] = 24;
  ep[7] = 3;
  ep[8] = 2;
  ep[10] = 1;
  const dv = new DataView(ep.buffer);
  dv.setUint32(12, 0x200, true);
  dv.setBigUint64(16, 0x20000000000001n, true); // 2^53 + 1
  ep[5] = (0x100 - ep.reduce((a, b) => a + b, 0) % 0x100) % 0x100;
  const parsed = parseSmbiosEntryPoint(ep, 0xf5b0);
  assertStrictEquals(parsed.address, 0xf5b0n);
  assertStrictEquals(parsed.tableAddress, 0x20000000000001n);
  assertStrictEquals(parseSmbiosEntryPoint(ep, 0xf5b0n).address, 0xf5b0n);
  assertThrows(() => parseSmbiosEntryPoint(ep, 0.5), TypeError);
});

Deno.test("the deprecated aliases are the same functions, class and list as their new names", () => {
  assertStrictEquals(kpageflags, readKPageFlags);
  assertStrictEquals(kpagecount, readKPageCounts);
  assertStrictEquals(KPageFlags, KPageFlagTable);
  assertStrictEquals(KPAGE_FLAGS, KPAGE_FLAG_NAMES);
  assertStrictEquals(protection, protectionAt);
  assertStrictEquals(smbios, readSmbios);
  assertStrictEquals(userfaultfdFeatures, probeUserfaultfd);
  // lazyView is a function of its own that calls LazyView.create: tests/uffd_test.ts makes a
  // view through it where this kernel has userfaultfd.
  const table = new KPageFlags(new BigUint64Array([1n]), new BigUint64Array([1n << 14n]));
  assert(table instanceof KPageFlagTable);
  assertEquals([table.pages, table.length], [1, 1]);
  const name: memkit.KPageFlag = "SWAPBACKED";
  const renamed: memkit.KPageFlagName = name;
  assertEquals(table.names(0), [renamed]);
});

/**
 * The names mod.ts exports, types included, from its source, and those of
 * them exported under a `// Deprecated` comment.
 */
function exportNames(): { names: string[]; deprecated: string[] } {
  const source = Deno.readTextFileSync(new URL("../mod.ts", import.meta.url));
  const names: string[] = [];
  const deprecated: string[] = [];
  const statements = /^(\/\/ Deprecated[^\n]*\n)?export \{([^}]*)\} from "[^"]+";$/gms;
  for (const [, comment, list] of source.matchAll(statements)) {
    for (const item of list.split(",")) {
      // `type X`, and `X as Y` exports Y.
      const name = item.trim().replace(/^type\s+/, "").split(/\s+as\s+/).at(-1)!;
      if (name === "") continue;
      names.push(name);
      if (comment !== undefined) deprecated.push(name);
    }
  }
  return { names, deprecated };
}

Deno.test("no two exports of mod.ts differ only by case, but a deprecated alias and its type", () => {
  const { names, deprecated } = exportNames();
  // The walk sees every value export (types are in the source only).
  for (const value of Object.keys(memkit)) assert(names.includes(value), value);
  // The deprecated block of mod.ts holds these, and only these.
  assertEquals(deprecated.toSorted(), [
    "KPAGE_FLAGS",
    "KPageFlag",
    "KPageFlags",
    "kpagecount",
    "kpageflags",
    "lazyView",
    "protection",
    "smbios",
    "userfaultfdFeatures",
  ]);
  const fold = (name: string) => name.toLowerCase().replaceAll("_", "");
  const byFold = new Map<string, string[]>();
  for (const name of names) byFold.set(fold(name), [...(byFold.get(fold(name)) ?? []), name]);
  // Without the deprecated aliases no two names fold alike: no exceptions
  // (a new clash fails this test).
  const current = [...byFold.values()].map((group) => group.filter((n) => !deprecated.includes(n)));
  assertEquals(current.filter((group) => group.length > 1), []);
  // The aliases clash with what they were named alike with, and nothing else.
  const clashes = [...byFold.values()].filter((group) => group.length > 1)
    .map((group) => group.toSorted().join(" "));
  assertEquals(clashes.toSorted(), [
    "KPAGE_FLAGS KPageFlags kpageflags",
    "LazyView lazyView",
    "Protection protection",
    "Smbios smbios",
    "UserfaultfdFeatures userfaultfdFeatures",
  ]);
  // The new names collide with nothing.
  for (
    const name of [
      "readKPageFlags",
      "readKPageCounts",
      "KPageFlagTable",
      "KPAGE_FLAG_NAMES",
      "KPageFlagName",
      "protectionAt",
      "readSmbios",
      "probeUserfaultfd",
    ]
  ) {
    assertEquals(byFold.get(fold(name)), [name]);
  }
});
