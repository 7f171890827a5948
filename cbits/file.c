/* file.c: opening regular files for mapping. */
#include "internal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

MK_API int64_t mk_file_open(const char *path, uint32_t flags) {
  if (path == NULL || path[0] == '\0') return -EINVAL;
  if (flags & ~MK_FILE_WRITE) return -EINVAL;
  int oflags = O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  oflags |= (flags & MK_FILE_WRITE) ? O_RDWR : O_RDONLY;
  int fd = open(path, oflags);
  if (fd < 0) return -errno;
  struct stat st;
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
