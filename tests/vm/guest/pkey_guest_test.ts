// Runs INSIDE the QEMU guest (tests/vm/init): QEMU's "max" CPU model has
// protection keys (PKU) under software emulation, so the guest runs the path
// this machine's CPU lacks. No npm imports: the guest has no network.
import assert from "node:assert/strict";
import { MemFd, MemkitError, Pkey } from "../../../mod.ts";

const fixture = new URL("../../fixtures/protect_child.ts", import.meta.url).pathname;

function cpuFlags(): Set<string> {
  const r = new Deno.Command("cat", { args: ["/proc/cpuinfo"], stdout: "piped" }).outputSync();
  const line = new TextDecoder().decode(r.stdout).split("\n").find((l) => l.startsWith("flags"));
  return new Set(line?.split(":")[1].trim().split(/\s+/) ?? []);
}

const flags = cpuFlags();
const keys = flags.has("pku") && flags.has("ospke");
// Under TCG, QEMU's "max" CPU offers PKU; with KVM the guest has the host's
// CPU, which may not (the host test insists on keys under TCG).
console.log(`MEMKIT-PKEY ${keys ? "present" : "absent"}`);

Deno.test("Pkey.supported agrees with the guest CPU's pku and ospke flags", () => {
  assert.equal(Pkey.supported, keys);
});

Deno.test({
  name: "set() takes write access away for this thread; memkit's views follow",
  ignore: !keys,
}, () => {
  using fd = MemFd.create("keyed", { size: 2 * 4096 });
  using m = fd.map();
  using key = Pkey.alloc();
  assert.ok(key.key >= 1 && key.key <= 15);
  key.assign(m);
  const view = m.bytes();
  view[0] = 1;
  key.set("r");
  assert.equal(key.get(), "r");
  assert.equal(view.length, 0, "the writable view was detached");
  assert.equal(m.read(0, 1)[0], 1, "reads still work");
  // (A read-only view made now would keep "none" refused until it is collected.)
  assert.throws(() => m.write(new Uint8Array(1)), TypeError);
  key.set("none");
  assert.throws(() => m.read(0, 1), TypeError);
  assert.throws(() => m.bytes(), TypeError);
  key.set("rw");
  m.bytes()[0] = 3;
  assert.equal(m.read(0, 1)[0], 3);
  key.set("r");
  assert.throws(() => {
    m.bytes()[0] = 2; // an immutable view: a TypeError, not a protection-key fault
  }, TypeError);
  assert.equal(m.read(0, 1)[0], 3);
});

Deno.test({
  name: 'set("none") is refused while a read-only view of a keyed mapping lives',
  ignore: !keys,
}, () => {
  using fd = MemFd.create("keyed-ro", { size: 4096 });
  using m = fd.map({ access: "r" });
  using key = Pkey.alloc();
  key.assign(m, "r");
  const view = m.bytes();
  assert.throws(() => key.set("none"), MemkitError);
  assert.equal(key.get(), "rw", "nothing changed");
  assert.equal(view[0], 0);
});

Deno.test({
  name: 'a raw write under rights "r" dies of a real protection-key fault',
  ignore: !keys,
}, () => {
  const r = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--no-check",
      "--no-lock",
      "--no-config",
      "--allow-ffi",
      fixture,
      "pkey-write-off",
    ],
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  const stdout = new TextDecoder().decode(r.stdout);
  const report = JSON.parse(stdout.split("\n").find((l) => l.startsWith("{"))!);
  assert.equal(report.supported, true);
  assert.equal(report.rights, "r");
  assert.equal(report.after, 3);
  assert.ok(stdout.includes("touching"));
  assert.equal(r.signal, "SIGSEGV", new TextDecoder().decode(r.stderr));
});

Deno.test({ name: "free() gives the pages back to key 0 and is idempotent", ignore: !keys }, () => {
  using fd = MemFd.create("freed", { size: 4096 });
  using m = fd.map();
  const key = Pkey.alloc();
  key.assign(m);
  key.set("r");
  key.free();
  key.free();
  m.bytes()[0] = 1; // writable again: the pages carry key 0
  assert.throws(() => key.set("r"), Deno.errors.BadResource);
});

Deno.test({ name: "a Pkey dropped unfreed frees its key once collected", ignore: !keys }, () => {
  const r = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--no-check",
      "--no-lock",
      "--no-config",
      "--allow-ffi",
      "--v8-flags=--expose-gc",
      new URL("../../fixtures/lifetimes_child.ts", import.meta.url).pathname,
      "pkey",
    ],
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
  const got = JSON.parse(new TextDecoder().decode(r.stdout));
  // The first key was dropped while a second was held: a later alloc() gets
  // the first number back only once the backstop freed it.
  assert.equal(got.supported, true);
  assert.notEqual(got.held, got.first);
  assert.ok(got.rounds > 0, `key ${got.first} not freed after 20 collections`);
});

/** The protection key the kernel shows for the mapping at `address` (smaps' ProtectionKey). */
function kernelKeyAt(address: bigint): number {
  const r = new Deno.Command("cat", { args: [`/proc/${Deno.pid}/smaps`], stdout: "piped" })
    .outputSync();
  const text = new TextDecoder().decode(r.stdout);
  const at = text.indexOf(`${address.toString(16)}-`);
  assert.ok(at >= 0, `no mapping at 0x${address.toString(16)} in smaps`);
  const key = /ProtectionKey:\s+(\d+)/.exec(text.slice(at));
  assert.ok(key, "smaps shows no ProtectionKey");
  return Number(key[1]);
}

Deno.test({
  name: "freeing a key leaves a mapping assigned to another key since with that key",
  ignore: !keys,
}, () => {
  using fd = MemFd.create("rekeyed", { size: 4096 });
  using m = fd.map();
  using a = Pkey.alloc();
  using b = Pkey.alloc();
  a.assign(m);
  assert.equal(kernelKeyAt(m.address), a.key);
  b.assign(m);
  assert.equal(kernelKeyAt(m.address), b.key);
  a.free(); // m is b's now: not given back to key 0
  assert.equal(kernelKeyAt(m.address), b.key);
  b.free();
  assert.equal(kernelKeyAt(m.address), 0);
});
