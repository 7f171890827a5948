// flags: --allow-run=timeout,script,make,$DENO --allow-read=. --allow-write=/tmp
// `make run`, the README's first command, in a pseudo-terminal as a newcomer
// types it: the tour runs every section and never stops at a permission
// prompt (Deno prompts only when a terminal is attached), every line within
// 100 columns, sizes in binary units, the calls it prints the calls it made,
// the stitch, alias, ring and guard steps drawn as strips. `deno task tour`
// runs the same steps; a reduced flag set skips steps naming every missing
// flag; without the native library the tour says so once and exits 1.
import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import * as memkit from "../mod.ts";

const root = new URL("..", import.meta.url).pathname;
// Without the colours (ESC [ ... m) a terminal gets, and without its carriage returns.
const colour = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, "g");
const plain = (r: Deno.CommandOutput) =>
  (new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr))
    .replace(colour, "").replaceAll("\r\n", "\n");

/** `command` in a pseudo-terminal, from the checkout. */
function inTerminal(command: string): { code: number; out: string } {
  const r = new Deno.Command("timeout", {
    args: ["300", "script", "-qec", command, "/dev/null"],
    cwd: root,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  return { code: r.code, out: plain(r) };
}

/** The tour's sections: title -> its lines (the heading's included), wrapped lines joined. */
function sections(out: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const part of out.split("\n▸ ").slice(1)) {
    map.set(part.split("\n")[0].split("  needs")[0], part);
  }
  return map;
}

const SECTIONS = [
  "Load the native library",
  "One memfd, two addresses",
  "Stitch chunks",
  "A ring buffer mapped twice",
  "Guard pages, page protections, protection keys",
  "Seals",
  "Share a sealed memfd with a second process",
  "Where memory lives",
  "Locked means resident, not fixed",
  "Map a file",
  "POSIX shared memory",
  "Why not share by physical address",
  "Physical memory through /dev/mem",
  "Lazy views: pages copied on first touch",
  "Memory shared with a kernel driver",
];

const section = (out: string, title: string): string => {
  for (const [t, text] of sections(out)) if (t.startsWith(title)) return text;
  throw new Error(`no section "${title}" in:\n${out}`);
};

// One run shared by the checks below (the tour takes a few seconds).
let makeRun: { code: number; out: string } | undefined;
const run = () => makeRun ??= inTerminal("make --no-print-directory run");

Deno.test("make run tours every capability in a terminal without a single permission prompt", () => {
  const { code, out } = run();
  assertEquals(/Deno requests|Allow\? \[y\/n/.test(out), false, `a prompt:\n${out}`);
  assertEquals(code, 0, out);
  for (const title of SECTIONS) assertStringIncludes(out, `▸ ${title}`);
  // A step skips only for a permission missing, and make run grants them all.
  assertMatch(out, /\n16 steps ran, 0 skipped \(a permission missing\), 0 failed\n/);
});

Deno.test("make run: every line within 100 columns, make's echo of the command included", () => {
  const { out } = run();
  const long = out.split("\n").filter((line) => line.length > 100);
  assertEquals(long, [], `${long.length} lines over 100 columns`);
});

Deno.test("make run: sizes in one style, binary units (KiB, MiB, GiB), never kB or kiB", () => {
  const { out } = run();
  assertEquals(out.match(/\d (kB|kiB|MB|GB|TB)\b/g), null, out);
  const units = [...out.matchAll(/\d (\w?i?B)\b/g)].map((m) => m[1]);
  assert(units.length >= 5, `sizes printed: ${units}`);
  for (const unit of units) assertMatch(unit, /^(B|KiB|MiB|GiB|TiB)$/);
});

Deno.test("make run: the calls it prints are the calls it made", () => {
  const { out } = run();
  // The memfd is created with noexec where the kernel has MFD_NOEXEC_SEAL, and says so.
  const alias = section(out, "One memfd, two addresses");
  assertMatch(alias, /MemFd\.create\("tour", \{ size: \d+, noexec: (true|false) \}\)/);
  assertMatch(section(out, "A ring buffer"), /RingBuffer\.create\(\d+, \{ name: "tour-ring" \}\)/);
  assertMatch(section(out, "Guard pages"), /guarded\(\d+, \{ guardPages: 1 \}\)/);
  assertMatch(
    section(out, "POSIX shared memory"),
    /SharedMemory\.create\("memkit-tour", \{ size: \d+, exclusive: false \}\)/,
  );
  assertMatch(section(out, "Stitch chunks"), /\{ source: b, offset: \d+, length: \d+ \},/);
  assertMatch(
    section(out, "Where memory lives"),
    /pm\.read\(\{ start: 0x[0-9a-f]+n, pages: 4 \}\)/,
  );
  // Every function or class it names is one memkit exports (nothing it does not have yet).
  const exported = new Set(Object.keys(memkit));
  const api = memkit as unknown as Record<string, Record<string, unknown>>;
  const named = new Set<string>();
  for (const [, name, member] of out.matchAll(/(?<![\w.])([A-Za-z]\w*)(?:\.(\w+))?\(/g)) {
    if (member === undefined && /^[a-z]/.test(name)) named.add(name);
    if (/^[A-Z]/.test(name) && !["Object", "Uint8Array"].includes(name)) {
      named.add(name);
      if (member) {
        assert(
          typeof api[name] === "function" && member in api[name],
          `${name}.${member}`,
        );
      }
    }
  }
  const local = new Set(["encode", "mlock2", "process_vm_readv"]); // the kernel's and the tour's
  const unknown = [...named].filter((n) => !exported.has(n) && !local.has(n));
  assertEquals(unknown, [], out);
  // And none by a deprecated name (mod.ts exports them under a `// Deprecated` comment).
  const source = Deno.readTextFileSync(new URL("../mod.ts", import.meta.url));
  const deprecated = [...source.matchAll(/^\/\/ Deprecated[^\n]*\nexport \{([^}]*)\}/gm)]
    .flatMap(([, list]) => list.split(",").map((n) => n.trim().replace(/^type\s+/, "")));
  assert(deprecated.includes("lazyView"), `deprecated: ${deprecated}`);
  assertEquals([...named].filter((n) => deprecated.includes(n)), [], out);
});

Deno.test("make run: the stitch, alias, ring and guard steps are drawn as strips", () => {
  const { out } = run();
  const alias = section(out, "One memfd, two addresses");
  assertMatch(alias, /\n {2}rw {2}\[··\]\[wr\] {2}0x/);
  assertMatch(alias, /\n {2}ro {2}\[··\]\[wr\] {2}0x/);
  const stitch = section(out, "Stitch chunks");
  assertMatch(stitch, /\n {2}a {5}\[a0\]\[a1\]\[a2\] /);
  assertMatch(stitch, /\n {2}b {5}\[b0\]\[b1\]\[b2\] /);
  assertMatch(stitch, /\n {2}view {2}\[b1\]\[a0\]\[a1\]\[b0\] /);
  // After a write through the view, the source page shows it.
  assertMatch(stitch, /\n {2}b {5}\[b0\]\[B1\]\[b2\] /);
  assertMatch(stitch, /\n {2}alias {2}\[B1\]\[a0\]\[a1\]\[b0\] {2}read-only/);
  const ring = section(out, "A ring buffer");
  const [copies, peek] = [/\n {2}ring +\[copy 1[^\n]*/, /\n {2}ring\.peek\(\) +\[wrap\|s around\]/]
    .map((re) => re.exec(ring)?.[0] ?? "");
  assert(copies !== "" && peek !== "", ring);
  // The seam between the two copies is where the peeked view crosses it.
  assertEquals(peek.indexOf("|"), copies.indexOf("]["));
  const guard = section(out, "Guard pages");
  assertMatch(guard, /\n {2}guarded {2}\[---p\]\[rw-.\]\[---p\] /);
  assertMatch(guard, /\n {2}m {2}\[rw\]\[none\]\[rw\] /);
});

Deno.test("deno task tour runs the same steps as make run", () => {
  const { code, out } = inTerminal(`${Deno.execPath()} task tour`);
  assertEquals(/Deno requests|Allow\? \[y\/n/.test(out), false, `a prompt:\n${out}`);
  assertEquals(code, 0, out);
  assertMatch(out, /\n16 steps ran, 0 skipped \(a permission missing\), 0 failed\n/);
});

/** Flags as (kind, scope) pairs: `--allow-read=/a,/b` is two, `--allow-ffi` one with scope "". */
function flagPairs(flags: string[]): string[] {
  return flags.flatMap((f) => {
    const m = /^(--[a-z0-9-]+)(?:=(.*))?$/.exec(f)!;
    return m[2] === undefined || m[1] === "--v8-flags"
      ? [f]
      : m[2].split(",").map((x) => `${m[1]}=${x}`);
  }).sort();
}

Deno.test("tour --permissions prints what make run grants, and with those flags no step is skipped", () => {
  const out = (args: string[]) => {
    const r = new Deno.Command(Deno.execPath(), { args, cwd: root, stdin: "null", stdout: "piped" })
      .outputSync();
    assertEquals(r.code, 0, args.join(" "));
    return new TextDecoder().decode(r.stdout);
  };
  // Planning runs nothing, so it needs no permission at all.
  const flags = out(["run", "cli.ts", "tour", "--permissions"]).split("\n")[0].split(" ");
  const make = new Deno.Command("make", {
    args: ["--no-print-directory", "-n", "run", `DENO=${Deno.execPath()}`],
    cwd: root,
    stdout: "piped",
  }).outputSync();
  const command = new TextDecoder().decode(make.stdout).replaceAll("\\\n", " ");
  const granted = command.split(/\s+/).filter((w) => /^--(allow-|v8-flags)/.test(w));
  assertEquals(flagPairs(flags), flagPairs(granted));
  const tour = JSON.parse(out(["run", ...flags, "cli.ts", "tour", "--json"]));
  assertEquals([tour.skipped, tour.failed], [0, 0]);
  assertEquals(tour.steps.filter((s: { missing: string[] }) => s.missing.length > 0), []);
});

Deno.test("a step skipped for missing permissions names every flag missing, and is no failure", () => {
  const r = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-ffi", "--v8-flags=--js-immutable-arraybuffer", "cli.ts", "tour"],
    cwd: root,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  const out = plain(r);
  assertEquals(r.code, 0, out);
  const skipped = (title: string) => {
    const text = section(out, title).replace(/\s+/g, " ");
    return /skipped: run again with (.*)$/.exec(text)?.[1].trim().split(" ") ?? [];
  };
  const sock = "/tmp/memkit-tour.sock";
  assertEquals(skipped("Share a sealed memfd"), [
    `--allow-read=${sock}`,
    `--allow-write=${sock}`,
    `--allow-net=unix:${sock}`,
    `--allow-run=${Deno.execPath()}`,
  ]);
  assertEquals(skipped("Where memory lives"), [
    "--allow-read=/proc/self/maps",
    "--allow-read=/proc/self/pagemap",
  ]);
  assertEquals(skipped("Physical memory"), ["--allow-read=/dev/mem", "--allow-read=/proc/iomem"]);
  // Granted --allow-ffi, the steps that need only it ran.
  assertEquals(skipped("One memfd, two addresses"), []);
  assertStringIncludes(section(out, "One memfd, two addresses"), "MemFd.create(");
});

Deno.test("without the native library the tour says so once and exits 1", () => {
  // A copy of the sources without build/, as a fresh checkout before make build.
  const dir = Deno.makeTempDirSync({ dir: "/tmp", prefix: "memkit-tour-" });
  try {
    for (const name of ["cli.ts", "mod.ts", "deno.json", "deno.lock", "cli", "src", "ffi"]) {
      copy(`${root}${name}`, `${dir}/${name}`);
    }
    const r = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-ffi", "--allow-read", "cli.ts", "tour"],
      cwd: dir,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).outputSync();
    const out = plain(r);
    assertEquals(r.code, 1, out);
    assertEquals(out.split("Cannot load the memkit native library").length - 1, 1, out);
    assertStringIncludes(out, "the tour stops here");
    assertMatch(out, /\n0 steps ran, 0 skipped \(a permission missing\), 1 failed\n/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

function copy(from: string, to: string): void {
  if (Deno.statSync(from).isDirectory) {
    Deno.mkdirSync(to);
    for (const e of Deno.readDirSync(from)) copy(`${from}/${e.name}`, `${to}/${e.name}`);
  } else Deno.copyFileSync(from, to);
}
