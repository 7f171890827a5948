// flags: --allow-ffi --allow-read=/proc,/dev/mem,docs --allow-run=$DENO,sleep,setpriv,cat --allow-sys=uid --v8-flags=--js-immutable-arraybuffer
// JSON that is a contract (issue 16, point 4): every command's --json output,
// through the real cli.ts in a child with only the flags the call needs,
// checked against its schema in cli/_json_schemas.ts (missing and extra
// fields, types, 0x addresses), and docs/json.md checked against the same
// schemas: its field tables are theirs, its samples conform.
import { assert, assertEquals, assertGreater, assertStringIncludes } from "@std/assert";
import { doctorPermissions, readMaps } from "../mod.ts";
import { SCHEMA_IDS, SCHEMAS, SMAPS_COUNTERS } from "../cli/_json_schemas.ts";
import { SPECS } from "../cli/_commands.ts";
import { allFlags } from "../cli/_args.ts";
import { memkitCli } from "./fixtures/cli.ts";
import { fieldTable, problems, schemaProblems } from "./fixtures/json_shape.ts";
import { probed } from "./fixtures/skip.ts";

const checkout = new URL("..", import.meta.url).pathname;

/** The ids of the schemas some output was checked against, by the tests below. */
const seen = new Set<string>();

/** Runs `memkit <args>` with `flags`, and returns its JSON after checking it against `id`. */
// deno-lint-ignore no-explicit-any
function conform(id: string, flags: string[], args: string[], dropAdmin = false): any {
  const r = memkitCli(flags, args, dropAdmin);
  assertEquals(r.code, 0, `memkit ${args.join(" ")}: ${r.stderr}`);
  return check(id, r.stdout, args);
}

// deno-lint-ignore no-explicit-any
function check(id: string, stdout: string, args: string[]): any {
  const value = JSON.parse(stdout);
  assertEquals(value.schema, id, `memkit ${args.join(" ")}`);
  assertEquals(Object.keys(value)[0], "schema", "schema comes first");
  const wrong = schemaProblems(value);
  assertEquals(wrong, [], `memkit ${args.join(" ")} does not conform to ${id}`);
  seen.add(id);
  return value;
}

function sleeper(): Deno.ChildProcess & AsyncDisposable {
  const p = new Deno.Command("sleep", { args: ["60"], stdout: "null" }).spawn();
  return Object.assign(p, {
    async [Symbol.asyncDispose]() {
      p.kill("SIGKILL");
      await p.status;
    },
  });
}

const root = Deno.uid() === 0;

// ---- the validator itself ----

Deno.test("the validator rejects missing and extra fields, wrong types, and addresses not in 0x form", () => {
  const good = {
    schema: "memkit.phys.ranges/1",
    ranges: [{ start: "0x1000", end: "0x9fc00", size: 0x9ec00, name: "System RAM", depth: 0 }],
  };
  assertEquals(schemaProblems(good), []);
  const bad = (change: (v: typeof good & Record<string, unknown>) => void) => {
    const v = structuredClone(good) as typeof good & Record<string, unknown>;
    change(v);
    return schemaProblems(v);
  };
  const r = (v: typeof good) => v.ranges[0] as Record<string, unknown>;
  assertStringIncludes(bad((v) => delete r(v).end).join(), 'missing field "end"');
  assertStringIncludes(bad((v) => (r(v).extra = 1)).join(), 'extra field "extra"');
  assertStringIncludes(bad((v) => (v.more = [])).join(), 'extra field "more"');
  assertStringIncludes(bad((v) => (r(v).start = 4096)).join(), "$.ranges[0].start");
  assertStringIncludes(bad((v) => (r(v).start = "4096")).join(), "0x");
  assertStringIncludes(bad((v) => (r(v).start = "0x01000")).join(), "$.ranges[0].start");
  assertStringIncludes(bad((v) => (r(v).start = "0X1000")).join(), "$.ranges[0].start");
  assertStringIncludes(bad((v) => (r(v).size = "0x9ec00")).join(), "expected an integer");
  assertStringIncludes(bad((v) => (r(v).size = 1.5)).join(), "expected an integer");
  assertStringIncludes(bad((v) => (r(v).depth = -1)).join(), "at least 0");
  assertStringIncludes(bad((v) => (v.schema = "memkit.phys.ranges/2")).join(), "$.schema");
  assertStringIncludes(bad((v) => (v.ranges = {} as never)).join(), "expected an array");
  // The shapes of today's main (issue 16, point 4) do not pass.
  assertGreater(problems(SCHEMAS["memkit.phys.ranges/1"], [{ start: 0, end: 4096 }]).length, 0);
  const pfnNumber = { start: "0x1000", end: "0x2000", pages: 1, pfn: 4096, flags: ["present"] };
  const runs =
    (SCHEMAS["memkit.pagemap/1"] as unknown as { fields: Record<string, { shape: never }> })
      .fields.runs.shape;
  assertStringIncludes(problems(runs, [pfnNumber]).join(), "$[0].pfn");
  assertEquals(problems(runs, [{ ...pfnNumber, pfn: "0x1000" }]), []);
  assertEquals(problems(runs, [{ ...pfnNumber, pfn: null }]), []);
});

