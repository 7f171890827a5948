/*
 * memkit.h: the whole native ABI of memkit.
 *
 * Conventions (see ../shared/DESIGN.md, "The native ABI"):
 * - every function returns int64_t: >= 0 is the result, < 0 is -errno;
 *   nothing relies on the global errno after return;
 * - names are mk_<capability>_<verb>;
 * - addresses and sizes cross the boundary as uint64_t (a bigint in Deno),
 *   strings as NUL-terminated byte buffers;
 * - functions that may block are marked MK_NONBLOCKING, which ffi/bindgen.ts
 *   turns into `nonblocking: true`.
 *
 * ffi/symbols.ts is generated from the prototypes below by ffi/bindgen.ts:
 * keep one prototype per line group, each starting with MK_API.
 */
#ifndef MEMKIT_H
#define MEMKIT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MK_API __attribute__((visibility("default")))
#define MK_NONBLOCKING

/* The ABI version; bumped whenever a prototype below changes meaning. */
#define MK_ABI_VERSION 2

/* Protection bits for mk_map_* (the PROT_* values of Linux). */
#define MK_PROT_NONE 0
#define MK_PROT_READ 1
#define MK_PROT_WRITE 2
#define MK_PROT_EXEC 4

/* Flags for mk_memfd_create. */
#define MK_MEMFD_SEALABLE 1u /* MFD_ALLOW_SEALING */
#define MK_MEMFD_NOEXEC 2u   /* MFD_NOEXEC_SEAL where the kernel has it */

/* Seal bits for mk_memfd_seal and mk_memfd_seals (the F_SEAL_* values). */
#define MK_SEAL_SEAL 0x01u
#define MK_SEAL_SHRINK 0x02u
#define MK_SEAL_GROW 0x04u
#define MK_SEAL_WRITE 0x08u
#define MK_SEAL_FUTURE_WRITE 0x10u
#define MK_SEAL_EXEC 0x20u

/* The first word of an address-kind chunk for mk_map_stitch. */
#define MK_STITCH_ADDRESS 0xffffffffffffffffull

/* Rights for mk_pkey_* (the PKEY_DISABLE_* values). */
#define MK_PKEY_DISABLE_ACCESS 1u
#define MK_PKEY_DISABLE_WRITE 2u

/* Flags for mk_file_open. */
#define MK_FILE_WRITE 1u

/* Flags for mk_phys_open. */
#define MK_PHYS_WRITE 1u    /* O_RDWR instead of O_RDONLY */
#define MK_PHYS_UNCACHED 2u /* O_SYNC: mappings are uncached (UC-) */

/* ---- core ---------------------------------------------------------- */

/* MK_ABI_VERSION of the built library. */
MK_API int64_t mk_core_abi_version(void);
/* The page size of this machine, in bytes. */
MK_API int64_t mk_core_page_size(void);
/* Closes a file descriptor that memkit opened. */
MK_API int64_t mk_core_close(int32_t fd);
/* The size in bytes of an open file (fstat st_size). */
MK_API int64_t mk_core_fd_size(int32_t fd);

/* ---- memfd --------------------------------------------------------- */

/* memfd_create(name, MFD_CLOEXEC | flags); returns the descriptor.
 * With MK_MEMFD_NOEXEC, returns -EINVAL if the kernel lacks
 * MFD_NOEXEC_SEAL (Linux < 6.3). */
MK_API int64_t mk_memfd_create(const char *name, uint32_t flags);
/* ftruncate(fd, size), refused with -EBUSY when it would shrink the file
 * under a mapping of this process: any mapping of the file (made by memkit
 * or not: a second copy of it, a Worker, a map of /proc/self/fd/N) whose
 * file range ends past size rounded up to a page, where touching it would
 * raise SIGBUS. busy (3 uint64_t, or NULL) then receives that mapping's
 * start, end and how far into the file it reaches. The kernel is asked
 * (PROCMAP_QUERY on /proc/self/maps, Linux 6.11+; else /proc/self/maps is
 * parsed): this process's own map only, read for safety, not on anyone's
 * behalf. Not covered: a thread that maps the file between the check and
 * ftruncate, and other processes' mappings (seal against shrinking). */
