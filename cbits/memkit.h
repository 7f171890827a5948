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

/* Flags for mk_map_anonymous. */
#define MK_ANON_NORESERVE 1u /* MAP_NORESERVE: no commit charge for the size */

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
/* Faults in, writable, the whole pages that lie inside buf[0, length) with
 * one madvise(MADV_POPULATE_WRITE) (Linux 5.14), without changing a byte:
 * a fresh buffer about to be filled costs one call instead of a page fault
 * per page. Returns 0, also where the kernel refuses (the pages then fault
 * in when written). */
MK_API int64_t mk_core_prefault(uint8_t *buf, uint64_t length);

/* ---- memfd --------------------------------------------------------- */

/* memfd_create(name, MFD_CLOEXEC | flags); returns the descriptor.
 * With MK_MEMFD_NOEXEC, returns -EINVAL if the kernel lacks
 * MFD_NOEXEC_SEAL (Linux < 6.3). */
MK_API int64_t mk_memfd_create(const char *name, uint32_t flags);
/* mk_memfd_create, then ftruncate(fd, size) with none of mk_memfd_resize's
 * checks (a new memfd is empty and unmapped: nothing can reach past its
 * end): two system calls. On failure the descriptor is closed again and
 * -errno of the call that failed is returned. */
MK_API int64_t mk_memfd_create_sized(const char *name, uint32_t flags, uint64_t size);
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
/* mmap(NULL, length, prot, MAP_SHARED | MAP_ANONYMOUS [| MAP_NORESERVE]):
 * shared memory with no descriptor, one system call (munmap is the other).
 * `length` is a page multiple; returns the address. */
MK_API int64_t mk_map_anonymous(uint64_t length, uint32_t prot, uint32_t flags);
/* Places a new shared mapping of exactly [address, address + length), a
 * range this process reserved and no longer uses (memkit's quarantine hands
 * it on), with MAP_FIXED: the kernel replaces whatever is there atomically,
 * one system call in place of a fresh mmap and the range's later munmap.
 * fd >= 0: mmap(address, length, prot, MAP_SHARED | MAP_FIXED, fd, offset);
 * fd == -1: shared anonymous memory (offset 0; flags as mk_map_anonymous's).
 * Address, offset and length are page multiples. Returns the address. On
 * failure the range may be gone (the kernel leaves a gap on some failures):
 * the caller must forget it, never unmap it; this call unmaps it only where
 * it can prove the range a gap of its own (MAP_FIXED_NOREPLACE). */
MK_API int64_t mk_map_reuse(uint64_t address, int32_t fd, uint64_t offset, uint64_t length,
                            uint32_t prot, uint32_t flags);
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

/* Which file of /proc/<pid> mk_proc_open_file opens. */
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

/* Opens /proc/<pid>/{maps,smaps,smaps_rollup} (`which`, an MK_PROC_* value;
 * pid 0 means /proc/self) read-only, for mk_proc_read_next: the descriptor
 * (close it with mk_core_close). -ENOENT when the process does not exist. */
MK_API int64_t mk_proc_open_file(int32_t pid, uint32_t which);
/* Reads the next bytes of a descriptor from mk_proc_open_file into buf,
 * until buf is full or the file ends: the bytes stored, fewer than cap only
 * at the end of the file (0: nothing more; a zombie's or a kernel thread's
 * maps read empty). The next call reads on from there: growing the buffer
 * never means reading the file again. */
MK_API int64_t mk_proc_read_next(int32_t fd, uint8_t *buf, uint64_t cap);
/* The columns of one mapping in a table of mk_proc_smaps_rows: doubles, each
 * value exact (an address, offset or inode that a double cannot hold makes
 * the whole parse -EBADMSG). Sizes are in bytes (the kB fields times 1024). */
