/**
 * memkit: typed, permission-gated access to Linux memory machinery for Deno.
 *
 * - {@linkcode MemFd} and {@linkcode Mapping}: the same memory at several
 *   addresses, with zero-copy views that can never crash the process;
 * - {@linkcode mapAnonymous}: shared memory with no second address and no
 *   descriptor, two system calls a cycle;
 * - {@linkcode alias} and {@linkcode stitch}: second addresses for shared
 *   memory, and chunks of memfds and mappings side by side in one contiguous
 *   view, zero-copy;
 * - {@linkcode RingBuffer}: a ring mapped twice, so every region is one view;
 * - {@linkcode protect}, {@linkcode guarded}, {@linkcode protectionAt} and
 *   {@linkcode Pkey}: page protections, guard pages, any address's
 *   protection, and protection keys;
 * - {@linkcode lock} and {@linkcode advise}: pinning pages in memory
 *   (`mlock2`) and advice to the kernel (`madvise`: populate, drop, guard);
 * - {@linkcode mapFile}: regular files, gated on `--allow-read`/`--allow-write`;
 * - {@linkcode readMaps}, {@linkcode readSmaps}, {@linkcode findMapping},
 *   {@linkcode Pagemap}, {@linkcode readKPageFlags}: a process's mappings, its
 *   pages' state and physical addresses, gated on `--allow-read` for the
 *   `/proc` file read;
 * - {@linkcode SharedMemory}: POSIX shared memory (`/dev/shm`), reserved at
 *   creation, gated on `--allow-read`/`--allow-write` for `/dev/shm/<name>`;
 * - {@linkcode FdListener}, {@linkcode FdConnection} and {@linkcode Channel}:
 *   memfds passed to another process over a Unix socket, their seals checked
 *   before anything is mapped, and a zero-copy channel over one;
 * - {@linkcode SharedMutex} and {@linkcode SeqLock}: locks inside memory
 *   shared between processes, which survive a holder killed with SIGKILL;
 * - {@linkcode LazyView.create}, {@linkcode lazyAlias} and
 *   {@linkcode probeUserfaultfd}: lazy copies of memory memkit does not
 *   control, and memfd aliases whose pages appear as they are touched,
 *   served by a native `userfaultfd` handler thread;
 * - {@linkcode PhysicalMemory}, {@linkcode physicalRanges}, {@linkcode readSmbios}:
 *   physical memory through `/dev/mem`, with exact-width accesses and errors
 *   that name the kernel rule that refused;
 * - {@linkcode mapDevice}, {@linkcode KernelPage} and {@linkcode KernelChannel}:
 *   character devices and debugfs/sysfs files mapped through the same views,
 *   and memory shared with a kernel driver (a read-only record under a
 *   sequence counter, a request page with a lock word both sides follow);
 * - {@linkcode MemkitError}, {@linkcode pageSize}, {@linkcode libraryPath}
 *   and {@linkcode permissionTable}: errors that carry the errno by name, the
 *   page size, the native library loaded, and what each operation needs,
 *   enforced before any native call;
 * - {@linkcode doctor}: what this machine, kernel, user and these flags let
 *   memkit do, one capability at a time, with why and the fix.
 *
 * Requires `--allow-ffi`; read-only views need
 * `--v8-flags=--js-immutable-arraybuffer`.
 *
 * Addresses are bigints, sizes and offsets in bytes numbers, counts of pages
 * `pages`: one rule per kind of quantity, in the README's
 * [Units and types](https://jsr.io/@memkit/memkit#units-and-types).
 *
 * @example Map one memfd twice
 * ```ts
 * import { MemFd } from "@memkit/memkit";
 * import { assertEquals } from "@std/assert";
 *
 * using fd = MemFd.create("mod", { size: 4096 });
 * using rw = fd.map({ access: "rw" });
 * using ro = fd.map({ access: "r" });
 * rw.bytes().set([1, 2, 3]);
 * assertEquals([...ro.bytes(0, 3)], [1, 2, 3]);
 * ```
 *
 * @module
 */

