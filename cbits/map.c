/* map.c: mapping descriptors, changing protections, unmapping, and placing
 * shared memory at chosen addresses inside a reservation: stitched views of
 * chunks, aliases of existing shared mappings, guarded mappings. */
#include "internal.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#define MK_PROT_ALL (MK_PROT_READ | MK_PROT_WRITE | MK_PROT_EXEC)

_Static_assert(MK_PROT_READ == PROT_READ, "protection bits match the kernel's");
_Static_assert(MK_PROT_WRITE == PROT_WRITE, "protection bits match the kernel's");
_Static_assert(MK_PROT_EXEC == PROT_EXEC, "protection bits match the kernel's");

void *mk_map_reserve(uint64_t length) {
  return mmap(NULL, (size_t)length, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1,
              0);
}

static int64_t addr_result(void *p) {
  return p == MAP_FAILED ? -(int64_t)errno : (int64_t)(uintptr_t)p;
}

MK_API int64_t mk_map_fd(int32_t fd, uint64_t offset, uint64_t length, uint32_t prot) {
  if (length == 0 || (prot & ~MK_PROT_ALL)) return -EINVAL;
  if (!MK_FITS_OFF(offset) || !MK_FITS_OFF(length)) return -EOVERFLOW;
  return addr_result(mmap(NULL, (size_t)length, (int)prot, MAP_SHARED, fd, (off_t)offset));
}

MK_API int64_t mk_map_anonymous(uint64_t length, uint32_t prot, uint32_t flags) {
  if (length == 0 || length % mk_core_page() || (prot & ~MK_PROT_ALL)) return -EINVAL;
  if (flags & ~MK_ANON_NORESERVE) return -EINVAL;
  if (!MK_FITS_OFF(length)) return -EOVERFLOW;
  int mflags = MAP_SHARED | MAP_ANONYMOUS | (flags & MK_ANON_NORESERVE ? MAP_NORESERVE : 0);
  return addr_result(mmap(NULL, (size_t)length, (int)prot, mflags, -1, 0));
}

