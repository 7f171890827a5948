/**
 * The permission gate: one table that declares, per operation, the Deno
 * permissions it needs. The same table enforces them (before any native
 * call), documents them, and prints the minimal flags
 * (`memkit <cmd> --permissions`).
 *
 * Once `--allow-ffi` is granted, native code can do anything the process
 * can, so Deno guarantees nothing about it; memkit re-imposes Deno's file
 * permissions on every path its native side touches. This protects users
 * from a tool doing more than its flags say. It is not a sandbox against
 * hostile code running in the same process.
 *
 * @module
 */

import { lookup, show, string } from "./_args.ts";
import { uncurryThis } from "./_primordials.ts";

/** One Deno permission an operation needs. */
export interface PermissionNeed {
  /** The permission's name, as in `--allow-<name>`. */
  name: "ffi" | "read" | "write" | "run" | "env" | "net";
  /**
   * The path (or command, or variable, or for `net` the host: `unix:<path>`
   * for a Unix socket) it is scoped to; absent means unscoped.
   */
  path?: string;
}

/** One row of the permission table. */
export interface PermissionRule {
  /** What the operation does, for people. */
  summary: string;
  /** The permissions needed, given the path (or pid, or name) involved. */
  needs(target: string): PermissionNeed[];
}

// The permission API and what the gate uses of the runtime, as they were when
// memkit loaded: code that later replaces Deno.permissions.querySync (or
// patches the table below) changes nothing the gate decides.
const permissionApi = Deno.permissions;
const querySync = permissionApi.querySync.bind(permissionApi);
const requestSync = permissionApi.requestSync.bind(permissionApi);
const NotCapable = Deno.errors.NotCapable;
const cwd = Deno.cwd;
const freeze = Object.freeze;

const ffi: PermissionNeed = freeze({ name: "ffi" });

/** The file of POSIX shared memory `name` (`/name` and `name` are the same segment). */
const stringSlice = uncurryThis(String.prototype.slice);
const shmPath = (name: string): string =>
  `/dev/shm/${name[0] === "/" ? stringSlice(name, 1) : name}`;

/**
 * Every memkit operation and the permissions it needs. `target` is the path
 * the operation touches (`mapFile`), the pid (`maps`, `pagemap`), the device
 * (`physRead`) or the shared memory name (`shmOpen`).
 *
 * @example Reading the table
 * ```ts
 * import { permissionTable } from "@memkit/memkit";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(permissionTable.mapFileWrite.needs("/tmp/x"), [
 *   { name: "ffi" },
 *   { name: "read", path: "/tmp/x" },
 *   { name: "write", path: "/tmp/x" },
 * ]);
 * ```
 *
 * @example The table cannot be changed
 * ```ts
 * import { permissionTable } from "@memkit/memkit";
 * import { assert } from "@std/assert";
 *
 * assert(Object.isFrozen(permissionTable) && Object.isFrozen(permissionTable.mapFile));
 * ```
 */
