// Regions and their collection: the address ranges behind mappings, what
// keeps each one mapped (the Mapping, its buffers, the finalization
// registries that are the backstop when they are dropped), and the quarantine
// that closed ranges wait in while native code may still hold their
// addresses. Shared by the Mapping class and the modules that build on it.

import { lib } from "../ffi/loader.ts";
import type { Access } from "./_access.ts";
import {
  BigIntCtor,
  FinalizationRegistryPrototypeRegister,
  FinalizationRegistryPrototypeUnregister,
  MapPrototypeDelete,
  safeArray,
  SetPrototypeAdd,
  SetPrototypeClear,
  SetPrototypeDelete,
  setValues,
  uncurryThis,
} from "./_primordials.ts";
import { isDetached } from "./_validate.ts";
import type { Mapping } from "./mapping.ts";

/**
 * One stretch of a mapping's view that maps one contiguous window of one
 * source: which source (an identity), where the window starts in it, where
 * it sits in the view, and, for a memfd, the memfd's table of live regions.
 */
export interface Piece {
  /** The source's identity: equal for windows of the same memfd or file mapping. */
  readonly source: object;
  /** The source memfd's table of live regions and how far into it each reaches. */
  readonly owner?: Map<object, number>;
  /** The offset of the window in the source. */
  readonly offset: number;
  /** The offset of the window in the mapping's view. */
  readonly at: number;
  /** The window's length in bytes. */
  readonly length: number;
  /** Not known to be one window of one source: alias it page by page. */
  readonly paged?: boolean;
}

/**
 * The state of one mapped address range, shared by the `Mapping` and every
 * `ArrayBuffer` created over it: the range is unmapped when `close()` says so
 * and nothing can reach it any more, or when all of them are collected.
 */
export interface Region {
  /** The start address of everything mapped (guard pages included). */
  readonly address: bigint;
  /** The mapped length in bytes: a multiple of the page size. */
  readonly span: number;
  /** The start address of the view: where piece offsets (`at`) count from. */
  readonly view: bigint;
  /** The view's length rounded up to whole pages. */
  readonly viewSpan: number;
  /** The view's length in bytes. */
  readonly length: number;
  /** What is mapped, for messages. */
  readonly name: string;
  /** Objects registered with the finalization registry and not yet collected. */
  refs: number;
  /** The range is mapped (the source's pages, or private zero pages in the quarantine). */
  live: boolean;
  /** The range still maps the source (false once closed). */
  backed: boolean;
  /** What the view is made of, in order (for resize checks and for stitching it again). */
  readonly pieces: readonly Piece[];
  /** The live-region tables of the memfds this region maps. */
  readonly owners: Set<Map<object, number>>;
  /** Read-only (immutable) buffers registered and not yet collected. */
  readonly: number;
  /**
   * A buffer was ever created over the range: native code (a Deno op) may
   * hold its addresses, so the range is quarantined rather than unmapped.
   */
  viewed: boolean;
  /**
   * A writable buffer was moved out of memkit's reach (a transfer that got
   * past the guard): the range is never unmapped, only scrubbed to private
   * zero pages, so the moved buffer can never fault.
   */
  pinned: boolean;
  /** The highest access the source allows. */
  readonly maxAccess: Access;
  /**
   * The protection the Mapping last gave the view, kept here because views
   * can outlive the Mapping object: the `PROT_*` bits of every page, or,
   * while pages differ, `protPages` (one byte per page).
   */
  prot: number;
  /** The `PROT_*` bits of each page while they differ, else undefined. */
  protPages?: Uint8Array;
  /** The calling thread's rights (`PKEY_DISABLE_*`) of the protection key assigned to it. */
  pkeyRights?: () => number;
  /**
   * One byte per page of the view, 1 where `advise(..., "guard")` installed a
   * guard marker (src/advise.ts): those pages are "none", and protect() keeps
   * them so while the marker is there.
   */
  guards?: Uint8Array;
  /**
   * Called once when the range stops mapping its source (closed, or
   * released by the collector): a lazy view's handler stops there
   * (src/uffd.ts), after the range was replaced or unmapped.
   */
  onUnback?: () => void;
  /**
   * A driver's mapping (mapDevice, src/_device.ts): its pages were put there
   * by the driver's mmap, which need not have a fault handler to bring back
   * a page dropped (MADV_DONTNEED) or to fill a second mapping of it
   * (mremap, as relocation, stitch and alias do); a touch of either would be
   * SIGBUS. So such a range is never dropped, moved, stitched or aliased.
   */
  device?: true;
}

