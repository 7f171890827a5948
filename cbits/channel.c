/* channel.c: the shared ring of a channel between two processes: its
 * mapping; the two steps of its sleep protocol taken only around a sleep
 * (the busy path is JavaScript's own Atomics: src/channel.ts); and the
 * peer's process, as a pidfd, so that its death is seen without the
 * socket's hangup. */
#include "internal.h"

#include <poll.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77 /* Linux 6.5; older headers lack it */
#endif

_Static_assert(MK_CHANNEL_OFF_HEAD % 64 == 0 && MK_CHANNEL_OFF_TAIL % 64 == 0,
               "head and tail on cache lines of their own");

MK_API int64_t mk_channel_map(int32_t fd, uint64_t capacity) {
  const uint64_t page = mk_core_page();
  if (capacity < page || (capacity & (capacity - 1)) || capacity > ((uint64_t)1 << 31)) {
    return -EINVAL;
  }
  uint64_t span = page + 2 * capacity;
  uint8_t *base = mk_map_reserve(span);
  if (base == MAP_FAILED) return -(int64_t)errno;
  void *h = mmap(base, (size_t)page, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
  int ret = h == MAP_FAILED ? -errno : mk_ring_place(base + page, fd, page, capacity);
  if (ret < 0) {
    munmap(base, (size_t)span);
    return ret;
  }
  return (int64_t)(uintptr_t)base;
}

/* The header word at `offset`, which the caller keeps inside the header page. */
static _Atomic uint32_t *word(uint64_t header, uint32_t offset) {
  return (_Atomic uint32_t *)(uintptr_t)(header + (offset & ~3u));
}

MK_API int64_t mk_channel_publish(uint64_t header, uint32_t offset, uint32_t value,
                                  uint32_t wait_offset, int32_t eventfd) {
  if (offset >= 4096 || wait_offset >= 4096) return -EINVAL;
  atomic_store(word(header, offset), value);
  _Atomic uint32_t *wait = word(header, wait_offset);
  if (atomic_load(wait) == 0 || atomic_exchange(wait, 0) == 0) return 0;
  uint64_t one = 1;
  if (write(eventfd, &one, sizeof one) < 0 && errno != EAGAIN) return -errno;
  return 1;
}

MK_API int64_t mk_channel_arm(uint64_t header, uint32_t wait_offset, uint32_t offset,
                              uint32_t seen) {
  if (offset >= 4096 || wait_offset >= 4096) return -EINVAL;
  _Atomic uint32_t *wait = word(header, wait_offset);
  atomic_store(wait, 1);
  if (atomic_load(word(header, offset)) != seen) {
    atomic_store(wait, 0);
    return 1;
  }
  return 0;
}

/* Clock ticks since boot now (the unit of a process's start time). */
static uint64_t boot_ticks(void) {
  struct timespec ts;
  clock_gettime(CLOCK_BOOTTIME, &ts);
  long hz = sysconf(_SC_CLK_TCK);
  if (hz <= 0) hz = 100;
  return (uint64_t)ts.tv_sec * (uint64_t)hz + (uint64_t)ts.tv_nsec / (1000000000u / (uint64_t)hz);
}

/* 1 while the process of a pidfd lives, 0 once it has exited. */
static int pidfd_alive(int fd) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  int r;
  do {
    r = poll(&p, 1, 0);
  } while (r < 0 && errno == EINTR);
  return r == 0 ? 1 : 0;
}

MK_API int64_t mk_channel_peer(int32_t sock, int64_t *out) {
  out[0] = out[1] = 0;
  /* Before the credentials are read: a process that started after this is
   * not the one that made the socket, whose pid it reused. */
  uint64_t before = boot_ticks();
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) return -errno;
  if (cred.pid <= 0) return -ESRCH;
  int pidfd = -1;
  int fd;
  len = sizeof fd;
  if (getsockopt(sock, SOL_SOCKET, SO_PEERPIDFD, &fd, &len) == 0) {
    pidfd = fd; /* the peer itself, whatever its pid became */
  } else if (errno == ESRCH) {
    return -ESRCH; /* it has exited */
  } else {
    long r = syscall(SYS_pidfd_open, (pid_t)cred.pid, 0);
    if (r < 0 && errno != ENOSYS) return -errno;
    pidfd = r < 0 ? -1 : (int)r;
  }
  uint64_t start = 0;
  int ret = mk_lock_start_time(cred.pid, &start);
  if (ret == 0 && start > before) ret = -ESRCH; /* the pid was reused */
  /* The start time read belongs to the pidfd's process only while it lives. */
  if (ret == 0 && pidfd >= 0 && !pidfd_alive(pidfd)) ret = -ESRCH;
  if (ret < 0) {
    if (pidfd >= 0) close(pidfd);
    return ret == -ENOENT ? -ESRCH : ret;
  }
  out[0] = cred.pid;
  out[1] = (int64_t)((uint64_t)cred.pid | (start & 0x7fffffffull) << 32);
  if (pidfd < 0) return -ENOSYS;
  return pidfd;
}

MK_API int64_t mk_channel_alive(int32_t pidfd, uint64_t identity) {
  if (pidfd >= 0) return pidfd_alive(pidfd);
  return mk_lock_alive(identity);
}
