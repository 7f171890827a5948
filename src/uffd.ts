/**
 * Lazy views through `userfaultfd`: a new range whose pages are copied from
 * a source on first touch by a native handler thread, for memory that
 * memkit does not control (a heap buffer, a library's arena), so it cannot
 * be mapped a second time.
 *
 * @module
 */

import { check, ERRNO, errnoCode, MemkitError } from "../ffi/errors.ts";
import { lib, pageSize } from "../ffi/loader.ts";
import { MK } from "../ffi/symbols.ts";
import { boolean, list, readOptions, show, type Snapshot } from "./_args.ts";
import { toAccess } from "./_access.ts";
import {
  ArrayIsArray,
  FinalizationRegistryPrototypeRegister,
  FinalizationRegistryPrototypeUnregister,
  safeArray,
} from "./_primordials.ts";
import { gateProc, nativePid } from "./_proc.ts";
import { findRegion, type MappingInit, type Region } from "./_region.ts";
import { inRange, MAX_BYTES, roundUp, window } from "./_validate.ts";
import { Mapping, mappingToken } from "./mapping.ts";
import { type MemFd, memfdState } from "./memfd.ts";

/** The `UFFD_FEATURE_*` bits, by the name the kernel's UAPI gives them. */
const FEATURES: readonly (readonly [string, number])[] = [
  ["PAGEFAULT_FLAG_WP", 0],
  ["EVENT_FORK", 1],
  ["EVENT_REMAP", 2],
  ["EVENT_REMOVE", 3],
  ["MISSING_HUGETLBFS", 4],
  ["MISSING_SHMEM", 5],
  ["EVENT_UNMAP", 6],
  ["SIGBUS", 7],
  ["THREAD_ID", 8],
  ["MINOR_HUGETLBFS", 9],
  ["MINOR_SHMEM", 10],
  ["EXACT_ADDRESS", 11],
  ["WP_HUGETLBFS_SHMEM", 12],
  ["WP_UNPOPULATED", 13],
  ["POISON", 14],
  ["WP_ASYNC", 15],
  ["MOVE", 16],
];

/** How memkit got its userfaultfd. */
export type UserfaultfdVia = "syscall" | "device" | "user-mode-only";

const VIA: Record<number, UserfaultfdVia | undefined> = {
  [MK.UFFD_SYSCALL]: "syscall",
  [MK.UFFD_DEVICE]: "device",
  [MK.UFFD_USER_ONLY]: "user-mode-only",
};

/** What {@linkcode probeUserfaultfd} reports. */
export interface UserfaultfdFeatures {
  /** Whether a lazy view can be made here at all. */
  readonly available: boolean;
  /**
   * The way that worked: the `userfaultfd` system call, `/dev/userfaultfd`
   * (`USERFAULTFD_IOC_NEW`), or the system call with `UFFD_USER_MODE_ONLY`.
   */
  readonly via: UserfaultfdVia | undefined;
  /**
   * Whether faults the kernel takes on a view's behalf (a system call
   * reading or writing it, such as `write(2)` called through FFI) are
   * served too. Not in user-mode-only: those fail with `EFAULT` on pages
   * not yet touched (touch or `prefetch()` them first).
   */
  readonly kernelFaults: boolean;
  /** The `UFFD_FEATURE_*` names the kernel offers (without the prefix). */
  readonly features: readonly string[];
  /** The names memkit knows that this kernel does not offer. */
  readonly lacking: readonly string[];
  /** Why each way that did not work was refused, one sentence each. */
  readonly reasons: readonly string[];
}

/** The refusals of the ways memkit tried, as sentences naming the rule. */
function reasonsOf(words: BigUint64Array, offset: number, device: BigUint64Array): string[] {
  const reasons: string[] = [];
  const sys = Number(words[offset]);
  const dev = Number(words[offset + 1]);
  const user = Number(words[offset + 2]);
  if (sys !== 0) {
    reasons.push(
      sys === 1 // EPERM
        ? "the userfaultfd system call refused kernel-mode faults (EPERM): " +
          "vm.unprivileged_userfaultfd is 0 and this process lacks CAP_SYS_PTRACE"
        : `the userfaultfd system call failed (${errnoCode(sys)})` +
          (errnoCode(sys) === "ENOSYS" ? ": the kernel was built without CONFIG_USERFAULTFD" : ""),
    );
  }
  if (sys !== 0 && dev !== 0) {
    const mode = Number(device[0]);
    reasons.push(
      errnoCode(dev) === "ENOENT"
        ? "/dev/userfaultfd does not exist (Linux 6.1 added it)"
        : `/dev/userfaultfd refused this user (${errnoCode(dev)}): its mode is ` +
          `"${(mode & 0o777).toString(8).padStart(4, "0")}", owner uid ${device[1]}, ` +
          `gid ${device[2]}; read-write access to it allows kernel-mode faults`,
    );
  }
  if (user !== 0) {
    reasons.push(
      `the userfaultfd system call with UFFD_USER_MODE_ONLY failed (${errnoCode(user)})`,
    );
  }
  return reasons;
}

/**
 * What this kernel and this user can use of `userfaultfd`: probed with a
 * throwaway descriptor (the system call, then `/dev/userfaultfd`, then the
 * system call with `UFFD_USER_MODE_ONLY`, as {@linkcode LazyView.create} tries
 * them), with the features `UFFDIO_API` offers and the reason each way
 * that did not work was refused (the sysctl `vm.unprivileged_userfaultfd`,
 * the device's permission). Requires `--allow-ffi`.
 *
 * @returns The report.
 *
 * @example What this machine offers
 * ```ts
 * import { probeUserfaultfd } from "@memkit/memkit";
 * import { assert } from "@std/assert";
 *
 * const f = probeUserfaultfd();
 * if (f.available) assert(f.via !== undefined);
 * else assert(f.reasons.length > 0);
 * ```
 */
