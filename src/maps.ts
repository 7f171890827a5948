/**
 * `readMaps`, `readSmaps`, `readSmapsRollup`, `findMapping`: a process's
 * mappings from `/proc/<pid>/maps`, `smaps` and `smaps_rollup`, typed.
 *
 * The files are read whole through memkit's native side (Deno's own file API
 * asks for `--allow-all` under `/proc`) and parsed here. Each is gated on
 * `--allow-read` for the path in the form the caller named it:
 * `readMaps("self")` needs `--allow-read=/proc/self/maps`, `readMaps(1234)`
 * needs `--allow-read=/proc/1234/maps`. For this process's own pid either
 * form is accepted, since both name the same file.
 *
 * @module
 */

import { readOptions, show } from "./_args.ts";
import { ERRNO } from "../ffi/errors.ts";

import { DELETED, kindOf, PERMS } from "./_maps_kind.ts";
import {
  gateProc,
  nativePid,
  noAddressSpace,
  procError,
  type ProcessId,
  procSymbols,
  readProc,
  toAddress,
} from "./_proc.ts";

export type { ProcessId } from "./_proc.ts";

/**
 * What a mapping is: from its path (`[heap]`, `/memfd:x (deleted)`, ...) and
 * inode. `"deleted"` is a regular file that was unlinked while mapped;
 * `"memfd"` and `"shm"` (SysV `/SYSV...` or POSIX `/dev/shm/...`) are
 * deleted or not as the kernel says; `"other"` is any other bracketed or
 * pseudo name (`[uprobes]`, `anon_inode:...`).
 */
export type MappingKind =
  | "file"
  | "anonymous"
  | "heap"
  | "stack"
  | "vdso"
  | "vvar"
  | "vsyscall"
  | "memfd"
  | "shm"
  | "deleted"
  | "other";

/** One line of `/proc/<pid>/maps`: one mapping (a VMA). */
export interface MapsEntry {
  /** The first address. */
  start: bigint;
  /** The address after the last byte. */
  end: bigint;
  /** `end - start` in bytes. */
  size: number;
  /** The permissions as the kernel prints them, e.g. `"rw-p"`. */
  perms: string;
  /** Readable. */
  read: boolean;
  /** Writable. */
  write: boolean;
  /** Executable. */
  exec: boolean;
  /** Shared (`s`) rather than private copy-on-write (`p`). */
  shared: boolean;
  /** The offset into the file, in bytes. */
  offset: bigint;
  /** The device as the kernel prints it, e.g. `"fd:01"`. */
  device: string;
  /** The device's major number. */
  major: number;
  /** The device's minor number. */
  minor: number;
  /** The inode, 0 for anonymous memory. */
  inode: number;
  /**
   * The path or pseudo name (`[heap]`), without a trailing `" (deleted)"`,
   * with the kernel's `\012` escape of a newline undone; `""` for anonymous
   * memory.
   */
  path: string;
  /** Whether the kernel marked the path `" (deleted)"`. */
  deleted: boolean;
  /** What the mapping is. */
  kind: MappingKind;
  /** The memfd name (`memfd`), the anonymous name (`[anon:name]`), or the SysV key (`shm`). */
  name?: string;
}

/** The counters of one smaps block, in bytes (0 where the kernel lacks the field). */
export interface SmapsCounters {
  /** Resident set size. */
  rss: number;
  /** Proportional set size. */
  pss: number;
  /** The dirty part of Pss. */
  pssDirty: number;
  /** Resident pages shared with other processes, clean. */
  sharedClean: number;
  /** Resident pages shared with other processes, dirty. */
  sharedDirty: number;
  /** Resident pages mapped only here, clean. */
  privateClean: number;
  /** Resident pages mapped only here, dirty. */
  privateDirty: number;
  /** Pages marked referenced or accessed. */
  referenced: number;
  /** Anonymous pages (including private copies of file pages). */
  anonymous: number;
  /** KSM-merged pages. */
  ksm: number;
  /** Pages marked MADV_FREE. */
  lazyFree: number;
  /** Anonymous transparent huge pages. */
  anonHugePages: number;
  /** Shared memory mapped with PMDs. */
  shmemPmdMapped: number;
  /** File pages mapped with PMDs. */
  filePmdMapped: number;
  /** Shared hugetlbfs pages. */
  sharedHugetlb: number;
  /** Private hugetlbfs pages. */
  privateHugetlb: number;
  /** Swapped-out anonymous memory. */
  swap: number;
  /** The proportional share of swap. */
  swapPss: number;
  /** mlocked pages. */
  locked: number;
  /**
   * Every numeric field by the kernel's name (`"Rss"`, `"Pss_Anon"`,
   * `"THPeligible"`): fields in kB converted to bytes, others as printed.
   */
  fields: Record<string, number>;
}

/**
 * One mapping of `/proc/<pid>/smaps`: its maps line, its counters and its VmFlags.
 *
 * The entries {@linkcode readSmaps} returns keep `fields` on their shared
 * prototype, made from the entry's counters when first read (then kept):
 * `JSON.stringify` of an entry gives every key in the order above (through
 * its `toJSON`), but `Object.keys`, a spread (`{ ...entry }`) and
 * `structuredClone` have no `fields`.
 */
