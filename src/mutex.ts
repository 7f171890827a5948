/**
 * `SharedMutex`: a mutex inside memory shared between processes, owned by a
 * process (pid and start time), recovered when its holder dies.
 *
 * @module
 */

import { check, ERRNO, errnoCode, MemkitError } from "../ffi/errors.ts";
import { lib } from "../ffi/loader.ts";
import { MK } from "../ffi/symbols.ts";
import { hex, readOptions, show } from "./_args.ts";
import { BigIntCtor, MathMin } from "./_primordials.ts";
import { pidOf, selfIdentity, SharedWindow } from "./_shared_word.ts";
import type { Mapping } from "./mapping.ts";

/** Options of {@linkcode SharedMutex.lock}. */
export interface SharedMutexLockOptions {
  /**
   * How long to wait for a live holder, in milliseconds (`Infinity`: as long
   * as it lives). Default 10000. A dead holder is always recovered first.
   */
  timeoutMs?: number;
}

/** Options of {@linkcode SharedMutex.lockAsync}. */
export interface SharedMutexAsyncOptions extends SharedMutexLockOptions {
  /** Aborts the wait: the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** What taking a {@linkcode SharedMutex} found. */
export interface SharedMutexResult {
  /**
   * The previous holder died holding it (or a holder that recovered it died
   * before `markConsistent()`): what it protects may be half-updated. Repair
   * it, then call `markConsistent()` before `unlock()`.
   */
  readonly ownerDied: boolean;
}

/** Who holds a {@linkcode SharedMutex}, as {@linkcode SharedMutex.owner} reads it. */
export interface SharedMutexOwner {
  /** The holder's pid. */
  readonly pid: number;
  /** Whether that pid is a live process with the start time recorded beside it. */
  readonly alive: boolean;
  /** Whether the holder is this process. */
  readonly self: boolean;
}

const TAKEN: SharedMutexResult = Object.freeze({ ownerDied: false });
const RECOVERED: SharedMutexResult = Object.freeze({ ownerDied: true });
const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_TIMEOUT_NS = BigInt(DEFAULT_TIMEOUT_MS * 1_000_000);
const MAX_NS = 2n ** 62n;

/** A timeout in ms as the native side takes it: nanoseconds, -1 for none. */
function timeoutNs(value: unknown): bigint {
  if (value === undefined) return DEFAULT_TIMEOUT_NS;
  if (typeof value !== "number" || Number.isNaN(value) || value < 0) {
    throw new RangeError(
      `Cannot use timeoutMs "${show(value)}": expected a number of milliseconds >= 0`,
    );
  }
  if (value === Infinity) return -1n;
  const ns = BigIntCtor(Math.round(MathMin(value, 2 ** 52)) * 1_000_000);
  return ns > MAX_NS ? MAX_NS : ns;
}

function msOf(ns: bigint): string {
  return ns < 0n ? "Infinity" : `${Number(ns) / 1e6}`;
}

/**
 * A mutex inside shared memory (a {@linkcode Mapping} of a memfd, a shared
 * segment, a file), for processes that map the same memory: 64 bytes
 * ({@linkcode SharedMutex.byteLength}) at an offset that is a multiple of 8,
 * with a versioned header checked on attach.
 *
 * It belongs to a process, not to a thread or an instance: the holder is
 * recorded as its pid and its start time, so a reused pid does not pass for
 * it. Waiters sleep in the kernel (futex) in slices of 10 ms and look at the
 * holder after each: when it died (a `kill -9` inside the critical section),
 * the next locker takes the mutex over and learns it from `ownerDied`, within
 * about 10 ms of its death (plus scheduling delays). A peer that scribbles over the owner word is
 * treated as a dead owner; a corrupt header is an error, never a hang; a live
 * holder that never unlocks costs a timeout (`Deno.errors.TimedOut`, 10 s by
 * default) naming its pid.
 *
 * After `ownerDied`, the data is suspect: repair it and call
 * `markConsistent()` before `unlock()`; unlocking without it makes the mutex
 * not recoverable (`ENOTRECOVERABLE` for everyone, until `init()` again), as
 * POSIX robust mutexes do.
 *
 * Requires `--allow-ffi`.
 *
 * @example Lock, update, unlock
 * ```ts
 * import { MemFd, SharedMutex } from "@memkit/memkit";
 * import { assertEquals } from "@std/assert";
 *
 * using fd = MemFd.create("mutex", { size: 4096 });
 * using m = fd.map();
 * using mutex = SharedMutex.init(m, 0);
 * const counter = m.view(Uint32Array, SharedMutex.byteLength, 1);
 * mutex.withLock(() => {
 *   counter[0]++;
 * });
 * assertEquals(counter[0], 1);
 * ```
 */
export class SharedMutex {
  /** The bytes a SharedMutex takes in the mapping (64). */
  static readonly byteLength: number = MK.MUTEX_BYTES;

