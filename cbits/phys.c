/* phys.c: physical memory through a memory device (/dev/mem): opening it,
 * copying reads, accesses of exactly one width, and the kernel files that
 * explain a refusal (/proc/iomem, the lockdown state). */
#include "internal.h"

#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define MK_PHYS_ALL (MK_PHYS_WRITE | MK_PHYS_UNCACHED)

/* Of the kernel's "mem" devices (major 1), only /dev/mem (1:1) maps
 * physical memory. A writable shared mapping of the others (/dev/zero) is
 * anonymous memory the size of the mapping, which faults (SIGBUS) at any
 * offset past it: those open read-only, where mappings are private. */
static int64_t mk_phys_refused(const struct stat *st, uint32_t flags) {
  if (!S_ISCHR(st->st_mode)) return -ENODEV;
  if ((flags & MK_PHYS_WRITE) && major(st->st_rdev) == 1 && minor(st->st_rdev) != 1) return -EROFS;
  return 0;
}

/* Checks what fd really is (the path may have changed since it was looked
 * at: a symlink swapped in between); closes it and returns -errno if refused. */
static int64_t mk_phys_check_fd(int fd, uint32_t flags) {
  struct stat st;
  int64_t ret = fstat(fd, &st) < 0 ? -(int64_t)errno : mk_phys_refused(&st, flags);
  if (ret < 0) {
    close(fd);
    return ret;
  }
  return fd;
}

MK_API int64_t mk_phys_open(const char *path, uint32_t flags, int32_t pathfd) {
  if (path == NULL || path[0] != '/') return -EINVAL;
  if (flags & ~MK_PHYS_ALL) return -EINVAL;
  /* Only a character device (/dev/mem, a framebuffer, a UIO region): opening
   * a FIFO would block and a regular file is mapFile()'s job. Checked on the
   * file the gate looked up before opening, and again on what was opened. */
  struct stat st;
  if (fstat(pathfd, &st) < 0) return -errno;
  int64_t refused = mk_phys_refused(&st, flags);
  if (refused < 0) return refused;
  int oflags = O_CLOEXEC | O_NOCTTY;
  oflags |= (flags & MK_PHYS_WRITE) ? O_RDWR : O_RDONLY;
  if (flags & MK_PHYS_UNCACHED) oflags |= O_SYNC;
  int fd = mk_file_open_checked(path, oflags, pathfd);
  if (fd < 0) return fd;
  return mk_phys_check_fd(fd, flags);
}

