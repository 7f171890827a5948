/**
 * `MemFd`: anonymous memory with a file descriptor (`memfd_create`), to map
 * at several addresses, resize, seal and share.
 *
 * @module
 */

import { check, ERRNO, MemkitError } from "../ffi/errors.ts";
import { lib, pageSize } from "../ffi/loader.ts";
import { MK } from "../ffi/symbols.ts";
import { list, lookup, readOptions, show, type Snapshot } from "./_args.ts";
import {
  BigIntCtor,
  FinalizationRegistryPrototypeRegister,
  FinalizationRegistryPrototypeUnregister,
  MapPrototypeClear,
  ObjectCreate,
  uncurryThis,
} from "./_primordials.ts";
import { cString, inRange, MAX_BYTES, window } from "./_validate.ts";
import { type Access, toAccess } from "./_access.ts";
import { mapReusing, type Region } from "./_region.ts";
import { createMapping, type Mapping } from "./mapping.ts";

/** A memfd seal (`F_SEAL_*`): what nobody may do to the memfd any more. */
export type Seal = "seal" | "shrink" | "grow" | "write" | "future-write" | "exec";

const SEALS: Readonly<Record<Seal, number>> = Object.freeze({
  seal: MK.SEAL_SEAL,
  shrink: MK.SEAL_SHRINK,
  grow: MK.SEAL_GROW,
  write: MK.SEAL_WRITE,
  "future-write": MK.SEAL_FUTURE_WRITE,
  exec: MK.SEAL_EXEC,
});

/** Options of {@linkcode MemFd.create}. */
export interface MemFdOptions {
  /** The initial size in bytes (default 0). */
  size?: number;
  /** Allow `seal()` (`MFD_ALLOW_SEALING`); default true. */
  sealable?: boolean;
  /**
   * Make the memfd non-executable for good (`MFD_NOEXEC_SEAL`, Linux 6.3+);
   * default false. Where the kernel lacks it, asking for it is an error.
   */
  noexec?: boolean;
}

/** Options of {@linkcode MemFd.map}. */
export interface MapOptions {
  /** Where the mapping starts in the memfd: a multiple of the page size. Default 0. */
  offset?: number;
  /** How many bytes to map: a multiple of the page size, or up to the end. Default: to the end. */
  length?: number;
  /** `"rw"` (default) or `"r"`. */
  access?: "r" | "rw";
}

/** What memkit's own modules read of a memfd: its private state, not its (patchable) getters. */
export interface MemFdState {
  /** The descriptor; -1 once closed. */
  fd: number;
  /** The name given at creation. */
  name: string;
  /** The live regions mapping it, and how far into it each reaches. */
  regions: Map<Region, number>;
}

/** map()'s defaults, for no options: nothing to read, so no snapshot to make. */
const NO_MAP_OPTIONS = Object.freeze(ObjectCreate(null)) as Snapshot<
  "offset" | "length" | "access"
>;

let stateOfMemFd: (memfd: MemFd) => MemFdState | undefined;
let adopt: (fd: number, name: string) => MemFd;

/**
 * A `MemFd` that owns `fd`, a memfd descriptor this process received (and
 * checked); for memkit's own modules (fd_socket).
 */
export function adoptMemFd(fd: number, name: string): MemFd {
  return adopt(fd, name);
}

/** A memfd's private state, or undefined for anything else; for memkit's own modules (stitch). */
export function memfdState(memfd: unknown): MemFdState | undefined {
  return stateOfMemFd(memfd as MemFd);
}

const StringPrototypeCharCodeAt = uncurryThis(String.prototype.charCodeAt);

/**
 * `cString(name)` for a memfd's name: short ASCII names (the usual ones) are
 * copied byte by byte, which is several times faster than `TextEncoder` for
 * a few bytes; anything else (non-ASCII, a NUL, not a string, too long) goes
 * through `cString`, with its checks and messages.
 */