export function probeUserfaultfd(): UserfaultfdFeatures {
  const out = new BigUint64Array(MK.UFFD_PROBE_WORDS);
  const ret = lib().mk_uffd_probe(out);
  const via = VIA[Number(out[MK.UFFD_PROBE_VIA])];
  const reasons = reasonsOf(
    out,
    MK.UFFD_PROBE_SYSCALL_ERR,
    out.subarray(MK.UFFD_PROBE_DEVICE_MODE, MK.UFFD_PROBE_DEVICE_MODE + 3),
  );
  if (ret < 0n) reasons.push(`UFFDIO_API failed (${errnoCode(Number(-ret))})`);
  const bits = out[MK.UFFD_PROBE_FEATURES];
  const features: string[] = [];
  const lacking: string[] = [];
  for (const [name, bit] of FEATURES) {
    ((bits >> BigInt(bit)) & 1n ? features : lacking).push(name);
  }
  return {
    available: via !== undefined && ret >= 0n,
    via,
    kernelFaults: via === "syscall" || via === "device",
    features,
    lacking,
    reasons,
  };
}

/**
 * A range of memory for {@linkcode LazyView.create}: this process's, or with `pid`
 * another process's (read with `process_vm_readv`; needs
 * `--allow-read=/proc/<pid>/mem` and the kernel's ptrace read access).
 */
export interface LazyRange {
  /** The start address (any byte, no alignment needed). */
  address: bigint;
  /** The length in bytes. */
  length: number;
  /** Another process (every chunk of one view names the same); default this one. */
  pid?: number;
}

/** What a {@linkcode LazyView.create} copies from: one source, or chunks laid side by side. */
export type LazySource = Mapping | LazyRange | readonly (Mapping | LazyRange)[];

/** Options of {@linkcode LazyView.create}. */
export interface LazyViewOptions {
  /**
   * The view's length in bytes; default the sources' total. Past the
   * sources the view is a hole: zero pages.
   */
  length?: number;
  /** `"rw"` (default: a private copy, writes never reach the source) or `"r"`. */
  access?: "r" | "rw";
  /**
   * Bytes to fill per fault (rounded up to pages): the faulting page and
   * the pages after it not filled yet. Default one page: a page never
   * touched is never copied. At most 64 MiB.
   */
  readahead?: number;
  /**
   * Refuse a user-mode-only userfaultfd (default false): insist that
   * faults the kernel takes on the view's behalf are served too.
   */
  kernelFaults?: boolean;
}

/** The counters of a lazy view's handler ({@linkcode LazyView.stats}). */
export interface LazyViewStats {
  /** Faults the handler served. */
  faults: number;
  /** Pages copied from the source (by faults and by `prefetch()`). */
  pagesCopied: number;
  /** Bytes copied from the source: `pagesCopied` pages. */
  bytesCopied: number;
  /** Pages resolved with the zero page (holes). */
  pagesZeroed: number;
  /** Pages copied by `prefetch()`. */
  prefetched: number;
  /** Pages of a {@linkcode lazyAlias} mapped from the memfd (`UFFDIO_CONTINUE`), zero-copy. */
  pagesMapped: number;
  /** Source reads that failed: their pages read zeros. */
  errors: number;
  /** The errno name of the last such failure (`"EFAULT"`, `"ESRCH"`). */
  lastError: string | undefined;
}

/** The handler a view's region stops when it is closed or collected. */
interface Handler {
  handle: bigint;
  /** The counters when the handler stopped. */
  final: BigUint64Array | undefined;
  via: UserfaultfdVia;
}

const STATS = MK.UFFD_STATS_WORDS;

/**
 * A {@linkcode Mapping} whose pages are copied from a source on first touch
 * by a native handler thread: what {@linkcode LazyView.create} and
 * {@linkcode lazyAlias} return. Its views follow every rule of a Mapping;
 * `close()` also stops the handler.
 *
 * @example Touch two pages of 64
 * ```ts
 * import { LazyView } from "@memkit/memkit";
 * import { assertEquals } from "@std/assert";
 *
 * const data = new Uint8Array(64 * 4096).fill(7);
 * const address = Deno.UnsafePointer.value(Deno.UnsafePointer.of(data));
 * using view = LazyView.create({ address, length: data.length });
 * assertEquals(view.bytes()[0] + view.bytes()[40 * 4096], 14);
 * assertEquals(view.stats().pagesCopied, 2);
 * assertEquals(data.length, 64 * 4096); // keep the source reachable while the view lives
 * ```
 */
export class LazyView extends Mapping {
  #handler: Handler;

  /**
   * Not for direct use: lazy views come from {@linkcode LazyView.create}
   * and {@linkcode lazyAlias}.
   *
   * @param token memkit's private construction token.
   * @param init What was mapped.
   * @param handler The handler thread's handle.
   * @ignore
   */
  constructor(token: symbol, init: MappingInit, handler?: Handler) {
    super(token, init);
    this.#handler = handler!;
  }