export const permissionTable = {
  load: {
    summary: "load the native library (zero-copy views need it unscoped)",
    needs: () => [ffi],
  },
  memory: {
    summary: "memfd, mappings, stitching, rings, mprotect, locks, userfaultfd",
    needs: () => [ffi],
  },
  maxMapCount: {
    summary: "read vm.max_map_count, to say the limit when stitch() runs out of mappings",
    needs: () => [ffi, { name: "read", path: "/proc/sys/vm/max_map_count" }],
  },
  mapFile: {
    summary: "map a regular file read-only",
    needs: (path: string) => [ffi, { name: "read", path }],
  },
  mapFileWrite: {
    summary: "map a regular file read-write",
    needs: (path: string) => [ffi, { name: "read", path }, { name: "write", path }],
  },
  mapDevice: {
    summary: "map a character device or a debugfs/sysfs file read-only (mapDevice, KernelPage)",
    needs: (path: string) => [ffi, { name: "read", path }],
  },
  mapDeviceWrite: {
    summary: "map a device or a debugfs/sysfs file read-write (KernelChannel's request page)",
    needs: (path: string) => [ffi, { name: "read", path }, { name: "write", path }],
  },
  maps: {
    summary: "read /proc/<pid>/maps",
    needs: (pid: string) => [ffi, { name: "read", path: `/proc/${pid}/maps` }],
  },
  smaps: {
    summary: "read /proc/<pid>/smaps",
    needs: (pid: string) => [ffi, { name: "read", path: `/proc/${pid}/smaps` }],
  },
  smapsRollup: {
    summary: "read /proc/<pid>/smaps_rollup",
    needs: (pid: string) => [ffi, { name: "read", path: `/proc/${pid}/smaps_rollup` }],
  },
  pagemap: {
    summary: "read /proc/<pid>/pagemap",
    needs: (pid: string) => [ffi, { name: "read", path: `/proc/${pid}/pagemap` }],
  },
  processMemory: {
    summary:
      "read another process's memory (process_vm_readv: a LazyView of { pid, address, length })",
    needs: (pid: string) => [ffi, { name: "read", path: `/proc/${pid}/mem` }],
  },
  kpageflags: {
    summary: "read /proc/kpageflags",
    needs: () => [ffi, { name: "read", path: "/proc/kpageflags" }],
  },
  kpagecount: {
    summary: "read /proc/kpagecount",
    needs: () => [ffi, { name: "read", path: "/proc/kpagecount" }],
  },
  physRead: {
    summary: "map physical memory read-only (the device given, /dev/mem by default)",
    needs: (device: string) => [ffi, { name: "read", path: device }],
  },
  physWrite: {
    summary: "map physical memory read-write",
    needs: (device: string) => [ffi, { name: "read", path: device }, {
      name: "write",
      path: device,
    }],
  },
  iomem: {
    summary: "read /proc/iomem (the physical address map; explains /dev/mem refusals)",
    needs: () => [ffi, { name: "read", path: "/proc/iomem" }],
  },
  lockdown: {
    summary: "read /sys/kernel/security/lockdown (optional: names a lockdown refusal)",
    needs: () => [ffi, { name: "read", path: "/sys/kernel/security/lockdown" }],
  },
  shmOpen: {
    summary: "open POSIX shared memory <name> read-only, read its size, owner and mode",
    needs: (name: string): PermissionNeed[] => [ffi, { name: "read", path: shmPath(name) }],
  },
  shmCreate: {
    summary: "create, unlink, resize or open and map read-write POSIX shared memory <name>",
    needs: (name: string): PermissionNeed[] => [ffi, { name: "read", path: shmPath(name) }, {
      name: "write",
      path: shmPath(name),
    }],
  },
  compactMemory: {
    summary: "write /proc/sys/vm/compact_memory (compact memory now; root only)",
    needs: () => [ffi, { name: "write", path: "/proc/sys/vm/compact_memory" }],
  },
  socket: {
    summary: "listen on or connect to a Unix socket path (memfds passed over it)",
    // Deno's own rule for Unix sockets (2.x): read, write and net "unix:<path>".
    needs: (path: string) => [ffi, { name: "read", path }, { name: "write", path }, {
      name: "net",
      path: `unix:${path}`,
    }],
  },
  shmList: {
    summary: "list POSIX shared memory and the live processes mapping it (/proc/<pid>/maps)",
    needs: () => [ffi, { name: "read", path: "/dev/shm" }, { name: "read", path: "/proc" }],
  },
} as const satisfies Record<string, PermissionRule>;

// Frozen, rows and functions too, before any code outside this module can
// reach it.
freeze(permissionTable);
for (const row of Object.values(permissionTable)) freeze(freeze(row).needs);

/** The name of an operation in {@linkcode permissionTable}. */
export type Operation = keyof typeof permissionTable;

function descriptor(need: PermissionNeed): Deno.PermissionDescriptor {
  switch (need.name) {
    case "ffi":
      return need.path === undefined ? { name: "ffi" } : { name: "ffi", path: need.path };
    case "read":
      return { name: "read", path: need.path };
    case "write":
      return { name: "write", path: need.path };
    case "run":
      return { name: "run", command: need.path };
    case "env":
      return { name: "env", variable: need.path };
    case "net":
      return { name: "net", host: need.path };
  }
}

function deniedMessage(need: PermissionNeed, via?: string): string {
  const what = need.path === undefined
    ? `${need.name} access`
    : `${need.name} access to "${need.path}"`;
  const from = via === undefined ? "" : ` (what "${via}" resolves to)`;
  return `Requires ${what}${from}, run again with the --allow-${need.name} flag`;
}

