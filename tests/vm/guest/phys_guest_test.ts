// Runs INSIDE the QEMU guest (tests/vm/init), as root, on a kernel with
// CONFIG_DEVMEM, STRICT_DEVMEM and IO_STRICT_DEVMEM, with only the flags
// memkit's permission table names (see tests/vm/init). No npm imports: the
// guest has no network. Lines starting MEMKIT-HOSTCHECK ask the host to read
// the same guest-physical bytes through QEMU's monitor (tests/vm/vm_test.ts).
import assert from "node:assert/strict";
import { MemkitError, PhysicalMemory, type PhysicalRange, physicalRanges } from "../../../mod.ts";

const hex = (n: bigint | number): string => `0x${n.toString(16)}`;
const hexBytes = (b: Uint8Array): string =>
  [...b].map((x) => x.toString(16).padStart(2, "0")).join("");

/** Asks the host to check that guest-physical `address` holds `bytes`. */
function hostCheck(name: string, address: bigint | number, bytes: Uint8Array): void {
  console.log(`MEMKIT-HOSTCHECK ${name} ${hex(address)} ${hexBytes(bytes)}`);
}

function ranges(): PhysicalRange[] {
  return physicalRanges();
}

Deno.test("PhysicalMemory.open() opens /dev/mem as root with only --allow-read=/dev/mem", () => {
  using mem = PhysicalMemory.open();
  assert.equal(mem.device, "/dev/mem");
  assert.equal(mem.writable, false);
});

Deno.test("physicalRanges() matches cat /proc/iomem and lists System RAM and the BIOS ROM", () => {
  const r = ranges();
  const out = new Deno.Command("cat", { args: ["/proc/iomem"], stdout: "piped" }).outputSync();
  const lines = new TextDecoder().decode(out.stdout).split("\n").filter((l) => l.includes(" : "));
  assert.equal(r.length, lines.length);
  assert.ok(r.some((x) => x.name === "System RAM" && x.start >= 0x100000));
  assert.ok(r.some((x) => x.start <= 0xf0000 && x.end >= 0x100000), "the BIOS area is listed");
});

Deno.test("smbios() finds the entry point in 0xF0000-0xFFFFF and reads back the serial QEMU was given", () => {
  using mem = PhysicalMemory.open();
  const s = mem.smbios();
  const serial = Deno.env.get("MEMKIT_SERIAL");
  assert.ok(serial, "the host passes MEMKIT_SERIAL");
  assert.equal(s.system?.serial, serial);
  assert.equal(s.system?.manufacturer, "memkit");
  assert.equal(s.system?.uuid, "6d656d6b-6974-4000-8000-00000000cafe");
  assert.ok(s.bios?.vendor, "type 0 has a vendor");
  assert.ok(s.entryPoint.address >= 0xf0000 && s.entryPoint.address < 0x100000);
  console.log(
    `MEMKIT-INFO smbios ${s.entryPoint.anchor} v${s.version} entry ${hex(s.entryPoint.address)} ` +
      `table ${hex(s.entryPoint.tableAddress)}+${s.entryPoint.tableLength} ` +
      `bios "${s.bios?.vendor}" "${s.bios?.version}" product "${s.system?.product}"`,
  );
  hostCheck("smbios-entry-point", s.entryPoint.address, mem.read(s.entryPoint.address, 16));
  hostCheck("smbios-table", s.entryPoint.tableAddress, mem.read(s.entryPoint.tableAddress, 32));
});

Deno.test("a mapping of the BIOS area equals what read() of the same range returns", () => {
  using mem = PhysicalMemory.open();
  using m = mem.map(0xf0000, 0x10000);
  const copy = mem.read(0xf0000, 0x10000);
  assert.deepEqual(m.bytes(), copy);
  // An unaligned window: the view starts at the exact byte.
  using w = mem.map(0xf0123, 77);
  assert.deepEqual(w.read(), copy.slice(0x123, 0x123 + 77));
  hostCheck("bios-area", 0xffff0, copy.slice(0xfff0, 0x10000));
});

Deno.test("readU8/16/32/64 at the SMBIOS anchor equal its first bytes, mapped or not", () => {
  using mem = PhysicalMemory.open();
  const at = mem.smbios().entryPoint.address;
  const bytes = mem.read(at, 8);
  const dv = new DataView(bytes.buffer);
  assert.equal(mem.readU32(at), dv.getUint32(0, true));
  assert.equal(mem.readU8(at), bytes[0]);
  assert.equal(mem.readU16(at + 2n), dv.getUint16(2, true));
  assert.equal(mem.readU64(at), dv.getBigUint64(0, true));
  assert.ok(["_SM_", "_SM3"].includes(String.fromCharCode(...bytes.subarray(0, 4))));
  using m = mem.map(at, 8); // now through the live mapping
  assert.equal(m.length, 8);
  assert.equal(mem.readU32(at), dv.getUint32(0, true));
  assert.equal(mem.readU64(at), dv.getBigUint64(0, true));
});

Deno.test("System RAM above 1 MiB is refused with the STRICT_DEVMEM explanation, and nothing crashes", () => {
  using mem = PhysicalMemory.open();
  const ram = ranges().find((r) => r.name === "System RAM" && r.start >= 0x100000)!;
  const at = ram.start + 0x10000n;
  for (const attempt of [() => mem.map(at, 4096), () => mem.read(at, 16), () => mem.readU32(at)]) {
    assert.throws(attempt, (e: unknown) => {
      assert.ok(e instanceof MemkitError);
      assert.equal(e.code, "EPERM");
      assert.match(e.message, /System RAM/);
      assert.match(e.message, /CONFIG_STRICT_DEVMEM/);
      return true;
    });
  }
  // A read() that starts in the allowed BIOS area and runs into RAM stops there, explained.
  assert.throws(() => mem.read(0xff000, 0x2000), /STRICT_DEVMEM/);
});

