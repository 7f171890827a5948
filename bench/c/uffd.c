/*
 * uffd.c: the C side of bench/uffd_bench.ts.
 *
 * bl_read_pages reads one byte of every `stride` bytes of
 * [address, address + length) from C: driven over a lazy view, it is the
 * same handler thread serving the same faults as the JavaScript loop, with
 * no JavaScript in the faulting thread, so the ratio shows what JavaScript
 * adds per fault.
 *
 * Returns the sum of the bytes read, or -EINVAL for a zero address or stride.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>

#define BL_API __attribute__((visibility("default")))

BL_API int64_t bl_read_pages(uint64_t address, uint64_t length, uint64_t stride) {
  if (address == 0 || stride == 0) return -EINVAL;
  int64_t sum = 0;
  for (uint64_t off = 0; off < length; off += stride) {
    sum += *(volatile const unsigned char *)(uintptr_t)(address + off);
  }
  return sum;
}

#include <string.h>

/* bl_diff_pages compares [a, a + length) with [b, b + length) page by page
 * (memcmp) and copies each page that differs from a into b: finding the
 * written pages by keeping a snapshot, the baseline of write tracking.
 * Returns how many pages differed, or -EINVAL for a zero address or page. */
BL_API int64_t bl_diff_pages(uint64_t a, uint64_t b, uint64_t length, uint64_t page) {
  if (a == 0 || b == 0 || page == 0) return -EINVAL;
  int64_t count = 0;
  for (uint64_t off = 0; off < length; off += page) {
    const void *x = (const void *)(uintptr_t)(a + off);
    void *y = (void *)(uintptr_t)(b + off);
    if (memcmp(x, y, page) != 0) {
      memcpy(y, x, page);
      count++;
    }
  }
  return count;
}
