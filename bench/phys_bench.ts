/**
 * Physical memory reads: memkit beside C, in the same `deno bench` run.
 *
 * In the QEMU guest (`make bench-vm`) the device is /dev/mem and the window
 * the BIOS area (0xF0000, 64 KiB); on a host without /dev/mem (`make bench`
 * here) it is /dev/zero, which maps like memory: the loads are the same,
 * only the pages differ.
 *
 * - "1M 32-bit reads": one million loads cycling through the window, by a C
 *   loop over an mmap (`pb_read32`, the baseline), by memkit's zero-copy
 *   `Uint32Array` view of `PhysicalMemory.map()`, and by `readU32()` through
 *   that live mapping (one FFI call, one exact 32-bit load, per read).
 *   The goal (issue 5): memkit's view within 3x of C.
 * - "one read, nothing kept mapped": `readU32()` mapping the page, loading,
 *   unmapping in one native call, beside C doing the same (`pb_peek32`).
 *   busybox `devmem` does this plus a whole process per read: the guest's
 *   init times it in a shell loop and the host prints it next to these.
 *
 * Needs --allow-ffi, --allow-read=/dev/mem,/dev/zero and
 * --v8-flags=--js-immutable-arraybuffer.
 */
import { PhysicalMemory } from "../mod.ts";

const READS = 1_000_000;
const WINDOW = 0x10000;

function pick(): { device: string; base: number } {
  for (const device of ["/dev/mem", "/dev/zero"]) {
    try {
      PhysicalMemory.open({ device }).close();
      return { device, base: 0xf0000 };
    } catch {
      // next
    }
  }
  throw new Error("Cannot open /dev/mem or /dev/zero: grant --allow-read for them");
}
const { device, base } = pick();
const mem = PhysicalMemory.open({ device });
const mapping = mem.map(base, WINDOW);
const words = mapping.view(Uint32Array);
const mask = words.length - 1;

const c = Deno.dlopen(new URL("../build/bench/libphys_baseline.so", import.meta.url), {
  pb_map: { parameters: ["buffer", "u64", "u64"], result: "i64" },
  pb_read32: { parameters: ["u64"], result: "i64" },
  pb_peek32: { parameters: ["u64"], result: "i64" },
});
const ret = c.symbols.pb_map(new TextEncoder().encode(device + "\0"), BigInt(base), BigInt(WINDOW));
if (ret < 0n) throw new Error(`pb_map(${device}) failed: ${ret}`);
console.log(`device ${device}, window 0x${base.toString(16)}+0x${WINDOW.toString(16)}`);

let sink = 0;

Deno.bench({
  name: "C: 1M volatile 32-bit loads through an mmap",
  group: "1M 32-bit reads",
  baseline: true,
  fn() {
    sink ^= Number(c.symbols.pb_read32(BigInt(READS)));
  },
});

Deno.bench({
  name: "memkit: 1M reads of a Uint32Array view of PhysicalMemory.map()",
  group: "1M 32-bit reads",
  fn() {
    let sum = 0;
    for (let i = 0; i < READS; i++) sum = (sum + words[i & mask]) | 0;
    sink ^= sum;
  },
});

Deno.bench({
  name: "memkit: 1M readU32() through the live mapping (one FFI call each)",
  group: "1M 32-bit reads",
  n: 3,
  warmup: 1,
  fn() {
    let sum = 0;
    for (let i = 0; i < READS; i++) sum = (sum + mem.readU32(base + ((i & mask) << 2))) | 0;
    sink ^= sum;
  },
});

// A second handle with no mapping of its own: its readU32() maps around each load.
const bare = PhysicalMemory.open({ device });
const far = base + 0x1000;

Deno.bench({
  name: "C: mmap, one 32-bit load, munmap",
  group: "one read, nothing kept mapped",
  baseline: true,
  fn() {
    sink ^= Number(c.symbols.pb_peek32(BigInt(far)));
  },
});

Deno.bench({
  name: "memkit: readU32() mapping the page around the load",
  group: "one read, nothing kept mapped",
  fn() {
    sink ^= bare.readU32(far);
  },
});

globalThis.addEventListener("unload", () => {
  if (sink === 0.5) console.log(sink);
});