function nameBytes(name: unknown): Uint8Array<ArrayBuffer> {
  if (typeof name !== "string" || name.length > 249) return cString(name, "name");
  if (name === lastName) return lastBytes;
  const n = name.length;
  const out = new Uint8Array(n + 1);
  for (let i = 0; i < n; i++) {
    const c = StringPrototypeCharCodeAt(name, i);
    if (c === 0 || c > 0x7f) return cString(name, "name");
    out[i] = c;
  }
  lastName = name;
  lastBytes = out;
  return out;
}
// The last ASCII name and its bytes: only ever read by memfd_create, never
// handed to any caller, so one copy serves every create() of that name.
let lastName = "";
let lastBytes = new Uint8Array(1);

const closer = new FinalizationRegistry<number>((fd) => {
  lib().mk_core_close(fd);
});

/**
 * An anonymous memory file (`memfd_create`, always `MFD_CLOEXEC`). Map it as
 * many times as you like, at different addresses and protections: every
 * mapping shows the same memory, with no copy.
 *
 * Requires `--allow-ffi`.
 *
 * @example Writes through one mapping show through another
 * ```ts
 * import { MemFd } from "@memkit/memkit";
 * import { assertEquals } from "@std/assert";
 *
 * using fd = MemFd.create("demo", { size: 8192 });
 * using a = fd.map({ access: "rw" });
 * using b = fd.map({ access: "r", offset: 4096 });
 * a.bytes()[4096] = 7;
 * assertEquals(b.bytes()[0], 7);
 * ```
 */
export class MemFd {
  #fd: number;
  #name: string;
  #sealable: boolean;
  /** Live regions mapping this memfd, and how far into it each reaches. */
  #regions = new Map<Region, number>();
  static {
    stateOfMemFd = (m) =>
      m !== null && typeof m === "object" && #fd in m
        ? { fd: m.#fd, name: m.#name, regions: m.#regions }
        : undefined;
    adopt = (fd, name) => new MemFd(fd, name, true);
  }

  /** @ignore */
  private constructor(fd: number, name: string, sealable: boolean) {
    this.#fd = fd;
    this.#name = name;
    this.#sealable = sealable;
    FinalizationRegistryPrototypeRegister(closer, this, fd, this);
  }

  /**
   * Creates a memfd.
   *
   * @param name A name for `/proc/<pid>/fd` and maps (`memfd:<name>`), at most 249 bytes.
   * @param options Its size, whether it can be sealed, whether it is non-executable.
   * @returns The new memfd.
   *
   * @example A memfd of a given size
   * ```ts
   * import { MemFd } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using fd = MemFd.create("sized", { size: 65536 });
   * assertEquals(fd.size, 65536);
   * ```
   */
  static create(name: string, options?: MemFdOptions): MemFd {
    const opts = readOptions(options, "options", ["size", "sealable", "noexec"] as const);
    const cname = nameBytes(name);
    if (cname.length - 1 > 249) {
      throw new RangeError(`Cannot use name "${name}": longer than 249 bytes`);
    }
    const size = inRange(opts.size ?? 0, "size", 0, MAX_BYTES);
    const sealable = opts.sealable ?? true;
    const noexec = opts.noexec ?? false;
    if (typeof sealable !== "boolean" || typeof noexec !== "boolean") {
      throw new TypeError("Cannot create a memfd: sealable and noexec must be booleans");
    }
    const flags = (sealable ? MK.MEMFD_SEALABLE : 0) | (noexec ? MK.MEMFD_NOEXEC : 0);
    // memfd_create and ftruncate in one call: a new memfd is empty and
    // unmapped, so resize()'s checks (fstat, the maps scan) have nothing to find.
    const fd = check(lib().mk_memfd_create_sized(cname, flags, BigIntCtor(size)), "create memfd", {
      path: name,
      hints: noexec ? { EINVAL: "this kernel lacks MFD_NOEXEC_SEAL (Linux 6.3+)" } : {},
    });
    const memfd = new MemFd(fd, name, sealable);
    return memfd;
  }

  /**
   * Whether this kernel supports `noexec: true` (`MFD_NOEXEC_SEAL`, Linux 6.3+).
   *
   * @example noexec where the kernel has it
   * ```ts
   * import { MemFd } from "@memkit/memkit";
   *
   * using fd = MemFd.create("maybe-noexec", { noexec: MemFd.noexecSupported });
   * ```
   */
  static get noexecSupported(): boolean {
    return check(lib().mk_memfd_noexec_supported(), "probe memfd") === 1;
  }

  /** The name given at creation. */
  get name(): string {
    return this.#name;
  }

  /**
   * The file descriptor, for passing to another process; -1 once closed.
   * memkit closes it: do not close it yourself.
   */
  get fd(): number {
    return this.#fd;
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#fd < 0;
  }

  #alive(op: string): number {
    if (this.#fd < 0) {
      throw new Deno.errors.BadResource(`Cannot ${op}: memfd "${this.#name}" is closed`);
    }
    return this.#fd;
  }

