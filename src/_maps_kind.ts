// What a maps line's path names, shared by src/maps.ts and the table of
// `memkit maps` (src/_smaps_rows.ts).

import type { MappingKind } from "./maps.ts";

/**
 * What a mapping's path names: its kind and, for a memfd, a named anonymous
 * mapping or a shm segment, the name inside the path (as the Rust procfs
 * crate's `MMapPath` variants carry theirs).
 */
export interface PathKind {
  readonly kind: MappingKind;
  readonly name?: string;
}

/** The variants that carry no name, made once. */
const KINDS: { readonly [K in MappingKind]: PathKind } = {
  file: { kind: "file" },
  deleted: { kind: "deleted" },
  anonymous: { kind: "anonymous" },
  heap: { kind: "heap" },
  stack: { kind: "stack" },
  vdso: { kind: "vdso" },
  vvar: { kind: "vvar" },
  vsyscall: { kind: "vsyscall" },
  memfd: { kind: "memfd" },
  shm: { kind: "shm" },
  other: { kind: "other" },
};

export function kindOf(path: string, inode: number, deleted: boolean): PathKind {
  if (path === "") return KINDS.anonymous;
  const c = path.charCodeAt(0);
  if (c === 0x5b /* [ */) {
    switch (path) {
      case "[heap]":
        return KINDS.heap;
      case "[stack]":
        return KINDS.stack;
      case "[vdso]":
        return KINDS.vdso;
      case "[vvar]":
      case "[vvar_vclock]":
        return KINDS.vvar;
      case "[vsyscall]":
        return KINDS.vsyscall;
    }
    if (path.startsWith("[stack:")) return KINDS.stack;
    if (path.startsWith("[anon:")) return { kind: "anonymous", name: path.slice(6, -1) };
    if (path.startsWith("[anon_shmem:")) return { kind: "anonymous", name: path.slice(12, -1) };
    return KINDS.other;
  }
  if (c !== 0x2f /* / */) return KINDS.other;
  if (path.startsWith("/memfd:")) return { kind: "memfd", name: path.slice(7) };
  if (path.startsWith("/SYSV") && path.length === 13) return { kind: "shm", name: path.slice(5) };
  if (path.startsWith("/dev/shm/")) return { kind: "shm", name: path.slice(9) };
  if (path === "/dev/zero" && deleted && inode !== 0) return KINDS.anonymous;
  return deleted ? KINDS.deleted : KINDS.file;
}

export const DELETED = " (deleted)";

/** The 16 permission strings, by r=8 w=4 x=2 s=1. */
export const PERMS: readonly string[] = Array.from(
  { length: 16 },
  (_, i) => `${i & 8 ? "r" : "-"}${i & 4 ? "w" : "-"}${i & 2 ? "x" : "-"}${i & 1 ? "s" : "p"}`,
);