#define MK_SMAPS_ROW_START 0u
#define MK_SMAPS_ROW_END 1u
#define MK_SMAPS_ROW_OFFSET 2u
#define MK_SMAPS_ROW_MAJOR 3u
#define MK_SMAPS_ROW_MINOR 4u
#define MK_SMAPS_ROW_INODE 5u
#define MK_SMAPS_ROW_PERMS 6u /* r 8, w 4, x 2, s 1 */
#define MK_SMAPS_ROW_PATH 7u  /* where the path starts in this call's text */
#define MK_SMAPS_ROW_PATH_LENGTH 8u
#define MK_SMAPS_ROW_RSS 9u
#define MK_SMAPS_ROW_PSS 10u
#define MK_SMAPS_ROW_SHARED_DIRTY 11u
#define MK_SMAPS_ROW_PRIVATE_DIRTY 12u
#define MK_SMAPS_ROW_ANONYMOUS 13u
#define MK_SMAPS_ROW_SWAP 14u
#define MK_SMAPS_ROW_LOCKED 15u
#define MK_SMAPS_ROW_SIZE 16u /* doubles a row */

/* Parses whole lines of /proc/<pid>/smaps text, text[0, len) (a chunk read
 * by mk_proc_read_next, cut after a newline), into rows of
 * MK_SMAPS_ROW_SIZE doubles: a header line starts a row, the Rss, Pss,
 * Shared_Dirty, Private_Dirty, Anonymous, Swap and Locked fields fill it
 * (the others are skipped). `count` rows are already in the table (the last
 * one open: its fields may follow in this chunk), `cap` rows fit. Returns
 * the new count; -ENOSPC when more than `cap` rows would be needed;
 * -EBADMSG for any line not exactly as the kernel prints it (the caller
 * parses the text in full instead). A row's path offset is into this
 * call's text. */
MK_API int64_t mk_proc_smaps_rows(const uint8_t *text, uint64_t len, double *rows, uint32_t count,
                                  uint32_t cap);
/* The strings of one line of mk_proc_smaps_format, by index into its table. */
#define MK_SMAPS_CELL_SIZE 0u /* Size, then Rss, Pss, Dirty, Anon, Swap, Locked: 7 cells */
#define MK_SMAPS_CELL_KIND 7u
#define MK_SMAPS_CELL_PATH 8u
#define MK_SMAPS_CELLS 9u /* int32 cells a row */

/* The size cells of rows of a mk_proc_smaps_rows table: for each row, its
 * Size (end - start), Rss, Pss, Dirty (Private_Dirty + Shared_Dirty),
 * Anonymous, Swap and Locked as indices into `values`, the distinct numbers
 * in the order first met, stored in cells[row * MK_SMAPS_CELLS + k] for k
 * below 7; the sum of each of the 7 columns, added in row order, in
 * totals[0, 7). Returns how many values; -ENOSPC when more than values_cap
 * would be needed. */
MK_API int64_t mk_proc_smaps_sizes(const double *rows, uint32_t count, int32_t *cells,
                                   double *values, uint32_t values_cap, double *totals);
/* Formats rows of a mk_proc_smaps_rows table as the lines of `memkit maps`
 * into out[0, cap): the start address in hexadecimal right-aligned in 16,
 * the permissions, the offset in hexadecimal zero-padded to 8, the device
 * ("%02x:%02x") right-aligned in 6 and the inode right-aligned in 8, then
 * the row's MK_SMAPS_CELLS strings (sizes, kind, path: string k of the
 * table is strings[offsets[k], offsets[k + 1]), k below nstrings; offsets
 * has nstrings + 1 entries) between
 * spaces, and a newline. Stops before the first row that does not fit;
 * returns how many rows it wrote and stores the bytes in *written. -EINVAL
 * for a cell outside the table, offsets that are not in order within
 * strings_len, or a row whose numbers are not whole. */
MK_API int64_t mk_proc_smaps_format(const double *rows, const int32_t *cells, uint32_t count,
                                    const uint8_t *strings, uint64_t strings_len,
                                    const int32_t *offsets, uint32_t nstrings, uint8_t *out,
                                    uint64_t cap, uint64_t *written);
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
 * MK_PM_GUARD, not MK_PM_SWAPPED); frame or flags may be NULL (not
 * written: mk_pagemap_decode makes them later). summary (or NULL) receives
 * 3 uint64_t: present pages, swapped pages, present pages whose PFN reads
 * 0. Returns the pages read: fewer than asked at the end of the address
 * space, 0 when the process has exited. */