export { type MapOptions, MemFd, type MemFdOptions, type Seal } from "./src/memfd.ts";
export {
  type Access,
  Mapping,
  readOnlyViewsSupported,
  type TypedArrayConstructor,
} from "./src/mapping.ts";
export { type AnonymousOptions, mapAnonymous } from "./src/anonymous.ts";
export { alias, type Chunk, stitch, type StitchOptions } from "./src/stitch.ts";
export { RingBuffer, type RingBufferOptions } from "./src/ring.ts";
export {
  guarded,
  type GuardedOptions,
  type MappingRange,
  protect,
  type Protection,
  protectionAt,
} from "./src/protect.ts";
// Deprecated alias (renamed: no two exports differ only by case), removed in 1.0.0.
export { protection } from "./src/protect.ts";
export {
  type Advice,
  adviceSupported,
  advise,
  compactMemory,
  lock,
  type LockOptions,
  unlock,
} from "./src/advise.ts";
export { Pkey } from "./src/pkey.ts";
export { mapFile, type MapFileOptions } from "./src/file.ts";
export {
  findMapping,
  type FindMappingOptions,
  type MappingKind,
  type MapsEntry,
  type ProcessId,
  readMaps,
  readSmaps,
  readSmapsRollup,
  type SmapsCounters,
  type SmapsEntry,
  type SmapsRollup,
} from "./src/maps.ts";
export {
  type AddressRange,
  PageBits,
  type PageCategory,
  Pagemap,
  PagemapPages,
  type ReadOptions,
  type ScanOptions,
  type ScanRegion,
} from "./src/pagemap.ts";
export {
  KPAGE_FLAG_NAMES,
  type KPageFlagName,
  KPageFlagTable,
  readKPageCounts,
  readKPageFlags,
} from "./src/kpageflags.ts";
// Deprecated aliases (renamed: no two exports differ only by case), removed in 1.0.0.
export {
  KPAGE_FLAGS,
  kpagecount,
  type KPageFlag,
  KPageFlags,
  kpageflags,
} from "./src/kpageflags.ts";
export {
  SharedMemory,
  type SharedMemoryCreateOptions,
  type SharedMemoryInfo,
  type SharedMemoryListing,
  type SharedMemoryMapOptions,
  type SharedMemoryMapper,
  type SharedMemoryOpenOptions,
} from "./src/shm.ts";
export {
  type AcceptOptions,
  FdConnection,
  FdListener,
  FdRefusedError,
  type Received,
  type ReceiveOptions,
  type ReceiveWaitOptions,
  type RefusalReason,
  type SendOptions,
} from "./src/fd_socket.ts";
export {
  type AttachOptions,
  Channel,
  ChannelError,
  type ChannelErrorReason,
  type ChannelOptions,
  type ChannelPeer,
  type ChannelWaitOptions,
} from "./src/channel.ts";
export {
  SharedMutex,
  type SharedMutexAsyncOptions,
  type SharedMutexLockOptions,
  type SharedMutexOwner,
  type SharedMutexResult,
} from "./src/mutex.ts";
export { SeqLock, type SeqLockReadOptions } from "./src/seqlock.ts";
export {
  type DirtyRange,
  lazyAlias,
  type LazyAliasOptions,
  type LazyRange,
  type LazySource,
  LazyView,
  type LazyViewOptions,
  type LazyViewStats,
  probeUserfaultfd,
  trackWrites,
  type TrackWritesOptions,
  type UserfaultfdFeatures,
  type UserfaultfdVia,
  WriteTracker,
  type WriteTrackingMode,
} from "./src/uffd.ts";
// Deprecated aliases (renamed: no two exports differ only by case), removed in 1.0.0.
export { lazyView, userfaultfdFeatures } from "./src/uffd.ts";
export {
  MAX_PHYS_ADDRESS,
  type PhysCache,
  PhysicalMemory,
  type PhysicalMemoryOptions,
  type PhysMapOptions,
  readSmbios,
} from "./src/phys.ts";
// Deprecated alias (renamed: no two exports differ only by case), removed in 1.0.0.
export { smbios } from "./src/phys.ts";
export { type PhysicalRange, physicalRanges } from "./src/iomem.ts";
export {
  decodeSmbios,
  decodeSmbiosTable,
  findSmbiosEntryPoint,
  parseSmbiosEntryPoint,
  type Smbios,
  type SmbiosBios,
  type SmbiosEntryPoint,
  type SmbiosStructure,
  type SmbiosSystem,
  smbiosUuid,
} from "./src/smbios.ts";
export { mapDevice, type MapDeviceOptions } from "./src/device.ts";
export {
  checkKernelPages,
  KERNEL_SHARED_PATH,
  type KernelAnswer,
  KernelChannel,
  type KernelLockState,
  type KernelOp,
  KernelPage,
  type KernelPageLayout,
  type KernelPageStats,
  type KernelReadReport,
  type KernelRecord,
  kernelRecordChecksum,
  type KernelRequestOptions,
} from "./src/kshared.ts";
export { MemkitError, type MemkitErrorOptions } from "./ffi/errors.ts";
export { libraryCandidates, libraryPath, pageSize } from "./ffi/loader.ts";
export {
  type Operation,
  permissionFlags,
  type PermissionNeed,
  type PermissionRule,
  permissionTable,
  requirePermissions,
} from "./src/permissions.ts";
export {
  doctor,
  DOCTOR_CHECKS,
  type DoctorCheckId,
  doctorCheckIds,
  type DoctorDetail,
  type DoctorOptions,
  doctorPermissions,
  type DoctorResult,
} from "./src/doctor.ts";
