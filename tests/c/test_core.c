/* test_core.c: mk_core_* against the kernel: identity, page size, close, fd size, prefault. */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"
#include "tap.h"

static void test_identity(void) {
  CHECK_EQ(mk_core_abi_version(), MK_ABI_VERSION, "abi version is MK_ABI_VERSION");
  int64_t page = mk_core_page_size();
  CHECK_EQ(page, sysconf(_SC_PAGESIZE), "page size is sysconf(_SC_PAGESIZE)");
  CHECK(page > 0 && (page & (page - 1)) == 0, "page size is a power of two");
  CHECK_EQ((int64_t)mk_core_page(), page, "the internal page size is the exported one");
}

static void test_close(void) {
  CHECK_ERR(mk_core_close(-1), EBADF, "close(-1) is -EBADF");
  CHECK_ERR(mk_core_close(INT32_MIN), EBADF, "close(INT32_MIN) is -EBADF");

  int fd = memfd_create("memkit-test-close", MFD_CLOEXEC);
  if (!CHECK(fd >= 0, "memfd_create for close")) return;
  CHECK_EQ(mk_core_close(fd), 0, "close of an open descriptor is 0");
  errno = 0;
  CHECK(fcntl(fd, F_GETFD) == -1 && errno == EBADF, "the descriptor is closed");
  CHECK_ERR(mk_core_close(fd), EBADF, "closing it again is -EBADF");

  /* A descriptor number far above any open one. */
  CHECK_ERR(mk_core_close(INT32_MAX), EBADF, "close(INT32_MAX) is -EBADF");
}

static void test_fd_size(void) {
  CHECK_ERR(mk_core_fd_size(-1), EBADF, "fd_size(-1) is -EBADF");

  int fd = memfd_create("memkit-test-size", MFD_CLOEXEC);
  if (!CHECK(fd >= 0, "memfd_create for fd_size")) return;
  CHECK_EQ(mk_core_fd_size(fd), 0, "a new memfd has size 0");
  CHECK(ftruncate(fd, 12345) == 0, "ftruncate to 12345");
  CHECK_EQ(mk_core_fd_size(fd), 12345, "fd_size follows ftruncate");
  close(fd);
  CHECK_ERR(mk_core_fd_size(fd), EBADF, "fd_size of a closed descriptor is -EBADF");

  /* An O_PATH descriptor still has a size; a pipe has 0. */
  int dir = open("/proc/self", O_PATH | O_CLOEXEC);
  if (CHECK(dir >= 0, "open /proc/self O_PATH")) {
    CHECK_OK(mk_core_fd_size(dir), "fd_size of an O_PATH directory is >= 0");
    close(dir);
  }
  int p[2];
  if (CHECK(pipe2(p, O_CLOEXEC) == 0, "pipe2")) {
    CHECK_EQ(mk_core_fd_size(p[0]), 0, "fd_size of an empty pipe is 0");
    close(p[0]);
    close(p[1]);
  }
}

/* How many of the n pages at p are resident (mincore). */
static int resident(const void *p, size_t n) {
  unsigned char vec[64];
  if (n > sizeof vec || mincore((void *)p, n * (size_t)mk_core_page(), vec) != 0) return -1;
  int count = 0;
  for (size_t i = 0; i < n; i++) count += vec[i] & 1;
  return count;
}

static void test_prefault(void) {
  size_t page = mk_core_page();
  CHECK_EQ(mk_core_prefault(NULL, 1 << 20), 0, "prefault of NULL is 0 and touches nothing");
  char *p = mmap(NULL, 8 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (!CHECK(p != MAP_FAILED, "mmap 8 pages")) return;
  CHECK_EQ(resident(p, 8), 0, "a new private mapping has no resident page");
  CHECK_EQ(mk_core_prefault((uint8_t *)p, 0), 0, "prefault of 0 bytes is 0");
  CHECK_EQ(mk_core_prefault((uint8_t *)p + 1, page), 0, "less than a whole page is 0");
  CHECK_EQ(resident(p, 8), 0, "and faults in nothing: the pages are only partly the buffer's");
  p[3 * page + 7] = 42;
  /* From inside page 1 to inside page 6: pages 2 to 5 are wholly inside. */
  CHECK_EQ(mk_core_prefault((uint8_t *)p + page + 100, 5 * page), 0, "prefault of pages 2-5");
  /* Where the kernel lacks MADV_POPULATE_WRITE (before 5.14) nothing is faulted in. */
  int populate = madvise(p + 7 * page, 0, 23 /* MADV_POPULATE_WRITE */) == 0;
  unsigned char vec[8];
  if (populate && CHECK(mincore(p, 8 * page, vec) == 0, "mincore")) {
    int ok = !(vec[0] & 1) && !(vec[1] & 1) && !(vec[6] & 1) && !(vec[7] & 1);
    for (int i = 2; i <= 5; i++) ok = ok && (vec[i] & 1);
    CHECK(ok, "exactly the whole pages inside the buffer are resident");
  }
  CHECK_EQ(p[3 * page + 7], 42, "a byte written before is unchanged");
  CHECK_EQ(p[4 * page], 0, "a prefaulted page reads zeros");
  /* A read-only range: the kernel refuses, the call still returns 0 and nothing faults. */
  CHECK(mprotect(p, 8 * page, PROT_READ) == 0, "mprotect read-only");
  CHECK_EQ(mk_core_prefault((uint8_t *)p, 8 * page), 0, "prefault of read-only pages is 0");
  CHECK_EQ(mk_core_prefault((uint8_t *)UINTPTR_MAX - 10, 100), 0, "a range past 2^64 is 0");
  munmap(p, 8 * page);
}

int main(void) {
  test_identity();
  test_close();
  test_fd_size();
  test_prefault();
  return tap_done();
}