// ---- every command ----

Deno.test("memkit permissions --json, with and without an operation, conforms", () => {
  const table = conform("memkit.permissions/1", [], ["permissions", "--json"]);
  const mapFile = table.operations.find((o: { operation: string }) => o.operation === "mapFile");
  assertEquals(mapFile.flags, ["--allow-ffi", "--allow-read=<target>"]);
  const one = conform("memkit.permissions.operation/1", [], [
    "permissions",
    "maps",
    "1234",
    "--json",
  ]);
  assertEquals(one.flags, ["--allow-ffi", "--allow-read=/proc/1234/maps"]);
});

Deno.test("memkit maps --json of itself and of another process conforms, each kernel field once", async () => {
  await using p = sleeper();
  const self = conform("memkit.maps/1", ["--allow-ffi", "--allow-read=/proc/self/smaps"], [
    "maps",
    "self",
    "--json",
  ]);
  assert(Number.isSafeInteger(self.pid) && self.pid !== Deno.pid, "self is memkit's own pid");
  const other = conform("memkit.maps/1", ["--allow-ffi", `--allow-read=/proc/${p.pid}/smaps`], [
    "maps",
    String(p.pid),
    "--json",
  ]);
  assertEquals(other.pid, p.pid);
  // The same mappings as the kernel lists, and in each every field of its
  // smaps block once: a named counter or in `fields`, never both.
  const text = new TextDecoder().decode(
    new Deno.Command("cat", { args: [`/proc/${p.pid}/smaps`], stdout: "piped" }).outputSync()
      .stdout,
  );
  const blocks = text.split(/\n(?=[0-9a-f]+-[0-9a-f]+ )/);
  assertEquals(other.mappings.length, blocks.length);
  const named = new Map(SMAPS_COUNTERS.map(([camel, kernel]) => [kernel, camel]));
  other.mappings.forEach((m: Record<string, unknown>, i: number) => {
    const [range, ...lines] = blocks[i].trimEnd().split("\n");
    assertEquals(
      `${m.start}-${m.end}`.replaceAll("0x", ""),
      range.split(" ")[0].replace(/^0+/, ""),
    );
    const kernel = lines.map((l) => l.split(":")[0]).filter((k) => k !== "VmFlags");
    const fields = Object.keys(m.fields as object);
    for (const k of kernel) {
      if (k === "Size") continue;
      const asNamed = named.has(k), inFields = fields.includes(k);
      assert(asNamed !== inFields, `${k}: a named counter xor in fields`);
    }
    assertEquals(fields.filter((k) => !kernel.includes(k)), [], "fields only the kernel's");
  });
  const brief = conform("memkit.maps.brief/1", ["--allow-ffi", "--allow-read=/proc/self/maps"], [
    "maps",
    "self",
    "--brief",
    "--json",
  ]);
  assertGreater(brief.mappings.length, 10);
  const briefOther = conform("memkit.maps.brief/1", [
    "--allow-ffi",
    `--allow-read=/proc/${p.pid}/maps`,
  ], ["maps", String(p.pid), "--brief", "--json"]);
  assertEquals(briefOther.mappings.map((m: { start: string }) => BigInt(m.start)), [
    ...readMaps(p.pid).map((e) => e.start),
  ]);
  // Several pids: memkit.maps.multi/1, each process's object whole, a failed pid in errors.
  const gone = 4194000;
  const multiArgs = ["maps", "self", String(p.pid), String(gone), "--json"];
  const multi = memkitCli([
    "--allow-ffi",
    `--allow-read=/proc/self/smaps,/proc/${p.pid}/smaps,/proc/${gone}/smaps`,
  ], multiArgs);
  assertEquals(multi.code, 1, multi.stderr);
  const several = check("memkit.maps.multi/1", multi.stdout, multiArgs);
  assertEquals(several.processes.map((x: { pid: number }) => x.pid).slice(1), [p.pid]);
  assertEquals(several.errors.map((x: { pid: number }) => x.pid), [gone]);
  const briefArgs = ["maps", "self", String(p.pid), "--brief", "--json"];
  const briefs = memkitCli(
    ["--allow-ffi", `--allow-read=/proc/self/maps,/proc/${p.pid}/maps`],
    briefArgs,
  );
  assertEquals(briefs.code, 0, briefs.stderr);
  const both = check("memkit.maps.multi/1", briefs.stdout, briefArgs);
  assertEquals(both.processes.map((x: { schema: string }) => x.schema), [
    "memkit.maps.brief/1",
    "memkit.maps.brief/1",
  ]);
});