MK_API int64_t mk_pagemap_read(int32_t fd, uint64_t vaddr, uint64_t pages, void *raw,
                               void *frame, uint8_t *flags, void *summary);
/* Decodes `pages` raw pagemap entries (uint64_t[pages]) into frame and
 * flags as mk_pagemap_read does (either may be NULL: not written). Returns
 * pages. */
MK_API int64_t mk_pagemap_decode(const void *raw, uint64_t pages, void *frame, uint8_t *flags);
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

/* ---- lock (SharedMutex, SeqLock: locks inside shared memory) -------- */

/* The SharedMutex layout (64 bytes at an 8-byte aligned address; README.md,
 * "Locks inside shared memory"): [0] u32 magic, [4] u16 version, [6] u16
 * byte length, [8] u64 owner identity word, [16] u32 state (0 consistent,
 * 1 inconsistent), [24] u64 pid namespace inode, [32] u64 recoveries. */
#define MK_MUTEX_BYTES 64u
#define MK_MUTEX_MAGIC 0x584d4b4du /* "MKMX" in memory */
#define MK_MUTEX_VERSION 1u
/* The owner word of a mutex nobody can lock any more. */
#define MK_MUTEX_NOTRECOVERABLE 0x40000000u
/* A lock result: taken from a dead owner, or the state is inconsistent. */
#define MK_MUTEX_OWNER_DIED 1u
/* A flag of mk_mutex_lock: wait while this process holds it (another
 * thread of it will unlock), instead of -EDEADLK. */
#define MK_MUTEX_SELF_WAIT 1u
/* Waiters sleep at most this long before they look at the owner again. */
#define MK_LOCK_SLICE_MS 10u
/* The SeqLock header (32 bytes, data after it): [0] u32 magic, [4] u16
 * version, [6] u16 header length, [8] u32 data length, [16] u64 sequence,
 * [24] u64 writer identity word. */
#define MK_SEQLOCK_MAGIC 0x51534b4du /* "MKSQ" in memory */
#define MK_SEQLOCK_VERSION 1u
#define MK_SEQLOCK_HEADER 32u

/* This process's identity word: pid | (start time mod 2^31) << 32, the
 * start time being field 22 of /proc/self/stat. */
MK_API int64_t mk_lock_self(void);
/* 1 when an identity word names a live process with that start time; 0
 * when it is gone, a zombie, another process with that pid, or no valid
 * identity. Reads /proc/<pid>/stat (for liveness only; kill(pid, 0) where
 * /proc does not show it). */
MK_API int64_t mk_lock_alive(uint64_t owner);
/* Writes a fresh, unlocked mutex at address (8-byte aligned). */
MK_API int64_t mk_mutex_init(uint64_t address);
/* Checks the mutex header: 0, -EBADMSG (not a mutex of this version, or
 * corrupt), -EXDEV (made in another pid namespace). */
MK_API int64_t mk_mutex_check(uint64_t address);
/* One attempt: 0 taken, MK_MUTEX_OWNER_DIED taken from a dead owner (or
 * inconsistent), -EBUSY held by a live owner (this process included),
 * -ENOTRECOVERABLE, -EBADMSG. self is mk_lock_self(). */
MK_API int64_t mk_mutex_trylock(uint64_t address, uint64_t self);
/* Takes the mutex, waiting at most timeout_ns (negative: no limit) in
 * futex slices of MK_LOCK_SLICE_MS, checking the owner's liveness after
 * each; the results of mk_mutex_trylock, -ETIMEDOUT, -EDEADLK (this
 * process holds it, without MK_MUTEX_SELF_WAIT), or -EINTR once
 * cancel[0] (may be NULL) is nonzero and the waiter was woken
 * (mk_mutex_wake). Blocks the calling thread. */
