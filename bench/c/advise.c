/*
 * advise.c: the C side of bench/advise_bench.ts.
 *
 * bl_touch writes one byte of every page of [address, address + length)
 * from C, the loop a C programmer would write to fault a range in; beside
 * memkit's advise(..., "populate-write") (one madvise MADV_POPULATE_WRITE)
 * and JavaScript touching every page through a view, it shows what the
 * trap per page costs and what the JavaScript loop adds to it.
 *
 * Returns 0, or -EINVAL for a zero address or page size.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>

#define BL_API __attribute__((visibility("default")))

BL_API int64_t bl_touch(uint64_t address, uint64_t length, uint64_t page) {
  if (address == 0 || page == 0) return -EINVAL;
  for (uint64_t off = 0; off < length; off += page) {
    *(volatile unsigned char *)(uintptr_t)(address + off) = 0;
  }
  return 0;
}
