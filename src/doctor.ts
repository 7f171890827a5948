/**
 * What this machine, this kernel, this user and these Deno flags let memkit
 * do: one probe per capability, each reusing the probe the capability's own
 * module makes, each saying why it failed and what would fix it.
 *
 * @module
 */

import { MemkitError } from "../ffi/errors.ts";
import { lib, libraryCandidates, libraryPath, pageSize } from "../ffi/loader.ts";
import { buildFlags, cacheRoot, missingBuildFlags } from "../ffi/_build.ts";
import { MK } from "../ffi/symbols.ts";
import { lockdownMode } from "./_phys_refusal.ts";
import { type PhysicalRange, physicalRanges } from "./iomem.ts";
import { readKPageFlags } from "./kpageflags.ts";
import { findMapping } from "./maps.ts";
import { readOnlyViewsSupported } from "./mapping.ts";
import { MemFd } from "./memfd.ts";
import { Pagemap } from "./pagemap.ts";
import {
  type Operation,
  type PermissionNeed,
  permissionTable,
  queryPermission,
} from "./permissions.ts";
import { PhysicalMemory } from "./phys.ts";
import { Pkey } from "./pkey.ts";
import { probeUserfaultfd } from "./uffd.ts";

/**
 * Every capability {@linkcode doctor} checks, by id, in the order it
 * reports them.
 *
 * @example The checks, in the order doctor runs them
 * ```ts
 * import { DOCTOR_CHECKS } from "@memkit/memkit";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(DOCTOR_CHECKS[0], "library");
 * ```
 */
export const DOCTOR_CHECKS = [
  "library",
  "immutable-buffers",
  "procmap-query",
  "pagemap-scan",
  "memfd-noexec",
  "pkey",
  "pfn",
  "kpageflags",
  "devmem",
  "userfaultfd",
  "userfaultfd-kernel",
  "max-map-count",
  "memlock",
] as const;

/** The id of one check of {@linkcode doctor}. */
export type DoctorCheckId = typeof DOCTOR_CHECKS[number];

/** A value in {@linkcode DoctorResult.details}: JSON, no bigints. */
export type DoctorDetail = string | number | boolean | null | readonly string[];

/** What one check of {@linkcode doctor} found. */
export interface DoctorResult {
  /** The check, one of {@linkcode DOCTOR_CHECKS}. */
  id: DoctorCheckId;
  /** What is checked, for people (`"PAGEMAP_SCAN ioctl"`). */
  title: string;
  /** Whether the capability is there (false when it was not checked). */
  ok: boolean;
  /**
   * Whether it was checked: false when a Deno permission it needs was not
   * granted (`fix` names the flag) or the native library did not load.
   */
  checked: boolean;
  /** One sentence: what was found. */
  summary: string;
  /** Why it is missing (absent when `ok`). */
  why?: string;
  /** What would change the answer: a flag, a sysctl, a kernel, a privilege. */
  fix?: string;
  /**
   * The deno flags it was not checked for want of (present only then; a
   * check not checked without it waits for the native library).
   */
  needs?: string[];
  /** What the probe read, for `--json` (values as the kernel gave them). */
  details?: Record<string, DoctorDetail>;
}

/** Options of {@linkcode doctor}. */
export interface DoctorOptions {
  /**
   * The checks to run, by id or by a name the CLI accepts (`"pagemap"`,
   * `"uffd"`, `"PAGEMAP_SCAN"`; see {@linkcode doctorCheckIds}); default all.
   */
  checks?: readonly string[];
}

/** A permission a check needs: a row of the permission table and its target. */
type Need = readonly [Operation, string];

interface Spec {
  title: string;
  /** Other names that select it (lower case; `-` and `_` are the same). */
  names: readonly string[];
  /** Permissions without which it is not checked. */
  needs: readonly Need[];
  /** Whether it calls into the native library. */
  native: boolean;
}

