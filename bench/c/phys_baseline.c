/*
 * phys_baseline.c: the C side of bench/phys_bench.ts.
 *
 * pb_map maps a window of a memory device the way memkit does (open
 * O_RDONLY, mmap PROT_READ MAP_SHARED); pb_read32 then does `count` volatile
 * 32-bit loads cycling through it, as a C program polling physical memory
 * would; pb_peek32 is one read with the mapping made and removed around it
 * (devmem2's way, without the process start). Loaded with Deno.dlopen.
 *
 * Every function returns >= 0, or -errno of the call that failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#define PB_API __attribute__((visibility("default")))

static int pb_fd = -1;
static const volatile uint32_t *pb_window;
static uint64_t pb_words;

/* Opens path and maps length bytes at physical offset; 0 or -errno. */
PB_API int64_t pb_map(const char *path, uint64_t offset, uint64_t length) {
  if (pb_fd >= 0) return -EBUSY;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  void *p = mmap(NULL, (size_t)length, PROT_READ, MAP_SHARED, fd, (off_t)offset);
  if (p == MAP_FAILED) {
    int err = errno;
    close(fd);
    return -err;
  }
  pb_fd = fd;
  pb_window = p;
  pb_words = length / 4;
  return 0;
}

/* count 32-bit loads through the window, cycling; returns their sum (mod 2^32). */
PB_API int64_t pb_read32(uint64_t count) {
  if (pb_window == NULL) return -EBADF;
  uint32_t sum = 0;
  uint64_t mask = pb_words - 1; /* pb_words is a power of two */
  for (uint64_t i = 0; i < count; i++) sum += pb_window[i & mask];
  return sum;
}

/* One 32-bit load at physical address, mapping its page around it. */
PB_API int64_t pb_peek32(uint64_t address) {
  if (pb_fd < 0) return -EBADF;
  uint64_t base = address & ~(uint64_t)4095;
  void *p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, pb_fd, (off_t)base);
  if (p == MAP_FAILED) return -errno;
  uint32_t v = *(const volatile uint32_t *)((char *)p + (address - base));
  munmap(p, 4096);
  return v;
}
