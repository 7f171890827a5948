/* test_shm.c: mk_shm_* against the kernel's /dev/shm: names, exclusive
 * creation, the reservation, O_CLOEXEC and O_NOFOLLOW, what is not a regular
 * file, read-only descriptors, the listings, copies that cannot fault after
 * a shrink, and resize refusing to shrink under this process's mapping. */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

#include "memkit.h"
#include "tap.h"

static char name[64], path[96];

/* Whether the NUL-separated list buf[0, n) holds `want`. */
static int listed(const uint8_t *buf, int64_t n, const char *want) {
  for (int64_t i = 0; i < n; i += (int64_t)strlen((const char *)buf + i) + 1) {
    if (strcmp((const char *)buf + i, want) == 0) return 1;
  }
  return 0;
}

static void test_names(void) {
  char long_name[NAME_MAX + 2];
  memset(long_name, 'x', sizeof long_name - 1);
  long_name[sizeof long_name - 1] = '\0';
  CHECK_ERR(mk_shm_open("", MK_SHM_WRITE | MK_SHM_CREATE, 0600, 1), EINVAL, "empty name");
  CHECK_ERR(mk_shm_open("a/b", 0, 0, 0), EINVAL, "inner slash");
  CHECK_ERR(mk_shm_open("/a", 0, 0, 0), EINVAL, "the slash is the caller's to strip");
  CHECK_ERR(mk_shm_open(".", 0, 0, 0), EINVAL, "dot");
  CHECK_ERR(mk_shm_open("..", 0, 0, 0), EINVAL, "dot dot");
  CHECK_ERR(mk_shm_open(long_name, 0, 0, 0), ENAMETOOLONG, "over NAME_MAX");
  CHECK_ERR(mk_shm_open(NULL, 0, 0, 0), EINVAL, "NULL name");
  CHECK_ERR(mk_shm_unlink("../etc"), EINVAL, "unlink takes no path");
  CHECK_ERR(mk_shm_open(name, MK_SHM_CREATE, 0600, 1), EINVAL, "create needs write");
  CHECK_ERR(mk_shm_open(name, MK_SHM_WRITE | MK_SHM_EXCLUSIVE, 0600, 1), EINVAL,
            "exclusive needs create");
  CHECK_ERR(mk_shm_open(name, 0x80, 0, 0), EINVAL, "unknown flag");
}

static void test_create(void) {
  int64_t fd = mk_shm_open(name, MK_SHM_WRITE | MK_SHM_CREATE | MK_SHM_EXCLUSIVE, 0600, 3 * 4096);
  CHECK_OK(fd, "create");
  if (fd < 0) return;
  struct stat st;
  CHECK(stat(path, &st) == 0 && st.st_size == 3 * 4096, "size set");
  CHECK(st.st_blocks * 512 >= 3 * 4096, "every page reserved (fallocate)");
  CHECK((fcntl((int)fd, F_GETFD) & FD_CLOEXEC) != 0, "FD_CLOEXEC");
  CHECK_ERR(mk_shm_open(name, MK_SHM_WRITE | MK_SHM_CREATE | MK_SHM_EXCLUSIVE, 0600, 1), EEXIST,
            "exclusive refuses an existing one");
  int64_t again = mk_shm_open(name, MK_SHM_WRITE | MK_SHM_CREATE, 0600, 5 * 4096);
  CHECK_OK(again, "not exclusive opens it");
  CHECK(stat(path, &st) == 0 && st.st_size == 5 * 4096, "and grows it to the size asked");
  if (again >= 0) close((int)again);
  again = mk_shm_open(name, MK_SHM_WRITE | MK_SHM_CREATE, 0600, 4096);
  CHECK(stat(path, &st) == 0 && st.st_size == 5 * 4096, "never shrinks it");
  if (again >= 0) close((int)again);

  uint64_t out[9];
  CHECK_OK(mk_shm_stat(name, -1, out), "stat by name");
  CHECK(out[0] == 5 * 4096 && (out[2] & 0777) == 0600 && out[3] == (uint64_t)getuid(),
        "size, mode, owner");
  CHECK_OK(mk_shm_stat(NULL, (int32_t)fd, out), "stat by fd");
  CHECK(out[5] == (uint64_t)st.st_ino, "the same inode");

  /* Copies through the descriptor, and what a shrink does to them. */
  uint8_t buf[16] = "hello";
  CHECK_EQ(mk_shm_write((int32_t)fd, 4096 * 5 - 2, buf, 5), 2, "write stops at the end");
  CHECK(stat(path, &st) == 0 && st.st_size == 5 * 4096, "a write never grows it");
  uint8_t *m = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, (int)fd, 0);
  CHECK(m != MAP_FAILED, "map");
  if (m != MAP_FAILED) {
    uint64_t busy[3] = {0};
    CHECK_ERR(mk_shm_resize((int32_t)fd, 4096, busy), EBUSY, "no shrink under this mapping");
    CHECK(busy[0] == (uint64_t)(uintptr_t)m && busy[2] == 2 * 4096, "names the mapping");
    munmap(m, 2 * 4096);
  }
  CHECK_OK(mk_shm_resize((int32_t)fd, 4096, NULL), "shrink once unmapped");
  memset(buf, 0, sizeof buf);
  CHECK_EQ(mk_shm_read((int32_t)fd, 4090, buf, sizeof buf), 6, "read stops at the end");
  CHECK_EQ(mk_shm_read((int32_t)fd, 8192, buf, sizeof buf), 0, "read past the end: nothing");
  CHECK_OK(mk_shm_resize((int32_t)fd, 8 * 4096, NULL), "grow");
  CHECK(fstat((int)fd, &st) == 0 && st.st_size == 8 * 4096 && st.st_blocks * 512 >= 8 * 4096,
        "growing reserves the new pages");

  /* A read-only descriptor cannot back a writable shared mapping. */
  int64_t ro = mk_shm_open(name, 0, 0, 0);
  CHECK_OK(ro, "open read-only");
  if (ro >= 0) {
    CHECK((fcntl((int)ro, F_GETFL) & O_ACCMODE) == O_RDONLY, "O_RDONLY");
    void *w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, (int)ro, 0);
    CHECK(w == MAP_FAILED && errno == EACCES, "no writable mapping of it");
    void *r = mmap(NULL, 4096, PROT_READ, MAP_SHARED, (int)ro, 0);
    CHECK(r != MAP_FAILED && mprotect(r, 4096, PROT_READ | PROT_WRITE) < 0 && errno == EACCES,
          "nor a protection raised to write");
    if (r != MAP_FAILED) munmap(r, 4096);
    close((int)ro);
  }

  /* The listings. */
  uint8_t list[1 << 16];
  int64_t n = mk_shm_list(list, sizeof list);
  CHECK(n > 0 && n <= (int64_t)sizeof list && listed(list, n, name), "listed in /dev/shm");
  CHECK(n > 0 && !listed(list, n, ".") && !listed(list, n, ".."), "without . and ..");
  CHECK(mk_shm_list(list, 1) == n, "the size needed when the buffer is short");
  char self[16];
  snprintf(self, sizeof self, "%d", (int)getpid());
  n = mk_shm_pids(list, sizeof list);
  CHECK(n > 0 && listed(list, n, self) && !listed(list, n, "self"), "this pid in /proc");

  close((int)fd);
  CHECK_OK(mk_shm_unlink(name), "unlink");
  CHECK_ERR(mk_shm_open(name, 0, 0, 0), ENOENT, "gone");
  CHECK_ERR(mk_shm_unlink(name), ENOENT, "unlink twice");
}