export interface SmapsEntry extends MapsEntry, SmapsCounters {
  /**
   * The two-letter VmFlags (`"rd"`, `"wr"`, `"mr"`, `"sh"`, `"dd"`, ...).
   *
   * A `ReadonlySet` (a `Set<string>` until issue 11): entries with the same
   * VmFlags text share one set (a `Set` whose `add`, `delete` and `clear`
   * throw a `TypeError`); copy it (`new Set(entry.vmFlags)`) to change it.
   */
  vmFlags: ReadonlySet<string>;
}

/** `/proc/<pid>/smaps_rollup`: the counters of all mappings together. */
export interface SmapsRollup extends SmapsCounters {
  /** The lowest mapped address. */
  start: bigint;
  /** The end of the highest mapping. */
  end: bigint;
}

// ---- reading a /proc file ----

const decoder = new TextDecoder();
/** For a slice of a file: a BOM there is text, not a mark to drop. */
const sliceDecoder = new TextDecoder("utf-8", { ignoreBOM: true });

// ---- parsing ----

/** Hexadecimal digits of t in [b, e) as a number (exact up to 13 digits). */
function hexAt(t: Uint8Array, b: number, e: number): number {
  let v = 0;
  for (let i = b; i < e; i++) {
    const c = t[i];
    v = v * 16 + (c <= 0x39 ? c - 0x30 : c - 0x57);
  }
  return v;
}

/** Hexadecimal digits of t in [b, e) as a bigint, exactly. */
function hexBigAt(t: Uint8Array, b: number, e: number): bigint {
  if (e - b <= 13) {
    const v = hexAt(t, b, e);
    return v === 0 ? 0n : BigInt(v);
  }
  return BigInt("0x" + sliceDecoder.decode(t.subarray(b, e)));
}

/** The first c in t[from, e), or -1. */
function find(t: Uint8Array, c: number, from: number, e: number): number {
  for (let i = from; i < e; i++) if (t[i] === c) return i;
  return -1;
}

/** Device strings ("fd:01") by major * 2^20 + minor: a process has few. */
const DEVICES = new Map<number, string>();

/**
 * One maps line (or the header line of an smaps block), parsed into fields
 * that the next line reuses: one parse's scratch, never handed out.
 */
class Header {
  start = 0n;
  end = 0n;
  size = 0;
  perms = "";
  read = false;
  write = false;
  exec = false;
  shared = false;
  offset = 0n;
  device = "";
  major = 0;
  minor = 0;
  inode = 0;
  path = "";
  deleted = false;
  kind: MappingKind = "anonymous";
  name: string | undefined = undefined;
  /** The end as a number (-1: too wide): mappings often follow each other. */
  endN = -1;
  /** The last path's bytes and inode: a file's mappings come together. */
  pathBytes = new Uint8Array(256);
  pathLength = -1;
  pathInode = -1;

  /** Parses the line t[b, e). */
  parse(t: Uint8Array, b: number, e: number): void {
    const dash = find(t, 0x2d, b, e);
    const s1 = dash < 0 ? -1 : find(t, 0x20, dash, e);
    const s2 = s1 + 5; // "rw-p"
    const s3 = s1 < 0 || s2 >= e || t[s2] !== 0x20 ? -1 : find(t, 0x20, s2 + 1, e);
    const colon = s3 < 0 ? -1 : find(t, 0x3a, s3, e);
    const s4 = colon < 0 ? -1 : find(t, 0x20, colon, e);
    if (dash <= b || s4 < 0) {
      throw new SyntaxError(
        `Cannot parse the maps line "${sliceDecoder.decode(t.subarray(b, e))}"`,
      );
    }
    let s5 = s4 + 1;
    let inode = 0;
    for (; s5 < e; s5++) {
      const c = t[s5];
      if (c === 0x20) break;
      inode = inode * 10 + (c - 0x30);
    }
    let p = s5;
    while (p < e && t[p] === 0x20) p++;
    if (!this.samePath(t, p, e, inode)) this.setPath(t, p, e, inode);
    const startN = hexAt(t, b, dash), endN = hexAt(t, dash + 1, s1);
    const wide = dash - b > 13 || s1 - dash - 1 > 13;
    const start = wide ? hexBigAt(t, b, dash) : startN === this.endN ? this.end : BigInt(startN);
    const end = wide ? hexBigAt(t, dash + 1, s1) : BigInt(endN);
    this.endN = wide ? -1 : endN;
    this.start = start;
    this.end = end;
    this.size = wide ? Number(end - start) : endN - startN;
    const r = t[s1 + 1] === 0x72, w = t[s1 + 2] === 0x77;
    const x = t[s1 + 3] === 0x78, sh = t[s1 + 4] === 0x73;
    this.perms = PERMS[(r ? 8 : 0) | (w ? 4 : 0) | (x ? 2 : 0) | (sh ? 1 : 0)];
    this.read = r;
    this.write = w;
    this.exec = x;
    this.shared = sh;
    this.offset = hexBigAt(t, s2 + 1, s3);
    const major = hexAt(t, s3 + 1, colon), minor = hexAt(t, colon + 1, s4);
    const devKey = major * 0x100000 + minor;
    let device = DEVICES.get(devKey);
    if (device === undefined) {
      device = sliceDecoder.decode(t.subarray(s3 + 1, s4));
      if (DEVICES.size < 4096) DEVICES.set(devKey, device);
    }
    this.device = device;
    this.major = major;
    this.minor = minor;
    this.inode = inode;
  }