MK_API int64_t mk_memfd_resize(int32_t fd, uint64_t size, uint64_t *busy);
/* fcntl(fd, F_ADD_SEALS, seals). */
MK_API int64_t mk_memfd_seal(int32_t fd, uint32_t seals);
/* fcntl(fd, F_GET_SEALS): the current seal bits. */
MK_API int64_t mk_memfd_seals(int32_t fd);
/* Whether the kernel knows MFD_NOEXEC_SEAL: 1 or 0. */
MK_API int64_t mk_memfd_noexec_supported(void);

/* ---- file ---------------------------------------------------------- */

/* Looks an absolute path up with O_PATH (nothing is opened: no driver's
 * open runs, nothing is read) and writes the path the kernel resolved it to
 * (symlinks followed; readlink of /proc/self/fd/N, this process's own
 * descriptor) into resolved, NUL-terminated, at most cap bytes. Returns the
 * O_PATH descriptor, which mk_file_open and mk_phys_open take to check that
 * they opened that same file; the caller closes it. -EINVAL for a relative
 * path, -ENAMETOOLONG when the resolved path does not fit. The caller
 * (src/permissions.ts) checks the permission for path before, and for the
 * resolved path after. */
MK_API int64_t mk_file_path_open(const char *path, uint8_t *resolved, uint64_t cap);
/* Opens a regular file for mapping (O_CLOEXEC, read-only or with
 * MK_FILE_WRITE read-write); returns the descriptor. path is the absolute
 * path the caller checked and looked up with mk_file_path_open (pathfd):
 * -ENODEV when that is not a regular file (checked before opening),
 * -ESTALE when the path names another file by the time it is opened.
 * Permission to touch the path is checked by the caller (src/permissions.ts)
 * before this is called. */
MK_API int64_t mk_file_open(const char *path, uint32_t flags, int32_t pathfd);
/* Reserves the blocks of [offset, offset + length) of a file opened for
 * writing (fallocate FALLOC_FL_KEEP_SIZE), so that a store into a hole of a
 * writable mapping cannot raise SIGBUS on a full filesystem: -ENOSPC up
 * front instead. Where the filesystem cannot reserve (-EOPNOTSUPP), returns
 * 0 when the window has no hole (SEEK_HOLE), else -EOPNOTSUPP. */
MK_API int64_t mk_file_reserve(int32_t fd, uint64_t offset, uint64_t length);

/* ---- map ----------------------------------------------------------- */

/* mmap(NULL, length, prot, MAP_SHARED, fd, offset); returns the address. */
MK_API int64_t mk_map_fd(int32_t fd, uint64_t offset, uint64_t length,
                         uint32_t prot);
/* munmap(address, length). */
MK_API int64_t mk_map_unmap(uint64_t address, uint64_t length);
/* mprotect(address, length, prot). */
MK_API int64_t mk_map_protect(uint64_t address, uint64_t length,
                              uint32_t prot);
/* Replaces [address, address + length) in place with an anonymous private
 * read-only zero mapping (MAP_FIXED): the old pages are released at once,
 * and anything still pointing there reads zeros. */
MK_API int64_t mk_map_placeholder(uint64_t address, uint64_t length);
/* Replaces [address, address + length) in place with anonymous private
 * read-write zero pages (MAP_FIXED): for a range that JavaScript may still
 * write through but memkit can no longer detach; the source's pages are
 * released, and the range stays mapped for the life of the process. */
MK_API int64_t mk_map_scrub(uint64_t address, uint64_t length);
/* Moves a mapping away from addresses that native code may still hold
 * (a Deno op reading into a view that JavaScript can no longer reach):
 * reserves `span` bytes elsewhere (PROT_NONE, private), places in it a second
 * mapping of the same shared memory for each of the `count` runs (two words
 * each: offset from `address` and length, page multiples; mremap(old_size 0),
 * so each run must be one window of one shared source and takes the
 * protection of its first page), then replaces [address, address + span) in
 * place with private read-write zero pages (MAP_FIXED, MAP_NORESERVE), so the
 * old range stays taken and whatever still writes there touches only those.
 * At least one run. Returns the new address; on failure nothing has changed. */
MK_API int64_t mk_map_relocate(uint64_t address, uint64_t span, const uint64_t *runs,
                               uint32_t count);

