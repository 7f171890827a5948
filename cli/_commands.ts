/**
 * What each memkit command takes: its flags, positional arguments and
 * examples, declared once. The commands read their command lines against
 * these (`parseCommandLine` in `_args.ts`), and `memkit --help`,
 * `memkit <command> --help` and `memkit help <command>` are made from them.
 * This module imports no command's code, so that `cli.ts` can show any help
 * and check any command line while loading only the command that runs.
 *
 * @module
 */

import type { CommandSpec, FlagSpec } from "./_args.ts";

const PID = { name: "<pid|self>", description: "the process: its pid, or self (this memkit)" };

/**
 * `memkit tour`.
 *
 * @example The tour takes no arguments
 * ```ts
 * import { TOUR } from "./_commands.ts";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(TOUR.positionals, []);
 * ```
 */
export const TOUR: CommandSpec = {
  name: "tour",
  summary: "a guided run of each capability on this machine",
  description: `A guided run of each capability on this machine, printing what it did, the
addresses involved and the permissions each step needed. A step whose
permission is missing is skipped, with the flag to add; grant more to see more:
  deno run --allow-ffi --allow-read --v8-flags=--js-immutable-arraybuffer cli.ts tour
(make run grants every step the flags it needs).`,
  positionals: [],
  json: "memkit.tour/1: the counts and steps[] of { title, needs, outcome, missing, " +
    "error?, code?, output }, each step's lines without colour (docs/json.md)",
  permissions: "print the deno flags that let every step run (what make run grants), and exit",
  examples: [
    ["tour", "every step this process's permissions allow; the others say what to add"],
    ["tour --permissions", "the flags of a whole tour, for deno run"],
    ["tour --json", "each step's outcome, the flags it needed and its lines, as JSON"],
  ],
  exitNote: "The tour exits 1 when a step fails; a skipped step is not a failure.",
};

/**
 * `memkit permissions`.
 *
 * @example Both arguments are optional
 * ```ts
 * import { PERMISSIONS } from "./_commands.ts";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(PERMISSIONS.positionals?.map((p) => p.name), ["[operation]", "[target]"]);
 * ```
 */
export const PERMISSIONS: CommandSpec = {
  name: "permissions",
  summary: "the permission table, or the minimal deno flags of one operation",
  description: `Without an operation, the whole permission table; with one, the minimal deno
flags for it on target (a path, a pid or a name). A path with a comma cannot
be named in a deno flag (Deno splits the lists at commas): that is an error.`,
  positionals: [
    {
      name: "[operation]",
      description: "an operation of the table (mapFile, maps, ...)",
      optional: true,
    },
    { name: "[target]", description: "its path, pid or name", optional: true },
  ],
  json: "memkit.permissions/1 (the table: operations[]) or memkit.permissions.operation/1 " +
    "(operation, target, flags); see docs/json.md",
  permissions: "print the flags this command needs (none), and exit",
  examples: [
    ["permissions", "every operation, its flags and what it is for"],
    ["permissions mapFile /etc/hostname", "--allow-ffi --allow-read=/etc/hostname"],
    ["permissions maps 1234 --json", "the same as JSON"],
  ],
};

/**
 * `memkit maps`.
 *
 * @example The flags of memkit maps
 * ```ts
 * import { MAPS } from "./_commands.ts";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(MAPS.flags?.map((f) => f.name), ["brief", "bytes", "strip", "columns"]);
 * ```
 */