  /** The current size in bytes (read from the kernel: another process may have resized it). */
  get size(): number {
    return check(lib().mk_core_fd_size(this.#alive("get the size")), "get the size of memfd", {
      path: this.#name,
    });
  }

  /**
   * Sets the size (`ftruncate`). Growing adds zero bytes. Shrinking below the
   * end of a live mapping is refused: touching those pages would be SIGBUS.
   *
   * The kernel is asked, not memkit's bookkeeping: every mapping of this
   * memfd in this process counts, whoever made it (memkit, a second copy of
   * memkit, a Worker, a `mapFile()` of `/proc/self/fd/<fd>`). To do so memkit
   * reads this process's own `/proc/self/maps` natively, with no permission
   * asked: for safety, not on the caller's behalf, and nothing read is
   * returned. Not covered: a thread that maps the memfd between that check
   * and the `ftruncate`, and mappings in other processes (seal the memfd
   * against shrinking before sharing it).
   *
   * @param size The new size in bytes.
   * @throws {MemkitError} `EBUSY`, naming the mapping, when a mapping
   * reaches past `size`; `EPERM` when a seal forbids the change.
   *
   * @example Grow a memfd
   * ```ts
   * import { MemFd } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using fd = MemFd.create("grow");
   * fd.resize(4096 * 3);
   * assertEquals(fd.size, 12288);
   * ```
   *
   * @example Shrinking under a mapping is refused
   * ```ts
   * import { MemFd, MemkitError } from "@memkit/memkit";
   * import { assertEquals, assertThrows } from "@std/assert";
   *
   * using fd = MemFd.create("busy", { size: 8192 });
   * using m = fd.map();
   * const e = assertThrows(() => fd.resize(4096), MemkitError);
   * assertEquals(e.code, "EBUSY");
   * assertEquals(fd.size, 8192);
   * ```
   */
  resize(size: number): void {
    const fd = this.#alive("resize");
    const n = inRange(size, "size", 0, MAX_BYTES);
    const current = this.size;
    const busy = new BigUint64Array(3);
    const ret = lib().mk_memfd_resize(fd, BigIntCtor(n), busy);
    if (ret >= 0n) return;
    const [start, end, reach] = busy;
    check(ret, "resize", {
      path: `memfd:${this.#name}`,
      hints: {
        EBUSY: `the mapping at 0x${start.toString(16)}-0x${end.toString(16)} reaches byte ` +
          `${reach} of it, so size ${n} would make it fault (SIGBUS); close that mapping first`,
        EPERM: `it is sealed against ${n > current ? "growing" : "shrinking"}`,
        ENOENT: "memkit reads /proc/self/maps to check that no mapping reaches past the new " +
          "size, and /proc is not mounted",
      },
    });
  }

