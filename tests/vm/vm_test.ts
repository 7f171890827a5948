// flags: --allow-run=timeout --allow-read=tests/vm/cache --allow-write=tests/vm/cache --allow-env=MEMKIT_VM_ACCEL,MEMKIT_VM_TIMEOUT,MEMKIT_VM_SUITES
// The /dev/mem tests, in a QEMU guest (this machine's kernel has no /dev/mem).
// Run from the checkout after tests/vm/prepare.sh (tests/vm/run.sh does both;
// so do `make test-vm` and `make test`).
//
// Two boots, one after the other: the main one (SMBIOS 2.x firmware) runs
// tests/vm/guest/phys_guest_test.ts, the pagemap marker, the reference
// kernel module (tests/vm/kmod/: insmod, its probe, rmmod) and the lockdown
// test; the second (`smbios-entry-point-type=64`) runs the SMBIOS 3.x tests.
// Each guest result becomes one test here, so the suite's count includes
// them. Then, with the guest still running, the host reads guest-physical
// memory through QEMU's monitor (QMP pmemsave) at the addresses the guest
// printed in MEMKIT-HOSTCHECK lines, and checks the bytes the guest saw are
// there: the hypervisor's view of the same memory, ground truth from outside.
import { assert, assertEquals, assertGreater, assertStringIncludes } from "@std/assert";
import { boot, CACHE } from "./boot.ts";
import { probed } from "../fixtures/skip.ts";

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** Kernel log lines that mean the kernel itself went wrong (user-space faults excluded). */
export function kernelTrouble(log: string): string[] {
  return log.split("\n").filter((l) =>
    /\b(BUG:|WARNING:|Oops|general protection fault)/.test(l) && !/\btraps: /.test(l)
  );
}

/** The lines a kernel prints when an unsigned, out-of-tree module is loaded: the only ones allowed. */
const TAINT =
  /: (loading out-of-tree module taints kernel|module verification failed: signature and\/or required key missing - tainting kernel)\.?$/;

/**
 * What went wrong with the reference module (tests/vm/kmod/) by the guest's
 * MEMKIT-KMOD lines: empty when it loaded for this kernel (its vermagic
 * names `release`) with nothing in the kernel log but the taint message,
 * its debugfs file appeared, its probe passed, rmmod was refused while a
 * process had its pages mapped, and it unloaded once that process was gone,
 * with a kernel log free of BUG, WARNING and Oops.
 */
export function kmodTrouble(log: string, release: string): string[] {
  const line = (what: string) => new RegExp(`^MEMKIT-KMOD ${what} (.*)$`, "m").exec(log)?.[1];
  const between = (tag: string) =>
    new RegExp(`^MEMKIT-KMOD-${tag}-BEGIN$([\\s\\S]*?)^MEMKIT-KMOD-${tag}-END$`, "m").exec(log)
      ?.[1];
  const trouble: string[] = [];
  const vermagic = line("vermagic");
  if (!vermagic?.startsWith(`${release} `)) {
    trouble.push(`vermagic "${vermagic}" is not for the guest's kernel "${release}"`);
  }
  if (line("insmod") !== "0") trouble.push(`insmod exited "${line("insmod")}"`);
  const load = between("LOADLOG");
  const loaded = (load ?? "").split("\n").filter((l) => l.trim() !== "");
  if (load === undefined) trouble.push("no kernel log of the load");
  if (!loaded.some((l) => TAINT.test(l))) trouble.push("the load logged no taint message");
  for (const l of loaded.filter((l) => !TAINT.test(l))) trouble.push(`the load logged "${l}"`);
  if (line("debugfs") !== "present") trouble.push("no /sys/kernel/debug/memkit_kshared");
  if (line("probe") !== "0") trouble.push(`kshared_probe exited "${line("probe")}"`);
  if (!/^kshared probe: \d+ checks, 0 failed$/m.test(log)) {
    trouble.push("the probe did not finish clean");
  }
  if (line("holder") !== "mapped") trouble.push("the holder did not map the pages");
  if (line("rmmod-while-mapped") === "0") trouble.push("rmmod unloaded the module under a mapping");
  if (line("rmmod") !== "0") trouble.push(`rmmod exited "${line("rmmod")}"`);
  if (line("unloaded") !== "yes") trouble.push("the module is still loaded");
  const after = between("LOG");
  if (after === undefined) trouble.push("no kernel log from the load on");
  for (const l of kernelTrouble(after ?? "")) trouble.push(`the kernel logged "${l}"`);
  return trouble;
}