/** What a new mapping is made of; internal to memkit (`createMapping`). */
export interface MappingInit {
  /** The start address of the view. */
  address: bigint;
  /** The length the caller asked for. */
  length: number;
  /** The protection it was mapped with. */
  access: Access;
  /** The highest access the source allows (a read-only file: `"r"`). */
  maxAccess: Access;
  /** What was mapped, for messages: `memfd:name` or a path. */
  name: string;
  /** The source windows the view is made of, in order. */
  pieces: Piece[];
  /** The whole range to unmap, when it is more than the view (guard pages, a ring). */
  reserved?: { address: bigint; span: number };
  /**
   * Bytes of the first mapped page before the view starts (default 0):
   * `address` is then the page-aligned mmap address, and the mapping's views,
   * `address` and `length` cover `[address + offset, address + offset + length)`.
   * Such a mapping is protected only as a whole, and cannot be stitched.
   */
  offset?: number;
  /** See {@linkcode Region.onUnback}. */
  onUnback?: () => void;
  /** See {@linkcode Region.device}. */
  device?: true;
}

/**
 * The live regions that handed out a buffer, for finding the mapping behind
 * a bare buffer (only a buffer memkit made can point into a region).
 */
const liveRegions = new Set<Region>();

/**
 * The live, backed region whose view holds [address, address + length), and
 * the offset of `address` in that view; for memkit's own modules (alias), not
 * part of the API.
 */
export function regionAt(address: bigint, length: number): [Region, number] | undefined {
  const regions = setValues(liveRegions);
  for (let i = 0; i < regions.length; i++) {
    const r = regions[i];
    if (!r.backed) continue;
    const offset = address - r.view;
    if (offset >= 0n && offset + BigIntCtor(length) <= BigIntCtor(r.viewSpan)) {
      return [r, Number(offset)];
    }
  }
  return undefined;
}

/**
 * A buffer is being created over the region: from now on it can be found by
 * address (regionAt), and close() quarantines it rather than unmapping it.
 */
export function markViewed(region: Region): void {
  SetPrototypeAdd(liveRegions, region);
  region.viewed = true;
}

// Everything here that decides whether memory may be unmapped (detaching,
// unmapping, the finalization callbacks) calls built-ins captured at load
// (_primordials.ts), never methods looked up at the time of the call.

const SetPrototypeGetSize = uncurryThis(
  Object.getOwnPropertyDescriptor(Set.prototype, "size")!.get!,
) as (self: Set<unknown>) => number;

const registry = new FinalizationRegistry<Region>((region) => {
  region.refs--;
  if (region.refs === 0) release(region);
});

// ---- the quarantine: closed ranges that native code may still hold ----
//
// A Deno op given a view keeps its address, not its ArrayBuffer: detaching
// the buffer does not stop a read in flight (TCP, TLS, a pipe, a file), which
// completes into that address whenever data comes, and an op writing into an
// immutable view writes past V8's checks. So a range that ever handed out a
// buffer is never given back to the kernel at close(): its pages become
// private read-write zero pages (MAP_FIXED, MAP_NORESERVE: no memory until
// written), which such a write can only scribble on, and the range waits here.
// It leaves the quarantine (to the free list below, or unmapped, and may then
// be reused by any mapping) only after QUARANTINE_RANGES later ranges came
// in, or QUARANTINE_BYTES of them: an op still in flight by then is the limit
// the README states.

/**
 * How many closed ranges memkit keeps reserved as private zero pages (at
 * most one mapping, a VMA, each; neighbours merge) before it unmaps the
 * oldest: a native op still writing into a view after that many later
 * closes could reach whatever the kernel maps there next.
 */
export const QUARANTINE_RANGES = 64;
/** How many bytes of address space the quarantine keeps before it releases early (16 GiB). */
export const QUARANTINE_BYTES = 16 * 2 ** 30;
/** How many of the newest ranges it keeps even beyond QUARANTINE_BYTES. */
const QUARANTINE_KEEP = 8;

const quarantine: Region[] = safeArray();
let quarantineBytes = 0;

/**
 * The ranges in the quarantine now, oldest first: closed ranges kept reserved
 * as private zero pages; for memkit's tests and benchmarks, not part of the API.
 */
export function quarantined(): { address: bigint; span: number }[] {
  const out: { address: bigint; span: number }[] = [];
  for (let i = 0; i < quarantine.length; i++) {
    out.push({ address: quarantine[i].address, span: quarantine[i].span });
  }
  return out;
}

/** Nothing in JavaScript reaches the region any more: off its source, into the quarantine. */
export function release(region: Region): void {
  if (!region.live) return;
  // Dropped without close(): its views may still be in a native op's hands.
  if (region.backed && vacate(region) < 0n) return; // the kernel refused: it stays mapped
  if (region.live && !region.pinned) enqueue(region);
}

