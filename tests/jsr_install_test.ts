// flags: --allow-run=$DENO,sh --allow-net=127.0.0.1 --allow-read=.,/tmp --allow-write=/tmp
// The JSR install path, as a user who has never seen the repository meets it: the package as
// `deno publish --dry-run` stages it, served over HTTP by a local server standing in for the
// registry (`jsr:` specifiers cannot be served locally; an http import of the same files is the
// stand-in), imported from a fresh folder with an empty DENO_DIR and HOME.
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { render } from "../ffi/gen_sources.ts";

const root = new URL("..", import.meta.url).pathname;
const deno = Deno.execPath();
const config = JSON.parse(Deno.readTextFileSync(`${root}deno.json`));
const version: string = config.version;
const PREFIX = `/@memkit/memkit/${version}/`;
const decode = (b: Uint8Array) => new TextDecoder().decode(b);

/** The files `deno publish --dry-run` would publish, relative to the root. */
async function publishedFiles(): Promise<string[]> {
  const r = await new Deno.Command(deno, {
    args: ["publish", "--dry-run", "--allow-dirty"],
    cwd: root,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = decode(r.stdout) + decode(r.stderr);
  assert(r.success, out);
  return [...out.matchAll(/^\s+file:\/\/(\S+) \(/gm)].map((m) =>
    decodeURIComponent(m[1]).slice(root.length)
  );
}

/** Copies the published files into `dir`, bare specifiers rewritten by the import map as JSR does. */
function stage(files: string[], dir: string): void {
  const imports: Record<string, string> = config.imports;
  for (const f of files) {
    const to = `${dir}${PREFIX}${f}`;
    Deno.mkdirSync(to.slice(0, to.lastIndexOf("/")), { recursive: true });
    let text = Deno.readTextFileSync(`${root}${f}`);
    if (f.endsWith(".ts")) {
      for (const [k, v] of Object.entries(imports)) {
        text = text.replaceAll(`from "${k}"`, `from "${v}"`);
      }
    }
    Deno.writeTextFileSync(to, text);
  }
}

function serve(dir: string): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const path = decodeURIComponent(new URL(req.url).pathname);
    if (path.includes("..")) return new Response("bad path", { status: 400 });
    try {
      const body = Deno.readFileSync(`${dir}${path}`);
      const type = path.endsWith(".ts")
        ? "application/typescript"
        : path.endsWith(".json")
        ? "application/json"
        : "text/plain";
      return new Response(body, { headers: { "content-type": type } });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
}

const USER_SCRIPT = (url: string) => `
import { libraryPath, MemFd } from "${url}";
const fd = MemFd.create("jsr-user", { size: 4096 });
const a = fd.map({ access: "rw" });
const b = fd.map({ access: "rw" });
a.bytes().set(new TextEncoder().encode("hello"));
const back = new TextDecoder().decode(b.bytes().subarray(0, 5));
a.close();
b.close();
fd.close();
console.log(JSON.stringify({ path: libraryPath(), back }));
`;

Deno.test("ffi/_sources.json is in step with cbits/ (else run `deno task sources`)", async () => {
  assertEquals(Deno.readTextFileSync(`${root}ffi/_sources.json`), await render());
});

Deno.test("deno publish ships what the package needs, and no tests, benchmarks or builds", async () => {
  const files = await publishedFiles();
  for (const f of ["mod.ts", "cli.ts", "ffi/loader.ts", "ffi/_build.ts", "ffi/_sources.json"]) {
    assert(files.includes(f), `${f} is published`);
  }
  assert(files.some((f) => f.startsWith("src/")) && files.some((f) => f.startsWith("cli/")));
  assert(files.includes("cbits/memkit.h"));
  for (const f of files) {
    assert(!/^(tests|bench|build|\.tools|examples)\//.test(f), `${f} is not published`);
  }
});

Deno.test("from the published files over HTTP: built on first use, then cached; installed CLI says memkit", async () => {
  const tmp = Deno.makeTempDirSync({ prefix: "memkit-jsr-" });
  const server = serve(`${tmp}/registry`);
  try {
    stage(await publishedFiles(), `${tmp}/registry`);
    const host = `127.0.0.1:${server.addr.port}`;
    const url = `http://${host}${PREFIX}mod.ts`;
    Deno.mkdirSync(`${tmp}/user`);
    Deno.writeTextFileSync(`${tmp}/user/main.ts`, USER_SCRIPT(url));
    // A `cc` first on PATH that records each call, then runs the real one.
    Deno.mkdirSync(`${tmp}/bin`);
    Deno.writeTextFileSync(
      `${tmp}/bin/cc`,
      `#!/bin/sh\necho "$@" >> ${tmp}/cc.log\nexec /usr/bin/cc "$@"\n`,
      { mode: 0o755 },
    );
    const ccCalls = () => {
      try {
        return Deno.readTextFileSync(`${tmp}/cc.log`).trim().split("\n").length;
      } catch {
        return 0;
      }
    };
    const run = async (home: string, flags: string[]) => {
      Deno.mkdirSync(home, { recursive: true });
      const r = await new Deno.Command(deno, {
        args: ["run", `--allow-import=${host}`, "--allow-ffi", ...flags, "main.ts"],
        cwd: `${tmp}/user`,
        clearEnv: true,
        env: {
          HOME: home,
          DENO_DIR: `${tmp}/deno_dir`,
          PATH: `${tmp}/bin:/usr/local/bin:/usr/bin:/bin`,
          NO_COLOR: "1",
        },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      return { code: r.code, out: decode(r.stdout), err: decode(r.stderr) };
    };
    const home = `${tmp}/home`;
    const cache = `${home}/.cache/memkit`;
    const flags = [
      "--allow-env=HOME,XDG_CACHE_HOME",
      "--allow-run=cc",
      `--allow-read=${cache}`,
      `--allow-write=${cache}`,
    ];

    // First run: no library anywhere, so it is built into the cache, once.
    const first = await run(home, flags);
    assertEquals(first.code, 0, first.err);
    const got = JSON.parse(first.out.trim());
    assertEquals(got.back, "hello");
    assert(got.path.startsWith(`${cache}/${version}-`), got.path);
    assertEquals(ccCalls(), 1);
    assertEquals([...Deno.readDirSync(got.path.slice(0, got.path.lastIndexOf("/")))].length, 1);

    // Second run: the cached library, no compiler run; reading it needs no more than --allow-env.
    const second = await run(home, ["--allow-env=HOME,XDG_CACHE_HOME"]);
    assertEquals(second.code, 0, second.err);
    assertEquals(JSON.parse(second.out.trim()).path, got.path);
    assertEquals(ccCalls(), 1);

    // A new user without --allow-run: the error names every flag building needs, and MEMKIT_LIB.
    const other = `${tmp}/home2`;
    const denied = await run(other, ["--allow-env=HOME,XDG_CACHE_HOME"]);
    assert(denied.code !== 0);
    assertStringIncludes(denied.err, "Cannot load the memkit native library");
    assertStringIncludes(denied.err, "missing: --allow-run=cc");
    assertStringIncludes(denied.err, `--allow-write=${other}/.cache/memkit`);
    assertStringIncludes(denied.err, "MEMKIT_LIB");
    assertEquals(ccCalls(), 1);

    // Two first runs at once: each builds in its own temporary directory and renames the
    // library into place, so both load a whole library.
    const racing = `${tmp}/home3`;
    const raceFlags = flags.map((f) => f.replaceAll(cache, `${racing}/.cache/memkit`));
    const [r1, r2] = await Promise.all([run(racing, raceFlags), run(racing, raceFlags)]);
    assertEquals([r1.code, r2.code], [0, 0], r1.err + r2.err);
    assertEquals(JSON.parse(r1.out.trim()).path, JSON.parse(r2.out.trim()).path);
    assertEquals(JSON.parse(r1.out.trim()).back, "hello");
    const keyDir = JSON.parse(r1.out.trim()).path.replace(/\/libmemkit\.so$/, "");
    assertEquals([...Deno.readDirSync(keyDir)].map((e) => e.name), ["libmemkit.so"]);

    // The CLI, installed with `deno install -g` from the package: --permissions says `memkit …`.
    const bin = `${tmp}/root/bin`;
    // The CLI's @std imports are npm packages: fetched from the npm registry, through this
    // machine's TLS proxy if it has one (its CA is in the system store).
    const env = {
      HOME: home,
      DENO_DIR: `${tmp}/deno_dir`,
      PATH: `${deno.slice(0, deno.lastIndexOf("/"))}:/usr/bin:/bin`,
      NO_COLOR: "1",
      DENO_TLS_CA_STORE: "mozilla,system",
    };
    const install = await new Deno.Command(deno, {
      args: [
        "install",
        "-g",
        "--root",
        `${tmp}/root`,
        "-n",
        "memkit",
        `--allow-import=${host}`,
        "--allow-ffi",
        "--allow-read=/proc/self/maps",
        `http://${host}${PREFIX}cli.ts`,
      ],
      cwd: `${tmp}/user`,
      clearEnv: true,
      env,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert(install.success, decode(install.stderr));
    const perms = await new Deno.Command("sh", {
      args: [`${bin}/memkit`, "maps", "self", "--permissions"],
      clearEnv: true,
      env,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(perms.code, 0, decode(perms.stderr));
    const lines = decode(perms.stdout).trim().split("\n");
    assertEquals(lines.length, 2);
    assertEquals(lines[1], "memkit maps self");
  } finally {
    await server.shutdown();
    Deno.removeSync(tmp, { recursive: true });
  }
});
