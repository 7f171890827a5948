// flags: --allow-run=$DENO,strace,ln --allow-read=/tmp --allow-write=/tmp
// Issue 9, item 6: the path Deno checks is the path memkit opens. Each case
// runs one gated operation in a child with exactly the flags under test,
// under strace(1), and asserts from the kernel's side that nothing outside
// the granted paths was opened, and nothing explicitly denied was reached,
// whatever the path's shape: `..` after a symlink, `.`, repeated slashes, a
// relative path, a symlink to a denied file or to a device.
import { assert, assertEquals, assertMatch } from "@std/assert";

const fixture = new URL("./fixtures/gate.ts", import.meta.url).pathname;
const root = Deno.makeTempDirSync({ prefix: "memkit-gate-" });
globalThis.addEventListener("unload", () => Deno.removeSync(root, { recursive: true }));

// The layout: G is granted; O is outside every grant; G/x/secret is denied in
// the --deny-read cases.
const G = `${root}/granted`;
const O = `${root}/outside`;
for (const d of [G, `${G}/sub`, `${G}/a`, `${G}/x/sub`, O, `${O}/sub`]) {
  Deno.mkdirSync(d, { recursive: true });
}
Deno.writeTextFileSync(`${G}/f`, "inside the granted directory\n");
Deno.writeTextFileSync(`${O}/f`, "OUTSIDE every granted path\n");
Deno.writeTextFileSync(`${G}/x/secret`, "DENIED secret\n");
// Deno.symlinkSync wants unscoped permissions: ln(1) makes the links.
function symlink(target: string, path: string): void {
  const r = new Deno.Command("ln", { args: ["-s", target, path] }).outputSync();
  assert(r.success, `ln -s ${target} ${path}`);
}
symlink(`${O}/sub`, `${G}/link`); // to a directory outside
symlink(`${G}/x/sub`, `${G}/a/link`); // into the denied file's directory
symlink(`${G}/x/secret`, `${G}/slink`); // to the denied file
symlink(`${O}/f`, `${G}/outlink`); // to a file outside
symlink("/dev/zero", `${G}/devlink`); // to a device
symlink("/dev/shm", `${G}/shm`); // to a directory of /dev

interface Outcome {
  ok: boolean;
  patched?: Record<string, string>;
  name?: string;
  code?: string;
  message?: string;
  head?: string;
  device?: string;
}

interface Open {
  path: string;
  flags: string;
  /** Whether the call succeeded. */
  ok: boolean;
}

// What the runtime itself may open on the operation's thread (V8 reads the
// TSC frequency lazily, when it first needs a fine clock); nothing else is
// expected between the markers but memkit's own calls.
const RUNTIME = ["/sys/devices/system/cpu"];

const MARK = "(424242,";

/** Runs one operation under strace; returns its outcome and the opens its thread made. */
function traced(
  flags: string[],
  operation: string,
  target: string,
  cwd = root,
  extra: string[] = [],
): { outcome: Outcome; opens: Open[] } {
  const log = Deno.makeTempFileSync({ dir: root, suffix: ".strace" });
  const r = new Deno.Command("strace", {
    args: [
      "-f",
      "-qq",
      "-s",
      "4096",
      "-e",
      "trace=open,openat,openat2,fstat,newfstatat,statx",
      "-o",
      log,
      Deno.execPath(),
      "run",
      "--allow-ffi",
      ...flags,
      fixture,
      operation,
      target,
      ...extra,
    ],
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  const stderr = new TextDecoder().decode(r.stderr);
  assertEquals(r.signal, null, stderr);
  assertEquals(r.code, 0, stderr);
  const outcome = JSON.parse(new TextDecoder().decode(r.stdout).trim().split("\n").at(-1)!);
  // The opens of the thread that made the markers, between them.
  const lines = Deno.readTextFileSync(log).split("\n");
  Deno.removeSync(log);
  const marks = lines.flatMap((l, i) => l.includes(MARK) ? [i] : []);
  assertEquals(marks.length, 2, "the child made both marker calls");
  const tid = lines[marks[0]].split(/\s+/)[0];
  const opens: Open[] = [];
  for (let i = marks[0] + 1; i < marks[1]; i++) {
    const m = /^(\d+)\s+(?:open|openat|openat2)\((?:AT_FDCWD, |\d+, )?"((?:[^"\\]|\\.)*)", ([^,)]+)/
      .exec(lines[i]);
    if (m && m[1] === tid && !inside(m[2], RUNTIME)) {
      opens.push({ path: m[2], flags: m[3], ok: !/\) = -1 /.test(lines[i]) });
    }
  }
  return { outcome, opens };
}