  /**
   * A new range whose pages are copied from `source` the first time they are
   * touched, by a native handler thread (`userfaultfd`: `UFFDIO_COPY`, and
   * `UFFDIO_ZEROPAGE` for holes). A page never touched is never copied. The
   * source is a {@linkcode Mapping}, an `{ address, length }` range of this
   * process, or a list of those laid side by side; it is read with
   * `process_vm_readv`, never touched directly, so a source that has gone
   * (unmapped, protection `"none"`) resolves the fault with zeros and counts
   * an error in {@linkcode LazyView.stats} instead of crashing or blocking.
   *
   * The view is a private copy: writes to it never reach the source, and
   * what the source changes after a page was copied does not show. The view
   * holds the source's address, not the source: keep a buffer whose address
   * you gave reachable while the view lives (a collected buffer's memory is
   * freed, and pages not copied yet then read zeros, or whatever the address
   * holds by then; never a crash). Works for a non-root user too:
   * `/dev/userfaultfd` when the system call is refused, then
   * `UFFD_USER_MODE_ONLY` (see {@linkcode probeUserfaultfd}). Requires
   * `--allow-ffi`.
   *
   * @param source What the pages are copied from.
   * @param options The view's length, access, readahead, and whether
   * kernel-mode faults must be served.
   * @returns A {@linkcode LazyView}: a Mapping with `stats()` and `prefetch()`.
   * @throws {MemkitError} `EPERM`/`EACCES` when no way to a userfaultfd is
   * open to this user, naming the sysctl and the device's permission.
   *
   * @example Copy three chunks lazily, side by side
   * ```ts
   * import { LazyView, MemFd } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * const heap = new Uint8Array(4096).fill(1);
   * using fd = MemFd.create("lazy-src", { size: 4096 });
   * using m = fd.map();
   * m.bytes().fill(2);
   * const address = Deno.UnsafePointer.value(Deno.UnsafePointer.of(heap));
   * using view = LazyView.create([{ address, length: 4096 }, m], { length: 3 * 4096 });
   * const b = view.bytes();
   * assertEquals([b[0], b[4096], b[8192]], [1, 2, 0]); // the third page is a hole
   * assertEquals(view.stats().pagesZeroed, 1);
   * ```
   */
  static create(source: LazySource, options?: LazyViewOptions): LazyView {
    const opts = readOptions(
      options,
      "options",
      [
        "length",
        "access",
        "readahead",
        "kernelFaults",
      ] as const,
    );
    const access = toAccess(opts.access ?? "rw", ["r", "rw"]) as "r" | "rw";
    const kernel = opts.kernelFaults === undefined
      ? false
      : boolean(opts.kernelFaults, "kernelFaults");
    const page = pageSize();
    const readahead = opts.readahead === undefined
      ? page
      : inRange(opts.readahead, "readahead", 0, 64 * 2 ** 20);
    const many = ArrayIsArray(source);
    const given = many ? list(source, "the sources", 2 ** 20) : [source];
    if (given.length === 0) {
      throw new RangeError("Cannot make a lazy view: the list of sources is empty");
    }
    // A prototype-less array: a patched Array.prototype.push changes nothing.
    const chunks: Chunk[] = safeArray();
    let total = 0;
    for (let i = 0; i < given.length; i++) {
      const c = chunkOf(given[i], many ? `source ${i}` : "the source");
      total += c.length;
      if (total > MAX_BYTES) {
        throw new RangeError(`Cannot make a lazy view: the sources exceed ${MAX_BYTES} bytes`);
      }
      chunks[i] = c;
    }
    const pid = chunks[0].pid;
    for (let i = 1; i < chunks.length; i++) {
      if (chunks[i].pid !== pid) {
        throw new TypeError(
          `Cannot make a lazy view of source ${i}: every chunk must come from the same process`,
        );
      }
    }
    const length = opts.length === undefined ? total : inRange(opts.length, "length", 1, MAX_BYTES);
    if (length < total) {
      throw new RangeError(
        `Cannot make a lazy view of "${length}" bytes: the sources hold ${total}; ` +
          "give a length of at least that",
      );
    }
    if (pid !== 0) gateProc("processMemory", pid);
    const words = new BigUint64Array(chunks.length * 2);
    for (let i = 0; i < chunks.length; i++) {
      words[2 * i] = chunks[i].address;
      words[2 * i + 1] = BigInt(chunks[i].length);
    }
    const name = `lazy view of ${chunks.length === 1 ? chunks[0].name : `${chunks.length} chunks`}`;
    const out = new BigUint64Array(MK.UFFD_CREATE_WORDS);
    const prot = access === "rw" ? MK.PROT_READ | MK.PROT_WRITE : MK.PROT_READ;
    const ret = lib().mk_uffd_create(
      words,
      chunks.length,
      BigInt(length),
      pid,
      BigInt(roundUp(readahead, page) / page),
      prot,
      kernel ? MK.UFFD_KERNEL_FAULTS : 0,
      out,
    );
    if (ret < 0n && pid !== 0 && noWayTried(out)) {
      // Refused before any userfaultfd was tried: the first read of the process.
      throw processError(Number(-ret), pid, chunks[0].address);
    }
    if (ret < 0n) {
      const reasons = reasonsOf(out, MK.UFFD_CREATE_SYSCALL_ERR, deviceOf());
      throw new MemkitError(Number(-ret), "create a userfaultfd for", {
        path: name,
        hint: reasons.length > 0
          ? `${reasons.join("; ")}. Set the sysctl vm.unprivileged_userfaultfd=1, or give this ` +
            "user read-write access to /dev/userfaultfd" +
            (kernel ? ", or drop kernelFaults: true to accept user-mode-only faults" : "")
          : undefined,
      });
    }
    return start(ret, out, {
      address: out[MK.UFFD_CREATE_ADDRESS],
      length,
      access,
      maxAccess: "rw",
      name,
      pieces: [{ source: {}, offset: 0, at: 0, length: roundUp(length, page), paged: true }],
    });
  }