const SPECS: Record<DoctorCheckId, Spec> = {
  library: { title: "native library and ABI", names: ["lib", "abi"], needs: [], native: false },
  "immutable-buffers": {
    title: "immutable ArrayBuffers (read-only views)",
    names: ["immutable", "readonly", "read-only"],
    needs: [],
    native: false,
  },
  "procmap-query": {
    title: "PROCMAP_QUERY ioctl",
    names: ["procmap_query", "maps", "query"],
    needs: [["maps", "self"]],
    native: true,
  },
  "pagemap-scan": {
    title: "PAGEMAP_SCAN ioctl",
    names: ["pagemap_scan", "pagemap", "scan"],
    needs: [["pagemap", "self"]],
    native: true,
  },
  "memfd-noexec": {
    title: "MFD_NOEXEC_SEAL",
    names: ["mfd_noexec_seal", "noexec", "memfd"],
    needs: [],
    native: true,
  },
  pkey: {
    title: "memory protection keys",
    names: ["pkeys", "protection-keys", "pku"],
    needs: [],
    native: true,
  },
  pfn: {
    title: "PFN visibility (CAP_SYS_ADMIN)",
    names: ["pfns", "cap_sys_admin", "pagemap", "translate"],
    needs: [["pagemap", "self"]],
    native: true,
  },
  kpageflags: {
    title: "/proc/kpageflags",
    names: ["kpage", "flags"],
    needs: [["kpageflags", ""]],
    native: true,
  },
  devmem: {
    title: "/dev/mem",
    names: ["/dev/mem", "mem", "phys", "strict_devmem", "io_strict_devmem", "lockdown"],
    needs: [["physRead", "/dev/mem"]],
    native: true,
  },
  userfaultfd: {
    title: "userfaultfd (lazy views)",
    names: ["uffd", "lazy"],
    needs: [],
    native: true,
  },
  "userfaultfd-kernel": {
    title: "userfaultfd kernel-mode faults",
    names: ["uffd", "uffd-kernel"],
    needs: [],
    native: true,
  },
  "max-map-count": {
    title: "vm.max_map_count",
    names: ["max_map_count", "vm.max_map_count", "stitch"],
    needs: [["maxMapCount", ""]],
    native: true,
  },
  memlock: {
    title: "memlock limit (RLIMIT_MEMLOCK)",
    names: ["mlock", "rlimit_memlock", "lock"],
    needs: [],
    native: true,
  },
};

/** Optional reads that make a check's answer more exact; without them it still runs. */
const OPTIONAL: Partial<Record<DoctorCheckId, readonly Need[]>> = {
  devmem: [["iomem", ""], ["lockdown", ""]],
};

const norm = (name: string): string => name.toLowerCase().replaceAll("_", "-");

/**
 * The ids of the checks that `names` select: each name is an id or another
 * name of one or more checks (`"pagemap"` selects `pagemap-scan` and `pfn`;
 * `"uffd"` both userfaultfd checks), case and `-`/`_` ignored.
 *
 * @param names The names, as a user typed them.
 * @returns The ids, in {@linkcode DOCTOR_CHECKS} order, each once.
 * @throws {TypeError} For a name that selects nothing, listing the ids.
 *
 * @example Check names and aliases
 * ```ts
 * import { doctorCheckIds } from "@memkit/memkit";
 * import { assertEquals, assertThrows } from "@std/assert";
 *
 * assertEquals(doctorCheckIds(["uffd"]), ["userfaultfd", "userfaultfd-kernel"]);
 * assertEquals(doctorCheckIds(["PAGEMAP_SCAN"]), ["pagemap-scan"]);
 * assertThrows(() => doctorCheckIds(["pagemapp"]), TypeError, "pagemap-scan");
 * ```
 */
export function doctorCheckIds(names: readonly string[]): DoctorCheckId[] {
  const wanted = new Set<DoctorCheckId>();
  for (const name of names) {
    if (typeof name !== "string") {
      throw new TypeError(`Cannot check "${String(name)}": expected a check's name`);
    }
    const n = norm(name);
    const hits = DOCTOR_CHECKS.filter((id) =>
      id === n || SPECS[id].names.some((alias) => norm(alias) === n)
    );
    if (hits.length === 0) {
      throw new TypeError(
        `Unknown check "${name}": expected one of ${DOCTOR_CHECKS.join(", ")}`,
      );
    }
    for (const id of hits) wanted.add(id);
  }
  return DOCTOR_CHECKS.filter((id) => wanted.has(id));
}