MK_API int64_t mk_phys_read(int32_t fd, uint64_t address, uint8_t *buf, uint64_t length) {
  if (buf == NULL && length > 0) return -EFAULT;
  if (!MK_FITS_OFF(address) || !MK_FITS_OFF(length) || address + length < address) {
    return -EOVERFLOW;
  }
  uint64_t done = 0;
  while (done < length) {
    ssize_t n = pread(fd, buf + done, (size_t)(length - done), (off_t)(address + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      /* The kernel stops at the first page it refuses: report what came
       * before it, or the error when nothing did. */
      return done > 0 ? (int64_t)done : -(int64_t)errno;
    }
    if (n == 0) break;
    done += (uint64_t)n;
  }
  return (int64_t)done;
}

static int width_ok(uint64_t address, uint32_t width) {
  return (width == 1 || width == 2 || width == 4 || width == 8) && address % width == 0;
}

/* One load or store of exactly `width` bytes: volatile, so the compiler
 * neither splits, widens nor merges it. */
static uint64_t load(const void *p, uint32_t width) {
  switch (width) {
    case 1: return *(const volatile uint8_t *)p;
    case 2: return *(const volatile uint16_t *)p;
    case 4: return *(const volatile uint32_t *)p;
    default: return *(const volatile uint64_t *)p;
  }
}

static void store(void *p, uint32_t width, uint64_t v) {
  switch (width) {
    case 1: *(volatile uint8_t *)p = (uint8_t)v; break;
    case 2: *(volatile uint16_t *)p = (uint16_t)v; break;
    case 4: *(volatile uint32_t *)p = (uint32_t)v; break;
    default: *(volatile uint64_t *)p = v; break;
  }
}

/* Maps the one page that holds [address, address + width) (a naturally
 * aligned access never crosses a page) and returns the pointer to address
 * in it, with *base set for munmap; NULL with *err on failure. */
static void *mk_phys_page(int fd, uint64_t address, int prot, void **base, size_t *len,
                          int *err) {
  const uint64_t page = mk_core_page();
  uint64_t start = address & ~(page - 1);
  void *p = mmap(NULL, (size_t)page, prot, MAP_SHARED, fd, (off_t)start);
  if (p == MAP_FAILED) {
    *err = errno;
    return NULL;
  }
  *base = p;
  *len = (size_t)page;
  return (uint8_t *)p + (address - start);
}

MK_API int64_t mk_phys_peek(int32_t fd, uint64_t address, uint32_t width, uint8_t *value) {
  if (value == NULL) return -EFAULT;
  if (!width_ok(address, width)) return -EINVAL;
  if (!MK_FITS_OFF(address)) return -EOVERFLOW;
  void *base;
  size_t len;
  int err = 0;
  void *p = mk_phys_page(fd, address, PROT_READ, &base, &len, &err);
  if (p == NULL) return -err;
  uint64_t v = load(p, width);
  munmap(base, len);
  memcpy(value, &v, sizeof v);
  return 0;
}

MK_API int64_t mk_phys_poke(int32_t fd, uint64_t address, uint32_t width, uint64_t value) {
  if (!width_ok(address, width)) return -EINVAL;
  if (!MK_FITS_OFF(address)) return -EOVERFLOW;
  void *base;
  size_t len;
  int err = 0;
  void *p = mk_phys_page(fd, address, PROT_READ | PROT_WRITE, &base, &len, &err);
  if (p == NULL) return -err;
  store(p, width, value);
  munmap(base, len);
  return 0;
}

MK_API int64_t mk_phys_load(uint64_t address, uint32_t width, uint8_t *value) {
  if (address == 0 || value == NULL) return -EFAULT;
  if (!width_ok(address, width)) return -EINVAL;
  uint64_t v = load((const void *)(uintptr_t)address, width);
  memcpy(value, &v, sizeof v);
  return 0;
}

MK_API int64_t mk_phys_store(uint64_t address, uint32_t width, uint64_t value) {
  if (address == 0) return -EFAULT;
  if (!width_ok(address, width)) return -EINVAL;
  store((void *)(uintptr_t)address, width, value);
  return 0;
}

/* Reads a whole small kernel file into buf; returns its size, or -ERANGE
 * when it does not fit (the caller retries with a larger buffer). */
static int64_t slurp(const char *path, uint8_t *buf, uint64_t capacity) {
  if (buf == NULL && capacity > 0) return -EFAULT;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  uint64_t done = 0;
  for (;;) {
    if (done == capacity) {
      /* Full: is there more? */
      uint8_t probe;
      ssize_t n = read(fd, &probe, 1);
      int err = errno;
      close(fd);
      if (n < 0) return -err;
      return n == 0 ? (int64_t)done : -ERANGE;
    }
    ssize_t n = read(fd, buf + done, (size_t)(capacity - done));
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      close(fd);
      return -err;
    }
    if (n == 0) break;
    done += (uint64_t)n;
  }
  close(fd);
  return (int64_t)done;
}

MK_API int64_t mk_phys_iomem(uint8_t *buf, uint64_t capacity) {
  return slurp("/proc/iomem", buf, capacity);
}

MK_API int64_t mk_phys_lockdown(uint8_t *buf, uint64_t capacity) {
  return slurp("/sys/kernel/security/lockdown", buf, capacity);
}
