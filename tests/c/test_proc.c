/* test_proc.c: mk_proc_open_file, mk_proc_read_next, mk_proc_query and
 * mk_proc_cap_sys_admin against the kernel: whole files read on in steps, missing processes,
 * PROCMAP_QUERY agreeing with the maps text. */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "memkit.h"
#include "tap.h"

/* The whole of /proc/self/<which> through mk_proc_open_file and
 * mk_proc_read_next into buf, in reads of at most `step` bytes; -errno. */
static int64_t read_all(int32_t pid, uint32_t which, uint8_t *buf, uint64_t cap, uint64_t step) {
  int64_t fd = mk_proc_open_file(pid, which);
  if (fd < 0) return fd;
  uint64_t total = 0;
  for (;;) {
    uint64_t ask = cap - total < step ? cap - total : step;
    int64_t n = mk_proc_read_next((int32_t)fd, buf + total, ask);
    if (n < 0) {
      mk_core_close((int32_t)fd);
      return n;
    }
    total += (uint64_t)n;
    if ((uint64_t)n < ask || total == cap) break;
  }
  mk_core_close((int32_t)fd);
  return (int64_t)total;
}

static void test_read(void) {
  static uint8_t big[1 << 20], again[1 << 20], whole_text[1 << 20];
  int64_t n = read_all(0, MK_PROC_MAPS, big, sizeof big, sizeof big);
  if (!CHECK_OK(n, "read /proc/self/maps")) return;
  CHECK(n > 0 && (uint64_t)n < sizeof big, "it fits in 1 MiB");
  CHECK(big[n - 1] == '\n', "it ends with a newline");
  CHECK(memmem(big, (size_t)n, "[stack]", 7) != NULL, "it names the stack");

  /* Small reads go on where the last stopped: the same text, never
   * restarted. Of a child that waits, whose maps stay as they are: it
   * execs sleep(1), since a forked copy of this program runs the
   * sanitizers' runtime, which may still map memory (ThreadSanitizer's
   * does). The pipe's write end closes on exec: EOF means it is sleep. */
  int ready[2];
  if (!CHECK(pipe2(ready, O_CLOEXEC) == 0, "a pipe")) return;
  pid_t child = fork();
  if (child == 0) {
    execlp("sleep", "sleep", "1000", (char *)NULL);
    _exit(127);
  }
  close(ready[1]);
  char c;
  CHECK(read(ready[0], &c, 1) == 0, "the child is sleep(1) now");
  close(ready[0]);
  /* The exec is done, but ld.so may still be mapping sleep's libraries:
   * read in steps between two whole reads that agree (the maps were the
   * same throughout), a few times at most. */
  int same = 0;
  int64_t whole = 0, steps = 0;
  for (int attempt = 0; attempt < 50 && !same; attempt++) {
    whole = read_all((int32_t)child, MK_PROC_MAPS, whole_text, sizeof whole_text,
                     sizeof whole_text);
    steps = read_all((int32_t)child, MK_PROC_MAPS, again, sizeof again, 7);
    int64_t after = read_all((int32_t)child, MK_PROC_MAPS, big, sizeof big, sizeof big);
    if (whole > 0 && after == whole && memcmp(whole_text, big, (size_t)whole) == 0) same = 1;
    else usleep(10000);
  }
  CHECK(same, "the child's maps stay the same");
  CHECK(whole > 0 && steps == whole && memcmp(whole_text, again, (size_t)whole) == 0,
        "reads of 7 bytes give the text of one read");
  /* big held the child's text meanwhile: this process's again. */
  n = read_all(0, MK_PROC_MAPS, big, sizeof big, sizeof big);
  CHECK(n > 0, "read /proc/self/maps again");
  kill(child, SIGKILL);
  waitpid(child, NULL, 0);
  int64_t fd = mk_proc_open_file(0, MK_PROC_MAPS);
  if (CHECK_OK(fd, "open /proc/self/maps")) {
    uint8_t small[16];
    CHECK_EQ(mk_proc_read_next((int32_t)fd, small, sizeof small), (int64_t)sizeof small,
             "a full buffer is filled");
    CHECK(memcmp(small, big, sizeof small) == 0, "with the file's start");
    CHECK_EQ(mk_proc_read_next((int32_t)fd, small, 0), 0, "0 bytes read 0");
    CHECK_EQ(mk_proc_read_next((int32_t)fd, small, 1), 1, "and do not end the file");
    CHECK_EQ(small[0], big[sizeof small], "the next byte follows");
    CHECK_ERR(mk_proc_read_next((int32_t)fd, NULL, 10), EFAULT, "NULL with a size is -EFAULT");
    CHECK_ERR(mk_proc_read_next((int32_t)fd, small, UINT64_MAX), EINVAL,
              "a size past off_t is -EINVAL");
    mk_core_close((int32_t)fd);
  }
  CHECK_ERR(mk_proc_read_next(-1, big, 10), EBADF, "a closed descriptor is -EBADF");

  int64_t by_pid = read_all((int32_t)getpid(), MK_PROC_SMAPS_ROLLUP, big, sizeof big, 4096);
  CHECK(by_pid > 0 && memmem(big, (size_t)by_pid, "[rollup]", 8) != NULL,
        "smaps_rollup by pid has its [rollup] line");
  int64_t smaps = read_all(0, MK_PROC_SMAPS, big, sizeof big, 4096);
  CHECK(smaps > n, "smaps is longer than maps");

  CHECK_ERR(mk_proc_open_file(0, 3), EINVAL, "an unknown file is -EINVAL");
  CHECK_ERR(mk_proc_open_file(-1, MK_PROC_MAPS), EINVAL, "pid -1 is -EINVAL");
  CHECK_ERR(mk_proc_open_file(0x3fffffff, MK_PROC_MAPS), ENOENT,
            "a pid that does not exist is -ENOENT");
}