Deno.test("memkit pagemap --json of a range conforms: 0x starts, ends and frames", async () => {
  await using p = sleeper();
  const stack = readMaps(p.pid).find((e) => e.kind === "stack")!;
  const range = `0x${stack.start.toString(16)}-0x${stack.end.toString(16)}`;
  const flags = ["--allow-ffi", `--allow-read=/proc/${p.pid}/pagemap,/proc/kpageflags`];
  const out = conform("memkit.pagemap/1", flags, [
    "pagemap",
    String(p.pid),
    range,
    ...(root ? ["--flags"] : []),
    "--json",
  ]);
  assertEquals([out.start, out.end], range.split("-"));
  assertGreater(out.runs.length, 0);
  for (const run of out.runs) {
    assertEquals(BigInt(run.end) - BigInt(run.start), BigInt(run.pages * out.pageSize));
  }
  assertEquals(out.runs.reduce((n: number, r: { pages: number }) => n + r.pages, 0), out.present);
  if (root) assert(out.runs.every((r: { pfn: unknown }) => typeof r.pfn === "string"));
  const whole = conform("memkit.pagemap/1", ["--allow-ffi", "--allow-read=/proc/self/pagemap"], [
    "pagemap",
    "self",
    "0+0x800000000000",
    "--json",
  ]);
  assertGreater(whole.present, 0);
  // --summary: the present pages per kpageflags set (frames need root; page 0 has none).
  const summary = conform("memkit.pagemap.summary/1", flags, [
    "pagemap",
    String(p.pid),
    root ? range : "0+4K",
    "--summary",
    "--json",
  ]);
  assertEquals(
    summary.sets.reduce((n: number, s: { pages: number }) => n + s.pages, 0),
    summary.present,
  );
});

probed({
  name: "memkit pagemap --json without CAP_SYS_ADMIN conforms, its hidden frames null",
  skip: !root && "not root: there is no CAP_SYS_ADMIN to drop",
  async fn() {
    await using p = sleeper();
    const stack = readMaps(p.pid).find((e) => e.kind === "stack")!;
    const range = `0x${stack.start.toString(16)}+${stack.size}`;
    const out = conform(
      "memkit.pagemap/1",
      ["--allow-ffi", `--allow-read=/proc/${p.pid}/pagemap`],
      [
        "pagemap",
        String(p.pid),
        range,
        "--json",
      ],
      true,
    );
    assertEquals(out.pfnVisible, false);
    assert(out.runs.every((r: { pfn: unknown }) => r.pfn === null));
  },
});

Deno.test("memkit phys ranges, read and peek --json conform (/dev/zero standing in for a memory device)", () => {
  const ranges = conform("memkit.phys.ranges/1", ["--allow-ffi", "--allow-read=/proc/iomem"], [
    "phys",
    "ranges",
    "--json",
  ]);
  if (root) assert(ranges.ranges.some((r: { name: string }) => r.name === "System RAM"));
  const zero = ["--allow-ffi", "--allow-read=/dev/zero"];
  const read = conform("memkit.phys.read/1", zero, [
    "phys",
    "read",
    "0xf0000",
    "16",
    "--device=/dev/zero",
    "--json",
  ]);
  assertEquals([read.address, read.length, read.hex], ["0xf0000", 16, "00".repeat(16)]);
  const peek = conform("memkit.phys.peek/1", zero, [
    "phys",
    "peek",
    "0xf0008",
    "64",
    "--device=/dev/zero",
    "--json",
  ]);
  assertEquals([peek.address, peek.width, peek.value], ["0xf0008", 64, "0x0000000000000000"]);
});

