/*
 * stitch.c: the C side of bench/stitch_bench.ts.
 *
 * Each bl_* function makes, in the same order and with the same arguments,
 * the system calls of one memkit operation, so that the ratio the bench
 * prints is memkit's own cost on top of the kernel's:
 * - stitch() of chunks of one memfd, then close(): fstat (memkit checks the
 *   memfd's size once), mmap of the PROT_NONE reservation, one mmap
 *   MAP_FIXED | MAP_SHARED per run of chunks that continue each other, and
 *   munmap of the whole view;
 * - protect() toggled: mprotect to read-only and back to read-write.
 *
 * Every function returns 0, or -errno of the first call that failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define BL_API __attribute__((visibility("default")))

BL_API int64_t bl_stitch(int32_t fd, const uint32_t *chunks, uint32_t count, uint64_t chunk) {
  struct stat st;
  if (fstat(fd, &st) < 0) return -errno;
  uint64_t total = (uint64_t)count * chunk;
  uint8_t *base = mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) return -errno;
  int64_t ret = 0;
  for (uint32_t i = 0; i < count;) {
    uint32_t j = i + 1;
    while (j < count && chunks[j] == chunks[j - 1] + 1) j++;
    void *p = mmap(base + (uint64_t)i * chunk, (uint64_t)(j - i) * chunk, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_FIXED, fd, (off_t)((uint64_t)chunks[i] * chunk));
    if (p == MAP_FAILED) {
      ret = -errno;
      break;
    }
    i = j;
  }
  if (munmap(base, total) < 0 && ret == 0) ret = -errno;
  return ret;
}

BL_API int64_t bl_protect_toggle(uint64_t address, uint64_t length) {
  void *p = (void *)(uintptr_t)address;
  if (mprotect(p, length, PROT_READ) < 0) return -errno;
  if (mprotect(p, length, PROT_READ | PROT_WRITE) < 0) return -errno;
  return 0;
}