/**
 * Takes the source's pages out of the range: unmaps it when no buffer was
 * ever created over it, else maps private zero pages over it in place. The
 * kernel's result (negative: refused, nothing changed).
 */
export function vacate(region: Region): bigint {
  if (!region.viewed && !region.pinned) {
    const ret = lib().mk_map_unmap(region.address, BigIntCtor(region.span));
    if (ret >= 0n) {
      region.live = false;
      unback(region);
    }
    return ret;
  }
  const ret = lib().mk_map_scrub(region.address, BigIntCtor(region.span));
  if (ret >= 0n) unback(region);
  return ret;
}

function enqueue(region: Region): void {
  quarantine[quarantine.length] = region; // a prototype-less array: no patched push
  quarantineBytes += region.span;
  while (
    quarantine.length > QUARANTINE_RANGES ||
    (quarantineBytes > QUARANTINE_BYTES && quarantine.length > QUARANTINE_KEEP)
  ) {
    const old = quarantine[0];
    for (let i = 1; i < quarantine.length; i++) quarantine[i - 1] = quarantine[i];
    quarantine.length--;
    quarantineBytes -= old.span;
    old.live = false; // no Region maps it from now on: the range is the free list's alone
    keepFree(old.address, old.span);
  }
}

// ---- the free list: ranges out of the quarantine, for the next mapping ----
//
// A range evicted from the quarantine was about to be unmapped, after which
// the kernel may give its address to any mapping, memkit's next one included
// (it mostly does: the allocator reuses the highest hole). Giving it to
// memkit's next mapping of exactly that span on purpose is the same exposure
// for an op that still holds an old view's address, never less safe, and
// costs one system call instead of two: the new mapping is placed over the
// range with MAP_FIXED (`mk_map_reuse`; the kernel replaces it atomically,
// no gap), instead of a fresh mmap now and the range's munmap. The private
// zero pages replaced (any late scribbles) are gone: the new mapping shows
// its own source, or fresh zeros. A range leaves the quarantine as before,
// only after QUARANTINE_RANGES later closes (or the byte bound), and it is
// here only once it left: no Region maps it (the evicted one is not live,
// and `takeFree` hands it to exactly one new mapping). The list is small,
// oldest first: FREE_RANGES ranges and FREE_BYTES; a range that does not fit,
// or the oldest when it overflows, is unmapped. Only an exact span is reused
// (one call; any other size is left to age out of the list).

/** How many ranges out of the quarantine memkit keeps for its next mappings. */
export const FREE_RANGES = 4;
/** How many bytes of them (256 MiB): a larger range is unmapped when it leaves the quarantine. */
export const FREE_BYTES = 256 * 2 ** 20;
/**
 * After this many failed placements memkit stops reusing: a failed MAP_FIXED
 * leaves the range it was given either mapped or a gap, which it cannot tell
 * apart from another thread's mapping, so it forgets the range (address
 * space it may keep for the life of the process, never memory).
 */
const FREE_FAILURES = 16;

const freeList: { address: bigint; span: number }[] = safeArray();
let freeBytes = 0;
let freeFailures = 0;

/** The ranges on the free list now, oldest first; for memkit's tests, not part of the API. */
export function freeRanges(): { address: bigint; span: number }[] {
  const out: { address: bigint; span: number }[] = [];
  for (let i = 0; i < freeList.length; i++) {
    out.push({ address: freeList[i].address, span: freeList[i].span });
  }
  return out;
}

function keepFree(address: bigint, span: number): void {
  if (span > FREE_BYTES || freeFailures >= FREE_FAILURES) {
    lib().mk_map_unmap(address, BigIntCtor(span));
    return;
  }
  freeList[freeList.length] = { address, span };
  freeBytes += span;
  while (freeList.length > FREE_RANGES || freeBytes > FREE_BYTES) {
    const old = freeList[0];
    for (let i = 1; i < freeList.length; i++) freeList[i - 1] = freeList[i];
    freeList.length--;
    freeBytes -= old.span;
    lib().mk_map_unmap(old.address, BigIntCtor(old.span));
  }
}

/**
 * Maps `span` bytes of `fd` from `offset` (`fd` -1: shared anonymous memory,
 * `flags` as `mk_map_anonymous`'s) over the oldest free-list range of exactly
 * that span, with MAP_FIXED. The address, or -1n when there is no such range
 * or the kernel refused (then the range is forgotten, never unmapped: see
 * `mk_map_reuse`): the caller maps fresh, which reports the error if it recurs.
 */
