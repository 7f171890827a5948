// flags: --allow-run=$DENO,python3,cp --allow-read=/tmp --allow-write=/tmp --allow-sys=uid
// The memkit command line itself, through the real cli.ts in a child with
// exactly the flags each call needs: arguments read exactly (never through a
// JavaScript number), help and options wherever they are typed, exit codes,
// the --permissions report, and pagemap --flags runs.
import { assert, assertEquals, assertMatch, assertStringIncludes, assertThrows } from "@std/assert";
import type { PhysicalMemory, PhysicalMemoryOptions } from "../mod.ts";
import { parseAmount, parseCommandLine, parseRange } from "../cli/_args.ts";
import { PHYS } from "../cli/_commands.ts";
import { physCommand, pokeArgs } from "../cli/phys.ts";
import { type CliResult, memkitCli } from "./fixtures/cli.ts";
import { probed } from "./fixtures/skip.ts";

const memkit = (flags: string[], args: string[]): CliResult => memkitCli(flags, args);

// ---- item 8: addresses, lengths and values are exact ----

// Each of these is rounded by a trip through a JavaScript number.
const EXACT = ["0x123456789abcdef1", "0x8000000000000001", "0xffffffffffffffff"];

Deno.test("the CLI reads addresses, lengths and values exactly, as bigints", () => {
  for (const text of EXACT) {
    assertEquals(parseAmount(text, "value", false), BigInt(text));
    assertEquals(pokeArgs(["0xf0000", "64", text]).value, BigInt(text));
  }
  assertEquals(parseAmount("18446744073709551615", "value", false), 2n ** 64n - 1n);
  assertEquals(parseAmount("0x7ffffffffffff001", "address"), 0x7ffffffffffff001n);
  assertEquals(parseRange("0x7fffffffffff0001+4K"), {
    start: 0x7fffffffffff0001n,
    end: 0x7fffffffffff1001n,
  });
  // Positionals stay the strings typed (parseArgs makes numbers of them otherwise).
  const poke = parseCommandLine(PHYS, ["poke", "0xf0000", "64", "0x8000000000000001"]);
  assertEquals([poke.subcommand, poke.positionals], ["poke", [
    "0xf0000",
    "64",
    "0x8000000000000001",
  ]]);
  assertThrows(() => pokeArgs(["0xf0000", "64", "0x10000000000000000"]), RangeError);
  assertThrows(() => pokeArgs(["0xf0000", "32", "4K"]), TypeError, '"4K"');
});

/** A device that records the writes it is given, in place of /dev/mem (this host has none). */
function recorder() {
  const calls: { op: string; at: bigint | number; value?: bigint | number }[] = [];
  const opened: PhysicalMemoryOptions[] = [];
  let cell = 0n;
  const mem = {
    writeU64(at: bigint, value: bigint) {
      calls.push({ op: "writeU64", at, value });
      cell = value;
    },
    writeU32(at: bigint, value: number) {
      calls.push({ op: "writeU32", at, value });
      cell = BigInt(value);
    },
    readU64: (at: bigint) => (calls.push({ op: "readU64", at }), cell),
    readU32: (at: bigint) => (calls.push({ op: "readU32", at }), Number(cell)),
    [Symbol.dispose]() {},
  };
  const open = (o: PhysicalMemoryOptions) => {
    opened.push(o);
    return mem as unknown as PhysicalMemory;
  };
  return { calls, opened, open };
}

Deno.test("memkit phys poke hands the write call the exact bigint typed", () => {
  for (const text of EXACT) {
    const r = recorder();
    assertEquals(physCommand(["poke", "0xf0008", "64", text], { open: r.open }), 0);
    assertEquals(r.opened, [{ device: "/dev/mem", cache: "default", write: true }]);
    assertEquals(r.calls, [
      { op: "writeU64", at: 0xf0008n, value: BigInt(text) },
      { op: "readU64", at: 0xf0008n },
    ]);
  }
  const r = recorder();
  assertEquals(
    physCommand(["--device=/dev/x", "poke", "0xfee00030", "32", "0xdeadbeef"], { open: r.open }),
    0,
  );
  assertEquals(r.opened[0].device, "/dev/x");
  assertEquals(r.calls[0], { op: "writeU32", at: 0xfee00030n, value: 0xdeadbeef });
});

