/**
 * Benchmark of `Channel` between two Deno processes, against a Unix domain
 * socket (`Deno.connect({ transport: "unix" })`) and a pipe (a child's
 * stdin and stdout), and against the same ring driven from C
 * (`bench/c/channel.c`, both sides spinning), for 64 B and 4 KiB messages.
 * Each transport has its own peer process (`bench/channel_peer.ts`) that
 * echoes every message back.
 *
 * - round trip: one message there and back, `ROUNDS` rounds of `PER_ROUND`
 *   samples, the transports alternating round by round; median and p99.
 *   "spinning": this side polls `tryReceive()` and the peer spins (up to 2 ms)
 *   before it sleeps; "sleeping": both sides sleep in the kernel at once
 *   (`spinMicros: 0`, an eventfd wakes them).
 * - throughput: `FLOOD` messages sent as fast as the transport takes them,
 *   each echoed back; messages per second, one way. The streams write each
 *   message with its own awaited `write()`; the channel sends with `send()`
 *   and drains the echoes with `tryReceive()` meanwhile.
 *
 * One `Deno.bench` case runs it all and prints the table (`deno bench`'s
 * own time for it is meaningless). The goals (issue 12): at 64 B the
 * channel at least 20x the Unix socket's messages per second; a spinning
 * round trip under 5 us median; within 3x of C.
 *
 * Needs: `--allow-ffi --allow-run=<deno> --allow-read=/tmp --allow-write=/tmp
 * --allow-net=unix:/tmp/memkit-bench-channel.sock,unix:/tmp/memkit-bench-unix.sock`
 * (`make bench` grants them), with `--allow-sys=loadavg` for the load printed beside
 * each table and `--allow-env=MEMKIT_CHANNEL_SIZES` to choose the sizes (`64,4096`).
 */

import { Channel, FdListener } from "../mod.ts";
import { channelAddress } from "../src/channel.ts";
import { openBaseline } from "./_baseline.ts";

const peer = new URL("./channel_peer.ts", import.meta.url).pathname;
const CH_PATH = "/tmp/memkit-bench-channel.sock";
const UNIX_PATH = "/tmp/memkit-bench-unix.sock";
const PEER_FLAGS = [
  "--allow-ffi",
  "--allow-read=/tmp",
  "--allow-write=/tmp",
  `--allow-net=unix:${CH_PATH},unix:${UNIX_PATH}`,
];
const ROUNDS = 10;
const PER_ROUND = 300;
const FLOOD = 10000;
const SIZES = (Deno.env.get("MEMKIT_CHANNEL_SIZES") ?? "64,4096").split(",").map(Number);

function spawn(args: string[], stdio: "piped" | "null" = "null"): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", ...PEER_FLAGS, peer, ...args],
    stdin: stdio,
    stdout: stdio,
    stderr: "inherit",
  }).spawn();
}

/** A transport: one round trip, and a flood of n messages echoed back. */
interface Transport {
  name: string;
  roundTrip(msg: Uint8Array): Promise<void> | void;
  flood(msg: Uint8Array, n: number): Promise<void> | void;
  close(): Promise<void>;
  /** C drives its own loop: samples in ns, or a flood's ns. */
  cRoundTrips?(msg: Uint8Array, n: number): Promise<Float64Array>;
  cFlood?(msg: Uint8Array, n: number): Promise<number>;
}

/** A byte stream peer: reads exactly `n` bytes back. */
function streamTransport(
  name: string,
  writer: { write(b: Uint8Array): Promise<number> },
  reader: ReadableStreamDefaultReader<Uint8Array>,
  close: () => Promise<void>,
): Transport {
  let pending = 0;
  async function readBytes(n: number) {
    pending += n;
    while (pending > 0) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`${name}: the peer closed`);
      pending -= value.length;
    }
  }
  async function writeAll(msg: Uint8Array) {
    for (let at = 0; at < msg.length;) at += await writer.write(msg.subarray(at));
  }
  return {
    name,
    async roundTrip(msg) {
      await writeAll(msg);
      await readBytes(msg.length);
    },
    async flood(msg, n) {
      const reading = readBytes(msg.length * n);
      for (let i = 0; i < n; i++) await writeAll(msg);
      await reading;
    },
    close,
  };
}

async function unixTransport(): Promise<Transport> {
  try {
    Deno.removeSync(UNIX_PATH);
  } catch { /* none */ }
  const listener = Deno.listen({ transport: "unix", path: UNIX_PATH });
  const child = spawn(["unix", UNIX_PATH]);
  const conn = await listener.accept();
  listener.close();
  return streamTransport("Unix socket", conn, conn.readable.getReader(), async () => {
    conn.close();
    await child.status;
  });
}

function pipeTransport(): Promise<Transport> {
  const child = spawn(["pipe"], "piped");
  const w = child.stdin.getWriter();
  const writer = { write: async (b: Uint8Array) => (await w.write(b), b.length) };
  return Promise.resolve(
    streamTransport("pipe", writer, child.stdout.getReader(), async () => {
      await w.close();
      await child.status;
    }),
  );
}

async function channelPair(mode: string, arg: string) {
  const listener = FdListener.listen(CH_PATH);
  const child = spawn([mode, CH_PATH, arg]);
  const tx = await Channel.create(await listener.accept(), { capacity: 1 << 20 });
  const rx = await Channel.attach(await listener.accept());
  listener.close();
  return { tx, rx, child };
}

