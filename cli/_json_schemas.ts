/**
 * The shape of every `memkit ... --json` output, as data: one schema per
 * command (and subcommand), named by the `schema` field each output starts
 * with (`"memkit.maps/1"`). `docs/json.md` renders these as its field
 * tables, and `tests/json_contract_test.ts` checks every command's output
 * against them, rejecting missing and extra fields, wrong types and
 * malformed addresses.
 *
 * The rules every schema follows (docs/json.md says them once):
 * - the output is one object whose first field is `schema`; lists are under
 *   a named field, never a bare array;
 * - positions (virtual and physical addresses, offsets into files and
 *   segments, page frame numbers) are `"0x…"` strings, lowercase, without
 *   leading zeros: they may exceed 2^53, where a JSON number stops being
 *   exact;
 * - amounts (sizes and lengths in bytes, counts of pages, widths in bits) are
 *   JSON integers, in the unit the field table names;
 * - a range is `start` (inclusive) and `end` (exclusive);
 * - a field the table marks optional is absent when it has no value; `null`
 *   appears only where the table says so (a frame the kernel hides).
 *
 * @module
 */

/** What a JSON value must be. */
export type Shape =
  | { readonly kind: "string"; readonly pattern?: RegExp; readonly oneOf?: readonly string[] }
  | { readonly kind: "integer"; readonly min?: number }
  | { readonly kind: "boolean"; readonly value?: boolean }
  | { readonly kind: "null" }
  | { readonly kind: "array"; readonly items: Shape }
  | { readonly kind: "object"; readonly fields: Readonly<Record<string, Field>> }
  | { readonly kind: "record"; readonly values: Shape; readonly keys?: string }
  | { readonly kind: "either"; readonly of: readonly Shape[] };

/** One field of an object: its shape, its unit and what it means. */
export interface Field {
  /** What its value must be. */
  readonly shape: Shape;
  /** The unit of a number (`"bytes"`, `"pages"`), or what a string holds (`"address"`). */
  readonly unit?: string;
  /** What it means, for docs/json.md. */
  readonly meaning: string;
  /** Whether it may be absent. */
  readonly optional?: boolean;
}

/**
 * A position: `"0x"` and lowercase hexadecimal digits, without leading zeros.
 *
 * @example Addresses as every memkit JSON output prints them
 * ```ts
 * import { HEX_POSITION } from "./_json_schemas.ts";
 * import { assert } from "@std/assert";
 *
 * assert(HEX_POSITION.test("0x7ffd2c1e3000") && HEX_POSITION.test("0x0"));
 * assert(!HEX_POSITION.test("4096") && !HEX_POSITION.test("0x01000"));
 * ```
 */
export const HEX_POSITION: RegExp = /^0x(0|[1-9a-f][0-9a-f]*)$/;
/**
 * A value of a fixed width: `"0x"` and its digits, zero-padded to the width.
 *
 * @example A 16-bit value
 * ```ts
 * import { HEX_VALUE } from "./_json_schemas.ts";
 * import { assert } from "@std/assert";
 *
 * assert(HEX_VALUE.test("0x0000"));
 * ```
 */
export const HEX_VALUE: RegExp = /^0x[0-9a-f]+$/;

const f = (
  shape: Shape,
  meaning: string,
  more: { unit?: string; optional?: boolean } = {},
): Field => ({ shape, meaning, ...more });
const str = (pattern?: RegExp): Shape => ({ kind: "string", pattern });
const oneOf = (...values: string[]): Shape => ({ kind: "string", oneOf: values });
const int: Shape = { kind: "integer", min: 0 };
const bool: Shape = { kind: "boolean" };
const yes: Shape = { kind: "boolean", value: true };
const arr = (items: Shape): Shape => ({ kind: "array", items });
const obj = (fields: Record<string, Field>): Shape => ({ kind: "object", fields });
const position = (meaning: string, unit = "address"): Field =>
  f(str(HEX_POSITION), meaning, { unit });
const bytes = (meaning: string): Field => f(int, meaning, { unit: "bytes" });

/** The object of one schema: `schema` first, then the payload's fields. */
function schema(id: SchemaId, fields: Record<string, Field>): Shape {
  return obj({ schema: f(oneOf(id), "the schema of this output"), ...fields });
}