MK_API int64_t mk_mutex_lock(uint64_t address, uint64_t self, int64_t timeout_ns, uint32_t flags,
                             const int32_t *cancel);
/* mk_mutex_lock on another thread (nonblocking). */
MK_API MK_NONBLOCKING int64_t mk_mutex_lock_async(uint64_t address, uint64_t self,
                                                  int64_t timeout_ns, uint32_t flags,
                                                  const int32_t *cancel);
/* Releases the mutex: 0, 1 when it was inconsistent (it is now not
 * recoverable, and every waiter is woken to learn it), -EPERM when self
 * does not hold it. */
MK_API int64_t mk_mutex_unlock(uint64_t address, uint64_t self);
/* Marks the state consistent again; -EPERM unless self holds it. */
MK_API int64_t mk_mutex_consistent(uint64_t address, uint64_t self);
/* Wakes every waiter of the mutex (they look again: an abort). */
MK_API int64_t mk_mutex_wake(uint64_t address);
/* out (3 uint64_t) receives the owner word, the state and the recoveries;
 * returns 0, or -EBADMSG when the header is not a mutex's. */
MK_API int64_t mk_mutex_state(uint64_t address, uint64_t *out);
/* Writes a fresh seqlock header at address (8-byte aligned) for length
 * bytes of data after it. */
MK_API int64_t mk_seqlock_init(uint64_t address, uint32_t length);
/* The data length of the seqlock at address, or -EBADMSG. */
MK_API int64_t mk_seqlock_check(uint64_t address);
/* Starts a write (the sequence goes odd): 0, MK_MUTEX_OWNER_DIED when a
 * dead writer's write was taken over, -EBUSY while a live writer writes,
 * -EDEADLK when self is writing already. */
MK_API int64_t mk_seqlock_write_begin(uint64_t address, uint64_t self);
/* Ends self's write (the sequence goes even); -EPERM when self is not writing. */
MK_API int64_t mk_seqlock_write_end(uint64_t address, uint64_t self);
/* The sequence (62 bits) once it is even, trying up to spins times (with a
 * sched_yield every 64); -EAGAIN while a write stays in progress. */
MK_API int64_t mk_seqlock_read_begin(uint64_t address, uint32_t spins);
/* After reading the data: 0 when the sequence is still seq, 1 when a write
 * came in between (read again). */
MK_API int64_t mk_seqlock_read_end(uint64_t address, uint64_t seq);
/* The identity word of the writer now writing, 0 when none. */
MK_API int64_t mk_seqlock_writer(uint64_t address);

/* ---- socket (descriptors over a Unix socket) ------------------------ */

/* The most descriptors mk_socket_recv takes from one message; more is
 * MK_RECV_EXCESS. */
#define MK_SOCKET_MAX_FDS 16u
/* The longest socket path, without its NUL (sizeof sun_path - 1). */
#define MK_SOCKET_PATH_MAX 107u

/* Bits of info[1] after mk_socket_recv: why a message was refused. Every
 * descriptor it carried is closed before the call returns. */
#define MK_RECV_TRUNC 1u   /* the data did not fit (MSG_TRUNC) */
#define MK_RECV_CTRUNC 2u  /* the control message was cut (MSG_CTRUNC) */
#define MK_RECV_EXCESS 4u  /* more descriptors than the caller takes */
#define MK_RECV_FOREIGN 8u /* a control message other than SCM_RIGHTS */

/* What mk_socket_inspect writes to out[0]. */
#define MK_FD_OTHER 0u /* not a memfd */
#define MK_FD_MEMFD 1u
#define MK_FD_EVENTFD 2u /* an eventfd ("anon_inode:[eventfd]") */

/* Events for mk_socket_poll (the POLL* values of Linux). */
#define MK_POLL_IN 0x001u
#define MK_POLL_OUT 0x004u
#define MK_POLL_ERR 0x008u
#define MK_POLL_HUP 0x010u
#define MK_POLL_RDHUP 0x2000u