  /**
   * How the handler's descriptor was opened; `"user-mode-only"` serves
   * only faults of this process's own code, not of system calls reading
   * the view (those fail with `EFAULT` on pages not touched yet).
   */
  get via(): UserfaultfdVia {
    return this.#handler.via;
  }

  /**
   * The handler's counters: faults served, pages copied and zeroed, source
   * reads that failed. After `close()`, the final ones.
   *
   * @returns A fresh object.
   *
   * @example Count the copies
   * ```ts
   * import { LazyView } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * const data = new Uint8Array(8 * 4096);
   * const address = Deno.UnsafePointer.value(Deno.UnsafePointer.of(data));
   * using view = LazyView.create({ address, length: data.length });
   * view.bytes()[3 * 4096] = 1;
   * const s = view.stats();
   * assertEquals([s.faults, s.pagesCopied, s.bytesCopied], [1, 1, 4096]);
   * ```
   */
  stats(): LazyViewStats {
    const h = this.#handler;
    let words = h.final;
    if (words === undefined) {
      words = new BigUint64Array(STATS);
      check(lib().mk_uffd_stats(h.handle, words), "read the counters of", { path: this.name });
    }
    const copied = Number(words[MK.UFFD_STAT_COPIED]);
    const errors = Number(words[MK.UFFD_STAT_ERRORS]);
    return {
      faults: Number(words[MK.UFFD_STAT_FAULTS]),
      pagesCopied: copied,
      bytesCopied: copied * pageSize(),
      pagesZeroed: Number(words[MK.UFFD_STAT_ZEROED]),
      prefetched: Number(words[MK.UFFD_STAT_PREFETCHED]),
      pagesMapped: Number(words[MK.UFFD_STAT_CONTINUED]),
      errors,
      lastError: errors > 0 ? errnoCode(Number(words[MK.UFFD_STAT_LAST_ERROR])) : undefined,
    };
  }