const hexBytes = (b: Uint8Array): string =>
  [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
const random = (n: number): string => hexBytes(crypto.getRandomValues(new Uint8Array(n)));
const UUID = "6d656d6b-6974-4000-8000-00000000cafe";

interface Check {
  name: string;
  address: number;
  expected: string;
  seen?: string;
  error?: string;
}

interface Run {
  mode: string;
  outcome: string;
  log: string;
  checks: Check[];
  ivshmem?: Uint8Array;
  stderr: string;
}

async function run(mode: "test" | "smbios", env: Record<string, string>): Promise<Run> {
  // The main boot runs the host suites too: minutes under TCG, not seconds
  // (more on a loaded or slower machine than on an idle one).
  const timeout = Number(Deno.env.get("MEMKIT_VM_TIMEOUT") ?? (mode === "test" ? 1500 : 180));
  const guest = boot({ mode, serial: env.MEMKIT_SERIAL, uuid: UUID, env, timeout });
  const outcome = await guest.done;
  const log = guest.log();
  const checks: Check[] = [];
  if (outcome === "done") {
    for (const m of log.matchAll(/^MEMKIT-HOSTCHECK (\S+) (0x[0-9a-f]+) ([0-9a-f]+)$/gm)) {
      checks.push({ name: m[1], address: Number(m[2]), expected: m[3] });
    }
    const qmp = await guest.qmp();
    for (const c of checks) {
      try {
        const scratch = `${CACHE}/run-${mode}/pmem.bin`;
        c.seen = hexBytes(await qmp.readPhysical(c.address, c.expected.length / 2, scratch));
      } catch (e) {
        c.error = (e as Error).message;
      }
    }
  }
  await guest.stop();
  let ivshmem: Uint8Array | undefined;
  try {
    ivshmem = Deno.readFileSync(guest.ivshmemPath).slice(0, 64);
  } catch {
    // reported by the test that needs it
  }
  return {
    mode,
    outcome,
    log,
    checks,
    ivshmem,
    stderr: await guest.stderr(),
  };
}

/**
 * The host's test files the guest runs too (tests/<name>_test.ts, with the
 * flags of their first line): on Linux 6.1 memkit's fallbacks run where the
 * kernel really refuses the ioctls and advice (no PAGEMAP_SCAN, PROCMAP_QUERY,
 * guard regions). Under TCG on an idle 2-core machine each takes 4-35 s (a few
 * seconds of it Deno starting; safety, with twelve Deno children, is the
 * longest), about 1.5 min in all, twice that on a loaded one. The sharing
 * and userfaultfd suites add about 2.5 min (shm, 47 s, and uffd, 30 s, the
 * longest): 6.1 has no UFFD_FEATURE_WP_ASYNC, so trackWrites() takes its
 * synchronous fallback there, the channel watches its peer through a
 * pidfd from pidfd_open (6.1 has no SO_PEERPIDFD: channel_test asserts
 * which one the kernel leaves), and busybox brings no python3, strace or
 * util-linux setpriv (those tests skip, saying so). kshared (memkit's side
 * of the shared pages) runs with the reference module loaded, after the
 * others; the guest skips it, saying why, where the module or
 * tests/kshared_test.ts is missing. MEMKIT_VM_SUITES (comma-separated)
 * replaces the list.
 */
export const HOST_SUITES = (Deno.env.get("MEMKIT_VM_SUITES") ??
  "maps,pagemap,mapping,stitch,protect,ring,safety,memfd,advise,anonymous,shm,fd_socket,channel," +
    "mutex,seqlock,uffd,doc_examples,kshared").split(",").filter((
    s,
  ) => s !== ""
  );

const serial = `MK-${random(6).toUpperCase()}`;
const token = random(8);
const marker = random(16);
const main = await run("test", {
  MEMKIT_SERIAL: serial,
  MEMKIT_TOKEN: token,
  MEMKIT_MARKER: marker,
  MEMKIT_HOST_SUITES: HOST_SUITES.join(","),
});
const serial3 = `MK3-${random(6).toUpperCase()}`;
const smbios3 = await run("smbios", { MEMKIT_SERIAL: serial3 });

function section(log: string, name: string): string {
  const at = log.indexOf(name);
  return at < 0 ? "" : log.slice(at, at + 4000);
}

function register(r: Run, files: string[]): void {
  const tag = r.mode === "test" ? "" : ` (${r.mode} boot)`;
  Deno.test(`the guest${tag} boots, runs its tests and reports back in time`, () => {
    const tail = r.log.split("\n").slice(-40).join("\n");
    assertEquals(
      r.outcome,
      "done",
      `guest ${r.outcome}:\n${tail}\n${r.stderr}`,
    );
    for (const file of files) {
      const m = new RegExp(`^MEMKIT-GUEST-EXIT ${file} (\\d+)$`, "m").exec(r.log);
      assertEquals(m?.[1], "0", `guest tests "${file}" exit status:\n${section(r.log, "ERRORS")}`);
    }
    const summaries = [...r.log.matchAll(/^(ok|FAILED) \| (\d+) passed/gm)];
    assertEquals(summaries.length, files.length, "one deno test summary per file");
    assertGreater(Number(summaries[0][2]), 0);
  });

  // One test here per test result the guest printed: a host suite's under
  // its file's name (its part of the log: MEMKIT-GUEST-RUN to -EXIT).
  let rest = r.log;
  const parts: [string, string][] = [];
  for (const m of r.log.matchAll(/^MEMKIT-GUEST-RUN (\S+)$([\s\S]*?)^MEMKIT-GUEST-EXIT \1 /gm)) {
    parts.push([`${m[1]}_test.ts: `, m[2]]);
    rest = rest.replace(m[0], "");
  }
  parts.unshift(["", rest]);
  for (const [prefix, log] of parts) {
    for (const m of log.matchAll(/^(.+) \.\.\. (ok|FAILED|ignored)(?: \(.*\))?$/gm)) {
      // Deno prints "name ..." when a test starts and the name again with its
      // result, on one line when the test printed nothing.
      const name = m[1].split(" ...").at(-1)!;
      const result = m[2];
      // A guest test that skipped printed its reason as "SKIP: <name>: <why>".
      const why = result === "ignored"
        ? (log.match(new RegExp(`^SKIP: ${escape(name)}: (.*)$`, "m"))?.[1] ??
          "ignored in the guest, which printed no reason")
        : false;
      probed({
        name: `guest${tag}: ${prefix}${name}`,
        skip: why,
        fn() {
          assertEquals(result, "ok", `${name}\n${section(log, "ERRORS")}`);
        },
      });
    }
  }

  Deno.test(`the guest's kernel${tag} logged no BUG, WARNING, Oops or general protection fault`, () => {
    const dmesg = /^MEMKIT-DMESG-BEGIN$([\s\S]*?)^MEMKIT-DMESG-END$/m.exec(r.log);
    assert(dmesg, "the guest printed its kernel log");
    const bad = kernelTrouble(r.log);
    assertEquals(bad, [], `the guest's kernel log:\n${bad.join("\n")}`);
  });

  for (const c of r.checks) {
    Deno.test(
      `the hypervisor sees the guest's bytes at guest-physical 0x${
        c.address.toString(16)
      } (${c.name})`,
      () => {
        assertEquals(c.error, undefined);
        assertEquals(c.seen, c.expected);
      },
    );
  }
}

// Suites the guest could not run, and why (MEMKIT-GUEST-SKIP <suite> <why>).
const skipped = new Map(
  [...main.log.matchAll(/^MEMKIT-GUEST-SKIP (\S+) (.*)$/gm)].map((m) => [m[1], m[2]]),
);
for (const [suite, why] of skipped) {
  probed({ name: `guest: ${suite}_test.ts`, skip: why, fn() {} });
}
register(main, ["phys", ...HOST_SUITES.filter((s) => !skipped.has(s)), "pkey", "lockdown"]);

probed({
  name: "the reference module loads, serves, and unloads cleanly with no BUG/WARNING/Oops",
  skip: /^MEMKIT-KMOD-SKIP (.*)$/m.exec(main.log)?.[1] ?? false,
  fn() {
    const release = /^MEMKIT-GUEST-START (\S+)/m.exec(main.log)?.[1] ?? "";
    assertEquals(kmodTrouble(main.log, release), []);
    const seconds = /^MEMKIT-KMOD probe-seconds (\S+)$/m.exec(main.log)?.[1];
    console.log(`tests/vm/kmod/kshared_probe in the guest: ${seconds} s`);
    for (const m of main.log.matchAll(/^MEMKIT-KSHARED-FIGURE (.*)$/gm)) {
      console.log(`the reference module in the guest: ${m[1]}`);
    }
  },
});

Deno.test("the 6.1 guest ran the host suites where the kernel refuses PAGEMAP_SCAN and PROCMAP_QUERY", () => {
  // Their tests print what tests/fixtures/kernel.ts found. The fallbacks
  // need a guest kernel older than 6.7 (Debian 12's cloud kernel is 6.1):
  // on a newer one these suites would test nothing the host does not.
  const release = /^MEMKIT-GUEST-START (\S+)/m.exec(main.log)?.[1];
  const why = `the guest's kernel is "${release}"`;
  const ran = (suite: string) => HOST_SUITES.includes(suite);
  if (ran("pagemap")) {
    assertStringIncludes(main.log, "the kernel lacks (ENOTTY) PAGEMAP_SCAN", why);
  }
  if (ran("maps") || ran("protect")) {
    assertStringIncludes(main.log, "the kernel lacks (ENOTTY) PROCMAP_QUERY", why);
  }
  if (ran("uffd")) {
    // 6.1 lacks WP_ASYNC: the default picked the synchronous fallback, which ran for real.
    for (
      const test of [
        "trackWrites() picks asynchronous write-protection where the kernel has it, else sync",
        'trackWrites({ mode: "sync" }) reports a known random write pattern, pages never ' +
        "populated included",
      ]
    ) assertStringIncludes(main.log, `${test} ... ok`, why);
  }
  for (const m of main.log.matchAll(/^MEMKIT-GUEST-TIME (\S+) ([\d.]+)$/gm)) {
    console.log(`${m[1]}_test.ts in the guest: ${m[2]} s`);
  }
});

Deno.test("under TCG the guest has protection keys, so the real Pkey path ran", () => {
  if (Deno.env.get("MEMKIT_VM_ACCEL") === "kvm") return; // the host CPU decides
  assertEquals(/^MEMKIT-PKEY (\w+)$/m.exec(main.log)?.[1], "present");
});
register(smbios3, ["smbios3"]);

Deno.test("the SMBIOS entry points, BIOS area, ivshmem BAR and pagemap marker went through QMP", () => {
  const names = [...main.checks, ...smbios3.checks].map((c) => c.name);
  const expected = [
    "smbios-entry-point",
    "smbios-table",
    "bios-area",
    "ivshmem-bar",
    "smbios3-entry-point",
    "smbios3-table",
  ];
  // The pagemap check runs when the guest has Pagemap (src/pagemap.ts).
  if (/^MEMKIT-PAGEMAP/m.test(main.log)) expected.push("pagemap-marker");
  for (const n of expected) {
    assertEquals(names.includes(n), true, `no MEMKIT-HOSTCHECK ${n} in the guest's output`);
  }
});

Deno.test("writes through the guest's /dev/mem reach the ivshmem file on the host", () => {
  const m = /^MEMKIT-HOSTFILE ivshmem 0 ([0-9a-f]+)$/m.exec(main.log);
  assertEquals(typeof m?.[1], "string", "the guest reported its writes");
  const expected = m![1];
  assertEquals(hexBytes(main.ivshmem!.slice(0, expected.length / 2)), expected);
  // The token the host chose, written by writeU64, little-endian.
  const le = token.match(/../g)!.reverse().join("");
  assertEquals(expected.slice(0, 16), le);
});