/* A Unix SOCK_SEQPACKET socket bound to path and listening (CLOEXEC,
 * NONBLOCK). A socket file left at path by a listener that is gone (connect
 * refused) is replaced; -EADDRINUSE while someone listens there, -EEXIST
 * when path is another kind of file. ino (1 uint64_t) receives the inode of
 * the socket file made, for mk_socket_unlink. The caller checks the
 * permissions for path first. */
MK_API int64_t mk_socket_listen(const char *path, uint64_t *ino);
/* Removes the socket file at path if it is still the one mk_socket_listen
 * made (a socket with inode ino); returns 1 when removed, 0 when not. */
MK_API int64_t mk_socket_unlink(const char *path, uint64_t ino);
/* accept4 on a listening socket (CLOEXEC, NONBLOCK); -EAGAIN when no
 * connection is pending. A connection whose peer has already gone without
 * sending anything (another mk_socket_listen's probe) is closed and skipped. */
MK_API int64_t mk_socket_accept(int32_t fd);
/* A SOCK_SEQPACKET socket connected to path (CLOEXEC, NONBLOCK). The caller
 * checks the permissions for path first. */
MK_API int64_t mk_socket_connect(const char *path);
/* One message: len bytes of data (at least 1 when nfds is 0) and nfds
 * descriptors (at most MK_SOCKET_MAX_FDS) in one SCM_RIGHTS control
 * message; never blocks (-EAGAIN when the socket is full), never raises
 * SIGPIPE (-EPIPE when the peer is gone). Returns the bytes sent. */
MK_API int64_t mk_socket_send(int32_t fd, const int32_t *fds, uint32_t nfds, const uint8_t *data,
                              uint64_t len);
/* Receives one message without blocking (-EAGAIN when none is pending; 0
 * with no descriptors when the peer has closed): up to cap bytes into data
 * and up to maxfds (at most MK_SOCKET_MAX_FDS) descriptors into fds, each
 * CLOEXEC. info (2 uint64_t) receives the number of descriptors and the
 * MK_RECV_* bits; when a bit is set, every descriptor that arrived has been
 * closed and info[0] is 0. Returns the bytes received. */
MK_API int64_t mk_socket_recv(int32_t fd, uint8_t *data, uint64_t cap, int32_t *fds,
                              uint32_t maxfds, uint64_t *info);
/* What a received descriptor is, before anything maps it: out (4 uint64_t)
 * receives MK_FD_MEMFD or MK_FD_OTHER (a memfd: a regular file of tmpfs or
 * hugetlbfs whose /proc/self/fd link reads "/memfd:..."), its seals
 * (F_GET_SEALS; 0 where it has none), its size (fstat) and its access
 * mode (O_ACCMODE: 0 read-only, 1 write-only, 2 read-write). A memfd's name
 * (without "memfd:" and " (deleted)") goes to name, NUL-terminated, cut to
 * cap bytes. */
MK_API int64_t mk_socket_inspect(int32_t fd, uint64_t *out, uint8_t *name, uint64_t cap);
/* An eventfd (CLOEXEC, NONBLOCK) to wake a waiter in mk_socket_poll. */
MK_API int64_t mk_socket_event(void);
/* Adds 1 to an eventfd; 0, or -EAGAIN when it is saturated. */
MK_API int64_t mk_socket_signal(int32_t fd);
/* Reads (and so resets) an eventfd: its count, or 0 when it was 0. */
MK_API int64_t mk_socket_drain(int32_t fd);
/* poll(2) on one descriptor without waiting: its revents for the MK_POLL_*
 * events asked (0 when none is ready). */
MK_API int64_t mk_socket_ready(int32_t fd, uint32_t events);
/* poll(2) on count descriptors, waiting at most timeout_ms (0 to 60000;
 * longer waits are a loop of calls): pfds holds 2 int32_t per entry, the
 * descriptor and its MK_POLL_* events, and receives each entry's revents in
 * place of the events. Returns how many entries are ready (0 on timeout). */
MK_API MK_NONBLOCKING int64_t mk_socket_poll(int32_t *pfds, uint32_t count, int32_t timeout_ms);

