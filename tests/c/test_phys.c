/* test_phys.c: the phys capability against this kernel. No /dev/mem here
 * (CONFIG_DEVMEM unset), so /dev/zero stands in for a memory device: a
 * character device that maps. The real /dev/mem is tested in the QEMU guest. */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "memkit.h"
#include "tap.h"

/* What src/phys.ts does: the argument checks, then the O_PATH lookup of the
 * device, then the open of that same path checked against the lookup. */
static int64_t phys_open(const char *path, uint32_t flags) {
  int64_t pre = mk_phys_open(path, flags, -1);
  if (pre != -EBADF) return pre; /* refused before the descriptor is used */
  uint8_t resolved[4096];
  int64_t pfd = mk_file_path_open(path, resolved, sizeof resolved);
  if (pfd < 0) return pfd;
  int64_t fd = mk_phys_open(path, flags, (int32_t)pfd);
  close((int)pfd);
  return fd;
}

static void test_open(void) {
  CHECK_ERR(phys_open(NULL, 0), EINVAL, "open(NULL) is -EINVAL");
  CHECK_ERR(phys_open("", 0), EINVAL, "open(\"\") is -EINVAL");
  CHECK_ERR(phys_open("/dev/zero", 4), EINVAL, "an unknown flag is -EINVAL");
  CHECK_ERR(phys_open("/proc/self/exe", 0), ENODEV, "a regular file is -ENODEV");
  CHECK_ERR(phys_open("/tmp", 0), ENODEV, "a directory is -ENODEV");
  CHECK_ERR(mk_phys_open("dev/zero", 0, -1), EINVAL, "a relative path is -EINVAL");
  uint8_t got[64];
  int64_t pfd = mk_file_path_open("/dev/zero", got, sizeof got);
  if (CHECK_OK(pfd, "look /dev/zero up")) {
    CHECK_ERR(mk_phys_open("/dev/null", 0, (int32_t)pfd), ESTALE,
              "opening another device than the one looked up is -ESTALE");
    close((int)pfd);
  }
  CHECK_ERR(phys_open("/nonexistent/mem", 0), ENOENT, "a missing device is -ENOENT");
  struct stat st;
  if (stat("/dev/mem", &st) != 0) {
    CHECK_ERR(phys_open("/dev/mem", 0), ENOENT, "no /dev/mem here: -ENOENT");
  } else {
    SKIP("no /dev/mem here: -ENOENT", "this kernel has /dev/mem");
  }
  int64_t fd = phys_open("/dev/zero", MK_PHYS_UNCACHED);
  CHECK_OK(fd, "/dev/zero opens, with O_SYNC");
  if (fd >= 0) {
    int fl = fcntl((int)fd, F_GETFL);
    CHECK((fl & O_SYNC) == O_SYNC, "MK_PHYS_UNCACHED sets O_SYNC");
    CHECK((fl & O_ACCMODE) == O_RDONLY, "read-only without MK_PHYS_WRITE");
    CHECK(fcntl((int)fd, F_GETFD) & FD_CLOEXEC, "close-on-exec");
    mk_core_close((int32_t)fd);
  }
  CHECK_ERR(phys_open("/dev/zero", MK_PHYS_WRITE), EROFS,
            "/dev/zero does not open read-write (its writable mappings fault past their size)");
  CHECK_ERR(phys_open("/dev/null", MK_PHYS_WRITE), EROFS, "nor does /dev/null");
}