  /** Whether t[p, e) and inode are the last line's path and inode. */
  samePath(t: Uint8Array, p: number, e: number, inode: number): boolean {
    const n = e - p;
    if (n !== this.pathLength || inode !== this.pathInode) return false;
    const last = this.pathBytes;
    for (let i = 0; i < n; i++) if (t[p + i] !== last[i]) return false;
    return true;
  }

  /** Decodes the path t[p, e) and what it names. */
  setPath(t: Uint8Array, p: number, e: number, inode: number): void {
    let path = "";
    let deleted = false;
    if (p < e) {
      path = sliceDecoder.decode(t.subarray(p, e));
      if (path.endsWith(DELETED)) {
        deleted = true;
        path = path.slice(0, -DELETED.length);
      }
      if (path.includes("\\012")) path = path.replaceAll("\\012", "\n");
    }
    const { kind, name } = kindOf(path, inode, deleted);
    this.path = path;
    this.deleted = deleted;
    this.kind = kind;
    this.name = name;
    if (e - p > this.pathBytes.length) this.pathBytes = new Uint8Array(Math.max(e - p, 512) * 2);
    this.pathBytes.set(t.subarray(p, e));
    this.pathLength = e - p;
    this.pathInode = inode;
  }

  /** The maps entry of the line parsed last. */
  entry(): MapsEntry {
    const entry: MapsEntry = {
      start: this.start,
      end: this.end,
      size: this.size,
      perms: this.perms,
      read: this.read,
      write: this.write,
      exec: this.exec,
      shared: this.shared,
      offset: this.offset,
      device: this.device,
      major: this.major,
      minor: this.minor,
      inode: this.inode,
      path: this.path,
      deleted: this.deleted,
      kind: this.kind,
    };
    if (this.name !== undefined) entry.name = this.name;
    return entry;
  }
}

/** The named counters, in the order of {@linkcode SmapsCounters}. */
const COUNTER_NAMES = [
  ["Rss", "rss"],
  ["Pss", "pss"],
  ["Pss_Dirty", "pssDirty"],
  ["Shared_Clean", "sharedClean"],
  ["Shared_Dirty", "sharedDirty"],
  ["Private_Clean", "privateClean"],
  ["Private_Dirty", "privateDirty"],
  ["Referenced", "referenced"],
  ["Anonymous", "anonymous"],
  ["KSM", "ksm"],
  ["LazyFree", "lazyFree"],
  ["AnonHugePages", "anonHugePages"],
  ["ShmemPmdMapped", "shmemPmdMapped"],
  ["FilePmdMapped", "filePmdMapped"],
  ["Shared_Hugetlb", "sharedHugetlb"],
  ["Private_Hugetlb", "privateHugetlb"],
  ["Swap", "swap"],
  ["SwapPss", "swapPss"],
  ["Locked", "locked"],
] as const;

/** The counters c (by COUNTER_NAMES order) as an object, with `fields`. */
function countersOf(c: readonly number[], fields: Record<string, number>): SmapsCounters {
  return {
    rss: c[0],
    pss: c[1],
    pssDirty: c[2],
    sharedClean: c[3],
    sharedDirty: c[4],
    privateClean: c[5],
    privateDirty: c[6],
    referenced: c[7],
    anonymous: c[8],
    ksm: c[9],
    lazyFree: c[10],
    anonHugePages: c[11],
    shmemPmdMapped: c[12],
    filePmdMapped: c[13],
    sharedHugetlb: c[14],
    privateHugetlb: c[15],
    swap: c[16],
    swapPss: c[17],
    locked: c[18],
    fields,
  };
}

const ZEROS: readonly number[] = COUNTER_NAMES.map(() => 0);

function emptyCounters(): SmapsCounters {
  return countersOf(ZEROS, {});
}

/** The `counter` of the VmFlags key. */
const VM_FLAGS = -2;

/** An smaps field name: its bytes, and which counter it is (-1: none; VM_FLAGS). */
interface FieldKey {
  readonly name: string;
  readonly bytes: Uint8Array;
  readonly counter: number;
}

/** Field keys by name: a kernel prints a few dozen. */
const FIELD_KEYS = new Map<string, FieldKey>();
const encoder = new TextEncoder();

function fieldKey(name: string): FieldKey {
  let key = FIELD_KEYS.get(name);
  if (key === undefined) {
    key = {
      name,
      bytes: encoder.encode(name),
      counter: name === "VmFlags" ? VM_FLAGS : COUNTER_NAMES.findIndex(([k]) => k === name),
    };
    if (FIELD_KEYS.size < 1024) FIELD_KEYS.set(name, key);
  }
  return key;
}

/** VmFlags strings by their two letters: the kernel has about 40. */
const FLAGS = new Map<number, string>();

/**
 * The flags t[b, e) of a VmFlags line: the words of letters and digits
 * between spaces, or undefined for anything else (parsed from its text).
 */
function flagsAt(t: Uint8Array, b: number, e: number): string[] | undefined {
  const list: string[] = [];
  let i = b;
  for (;;) {
    while (i < e && t[i] === 0x20) i++;
    if (i >= e) return list;
    const s = i;
    for (; i < e && t[i] !== 0x20; i++) {
      const c = t[i] | 0x20;
      if (!(c >= 0x61 && c <= 0x7a) && !(t[i] >= 0x30 && t[i] <= 0x39)) return undefined;
    }
    if (i - s === 2) {
      const code = t[s] << 8 | t[s + 1];
      let flag = FLAGS.get(code);
      if (flag === undefined) FLAGS.set(code, flag = String.fromCharCode(t[s], t[s + 1]));
      list.push(flag);
    } else {
      list.push(sliceDecoder.decode(t.subarray(s, i)));
    }
  }
}

