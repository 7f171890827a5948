/* socket.c: descriptors passed over a Unix socket (SCM_RIGHTS), checked
 * before anyone maps them, and waits the caller can interrupt. */
#include "internal.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <unistd.h>

_Static_assert(MK_POLL_IN == POLLIN, "poll bits match the kernel's");
_Static_assert(MK_POLL_OUT == POLLOUT, "poll bits match the kernel's");
_Static_assert(MK_POLL_ERR == POLLERR, "poll bits match the kernel's");
_Static_assert(MK_POLL_HUP == POLLHUP, "poll bits match the kernel's");
_Static_assert(MK_POLL_RDHUP == POLLRDHUP, "poll bits match the kernel's");
_Static_assert(MK_SOCKET_PATH_MAX + 1 == sizeof(((struct sockaddr_un *)0)->sun_path),
               "the path limit is sun_path's");

/* sockaddr_un for path; -ENAMETOOLONG when it does not fit, -EINVAL when
 * it is empty (the abstract namespace is not offered: no file, no gate). */
static int unix_address(const char *path, struct sockaddr_un *sa) {
  if (path == NULL || path[0] == '\0') return -EINVAL;
  size_t len = strnlen(path, MK_SOCKET_PATH_MAX + 1);
  if (len > MK_SOCKET_PATH_MAX) return -ENAMETOOLONG;
  memset(sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  memcpy(sa->sun_path, path, len);
  return 0;
}

static int seqpacket(void) {
  return socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
}

/* Whether a socket file at sa is stale: nobody accepts connections there. */
static int stale(const struct sockaddr_un *sa) {
  int probe = seqpacket();
  if (probe < 0) return -errno;
  int ret = connect(probe, (const struct sockaddr *)sa, sizeof *sa);
  int err = errno;
  close(probe);
  if (ret == 0) return 0;
  /* ECONNREFUSED: the file exists and no socket listens on it; EPROTOTYPE:
   * one of another type does, which is still someone's. */
  return err == ECONNREFUSED ? 1 : 0;
}

MK_API int64_t mk_socket_listen(const char *path, uint64_t *ino) {
  struct sockaddr_un sa;
  int ret = unix_address(path, &sa);
  if (ret < 0) return ret;
  int fd = seqpacket();
  if (fd < 0) return -errno;
  for (int attempt = 0;; attempt++) {
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0) break;
    int err = errno;
    struct stat st;
    if (err != EADDRINUSE || attempt > 0 || lstat(path, &st) < 0) {
      close(fd);
      return -err;
    }
    if (!S_ISSOCK(st.st_mode)) {
      close(fd);
      return -EEXIST;
    }
    int s = stale(&sa);
    if (s <= 0) {
      close(fd);
      return s < 0 ? s : -EADDRINUSE;
    }
    if (unlink(path) < 0 && errno != ENOENT) {
      err = errno;
      close(fd);
      return -err;
    }
  }
  struct stat st;
  if (listen(fd, 64) < 0 || lstat(path, &st) < 0) {
    int err = errno;
    close(fd);
    unlink(path);
    return -err;
  }
  if (ino != NULL) *ino = (uint64_t)st.st_ino;
  return fd;
}

MK_API int64_t mk_socket_unlink(const char *path, uint64_t ino) {
  struct stat st;
  if (path == NULL) return -EINVAL;
  if (lstat(path, &st) < 0) return errno == ENOENT ? 0 : -errno;
  if (!S_ISSOCK(st.st_mode) || (uint64_t)st.st_ino != ino) return 0;
  if (unlink(path) < 0) return errno == ENOENT ? 0 : -errno;
  return 1;
}

