/* test_proc.c: mk_proc_read, mk_proc_query and mk_proc_cap_sys_admin
 * against the kernel: whole files, buffer growth, missing processes,
 * PROCMAP_QUERY agreeing with the maps text. */
#define _GNU_SOURCE 1
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "memkit.h"
#include "tap.h"

static void test_read(void) {
  static uint8_t big[1 << 20];
  int64_t n = mk_proc_read(0, MK_PROC_MAPS, big, sizeof big);
  if (!CHECK_OK(n, "read /proc/self/maps")) return;
  CHECK(n > 0 && (uint64_t)n < sizeof big, "it fits in 1 MiB");
  CHECK(big[n - 1] == '\n', "it ends with a newline");
  CHECK(memmem(big, (size_t)n, "[stack]", 7) != NULL, "it names the stack");

  uint8_t small[16];
  int64_t need = mk_proc_read(0, MK_PROC_MAPS, small, sizeof small);
  CHECK(need > (int64_t)sizeof small, "a small buffer reports the whole length");
  CHECK(memcmp(small, big, sizeof small) == 0, "and holds the file's start");
  CHECK(mk_proc_read(0, MK_PROC_MAPS, NULL, 0) > 0, "a NULL buffer of 0 bytes only measures");

  int64_t by_pid = mk_proc_read((int32_t)getpid(), MK_PROC_SMAPS_ROLLUP, big, sizeof big);
  CHECK(by_pid > 0 && memmem(big, (size_t)by_pid, "[rollup]", 8) != NULL,
        "smaps_rollup by pid has its [rollup] line");
  int64_t smaps = mk_proc_read(0, MK_PROC_SMAPS, big, sizeof big);
  CHECK(smaps > n, "smaps is longer than maps");

  CHECK_ERR(mk_proc_read(0, 3, big, sizeof big), EINVAL, "an unknown file is -EINVAL");
  CHECK_ERR(mk_proc_read(-1, MK_PROC_MAPS, big, sizeof big), EINVAL, "pid -1 is -EINVAL");
  CHECK_ERR(mk_proc_read(0, MK_PROC_MAPS, NULL, 10), EFAULT, "NULL with a size is -EFAULT");
  CHECK_ERR(mk_proc_read(0x3fffffff, MK_PROC_MAPS, big, sizeof big), ENOENT,
            "a pid that does not exist is -ENOENT");
}

static void test_exited(void) {
  pid_t child = fork();
  if (child == 0) _exit(0);
  uint8_t buf[256];
  /* A zombie: its maps file exists and reads empty. */
  siginfo_t info;
  waitid(P_PID, (id_t)child, &info, WEXITED | WNOWAIT);
  int64_t n = mk_proc_read((int32_t)child, MK_PROC_MAPS, buf, sizeof buf);
  CHECK_EQ(n, 0, "a zombie's maps read empty");
  uint64_t out[9];
  CHECK_ERR(mk_proc_query((int32_t)child, 0x1000, 0, out, buf, sizeof buf), ESRCH,
            "PROCMAP_QUERY of a zombie is -ESRCH");
  waitpid(child, NULL, 0);
  CHECK_ERR(mk_proc_read((int32_t)child, MK_PROC_MAPS, buf, sizeof buf), ENOENT,
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