// ---- VmFlags sets, shared; fields, made when first read ----

/** The TypeError of a change to a VmFlags set. */
function readOnlyFlags(change: string): TypeError {
  return new TypeError(
    `Cannot ${change} a mapping's VmFlags: the set is read-only, shared by every mapping with the same flags (copy it with new Set() to change it)`,
  );
}

/**
 * The VmFlags of a mapping: a `Set` that cannot change (its `add`, `delete`
 * and `clear` throw), shared by every entry whose VmFlags line has the same
 * text.
 */
class VmFlagSet extends Set<string> {
  /** The text the flags came from (what follows `VmFlags:`). */
  readonly #text: Uint8Array;

  constructor(flags: readonly string[], text: Uint8Array) {
    super();
    for (const flag of flags) super.add(flag);
    this.#text = text;
    Object.freeze(this);
  }

  /** Whether t[b, e) is the text of these flags. */
  is(t: Uint8Array, b: number, e: number): boolean {
    const text = this.#text;
    return text.length === e - b && sameBytes(text, t, b, e - b);
  }

  override add(value: string): this {
    throw readOnlyFlags(`add "${show(value)}" to`);
  }

  override delete(value: string): boolean {
    throw readOnlyFlags(`delete "${show(value)}" from`);
  }

  override clear(): void {
    throw readOnlyFlags("clear");
  }
}

/** The flags of a block without a VmFlags line. */
const NO_FLAGS = new VmFlagSet([], new Uint8Array(0));

/**
 * VmFlags sets by a hash of their text, and by their text where two hash
 * alike: a kernel prints a few dozen kinds. Up to MAX_FLAG_SETS of each;
 * text beyond that gets a set of its own.
 */
const FLAG_SETS = new Map<number, VmFlagSet>();
const FLAG_SETS_BY_TEXT = new Map<string, VmFlagSet>();
const MAX_FLAG_SETS = 4096;

/** The shared VmFlags set of the text t[b, e) of a VmFlags line. */
function vmFlagsAt(t: Uint8Array, b: number, e: number): VmFlagSet {
  let h = 0x811c9dc5; // FNV-1a
  for (let i = b; i < e; i++) h = Math.imul(h ^ t[i], 0x01000193);
  const hashed = FLAG_SETS.get(h);
  if (hashed !== undefined && hashed.is(t, b, e)) return hashed;
  const text = hashed === undefined ? undefined : textAt(t, b, e);
  if (text !== undefined) {
    const known = FLAG_SETS_BY_TEXT.get(text);
    if (known !== undefined && known.is(t, b, e)) return known;
  }
  const flags = flagsAt(t, b, e) ??
    textAt(t, b, e).trim().split(" ").filter((f) => f !== "");
  const set = new VmFlagSet(flags, t.slice(b, e));
  if (text === undefined) {
    if (FLAG_SETS.size < MAX_FLAG_SETS) FLAG_SETS.set(h, set);
  } else if (FLAG_SETS_BY_TEXT.size < MAX_FLAG_SETS) FLAG_SETS_BY_TEXT.set(text, set);
  return set;
}

/** The field names of a block in order, shared by the blocks of the same shape. */
class Shape {
  readonly keys: readonly FieldKey[];
  /** How many keys are not named counters: each block's values in FieldStore. */
  readonly extras: number;
  /** Which key is `Size` (-1: none): a row says when it is the entry's `size` instead of holding it. */
  readonly sizeAt: number;
  /** An object of the keys to copy (undefined: build one key by key), made when first needed. */
  #template: Record<string, number> | undefined | null = null;

  constructor(keys: readonly FieldKey[]) {
    this.keys = keys;
    this.extras = keys.filter((k) => k.counter < 0).length;
    this.sizeAt = keys.findIndex((k) => k.name === "Size");
  }

  /** A new object of these keys in order (values to be set). */
  record(): Record<string, number> {
    if (this.#template === null) {
      // An object of these keys made by JSON.parse has fast properties
      // (one made by adding 20-odd computed keys is a hash table): the
      // records of a shape copy it, one allocation each, and share its map.
      const keys = this.keys;
      this.#template = keys.every((k) => PLAIN_KEY.test(k.name))
        ? JSON.parse(`{${keys.map((k) => `"${k.name}":0`).join(",")}}`)
        : undefined;
    }
    const template = this.#template;
    return template === undefined ? {} : { ...template };
  }
}

/**
 * The values of one parse's fields that are not named counters (`Size`,
 * `Pss_Anon`, `THPeligible`, ...), in rows of doubles: a block's shape (an
 * index into `shapes`, times 2, plus 1 where `Size` is the entry's `size`
 * and the row holds 0 for it), then its values. A block whose row is the
 * previous block's shares it.
 */
class FieldStore {
  values = new Float64Array(4096);
  length = 0;
  readonly shapes: Shape[] = [];

  /** Room for n more values: where they start. */
  reserve(n: number): number {
    const at = this.length;
    if (at + n > this.values.length) {
      const grown = new Float64Array(Math.max(at + n, this.values.length * 2));
      grown.set(this.values.subarray(0, at));
      this.values = grown;
    }
    this.length = at + n;
    return at;
  }
}

