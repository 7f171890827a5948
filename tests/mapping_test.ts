// flags: --allow-ffi --v8-flags=--js-immutable-arraybuffer
import {
  assert,
  assertEquals,
  assertNotEquals,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import { Mapping, MemFd, MemkitError, pageSize } from "../mod.ts";

const PAGE = pageSize();

Deno.test("a mapping creates its ArrayBuffer once and hands out views over it", () => {
  using fd = MemFd.create("m-once", { size: 2 * PAGE });
  using m = fd.map();
  assertStrictEquals(m.bytes().buffer, m.bytes(PAGE).buffer);
  assertStrictEquals(m.bytes().buffer, m.view(Float64Array).buffer);
  using r = fd.map({ access: "r" });
  assertStrictEquals(r.bytes().buffer, r.bytes(1).buffer);
});

Deno.test("address, length, access and name describe the mapping", () => {
  using fd = MemFd.create("m-props", { size: 2 * PAGE });
  using m = fd.map({ access: "r", offset: PAGE });
  assertEquals(typeof m.address, "bigint");
  assertEquals(m.address % BigInt(PAGE), 0n);
  assertEquals(m.length, PAGE);
  assertEquals(m.access, "r");
  assertEquals(m.name, "memfd:m-props");
  assertEquals(m.closed, false);
  assert(Deno.inspect(m).includes(`0x${m.address.toString(16)}`));
});

Deno.test("view() makes typed arrays at element-aligned offsets only", () => {
  using fd = MemFd.create("m-view", { size: PAGE });
  using m = fd.map();
  const u32 = m.view(Uint32Array, 8, 2);
  assertEquals(u32.length, 2);
  u32[0] = 0x11223344;
  assertEquals([...m.bytes(8, 4)], [0x44, 0x33, 0x22, 0x11]);
  assertEquals(m.view(BigUint64Array).length, PAGE / 8);
  assertThrows(() => m.view(Uint32Array, 2), RangeError, "multiple of 4");
  assertThrows(() => m.view(Uint32Array, 0, PAGE), RangeError);
  assertThrows(() => m.view(Object as unknown as Uint8ArrayConstructor), TypeError);
});

Deno.test("bytes(), read() and write() check their window against the mapping", () => {
  using fd = MemFd.create("m-window", { size: PAGE });
  using m = fd.map();
  assertEquals(m.bytes(PAGE).length, 0);
  assertThrows(() => m.bytes(PAGE + 1), RangeError);
  assertThrows(() => m.bytes(-1), RangeError);
  assertThrows(() => m.bytes(0, PAGE + 1), RangeError);
  assertThrows(() => m.bytes(0.5), TypeError);
  assertThrows(() => m.read(PAGE - 1, 2), RangeError);
  assertThrows(() => m.write(new Uint8Array(2), PAGE - 1), RangeError);
  assertThrows(() => m.write([1, 2] as unknown as Uint8Array), TypeError);
  assert(m.bytes().every((b) => b === 0), "nothing was written");
});

Deno.test("read() copies: changing the copy leaves the memory alone", () => {
  using fd = MemFd.create("m-copy", { size: PAGE });
  using m = fd.map();
  m.bytes()[0] = 1;
  const copy = m.read(0, 4);
  copy[0] = 99;
  assertEquals(m.bytes()[0], 1);
  assertNotEquals(copy.buffer, m.bytes().buffer);
});

Deno.test("write() to a read-only mapping is a TypeError", () => {
  using fd = MemFd.create("m-rowrite", { size: PAGE });
  using m = fd.map({ access: "r" });
  assertThrows(() => m.write(new Uint8Array([1])), TypeError, 'protection is "r"');
});

Deno.test("protect() round-trips rw, r, none and back, checking its argument first", () => {
  using fd = MemFd.create("m-protect", { size: PAGE });
  using m = fd.map();
  m.bytes()[0] = 5;
  m.protect("none");
  assertEquals(m.access, "none");
  assertThrows(() => m.bytes(), TypeError, 'protection "none"');
  m.protect("r");
  assertEquals(m.bytes()[0], 5);
  m.protect("rw");
  m.bytes()[0] = 6;
  assertEquals(m.read(0, 1)[0], 6);
  assertThrows(() => m.protect("rwx" as "rw"), TypeError, 'access "rwx"');
  assertEquals(m.access, "rw");
});

Deno.test("a closed mapping is a BadResource error and close() is idempotent", () => {
  using fd = MemFd.create("m-closed", { size: PAGE });
  const m = fd.map();
  m.close();
  m.close();
  assert(m.closed);
  assertThrows(() => m.bytes(), Deno.errors.BadResource, "is closed");
  assertThrows(() => m.read(), Deno.errors.BadResource);
  assertThrows(() => m.write(new Uint8Array(1)), Deno.errors.BadResource);
  assertThrows(() => m.protect("r"), Deno.errors.BadResource);
  assert(Deno.inspect(m).includes("closed"));
});

Deno.test("Mapping cannot be constructed directly", () => {
  assertThrows(
    () => new Mapping(Symbol("x"), {} as never),
    TypeError,
    "use MemFd.map() or mapFile()",
  );
});

Deno.test("a read-only alias of 1 GiB is zero-copy and sees writes at both ends", () => {
  const GiB = 2 ** 30;
  using fd = MemFd.create("m-gib", { size: GiB });
  using rw = fd.map({ offset: GiB - PAGE, length: PAGE });
  using ro = fd.map({ access: "r" });
  assertEquals(ro.length, GiB);
  rw.bytes()[PAGE - 1] = 0xfe;
  assertEquals(ro.bytes()[GiB - 1], 0xfe);
  assertEquals(ro.view(Uint8Array, GiB - 2, 2)[1], 0xfe);
});

Deno.test("MemkitError carries errno, code, operation and path", () => {
  const err = new MemkitError(13, "open", { path: "/x", hint: "try again" });
  assertEquals(err.errno, 13);
  assertEquals(err.code, "EACCES");
  assertEquals(err.operation, "open");
  assertEquals(err.path, "/x");
  assertEquals(err.name, "MemkitError");
  assertEquals(err.message, 'Cannot open "/x": Permission denied: try again');
  assertEquals(new MemkitError(9999, "poke").code, "E9999");
});
