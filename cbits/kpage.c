/* kpage.c: /proc/kpageflags and /proc/kpagecount, read by PFN (the paths
 * are fixed). See Documentation/admin-guide/mm/pagemap.rst. */
#include "internal.h"

#include <fcntl.h>
#include <unistd.h>

MK_API int64_t mk_kpage_read(uint32_t which, const void *pfns, uint64_t n, void *out) {
  if (which > MK_KPAGE_COUNT) return -EINVAL;
  if (n > 0 && (pfns == NULL || out == NULL)) return -EFAULT;
  const uint64_t *p = pfns;
  for (uint64_t i = 0; i < n; i++)
    if (p[i] > (uint64_t)INT64_MAX / 8) return -ERANGE;
  int fd = open(which == MK_KPAGE_FLAGS ? "/proc/kpageflags" : "/proc/kpagecount",
                O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return -errno;
  uint64_t *o = out;
  int64_t ret = (int64_t)n;
  for (uint64_t i = 0; i < n;) {
    uint64_t j = i + 1;
    while (j < n && p[j] == p[j - 1] + 1) j++;
    int64_t got = mk_pagemap_entries(fd, p[i], j - i, o + i);
    if (got < 0) {
      ret = got;
      break;
    }
    if ((uint64_t)got < j - i) {
      ret = -ERANGE; /* a PFN past the end of physical memory */
      break;
    }
    i = j;
  }
  close(fd);
  return ret;
}