/* ---- stitch ------------------------------------------------------- */

/* Maps `count` chunks side by side into one new range, zero-copy: reserves
 * the whole length PROT_NONE, then places each chunk inside it with
 * MAP_FIXED | MAP_SHARED, merging neighbours that continue each other in the
 * same descriptor into one mmap. `chunks` holds three words per chunk:
 *   { fd, offset, length }            a window of a descriptor, or
 *   { MK_STITCH_ADDRESS, address, length }
 *                                     shared memory this process has mapped
 *                                     (placed with mremap(old_size 0), which
 *                                     maps `length` bytes of the source from
 *                                     that address's offset: the range must
 *                                     be one window of one source; such
 *                                     chunks are never merged);
 * offsets, addresses and lengths are page multiples. The result gets `prot`.
 * `report` (3 words) receives: [0] the index of the chunk that failed (count
 * when none did), [1] the number of mappings the request needs, [2] how many
 * were placed. On failure everything placed is unmapped again. Returns the
 * start address. */
MK_API int64_t mk_map_stitch(const uint64_t *chunks, uint32_t count, uint32_t prot,
                             uint64_t *report);
/* A shared anonymous mapping of `length` bytes with `guard` bytes of
 * PROT_NONE on each side; returns the address of the usable part. Unmap it
 * with mk_map_unmap(address - guard, length + 2 * guard). */
MK_API int64_t mk_map_guarded(uint64_t length, uint64_t guard, uint32_t prot);
/* Maps [0, size) of fd twice, back to back, read-write: a ring whose every
 * region is contiguous. Returns the start of the 2 * size range. */
MK_API int64_t mk_ring_map(int32_t fd, uint64_t size);
/* The vm.max_map_count limit (read from /proc/sys/vm/max_map_count; the
 * caller checks the permission to read it). */
MK_API int64_t mk_map_max_count(void);

/* ---- pkey ---------------------------------------------------------- */

/* pkey_alloc(0, rights): a new protection key, or -EINVAL/-ENOSPC/-ENOSYS
 * where the CPU or kernel has none left or none at all. */
MK_API int64_t mk_pkey_alloc(uint32_t rights);
/* pkey_free(key). */
MK_API int64_t mk_pkey_free(int32_t key);
/* pkey_mprotect(address, length, prot, key). */
MK_API int64_t mk_pkey_mprotect(uint64_t address, uint64_t length, uint32_t prot,
                                int32_t key);
/* Sets the calling thread's rights for key 1-15 (PKRU; key 0, which tags all
 * other memory, is refused); -ENOSYS without OSPKE. */
MK_API int64_t mk_pkey_set(int32_t key, uint32_t rights);
/* The calling thread's rights for key; -ENOSYS without OSPKE. */
MK_API int64_t mk_pkey_get(int32_t key);

/* ---- advise (pinning and advice) ---------------------------------- */

/* Flags for mk_advise_lock. */
#define MK_LOCK_ONFAULT 1u /* MLOCK_ONFAULT: lock pages as they fault in, do not prefault */

/* Advice for mk_advise_range: the MADV_* values of Linux, defined here
 * because the system headers may be older than the kernel. */
#define MK_MADV_NORMAL 0u
#define MK_MADV_RANDOM 1u
#define MK_MADV_SEQUENTIAL 2u
#define MK_MADV_WILLNEED 3u
#define MK_MADV_DONTNEED 4u
#define MK_MADV_FREE 8u            /* private anonymous memory only */
#define MK_MADV_REMOVE 9u          /* punches a hole in the backing file */
#define MK_MADV_HUGEPAGE 14u
#define MK_MADV_NOHUGEPAGE 15u
#define MK_MADV_COLD 20u           /* Linux 5.4 */
#define MK_MADV_PAGEOUT 21u        /* Linux 5.4 */
#define MK_MADV_POPULATE_READ 22u  /* Linux 5.14 */
#define MK_MADV_POPULATE_WRITE 23u /* Linux 5.14 */
#define MK_MADV_GUARD_INSTALL 102u /* Linux 6.13 (6.15 for shared and file memory) */
#define MK_MADV_GUARD_REMOVE 103u  /* Linux 6.13 (6.15 for shared and file memory) */

