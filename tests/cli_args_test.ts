// flags: --allow-run=$DENO,script
// memkit's one argument layer (issue 16, point 3): the declaration of every
// command read by one parser, and through the real cli.ts in a child (each
// run with exactly the flags it needs): unknown options and surplus
// arguments are usage errors with a did-you-mean, on stderr, exit code 2;
// help for every command both ways; --version; colour only on a terminal,
// never with NO_COLOR, --color=always|never; --permissions never coloured.
import { assert, assertEquals, assertMatch, assertStringIncludes, assertThrows } from "@std/assert";
import meta from "../deno.json" with { type: "json" };
import {
  didYouMean,
  editDistance,
  formatHelp,
  parseCommandLine,
  UsageError,
  usageLine,
} from "../cli/_args.ts";
import { MAPS, PAGEMAP, PHYS, SHM, SPECS, TOUR } from "../cli/_commands.ts";

const checkout = new URL("..", import.meta.url).pathname;
const ESC = String.fromCharCode(27);
/** An SGR escape sequence (colour, bold, dim). */
const SGR = new RegExp(`${ESC}\\[[0-9;]*m`);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

interface RunOptions {
  /** The deno flags (default none). */
  flags?: string[];
  /** NO_COLOR's value in the child: "" counts as unset (the suite sets it to 1). */
  noColor?: string;
  /** Under a pseudo-terminal (`script`): stdout is a terminal; its output and stderr mixed. */
  tty?: boolean;
}