/** Every permission the rows `needs` name, each once. */
function permissionsOf(needs: readonly Need[]): PermissionNeed[] {
  const out: PermissionNeed[] = [];
  for (const [op, target] of needs) {
    for (const need of permissionTable[op].needs(target)) {
      if (!out.some((n) => n.name === need.name && n.path === need.path)) out.push(need);
    }
  }
  return out;
}

/** Deno flags for `list`: one `--allow-<name>` or `--allow-<name>=a,b` per permission. */
function format(list: readonly PermissionNeed[], extra: readonly string[] = []): string[] {
  const scoped = new Map<string, string[]>();
  const bare: string[] = [];
  for (const need of list) {
    if (need.path === undefined) {
      if (!bare.includes(need.name)) bare.push(need.name);
    } else scoped.set(need.name, [...(scoped.get(need.name) ?? []), need.path]);
  }
  const out = bare.map((name) => `--allow-${name}`);
  for (const [name, paths] of scoped) out.push(`--allow-${name}=${paths.join(",")}`);
  return [...out, ...extra];
}

/**
 * The deno flags that let {@linkcode doctor} run `checks` (default all) in
 * full: `--allow-ffi`, the files each reads, `--allow-env=MEMKIT_LIB,HOME,XDG_CACHE_HOME`
 * (to report that variable and the build cache) and the V8 flag whose effect one check reports.
 *
 * @param checks Check ids or names, as for {@linkcode doctorCheckIds}.
 * @returns The flags.
 *
 * @example The flags a check needs
 * ```ts
 * import { doctorPermissions } from "@memkit/memkit";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(doctorPermissions(["kpageflags"]), ["--allow-ffi", "--allow-read=/proc/kpageflags"]);
 * ```
 */
export function doctorPermissions(checks?: readonly string[]): string[] {
  const ids = checks === undefined ? [...DOCTOR_CHECKS] : doctorCheckIds(checks);
  const needs: Need[] = [];
  for (const id of ids) needs.push(...SPECS[id].needs, ...(OPTIONAL[id] ?? []));
  if (ids.some((id) => SPECS[id].native || id === "library")) needs.unshift(["load", ""]);
  const extra: string[] = [];
  if (ids.includes("library")) extra.push("--allow-env=MEMKIT_LIB,HOME,XDG_CACHE_HOME");
  if (ids.includes("immutable-buffers")) extra.push("--v8-flags=--js-immutable-arraybuffer");
  return format(permissionsOf(needs), extra);
}

/**
 * Whether `desc` is granted, never prompting; a file of `/proc/self` counts
 * as granted under its `/proc/<pid>` name too (memkit's gate accepts either).
 */
function granted(desc: Deno.PermissionDescriptor): boolean {
  if (queryPermission(desc) === "granted") return true;
  if (
    desc.name === "read" && typeof desc.path === "string" && desc.path.startsWith("/proc/self/")
  ) {
    const alias = `/proc/${Deno.pid}/${desc.path.slice("/proc/self/".length)}`;
    return queryPermission({ name: "read", path: alias }) === "granted";
  }
  return false;
}

/** The flags of the permissions of `needs` that are not granted, never prompting. */
function missing(needs: readonly Need[]): string[] {
  return format(
    permissionsOf(needs).filter((n) =>
      !granted(
        n.name === "ffi"
          ? { name: "ffi" }
          : n.name === "write"
          ? { name: "write", path: n.path }
          : { name: "read", path: n.path },
      )
    ),
  );
}

/** What a probe returns: a result without its id and title. */
type Found = Omit<DoctorResult, "id" | "title" | "checked"> & { checked?: boolean };

/** What the probes share within one run. */
interface Context {
  page: number;
  /** The frame of a page of this process, when PFNs are visible. */
  pfn?: bigint;
}

/** An error's message on one line, for a why. */
function reason(e: unknown): string {
  return e instanceof Error ? e.message.replaceAll("\n", "; ") : String(e);
}