/* ---- channel (a ring between two processes) ------------------------ */

/* The layout of a channel's memfd: one header page, then the ring, mapped
 * twice by mk_channel_map. The header's 32-bit little-endian words, at
 * these byte offsets (each side writes its own cache line only): */
#define MK_CHANNEL_MAGIC 0x4843414du /* "MACH" at 0 */
#define MK_CHANNEL_VERSION 1u        /* at 4 */
#define MK_CHANNEL_OFF_MAGIC 0u
#define MK_CHANNEL_OFF_VERSION 4u
#define MK_CHANNEL_OFF_CAPACITY 8u  /* the ring's bytes: a power of two, >= a page */
#define MK_CHANNEL_OFF_TAIL 64u     /* bytes committed (the sender's, mod 2^32) */
#define MK_CHANNEL_OFF_SENDER 72u   /* 1 once the sender has closed */
#define MK_CHANNEL_OFF_SPACE_WAIT 76u /* 1 while the sender sleeps for space */
#define MK_CHANNEL_OFF_HEAD 128u    /* bytes consumed (the receiver's, mod 2^32) */
#define MK_CHANNEL_OFF_RECEIVER 136u /* 1 once the receiver has closed */
#define MK_CHANNEL_OFF_DATA_WAIT 140u /* 1 while the receiver sleeps for data */
/* Each message: a 32-bit length, the bytes, padding to a multiple of 8. */
#define MK_CHANNEL_ALIGN 8u

/* Maps a channel memfd of page + capacity bytes: the header page at file
 * offset 0, then [page, page + capacity) twice (mk_ring_place), all
 * read-write and shared, in one range of page + 2 * capacity bytes. Returns
 * the header's address. */
MK_API int64_t mk_channel_map(int32_t fd, uint64_t capacity);
/* Publishes a position: a sequentially consistent store of value at
 * header + offset (MK_CHANNEL_OFF_TAIL or _HEAD), then, if the word at
 * header + wait_offset (the peer's *_WAIT flag) is set, clears it and adds
 * 1 to eventfd. Returns 1 when it woke the peer, else 0. */
MK_API int64_t mk_channel_publish(uint64_t header, uint32_t offset, uint32_t value,
                                  uint32_t wait_offset, int32_t eventfd);
/* Before sleeping: sets the word at header + wait_offset to 1 (sequentially
 * consistent), then reads the word at header + offset; if it is no longer
 * `seen`, clears the flag again and returns 1 (do not sleep), else 0. */
MK_API int64_t mk_channel_arm(uint64_t header, uint32_t wait_offset, uint32_t offset,
                              uint32_t seen);
/* The process at the other end of a connected Unix socket: writes out[0]
 * its pid (SO_PEERCRED) and out[1] its identity word (mk_lock_self's form:
 * pid | (start time mod 2^31) << 32) and returns a pidfd (CLOEXEC) for it:
 * SO_PEERPIDFD (Linux 6.5), else pidfd_open of that pid. -ESRCH when it has
 * exited, or its pid now names a process that started after the call began
 * (reused); -ENOSYS when the kernel has no pidfd_open (out is filled: check
 * liveness with the identity word instead). */
MK_API int64_t mk_channel_peer(int32_t sock, int64_t *out);
/* 1 while the peer lives, 0 once it is gone: the pidfd polled (readable
 * once the process has exited), or, for pidfd -1, mk_lock_alive(identity). */
MK_API int64_t mk_channel_alive(int32_t pidfd, uint64_t identity);

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
/* Write tracking without asynchronous write-protection (the fallback for
 * kernels before 6.7; works on newer ones too): [address, address + length)
 * (page multiples; `shared` as for mk_uffd_track) registered for WP and
 * missing faults and protected, and a handler thread that records each
 * page's first write in a bitmap and lets it go on (UFFDIO_WRITEPROTECT
 * lifting the page's protection; a page never populated, which anonymous
 * memory cannot protect before Linux 6.4, is filled with zeros by
 * UFFDIO_COPY: writable after a write, protected after a read). Returns a
 * handle for mk_uffd_dirty, mk_uffd_stats and mk_uffd_stop (which leaves
 * the range mapped: it is the caller's), or -errno; fills
 * MK_UFFD_CREATE_WORDS words of out as mk_uffd_create does. */