/* Bits of mk_advise_probe's result: where the kernel accepts the advice. */
#define MK_PROBE_PRIVATE 1u /* on private anonymous memory */
#define MK_PROBE_SHARED 2u  /* on shared memory (a memfd's, shmem) */

/* mlock2(address, length, flags): flags 0 or MK_LOCK_ONFAULT. -ENOMEM or
 * -EPERM (limit 0) when RLIMIT_MEMLOCK refuses, -EAGAIN when some pages
 * could not be locked. */
MK_API int64_t mk_advise_lock(uint64_t address, uint64_t length, uint32_t flags);
/* munlock(address, length). */
MK_API int64_t mk_advise_unlock(uint64_t address, uint64_t length);
/* madvise(address, length, advice) for one of the MK_MADV_* values above
 * (-EINVAL for any other). */
MK_API int64_t mk_advise_range(uint64_t address, uint64_t length, uint32_t advice);
/* Whether the kernel knows an MK_MADV_* advice: tries it on a throwaway page
 * of private anonymous and one of shared anonymous memory; returns the
 * MK_PROBE_* bits of those that accepted it (0: the kernel lacks it). */
MK_API int64_t mk_advise_probe(uint32_t advice);
/* getrlimit(RLIMIT_MEMLOCK): out receives 2 uint64_t, the soft and the hard
 * limit in bytes (UINT64_MAX for unlimited). */
MK_API int64_t mk_advise_memlock_limit(uint64_t *out);
/* Writes "1" to /proc/sys/vm/compact_memory (the path is fixed): the kernel
 * compacts every zone before the write returns. Root only; the caller checks
 * the permission to write it. */
MK_API int64_t mk_advise_compact(void);

/* ---- proc / pagemap / kpage (introspection) ------------------------ */

/* Which file of /proc/<pid> mk_proc_read reads. */
#define MK_PROC_MAPS 0u
#define MK_PROC_SMAPS 1u
#define MK_PROC_SMAPS_ROLLUP 2u

/* Bits of the per-page flags byte that mk_pagemap_read writes. */
#define MK_PM_PRESENT 0x01u
#define MK_PM_SWAPPED 0x02u
#define MK_PM_FILE 0x04u      /* file page or shared anonymous (bit 61) */
#define MK_PM_EXCLUSIVE 0x08u /* exclusively mapped (bit 56) */
#define MK_PM_SOFT_DIRTY 0x10u
#define MK_PM_UFFD_WP 0x20u
#define MK_PM_GUARD 0x40u

/* PAGEMAP_SCAN categories (the PAGE_IS_* values of linux/fs.h). */
#define MK_PAGE_IS_WPALLOWED 0x01u
#define MK_PAGE_IS_WRITTEN 0x02u
#define MK_PAGE_IS_FILE 0x04u
#define MK_PAGE_IS_PRESENT 0x08u
#define MK_PAGE_IS_SWAPPED 0x10u
#define MK_PAGE_IS_PFNZERO 0x20u
#define MK_PAGE_IS_HUGE 0x40u
#define MK_PAGE_IS_SOFT_DIRTY 0x80u
#define MK_PAGE_IS_GUARD 0x100u

/* Flags for mk_pagemap_scan. */
#define MK_SCAN_FALLBACK 1u /* read pagemap entries even where the ioctl exists */

/* Which file mk_kpage_read reads. */
#define MK_KPAGE_FLAGS 0u
#define MK_KPAGE_COUNT 1u

/* Reads the whole of /proc/<pid>/{maps,smaps,smaps_rollup} (`which`, an
 * MK_PROC_* value; pid 0 means /proc/self) into buf. Returns the file's
 * length; when that exceeds cap, only cap bytes were stored and the caller
 * retries with a larger buffer. -ENOENT when the process does not exist. */
MK_API int64_t mk_proc_read(int32_t pid, uint32_t which, uint8_t *buf, uint64_t cap);
/* PROCMAP_QUERY (Linux 6.11+) on /proc/<pid>/maps (pid 0: self): the
 * mapping that covers address (or, with flags 0x10, the next one). out
 * receives 9 uint64_t: start, end, vm flags (1 r, 2 w, 4 x, 8 shared),
 * page size, offset, inode, dev major, dev minor, name length; the name
 * goes to name (NUL-terminated, at most name_cap bytes). -ENOENT when no
 * mapping matches, -ESRCH when the process does not exist or has exited,
 * -ENOTTY where the kernel lacks the ioctl. */