Deno.test("memkit phys poke and smbios --json conform, through a stand-in device (this host has no /dev/mem to write to)", () => {
  const standin = (args: string[]) => {
    const r = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-ffi", "--allow-read", "tests/fixtures/phys_standin.ts", ...args],
      cwd: checkout,
      stdout: "piped",
      stderr: "piped",
    }).outputSync();
    const d = new TextDecoder();
    assertEquals(r.code, 0, d.decode(r.stderr));
    return check(`memkit.phys.${args[0]}/1`, d.decode(r.stdout), args);
  };
  const poke = standin(["poke", "0xfee00030", "32", "0xdeadbeef", "--json"]);
  assertEquals([poke.wrote, poke.readBack], ["0xdeadbeef", "0xdeadbeef"]);
  const smbios = standin(["smbios", "--json"]);
  assertEquals([smbios.entryPoint.address, smbios.entryPoint.tableAddress], ["0xf05a0", "0xf1000"]);
  assertEquals(smbios.system.serial, "SER-42");
});

probed({
  name:
    "memkit phys smbios and read --json on the real /dev/mem fail as documented, printing no JSON",
  skip: (() => {
    try {
      Deno.statSync("/dev/mem");
      return "this host has /dev/mem: the guest tests (tests/vm/) read it";
    } catch {
      return false;
    }
  })(),
  fn() {
    for (const args of [["smbios"], ["read", "0xf0000", "16"], ["peek", "0xf0000", "32"]]) {
      const r = memkitCli(["--allow-ffi", "--allow-read=/dev/mem"], ["phys", ...args, "--json"]);
      assertEquals([r.code, r.stdout], [1, ""], r.stderr);
      assertStringIncludes(r.stderr, "MemkitError (ENOENT)");
    }
  },
});

Deno.test("memkit shm create, ls, info, cat and rm --json conform, on a segment of this test's own", () => {
  const name = `/memkit-json-test-${Deno.pid}`;
  const path = `/dev/shm${name}`;
  const own = ["--allow-ffi", `--allow-read=${path}`, `--allow-write=${path}`];
  const all = ["--allow-ffi", "--allow-read=/dev/shm,/proc"];
  try {
    const created = conform("memkit.shm.create/1", own, [
      "shm",
      "create",
      name,
      "8K",
      "--mode=0640",
      "--json",
    ]);
    assertEquals([created.name, created.size], [name, 8192]);
    const ls = conform("memkit.shm.ls/1", all, ["shm", "ls", "--json"]);
    const mine = ls.segments.find((s: { name: string }) => s.name === name);
    assertEquals([mine.size, mine.allocated, mine.mode, mine.mappers], [8192, 8192, "0640", []]);
    const stale = conform("memkit.shm.ls/1", all, ["shm", "ls", "--stale", "--json"]);
    assert(stale.segments.some((s: { name: string }) => s.name === name), "nobody maps it");
    const info = conform("memkit.shm.info/1", own, ["shm", "info", name, "--json"]);
    const { mappers: _, ...listed } = mine;
    assertEquals(info.segment, listed);
    const cat = conform("memkit.shm.cat/1", own, [
      "shm",
      "cat",
      name,
      "--offset=0x1000",
      "--length=3",
      "--json",
    ]);
    assertEquals([cat.offset, cat.length, cat.base64], ["0x1000", 3, "AAAA"]);
  } finally {
    conform("memkit.shm.rm/1", own, ["shm", "rm", name, "--json"]);
  }
});

probed({
  name: "memkit doctor --json conforms, all checks and some",
  skip: !root && "not root: some checks cannot run their probes here",
  fn() {
    const all = doctorPermissions();
    const every = conform("memkit.doctor/1", all, ["doctor", "--json"]);
    assertEquals(every.checks[0].id, "library");
    const r = memkitCli(all, ["doctor", "pagemap", "--json"]);
    const some = check("memkit.doctor/1", r.stdout, ["doctor", "pagemap", "--json"]);
    assertEquals(some.checks.map((c: { id: string }) => c.id), ["pagemap-scan", "pfn"]);
    // Without its flags a check is not checked, and says which it needs.
    const bare = memkitCli(["--allow-ffi"], ["doctor", "pfn", "--json"]);
    const unchecked = check("memkit.doctor/1", bare.stdout, ["doctor", "pfn", "--json"]);
    assertEquals([unchecked.checks[0].checked, bare.code], [false, 3]);
  },
});

