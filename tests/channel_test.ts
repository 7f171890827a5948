// flags: --allow-ffi --allow-read=/tmp --allow-write=/tmp --allow-net --allow-run=$DENO --allow-sys=osRelease --v8-flags=--js-immutable-arraybuffer
// Channel against the kernel and a second Deno process: 100,000 messages in
// order through a 4 KiB ring (thousands of wraps) with a sleeping receiver;
// back-pressure without overwrite; a sender killed with SIGKILL detected
// from the socket's hangup; attach refusing offers that are no channel; and
// a hostile sender's header values (tail, length) an error, never an access
// out of bounds.
import {
  assert,
  assertEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { Channel, ChannelError, FdConnection, FdListener, MemFd } from "../mod.ts";
import { connectionRaw } from "../src/fd_socket.ts";
import { MK } from "../ffi/symbols.ts";
import { lib } from "../ffi/loader.ts";
import { assertWaitsEnd } from "./fixtures/waits.ts";
import { readUntil } from "./fixtures/child.ts";
import { hasPeerPidfd } from "./fixtures/kernel.ts";
import { channelAddress } from "../src/channel.ts";

const peer = new URL("./fixtures/channel_peer.ts", import.meta.url).pathname;
const FLAGS = ["--allow-ffi", "--allow-read=/tmp", "--allow-write=/tmp", "--allow-net"];
let n = 0;
const tempSocket = () => `/tmp/memkit-chtest-${Deno.pid}-${n++}.sock`;

function spawnPeer(...args: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", ...FLAGS, peer, ...args],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

async function inProcess(capacity = 4096) {
  const listener = FdListener.listen(tempSocket());
  const client = FdConnection.connect(listener.path);
  const server = await listener.accept();
  const tx = await Channel.create(client, { capacity });
  const rx = await Channel.attach(server);
  return {
    tx,
    rx,
    [Symbol.dispose]() {
      tx.close();
      rx.close();
      listener.close();
    },
  };
}

Deno.test("100,000 messages arrive in order from another process through a 4 KiB ring", async () => {
  using listener = FdListener.listen(tempSocket());
  const child = spawnPeer("send", listener.path, "100000", "4096");
  const conn = await listener.accept({ timeoutMs: 30000 });
  using rx = await Channel.attach(conn, { timeoutMs: 30000 });
  assertEquals([rx.role, rx.capacity], ["receiver", 4096]);
  let bad = 0;
  for (let i = 0; i < 100000; i++) {
    const m = await rx.receive({ timeoutMs: 30000 });
    if (m.length !== 4 + (i % 200) || new DataView(m.buffer).getUint32(0, true) !== i) bad++;
    else for (let k = 4; k < m.length; k++) if (m[k] !== ((i + k) & 0xff)) bad++;
  }
  assertEquals(bad, 0);
  const e = await assertRejects(() => rx.receive({ timeoutMs: 30000 }), ChannelError);
  assertEquals(e.reason, "closed");
  const out = await child.output();
  assertEquals([out.signal, out.code], [null, 0], new TextDecoder().decode(out.stderr));
});

Deno.test("a full ring refuses send() and makes sendAsync() wait: nothing is overwritten", async () => {
  using c = await inProcess(4096);
  assertEquals(c.tx.maxMessage, 4088);
  assert(c.tx.send(new Uint8Array(2000).fill(1)));
  assert(c.tx.send(new Uint8Array(2000).fill(2)));
  assert(!c.tx.send(new Uint8Array(100).fill(3)));
  assertEquals(c.tx.reserve(100), undefined);
  let sent = false;
  const pending = c.tx.sendAsync(new Uint8Array(100).fill(3)).then(() => sent = true);
  await new Promise((r) => setTimeout(r, 50));
  assertEquals(sent, false);
  assertEquals(c.rx.tryReceive()!.every((b) => b === 1), true);
  await pending;
  assertEquals(c.rx.tryReceive()!.every((b) => b === 2), true);
  const last = c.rx.tryReceive()!;
  assertEquals([last.length, last[0]], [100, 3]);
  assertEquals(c.rx.tryReceive(), undefined);
  assertThrows(() => c.tx.reserve(4089), RangeError);
  assertThrows(() => c.rx.send(new Uint8Array(1)), TypeError);
  assertThrows(() => c.tx.tryReceive(), TypeError);
});

Deno.test("receive() sleeps without holding the event loop, and ends on close, timeout or abort", async () => {
  using c = await inProcess();
  const got = await assertWaitsEnd(
    (o) => c.rx.receive(o),
    () => c.tx.send(new Uint8Array([7])),
    () => c.rx.close(),
    30,
  );
  assertEquals([...got], [7]);
  // The sender sees the receiver gone once the ring is full: send() and
  // sendAsync() throw rather than wait for space that never comes.
  const e = assertThrows(() => {
    for (let i = 0; i < 10; i++) c.tx.send(new Uint8Array(1000));
  }, ChannelError);
  assertEquals(e.reason, "closed");
  await assertRejects(() => c.tx.sendAsync(new Uint8Array(1000)), ChannelError);
});

Deno.test("a sender killed with SIGKILL: the receiver drains what was sent, then receive() rejects", async () => {
  using listener = FdListener.listen(tempSocket());
  const child = spawnPeer("hang", listener.path, "10", "65536");
  const conn = await listener.accept({ timeoutMs: 30000 });
  using rx = await Channel.attach(conn, { timeoutMs: 30000 });
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  assertStringIncludes(await readUntil(reader, "sent"), "sent");
  const waiting = (async () => {
    for (let i = 0; i < 10; i++) await rx.receive({ timeoutMs: 30000 });
    return rx.receive({ timeoutMs: 30000 });
  })();
  child.kill("SIGKILL");
  const e = await assertRejects(() => waiting, ChannelError);
  assertEquals(e.reason, "peer-gone");
  // Its pidfd or its socket's hangup, whichever the wait saw first.
  assert(/has exited|hung up/.test(e.message), e.message);
  assertEquals((await child.status).signal, "SIGKILL");
  await reader.cancel();
  await child.stderr.cancel();
});

/** A hand-made offer on a connection: memfd (page + capacity), two eventfds. */
function offer(
  conn: FdConnection,
  edit: (h: DataView) => void,
  opts: { seal?: boolean; capacity?: number; fds?: "two" | "memfds" } = {},
): { memfd: MemFd; header: Uint8Array } {
  const page = 4096;
  const capacity = opts.capacity ?? 4096;
  const memfd = MemFd.create("hostile", { size: page + capacity });
  const m = memfd.map();
  const h = new DataView(m.bytes().buffer, 0, page);
  h.setUint32(MK.CHANNEL_OFF_MAGIC, MK.CHANNEL_MAGIC, true);
  h.setUint32(MK.CHANNEL_OFF_VERSION, MK.CHANNEL_VERSION, true);
  h.setUint32(MK.CHANNEL_OFF_CAPACITY, capacity, true);
  edit(h);
  if (opts.seal !== false) memfd.seal(["shrink", "grow"]);
  const ev1 = Number(lib().mk_socket_event());
  const ev2 = Number(lib().mk_socket_event());
  const fds = opts.fds === "two"
    ? [memfd.fd, ev1]
    : opts.fds === "memfds"
    ? [memfd.fd, memfd.fd, memfd.fd]
    : [memfd.fd, ev1, ev2];
  assert(connectionRaw(conn).send(fds, new Uint8Array([1])));
  lib().mk_core_close(ev1);
  lib().mk_core_close(ev2);
  return { memfd, header: m.bytes() };
}

Deno.test("attach() refuses offers that are no channel, closing what they carried", async () => {
  const cases: [string, Parameters<typeof offer>[1], Parameters<typeof offer>[2]][] = [
    ["bad magic", (h) => h.setUint32(0, 0x12345678, true), {}],
    ["version", (h) => h.setUint32(4, 99, true), {}],
    ["the header says", (h) => h.setUint32(8, 8192, true), {}],
    ["not sealed", () => {}, { seal: false }],
    ["power-of-two", () => {}, { capacity: 3 * 4096 }],
    ["expected 3 descriptors", () => {}, { fds: "two" }],
    ["not an eventfd", () => {}, { fds: "memfds" }],
  ];
  for (const [why, edit, opts] of cases) {
    using listener = FdListener.listen(tempSocket());
    const client = FdConnection.connect(listener.path);
    const server = await listener.accept();
    const { memfd } = offer(client, edit, opts);
    const e = await assertRejects(() => Channel.attach(server, { timeoutMs: 5000 }), ChannelError);
    assertEquals(e.reason, "refused", why);
    assertStringIncludes(e.message, why);
    memfd.close();
    client.close();
    server.close();
  }
});

Deno.test("a hostile sender's tail or length out of range is an error, never an out-of-bounds read", async () => {
  using listener = FdListener.listen(tempSocket());
  const client = FdConnection.connect(listener.path);
  const server = await listener.accept();
  const { memfd, header } = offer(client, () => {});
  using rx = await Channel.attach(server, { timeoutMs: 5000 });
  const h = new DataView(header.buffer, 0, 4096);
  const ring = new DataView(header.buffer, 4096, 4096);
  // A tail past the ring.
  h.setUint32(MK.CHANNEL_OFF_TAIL, 8192 + 8, true);
  let e = assertThrows(() => rx.tryReceive(), ChannelError);
  assertEquals(e.reason, "corrupt");
  assertStringIncludes(e.message, "tail");
  // A misaligned tail.
  h.setUint32(MK.CHANNEL_OFF_TAIL, 13, true);
  assertEquals(assertThrows(() => rx.tryReceive(), ChannelError).reason, "corrupt");
  // A length past what was committed.
  ring.setUint32(0, 1 << 30, true);
  h.setUint32(MK.CHANNEL_OFF_TAIL, 8, true);
  e = assertThrows(() => rx.tryReceive(), ChannelError);
  assertStringIncludes(e.message, "length");
  // A fair message still goes through.
  ring.setUint32(0, 3, true);
  assertEquals(rx.tryReceive()!.length, 3);
  // receive() rejects too, rather than sleeping on garbage.
  h.setUint32(MK.CHANNEL_OFF_TAIL, 0xfffffff8, true);
  assertEquals((await assertRejects(() => rx.receive(), ChannelError)).reason, "corrupt");
  memfd.close();
});

/** Message i of the peer's "send" mode: i as 4 bytes, then i % 200 bytes of (i + k) & 0xff. */
function isMessage(m: Uint8Array, i: number): boolean {
  if (m.length !== 4 + (i % 200)) return false;
  if (new DataView(m.buffer, m.byteOffset, 4).getUint32(0, true) !== i) return false;
  for (let k = 4; k < m.length; k++) if (m[k] !== ((i + k) & 0xff)) return false;
  return true;
}

Deno.test("receiveView() and drain() hand out views into the ring of another process's messages; receiveView()'s are detached on release", async () => {
  using listener = FdListener.listen(tempSocket());
  const count = 100000;
  const child = spawnPeer("send", listener.path, String(count), "4096");
  using rx = await Channel.attach(await listener.accept({ timeoutMs: 30000 }), {
    timeoutMs: 30000,
  });
  let bad = 0;
  let stale = 0;
  let i = 0;
  while (i < count) {
    const v = await rx.receiveView({ timeoutMs: 30000 });
    if (!isMessage(v, i++)) bad++;
    if (i % 1000 === 0) assertThrows(() => v.buffer.transfer(), TypeError, "detach");
    rx.release();
    if (v.length !== 0) stale++; // released: detached, reads as empty
    rx.drain((m) => {
      if (!isMessage(m, i++)) bad++;
    }, count - i);
  }
  assertEquals([bad, stale, i], [0, 0, count]);
  const e = await assertRejects(() => rx.receiveView({ timeoutMs: 30000 }), ChannelError);
  assertEquals(e.reason, "closed");
  const out = await child.output();
  assertEquals([out.signal, out.code], [null, 0], new TextDecoder().decode(out.stderr));
});

Deno.test("a view out holds its slot: the sender sees the ring full until release() or the next receive", async () => {
  using c = await inProcess(4096);
  assert(c.tx.send(new Uint8Array(2000).fill(1)));
  assert(c.tx.send(new Uint8Array(2000).fill(2)));
  const first = c.rx.tryReceiveView()!;
  assertEquals([first.length, first[0]], [2000, 1]);
  assert(!c.tx.send(new Uint8Array(100)), "the first slot is still the receiver's");
  const second = c.rx.tryReceiveView()!; // releases the first
  assertEquals([first.length, second[0]], [0, 2]);
  assert(c.tx.send(new Uint8Array(100).fill(3)));
  c.rx.release();
  c.rx.release(); // nothing out: a no-op
  assertEquals(second.length, 0);
  const into = new Uint8Array(50);
  assertThrows(() => c.rx.tryReceiveInto(into), RangeError, "100 bytes");
  assertEquals(c.rx.tryReceiveInto(new Uint8Array(100)), 100); // left in the ring: still there
  assertEquals(c.rx.tryReceiveInto(into), -1);
  // close() detaches a view still out.
  c.tx.send(new Uint8Array([9]));
  const last = c.rx.tryReceiveView()!;
  c.rx.close();
  assertEquals(last.length, 0);
});

Deno.test("sendBatch() sends what fits in one publish; drain() takes them all and refuses receives inside it", async () => {
  using c = await inProcess(4096);
  const batch = Array.from({ length: 100 }, (_, i) => new Uint8Array(56).fill(i));
  assertThrows(
    () => c.tx.sendBatch([new Uint8Array(1), [1, 2] as unknown as Uint8Array]),
    TypeError,
  );
  assertThrows(() => c.tx.sendBatch([new Uint8Array(1), new Uint8Array(5000)]), RangeError);
  assertEquals(c.rx.tryReceive(), undefined, "a refused batch writes nothing");
  assertEquals(c.tx.sendBatch(batch), 64); // 64 bytes each: 64 fill the ring
  assertEquals(c.tx.sendBatch(batch, 64), 0);
  const seen: number[] = [];
  let kept: Uint8Array | undefined;
  let inner: unknown;
  assertEquals(
    c.rx.drain((m) => {
      seen.push(m[0]);
      kept = m;
      try {
        c.rx.tryReceive();
      } catch (e) {
        inner = e;
      }
    }, 10),
    10,
  );
  assert(inner instanceof TypeError, "receiving inside drain() throws");
  assertEquals(c.rx.drain((m) => seen.push(m[0])), 54);
  assertEquals(seen, [...Array(64).keys()]);
  // A view kept past drain() is a window on its slot: the sender's next message there shows.
  assertEquals([kept!.length, kept![0]], [56, 9]);
  assertEquals(c.tx.sendBatch(batch, 64, 70), 6);
  assertEquals(c.rx.drain(() => {}), 6);
  assertEquals(c.rx.drain(() => {}), 0);
  c.tx.sendBatch(batch, 0, 64);
  assertEquals(kept![0], 3, "its slot now holds the 4th message of the new batch");
  c.rx.close();
  assertEquals(kept!.length, 0, "close() detaches the ring's views");
});

/** A header word of a channel, through a view of its own (as a hostile peer would write it). */
function headerWords(ch: Channel): Uint32Array {
  const p = Deno.UnsafePointer.create(channelAddress(ch))!;
  return new Uint32Array(Deno.UnsafePointerView.getArrayBuffer(p, 4096));
}

Deno.test("a hostile peer's words out of range are errors in drain(), views and the sender, never out-of-bounds accesses", async () => {
  using listener = FdListener.listen(tempSocket());
  const client = FdConnection.connect(listener.path);
  const server = await listener.accept();
  const { memfd, header } = offer(client, () => {});
  using rx = await Channel.attach(server, { timeoutMs: 5000 });
  const h = new DataView(header.buffer, 0, 4096);
  const ring = new DataView(header.buffer, 4096, 4096);
  // Two fair messages, then one whose length runs past the tail.
  ring.setUint32(0, 3, true);
  ring.setUint32(8, 3, true);
  ring.setUint32(16, 1 << 20, true);
  h.setUint32(MK.CHANNEL_OFF_TAIL, 24, true);
  const got: number[] = [];
  const e = assertThrows(() => rx.drain((m) => got.push(m.length)), ChannelError);
  assertEquals([e.reason, got], ["corrupt", [3, 3]]);
  assertStringIncludes(e.message, "length");
  assertEquals(h.getUint32(MK.CHANNEL_OFF_HEAD, true), 16, "the two delivered are consumed");
  assertEquals(assertThrows(() => rx.tryReceiveView(), ChannelError).reason, "corrupt");
  ring.setUint32(16, 4, true);
  assertEquals(rx.tryReceiveInto(new Uint8Array(8)), 4);
  // A tail past the ring, seen once the known messages are consumed.
  h.setUint32(MK.CHANNEL_OFF_TAIL, 24 + 8192, true);
  assertStringIncludes(assertThrows(() => rx.drain(() => {}), ChannelError).message, "tail");
  assertEquals(assertThrows(() => rx.tryReceiveView(), ChannelError).reason, "corrupt");
  memfd.close();

  // A receiver's head ahead of the tail: the sender reads it when the room it knew runs out.
  using c = await inProcess(4096);
  const words = headerWords(c.tx);
  while (c.tx.send(new Uint8Array(1000)));
  words[MK.CHANNEL_OFF_HEAD / 4] = words[MK.CHANNEL_OFF_TAIL / 4] + 8;
  const f = assertThrows(() => c.tx.send(new Uint8Array(1000)), ChannelError);
  assertEquals(f.reason, "corrupt");
  assertStringIncludes(f.message, "head");
});

Deno.test("a sender killed with SIGKILL whose socket lives on in another process: receive() rejects, from its pidfd (SO_PEERPIDFD, or before Linux 6.5 pidfd_open of its SO_PEERCRED pid)", async () => {
  // Which of the two the kernel leaves memkit: the guest's Linux 6.1 has no
  // SO_PEERPIDFD, so there the pidfd below can only be pidfd_open's.
  const kernel = Deno.osRelease().split(/[.-]/).slice(0, 2).map(Number);
  assertEquals(hasPeerPidfd(), kernel[0] > 6 || (kernel[0] === 6 && kernel[1] >= 5));
  const via = hasPeerPidfd() ? "SO_PEERPIDFD" : "pidfd_open";
  for (const spinMicros of [20, Infinity]) {
    using listener = FdListener.listen(tempSocket());
    const child = spawnPeer("hang-dup", listener.path, "10", "65536");
    const conn = await listener.accept({ timeoutMs: 30000 });
    const side = await listener.accept({ timeoutMs: 30000 });
    // This process holds a duplicate of the peer's end of conn: its death hangs nothing up.
    let dup;
    while (!(dup = connectionRaw(side).receive(1))) await new Promise((r) => setTimeout(r, 5));
    using rx = await Channel.attach(conn, { timeoutMs: 30000 });
    assertEquals(rx.peer?.pid, child.pid);
    assert(rx.peer!.startTime > 0);
    assert(rx.peer!.pidfd, `the peer is watched by its pid, not through a pidfd from ${via}`);
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    assertStringIncludes(await readUntil(reader, "sent"), "sent");
    for (let i = 0; i < 10; i++) await rx.receive({ timeoutMs: 30000 });
    let waiting;
    if (spinMicros === 20) {
      // Asleep in poll when the peer dies: the pidfd beside the eventfd wakes it.
      waiting = rx.receive({ timeoutMs: 20000, spinMicros });
      await new Promise((r) => setTimeout(r, 50));
      child.kill("SIGKILL");
    } else {
      // A receive that never sleeps (it holds the event loop): the peer dies
      // first, the spin loop asks after its pidfd once a millisecond.
      child.kill("SIGKILL");
      await child.status;
      waiting = rx.receive({ timeoutMs: 20000, spinMicros });
    }
    const e = await assertRejects(() => waiting, ChannelError);
    assertEquals(e.reason, "peer-gone", `spinMicros ${spinMicros}`);
    assertStringIncludes(e.message, `its process ${child.pid} has exited`);
    assertEquals((await child.status).signal, "SIGKILL");
    for (const fd of dup!.fds) lib().mk_core_close(fd);
    side.close();
    await reader.cancel();
    await child.stderr.cancel();
  }
});

Deno.test("write() puts messages in the ring unseen until flush(); the room counts them", async () => {
  using c = await inProcess(4096);
  let written = 0;
  while (c.tx.write(new Uint8Array(1000))) written++;
  assertEquals(written, 4, "four 1000-byte messages fill a 4 KiB ring, flushed or not");
  assertEquals(c.rx.tryReceive(), undefined, "nothing is visible before flush()");
  c.tx.flush();
  c.tx.flush(); // nothing new: a no-op
  assertEquals(c.rx.drain(() => {}), 4);
  assert(c.tx.write(new Uint8Array([1])));
  assert(c.tx.send(new Uint8Array([2])), "send() publishes what write() put before it");
  const seen: number[] = [];
  assertEquals(c.rx.drain((m) => seen.push(m[0])), 2);
  assertEquals(seen, [1, 2]);
  assertThrows(() => c.tx.write(new Uint8Array(4089)), RangeError);
  assertThrows(() => c.rx.write(new Uint8Array(1)), TypeError);
});
