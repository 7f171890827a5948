/* core.c: library identity, the page size and file descriptor helpers. */
#include "internal.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

MK_API int64_t mk_core_abi_version(void) { return MK_ABI_VERSION; }

uint64_t mk_core_page(void) { return (uint64_t)sysconf(_SC_PAGESIZE); }

MK_API int64_t mk_core_page_size(void) { return (int64_t)mk_core_page(); }

MK_API int64_t mk_core_close(int32_t fd) {
  if (fd < 0) return -EBADF;
  /* Linux releases the descriptor even when close reports EINTR. */
  int ret = close(fd);
  if (ret < 0 && errno == EINTR) return 0;
  return mk_ret(ret);
}

MK_API int64_t mk_core_fd_size(int32_t fd) {
  struct stat st;
  if (fstat(fd, &st) < 0) return -errno;
  return (int64_t)st.st_size;
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

MK_API int64_t mk_core_prefault(uint8_t *buf, uint64_t length) {
  uint64_t page = mk_core_page();
  uintptr_t at = (uintptr_t)buf;
  if (buf == NULL || length > UINTPTR_MAX - at) return 0;
  /* Only whole pages of the buffer: the pages it shares with its
   * neighbours are theirs to fault. */
  uintptr_t first = (at + page - 1) / page * page, end = (at + length) / page * page;
  if (end > first) (void)madvise((void *)first, end - first, MADV_POPULATE_WRITE);
  return 0;
}
