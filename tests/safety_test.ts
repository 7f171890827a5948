// flags: --allow-run=$DENO
// Each scenario runs in a child process that SIGSEGV or SIGBUS would kill if
// memkit's safety mechanisms failed; the child reports what it saw as JSON.
import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";

const fixture = new URL("./fixtures/safety.ts", import.meta.url).pathname;
const IMMUTABLE = "--v8-flags=--js-immutable-arraybuffer,--expose-gc";

function child(scenario: string, v8 = IMMUTABLE): Record<string, string | number | boolean> {
  const r = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-ffi", "--allow-run=cat", v8, fixture, scenario],
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  const stdout = new TextDecoder().decode(r.stdout);
  const stderr = new TextDecoder().decode(r.stderr);
  assertEquals(r.signal, null, `"${scenario}" was killed by ${r.signal}:\n${stderr}`);
  assertEquals(r.code, 0, `"${scenario}" exited ${r.code}:\n${stdout}\n${stderr}`);
  const report = JSON.parse(stdout.trim().split("\n").at(-1)!);
  assertEquals(report.survived, scenario);
  return report;
}

Deno.test("close() detaches writable views: a stale view reads undefined, no crash", () => {
  const r = child("stale-writable-after-close");
  assertEquals(r.read, undefined);
  assertEquals(r.length, 0);
  assertEquals(r.word, undefined);
  assertEquals(r.afterWrite, undefined);
  assertStringIncludes(String(r.fill), "throws:TypeError");
  assertStringIncludes(String(r.bytes), "throws:BadResource");
  assertEquals(r.memfd, 7, "the memfd keeps what was written before close()");
});

Deno.test("close() of a read-only mapping leaves zeros under stale views and frees the pages", () => {
  const r = child("stale-readonly-after-close");
  assertEquals(r.before, 0x5a);
  assertEquals(r.after, 0);
  assertEquals(r.allZero, true);
  assertStringIncludes(String(r.write), "throws:TypeError");
  assertMatch(String(r.mapsBefore), / r--s .*\/memfd:s2/);
  // Same range, now private zero pages (writable only by native code, which
  // an immutable view cannot stop: see tests/native_ops_test.ts).
  assertMatch(String(r.mapsAfter), /^[0-9a-f]+-[0-9a-f]+ rw-p 00000000 00:00 0 /);
  assertEquals(String(r.mapsAfter).split(" ")[0], String(r.mapsBefore).split(" ")[0]);
  assertEquals(r.memfd, 0x5a, "the memfd itself is untouched");
});

Deno.test("every way of writing to a read-only view throws a TypeError", () => {
  const r = child("readonly-writes-throw");
  for (
    const key of ["index", "set", "fill", "dataView", "view", "write", "copyWithin", "atomics"]
  ) {
    assertStringIncludes(String(r[key]), "throws:TypeError", key);
  }
  assertEquals(r.value, 0);
});

Deno.test("protect() detaches writable views before lowering access and refuses none while read-only views live", () => {
  const r = child("protect-lowering-detaches");
  assertEquals(r.staleRead, undefined);
  assertEquals(r.staleLength, 0);
  assertEquals(r.readonly, 11);
  assertStringIncludes(String(r.readonlyWrite), "throws:TypeError");
  assertStringIncludes(String(r.none), "throws:MemkitError:EBUSY");
  assertEquals(r.readonlyFollows, 13, "an old read-only view still shows new writes");
  assertMatch(String(r.maps), / rw-s .*\/memfd:s4/);
});

Deno.test('protect("none") is allowed once the read-only views are collected', () => {
  const r = child("protect-none-after-views-collected");
  assertStringIncludes(String(r.refused), "throws:MemkitError:EBUSY");
  assertEquals(r.allowed, "value:undefined");
  assertEquals(r.stale, undefined);
  assertEquals(r.staleLength, 0);
  assertStringIncludes(
    String(r.bytes),
    'throws:TypeError:Cannot view the mapping: the mapping of "memfd:s5" has protection "none"',
  );
  assertStringIncludes(String(r.read), "throws:TypeError");
  assertMatch(String(r.maps), / ---s .*\/memfd:s5/, "the kernel shows PROT_NONE");
});

Deno.test("a view's buffer refuses transfer(), and a transfer list is noticed and kept safe", () => {
  const r = child("transfer-refused-and-clone-noticed");
  assertStringIncludes(
    String(r.transfer),
    "throws:TypeError:Cannot transfer the buffer of a memkit view",
  );
  assertStringIncludes(String(r.fixed), "throws:TypeError");
  assertEquals(r.stillAttached, 21);
  assertEquals(r.moved, 21);
  assertStringIncludes(String(r.protect), "throws:MemkitError:EBUSY");
  assertMatch(String(r.maps), /^[0-9a-f]+-[0-9a-f]+ rw-p 00000000 00:00 0 /);
  assertEquals(r.afterClose, 0);
  assertEquals(r.write, 9);
  assertEquals(r.memfd, "21,0", "the memfd keeps its data and never sees the later write");
});

Deno.test("resize() refuses a shrink that would leave a mapped page past the end", () => {
  const r = child("resize-refused");
  assertStringIncludes(String(r.shrink), "throws:MemkitError:EBUSY");
  assertEquals(r.last, 1);
  assertEquals(r.size, 8192);
});

Deno.test("without --js-immutable-arraybuffer a read-only view is refused, naming the flag and read()", () => {
  const r = child("no-immutable-flag", "--v8-flags=--expose-gc");
  assertStringIncludes(String(r.bytes), "throws:TypeError");
  assertStringIncludes(String(r.bytes), "--v8-flags=--js-immutable-arraybuffer");
  assertStringIncludes(String(r.bytes), "read()");
  assertEquals(r.read, "0,0,0,3");
  assertEquals(r.rwStillWorks, 3);
});

Deno.test("garbage collection keeps a mapping whose view is reachable and unmaps it after", () => {
  const r = child("gc-keeps-reachable-views");
  assertMatch(String(r.mapped), / rw-s .*\/memfd:s8/);
  assertEquals(r.value, 42);
  assertEquals(r.memfd, 43);
  assert(!String(r.released).includes("memfd:s8"), `still mapped: ${r.released}`);
});

Deno.test("garbage collection unmaps a mapping nothing reaches", () => {
  const r = child("gc-releases-unreachable-mappings");
  assertMatch(String(r.before), /\/memfd:s9/);
  assert(!String(r.after).includes("memfd:s9"), `still mapped: ${r.after}`);
});

Deno.test("the zero placeholder of a closed read-only mapping is quarantined once its last view is collected, and released after later closes", () => {
  const r = child("gc-releases-placeholder");
  assertMatch(String(r.placeholder), /^[0-9a-f]+-[0-9a-f]+ rw-p 00000000 00:00 0 /);
  assertEquals(r.value, 0);
  assertEquals(r.quarantinedAfterGc, true);
  assertEquals(r.quarantinedAfterCloses, false);
  assert(
    r.released !== r.placeholder || r.onFreeList === true,
    `placeholder still there, and not on the free list: ${r.released}`,
  );
});

Deno.test("a buffer moved by a transfer list survives its mapping's collection: scrubbed, not unmapped", () => {
  const r = child("transfer-list-then-gc");
  assertMatch(
    String(r.after),
    / rw-p 00000000 00:00 0 /,
    "private zero pages, no longer the memfd",
  );
  assertEquals(r.value, 0);
  assertEquals(r.memfd, 0);
});
