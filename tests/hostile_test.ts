// flags: --allow-ffi --allow-run=$DENO --allow-read=/proc/self/pagemap --v8-flags=--js-immutable-arraybuffer
// Issue 9's hostile callers, one regression test per class: values that
// change between the check and the use (getters, Symbol.toPrimitive),
// redefined typed-array properties, patched built-ins, inherited names, and
// null options. What would crash the process runs in a child
// (tests/fixtures/hostile_child.ts) and the test asserts it did not die of
// a signal; the rest runs here.
import { assert, assertEquals, assertStringIncludes, assertThrows } from "@std/assert";
import {
  alias,
  findMapping,
  guarded,
  mapFile,
  MemFd,
  Pagemap,
  pageSize,
  permissionFlags,
  PhysicalMemory,
  protect,
  RingBuffer,
  stitch,
} from "../mod.ts";
import { BUILTINS } from "./fixtures/hostile_child.ts";
import { childReport } from "./fixtures/child.ts";

const PAGE = pageSize();
const fixture = new URL("./fixtures/hostile_child.ts", import.meta.url).pathname;

/** Runs a scenario in a child; fails if it died of a signal or exited non-zero. */
function child(args: string[], flags: string[] = []): Promise<Record<string, unknown>> {
  return Promise.resolve(
    childReport(["--allow-ffi", "--v8-flags=--expose-gc", ...flags, fixture, ...args]),
  );
}

// ---- item 1: sizes passed to C come from the engine's slots ----

Deno.test("Pagemap.read({ into }) sizes its native read from the columns' slots, not a redefined length", async () => {
  const r = await child(["pagemap-into-length"], ["--allow-read=/proc/self/pagemap"]);
  const pages = 1 << 16;
  assertEquals(r.lengths, [pages, pages, pages]);
  assertEquals(r.reused, false);
  assertEquals(r.firstLengths, [1, 1, 1]);
});

Deno.test("Mapping.write() and RingBuffer.write() take the data's length from its slot", () => {
  using fd = MemFd.create("h-write", { size: PAGE });
  using m = fd.map();
  const data = new Uint8Array([1, 2, 3]);
  Object.defineProperty(data, "length", { value: 2 * PAGE });
  m.write(data, PAGE - 3); // the real three bytes fit
  assertEquals([...m.read(PAGE - 3, 3)], [1, 2, 3]);
  using ring = RingBuffer.create(PAGE);
  ring.write(data);
  assertEquals(ring.readable, 3);
  // A Proxy or a look-alike is no Uint8Array.
  assertThrows(
    () => m.write(new Proxy(new Uint8Array(1), {}), 0),
    TypeError,
    "expected a Uint8Array",
  );
  assertThrows(
    () => m.write(Object.setPrototypeOf({ length: 1 }, Uint8Array.prototype), 0),
    TypeError,
    "expected a Uint8Array",
  );
});

Deno.test("alias() of a typed array takes its extent from the engine, not from redefined properties", () => {
  const view = new Uint8Array(PAGE);
  Object.defineProperty(view, "byteLength", { value: 1 << 30 });
  Object.defineProperty(view, "byteOffset", { value: -PAGE });
  // The heap is private memory: refused for what it is, after the real extent was read.
  const e = assertThrows(() => alias(view), Error);
  assertStringIncludes((e as Error).message, `alias of a ${PAGE}-byte buffer`);
});

// ---- item 2: arguments are copied once, validated, never read again ----

Deno.test("protect() refuses an access object whose Symbol.toPrimitive answers differently each time", async () => {
  const r = await child(["protect-toprimitive"]);
  assertStringIncludes(r.method as string, "throws:TypeError:Cannot use access");
  assertStringIncludes(r.function as string, "throws:TypeError:Cannot use access");
  assertEquals([r.access, r.calls, r.byte], ["rw", 0, 7]);
});

Deno.test("a range getter that closes the mapping mid-protect() cannot protect what is mapped there next", async () => {
  const r = await child(["protect-getter-remaps"]);
  assertStringIncludes(r.result as string, "throws:BadResource");
  assertEquals(r.byte, 9);
});

Deno.test("a chunk getter that shrinks an earlier chunk's memfd mid-stitch() cannot make a view fault", async () => {
  const r = await child(["stitch-getter-resizes"]);
  assertStringIncludes(r.result as string, "throws:RangeError:Cannot stitch chunk 0");
});

Deno.test("options and descriptors are read once per field, into memkit's own copy", () => {
  const reads: Record<string, number> = {};
  const counting = <T extends object>(fields: T): T =>
    new Proxy(fields, {
      get(t, k, r) {
        reads[String(k)] = (reads[String(k)] ?? 0) + 1;
        return Reflect.get(t, k, r);
      },
    });
  using fd = MemFd.create("h-once", counting({ size: 2 * PAGE, sealable: true }));
  using m = fd.map(counting({ access: "rw" as const, offset: 0, length: PAGE }));
  m.protect("r", counting({ offset: 0, length: PAGE }));
  protect(counting({ mapping: m, offset: 0, length: PAGE }), "rw");
  using s = stitch(
    [counting({ source: fd, offset: PAGE, length: PAGE })],
    counting({ access: "r" as const }),
  );
  using g = guarded(PAGE, counting({ guardPages: 1 }));
  // Each call reads each field once: "offset" was read by map, protect (x2) and stitch.
  assertEquals(reads.offset, 4);
  assertEquals(reads.mapping, 1);
  assertEquals(reads.guardPages, 1);
  assert(s.length === PAGE && g.length === PAGE);
});

