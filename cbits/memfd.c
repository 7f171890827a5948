/* memfd.c: anonymous files to map, share and seal. */
#include "internal.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* Linux >= 6.3 (uapi memfd.h); older userspace headers may lack them. */
#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif
#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif
#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x0020
#endif

_Static_assert(MK_SEAL_SEAL == F_SEAL_SEAL, "seal bits match the kernel's");
_Static_assert(MK_SEAL_SHRINK == F_SEAL_SHRINK, "seal bits match the kernel's");
_Static_assert(MK_SEAL_GROW == F_SEAL_GROW, "seal bits match the kernel's");
_Static_assert(MK_SEAL_WRITE == F_SEAL_WRITE, "seal bits match the kernel's");
_Static_assert(MK_SEAL_FUTURE_WRITE == F_SEAL_FUTURE_WRITE, "seal bits match the kernel's");
_Static_assert(MK_SEAL_EXEC == F_SEAL_EXEC, "seal bits match the kernel's");

#define MK_SEAL_ALL                                                                  \
  (MK_SEAL_SEAL | MK_SEAL_SHRINK | MK_SEAL_GROW | MK_SEAL_WRITE | MK_SEAL_FUTURE_WRITE | \
   MK_SEAL_EXEC)

MK_API int64_t mk_memfd_create(const char *name, uint32_t flags) {
  if (name == NULL) return -EINVAL;
  if (flags & ~(MK_MEMFD_SEALABLE | MK_MEMFD_NOEXEC)) return -EINVAL;
  /* The kernel limits names to 249 bytes ("memfd:" + name < NAME_MAX). */
  if (strnlen(name, 250) > 249) return -ENAMETOOLONG;
  unsigned int mfd = MFD_CLOEXEC;
  if (flags & MK_MEMFD_SEALABLE) mfd |= MFD_ALLOW_SEALING;
  if (flags & MK_MEMFD_NOEXEC) mfd |= MFD_NOEXEC_SEAL;
  return mk_ret(memfd_create(name, mfd));
}

MK_API int64_t mk_memfd_create_sized(const char *name, uint32_t flags, uint64_t size) {
  if (!MK_FITS_OFF(size)) return -EFBIG;
  int64_t fd = mk_memfd_create(name, flags);
  if (fd < 0 || size == 0) return fd;
  if (ftruncate((int)fd, (off_t)size) < 0) {
    int err = errno;
    close((int)fd);
    return -(int64_t)err;
  }
  return fd;
}

/* The file a mapping maps, and how far into it a mapping may reach. */
struct mk_mapped_file {
  uint32_t major, minor;
  uint64_t ino, end;
};

/* Whether the mapping [start, stop) at file offset `offset` of (major:minor,
 * ino) reaches past f->end; if so, records it in found. */
static int reaches_past(const struct mk_mapped_file *f, uint32_t major, uint32_t minor,
                           uint64_t ino, uint64_t start, uint64_t stop, uint64_t offset,
                           uint64_t found[3]) {
  if (major != f->major || minor != f->minor || ino != f->ino) return 0;
  uint64_t reach = offset + (stop - start);
  if (reach <= f->end) return 0;
  found[0] = start;
  found[1] = stop;
  found[2] = reach;
  return 1;
}

/* One line of /proc/self/maps ("start-end perms offset maj:min inode name"). */
static int maps_line(const char *line, const struct mk_mapped_file *f, uint64_t found[3]) {
  unsigned long long start, stop, offset, ino;
  unsigned int major, minor;
  char perms[5];
  if (sscanf(line, "%llx-%llx %4s %llx %x:%x %llu", &start, &stop, perms, &offset, &major, &minor,
             &ino) != 7) {
    return 0;
  }
  return reaches_past(f, major, minor, ino, start, stop, offset, found);
}

/* Reads /proc/self/maps from fd line by line (a line longer than the buffer
 * keeps only its head, which holds every field used here). */