MK_API int64_t mk_proc_query(int32_t pid, uint64_t address, uint32_t flags, void *out,
                             uint8_t *name, uint32_t name_cap);
/* Whether this process has CAP_SYS_ADMIN in its effective set: 1 or 0.
 * Without it the kernel shows PFN 0 in pagemap. */
MK_API int64_t mk_proc_cap_sys_admin(void);
/* Opens /proc/<pid>/pagemap (pid 0: /proc/self) read-only; the descriptor. */
MK_API int64_t mk_pagemap_open(int32_t pid);
/* Reads the pagemap entries of `pages` pages from vaddr with one pread and
 * decodes them into columns: raw (uint64_t[pages]), frame (double[pages]:
 * the PFN of a present page, the swap offset of a swapped one, else 0),
 * flags (uint8_t[pages], MK_PM_* bits; a guard region's marker is
 * MK_PM_GUARD, not MK_PM_SWAPPED). summary receives 3 uint64_t:
 * present pages, swapped pages, present pages whose PFN reads 0. Returns
 * the pages read: fewer than asked at the end of the address space, 0 when
 * the process has exited. */
MK_API int64_t mk_pagemap_read(int32_t fd, uint64_t vaddr, uint64_t pages, void *raw,
                               void *frame, uint8_t *flags, void *summary);
/* PAGEMAP_SCAN (Linux 6.7+) of [start, end) on a pagemap descriptor. masks
 * holds 4 uint64_t: category_mask, category_inverted, category_anyof_mask,
 * return_mask. Writes up to vec_len regions (3 uint64_t each: start, end,
 * categories) to vec and the address the walk stopped at to *walk_end
 * (1 uint64_t). Returns the regions written. The part of the range above
 * the top of user space is not scanned (it holds no mappings). With
 * MK_SCAN_FALLBACK, or where the kernel lacks the ioctl, computes the same
 * from pagemap entries
 * (no PFNZERO, HUGE or WPALLOWED: asking for them is -EOPNOTSUPP; pages
 * outside any mapping read as empty and are reported too). */
MK_API int64_t mk_pagemap_scan(int32_t fd, uint64_t start, uint64_t end, const void *masks,
                               uint32_t flags, void *vec, uint64_t vec_len, void *walk_end);
/* Reads /proc/kpageflags or /proc/kpagecount (`which`, MK_KPAGE_*) at each
 * of n PFNs (uint64_t[n]) into out (uint64_t[n]); runs of consecutive PFNs
 * are one pread. Returns n. */
MK_API int64_t mk_kpage_read(uint32_t which, const void *pfns, uint64_t n, void *out);
/* ---- phys ---------------------------------------------------------- */

/* Opens a physical memory device (a character device: /dev/mem, or another
 * the caller names) with O_CLOEXEC, read-only or with MK_PHYS_WRITE
 * read-write, and with MK_PHYS_UNCACHED O_SYNC; returns the descriptor.
 * path is the absolute path the caller checked and looked up with
 * mk_file_path_open (pathfd). -ENODEV when it is not a character device
 * (checked before opening and on what was opened), -EROFS for MK_PHYS_WRITE
 * on a major-1 device other than /dev/mem (a writable /dev/zero mapping
 * faults past its size), -ESTALE when the path names another file by the
 * time it is opened. Permission to touch the path is checked by the caller
 * (src/permissions.ts) before this is called. */
MK_API int64_t mk_phys_open(const char *path, uint32_t flags, int32_t pathfd);
/* Copies length bytes at physical address into buf (pread, as dmidecode's
 * fallback does); returns the bytes copied, which is short when the device
 * refuses a page after the first, or -errno when it refuses the first. */
MK_API int64_t mk_phys_read(int32_t fd, uint64_t address, uint8_t *buf,
                            uint64_t length);
