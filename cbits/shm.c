/* shm.c: POSIX shared memory, opened natively under /dev/shm as glibc's
 * shm_open does (open of "/dev/shm/<name>"), with O_NOFOLLOW, O_CLOEXEC and
 * O_NONBLOCK (a FIFO planted there does not block the open), and what lists
 * the segments and the processes that could map them.
 *
 * The names are POSIX names without their leading slash; the library takes
 * no other path here. Permission to touch /dev/shm/<name> is checked by the
 * caller (src/permissions.ts) before any of these is called. */
#include "internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define SHM_DIR "/dev/shm/"

/* "/dev/shm/<name>" for a valid name: not empty, no slash, at most NAME_MAX
 * bytes, not "." or ".."; -EINVAL or -ENAMETOOLONG otherwise. */
static int shm_path(char *out, size_t size, const char *name) {
  if (name == NULL) return -EINVAL;
  size_t n = strnlen(name, NAME_MAX + 1);
  if (n > NAME_MAX) return -ENAMETOOLONG;
  if (n == 0 || strchr(name, '/') != NULL || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
    return -EINVAL;
  }
  int len = snprintf(out, size, SHM_DIR "%s", name);
  return len < 0 || (size_t)len >= size ? -ENAMETOOLONG : 0;
}

/* Reserves [0, size) of fd (fallocate mode 0: every block allocated, the size
 * grown to `size` if smaller, never shrunk). */
static int reserve(int fd, uint64_t size) {
  if (size == 0) return 0;
  int ret;
  do {
    ret = fallocate(fd, 0, 0, (off_t)size);
  } while (ret < 0 && errno == EINTR);
  return ret < 0 ? -errno : 0;
}

MK_API int64_t mk_shm_open(const char *name, uint32_t flags, uint32_t mode, uint64_t size) {
  char path[sizeof SHM_DIR + NAME_MAX + 1];
  int ret = shm_path(path, sizeof path, name);
  if (ret < 0) return ret;
  if (flags & ~(MK_SHM_WRITE | MK_SHM_CREATE | MK_SHM_EXCLUSIVE)) return -EINVAL;
  /* Creating reserves blocks, which needs a writable descriptor. */
  if ((flags & MK_SHM_CREATE) && !(flags & MK_SHM_WRITE)) return -EINVAL;
  if ((flags & MK_SHM_EXCLUSIVE) && !(flags & MK_SHM_CREATE)) return -EINVAL;
  if (mode & ~07777u) return -EINVAL;
  if (!MK_FITS_OFF(size)) return -EOVERFLOW;
  int base = O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY;
  base |= (flags & MK_SHM_WRITE) ? O_RDWR : O_RDONLY;
  int fd = -1, created = 0;
  if (flags & MK_SHM_CREATE) {
    /* Without exclusive: create it, or open what exists (a segment that
     * vanishes between the two tries is created again). */
    for (int tries = 0; fd < 0 && tries < 100; tries++) {
      fd = open(path, base | O_CREAT | O_EXCL, (mode_t)mode);
      if (fd >= 0) {
        created = 1;
        break;
      }
      if (errno != EEXIST || (flags & MK_SHM_EXCLUSIVE)) return -errno;
      fd = open(path, base);
      if (fd < 0 && errno != ENOENT) return -errno;
    }
    if (fd < 0) return -EAGAIN;
  } else {
    fd = open(path, base);
    if (fd < 0) return -errno;
  }
  struct stat st;
  if (fstat(fd, &st) < 0) {
    ret = -errno;
  } else if (!S_ISREG(st.st_mode)) {
    ret = -ENODEV; /* a FIFO, socket or directory someone put there */
  } else if (flags & MK_SHM_CREATE) {
    ret = reserve(fd, size);
  }
  if (ret < 0) {
    /* What this call created and could not reserve is removed again, if the
     * name still names it. */
    struct stat now;
    if (created && stat(path, &now) == 0 && now.st_dev == st.st_dev && now.st_ino == st.st_ino) {
      unlink(path);
    }
    close(fd);
    return ret;
  }
  return fd;
}

MK_API int64_t mk_shm_unlink(const char *name) {
  char path[sizeof SHM_DIR + NAME_MAX + 1];
  int ret = shm_path(path, sizeof path, name);
  if (ret < 0) return ret;
  return mk_ret(unlink(path));
}

