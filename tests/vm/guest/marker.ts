// Run in the guest by tests/vm/init: writes the host's random marker into a
// memfd page, prints the page's guest-physical address from Pagemap.translate
// (MEMKIT-HOSTCHECK, for the host to read through QMP), and sleeps, keeping
// the page, until QEMU quits.
import { MemFd, Pagemap } from "../../../mod.ts";

const marker = Deno.env.get("MEMKIT_MARKER") ?? "";
const bytes = new Uint8Array(marker.match(/../g)!.map((h) => parseInt(h, 16)));
const fd = MemFd.create("marker", { size: 4096 });
const m = fd.map({ access: "rw" });
m.bytes().set(bytes, 0x123);
using pm = Pagemap.open("self");
const phys = pm.translate(m.address + 0x123n);
if (phys === null) throw new Error("the marker page is not present");
console.log(
  `MEMKIT-PAGEMAP virtual 0x${(m.address + 0x123n).toString(16)} physical 0x${phys.toString(16)}`,
);
console.log(`MEMKIT-HOSTCHECK pagemap-marker 0x${phys.toString(16)} ${marker}`);
setInterval(() => m.bytes()[0], 1 << 30); // keeps the mapping, and the process, alive