function checkLibrary(): Found {
  const envGranted = queryPermission({ name: "env", variable: "MEMKIT_LIB" }) === "granted";
  const candidates = libraryCandidates();
  const root = cacheRoot();
  const details: Record<string, DoctorDetail> = {
    candidates: candidates.map(([origin, path]) => `${origin}: ${path}`),
    memkitLib: envGranted
      ? (candidates.find(([o]) => o === "MEMKIT_LIB")?.[1] ?? null)
      : "not read (grant --allow-env=MEMKIT_LIB)",
    // Where a library built on first use goes, and what building it needs now.
    cache: root ?? "unknown (grant --allow-env=HOME,XDG_CACHE_HOME)",
    buildNeeds: missingBuildFlags(root),
  };
  if (!granted({ name: "ffi" })) {
    return {
      ok: false,
      checked: false,
      summary: "not checked: needs --allow-ffi",
      fix: "run again with --allow-ffi (unscoped: zero-copy views need it without a path)",
      needs: ["--allow-ffi"],
      details,
    };
  }
  try {
    const path = libraryPath();
    const origin = candidates.find(([, p]) => p === path)?.[0] ?? "unknown";
    Object.assign(details, { path, origin, abi: MK.ABI_VERSION, pageSize: pageSize() });
    return {
      ok: true,
      summary: `${path} (${origin}), ABI ${MK.ABI_VERSION}, page size ${pageSize()}`,
      details,
    };
  } catch (e) {
    return {
      ok: false,
      summary: "the native library does not load",
      why: reason(e),
      fix: `grant ${buildFlags(root).join(" ")} to build it on first use into the cache, ` +
        "or build it with `make build` in the memkit checkout, or set MEMKIT_LIB to a " +
        `libmemkit.so of ABI ${MK.ABI_VERSION} and grant --allow-env=MEMKIT_LIB`,
      details,
    };
  }
}

function checkImmutable(): Found {
  const details = { deno: Deno.version.deno, v8: Deno.version.v8 };
  if (readOnlyViewsSupported()) {
    return {
      ok: true,
      summary: `this Deno (${Deno.version.deno}) has ArrayBuffer.prototype.transferToImmutable`,
      details,
    };
  }
  return {
    ok: false,
    summary: "read-only views are unavailable: write-protected memory can be read only by copy",
    why: `this Deno (${Deno.version.deno}) runs without immutable ArrayBuffers ` +
      "(transferToImmutable is missing)",
    fix:
      "run deno with --v8-flags=--js-immutable-arraybuffer (Deno 2.9+), or use read() for a copy",
    details,
  };
}

function checkProcmapQuery(): Found {
  try {
    // "query" forces the ioctl: a kernel without it answers ENOTTY.
    findMapping(0n, "self", { method: "query" });
    return { ok: true, summary: "findMapping() asks the kernel in one system call (Linux 6.11+)" };
  } catch (e) {
    if (e instanceof MemkitError && e.code === "ENOTTY") {
      return {
        ok: false,
        summary: "findMapping() reads the text of /proc/<pid>/maps instead",
        why: "this kernel lacks the PROCMAP_QUERY ioctl (Linux 6.11)",
        fix: "nothing is needed (the text gives the same answers); a Linux 6.11+ kernel makes " +
          "lookups one system call",
      };
    }
    throw e;
  }
}

function checkPagemapScan(ctx: Context): Found {
  using pm = Pagemap.open();
  try {
    // pfn-zero is a category only the ioctl has: its fallback refuses it.
    pm.scan({ start: 0n, end: BigInt(ctx.page) }, { require: ["pfn-zero"] });
    return { ok: true, summary: "Pagemap.scan() asks the kernel for page ranges (Linux 6.7+)" };
  } catch (e) {
    if (e instanceof MemkitError && e.code === "EOPNOTSUPP") {
      return {
        ok: false,
        summary: "Pagemap.scan() computes ranges from pagemap entries instead",
        why: "this kernel lacks the PAGEMAP_SCAN ioctl (Linux 6.7): the pfn-zero, huge and " +
          "wp-allowed categories are unavailable",
        fix: "a Linux 6.7+ kernel; the other categories work as they are",
      };
    }
    throw e;
  }
}

function checkNoexec(): Found {
  if (MemFd.noexecSupported) {
    return { ok: true, summary: "MemFd.create(name, { noexec: true }) seals memfds against exec" };
  }
  return {
    ok: false,
    summary: "memfds cannot be sealed against exec",
    why: "this kernel lacks MFD_NOEXEC_SEAL (Linux 6.3)",
    fix: "a Linux 6.3+ kernel; until then create memfds without noexec",
  };
}

