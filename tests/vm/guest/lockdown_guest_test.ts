// Runs INSIDE the QEMU guest, last (lockdown is one-way until reboot): raises
// the kernel's lockdown to "integrity" and checks that opening /dev/mem is
// refused with the lockdown explanation, for root too.
import assert from "node:assert/strict";
import { MemkitError, PhysicalMemory } from "../../../mod.ts";

Deno.test("under kernel lockdown, opening /dev/mem is EPERM that names the lockdown", () => {
  PhysicalMemory.open().close(); // not locked down yet
  const raise = new Deno.Command("sh", {
    args: ["-c", "echo integrity > /sys/kernel/security/lockdown"],
  }).outputSync();
  assert.ok(raise.success, "raising the lockdown");
  assert.throws(() => PhysicalMemory.open(), (e: unknown) => {
    assert.ok(e instanceof MemkitError);
    assert.equal(e.code, "EPERM");
    assert.match(e.message, /locked down \("integrity"/);
    return true;
  });
});
