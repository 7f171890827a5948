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
#define MK_ABI_VERSION 1

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
/* ftruncate(fd, size). */
MK_API int64_t mk_memfd_resize(int32_t fd, uint64_t size);
/* fcntl(fd, F_ADD_SEALS, seals). */
MK_API int64_t mk_memfd_seal(int32_t fd, uint32_t seals);
/* fcntl(fd, F_GET_SEALS): the current seal bits. */
MK_API int64_t mk_memfd_seals(int32_t fd);
/* Whether the kernel knows MFD_NOEXEC_SEAL: 1 or 0. */
MK_API int64_t mk_memfd_noexec_supported(void);

/* ---- file ---------------------------------------------------------- */

/* Opens a regular file for mapping (O_CLOEXEC, read-only or with
 * MK_FILE_WRITE read-write); returns the descriptor, or -ENODEV when the
 * path is not a regular file. Permission to touch the path is checked by
 * the caller (src/permissions.ts) before this is called. */
MK_API int64_t mk_file_open(const char *path, uint32_t flags);

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
/* Sets the calling thread's rights for key (PKRU); -ENOSYS without OSPKE. */
MK_API int64_t mk_pkey_set(int32_t key, uint32_t rights);
/* The calling thread's rights for key; -ENOSYS without OSPKE. */
MK_API int64_t mk_pkey_get(int32_t key);

#ifdef __cplusplus
}
#endif

#endif /* MEMKIT_H */
