/**
 * Memory shared with a kernel driver (the reference module, tests/vm/kmod),
 * in the QEMU guest (`make bench-vm` loads the module and runs this file):
 *
 * - "request round trip": one echo of 16 bytes through the request page
 *   (`KernelChannel.request`: CAS the lock word, write the slot,
 *   MKKS_IOC_RING, copy the answer, CAS it free; one native call) beside the
 *   same request copied in and out by `MKKS_IOC_CALL` (the baseline: no
 *   page, no lock word).
 * - "record reads": `KernelPage.read()` (a SeqLock read over the read-only
 *   page, the checksum verified in JavaScript) and `checkReads(1000)` (1000
 *   checked reads in one native call).
 *
 * Before the `deno bench` table, one run alternates the two round trips
 * 20,000 times each and prints their median and p99 (deno bench reports no
 * median), and the reads per second of both read paths.
 *
 * Where the module's file is absent or not granted (the host's `make
 * bench`), it says so and registers nothing.
 *
 * Needs --allow-ffi, --allow-read and --allow-write for
 * /sys/kernel/debug/memkit_kshared, and --v8-flags=--js-immutable-arraybuffer.
 */
import { KERNEL_SHARED_PATH, type KernelChannel, KernelPage } from "../mod.ts";

function attach(): KernelPage | string {
  try {
    return KernelPage.attach();
  } catch (e) {
    return `${(e as Error).name}: ${(e as Error).message}`;
  }
}

const page = attach();
if (typeof page === "string") {
  console.log(
    `kshared_bench: skipped, ${KERNEL_SHARED_PATH} cannot be attached here (${page}); ` +
      "make bench-vm runs it in the QEMU guest with the module tests/vm/kmod loaded",
  );
} else {
  const channel: KernelChannel = page.openChannel();
  const data = new Uint8Array(16).fill(7);

  const quantile = (sorted: number[], q: number) =>
    sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  const us = (ms: number) => `${(ms * 1000).toFixed(1)} µs`;

  // Warm both paths, then alternate them so both see the same load.
  for (let i = 0; i < 1000; i++) {
    channel.request("echo", data);
    channel.call("echo", data);
  }
  const N = 20_000;
  const ring: number[] = [];
  const copy: number[] = [];
  for (let i = 0; i < N; i++) {
    let t = performance.now();
    channel.request("echo", data);
    ring.push(performance.now() - t);
    t = performance.now();
    channel.call("echo", data);
    copy.push(performance.now() - t);
  }
  ring.sort((a, b) => a - b);
  copy.sort((a, b) => a - b);
  const [rm, r99, cm, c99] = [
    quantile(ring, 0.5),
    quantile(ring, 0.99),
    quantile(copy, 0.5),
    quantile(copy, 0.99),
  ];
  console.log(
    `MEMKIT-KSHARED round trip of a 16-byte echo, ${N} each, alternated: request page ` +
      `(RING) median ${us(rm)}, p99 ${us(r99)}; MKKS_IOC_CALL median ${us(cm)}, p99 ${us(c99)}; ` +
      `RING/CALL median ${(rm / cm).toFixed(2)}x`,
  );

  let t = performance.now();
  const report = page.checkReads(1_000_000);
  const native = 1_000_000 / ((performance.now() - t) / 1000);
  t = performance.now();
  for (let i = 0; i < 100_000; i++) page.read();
  const js = 100_000 / ((performance.now() - t) / 1000);
  console.log(
    `MEMKIT-KSHARED record reads: checkReads ${(native / 1e6).toFixed(2)}M reads/s ` +
      `(${report.torn} torn, ${report.overlapped} overlapped a write), KernelPage.read() ` +
      `${(js / 1e6).toFixed(2)}M reads/s`,
  );

  Deno.bench({
    name: "MKKS_IOC_CALL: a 16-byte echo copied in and out",
    group: "request round trip",
    baseline: true,
    fn() {
      channel.call("echo", data);
    },
  });
  Deno.bench({
    name: "KernelChannel.request: a 16-byte echo through the request page",
    group: "request round trip",
    fn() {
      channel.request("echo", data);
    },
  });
  Deno.bench({
    name: "checkReads(1000): 1000 checked SeqLock reads in one native call",
    group: "record reads",
    baseline: true,
    fn() {
      page.checkReads(1000);
    },
  });
  Deno.bench({
    name: "KernelPage.read() x 1000: SeqLock reads over the immutable view",
    group: "record reads",
    fn() {
      for (let i = 0; i < 1000; i++) page.read();
    },
  });
}
