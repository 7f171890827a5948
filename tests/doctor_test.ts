// flags: --allow-ffi --allow-run=$DENO,cat,sh,test,grep,setpriv,cp,cc,timeout,script --allow-read=/tmp --allow-write=/tmp --allow-sys=uid
// `memkit doctor` through the real cli.ts, each line compared with what the
// kernel says through tools nobody here wrote (cat, the shell's ulimit,
// test, grep of /proc/cpuinfo, the ioctls asked of libc directly), as root
// and as nobody (setpriv), with and without the permissions it needs.
import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { DOCTOR_CHECKS, doctorPermissions } from "../mod.ts";
import { type CliResult, memkitCli } from "./fixtures/cli.ts";
import { hasNoexecSeal, hasPagemapScan, hasProcmapQuery } from "./fixtures/kernel.ts";
import { nobodyPackage } from "./fixtures/nobody.ts";
import { lacks, probed } from "./fixtures/skip.ts";

const decoder = new TextDecoder();

/** A tool's stdout, trimmed, and whether it succeeded. */
function tool(cmd: string, args: string[]): { ok: boolean; out: string } {
  const r = new Deno.Command(cmd, { args, stdout: "piped", stderr: "null" }).outputSync();
  return { ok: r.success, out: decoder.decode(r.stdout).trim() };
}

/** Every flag doctor needs, as its own --permissions prints them. */
const FULL = doctorPermissions();

interface Line {
  mark: string;
  id: string;
  text: string;
}

/** The lines of a doctor run, by check id. */
function lines(r: CliResult): Map<string, Line> {
  const out = new Map<string, Line>();
  for (const line of r.stdout.trimEnd().split("\n")) {
    const m = /^(✓|✗|\?) (\S+) +(.*)$/.exec(line);
    if (!m) throw new Error(`Cannot read the doctor line "${line}"`);
    out.set(m[2], { mark: m[1], id: m[2], text: m[3] });
  }
  return out;
}

const doctorCli = (flags: string[], args: string[] = []) => memkitCli(flags, ["doctor", ...args]);

const isRoot = Deno.uid() === 0;
const asRoot = !isRoot && "not root: the root half of these checks expects root's view";

/** The mark the kernel's own answer calls for. */
const expect = (has: boolean) => (has ? "✓" : "✗");

probed({
  name: "memkit doctor with every flag prints one line per check, each as the kernel says",
  skip: asRoot,
  fn() {
    const r = doctorCli(FULL);
    assertEquals(r.code, 0, r.stderr);
    assertEquals(r.stderr, "");
    const got = lines(r);
    assertEquals([...got.keys()], [...DOCTOR_CHECKS]);
    assertEquals(got.get("library")!.mark, "✓");
    assertMatch(got.get("library")!.text, /build\/libmemkit\.so \(local build\), ABI \d+/);
    assertEquals(got.get("immutable-buffers")!.mark, "✓");
    // The ioctls and the memfd flag, asked of the kernel through libc.
    assertEquals(got.get("procmap-query")!.mark, expect(hasProcmapQuery()));
    assertEquals(got.get("pagemap-scan")!.mark, expect(hasPagemapScan()));
    assertEquals(got.get("memfd-noexec")!.mark, expect(hasNoexecSeal()));
    // Protection keys: the CPU's pku flag and the OS's ospke in /proc/cpuinfo.
    const pku = tool("grep", ["-qw", "pku", "/proc/cpuinfo"]).ok &&
      tool("grep", ["-qw", "ospke", "/proc/cpuinfo"]).ok;
    assertEquals(got.get("pkey")!.mark, expect(pku));
    if (!pku) assertStringIncludes(got.get("pkey")!.text, "why: pkey_alloc answers ENOSYS");
    // Root sees frames and kpageflags, and has userfaultfd's system call.
    assertEquals(got.get("pfn")!.mark, "✓");
    assertEquals(got.get("kpageflags")!.mark, "✓");
    assertEquals(got.get("userfaultfd")!.mark, "✓");
    assertStringIncludes(got.get("userfaultfd")!.text, "via syscall");
    assertEquals(got.get("userfaultfd-kernel")!.mark, "✓");
    // /dev/mem: present or not, as test -e says.
    const devmem = got.get("devmem")!;
    if (tool("test", ["-e", "/dev/mem"]).ok) {
      assert(!devmem.text.startsWith("/dev/mem is absent"), devmem.text);
    } else {
      assertEquals(devmem.mark, "✗");
      assertMatch(devmem.text, /^\/dev\/mem is absent; why: .*CONFIG_DEVMEM.*; fix: /);
    }
    const maxMapCount = tool("cat", ["/proc/sys/vm/max_map_count"]).out;
    assertEquals(got.get("max-map-count")!.mark, "✓");
    assert(got.get("max-map-count")!.text.startsWith(`${maxMapCount} mappings per process`));
    // ulimit -l counts KiB, as the line does.
    const kib = (v: string) => (v === "unlimited" ? v : `${v} KiB`);
    const soft = tool("sh", ["-c", "ulimit -l"]).out;
    const hard = tool("sh", ["-c", "ulimit -H -l"]).out;
    assertStringIncludes(
      got.get("memlock")!.text,
      `lock() may pin ${kib(soft)} (hard limit ${kib(hard)})`,
    );
  },
});

