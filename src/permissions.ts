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

/** One Deno permission an operation needs. */
export interface PermissionNeed {
  /** The permission's name, as in `--allow-<name>`. */
  name: "ffi" | "read" | "write" | "run" | "env";
  /** The path (or command, or variable) it is scoped to; absent means unscoped. */
  path?: string;
}

/** One row of the permission table. */
export interface PermissionRule {
  /** What the operation does, for people. */
  summary: string;
  /** The permissions needed, given the path (or pid, or name) involved. */
  needs(target: string): PermissionNeed[];
}

const ffi: PermissionNeed = { name: "ffi" };

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
    summary: "open POSIX shared memory <name>",
    needs: (name: string) => [ffi, { name: "read", path: `/dev/shm/${name}` }],
  },
  shmCreate: {
    summary: "create or write POSIX shared memory <name>",
    needs: (name: string) => [ffi, { name: "read", path: `/dev/shm/${name}` }, {
      name: "write",
      path: `/dev/shm/${name}`,
    }],
  },
  socket: {
    summary: "use a Unix socket path",
    needs: (path: string) => [ffi, { name: "read", path }, { name: "write", path }],
  },
} as const satisfies Record<string, PermissionRule>;

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
  }
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

function deniedMessage(need: PermissionNeed): string {
  const what = need.path === undefined
    ? `${need.name} access`
    : `${need.name} access to "${need.path}"`;
  return `Requires ${what}, run again with the --allow-${need.name} flag`;
}

/**
 * Checks that every permission `operation` needs for `target` is granted,
 * asking for it where Deno would prompt, and throws
 * `Deno.errors.NotCapable` (in Deno's own words) for the first one that is
 * not. memkit calls this before any native call that touches a path.
 *
 * @param operation The row of {@linkcode permissionTable}.
 * @param target The path, pid, device or name the operation touches.
 * @throws {Deno.errors.NotCapable} When a permission is missing.
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
  for (const need of needsOf(operation, target)) {
    const desc = descriptor(need);
    let state = Deno.permissions.querySync(desc).state;
    if (state === "prompt") state = Deno.permissions.requestSync(desc).state;
    if (state !== "granted") throw new Deno.errors.NotCapable(deniedMessage(need));
  }
}

/**
 * The narrowest `deno run` flags that an operation needs for `target`.
 *
 * @param operation The row of {@linkcode permissionTable}.
 * @param target The path, pid, device or name the operation touches.
 * @returns Flags such as `["--allow-ffi", "--allow-read=/proc/self/maps"]`.
 *
 * @example
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