MK_API int64_t mk_shm_stat(const char *name, int32_t fd, uint64_t *out) {
  if (out == NULL) return -EFAULT;
  struct stat st;
  if (name != NULL) {
    char path[sizeof SHM_DIR + NAME_MAX + 1];
    int ret = shm_path(path, sizeof path, name);
    if (ret < 0) return ret;
    if (lstat(path, &st) < 0) return -errno;
  } else if (fstat(fd, &st) < 0) {
    return -errno;
  }
  out[0] = (uint64_t)st.st_size;
  out[1] = (uint64_t)st.st_blocks * 512u;
  out[2] = (uint64_t)st.st_mode;
  out[3] = (uint64_t)st.st_uid;
  out[4] = (uint64_t)st.st_gid;
  out[5] = (uint64_t)st.st_ino;
  out[6] = (uint64_t)major(st.st_dev);
  out[7] = (uint64_t)minor(st.st_dev);
  out[8] = (uint64_t)st.st_mtim.tv_sec * 1000u + (uint64_t)st.st_mtim.tv_nsec / 1000000u;
  return 0;
}

/* Every entry name of `dir` for which keep() says yes, NUL-terminated, into
 * buf; returns the bytes all of them need (more than cap: only what fit). */
static int64_t list_dir(const char *dir, int (*keep)(const char *), uint8_t *buf, uint64_t cap) {
  if (buf == NULL && cap > 0) return -EFAULT;
  DIR *d = opendir(dir);
  if (d == NULL) return -errno;
  uint64_t total = 0;
  struct dirent *e;
  errno = 0;
  while ((e = readdir(d)) != NULL) {
    if (!keep(e->d_name)) continue;
    size_t n = strlen(e->d_name) + 1;
    if (total + n <= cap) memcpy(buf + total, e->d_name, n);
    total += n;
  }
  int err = errno;
  closedir(d);
  return err != 0 ? -err : (int64_t)total;
}

static int not_dots(const char *name) { return strcmp(name, ".") != 0 && strcmp(name, "..") != 0; }

static int is_pid(const char *name) {
  if (name[0] < '1' || name[0] > '9') return 0;
  for (const char *c = name; *c; c++) {
    if (*c < '0' || *c > '9') return 0;
  }
  return 1;
}

MK_API int64_t mk_shm_list(uint8_t *buf, uint64_t cap) { return list_dir(SHM_DIR, not_dots, buf, cap); }

MK_API int64_t mk_shm_pids(uint8_t *buf, uint64_t cap) { return list_dir("/proc", is_pid, buf, cap); }

MK_API int64_t mk_shm_read(int32_t fd, uint64_t offset, uint8_t *buf, uint64_t length) {
  if (buf == NULL && length > 0) return -EFAULT;
  if (!MK_FITS_OFF(offset) || !MK_FITS_OFF(length) || offset + length < offset) return -EOVERFLOW;
  uint64_t done = 0;
  while (done < length) {
    ssize_t n = pread(fd, buf + done, (size_t)(length - done), (off_t)(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return done > 0 ? (int64_t)done : -errno;
    }
    if (n == 0) break; /* the end of the segment */
    done += (uint64_t)n;
  }
  return (int64_t)done;
}

MK_API int64_t mk_shm_write(int32_t fd, uint64_t offset, const uint8_t *buf, uint64_t length) {
  if (buf == NULL && length > 0) return -EFAULT;
  if (!MK_FITS_OFF(offset) || !MK_FITS_OFF(length) || offset + length < offset) return -EOVERFLOW;
  struct stat st;
  if (fstat(fd, &st) < 0) return -errno;
  /* Never past the end: a write there would grow the segment. */
  uint64_t size = (uint64_t)st.st_size;
  if (offset >= size) return 0;
  if (length > size - offset) length = size - offset;
  uint64_t done = 0;
  while (done < length) {
    ssize_t n = pwrite(fd, buf + done, (size_t)(length - done), (off_t)(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return done > 0 ? (int64_t)done : -errno;
    }
    done += (uint64_t)n;
  }
  return (int64_t)done;
}

MK_API int64_t mk_shm_resize(int32_t fd, uint64_t size, uint64_t *busy) {
  if (!MK_FITS_OFF(size)) return -EOVERFLOW;
  struct stat st;
  if (fstat(fd, &st) < 0) return -errno;
  /* Growing reserves the new blocks; shrinking is refused under a mapping of
   * this process, as for a memfd. */
  if (size >= (uint64_t)st.st_size) return reserve(fd, size);
  return mk_memfd_resize(fd, size, busy);
}
