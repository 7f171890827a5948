/* device.c: opening a character device or a file of the kernel's own
 * filesystems (debugfs, sysfs, tracefs) for mapping (mapDevice). */
#include "internal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <unistd.h>

/* The f_type of statfs (linux/magic.h). */
#define MK_DEBUGFS_MAGIC 0x64626720u
#define MK_SYSFS_MAGIC 0x62656572u
#define MK_TRACEFS_MAGIC 0x74726163u

/* What fd is, as an MK_DEVICE_* kind (info[1..3] as mk_device_open says);
 * -errno when fstat or fstatfs fails. */
static int64_t device_kind(int fd, uint64_t *info) {
  struct stat st;
  struct statfs fs;
  if (fstat(fd, &st) < 0 || fstatfs(fd, &fs) < 0) return -errno;
  info[1] = (uint64_t)(uint32_t)fs.f_type;
  if (S_ISCHR(st.st_mode)) {
    info[2] = major(st.st_rdev);
    info[3] = minor(st.st_rdev);
    return MK_DEVICE_CHAR;
  }
  if (S_ISDIR(st.st_mode)) return MK_DEVICE_DIRECTORY;
  if (!S_ISREG(st.st_mode)) return MK_DEVICE_OTHER;
  switch ((uint32_t)fs.f_type) {
    case MK_DEBUGFS_MAGIC: return MK_DEVICE_DEBUGFS;
    case MK_SYSFS_MAGIC: return MK_DEVICE_SYSFS;
    case MK_TRACEFS_MAGIC: return MK_DEVICE_TRACEFS;
    default: return MK_DEVICE_REGULAR;
  }
}

static int64_t refusal(int64_t kind) {
  if (kind < 0) return kind;
  if (kind == MK_DEVICE_DIRECTORY) return -EISDIR;
  if (kind >= MK_DEVICE_REGULAR) return -ENODEV;
  return 0;
}

MK_API int64_t mk_device_open(const char *path, uint32_t flags, int32_t pathfd, uint64_t *info) {
  if (path == NULL || path[0] != '/' || info == NULL) return -EINVAL;
  if (flags & ~MK_DEVICE_WRITE) return -EINVAL;
  info[0] = info[1] = info[2] = info[3] = 0;
  /* Judged before opening: open() of a FIFO blocks, and a regular file is
   * mapFile()'s (which guards it against SIGBUS). */
  int64_t kind = device_kind(pathfd, info);
  if (kind > 0) info[0] = (uint64_t)kind;
  int64_t refused = refusal(kind);
  if (refused < 0) return refused;
  int oflags = O_CLOEXEC | O_NOCTTY | ((flags & MK_DEVICE_WRITE) ? O_RDWR : O_RDONLY);
  int fd = mk_file_open_checked(path, oflags, pathfd);
  if (fd < 0) return fd;
  kind = device_kind(fd, info);
  if (kind > 0) info[0] = (uint64_t)kind;
  refused = refusal(kind);
  if (refused < 0) {
    close(fd);
    return refused;
  }
  return fd;
}
