/*
 * baseline.c: the C side of bench/memfd_bench.ts.
 *
 * Each bl_* function makes, in the same order and with the same arguments,
 * the system calls of one memkit operation (checked with
 * `strace -f -e trace=memory,desc,memfd_create`), so that the ratio the
 * bench prints is memkit's own cost on top of the kernel's. Loaded with
 * Deno.dlopen and called once per bench iteration (an FFI call without
 * buffers is ~10-50 ns, small beside a system call).
 *
 * When memkit's system calls change, change these with them.
 *
 * Every function returns 0, or -errno of the first call that failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define BL_API __attribute__((visibility("default")))

#define BL_PAGE 4096
#define BL_MIB (1u << 20)

/* MemFd.create("bench", { size: 4096 }) + map() + Mapping.close() + MemFd.close():
 * memfd_create, ftruncate; map(): fstat (size), mmap; close(): munmap;
 * close(). */
BL_API int64_t bl_cycle(void) {
  int fd = memfd_create("bench", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return -errno;
  int64_t ret = 0;
  struct stat st;
  void *p;
  if (ftruncate(fd, BL_PAGE) < 0 || fstat(fd, &st) < 0) {
    ret = -errno;
  } else if ((p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) ==
             MAP_FAILED) {
    ret = -errno;
  } else if (munmap(p, (size_t)st.st_size) < 0) {
    ret = -errno;
  }
  if (close(fd) < 0 && ret == 0) ret = -errno;
  return ret;
}

/* The same cycle as a C programmer would write it: no size or seal checks. */
BL_API int64_t bl_cycle_minimal(void) {
  int fd = memfd_create("bench", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return -errno;
  int64_t ret = 0;
  void *p;
  if (ftruncate(fd, BL_PAGE) < 0) {
    ret = -errno;
  } else if ((p = mmap(NULL, BL_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED) {
    ret = -errno;
  } else if (munmap(p, BL_PAGE) < 0) {
    ret = -errno;
  }
  if (close(fd) < 0 && ret == 0) ret = -errno;
  return ret;
}

/* fd.map({ access: "r" }) + Mapping.close() with no view:
 * fstat (size), mmap PROT_READ MAP_SHARED of the whole memfd, munmap. */
BL_API int64_t bl_alias(int32_t fd) {
  struct stat st;
  if (fstat(fd, &st) < 0) return -errno;
  void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return -errno;
  return munmap(p, (size_t)st.st_size) < 0 ? -errno : 0;
}

/* fd.map({ access: "r" }) + bytes() + Mapping.close(): the view is an
 * immutable ArrayBuffer that close() cannot detach, so close() maps a
 * read-only zero placeholder over the range (mk_map_placeholder) and the
 * FinalizationRegistry unmaps it after the view is collected. Here the
 * munmap follows at once. */
BL_API int64_t bl_alias_view(int32_t fd) {
  struct stat st;
  if (fstat(fd, &st) < 0) return -errno;
  size_t len = (size_t)st.st_size;
  void *p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return -errno;
  void *q = mmap(p, len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
  int64_t ret = q == MAP_FAILED ? -errno : 0;
  if (munmap(p, len) < 0 && ret == 0) ret = -errno;
  return ret;
}

/* mapAnonymous(1 MiB) + Mapping.close() with no view: mmap MAP_SHARED |
 * MAP_ANONYMOUS, munmap; the two calls of Python's mmap.mmap(-1, n) + close(). */
BL_API int64_t bl_anon(void) {
  void *p = mmap(NULL, BL_MIB, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return -errno;
  return munmap(p, BL_MIB) < 0 ? -errno : 0;
}

/* mapAnonymous(1 MiB) + bytes()[0] = 1 + Mapping.close(): mmap, the write
 * (a page fault), then close() of a range that handed out a view: private
 * zero pages over it (mmap MAP_FIXED, mk_map_scrub) and, 64 such closes
 * later, the quarantine's munmap, paid here at once. */
BL_API int64_t bl_anon_view(void) {
  volatile uint8_t *p =
      mmap(NULL, BL_MIB, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return -errno;
  p[0] = 1;
  void *q = mmap((void *)p, BL_MIB, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
  int64_t ret = q == MAP_FAILED ? -errno : 0;
  if (munmap((void *)p, BL_MIB) < 0 && ret == 0) ret = -errno;
  return ret;
}
