/* proc.c: reading /proc/<pid>/{maps,smaps,smaps_rollup} in sequence, PROCMAP_QUERY,
 * and the capability that decides whether pagemap shows PFNs.
 *
 * The paths are built here from a pid (0 meaning /proc/self): the library
 * takes no arbitrary path for /proc. */
#include "internal.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>


static const char *const PROC_FILES[] = {"maps", "smaps", "smaps_rollup"};

/* "/proc/self/<file>" or "/proc/<pid>/<file>"; -EINVAL for a negative pid. */
int mk_proc_path(char *out, size_t size, int32_t pid, const char *file) {
  int n = pid == 0 ? snprintf(out, size, "/proc/self/%s", file)
                   : snprintf(out, size, "/proc/%d/%s", (int)pid, file);
  return pid < 0 || n < 0 || (size_t)n >= size ? -EINVAL : 0;
}

int mk_proc_open(int32_t pid, const char *file) {
  char path[64];
  int ret = mk_proc_path(path, sizeof path, pid, file);
  if (ret < 0) return ret;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  return fd < 0 ? -errno : fd;
}

MK_API int64_t mk_proc_open_file(int32_t pid, uint32_t which) {
  if (which > MK_PROC_SMAPS_ROLLUP) return -EINVAL;
  return mk_proc_open(pid, PROC_FILES[which]);
}

MK_API int64_t mk_proc_read_next(int32_t fd, uint8_t *buf, uint64_t cap) {
  if (buf == NULL && cap > 0) return -EFAULT;
  if (!MK_FITS_OFF(cap)) return -EINVAL;
  /* seq_file files are read in sequence, in chunks the kernel chooses: read
   * on until buf is full, so that fewer than cap bytes means the end. */
  uint64_t total = 0;
  while (total < cap) {
    ssize_t n = read(fd, buf + total, (size_t)(cap - total));
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (n == 0) break;
    total += (uint64_t)n;
  }
  return (int64_t)total;
}

MK_API int64_t mk_proc_query(int32_t pid, uint64_t address, uint32_t flags, void *out,
                             uint8_t *name, uint32_t name_cap) {
  if (flags & ~MK_PROCMAP_QUERY_FLAGS) return -EINVAL;
  if (out == NULL) return -EFAULT;
  int fd = mk_proc_open(pid, "maps");
  /* ENOENT from the ioctl means "no mapping": a missing process is ESRCH. */
  if (fd == -ENOENT) return -ESRCH;
  if (fd < 0) return fd;
  struct mk_procmap_query q;
  memset(&q, 0, sizeof q);
  q.size = sizeof q;
  q.query_flags = flags;
  q.query_addr = address;
  q.vma_name_size = name == NULL ? 0 : name_cap;
  q.vma_name_addr = (uint64_t)(uintptr_t)name;
  int rc = ioctl(fd, MK_PROCMAP_QUERY, &q);
  int err = errno;
  close(fd);
  if (rc < 0) return -err;
  uint64_t *o = out;
  o[0] = q.vma_start;
  o[1] = q.vma_end;
  o[2] = q.vma_flags;
  o[3] = q.vma_page_size;
  o[4] = q.vma_offset;
  o[5] = q.inode;
  o[6] = q.dev_major;
  o[7] = q.dev_minor;
  /* The kernel counts the NUL in vma_name_size; 0 means no name. */
  o[8] = q.vma_name_size > 0 ? q.vma_name_size - 1 : 0;
  return 0;
}

MK_API int64_t mk_proc_cap_sys_admin(void) {
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
  memset(data, 0, sizeof data);
  if (syscall(SYS_capget, &hdr, data) < 0) return -errno;
  return (data[CAP_TO_INDEX(CAP_SYS_ADMIN)].effective & CAP_TO_MASK(CAP_SYS_ADMIN)) ? 1 : 0;
}