/* Maps the page holding address, does one load of exactly width bytes (1, 2,
 * 4 or 8; address a multiple of width) and unmaps it; stores the value in
 * value[0..8) in host byte order. -EINVAL for a bad width or alignment. */
MK_API int64_t mk_phys_peek(int32_t fd, uint64_t address, uint32_t width,
                            uint8_t *value);
/* Maps the page holding address read-write, does one store of exactly width
 * bytes of value, and unmaps it. */
MK_API int64_t mk_phys_poke(int32_t fd, uint64_t address, uint32_t width,
                            uint64_t value);
/* One load of exactly width bytes at a virtual address inside a live memkit
 * mapping; stores the value in value[0..8) in host byte order. */
MK_API int64_t mk_phys_load(uint64_t address, uint32_t width, uint8_t *value);
/* One store of exactly width bytes at a virtual address inside a live
 * writable memkit mapping. */
MK_API int64_t mk_phys_store(uint64_t address, uint32_t width, uint64_t value);
/* Reads /proc/iomem (the path is fixed) into buf; returns its size, or
 * -ERANGE when it does not fit in capacity bytes. */
MK_API int64_t mk_phys_iomem(uint8_t *buf, uint64_t capacity);
/* Reads /sys/kernel/security/lockdown (the path is fixed) into buf; returns
 * its size, or -ERANGE when it does not fit in capacity bytes. */
MK_API int64_t mk_phys_lockdown(uint8_t *buf, uint64_t capacity);

/* ---- shm (POSIX shared memory) ----------------------------------- */

/* Flags for mk_shm_open. */
#define MK_SHM_WRITE 1u     /* O_RDWR instead of O_RDONLY */
#define MK_SHM_CREATE 2u    /* create it when missing (O_CREAT); needs MK_SHM_WRITE */
#define MK_SHM_EXCLUSIVE 4u /* with MK_SHM_CREATE: -EEXIST when it exists (O_EXCL) */

/* Opens the POSIX shared memory segment `name` (without its leading slash:
 * not empty, no slash, at most NAME_MAX bytes, not "." or "..", else -EINVAL
 * or -ENAMETOOLONG) as glibc's shm_open does, at /dev/shm/<name>, with
 * O_NOFOLLOW, O_CLOEXEC and O_NONBLOCK; -ENODEV when that is not a regular
 * file. With MK_SHM_CREATE, `mode` (less the umask) for a new segment, and
 * [0, size) is reserved with fallocate (mode 0: blocks allocated, the size
 * grown to `size`, never shrunk), so a full tmpfs is -ENOSPC here, not
 * SIGBUS later; a segment this call created and could not reserve is
 * unlinked again. Returns the descriptor. */
MK_API int64_t mk_shm_open(const char *name, uint32_t flags, uint32_t mode, uint64_t size);
/* unlink(/dev/shm/<name>), the name checked as for mk_shm_open. */
MK_API int64_t mk_shm_unlink(const char *name);
/* lstat of /dev/shm/<name> (name not NULL) or fstat of fd (name NULL). out
 * receives 9 uint64_t: size, allocated bytes (st_blocks * 512), st_mode,
 * uid, gid, inode, device major, device minor, mtime in milliseconds. */
MK_API int64_t mk_shm_stat(const char *name, int32_t fd, uint64_t *out);
/* The entry names of /dev/shm ("." and ".." left out), each NUL-terminated,
 * into buf; returns the bytes they all need (when more than cap, only what
 * fit was stored: retry with a larger buffer). */
MK_API int64_t mk_shm_list(uint8_t *buf, uint64_t cap);
/* The pids of /proc (its numeric entries), as mk_shm_list stores names. */
MK_API int64_t mk_shm_pids(uint8_t *buf, uint64_t cap);
/* pread of length bytes at offset of fd into buf, retried on short reads:
 * a copy that cannot fault, even when the segment was shrunk under a
 * mapping. Returns the bytes read (fewer past the end). */
MK_API int64_t mk_shm_read(int32_t fd, uint64_t offset, uint8_t *buf, uint64_t length);
/* pwrite of length bytes of buf at offset of fd, never past the end (the
 * size as fstat reads it: a write there would grow the segment). Returns
 * the bytes written (fewer past the end). */