/**
 * Every schema id, one per command and subcommand with a JSON form.
 *
 * @example The schemas of memkit maps
 * ```ts
 * import { SCHEMA_IDS } from "./_json_schemas.ts";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(SCHEMA_IDS.filter((id) => id.startsWith("memkit.maps")), [
 *   "memkit.maps/1",
 *   "memkit.maps.brief/1",
 *   "memkit.maps.multi/1",
 * ]);
 * ```
 */
export const SCHEMA_IDS = [
  "memkit.permissions/1",
  "memkit.permissions.operation/1",
  "memkit.maps/1",
  "memkit.maps.brief/1",
  "memkit.maps.multi/1",
  "memkit.pagemap/1",
  "memkit.pagemap.summary/1",
  "memkit.phys.read/1",
  "memkit.phys.peek/1",
  "memkit.phys.poke/1",
  "memkit.phys.smbios/1",
  "memkit.phys.ranges/1",
  "memkit.shm.ls/1",
  "memkit.shm.create/1",
  "memkit.shm.rm/1",
  "memkit.shm.cat/1",
  "memkit.shm.info/1",
  "memkit.doctor/1",
  "memkit.tour/1",
  "memkit.help/1",
] as const;

/** The id of one schema: `memkit.<command>[.<sub>]/<version>`. */
export type SchemaId = typeof SCHEMA_IDS[number];

// ---- memkit maps ----

const MAPS_LINE: Record<string, Field> = {
  start: position("the mapping's first address"),
  end: position("the address after its last byte (exclusive)"),
  size: bytes("`end - start`"),
  perms: f(str(/^[r-][w-][x-][ps]$/), "the permissions as the kernel prints them (`rw-p`)"),
  read: f(bool, "readable"),
  write: f(bool, "writable"),
  exec: f(bool, "executable"),
  shared: f(bool, "shared (`s`), not private copy-on-write (`p`)"),
  offset: position(
    "the offset into the mapped file (for `/dev/mem`, a physical address)",
    "offset",
  ),
  device: f(str(/^[0-9a-f]+:[0-9a-f]+$/), "the file's device as the kernel prints it (`fd:01`)"),
  major: f(int, "the device's major number"),
  minor: f(int, "the device's minor number"),
  inode: f(int, "the file's inode; 0 for anonymous memory"),
  path: f(
    str(),
    'the path or pseudo name (`[heap]`), without " (deleted)"; `""` for anonymous memory',
  ),
  deleted: f(bool, 'whether the kernel marked the path " (deleted)"'),
  kind: f(
    oneOf(
      "file",
      "anonymous",
      "heap",
      "stack",
      "vdso",
      "vvar",
      "vsyscall",
      "memfd",
      "shm",
      "deleted",
      "other",
    ),
    "what the mapping is",
  ),
  name: f(str(), "the memfd name, the `[anon:name]` name, or the SysV key", { optional: true }),
};

/**
 * The named counters of one smaps block, in the order `readSmaps` gives
 * them: the name in `memkit.maps/1` (and on `SmapsEntry`), the kernel's name,
 * and what it counts. The kernel's other fields go in `fields`.
 *
 * @example Rss is rss
 * ```ts
 * import { SMAPS_COUNTERS } from "./_json_schemas.ts";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(SMAPS_COUNTERS[0].slice(0, 2), ["rss", "Rss"]);
 * ```
 */
export const SMAPS_COUNTERS:
  readonly (readonly [camel: string, kernel: string, meaning: string])[] = [
    ["rss", "Rss", "resident set size"],
    ["pss", "Pss", "proportional set size"],
    ["pssDirty", "Pss_Dirty", "the dirty part of Pss"],
    ["sharedClean", "Shared_Clean", "resident, shared with other processes, clean"],
    ["sharedDirty", "Shared_Dirty", "resident, shared with other processes, dirty"],
    ["privateClean", "Private_Clean", "resident, mapped only here, clean"],
    ["privateDirty", "Private_Dirty", "resident, mapped only here, dirty"],
    ["referenced", "Referenced", "marked referenced or accessed"],
    ["anonymous", "Anonymous", "anonymous (including private copies of file pages)"],
    ["ksm", "KSM", "KSM-merged"],
    ["lazyFree", "LazyFree", "marked MADV_FREE"],
    ["anonHugePages", "AnonHugePages", "anonymous transparent huge pages"],
    ["shmemPmdMapped", "ShmemPmdMapped", "shared memory mapped with PMDs"],
    ["filePmdMapped", "FilePmdMapped", "file pages mapped with PMDs"],
    ["sharedHugetlb", "Shared_Hugetlb", "shared hugetlbfs pages"],
    ["privateHugetlb", "Private_Hugetlb", "private hugetlbfs pages"],
    ["swap", "Swap", "swapped-out anonymous memory"],
    ["swapPss", "SwapPss", "the proportional share of swap"],
    ["locked", "Locked", "mlocked"],
  ];