MK_API int64_t mk_uffd_track_sync(uint64_t address, uint64_t length, uint32_t shared,
                                  uint64_t *out);
/* Copies a synchronous tracker's bitmap (bit p of word p / 64: page p
 * written) into `bitmap` (at least (pages + 63) / 64 words); with `reset`,
 * protects the whole range again and clears the bitmap in one step that
 * no write slips through. Returns how many pages were written, or -errno. */
MK_API int64_t mk_uffd_dirty(uint64_t handle, uint32_t reset, uint64_t *bitmap, uint64_t words);
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

/* ---- device (mapDevice: character devices, debugfs and sysfs files) ---- */

/* Flags for mk_device_open. */
#define MK_DEVICE_WRITE 1u /* O_RDWR instead of O_RDONLY */
/* What mk_device_open found at the path (info[0]). */
#define MK_DEVICE_CHAR 1u      /* a character device */
#define MK_DEVICE_DEBUGFS 2u   /* a file of debugfs */
#define MK_DEVICE_SYSFS 3u     /* a file of sysfs */
#define MK_DEVICE_TRACEFS 4u   /* a file of tracefs */
#define MK_DEVICE_REGULAR 5u   /* a regular file elsewhere (refused: mapFile's job) */
#define MK_DEVICE_DIRECTORY 6u /* a directory (refused) */
#define MK_DEVICE_OTHER 7u     /* a block device, FIFO or socket (refused) */

/* Opens what the caller checked and looked up (path, pathfd from
 * mk_file_path_open) for mapping, with O_CLOEXEC | O_NOCTTY, read-only or
 * with MK_DEVICE_WRITE read-write: only a character device or a file of
 * debugfs, sysfs or tracefs (the kernel's own files, whose mmap a driver
 * implements), judged on pathfd before the open and again on what was
 * opened. info (4 uint64_t) receives the MK_DEVICE_* kind, the
 * filesystem's magic (statfs f_type) and, for a character device, its
 * major and minor numbers. -ENODEV for a regular file elsewhere,
 * a block device, FIFO or socket, -EISDIR for a directory, -ESTALE when the
 * path names another file by the time it is opened. */
MK_API int64_t mk_device_open(const char *path, uint32_t flags, int32_t pathfd, uint64_t *info);

/* ---- kshared (pages shared with a kernel driver, memkit_kshared.h) ---- */

/* The values of cbits/memkit_kshared.h (version 1) that TypeScript needs;
 * cbits/kshared.c asserts that they match. */
#define MK_KSHARED_VERSION 1u
#define MK_KSHARED_PAGE_BYTES 4096u
#define MK_KSHARED_PUB_OFFSET 0u
#define MK_KSHARED_REQ_OFFSET 4096u
#define MK_KSHARED_PUB_MAGIC 0x504b4b4du /* "MKKP" in memory */
#define MK_KSHARED_REQ_MAGIC 0x524b4b4du /* "MKKR" in memory */
#define MK_KSHARED_HEADER_BYTES 64u      /* both pages' headers */
#define MK_KSHARED_RECORD_BYTES 64u      /* sizeof(struct mkks_record) */
#define MK_KSHARED_PAYLOAD_BYTES 40u
#define MK_KSHARED_DATA_BYTES 256u
#define MK_KSHARED_REQUEST_BYTES 272u /* sizeof(struct mkks_request) */
#define MK_KSHARED_LOCK_ANSWERED 0x80000000u
#define MK_KSHARED_SESSION_MAX 0x7fffffffu
#define MK_KSHARED_OP_ECHO 1u
#define MK_KSHARED_OP_SUM 2u
/* Words of mk_kshared_stats's out. */
#define MK_KSHARED_STATS_WORDS 5u
/* Words of mk_kshared_read_many's out. */
#define MK_KSHARED_READS_WORDS 7u