MK_API int64_t mk_shm_write(int32_t fd, uint64_t offset, const uint8_t *buf, uint64_t length);
/* Sets the size of fd: growing reserves the new blocks (fallocate), shrinking
 * is mk_memfd_resize (refused with -EBUSY under a mapping of this process;
 * busy as there). */
MK_API int64_t mk_shm_resize(int32_t fd, uint64_t size, uint64_t *busy);

/* ---- uffd (userfaultfd lazy views) --------------------------------- */

/* How a userfaultfd was opened (MK_UFFD_PROBE_VIA, MK_UFFD_CREATE_VIA). */
#define MK_UFFD_NONE 0
#define MK_UFFD_SYSCALL 1   /* userfaultfd(2): faults from user and kernel mode */
#define MK_UFFD_DEVICE 2    /* /dev/userfaultfd, USERFAULTFD_IOC_NEW: both modes */
#define MK_UFFD_USER_ONLY 3 /* userfaultfd(UFFD_USER_MODE_ONLY): user-mode faults only */
/* Flags for mk_uffd_create: refuse a user-mode-only descriptor. */
#define MK_UFFD_KERNEL_FAULTS 1u
/* A chunk's source address for mk_uffd_create that stands for zeros (a hole). */
#define MK_UFFD_HOLE 0xffffffffffffffffull
/* The words mk_uffd_probe fills: the way that worked, the features and
 * ioctls UFFDIO_API answered, each refused way's errno (positive, 0 when it
 * worked or was not tried), and /dev/userfaultfd's st_mode, uid and gid. */
#define MK_UFFD_PROBE_WORDS 9
#define MK_UFFD_PROBE_VIA 0
#define MK_UFFD_PROBE_FEATURES 1
#define MK_UFFD_PROBE_IOCTLS 2
#define MK_UFFD_PROBE_SYSCALL_ERR 3
#define MK_UFFD_PROBE_DEVICE_ERR 4
#define MK_UFFD_PROBE_USER_ERR 5
#define MK_UFFD_PROBE_DEVICE_MODE 6
#define MK_UFFD_PROBE_DEVICE_UID 7
#define MK_UFFD_PROBE_DEVICE_GID 8
/* The words mk_uffd_create fills: the view's address, the way the
 * descriptor was opened, and each refused way's errno as above. */
#define MK_UFFD_CREATE_WORDS 5
#define MK_UFFD_CREATE_ADDRESS 0
#define MK_UFFD_CREATE_VIA 1
#define MK_UFFD_CREATE_SYSCALL_ERR 2
#define MK_UFFD_CREATE_DEVICE_ERR 3
#define MK_UFFD_CREATE_USER_ERR 4
/* The counters of a handler (mk_uffd_stats, mk_uffd_stop): faults served,
 * pages copied (UFFDIO_COPY, prefetches included), pages zeroed
 * (UFFDIO_ZEROPAGE), source reads that failed (their pages got zeros; for
 * an alias, UFFDIO_CONTINUE refusals), the last such errno, pages copied by
 * mk_uffd_prefetch, and pages mapped by UFFDIO_CONTINUE (an alias). */
#define MK_UFFD_STATS_WORDS 7
#define MK_UFFD_STAT_FAULTS 0
#define MK_UFFD_STAT_COPIED 1
#define MK_UFFD_STAT_ZEROED 2
#define MK_UFFD_STAT_ERRORS 3
#define MK_UFFD_STAT_LAST_ERROR 4
#define MK_UFFD_STAT_PREFETCHED 5
#define MK_UFFD_STAT_CONTINUED 6

/* Opens a throwaway userfaultfd the way mk_uffd_create would (the system
 * call, /dev/userfaultfd, the system call with UFFD_USER_MODE_ONLY), asks
 * UFFDIO_API for every feature, and closes it; fills MK_UFFD_PROBE_WORDS
 * words of out. Returns 0 (also when no way worked: out says why), or the
 * -errno of UFFDIO_API. */
