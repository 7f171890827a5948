// What SharedMutex and SeqLock share: this process's identity word, and a
// writable window of a Mapping whose address the native side may use.
//
// The window is a memkit view: memkit detaches every writable view before a
// page under it could stop being writable (protect, a protection key, a guard
// marker, close) and before the mapping moves to a new address. So "the view
// still has its length" is the proof, checked before each native call, that
// the address is mapped writable and current; when it fails, the window is
// taken again from the Mapping, which refuses what is no longer writable.
// Taking a view also marks the mapping's range as viewed, so close() leaves
// it reserved (private zero pages, quarantined) instead of unmapping it under
// a waiter in a nonblocking call.

import { check } from "../ffi/errors.ts";
import { lib } from "../ffi/loader.ts";
import { show } from "./_args.ts";
import { BigIntCtor, TypedArrayPrototypeGetLength } from "./_primordials.ts";
import { findRegion } from "./_region.ts";
import { integer } from "./_validate.ts";
import type { Mapping } from "./mapping.ts";

let self: bigint | undefined;

/** This process's identity word (pid and start time), read once. */
export function selfIdentity(): bigint {
  if (self === undefined) {
    // The word is kept as the bigint it is: check() returns a number, and a
    // start time above 2^21 clock ticks (5.8 hours after boot at 100 Hz)
    // puts the word above 2^53, where a number rounds it to another identity.
    const word = BigIntCtor(lib().mk_lock_self());
    if (word < 0n) check(word, "read the start time of this process");
    self = word;
  }
  return self;
}

/** The pid in an identity word. */
export function pidOf(word: bigint): number {
  return Number(word & 0x3fffffffn);
}

const immutableGetter = Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, "immutable")?.get;

/**
 * A writable window `[offset, offset + length)` of a Mapping, for a lock
 * structure named `what` ("SharedMutex"): checks the arguments, then hands
 * out the address while the window's view is intact.
 */
export class SharedWindow {
  readonly mapping: Mapping;
  readonly offset: number;
  readonly length: number;
  readonly what: string;
  view: Uint8Array<ArrayBuffer>;
  address: bigint;
  /** Readers only (a SeqLock attached to read): a read-only mapping is accepted too. */
  readonly readers: boolean;
  /** Whether the view taken is writable (always, unless `readers`). */
  writable = true;

  constructor(mapping: unknown, offset: unknown, length: number, what: string, readers = false) {
    if (findRegion(mapping) === undefined) {
      throw new TypeError(
        `Cannot place a ${what} in "${show(mapping)}": expected a memkit Mapping`,
      );
    }
    const m = mapping as Mapping;
    const off = integer(offset, "offset");
    if (off < 0 || off % 8 !== 0) {
      throw new RangeError(`Cannot place a ${what} at offset "${off}": expected a multiple of 8`);
    }
    if (off + length > m.length) {
      throw new RangeError(
        `Cannot place a ${what} of ${length} bytes at offset ${off}: the mapping of ` +
          `"${m.name}" has ${m.length} bytes`,
      );
    }
    this.mapping = m;
    this.offset = off;
    this.length = length;
    this.what = what;
    this.readers = readers;
    this.view = this.#take("place");
    this.address = m.address + BigIntCtor(off);
  }

  /** What the window is, for messages: `the SharedMutex at offset 64 of`. */
  get label(): string {
    return `the ${this.what} at offset ${this.offset} of`;
  }

  #take(op: string): Uint8Array<ArrayBuffer> {
    const m = this.mapping;
    if (m.closed) {
      throw new Deno.errors.BadResource(
        `Cannot ${op} ${this.label} "${m.name}": the mapping is closed`,
      );
    }
    const last = this.offset + this.length - 1;
    if (this.readers) {
      // Readers only read: any readable protection, and an immutable view
      // (a read-only mapping) is no obstacle; `writable` says what it is.
      const first = m.accessAt(this.offset);
      if (first === "none" || m.accessAt(last) === "none") {
        throw new TypeError(
          `Cannot ${op} ${this.label} "${m.name}": the mapping is not readable there ` +
            '(access "none")',
        );
      }
      const view = m.bytes(this.offset, this.length);
      this.writable = first === "rw" && m.accessAt(last) === "rw" &&
        !(immutableGetter !== undefined && immutableGetter.call(view.buffer) === true);
      return view;
    }
    if (m.accessAt(this.offset) !== "rw" || m.accessAt(last) !== "rw") {
      throw new TypeError(
        `Cannot ${op} ${this.label} "${m.name}": the mapping is not writable there ` +
          `(access "${m.accessAt(this.offset)}"); a lock needs access "rw"`,
      );
    }
    const view = m.bytes(this.offset, this.length);
    if (immutableGetter !== undefined && immutableGetter.call(view.buffer) === true) {
      throw new TypeError(
        `Cannot ${op} ${this.label} "${m.name}": a protection key keeps it read-only; ` +
          "a lock needs to write",
      );
    }
    return view;
  }

  /**
   * The address to hand to the native side, the window taken again if its
   * view was detached. A detached view's element 0 reads undefined; an
   * element read consults no prototype, so no patched getter can fake it.
   */
  at(op: string): bigint {
    // An immutable view is never detached: a closed mapping is asked directly.
    if (this.view[0] === undefined || this.mapping.closed) this.refresh(op);
    return this.address;
  }

  /** Takes the window again (after a detach: a move, a protection change, a close). */
  refresh(op: string): void {
    this.view = this.#take(op);
    this.address = this.mapping.address + BigIntCtor(this.offset);
  }

  /** Whether the view was detached since it was taken. */
  get stale(): boolean {
    return TypedArrayPrototypeGetLength(this.view) === 0;
  }
}
