// The peer process of bench/channel_bench.ts: echoes every message back.
//   unix <path>                 over a Unix stream socket (Deno.connect)
//   pipe                        from stdin to stdout
//   channel <path> <spinMicros> over a pair of memkit Channels
//   c <path> <count>            over a pair of Channels driven from C (cb_echo)
import { Channel, FdConnection } from "../mod.ts";
import { channelAddress } from "../src/channel.ts";
import { openBaseline } from "./_baseline.ts";

const [mode, path, arg] = Deno.args;

/** Copies r to w; each write() may take only part of a chunk. */
async function pump(r: ReadableStream<Uint8Array>, w: { write(b: Uint8Array): Promise<number> }) {
  for await (const chunk of r) {
    for (let at = 0; at < chunk.length;) at += await w.write(chunk.subarray(at));
  }
}

if (mode === "unix") {
  const conn = await Deno.connect({ transport: "unix", path });
  await pump(conn.readable, conn);
} else if (mode === "pipe") {
  const out = Deno.stdout;
  await pump(Deno.stdin.readable, out);
} else if (mode === "channel" || mode === "c") {
  const rx = await Channel.attach(FdConnection.connect(path));
  const tx = await Channel.create(FdConnection.connect(path), { capacity: 1 << 20 });
  if (mode === "c") {
    const lib = openBaseline("libchannel.so", {
      cb_echo: { parameters: ["u64", "u64", "u32"], result: "i64" },
    });
    lib.cb_echo(channelAddress(rx), channelAddress(tx), Number(arg));
  } else {
    const spinMs = Number(arg) / 1000;
    // Each message goes back as it is drained: a zero-copy view of rx's
    // ring copied into tx's with write(), published by one flush() per run
    // (the other side drains its echoes as it sends, so a full tx empties).
    const echo = (m: Uint8Array) => {
      while (!tx.write(m)) tx.flush();
    };
    // Spinning: the clock (an op, slower than a look at the ring) is read
    // only every 256 empty looks.
    let idleSince = 0;
    let idle = 0;
    for (;;) {
      if (rx.drain(echo) > 0) {
        tx.flush();
        idle = 0;
        continue;
      }
      if (spinMs > 0) {
        if (idle === 0) idleSince = performance.now();
        if ((++idle & 255) !== 0 || performance.now() - idleSince < spinMs) continue;
      }
      try {
        echo(await rx.receiveView({ spinMicros: 0 }));
        tx.flush();
        rx.release();
      } catch {
        break;
      }
      idle = 0;
    }
  }
  tx.close();
  rx.close();
}