export const MAPS: CommandSpec = {
  name: "maps",
  summary: "a process's mappings with sizes, like pmap -X",
  description: `Every mapping of one or more processes, like pmap -X: address, permissions,
offset, device, inode, sizes (Rss, Pss, dirty, anonymous, swap, locked), kind,
path. Each table starts with the pid and its command line and ends with a
totals row per kind (file, anonymous, heap, stack, ...) and the grand total.`,
  positionals: [{ ...PID, name: "<pid|self>...", rest: true }],
  flags: [
    {
      name: "brief",
      type: "boolean",
      description: "/proc/<pid>/maps only (no sizes; needs only that file)",
    },
    {
      name: "bytes",
      type: "boolean",
      description: "sizes in bytes (4096), not in binary units (4 KiB)",
    },
    {
      name: "strip",
      type: "boolean",
      description: "a strip of each mapping's pages (absent, present, file/shared, " +
        "swapped) in place of the counters; needs /proc/<pid>/pagemap too",
    },
    {
      name: "columns",
      short: "o",
      type: "string",
      value: "LIST",
      description: "the columns to show, in order, comma-separated (names below)",
    },
  ],
  json: "memkit.maps/1 (with --brief memkit.maps.brief/1): pid and mappings[], addresses " +
    "as 0x strings, sizes in bytes; several pids: memkit.maps.multi/1 (processes[], errors[]); " +
    "see docs/json.md",
  notes: `Columns (-o): address, end, perm, offset, device, inode, size, rss, pss, dirty
(Private_Dirty + Shared_Dirty), anon, swap, locked, the other smaps counters
by their JSON names (pssDirty, sharedClean, sharedDirty, privateClean,
privateDirty, referenced, ksm, lazyFree, anonHugePages, shmemPmdMapped,
filePmdMapped, sharedHugetlb, privateHugetlb, swapPss), kind and mapping.
The header's command line needs --allow-read=/proc/<pid>/cmdline; without it
the header says so. A pid that cannot be read is reported on stderr, the
others still print, and the exit code is that of the first failure.`,
  examples: [
    ["maps self", "this process's mappings, with sizes, totals per kind and in all"],
    ["maps 1234 --bytes", "sizes in bytes, to sort or sum (like pmap -X)"],
    ["maps 1234 -o size,rss,kind,mapping", "only these columns, in this order"],
    ["maps 1234 5678 self", "one table per process"],
    ["maps 1234 --json", "as JSON (needs --allow-read=/proc/1234/smaps)"],
    ["maps 1234 --brief", "without sizes (needs only --allow-read=/proc/1234/maps)"],
    ["maps 1234 --permissions", "the deno flags for that call"],
  ],
};

/**
 * `memkit pagemap`.
 *
 * @example A pid and a range
 * ```ts
 * import { PAGEMAP } from "./_commands.ts";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(PAGEMAP.positionals?.length, 2);
 * ```
 */
export const PAGEMAP: CommandSpec = {
  name: "pagemap",
  summary: "the pages, frames and flags of a range, like page-types",
  description: `The pages of a range, like the kernel's page-types: runs of pages with the
same state (present, swapped, file or shared, exclusive, soft-dirty, ...)
and consecutive frames, with their physical frame numbers.`,
  positionals: [
    PID,
    {
      name: "<start>[-end|+length]",
      description: "the range: its end (exclusive) after its start, or a length above 0",
    },
  ],
  flags: [
    {
      name: "flags",
      type: "boolean",
      description: "also the page flags of the frames (/proc/kpageflags; root), in brackets; " +
        "a run is split where they change, so every frame of a run has the flags shown",
    },
    {
      name: "summary",
      type: "boolean",
      description: "instead of the runs, the pages per kpageflags set, like page-types: pages, " +
        "bytes, runs and the flags, most pages first (/proc/kpageflags; root)",
    },
    {
      name: "strip",
      type: "boolean",
      description: "instead of the runs, a strip per mapping in the range: a cell per N pages " +
        "(N to fit the terminal, or 100 columns), absent, present, file-backed, swapped or " +
        "mixed (/proc/<pid>/maps)",
    },
    {
      name: "svg",
      type: "string",
      value: "FILE",
      description: "also write an SVG plot of virtual page against frame number to FILE, a " +
        "mark per present page (--allow-write=FILE; frames need root)",
    },
  ],
  json: "memkit.pagemap/1: the range, the page counts and the runs, addresses and frames " +
    "as 0x strings; with --summary, memkit.pagemap.summary/1: the pages per kpageflags set; " +
    "see docs/json.md",
  notes: `Numbers are decimal or 0x hexadecimal, with an optional K, M, G or T suffix.
Without CAP_SYS_ADMIN the kernel hides frame numbers (it reports 0): memkit
says so instead of printing physical address 0.`,
  examples: [
    ["pagemap self 0x400000+4M", "4 MiB of this process from 0x400000"],
    ["pagemap 1234 0x7f0000000000-0x7f0000100000 --json", "a range of another process, as JSON"],
    ["pagemap self 0-0x800000000000 --flags", "the whole user space, with kpageflags (root)"],
    ["pagemap 1234 0-0x800000000000 --summary", "its pages per kpageflags set (root)"],
    ["pagemap 1234 0-0x800000000000 --strip", "a strip of cells per mapping"],
    ["pagemap 1234 0x7f0000000000+64M --svg out.svg", "plot its frames against its pages"],
  ],
};