function checkPkey(): Found {
  if (Pkey.supported) {
    return { ok: true, summary: "Pkey.alloc() works: this CPU and kernel have protection keys" };
  }
  let why = "this CPU or kernel has no memory protection keys";
  try {
    Pkey.alloc().free();
  } catch (e) {
    if (!(e instanceof MemkitError)) throw e;
    why = e.code === "ENOSPC"
      ? "all 15 usable keys of this process are taken (ENOSPC)"
      : `pkey_alloc answers ${e.code}: this CPU has no protection keys (x86 PKU), or the ` +
        "kernel does not enable them (OSPKE)";
  }
  return {
    ok: false,
    summary: "no protection keys: Pkey.alloc() fails",
    why,
    fix: "an x86 CPU with PKU (the pku and ospke flags of /proc/cpuinfo) and a kernel with " +
      "CONFIG_X86_INTEL_MEMORY_PROTECTION_KEYS; else protect() does the job with one mprotect " +
      "per change",
  };
}

function checkPfn(ctx: Context): Found {
  using pm = Pagemap.open();
  // A page of this process's own, touched so that it is present.
  const buf = new Uint8Array(2 * ctx.page).fill(1);
  const at = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf)));
  const page = BigInt(ctx.page);
  const address = (at + page - 1n) / page * page;
  const details = { capSysAdmin: pm.pfnVisible };
  try {
    const phys = pm.translate(address);
    if (phys === null) {
      throw new Error(`a touched page at 0x${address.toString(16)} is not present`);
    }
    ctx.pfn = phys / page;
    return { ok: true, summary: "Pagemap.translate() gives physical addresses", details };
  } catch (e) {
    if (!(e instanceof Deno.errors.PermissionDenied)) throw e;
    return {
      ok: false,
      summary: "the pagemap shows PFN 0 for every page: translate() refuses",
      why: pm.pfnVisible
        ? "this process has CAP_SYS_ADMIN in its own namespace, but the kernel shows " +
          "page frame numbers only to CAP_SYS_ADMIN in the initial user namespace"
        : "this process lacks CAP_SYS_ADMIN, and the kernel shows page frame numbers only " +
          "with it (Linux 4.2+)",
      fix: "run as root, or grant the capability (setcap cap_sys_admin+ep on the deno binary)",
      details,
    };
  } finally {
    buf[0] = 0; // keeps buf reachable until the probe is done
  }
}

function checkKpageflags(ctx: Context): Found {
  const pfn = ctx.pfn ?? 0n;
  try {
    const flags = readKPageFlags([pfn]);
    return {
      ok: true,
      summary: ctx.pfn === undefined
        ? "readable (PFN 0 read)"
        : `readable (a page of this process: ${flags.names(0).join(" ") || "no flags"})`,
    };
  } catch (e) {
    if (!(e instanceof MemkitError)) throw e;
    return {
      ok: false,
      summary: `readKPageFlags() fails with ${e.code}: physical pages' flags are unavailable`,
      why: reason(e),
      fix: "run as root (the kernel lets only CAP_SYS_ADMIN read /proc/kpageflags)",
    };
  }
}

const MiB = 1 << 20;

/** The first page-aligned page of System RAM above 1 MiB, if `/proc/iomem` shows one. */
function ramPage(ranges: readonly PhysicalRange[], page: number): number | undefined {
  for (const r of ranges) {
    if (r.name !== "System RAM") continue;
    const at = Math.ceil(Math.max(Number(r.start), MiB) / page) * page;
    if (at + page <= r.end) return at;
  }
  return undefined;
}

/** A PCI function's name in /proc/iomem (its BAR): `0000:00:02.0`. */
const PCI_FUNCTION = /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/;

/**
 * A range a PCI driver claimed: the child of a BAR (`pci_request_regions`
 * names it after the driver and marks it busy), which IO_STRICT_DEVMEM keeps
 * from /dev/mem. A BAR no driver claimed is not busy, so it proves nothing.
 */
