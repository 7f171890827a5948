/**
 * Memory protection keys (`pkey_alloc`, `pkey_mprotect`, the PKRU register):
 * change the access to many mappings at once, per thread, without a system
 * call. Intel and AMD CPUs with PKU have 16 keys; elsewhere
 * {@linkcode Pkey.supported} is false.
 *
 * @module
 */

import { ERRNO, MemkitError } from "../ffi/errors.ts";
import { lib, pageSize } from "../ffi/loader.ts";
import { MK } from "../ffi/symbols.ts";
import {
  FinalizationRegistryPrototypeRegister,
  FinalizationRegistryPrototypeUnregister,
  uncurryThis,
} from "./_primordials.ts";
import { type Access, PROT, toAccess } from "./_access.ts";
import { findRegion, regionOf } from "./_region.ts";
import { limitByPkey, Mapping } from "./mapping.ts";

// A Mapping's own answers, as its class defines them: an instance property
// the caller defined over `address` or `length` changes nothing.
const proto = Mapping.prototype;
const own = <R>(name: string) =>
  uncurryThis(Object.getOwnPropertyDescriptor(proto, name)!.get!) as (m: Mapping) => R;
const addressOf = own<bigint>("address");
const lengthOf = own<number>("length");
const closedOf = own<boolean>("closed");
const nameOf = own<string>("name");
const accessAtOf = uncurryThis(proto.accessAt);
const protectOf = uncurryThis(proto.protect);

const UNSUPPORTED_HINT = "this CPU or kernel has no memory protection keys (x86 PKU: " +
  'the "pku" and "ospke" flags of /proc/cpuinfo, and a kernel with ' +
  "CONFIG_X86_INTEL_MEMORY_PROTECTION_KEYS); protect() does the same job with one mprotect " +
  "per change";

/** Rights of a key, as `PKEY_DISABLE_*` bits, for an access. */
function rightsOf(access: Access): number {
  switch (access) {
    case "none":
      return MK.PKEY_DISABLE_ACCESS;
    case "r":
    case "rx":
      return MK.PKEY_DISABLE_WRITE;
    case "rw":
      return 0;
  }
}

function accessOfRights(rights: number): Access {
  if (rights & MK.PKEY_DISABLE_ACCESS) return "none";
  return rights & MK.PKEY_DISABLE_WRITE ? "r" : "rw";
}

let probed: boolean | undefined;

/** Whether the CPU has keys and the OS enabled them (OSPKE): PKRU can be read. */
function cpuHasKeys(): boolean {
  return lib().mk_pkey_get(0) >= 0n;
}

/** Tags every page of a mapping with `key`, keeping each page's protection. */
function retag(mapping: Mapping, key: number): void {
  const page = BigInt(pageSize());
  const pages = Math.ceil(lengthOf(mapping) / Number(page));
  let start = 0;
  for (let i = 1; i <= pages; i++) {
    const access = accessAtOf(mapping, start * Number(page));
    if (i < pages && accessAtOf(mapping, i * Number(page)) === access) continue;
    lib().mk_pkey_mprotect(
      addressOf(mapping) + BigInt(start) * page,
      BigInt(i - start) * page,
      PROT[access],
      key,
    );
    start = i;
  }
}

/** What a key holds: its number and the mappings assigned to it. */
interface Held {
  key: number;
  mappings: Set<WeakRef<Mapping>>;
  /** This key's mark in {@linkcode owner}: not the key itself, which it must not keep alive. */
  token: object;
}

/**
 * The key (its token) behind each region's `pkeyRights`, the function the
 * key that tagged the region's pages last put there (a relocated region
 * keeps it): a mapping assigned to another key since is not this key's.
 */
const owner = new WeakMap<() => number, object>();

function ownedBy(m: Mapping, token: object): boolean {
  const rights = regionOf(m).pkeyRights;
  return rights !== undefined && owner.get(rights) === token;
}

/**
 * Frees a key after giving this thread full rights to it again and the
 * pages of its still-open mappings back to the default key 0: a key
 * allocated later may reuse this number with other rights.
 */
function release(held: Held): void {
  const { key, mappings, token } = held;
  lib().mk_pkey_set(key, 0);
  for (const ref of mappings) {
    const m = ref.deref();
    if (m !== undefined && !closedOf(m) && ownedBy(m, token)) retag(m, 0);
  }
  mappings.clear();
  lib().mk_pkey_free(key);
}

// The backstop for a key dropped unfreed: it is freed once the object is
// collected. (A mapping assigned to the key keeps the key alive.)
const freer = new FinalizationRegistry<Held>(release);