/** `deno run <flags> cli.ts <args>` in a child. */
function memkit(args: string[], options: RunOptions = {}): Run {
  const deno = [Deno.execPath(), "run", "--no-prompt", ...(options.flags ?? []), "cli.ts", ...args];
  const quoted = deno.map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(" ");
  const [cmd, ...rest] = options.tty
    ? ["script", "-qec", `${quoted}; echo "[exit $?]"`, "/dev/null"]
    : deno;
  const r = new Deno.Command(cmd, {
    args: rest,
    cwd: checkout,
    env: { NO_COLOR: options.noColor ?? "" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  const d = new TextDecoder();
  const stdout = d.decode(r.stdout);
  if (!options.tty) return { code: r.code, stdout, stderr: d.decode(r.stderr) };
  const exit = /\[exit (\d+)\]\s*$/.exec(stdout);
  if (exit === null) throw new Error(`no exit status from script: ${stdout}`);
  return { code: Number(exit[1]), stdout: stdout.slice(0, exit.index), stderr: "" };
}

/** A usage error: exit code 2, nothing on stdout, the message and the hint at the help on stderr. */
function assertUsage(r: Run, ...includes: string[]): void {
  assertEquals(r.code, 2, `exit code: ${r.stderr}${r.stdout}`);
  assertEquals(r.stdout, "", "a usage error prints nothing on stdout");
  assertMatch(r.stderr, /^memkit: /);
  assertMatch(r.stderr, /Run memkit .*--help/);
  for (const text of includes) assertStringIncludes(r.stderr, text);
}

// ---- the parser, on the commands' own declarations ----

Deno.test("the layer refuses an unknown option, naming it, with the closest one it has", () => {
  for (
    const [args, typed, guess] of [
      [["self", "--jsn"], "--jsn", "--json"],
      [["--breif", "self"], "--breif", "--brief"],
      [["self", "--permisions"], "--permisions", "--permissions"],
      [["self", "--colour=never"], "--colour", "--color"],
    ]
  ) {
    const e = assertThrows(() => parseCommandLine(MAPS, args as string[]), UsageError);
    assertStringIncludes(e.message, `Unknown option "${typed}" for memkit maps`);
    assertStringIncludes(e.message, `did you mean ${guess}?`);
  }
  const far = assertThrows(() => parseCommandLine(MAPS, ["self", "--zzzzzz"]), UsageError);
  assert(!far.message.includes("did you mean"), far.message);
  // A negative number is no option: the message says how to pass one.
  assertStringIncludes(
    assertThrows(() => parseCommandLine(MAPS, ["-3"]), UsageError).message,
    "goes after --",
  );
});

Deno.test("the layer refuses surplus and missing arguments, and a flag's wrong value", () => {
  assertStringIncludes(
    assertThrows(() => parseCommandLine(PAGEMAP, ["self", "0+4K", "extra"]), UsageError).message,
    'Unexpected argument "extra": memkit pagemap takes only <pid|self> <start>',
  );
  // A flag typed without its dashes: the surplus word is what was meant.
  assertStringIncludes(
    assertThrows(() => parseCommandLine(PAGEMAP, ["self", "0+4K", "json"]), UsageError).message,
    "did you mean --json?",
  );
  assertStringIncludes(
    assertThrows(() => parseCommandLine(TOUR, ["now"]), UsageError).message,
    "memkit tour takes no arguments",
  );
  assertStringIncludes(
    assertThrows(() => parseCommandLine(PAGEMAP, ["self"]), UsageError).message,
    "Missing <start>[-end|+length]",
  );
  assertStringIncludes(
    assertThrows(() => parseCommandLine(MAPS, ["self", "--json=yes"]), UsageError).message,
    '"--json=yes": --json takes no value',
  );
  assertStringIncludes(
    assertThrows(() => parseCommandLine(PHYS, ["read", "0", "--device"]), UsageError).message,
    "Missing the value of --device",
  );
  assertStringIncludes(
    assertThrows(() => parseCommandLine(PHYS, ["read", "0", "--cache=uncahced"]), UsageError)
      .message,
    'Cannot use --cache "uncahced": expected default or uncached: did you mean uncached?',
  );
  assertStringIncludes(
    assertThrows(() => parseCommandLine(PHYS, ["raed", "0"]), UsageError).message,
    'Unknown command "raed" for memkit phys: expected read, peek, poke, smbios or ranges: ' +
      "did you mean read?",
  );
  assertStringIncludes(
    assertThrows(() => parseCommandLine(SHM, ["ls", "--hex"]), UsageError).message,
    'Cannot use "--hex" with memkit shm ls: it is an option of memkit shm cat',
  );
  assertStringIncludes(
    assertThrows(
      () => parseCommandLine({ ...TOUR, json: "no: for people only" }, ["--json"]),
      UsageError,
    ).message,
    "memkit tour has no JSON form (for people only)",
  );
});

Deno.test("the layer keeps positionals as typed, takes values both ways, and lets -- pass dashes", () => {
  const a = parseCommandLine(PHYS, [
    "--device",
    "/dev/zero",
    "poke",
    "0x8000000000000001",
    "64",
    "1",
  ]);
  assertEquals([a.subcommand, a.positionals, a.value("device")], [
    "poke",
    ["0x8000000000000001", "64", "1"],
    "/dev/zero",
  ]);
  assertEquals(parseCommandLine(PHYS, ["ranges"]).value("device"), "/dev/mem", "its default");
  assertEquals(
    parseCommandLine(PHYS, ["read", "--cache=uncached", "0"]).value("cache"),
    "uncached",
  );
  assertEquals(parseCommandLine(SHM, ["cat", "--", "-odd"]).positionals, ["-odd"]);
  // --help wins over every other mistake on the line.
  assert(parseCommandLine(MAPS, ["--jsn", "a", "b", "--help"]).has("help"));
  assert(parseCommandLine(PHYS, ["-h"]).has("help"));
});

Deno.test("did-you-mean: the closest candidate within the edits a typo makes, or none", () => {
  assertEquals(editDistance("maps", "maps"), 0);
  assertEquals(editDistance("mpas", "maps"), 1, "two neighbours swapped are one edit");
  assertEquals(editDistance("pagmap", "pagemap"), 1);
  assertEquals(editDistance("", "abc"), 3);
  const commands = ["tour", "permissions", "maps", "pagemap", "phys", "shm", "help"];
  assertEquals(didYouMean("mpas", commands), "maps");
  assertEquals(didYouMean("pagemaps", commands), "pagemap");
  assertEquals(didYouMean("permission", commands), "permissions");
  assertEquals(didYouMean("perm", commands), "permissions", "a unique prefix");
  assertEquals(didYouMean("xyz", commands), undefined);
  assertEquals(didYouMean("p", commands), undefined, "one letter suggests nothing");
});

Deno.test("every command's help, from its declaration: usage, options, examples, exit codes", () => {
  for (const spec of Object.values(SPECS)) {
    const help = formatHelp(spec);
    assert(help.startsWith(usageLine(spec)), spec.name);
    for (
      const flag of [
        ...(spec.flags ?? []),
        ...(spec.subcommands ?? []).flatMap((s) => s.flags ?? []),
      ]
    ) {
      assertStringIncludes(help, `--${flag.name}`, `${spec.name} --${flag.name}`);
    }
    for (const option of ["--json", "--permissions", "--color=WHEN", "-h, --help"]) {
      assertStringIncludes(help, option, `${spec.name}: ${option}`);
    }
    assert(spec.examples.length > 0, `${spec.name} has an example`);
    for (const [example] of spec.examples) assertStringIncludes(help, `  memkit ${example}\n`);
    for (
      const code of ["0  done", "1  the operation failed", "2  bad arguments", "3  a permission"]
    ) {
      assertStringIncludes(help, code, spec.name);
    }
    for (const line of help.split("\n")) assert(line.length <= 100, `${spec.name}: ${line}`);
    // Each example parses against the declaration it illustrates.
    for (const [example] of spec.examples) {
      const [name, ...args] = example.split(" ");
      assertEquals(name, spec.name);
      parseCommandLine(spec, args);
    }
  }
});

// ---- through cli.ts (issue 16's defects, reproduced) ----

Deno.test("memkit maps PID --jsn is a usage error with a did-you-mean, not the table", () => {
  const flags = ["--allow-ffi", "--allow-read=/proc/self/smaps"];
  const r = memkit(["maps", "self", "--jsn"], { flags });
  assertUsage(r, 'Unknown option "--jsn" for memkit maps: did you mean --json?');
  assertUsage(memkit(["--jsno", "maps", "self"], { flags }), "did you mean --json?");
});

Deno.test("a surplus argument is a usage error: memkit maps self extra", () => {
  const flags = ["--allow-ffi", "--allow-read=/proc/self/smaps"];
  assertUsage(memkit(["maps", "self", "extra"], { flags }), '"extra"', "takes only <pid|self>");
  assertUsage(memkit(["maps", "self", "json"], { flags }), "did you mean --json?");
  assertUsage(
    memkit(["pagemap", "self", "0x1000+4K", "more"], { flags: ["--allow-ffi"] }),
    '"more"',
  );
  assertUsage(memkit(["tour", "now"]), '"now"', "memkit tour takes no arguments");
  assertUsage(memkit(["permissions", "maps", "self", "x"]), '"x"');
  assertUsage(
    memkit(["phys", "ranges", "extra"]),
    '"extra"',
    "memkit phys ranges takes no arguments",
  );
  assertUsage(memkit(["shm", "rm", "/a", "/b"]), '"/b"');
});

Deno.test("memkit pagemap self 0x1000-0x10 is a usage error naming the range, as is an empty one", () => {
  const flags = ["--allow-ffi", "--allow-read=/proc/self/pagemap"];
  for (const range of ["0x1000-0x10", "0x1000-0x1000", "0x1000+0"]) {
    const r = memkit(["pagemap", "self", range], { flags });
    assertEquals([r.code, r.stdout], [2, ""], r.stderr);
    assertStringIncludes(
      r.stderr,
      `Cannot use the range "${range}": its end is not after its start`,
    );
    assertEquals(memkit(["pagemap", "self", range, "--permissions"], { flags }).code, 2);
  }
});

Deno.test("memkit --version prints deno.json's version, with no permission at all", () => {
  for (const args of [["--version"], ["maps", "--version"], ["--version", "--color=never"]]) {
    const r = memkit(args);
    assertEquals([r.code, r.stdout, r.stderr], [0, `memkit ${meta.version}\n`, ""], args.join(" "));
  }
  assertMatch(meta.version, /^\d+\.\d+\.\d+/);
});

Deno.test("memkit help <command> and memkit <command> --help print the same help, exit 0", () => {
  for (const [name, spec] of Object.entries(SPECS)) {
    const help = memkit(["help", name]);
    assertEquals([help.code, help.stderr], [0, ""], name);
    assertEquals(help.stdout, formatHelp(spec) + "\n");
    for (const args of [[name, "--help"], ["--help", name], [name, "-h"]]) {
      assertEquals(memkit(args).stdout, help.stdout, args.join(" "));
    }
  }
  const top = memkit(["help"]);
  assertEquals([top.code, top.stdout], [0, memkit(["--help"]).stdout]);
  assertUsage(memkit(["help", "mpas"]), 'Unknown command "mpas"', "did you mean maps?");
  assertUsage(memkit(["help", "maps", "extra"]), '"extra"');
});

Deno.test("memkit --help lists the commands, the exit codes and the environment it reads", () => {
  const r = memkit(["--help"]);
  assertEquals([r.code, r.stderr], [0, ""]);
  for (const name of Object.keys(SPECS)) assertMatch(r.stdout, new RegExp(`^  ${name} +\\S`, "m"));
  for (
    const text of [
      "0  done",
      "1  the operation failed",
      "2  bad arguments",
      "3  a permission is missing",
      "memkit tour exits 1 when a step fails",
      "MEMKIT_LIB",
      "--allow-env=MEMKIT_LIB",
      "XDG_CACHE_HOME, HOME",
      "--allow-env=HOME,XDG_CACHE_HOME",
      "NO_COLOR",
      "--version",
      "--color=WHEN",
    ]
  ) assertStringIncludes(r.stdout, text);
});

Deno.test("usage goes to stderr with exit code 2: no command, an unknown one, a bad option", () => {
  const bare = memkit([]);
  assertEquals([bare.code, bare.stdout], [2, ""]);
  assertStringIncludes(bare.stderr, "Usage:");
  assertUsage(memkit(["mpas", "self"]), 'Unknown command "mpas"', "did you mean maps?");
  assertUsage(memkit(["--json"]), "Missing the command");
  assertUsage(memkit(["--verison"]), 'Unknown option "--verison": did you mean --version?');
  assertUsage(memkit(["maps", "self", "--verison"]), "did you mean --version?");
  assertUsage(memkit(["phys"]), "Missing the command of memkit phys");
  assertUsage(memkit(["shm"]), "Missing the command of memkit shm");
  assertUsage(memkit(["phys", "raed", "0"]), "did you mean read?");
  assertUsage(memkit(["--color=alwyas", "permissions"]), "did you mean always?");
  assertUsage(memkit(["maps"]), "Missing <pid|self>");
});

Deno.test("every command takes --json and --permissions, or says why it has no such form", () => {
  const perms: [string[], string][] = [
    [["permissions", "--permissions"], ""],
    [
      ["maps", "self", "--permissions"],
      "--allow-ffi --allow-read=/proc/self/smaps,/proc/self/cmdline",
    ],
    [["pagemap", "self", "0+4K", "--permissions"], "--allow-ffi --allow-read=/proc/self/pagemap"],
    [["phys", "ranges", "--permissions"], "--allow-ffi --allow-read=/proc/iomem"],
    [["shm", "ls", "--permissions"], "--allow-ffi --allow-read=/dev/shm --allow-read=/proc"],
  ];
  for (const [args, flags] of perms) {
    const r = memkit(args);
    assertEquals(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
    assertEquals(r.stdout.split("\n")[0], flags, args.join(" "));
  }
  // help needs no permission: an empty line of flags, then the command.
  const help = memkit(["help", "maps", "--permissions"]);
  assertEquals([help.code, help.stdout.split("\n")[0]], [0, ""], help.stderr);
  assertUsage(memkit(["help", "mpas", "--json"]), 'Unknown command "mpas"');
  const table = JSON.parse(memkit(["permissions", "--json"]).stdout);
  assertEquals(table.schema, "memkit.permissions/1");
  const mapFile = table.operations.find((o: { operation: string }) => o.operation === "mapFile");
  assertEquals(mapFile.flags, ["--allow-ffi", "--allow-read=<target>"]);
  assertEquals(JSON.parse(memkit(["permissions", "mapFile", "/tmp/a", "--json"]).stdout), {
    schema: "memkit.permissions.operation/1",
    operation: "mapFile",
    target: "/tmp/a",
    flags: ["--allow-ffi", "--allow-read=/tmp/a"],
  });
  const zero = { flags: ["--allow-ffi", "--allow-read=/dev/zero"] };
  const read = memkit(["phys", "read", "0x1000", "4", "--device=/dev/zero", "--json"], zero);
  assertEquals(read.code, 0, read.stderr);
  assertEquals(JSON.parse(read.stdout), {
    schema: "memkit.phys.read/1",
    address: "0x1000",
    length: 4,
    hex: "00000000",
  });
  const peek = memkit(["phys", "peek", "0x1000", "16", "--device=/dev/zero", "--json"], zero);
  assertEquals(JSON.parse(peek.stdout), {
    schema: "memkit.phys.peek/1",
    address: "0x1000",
    width: 16,
    value: "0x0000",
  });
});

// ---- colour ----

Deno.test("piped output has no colour: a table, an error, --permissions (NO_COLOR unset)", () => {
  const runs = [
    memkit(["permissions"]),
    memkit(["maps", "self", "--permissions"]),
    memkit(["--help"]),
    memkit(["maps", "self", "--jsn"]),
    memkit(["phys", "read", "0xf0000", "16", "--device=/dev/zero"], {
      flags: ["--allow-ffi", "--allow-read=/dev/zero"],
    }),
    memkit(["maps", "self"], { flags: ["--allow-ffi", "--allow-read=/proc/self/smaps"] }),
    memkit(["pagemap", "self", "0+1G"], {
      flags: ["--allow-ffi", "--allow-read=/proc/self/pagemap"],
    }),
  ];
  assertEquals(runs.at(-2)!.code, 0, runs.at(-2)!.stderr);
  assertStringIncludes(runs.at(-2)!.stdout, "Address");
  for (const r of runs) {
    assert(!SGR.test(r.stdout), `colour in a pipe: ${JSON.stringify(r.stdout.slice(0, 200))}`);
    assert(!SGR.test(r.stderr), JSON.stringify(r.stderr));
  }
  // The table does use colour where colour is asked for: the test above would see it.
  assertMatch(memkit(["permissions", "--color=always"]).stdout, SGR);
});

Deno.test("on a terminal colour is on, unless NO_COLOR is set or --color=never", () => {
  const tty = memkit(["permissions"], { tty: true });
  assertEquals(tty.code, 0, tty.stdout);
  assertMatch(tty.stdout, SGR, "a terminal gets colour");
  for (
    const r of [
      memkit(["permissions"], { tty: true, noColor: "1" }),
      memkit(["permissions", "--color=never"], { tty: true }),
      memkit(["--color", "never", "permissions"], { tty: true }),
    ]
  ) {
    assertEquals(r.code, 0, r.stdout);
    assertStringIncludes(r.stdout, "mapFile");
    assert(!SGR.test(r.stdout), JSON.stringify(r.stdout.slice(0, 200)));
  }
});

Deno.test("--color=always forces colour into a pipe, NO_COLOR or not; --permissions never has it", () => {
  for (const noColor of ["", "1"]) {
    assertMatch(memkit(["permissions", "--color=always"], { noColor }).stdout, SGR);
    assertMatch(memkit(["--color=always", "--help"], { noColor }).stdout, /Commands:/);
  }
  for (const tty of [false, true]) {
    for (const color of ["--color=always", "--color=auto"]) {
      const r = memkit(["phys", "smbios", "--permissions", color], { tty });
      assertEquals(r.code, 0, r.stdout + r.stderr);
      assert(!SGR.test(r.stdout), `${color}, tty ${tty}: ${JSON.stringify(r.stdout)}`);
      assertStringIncludes(r.stdout, "--allow-ffi --allow-read=/dev/mem");
    }
  }
});

Deno.test("memkit shm create, cat and rm print JSON with --json", () => {
  const name = `/memkit-args-test-${Deno.pid}`;
  const path = `/dev/shm${name}`;
  const flags = ["--allow-ffi", `--allow-read=${path}`, `--allow-write=${path}`];
  try {
    const created = memkit(["shm", "create", name, "4K", "--json"], { flags });
    assertEquals(created.code, 0, created.stderr);
    assertEquals(JSON.parse(created.stdout), {
      schema: "memkit.shm.create/1",
      name,
      size: 4096,
      reserved: true,
    });
    const cat = memkit(["shm", "cat", name, "--length=3", "--json"], { flags });
    assertEquals(cat.code, 0, cat.stderr);
    assertEquals(JSON.parse(cat.stdout), {
      schema: "memkit.shm.cat/1",
      name,
      offset: "0x0",
      length: 3,
      base64: "AAAA",
    });
  } finally {
    const rm = memkit(["shm", "rm", name, "--json"], { flags });
    assertEquals(rm.code, 0, rm.stderr);
    assertEquals(JSON.parse(rm.stdout), { schema: "memkit.shm.rm/1", name, removed: true });
  }
});
