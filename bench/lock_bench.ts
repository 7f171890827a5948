/**
 * Benchmarks of SharedMutex, each beside its C baseline in the same run:
 *
 * - "uncontended lock+unlock x1000": `mutex.lock(); mutex.unlock()` from
 *   JavaScript against `bl_lock_loop` in `bench/c/lock.c`, which drives the
 *   same native functions (cbits/lock.c compiled in) in a C loop, and against
 *   the two FFI symbols called bare (what the SharedMutex wrapper adds).
 *   Goal: within 3x of C.
 * - "2 processes, 100,000 contended increments each": two processes
 *   increment one counter under the mutex; timed from the go flag to both
 *   done (process start-up is outside the timing): increments per second
 *   are 200,000 / the time. JavaScript peers against C peers
 *   (`bench/lock_peer.ts`, the loop `bl_increments` in C).
 * - "holder killed with SIGKILL to next owner": a peer holds the lock and
 *   is killed with SIGKILL while this process waits on a nonblocking call;
 *   the time from the kill to the lock being taken over. SharedMutex's
 *   lockAsync() (the design bound: one 10 ms liveness slice, plus
 *   scheduling; the goal: within 100 ms) against glibc's robust
 *   pthread mutex waited on from C (`bl_robust_take`), which the kernel's
 *   robust list hands over at once but which memkit cannot use (it ties
 *   ownership to a thread: see README, "Locks inside shared memory").
 *
 * The peers get the memfd as a user would: sealed and sent over a memkit
 * socket at /tmp/memkit-bench.sock (tests/fixtures/share.ts), one hand-off
 * at a time. The multi-process cases need `--allow-run` for Deno and the
 * socket path's permissions, which `make bench` grants; alone:
 *
 *   make build build/bench/liblock.so
 *   deno bench --allow-ffi --allow-run --allow-read=/tmp --allow-write=/tmp \
 *     --allow-net=unix:/tmp/memkit-bench.sock --v8-flags=--js-immutable-arraybuffer \
 *     bench/lock_bench.ts
 */

import { MemFd, SharedMutex } from "../mod.ts";
import { ok, openBaseline } from "./_baseline.ts";
import { spawnSharingPeer } from "../tests/fixtures/share.ts";

const c = openBaseline("liblock.so", {
  // int64_t (uint64_t address, uint64_t self, uint64_t n)
  bl_lock_loop: { parameters: ["u64", "u64", "u64"], result: "i64" },
  // int64_t (void)
  mk_lock_self: { parameters: [], result: "i64" },
  // int64_t (uint64_t address, uint64_t self, int64_t timeout_ns, uint32_t flags, const int32_t *cancel)
  mk_mutex_lock: { parameters: ["u64", "u64", "i64", "u32", "buffer"], result: "i64" },
  // int64_t (uint64_t address, uint64_t self)
  mk_mutex_unlock: { parameters: ["u64", "u64"], result: "i64" },
  // int64_t (uint64_t address)
  bl_robust_init: { parameters: ["u64"], result: "i64" },
  // int64_t (uint64_t address): waits
  bl_robust_take: { parameters: ["u64"], result: "i64", nonblocking: true },
});
const self = c.mk_lock_self() as bigint;

// ---- uncontended ----

const fd = MemFd.create("lock-bench", { size: 4096 });
const m = fd.map();
const mutex = SharedMutex.init(m, 0);
const address = m.address;
const UNCONTENDED = "uncontended lock+unlock x1000";

Deno.bench({
  name: "C: mk_mutex_lock + mk_mutex_unlock in a C loop",
  group: UNCONTENDED,
  baseline: true,
  fn() {
    ok(c.bl_lock_loop(address, self, 1000n), "bl_lock_loop");
  },
});

Deno.bench({
  name: "memkit: SharedMutex lock() + unlock()",
  group: UNCONTENDED,
  fn() {
    for (let i = 0; i < 1000; i++) {
      mutex.lock();
      mutex.unlock();
    }
  },
});

Deno.bench({
  name: "the two FFI symbols called bare from JavaScript",
  group: UNCONTENDED,
  fn() {
    for (let i = 0; i < 1000; i++) {
      c.mk_mutex_lock(address, self, 10_000_000_000n, 0, null);
      c.mk_mutex_unlock(address, self);
    }
  },
});

// ---- processes ----