/**
 * A memory protection key. Pages assigned to a key (`assign()`) can be made
 * read-only or inaccessible for the calling thread by `set()`, which writes
 * the thread's PKRU register: no system call, no TLB flush. The rights are
 * **per-thread state**: `set()` on the main thread does not change what a
 * worker may do, and a new thread starts with the key's initial rights.
 *
 * memkit keeps its promise under keys: lowering the rights detaches the
 * writable views of every mapping assigned to the key (as `protect()` does),
 * and `"none"` is refused while read-only views of them live.
 *
 * Requires `--allow-ffi`. Where the CPU or the kernel has no keys (as on
 * many virtual machines), {@linkcode Pkey.supported} is false and `alloc()`
 * throws a `MemkitError` (`ENOSYS`) explaining why.
 *
 * @example Where keys exist, writes can be switched off per thread
 * ```ts
 * import { MemFd, Pkey } from "@memkit/memkit";
 * import { assertEquals } from "@std/assert";
 *
 * if (Pkey.supported) {
 *   using fd = MemFd.create("keyed", { size: 4096 });
 *   using m = fd.map();
 *   using key = Pkey.alloc();
 *   key.assign(m, "rw");
 *   key.set("r"); // this thread may read m, not write it
 *   assertEquals(m.read(0, 1).length, 1);
 *   key.set("rw");
 * }
 * ```
 */
export class Pkey {
  #key: number;
  #rights: number;
  /** The mappings assigned to the key, held weakly: a key does not keep them alive. */
  #mappings = new Set<WeakRef<Mapping>>();
  /** This key's mark on the regions it tagged last. */
  #token = {};

  #held(): Held {
    return { key: this.#key, mappings: this.#mappings, token: this.#token };
  }

  /** @ignore */
  private constructor(key: number, rights: number) {
    this.#key = key;
    this.#rights = rights;
    FinalizationRegistryPrototypeRegister(freer, this, this.#held(), this);
  }

  /**
   * Whether this machine has protection keys: the CPU (PKU), the kernel and
   * a free key. Probed once by allocating and freeing a key.
   *
   * @example Whether this CPU and kernel have protection keys
   * ```ts
   * import { Pkey } from "@memkit/memkit";
   *
   * console.log(Pkey.supported ? "keys available" : "no protection keys here");
   * ```
   */
  static get supported(): boolean {
    if (probed === undefined) {
      if (!cpuHasKeys()) return (probed = false);
      const key = lib().mk_pkey_alloc(0);
      probed = key >= 0n;
      if (probed) lib().mk_pkey_free(Number(key));
    }
    return probed;
  }

  /**
   * Allocates a key (`pkey_alloc`) whose initial rights are `access` for
   * every thread.
   *
   * @param access The initial rights: `"rw"` (default), `"r"` or `"none"`.
   * @returns The key.
   * @throws {MemkitError} `ENOSYS` (or the kernel's `EINVAL`) where there are no keys,
   * `ENOSPC` when all are taken.
   *
   * @example Where there are no keys, the error says why
   * ```ts
   * import { MemkitError, Pkey } from "@memkit/memkit";
   * import { assertThrows } from "@std/assert";
   *
   * if (!Pkey.supported) {
   *   const err = assertThrows(() => Pkey.alloc(), MemkitError);
   *   console.log(err.message);
   * }
   * ```
   */
  static alloc(access: Access = "rw"): Pkey {
    const rights = rightsOf(toAccess(access, ["none", "r", "rw"]));
    // Without PKU the kernel answers ENOSPC ("no key left"), which misleads:
    // say ENOSYS, and why, without asking it.
    if (!cpuHasKeys()) {
      throw new MemkitError(ERRNO.ENOSYS, "allocate a protection key", { hint: UNSUPPORTED_HINT });
    }
    const ret = lib().mk_pkey_alloc(rights);
    if (ret < 0n) {
      const errno = Number(-ret);
      throw new MemkitError(errno, "allocate a protection key", {
        hint: errno === ERRNO.ENOSPC
          ? "all 15 usable keys of this process are taken; free() one"
          : UNSUPPORTED_HINT,
      });
    }
    return new Pkey(Number(ret), rights);
  }

  /** The assigned mappings still open; forgets the others. */
  #live(): Mapping[] {
    const out: Mapping[] = [];
    for (const ref of this.#mappings) {
      const m = ref.deref();
      if (m === undefined || closedOf(m)) this.#mappings.delete(ref);
      else out.push(m);
    }
    return out;
  }

  /** The key's number (1 to 15 on x86); -1 once freed. */
  get key(): number {
    return this.#key;
  }

  #alive(op: string): number {
    if (this.#key < 0) throw new Deno.errors.BadResource(`Cannot ${op}: the key was freed`);
    return this.#key;
  }