/* This open file's session (MKKS_IOC_SESSION): 1 .. MK_KSHARED_SESSION_MAX. */
MK_API int64_t mk_kshared_session(int32_t fd);
/* MKKS_IOC_RING alone (retried on EINTR): 0, or the driver's -errno. */
MK_API int64_t mk_kshared_ring(int32_t fd);
/* The lock word of the request page at `page` (a relaxed atomic load). */
MK_API int64_t mk_kshared_lock_word(uint64_t page);
/* Takes the lock word: CAS 0 -> session, retried (spinning, then sleeping
 * 20 us doubling to 1 ms) for at most timeout_ns (0: one try). 0 when
 * taken; -ETIMEDOUT when it stayed taken, -EDEADLK when it is this
 * session's already (held, or answered and not released); seen[0] gets the
 * last value read. Blocks the calling thread at most timeout_ns. */
MK_API int64_t mk_kshared_lock(uint64_t page, uint32_t session, int64_t timeout_ns,
                               uint64_t *seen);
/* Releases the lock word: CAS session | ANSWERED -> 0 (returns 0) or
 * session -> 0 (returns 1: released unanswered); -EPERM when it holds
 * neither (released twice, or taken back by the kernel), seen[0] the value. */
MK_API int64_t mk_kshared_release(uint64_t page, uint32_t session, uint64_t *seen);
/* One request round trip on the request page at `page` of the file fd:
 * takes the lock word as mk_kshared_lock does, writes the request of msg (a
 * struct mkks_request: id, op, length, data) into the slot, rings
 * (MKKS_IOC_RING), copies the answer once into msg and releases. 0 when
 * answered (the answer's own status in msg); -EINVAL for a length over
 * MK_KSHARED_DATA_BYTES; the lock's -ETIMEDOUT, -EDEADLK; the ring's -errno
 * (-EPERM: the lock word was not this session's when the kernel looked);
 * -EPROTO when the answer cannot be trusted (the lock word was not
 * session | ANSWERED after the ring or changed while the answer was copied,
 * the id differs, or the length is over MK_KSHARED_DATA_BYTES). seen[0]
 * gets the lock word last read. */
MK_API int64_t mk_kshared_request(int32_t fd, uint64_t page, uint32_t session,
                                  int64_t timeout_ns, uint8_t *msg, uint64_t *seen);
/* The copying baseline: MKKS_IOC_CALL with msg (a struct mkks_request)
 * copied in and the answer copied back into it. 0, or -errno. */
MK_API int64_t mk_kshared_call(int32_t fd, uint8_t *msg);
/* The counters of the publish page at `page` (relaxed atomic loads): out
 * (MK_KSHARED_STATS_WORDS) gets instance, reclaims, answered, refused and
 * lock_timeout_ms. */
MK_API int64_t mk_kshared_stats(uint64_t page, uint64_t *out);
/* The FNV-1a checksum of a record (mkks_checksum: its 64 bytes but the
 * checksum field); -EINVAL unless length is MK_KSHARED_RECORD_BYTES. */
MK_API int64_t mk_kshared_checksum(const uint8_t *record, uint64_t length);
/* count SeqLock reads of the record whose SeqLock header is at `address`
 * (a memkit SeqLock of MK_KSHARED_RECORD_BYTES bytes), each copied and
 * checked: checksum, payload length, payload bytes (counter + i) & 0xff.
 * out (MK_KSHARED_READS_WORDS) gets the clean reads, the attempts a write
 * overlapped, the torn reads (clean by the sequence but failing the check),
 * the first and last counters read, how often the counter went backwards,
 * and the waits for a write in progress. -EBADMSG when the header is no
 * SeqLock of that length; -EAGAIN when a write stays in progress for a
 * million waits in a row. */
MK_API int64_t mk_kshared_read_many(uint64_t address, uint64_t count, uint64_t *out);

#ifdef __cplusplus
}
#endif

#endif /* MEMKIT_H */
