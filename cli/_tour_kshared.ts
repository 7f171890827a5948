// The tour's section on memory shared with a kernel driver (cli/tour.ts):
// where the reference module's file is absent or not granted, what it needs
// and where its test lives; where it is there, one read of the record and
// one request.
import { KERNEL_SHARED_PATH, KernelPage, MemkitError, permissionFlags } from "../mod.ts";

const state = (desc: Deno.PermissionDescriptor) => Deno.permissions.querySync(desc).state;

const NEEDS = [
  "the reference module tests/vm/kmod (insmod memkit_kshared.ko: a test fixture, built for",
  "  the QEMU guest's kernel by tests/vm/kmod/build.sh), root, and debugfs mounted",
  "  (mount -t debugfs none /sys/kernel/debug);",
  "  flags:",
  ...permissionFlags("mapDeviceWrite", KERNEL_SHARED_PATH).map((flag) => `    ${flag}`),
  "the test: tests/kshared_test.ts, run in the guest with the module loaded:",
  "  MEMKIT_VM_SUITES=kshared bash tests/vm/run.sh",
];

/** Runs the section, printing through `say` (and `dim` for asides). */
export function tourKernelShared(say: (text: string) => void, dim: (text: string) => string): void {
  const granted = state({ name: "read", path: KERNEL_SHARED_PATH }) === "granted" &&
    state({ name: "write", path: KERNEL_SHARED_PATH }) === "granted";
  let page: KernelPage | undefined;
  if (granted) {
    try {
      page = KernelPage.attach();
    } catch (e) {
      if (!(e instanceof MemkitError)) throw e;
      say(`KernelPage.attach() (${KERNEL_SHARED_PATH}) here: ${e.code}`);
    }
  } else {
    say(`not granted here: read and write of ${KERNEL_SHARED_PATH}`);
  }
  if (page === undefined) {
    say("this section needs:");
    for (const line of NEEDS) say(dim(`  ${line}`));
    return;
  }
  using _page = page;
  const { counter, timeNs, payload } = page.read();
  say(
    `page.read(): record ${counter} published at ${timeNs} ns, payload ${
      [...payload.subarray(0, 4)].join(",")
    },... (a SeqLock read over the read-only page, checksum verified)`,
  );
  using channel = page.openChannel();
  const answer = channel.request("sum", new Uint8Array([1, 2, 3, 4]));
  say(
    `channel.request("sum", new Uint8Array([1, 2, 3, 4])) as session ${channel.session}: ${
      new DataView(answer.data.buffer).getBigUint64(0, true)
    } (the lock word taken, the slot written, MKKS_IOC_RING, the answer copied, released)`,
  );
  const s = page.stats();
  say(
    `page.stats(): ${s.answered} answered, ${s.refused} refused, ${s.reclaims} lock words taken back`,
  );
}
