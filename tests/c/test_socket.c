/* test_socket.c: mk_socket_* against the kernel: listen, connect, accept,
 * descriptors passed and refused (excess, MSG_CTRUNC, foreign control
 * messages), memfd inspection, stale socket files, eventfd waits. */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "memkit.h"
#include "tap.h"

/* The lowest free descriptor number: equal before and after a call that
 * must not leak one. */
static int lowest_free_fd(void) {
  int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) close(fd);
  return fd;
}

static char path[108];

int main(void) {
  snprintf(path, sizeof path, "/tmp/memkit-ctest-%d.sock", (int)getpid());
  unlink(path);
  uint64_t ino = 0;
  int64_t l = mk_socket_listen(path, &ino);
  CHECK_OK(l, "listen");
  struct stat st;
  CHECK(lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) && (uint64_t)st.st_ino == ino,
        "listen made the socket file, inode reported");
  CHECK_ERR(mk_socket_listen(path, NULL), EADDRINUSE, "a live listener's path is EADDRINUSE");
  CHECK_ERR(mk_socket_accept((int32_t)l), EAGAIN, "accept without a connection is EAGAIN");
  CHECK_ERR(mk_socket_accept((int32_t)l), EAGAIN, "the EADDRINUSE probe is not accepted");
  int64_t c = mk_socket_connect(path);
  CHECK_OK(c, "connect");
  int64_t s = mk_socket_accept((int32_t)l);
  CHECK_OK(s, "accept");

  int mfd = memfd_create("ctest", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  CHECK(mfd >= 0 && ftruncate(mfd, 8192) == 0, "memfd");
  fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW);
  int base = lowest_free_fd();

  int32_t fds[MK_SOCKET_MAX_FDS] = {mfd};
  uint8_t data[64];
  uint64_t info[2];
  CHECK_EQ(mk_socket_send((int32_t)c, fds, 1, (const uint8_t *)"meta", 4), 4, "send one fd");
  CHECK_EQ(mk_socket_recv((int32_t)s, data, sizeof data, fds, 1, info), 4, "recv one fd");
  CHECK(info[0] == 1 && info[1] == 0 && memcmp(data, "meta", 4) == 0, "one fd and the metadata");
  uint64_t out[4];
  uint8_t name[64];
  CHECK_OK(mk_socket_inspect(fds[0], out, name, sizeof name), "inspect");
  CHECK(out[0] == MK_FD_MEMFD && out[1] == (MK_SEAL_SHRINK | MK_SEAL_GROW) && out[2] == 8192 &&
            out[3] == O_RDWR && strcmp((char *)name, "ctest") == 0,
        "inspect: memfd, seals, size, access, name");
  close(fds[0]);

  /* More than the caller takes: all closed, flagged. */
  int32_t three[3] = {mfd, mfd, mfd};
  CHECK_EQ(mk_socket_send((int32_t)c, three, 3, (const uint8_t *)"x", 1), 1, "send three");
  CHECK_EQ(mk_socket_recv((int32_t)s, data, sizeof data, fds, 1, info), 1, "recv three");
  CHECK(info[0] == 0 && info[1] == MK_RECV_EXCESS, "excess flagged");
  CHECK_EQ(lowest_free_fd(), base, "excess descriptors closed");

  /* MSG_CTRUNC: more than MK_SOCKET_MAX_FDS, sent with sendmsg directly. */
  {
    enum { N = 24 };
    union {
      char buf[CMSG_SPACE(sizeof(int) * N)];
      struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof control);
    struct iovec iov = {.iov_base = "y", .iov_len = 1};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                         .msg_controllen = sizeof control.buf};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int) * N);
    int many[N];
    for (int i = 0; i < N; i++) many[i] = mfd;
    memcpy(CMSG_DATA(cm), many, sizeof many);
    CHECK_EQ(sendmsg((int)c, &msg, 0), 1, "send 24 descriptors");
    CHECK_EQ(mk_socket_recv((int32_t)s, data, sizeof data, fds, 1, info), 1, "recv 24");
    CHECK(info[0] == 0 && (info[1] & MK_RECV_CTRUNC), "MSG_CTRUNC flagged");
    CHECK_EQ(lowest_free_fd(), base, "truncated descriptors closed");
  }

  /* Data longer than the buffer: MSG_TRUNC, the fd closed. */
  uint8_t big[256];
  memset(big, 1, sizeof big);
  CHECK_EQ(mk_socket_send((int32_t)c, NULL, 0, big, sizeof big), 256, "send 256 bytes");
  fds[0] = mfd;
  CHECK_EQ(mk_socket_send((int32_t)c, fds, 1, big, sizeof big), 256, "send 256 bytes and a fd");
  CHECK_EQ(mk_socket_recv((int32_t)s, data, sizeof data, fds, 1, info), 64, "recv cut");
  CHECK(info[1] & MK_RECV_TRUNC, "MSG_TRUNC flagged");
  CHECK_EQ(mk_socket_recv((int32_t)s, data, sizeof data, fds, 1, info), 64, "recv cut again");
  CHECK(info[0] == 0 && (info[1] & MK_RECV_TRUNC), "MSG_TRUNC with a fd flagged");
  CHECK_EQ(lowest_free_fd(), base, "the cut message's descriptor closed");

  /* Inspect a non-memfd. */
  CHECK_OK(mk_socket_inspect((int32_t)c, out, name, sizeof name), "inspect a socket");
  CHECK(out[0] == MK_FD_OTHER, "a socket is no memfd");
  CHECK_ERR(mk_socket_send((int32_t)c, NULL, 0, NULL, 0), EINVAL, "an empty message is EINVAL");
  CHECK_ERR(mk_socket_send((int32_t)c, fds, MK_SOCKET_MAX_FDS + 1, data, 1), EINVAL,
            "too many descriptors to send is EINVAL");

  /* Events and polls. */
  int64_t ev = mk_socket_event();
  CHECK_OK(ev, "eventfd");
  int32_t pfds[4] = {(int32_t)s, MK_POLL_IN, (int32_t)ev, MK_POLL_IN};
  CHECK_EQ(mk_socket_poll(pfds, 2, 0), 0, "nothing ready");
  CHECK_OK(mk_socket_signal((int32_t)ev), "signal");
  pfds[1] = MK_POLL_IN;
  pfds[3] = MK_POLL_IN;
  CHECK_EQ(mk_socket_poll(pfds, 2, 1000), 1, "the eventfd is ready");
  CHECK(pfds[3] & MK_POLL_IN, "its revents");
  CHECK_EQ(mk_socket_drain((int32_t)ev), 1, "drain reads the count");
  CHECK_EQ(mk_socket_drain((int32_t)ev), 0, "drained");
  CHECK_ERR(mk_socket_poll(pfds, 2, -1), EINVAL, "an endless poll is EINVAL");

  /* The peer closes: recv is 0 with no descriptors; the socket is HUP. */
  close((int)c);
  CHECK(mk_socket_ready((int32_t)s, MK_POLL_IN) & MK_POLL_HUP, "HUP after the peer's close");
  CHECK_EQ(mk_socket_recv((int32_t)s, data, sizeof data, fds, 1, info), 0, "EOF");
  CHECK_EQ(info[0], 0, "no descriptors at EOF");
  close((int)s);
  close((int)ev);

  /* Stale: the listener goes, its file stays; a new listen replaces it. */
  close((int)l);
  CHECK_EQ(mk_socket_connect(path), -ECONNREFUSED, "a stale socket refuses");
  uint64_t ino2 = 0;
  l = mk_socket_listen(path, &ino2);
  CHECK_OK(l, "listen replaces a stale socket file");
  (void)ino;
  CHECK_EQ(mk_socket_unlink(path, ino2 + 1), 0, "unlink leaves a socket file that is not its own");
  CHECK_EQ(mk_socket_unlink(path, ino2), 1, "unlink removes its own");
  close((int)l);
  int f = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  close(f);
  CHECK_ERR(mk_socket_listen(path, NULL), EEXIST, "a regular file in the way is EEXIST");
  unlink(path);
  char longpath[200];
  memset(longpath, 'a', sizeof longpath - 1);
  longpath[0] = '/';
  longpath[sizeof longpath - 1] = '\0';
  CHECK_ERR(mk_socket_listen(longpath, NULL), ENAMETOOLONG, "a long path is ENAMETOOLONG");
  close(mfd);
  return tap_done();
}