static int maps_parse(int fd, const struct mk_mapped_file *f, uint64_t found[3]) {
  char buf[8192 + 1];
  size_t have = 0;
  int skipping = 0; /* inside the tail of a line already parsed */
  for (;;) {
    ssize_t n = read(fd, buf + have, sizeof buf - 1 - have);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (n == 0 && have == 0) return 0;
    size_t len = have + (size_t)n;
    size_t at = 0;
    for (;;) {
      char *nl = memchr(buf + at, '\n', len - at);
      if (nl == NULL) break;
      *nl = '\0';
      if (!skipping && maps_line(buf + at, f, found)) return 1;
      skipping = 0;
      at = (size_t)(nl - buf) + 1;
    }
    have = len - at;
    memmove(buf, buf + at, have);
    if (n == 0 || have == sizeof buf - 1) {
      /* The end of the file without a newline, or a line longer than buf. */
      buf[have] = '\0';
      if (!skipping && maps_line(buf, f, found)) return 1;
      if (n == 0) return 0;
      skipping = 1;
      have = 0;
    }
  }
}

int mk_memfd_mapped_past(uint32_t dev_major, uint32_t dev_minor, uint64_t ino, uint64_t end,
                         int parse, uint64_t found[3]) {
  const struct mk_mapped_file f = {dev_major, dev_minor, ino, end};
  /* Only this process's own map, for its own safety: nothing read here is
   * returned but the one mapping that makes the shrink unsafe. */
  int fd = mk_proc_open(0, "maps");
  if (fd < 0) return fd;
  int ret = 0;
  uint64_t address = 0;
  while (!parse) {
    struct mk_procmap_query q;
    memset(&q, 0, sizeof q);
    q.size = sizeof q;
    q.query_flags = MK_PROCMAP_COVERING_OR_NEXT | MK_PROCMAP_FILE_BACKED;
    q.query_addr = address;
    if (ioctl(fd, MK_PROCMAP_QUERY, &q) < 0) {
      int err = errno;
      if (err == ENOENT) break; /* no file mapping at or after address */
      if (err == EINTR) continue;
      if (address == 0 && (err == ENOTTY || err == EINVAL)) {
        parse = 1; /* a kernel before 6.11: read the text instead */
        break;
      }
      ret = -err;
      break;
    }
    if (reaches_past(&f, q.dev_major, q.dev_minor, q.inode, q.vma_start, q.vma_end,
                        q.vma_offset, found)) {
      ret = 1;
      break;
    }
    address = q.vma_end;
  }
  if (parse) ret = maps_parse(fd, &f, found);
  close(fd);
  return ret;
}

MK_API int64_t mk_memfd_resize(int32_t fd, uint64_t size, uint64_t *busy) {
  if (!MK_FITS_OFF(size)) return -EFBIG;
  struct stat st;
  if (fstat(fd, &st) < 0) return -errno;
  if (size < (uint64_t)st.st_size) {
    /* A page faults (SIGBUS) once it starts at or past the end of the file:
     * every mapping must end within the last page that keeps a byte. */
    uint64_t page = mk_core_page();
    uint64_t keep = (size + page - 1) / page * page;
    uint64_t found[3];
    int ret = mk_memfd_mapped_past(major(st.st_dev), minor(st.st_dev), (uint64_t)st.st_ino, keep,
                                   0, found);
    if (ret < 0) return ret;
    if (ret > 0) {
      if (busy != NULL) memcpy(busy, found, sizeof found);
      return -EBUSY;
    }
  }
  return mk_ret(ftruncate(fd, (off_t)size));
}

MK_API int64_t mk_memfd_seal(int32_t fd, uint32_t seals) {
  if (seals & ~MK_SEAL_ALL) return -EINVAL;
  return mk_ret(fcntl(fd, F_ADD_SEALS, (int)seals));
}

MK_API int64_t mk_memfd_seals(int32_t fd) { return mk_ret(fcntl(fd, F_GET_SEALS)); }

MK_API int64_t mk_memfd_noexec_supported(void) {
  int fd = memfd_create("memkit-probe", MFD_CLOEXEC | MFD_NOEXEC_SEAL);
  if (fd < 0) return errno == EINVAL ? 0 : -errno;
  close(fd);
  return 1;
}
