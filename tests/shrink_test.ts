// flags: --allow-run=$DENO,mount,umount --allow-read=/tmp,mod.ts,src,ffi,build,tests --allow-write=/tmp
// The two ways a shared file mapping faults (SIGBUS), each in a child whose
// death by a signal fails the test.
// Issue 9, item 4: resize() asks the kernel whether any mapping of this
// process reaches past the new size, not the calling memkit's bookkeeping.
// Each case maps a memfd in a way that bookkeeping cannot see, then shrinks
// it and touches the last page.
// Issue 9, item 5: mapFile(rw) of a sparse file on a full filesystem
// reserves the holes' blocks up front (ENOSPC), instead of faulting at the
// first hole the filesystem cannot back.
import { assertEquals, assertMatch } from "@std/assert";
import { childReport } from "./fixtures/child.ts";

const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const fixture = `${root}/tests/fixtures/shrink.ts`;
const sparseFixture = `${root}/tests/fixtures/sparse.ts`;

interface Outcome {
  resized: { ok: boolean; code?: string; message?: string };
  value: number;
  size: number;
}

function child(args: string[], read: string[] = []): Outcome {
  return childReport<Outcome>([
    "--allow-ffi",
    `--allow-read=${["/proc/self/fd", root, ...read].join(",")}`,
    "--v8-flags=--js-immutable-arraybuffer",
    fixture,
    ...args,
  ]);
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

/** Mounts a tmpfs of `size` at a new directory; undefined where mount(8) is refused (not root). */
function smallTmpfs(size: string): string | undefined {
  const dir = Deno.makeTempDirSync({ prefix: "memkit-small-" });
  const r = new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", `size=${size}`, "memkit-test", dir],
    stderr: "piped",
  }).outputSync();
  if (r.success) return dir;
  Deno.removeSync(dir);
  return undefined;
}

/** Unmounts and removes `dir`; idempotent. */
function unmount(dir: string): void {
  new Deno.Command("umount", { args: [dir], stderr: "null" }).outputSync();
  try {
    Deno.removeSync(dir);
  } catch {
    // already removed
  }
}

function sparseChild(path: string): Record<string, unknown> {
  return childReport([
    "--allow-ffi",
    `--allow-read=${root},${path}`,
    `--allow-write=${path}`,
    sparseFixture,
    path,
  ]);
}

// Mounting a small tmpfs needs root: where mount(8) is refused, the case is
// ignored, and its name says why.
const small = smallTmpfs("1m");
globalThis.addEventListener("unload", () => small && unmount(small));

Deno.test({
  name: "mapFile(rw) of a sparse file on a full tmpfs is ENOSPC up front (was SIGBUS)" +
    (small === undefined ? " [needs root to mount a 1 MiB tmpfs]" : ""),
  ignore: small === undefined,
  fn() {
    const mnt = small!;
    try {
      const path = `${mnt}/holes`;
      using f = Deno.openSync(path, { write: true, create: true });
      f.truncateSync(4 << 20); // 4 MiB of holes on a 1 MiB filesystem
      const r = sparseChild(path);
      assertEquals(r.ok, false);
      assertEquals(r.code, "ENOSPC");
      assertEquals(
        r.message,
        `Cannot reserve blocks of "${path}": No space left on device: a writable mapping of ` +
          "its holes would fault (SIGBUS) once the filesystem is full, so memkit reserves " +
          'them first; free space, or map it with access "r"',
      );
      assertEquals(Deno.statSync(path).size, 4 << 20, "the refusal left the size");
      // What fits is reserved and written in full.
      f.truncateSync(512 << 10);
      assertEquals(sparseChild(path), { ok: true, length: 512 << 10 });
    } finally {
      unmount(mnt);
    }
  },
});