/**
 * An entry of {@linkcode readSmaps}: the maps line and the counters as
 * properties of its own, `fields` on the prototype, made from the counters
 * and the parse's FieldStore when first read.
 */
class SmapsBlock implements SmapsEntry {
  declare start: bigint;
  declare end: bigint;
  declare size: number;
  declare perms: string;
  declare read: boolean;
  declare write: boolean;
  declare exec: boolean;
  declare shared: boolean;
  declare offset: bigint;
  declare device: string;
  declare major: number;
  declare minor: number;
  declare inode: number;
  declare path: string;
  declare deleted: boolean;
  declare kind: MappingKind;
  declare name?: string;
  declare rss: number;
  declare pss: number;
  declare pssDirty: number;
  declare sharedClean: number;
  declare sharedDirty: number;
  declare privateClean: number;
  declare privateDirty: number;
  declare referenced: number;
  declare anonymous: number;
  declare ksm: number;
  declare lazyFree: number;
  declare anonHugePages: number;
  declare shmemPmdMapped: number;
  declare filePmdMapped: number;
  declare sharedHugetlb: number;
  declare privateHugetlb: number;
  declare swap: number;
  declare swapPss: number;
  declare locked: number;
  declare vmFlags: ReadonlySet<string>;
  /** The store of the other fields' values until `fields` is read; then the record. */
  #fields: FieldStore | Record<string, number>;
  /** Where this block's shape and values are in the store. */
  #at: number;

  constructor(h: Header, c: readonly number[], vmFlags: VmFlagSet, store: FieldStore, at: number) {
    this.start = h.start;
    this.end = h.end;
    this.size = h.size;
    this.perms = h.perms;
    this.read = h.read;
    this.write = h.write;
    this.exec = h.exec;
    this.shared = h.shared;
    this.offset = h.offset;
    this.device = h.device;
    this.major = h.major;
    this.minor = h.minor;
    this.inode = h.inode;
    this.path = h.path;
    this.deleted = h.deleted;
    this.kind = h.kind;
    if (h.name !== undefined) this.name = h.name;
    this.rss = c[0];
    this.pss = c[1];
    this.pssDirty = c[2];
    this.sharedClean = c[3];
    this.sharedDirty = c[4];
    this.privateClean = c[5];
    this.privateDirty = c[6];
    this.referenced = c[7];
    this.anonymous = c[8];
    this.ksm = c[9];
    this.lazyFree = c[10];
    this.anonHugePages = c[11];
    this.shmemPmdMapped = c[12];
    this.filePmdMapped = c[13];
    this.sharedHugetlb = c[14];
    this.privateHugetlb = c[15];
    this.swap = c[16];
    this.swapPss = c[17];
    this.locked = c[18];
    this.vmFlags = vmFlags;
    this.#fields = store;
    this.#at = at;
  }

  /** Every numeric field by the kernel's name, in the kernel's order (made once, when first read). */
  get fields(): Record<string, number> {
    const store = this.#fields;
    if (!(store instanceof FieldStore)) return store;
    const values = store.values;
    let at = this.#at;
    const code = values[at++];
    const shape = store.shapes[code >> 1];
    const sizeAt = code & 1 ? shape.sizeAt : -1;
    const fields = shape.record();
    const keys = shape.keys;
    const counters = this as unknown as Record<string, number>;
    for (let k = 0; k < keys.length; k++) {
      const key = keys[k];
      fields[key.name] = key.counter >= 0
        ? counters[COUNTER_NAMES[key.counter][1]]
        : k === sizeAt
        ? (at++, this.size)
        : values[at++];
    }
    this.#fields = fields;
    return fields;
  }

  set fields(fields: Record<string, number>) {
    this.#fields = fields;
  }

  /** The entry as JSON.stringify shows it: its own keys, with `fields` before `vmFlags`. */
  toJSON(): Record<string, unknown> {
    const self = this as unknown as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    let fields = false;
    for (const key of Object.keys(this)) {
      if (key === "vmFlags" && !fields) {
        out.fields = this.fields;
        fields = true;
      }
      out[key] = self[key];
    }
    if (!fields) out.fields = this.fields;
    return out;
  }

  /** Deno's console.log shows what JSON.stringify does. */
  [Symbol.for("Deno.customInspect")](
    inspect: (value: unknown, options: unknown) => string,
    options: unknown,
  ): string {
    return inspect(this.toJSON(), options);
  }
}

/**
 * A parse of maps or smaps text fed in whole lines as it is read
 * ({@linkcode readLines}); `entries` holds what was parsed.
 */
class Parser {
  readonly entries: (MapsEntry | SmapsEntry)[] = [];
  readonly #smaps: boolean;
  readonly #header = new Header();
  // The smaps block being parsed: its fields in order, counters, VmFlags.
  #open = false;
  #keys: FieldKey[] = [];
  #values: number[] = [];
  #count = 0;
  #counters: number[] = ZEROS.slice();
  #vmFlags: VmFlagSet | undefined = undefined;
  // The previous block's keys, and their shape in #store: the next block
  // is of the same shape.
  #lastKeys: FieldKey[] = [];
  #lastCount = -1;
  #shape = -1;
  #store: FieldStore | undefined = undefined;
  /** Where the last block's row starts in #store (-1: none yet). */
  #lastRow = -1;

  constructor(smaps: boolean) {
    this.#smaps = smaps;
  }

