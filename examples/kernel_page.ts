// Memory shared with a kernel driver: the reference module's two pages, a read-only record the
// kernel publishes under a sequence counter and a request page with a lock word both sides
// follow (cbits/memkit_kshared.h).
//
//   deno run --allow-ffi --allow-read=/sys/kernel/debug/memkit_kshared --allow-write=/sys/kernel/debug/memkit_kshared --v8-flags=--js-immutable-arraybuffer examples/kernel_page.ts
//
// It needs root (debugfs is root's) and the module loaded: tests/vm/kmod/ builds it, and
// `make test-vm` runs it in a QEMU guest. Where the file is absent this program says what it
// needs and exits 0.
import { KERNEL_SHARED_PATH, KernelPage, MemkitError } from "@memkit/memkit";

/** The pages, or undefined (having said what is missing) where the module is not there. */
function attach(): KernelPage | undefined {
  try {
    return KernelPage.attach(); // maps both pages, checks magic, version and sizes
  } catch (e) {
    if (!(e instanceof MemkitError) || !["ENOENT", "EACCES"].includes(e.code)) throw e;
    console.log(`no kernel page here (${e.code}): this example needs ${KERNEL_SHARED_PATH}`);
    console.log("  that is: root, debugfs mounted, and the memkit_kshared module (tests/vm/kmod/)");
  }
}

using page = attach();
if (page) {
  const { counter, timeNs } = page.read(); // a SeqLock read: never torn, checksum verified
  console.log(`record ${counter}, published at ${timeNs} ns (the kernel's clock)`);

  using channel = page.openChannel(); // a session of its own
  const answer = channel.request("sum", new Uint8Array([1, 2, 250]), { timeoutMs: 500 });
  const sum = new DataView(answer.data.buffer).getBigUint64(0, true);
  console.log(`the kernel summed 1 + 2 + 250 through the request page: ${sum}`);

  const { answered, refused, reclaims } = page.stats();
  console.log(
    `requests answered ${answered}, refused ${refused}; lock words reclaimed ${reclaims}`,
  );
}
