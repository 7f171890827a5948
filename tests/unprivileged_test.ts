// flags: --allow-run=setpriv,cp --allow-read=/tmp --allow-write=/tmp --allow-sys=uid
// memkit as an unprivileged user (nobody, via setpriv): memfds and mappings
// need no privilege; files the kernel refuses are a clear EACCES even when
// Deno's flags allow them.
import { assertEquals, assertStringIncludes } from "@std/assert";
import { nobodyPackage } from "./fixtures/nobody.ts";
import { probed } from "./fixtures/skip.ts";

const nobody = nobodyPackage("memkit-nobody-");
const { isRoot, dir, root } = nobody;

const asNobody = nobody.run;

probed({
  name: "memfds, aliases and the close() safety net work without privilege",
  skip: !isRoot && "not root: only root can switch to nobody with setpriv",
  fn() {
    const r = asNobody([
      "--allow-run=cat",
      "--v8-flags=--js-immutable-arraybuffer",
      `${root}tests/fixtures/safety.ts`,
      "stale-readonly-after-close",
    ]);
    assertEquals(r.before, 0x5a);
    assertEquals(r.after, 0);
    assertEquals(r.memfd, 0x5a);
  },
});

probed({
  name: "stitching, aliases, rings, guard pages and page protections work without privilege",
  skip: !isRoot && "not root: only root can switch to nobody with setpriv",
  fn() {
    const fixture = `${root}tests/fixtures/protect_child.ts`;
    const flags = ["--v8-flags=--js-immutable-arraybuffer", fixture];
    const r = asNobody([...flags, "aliasing"]);
    assertEquals(r.stitched, [2, 1, 1]);
    assertEquals(r.alias, 9);
    assertEquals(r.ring, [1, 2, 3]);
    assertEquals(r.guarded, 1);
    const v = asNobody([...flags, "views-never-fault"]);
    assertEquals([v.survived, v.after], [true, 5]);
  },
});

probed({
  name: "a file the kernel refuses to nobody is EACCES even when Deno's flags allow it",
  skip: !isRoot && "not root: only root can switch to nobody with setpriv",
  fn() {
    const secret = `${dir}/root-only`;
    Deno.writeTextFileSync(secret, "secret\n", { mode: 0o600 });
    Deno.chmodSync(secret, 0o600);
    const r = asNobody([
      `--allow-read=${secret}`,
      `${root}tests/fixtures/map_file.ts`,
      secret,
      "r",
    ]);
    assertEquals(r.ok, false);
    assertEquals(r.name, "MemkitError");
    assertEquals(r.code, "EACCES");
    assertEquals(r.message, `Cannot open "${secret}": Permission denied`);
  },
});

probed({
  name: "a file nobody may read but not write maps r, and rw is EACCES",
  skip: !isRoot && "not root: only root can switch to nobody with setpriv",
  fn() {
    const shared = `${dir}/readable`;
    Deno.writeTextFileSync(shared, "readable\n");
    Deno.chmodSync(shared, 0o644);
    const flags = [`--allow-read=${shared}`, `--allow-write=${shared}`];
    const fixture = `${root}tests/fixtures/map_file.ts`;
    const r = asNobody([...flags, fixture, shared, "r"]);
    assertEquals(r.ok, true);
    assertEquals(r.head, "readable\n");
    const rw = asNobody([...flags, fixture, shared, "rw", "X"]);
    assertEquals(rw.code, "EACCES");
    assertStringIncludes(String(rw.message), "Permission denied");
    assertEquals(Deno.readTextFileSync(shared), "readable\n");
  },
});