  /** Parses the whole lines t[b, e). */
  feed(t: Uint8Array, b: number, e: number): void {
    let i = b;
    while (i < e) {
      if (this.#open) {
        const next = this.#expectedField(t, i, e);
        if (next > i) {
          i = next;
          continue;
        }
      }
      let nl = i;
      while (nl < e && t[nl] !== 0x0a) nl++;
      if (nl > i) {
        if (!this.#smaps) {
          this.#header.parse(t, i, nl);
          this.entries.push(this.#header.entry());
        } else {
          // A field's name ends at a colon before any space.
          let colon = -1;
          for (let j = i; j < nl; j++) {
            const c = t[j];
            if (c === 0x3a) colon = j;
            if (c === 0x3a || c === 0x20) break;
          }
          if (colon > i && this.#open) {
            this.#field(t, i, colon, nl);
          } else {
            this.finish();
            this.#header.parse(t, i, nl);
            this.#open = true;
          }
        }
      }
      i = nl + 1;
    }
  }

  /**
   * The field line at t[i, e) when it is the one the previous block had at
   * this place, as the kernel writes it (`Name:<spaces><digits>[ kB]\n`):
   * adds it and returns where the next line starts, each byte looked at
   * once; else -1, and the line goes the general way.
   */
  #expectedField(t: Uint8Array, i: number, e: number): number {
    const n = this.#count;
    if (n >= this.#lastCount) return -1;
    const key = this.#lastKeys[n];
    const name = key.bytes, length = name.length;
    let j = i + length;
    if (j >= e || t[j] !== 0x3a || key.counter === VM_FLAGS) return -1;
    for (let k = 0; k < length; k++) if (t[i + k] !== name[k]) return -1;
    j++;
    while (j < e && t[j] === 0x20) j++;
    const digits = j;
    let v = 0;
    for (; j < e; j++) {
      const d = t[j] - 0x30;
      if (d < 0 || d > 9) break;
      v = v * 10 + d;
    }
    if (j === digits || j - digits > 15) return -1;
    let bytes = v;
    if (j + 3 < e && t[j] === 0x20 && t[j + 1] === 0x6b && t[j + 2] === 0x42) {
      bytes = v * 1024;
      j += 3;
    }
    if (j >= e || t[j] !== 0x0a) return -1;
    this.#keys[n] = key;
    this.#values[n] = bytes;
    this.#count = n + 1;
    if (key.counter >= 0) this.#counters[key.counter] = bytes;
    return j + 1;
  }

  /** Adds the field t[b, e) of the open block, its name ending at colon. */
  #field(t: Uint8Array, b: number, colon: number, e: number): void {
    const n = this.#count;
    let key: FieldKey | undefined = n < this.#lastCount ? this.#lastKeys[n] : undefined;
    if (
      key === undefined || key.bytes.length !== colon - b ||
      !sameBytes(key.bytes, t, b, colon - b)
    ) {
      key = fieldKey(sliceDecoder.decode(t.subarray(b, colon)));
    }
    if (key.counter === VM_FLAGS) {
      this.#vmFlags = vmFlagsAt(t, colon + 1, e);
      return;
    }
    // "<digits>" or "<digits> kB" between spaces; anything else from its text.
    let i = colon + 1;
    while (i < e && t[i] === 0x20) i++;
    const digits = i;
    let v = 0;
    for (; i < e && t[i] >= 0x30 && t[i] <= 0x39; i++) v = v * 10 + (t[i] - 0x30);
    const nd = i - digits;
    let kb = false;
    if (i + 3 <= e && t[i] === 0x20 && t[i + 1] === 0x6b && t[i + 2] === 0x42) {
      kb = true;
      i += 3;
    }
    while (i < e && t[i] === 0x20) i++;
    if (nd === 0 || nd > 15 || i !== e) {
      const rest = textAt(t, colon + 1, e).trim();
      kb = rest.endsWith(" kB");
      v = Number(kb ? rest.slice(0, -3) : rest);
      if (Number.isNaN(v)) return; // a field that is not a number
    }
    const bytes = kb ? v * 1024 : v;
    this.#keys[n] = key;
    this.#values[n] = bytes;
    this.#count = n + 1;
    if (key.counter >= 0) this.#counters[key.counter] = bytes;
  }

