/* advise.c: pinning and advice: mlock2/munlock, madvise, the feature probes
 * for advice newer than the system headers, and the RLIMIT_MEMLOCK that
 * refusals name. */
#include "internal.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MLOCK_ONFAULT
#define MLOCK_ONFAULT 0x01
#endif
_Static_assert(MK_LOCK_ONFAULT == MLOCK_ONFAULT, "lock flags match the kernel's");
_Static_assert(MK_MADV_DONTNEED == MADV_DONTNEED, "advice matches the kernel's");
_Static_assert(MK_MADV_REMOVE == MADV_REMOVE, "advice matches the kernel's");
_Static_assert(MK_MADV_HUGEPAGE == MADV_HUGEPAGE, "advice matches the kernel's");

static int known_advice(uint32_t advice) {
  switch (advice) {
    case MK_MADV_NORMAL:
    case MK_MADV_RANDOM:
    case MK_MADV_SEQUENTIAL:
    case MK_MADV_WILLNEED:
    case MK_MADV_DONTNEED:
    case MK_MADV_FREE:
    case MK_MADV_REMOVE:
    case MK_MADV_HUGEPAGE:
    case MK_MADV_NOHUGEPAGE:
    case MK_MADV_COLD:
    case MK_MADV_PAGEOUT:
    case MK_MADV_POPULATE_READ:
    case MK_MADV_POPULATE_WRITE:
    case MK_MADV_GUARD_INSTALL:
    case MK_MADV_GUARD_REMOVE:
      return 1;
    default:
      return 0;
  }
}

MK_API int64_t mk_advise_lock(uint64_t address, uint64_t length, uint32_t flags) {
  if (address == 0 || length == 0 || (flags & ~(uint32_t)MK_LOCK_ONFAULT)) return -EINVAL;
#ifdef SYS_mlock2
  return mk_ret(syscall(SYS_mlock2, (void *)(uintptr_t)address, (size_t)length,
                        (unsigned long)flags));
#else
  if (flags != 0) return -ENOSYS;
  return mk_ret(syscall(SYS_mlock, (void *)(uintptr_t)address, (size_t)length));
#endif
}

MK_API int64_t mk_advise_unlock(uint64_t address, uint64_t length) {
  if (address == 0 || length == 0) return -EINVAL;
  /* The system call itself: sanitizers replace munlock() with a no-op. */
  return mk_ret(syscall(SYS_munlock, (void *)(uintptr_t)address, (size_t)length));
}

MK_API int64_t mk_advise_range(uint64_t address, uint64_t length, uint32_t advice) {
  if (address == 0 || length == 0 || !known_advice(advice)) return -EINVAL;
  return mk_ret(madvise((void *)(uintptr_t)address, (size_t)length, (int)advice));
}

/* Whether `advice` succeeds on one fresh page of the given mmap flags. */
static int accepted(uint32_t advice, int flags) {
  const size_t page = (size_t)mk_core_page();
  void *p = mmap(NULL, page, PROT_READ | PROT_WRITE, flags | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return -errno;
  int ok = madvise(p, page, (int)advice) == 0;
  int err = errno;
  munmap(p, page);
  if (ok) return 1;
  /* EINVAL is "unknown advice, or not for this kind of memory"; anything
   * else (ENOMEM, EAGAIN) says the kernel knows it. */
  return err == EINVAL ? 0 : 1;
}

MK_API int64_t mk_advise_probe(uint32_t advice) {
  if (!known_advice(advice)) return -EINVAL;
  int64_t bits = 0;
  int priv = accepted(advice, MAP_PRIVATE);
  if (priv < 0) return priv;
  int shared = accepted(advice, MAP_SHARED);
  if (shared < 0) return shared;
  if (priv) bits |= MK_PROBE_PRIVATE;
  if (shared) bits |= MK_PROBE_SHARED;
  return bits;
}

MK_API int64_t mk_advise_memlock_limit(uint64_t *out) {
  if (out == NULL) return -EFAULT;
  struct rlimit rl;
  if (getrlimit(RLIMIT_MEMLOCK, &rl) < 0) return -errno;
  out[0] = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
  out[1] = rl.rlim_max == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_max;
  return 0;
}

MK_API int64_t mk_advise_compact(void) {
  int fd = open("/proc/sys/vm/compact_memory", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  ssize_t n = write(fd, "1", 1);
  int err = errno;
  close(fd);
  if (n < 0) return -err;
  return n == 1 ? 0 : -EIO;
}
