/* test_core.c: mk_core_* against the kernel: identity, page size, close, fd size. */
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

int main(void) {
  test_identity();
  test_close();
  test_fd_size();
  return tap_done();
}