function claimedRange(ranges: readonly PhysicalRange[]): PhysicalRange | undefined {
  const parents: PhysicalRange[] = [];
  for (const r of ranges) {
    parents.length = r.depth;
    const parent = parents[r.depth - 1];
    parents[r.depth] = r;
    if (parent === undefined || !PCI_FUNCTION.test(parent.name)) continue;
    if (PCI_FUNCTION.test(r.name) || r.start < MiB || r.end > 2 ** 52) continue;
    return r;
  }
  return undefined;
}

/** Whether mapping (never touching) the page of `at` is refused (EPERM, or EBUSY). */
function refused(mem: PhysicalMemory, at: number, page: number): boolean {
  try {
    mem.map(Math.floor(at / page) * page, page).close();
    return false;
  } catch (e) {
    if (e instanceof MemkitError && (e.code === "EPERM" || e.code === "EBUSY")) return true;
    throw e;
  }
}

function checkDevmem(ctx: Context): Found {
  const details: Record<string, DoctorDetail> = {};
  const lockdownGranted = granted({ name: "read", path: "/sys/kernel/security/lockdown" });
  const lockdown = lockdownGranted ? lockdownMode() : undefined;
  details.lockdown = lockdown ??
    (lockdownGranted
      ? "unknown (no /sys/kernel/security/lockdown: no lockdown LSM, or securityfs not mounted)"
      : "not read (grant --allow-read=/sys/kernel/security/lockdown)");
  let mem: PhysicalMemory;
  try {
    mem = PhysicalMemory.open();
  } catch (e) {
    if (!(e instanceof MemkitError)) throw e;
    details.present = e.code !== "ENOENT";
    details.error = e.code;
    const fix = e.code === "ENOENT"
      ? "boot a kernel built with CONFIG_DEVMEM=y (most distribution kernels have it)"
      : e.code === "EACCES"
      ? "run as root"
      : lockdown !== undefined && lockdown !== "none"
      ? "reboot without lockdown (Secure Boot off, no lockdown= on the kernel command line)"
      : "run as root with CAP_SYS_RAWIO";
    return {
      ok: false,
      summary: e.code === "ENOENT" ? "/dev/mem is absent" : `/dev/mem does not open (${e.code})`,
      why: e.code === "ENOENT"
        ? "no /dev/mem (ENOENT): the kernel was built without CONFIG_DEVMEM, or /dev has no " +
          "such node"
        : reason(e),
      fix,
      details,
    };
  }
  details.present = true;
  try {
    const parts = ["/dev/mem opens (read-only)"];
    let ranges: PhysicalRange[] | undefined;
    if (granted({ name: "read", path: "/proc/iomem" })) {
      try {
        ranges = physicalRanges();
      } catch (e) {
        details.strictDevmem = details.ioStrictDevmem = `unknown: ${reason(e)}`;
      }
    } else {
      details.strictDevmem =
        details.ioStrictDevmem =
          "not probed (grant --allow-read=/proc/iomem to find RAM and a driver's range)";
    }
    if (ranges !== undefined) {
      const ram = ramPage(ranges, ctx.page);
      if (ram === undefined) details.strictDevmem = "unknown: no System RAM above 1 MiB listed";
      else {
        // Mapped, never touched: an EPERM is CONFIG_STRICT_DEVMEM refusing RAM.
        const strict = refused(mem, ram, ctx.page);
        details.strictDevmem = strict;
        parts.push(`STRICT_DEVMEM ${strict ? "on (RAM above 1 MiB refused)" : "off"}`);
        if (!strict) {
          details.ioStrictDevmem = false; // IO_STRICT_DEVMEM depends on STRICT_DEVMEM
        } else {
          const claimed = claimedRange(ranges);
          if (claimed === undefined) {
            details.ioStrictDevmem =
              "unknown: /proc/iomem lists no range a PCI driver claimed to try";
          } else {
            const io = refused(mem, Number(claimed.start), ctx.page);
            details.ioStrictDevmem = io;
            details.ioStrictRange = `${claimed.name} 0x${claimed.start.toString(16)}`;
            parts.push(`IO_STRICT_DEVMEM ${io ? `on ("${claimed.name}" refused)` : "off"}`);
          }
        }
      }
    }
    if (lockdown !== undefined) parts.push(`lockdown ${lockdown}`);
    return { ok: true, summary: parts.join("; "), details };
  } finally {
    mem.close();
  }
}

