/* pagemap.c: /proc/<pid>/pagemap (read and decode in one call, PAGEMAP_SCAN
 * with a fallback that reads entries). See
 * Documentation/admin-guide/mm/pagemap.rst for the bits. */
#include "internal.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* The UAPI of PAGEMAP_SCAN (linux/fs.h, Linux 6.7): installed headers may
 * predate it, so memkit carries its own copy under its own names. */
struct mk_page_region {
  uint64_t start;
  uint64_t end;
  uint64_t categories;
};
struct mk_pm_scan_arg {
  uint64_t size;
  uint64_t flags;
  uint64_t start;
  uint64_t end;
  uint64_t walk_end;
  uint64_t vec;
  uint64_t vec_len;
  uint64_t max_pages;
  uint64_t category_inverted;
  uint64_t category_mask;
  uint64_t category_anyof_mask;
  uint64_t return_mask;
};
#define MK_PAGEMAP_SCAN _IOWR('f', 16, struct mk_pm_scan_arg)

/* The bits of a pagemap entry. */
#define PM_PFN_MASK ((1ull << 55) - 1)
#define PM_SOFT_DIRTY (1ull << 55)
#define PM_MMAP_EXCLUSIVE (1ull << 56)
#define PM_UFFD_WP (1ull << 57)
#define PM_GUARD_REGION (1ull << 58)
#define PM_FILE (1ull << 61)
#define PM_SWAP (1ull << 62)
#define PM_PRESENT (1ull << 63)

/* Categories the fallback can compute from pagemap entries alone. */
#define FALLBACK_CATEGORIES                                                                \
  (MK_PAGE_IS_WRITTEN | MK_PAGE_IS_FILE | MK_PAGE_IS_PRESENT | MK_PAGE_IS_SWAPPED |         \
   MK_PAGE_IS_SOFT_DIRTY | MK_PAGE_IS_GUARD)
#define ALL_CATEGORIES 0x1ffull

MK_API int64_t mk_pagemap_open(int32_t pid) { return mk_proc_open(pid, "pagemap"); }

int64_t mk_pagemap_entries(int fd, uint64_t first, uint64_t count, uint64_t *out) {
  if (first > (uint64_t)INT64_MAX / 8) return 0;
  uint64_t done = 0;
  while (done < count) {
    uint64_t want = (count - done) * 8;
    if (want > (1ull << 30)) want = 1ull << 30;
    ssize_t n = pread(fd, out + done, (size_t)want, (off_t)((first + done) * 8));
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (n == 0) break;
    done += (uint64_t)n / 8;
    if (n % 8 != 0) break;
  }
  return (int64_t)done;
}

/* Decodes entries into the frame and flags columns (either may be NULL: not
 * written); summary (or NULL) receives the counts. */
static void decode(const uint64_t *e, uint64_t n, double *f, uint8_t *flags, uint64_t *summary) {
  uint64_t present = 0, swapped = 0, hidden = 0;
  for (uint64_t i = 0; i < n; i++) {
    uint64_t v = e[i];
    uint8_t b = 0;
    double fr = 0;
    if (v & PM_PRESENT) {
      b |= MK_PM_PRESENT;
      uint64_t pfn = v & PM_PFN_MASK;
      fr = (double)pfn;
      present++;
      if (pfn == 0) hidden++;
    } else if ((v & PM_SWAP) && !(v & PM_GUARD_REGION)) {
      /* A guard region's marker is a swap entry too: it is not swapped. */
      b |= MK_PM_SWAPPED;
      fr = (double)((v & PM_PFN_MASK) >> 5);
      swapped++;
    }
    if (v & PM_FILE) b |= MK_PM_FILE;
    if (v & PM_MMAP_EXCLUSIVE) b |= MK_PM_EXCLUSIVE;
    if (v & PM_SOFT_DIRTY) b |= MK_PM_SOFT_DIRTY;
    if (v & PM_UFFD_WP) b |= MK_PM_UFFD_WP;
    if (v & PM_GUARD_REGION) b |= MK_PM_GUARD;
    if (f != NULL) f[i] = fr;
    if (flags != NULL) flags[i] = b;
  }
  if (summary != NULL) {
    summary[0] = present;
    summary[1] = swapped;
    summary[2] = hidden;
  }
}

MK_API int64_t mk_pagemap_read(int32_t fd, uint64_t vaddr, uint64_t pages, void *raw,
                               void *frame, uint8_t *flags, void *summary) {
  uint64_t page = mk_core_page();
  if (vaddr % page != 0) return -EINVAL;
  if (pages > 0 && raw == NULL) return -EFAULT;
  /* The range may end exactly at 2^64: its last byte is vaddr + pages * page - 1. */
  if (pages > UINT64_MAX / page || (pages > 0 && pages * page - 1 > UINT64_MAX - vaddr)) {
    return -EOVERFLOW;
  }
  uint64_t *e = raw;
  int64_t got = mk_pagemap_entries(fd, vaddr / page, pages, e);
  if (got < 0) return got;
  decode(e, (uint64_t)got, frame, flags, summary);
  return got;
}

MK_API int64_t mk_pagemap_decode(const void *raw, uint64_t pages, void *frame, uint8_t *flags) {
  if (pages > 0 && raw == NULL) return -EFAULT;
  if (pages > (uint64_t)INT64_MAX) return -EOVERFLOW;
  decode(raw, pages, frame, flags, NULL);
  return (int64_t)pages;
}

/* The PAGEMAP_SCAN categories of one pagemap entry, as the kernel's
 * pagemap_page_category() assigns them to a pte. */