MK_API int64_t mk_uffd_probe(uint64_t *out);
/* A lazy view: maps `length` bytes of private anonymous memory (prot:
 * MK_PROT_READ, optionally | MK_PROT_WRITE) registered for missing faults,
 * and starts a handler thread that fills each page on first touch from the
 * `count` chunks (two words each: source address in process `pid`, 0 for
 * this one, or MK_UFFD_HOLE; and length, > 0), laid side by side from
 * offset 0; the rest up to `length` is a hole. A fault copies up to
 * `readahead` pages (0 or 1: only the faulting page) from the faulting one
 * on, stopping at a page filled already. Sources are read with
 * process_vm_readv, never touched directly: what cannot be read resolves
 * with zeros and counts as an error. For another process, one byte of the
 * first source is read first: -EPERM (no ptrace read access), -ESRCH (no
 * such process) or -EFAULT (not mapped) then. Fills MK_UFFD_CREATE_WORDS words of
 * out. Returns a handle for the other mk_uffd_* calls, or -errno. The
 * caller unmaps the range (after mk_uffd_stop, or replacing it first). */
MK_API int64_t mk_uffd_create(const uint64_t *chunks, uint32_t count, uint64_t length,
                              int32_t pid, uint64_t readahead, uint32_t prot, uint32_t flags,
                              uint64_t *out);
/* A lazy alias of a memfd: maps [offset, offset + length) of it shared at a
 * new address (prot as for mk_uffd_create) registered for minor faults
 * (UFFD_FEATURE_MINOR_SHMEM, Linux 5.14: -EOPNOTSUPP without it), and starts
 * a handler thread that maps each page the memfd already holds on first
 * touch with UFFDIO_CONTINUE, zero-copy (the page is the memfd's own);
 * pages the memfd lacks fault in as usual. Fills MK_UFFD_CREATE_WORDS
 * words of out; returns a handle as mk_uffd_create does. */
MK_API int64_t mk_uffd_alias(int32_t memfd, uint64_t offset, uint64_t length, uint32_t prot,
                             uint64_t *out);
/* Write tracking of [address, address + length) (page multiples; `shared`:
 * 1 for shared memory, which also needs UFFD_FEATURE_WP_HUGETLBFS_SHMEM):
 * a userfaultfd in asynchronous write-protect mode (UFFD_FEATURE_WP_ASYNC,
 * Linux 6.7, and WP_UNPOPULATED, so pages never populated count too;
 * -EOPNOTSUPP without them), the range registered for WP and protected.
 * Writes are never blocked: the kernel lifts the protection of the page
 * written and remembers it. Returns the descriptor (close it to stop);
 * fills MK_UFFD_CREATE_WORDS words of out as mk_uffd_create does. */
MK_API int64_t mk_uffd_track(uint64_t address, uint64_t length, uint32_t shared, uint64_t *out);
/* The ranges of [start, end) written since they were last protected:
 * PAGEMAP_SCAN (Linux 6.7) on an open pagemap with PM_SCAN_CHECK_WPASYNC,
 * asking for PAGE_IS_WRITTEN; with `reset`, PM_SCAN_WP_MATCHING protects
 * them again in the same walk. `vec` gets vec_len regions of three words
 * (start, end, categories); returns how many, and *walk_end where the walk
 * stopped (end, unless vec filled up). */
MK_API int64_t mk_uffd_written(int32_t pagemap_fd, uint64_t start, uint64_t end, uint32_t reset,
                               uint64_t *vec, uint64_t vec_len, uint64_t *walk_end);
/* Fills the pages of [offset, offset + length) of a lazy view that were not
 * filled yet, on the calling thread; returns the pages copied or zeroed
 * (-EOPNOTSUPP for an alias). */
MK_API int64_t mk_uffd_prefetch(uint64_t handle, uint64_t offset, uint64_t length);
/* Copies the handler's MK_UFFD_STATS_WORDS counters into out. */
MK_API int64_t mk_uffd_stats(uint64_t handle, uint64_t *out);
/* Stops the handler thread and frees the handle: wakes everything waiting
 * on the range (replace the range first, so that the retried accesses find
 * plain pages), joins the thread for at most 2 s (a source read that blocks
 * longer is left to finish, and the thread then frees itself), and copies
 * the final counters into `stats` (may be NULL). Returns 0, or 1 when the
 * thread was left to finish on its own. */
MK_API int64_t mk_uffd_stop(uint64_t handle, uint64_t *stats);

#ifdef __cplusplus
}
#endif

#endif /* MEMKIT_H */