const DEVICE: FlagSpec[] = [
  {
    name: "device",
    type: "string",
    value: "PATH",
    default: "/dev/mem",
    description: "the memory device",
  },
  {
    name: "cache",
    type: "string",
    value: "MODE",
    choices: ["default", "uncached"],
    default: "default",
    description: "default, or uncached (O_SYNC, as devmem2 opens it)",
  },
];

/**
 * `memkit phys`.
 *
 * @example The subcommands of memkit phys
 * ```ts
 * import { PHYS } from "./_commands.ts";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(PHYS.subcommands?.map((s) => s.name), ["read", "peek", "poke", "smbios", "ranges"]);
 * ```
 */
export const PHYS: CommandSpec = {
  name: "phys",
  summary: "physical memory through /dev/mem: read, peek, poke, smbios, ranges",
  description: `Physical memory through /dev/mem, devmem2's and dmidecode's jobs with the
width right and the refusals explained.`,
  subcommands: [
    {
      name: "read",
      summary: "hexdump len bytes (default 256, at most 1G) of physical memory",
      positionals: [{ name: "<addr>", description: "the physical address" }, {
        name: "[len]",
        description: "how many bytes",
        optional: true,
      }],
    },
    {
      name: "peek",
      summary: "one read of exactly width bits (8, 16, 32 or 64)",
      positionals: [{ name: "<addr>", description: "the physical address" }, {
        name: "<width>",
        description: "8, 16, 32 or 64 (bits)",
      }],
    },
    {
      name: "poke",
      summary: "one write of exactly width bits, then one read back",
      positionals: [
        { name: "<addr>", description: "the physical address" },
        { name: "<width>", description: "8, 16, 32 or 64 (bits)" },
        { name: "<value>", description: "the value to write" },
      ],
    },
    {
      name: "smbios",
      summary: "the SMBIOS entry point, BIOS and system information",
      positionals: [],
    },
    { name: "ranges", summary: "the physical address map (/proc/iomem), nested", positionals: [] },
  ],
  flags: DEVICE,
  json: "memkit.phys.<command>/1: read, the bytes as hex; peek and poke, the values; " +
    "smbios, ranges, the decoded tables; addresses as 0x strings; see docs/json.md",
  notes: `Addresses and lengths: 0x-prefixed hex or decimal, with an optional K/M/G/T
suffix. Values: 0x-prefixed hex or decimal, exact to the bit; one that does
not fit the width is refused (exit code 2), never truncated.`,
  examples: [
    ["phys read 0xf0000 64", "64 bytes of the BIOS area (needs --allow-read=/dev/mem)"],
    ["phys peek 0xfee00030 32", "one 32-bit read"],
    ["phys poke 0xfea00000 16 0xbeef", "one 16-bit write (needs --allow-write=/dev/mem too)"],
    ["phys ranges --json", "the physical address map, as JSON"],
    ["phys smbios --permissions", "the deno flags for that call"],
  ],
};

/**
 * `memkit shm`.
 *
 * @example The subcommands of memkit shm
 * ```ts
 * import { SHM } from "./_commands.ts";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(SHM.subcommands?.map((s) => s.name), ["ls", "create", "rm", "cat", "info"]);
 * ```
 */