static void test_access(void) {
  int64_t fd = phys_open("/dev/zero", 0);
  if (fd < 0) {
    SKIP("accesses through /dev/zero", "cannot open /dev/zero");
    return;
  }
  uint8_t buf[64];
  memset(buf, 0xaa, sizeof buf);
  CHECK_EQ(mk_phys_read((int32_t)fd, 0xf0000, buf, sizeof buf), 64, "read copies 64 bytes");
  int zeros = 1;
  for (size_t i = 0; i < sizeof buf; i++) zeros &= buf[i] == 0;
  CHECK(zeros, "read of /dev/zero gives zeros");
  CHECK_EQ(mk_phys_read((int32_t)fd, 0, buf, 0), 0, "a zero-length read is 0");
  CHECK_ERR(mk_phys_read((int32_t)fd, UINT64_MAX, buf, 1), EOVERFLOW, "an address past off_t");
  uint8_t v[8];
  memset(v, 0xaa, sizeof v);
  CHECK_EQ(mk_phys_peek((int32_t)fd, 0xf0004, 4, v), 0, "peek 32 bits");
  CHECK(v[0] == 0 && v[3] == 0 && v[4] == 0, "peek wrote the zero value, all 8 bytes");
  CHECK_ERR(mk_phys_peek((int32_t)fd, 0xf0002, 4, v), EINVAL, "a misaligned peek is -EINVAL");
  CHECK_ERR(mk_phys_peek((int32_t)fd, 0xf0000, 3, v), EINVAL, "width 3 is -EINVAL");
  CHECK_ERR(mk_phys_peek((int32_t)fd, 0xf0000, 4, NULL), EFAULT, "no value buffer is -EFAULT");
  CHECK_ERR(mk_phys_peek(-1, 0xf0000, 4, v), EBADF, "a bad descriptor is -EBADF");
  CHECK_ERR(mk_phys_poke((int32_t)fd, 0, 4, 1), EACCES, "poke through a read-only fd is -EACCES");
  mk_core_close((int32_t)fd);
}

static void test_exact_width(void) {
  uint64_t *cell = aligned_alloc(64, 64);
  if (cell == NULL) return;
  memset(cell, 0xff, 64);
  uint64_t a = (uint64_t)(uintptr_t)cell;
  CHECK_EQ(mk_phys_store(a + 4, 4, 0x01020304), 0, "store 32 bits");
  CHECK_EQ(mk_phys_store(a + 8, 2, 0xbeef), 0, "store 16 bits");
  CHECK_EQ(mk_phys_store(a + 10, 1, 0x5a), 0, "store 8 bits");
  CHECK_EQ(mk_phys_store(a + 16, 8, 0x0123456789abcdefULL), 0, "store 64 bits");
  const uint8_t *b = (const uint8_t *)cell;
  CHECK(b[3] == 0xff && b[4] == 0x04 && b[7] == 0x01 && b[8] == 0xef && b[9] == 0xbe &&
            b[10] == 0x5a && b[11] == 0xff,
        "each store wrote exactly its width, little-endian");
  uint8_t v[8];
  CHECK_EQ(mk_phys_load(a + 4, 4, v), 0, "load 32 bits");
  uint64_t got;
  memcpy(&got, v, 8);
  CHECK_EQ(got, 0x01020304, "the 32-bit load reads only its 4 bytes");
  CHECK_EQ(mk_phys_load(a + 16, 8, v), 0, "load 64 bits");
  memcpy(&got, v, 8);
  CHECK(got == 0x0123456789abcdefULL, "the 64-bit load");
  CHECK_ERR(mk_phys_load(a + 2, 4, v), EINVAL, "a misaligned load is -EINVAL");
  CHECK_ERR(mk_phys_store(a + 1, 2, 0), EINVAL, "a misaligned store is -EINVAL");
  CHECK_ERR(mk_phys_load(0, 4, v), EFAULT, "address 0 is -EFAULT");
  free(cell);
}

static void test_kernel_files(void) {
  uint8_t small[8];
  CHECK_ERR(mk_phys_iomem(small, sizeof small), ERANGE, "/proc/iomem in 8 bytes is -ERANGE");
  size_t cap = 1 << 20;
  uint8_t *buf = malloc(cap);
  if (buf == NULL) return;
  int64_t n = mk_phys_iomem(buf, cap);
  CHECK(n > 0, "/proc/iomem reads whole");
  if (n > 0) CHECK(memmem(buf, (size_t)n, "System RAM", 10) != NULL, "it lists System RAM");
  int64_t l = mk_phys_lockdown(buf, cap);
  CHECK(l > 0 || l == -ENOENT, "the lockdown file reads, or is absent (no securityfs)");
  free(buf);
}

int main(void) {
  test_open();
  test_access();
  test_exact_width();
  test_kernel_files();
  return tap_done();
}
