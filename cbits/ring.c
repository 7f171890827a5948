/* ring.c: a descriptor mapped twice, back to back, so that every region of
 * a ring buffer is contiguous. */
#include "internal.h"

#include <sys/mman.h>

int mk_ring_place(uint8_t *base, int fd, uint64_t offset, uint64_t size) {
  for (int half = 0; half < 2; half++) {
    void *p = mmap(base + half * size, (size_t)size, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_FIXED, fd, (off_t)offset);
    if (p == MAP_FAILED) return -errno;
  }
  return 0;
}

MK_API int64_t mk_ring_map(int32_t fd, uint64_t size) {
  const uint64_t page = mk_core_page();
  if (size == 0 || size % page) return -EINVAL;
  if (size > (uint64_t)INT64_MAX / 2) return -EOVERFLOW;
  uint8_t *base = mk_map_reserve(2 * size);
  if (base == MAP_FAILED) return -(int64_t)errno;
  int ret = mk_ring_place(base, fd, 0, size);
  if (ret < 0) {
    munmap(base, (size_t)(2 * size));
    return ret;
  }
  return (int64_t)(uintptr_t)base;
}
