// flags: --allow-ffi --allow-read=/dev/zero,/dev/null,/tmp --allow-write=/dev/zero,/tmp --allow-run=$DENO --v8-flags=--js-immutable-arraybuffer
// mapDevice against the kernel: /dev/zero maps (read-only views immutable,
// writable ones detached by close), /dev/null has no mmap (ENODEV, said so),
// a regular file and a directory are refused before anything is mapped, bad
// arguments before any system call, and a child without the flags is refused
// by the permission gate.
import { assert, assertEquals, assertStringIncludes, assertThrows } from "@std/assert";
import { advise, alias, mapDevice, Mapping, MemkitError, pageSize, stitch } from "../mod.ts";
import { childReport } from "./fixtures/child.ts";

const PAGE = pageSize();
const child = new URL("./fixtures/kshared_child.ts", import.meta.url).pathname;

Deno.test("mapDevice() maps /dev/zero read-only: zeros, an immutable view, a Mapping like any other", () => {
  using m = mapDevice("/dev/zero", { length: 2 * PAGE });
  assert(m instanceof Mapping);
  assertEquals([m.name, m.length, m.access], ["/dev/zero", 2 * PAGE, "r"]);
  const view = m.bytes();
  assert(view.every((b) => b === 0));
  assertThrows(() => {
    view[0] = 1;
  }, TypeError);
  assertEquals(view[0], 0);
  // A read-only mapping cannot be made writable: its source allows "r" only.
  assertThrows(() => m.protect("rw"), MemkitError, "read-only");
});

Deno.test("mapDevice() maps /dev/zero read-write; close() detaches its views", () => {
  const m = mapDevice("/dev/zero", { length: 100, access: "rw" });
  assertEquals([m.name, m.length, m.access], ["/dev/zero", 100, "rw"]);
  const view = m.bytes();
  view[99] = 7;
  assertEquals(m.read(99, 1)[0], 7);
  assertThrows(() => m.bytes(0, 101), RangeError); // the views cover the length asked for
  m.close();
  assertEquals(view.length, 0);
  assertEquals(view[99], undefined);
  assertThrows(() => m.bytes(), Deno.errors.BadResource);
});

Deno.test("mapDevice() of /dev/null is ENODEV, saying its driver has no mmap", () => {
  const e = assertThrows(() => mapDevice("/dev/null", { length: PAGE }), MemkitError);
  assertEquals(e.code, "ENODEV");
  assertEquals(e.operation, "map");
  assertStringIncludes(e.message, '"/dev/null"');
  assertStringIncludes(e.message, "implements no mmap");
});

Deno.test("mapDevice() refuses a regular file (use mapFile) and a directory, before mapping", () => {
  const file = Deno.makeTempFileSync({ prefix: "memkit-device-" });
  try {
    Deno.writeFileSync(file, new Uint8Array(PAGE));
    const e = assertThrows(() => mapDevice(file, { length: PAGE }), MemkitError);
    assertEquals([e.code, e.operation], ["ENODEV", "open"]);
    assertStringIncludes(e.message, "regular file");
    assertStringIncludes(e.message, "mapFile()");
  } finally {
    Deno.removeSync(file);
  }
  const d = assertThrows(() => mapDevice("/tmp", { length: PAGE }), MemkitError);
  assertEquals([d.code, d.operation], ["EISDIR", "open"]);
  assertStringIncludes(d.message, 'Cannot open "/tmp": Is a directory');
});

