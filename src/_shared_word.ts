// What SharedMutex and SeqLock share: this process's identity word, and a
// window of a Mapping whose address the native side may use.
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
//
// A window that only reads (a SeqLock reader, needs "r") may be taken over a
// read-only mapping: its view is then an immutable ArrayBuffer, which V8
// cannot detach. memkit never moves a range while such a view of it is
// reachable, and close() turns the range into private zero pages, so that
// address stays mapped and readable for as long as the window holds the
// view; a closed mapping is refused (BadResource) before each call.

import { check } from "../ffi/errors.ts";
import { lib } from "../ffi/loader.ts";
import { show } from "./_args.ts";
import { BigIntCtor, TypedArrayPrototypeGetLength } from "./_primordials.ts";
import { findRegion } from "./_region.ts";
import { integer } from "./_validate.ts";
import type { Mapping } from "./mapping.ts";

let self: bigint | undefined;

/**
 * This process's identity word (pid and start time), read once. Kept a
 * bigint from the native call on: past 2^21 clock ticks of uptime the word
 * is above 2^53, where a JavaScript number would round an odd pid to an
 * even one (check() returns a number).
 */
export function selfIdentity(): bigint {
  if (self === undefined) {
    const word = lib().mk_lock_self();
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
 * A window `[offset, offset + length)` of a Mapping, for a lock structure
 * named `what` ("SharedMutex"), that `needs` write access (the default) or
 * only read access: checks the arguments, then hands out the address while
 * the window's view is intact.
 */
export class SharedWindow {
  readonly mapping: Mapping;
  readonly offset: number;
  readonly length: number;
  readonly what: string;
  readonly needs: "r" | "rw";
  view: Uint8Array<ArrayBuffer>;
  address: bigint;
  /** Whether the view is writable (always, when the window needs "rw"). */
  writable = false;

  constructor(
    mapping: unknown,
    offset: unknown,
    length: number,
    what: string,
    needs: "r" | "rw" = "rw",
  ) {
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
    this.needs = needs;
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
    const first = m.accessAt(this.offset);
    const end = m.accessAt(last);
    if (this.needs === "rw" && (first !== "rw" || end !== "rw")) {
      throw new TypeError(
        `Cannot ${op} ${this.label} "${m.name}": the mapping is not writable there ` +
          `(access "${first}"); a lock needs access "rw"`,
      );
    }
    if (first === "none" || end === "none") {
      throw new TypeError(
        `Cannot ${op} ${this.label} "${m.name}": the mapping is not readable there ` +
          `(access "none")`,
      );
    }
    const view = m.bytes(this.offset, this.length);
    const immutable = immutableGetter !== undefined && immutableGetter.call(view.buffer) === true;
    if (this.needs === "rw" && immutable) {
      throw new TypeError(
        `Cannot ${op} ${this.label} "${m.name}": a protection key keeps it read-only; ` +
          "a lock needs to write",
      );
    }
    this.writable = !immutable && first === "rw" && end === "rw";
    return view;
  }

  /**
   * The address to hand to the native side, the window taken again if its
   * view was detached. A detached view's element 0 reads undefined; an
   * element read consults no prototype, so no patched getter can fake it.
   */
  at(op: string): bigint {
    // A writable view is detached by close(); a read-only one is not.
    if (this.view[0] === undefined || (!this.writable && this.mapping.closed)) this.refresh(op);
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
