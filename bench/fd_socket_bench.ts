/**
 * Benchmark of fd passing: one round trip is a memfd sent with 8 bytes of
 * metadata over a memkit socket (`FdConnection.trySend`), received and
 * checked before any mapping (`tryReceive`: memfd, seals, size, access) and
 * closed, beside `fs_exchange` in `bench/c/fd_socket.c`, a C loop making the
 * same system calls (sendmsg, recvmsg, fstat, fcntl, fstatfs, readlink,
 * fcntl F_GET_SEALS, close) on a socketpair, in the same run. Round trips
 * per second are 1 / the time per iteration; the ratio is read from the "x
 * slower than" line of the summary.
 *
 * Needs the socket path's permissions (`make bench` grants them):
 * `--allow-read=/tmp --allow-write=/tmp --allow-net=unix:/tmp/memkit-bench.sock`.
 */

import { FdConnection, FdListener, MemFd } from "../mod.ts";
import { openBaseline } from "./_baseline.ts";

const c = openBaseline("libfd_socket.so", {
  fs_pair: { parameters: ["buffer"], result: "i64" }, // int64_t (int32_t *out)
  fs_exchange: { parameters: ["i32", "i32", "i32"], result: "i64" }, // (a, b, memfd)
});

const PATH = "/tmp/memkit-bench.sock";
const listener = FdListener.listen(PATH);
const client = FdConnection.connect(PATH);
let server: FdConnection | undefined;
while (!(server = listener.tryAccept())) await new Promise((r) => setTimeout(r, 1));
// The path is free again for the bench files after this one (bench/lock_bench.ts).
listener.close();
const memfd = MemFd.create("bench", { size: 4096 });
memfd.seal(["shrink", "grow"]);
const metadata = new TextEncoder().encode("metadata");

const pair = new Int32Array(2);
if (c.fs_pair(pair) < 0n) throw new Error("Cannot make a socketpair");

const GROUP = "fd passing round trip (memfd + 8 B, checked, closed)";

Deno.bench({
  name: "C: sendmsg, recvmsg, fstat, fcntl, fstatfs, readlink, F_GET_SEALS, close",
  group: GROUP,
  baseline: true,
  fn() {
    const ret = c.fs_exchange(pair[0], pair[1], memfd.fd);
    if (ret < 0n) throw new Error(`Cannot run fs_exchange: errno ${-ret}`);
  },
});

Deno.bench({
  name: "memkit: trySend + tryReceive + close",
  group: GROUP,
  fn() {
    client.trySend(memfd, { metadata });
    server!.tryReceive({ require: ["grow"] })!.memfd.close();
  },
});