Deno.test("mapDevice() refuses bad arguments with TypeError or RangeError before opening anything", () => {
  assertThrows(() => mapDevice("/dev/zero", undefined as never), TypeError, "length");
  assertThrows(() => mapDevice("/dev/zero", {} as never), TypeError, "expected a length");
  assertThrows(() => mapDevice("", { length: 1 }), TypeError);
  assertThrows(() => mapDevice(1 as never, { length: 1 }), TypeError);
  assertThrows(() => mapDevice("/dev/zero\0x", { length: 1 }), TypeError, "NUL");
  assertThrows(() => mapDevice("/dev/zero", { length: 0 }), RangeError);
  assertThrows(() => mapDevice("/dev/zero", { length: 2 ** 48 }), RangeError);
  assertThrows(() => mapDevice("/dev/zero", { length: 1.5 }), TypeError);
  assertThrows(() => mapDevice("/dev/zero", { length: 1, offset: 1 }), RangeError, "page size");
  assertThrows(() => mapDevice("/dev/zero", { length: 1, offset: -PAGE }), RangeError);
  assertThrows(() => mapDevice("/dev/zero", { length: 1, access: "rx" as never }), TypeError);
  assertThrows(() => mapDevice("/dev/zero", { length: 1, access: "none" as never }), TypeError);
  // A getter runs once at most, and a value that changes between reads changes nothing.
  let reads = 0;
  const tricky = {
    get length() {
      return ++reads === 1 ? PAGE : 0;
    },
  };
  using m = mapDevice("/dev/zero", tricky);
  assertEquals([m.length, reads], [PAGE, 1]);
});

Deno.test("mapDevice() is gated: a child without --allow-read, or without --allow-write for rw, is NotCapable", () => {
  const run = (flags: string[], access: string) =>
    childReport<{ outcome: string }>([
      "--allow-ffi",
      ...flags,
      "--v8-flags=--js-immutable-arraybuffer",
      child,
      "map",
      "/dev/zero",
      access,
    ]).outcome;
  const none = run([], "r");
  assertStringIncludes(none, "throws:NotCapable:");
  assertStringIncludes(none, 'Requires read access to "/dev/zero"');
  const noWrite = run(["--allow-read=/dev/zero"], "rw");
  assertStringIncludes(noWrite, "throws:NotCapable:");
  assertStringIncludes(noWrite, 'Requires write access to "/dev/zero"');
  assertEquals(run(["--allow-read=/dev/zero"], "r"), `value:${PAGE}`);
  assertEquals(run(["--allow-read=/dev/zero", "--allow-write=/dev/zero"], "rw"), `value:${PAGE}`);
});

Deno.test("mapDevice() refuses /dev/zero read-write past offset 0, whose shared pages there would fault (SIGBUS)", () => {
  const e = assertThrows(
    () => mapDevice("/dev/zero", { offset: PAGE, length: PAGE, access: "rw" }),
    MemkitError,
  );
  assertEquals(e.code, "EINVAL");
  assertStringIncludes(e.message, "SIGBUS");
  // Read-only, the kernel makes it a private mapping of zero pages: fine anywhere.
  using m = mapDevice("/dev/zero", { offset: 16 * PAGE, length: PAGE });
  assertEquals(m.name, `/dev/zero@0x${(16 * PAGE).toString(16)}`);
  assert(m.bytes().every((b) => b === 0));
});

Deno.test("a device mapping is never dropped, moved, stitched or aliased (a driver may have no fault handler)", () => {
  using m = mapDevice("/dev/zero", { length: 2 * PAGE, access: "rw" });
  const view = m.bytes();
  view[5] = 9;
  assertThrows(() => m.advise("dontneed"), TypeError, "SIGBUS");
  assertThrows(() => advise(m, "remove"), TypeError, "driver's mapping");
  assertThrows(() => alias(m), TypeError, "driver's mapping");
  assertThrows(() => alias(view), TypeError, "driver's mapping");
  assertThrows(() => stitch([{ source: m, offset: 0, length: PAGE }]), TypeError, "mapDevice");
  // Lowering the protection detaches the writable views but leaves the range in place.
  const before = m.address;
  m.protect("r");
  assertEquals(view.length, 0);
  assertEquals(m.address, before);
  assertEquals(m.bytes()[5], 9);
  m.advise("willneed"); // advice that drops nothing is fine
});