Deno.test("strings and numbers must be primitives: objects that convert are refused, not converted", () => {
  using fd = MemFd.create("h-prim", { size: PAGE });
  using m = fd.map();
  let converted = 0;
  const str = (v: string) => ({
    [Symbol.toPrimitive]: () => (converted++, v),
    toString: () => (converted++, v),
  });
  const num = (v: number) => ({
    [Symbol.toPrimitive]: () => (converted++, v),
    valueOf: () => (converted++, v),
  });
  assertThrows(() => MemFd.create(str("x") as never), TypeError, "expected a string");
  assertThrows(() => MemFd.create("x", { size: num(PAGE) as never }), TypeError);
  assertThrows(() => fd.map({ access: str("r") as never }), TypeError, "Cannot use access");
  assertThrows(() => m.protect(new String("r") as never), TypeError, "Cannot use access");
  assertThrows(() => m.bytes(num(0) as never), TypeError);
  assertThrows(() => fd.resize(num(0) as never), TypeError);
  assertThrows(() => mapFile(str("/etc/hostname") as never), TypeError, "expected a string");
  assertThrows(() => findMapping(num(0) as never), TypeError);
  assertThrows(() => findMapping(0n, "self", { method: str("text") as never }), TypeError);
  assertThrows(() => guarded(PAGE, { access: str("rw") as never }), TypeError);
  assertThrows(() => RingBuffer.create(PAGE, { name: str("r") as never }), TypeError);
  assertThrows(() => permissionFlags("maps", str("self") as never), TypeError, "expected a string");
  assertEquals(converted, 0);
  assertEquals(m.access, "rw");
});

// ---- item 3: patched built-ins cannot make close() skip a detach ----

for (const name of Object.keys(BUILTINS)) {
  Deno.test(`close() detaches every view with ${name} patched`, async () => {
    const r = await child(["patched-builtin", name]);
    assertEquals(r.error, "none");
    assertEquals(r.closed, [true, true]);
    assertEquals(r.lengths, [0, 0, 0]);
    assertEquals(r.read, [null, null, null]); // undefined, as JSON writes it
    assertEquals(r.kept, 2);
  });
}

// ---- item 9: names select entries by own key only ----

Deno.test('seal(["toString"]) and scan({ require: ["constructor"] }) are TypeErrors before any system call', () => {
  using fd = MemFd.create("h-names", { size: PAGE });
  for (const name of ["toString", "constructor", "__proto__", "hasOwnProperty", "valueOf"]) {
    assertThrows(() => fd.seal([name as never]), TypeError, `Cannot use seal "${name}"`);
  }
  assertEquals(fd.seals, []);
  // A closed memfd: any system call would be EBADF or BadResource, not this TypeError.
  const closed = MemFd.create("h-names-closed");
  closed.close();
  assertThrows(() => closed.seal(["toString" as never]), TypeError, 'Cannot use seal "toString"');
  assertThrows(
    () => permissionFlags("toString" as never),
    TypeError,
    "not in the permission table",
  );
  assertThrows(() => protect(fd.map(), "toString" as never), TypeError, "Cannot use access");
});

Deno.test({
  name: 'scan({ require: ["constructor"] }) is a TypeError before any system call',
  fn() {
    const pm = Pagemap.open();
    pm.close(); // a closed pagemap: a system call would be BadResource instead
    for (const key of ["require", "exclude", "anyOf", "report"]) {
      for (const name of ["constructor", "toString", "__proto__"]) {
        assertThrows(
          () => pm.scan({ start: 0n, length: BigInt(PAGE) }, { [key]: [name] }),
          TypeError,
          `Cannot use the page category "${name}"`,
        );
      }
    }
  },
});

// ---- item 10: null options are memkit's own TypeError ----

Deno.test("null options are memkit's TypeError everywhere; undefined means the defaults", () => {
  using fd = MemFd.create("h-null", { size: PAGE });
  using m = fd.map();
  const calls: [string, () => unknown][] = [
    ["MemFd.create", () => MemFd.create("x", null as never)],
    ["MemFd.map", () => fd.map(null as never)],
    ["mapFile", () => mapFile("/etc/hostname", null as never)],
    ["stitch", () => stitch([{ source: fd }], null as never)],
    ["alias", () => alias(m, null as never)],
    ["guarded", () => guarded(PAGE, null as never)],
    ["Mapping.protect", () => m.protect("r", null as never)],
    ["RingBuffer.create", () => RingBuffer.create(PAGE, null as never)],
    ["findMapping", () => findMapping(0n, "self", null as never)],
    ["PhysicalMemory.open", () => PhysicalMemory.open(null as never)],
    ["Pagemap.read", () => {
      using pm = Pagemap.open();
      return pm.read({ start: m.address, pages: 1 }, null as never);
    }],
    ["Pagemap.scan", () => {
      using pm = Pagemap.open();
      return pm.scan({ start: m.address, length: BigInt(PAGE) }, null as never);
    }],
  ];
  for (const [what, f] of calls) {
    const e = assertThrows(f, TypeError, undefined, what);
    assert(
      !/Cannot read properties/.test((e as Error).message),
      `${what}: ${(e as Error).message}`,
    );
    assertStringIncludes((e as Error).message, '"null"', what);
  }
  // undefined: the defaults.
  using a = alias(m, undefined);
  using s = stitch([{ source: fd }], undefined);
  assertEquals([a.access, s.access], ["rw", "rw"]);
});