  /**
   * Copies the pages of `[offset, offset + length)` not filled yet, now, on
   * this thread, so that touching them later costs no fault (and system
   * calls can use them in user-mode-only). Pages filled already are
   * skipped; a source that cannot be read gives zeros and counts an error.
   *
   * @param offset The first byte, default 0 (rounded down to a page).
   * @param length The number of bytes, default to the end.
   * @returns The pages filled.
   *
   * @example Prefetch the first half
   * ```ts
   * import { LazyView } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * const data = new Uint8Array(8 * 4096).fill(1);
   * const address = Deno.UnsafePointer.value(Deno.UnsafePointer.of(data));
   * using view = LazyView.create({ address, length: data.length });
   * assertEquals(view.prefetch(0, 4 * 4096), 4);
   * assertEquals(view.bytes()[4096], 1);
   * assertEquals(view.stats().faults, 0);
   * ```
   */
  prefetch(offset: number = 0, length?: number): number {
    const off = inRange(offset, "offset", 0, this.length);
    const len = length === undefined
      ? this.length - off
      : inRange(length, "length", 0, this.length - off);
    if (this.closed || this.#handler.final !== undefined) {
      throw new Deno.errors.BadResource(
        `Cannot prefetch: the lazy view of "${this.name}" is closed`,
      );
    }
    const page = pageSize();
    const start = off - off % page;
    return check(
      lib().mk_uffd_prefetch(this.#handler.handle, BigInt(start), BigInt(off + len - start)),
      "prefetch",
      { path: this.name },
    );
  }
}

/** One source chunk after validation: an address in this process and a length. */
type Chunk = { address: bigint; length: number; pid: number; name: string };

function chunkOf(value: unknown, what: string): Chunk {
  const region = findRegion(value);
  if (region) {
    if (!region.backed) {
      throw new Deno.errors.BadResource(
        `Cannot make a lazy view of ${what}: the mapping of "${region.name}" is closed`,
      );
    }
    return { address: region.view, length: region.length, pid: 0, name: region.name };
  }
  if (value === null || typeof value !== "object") {
    throw new TypeError(
      `Cannot make a lazy view of ${what} "${
        show(value)
      }": expected a Mapping or { address, length }`,
    );
  }
  const o: Snapshot<"address" | "length" | "pid"> = readOptions(
    value,
    what,
    [
      "address",
      "length",
      "pid",
    ] as const,
  );
  const pid = o.pid === undefined ? 0 : nativePid(o.pid);
  if (pid === 0 && o.pid !== undefined) {
    throw new TypeError(`Cannot use the pid of ${what} "self": give a number, or no pid`);
  }
  const address = o.address;
  if (typeof address !== "bigint" || address < 0n || address >= 2n ** 64n - 1n) {
    throw new TypeError(
      `Cannot use the address of ${what} "${show(address)}": expected a bigint from 0 to 2^64 - 2`,
    );
  }
  const length = inRange(o.length, `the length of ${what}`, 1, MAX_BYTES);
  if (address + BigInt(length) > 2n ** 64n - 1n) {
    throw new RangeError(`Cannot use ${what}: it reaches past the end of the address space`);
  }
  const at = `0x${address.toString(16)}`;
  return { address, length, pid, name: pid === 0 ? at : `process ${pid} at ${at}` };
}

/** Options of {@linkcode lazyAlias}. */
export interface LazyAliasOptions {
  /** Where the alias starts in the memfd: a multiple of the page size. Default 0. */
  offset?: number;
  /** How many bytes: a multiple of the page size, or up to the end. Default: to the end. */
  length?: number;
  /** `"rw"` (default: writes reach the memfd, as any shared mapping's) or `"r"`. */
  access?: "r" | "rw";
}

/**
 * A second address for a memfd's pages that appear only as they are
 * touched: the alias is registered for minor faults
 * (`UFFDIO_REGISTER_MODE_MINOR`), and its handler thread maps each page
 * the memfd already holds on first touch with `UFFDIO_CONTINUE`, zero-copy
 * (the page is the memfd's own, the same physical frame); a page the memfd
 * does not hold yet faults in as in any shared mapping. `stats().faults`
 * and `pagesMapped` count what was touched. Where the kernel lacks minor
 * faults on shared memory (`UFFD_FEATURE_MINOR_SHMEM`, Linux 5.14) the
 * error names the feature. Requires `--allow-ffi`.
 *
 * @param memfd The memfd.
 * @param options The window and the access.
 * @returns A {@linkcode LazyView} (`prefetch()` is refused: nothing is copied).
 *
 * @example Touch one page of four
 * ```ts
 * import { lazyAlias, MemFd } from "@memkit/memkit";
 * import { assertEquals } from "@std/assert";
 *
 * using fd = MemFd.create("lazy-alias", { size: 4 * 4096 });
 * using m = fd.map();
 * m.bytes().fill(5);
 * using alias = lazyAlias(fd);
 * assertEquals(alias.bytes()[2 * 4096], 5);
 * alias.bytes()[2 * 4096] = 6; // the same memory
 * assertEquals(m.bytes()[2 * 4096], 6);
 * assertEquals([alias.stats().faults, alias.stats().pagesMapped], [1, 1]);
 * ```
 */
export function lazyAlias(memfd: MemFd, options?: LazyAliasOptions): LazyView {
  const opts = readOptions(options, "options", ["offset", "length", "access"] as const);
  const access = toAccess(opts.access ?? "rw", ["r", "rw"]) as "r" | "rw";
  const state = memfdState(memfd);
  if (!state) throw new TypeError("Cannot make a lazy alias: expected a MemFd");
  if (state.fd < 0) {
    throw new Deno.errors.BadResource(`Cannot make a lazy alias: memfd "${state.name}" is closed`);
  }
  const name = `memfd:${state.name}`;
  const size = check(lib().mk_core_fd_size(state.fd), "get the size of memfd", { path: name });
  const page = pageSize();
  const { offset, length } = window(opts.offset, opts.length, size, page, `"${name}"`);
  const out = new BigUint64Array(MK.UFFD_CREATE_WORDS);
  const prot = access === "rw" ? MK.PROT_READ | MK.PROT_WRITE : MK.PROT_READ;
  const ret = lib().mk_uffd_alias(state.fd, BigInt(offset), BigInt(length), prot, out);
  if (ret < 0n) {
    if (ret === -BigInt(ERRNO.EOPNOTSUPP)) {
      throw new MemkitError(ERRNO.EOPNOTSUPP, "make a lazy alias of", {
        path: name,
        hint: "this kernel lacks minor faults on shared memory (UFFD_FEATURE_MINOR_SHMEM, " +
          "Linux 5.14); map() the memfd instead",
      });
    }
    const reasons = reasonsOf(out, MK.UFFD_CREATE_SYSCALL_ERR, deviceOf());
    throw new MemkitError(Number(-ret), "make a lazy alias of", {
      path: name,
      hint: reasons.length > 0 ? reasons.join("; ") : undefined,
    });
  }
  return start(ret, out, {
    address: out[MK.UFFD_CREATE_ADDRESS],
    length,
    access,
    maxAccess: "rw",
    name: `lazy alias of ${name}`,
    pieces: [{ source: state.regions, owner: state.regions, offset, at: 0, length }],
  });
}

/** The LazyView over a started handler, whose region stops it when unbacked. */
function start(ret: bigint, out: BigUint64Array, init: MappingInit): LazyView {
  const handler: Handler = {
    handle: ret,
    final: undefined,
    via: VIA[Number(out[MK.UFFD_CREATE_VIA])] ?? "syscall",
  };
  const stop = () => {
    const final = new BigUint64Array(STATS);
    lib().mk_uffd_stop(handler.handle, final);
    handler.final = final;
  };
  return new LazyView(mappingToken(), { ...init, onUnback: stop }, handler);
}

/** Whether mk_uffd_create failed before it tried any way to a userfaultfd. */
function noWayTried(out: BigUint64Array): boolean {
  return out[MK.UFFD_CREATE_SYSCALL_ERR] === 0n && out[MK.UFFD_CREATE_DEVICE_ERR] === 0n &&
    out[MK.UFFD_CREATE_USER_ERR] === 0n;
}

/** The kernel's refusal of the first read of another process, as the user expects it. */
function processError(errno: number, pid: number, address: bigint): Error {
  const path = `/proc/${pid}/mem`;
  if (errno === ERRNO.ESRCH) {
    return new Deno.errors.NotFound(
      `Cannot read "${path}": no process with pid ${pid} (it does not exist or has exited)`,
    );
  }
  return new MemkitError(errno, "read the memory of", {
    path,
    hint: errno === ERRNO.EPERM || errno === ERRNO.EACCES
      ? "process_vm_readv needs ptrace read access (PTRACE_MODE_ATTACH_REALCREDS): the same " +
        "uid and no more privilege than this process, or CAP_SYS_PTRACE; " +
        "kernel.yama.ptrace_scope may refuse more"
      : errno === ERRNO.EFAULT
      ? `nothing is mapped at 0x${address.toString(16)} in process ${pid}`
      : undefined,
  });
}

/** /dev/userfaultfd's mode, uid and gid, for a refusal's message. */
function deviceOf(): BigUint64Array {
  const out = new BigUint64Array(MK.UFFD_PROBE_WORDS);
  lib().mk_uffd_probe(out);
  return out.subarray(MK.UFFD_PROBE_DEVICE_MODE, MK.UFFD_PROBE_DEVICE_MODE + 3);
}

/** One run of written pages, as {@linkcode WriteTracker.dirtyPages} returns it. */
export interface DirtyRange {
  /** The byte offset of the first written page in the mapping. */
  offset: number;
  /** The length in bytes: whole pages. */
  length: number;
}

/** How a {@linkcode WriteTracker} learns of writes. */
export type WriteTrackingMode = "async" | "sync";

/** Options of {@linkcode trackWrites}. */
export interface TrackWritesOptions {
  /**
   * `"async"`: asynchronous write-protection read back with
   * `PAGEMAP_SCAN` (Linux 6.7: `UFFD_FEATURE_WP_ASYNC` and
   * `WP_UNPOPULATED`); `"sync"`: write-protect faults served by a native
   * handler thread (any kernel with userfaultfd write-protection of shared
   * memory, `WP_HUGETLBFS_SHMEM`, Linux 5.19). Default: `"async"` where
   * the kernel offers it, else `"sync"`.
   */
  mode?: WriteTrackingMode;
}

/** What a tracker dropped without close() releases when it is collected. */
type TrackerHeld = { fd: number; pagemap: number; handle: bigint };

const trackerCloser = new FinalizationRegistry<TrackerHeld>((held) => {
  if (held.handle !== 0n) lib().mk_uffd_stop(held.handle, null);
  if (held.fd >= 0) lib().mk_core_close(held.fd);
  if (held.pagemap >= 0) lib().mk_core_close(held.pagemap);
});

/** The hint for a refusal of write tracking, by errno. */
function trackHint(
  errno: number,
  mode: WriteTrackingMode,
  out: BigUint64Array,
): string | undefined {
  if (errno === ERRNO.EOPNOTSUPP) {
    return mode === "async"
      ? "this kernel lacks asynchronous write-protection (UFFD_FEATURE_WP_ASYNC and " +
        "WP_UNPOPULATED, Linux 6.7); leave mode unset to fall back to synchronous tracking"
      : "this kernel lacks userfaultfd write-protection of shared memory " +
        "(UFFD_FEATURE_WP_HUGETLBFS_SHMEM, Linux 5.19)";
  }
  if (errno === ERRNO.EBUSY) {
    return "another userfaultfd already serves this range (a lazy view or alias)";
  }
  if (errno === ERRNO.EINVAL) {
    return "userfaultfd write-protects anonymous and shared memory (memfds, mapAnonymous, " +
      "POSIX shared memory) only, not the pages of a regular file or a device";
  }
  return reasonsOf(out, MK.UFFD_CREATE_SYSCALL_ERR, deviceOf()).join("; ") || undefined;
}

/**
 * Which pages of a mapping were written since tracking began or the last
 * {@linkcode WriteTracker.reset}: what {@linkcode trackWrites} returns.
 * In `"async"` mode writes are never blocked or delayed: the kernel lifts
 * the protection of each page on its first write and remembers it. In
 * `"sync"` mode each page's first write after a reset waits for the
 * handler thread (one round trip, then the page is writable as before).
 */
export class WriteTracker {
  #mode: WriteTrackingMode;
  #held: TrackerHeld;
  #closed = false;
  #region: Region;
  #mapping: Mapping;
  #name: string;

