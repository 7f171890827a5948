// flags: --allow-run=$DENO,cp,script,timeout --allow-read=/tmp --allow-write=/tmp
import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";

const root = new URL("..", import.meta.url).pathname;

function load(
  fixture: string,
  flags: string[],
  env: Record<string, string> = {},
): Record<string, unknown> {
  const r = new Deno.Command(Deno.execPath(), {
    args: ["run", ...flags, fixture],
    env,
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  assertEquals(r.code, 0, new TextDecoder().decode(r.stderr));
  return JSON.parse(new TextDecoder().decode(r.stdout).trim());
}

Deno.test("the loader finds the local build next to the package", () => {
  const r = load(`${root}tests/fixtures/load.ts`, ["--allow-ffi"]);
  assertEquals(r.ok, true);
  assertEquals(r.path, `${root}build/libmemkit.so`);
  assertEquals(r.pageSize, 4096);
});

Deno.test("MEMKIT_LIB comes first, and a library that is not memkit's is passed over", () => {
  // libc has none of memkit's symbols: dlopen with the symbol table fails.
  const r = load(`${root}tests/fixtures/load.ts`, ["--allow-ffi", "--allow-env=MEMKIT_LIB"], {
    MEMKIT_LIB: "/lib/x86_64-linux-gnu/libc.so.6",
  });
  assertEquals(r.ok, true);
  assertEquals(r.candidates, [
    ["MEMKIT_LIB", "/lib/x86_64-linux-gnu/libc.so.6"],
    ["local build", `${root}build/libmemkit.so`],
  ]);
  assertEquals(r.path, `${root}build/libmemkit.so`);
});

Deno.test("MEMKIT_LIB pointing at a copy of the library is used", () => {
  const dir = Deno.makeTempDirSync({ prefix: "memkit-lib-" });
  const cp = new Deno.Command("cp", { args: [`${root}build/libmemkit.so`, dir] }).outputSync();
  assert(cp.success);
  const r = load(`${root}tests/fixtures/load.ts`, ["--allow-ffi", "--allow-env=MEMKIT_LIB"], {
    MEMKIT_LIB: `${dir}/libmemkit.so`,
  });
  assertEquals(r.path, `${dir}/libmemkit.so`);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("a failed load names every path tried and the command that builds the library", () => {
  // A copy of the package without build/: nothing to load.
  const dir = Deno.makeTempDirSync({ prefix: "memkit-nolib-" });
  const cp = new Deno.Command("cp", {
    args: ["-r", `${root}mod.ts`, `${root}src`, `${root}ffi`, `${root}tests`, dir],
  }).outputSync();
  assert(cp.success);
  const r = load(`${dir}/tests/fixtures/load.ts`, ["--allow-ffi", "--allow-env=MEMKIT_LIB"], {
    MEMKIT_LIB: `${dir}/missing.so`,
  });
  assertEquals(r.ok, false);
  assertEquals(r.name, "NotFound");
  const causes = r.causes as string[];
  assertEquals(causes.length, 2, "one cause per candidate");
  assertStringIncludes(causes[0], `${dir}/missing.so`);
  const message = String(r.message);
  assertStringIncludes(message, "Cannot load the memkit native library");
  assertStringIncludes(message, `MEMKIT_LIB: ${dir}/missing.so`);
  assertStringIncludes(message, `local build: ${dir}/build/libmemkit.so`);
  assertStringIncludes(message, "make build");
  // Building on first use is offered, with every flag it needs.
  assertStringIncludes(message, "--allow-run=cc");
  assertStringIncludes(message, "--allow-write=$HOME/.cache/memkit");
  assertStringIncludes(message, "--allow-env=HOME,XDG_CACHE_HOME");
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("without --allow-env the variable counts as unset, and the message says so", () => {
  const r = load(`${root}tests/fixtures/load.ts`, ["--allow-ffi"], { MEMKIT_LIB: "/nope.so" });
  assertEquals(r.ok, true);
  assertEquals((r.candidates as string[][]).map(([origin]) => origin), ["local build"]);
});

Deno.test("without --allow-ffi loading fails with the exact flag to add", () => {
  const r = load(`${root}tests/fixtures/load.ts`, []);
  assertEquals(r.ok, false);
  assertEquals(r.name, "NotCapable");
  assertMatch(String(r.message), /run again with the --allow-ffi flag/);
});

Deno.test("in a terminal, loading never prompts for MEMKIT_LIB (queried, not read, when not granted)", () => {
  // script(1) gives the child a pseudo-terminal, where Deno prompts for any
  // permission read without a flag; the prompt would show in the output.
  const cmd = `${Deno.execPath()} run --allow-ffi ${root}tests/fixtures/load.ts`;
  const r = new Deno.Command("timeout", {
    args: ["60", "script", "-qec", cmd, "/dev/null"],
    env: { MEMKIT_LIB: "/nope.so" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  const out = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
  assertEquals(/requests|Allow\?/.test(out), false, out);
  assertEquals(r.code, 0, out);
  assertStringIncludes(out, '"ok":true');
});
