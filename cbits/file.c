/* file.c: opening regular files for mapping. */
#include "internal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

MK_API int64_t mk_file_open(const char *path, uint32_t flags) {
  if (path == NULL || path[0] == '\0') return -EINVAL;
  if (flags & ~MK_FILE_WRITE) return -EINVAL;
  /* Refuse what is not a regular file before opening it: open() of a device
   * can have effects, and of a directory or socket fails with other errnos. */
  struct stat st;
  if (stat(path, &st) < 0) return -errno;
  if (!S_ISREG(st.st_mode)) return -ENODEV;
  int oflags = O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  oflags |= (flags & MK_FILE_WRITE) ? O_RDWR : O_RDONLY;
  int fd = open(path, oflags);
  if (fd < 0) return -errno;
  /* The path may have changed since stat: check what was opened. */
  if (fstat(fd, &st) < 0) {
    int err = errno;
    close(fd);
    return -err;
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return -ENODEV;
  }
  return fd;
}