  #window: SharedWindow;
  #sym = lib();
  #self = selfIdentity();
  #held = false;
  #closed = false;

  /** @ignore */
  private constructor(window: SharedWindow) {
    this.#window = window;
  }

  /**
   * Writes a new, unlocked mutex at `offset` of `mapping` (any mutex there
   * before is forgotten: do this once, before any other process attaches).
   *
   * @param mapping A writable mapping of shared memory.
   * @param offset Where the 64 bytes start: a multiple of 8 (64 keeps it in one cache line).
   * @returns The mutex, attached.
   *
   * @example Put a mutex in shared memory
   * ```ts
   * import { MemFd, SharedMutex } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using fd = MemFd.create("mutex-init", { size: 4096 });
   * using m = fd.map();
   * using mutex = SharedMutex.init(m, 64);
   * assertEquals(mutex.owner(), null);
   * ```
   */
  static init(mapping: Mapping, offset: number): SharedMutex {
    const w = new SharedWindow(mapping, offset, MK.MUTEX_BYTES, "SharedMutex");
    check(lib().mk_mutex_init(w.at("init")), `init ${w.label}`, { path: w.mapping.name });
    return new SharedMutex(w);
  }

  /**
   * Attaches to the mutex another process (or this one) wrote at `offset`
   * with `init()`, after checking its header.
   *
   * @param mapping A writable mapping of the same memory.
   * @param offset Where `init()` placed it.
   * @returns The mutex.
   * @throws {MemkitError} `EBADMSG` when the bytes there are not a SharedMutex
   * of this version (never initialized, foreign, or corrupt); `EXDEV` when it
   * was made in another pid namespace, whose pids name other processes.
   *
   * @example Use a mutex another mapping created
   * ```ts
   * import { MemFd, SharedMutex } from "@memkit/memkit";
   * import { assertThrows } from "@std/assert";
   *
   * using fd = MemFd.create("mutex-attach", { size: 4096 });
   * using a = fd.map();
   * using b = fd.map();
   * SharedMutex.init(a, 0);
   * using mutex = SharedMutex.attach(b, 0);
   * mutex.withLock(() => {});
   * assertThrows(() => SharedMutex.attach(b, 128)); // zeros: no mutex there
   * ```
   */
  static attach(mapping: Mapping, offset: number): SharedMutex {
    const w = new SharedWindow(mapping, offset, MK.MUTEX_BYTES, "SharedMutex");
    check(lib().mk_mutex_check(w.at("attach")), `attach ${w.label}`, {
      path: w.mapping.name,
      hints: {
        EBADMSG: `its header does not read as a SharedMutex of version ${MK.MUTEX_VERSION} ` +
          "(never initialized, another structure, or corrupt)",
        EXDEV: "it was made in another pid namespace, where pids name other processes",
      },
    });
    return new SharedMutex(w);
  }

  /** Where the mutex starts in its mapping. */
  get offset(): number {
    return this.#window.offset;
  }

  /** Whether this instance holds the mutex now. */
  get held(): boolean {
    return this.#held;
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  #at(op: string): bigint {
    if (this.#closed) {
      throw new Deno.errors.BadResource(`Cannot ${op} ${this.#window.label}: it is closed`);
    }
    return this.#window.at(op);
  }