const MAPPING: Record<string, Field> = { ...MAPS_LINE };
for (const [camel, kernel, meaning] of SMAPS_COUNTERS) {
  MAPPING[camel] = f(int, `${meaning} (smaps \`${kernel}\`)`, { unit: "bytes" });
}
MAPPING.fields = f(
  { kind: "record", values: int, keys: "the kernel's field name" },
  "the other numeric fields of the block (not the named counters, not `Size`): " +
    "`KernelPageSize`, `MMUPageSize`, `THPeligible`, ...; kB fields in bytes",
  { unit: "bytes or as printed" },
);
MAPPING.vmFlags = f(
  arr(str(/^[a-z0-9]{2}$/)),
  "the two-letter VmFlags (`rd`, `wr`, `mr`, ...), in the kernel's order",
);

// ---- memkit pagemap ----

const PAGE_FLAGS = oneOf(
  "present",
  "swapped",
  "file",
  "exclusive",
  "soft-dirty",
  "uffd-wp",
  "guard",
);

const RUN: Record<string, Field> = {
  start: position("the run's first page"),
  end: position("the address after its last page (exclusive)"),
  pages: f(int, "how many pages the run has", { unit: "pages" }),
  pfn: f(
    { kind: "either", of: [str(HEX_POSITION), { kind: "null" }] },
    "the frame number of its first page (the next pages have the next frames); `null` when " +
      "the pages are not present (swapped) or the kernel hides frames (no CAP_SYS_ADMIN)",
    { unit: "frame" },
  ),
  flags: f(arr(PAGE_FLAGS), "the state every page of the run has"),
  kpageflags: f(
    arr(str(/^[A-Z0-9_]+$/)),
    "with `--flags`: the `/proc/kpageflags` flags every frame of the run has",
    { optional: true },
  ),
};

// ---- memkit phys ----

const ENTRY_POINT: Record<string, Field> = {
  anchor: f(oneOf("_SM_", "_SM3_"), "the entry point's anchor: SMBIOS 2.x or 3.x"),
  address: position("the entry point's physical address"),
  length: bytes("the entry point's length"),
  version: f(
    obj({
      major: f(int, "the major version"),
      minor: f(int, "the minor version"),
      docrev: f(int, "the document revision (3.x)", { optional: true }),
    }),
    "the SMBIOS version the entry point declares",
  ),
  tableAddress: position("the structure table's physical address"),
  tableLength: bytes("the structure table's length (3.x: its maximum)"),
  structureCount: f(int, "how many structures the table has (2.x)", { optional: true }),
};

const PHYS_RANGE: Record<string, Field> = {
  start: position("the range's first physical address"),
  end: position("the address after its last byte (exclusive)"),
  size: bytes("`end - start`"),
  name: f(str(), "what the kernel says it is (`System RAM`, `Reserved`, a device)"),
  depth: f(int, "its nesting in /proc/iomem: 0 at the top, 1 inside a depth-0 range, ..."),
};

// ---- memkit shm ----