/** The `--allow-read`, `--allow-write` and `--deny-*` paths among `flags`. */
function pathsOf(flags: string[], kind: "allow" | "deny"): string[] {
  return flags.flatMap((f) => {
    const m = new RegExp(`^--${kind}-(?:read|write)=(.*)$`).exec(f);
    return m ? m[1].split(",") : [];
  });
}

/** /proc/self names this process's own directory: one spelling for both. */
function canonical(path: string, pid?: string): string {
  return pid === undefined ? path : path.replace(/^\/proc\/\d+\//, "/proc/self/");
}

function inside(path: string, dirs: string[]): boolean {
  return dirs.some((d) => path === d || path.startsWith(`${d}/`));
}

/**
 * The "Done when" check: every path the operation opened (or looked up) is
 * inside a granted path, and none is inside a denied one, by name or
 * (symlinks followed) by what it resolves to.
 */
function assertOnlyGranted(flags: string[], opens: Open[]): void {
  const allowed = pathsOf(flags, "allow");
  const denied = pathsOf(flags, "deny");
  for (const { path, flags: how, ok } of opens) {
    const p = canonical(path, "self");
    assert(inside(p, allowed), `opened "${path}" (${how}), outside ${allowed.join(", ")}`);
    assert(!inside(p, denied), `opened "${path}" (${how}), which is denied`);
    if (ok && path.startsWith(root) && !how.includes("O_PATH")) {
      const real = Deno.realPathSync(path);
      assert(!inside(real, denied), `"${path}" was opened, which resolves to denied "${real}"`);
      assert(!inside(real, [O]), `"${path}" was opened, which resolves to "${real}" outside`);
    }
  }
}

/** Runs a case and checks the strace log; returns the outcome and the opens (not the lookups). */
function gated(
  flags: string[],
  operation: string,
  target: string,
  cwd?: string,
  extra?: string[],
): { outcome: Outcome; opened: string[] } {
  const { outcome, opens } = traced(flags, operation, target, cwd, extra);
  assertOnlyGranted(flags, opens);
  const opened = opens.filter((o) => !o.flags.includes("O_PATH")).map((o) => o.path);
  return { outcome, opened };
}

function assertDenied(r: { outcome: Outcome; opened: string[] }, path: string): void {
  assertEquals(r.outcome.name, "NotCapable", JSON.stringify(r.outcome));
  assertMatch(r.outcome.message!, new RegExp(`^Requires (read|write) access to "${path}"`));
  assertEquals(r.opened, [], "nothing was opened");
}

// ---- mapFile ----

const readG = [`--allow-read=${G}`];

Deno.test("mapFile() opens <granted>/link/../f as <granted>/f, never the file outside (was read)", () => {
  const r = gated(readG, "mapFile", `${G}/link/../f`);
  assertEquals(r.outcome.head, "inside the granted directory\n");
  assertEquals(r.opened, [`${G}/f`]);
});

Deno.test("mapFile() of . , repeated slashes and sub/.. opens the normalized path", () => {
  for (const shape of [`${G}/./f`, `${G}//f`, `/${G}/sub/../f`, `${G}/sub/./../f`]) {
    const r = gated(readG, "mapFile", shape);
    assertEquals(r.outcome.head, "inside the granted directory\n", shape);
    assertEquals(r.opened, [`${G}/f`], shape);
  }
});

Deno.test("mapFile() of a relative path opens it against the working directory", () => {
  const r = gated(readG, "mapFile", "f", G);
  assertEquals(r.outcome.head, "inside the granted directory\n");
  assertEquals(r.opened, [`${G}/f`]);
  const up = gated(readG, "mapFile", "../f", `${G}/sub`);
  assertEquals(up.outcome.head, "inside the granted directory\n");
  assertEquals(up.opened, [`${G}/f`]);
});

Deno.test("mapFile() of a .. that leaves the grant is refused before any lookup", () => {
  const r = gated(readG, "mapFile", `${G}/link/../../outside/f`);
  assertDenied(r, `${O}/f`);
});

Deno.test("mapFile() of ..-through-a-symlink cannot reach a --deny-read file (was read)", () => {
  const flags = [`--allow-read=${G}`, `--deny-read=${G}/x/secret`];
  // The kernel would resolve a/link/../secret to x/secret, the denied file.
  const r = gated(flags, "mapFile", `${G}/a/link/../secret`);
  assertEquals(r.outcome.code, "ENOENT");
  assertEquals(
    r.outcome.message,
    `Cannot open "${G}/a/secret": No such file or directory: "${G}/a/link/../secret" is read as ` +
      `"${G}/a/secret": ".." is resolved before any symlink, as Deno's permission check does`,
  );
  assertDenied(gated(flags, "mapFile", `${G}/x/sub/../secret`), `${G}/x/secret`);
});

Deno.test("mapFile() of a symlink to a --deny-read file is refused after the lookup, unopened", () => {
  const flags = [`--allow-read=${G}`, `--deny-read=${G}/x/secret`];
  const r = gated(flags, "mapFile", `${G}/slink`);
  assertEquals(r.outcome.name, "NotCapable");
  assertEquals(
    r.outcome.message,
    `Requires read access to "${G}/x/secret" (what "${G}/slink" resolves to), run again with ` +
      "the --allow-read flag",
  );
  assertEquals(r.opened, []);
  // Without the deny, a symlink is followed, as Deno's own file API does.
  assertEquals(gated(readG, "mapFile", `${G}/slink`).outcome.head, "DENIED secret\n");
});

Deno.test("mapFile(rw) of <granted>/link/../f writes <granted>/f, not the file outside", () => {
  const flags = [`--allow-read=${G}`, `--allow-write=${G}`];
  Deno.writeTextFileSync(`${G}/w`, "inside\n");
  Deno.writeTextFileSync(`${O}/w`, "outside\n");
  const r = gated(flags, "mapFileWrite", `${G}/link/../w`);
  assertEquals(r.outcome.head, "Wnside\n");
  assertEquals(r.opened, [`${G}/w`]);
  assertEquals(Deno.readTextFileSync(`${O}/w`), "outside\n");
  const denied = [...flags, `--deny-write=${G}/x/secret`];
  const s = gated(denied, "mapFileWrite", `${G}/slink`);
  assertEquals(s.outcome.name, "NotCapable");
  assertMatch(s.outcome.message!, /^Requires write access to ".*\/x\/secret" \(what/);
  assertEquals(Deno.readTextFileSync(`${G}/x/secret`), "DENIED secret\n");
});

// ---- PhysicalMemory.open({ device }) ----

Deno.test("PhysicalMemory.open() of /dev/zero by . , .. , // and relative shapes opens /dev/zero", () => {
  const flags = ["--allow-read=/dev/zero"];
  for (
    const [shape, cwd] of [["/dev/./zero"], ["//dev//zero"], ["/dev/../dev/zero"], ["zero", "/dev"]]
  ) {
    const r = gated(flags, "physRead", shape, cwd);
    assertEquals(r.outcome.ok, true, `${shape}: ${JSON.stringify(r.outcome)}`);
    assertEquals(r.outcome.device, "/dev/zero");
    assertEquals(r.opened, ["/dev/zero"], shape);
  }
});

Deno.test("PhysicalMemory.open() of <granted>/link/../zero is not /dev/zero (was opened)", () => {
  // A symlink to /dev/shm, then "..": the kernel would have opened /dev/zero.
  const r = gated(readG, "physRead", `${G}/shm/../zero`);
  assertEquals(r.outcome.code, "ENOENT");
  assertEquals(r.opened, []);
});

Deno.test("PhysicalMemory.open() of a symlink to a device needs the device's permission", () => {
  const r = gated(readG, "physRead", `${G}/devlink`);
  assertEquals(r.outcome.name, "NotCapable");
  assertEquals(
    r.outcome.message,
    `Requires read access to "/dev/zero" (what "${G}/devlink" resolves to), run again with ` +
      "the --allow-read flag",
  );
  assertEquals(r.opened, []);
  const both = gated([`--allow-read=${G},/dev/zero`], "physRead", `${G}/devlink`);
  assertEquals(both.outcome.ok, true);
  assertEquals(both.opened, [`${G}/devlink`]);
  const denied = gated(
    [`--allow-read=${G},/dev`, "--deny-read=/dev/zero"],
    "physRead",
    `${G}/devlink`,
  );
  assertEquals(denied.outcome.name, "NotCapable");
  assertEquals(denied.opened, []);
});

Deno.test("PhysicalMemory.open({ write }) of a symlink to a device needs write on the device", () => {
  const r = gated(
    [`--allow-read=${G},/dev/zero`, `--allow-write=${G}`],
    "physWrite",
    `${G}/devlink`,
  );
  assertEquals(r.outcome.name, "NotCapable");
  assertMatch(r.outcome.message!, /^Requires write access to "\/dev\/zero" \(what/);
  assertEquals(r.opened, []);
});

// ---- the /proc and fixed-path operations: paths built in C from a pid ----

const PROC_CASES: [string, string][] = [
  ["maps", "/proc/self/maps"],
  ["smaps", "/proc/self/smaps"],
  ["smapsRollup", "/proc/self/smaps_rollup"],
  ["pagemap", "/proc/self/pagemap"],
  ["kpageflags", "/proc/kpageflags"],
  ["kpagecount", "/proc/kpagecount"],
  ["iomem", "/proc/iomem"],
];

for (const [operation, path] of PROC_CASES) {
  Deno.test(`${operation}: opens only ${path}, and nothing without --allow-read for it`, () => {
    const granted = gated([`--allow-read=${path}`], operation, "self");
    if (granted.outcome.ok !== true) {
      // Privilege (kpageflags and iomem need root): the refusal is the kernel's.
      assert(granted.outcome.name === "MemkitError", JSON.stringify(granted.outcome));
    }
    assert(granted.opened.every((p) => canonical(p, "self") === path), granted.opened.join());
    assertDenied(gated([`--allow-read=${root}`], operation, "self"), path);
    if (path.startsWith("/proc/self/")) {
      // The own pid's spelling names the same file; a grant of one stands for both.
      const own = gated([`--allow-read=${path}`], operation, "own");
      assert(own.opened.every((p) => canonical(p, "self") === path), own.opened.join());
    }
  });
}

// ---- item 7: the gate cannot be switched off from inside the process ----

Deno.test("patching Deno.permissions.querySync and the table after load changes nothing", () => {
  const cases: [string, string, RegExp][] = [
    ["mapFile", `${O}/f`, /read access to ".*\/outside\/f"/],
    ["mapFileWrite", `${G}/f`, /write access to ".*\/granted\/f"/],
    ["physRead", "/dev/zero", /read access to "\/dev\/zero"/],
    ["maps", "self", /read access to "\/proc\/self\/maps"/],
    ["pagemap", "own", /read access to "\/proc\/\d+\/pagemap"/],
  ];
  for (const [operation, target, path] of cases) {
    const r = gated(readG, operation, target, undefined, ["patched"]);
    assertEquals(r.outcome.patched, {
      querySync: "granted", // the patch took: Deno's API now says yes to everything
      row: "TypeError",
      needs: "TypeError",
      define: "TypeError",
      need: "TypeError",
    });
    assertEquals(r.outcome.name, "NotCapable", `${operation}: ${JSON.stringify(r.outcome)}`);
    assertMatch(r.outcome.message!, path);
    assertEquals(r.opened, [], `${operation} opened something`);
  }
});
