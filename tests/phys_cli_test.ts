// flags: --allow-ffi --allow-read=/proc/iomem --allow-run=$DENO,setpriv --allow-sys=uid
// `memkit phys` through the real cli.ts, in a child with only the flags each
// call needs. /dev/zero stands in for a memory device (this host has no
// /dev/mem); the guest tests cover /dev/mem itself.
import { assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { physicalRanges } from "../mod.ts";
import { type CliResult, memkitCli } from "./fixtures/cli.ts";
import { probed } from "./fixtures/skip.ts";

function memkit(flags: string[], args: string[], dropAdmin = false): CliResult {
  return memkitCli(flags, ["phys", ...args], dropAdmin);
}

const zero = ["--allow-ffi", "--allow-read=/dev/zero", "--device=/dev/zero"];

Deno.test("memkit phys read hexdumps, with addresses, hex and text columns", () => {
  const r = memkit(zero.slice(0, 2), ["read", "0xf0000", "32", zero[2]]);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(r.stdout.trim().split("\n"), [
    "000f0000  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|",
    "000f0010  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|",
  ]);
});

Deno.test("memkit phys peek prints one value of the width asked, and refuses misalignment", () => {
  const r = memkit(zero.slice(0, 2), ["peek", "0xf0004", "32", zero[2]]);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(r.stdout.trim(), "0xf0004: 0x00000000");
  const r64 = memkit(zero.slice(0, 2), ["peek", "0xf0008", "64", zero[2]]);
  assertEquals(r64.stdout.trim(), "0xf0008: 0x0000000000000000");
  const bad = memkit(zero.slice(0, 2), ["peek", "0xf0002", "32", zero[2]]);
  assertEquals(bad.code, 2);
  assertStringIncludes(bad.stderr, "not a multiple of 4");
  assertEquals(memkit(zero.slice(0, 2), ["peek", "0xf0000", "24", zero[2]]).code, 2);
});

Deno.test("memkit phys on this host explains that /dev/mem is missing", () => {
  let exists = true;
  try {
    Deno.statSync("/dev/mem");
  } catch {
    exists = false;
  }
  if (exists) return;
  const r = memkit(["--allow-ffi", "--allow-read=/dev/mem"], ["smbios"]);
  assertEquals(r.code, 1);
  assertMatch(r.stderr, /MemkitError \(ENOENT\).*CONFIG_DEVMEM/);
});

Deno.test("memkit phys poke needs --allow-write, and --permissions prints the flags", () => {
  const r = memkit(["--allow-ffi", "--allow-read=/dev/mem"], ["poke", "0xf0000", "32", "1"]);
  assertEquals(r.code, 3);
  assertStringIncludes(r.stderr, 'Requires write access to "/dev/mem"');
  const p = memkit([], ["poke", "0xf0000", "32", "1", "--permissions"]);
  assertEquals(p.code, 0, p.stderr);
  assertEquals(
    p.stdout.split("\n")[0],
    "--allow-ffi --allow-read=/dev/mem --allow-write=/dev/mem",
  );
  assertEquals(memkit([], ["poke", "0xf0000", "8", "0x100"]).code, 2);
});

Deno.test("memkit phys ranges lists /proc/iomem nested, as physicalRanges() does", () => {
  const r = memkit(["--allow-ffi", "--allow-read=/proc/iomem"], ["ranges", "--json"]);
  assertEquals(r.code, 0, r.stderr);
  // memkit.phys.ranges/1: 0x addresses, exclusive ends (docs/json.md).
  assertEquals(JSON.parse(r.stdout), {
    schema: "memkit.phys.ranges/1",
    ranges: physicalRanges().map(({ start, end, name, depth }) => ({
      start: `0x${start.toString(16)}`,
      end: `0x${end.toString(16)}`,
      size: Number(end - start),
      name,
      depth,
    })),
  });
  const text = memkit(["--allow-ffi", "--allow-read=/proc/iomem"], ["ranges"]);
  assertMatch(text.stdout, /^ +0x100000-0x[0-9a-f]+ +[\d.]+ [KMG]iB {2}System RAM$/m);
});

probed({
  name: "without CAP_SYS_ADMIN the kernel hides /proc/iomem's addresses, and memkit says so",
  skip: Deno.uid() !== 0 && "not root: there is no CAP_SYS_ADMIN to drop",
  fn() {
    const r = memkit(["--allow-ffi", "--allow-read=/proc/iomem"], ["ranges"], true);
    assertEquals(r.code, 1, r.stdout);
    assertMatch(r.stderr, /EACCES.*only to root/);
  },
});
