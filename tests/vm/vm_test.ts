// flags: --allow-run=timeout --allow-read=tests/vm/cache --allow-write=tests/vm/cache --allow-env=MEMKIT_VM_ACCEL,MEMKIT_VM_TIMEOUT
// The /dev/mem tests, in a QEMU guest (this machine's kernel has no /dev/mem).
// Run from the checkout after tests/vm/prepare.sh (tests/vm/run.sh does both;
// so do `make test-vm` and `make test`).
//
// The guest runs tests/vm/guest/*_test.ts with `deno test`; each of its
// results becomes one test here, so the suite's count includes them. Then,
// with the guest still running, the host reads guest-physical memory through
// QEMU's monitor (QMP pmemsave) at the addresses the guest printed in
// MEMKIT-HOSTCHECK lines, and checks the bytes the guest saw are there: the
// hypervisor's view of the same RAM, ground truth from outside the guest.
import { assertEquals, assertGreater } from "@std/assert";
import { boot, CACHE } from "./boot.ts";

const hexBytes = (b: Uint8Array): string =>
  [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
const random = (n: number): string => hexBytes(crypto.getRandomValues(new Uint8Array(n)));

const serial = `MK-${random(6).toUpperCase()}`;
const token = random(8);
const marker = random(16);
const guest = boot({
  mode: "test",
  serial,
  uuid: "6d656d6b-6974-4000-8000-00000000cafe",
  env: { MEMKIT_SERIAL: serial, MEMKIT_TOKEN: token, MEMKIT_MARKER: marker },
});
const outcome = await guest.done;

interface Check {
  name: string;
  address: number;
  expected: string;
  seen?: string;
  error?: string;
}

const log = guest.log();
const checks: Check[] = [];
let fileBytes: Uint8Array | undefined;
if (outcome === "done") {
  for (const m of log.matchAll(/^MEMKIT-HOSTCHECK (\S+) (0x[0-9a-f]+) ([0-9a-f]+)$/gm)) {
    checks.push({ name: m[1], address: Number(m[2]), expected: m[3] });
  }
  try {
    const qmp = await guest.qmp();
    for (const c of checks) {
      try {
        const bytes = await qmp.readPhysical(
          c.address,
          c.expected.length / 2,
          `${CACHE}/run-test/pmem.bin`,
        );
        c.seen = hexBytes(bytes);
      } catch (e) {
        c.error = (e as Error).message;
      }
    }
  } catch (e) {
    for (const c of checks) c.error = `QMP: ${(e as Error).message}`;
  }
}
await guest.stop();
try {
  fileBytes = Deno.readFileSync(guest.ivshmemPath).slice(0, 64);
} catch {
  // reported below
}
const seconds = guest.seconds();

function section(name: string): string {
  const at = log.indexOf(name);
  return at < 0 ? "" : log.slice(at, at + 4000);
}

Deno.test(`the guest boots, runs its tests and reports back within the time limit`, async () => {
  const tail = log.split("\n").slice(-40).join("\n");
  assertEquals(
    outcome,
    "done",
    `guest ${outcome} after ${seconds.toFixed(1)} s:\n${tail}\n${await guest.stderr()}`,
  );
  for (const file of ["phys", "lockdown"]) {
    const m = new RegExp(`^MEMKIT-GUEST-EXIT ${file} (\\d+)$`, "m").exec(log);
    assertEquals(m?.[1], "0", `guest tests "${file}" exit status:\n${section("ERRORS")}`);
  }
  console.log(`guest run: ${seconds.toFixed(1)} s`);
});

// One test here per test result the guest printed.
for (const m of log.matchAll(/^(.+) \.\.\. (ok|FAILED|ignored)(?: \(.*\))?$/gm)) {
  // Deno prints "name ..." when a test starts and the name again with its
  // result, on one line when the test printed nothing.
  const name = m[1].split(" ...").at(-1)!;
  const result = m[2];
  Deno.test({
    name: `guest: ${name}`,
    ignore: result === "ignored",
    fn() {
      assertEquals(result, "ok", `${name}\n${section("ERRORS")}`);
    },
  });
}

Deno.test("the guest printed deno test summaries for both files", () => {
  const summaries = [...log.matchAll(/^(ok|FAILED) \| (\d+) passed/gm)];
  assertEquals(summaries.length, 2, log.split("\n").slice(-30).join("\n"));
  assertGreater(Number(summaries[0][2]), 0);
});

for (const c of checks) {
  Deno.test(`the hypervisor sees the guest's bytes at guest-physical 0x${c.address.toString(16)} (${c.name})`, () => {
    assertEquals(c.error, undefined);
    assertEquals(c.seen, c.expected);
  });
}

Deno.test("the guest's SMBIOS entry point and BIOS area were checked through QMP", () => {
  const names = checks.map((c) => c.name);
  const expected = ["smbios-entry-point", "smbios-table", "bios-area", "ivshmem-bar"];
  // The pagemap check runs when the guest has Pagemap (src/pagemap.ts).
  if (/^MEMKIT-PAGEMAP/m.test(log)) expected.push("pagemap-marker");
  for (const n of expected) {
    assertEquals(names.includes(n), true, `no MEMKIT-HOSTCHECK ${n} in the guest's output`);
  }
});

Deno.test("writes through the guest's /dev/mem reach the ivshmem file on the host", () => {
  const m = /^MEMKIT-HOSTFILE ivshmem 0 ([0-9a-f]+)$/m.exec(log);
  assertEquals(typeof m?.[1], "string", "the guest reported its writes");
  const expected = m![1];
  assertEquals(hexBytes(fileBytes!.slice(0, expected.length / 2)), expected);
  // The token the host chose, written by writeU64, little-endian.
  const le = token.match(/../g)!.reverse().join("");
  assertEquals(expected.slice(0, 16), le);
});