  /**
   * Tags a whole mapping with this key and gives it page protection `access`
   * (`pkey_mprotect`). Access is then what both the page protection and the
   * key's rights allow.
   *
   * @param mapping The mapping.
   * @param access Its page protection, default `"rw"`.
   *
   * @example Tag a mapping with a key
   * ```ts
   * import { MemFd, Pkey } from "@memkit/memkit";
   *
   * if (Pkey.supported) {
   *   using fd = MemFd.create("tagged", { size: 4096 });
   *   using m = fd.map();
   *   using key = Pkey.alloc();
   *   key.assign(m);
   * }
   * ```
   */
  assign(mapping: Mapping, access: Access = "rw"): void {
    const key = this.#alive("assign the key");
    // A brand check, not instanceof (which Symbol.hasInstance can answer).
    if (findRegion(mapping) === undefined) {
      throw new TypeError("Cannot assign: expected a Mapping");
    }
    const next = toAccess(access);
    if (closedOf(mapping)) {
      throw new Deno.errors.BadResource(`Cannot assign the key: the mapping is closed`);
    }
    // Check what the key's rights would refuse before changing anything; then
    // bring the page protection (and memkit's views) to `access`, and retag
    // the pages: pkey_mprotect with the same protection changes only the key.
    limitByPkey(mapping, this.#rights, true);
    protectOf(mapping, next);
    const region = regionOf(mapping);
    const ret = lib().mk_pkey_mprotect(
      addressOf(mapping),
      BigInt(lengthOf(mapping)),
      PROT[next],
      key,
    );
    if (ret < 0n) {
      throw new MemkitError(Number(-ret), "assign a protection key to", { path: nameOf(mapping) });
    }
    limitByPkey(mapping, this.#rights);
    const rights = () => (this.#key < 0 ? 0 : this.#rights);
    owner.set(rights, this.#token);
    region.pkeyRights = rights;
    this.#mappings.add(new WeakRef(mapping));
  }

  /**
   * Sets this thread's rights for the key (`"rw"`, `"r"` or `"none"`).
   * Lowering them detaches the writable views of the mappings assigned to
   * the key; `"none"` is refused while read-only views of them live.
   *
   * @param access The new rights.
   *
   * @example Make a key's pages read-only for this thread
   * ```ts
   * import { Pkey } from "@memkit/memkit";
   *
   * if (Pkey.supported) {
   *   using key = Pkey.alloc();
   *   key.set("r");
   * }
   * ```
   */
  set(access: Access): void {
    const key = this.#alive("set the key's rights");
    const rights = rightsOf(toAccess(access, ["none", "r", "rw"]));
    const live = this.#live();
    for (const m of live) limitByPkey(m, rights, true); // throws before anything changed
    const ret = lib().mk_pkey_set(key, rights);
    if (ret < 0n) throw new MemkitError(Number(-ret), "set the rights of a protection key");
    this.#rights = rights;
    for (const m of live) limitByPkey(m, rights);
  }

  /**
   * This thread's rights for the key, read from PKRU.
   *
   * @returns `"rw"`, `"r"` or `"none"`.
   *
   * @example A key's current access
   * ```ts
   * import { Pkey } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * if (Pkey.supported) {
   *   using key = Pkey.alloc("r");
   *   assertEquals(key.get(), "r");
   * }
   * ```
   */
  get(): Access {
    const key = this.#alive("read the key's rights");
    const ret = lib().mk_pkey_get(key);
    if (ret < 0n) throw new MemkitError(Number(-ret), "read the rights of a protection key");
    return accessOfRights(Number(ret));
  }

  /**
   * Frees the key (`pkey_free`) after giving this thread full rights to it
   * again. Pages still tagged with it keep the tag: assign them another key
   * or close them. Idempotent.
   *
   * @example Free a key
   * ```ts
   * import { Pkey } from "@memkit/memkit";
   *
   * if (Pkey.supported) Pkey.alloc().free();
   * ```
   */
  free(): void {
    if (this.#key < 0) return;
    // Unregister first: the backstop must never free this key number
    // again, after it was reused.
    FinalizationRegistryPrototypeUnregister(freer, this);
    const held = this.#held();
    this.#rights = 0;
    this.#key = -1;
    release(held);
  }

  /**
   * Frees the key: the same as {@linkcode Pkey.free}, under the name every
   * memkit resource closes by. Idempotent.
   *
   * @example Close a key (the same as free)
   * ```ts
   * import { Pkey } from "@memkit/memkit";
   *
   * if (Pkey.supported) Pkey.alloc().close();
   * ```
   */
  close(): void {
    this.free();
  }

  /** Whether the key was freed (`free()` or `close()`). */
  get closed(): boolean {
    return this.#key < 0;
  }

  /** Calls `free()`, for `using`. */
  [Symbol.dispose](): void {
    this.free();
  }
}