export function mapReusing(
  span: number,
  fd: number,
  offset: number,
  prot: number,
  flags: number,
): bigint {
  let i = 0;
  while (i < freeList.length && freeList[i].span !== span) i++;
  if (i === freeList.length) return -1n;
  const { address } = freeList[i];
  for (let j = i + 1; j < freeList.length; j++) freeList[j - 1] = freeList[j];
  freeList.length--;
  freeBytes -= span;
  const ret = lib().mk_map_reuse(address, fd, BigIntCtor(offset), BigIntCtor(span), prot, flags);
  if (ret >= 0n) return ret;
  freeFailures++;
  return -1n;
}

/** Marks a region as no longer mapping its sources, for their resize checks. */
export function unback(region: Region): void {
  region.backed = false;
  SetPrototypeDelete(liveRegions, region);
  if (SetPrototypeGetSize(region.owners) !== 0) {
    // Off the tables of the memfds it maps.
    const owners = setValues(region.owners);
    for (let i = 0; i < owners.length; i++) MapPrototypeDelete(owners[i], region);
    SetPrototypeClear(region.owners);
  }
  const done = region.onUnback;
  if (done !== undefined) {
    region.onUnback = undefined;
    done();
  }
}

const readonlyRegistry = new FinalizationRegistry<Region>((region) => {
  region.readonly--;
  region.refs--;
  if (region.refs === 0) release(region);
});

/** A read-only (immutable) buffer over the region holds it until collected. */
export function holdReadonly(region: Region, target: ArrayBuffer): void {
  region.refs++;
  region.readonly++;
  FinalizationRegistryPrototypeRegister(readonlyRegistry, target, region);
}

/**
 * What a Mapping's finalization sees: its region, and the writable buffers
 * it handed out and has not detached. A buffer found detached then was moved
 * out of memkit's reach (a transfer list), so the range must stay mapped.
 */
export interface Holding {
  /** The region the Mapping holds now (a relocation replaces it). */
  region: Region;
  /** The writable buffers it handed out and has not detached. */
  buffers: ArrayBuffer[];
}

const mappingRegistry = new FinalizationRegistry<Holding>(({ region, buffers }) => {
  for (let i = 0; i < buffers.length; i++) if (isDetached(buffers[i])) region.pinned = true;
  region.refs--;
  if (region.refs === 0) release(region);
});

/** A writable buffer over the region holds it until detached or collected. */
export function hold(region: Region, target: object): void {
  region.refs++;
  FinalizationRegistryPrototypeRegister(registry, target, region, target);
}

/** A writable buffer was detached: it no longer holds the region. */
export function letGo(region: Region, target: object): void {
  if (FinalizationRegistryPrototypeUnregister(registry, target)) region.refs--;
}

/** A Mapping holds its region until it is closed or collected (`holding.region`'s count). */
export function holdMapping(holding: Holding, target: object): void {
  holding.region.refs++;
  FinalizationRegistryPrototypeRegister(mappingRegistry, target, holding, target);
}

/** A Mapping closed: it no longer holds its region (its count, if the registry still had it). */
export function letGoMapping(region: Region, target: object): void {
  if (FinalizationRegistryPrototypeUnregister(mappingRegistry, target)) region.refs--;
}

/** How the Mapping class reads the region of one of its instances; set once, as it is defined. */
let regionOfMapping: ((value: object) => Region | undefined) | undefined;
let mappingPrototype: object | undefined;
const ObjectPrototypeIsPrototypeOf = uncurryThis(Object.prototype.isPrototypeOf) as (
  self: object,
  value: object,
) => boolean;

/**
 * Lets {@linkcode findRegion} read the region a Mapping holds (its private
 * field); called once, by the Mapping class as it is defined.
 */
export function answerRegionOf(
  read: (value: object) => Region | undefined,
  prototype: object,
): void {
  if (regionOfMapping !== undefined) throw new TypeError("Cannot answer findRegion() twice");
  regionOfMapping = read;
  mappingPrototype = prototype;
}

/**
 * Whether `value` inherits from `Mapping.prototype` (a real Mapping, or an
 * object made from its prototype, whose getters would throw); for memkit's
 * own modules that must tell one from a `{ mapping, offset, length }` range
 * without importing the class (and so without an import cycle).
 */
export function isMappingLike(value: unknown): boolean {
  return value !== null && typeof value === "object" && mappingPrototype !== undefined &&
    ObjectPrototypeIsPrototypeOf(mappingPrototype, value);
}

/** The region behind a memkit Mapping, undefined for any other value; for memkit's own modules. */
export function findRegion(value: unknown): Region | undefined {
  return value !== null && typeof value === "object" && regionOfMapping !== undefined
    ? regionOfMapping(value)
    : undefined;
}

/** The region behind a mapping; for memkit's own modules, not part of the API. */
export function regionOf(mapping: Mapping): Region {
  const region = findRegion(mapping);
  if (!region) throw new TypeError("Cannot use this value: expected a memkit Mapping");
  return region;
}
