// flags: --allow-ffi --v8-flags=--js-immutable-arraybuffer --allow-run=cat,$DENO
// Protection keys: where the CPU has none (this machine), Pkey.supported
// agrees with /proc/cpuinfo and alloc() explains; where it has them (a QEMU
// guest with -cpu max), keys switch write access off per thread, memkit's
// views follow, and a raw write dies of a real protection-key fault.
import { assertEquals, assertStringIncludes, assertThrows } from "@std/assert";
import { MemkitError, Pkey } from "../mod.ts";

const fixture = new URL("./fixtures/protect_child.ts", import.meta.url).pathname;

function cpuFlags(): Set<string> {
  const r = new Deno.Command("cat", { args: ["/proc/cpuinfo"], stdout: "piped" }).outputSync();
  const line = new TextDecoder().decode(r.stdout).split("\n").find((l) => l.startsWith("flags"));
  return new Set(line?.split(":")[1].trim().split(/\s+/) ?? []);
}

Deno.test("Pkey.supported agrees with the CPU flags the kernel reports", () => {
  const flags = cpuFlags();
  if (!flags.has("pku") || !flags.has("ospke")) assertEquals(Pkey.supported, false);
  else assertEquals(Pkey.supported, true, "pku and ospke are set: keys should allocate");
});

Deno.test("without protection keys, alloc() is ENOSYS with an explanation", () => {
  if (Pkey.supported) return;
  const err = assertThrows(() => Pkey.alloc(), MemkitError);
  assertEquals(err.code, "ENOSYS");
  assertStringIncludes(err.message, "no memory protection keys");
  assertStringIncludes(err.message, '"pku"');
  assertStringIncludes(err.message, "protect()");
  assertThrows(() => Pkey.alloc("wx" as "r"), TypeError);
});

Deno.test("with protection keys, set() switches access per thread and views follow", () => {
  if (!Pkey.supported) {
    console.log("  (no protection keys on this CPU: the guest run covers this)");
    return;
  }
  const r = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-ffi",
      "--v8-flags=--js-immutable-arraybuffer",
      fixture,
      "pkey-write-off",
    ],
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  const stdout = new TextDecoder().decode(r.stdout);
  const report = JSON.parse(stdout.split("\n").find((l) => l.startsWith("{"))!);
  assertEquals(report.supported, true);
  assertEquals(report.rights, "r");
  assertEquals(report.staleLength, 0);
  assertEquals(report.read, 1);
  assertStringIncludes(report.write, "throws:TypeError");
  assertStringIncludes(report.writeCall, "throws:TypeError");
  assertStringIncludes(report.none, "throws:TypeError");
  assertEquals(report.after, 3);
  assertStringIncludes(stdout, "touching");
  assertEquals(r.signal, "SIGSEGV", 'a raw write under rights "r" is a protection-key fault');
});

Deno.test("a freed key is a BadResource error; free() is idempotent", () => {
  if (!Pkey.supported) return;
  const key = Pkey.alloc();
  key.free();
  key.free();
  assertEquals(key.key, -1);
  assertThrows(() => key.set("r"), Deno.errors.BadResource);
});
