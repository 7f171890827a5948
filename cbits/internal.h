/* internal.h: helpers shared by memkit's C files; not part of the ABI. */
#ifndef MEMKIT_INTERNAL_H
#define MEMKIT_INTERNAL_H

#define _GNU_SOURCE 1
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>

#include "memkit.h"

/* A system call's result as the ABI wants it: the value, or -errno. */
static inline int64_t mk_ret(long ret) { return ret < 0 ? -(int64_t)errno : (int64_t)ret; }

/* core.c: the page size of this machine in bytes (sysconf(_SC_PAGESIZE),
 * which cannot fail on Linux): the one place memkit's C asks for it. */
uint64_t mk_core_page(void);

/* Whether a 64-bit value fits the platform's off_t / size_t without loss. */
#define MK_FITS_OFF(v) ((v) <= (uint64_t)INT64_MAX)

/* proc.c: "/proc/self/<file>" (pid 0) or "/proc/<pid>/<file>", and opening it
 * read-only; both return 0 or a descriptor, or -errno. */
int mk_proc_path(char *out, size_t size, int32_t pid, const char *file);
int mk_proc_open(int32_t pid, const char *file);

/* lock.c: the start time (field 22 of /proc/<pid>/stat, clock ticks since
 * boot) of a live process: 0, -ESRCH when it is a zombie or exiting, or
 * -errno (-ENOENT: no such process). */
int mk_lock_start_time(int32_t pid, uint64_t *start);

/* file.c: opens path with oflags, and keeps the descriptor only when it is
 * the file pathfd (the O_PATH descriptor of the path the gate checked) is:
 * the descriptor, -ESTALE when the path names another file by now (it
 * changed after it was checked), or -errno. */
int mk_file_open_checked(const char *path, int oflags, int pathfd);

/* The UAPI of PROCMAP_QUERY (linux/fs.h, Linux 6.11): installed headers may
 * predate it, so memkit carries its own copy under its own names. */
struct mk_procmap_query {
  uint64_t size;
  uint64_t query_flags;
  uint64_t query_addr;
  uint64_t vma_start;
  uint64_t vma_end;
  uint64_t vma_flags;
  uint64_t vma_page_size;
  uint64_t vma_offset;
  uint64_t inode;
  uint32_t dev_major;
  uint32_t dev_minor;
  uint32_t vma_name_size;
  uint32_t build_id_size;
  uint64_t vma_name_addr;
  uint64_t build_id_addr;
};
#define MK_PROCMAP_QUERY _IOWR('f', 17, struct mk_procmap_query)
#define MK_PROCMAP_QUERY_FLAGS 0x3fu
#define MK_PROCMAP_COVERING_OR_NEXT 0x10u /* PROCMAP_QUERY_COVERING_OR_NEXT_VMA */
#define MK_PROCMAP_FILE_BACKED 0x20u      /* PROCMAP_QUERY_FILE_BACKED_VMA */

/* map.c: reserves `length` bytes of address space that nothing can touch
 * (PROT_NONE, private, MAP_NORESERVE); MAP_FAILED with errno on failure. */
void *mk_map_reserve(uint64_t length);

/* ring.c: maps [offset, offset + size) of fd twice, back to back, read-write
 * and shared, at base (MAP_FIXED over a reservation of 2 * size bytes).
 * 0 or -errno; on failure the caller unmaps the reservation. */
int mk_ring_place(uint8_t *base, int fd, uint64_t offset, uint64_t size);

/* pagemap.c: pread of `count` 8-byte entries at the entry index `first` of
 * a pagemap, kpageflags or kpagecount descriptor, retried on short reads;
 * returns the entries read (fewer at the end of the file), or -errno. */
int64_t mk_pagemap_entries(int fd, uint64_t first, uint64_t count, uint64_t *out);

/* memfd.c: the first mapping of this process (whatever made it: memkit, a
 * second copy of memkit, a Worker, mapFile of /proc/self/fd/N) that maps the
 * file (major:minor, ino) past byte `end` of it. Asks the kernel: with
 * PROCMAP_QUERY where it exists (Linux 6.11+), else (or with `parse`) by
 * parsing /proc/self/maps. Returns 1 and fills found[3] (start, end, how far
 * into the file it reaches), 0 when there is none, or -errno. */
int mk_memfd_mapped_past(uint32_t dev_major, uint32_t dev_minor, uint64_t ino, uint64_t end,
                         int parse, uint64_t found[3]);

/* uffd.c: how many lazy-view handler threads are running (for the C tests). */
int mk_uffd_live_threads(void);

#endif /* MEMKIT_INTERNAL_H */