const SEGMENT: Record<string, Field> = {
  name: f(str(/^\/[^/]+$/), "the POSIX name (`/demo`)"),
  size: bytes("its size"),
  allocated: bytes("the bytes of pages the filesystem holds for it (reserved)"),
  mode: f(
    str(/^[0-7]{4}$/),
    "its permission bits, four octal digits (`0600`), as the table shows them and `--mode` takes them",
  ),
  uid: f(int, "its owner's user id"),
  gid: f(int, "its group id"),
  modified: f(
    str(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
    "when it was last written to or resized (ISO 8601, UTC)",
  ),
};

const MAPPER: Record<string, Field> = {
  pid: f(int, "a live process that maps it"),
  mappings: f(int, "how many of that process's mappings map it"),
  bytes: bytes("how much of it they map, together"),
  writable: f(bool, "whether one of them is writable"),
};

// ---- memkit doctor ----

const DETAIL: Shape = {
  kind: "either",
  of: [str(), { kind: "integer" }, bool, { kind: "null" }, arr(str())],
};

const CHECK: Record<string, Field> = {
  id: f(
    oneOf(
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
    ),
    "the check",
  ),
  title: f(str(), "what is checked, for people"),
  ok: f(bool, "whether the capability is there (false when not checked)"),
  checked: f(bool, "false when a deno flag it needs was missing or the library did not load"),
  summary: f(str(), "one sentence: what was found"),
  why: f(str(), "why it is missing", { optional: true }),
  fix: f(str(), "what would change the answer: a flag, a sysctl, a kernel, a privilege", {
    optional: true,
  }),
  needs: f(arr(str(/^--allow-/)), "the deno flags it was not checked for want of", {
    optional: true,
  }),
  details: f(
    { kind: "record", values: DETAIL, keys: "a probe's name" },
    "what the probe read (strings, integers, booleans, null or lists of strings; sizes in " +
      "bytes); the keys differ from check to check",
    { optional: true },
  ),
};

// The two schemas of one pid, also the items of memkit.maps.multi/1.
const MAPS_ONE = schema("memkit.maps/1", {
  pid: f(int, "the process (self: memkit's own pid)"),
  mappings: f(arr(obj(MAPPING)), "every mapping (`/proc/<pid>/smaps`), in address order"),
});
const MAPS_BRIEF = schema("memkit.maps.brief/1", {
  pid: f(int, "the process (self: memkit's own pid)"),
  mappings: f(arr(obj(MAPS_LINE)), "every mapping (`/proc/<pid>/maps`), in address order"),
});

/**
 * Every schema by its id.
 *
 * @example The fields of memkit.phys.ranges/1
 * ```ts
 * import { SCHEMAS } from "./_json_schemas.ts";
 * import { assertEquals } from "@std/assert";
 *
 * const shape = SCHEMAS["memkit.phys.ranges/1"];
 * assertEquals(shape.kind === "object" && Object.keys(shape.fields), ["schema", "ranges"]);
 * ```
 */
export const SCHEMAS: Readonly<Record<SchemaId, Shape>> = {
  "memkit.permissions/1": schema("memkit.permissions/1", {
    operations: f(
      arr(obj({
        operation: f(str(), "the operation (`mapFile`, `maps`, ...)"),
        flags: f(arr(str(/^--allow-/)), "its deno flags, `<target>` standing for its target"),
        summary: f(str(), "what it is for"),
      })),
      "every operation of the permission table, in its order",
    ),
  }),
  "memkit.permissions.operation/1": schema("memkit.permissions.operation/1", {
    operation: f(str(), "the operation named"),
    target: f(str(), "its target as named (`<target>` when none was)"),
    flags: f(arr(str(/^--allow-/)), "the minimal deno flags for it on that target"),
  }),
  "memkit.maps/1": MAPS_ONE,
  "memkit.maps.brief/1": MAPS_BRIEF,
  "memkit.maps.multi/1": schema("memkit.maps.multi/1", {
    processes: f(
      arr({ kind: "either", of: [MAPS_ONE, MAPS_BRIEF] }),
      "one object per pid read, in the order named: a `memkit.maps/1` object " +
        "(with `--brief` a `memkit.maps.brief/1` one), its own `schema` included",
    ),
    errors: f(
      arr(obj({
        pid: f(int, "the pid that could not be read (self: memkit's own pid)"),
        error: f(str(), "the error's name (`NotFound`, `PermissionDenied`, `NotCapable`, ...)"),
        code: f(
          { kind: "either", of: [str(/^E[A-Z0-9]+$/), { kind: "null" }] },
          "the errno's name, or null",
        ),
        message: f(str(), "the message, as on stderr"),
      })),
      "one object per pid that could not be read (also reported on stderr; exit code not 0)",
    ),
  }),
  "memkit.pagemap/1": schema("memkit.pagemap/1", {
    pid: f(int, "the process (self: memkit's own pid)"),
    start: position("the range's start, rounded down to a page"),
    end: position("the range's end (exclusive), rounded up to a page"),
    pageSize: bytes("the page size"),
    pages: f(int, "how many pages the range has", { unit: "pages" }),
    present: f(int, "how many of them are present", { unit: "pages" }),
    swapped: f(int, "how many are swapped out", { unit: "pages" }),
    pfnVisible: f(bool, "whether the kernel showed frame numbers (CAP_SYS_ADMIN)"),
    scan: f(
      oneOf("PAGEMAP_SCAN", "entries"),
      "how the pages were found: the PAGEMAP_SCAN ioctl, or entry by entry",
    ),
    runs: f(
      arr(obj(RUN)),
      "the runs of present or swapped pages with the same state and consecutive frames, in " +
        "address order; the pages between runs are not in memory",
    ),
  }),
  "memkit.pagemap.summary/1": schema("memkit.pagemap.summary/1", {
    pid: f(int, "the process (self: memkit's own pid)"),
    start: position("the range's start, rounded down to a page"),
    end: position("the range's end (exclusive), rounded up to a page"),
    pageSize: bytes("the page size"),
    pages: f(int, "how many pages the range has", { unit: "pages" }),
    present: f(int, "how many of them are present (the sum of `sets[].pages`)", {
      unit: "pages",
    }),
    swapped: f(int, "how many are swapped out (in no set: they have no frame)", {
      unit: "pages",
    }),
    sets: f(
      arr(obj({
        kpageflags: f(arr(str(/^[A-Z0-9_]+$/)), "the `/proc/kpageflags` flags of these frames"),
        pages: f(int, "how many present pages have exactly these flags", { unit: "pages" }),
        bytes: bytes("`pages` times the page size"),
        runs: f(int, "in how many runs of consecutive frames with these flags"),
      })),
      "one per distinct kpageflags set among the present pages, most pages first",
    ),
  }),
  "memkit.phys.read/1": schema("memkit.phys.read/1", {
    address: position("the first physical address read"),
    length: bytes("how many bytes were read"),
    hex: f(str(/^([0-9a-f]{2})*$/), "the bytes, two lowercase hex digits each, in order"),
  }),
  "memkit.phys.peek/1": schema("memkit.phys.peek/1", {
    address: position("the physical address"),
    width: f({ kind: "integer", min: 8 }, "the width of the one load", { unit: "bits" }),
    value: f(str(HEX_VALUE), "the value read, zero-padded to the width (`0x0000` for 16 bits)"),
  }),
  "memkit.phys.poke/1": schema("memkit.phys.poke/1", {
    address: position("the physical address"),
    width: f({ kind: "integer", min: 8 }, "the width of the one store and the one load", {
      unit: "bits",
    }),
    wrote: f(str(HEX_VALUE), "the value written, zero-padded to the width"),
    readBack: f(str(HEX_VALUE), "the value read back after it, zero-padded to the width"),
  }),
  "memkit.phys.smbios/1": schema("memkit.phys.smbios/1", {
    version: f(str(/^\d+\.\d+$/), "the SMBIOS version (`3.0`)"),
    entryPoint: f(obj(ENTRY_POINT), "the entry point found in 0xf0000-0xfffff"),
    bios: f(
      obj({
        vendor: f(str(), "the BIOS vendor"),
        version: f(str(), "its version"),
        releaseDate: f(str(), "its release date, as the firmware wrote it"),
      }),
      "the BIOS information (type 0)",
      { optional: true },
    ),
    system: f(
      obj({
        manufacturer: f(str(), "the manufacturer"),
        product: f(str(), "the product name"),
        version: f(str(), "the product version"),
        serial: f(str(), "the serial number"),
        uuid: f(str(/^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$/), "the UUID, when set", {
          optional: true,
        }),
        sku: f(str(), "the SKU", { optional: true }),
        family: f(str(), "the family", { optional: true }),
      }),
      "the system information (type 1)",
      { optional: true },
    ),
    structures: f(
      arr(obj({
        type: f(int, "the structure type"),
        handle: f(int, "its handle"),
        data: f(str(/^([0-9a-f]{2})*$/), "its formatted area, header included, as hex"),
        strings: f(arr(str()), "its strings, in order (string 1 first)"),
      })),
      "every structure of the table, in order",
    ),
  }),
  "memkit.phys.ranges/1": schema("memkit.phys.ranges/1", {
    ranges: f(arr(obj(PHYS_RANGE)), "every range of /proc/iomem, in its order (a parent first)"),
  }),
  "memkit.shm.ls/1": schema("memkit.shm.ls/1", {
    segments: f(
      arr(obj({
        ...SEGMENT,
        mappers: f(arr(obj(MAPPER)), "the live processes mapping it; `[]`: nobody (stale?)"),
      })),
      "every segment in /dev/shm (with `--stale`, only those nobody maps)",
    ),
    skipped: f(arr(int), "the pids whose mappings could not be read (another user's, or denied)"),
  }),
  "memkit.shm.create/1": schema("memkit.shm.create/1", {
    name: f(str(/^\/[^/]+$/), "the segment"),
    size: bytes("its size now"),
    reserved: f(yes, "always true: every page was reserved (fallocate)"),
  }),
  "memkit.shm.rm/1": schema("memkit.shm.rm/1", {
    name: f(str(), "the segment, as named"),
    removed: f(yes, "always true: the name was unlinked"),
  }),
  "memkit.shm.cat/1": schema("memkit.shm.cat/1", {
    name: f(str(/^\/[^/]+$/), "the segment"),
    offset: position("where the bytes start in it", "offset"),
    length: bytes("how many bytes follow"),
    base64: f(str(/^[A-Za-z0-9+/]*={0,2}$/), "the bytes, base64 (RFC 4648, padded)"),
  }),
  "memkit.shm.info/1": schema("memkit.shm.info/1", {
    segment: f(obj(SEGMENT), "the segment (the fields of `shm ls`, without `mappers`)"),
  }),
  "memkit.doctor/1": schema("memkit.doctor/1", {
    checks: f(arr(obj(CHECK)), "the checks run, in the order of `memkit doctor --help`"),
  }),
  "memkit.tour/1": schema("memkit.tour/1", {
    ran: f(int, "steps that ran", { unit: "steps" }),
    skipped: f(int, "steps skipped for a missing permission", { unit: "steps" }),
    failed: f(int, "steps that failed (the exit code is then 1)", { unit: "steps" }),
    steps: f(
      arr(obj({
        title: f(str(), "the step, as its heading"),
        needs: f(arr(str(/^--allow-/)), "the deno flags it needs"),
        outcome: f(oneOf("ran", "skipped", "failed"), "how it ended"),
        missing: f(arr(str(/^--allow-/)), "those of `needs` not granted (it was then skipped)"),
        error: f(str(), "why it failed", { optional: true }),
        code: f(str(/^E[A-Z0-9]+$/), "the errno's name, when the system refused", {
          optional: true,
        }),
        output: f(arr(str()), "the lines it printed, without colour"),
      })),
      "every step, in the tour's order",
    ),
  }),
  "memkit.help/1": schema("memkit.help/1", {
    version: f(str(), "memkit's version"),
    commands: f(
      arr(obj({
        name: f(str(), "the command"),
        summary: f(str(), "one line, as `memkit --help` lists it"),
        usage: f(str(/^memkit /), "its usage line"),
        flags: f(
          arr(obj({
            name: f(str(/^--/), "the flag (`--json`)"),
            short: f(str(/^-[a-zA-Z]$/), "its one-letter alias", { optional: true }),
            value: f(str(), "what its value is, when it takes one", { optional: true }),
            choices: f(arr(str()), "the values it accepts, when only some are", {
              optional: true,
            }),
            default: f(str(), "its value when not given", { optional: true }),
            description: f(str(), "one line of help"),
          })),
          "every flag it takes, the common ones included",
        ),
        examples: f(
          arr(obj({
            command: f(str(/^memkit /), "the command line"),
            what: f(str(), "what it does"),
          })),
          "its help's examples",
        ),
      })),
      "every command (or the one named), in the order `memkit --help` lists them",
    ),
  }),
};
