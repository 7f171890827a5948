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

/* ---- phys ---------------------------------------------------------- */

/* Opens a physical memory device (a character device: /dev/mem, or another
 * the caller names) with O_CLOEXEC, read-only or with MK_PHYS_WRITE
 * read-write, and with MK_PHYS_UNCACHED O_SYNC; returns the descriptor, or
 * -ENODEV when the path is not a character device (checked before opening
 * and on what was opened). Permission to touch the path is checked by the
 * caller (src/permissions.ts) before this is called. */
MK_API int64_t mk_phys_open(const char *path, uint32_t flags);
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

#ifdef __cplusplus
}
#endif

#endif /* MEMKIT_H */