static void test_exited(void) {
  pid_t child = fork();
  if (child == 0) _exit(0);
  uint8_t buf[256];
  /* A zombie: its maps file exists and reads empty. */
  siginfo_t info;
  waitid(P_PID, (id_t)child, &info, WEXITED | WNOWAIT);
  int64_t n = read_all((int32_t)child, MK_PROC_MAPS, buf, sizeof buf, sizeof buf);
  CHECK_EQ(n, 0, "a zombie's maps read empty");
  uint64_t out[9];
  CHECK_ERR(mk_proc_query((int32_t)child, 0x1000, 0, out, buf, sizeof buf), ESRCH,
            "PROCMAP_QUERY of a zombie is -ESRCH");
  waitpid(child, NULL, 0);
  CHECK_ERR(mk_proc_open_file((int32_t)child, MK_PROC_MAPS), ENOENT,
            "a reaped child's maps are -ENOENT");
  CHECK_ERR(mk_proc_query((int32_t)child, 0x1000, 0, out, buf, sizeof buf), ESRCH,
            "PROCMAP_QUERY of a reaped child is -ESRCH");
}

static void test_query(void) {
  long page = sysconf(_SC_PAGESIZE);
  char *p = mmap(NULL, (size_t)(3 * page), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
                 0);
  if (!CHECK(p != MAP_FAILED, "map 3 shared anonymous pages")) return;
  mprotect(p + page, (size_t)page, PROT_READ);
  uint64_t out[9];
  uint8_t name[4200];
  int64_t r = mk_proc_query(0, (uint64_t)(uintptr_t)(p + page + 5), 0, out, name, sizeof name);
  if (CHECK_OK(r, "query the middle page")) {
    CHECK_EQ(out[0], (uint64_t)(uintptr_t)(p + page), "its start");
    CHECK_EQ(out[1], (uint64_t)(uintptr_t)(p + 2 * page), "its end (the protection split it)");
    CHECK_EQ(out[2], 1 | 8, "read-only and shared");
    CHECK_EQ(out[3], (uint64_t)page, "the page size");
    CHECK(strcmp((char *)name, "/dev/zero (deleted)") == 0 && out[8] == 19,
          "shared anonymous memory is named /dev/zero (deleted)");
  }
  r = mk_proc_query(0, (uint64_t)(uintptr_t)&test_query, 0, out, name, sizeof name);
  if (CHECK_OK(r, "query this function's address")) {
    CHECK(out[2] & 4, "it is executable");
    CHECK(strstr((char *)name, "test_proc") != NULL, "it is this program");
    CHECK(out[5] != 0, "it has an inode");
  }
  CHECK_ERR(mk_proc_query(0, 0, 0, out, name, sizeof name), ENOENT,
            "address 0 is in no mapping: -ENOENT");
  r = mk_proc_query(0, 0, 0x10, out, name, sizeof name);
  CHECK(r == 0 && out[0] > 0, "with COVERING_OR_NEXT, address 0 finds the first mapping");
  CHECK_ERR(mk_proc_query(0, 0, 0x40, out, name, sizeof name), EINVAL, "an unknown flag is -EINVAL");
  CHECK_ERR(mk_proc_query(0, 0, 0, NULL, name, sizeof name), EFAULT, "no output is -EFAULT");
  r = mk_proc_query(0, (uint64_t)(uintptr_t)&test_query, 0, out, name, 4);
  CHECK_ERR(r, ENAMETOOLONG, "a name buffer too small is -ENAMETOOLONG");
  munmap(p, (size_t)(3 * page));
}

static void test_cap(void) {
  int64_t c = mk_proc_cap_sys_admin();
  CHECK(c == 0 || c == 1, "cap_sys_admin is 0 or 1");
  CHECK_EQ(c, geteuid() == 0 ? 1 : 0, "root has CAP_SYS_ADMIN here, others do not");
}

int main(void) {
  test_read();
  test_exited();
  test_query();
  test_cap();
  return tap_done();
}