const UFFD_FIX = "sysctl -w vm.unprivileged_userfaultfd=1, or give this user read-write " +
  "access to /dev/userfaultfd (Linux 6.1+), or run with CAP_SYS_PTRACE";

function checkUserfaultfd(kernel: boolean): Found {
  const f = probeUserfaultfd();
  const details: Record<string, DoctorDetail> = {
    via: f.via ?? null,
    kernelFaults: f.kernelFaults,
    features: f.features,
    lacking: f.lacking,
    reasons: f.reasons,
  };
  if (!kernel) {
    if (f.available) {
      return {
        ok: true,
        summary: `LazyView.create() works, via ${f.via} (UFFDIO_API offers ${f.features.length} ` +
          `features; lacking: ${f.lacking.join(" ") || "none"})`,
        details,
      };
    }
    return {
      ok: false,
      summary: "LazyView.create() and lazyAlias() are unavailable",
      why: f.reasons.join("; ") || "the kernel offers no userfaultfd",
      fix: `a kernel with CONFIG_USERFAULTFD; ${UFFD_FIX}`,
      details,
    };
  }
  if (f.available && f.kernelFaults) {
    return {
      ok: true,
      summary: `faults the kernel takes on a view's behalf are served (via ${f.via})`,
      details,
    };
  }
  return {
    ok: false,
    summary: f.available
      ? "user-mode only: a system call reading a view's untouched pages fails with EFAULT"
      : "no userfaultfd at all",
    why: f.reasons.join("; ") || "the kernel refused",
    fix: UFFD_FIX,
    details,
  };
}

function checkMaxMapCount(): Found {
  const limit = lib().mk_map_max_count();
  if (limit < 0n) {
    return {
      ok: false,
      summary: "vm.max_map_count cannot be read",
      why: new MemkitError(Number(-limit), "read", { path: "/proc/sys/vm/max_map_count" }).message,
    };
  }
  return {
    ok: true,
    summary: `${limit} mappings per process (stitch() and alias() use one per chunk; ` +
      "raise it with sysctl -w vm.max_map_count=N)",
    details: { maxMapCount: Number(limit) },
  };
}

const UNLIMITED = 0xffffffffffffffffn;

function checkMemlock(): Found {
  const out = new BigUint64Array(2);
  const ret = lib().mk_advise_memlock_limit(out);
  if (ret < 0n) {
    return {
      ok: false,
      summary: "RLIMIT_MEMLOCK cannot be read",
      why: new MemkitError(Number(-ret), "read RLIMIT_MEMLOCK").message,
    };
  }
  const kib = (v: bigint) => v === UNLIMITED ? "unlimited" : `${v / 1024n} KiB`;
  const [soft, hard] = out;
  return {
    ok: true,
    summary: `lock() may pin ${kib(soft)} (hard limit ${kib(hard)}) without CAP_IPC_LOCK; ` +
      "raise it with ulimit -l, prlimit --memlock or LimitMEMLOCK=",
    details: {
      soft: soft === UNLIMITED ? "unlimited" : Number(soft),
      hard: hard === UNLIMITED ? "unlimited" : Number(hard),
    },
  };
}

const PROBES: Record<DoctorCheckId, (ctx: Context) => Found> = {
  library: checkLibrary,
  "immutable-buffers": checkImmutable,
  "procmap-query": checkProcmapQuery,
  "pagemap-scan": checkPagemapScan,
  "memfd-noexec": checkNoexec,
  pkey: checkPkey,
  pfn: checkPfn,
  kpageflags: checkKpageflags,
  devmem: checkDevmem,
  userfaultfd: () => checkUserfaultfd(false),
  "userfaultfd-kernel": () => checkUserfaultfd(true),
  "max-map-count": checkMaxMapCount,
  memlock: checkMemlock,
};