Deno.test("memkit phys poke echoes the exact value it did not write, up to the permission error", () => {
  for (const text of EXACT) {
    const r = memkit(["--allow-ffi", "--allow-read=/dev/mem"], [
      "phys",
      "poke",
      "0xf0000",
      "64",
      text,
    ]);
    assertEquals(r.code, 3, r.stderr);
    assertStringIncludes(r.stderr, `memkit: nothing written: ${text} (64 bits) at 0xf0000\n`);
    assertStringIncludes(r.stderr, 'Requires write access to "/dev/mem"');
  }
});

Deno.test("memkit phys poke refuses a value wider than the width, quoting it as typed", () => {
  for (
    const [bits, text] of [["64", "0x10000000000000000"], ["8", "0x100"], ["32", "4294967296"]]
  ) {
    const r = memkit([], ["phys", "poke", "0xf0000", bits, text]);
    assertEquals(r.code, 2, r.stderr);
    assertStringIncludes(r.stderr, `Cannot write "${text}" in ${bits} bits`);
    assertEquals(r.stdout, "");
  }
  const bad = memkit([], ["phys", "poke", "0xf0000", "16", "0x1g"]);
  assertEquals(bad.code, 2);
  assertStringIncludes(bad.stderr, 'Cannot read the value to write "0x1g"');
});

Deno.test("memkit phys peek passes an address on exactly, so the refusal names it exactly", () => {
  // 0x123456789abcdef8 as a JavaScript number is 1311768467463790300.
  const r = memkit(["--allow-ffi", "--allow-read=/dev/zero"], [
    "phys",
    "peek",
    "0x123456789abcdef8",
    "64",
    "--device=/dev/zero",
  ]);
  assertEquals(r.code, 2, r.stderr);
  assertStringIncludes(r.stderr, '"1311768467463790328"');
});