MK_API int64_t mk_socket_accept(int32_t fd) {
  for (;;) {
    int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (c >= 0) {
      /* A peer that connected and left without a word (mk_socket_listen's
       * own probe for a stale socket file, from another process): skipped. */
      struct pollfd p = {.fd = c, .events = POLLIN};
      char b;
      if (poll(&p, 1, 0) == 1 && (p.revents & POLLHUP) &&
          recv(c, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0) {
        close(c);
        continue;
      }
      return c;
    }
    /* A connection that was reset before it was accepted: the next one. */
    if (errno == ECONNABORTED || errno == EINTR) continue;
    return -errno;
  }
}

MK_API int64_t mk_socket_connect(const char *path) {
  struct sockaddr_un sa;
  int ret = unix_address(path, &sa);
  if (ret < 0) return ret;
  int fd = seqpacket();
  if (fd < 0) return -errno;
  /* A Unix connect completes at once or fails (-EAGAIN: the backlog is full). */
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int err = errno;
    close(fd);
    return -err;
  }
  return fd;
}

MK_API int64_t mk_socket_send(int32_t fd, const int32_t *fds, uint32_t nfds, const uint8_t *data,
                              uint64_t len) {
  if (nfds > MK_SOCKET_MAX_FDS || (nfds > 0 && fds == NULL)) return -EINVAL;
  if ((len > 0 && data == NULL) || (len == 0 && nfds == 0)) return -EINVAL;
  if (len > (uint64_t)INT32_MAX) return -EMSGSIZE;
  union {
    char buf[CMSG_SPACE(sizeof(int) * MK_SOCKET_MAX_FDS)];
    struct cmsghdr align;
  } control;
  char empty = 0;
  struct iovec iov = {.iov_base = len ? (void *)data : &empty, .iov_len = (size_t)len};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
  if (nfds > 0) {
    memset(&control, 0, sizeof control);
    msg.msg_control = control.buf;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
  }
  for (;;) {
    ssize_t n = sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) return n;
    if (errno != EINTR) return -errno;
  }
}

/* Closes every descriptor of every SCM_RIGHTS message in msg. */
static void close_rights(struct msghdr *msg) {
  for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c != NULL; c = CMSG_NXTHDR(msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    int *p = (int *)CMSG_DATA(c);
    for (size_t i = 0; i < n; i++) {
      int one;
      memcpy(&one, p + i, sizeof one);
      close(one);
    }
  }
}

MK_API int64_t mk_socket_recv(int32_t fd, uint8_t *data, uint64_t cap, int32_t *fds,
                              uint32_t maxfds, uint64_t *info) {
  if (info == NULL || maxfds > MK_SOCKET_MAX_FDS || (maxfds > 0 && fds == NULL)) return -EINVAL;
  if (cap > 0 && data == NULL) return -EINVAL;
  if (cap > (uint64_t)INT32_MAX) cap = INT32_MAX;
  info[0] = info[1] = 0;
  /* Room for MK_SOCKET_MAX_FDS whatever maxfds is: more than maxfds is then
   * seen (and closed) here, rather than left to the kernel's rounding. */
  union {
    char buf[CMSG_SPACE(sizeof(int) * MK_SOCKET_MAX_FDS)];
    struct cmsghdr align;
  } control;
  char scratch;
  struct iovec iov = {.iov_base = cap ? (void *)data : &scratch, .iov_len = (size_t)cap};
  struct msghdr msg = {
      .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
      .msg_controllen = sizeof control.buf};
  ssize_t n;
  for (;;) {
    n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n >= 0) break;
    if (errno != EINTR) return -errno;
  }
  uint64_t bits = 0;
  if (msg.msg_flags & MSG_TRUNC) bits |= MK_RECV_TRUNC;
  if (msg.msg_flags & MSG_CTRUNC) bits |= MK_RECV_CTRUNC;
  uint64_t count = 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      count += (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    } else {
      bits |= MK_RECV_FOREIGN;
    }
  }
  if (count > maxfds) bits |= MK_RECV_EXCESS;
  if (bits) {
    close_rights(&msg);
    info[1] = bits;
    return n;
  }
  uint64_t at = 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
    size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    memcpy(fds + at, CMSG_DATA(c), k * sizeof(int));
    at += k;
  }
  info[0] = count;
  return n;
}

