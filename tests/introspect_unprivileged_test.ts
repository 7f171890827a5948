// flags: --allow-run=setpriv,cp --allow-read=/tmp --allow-write=/tmp --allow-sys=uid
// Introspection as an unprivileged user (nobody, via setpriv): the kernel
// hides PFNs (pagemap reads 0), so memkit says pfnVisible: false and
// translate() explains instead of returning address 0; kpageflags and
// another user's maps are a clear EACCES even when Deno's flags allow them.
import { assertEquals, assertStringIncludes } from "@std/assert";
import { nobodyPackage } from "./fixtures/nobody.ts";
import { probed } from "./fixtures/skip.ts";

const nobody = nobodyPackage("memkit-nobody-introspect-");
const { isRoot, root } = nobody;

interface Outcome {
  ok: boolean;
  value?: Record<string, unknown> & number;
  name?: string;
  code?: string;
  message?: string;
}

function asNobody(flags: string[], args: string[]): Outcome {
  return nobody.run([
    ...flags,
    `${root}tests/fixtures/introspect.ts`,
    ...args,
  ]) as unknown as Outcome;
}

probed({
  name: "as nobody, pagemap shows a touched page present with pfnVisible false",
  skip: !isRoot && "not root: only root can switch to nobody with setpriv",
  fn() {
    const r = asNobody(["--allow-read=/proc/self/pagemap"], ["pagemap"]);
    assertEquals(r.ok, true, r.message);
    const v = r.value!;
    assertEquals(v.present, true);
    assertEquals(v.pfnVisible, false);
    assertEquals(v.openVisible, false);
    assertEquals(v.frame, 0);
  },
});

probed({
  name:
    "as nobody, translate() throws PermissionDenied naming CAP_SYS_ADMIN instead of returning 0",
  skip: !isRoot && "not root: only root can switch to nobody with setpriv",
  fn() {
    const v = asNobody(["--allow-read=/proc/self/pagemap"], ["pagemap"]).value!;
    assertEquals(v.phys, undefined);
    const t = v.translate as { name: string; message: string };
    assertEquals(t.name, "PermissionDenied");
    assertStringIncludes(t.message, "Cannot translate 0x");
    assertStringIncludes(t.message, "CAP_SYS_ADMIN");
  },
});

probed({
  name: "as nobody, kpageflags is EACCES with a hint even with --allow-read=/proc/kpageflags",
  skip: !isRoot && "not root: only root can switch to nobody with setpriv",
  fn() {
    const r = asNobody(["--allow-read=/proc/kpageflags"], ["kpageflags"]);
    assertEquals([r.ok, r.name, r.code], [false, "MemkitError", "EACCES"]);
    assertEquals(
      r.message,
      'Cannot read "/proc/kpageflags": Permission denied: it is readable by root only (CAP_SYS_ADMIN)',
    );
  },
});

probed({
  name: "as nobody, its own maps read fine and init's maps are EACCES with the reason",
  skip: !isRoot && "not root: only root can switch to nobody with setpriv",
  fn() {
    const own = asNobody(["--allow-read=/proc/self/maps"], ["maps"]);
    assertEquals(own.ok, true, own.message);
    const init = asNobody(["--allow-read=/proc/1/maps"], ["maps", "1"]);
    assertEquals([init.name, init.code], ["MemkitError", "EACCES"]);
    assertStringIncludes(init.message!, 'Cannot read "/proc/1/maps": Permission denied');
    assertStringIncludes(init.message!, "CAP_SYS_PTRACE");
  },
});