  /** Ends the open smaps block, if any, adding its entry. */
  finish(): void {
    if (!this.#open) return;
    this.#open = false;
    const keys = this.#keys, values = this.#values, count = this.#count;
    const store = this.#store ??= new FieldStore();
    let same = count === this.#lastCount;
    for (let k = 0; same && k < count; k++) same = keys[k] === this.#lastKeys[k];
    if (!same) {
      this.#lastKeys = keys.slice(0, count);
      this.#lastCount = count;
      this.#shape = store.shapes.length;
      store.shapes.push(new Shape(this.#lastKeys));
    }
    const shape = store.shapes[this.#shape], n = 1 + shape.extras;
    let at = store.reserve(n);
    const row = store.values;
    const sizeAt = shape.sizeAt;
    const derived = sizeAt >= 0 && Object.is(values[sizeAt], this.#header.size);
    row[at] = this.#shape * 2 + (derived ? 1 : 0);
    for (let k = 0, j = at + 1; k < count; k++) {
      if (keys[k].counter < 0) row[j++] = derived && k === sizeAt ? 0 : values[k];
    }
    // The previous block's row when this one is the same (-0 and 0 apart).
    const last = this.#lastRow;
    if (last >= 0 && last + n === at) {
      let k = 0;
      while (k < n && Object.is(row[last + k], row[at + k])) k++;
      if (k === n) {
        store.length = at;
        at = last;
      }
    }
    this.#lastRow = at;
    this.entries.push(
      new SmapsBlock(this.#header, this.#counters, this.#vmFlags ?? NO_FLAGS, store, at),
    );
    this.#count = 0;
    this.#counters.fill(0);
    this.#vmFlags = undefined;
  }
}

/** Whether t[b, b + n) holds the first n bytes of a. */
function sameBytes(a: Uint8Array, t: Uint8Array, b: number, n: number): boolean {
  for (let i = 0; i < n; i++) if (t[b + i] !== a[i]) return false;
  return true;
}

/** A field name that is an identifier (and no `__proto__`): what a kernel prints. */
const PLAIN_KEY = /^(?!__proto__$)[A-Za-z][A-Za-z0-9_]*$/;

/** The text of t[b, e). */
function textAt(t: Uint8Array, b: number, e: number): string {
  return sliceDecoder.decode(t.subarray(b, e));
}

/** Parses maps text, as the kernel writes it (for tests: the API reads /proc). */
export function parseMaps(bytes: Uint8Array): MapsEntry[] {
  const parser = new Parser(false);
  parser.feed(bytes, 0, bytes.length);
  return parser.entries as MapsEntry[];
}

/** Parses smaps (or smaps_rollup) text, as the kernel writes it. */
export function parseSmaps(bytes: Uint8Array): SmapsEntry[] {
  const parser = new Parser(true);
  parser.feed(bytes, 0, bytes.length);
  parser.finish();
  return parser.entries as SmapsEntry[];
}

// ---- the API ----

/**
 * Reads a process's mappings from `/proc/<pid>/maps`, one typed entry per
 * line, in address order.
 *
 * Requires `--allow-ffi` and `--allow-read=/proc/<pid>/maps` in the form
 * `pid` is given (`/proc/self/maps` for `"self"`; for this process's own
 * pid either form).
 *
 * @param pid A pid, or `"self"` (the default).
 * @returns The mappings.
 * @throws {Deno.errors.NotFound} When no such process exists, or it has exited.
 * @throws {Deno.errors.NotCapable} When the read permission is missing.
 * @throws {MemkitError} When the kernel refuses (`EACCES`: another user's process).
 *
 * @example The heap and the stack of this process
 * ```ts
 * // deno run --allow-ffi --allow-read=/proc/self/maps
 * import { readMaps } from "@memkit/memkit";
 * import { assert } from "@std/assert";
 *
 * const maps = readMaps("self");
 * assert(maps.some((m) => m.kind === "stack" && m.read && m.write && !m.shared));
 * assert(maps.every((m, i) => i === 0 || maps[i - 1].end <= m.start));
 * ```
 */
export function readMaps(pid: ProcessId = "self"): MapsEntry[] {
  const parser = new Parser(false);
  readProc(pid, "maps", parser);
  return parser.entries as MapsEntry[];
}

/**
 * Reads a process's mappings with their memory counters from
 * `/proc/<pid>/smaps`: every numeric field in bytes, and VmFlags as a set.
 *
 * Since issue 11 an entry's `vmFlags` is a read-only set (`ReadonlySet`;
 * it was a `Set` of its own), shared by the entries with the same VmFlags
 * text: copy it to change it. `fields` is made when first read (a getter
 * on the entries' prototype, kept once made); `JSON.stringify` of an entry
 * is as before, `Object.keys` and `{ ...entry }` have no `fields`.
 *
 * Requires `--allow-ffi` and `--allow-read=/proc/<pid>/smaps` (as for
 * {@linkcode readMaps}).
 *
 * @param pid A pid, or `"self"` (the default).
 * @returns The mappings with their counters.
 * @throws {Deno.errors.NotFound} When no such process exists, or it has exited.
 *
 * @example Resident memory of this process
 * ```ts
 * // deno run --allow-ffi --allow-read=/proc/self/smaps
 * import { readSmaps } from "@memkit/memkit";
 * import { assert } from "@std/assert";
 *
 * const smaps = readSmaps("self");
 * const rss = smaps.reduce((sum, m) => sum + m.rss, 0);
 * assert(rss > 0 && rss % 4096 === 0);
 * assert(smaps.some((m) => m.vmFlags.has("rd")));
 * ```
 */
export function readSmaps(pid: ProcessId = "self"): SmapsEntry[] {
  const parser = new Parser(true);
  readProc(pid, "smaps", parser);
  return parser.entries as SmapsEntry[];
}

/**
 * Reads `/proc/<pid>/smaps_rollup`: the smaps counters of all mappings
 * summed by the kernel, in bytes.
 *
 * Requires `--allow-ffi` and `--allow-read=/proc/<pid>/smaps_rollup` (as
 * for {@linkcode readMaps}).
 *
 * @param pid A pid, or `"self"` (the default).
 * @returns The totals.
 * @throws {Deno.errors.NotFound} When no such process exists, or it has exited.
 * @throws {MemkitError} `ENOENT` on a kernel without smaps_rollup (before
 *   Linux 4.14), when the process exists.
 *
 * @example Totals of this process
 * ```ts
 * // deno run --allow-ffi --allow-read=/proc/self/smaps_rollup
 * import { readSmapsRollup } from "@memkit/memkit";
 * import { assert } from "@std/assert";
 *
 * const total = readSmapsRollup("self");
 * assert(total.rss >= total.privateDirty && total.fields.Pss_Anon !== undefined);
 * ```
 */
export function readSmapsRollup(pid: ProcessId = "self"): SmapsRollup {
  const parser = new Parser(true);
  readProc(pid, "smapsRollup", parser);
  const [block] = parser.entries as SmapsEntry[];
  if (block === undefined) throw noAddressSpace(pid, "smapsRollup", "read");
  const { start, end } = block;
  const rollup: SmapsRollup = { start, end, ...emptyCounters() };
  for (const key of Object.keys(rollup) as (keyof SmapsRollup)[]) {
    if (key !== "start" && key !== "end") {
      (rollup as unknown as Record<string, unknown>)[key] = block[key];
    }
  }
  return rollup;
}

/** Options of {@linkcode findMapping}. */
export interface FindMappingOptions {
  /**
   * `"auto"` (default): the `PROCMAP_QUERY` ioctl where the kernel has it
   * (6.11+), else the text of maps. `"query"` or `"text"` force one
   * (`"query"` on an older kernel: `MemkitError` `ENOTTY`, naming the ioctl).
   */
  method?: "auto" | "query" | "text";
}

let queryMissing = false;
const queryOut = new BigUint64Array(9);
const queryName = new Uint8Array(4096 + 64);

function fromQuery(out: BigUint64Array, rawName: string): MapsEntry {
  const [start, end, flags, , offset, inode, major, minor] = out;
  const f = Number(flags);
  const perms = `${f & 1 ? "r" : "-"}${f & 2 ? "w" : "-"}${f & 4 ? "x" : "-"}${f & 8 ? "s" : "p"}`;
  let path = rawName;
  let deleted = false;
  if (path.endsWith(DELETED)) {
    deleted = true;
    path = path.slice(0, -DELETED.length);
  }
  const { kind, name } = kindOf(path, Number(inode), deleted);
  const hex2 = (n: bigint) => n.toString(16).padStart(2, "0");
  const entry: MapsEntry = {
    start,
    end,
    size: Number(end - start),
    perms,
    read: (f & 1) !== 0,
    write: (f & 2) !== 0,
    exec: (f & 4) !== 0,
    shared: (f & 8) !== 0,
    offset,
    device: `${hex2(major)}:${hex2(minor)}`,
    major: Number(major),
    minor: Number(minor),
    inode: Number(inode),
    path,
    deleted,
    kind,
  };
  if (name !== undefined) entry.name = name;
  return entry;
}

/**
 * The mapping that contains `address` in a process, or `null` when none
 * does. Uses the `PROCMAP_QUERY` ioctl (Linux 6.11+; one system call, no
 * text) where the kernel has it, else parses `/proc/<pid>/maps`; both give
 * the same entry.
 *
 * Requires `--allow-ffi` and `--allow-read=/proc/<pid>/maps` (as for
 * {@linkcode readMaps}).
 *
 * @param address Any address (bigint, or a non-negative safe integer).
 * @param pid A pid, or `"self"` (the default).
 * @param options Which method to use.
 * @returns The entry, with its permissions, or `null`.
 * @throws {Deno.errors.NotFound} When no such process exists, or it has exited.
 *
 * @example The permissions of a memfd mapping
 * ```ts
 * // deno run --allow-ffi --allow-read=/proc/self/maps
 * import { findMapping, MemFd } from "@memkit/memkit";
 * import { assertEquals } from "@std/assert";
 *
 * using fd = MemFd.create("find-me", { size: 8192 });
 * using m = fd.map({ access: "r" });
 * const entry = findMapping(m.address + 4097n)!;
 * assertEquals([entry.start, entry.perms, entry.kind, entry.name], [m.address, "r--s", "memfd", "find-me"]);
 * assertEquals(findMapping(0n), null);
 * ```
 */
export function findMapping(
  address: bigint | number,
  pid: ProcessId = "self",
  options?: FindMappingOptions,
): MapsEntry | null {
  const opts = readOptions(options, "options", ["method"] as const);
  const addr = toAddress(address);
  const method = opts.method ?? "auto";
  if (method !== "auto" && method !== "query" && method !== "text") {
    throw new TypeError(
      `Cannot use method "${show(method)}": expected "auto", "query" or "text"`,
    );
  }
  const native = nativePid(pid);
  if (method === "query" || (method === "auto" && !queryMissing)) {
    gateProc("maps", pid);
    const ret = procSymbols().mk_proc_query(native, addr, 0, queryOut, queryName, queryName.length);
    if (ret >= 0n) {
      const len = Number(queryOut[8]);
      return fromQuery(queryOut, decoder.decode(queryName.subarray(0, len)));
    }
    const errno = Number(-ret);
    // ENOENT: no mapping there (a missing process is ESRCH). The query sees
    // VMAs only, not the vsyscall page above user space: the text shows it.
    if (errno === ERRNO.ENOENT && (addr < 1n << 63n || method === "query")) return null;
    if (errno !== ERRNO.ENOENT) {
      if (errno !== ERRNO.ENOTTY || method === "query") {
        throw procError(errno, pid, "maps", "query");
      }
      queryMissing = true;
    }
  }
  for (const entry of readMaps(pid)) {
    if (entry.start <= addr && addr < entry.end) return entry;
    if (entry.start > addr) break;
  }
  return null;
}
