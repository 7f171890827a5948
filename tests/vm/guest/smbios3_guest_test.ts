// Runs INSIDE the QEMU guest booted with `-machine pc,smbios-entry-point-type=64`
// (tests/vm/init, mode smbios): the firmware publishes an SMBIOS 3.x `_SM3_`
// entry point with a 64-bit table address.
import assert from "node:assert/strict";
import { MemkitError, PhysicalMemory } from "../../../mod.ts";

const hex = (n: bigint | number): string => `0x${n.toString(16)}`;
const hexBytes = (b: Uint8Array): string =>
  [...b].map((x) => x.toString(16).padStart(2, "0")).join("");

Deno.test("smbios() finds the _SM3_ entry point and reads back the serial QEMU was given", () => {
  using mem = PhysicalMemory.open();
  const s = mem.smbios();
  assert.equal(s.entryPoint.anchor, "_SM3_");
  assert.equal(s.entryPoint.version.major, 3);
  assert.equal(s.system?.serial, Deno.env.get("MEMKIT_SERIAL"));
  assert.equal(s.system?.uuid, "6d656d6b-6974-4000-8000-00000000cafe");
  assert.ok(s.structures.at(-1)?.type === 127, "the table ends with type 127");
  console.log(
    `MEMKIT-INFO smbios ${s.entryPoint.anchor} v${s.version} entry ${hex(s.entryPoint.address)} ` +
      `table ${hex(s.entryPoint.tableAddress)} max ${s.entryPoint.tableLength}`,
  );
  const ep = mem.read(s.entryPoint.address, 24);
  console.log(`MEMKIT-HOSTCHECK smbios3-entry-point ${hex(s.entryPoint.address)} ${hexBytes(ep)}`);
  const table = mem.read(s.entryPoint.tableAddress, 32);
  console.log(
    `MEMKIT-HOSTCHECK smbios3-table ${hex(s.entryPoint.tableAddress)} ${hexBytes(table)}`,
  );
});

Deno.test("the _SM3_ table maps uncached or says it is mapped cached; the default mode works", () => {
  using mem = PhysicalMemory.open();
  const { tableAddress } = mem.smbios().entryPoint;
  let how = "mapped";
  try {
    mem.map(tableAddress, 64, { cache: "uncached" }).close();
  } catch (e) {
    assert.ok(e instanceof MemkitError, String(e));
    assert.match(e.message, /cache "default"/);
    how = `${e.code}: ${e.message}`;
  }
  console.log(`MEMKIT-INFO uncached _SM3_ table at ${hex(tableAddress)}: ${how}`);
  using m = mem.map(tableAddress, 64);
  assert.deepEqual(m.read(), mem.read(tableAddress, 64));
});
