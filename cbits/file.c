/* file.c: opening exactly the path the permission gate checked, and regular
 * files for mapping. */
#include "internal.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

MK_API int64_t mk_file_path_open(const char *path, uint8_t *resolved, uint64_t cap) {
  if (path == NULL || path[0] != '/') return -EINVAL;
  if (resolved == NULL || cap < 2) return -EFAULT;
  /* O_PATH looks the path up without opening the file: no driver's open()
   * runs and nothing of it is read. */
  int fd = open(path, O_PATH | O_CLOEXEC);
  if (fd < 0) return -errno;
  char link[32];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  /* What the kernel resolved the path to (symlinks followed): this process's
   * own descriptor, read so that the gate can check it too. */
  ssize_t n = readlink(link, (char *)resolved, (size_t)(cap > 65536 ? 65536 : cap) - 1);
  if (n < 0 || (uint64_t)n >= cap - 1) {
    int err = n < 0 ? errno : ENAMETOOLONG;
    close(fd);
    return -err;
  }
  resolved[n] = '\0';
  return fd;
}

int mk_file_open_checked(const char *path, int oflags, int pathfd) {
  int fd = open(path, oflags);
  if (fd < 0) return -errno;
  struct stat a, b;
  int err = 0;
  if (fstat(fd, &a) < 0 || fstat(pathfd, &b) < 0) {
    err = errno;
  } else if (a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
    /* The path now names another file than the one checked: it changed. */
    err = ESTALE;
  }
  if (err != 0) {
    close(fd);
    return -err;
  }
  return fd;
}

MK_API int64_t mk_file_open(const char *path, uint32_t flags, int32_t pathfd) {
  if (path == NULL || path[0] != '/') return -EINVAL;
  if (flags & ~MK_FILE_WRITE) return -EINVAL;
  /* Refuse what is not a regular file before opening it: open() of a device
   * can have effects, and of a directory or socket fails with other errnos. */
  struct stat st;
  if (fstat(pathfd, &st) < 0) return -errno;
  if (!S_ISREG(st.st_mode)) return -ENODEV;
  int oflags = O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  oflags |= (flags & MK_FILE_WRITE) ? O_RDWR : O_RDONLY;
  /* The path may have changed since it was checked: what was opened must be
   * the file the gate checked. */
  return mk_file_open_checked(path, oflags, pathfd);
}

MK_API int64_t mk_file_reserve(int32_t fd, uint64_t offset, uint64_t length) {
  if (!MK_FITS_OFF(offset) || !MK_FITS_OFF(length) || offset + length < offset) {
    return -EOVERFLOW;
  }
  if (length == 0) return 0;
  /* Allocate every hole of the window now: a store into a hole that the
   * filesystem cannot back raises SIGBUS, an fallocate says ENOSPC. */
  int ret;
  do {
    ret = fallocate(fd, FALLOC_FL_KEEP_SIZE, (off_t)offset, (off_t)length);
  } while (ret < 0 && errno == EINTR);
  if (ret == 0) return 0;
  int err = errno;
  if (err != EOPNOTSUPP) return -err;
  /* The filesystem cannot reserve: safe only when the window has no hole. */
  off_t hole = lseek(fd, (off_t)offset, SEEK_HOLE);
  if (hole < 0) return errno == ENXIO ? 0 : -errno;
  return (uint64_t)hole >= offset + length ? 0 : -EOPNOTSUPP;
}
