/* ring.c: a descriptor mapped twice, back to back, so that every region of
 * a ring buffer is contiguous. */
#include "internal.h"

#include <sys/mman.h>

MK_API int64_t mk_ring_map(int32_t fd, uint64_t size) {
  const uint64_t page = mk_core_page();
  if (size == 0 || size % page) return -EINVAL;
  if (size > (uint64_t)INT64_MAX / 2) return -EOVERFLOW;
  uint8_t *base = mk_map_reserve(2 * size);
  if (base == MAP_FAILED) return -(int64_t)errno;
  for (int half = 0; half < 2; half++) {
    void *p = mmap(base + half * size, (size_t)size, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_FIXED, fd, 0);
    if (p == MAP_FAILED) {
      int err = errno;
      munmap(base, (size_t)(2 * size));
      return -(int64_t)err;
    }
  }
  return (int64_t)(uintptr_t)base;
}
