// A zero-copy message channel between two processes: the sender writes each message straight
// into a ring of shared memory, the receiver reads it there; then the sender is killed with
// SIGKILL, and the receiver is told so instead of waiting forever.
//
//   deno run --allow-ffi --allow-read=/tmp/memkit-example.sock --allow-write=/tmp/memkit-example.sock --allow-net=unix:/tmp/memkit-example.sock --allow-run=deno examples/channel.ts
//
// The channel's memory (a sealed memfd) is handed over a Unix socket; the peer is this file
// again with the role "sender". Message i: i as a u32, then i % 60 bytes of value i & 0xff.
import { Channel, ChannelError, FdConnection, FdListener } from "@memkit/memkit";

const path = "/tmp/memkit-example.sock", count = 10_000;

if (Deno.args[0] === "sender") {
  using tx = await Channel.create(FdConnection.connect(path), { capacity: 1 << 16 });
  for (let i = 0; i < count; i++) {
    const length = 4 + (i % 60);
    let slot; // a view into the ring itself: no copy on either side
    while (!(slot = tx.reserve(length))) await new Promise((r) => setTimeout(r, 1)); // full
    new DataView(slot.buffer, slot.byteOffset).setUint32(0, i, true);
    slot.fill(i & 0xff, 4);
    tx.commit(); // the receiver sees it from here on
  }
  console.log("sent");
  await new Promise(() => setInterval(() => {}, 1000)); // until killed (the channel stays open)
} else {
  using listener = FdListener.listen(path); // removes the socket file on close
  const flags = [`--allow-read=${path}`, `--allow-write=${path}`, `--allow-net=unix:${path}`];
  const sender = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-ffi", ...flags, import.meta.filename!, "sender"],
    stdout: "inherit",
  }).spawn();
  using rx = await Channel.attach(await listener.accept(), { timeoutMs: 30_000 });
  console.log(`attached to the channel of pid ${rx.peer?.pid}: ${rx.capacity / 1024} KiB ring`);

  let received = 0, bytes = 0;
  while (received < count) {
    const m = await rx.receiveView({ timeoutMs: 30_000 }); // a view of the ring: no copy
    const i = new DataView(m.buffer, m.byteOffset).getUint32(0, true);
    if (
      i !== received || m.length !== 4 + (i % 60) || m.some((b, k) => k >= 4 && b !== (i & 0xff))
    ) {
      throw new Error(`message ${received} is wrong: index ${i}, ${m.length} bytes`);
    }
    received++, bytes += m.length;
    rx.release(); // only now may the sender reuse the slot
  }
  console.log(`received ${received} messages (${bytes} bytes), in order and intact`);

  sender.kill("SIGKILL");
  try {
    await rx.receive({ timeoutMs: 30_000 });
    throw new Error("a message after the last one");
  } catch (e) {
    if (!(e instanceof ChannelError)) throw e;
    console.log(`after the sender was killed with SIGKILL: ChannelError "${e.reason}"`);
  }
  await sender.status;
}
