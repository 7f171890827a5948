// The physical address of a buffer: where each page of a memfd's mapping sits in RAM.
//
//   deno run --allow-ffi --allow-read=/proc/self/pagemap examples/physical_address.ts
//
// Needs root (CAP_SYS_ADMIN): without it the kernel hides frame numbers, and translate()
// throws PermissionDenied saying so. The buffer stays mapped until stdin ends (press Enter, or
// run it with </dev/null), so that you can look at it meanwhile with
// `memkit pagemap <pid> <address>+16K`.
//
// A physical address is a snapshot, not a handle: the kernel may move the page (compaction,
// NUMA balancing) even while it is locked. Read it again before each use, and never hand it to
// a device or another process as if it stayed put.
import { lock, MemFd, Pagemap, pageSize } from "@memkit/memkit";

const page = pageSize(), pages = 4;
using fd = MemFd.create("physical-address-example", { size: pages * page });
using m = fd.map({ access: "rw" });
m.bytes().fill(1); // touch every page: an untouched page has no frame yet
lock(m); // resident until close(): never swapped out (still movable, see above)

using pm = Pagemap.open("self");
if (!pm.pfnVisible) {
  console.error("frame numbers are hidden from this user: run it as root (CAP_SYS_ADMIN)");
  Deno.exit(1);
}
console.log(`pid ${Deno.pid}: ${pages} pages at virtual 0x${m.address.toString(16)}`);
for (let i = 0; i < pages; i++) {
  const virt = m.address + BigInt(i * page + 0x123); // any byte: the page offset carries over
  const phys = pm.translate(virt); // null for a page not present
  console.log(`  virtual 0x${virt.toString(16)} -> physical 0x${phys?.toString(16) ?? "none"}`);
}

// Hold the buffer until stdin ends, then let `using` unmap it and close the memfd.
for await (const _ of Deno.stdin.readable) break;