/**
 * The needs of `operation` for `target`: the row found by own key only (so
 * "toString" names no operation), the target a primitive string.
 */
function needsOf(operation: unknown, target: unknown): PermissionNeed[] {
  const row = lookup(permissionTable, operation);
  if (row === undefined) {
    throw new TypeError(`Cannot use operation "${show(operation)}": not in the permission table`);
  }
  return row.needs(string(target, "target")) as PermissionNeed[];
}

function requireAll(needs: PermissionNeed[], via?: string): void {
  for (const need of needs) {
    const desc = descriptor(need);
    let state = querySync(desc).state;
    if (state === "prompt") state = requestSync(desc).state;
    if (state !== "granted") throw new NotCapable(deniedMessage(need, via));
  }
}

/**
 * Checks that every permission `operation` needs for `target` is granted,
 * asking for it where Deno would prompt, and throws
 * `Deno.errors.NotCapable` (in Deno's own words) for the first one that is
 * not. memkit calls this before any native call that touches a path, with
 * the permission API as it was when memkit loaded.
 *
 * @param operation The row of {@linkcode permissionTable}.
 * @param target The path, pid, device or name the operation touches.
 * @throws {Deno.errors.NotCapable} When a permission is missing.
 * @throws {TypeError} For an operation that is not in the table.
 *
 * @example A missing permission is an error, before anything is opened
 * ```ts
 * import { requirePermissions } from "@memkit/memkit";
 * import { assertThrows } from "@std/assert";
 *
 * // The doc tests run without --allow-read for /dev/mem.
 * assertThrows(() => requirePermissions("physRead", "/dev/mem"), Deno.errors.NotCapable);
 * ```
 */
export function requirePermissions(operation: Operation, target = ""): void {
  requireAll(needsOf(operation, target));
}

/**
 * The state of one permission, from the permission API as it was when memkit
 * loaded; for memkit's own modules, which only query (never prompt) for
 * optional reads.
 */
export function queryPermission(desc: Deno.PermissionDescriptor): Deno.PermissionState {
  return querySync(desc).state;
}

/**
 * `path` made absolute and normalized lexically, as Deno's permission check
 * does: relative to the working directory, with `.`, `..` and repeated
 * slashes collapsed before any symlink is followed. memkit checks this path
 * and hands this same string to the native side, so that what is opened is
 * what was checked (the kernel would follow a symlink before `..`).
 */
export function absolutePath(path: string): string {
  const full = path.startsWith("/") ? path : `${cwd()}/${path}`;
  const parts: string[] = [];
  for (const part of full.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") parts.pop();
    else parts.push(part);
  }
  return `/${parts.join("/")}`;
}

/**
 * The gate's second look, at the path the kernel resolved `checked` to
 * (symlinks followed). With `strict` (devices), that path needs every
 * permission of `operation` too; otherwise (regular files, which Deno's own
 * file API lets a symlink lead anywhere) it must only not be explicitly
 * denied. For memkit's own modules.
 */
export function requireResolved(
  operation: Operation,
  resolved: string,
  checked: string,
  strict: boolean,
): void {
  if (resolved === checked) return;
  const needs = needsOf(operation, resolved);
  if (strict) return requireAll(needs, checked);
  for (const need of needs) {
    if (need.path !== undefined && querySync(descriptor(need)).state === "denied") {
      throw new NotCapable(deniedMessage(need, checked));
    }
  }
}

/**
 * The narrowest `deno run` flags that an operation needs for `target`.
 *
 * @param operation The row of {@linkcode permissionTable}.
 * @param target The path, pid, device or name the operation touches.
 * @returns Flags such as `["--allow-ffi", "--allow-read=/proc/self/maps"]`.
 *
 * @example The flags an operation needs
 * ```ts
 * import { permissionFlags } from "@memkit/memkit";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(permissionFlags("maps", "self"), [
 *   "--allow-ffi",
 *   "--allow-read=/proc/self/maps",
 * ]);
 * ```
 */
export function permissionFlags(operation: Operation, target = ""): string[] {
  return needsOf(operation, target).map((n) =>
    n.path === undefined ? `--allow-${n.name}` : `--allow-${n.name}=${n.path}`
  );
}