MK_API int64_t mk_map_reuse(uint64_t address, int32_t fd, uint64_t offset, uint64_t length,
                            uint32_t prot, uint32_t flags) {
  const uint64_t page = mk_core_page();
  if (address == 0 || address % page || length == 0 || length % page || offset % page) {
    return -EINVAL;
  }
  if ((prot & ~MK_PROT_ALL) || (flags & ~MK_ANON_NORESERVE)) return -EINVAL;
  if (fd < -1 || (fd >= 0 && flags) || (fd == -1 && offset)) return -EINVAL;
  if (!MK_FITS_OFF(offset) || !MK_FITS_OFF(length) || address > UINT64_MAX - length) {
    return -EOVERFLOW;
  }
  int mflags = MAP_SHARED | MAP_FIXED;
  if (fd == -1) mflags |= MAP_ANONYMOUS | (flags & MK_ANON_NORESERVE ? MAP_NORESERVE : 0);
  void *at = (void *)(uintptr_t)address;
  void *p = mmap(at, (size_t)length, (int)prot, mflags, fd, (off_t)offset);
  if (p != MAP_FAILED) return (int64_t)(uintptr_t)p;
  int err = errno;
  /* A failed MAP_FIXED may have unmapped the range first (the kernel leaves a
   * gap in some failure paths), and another thread may map into a gap at any
   * moment: so never munmap here. Probe without replacing anything: a probe
   * that lands was a gap, now ours, and goes again; one that meets a mapping
   * (EEXIST) leaves it alone (the range, or whatever took its place). */
  void *q = mmap(at, (size_t)length, PROT_NONE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
  if (q != MAP_FAILED) munmap(q, (size_t)length); /* before 4.17: a hint, placed elsewhere */
  return -(int64_t)err;
}

MK_API int64_t mk_map_unmap(uint64_t address, uint64_t length) {
  if (address == 0 || length == 0) return -EINVAL;
  return mk_ret(munmap((void *)(uintptr_t)address, (size_t)length));
}

MK_API int64_t mk_map_protect(uint64_t address, uint64_t length, uint32_t prot) {
  if (address == 0 || length == 0 || (prot & ~MK_PROT_ALL)) return -EINVAL;
  return mk_ret(mprotect((void *)(uintptr_t)address, (size_t)length, (int)prot));
}

MK_API int64_t mk_map_placeholder(uint64_t address, uint64_t length) {
  if (address == 0 || length == 0) return -EINVAL;
  void *p = mmap((void *)(uintptr_t)address, (size_t)length, PROT_READ,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? -(int64_t)errno : 0;
}

MK_API int64_t mk_map_scrub(uint64_t address, uint64_t length) {
  if (address == 0 || length == 0) return -EINVAL;
  void *p = mmap((void *)(uintptr_t)address, (size_t)length, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? -(int64_t)errno : 0;
}

MK_API int64_t mk_map_relocate(uint64_t address, uint64_t span, const uint64_t *runs,
                               uint32_t count) {
  if (address == 0 || span == 0 || !MK_FITS_OFF(span) || count == 0 || runs == NULL) {
    return -EINVAL;
  }
  for (uint32_t i = 0; i < count; i++) {
    uint64_t off = runs[2 * i], len = runs[2 * i + 1];
    if (len == 0 || off > span || len > span - off) return -EINVAL;
  }
  uint8_t *to = mmap(NULL, (size_t)span, PROT_NONE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (to == MAP_FAILED) return -(int64_t)errno;
  uint8_t *from = (uint8_t *)(uintptr_t)address;
  for (uint32_t i = 0; i < count; i++) {
    size_t off = (size_t)runs[2 * i], len = (size_t)runs[2 * i + 1];
    void *p = mremap(from + off, 0, len, MREMAP_MAYMOVE | MREMAP_FIXED, to + off);
    if (p == MAP_FAILED) {
      int64_t err = -(int64_t)errno;
      munmap(to, (size_t)span);
      return err;
    }
  }
  void *p = mmap(from, (size_t)span, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    int64_t err = -(int64_t)errno;
    munmap(to, (size_t)span);
    return err;
  }
  return (int64_t)(uintptr_t)to;
}

/* An address-kind chunk (MK_STITCH_ADDRESS in its first word) has no
 * descriptor: its second word is an address in this process. */
#define MK_STITCH_FD_MASK 0xffffffffull

/* Whether chunk b continues chunk a in the same descriptor: one mmap covers
 * both. Address-kind chunks are never merged here: two neighbours in this
 * process's address space may map different files (the caller merges what
 * it knows to be one source). */
static int continues(const uint64_t *a, const uint64_t *b) {
  return a[0] != MK_STITCH_ADDRESS && a[0] == b[0] && a[1] + a[2] == b[1];
}

/* Places [src, src + length) of this process's shared memory at dst with
 * mremap(old_size 0). The kernel maps `length` bytes of whatever backs the
 * mapping at src from src's offset on, without checking that the old
 * mapping is that long: the caller passes ranges it knows to be one
 * contiguous window of one source (or single pages). */
static int alias_at(uint64_t src, uint64_t length, uint64_t dst) {
  void *p = mremap((void *)(uintptr_t)src, 0, (size_t)length, MREMAP_MAYMOVE | MREMAP_FIXED,
                   (void *)(uintptr_t)dst);
  return p == MAP_FAILED ? -errno : 0;
}

MK_API int64_t mk_map_stitch(const uint64_t *chunks, uint32_t count, uint32_t prot,
                             uint64_t *report) {
  if (chunks == NULL || report == NULL || count == 0) return -EINVAL;
  if (prot & ~(uint32_t)(MK_PROT_READ | MK_PROT_WRITE | MK_PROT_EXEC)) return -EINVAL;
  const uint64_t page = mk_core_page();
  uint64_t total = 0, runs = 0;
  int aliases = 0;
  for (uint32_t i = 0; i < count; i++) {
    const uint64_t *c = chunks + 3 * (size_t)i;
    uint64_t kind = c[0] & ~MK_STITCH_FD_MASK;
    if ((kind != 0 && c[0] != MK_STITCH_ADDRESS) || c[2] == 0 || c[1] % page || c[2] % page ||
        !MK_FITS_OFF(c[1]) || c[2] > (uint64_t)INT64_MAX - total) {
      report[0] = i;
      return -EINVAL;
    }
    total += c[2];
    aliases |= c[0] == MK_STITCH_ADDRESS;
    if (i == 0 || !continues(c - 3, c)) runs++;
  }
  report[0] = count;
  report[1] = runs;
  report[2] = 0;
  uint8_t *base = mk_map_reserve(total);
  if (base == MAP_FAILED) return -(int64_t)errno;
  uint64_t at = 0;
  for (uint32_t i = 0; i < count;) {
    const uint64_t *c = chunks + 3 * (size_t)i;
    uint64_t length = c[2];
    uint32_t j = i + 1;
    while (j < count && continues(chunks + 3 * (size_t)(j - 1), chunks + 3 * (size_t)j)) {
      length += chunks[3 * (size_t)j + 2];
      j++;
    }
    int err = 0;
    if (c[0] == MK_STITCH_ADDRESS) {
      err = alias_at(c[1], length, (uint64_t)(uintptr_t)(base + at));
    } else {
      void *p = mmap(base + at, (size_t)length, (int)prot, MAP_SHARED | MAP_FIXED,
                     (int)(int32_t)(c[0] & MK_STITCH_FD_MASK), (off_t)c[1]);
      if (p == MAP_FAILED) err = -errno;
    }
    if (err < 0) {
      munmap(base, (size_t)total); /* takes every chunk placed so far with it */
      report[0] = i;
      return err;
    }
    report[2]++;
    at += length;
    i = j;
  }
  /* Aliases keep their source's protection: give the whole view the one asked for. */
  if (aliases && mprotect(base, (size_t)total, (int)prot) < 0) {
    int err = errno;
    munmap(base, (size_t)total);
    report[0] = count;
    return -(int64_t)err;
  }
  return (int64_t)(uintptr_t)base;
}

MK_API int64_t mk_map_guarded(uint64_t length, uint64_t guard, uint32_t prot) {
  const uint64_t page = mk_core_page();
  if (length == 0 || length % page || guard % page) return -EINVAL;
  if (prot & ~(uint32_t)(MK_PROT_READ | MK_PROT_WRITE | MK_PROT_EXEC)) return -EINVAL;
  if (length > (uint64_t)INT64_MAX / 2 || guard > (uint64_t)INT64_MAX / 4) return -EOVERFLOW;
  uint8_t *base = mk_map_reserve(length + 2 * guard);
  if (base == MAP_FAILED) return -(int64_t)errno;
  void *p = mmap(base + guard, (size_t)length, (int)prot, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED,
                 -1, 0);
  if (p == MAP_FAILED) {
    int err = errno;
    munmap(base, (size_t)(length + 2 * guard));
    return -(int64_t)err;
  }
  return (int64_t)(uintptr_t)p;
}

MK_API int64_t mk_map_max_count(void) {
  int fd = open("/proc/sys/vm/max_map_count", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -(int64_t)errno;
  char buf[32];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  int err = errno;
  close(fd);
  if (n <= 0) return n < 0 ? -(int64_t)err : -EIO;
  buf[n] = '\0';
  long long v = 0;
  if (sscanf(buf, "%lld", &v) != 1 || v < 0) return -EIO;
  return (int64_t)v;
}