  /**
   * Takes the mutex, blocking this thread while a live process holds it, up
   * to `timeoutMs`. A dead holder's mutex is taken over (`ownerDied`).
   *
   * @param options `timeoutMs` (default 10000; `Infinity` for no limit).
   * @returns `{ ownerDied }`.
   * @throws {Deno.errors.TimedOut} When a live holder kept it past the timeout.
   * @throws {MemkitError} `EDEADLK` when this process holds it already (a
   * SharedMutex belongs to the process), `ENOTRECOVERABLE`, `EBADMSG` (the
   * header was overwritten).
   *
   * @example Lock with a timeout
   * ```ts
   * import { MemFd, SharedMutex } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using fd = MemFd.create("mutex-lock", { size: 4096 });
   * using m = fd.map();
   * using mutex = SharedMutex.init(m, 0);
   * assertEquals(mutex.lock({ timeoutMs: 1000 }), { ownerDied: false });
   * mutex.unlock();
   * ```
   */
  lock(options?: SharedMutexLockOptions): SharedMutexResult {
    const ns = options === undefined
      ? DEFAULT_TIMEOUT_NS
      : timeoutNs(readOptions(options, "options", ["timeoutMs"] as const).timeoutMs);
    const address = this.#at("lock");
    if (this.#held) this.#fail(-BigIntCtor(ERRNO.EDEADLK), "lock", ns);
    const r = this.#sym.mk_mutex_lock(address, this.#self, ns, 0, null);
    if (r === 0n) {
      this.#held = true;
      return TAKEN;
    }
    return this.#took(r, "lock", ns);
  }

  /**
   * Takes the mutex if no live process holds it, without waiting (a dead
   * holder's mutex is taken over).
   *
   * @returns `{ ownerDied }`, or `null` when a live process (this one
   * included) holds it.
   *
   * @example Lock only if free
   * ```ts
   * import { MemFd, SharedMutex } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using fd = MemFd.create("mutex-try", { size: 4096 });
   * using m = fd.map();
   * using mutex = SharedMutex.init(m, 0);
   * assertEquals(mutex.tryLock(), { ownerDied: false });
   * assertEquals(mutex.tryLock(), null); // held (by this process)
   * mutex.unlock();
   * ```
   */
  tryLock(): SharedMutexResult | null {
    const address = this.#at("lock");
    if (this.#held) return null;
    const r = this.#sym.mk_mutex_trylock(address, this.#self);
    if (r === 0n) {
      this.#held = true;
      return TAKEN;
    }
    if (r === -BigIntCtor(ERRNO.EBUSY)) return null;
    return this.#took(r, "lock", 0n);
  }

  /**
   * Takes the mutex without blocking the event loop: the wait runs on
   * another thread (a nonblocking native call, sleeping on the futex in
   * slices). Several `lockAsync()` of one process queue up behind each other.
   *
   * @param options `timeoutMs` (default 10000; `Infinity` for no limit) and
   * an `AbortSignal`, which wakes the waiter and rejects with its reason. An
   * abort that comes after the mutex was taken does not undo it.
   * @returns `{ ownerDied }`.
   *
   * @example Wait for the lock without blocking the event loop
   * ```ts
   * import { MemFd, SharedMutex } from "@memkit/memkit";
   * import { assertEquals, assertRejects } from "@std/assert";
   *
   * using fd = MemFd.create("mutex-async", { size: 4096 });
   * using m = fd.map();
   * using mutex = SharedMutex.init(m, 0);
   * mutex.lock();
   * const waiting = mutex.lockAsync({ signal: AbortSignal.timeout(50) });
   * await assertRejects(() => waiting); // aborted: this process kept it
   * mutex.unlock();
   * assertEquals(await mutex.lockAsync(), { ownerDied: false });
   * mutex.unlock();
   * ```
   */
  async lockAsync(options?: SharedMutexAsyncOptions): Promise<SharedMutexResult> {
    const opts = readOptions(options, "options", ["timeoutMs", "signal"] as const);
    const ns = timeoutNs(opts.timeoutMs);
    const signal = opts.signal;
    if (signal !== undefined && !(signal instanceof AbortSignal)) {
      throw new TypeError(`Cannot use signal "${show(signal)}": expected an AbortSignal`);
    }
    signal?.throwIfAborted();
    let address = this.#at("lock");
    if (!this.#held) {
      const r = this.#sym.mk_mutex_trylock(address, this.#self);
      if (r === 0n) {
        this.#held = true;
        return TAKEN;
      }
      if (r !== -BigIntCtor(ERRNO.EBUSY)) return this.#took(r, "lock", ns);
    }
    const cancel = new Int32Array(new SharedArrayBuffer(4));
    const onAbort = () => {
      Atomics.store(cancel, 0, 1);
      this.#sym.mk_mutex_wake(address);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      for (;;) {
        const r = await this.#sym.mk_mutex_lock_async(
          address,
          this.#self,
          ns,
          MK.MUTEX_SELF_WAIT,
          cancel,
        );
        if (r >= 0n) {
          if (this.#closed) {
            // close() came during the wait: give the mutex back rather than keep it forever.
            this.#sym.mk_mutex_unlock(this.#window.address, this.#self);
            throw new Deno.errors.BadResource(
              `Cannot lock ${this.#window.label}: it was closed during the wait`,
            );
          }
          this.#held = true;
          return r === 0n ? TAKEN : RECOVERED;
        }
        if (r === -BigIntCtor(ERRNO.EINTR)) throw signal!.reason;
        // The mapping moved (a protection change) or closed under the wait.
        if (r === -BigIntCtor(ERRNO.EBADMSG) && this.#window.stale && !this.#closed) {
          address = this.#at("lock");
          continue;
        }
        return this.#took(r, "lock", ns);
      }
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  /** A native result other than 0: taken from a dead owner, or an error. */
  #took(r: bigint, op: string, ns: bigint): SharedMutexResult {
    if (r >= 0n) {
      this.#held = true;
      return r === 0n ? TAKEN : RECOVERED;
    }
    this.#fail(r, op, ns);
  }

  #fail(r: bigint, op: string, ns: bigint): never {
    const w = this.#window;
    if (r === -BigIntCtor(ERRNO.EBADMSG) && w.stale) w.refresh(op); // closed or moved: says so
    const code = errnoCode(Number(-r));
    const holder = this.#describeOwner();
    if (code === "ETIMEDOUT") {
      throw new Deno.errors.TimedOut(
        `Cannot ${op} ${w.label} "${w.mapping.name}" within ${msOf(ns)} ms: ${holder}`,
      );
    }
    const hints: Record<string, string> = {
      EDEADLK: "this process holds it already (a SharedMutex belongs to a process, not to a " +
        "thread or an instance)",
      ENOTRECOVERABLE: "a holder that took it over from a dead owner unlocked it without " +
        "markConsistent(); init() it again once no process uses it",
      EBADMSG: `its header no longer reads as a SharedMutex of version ${MK.MUTEX_VERSION}: ` +
        "the memory was overwritten",
      EPERM: `this process does not hold it (${holder})`,
    };
    check(r, `${op} ${w.label}`, { path: w.mapping.name, hints });
    throw new MemkitError(Number(-r), op); // unreachable: check() threw
  }

