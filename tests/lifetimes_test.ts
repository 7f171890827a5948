// flags: --allow-ffi --allow-read=/proc/self/pagemap,/dev/zero --allow-run=ls,$DENO --v8-flags=--js-immutable-arraybuffer
// Every resource class releases what it holds when it is dropped unclosed:
// a child process (with --expose-gc) opens each, drops it, collects it, and
// lists its own /proc/<pid>/fd with ls(1), memkit-independently. Pkey's key
// is freed too where the CPU has keys (the QEMU guest: pkey_guest_test.ts).
import { assert, assertEquals, assertMatch } from "@std/assert";
import { Pkey } from "../mod.ts";
import { probed } from "./fixtures/skip.ts";
import { childReport } from "./fixtures/child.ts";

const fixture = new URL("./fixtures/lifetimes_child.ts", import.meta.url).pathname;

interface Dropped {
  opened: [number, string][];
  rounds: number;
  left: [number, string][];
  mappingReads: number[] | null;
}

function drop(which: string): Dropped {
  return childReport<Dropped>([
    "--allow-ffi",
    "--allow-read=/proc/self/pagemap,/dev/zero",
    "--allow-run=ls",
    "--v8-flags=--expose-gc,--js-immutable-arraybuffer",
    fixture,
    which,
  ]);
}

function assertReleased(got: Dropped, target: RegExp): void {
  assertEquals(got.opened.length, 1, `one descriptor opened: ${JSON.stringify(got.opened)}`);
  const [[fd, path]] = got.opened;
  assertMatch(path, target);
  assert(got.rounds > 0, `fd ${fd} (${path}) still open after 20 collections`);
  assertEquals(got.left.filter(([n]) => n === fd), []);
}

Deno.test("a MemFd dropped unclosed closes its descriptor once collected", () => {
  const got = drop("memfd");
  assertReleased(got, /^\/memfd:lifetimes \(deleted\)$/);
});

Deno.test("a Pagemap dropped unclosed closes its descriptor once collected", () => {
  const got = drop("pagemap");
  assertReleased(got, /^\/proc\/\d+\/pagemap$/);
});

Deno.test("a PhysicalMemory dropped unclosed closes its descriptor; its mapping stays readable", () => {
  const got = drop("phys");
  assertReleased(got, /^\/dev\/zero$/);
  assertEquals(got.mappingReads, [0, 0, 0, 0]);
});

probed({
  name: "a Pkey dropped unfreed frees its key once collected",
  skip: !Pkey.supported &&
    "this CPU or kernel has no protection keys (no pku/ospke): the QEMU guest runs it",
  fn() {
    const r = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-ffi", "--v8-flags=--expose-gc", fixture, "pkey"],
      stdout: "piped",
    }).outputSync();
    assertEquals(r.code, 0);
    const got = JSON.parse(new TextDecoder().decode(r.stdout));
    assert(got.held !== got.first && got.rounds > 0, JSON.stringify(got));
  },
});