  /** @ignore */
  private constructor(
    mode: WriteTrackingMode,
    held: TrackerHeld,
    region: Region,
    mapping: Mapping,
  ) {
    this.#mode = mode;
    this.#held = held;
    this.#region = region;
    this.#mapping = mapping;
    this.#name = region.name;
    FinalizationRegistryPrototypeRegister(trackerCloser, this, held, this);
  }

  /** For {@linkcode trackWrites}; not part of the API. */
  static create(mapping: Mapping, options?: TrackWritesOptions): WriteTracker {
    const opts = readOptions(options, "options", ["mode"] as const);
    const wanted = opts.mode;
    if (wanted !== undefined && wanted !== "async" && wanted !== "sync") {
      throw new TypeError(
        `Cannot track writes in mode "${show(wanted)}": expected "async" or "sync"`,
      );
    }
    const region = findRegion(mapping);
    if (!region) throw new TypeError("Cannot track writes: expected a memkit Mapping");
    if (!region.backed) {
      throw new Deno.errors.BadResource(
        `Cannot track writes: the mapping of "${region.name}" is closed`,
      );
    }
    const page = pageSize();
    if (region.view % BigInt(page) !== 0n) {
      throw new RangeError(
        `Cannot track writes to "${region.name}": it does not start on a page boundary`,
      );
    }
    const out = new BigUint64Array(MK.UFFD_CREATE_WORDS);
    // Memory of a memfd (or any shared mapping) needs WP on shmem too.
    const shared = region.pieces.length > 0 && region.pieces[0].owner !== undefined ? 1 : 0;
    const fail = (ret: bigint, mode: WriteTrackingMode): never => {
      const errno = Number(-ret);
      throw new MemkitError(errno, "track writes to", {
        path: region.name,
        hint: trackHint(errno, mode, out),
      });
    };
    if (wanted !== "sync") {
      // The same flags on every kernel: the default needs pagemap even where it falls back.
      gateProc("pagemap", "self");
      const pm = lib().mk_pagemap_open(0);
      if (pm < 0n) check(pm, "open", { path: "/proc/self/pagemap" });
      const ret = lib().mk_uffd_track(region.view, BigInt(region.viewSpan), shared, out);
      if (ret >= 0n) {
        return new WriteTracker(
          "async",
          { fd: Number(ret), pagemap: Number(pm), handle: 0n },
          region,
          mapping,
        );
      }
      lib().mk_core_close(Number(pm));
      if (wanted === "async" || ret !== -BigInt(ERRNO.EOPNOTSUPP)) fail(ret, "async");
    }
    // Every memkit mapping is shared memory: ask for its write-protection.
    const ret = lib().mk_uffd_track_sync(region.view, BigInt(region.viewSpan), 1, out);
    if (ret < 0n) fail(ret, "sync");
    return new WriteTracker("sync", { fd: -1, pagemap: -1, handle: ret }, region, mapping);
  }