Deno.test("a range a driver claimed is refused with IO_STRICT_DEVMEM and the driver's name", () => {
  using mem = PhysicalMemory.open();
  const claimed = ranges().find((r) => /^(IOAPIC|HPET|Local APIC)/.test(r.name) && r.depth === 0) ??
    ranges().find((r) => /^(IOAPIC|HPET)/.test(r.name));
  assert.ok(claimed, "the guest has an IOAPIC or HPET range");
  assert.throws(() => mem.map(claimed.start, 4), (e: unknown) => {
    assert.ok(e instanceof MemkitError);
    assert.equal(e.code, "EPERM");
    assert.match(e.message, /IO_STRICT_DEVMEM/);
    assert.ok(e.message.includes(claimed.name), e.message);
    return true;
  });
});

Deno.test("an uncached mapping works or says the range is mapped cached; the default mode works", () => {
  using mem = PhysicalMemory.open();
  const { tableAddress, tableLength } = mem.smbios().entryPoint;
  let uncached = "mapped";
  try {
    using u = mem.map(tableAddress, tableLength, { cache: "uncached" });
    assert.deepEqual(u.read(), mem.read(tableAddress, tableLength));
  } catch (e) {
    assert.ok(e instanceof MemkitError, String(e));
    assert.match(e.message, /cache "default"/);
    uncached = `${e.code}: ${e.message}`;
  }
  console.log(`MEMKIT-INFO uncached SMBIOS table at ${hex(tableAddress)}: ${uncached}`);
  using d = mem.map(tableAddress, tableLength);
  assert.equal(d.length, tableLength);
  using bios = mem.map(0xf0000, 16, { cache: "uncached" });
  assert.deepEqual(bios.read(), mem.read(0xf0000, 16));
});

Deno.test("uncached over firmware memory the kernel maps cached is EAGAIN, explained; default maps it", () => {
  using mem = PhysicalMemory.open();
  // Firmware ranges above 1 MiB (in QEMU, SeaBIOS's ACPI tables at the top of
  // RAM) that the kernel keeps mapped write-back.
  const firmware = ranges().filter((r) =>
    r.depth === 0 && r.start >= 0x100000 && r.start < 2 ** 32 && /^(Reserved|ACPI)/.test(r.name)
  );
  let refused = 0;
  for (const r of firmware) {
    let how = "mapped";
    try {
      mem.map(r.start, 4096, { cache: "uncached" }).close();
    } catch (e) {
      assert.ok(e instanceof MemkitError, String(e));
      assert.equal(e.code, "EAGAIN");
      assert.match(e.message, /already maps .* cached/);
      assert.match(e.message, /cache "default"/);
      how = `${e.code}: ${e.message}`;
      refused++;
      using m = mem.map(r.start, 4096); // the default mode works
      assert.equal(m.length, 4096);
    }
    console.log(`MEMKIT-INFO "${r.name}" ${hex(r.start)}-${hex(r.end - 1n)}: uncached ${how}`);
  }
  assert.ok(refused > 0, "a firmware range the kernel maps cached (the ACPI tables)");
});

Deno.test("writeU8/16/32/64 through /dev/mem are single stores into the ivshmem BAR", () => {
  const bar = Number(Deno.env.get("MEMKIT_IVSHMEM"));
  const token = BigInt(`0x${Deno.env.get("MEMKIT_TOKEN")}`);
  assert.ok(bar > 0, "the guest has an ivshmem device");
  using mem = PhysicalMemory.open({ write: true });
  mem.writeU64(bar, token);
  mem.writeU32(bar + 8, Number(token & 0xffffffffn));
  mem.writeU16(bar + 12, 0xbeef);
  mem.writeU8(bar + 14, 0x5a);
  mem.writeU8(bar + 15, 0xa5);
  assert.equal(mem.readU64(bar), token);
  assert.equal(mem.readU32(bar + 8), Number(token & 0xffffffffn));
  using m = mem.map(bar, 4096, { access: "rw" });
  assert.deepEqual([...m.bytes(12, 4)], [0xef, 0xbe, 0x5a, 0xa5]);
  mem.writeU32(bar + 16, 0x01020304); // through the live mapping
  assert.deepEqual([...m.bytes(16, 4)], [4, 3, 2, 1]);
  m.bytes(20, 4).set([0xde, 0xad, 0xbe, 0xef]);
  assert.equal(mem.readU32(bar + 20), 0xefbeadde);
  hostCheck("ivshmem-bar", bar, mem.read(bar, 24));
  console.log(`MEMKIT-HOSTFILE ivshmem 0 ${hexBytes(mem.read(bar, 24))}`);
});

Deno.test("a user other than root gets EACCES, saying root is needed", () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--no-check",
      "--no-lock",
      "--no-config",
      "--allow-ffi",
      "--allow-read=/dev/mem",
      new URL("./nobody.ts", import.meta.url).pathname,
    ],
    uid: 65534,
    gid: 65534,
    env: { DENO_DIR: "/tmp/deno-nobody", HOME: "/tmp" },
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  const text = new TextDecoder().decode(child.stdout).trim();
  assert.equal(child.code, 0, new TextDecoder().decode(child.stderr));
  const r = JSON.parse(text.split("\n").at(-1)!);
  assert.equal(r.code, "EACCES");
  assert.match(r.message, /run as root/);
});