Deno.test("memkit pagemap takes a range's start exactly, not rounded through a number", () => {
  // As a JavaScript number, 0x7fffffffffff1001 prints as 9223372036854714000 (0x...0e90).
  const r = memkit(["--allow-ffi", "--allow-read=/proc/self/pagemap"], [
    "pagemap",
    "self",
    "0x7fffffffffff1001",
    "--json",
  ]);
  assertEquals(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assertEquals([out.start, out.end], ["0x7fffffffffff1000", "0x7fffffffffff2000"]);
});

// ---- help, global options, exit codes ----

Deno.test("memkit <command> --help prints that command's help, whichever side the flag is on", () => {
  const first: Record<string, string> = {
    maps: "memkit maps <pid|self>",
    pagemap: "memkit pagemap <pid|self>",
    phys: "memkit phys <command>",
    tour: "memkit tour",
    permissions: "memkit permissions [operation] [target]",
  };
  for (const [command, usage] of Object.entries(first)) {
    for (const args of [[command, "--help"], ["--help", command], [command, "-h"]]) {
      const r = memkit([], args);
      assertEquals(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
      assert(r.stdout.startsWith(usage), `${args.join(" ")} printed: ${r.stdout.slice(0, 80)}`);
    }
  }
});

Deno.test("memkit --help lists every exit code, 3 (a missing permission) included", () => {
  const r = memkit([], ["--help"]);
  assertEquals(r.code, 0);
  for (
    const line of [
      "0  done",
      "1  the operation failed",
      "2  bad arguments",
      "3  a permission is missing",
    ]
  ) {
    assertStringIncludes(r.stdout, line);
  }
  for (const command of ["maps", "pagemap", "phys", "tour", "permissions"]) {
    assertStringIncludes(memkit([], [command, "--help"]).stdout, "3  a permission is missing");
  }
  const nothing = memkit([], []);
  assertEquals(nothing.code, 2);
});

Deno.test("memkit's options work before the command too", () => {
  const r = memkit(["--allow-ffi", "--allow-read=/proc/self/maps"], [
    "--json",
    "maps",
    "--brief",
    "self",
  ]);
  assertEquals(r.code, 0, r.stderr);
  const entries = JSON.parse(r.stdout).mappings;
  assert(entries.some((e: { path: string }) => e.path === "[stack]"));
  const dumped = memkit(["--allow-ffi", "--allow-read=/dev/zero"], [
    "--device",
    "/dev/zero",
    "phys",
    "read",
    "0xf0000",
    "16",
  ]);
  assertEquals(dumped.code, 0, dumped.stderr);
  assertMatch(dumped.stdout, /^000f0000 {2}00 00/);
  const p = memkit([], ["--permissions", "phys", "smbios"]);
  assertEquals(p.code, 0, p.stderr);
  assertEquals(p.stdout.split("\n")[0], "--allow-ffi --allow-read=/dev/mem");
});

Deno.test("an option a command does not have is a usage error naming it", () => {
  const r = memkit([], ["maps", "self", "--jsno"]);
  assertEquals(r.code, 2);
  assertStringIncludes(r.stderr, 'Unknown option "--jsno" for memkit maps');
  const alone = memkit([], ["--json"]);
  assertEquals(alone.code, 2);
  assertStringIncludes(alone.stderr, "Missing the command");
  const unknown = memkit([], ["mpas", "self"]);
  assertEquals(unknown.code, 2);
  assertStringIncludes(unknown.stderr, 'Unknown command "mpas"');
});

Deno.test("memkit tour exits 0 when steps are only skipped, 1 when a step fails", () => {
  const skipped = memkit([], ["tour"]);
  assertEquals(skipped.code, 0, skipped.stderr);
  assertStringIncludes(skipped.stdout, "skipped: run again with --allow-ffi");
  assert(!skipped.stdout.includes("failed:"));
  // A checkout without its native library built: every step that loads it fails.
  const dir = Deno.makeTempDirSync({ prefix: "memkit-nolib-" });
  try {
    const checkout = new URL("..", import.meta.url).pathname;
    const files = ["cli.ts", "cli", "mod.ts", "src", "ffi", "deno.json", "deno.lock"];
    const cp = new Deno.Command("cp", {
      args: ["-r", ...files.map((f) => checkout + f), dir],
    }).outputSync();
    assertEquals(cp.code, 0, new TextDecoder().decode(cp.stderr));
    const out = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-ffi", "cli.ts", "tour"],
      cwd: dir,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).outputSync();
    const text = new TextDecoder().decode(out.stdout);
    assertStringIncludes(text, "failed: Cannot load the memkit native library");
    assertEquals(out.code, 1, text);
    assertMatch(text, /\d+ steps ran, \d+ skipped \(a permission missing\), [1-9]\d* failed/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

// ---- --permissions and the permissions command ----

Deno.test("--permissions prints a command to run that no longer holds --permissions", () => {
  const mem = "--allow-ffi --allow-read=/dev/mem";
  const cases: [string[], string][] = [
    [
      ["phys", "poke", "0xf0000", "32", "1", "--permissions"],
      `${mem} --allow-write=/dev/mem cli.ts phys poke 0xf0000 32 1`,
    ],
    [["phys", "--permissions", "read", "0xf0000", "64"], `${mem} cli.ts phys read 0xf0000 64`],
    [
      ["--permissions", "phys", "ranges"],
      "--allow-ffi --allow-read=/proc/iomem cli.ts phys ranges",
    ],
    [
      ["maps", "1234", "--json", "--permissions"],
      "--allow-ffi --allow-read=/proc/1234/smaps cli.ts maps 1234 --json",
    ],
    [
      ["pagemap", "1234", "0x1000+4K", "--flags", "--permissions"],
      "--allow-ffi --allow-read=/proc/1234/pagemap --allow-read=/proc/kpageflags " +
      "cli.ts pagemap 1234 0x1000+4K --flags",
    ],
  ];
  for (const [args, command] of cases) {
    const r = memkit([], args);
    assertEquals(r.code, 0, r.stderr);
    const [flags, run] = r.stdout.trimEnd().split("\n");
    assertEquals(run, `deno run ${command}`);
    assertEquals(`deno run ${flags} cli.ts`, run.slice(0, run.indexOf(" cli.ts") + 7));
  }
});

Deno.test("memkit permissions refuses a path with a comma: no deno flag can name it", () => {
  const r = memkit([], ["permissions", "mapFile", "/tmp/a,b.bin"]);
  assertEquals(r.code, 2);
  assertEquals(r.stdout, "");
  assertStringIncludes(r.stderr, '"/tmp/a,b.bin"');
  assertStringIncludes(r.stderr, "comma");
  assertStringIncludes(r.stderr, '("/tmp")');
  const phys = memkit([], ["phys", "smbios", "--device=/tmp/mem,0", "--permissions"]);
  assertEquals(phys.code, 2);
  assertStringIncludes(phys.stderr, "comma");
  assertEquals(
    memkit([], ["permissions", "mapFile", "/tmp/a.bin"]).stdout.trim(),
    "--allow-ffi --allow-read=/tmp/a.bin",
  );
  // Only the table's own operations, never an inherited key.
  assertEquals(memkit([], ["permissions", "toString"]).code, 2);
});

// ---- pagemap --flags ----

const THP = `
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
M2 = 2 << 20
base = libc.mmap(None, 2 * M2, 3, 0x22, -1, 0)  # PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS
at = (base + M2 - 1) // M2 * M2
if libc.madvise(at, M2, 14) != 0:  # MADV_HUGEPAGE
    sys.exit("madvise: errno %d" % ctypes.get_errno())
ctypes.memset(at, 1, M2)
print(hex(at), flush=True)
sys.stdin.read()
`;

/** Why a transparent huge page cannot be had here, or false. */
function noThp(): string | false {
  if (Deno.uid() !== 0) return "not root: /proc/kpageflags is readable by root only";
  const r = new Deno.Command("python3", {
    args: ["-c", "print(open('/sys/kernel/mm/transparent_hugepage/enabled').read())"],
    stdout: "piped",
    stderr: "null",
  }).outputSync();
  const mode = new TextDecoder().decode(r.stdout);
  if (r.code !== 0) return "no /sys/kernel/mm/transparent_hugepage (a kernel without THP)";
  return mode.includes("[never]") && "transparent huge pages are off (enabled is [never])";
}

probed({
  name:
    "memkit pagemap --flags splits a run where the frames' flags change (a THP's head and tails)",
  skip: noThp(),
  async fn() {
    const child = new Deno.Command("python3", {
      args: ["-c", THP],
      stdin: "piped",
      stdout: "piped",
    }).spawn();
    try {
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let line = "";
      while (!line.includes("\n")) {
        const { value, done } = await reader.read();
        if (done) break;
        line += value;
      }
      await reader.cancel();
      const at = BigInt(line.trim());
      const r = memkit(
        ["--allow-ffi", `--allow-read=/proc/${child.pid}/pagemap,/proc/kpageflags`],
        ["pagemap", String(child.pid), `0x${at.toString(16)}+2M`, "--flags", "--json"],
      );
      assertEquals(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout);
      assertEquals(out.present, 512);
      const runs = out.runs as {
        start: string;
        pages: number;
        pfn: string;
        kpageflags: string[];
      }[];
      assert(
        runs[0].kpageflags.includes("COMPOUND_HEAD"),
        `no huge page: ${JSON.stringify(runs[0])}`,
      );
      assertEquals(runs.map((x) => x.pages), [1, 511]);
      assertEquals(BigInt(runs[1].start), at + 4096n);
      assertEquals(BigInt(runs[1].pfn), BigInt(runs[0].pfn) + 1n);
      assert(runs[1].kpageflags.includes("COMPOUND_TAIL"), JSON.stringify(runs[1]));
      assert(!runs[1].kpageflags.includes("COMPOUND_HEAD"), JSON.stringify(runs[1]));
      const help = memkit([], ["pagemap", "--help"]).stdout.replace(/\s+/g, " ");
      assertStringIncludes(help, "a run is split where they change");
    } finally {
      await child.stdin.close();
      await child.status;
    }
  },
});
