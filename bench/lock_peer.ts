// A peer process for bench/lock_bench.ts: receives the bench's memfd over a
// memkit socket (sealed, checked before it is mapped: receiveShared in
// tests/fixtures/share.ts), then plays one of these modes:
//
//   deno | c      says it is ready, waits for the go flag, then runs n
//                 increments of the shared counter under the SharedMutex at
//                 offset 0, from JavaScript (SharedMutex.lock/unlock) or
//                 from C (bl_increments in bench/c/lock.c: memkit's lock
//                 code in a C loop)
//   robust-hold   locks the glibc robust pthread mutex at offset 0
//                 (bl_robust_hold), says so, and waits to be killed
//
//   deno run --allow-ffi --allow-read=<repo>,<socket> --allow-write=<socket> \
//     --allow-net=unix:<socket> bench/lock_peer.ts <mode> <socket> [n]
//
// Layout after the mutex: u32 counter at 64, ready count at 128, go flag at
// 132, done count at 136.
import { SharedMutex } from "../mod.ts";
import { receiveShared } from "../tests/fixtures/share.ts";
import { openBaseline } from "./_baseline.ts";

const [mode, socket, count] = Deno.args;
const n = Number(count);
const { mapping: m } = await receiveShared(socket);
const words = m.view(Uint32Array, 64, 20);
const COUNTER = 0, READY = 16, GO = 17, DONE = 18;

if (mode === "robust-hold") {
  const c = openBaseline("liblock.so", {
    bl_robust_hold: { parameters: ["u64"], result: "i64" },
  });
  const r = c.bl_robust_hold(m.address);
  if (r < 0n) throw new Error(`bl_robust_hold failed: errno ${-r}`);
  words[READY] = 1;
  await new Promise(() => setInterval(() => {}, 1000)); // until killed
}

const mutex = SharedMutex.attach(m, 0);
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
