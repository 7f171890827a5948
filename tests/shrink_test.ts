// flags: --allow-run=$DENO --allow-read=/tmp,mod.ts,src,ffi,build,tests --allow-write=/tmp
// Issue 9, item 4: resize() asks the kernel whether any mapping of this
// process reaches past the new size, not the calling memkit's bookkeeping.
// Each case maps a memfd in a way that bookkeeping cannot see, in a child,
// then shrinks it and touches the last page: before the fix, SIGBUS.
import { assertEquals, assertMatch } from "@std/assert";

const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const fixture = `${root}/tests/fixtures/shrink.ts`;

interface Outcome {
  resized: { ok: boolean; code?: string; message?: string };
  value: number;
  size: number;
}

function child(args: string[], read: string[] = []): Outcome {
  const r = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-ffi",
      `--allow-read=${["/proc/self/fd", root, ...read].join(",")}`,
      "--v8-flags=--js-immutable-arraybuffer",
      fixture,
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  const stderr = new TextDecoder().decode(r.stderr);
  assertEquals(r.signal, null, `the child died of ${r.signal}: ${stderr}`);
  assertEquals(r.code, 0, stderr);
  return JSON.parse(new TextDecoder().decode(r.stdout).trim().split("\n").at(-1)!);
}

function assertRefused(r: Outcome, name: string): void {
  assertEquals(r.resized.ok, false);
  assertEquals(r.resized.code, "EBUSY");
  assertMatch(
    r.resized.message!,
    new RegExp(
      `^Cannot resize "memfd:shrink-${name}": Device or resource busy: the mapping at ` +
        "0x[0-9a-f]+-0x[0-9a-f]+ reaches byte 16384 of it, so size 4096 would make it " +
        "fault \\(SIGBUS\\); close that mapping first$",
    ),
  );
  assertEquals(r.value, 42, "the last page still reads what was written");
  assertEquals(r.size, 16384, "the refused resize left the size");
}

Deno.test("resize() refuses to shrink under memkit's own mapping, naming its address", () => {
  assertRefused(child(["own"]), "own");
});

Deno.test("resize() refuses to shrink under a mapFile() of /proc/self/fd/N (was SIGBUS)", () => {
  assertRefused(child(["mapfile"]), "mapfile");
});

Deno.test("resize() refuses to shrink under an alias() made in a Worker (was SIGBUS)", () => {
  assertRefused(child(["worker"]), "worker");
});

Deno.test("resize() refuses to shrink under an alias() by a second copy of memkit (was SIGBUS)", () => {
  // A second copy of the package, as two versions in one dependency tree.
  const copy = Deno.makeTempDirSync({ prefix: "memkit-copy-" });
  try {
    for (const dir of ["src", "ffi"]) {
      Deno.mkdirSync(`${copy}/${dir}`);
      for (const e of Deno.readDirSync(`${root}/${dir}`)) {
        if (e.isFile) Deno.copyFileSync(`${root}/${dir}/${e.name}`, `${copy}/${dir}/${e.name}`);
      }
    }
    Deno.copyFileSync(`${root}/mod.ts`, `${copy}/mod.ts`);
    Deno.mkdirSync(`${copy}/build`);
    Deno.copyFileSync(`${root}/build/libmemkit.so`, `${copy}/build/libmemkit.so`);
    assertRefused(child(["second-copy", copy], [copy]), "second-copy");
  } finally {
    Deno.removeSync(copy, { recursive: true });
  }
});
