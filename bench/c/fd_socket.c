/*
 * fd_socket.c: the C side of bench/fd_socket_bench.ts.
 *
 * fs_exchange makes the system calls of one memkit exchange
 * (FdConnection.trySend, FdConnection.tryReceive, MemFd.close), in order:
 * sendmsg (SCM_RIGHTS, 1 descriptor, 8 bytes of metadata); recvmsg
 * (MSG_CMSG_CLOEXEC); fstat, fcntl F_GETFL, fstatfs, readlink of
 * /proc/self/fd/N and fcntl F_GET_SEALS (mk_socket_inspect); close. On a
 * connected SOCK_SEQPACKET pair that fs_pair makes.
 *
 * Every function returns 0 (or a descriptor), or -errno of the first call
 * that failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#define FS_API __attribute__((visibility("default")))

/* A connected pair: out[0] and out[1]. */
FS_API int64_t fs_pair(int32_t *out) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0) return -errno;
  out[0] = sv[0];
  out[1] = sv[1];
  return 0;
}

/* One exchange of memfd over a -> b, checked and closed at b. */
FS_API int64_t fs_exchange(int32_t a, int32_t b, int32_t memfd) {
  union {
    char buf[CMSG_SPACE(sizeof(int) * 16)];
    struct cmsghdr align;
  } control;
  char meta[8] = "metadata";
  struct iovec iov = {.iov_base = meta, .iov_len = sizeof meta};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                       .msg_controllen = CMSG_SPACE(sizeof(int))};
  memset(&control, 0, sizeof control);
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &memfd, sizeof(int));
  if (sendmsg(a, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) return -errno;
  char data[65536];
  struct iovec riov = {.iov_base = data, .iov_len = sizeof data};
  struct msghdr r = {.msg_iov = &riov, .msg_iovlen = 1, .msg_control = control.buf,
                     .msg_controllen = sizeof control.buf};
  if (recvmsg(b, &r, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) < 0) return -errno;
  struct cmsghdr *rc = CMSG_FIRSTHDR(&r);
  if (rc == NULL) return -EPROTO;
  int fd;
  memcpy(&fd, CMSG_DATA(rc), sizeof fd);
  struct stat st;
  struct statfs fs;
  char link[64], target[320];
  int ret = 0;
  if (fstat(fd, &st) < 0 || fcntl(fd, F_GETFL) < 0 || fstatfs(fd, &fs) < 0) ret = -errno;
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  if (ret == 0 && readlink(link, target, sizeof target) < 0) ret = -errno;
  if (ret == 0 && fcntl(fd, F_GET_SEALS) < 0) ret = -errno;
  close(fd);
  return ret;
}
