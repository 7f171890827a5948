// flags: --allow-run=$DENO,strace --allow-read=/tmp --allow-write=/tmp --allow-sys=uid
// The permission gate of maps, smaps, pagemap and kpageflags: each case runs
// a child with exactly the flags under test; strace(1) shows whether the
// native side opened the /proc file at all.
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { permissionFlags } from "../mod.ts";

const fixture = new URL("./fixtures/introspect.ts", import.meta.url).pathname;
const dir = Deno.makeTempDirSync({ prefix: "memkit-introspect-perm-" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
const root = Deno.uid() === 0;

interface Outcome {
  ok: boolean;
  value?: unknown;
  name?: string;
  code?: string;
  message?: string;
}

function child(flags: string[], args: string[], trace?: string): Outcome {
  const deno = [Deno.execPath(), "run", ...flags, fixture, ...args];
  const [cmd, ...rest] = trace
    ? ["strace", "-f", "-qq", "-e", "trace=open,openat,openat2", "-o", trace, ...deno]
    : deno;
  const r = new Deno.Command(cmd, { args: rest, stdout: "piped", stderr: "piped" }).outputSync();
  const stderr = new TextDecoder().decode(r.stderr);
  assertEquals(r.code, 0, stderr);
  return JSON.parse(new TextDecoder().decode(r.stdout).trim().split("\n").at(-1)!);
}

/** memkit's opens of a path: Deno opens /proc/self/maps itself, but never with O_NOCTTY. */
function opens(trace: string, path: string): string[] {
  return Deno.readTextFileSync(trace).split("\n").filter((l) =>
    l.includes(`"${path}"`) && l.includes("O_NOCTTY")
  );
}

Deno.test('readMaps("self") needs --allow-read=/proc/self/maps, and without it never opens the file', () => {
  const denied = `${dir}/maps-denied.trace`;
  const r = child(["--allow-ffi"], ["maps"], denied);
  assertEquals(r.name, "NotCapable");
  assertEquals(
    r.message,
    'Requires read access to "/proc/self/maps", run again with the --allow-read flag',
  );
  assertEquals(opens(denied, "/proc/self/maps"), []);
  const granted = `${dir}/maps-granted.trace`;
  const ok = child(["--allow-ffi", "--allow-read=/proc/self/maps"], ["maps"], granted);
  assertEquals(ok.ok, true);
  assert((ok.value as number) > 10);
  // The positive control: strace does see memkit's own open.
  assertEquals(opens(granted, "/proc/self/maps").length, 1);
});

Deno.test("for this process's own pid, /proc/self/maps and /proc/<pid>/maps are the same grant", () => {
  assertEquals(child(["--allow-ffi", "--allow-read=/proc/self/maps"], ["maps", "own"]).ok, true);
  assertEquals(child(["--allow-ffi", "--allow-read=/proc/self/maps"], ["find"]).value, "rw-s");
  assertEquals(child(["--allow-ffi", "--allow-read=/proc/self/maps"], ["find", "own"]).ok, true);
});

Deno.test("an explicit deny of either form of this process's path wins over a grant of the other", () => {
  const flags = ["--allow-ffi", "--allow-read=/proc", "--deny-read=/proc/self/maps"];
  assertEquals(child(flags, ["maps"]).name, "NotCapable");
  assertEquals(child(flags, ["maps", "own"]).name, "NotCapable");
  const pagemap = ["--allow-ffi", "--allow-read=/proc", "--deny-read=/proc/self/pagemap"];
  assertEquals(child(pagemap, ["pagemap"]).name, "NotCapable");
});

Deno.test("another pid needs its own path: /proc/self/maps does not grant /proc/1/maps", () => {
  const r = child(["--allow-ffi", "--allow-read=/proc/self/maps"], ["maps", "1"]);
  assertEquals(r.name, "NotCapable");
  assertStringIncludes(r.message!, '"/proc/1/maps"');
});

Deno.test("smaps and smaps_rollup need their own files, not maps", () => {
  const smaps = child(["--allow-ffi", "--allow-read=/proc/self/maps"], ["smaps"]);
  assertStringIncludes(smaps.message!, '"/proc/self/smaps"');
  assertEquals(child(["--allow-ffi", "--allow-read=/proc/self/smaps"], ["smaps"]).ok, true);
  const rollup = child(["--allow-ffi", "--allow-read=/proc/self/smaps"], ["rollup"]);
  assertStringIncludes(rollup.message!, '"/proc/self/smaps_rollup"');
  assertEquals(child(["--allow-ffi", "--allow-read=/proc/self/smaps_rollup"], ["rollup"]).ok, true);
});

Deno.test('Pagemap.open("self").translate() works with only --allow-ffi --allow-read=/proc/self/pagemap', () => {
  const r = child(["--allow-ffi", "--allow-read=/proc/self/pagemap"], ["pagemap"]);
  assertEquals(r.ok, true, r.message);
  const v = r.value as Record<string, unknown>;
  assertEquals(v.present, true);
  if (root) {
    assertEquals(v.pfnVisible, true);
    assertEquals(BigInt(v.phys as string), BigInt(v.frame as number) * 4096n + 12n);
  }
  const denied = `${dir}/pagemap-denied.trace`;
  const no = child(["--allow-ffi", "--allow-read=/proc/self/maps"], ["pagemap"], denied);
  assertEquals(no.name, "NotCapable");
  assertStringIncludes(no.message!, '"/proc/self/pagemap"');
  assertEquals(opens(denied, "/proc/self/pagemap"), []);
});

Deno.test("kpageflags needs --allow-read=/proc/kpageflags", () => {
  const no = child(["--allow-ffi"], ["kpageflags"]);
  assertEquals(no.name, "NotCapable");
  assertStringIncludes(no.message!, '"/proc/kpageflags"');
  const yes = child(["--allow-ffi", "--allow-read=/proc/kpageflags"], ["kpageflags"]);
  assertEquals(yes.ok, root, yes.message);
});

Deno.test("the permission table names the introspection flags", () => {
  assertEquals(permissionFlags("maps", "self"), ["--allow-ffi", "--allow-read=/proc/self/maps"]);
  assertEquals(permissionFlags("smapsRollup", "42"), [
    "--allow-ffi",
    "--allow-read=/proc/42/smaps_rollup",
  ]);
  assertEquals(permissionFlags("kpagecount"), ["--allow-ffi", "--allow-read=/proc/kpagecount"]);
});
