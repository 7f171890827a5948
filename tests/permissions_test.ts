// flags: --allow-run=$DENO,strace --allow-read=/tmp,README.md --allow-write=/tmp
// mapFile() is the permission gate's proving ground: each case runs a child
// with exactly the flags under test, and strace(1) shows whether the native
// side ever opened the file.
import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { permissionFlags, permissionTable } from "../mod.ts";

const fixture = new URL("./fixtures/map_file.ts", import.meta.url).pathname;
const dir = Deno.makeTempDirSync({ prefix: "memkit-perm-" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
const file = `${dir}/data.txt`;
Deno.writeTextFileSync(file, "hello from a mapped file\n");

interface Outcome {
  ok: boolean;
  name?: string;
  code?: string;
  message?: string;
  head?: string;
  protect?: string;
  length?: number;
}

function child(flags: string[], args: string[], trace?: string): Outcome {
  const deno = [Deno.execPath(), "run", "--allow-ffi", ...flags, fixture, ...args];
  const [cmd, ...rest] = trace
    ? [
      "strace",
      "-f",
      "-qq",
      "-e",
      "trace=open,openat,openat2,stat,lstat,newfstatat,statx,access,faccessat2,readlink",
      "-o",
      trace,
      ...deno,
    ]
    : deno;
  const r = new Deno.Command(cmd, { args: rest, stdout: "piped", stderr: "piped" }).outputSync();
  const stderr = new TextDecoder().decode(r.stderr);
  assertEquals(r.signal, null, stderr);
  assertEquals(r.code, 0, stderr);
  return JSON.parse(new TextDecoder().decode(r.stdout).trim().split("\n").at(-1)!);
}

function opensOf(trace: string, path: string): string[] {
  return Deno.readTextFileSync(trace).split("\n").filter((l) => l.includes(`"${path}"`));
}

Deno.test("mapFile() without --allow-read throws NotCapable and never opens or stats the file", () => {
  const trace = `${dir}/denied.trace`;
  const r = child([], [file, "r"], trace);
  assertEquals(r.ok, false);
  assertEquals(r.name, "NotCapable");
  assertEquals(
    r.message,
    `Requires read access to "${file}", run again with the --allow-read flag`,
  );
  assertEquals(opensOf(trace, file), [], "the file was opened despite the missing permission");
});

Deno.test("mapFile() with --allow-read for the path opens and maps it", () => {
  const trace = `${dir}/granted.trace`;
  const r = child([`--allow-read=${file}`], [file, "r"], trace);
  assertEquals(r.ok, true);
  assertEquals(r.head, "hello from a mapped file\n");
  assertEquals(r.length, 25);
  // The positive control: strace does see memkit's own lookup (O_PATH, which
  // opens nothing) and open (O_NOCTTY is memkit's) of the checked path.
  const opens = opensOf(trace, file).filter((l) => l.includes("open"));
  assertEquals(opens.length, 2, opens.join("\n"));
  assertMatch(opens[0], /O_PATH/);
  assertMatch(opens[1], /O_RDONLY.*O_NOCTTY/);
});

Deno.test("mapFile() with --allow-read for another path is still refused", () => {
  const r = child([`--allow-read=${dir}/other.txt`], [file, "r"]);
  assertEquals(r.name, "NotCapable");
});

Deno.test("mapFile() with --allow-read for the directory is granted, as Deno's own API would", () => {
  const r = child([`--allow-read=${dir}`], [file, "r"]);
  assertEquals(r.ok, true);
});

Deno.test("a read-only file mapping cannot be protected to rw: the file was opened read-only", () => {
  const r = child([`--allow-read=${file}`], [file, "r"]);
  assertEquals(r.protect, "EACCES");
});

Deno.test("mapFile(rw) needs --allow-write too, and is refused before the open", () => {
  const trace = `${dir}/rw-denied.trace`;
  const r = child([`--allow-read=${file}`], [file, "rw", "HELLO"], trace);
  assertEquals(r.name, "NotCapable");
  assertEquals(
    r.message,
    `Requires write access to "${file}", run again with the --allow-write flag`,
  );
  assertEquals(opensOf(trace, file), []);
  assertEquals(Deno.readTextFileSync(file), "hello from a mapped file\n");
});

Deno.test("mapFile(rw) with both flags writes through to the file", () => {
  const copy = `${dir}/rw.txt`;
  Deno.writeTextFileSync(copy, "hello from a mapped file\n");
  const r = child([`--allow-read=${copy}`, `--allow-write=${copy}`], [copy, "rw", "HELLO"]);
  assertEquals(r.ok, true);
  assertEquals(r.head, "HELLO from a mapped file\n");
  assertEquals(Deno.readTextFileSync(copy), "HELLO from a mapped file\n");
});

Deno.test("mapFile() reports a missing file, a directory and an empty file clearly", () => {
  const missing = child([`--allow-read=${dir}`], [`${dir}/nope`, "r"]);
  assertEquals(missing.code, "ENOENT");
  assertEquals(missing.message, `Cannot open "${dir}/nope": No such file or directory`);
  const directory = child([`--allow-read=${dir}`], [dir, "r"]);
  assertEquals(directory.code, "ENODEV");
  assertStringIncludes(directory.message!, "not a regular file");
  Deno.writeTextFileSync(`${dir}/empty`, "");
  const empty = child([`--allow-read=${dir}`], [`${dir}/empty`, "r"]);
  assertEquals(empty.name, "RangeError");
  assertStringIncludes(empty.message!, "empty");
});

Deno.test("without --allow-ffi memkit says which flag to add", () => {
  const r = new Deno.Command(Deno.execPath(), {
    args: ["run", `--allow-read=${file}`, fixture, file, "r"],
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  const out = JSON.parse(new TextDecoder().decode(r.stdout).trim());
  assertEquals(out.name, "NotCapable");
  assertStringIncludes(out.message, "--allow-ffi");
});

Deno.test("the permission table names the flags DESIGN.md promises", () => {
  assertEquals(permissionFlags("mapFile", "/x"), ["--allow-ffi", "--allow-read=/x"]);
  assertEquals(permissionFlags("mapFileWrite", "/x"), [
    "--allow-ffi",
    "--allow-read=/x",
    "--allow-write=/x",
  ]);
  assertEquals(permissionFlags("pagemap", "42"), ["--allow-ffi", "--allow-read=/proc/42/pagemap"]);
  assertEquals(permissionFlags("physWrite", "/dev/mem"), [
    "--allow-ffi",
    "--allow-read=/dev/mem",
    "--allow-write=/dev/mem",
  ]);
  assertEquals(permissionFlags("shmCreate", "ring"), [
    "--allow-ffi",
    "--allow-read=/dev/shm/ring",
    "--allow-write=/dev/shm/ring",
  ]);
  for (const [op, rule] of Object.entries(permissionTable)) {
    assert(rule.summary.length > 0, op);
  }
});

Deno.test("the README's permission table lists every operation's flags", () => {
  const readme = Deno.readTextFileSync(new URL("../README.md", import.meta.url));
  for (const op of Object.keys(permissionTable)) {
    assertStringIncludes(readme, `\`${op}\``, `README lacks the operation ${op}`);
  }
});
