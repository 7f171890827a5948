/* test_memfd.c: mk_memfd_* against the kernel: create, resize, seals, noexec. */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "internal.h" /* mk_memfd_mapped_past, to test both of its ways */
#include "memkit.h"
#include "tap.h"

/* Linux >= 6.3; Debian 12's userspace headers predate it. */
#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif

/* The lowest free descriptor number: equal before and after a call that
 * must not leak one. */
static int lowest_free_fd(void) {
  int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) close(fd);
  return fd;
}

/* Reads an integer sysctl, or returns -1. */
static long read_sysctl(const char *path) {
  FILE *f = fopen(path, "re");
  if (f == NULL) return -1;
  long v = -1;
  if (fscanf(f, "%ld", &v) != 1) v = -1;
  fclose(f);
  return v;
}

static int is_cloexec(int fd) {
  int fl = fcntl(fd, F_GETFD);
  return fl >= 0 && (fl & FD_CLOEXEC);
}

static void test_create(void) {
  static const struct {
    uint32_t flags;
    const char *name;
  } cases[] = {
      {0, "create(flags 0)"},
      {MK_MEMFD_SEALABLE, "create(SEALABLE)"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char name[128];
    int64_t fd = mk_memfd_create("memkit-test", cases[i].flags);
    snprintf(name, sizeof name, "%s returns a descriptor", cases[i].name);
    if (!CHECK_OK(fd, name)) continue;
    snprintf(name, sizeof name, "%s sets FD_CLOEXEC", cases[i].name);
    CHECK(is_cloexec((int)fd), name);
    snprintf(name, sizeof name, "%s is open read-write", cases[i].name);
    CHECK_EQ(fcntl((int)fd, F_GETFL) & O_ACCMODE, O_RDWR, name);
    snprintf(name, sizeof name, "%s has size 0", cases[i].name);
    CHECK_EQ(mk_core_fd_size((int32_t)fd), 0, name);
    CHECK_EQ(mk_core_close((int32_t)fd), 0, "close the memfd");
  }

  /* The name reaches the kernel: /proc/self/fd/N -> "/memfd:NAME (deleted)". */
  int64_t fd = mk_memfd_create("memkit-named", 0);
  if (CHECK_OK(fd, "create a named memfd")) {
    char link[64], target[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", (int)fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    target[n < 0 ? 0 : n] = '\0';
    CHECK(strcmp(target, "/memfd:memkit-named (deleted)") == 0,
          "the memfd carries its name in /proc/self/fd");
    mk_core_close((int32_t)fd);
  }
}

static void test_create_errors(void) {
  CHECK_ERR(mk_memfd_create(NULL, 0), EINVAL, "create(NULL) is -EINVAL");
  CHECK_ERR(mk_memfd_create("x", 4), EINVAL, "create with unknown flag 4 (MFD_HUGETLB) is -EINVAL");
  CHECK_ERR(mk_memfd_create("x", 0x80000000u), EINVAL,
            "create with unknown flag 0x80000000 is -EINVAL");

  char name[251];
  memset(name, 'n', 250);
  name[250] = '\0';
  int before = lowest_free_fd();
  CHECK_ERR(mk_memfd_create(name, 0), ENAMETOOLONG, "create with a 250-byte name is -ENAMETOOLONG");
  CHECK_EQ(lowest_free_fd(), before, "a refused create leaks no descriptor");

  name[249] = '\0'; /* 249 bytes: the longest the kernel takes */
  int64_t fd = mk_memfd_create(name, 0);
  if (CHECK_OK(fd, "create with a 249-byte name succeeds")) mk_core_close((int32_t)fd);
}

static void test_resize(void) {
  int64_t page = mk_core_page_size();
  int64_t fd = mk_memfd_create("memkit-resize", 0);
  if (!CHECK_OK(fd, "create for resize")) return;
  int32_t f = (int32_t)fd;
  CHECK_EQ(mk_memfd_resize(f, (uint64_t)page * 3, NULL), 0, "resize to 3 pages is 0");
  CHECK_EQ(mk_core_fd_size(f), page * 3, "fd_size is 3 pages");
  CHECK_EQ(mk_memfd_resize(f, 1, NULL), 0, "resize to 1 byte is 0");
  CHECK_EQ(mk_core_fd_size(f), 1, "fd_size is 1");
  CHECK_EQ(mk_memfd_resize(f, 0, NULL), 0, "resize to 0 is 0");
  CHECK_EQ(mk_core_fd_size(f), 0, "fd_size is 0");
  CHECK_ERR(mk_memfd_resize(f, (uint64_t)INT64_MAX + 1, NULL), EFBIG, "resize past INT64_MAX is -EFBIG");
  CHECK_ERR(mk_memfd_resize(f, UINT64_MAX, NULL), EFBIG, "resize to UINT64_MAX is -EFBIG");
  CHECK_EQ(mk_core_fd_size(f), 0, "a refused resize leaves the size");

  /* The same file through a read-only descriptor cannot be truncated. */
  char link[64];
  snprintf(link, sizeof link, "/proc/self/fd/%d", f);
  int ro = open(link, O_RDONLY | O_CLOEXEC);
  if (CHECK(ro >= 0, "reopen the memfd read-only")) {
    CHECK_ERR(mk_memfd_resize(ro, 4096, NULL), EINVAL, "resize through a read-only descriptor is -EINVAL");
    close(ro);
  }
  mk_core_close(f);

  CHECK_ERR(mk_memfd_resize(-1, 4096, NULL), EBADF, "resize(-1) is -EBADF");
  CHECK_ERR(mk_memfd_resize(f, 4096, NULL), EBADF, "resize of a closed memfd is -EBADF");
  int p[2];
  if (CHECK(pipe2(p, O_CLOEXEC) == 0, "pipe2")) {
    CHECK_ERR(mk_memfd_resize(p[1], 4096, NULL), EINVAL, "resize of a pipe is -EINVAL");
    close(p[0]);
    close(p[1]);
  }
}

/* Shrinking is refused under any mapping of the file in this process, made
 * by whatever means: here plain mmap calls memkit knows nothing of. */
static void test_resize_under_mappings(void) {
  uint64_t page = (uint64_t)mk_core_page_size();
  int64_t fd = mk_memfd_create("memkit-shrink", 0);
  if (!CHECK_OK(fd, "create for shrink")) return;
  int32_t f = (int32_t)fd;
  CHECK_EQ(mk_memfd_resize(f, 4 * page, NULL), 0, "resize to 4 pages");
  /* Through another descriptor of the same file, pages 1-2 (reaching 3). */
  char link[64];
  snprintf(link, sizeof link, "/proc/self/fd/%d", f);
  int other = open(link, O_RDWR | O_CLOEXEC);
  CHECK(other >= 0, "reopen the memfd through /proc/self/fd");
  char *m = mmap(NULL, 2 * page, PROT_NONE, MAP_SHARED, other, (off_t)page);
  if (!CHECK(m != MAP_FAILED, "mmap pages 1-2 PROT_NONE")) return;
  close(other);
  uint64_t busy[3] = {0, 0, 0};
  CHECK_EQ(mk_memfd_resize(f, 3 * page, busy), 0, "shrinking to where the mapping ends is 0");
  CHECK_EQ(mk_memfd_resize(f, 2 * page + 1, busy), 0,
           "shrinking into its last page is 0 (that page still has a byte)");
  CHECK_ERR(mk_memfd_resize(f, 2 * page, busy), EBUSY,
            "shrinking below the end of a mapping memkit did not make is -EBUSY");
  CHECK_EQ(busy[0], (uint64_t)(uintptr_t)m, "busy[0] is the mapping's start");
  CHECK_EQ(busy[1], (uint64_t)(uintptr_t)m + 2 * page, "busy[1] is its end");
  CHECK_EQ(busy[2], 3 * page, "busy[2] is how far into the file it reaches");
  CHECK_EQ(mk_core_fd_size(f), 2 * page + 1, "the refused shrink left the size");
  CHECK_ERR(mk_memfd_resize(f, 0, NULL), EBUSY, "busy may be NULL");
  CHECK_EQ(mk_memfd_resize(f, 8 * page, NULL), 0, "growing is never refused");

  /* Both ways of asking the kernel find the same mapping. */
  struct stat st;
  CHECK(fstat(f, &st) == 0, "fstat the memfd");
  uint64_t q[3] = {0, 0, 0}, t[3] = {0, 0, 0};
  int by_query = mk_memfd_mapped_past(major(st.st_dev), minor(st.st_dev), st.st_ino, page, 0, q);
  int by_text = mk_memfd_mapped_past(major(st.st_dev), minor(st.st_dev), st.st_ino, page, 1, t);
  CHECK_EQ(by_query, 1, "PROCMAP_QUERY (or its fallback) finds the mapping");
  CHECK_EQ(by_text, 1, "parsing /proc/self/maps finds the mapping");
  CHECK(memcmp(q, t, sizeof q) == 0, "both report the same mapping");
  CHECK_EQ(mk_memfd_mapped_past(major(st.st_dev), minor(st.st_dev), st.st_ino, 3 * page, 1, t), 0,
           "parsing finds none reaching past 3 pages");
  CHECK_EQ(mk_memfd_mapped_past(major(st.st_dev), minor(st.st_dev), st.st_ino + 1, 0, 1, t), 0,
           "parsing finds none of another inode");

  /* Another memfd's mapping does not count. */
  int64_t fd2 = mk_memfd_create("memkit-shrink-other", 0);
  CHECK_EQ(mk_memfd_resize((int32_t)fd2, 4 * page, NULL), 0, "resize the other memfd");
  CHECK_EQ(mk_memfd_resize((int32_t)fd2, 0, NULL), 0,
           "a memfd shrinks under another memfd's mapping");
  mk_core_close((int32_t)fd2);

  munmap(m, 2 * page);
  CHECK_EQ(mk_memfd_resize(f, 0, NULL), 0, "once unmapped, it shrinks to 0");
  mk_core_close(f);
}

/* A line of /proc/self/maps longer than the parser's buffer: a file whose
 * path is full of newlines, which the kernel prints as "\012" each. */
static void test_maps_long_line(void) {
  uint64_t page = (uint64_t)mk_core_page_size();
  char top[] = "/tmp/memkit-longline-XXXXXX";
  if (!CHECK(mkdtemp(top) != NULL, "make a directory for a long path")) return;
  int dir = open(top, O_PATH | O_DIRECTORY | O_CLOEXEC);
  char name[251];
  memset(name, '\n', 250);
  name[250] = '\0';
  int ok = dir >= 0;
  for (int i = 0; ok && i < 9; i++) { /* 9 x 250 newlines: over 9000 bytes printed */
    int next = mkdirat(dir, name, 0700) == 0 ? openat(dir, name, O_PATH | O_DIRECTORY | O_CLOEXEC)
                                             : -1;
    close(dir);
    dir = next;
    ok = dir >= 0;
  }
  int fd = ok ? openat(dir, "f", O_RDWR | O_CREAT | O_CLOEXEC, 0600) : -1;
  if (!CHECK(fd >= 0 && ftruncate(fd, (off_t)(2 * page)) == 0, "a file under that path")) {
    if (dir >= 0) close(dir);
    return;
  }
  void *m = mmap(NULL, 2 * page, PROT_READ, MAP_SHARED, fd, 0);
  int64_t mfd = mk_memfd_create("memkit-after-long-line", 0);
  CHECK_EQ(mk_memfd_resize((int32_t)mfd, 2 * page, NULL), 0, "a memfd beside it");
  void *n = mmap(NULL, 2 * page, PROT_READ, MAP_SHARED, (int)mfd, 0);
  if (CHECK(m != MAP_FAILED && n != MAP_FAILED, "map both")) {
    struct stat a, b;
    fstat(fd, &a);
    fstat((int)mfd, &b);
    uint64_t q[3], t[3];
    CHECK_EQ(mk_memfd_mapped_past(major(a.st_dev), minor(a.st_dev), a.st_ino, page, 1, t), 1,
             "parsing finds the mapping whose line is longer than its buffer");
    CHECK_EQ(t[0], (uint64_t)(uintptr_t)m, "at its address");
    CHECK_EQ(mk_memfd_mapped_past(major(b.st_dev), minor(b.st_dev), b.st_ino, page, 1, t), 1,
             "parsing still finds the memfd's mapping beside it");
    CHECK_EQ(mk_memfd_mapped_past(major(b.st_dev), minor(b.st_dev), b.st_ino, page, 0, q), 1,
             "and so does PROCMAP_QUERY");
    CHECK(memcmp(q, t, sizeof q) == 0, "both report the same mapping");
    CHECK_ERR(mk_memfd_resize((int32_t)mfd, 0, NULL), EBUSY, "the memfd cannot shrink under it");
  }
  if (m != MAP_FAILED) munmap(m, 2 * page);
  if (n != MAP_FAILED) munmap(n, 2 * page);
  mk_core_close((int32_t)mfd);
  close(fd);
  close(dir);
  /* Remove the chain again: rm -r in C. */
  char cmd[64];
  snprintf(cmd, sizeof cmd, "rm -rf %s", top);
  CHECK(system(cmd) == 0, "remove the long path");
}

static void test_seals(void) {
  int64_t page = mk_core_page_size();
  int64_t fd = mk_memfd_create("memkit-seals", MK_MEMFD_SEALABLE);
  if (!CHECK_OK(fd, "create a sealable memfd")) return;
  int32_t f = (int32_t)fd;
  CHECK_EQ(mk_memfd_seals(f), 0, "a sealable memfd starts without seals");
  CHECK_EQ(mk_memfd_resize(f, (uint64_t)page * 2, NULL), 0, "resize to 2 pages");

  CHECK_ERR(mk_memfd_seal(f, 0x40), EINVAL, "seal with unknown bit 0x40 is -EINVAL");
  CHECK_ERR(mk_memfd_seal(f, 0x80000000u), EINVAL, "seal with unknown bit 0x80000000 is -EINVAL");
  CHECK_ERR(mk_memfd_seal(f, MK_SEAL_SHRINK | 0x100), EINVAL,
            "seal with a known and an unknown bit is -EINVAL");
  CHECK_EQ(mk_memfd_seals(f), 0, "a refused seal adds nothing");

  CHECK_EQ(mk_memfd_seal(f, MK_SEAL_SHRINK | MK_SEAL_GROW), 0, "seal shrink|grow is 0");
  CHECK_EQ(mk_memfd_seals(f), MK_SEAL_SHRINK | MK_SEAL_GROW, "seals read back shrink|grow");
  CHECK_ERR(mk_memfd_resize(f, (uint64_t)page * 3, NULL), EPERM, "growing a grow-sealed memfd is -EPERM");
  CHECK_ERR(mk_memfd_resize(f, (uint64_t)page, NULL), EPERM, "shrinking a shrink-sealed memfd is -EPERM");
  CHECK_EQ(mk_memfd_resize(f, (uint64_t)page * 2, NULL), 0, "resize to the same size is 0");
  CHECK_EQ(mk_core_fd_size(f), page * 2, "the size is unchanged");
  CHECK_EQ(mk_memfd_seal(f, MK_SEAL_GROW), 0, "adding a seal it has is 0");

  /* Seals are added only through a writable descriptor. */
  char link[64];
  snprintf(link, sizeof link, "/proc/self/fd/%d", f);
  int ro = open(link, O_RDONLY | O_CLOEXEC);
  if (CHECK(ro >= 0, "reopen the memfd read-only")) {
    CHECK_EQ(mk_memfd_seals(ro), MK_SEAL_SHRINK | MK_SEAL_GROW,
             "a read-only descriptor reads the same seals");
    CHECK_ERR(mk_memfd_seal(ro, MK_SEAL_WRITE), EPERM,
              "sealing through a read-only descriptor is -EPERM");
    close(ro);
  }

  CHECK_EQ(mk_memfd_seal(f, MK_SEAL_SEAL), 0, "seal the seals is 0");
  CHECK_EQ(mk_memfd_seals(f), MK_SEAL_SHRINK | MK_SEAL_GROW | MK_SEAL_SEAL,
           "seals read back shrink|grow|seal");
  CHECK_ERR(mk_memfd_seal(f, MK_SEAL_WRITE), EPERM, "a seal after F_SEAL_SEAL is -EPERM");
  CHECK_EQ(mk_memfd_seals(f), MK_SEAL_SHRINK | MK_SEAL_GROW | MK_SEAL_SEAL,
           "the refused seal added nothing");
  mk_core_close(f);

  CHECK_ERR(mk_memfd_seal(-1, MK_SEAL_SHRINK), EBADF, "seal(-1) is -EBADF");
  CHECK_ERR(mk_memfd_seals(-1), EBADF, "seals(-1) is -EBADF");
  CHECK_ERR(mk_memfd_seals(f), EBADF, "seals of a closed memfd is -EBADF");
  int p[2];
  if (CHECK(pipe2(p, O_CLOEXEC) == 0, "pipe2")) {
    CHECK_ERR(mk_memfd_seals(p[0]), EINVAL, "seals of a pipe is -EINVAL");
    CHECK_ERR(mk_memfd_seal(p[1], MK_SEAL_SHRINK), EINVAL, "seal of a pipe is -EINVAL");
    close(p[0]);
    close(p[1]);
  }
}

static void test_write_seals(void) {
  int64_t page = mk_core_page_size();
  int64_t fd = mk_memfd_create("memkit-write-seal", MK_MEMFD_SEALABLE);
  if (!CHECK_OK(fd, "create a sealable memfd for write seals")) return;
  int32_t f = (int32_t)fd;
  CHECK_EQ(mk_memfd_resize(f, (uint64_t)page, NULL), 0, "resize to 1 page");

  int64_t rw = mk_map_fd(f, 0, (uint64_t)page, MK_PROT_READ | MK_PROT_WRITE);
  if (CHECK_OK(rw, "map it read-write")) {
    ((volatile unsigned char *)(uintptr_t)rw)[0] = 0x5a;
    CHECK_ERR(mk_memfd_seal(f, MK_SEAL_WRITE), EBUSY,
              "seal write while a writable mapping exists is -EBUSY");
    CHECK_EQ(mk_map_unmap((uint64_t)rw, (uint64_t)page), 0, "unmap it");
  }
  CHECK_EQ(mk_memfd_seal(f, MK_SEAL_WRITE), 0, "seal write without writable mappings is 0");
  CHECK_EQ(mk_memfd_seals(f), MK_SEAL_WRITE, "seals read back write");
  CHECK_ERR(mk_map_fd(f, 0, (uint64_t)page, MK_PROT_READ | MK_PROT_WRITE), EPERM,
            "a writable mapping of a write-sealed memfd is -EPERM");
  errno = 0;
  CHECK(write(f, "x", 1) == -1 && errno == EPERM, "write() to a write-sealed memfd fails with EPERM");
  int64_t ro = mk_map_fd(f, 0, (uint64_t)page, MK_PROT_READ);
  if (CHECK_OK(ro, "a read-only mapping of a write-sealed memfd works")) {
    CHECK_EQ(((volatile unsigned char *)(uintptr_t)ro)[0], 0x5a, "it sees the data");
    CHECK_ERR(mk_map_protect((uint64_t)ro, (uint64_t)page, MK_PROT_READ | MK_PROT_WRITE), EACCES,
              "making it writable is -EACCES");
    mk_map_unmap((uint64_t)ro, (uint64_t)page);
  }
  mk_core_close(f);

  fd = mk_memfd_create("memkit-future-write", MK_MEMFD_SEALABLE);
  if (!CHECK_OK(fd, "create a sealable memfd for future-write")) return;
  f = (int32_t)fd;
  CHECK_EQ(mk_memfd_resize(f, (uint64_t)page, NULL), 0, "resize to 1 page");
  CHECK_EQ(mk_memfd_seal(f, MK_SEAL_FUTURE_WRITE), 0, "seal future-write is 0");
  CHECK_EQ(mk_memfd_seals(f), MK_SEAL_FUTURE_WRITE, "seals read back future-write");
  CHECK_ERR(mk_map_fd(f, 0, (uint64_t)page, MK_PROT_READ | MK_PROT_WRITE), EPERM,
            "a writable mapping after future-write is -EPERM");
  mk_core_close(f);
}

static void test_not_sealable(void) {
  long sysctl = read_sysctl("/proc/sys/vm/memfd_noexec");
  if (sysctl > 0) {
    /* vm.memfd_noexec >= 1 gives every memfd MFD_NOEXEC_SEAL, which implies sealing. */
    SKIP("a memfd created without SEALABLE refuses seals", "vm.memfd_noexec is not 0");
    return;
  }
  int64_t fd = mk_memfd_create("memkit-unsealable", 0);
  if (!CHECK_OK(fd, "create a memfd without SEALABLE")) return;
  int32_t f = (int32_t)fd;
  CHECK_EQ(mk_memfd_seals(f), MK_SEAL_SEAL, "its seals read back F_SEAL_SEAL");
  CHECK_ERR(mk_memfd_seal(f, MK_SEAL_SHRINK), EPERM, "sealing it is -EPERM");
  CHECK_ERR(mk_memfd_seal(f, MK_SEAL_SEAL), EPERM, "sealing its seals is -EPERM");
  CHECK_EQ(mk_memfd_seals(f), MK_SEAL_SEAL, "its seals are unchanged");
  CHECK_EQ(mk_memfd_resize(f, 8192, NULL), 0, "it still resizes");
  mk_core_close(f);
}

static void test_noexec(void) {
  int before = lowest_free_fd();
  int64_t supported = mk_memfd_noexec_supported();
  CHECK(supported == 0 || supported == 1, "noexec probe answers 0 or 1");
  CHECK_EQ(lowest_free_fd(), before, "noexec probe leaks no descriptor");

  /* Ask the kernel directly. */
  int direct = memfd_create("memkit-direct-probe", MFD_CLOEXEC | MFD_NOEXEC_SEAL);
  int direct_errno = errno;
  if (direct >= 0) close(direct);
  CHECK(direct >= 0 || direct_errno == EINVAL, "a direct MFD_NOEXEC_SEAL create succeeds or is EINVAL");
  CHECK_EQ(supported, direct >= 0 ? 1 : 0, "noexec probe agrees with MFD_NOEXEC_SEAL tried directly");

  int64_t fd = mk_memfd_create("memkit-noexec", MK_MEMFD_NOEXEC);
  if (supported != 1) {
    CHECK_ERR(fd, EINVAL, "create(NOEXEC) without kernel support is -EINVAL");
    if (fd >= 0) mk_core_close((int32_t)fd);
    SKIP("a NOEXEC memfd reports F_SEAL_EXEC", "the kernel lacks MFD_NOEXEC_SEAL");
    return;
  }
  if (!CHECK_OK(fd, "create(NOEXEC) succeeds")) return;
  int32_t f = (int32_t)fd;
  CHECK(is_cloexec(f), "create(NOEXEC) sets FD_CLOEXEC");
  int64_t seals = mk_memfd_seals(f);
  CHECK_OK(seals, "seals of a NOEXEC memfd");
  CHECK(seals >= 0 && (seals & MK_SEAL_EXEC), "a NOEXEC memfd reports F_SEAL_EXEC");
  CHECK(seals >= 0 && !(seals & MK_SEAL_SEAL), "a NOEXEC memfd is sealable");
  struct stat st;
  CHECK(fstat(f, &st) == 0 && (st.st_mode & 0111) == 0, "a NOEXEC memfd has no exec bits");
  errno = 0;
  CHECK(fchmod(f, 0755) == -1 && errno == EPERM, "chmod +x of a NOEXEC memfd fails with EPERM");
  CHECK_EQ(mk_memfd_seal(f, MK_SEAL_SHRINK), 0, "a NOEXEC memfd takes more seals");
  CHECK_EQ(mk_memfd_seals(f), MK_SEAL_EXEC | MK_SEAL_SHRINK, "seals read back exec|shrink");
  mk_core_close(f);

  fd = mk_memfd_create("memkit-noexec-sealable", MK_MEMFD_NOEXEC | MK_MEMFD_SEALABLE);
  if (CHECK_OK(fd, "create(NOEXEC | SEALABLE) succeeds")) {
    CHECK_EQ(mk_memfd_seals((int32_t)fd), MK_SEAL_EXEC, "its seals read back exec");
    mk_core_close((int32_t)fd);
  }
}

static void test_create_sized(void) {
  int64_t page = mk_core_page_size();
  int64_t fd = mk_memfd_create_sized("memkit-sized", MK_MEMFD_SEALABLE, (uint64_t)page * 3);
  if (CHECK_OK(fd, "create a 3-page memfd in one call")) {
    CHECK_EQ(mk_core_fd_size((int32_t)fd), page * 3, "it is 3 pages");
    CHECK(is_cloexec((int)fd), "it is close-on-exec");
    CHECK_EQ(mk_memfd_seals((int32_t)fd), 0, "it is sealable, with no seals yet");
    close((int)fd);
  }
  fd = mk_memfd_create_sized("memkit-sized-0", 0, 0);
  if (CHECK_OK(fd, "create an empty one")) {
    CHECK_EQ(mk_core_fd_size((int32_t)fd), 0, "it is empty");
    close((int)fd);
  }
  CHECK_ERR(mk_memfd_create_sized(NULL, 0, 0), EINVAL, "a NULL name is -EINVAL");
  CHECK_ERR(mk_memfd_create_sized("x", 4, 0), EINVAL, "an unknown flag is -EINVAL");
  CHECK_ERR(mk_memfd_create_sized("x", 0, (uint64_t)INT64_MAX + 1), EFBIG,
            "a size past INT64_MAX is -EFBIG");
  /* A failing ftruncate (RLIMIT_FSIZE) closes the new descriptor again. */
  struct rlimit old;
  getrlimit(RLIMIT_FSIZE, &old);
  struct rlimit small = {(rlim_t)page, old.rlim_max};
  void (*was)(int) = signal(SIGXFSZ, SIG_IGN);
  int lowest = lowest_free_fd();
  if (CHECK(setrlimit(RLIMIT_FSIZE, &small) == 0, "limit file sizes to a page")) {
    CHECK_ERR(mk_memfd_create_sized("memkit-too-big", 0, (uint64_t)page * 2), EFBIG,
              "a size past RLIMIT_FSIZE is -EFBIG");
    setrlimit(RLIMIT_FSIZE, &old);
    CHECK_EQ(lowest_free_fd(), lowest, "and leaves no descriptor open");
  }
  signal(SIGXFSZ, was);
}

int main(void) {
  test_create();
  test_create_sized();
  test_create_errors();
  test_resize();
  test_resize_under_mappings();
  test_maps_long_line();
  test_seals();
  test_write_seals();
  test_not_sealable();
  test_noexec();
  return tap_done();
}