probed({
  name:
    "memkit doctor --json lists the checks, their details agreeing with cat, ulimit and lockdown",
  skip: asRoot,
  fn() {
    const r = doctorCli(FULL, ["--json"]);
    assertEquals(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assertEquals(out.schema, "memkit.doctor/1");
    const results = out.checks as {
      id: string;
      ok: boolean;
      checked: boolean;
      summary: string;
      details?: Record<string, unknown>;
    }[];
    assertEquals(results.map((c) => c.id), [...DOCTOR_CHECKS]);
    assert(results.every((c) => c.checked && typeof c.summary === "string"));
    const by = new Map(results.map((c) => [c.id, c]));
    const maxMapCount = Number(tool("cat", ["/proc/sys/vm/max_map_count"]).out);
    assertEquals(by.get("max-map-count")!.details!.maxMapCount, maxMapCount);
    const bytes = (v: string) => (v === "unlimited" ? v : Number(v) * 1024);
    assertEquals(by.get("memlock")!.details, {
      soft: bytes(tool("sh", ["-c", "ulimit -l"]).out),
      hard: bytes(tool("sh", ["-c", "ulimit -H -l"]).out),
    });
    assertEquals(by.get("userfaultfd")!.details!.via, "syscall");
    // The lockdown mode, as cat reads it, when the kernel has the file.
    const lockdown = tool("cat", ["/sys/kernel/security/lockdown"]);
    const mode = by.get("devmem")!.details!.lockdown as string;
    if (lockdown.ok) assertEquals(mode, /\[(\w+)\]/.exec(lockdown.out)![1]);
    else assertMatch(mode, /^unknown \(no \/sys\/kernel\/security\/lockdown/);
    assertEquals(by.get("devmem")!.details!.present, tool("test", ["-e", "/dev/mem"]).ok);
  },
});

Deno.test("memkit doctor without a check's permission says not checked, naming the flag", () => {
  const r = doctorCli(["--allow-ffi"]);
  assertEquals(r.code, 0, r.stderr);
  assert(!/Allow\?|prompt/i.test(r.stderr + r.stdout), r.stderr);
  const got = lines(r);
  assertEquals(got.get("kpageflags"), {
    mark: "?",
    id: "kpageflags",
    text: "not checked: needs --allow-read=/proc/kpageflags; " +
      "fix: run again with --allow-read=/proc/kpageflags",
  });
  assertStringIncludes(got.get("devmem")!.text, "not checked: needs --allow-read=/dev/mem");
  assertStringIncludes(
    got.get("max-map-count")!.text,
    "not checked: needs --allow-read=/proc/sys/vm/max_map_count",
  );
  // Without the V8 flag, immutable buffers are missing, with the flag as the fix.
  assertEquals(got.get("immutable-buffers")!.mark, "✗");
  assertStringIncludes(got.get("immutable-buffers")!.text, "--v8-flags=--js-immutable-arraybuffer");
  // What needs only --allow-ffi is checked.
  assertEquals(got.get("library")!.mark, "✓");
  assert(got.get("memlock")!.mark !== "?");
  // Asked for, a check not checked for a permission exits 3.
  const asked = doctorCli(["--allow-ffi"], ["kpageflags"]);
  assertEquals(asked.code, 3, asked.stderr);
  // Without --allow-ffi nothing native is checked, and nothing prompts.
  const bare = doctorCli([]);
  assertEquals(bare.code, 3, bare.stderr);
  assertMatch(bare.stdout, /^\? library +not checked: needs --allow-ffi/);
  assertMatch(bare.stdout, /\? memlock +not checked: needs --allow-ffi;/);
});

Deno.test("memkit doctor <check> exits 1 when an asked-for capability is missing, 0 when present", () => {
  const all = lines(doctorCli(FULL));
  const failing = [...all.values()].find((l) => l.mark === "✗");
  const passing = [...all.values()].find((l) => l.mark === "✓")!;
  const ok = doctorCli(FULL, [passing.id]);
  assertEquals(ok.code, 0, ok.stderr);
  assertEquals([...lines(ok).keys()], [passing.id]);
  if (failing !== undefined) {
    const bad = doctorCli(FULL, [failing.id, passing.id]);
    assertEquals(bad.code, 1, bad.stderr);
    assertEquals([...lines(bad).keys()].sort(), [failing.id, passing.id].sort());
  }
  // Names select groups: pagemap is the scan and the frames; uffd both userfaultfd checks.
  assertEquals([...lines(doctorCli(FULL, ["pagemap", "uffd"])).keys()], [
    "pagemap-scan",
    "pfn",
    "userfaultfd",
    "userfaultfd-kernel",
  ]);
  const unknown = doctorCli(FULL, ["pagemapp"]);
  assertEquals(unknown.code, 2);
  assertStringIncludes(unknown.stderr, 'Unknown check "pagemapp": expected one of library');
});

Deno.test("memkit doctor --permissions prints the flags that check everything", () => {
  const r = doctorCli([], ["--permissions"]);
  assertEquals(r.code, 0, r.stderr);
  const [flags, command] = r.stdout.trim().split("\n");
  assertEquals(flags, FULL.join(" "));
  assertStringIncludes(flags, "--allow-read=/proc/self/maps,/proc/self/pagemap,/proc/kpageflags");
  assert(command.endsWith("cli.ts doctor"), command);
  const one = doctorCli([], ["kpageflags", "--permissions"]);
  assertEquals(one.stdout.split("\n")[0], "--allow-ffi --allow-read=/proc/kpageflags");
});

probed({
  name:
    "memkit doctor in a terminal never prompts for what it was not granted, and colours its marks",
  skip: lacks("script", ["-V"]),
  fn() {
    const checkout = new URL("..", import.meta.url).pathname;
    const { denoDir } = JSON.parse(tool(Deno.execPath(), ["info", "--json"]).out);
    // A pseudo-terminal (script), where Deno would prompt; no NO_COLOR in its environment.
    const r = new Deno.Command("timeout", {
      args: [
        "120",
        "script",
        "-qec",
        `${Deno.execPath()} run --allow-ffi cli.ts doctor`,
        "/dev/null",
      ],
      cwd: checkout,
      clearEnv: true,
      env: { DENO_DIR: denoDir, PATH: "/usr/bin:/bin", TERM: "xterm" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).outputSync();
    const out = decoder.decode(r.stdout);
    assertEquals(r.code, 0, out + decoder.decode(r.stderr));
    assert(!/Allow\?|requests/.test(out), out);
    assertStringIncludes(out, "\x1b[32m✓\x1b[39m"); // green on a terminal
    assertStringIncludes(out, "\x1b[33m?\x1b[39m"); // not checked: yellow
    assertStringIncludes(out, "not checked: needs --allow-read=/proc/kpageflags");
  },
});

/** A copy of the package without its build, and a library of another ABI beside it. */
function unbuiltCopy(): {
  dir: string;
  run(env: Record<string, string>, args?: string[]): CliResult;
} {
  const checkout = new URL("..", import.meta.url).pathname;
  const dir = Deno.makeTempDirSync({ prefix: "memkit-doctor-unbuilt-" });
  const pieces = ["mod.ts", "cli.ts", "deno.json", "deno.lock", "src", "ffi", "cli"];
  if (!tool("cp", ["-r", ...pieces.map((p) => checkout + p), dir]).ok) {
    throw new Error("Cannot copy the package");
  }
  // A library with memkit's two core symbols and another ABI version.
  Deno.writeTextFileSync(
    `${dir}/other_abi.c`,
    "long mk_core_abi_version(void) { return 999; }\nlong mk_core_page_size(void) { return 4096; }\n",
  );
  if (!tool("cc", ["-shared", "-fPIC", "-o", `${dir}/other_abi.so`, `${dir}/other_abi.c`]).ok) {
    throw new Error("Cannot build the library of another ABI");
  }
  return {
    dir,
    run(env, args = []) {
      const r = new Deno.Command(Deno.execPath(), {
        args: ["run", `--config=${dir}/deno.json`, ...FULL, `${dir}/cli.ts`, "doctor", ...args],
        cwd: dir,
        // An empty build cache of its own: nothing built earlier on this machine is found.
        env: { NO_COLOR: "1", XDG_CACHE_HOME: `${dir}/cache`, ...env },
        stdout: "piped",
        stderr: "piped",
      }).outputSync();
      assertEquals(r.signal, null);
      return { code: r.code, stdout: decoder.decode(r.stdout), stderr: decoder.decode(r.stderr) };
    },
  };
}

Deno.test("memkit doctor without a library exits 1 naming each path tried; MEMKIT_LIB is followed", () => {
  const copy = unbuiltCopy();
  try {
    const r = copy.run({});
    assertEquals(r.code, 1, r.stderr);
    const got = lines(r);
    const library = got.get("library")!;
    assertEquals(library.mark, "✗");
    assertStringIncludes(library.text, "the native library does not load; why: Cannot load");
    assertStringIncludes(library.text, `local build: ${copy.dir}/build/libmemkit.so`);
    // The fix names what building on first use into the build cache needs.
    const cache = `${copy.dir}/cache/memkit`;
    assertStringIncludes(
      library.text,
      "fix: grant --allow-env=HOME,XDG_CACHE_HOME --allow-run=cc ",
    );
    assertStringIncludes(library.text, `--allow-write=${cache} to build it on first use`);
    assertStringIncludes(library.text, "or build it with `make build`");
    // --json says where the cache is and what building needs now.
    const json = JSON.parse(copy.run({}, ["library", "--json"]).stdout);
    const details = json.checks[0].details;
    assertEquals(details.cache, cache);
    assertEquals(details.buildNeeds, [
      "--allow-run=cc",
      `--allow-read=${cache},${copy.dir}/ffi/_sources.json`,
      `--allow-write=${cache}`,
    ]);
    // What needs the library waits for it; what does not is checked.
    assertEquals(got.get("memlock")!, {
      mark: "?",
      id: "memlock",
      text: "not checked: the native library does not load; " +
        "fix: build it with `make build`, or set MEMKIT_LIB (see the library check)",
    });
    assertEquals(got.get("immutable-buffers")!.mark, "✓");
    assertEquals(copy.run({}, ["memlock"]).code, 1);
    // A library of another ABI is refused, saying both versions.
    const other = copy.run({ MEMKIT_LIB: `${copy.dir}/other_abi.so` });
    assertEquals(other.code, 1, other.stderr);
    assertStringIncludes(
      lines(other).get("library")!.text,
      `MEMKIT_LIB: ${copy.dir}/other_abi.so (ABI version 999, this module needs`,
    );
    // The checkout's own build, through MEMKIT_LIB.
    const lib = new URL("../build/libmemkit.so", import.meta.url).pathname;
    const via = copy.run({ MEMKIT_LIB: lib });
    assertEquals(via.code, 0, via.stderr);
    assertStringIncludes(lines(via).get("library")!.text, `${lib} (MEMKIT_LIB), ABI `);
  } finally {
    Deno.removeSync(copy.dir, { recursive: true });
  }
});

// ---- as nobody ----

const nobody = nobodyPackage("memkit-nobody-doctor-");

/** cli.ts and its imports in nobody's copy: the CLI, its config and the npm cache it uses. */
function prepareCli(): void {
  const checkout = new URL("..", import.meta.url).pathname;
  const info = JSON.parse(tool(Deno.execPath(), ["info", "--json"]).out) as { npmCache: string };
  const copies = [
    [
      "-r",
      `${checkout}cli.ts`,
      `${checkout}cli`,
      `${checkout}deno.json`,
      `${checkout}deno.lock`,
      nobody.root,
    ],
    ["-r", info.npmCache, `${nobody.dir}/deno/`],
  ];
  Deno.mkdirSync(`${nobody.dir}/deno`, { recursive: true });
  for (const args of copies) {
    if (!tool("cp", args).ok) throw new Error(`Cannot copy ${args.join(" ")} for nobody`);
  }
  // nobody's Deno writes its caches there.
  const open = (path: string) => {
    Deno.chmodSync(path, Deno.statSync(path).isDirectory ? 0o777 : 0o666);
    if (Deno.statSync(path).isDirectory) {
      for (const e of Deno.readDirSync(path)) open(`${path}/${e.name}`);
    }
  };
  open(`${nobody.dir}/deno`);
}

/** `deno run <flags> cli.ts doctor <args>` as nobody. */
function doctorAsNobody(flags: string[], args: string[] = []): CliResult {
  const r = new Deno.Command("setpriv", {
    args: [
      "--reuid=65534",
      "--regid=65534",
      "--clear-groups",
      nobody.deno,
      "run",
      `--config=${nobody.root}deno.json`,
      ...flags,
      `${nobody.root}cli.ts`,
      "doctor",
      ...args,
    ],
    cwd: nobody.dir,
    env: { DENO_DIR: `${nobody.dir}/deno`, HOME: nobody.dir, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  assertEquals(r.signal, null);
  return { code: r.code, stdout: decoder.decode(r.stdout), stderr: decoder.decode(r.stderr) };
}

probed({
  name: "memkit doctor as nobody shows frames and kpageflags missing, and why userfaultfd is",
  skip: nobody.unable,
  fn() {
    prepareCli();
    const r = doctorAsNobody(FULL);
    assertEquals(r.code, 0, r.stderr);
    const got = lines(r);
    assertEquals([...got.keys()], [...DOCTOR_CHECKS]);
    const pfn = got.get("pfn")!;
    assertEquals(pfn.mark, "✗");
    assertStringIncludes(pfn.text, "why: this process lacks CAP_SYS_ADMIN");
    assertStringIncludes(pfn.text, "fix: run as root");
    const kpage = got.get("kpageflags")!;
    assertEquals(kpage.mark, "✗");
    assertStringIncludes(kpage.text, "EACCES");
    // Kernel-mode userfaultfd: the sysctl as cat reads it, the device as test sees it for nobody.
    const sysctl = tool("cat", ["/proc/sys/vm/unprivileged_userfaultfd"]).out;
    const device = tool("setpriv", [
      "--reuid=65534",
      "--regid=65534",
      "--clear-groups",
      "sh",
      "-c",
      "test -r /dev/userfaultfd && test -w /dev/userfaultfd",
    ]).ok;
    const kernel = got.get("userfaultfd-kernel")!;
    if (sysctl === "0" && !device) {
      assertEquals(kernel.mark, "✗");
      assertStringIncludes(kernel.text, "vm.unprivileged_userfaultfd is 0");
      assertStringIncludes(kernel.text, "fix: sysctl -w vm.unprivileged_userfaultfd=1");
      // The user-mode-only descriptor still makes lazy views.
      assertStringIncludes(got.get("userfaultfd")!.text, "via user-mode-only");
    } else {
      assertEquals(kernel.mark, "✓", kernel.text);
    }
    // The memlock limit nobody inherits is the one the shell reports as nobody.
    const soft = tool("setpriv", [
      "--reuid=65534",
      "--regid=65534",
      "--clear-groups",
      "sh",
      "-c",
      "ulimit -l",
    ]).out;
    assertStringIncludes(
      got.get("memlock")!.text,
      `lock() may pin ${soft === "unlimited" ? soft : `${soft} KiB`}`,
    );
    // Asked for, the missing frames exit 1.
    const asked = doctorAsNobody(FULL, ["pfn"]);
    assertEquals(asked.code, 1, asked.stderr);
  },
});