  #describeOwner(): string {
    const owner = this.#readOwner();
    if (owner === undefined) return "its header is unreadable";
    if (owner === 0n) return "it is free now";
    if (owner === BigIntCtor(MK.MUTEX_NOTRECOVERABLE)) return "it is not recoverable";
    const alive = this.#sym.mk_lock_alive(owner) === 1n;
    if ((owner & ~0x8000_0000n) === this.#self) return "this process holds it";
    return `pid ${pidOf(owner)} holds it (${alive ? "alive" : "dead or no process"}; owner word ${
      hex(owner)
    })`;
  }

  #readOwner(): bigint | undefined {
    if (this.#window.stale) return undefined;
    const out = new BigUint64Array(3);
    if (this.#sym.mk_mutex_state(this.#window.address, out) < 0n) return undefined;
    return out[0];
  }

  /**
   * Releases the mutex. Unlocking without `markConsistent()` after
   * `ownerDied` makes it not recoverable.
   *
   * @throws {MemkitError} `EPERM` when this instance does not hold it, or
   * when another process took it (a peer that broke the protocol).
   *
   * @example Unlock, and only the holder may
   * ```ts
   * import { MemFd, SharedMutex } from "@memkit/memkit";
   * import { assertThrows } from "@std/assert";
   *
   * using fd = MemFd.create("mutex-unlock", { size: 4096 });
   * using m = fd.map();
   * using mutex = SharedMutex.init(m, 0);
   * mutex.lock();
   * mutex.unlock();
   * assertThrows(() => mutex.unlock()); // not held: EPERM
   * ```
   */
  unlock(): void {
    const address = this.#at("unlock");
    if (!this.#held) this.#fail(-BigIntCtor(ERRNO.EPERM), "unlock", 0n);
    const r = this.#sym.mk_mutex_unlock(address, this.#self);
    if (r >= 0n) {
      this.#held = false;
      return;
    }
    if (r === -BigIntCtor(ERRNO.EPERM)) this.#held = false;
    this.#fail(r, "unlock", 0n);
  }

  /**
   * Declares the data the mutex protects repaired after `ownerDied`, so that
   * `unlock()` leaves the mutex usable.
   *
   * @throws {MemkitError} `EPERM` unless this instance holds it.
   *
   * @example After a holder died
   * ```ts
   * import { MemFd, SharedMutex } from "@memkit/memkit";
   *
   * using fd = MemFd.create("mutex-consistent", { size: 4096 });
   * using m = fd.map();
   * using mutex = SharedMutex.init(m, 0);
   * const { ownerDied } = mutex.lock();
   * if (ownerDied) {
   *   // ...repair the shared data, then:
   *   mutex.markConsistent();
   * }
   * mutex.unlock();
   * ```
   */
  markConsistent(): void {
    const address = this.#at("mark consistent");
    if (!this.#held) this.#fail(-BigIntCtor(ERRNO.EPERM), "mark consistent", 0n);
    const r = this.#sym.mk_mutex_consistent(address, this.#self);
    if (r < 0n) this.#fail(r, "mark consistent", 0n);
  }

  /**
   * Runs `fn` holding the mutex (`lock()`, then `unlock()` however `fn` ends).
   *
   * @param fn What to do under the lock; it gets the lock's result.
   * @param options As for `lock()`.
   * @returns What `fn` returned.
   *
   * @example Run a function under the lock
   * ```ts
   * import { MemFd, SharedMutex } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using fd = MemFd.create("mutex-with", { size: 4096 });
   * using m = fd.map();
   * using mutex = SharedMutex.init(m, 0);
   * assertEquals(mutex.withLock(({ ownerDied }) => ownerDied), false);
   * assertEquals(mutex.held, false);
   * ```
   */
  withLock<T>(fn: (result: SharedMutexResult) => T, options?: SharedMutexLockOptions): T {
    if (typeof fn !== "function") {
      throw new TypeError(`Cannot use fn "${show(fn)}": expected a function`);
    }
    const result = this.lock(options);
    try {
      return fn(result);
    } finally {
      if (this.#held) this.unlock();
    }
  }

  /**
   * Runs `fn` (which may be async) holding the mutex taken with `lockAsync()`.
   *
   * @param fn What to do under the lock; it gets the lock's result.
   * @param options As for `lockAsync()`.
   * @returns What `fn` returned, awaited.
   *
   * @example Run an async function under the lock
   * ```ts
   * import { MemFd, SharedMutex } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using fd = MemFd.create("mutex-with-async", { size: 4096 });
   * using m = fd.map();
   * using mutex = SharedMutex.init(m, 0);
   * const value = await mutex.withLockAsync(async () => {
   *   await new Promise((resolve) => setTimeout(resolve, 1));
   *   return 7;
   * });
   * assertEquals(value, 7);
   * ```
   */
  async withLockAsync<T>(
    fn: (result: SharedMutexResult) => T | Promise<T>,
    options?: SharedMutexAsyncOptions,
  ): Promise<T> {
    if (typeof fn !== "function") {
      throw new TypeError(`Cannot use fn "${show(fn)}": expected a function`);
    }
    const result = await this.lockAsync(options);
    try {
      return await fn(result);
    } finally {
      if (this.#held) this.unlock();
    }
  }

  /**
   * Who holds the mutex now.
   *
   * @returns The holder's pid and whether it lives, or `null` when free.
   *
   * @example Who holds the lock
   * ```ts
   * import { MemFd, SharedMutex } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using fd = MemFd.create("mutex-owner", { size: 4096 });
   * using m = fd.map();
   * using mutex = SharedMutex.init(m, 0);
   * mutex.lock();
   * assertEquals(mutex.owner(), { pid: Deno.pid, alive: true, self: true });
   * mutex.unlock();
   * ```
   */
  owner(): SharedMutexOwner | null {
    this.#at("read the owner of");
    const owner = this.#readOwner();
    if (owner === undefined) this.#fail(-BigIntCtor(ERRNO.EBADMSG), "read the owner of", 0n);
    if (owner === 0n || owner === BigIntCtor(MK.MUTEX_NOTRECOVERABLE)) return null;
    return {
      pid: pidOf(owner),
      alive: this.#sym.mk_lock_alive(owner) === 1n,
      self: (owner & ~0x8000_0000n) === this.#self,
    };
  }

  /**
   * Detaches from the mutex, releasing it first if this instance holds it.
   * The memory is untouched otherwise. Idempotent.
   *
   * @example Closing releases a held lock
   * ```ts
   * import { MemFd, SharedMutex } from "@memkit/memkit";
   * import { assertEquals } from "@std/assert";
   *
   * using fd = MemFd.create("mutex-close", { size: 4096 });
   * using m = fd.map();
   * const mutex = SharedMutex.init(m, 0);
   * mutex.lock();
   * mutex.close(); // released
   * assertEquals(SharedMutex.attach(m, 0).tryLock(), { ownerDied: false });
   * ```
   */
  close(): void {
    if (this.#closed) return;
    try {
      if (this.#held && !this.#window.mapping.closed) this.unlock();
    } finally {
      this.#held = false;
      this.#closed = true;
    }
  }

  /** Calls `close()`, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** A short description for `console.log`. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.#closed
      ? "SharedMutex { closed }"
      : `SharedMutex { offset ${this.offset} of "${this.#window.mapping.name}"${
        this.#held ? ", held" : ""
      } }`;
  }
}