async function channelTransport(spin: boolean): Promise<Transport> {
  // The spinning peer spins 2 ms after each message before it sleeps: hot
  // through its own rounds, asleep through the others'.
  const { tx, rx, child } = await channelPair("channel", spin ? "2000" : "0");
  const opts = { spinMicros: 0 };
  return {
    name: `channel, ${spin ? "spinning" : "sleeping"}`,
    async roundTrip(msg) {
      if (!tx.send(msg)) await tx.sendAsync(msg);
      if (spin) {
        while (rx.tryReceive() === undefined);
      } else {
        await rx.receive(opts);
      }
    },
    flood(msg, n) {
      let got = 0;
      for (let i = 0; i < n; i++) {
        while (!tx.send(msg)) if (rx.tryReceive()) got++;
        while (rx.tryReceive()) got++;
      }
      while (got < n) if (rx.tryReceive()) got++;
    },
    async close() {
      tx.close();
      rx.close();
      await child.status;
    },
  };
}

const cLib = openBaseline("libchannel.so", {
  cb_pingpong: { parameters: ["u64", "u64", "u32", "u32", "buffer"], result: "i64" },
  cb_flood: { parameters: ["u64", "u64", "u32", "u32"], result: "i64" },
});

/**
 * The C ring: a peer process per run (its cb_echo spins until it has echoed
 * `n` messages, so it must not outlive the run and steal a core from the
 * other transports).
 */
async function cRun<T>(
  msg: Uint8Array,
  n: number,
  run: (tx: Channel, rx: Channel) => T,
): Promise<T> {
  // A fresh pair: first, enough untimed round trips to touch every page of
  // both rings (a first touch is a page fault), as the long-lived
  // JavaScript channels have long since done.
  const warm = Math.ceil((1 << 20) / (msg.length + 8)) + 10;
  const { tx, rx, child } = await channelPair("c", String(warm + n));
  try {
    cLib.cb_pingpong(
      channelAddress(tx),
      channelAddress(rx),
      msg.length,
      warm,
      new Float64Array(warm),
    );
    return run(tx, rx);
  } finally {
    tx.close();
    rx.close();
    await child.status;
  }
}

function cTransport(): Transport {
  return {
    name: "C ring, spinning",
    roundTrip() {},
    flood() {},
    cRoundTrips(msg, n) {
      return cRun(msg, n, (tx, rx) => {
        const ns = new Float64Array(n);
        cLib.cb_pingpong(channelAddress(tx), channelAddress(rx), msg.length, n, ns);
        return ns;
      });
    },
    cFlood(msg, n) {
      return cRun(
        msg,
        n,
        (tx, rx) => Number(cLib.cb_flood(channelAddress(tx), channelAddress(rx), msg.length, n)),
      );
    },
    async close() {},
  };
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

async function measure(size: number) {
  const msg = new Uint8Array(size).fill(0x5a);
  const transports = [
    await unixTransport(),
    await pipeTransport(),
    await channelTransport(true),
    await channelTransport(false),
    cTransport(),
  ];
  const rtt = new Map<string, number[]>(transports.map((t) => [t.name, []]));
  const rate = new Map<string, number[]>(transports.map((t) => [t.name, []]));
  for (const t of transports) { // warm up
    if (t.cRoundTrips) await t.cRoundTrips(msg, 100);
    else for (let i = 0; i < 100; i++) await t.roundTrip(msg);
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const t of transports) {
      const samples = rtt.get(t.name)!;
      if (t.cRoundTrips) {
        for (const ns of await t.cRoundTrips(msg, PER_ROUND)) samples.push(ns / 1000);
        continue;
      }
      for (let i = 0; i < PER_ROUND; i++) {
        const t0 = performance.now();
        await t.roundTrip(msg);
        samples.push((performance.now() - t0) * 1000);
      }
    }
  }
  for (const t of transports) {
    const n = FLOOD;
    if (t.cFlood) {
      rate.get(t.name)!.push(n / ((await t.cFlood(msg, n)) / 1e9));
      continue;
    }
    const t0 = performance.now();
    await t.flood(msg, n);
    rate.get(t.name)!.push(n / ((performance.now() - t0) / 1000));
  }
  for (const t of transports) await t.close();
  const unixRate = rate.get("Unix socket")![0];
  const cMedian = quantile([...rtt.get("C ring, spinning")!].sort((a, b) => a - b), 0.5);
  console.log(`\n${size} B messages (load: ${Deno.loadavg().map((l) => l.toFixed(2)).join(" ")})`);
  console.log(
    "| transport | msgs/s | vs Unix socket | round trip median (us) | p99 (us) | median vs C |",
  );
  console.log("| --- | ---: | ---: | ---: | ---: | ---: |");
  for (const t of transports) {
    const s = [...rtt.get(t.name)!].sort((a, b) => a - b);
    const r = rate.get(t.name)![0];
    const med = quantile(s, 0.5);
    console.log(
      `| ${t.name} | ${Math.round(r).toLocaleString("en")} | ${(r / unixRate).toFixed(1)}x | ` +
        `${med.toFixed(2)} | ${quantile(s, 0.99).toFixed(2)} | ${(med / cMedian).toFixed(1)}x |`,
    );
  }
}

Deno.bench({
  name: "channel vs Unix socket vs pipe vs C, two processes (prints its own table)",
  n: 1,
  warmup: 0,
  async fn() {
    for (const size of SIZES) await measure(size);
  },
});