Deno.test("memkit tour --json conforms: a step skipped names what it missed, one that ran nothing", () => {
  // Only --allow-ffi: the steps that need more are skipped, the others run.
  const tour = conform("memkit.tour/1", ["--allow-ffi"], ["tour", "--json"]);
  type Step = { outcome: string; needs: string[]; missing: string[]; output: string[] };
  const steps: Step[] = tour.steps;
  const by = (o: string) => steps.filter((s) => s.outcome === o);
  assertEquals([tour.ran, tour.skipped, tour.failed], [
    by("ran").length,
    by("skipped").length,
    by("failed").length,
  ]);
  assertEquals(tour.failed, 0);
  assertGreater(tour.ran, 0);
  assertGreater(tour.skipped, 0);
  for (const s of by("ran")) assertEquals([s.needs, s.missing], [["--allow-ffi"], []]);
  for (const s of by("skipped")) {
    assertGreater(s.missing.length, 0);
    assertEquals(s.missing.filter((f) => !s.needs.includes(f)), []);
    assertStringIncludes(s.output.at(-1)!, `skipped: run again with ${s.missing.join(" ")}`);
  }
  // No escape code reaches the JSON, even with colour forced.
  const forced = memkitCli(["--allow-ffi"], ["tour", "--json", "--color=always"]);
  assertEquals(forced.stdout.includes("\x1b["), false);
});

Deno.test("memkit help --json conforms: every command's flags and examples, or the one named", () => {
  const all = conform("memkit.help/1", [], ["help", "--json"]);
  assertEquals(all.commands.map((c: { name: string }) => c.name), Object.keys(SPECS));
  const maps = conform("memkit.help/1", [], ["help", "maps", "--json"]);
  assertEquals(maps.commands.length, 1);
  const [one] = maps.commands;
  assertEquals(
    one.flags.map((f: { name: string }) => f.name),
    allFlags(SPECS.maps).map((f) => `--${f.name}`),
  );
  assertEquals(one.examples.length, SPECS.maps.examples.length);
  assertEquals(one, all.commands[2]);
});

// ---- docs/json.md and the commands' help ----

function must<T>(value: T | undefined, message: string): T {
  if (value === undefined) throw new Error(message);
  return value;
}

/** The cells of a markdown table's rows, trimmed (so that deno fmt's padding does not count). */
const cells = (table: string): string[][] =>
  table.trim().split("\n").map((row) =>
    row.replace(/^\|/, "").replace(/\|$/, "").split(/(?<!\\)\|/).map((c) => c.trim())
      .map((c) => (/^-+$/.test(c) ? "---" : c))
  );

Deno.test("docs/json.md has a section per schema: its field table is the schema's, its sample conforms", () => {
  const doc = Deno.readTextFileSync(`${checkout}docs/json.md`);
  const sections = doc.split(/\n(?=#{2,3} )/);
  for (const id of SCHEMA_IDS) {
    const section = must(
      sections.find((s) => s.split("\n")[0].includes(`\`${id}\``)),
      `docs/json.md has no section headed with \`${id}\``,
    );
    const table = must(/\n(\| field .*\n(?:\|.*\n?)*)/.exec(section)?.[1], `${id}: no table`);
    assertEquals(cells(table), cells(fieldTable(SCHEMAS[id])), `${id}: the field table`);
    const sample = must(/```json\n([\s\S]*?)```/.exec(section)?.[1], `${id}: no sample`);
    const value = JSON.parse(sample);
    assertEquals(schemaProblems(value), [], `${id}: the sample`);
    assertEquals(value.schema, id);
  }
});

Deno.test("each command's --json help names its schemas and docs/json.md", () => {
  for (const [name, spec] of Object.entries(SPECS)) {
    if (spec.json.startsWith("no: ")) continue;
    const ids = SCHEMA_IDS.filter((id) =>
      id.startsWith(`memkit.${name}.`) || id.startsWith(`memkit.${name}/`)
    );
    assertGreater(ids.length, 0, name);
    assertStringIncludes(spec.json, "docs/json.md", name);
  }
});

Deno.test("every schema was checked against a real output above", () => {
  // The stand-in and /dev/mem tests cover phys poke and smbios; the others
  // run everywhere (doctor as root).
  const missing = SCHEMA_IDS.filter((id) => !seen.has(id));
  assertEquals(root ? missing : missing.filter((id) => id !== "memkit.doctor/1"), []);
});