  #sealBits(): number {
    return check(lib().mk_memfd_seals(this.#alive("read seals")), "read seals of memfd", {
      path: this.#name,
    });
  }

  /**
   * Adds seals (`F_ADD_SEALS`): each forbids something, to everyone, for the
   * life of the memfd. Needs `sealable` (the default).
   *
   * On an executable memfd the kernel makes `"exec"` imply `"shrink"`,
   * `"grow"`, `"write"` and `"future-write"` too (so it fails with `EBUSY`
   * while a writable mapping exists); create with `noexec: true` instead.
   *
   * @param seals The seals to add.
   * @throws {MemkitError} `EPERM` when not sealable or already sealed with
   * `"seal"`; `EBUSY` for `"write"` while a writable mapping exists.
   *
   * @example Seal a memfd's size
   * ```ts
   * import { MemFd } from "@memkit/memkit";
   * import { assertEquals, assertThrows } from "@std/assert";
   *
   * using fd = MemFd.create("sealed", { size: 4096 });
   * fd.seal(["shrink", "grow"]);
   * assertEquals(fd.seals, ["shrink", "grow"]);
   * assertThrows(() => fd.resize(8192));
   * ```
   */
  seal(seals: Seal[]): void {
    if (!Array.isArray(seals)) throw new TypeError("Cannot seal: expected an array of seals");
    const names = list(seals, "seals");
    let bits = 0;
    for (let i = 0; i < names.length; i++) {
      // Own keys only: "toString" or "constructor" name no seal.
      const bit = lookup(SEALS, names[i]);
      if (bit === undefined) {
        throw new TypeError(
          `Cannot use seal "${show(names[i])}": expected one of ${
            Object.keys(SEALS).map((k) => `"${k}"`).join(", ")
          }`,
        );
      }
      bits |= bit;
    }
    const fd = this.#alive("seal");
    if (!this.#sealable) {
      throw new MemkitError(ERRNO.EPERM, "seal", {
        path: `memfd:${this.#name}`,
        hint: "it was created with sealable: false",
      });
    }
    check(lib().mk_memfd_seal(fd, bits), "seal", {
      path: `memfd:${this.#name}`,
      hints: {
        EPERM: 'it is sealed with "seal": no more seals can be added',
        EBUSY: 'a writable shared mapping of it exists; "write" needs none (use "future-write")',
      },
    });
  }

  /** The seals in force, in the order of {@linkcode Seal}. */
  get seals(): Seal[] {
    const bits = this.#sealBits();
    return (Object.keys(SEALS) as Seal[]).filter((s) => bits & SEALS[s]);
  }

  /**
   * Maps the memfd (or a window of it) into this process (`mmap MAP_SHARED`).
   *
   * @param options The window and the access (`"rw"` by default).
   * @returns The new mapping.
   * @throws {RangeError} For an unaligned offset, a zero or unaligned length,
   * or a window past the size (it would fault).
   *
   * @example Map a window of a memfd read-only
   * ```ts
   * import { MemFd } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using fd = MemFd.create("window", { size: 3 * 4096 });
   * using m = fd.map({ offset: 4096, length: 4096, access: "r" });
   * assertEquals(m.length, 4096);
   * assertEquals(m.access, "r");
   * ```
   */
  map(options?: MapOptions): Mapping {
    const opts = options === undefined
      ? NO_MAP_OPTIONS
      : readOptions(options, "options", ["offset", "length", "access"] as const);
    const access = toAccess(opts.access ?? "rw", ["r", "rw"]);
    const fd = this.#alive("map");
    const name = `memfd:${this.#name}`;
    const { offset, length } = window(
      opts.offset,
      opts.length,
      this.size,
      pageSize(),
      `"${name}"`,
    );
    const prot = access === "rw" ? MK.PROT_READ | MK.PROT_WRITE : MK.PROT_READ;
    // Over a range out of the quarantine when one of this length is free, else fresh.
    let ret = mapReusing(length, fd, offset, prot, 0);
    if (ret < 0n) ret = lib().mk_map_fd(fd, BigInt(offset), BigInt(length), prot);
    if (ret < 0n) {
      check(ret, "map", {
        path: name,
        hints: { EPERM: 'it is sealed against writing; map it with access "r"' },
      });
    }
    return createMapping({
      address: ret,
      length,
      access: access as Access,
      maxAccess: "rw",
      name,
      pieces: [{ source: this.#regions, owner: this.#regions, offset, at: 0, length }],
    });
  }

  /** Closes the descriptor. Mappings stay valid until they are closed. Idempotent. */
  close(): void {
    if (this.#fd < 0) return;
    // Captured at load: a patched unregister would leave the finalizer to
    // close this descriptor number again, after it was reused.
    FinalizationRegistryPrototypeUnregister(closer, this);
    const fd = this.#fd;
    this.#fd = -1;
    MapPrototypeClear(this.#regions);
    check(lib().mk_core_close(fd), "close memfd", { path: this.#name });
  }

  /** Calls `close()`, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** A short description for `console.log`. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.#fd < 0
      ? `MemFd { "${this.#name}", closed }`
      : `MemFd { "${this.#name}", fd ${this.#fd}, ${this.size} bytes }`;
  }
}