export const SHM: CommandSpec = {
  name: "shm",
  summary: "POSIX shared memory in /dev/shm, and who maps it: ls, create, rm, cat, info",
  description: `POSIX shared memory in /dev/shm, with the processes that map each segment,
so that segments nobody maps any more (left behind by a kill -9) stand out.`,
  subcommands: [
    {
      name: "ls",
      summary: "every segment in /dev/shm: size, reserved bytes, mode, owner, and the live " +
        "processes mapping it",
      positionals: [],
      flags: [{ name: "stale", type: "boolean", description: "only the ones nobody maps" }],
    },
    {
      name: "create",
      summary: "a new segment, every page reserved (a full /dev/shm is an error now, not a " +
        "SIGBUS later)",
      positionals: [{ name: "<name>", description: "the segment: /name or name" }, {
        name: "<size>",
        description: "its size in bytes (4K, 1M, ...)",
      }],
      flags: [
        {
          name: "mode",
          type: "string",
          value: "MODE",
          default: "0600",
          description: "its permission bits, octal",
        },
        {
          name: "open",
          type: "boolean",
          description: "open it instead if it exists (grown to size, never shrunk)",
        },
      ],
    },
    {
      name: "rm",
      summary: "unlink it (who has it open or mapped keeps it)",
      positionals: [{ name: "<name>", description: "the segment: /name or name" }],
    },
    {
      name: "cat",
      summary: "its bytes on stdout (copied through the descriptor: safe even if another " +
        "process shrinks it)",
      positionals: [{ name: "<name>", description: "the segment: /name or name" }],
      flags: [
        { name: "offset", type: "string", value: "N", default: "0", description: "where to start" },
        {
          name: "length",
          type: "string",
          value: "N",
          description: "how many bytes (default: to the end)",
        },
        { name: "hex", type: "boolean", description: "a hexdump instead of the raw bytes" },
      ],
    },
    {
      name: "info",
      summary: "its size, reserved bytes, mode and owner",
      positionals: [{ name: "<name>", description: "the segment: /name or name" }],
    },
  ],
  json: "memkit.shm.<command>/1: ls, info, the segments; create, rm, what was done; cat, " +
    "the bytes as base64; see docs/json.md",
  notes: `Names are POSIX names: /name, or name (the same segment). Sizes, offsets and
lengths: decimal or 0x hexadecimal, with an optional K, M, G or T suffix.
A segment shown with no mappers may still be open (not mapped) somewhere,
or mapped by a process memkit could not read (listed as skipped).`,
  examples: [
    ["shm ls --stale", "the segments no live process maps"],
    ["shm create /demo 1M --mode=0640", "a 1 MiB segment, every page reserved"],
    ["shm cat /demo --hex --length=64", "a hexdump of its first 64 bytes"],
    ["shm rm /demo", "unlink it"],
    ["shm ls --permissions", "the deno flags for that call"],
  ],
};

/**
 * `memkit doctor`.
 *
 * @example Any number of checks, or none
 * ```ts
 * import { DOCTOR } from "./_commands.ts";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(DOCTOR.positionals?.[0].rest, true);
 * ```
 */
export const DOCTOR: CommandSpec = {
  name: "doctor",
  summary: "what this machine, kernel, user and flags let memkit do, and the fixes",
  description: `One line per capability: ✓ (there), ✗ (missing: why, and the fix) or ?
(not checked: the deno flag it needs). Without a check named, every one. Names
select checks: their ids (library, pagemap-scan, pfn, userfaultfd, ...), or
pagemap (pagemap-scan, pfn), uffd (both userfaultfd checks), PAGEMAP_SCAN,
PROCMAP_QUERY, MFD_NOEXEC_SEAL, /dev/mem.`,
  positionals: [{
    name: "[check ...]",
    description: "the checks to run (default: all)",
    optional: true,
    rest: true,
  }],
  json: "memkit.doctor/1: checks[] of { id, title, ok, checked, summary, why?, fix?, " +
    "needs?, details? }; see docs/json.md",
  permissions: "print the deno flags every named check needs, and exit",
  examples: [
    ["doctor", "every check, one line each"],
    ["doctor pagemap uffd", "only those; exit 1 when one is missing"],
    ["doctor --json", "the results as JSON"],
    ["doctor --permissions", "the deno flags that let every check run"],
  ],
  exitNote: "Without a check named: 0, unless the library does not load (1) or\n" +
    "  --allow-ffi is missing (3). With checks named: 1 when one is missing, 3 when\n" +
    "  one could not be checked for want of a permission.",
};

/**
 * Every command's declaration, in the order `memkit --help` lists them.
 *
 * @example Every command
 * ```ts
 * import { SPECS } from "./_commands.ts";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(Object.keys(SPECS), ["tour", "permissions", "maps", "pagemap", "phys", "shm", "doctor"]);
 * ```
 */
export const SPECS: Record<string, CommandSpec> = {
  tour: TOUR,
  permissions: PERMISSIONS,
  maps: MAPS,
  pagemap: PAGEMAP,
  phys: PHYS,
  shm: SHM,
  doctor: DOCTOR,
};