/**
 * Checks what memkit can do here, one capability at a time: the native
 * library and its ABI, immutable ArrayBuffers in this Deno, the
 * `PROCMAP_QUERY` and `PAGEMAP_SCAN` ioctls, `MFD_NOEXEC_SEAL`, protection
 * keys, PFN visibility (`CAP_SYS_ADMIN`), `/proc/kpageflags`, `/dev/mem`
 * (present, `STRICT_DEVMEM`, `IO_STRICT_DEVMEM`, lockdown), userfaultfd
 * (the system call, the sysctl, the device, its features),
 * `vm.max_map_count` and the memlock limit. Each check uses the probe the
 * capability's own module makes, and says why a capability is missing and
 * what would fix it.
 *
 * Never prompts and never throws for what it finds: a check whose
 * permission is not granted is reported `checked: false`, its `fix` naming
 * the flag ({@linkcode doctorPermissions} gives them all); one that fails
 * unexpectedly is reported with the error as its `why`.
 *
 * @param options Which checks to run (default all).
 * @returns One result per check, in {@linkcode DOCTOR_CHECKS} order.
 * @throws {TypeError} For a check name that selects nothing.
 *
 * @example What this machine offers, never prompting
 * ```ts
 * // deno run --allow-ffi
 * import { doctor } from "@memkit/memkit";
 * import { assert, assertEquals } from "@std/assert";
 *
 * const [library, devmem] = doctor({ checks: ["library", "devmem"] });
 * assert(library.ok, library.why);
 * // The doc tests run without --allow-read=/dev/mem: not checked, and the fix says so.
 * assertEquals([devmem.checked, devmem.fix], [false, "run again with --allow-read=/dev/mem"]);
 * ```
 *
 * @example One line per capability
 * ```ts
 * import { DOCTOR_CHECKS, doctor } from "@memkit/memkit";
 * import { assertEquals } from "@std/assert";
 *
 * const lines = doctor().map((c) =>
 *   `${c.ok ? "✓" : c.checked ? "✗" : "?"} ${c.id}: ${c.summary}${c.why ? ` (${c.why})` : ""}`
 * );
 * assertEquals(lines.length, DOCTOR_CHECKS.length);
 * ```
 */
export function doctor(options?: DoctorOptions): DoctorResult[] {
  if (options !== undefined && (typeof options !== "object" || options === null)) {
    throw new TypeError("Cannot use options: expected an object such as { checks: [...] }");
  }
  const checks = options?.checks;
  if (checks !== undefined && !Array.isArray(checks)) {
    throw new TypeError("Cannot use checks: expected an array of check names");
  }
  const ids = checks === undefined ? [...DOCTOR_CHECKS] : doctorCheckIds(checks);
  const results: DoctorResult[] = [];
  let libraryLoads: boolean | undefined;
  const ctx: Context = { page: 0 };
  // The PFN probe feeds kpageflags one real frame: run it first when both are asked.
  const order = ids.includes("kpageflags") && ids.includes("pfn")
    ? [...ids.filter((id) => id === "pfn"), ...ids.filter((id) => id !== "pfn")]
    : ids;
  const byId = new Map<DoctorCheckId, DoctorResult>();
  for (const id of order) {
    const spec = SPECS[id];
    const head = { id, title: spec.title };
    const absent = missing(spec.native ? [["load", ""], ...spec.needs] : spec.needs);
    if (absent.length > 0) {
      byId.set(id, {
        ...head,
        ok: false,
        checked: false,
        summary: `not checked: needs ${absent.join(" ")}`,
        fix: `run again with ${absent.join(" ")}`,
        needs: absent,
      });
      continue;
    }
    if (spec.native) {
      if (libraryLoads === undefined) {
        try {
          libraryPath();
          ctx.page = pageSize();
          libraryLoads = true;
        } catch {
          libraryLoads = false;
        }
      }
      if (!libraryLoads) {
        byId.set(id, {
          ...head,
          ok: false,
          checked: false,
          summary: "not checked: the native library does not load",
          fix: "build it with `make build`, or set MEMKIT_LIB (see the library check)",
        });
        continue;
      }
    }
    let found: Found;
    try {
      found = PROBES[id](ctx);
    } catch (e) {
      found = { ok: false, summary: "the probe failed", why: reason(e) };
    }
    const result: DoctorResult = {
      ...head,
      ok: found.ok,
      checked: found.checked ?? true,
      summary: found.summary,
    };
    if (found.why !== undefined) result.why = found.why;
    if (found.fix !== undefined) result.fix = found.fix;
    if (found.needs !== undefined) result.needs = found.needs;
    if (found.details !== undefined) result.details = found.details;
    byId.set(id, result);
  }
  for (const id of ids) results.push(byId.get(id)!);
  return results;
}
