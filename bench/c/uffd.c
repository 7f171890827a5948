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
