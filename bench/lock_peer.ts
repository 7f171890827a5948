// A contending process for bench/lock_bench.ts: maps the bench's memfd
// through /proc/<parent pid>/fd/<n>, says it is ready, waits for the go
// flag, then runs n increments of the shared counter under the SharedMutex
// at offset 0, from JavaScript (SharedMutex.lock/unlock) or from C
// (bl_increments in bench/c/lock.c: memkit's lock code in a C loop).
//
//   deno run --allow-ffi --allow-read=<repo>,/proc/<ppid>/fd --allow-write=/proc/<ppid>/fd \
//     bench/lock_peer.ts <deno|c> <path> <n>
//
// Layout after the mutex: u32 counter at 64, ready count at 128, go flag at
// 132, done count at 136.
import { mapFile, SharedMutex } from "../mod.ts";
import { openBaseline } from "./_baseline.ts";

const [mode, path, count] = Deno.args;
const n = Number(count);
const m = mapFile(path, { access: "rw" });
const mutex = SharedMutex.attach(m, 0);
const words = m.view(Uint32Array, 64, 20);
const COUNTER = 0, READY = 16, GO = 17, DONE = 18;

mutex.withLock(() => words[READY]++);
while (words[GO] === 0) await new Promise((resolve) => setTimeout(resolve, 0));
if (mode === "c") {
  const c = openBaseline("liblock.so", {
    bl_increments: { parameters: ["u64", "u64", "u64", "u64"], result: "i64" },
    mk_lock_self: { parameters: [], result: "i64" },
  });
  const self = c.mk_lock_self() as bigint;
  const r = c.bl_increments(m.address, self, m.address + 64n, BigInt(n));
  if (r < 0n) throw new Error(`bl_increments failed: errno ${-r}`);
} else {
  for (let i = 0; i < n; i++) {
    mutex.lock();
    words[COUNTER]++;
    mutex.unlock();
  }
}
mutex.withLock(() => words[DONE]++);
