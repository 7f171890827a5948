/* test_file.c: mk_file_path_open, mk_file_open and mk_file_reserve against
 * the kernel: errors, access modes, FD_CLOEXEC, non-regular files, mapping
 * what it opens, opening exactly the file looked up, reserving blocks. */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "memkit.h"
#include "tap.h"

static char dir[64];
static char reg[128];  /* a regular file of CONTENT_LEN bytes */
static char fifo[128]; /* a FIFO nobody writes to */
static char sock[128]; /* a bound Unix socket */
static char link_reg[128], link_dir[128];
static const char CONTENT[] = "memkit file test\n";
#define CONTENT_LEN ((int64_t)sizeof CONTENT - 1)

static int lowest_free_fd(void) {
  int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) close(fd);
  return fd;
}

static int is_cloexec(int fd) {
  int fl = fcntl(fd, F_GETFD);
  return fl >= 0 && (fl & FD_CLOEXEC);
}

/* Creates the temporary directory and the files in it; 0 on success. */
static int setup(void) {
  snprintf(dir, sizeof dir, "/tmp/memkit-ctest-XXXXXX");
  if (mkdtemp(dir) == NULL) return -1;
  snprintf(reg, sizeof reg, "%s/regular", dir);
  snprintf(fifo, sizeof fifo, "%s/fifo", dir);
  snprintf(sock, sizeof sock, "%s/socket", dir);
  snprintf(link_reg, sizeof link_reg, "%s/link-to-regular", dir);
  snprintf(link_dir, sizeof link_dir, "%s/link-to-dir", dir);

  int fd = open(reg, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  int ok = write(fd, CONTENT, (size_t)CONTENT_LEN) == CONTENT_LEN;
  close(fd);
  if (!ok || mkfifo(fifo, 0644) < 0) return -1;
  if (symlink(reg, link_reg) < 0 || symlink(dir, link_dir) < 0) return -1;

  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -1;
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  if (strlen(sock) >= sizeof addr.sun_path) {
    close(s);
    return -1;
  }
  memcpy(addr.sun_path, sock, strlen(sock) + 1);
  ok = bind(s, (struct sockaddr *)&addr, sizeof addr) == 0;
  close(s); /* the socket file stays */
  return ok ? 0 : -1;
}

static void teardown(void) {
  unlink(link_dir);
  unlink(link_reg);
  unlink(sock);
  unlink(fifo);
  unlink(reg);
  rmdir(dir);
}

/* What src/file.ts does: the argument checks, then the O_PATH lookup of the
 * path, then the open of that same path checked against the lookup. */
static int64_t file_open(const char *path, uint32_t flags) {
  int64_t pre = mk_file_open(path, flags, -1);
  if (pre != -EBADF) return pre; /* refused before the descriptor is used */
  uint8_t resolved[4096];
  int64_t pfd = mk_file_path_open(path, resolved, sizeof resolved);
  if (pfd < 0) return pfd;
  int64_t fd = mk_file_open(path, flags, (int32_t)pfd);
  close((int)pfd);
  return fd;
}

static void test_path_open(void) {
  uint8_t got[4096];
  int before = lowest_free_fd();
  int64_t pfd = mk_file_path_open(link_reg, got, sizeof got);
  if (CHECK_OK(pfd, "path_open of a symlink returns a descriptor")) {
    CHECK(strcmp((const char *)got, reg) == 0, "it resolves the symlink to the file");
    CHECK((fcntl((int)pfd, F_GETFL) & O_PATH) == O_PATH, "the descriptor is O_PATH");
    CHECK(is_cloexec((int)pfd), "the descriptor has FD_CLOEXEC");
    close((int)pfd);
  }
  pfd = mk_file_path_open(fifo, got, sizeof got);
  if (CHECK_OK(pfd, "path_open of a FIFO does not block (nothing is opened)")) close((int)pfd);
  CHECK_ERR(mk_file_path_open("regular", got, sizeof got), EINVAL,
            "path_open of a relative path is -EINVAL");
  CHECK_ERR(mk_file_path_open(NULL, got, sizeof got), EINVAL, "path_open(NULL) is -EINVAL");
  CHECK_ERR(mk_file_path_open(reg, NULL, 64), EFAULT, "path_open without a buffer is -EFAULT");
  CHECK_ERR(mk_file_path_open(reg, got, 8), ENAMETOOLONG,
            "path_open into a buffer too small for the resolved path is -ENAMETOOLONG");
  CHECK_ERR(mk_file_open("regular", 0, 0), EINVAL, "open of a relative path is -EINVAL");
  CHECK_EQ(lowest_free_fd(), before, "refused lookups leak no descriptor");

  /* The path names another file between the lookup and the open. */
  char moved[160], other[160];
  snprintf(moved, sizeof moved, "%s/moved", dir);
  snprintf(other, sizeof other, "%s/other", dir);
  int o = open(other, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  CHECK(o >= 0 && write(o, "x", 1) == 1, "create another file");
  if (o >= 0) close(o);
  pfd = mk_file_path_open(reg, got, sizeof got);
  if (CHECK_OK(pfd, "look the file up")) {
    CHECK(rename(reg, moved) == 0 && rename(other, reg) == 0, "swap another file in");
    CHECK_ERR(mk_file_open(reg, 0, (int32_t)pfd), ESTALE,
              "open of a path that now names another file is -ESTALE");
    CHECK(rename(reg, other) == 0 && rename(moved, reg) == 0, "swap the file back");
    int64_t fd = mk_file_open(reg, 0, (int32_t)pfd);
    if (CHECK_OK(fd, "open of the path naming the file looked up works")) close((int)fd);
    close((int)pfd);
  }
  unlink(other);
  CHECK_EQ(lowest_free_fd(), before, "a refused open leaks no descriptor");
}

/* A sparse file on a full filesystem: reserving its blocks up front is
 * -ENOSPC, where a store into the mapping would have been SIGBUS. */
static void test_reserve(void) {
  CHECK_ERR(mk_file_reserve(-1, 0, 4096), EBADF, "reserve on a bad descriptor is -EBADF");
  CHECK_ERR(mk_file_reserve(0, UINT64_MAX, 1), EOVERFLOW, "reserve past 2^63 is -EOVERFLOW");
  char mnt[160], path[200];
  snprintf(mnt, sizeof mnt, "%s/small", dir);
  snprintf(path, sizeof path, "%s/sparse", mnt);
  if (mkdir(mnt, 0700) < 0) return;
  if (mount("memkit-test", mnt, "tmpfs", 0, "size=1m") < 0) {
    SKIP("reserve on a full tmpfs is -ENOSPC", "cannot mount a 1 MiB tmpfs (needs root)");
    rmdir(mnt);
    return;
  }
  int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (CHECK(fd >= 0 && ftruncate(fd, 4 << 20) == 0, "a 4 MiB file of holes on a 1 MiB tmpfs")) {
    CHECK_EQ(mk_file_reserve(fd, 0, 64 << 10), 0, "reserving 64 KiB of it works");
    CHECK_ERR(mk_file_reserve(fd, 0, 4 << 20), ENOSPC, "reserving all 4 MiB is -ENOSPC");
    struct stat st;
    CHECK(fstat(fd, &st) == 0 && st.st_size == 4 << 20, "reserving leaves the size");
    CHECK_EQ(mk_file_reserve(fd, 0, 0), 0, "reserving nothing is 0");
  }
  if (fd >= 0) close(fd);
  umount2(mnt, MNT_DETACH);
  rmdir(mnt);
}

static void test_errors(void) {
  char path[192];
  CHECK_ERR(file_open(NULL, 0), EINVAL, "open(NULL) is -EINVAL");
  CHECK_ERR(file_open("", 0), EINVAL, "open(\"\") is -EINVAL");
  CHECK_ERR(file_open(reg, 2), EINVAL, "open with unknown flag 2 is -EINVAL");
  CHECK_ERR(file_open(reg, 0x80000000u), EINVAL, "open with unknown flag 0x80000000 is -EINVAL");
  CHECK_ERR(file_open(reg, MK_FILE_WRITE | 4), EINVAL,
            "open with WRITE and an unknown flag is -EINVAL");
  snprintf(path, sizeof path, "%s/missing", dir);
  CHECK_ERR(file_open(path, 0), ENOENT, "open of a missing path is -ENOENT");
  CHECK_ERR(file_open(path, MK_FILE_WRITE), ENOENT,
            "open of a missing path for writing is -ENOENT (it creates nothing)");
  CHECK(access(path, F_OK) != 0, "the missing path is still missing");
  CHECK_ERR(file_open(path, 2), EINVAL, "flags are checked before the path");
  snprintf(path, sizeof path, "%s/x", reg);
  CHECK_ERR(file_open(path, 0), ENOTDIR, "open below a regular file is -ENOTDIR");
}

static void test_not_regular(void) {
  static const struct {
    const char *what;
    const char *path;
  } cases[] = {
      {"a directory", dir},   {"a symlink to a directory", link_dir},
      {"/dev/null", "/dev/null"}, {"a FIFO", fifo},
      {"a Unix socket", sock},
  };
  int before = lowest_free_fd();
  /* A FIFO without a writer would block an open without O_NONBLOCK. */
  alarm(10);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char name[128];
    snprintf(name, sizeof name, "open of %s is -ENODEV", cases[i].what);
    CHECK_ERR(file_open(cases[i].path, 0), ENODEV, name);
    snprintf(name, sizeof name, "open of %s for writing is -ENODEV", cases[i].what);
    CHECK_ERR(file_open(cases[i].path, MK_FILE_WRITE), ENODEV, name);
  }
  alarm(0);
  CHECK_EQ(lowest_free_fd(), before, "refused opens leak no descriptor");
}

static void test_read(void) {
  int64_t fd = file_open(reg, 0);
  if (!CHECK_OK(fd, "open of a regular file returns a descriptor")) return;
  int32_t f = (int32_t)fd;
  CHECK(is_cloexec(f), "the descriptor has FD_CLOEXEC");
  CHECK_EQ(fcntl(f, F_GETFL) & O_ACCMODE, O_RDONLY, "without WRITE it is open O_RDONLY");
  int sized = CHECK_EQ(mk_core_fd_size(f), CONTENT_LEN, "fd_size is the file's size");
  errno = 0;
  CHECK(write(f, "x", 1) == -1 && errno == EBADF, "write() through it fails with EBADF");

  int64_t page = mk_core_page_size();
  int64_t m = mk_map_fd(f, 0, (uint64_t)page, MK_PROT_READ);
  /* Touching a page past the end of the file would raise SIGBUS. */
  if (CHECK_OK(m, "map it read-only")) {
    if (sized)
      CHECK(memcmp((const void *)(uintptr_t)m, CONTENT, (size_t)CONTENT_LEN) == 0,
            "the mapping shows the file's bytes");
    CHECK_ERR(mk_map_protect((uint64_t)m, (uint64_t)page, MK_PROT_READ | MK_PROT_WRITE), EACCES,
              "making the mapping writable is -EACCES");
    mk_map_unmap((uint64_t)m, (uint64_t)page);
  }
  CHECK_ERR(mk_map_fd(f, 0, (uint64_t)page, MK_PROT_READ | MK_PROT_WRITE), EACCES,
            "a writable map of it is -EACCES");
  CHECK_EQ(mk_core_close(f), 0, "close it");

  fd = file_open(link_reg, 0);
  if (CHECK_OK(fd, "open through a symlink to a regular file works")) {
    CHECK_EQ(mk_core_fd_size((int32_t)fd), CONTENT_LEN, "it is the same file");
    mk_core_close((int32_t)fd);
  }
}

static void test_write(void) {
  int64_t fd = file_open(reg, MK_FILE_WRITE);
  if (!CHECK_OK(fd, "open with WRITE returns a descriptor")) return;
  int32_t f = (int32_t)fd;
  CHECK(is_cloexec(f), "the descriptor has FD_CLOEXEC");
  CHECK_EQ(fcntl(f, F_GETFL) & O_ACCMODE, O_RDWR, "with WRITE it is open O_RDWR");
  int sized = CHECK_EQ(mk_core_fd_size(f), CONTENT_LEN, "opening for writing does not truncate");
  CHECK_EQ(fcntl(f, F_GETFL) & O_APPEND, 0, "it is not open O_APPEND");

  int64_t page = mk_core_page_size();
  int64_t m = mk_map_fd(f, 0, (uint64_t)page, MK_PROT_READ | MK_PROT_WRITE);
  if (CHECK_OK(m, "map it read-write")) {
    if (sized) ((volatile char *)(uintptr_t)m)[0] = 'M';
    CHECK_EQ(mk_map_unmap((uint64_t)m, (uint64_t)page), 0, "unmap it");
    int other = open(reg, O_RDONLY | O_CLOEXEC);
    char c = 0;
    CHECK(other >= 0 && pread(other, &c, 1, 0) == 1 && c == 'M',
          "a write through the mapping reaches the file");
    if (other >= 0) close(other);
  }
  mk_core_close(f);
}

/* Write access refused by the kernel: as root, through the immutable
 * attribute (root bypasses modes); otherwise through mode 0400. */
static void test_write_refused(void) {
  char path[160];
  snprintf(path, sizeof path, "%s/readonly", dir);
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0400);
  if (!CHECK(fd >= 0, "create a file for refused writes")) return;
  int want;
  int attr = 0;
  if (geteuid() == 0) {
    close(fd);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    int set = fd >= 0 && ioctl(fd, FS_IOC_GETFLAGS, &attr) == 0;
    if (set) {
      int imm = attr | FS_IMMUTABLE_FL;
      set = ioctl(fd, FS_IOC_SETFLAGS, &imm) == 0;
    }
    if (!set) {
      SKIP("open for writing of an immutable file is -EPERM",
           "the filesystem of /tmp has no immutable attribute");
      if (fd >= 0) close(fd);
      unlink(path);
      return;
    }
    want = EPERM;
  } else {
    want = EACCES;
  }

  CHECK_ERR(file_open(path, MK_FILE_WRITE), want,
            want == EPERM ? "open for writing of an immutable file is -EPERM (root)"
                          : "open for writing of a mode-0400 file is -EACCES");
  int64_t ro = file_open(path, 0);
  if (CHECK_OK(ro, "the same file opens read-only")) {
    CHECK_EQ(fcntl((int)ro, F_GETFL) & O_ACCMODE, O_RDONLY, "open O_RDONLY");
    mk_core_close((int32_t)ro);
  }

  if (want == EPERM) ioctl(fd, FS_IOC_SETFLAGS, &attr); /* so it can be removed */
  close(fd);
  CHECK(unlink(path) == 0, "remove the file again");
}

int main(void) {
  if (setup() != 0) {
    perror("test_file: setup");
    teardown();
    return 1;
  }
  test_errors();
  test_path_open();
  test_reserve();
  test_not_regular();
  test_read();
  test_write();
  test_write_refused();
  teardown();
  return tap_done();
}