const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const SOCKET = "/tmp/memkit-bench.sock";
const canRun = Deno.permissions.querySync({ name: "run" }).state === "granted" &&
  Deno.permissions.querySync(
      { name: "net", host: `unix:${SOCKET}` } as Deno.NetPermissionDescriptor,
    )
      .state === "granted";
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const N = 100_000;
const peerOptions = { stdout: "inherit", stderr: "inherit", socket: SOCKET } as const;

/** A memfd of one page, sealed against shrinking and growing (what the peers require). */
function sealed(name: string): MemFd {
  const mem = MemFd.create(name, { size: 4096 });
  mem.seal(["shrink", "grow"]);
  return mem;
}

/**
 * A peer `script` in `mode`, given `mem` over the socket (one hand-off at a
 * time); its stdout is this process's, or with `quiet` none (the holders
 * print "locked", which is no bench output).
 */
function peer(script: string, mem: MemFd, mode: string, quiet = false): Promise<Deno.ChildProcess> {
  return spawnSharingPeer(script, mem, mode, [String(N)], {
    ...peerOptions,
    stdout: quiet ? "null" : "inherit",
  });
}
const CONTENDED = "2 processes, 100,000 contended increments each";

async function contend(b: Deno.BenchContext, mode: "deno" | "c"): Promise<void> {
  using mem = sealed("lock-bench-contend");
  using map = mem.map();
  using mx = SharedMutex.init(map, 0);
  const words = map.view(Uint32Array, 64, 20);
  const children: Deno.ChildProcess[] = [];
  for (let i = 0; i < 2; i++) children.push(await peer(`${root}/bench/lock_peer.ts`, mem, mode));
  while (mx.withLock(() => words[16]) < 2) await sleep(1);
  b.start();
  words[17] = 1;
  while (mx.withLock(() => words[18]) < 2) await sleep(1);
  b.end();
  for (const child of children) {
    const status = await child.status;
    if (!status.success) throw new Error(`a ${mode} peer failed: ${JSON.stringify(status)}`);
  }
  if (words[0] !== 2 * N) throw new Error(`lost increments: ${words[0]} of ${2 * N}`);
}

Deno.bench({
  name: "C peers: bl_increments",
  group: CONTENDED,
  baseline: true,
  ignore: !canRun,
  n: 5,
  warmup: 1,
  async fn(b) {
    await contend(b, "c");
  },
});

Deno.bench({
  name: "Deno peers: SharedMutex lock() + unlock()",
  group: CONTENDED,
  ignore: !canRun,
  n: 5,
  warmup: 1,
  async fn(b) {
    await contend(b, "deno");
  },
});

const KILLED = "holder killed with SIGKILL to next owner";

Deno.bench({
  name: "C: glibc robust pthread mutex, waited on in C (the kernel's robust list)",
  group: KILLED,
  baseline: true,
  ignore: !canRun,
  n: 5,
  warmup: 0,
  async fn(b) {
    using mem = sealed("lock-bench-robust");
    using map = mem.map();
    ok(c.bl_robust_init(map.address), "bl_robust_init");
    const ready = map.view(Uint32Array, 128, 1);
    const child = await peer(`${root}/bench/lock_peer.ts`, mem, "robust-hold", true);
    while (ready[0] === 0) await sleep(5);
    const waiting = c.bl_robust_take(map.address);
    await sleep(30);
    b.start();
    child.kill("SIGKILL");
    const died = ok(await waiting, "bl_robust_take");
    b.end();
    if (died !== 1) throw new Error("the robust mutex was not taken over from a dead owner");
    await child.status;
  },
});

Deno.bench({
  name: "memkit: SharedMutex lockAsync() (10 ms liveness slices)",
  group: KILLED,
  ignore: !canRun,
  n: 5,
  warmup: 0,
  async fn(b) {
    using mem = sealed("lock-bench-kill");
    using map = mem.map();
    using mx = SharedMutex.init(map, 0);
    const child = await peer(`${root}/tests/fixtures/lock_child.ts`, mem, "hold", true);
    while (mx.owner() === null) await sleep(5);
    const waiting = mx.lockAsync({ timeoutMs: 30_000 });
    await sleep(30);
    b.start();
    child.kill("SIGKILL");
    const { ownerDied } = await waiting;
    b.end();
    if (!ownerDied) throw new Error("the lock was not taken over from a dead owner");
    mx.markConsistent();
    mx.unlock();
    await child.status;
  },
});

if (!canRun) {
  console.log(
    `lock_bench: the multi-process cases need --allow-run and the permissions of ${SOCKET} ` +
      "(see the header)",
  );
}