MK_API int64_t mk_socket_inspect(int32_t fd, uint64_t *out, uint8_t *name, uint64_t cap) {
  if (out == NULL || (cap > 0 && name == NULL)) return -EINVAL;
  if (cap > 0) name[0] = '\0';
  struct stat st;
  if (fstat(fd, &st) < 0) return -errno;
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0) return -errno;
  out[0] = MK_FD_OTHER;
  out[1] = 0;
  out[2] = (uint64_t)st.st_size;
  out[3] = (uint64_t)(flags & O_ACCMODE);
  if (!S_ISREG(st.st_mode)) {
    char link[64], target[32];
    snprintf(link, sizeof link, "/proc/self/fd/%d", (int)fd);
    ssize_t len = readlink(link, target, sizeof target - 1);
    if (len >= 0) {
      target[len] = '\0';
      if (strcmp(target, "anon_inode:[eventfd]") == 0) out[0] = MK_FD_EVENTFD;
    }
    return 0;
  }
  struct statfs fs;
  if (fstatfs(fd, &fs) < 0) return -errno;
  if (fs.f_type != TMPFS_MAGIC && fs.f_type != HUGETLBFS_MAGIC) return 0;
  /* A tmpfs file someone opened by name is no memfd: memfds live in an
   * internal mount as "memfd:<name> (deleted)", and the link says so. This
   * process's own descriptor, read for its own check. */
  char link[64], target[320];
  snprintf(link, sizeof link, "/proc/self/fd/%d", (int)fd);
  ssize_t len = readlink(link, target, sizeof target - 1);
  if (len < 0) return -errno;
  target[len] = '\0';
  static const char prefix[] = "/memfd:", suffix[] = " (deleted)";
  if (strncmp(target, prefix, sizeof prefix - 1) != 0) return 0;
  int seals = fcntl(fd, F_GET_SEALS);
  if (seals < 0) return -errno;
  out[0] = MK_FD_MEMFD;
  out[1] = (uint64_t)seals;
  size_t end = (size_t)len;
  if (end >= sizeof suffix - 1 && strcmp(target + end - (sizeof suffix - 1), suffix) == 0) {
    end -= sizeof suffix - 1;
  }
  size_t n = end - (sizeof prefix - 1);
  if (cap > 0) {
    if (n > cap - 1) n = (size_t)(cap - 1);
    memcpy(name, target + sizeof prefix - 1, n);
    name[n] = '\0';
  }
  return 0;
}

MK_API int64_t mk_socket_event(void) { return mk_ret(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)); }

MK_API int64_t mk_socket_signal(int32_t fd) {
  uint64_t one = 1;
  for (;;) {
    ssize_t n = write(fd, &one, sizeof one);
    if (n == (ssize_t)sizeof one) return 0;
    if (n >= 0) return -EIO;
    if (errno != EINTR) return -errno;
  }
}

MK_API int64_t mk_socket_drain(int32_t fd) {
  uint64_t count = 0;
  for (;;) {
    ssize_t n = read(fd, &count, sizeof count);
    if (n == (ssize_t)sizeof count) return count > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)count;
    if (n >= 0) return -EIO;
    if (errno == EAGAIN) return 0;
    if (errno != EINTR) return -errno;
  }
}

MK_API int64_t mk_socket_ready(int32_t fd, uint32_t events) {
  struct pollfd p = {.fd = fd, .events = (short)events};
  for (;;) {
    int n = poll(&p, 1, 0);
    if (n >= 0) return n == 0 ? 0 : (int64_t)(uint16_t)p.revents;
    if (errno != EINTR) return -errno;
  }
}

MK_API int64_t mk_socket_poll(int32_t *pfds, uint32_t count, int32_t timeout_ms) {
  enum { MAX = 8 };
  if (pfds == NULL || count == 0 || count > MAX) return -EINVAL;
  if (timeout_ms < 0 || timeout_ms > 60000) return -EINVAL;
  struct pollfd p[MAX];
  for (uint32_t i = 0; i < count; i++) {
    p[i].fd = pfds[2 * i];
    p[i].events = (short)pfds[2 * i + 1];
    p[i].revents = 0;
  }
  int n = poll(p, count, timeout_ms);
  if (n < 0) return errno == EINTR ? 0 : -errno;
  for (uint32_t i = 0; i < count; i++) pfds[2 * i + 1] = (uint16_t)p[i].revents;
  return n;
}