  /**
   * How writes are found: `"async"` (the kernel's asynchronous
   * write-protection, read with `PAGEMAP_SCAN`) or `"sync"` (a handler
   * thread serving write-protect faults, where the kernel lacks the former
   * or `{ mode: "sync" }` asked for it).
   */
  get mode(): WriteTrackingMode {
    return this.#mode;
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  #alive(op: string): void {
    if (this.#closed) {
      throw new Deno.errors.BadResource(`Cannot ${op}: the tracker of "${this.#name}" is closed`);
    }
    if (!this.#region.backed || findRegion(this.#mapping) !== this.#region) {
      throw new Deno.errors.BadResource(
        `Cannot ${op}: the mapping of "${this.#name}" was closed or moved (protect()) since ` +
          "tracking began; track it again",
      );
    }
  }

  #scan(op: string, reset: boolean): DirtyRange[] {
    this.#alive(op);
    return this.#mode === "sync" ? this.#bitmap(op, reset) : this.#pagemapScan(op, reset);
  }

  /** The runs of the handler's bitmap (read, or taken and cleared with a new protection). */
  #bitmap(op: string, reset: boolean): DirtyRange[] {
    const page = pageSize();
    const pages = this.#region.viewSpan / page;
    const words = Math.ceil(pages / 64);
    const bits = new BigUint64Array(words);
    check(
      lib().mk_uffd_dirty(this.#held.handle, reset ? 1 : 0, bits, BigInt(words)),
      op,
      { path: this.#name },
    );
    const halves = new Uint32Array(bits.buffer); // little-endian: page p is bit p % 32 of half p >> 5
    const out: DirtyRange[] = [];
    let run = -1;
    for (let h = 0; h < halves.length; h++) {
      const v = halves[h];
      if (v === 0 && run < 0) continue;
      if (v === 0xffffffff && run >= 0) continue;
      for (let b = 0; b < 32; b++) {
        const p = h * 32 + b;
        const set = (v >>> b) & 1;
        if (set && run < 0) run = p;
        else if (!set && run >= 0) {
          out.push({ offset: run * page, length: (p - run) * page });
          run = -1;
        }
      }
    }
    if (run >= 0) out.push({ offset: run * page, length: (halves.length * 32 - run) * page });
    return out;
  }

  #pagemapScan(op: string, reset: boolean): DirtyRange[] {
    const out: DirtyRange[] = [];
    const region = this.#region;
    const end = region.view + BigInt(region.viewSpan);
    let start = region.view;
    const cap = 512;
    const vec = new BigUint64Array(cap * 3);
    const walkEnd = new BigUint64Array(1);
    while (start < end) {
      const n = check(
        lib().mk_uffd_written(
          this.#held.pagemap,
          start,
          end,
          reset ? 1 : 0,
          vec,
          BigInt(cap),
          walkEnd,
        ),
        op,
        { path: this.#name },
      );
      for (let i = 0; i < n; i++) {
        const offset = Number(vec[3 * i] - region.view);
        const length = Number(vec[3 * i + 1] - vec[3 * i]);
        const last = out[out.length - 1];
        if (last && last.offset + last.length === offset) last.length += length;
        else out.push({ offset, length });
      }
      if (walkEnd[0] <= start) break;
      start = walkEnd[0];
    }
    return out;
  }

  /**
   * The runs of pages written since tracking began or the last `reset()`,
   * in order; pages never populated before their write count too. In
   * `"async"` mode read with `PAGEMAP_SCAN` (`PAGE_IS_WRITTEN`), in
   * `"sync"` mode from the handler's bitmap.
   *
   * @returns Byte offsets and lengths in the mapping, whole pages.
   *
   * @example Two writes, two runs
   * ```ts
   * // deno run --allow-ffi --allow-read=/proc/self/pagemap
   * import { MemFd, trackWrites } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using fd = MemFd.create("track", { size: 8 * 4096 });
   * using m = fd.map();
   * using t = trackWrites(m);
   * m.bytes()[1] = 1;
   * m.bytes()[5 * 4096] = 1;
   * assertEquals(t.dirtyPages(), [{ offset: 0, length: 4096 }, { offset: 5 * 4096, length: 4096 }]);
   * ```
   */
  dirtyPages(): DirtyRange[] {
    return this.#scan("read the written pages of", false);
  }

  /**
   * Starts a new epoch: protects every page again, so `dirtyPages()` is
   * empty until the next write.
   *
   * @returns The runs written before the reset, as `dirtyPages()` would have
   * returned them (read and protected again in one step: no write between
   * the two is lost).
   *
   * @example Reset
   * ```ts
   * // deno run --allow-ffi --allow-read=/proc/self/pagemap
   * import { MemFd, trackWrites } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using fd = MemFd.create("track-reset", { size: 4 * 4096 });
   * using m = fd.map();
   * using t = trackWrites(m);
   * m.bytes()[0] = 1;
   * assertEquals(t.reset().length, 1);
   * assertEquals(t.dirtyPages(), []);
   * ```
   */
  reset(): DirtyRange[] {
    // async: PM_SCAN_WP_MATCHING protects each written page again in the
    // same walk; sync: the range protected and the bitmap taken under the
    // handler's lock.
    return this.#scan("reset the tracker of", true);
  }

  /**
   * Stops tracking: closes the userfaultfd (and stops the handler thread
   * in `"sync"` mode; a write waiting on it completes), so the pages are
   * writable as before. Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // Captured at load: a patched unregister would leave the finalizer to
    // close these descriptor numbers again, after they were reused.
    FinalizationRegistryPrototypeUnregister(trackerCloser, this);
    const held = this.#held;
    if (held.handle !== 0n) lib().mk_uffd_stop(held.handle, null);
    if (held.fd >= 0) lib().mk_core_close(held.fd);
    if (held.pagemap >= 0) lib().mk_core_close(held.pagemap);
  }

  /** Calls `close()`, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Tracks which pages of `mapping` are written. Where the kernel offers it,
 * asynchronous write-protection (`UFFDIO_WRITEPROTECT` with
 * `UFFD_FEATURE_WP_ASYNC` and `WP_UNPOPULATED`, Linux 6.7), read back with
 * `PAGEMAP_SCAN` (`PM_SCAN_CHECK_WPASYNC`, and `PM_SCAN_WP_MATCHING` to
 * reset): writes are never blocked. Elsewhere (or with `{ mode: "sync" }`)
 * synchronous write-protection: a native handler thread records each
 * page's first write in a bitmap and lifts its protection; the range is
 * also registered for missing faults, so pages never populated are caught
 * on every kernel. {@linkcode WriteTracker.mode} says which. Requires
 * `--allow-ffi` and, unless `mode` is `"sync"`,
 * `--allow-read=/proc/self/pagemap` (on every kernel, so that a script's
 * flags do not depend on which mode it gets).
 *
 * In `"sync"` mode with a user-mode-only userfaultfd (a non-root user,
 * {@linkcode probeUserfaultfd}), a system call writing a protected page
 * (`read(2)` into it, called through FFI) fails with `EFAULT`: write such
 * pages from JavaScript or C first.
 *
 * @param mapping A memkit Mapping (not a lazy view or alias: one
 * userfaultfd serves a range).
 * @param options The mode; default the best the kernel has.
 * @returns A {@linkcode WriteTracker}; close it to stop.
 *
 * @example Track a mapping
 * ```ts
 * // deno run --allow-ffi --allow-read=/proc/self/pagemap
 * import { MemFd, trackWrites } from "@memkit/memkit";
 * import { assertEquals } from "@std/assert";
 *
 * using fd = MemFd.create("track-writes", { size: 4 * 4096 });
 * using m = fd.map();
 * using t = trackWrites(m);
 * m.bytes()[3 * 4096 + 9] = 1;
 * assertEquals(t.dirtyPages(), [{ offset: 3 * 4096, length: 4096 }]);
 * ```
 *
 * @example The synchronous fallback on any kernel
 * ```ts
 * // deno run --allow-ffi
 * import { MemFd, trackWrites } from "@memkit/memkit";
 * import { assertEquals } from "@std/assert";
 *
 * using fd = MemFd.create("track-sync", { size: 4 * 4096 });
 * using m = fd.map();
 * using t = trackWrites(m, { mode: "sync" });
 * assertEquals(t.mode, "sync");
 * m.bytes()[2 * 4096] = 1; // a page never populated: caught too
 * assertEquals(t.dirtyPages(), [{ offset: 2 * 4096, length: 4096 }]);
 * ```
 */
export function trackWrites(mapping: Mapping, options?: TrackWritesOptions): WriteTracker {
  return WriteTracker.create(mapping, options);
}

// ---- the names before 0.x: deprecated aliases, removed in 1.0.0 ----

/**
 * The former name of {@linkcode probeUserfaultfd}.
 *
 * @deprecated Renamed to {@linkcode probeUserfaultfd}: no two exports differ
 * only by case (`userfaultfdFeatures`, `UserfaultfdFeatures`); removed in 1.0.0.
 *
 * @example The same function as probeUserfaultfd
 * ```ts
 * import { probeUserfaultfd, userfaultfdFeatures } from "@memkit/memkit";
 * import { assertStrictEquals } from "@std/assert";
 *
 * assertStrictEquals(userfaultfdFeatures, probeUserfaultfd);
 * ```
 */
export const userfaultfdFeatures: typeof probeUserfaultfd = probeUserfaultfd;

/**
 * The former name of {@linkcode LazyView.create}: a lazy copy of `source`.
 *
 * @deprecated Renamed to {@linkcode LazyView.create}: no two exports differ
 * only by case (`lazyView`, `LazyView`); removed in 1.0.0.
 *
 * @param source What the pages are copied from.
 * @param options The view's length, access, readahead, and whether
 * kernel-mode faults must be served.
 * @returns What `LazyView.create(source, options)` returns.
 *
 * @example The same view as LazyView.create
 * ```ts
 * import { LazyView, lazyView } from "@memkit/memkit";
 * import { assert, assertEquals } from "@std/assert";
 *
 * const data = new Uint8Array(4096).fill(3);
 * const address = Deno.UnsafePointer.value(Deno.UnsafePointer.of(data));
 * using view = lazyView({ address, length: data.length });
 * assert(view instanceof LazyView);
 * assertEquals(view.bytes()[0], 3);
 * ```
 */
export function lazyView(source: LazySource, options?: LazyViewOptions): LazyView {
  return LazyView.create(source, options);
}