static uint64_t entry_categories(uint64_t v) {
  uint64_t c = 0;
  if (v & PM_PRESENT) {
    c |= MK_PAGE_IS_PRESENT;
    if (!(v & PM_UFFD_WP)) c |= MK_PAGE_IS_WRITTEN;
    if (v & PM_FILE) c |= MK_PAGE_IS_FILE;
    if (v & PM_SOFT_DIRTY) c |= MK_PAGE_IS_SOFT_DIRTY;
  } else if (v & PM_SWAP) {
    /* Swap entries, and the markers of guard regions (which the ioctl
     * reports as swapped and guard). */
    c |= MK_PAGE_IS_SWAPPED;
    if (!(v & PM_UFFD_WP)) c |= MK_PAGE_IS_WRITTEN;
    if (v & PM_FILE) c |= MK_PAGE_IS_FILE;
    if (v & PM_SOFT_DIRTY) c |= MK_PAGE_IS_SOFT_DIRTY;
    if (v & PM_GUARD_REGION) c |= MK_PAGE_IS_GUARD;
  } else {
    /* The kernel counts an empty pte of a mapping as written unless
     * userfaultfd write-protects it. */
    if (!(v & PM_UFFD_WP)) c |= MK_PAGE_IS_WRITTEN;
    if (v & PM_GUARD_REGION) c |= MK_PAGE_IS_GUARD;
  }
  return c;
}

static int64_t scan_fallback(int fd, const struct mk_pm_scan_arg *a, struct mk_page_region *vec,
                             uint64_t *walk_end) {
  uint64_t used = a->category_mask | a->category_inverted | a->category_anyof_mask |
                  a->return_mask;
  if (used & ~FALLBACK_CATEGORIES) return -EOPNOTSUPP;
  uint64_t page = mk_core_page();
  enum { CHUNK = 8192 };
  uint64_t *buf = malloc(CHUNK * sizeof *buf);
  if (buf == NULL) return -ENOMEM;
  uint64_t n = 0;
  uint64_t addr = a->start;
  int64_t ret = 0;
  while (addr < a->end) {
    uint64_t want = (a->end - addr) / page;
    if (want > CHUNK) want = CHUNK;
    int64_t got = mk_pagemap_entries(fd, addr / page, want, buf);
    if (got < 0) {
      ret = got;
      break;
    }
    if (got == 0) break; /* the end of the address space */
    int full = 0;
    for (int64_t i = 0; i < got; i++, addr += page) {
      uint64_t c = entry_categories(buf[i]);
      uint64_t x = c ^ a->category_inverted;
      if ((x & a->category_mask) != a->category_mask) continue;
      if (a->category_anyof_mask && !(x & a->category_anyof_mask)) continue;
      uint64_t r = c & a->return_mask;
      if (n > 0 && vec[n - 1].end == addr && vec[n - 1].categories == r) {
        vec[n - 1].end = addr + page;
        continue;
      }
      if (n == a->vec_len) {
        full = 1;
        break;
      }
      vec[n].start = addr;
      vec[n].end = addr + page;
      vec[n].categories = r;
      n++;
    }
    if (full) break;
  }
  free(buf);
  if (ret < 0) return ret;
  *walk_end = addr < a->end ? addr : a->end;
  return (int64_t)n;
}

/* The end of the user address space as pagemap sees it (TASK_SIZE): the
 * first page whose entry reads nothing, found by bisection. */
static uint64_t user_top(int fd, uint64_t page) {
  uint64_t lo = 0, hi = (UINT64_MAX / page) + 1; /* entry lo reads, entry hi does not */
  uint64_t e;
  if (mk_pagemap_entries(fd, 0, 1, &e) != 1) return 0;
  while (hi - lo > 1) {
    uint64_t mid = lo + (hi - lo) / 2;
    if (mk_pagemap_entries(fd, mid, 1, &e) == 1)
      lo = mid;
    else
      hi = mid;
  }
  return hi * page;
}

MK_API int64_t mk_pagemap_scan(int32_t fd, uint64_t start, uint64_t end, const void *masks,
                               uint32_t flags, void *vec, uint64_t vec_len, void *walk_end) {
  uint64_t page = mk_core_page();
  if (flags & ~MK_SCAN_FALLBACK) return -EINVAL;
  if (masks == NULL || walk_end == NULL || (vec == NULL && vec_len > 0)) return -EFAULT;
  if (start % page != 0 || end % page != 0 || end < start) return -EINVAL;
  const uint64_t *m = masks;
  for (int i = 0; i < 4; i++)
    if (m[i] & ~ALL_CATEGORIES) return -EINVAL;
  struct mk_pm_scan_arg a;
  memset(&a, 0, sizeof a);
  a.size = sizeof a;
  a.start = start;
  a.end = end;
  a.vec = (uint64_t)(uintptr_t)vec;
  a.vec_len = vec_len;
  a.category_mask = m[0];
  a.category_inverted = m[1];
  a.category_anyof_mask = m[2];
  a.return_mask = m[3];
  uint64_t *we = walk_end;
  if (!(flags & MK_SCAN_FALLBACK)) {
    int rc = ioctl(fd, MK_PAGEMAP_SCAN, &a);
    if (rc < 0 && errno == EFAULT) {
      /* The kernel refuses ranges past the top of user space: clip to it. */
      uint64_t top = user_top(fd, page);
      if (a.start >= top) {
        *we = end;
        return 0;
      }
      if (a.end > top) {
        a.end = top;
        rc = ioctl(fd, MK_PAGEMAP_SCAN, &a);
        if (rc >= 0 && a.walk_end == top) a.walk_end = end;
      }
    }
    if (rc >= 0) {
      *we = a.walk_end;
      return rc;
    }
    /* ENOTTY: the kernel predates PAGEMAP_SCAN; anything else is an answer. */
    if (errno != ENOTTY) return -errno;
  }
  return scan_fallback(fd, &a, vec, we);
}