static void test_not_regular(void) {
  char target[128];
  snprintf(target, sizeof target, "%s-target", name);
  /* A symbolic link: refused (O_NOFOLLOW), whatever it points to. */
  if (symlink("/etc/hostname", path) == 0) {
    CHECK_ERR(mk_shm_open(name, 0, 0, 0), ELOOP, "a symlink is not followed");
    CHECK_ERR(mk_shm_open(name, MK_SHM_WRITE | MK_SHM_CREATE, 0600, 1), ELOOP,
              "nor created through");
    unlink(path);
  } else {
    SKIP("symlink", "cannot create one in /dev/shm");
  }
  /* A FIFO: refused without blocking (O_NONBLOCK). */
  if (mkfifo(path, 0600) == 0) {
    CHECK_ERR(mk_shm_open(name, 0, 0, 0), ENODEV, "a FIFO is not shared memory");
    CHECK_ERR(mk_shm_open(name, MK_SHM_WRITE | MK_SHM_CREATE, 0600, 1), ENODEV,
              "nor is it created over");
    unlink(path);
  } else {
    SKIP("fifo", "cannot create one in /dev/shm");
  }
  if (mkdir(path, 0700) == 0) {
    CHECK_ERR(mk_shm_open(name, 0, 0, 0), ENODEV, "a directory is not shared memory");
    rmdir(path);
  }
}

/* In a child with its own mount namespace, a 1 MiB tmpfs over /dev/shm:
 * 0 when creating 4 MiB is ENOSPC and leaves no segment behind, and 1 MiB
 * minus a page fits; 77 where mounting is refused (not root). */
static int full_tmpfs_child(void) {
  if (unshare(CLONE_NEWNS) < 0) return 77;
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) return 77;
  if (mount("memkit-ctest", "/dev/shm", "tmpfs", 0, "size=1m") < 0) return 77;
  int64_t ret = mk_shm_open(name, MK_SHM_WRITE | MK_SHM_CREATE | MK_SHM_EXCLUSIVE, 0600, 4 << 20);
  if (ret != -ENOSPC) return 1;
  struct stat st;
  if (stat(path, &st) == 0 || errno != ENOENT) return 2;
  ret = mk_shm_open(name, MK_SHM_WRITE | MK_SHM_CREATE | MK_SHM_EXCLUSIVE, 0600, 512 << 10);
  return ret < 0 ? 3 : 0;
}

static void test_full(void) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) _exit(full_tmpfs_child());
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) {
    CHECK(0, "fork a child for the full tmpfs");
    return;
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
    SKIP("full tmpfs", "mounting a tmpfs in a new mount namespace needs root");
    return;
  }
  CHECK_EQ(WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status), 0,
           "a full tmpfs is ENOSPC at create, and the segment is removed again");
}

int main(void) {
  snprintf(name, sizeof name, "memkit-ctest-%d", (int)getpid());
  snprintf(path, sizeof path, "/dev/shm/%s", name);
  struct stat st;
  if (stat("/dev/shm", &st) < 0) {
    SKIP("shm", "no /dev/shm");
    return tap_done();
  }
  test_names();
  test_create();
  test_not_regular();
  test_full();
  unlink(path);
  return tap_done();
}
