// Stitching: chunks that live in separate buffers (one memfd each, as they arrived from a
// socket, a file or another process) read as one contiguous view, without copying them.
//
//   deno run --allow-ffi examples/stitch.ts
//
// stitch() reserves one range and maps each chunk into it in one native call; reads and writes
// through the view go straight to the chunks' own pages. Chunks are whole pages.
import { MemFd, pageSize, stitch } from "@memkit/memkit";

const chunkSize = 4 * pageSize(), count = 4;
const words = chunkSize / 4;

// The chunks arrive out of order; chunk i holds the u32s i*words .. (i+1)*words - 1.
const arrived = [2, 0, 3, 1];
using closer = new DisposableStack(); // closes every chunk's memfd at the end
const chunks = new Map<number, MemFd>();
for (const i of arrived) {
  const fd = closer.use(MemFd.create(`chunk-${i}`, { size: chunkSize }));
  using m = fd.map();
  m.view(Uint32Array).forEach((_, k, a) => a[k] = i * words + k);
  chunks.set(i, fd);
}

// One view over chunks 0, 1, 2, 3, in that order.
const order = [...chunks.keys()].sort((a, b) => a - b);
using view = stitch(order.map((i) => ({ source: chunks.get(i)! })));
console.log(
  `stitched ${count} chunks (arrived as ${arrived.join(", ")}) into one ` +
    `${view.length / 1024} KiB view at 0x${view.address.toString(16)}, no copy`,
);

// The whole range reads as one array: every u32 follows the one before it.
const all = view.view(Uint32Array);
const consecutive = all.every((v, k) => v === k);
console.log(`the view reads ${all.length} consecutive u32s: ${consecutive}`);

// A value across a chunk boundary is one read, with no special case.
const across = new DataView(view.bytes().buffer).getBigUint64(chunkSize - 4, true);
const expected = (BigInt(words) << 32n) | BigInt(words - 1);
console.log(`a u64 across the boundary of chunks 0 and 1 reads as written: ${across === expected}`);

// A write through the view lands in the chunk's own memory.
const at = chunkSize + 100;
view.bytes()[at] = 0xee;
using chunk1 = chunks.get(1)!.map({ access: "r" });
const landed = chunk1.read(100, 1)[0] === 0xee;
console.log(`a write at view offset ${at} is in chunk 1 at offset 100: ${landed}`);
