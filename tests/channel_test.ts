// flags: --allow-ffi --allow-read=/tmp --allow-write=/tmp --allow-net --allow-run=$DENO --v8-flags=--js-immutable-arraybuffer
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
  assertStringIncludes(e.message, "hung up");
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
