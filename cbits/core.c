/* core.c: library identity, the page size and file descriptor helpers. */
#include "internal.h"

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
