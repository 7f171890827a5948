/* test_proc.c: mk_proc_open_file, mk_proc_read_next, mk_proc_query and
 * mk_proc_cap_sys_admin against the kernel: whole files read on in steps, missing processes,
 * PROCMAP_QUERY agreeing with the maps text; mk_proc_smaps_rows and mk_proc_smaps_format on
 * this process's smaps and on text that is cut, odd or too large for the table, and the
 * size cells of mk_proc_smaps_sizes. */
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

/* rows of this process's smaps, and odd text refused without reading past it. */
static void test_smaps_rows(void) {
  static uint8_t text[4 << 20];
  int64_t n = read_all(0, MK_PROC_SMAPS, text, sizeof text, sizeof text);
  if (!CHECK_OK(n, "read /proc/self/smaps")) return;
  uint32_t lines = 0;
  for (int64_t i = 0; i < n; i++) lines += text[i] == '\n';
  double *rows = calloc(lines, MK_SMAPS_ROW_SIZE * sizeof *rows);
  if (!CHECK(rows != NULL, "a table")) return;
  /* The header lines of the same text: a space comes before any colon. */
  uint32_t want = 0;
  for (int64_t i = 0; i < n;) {
    int64_t j = i;
    while (j < n && text[j] != ':' && text[j] != ' ' && text[j] != '\n') j++;
    want += j < n && text[j] == ' ';
    while (j < n && text[j] != '\n') j++;
    i = j + 1;
  }
  int64_t count = mk_proc_smaps_rows(text, (uint64_t)n, rows, 0, lines);
  if (CHECK_OK(count, "rows of /proc/self/smaps")) {
    CHECK_EQ(count, want, "a row per mapping");
    int sorted = 1, rss = 0;
    for (int64_t r = 1; r < count; r++) {
      sorted &= rows[r * MK_SMAPS_ROW_SIZE + MK_SMAPS_ROW_START] >=
                rows[(r - 1) * MK_SMAPS_ROW_SIZE + MK_SMAPS_ROW_END];
      rss |= rows[r * MK_SMAPS_ROW_SIZE + MK_SMAPS_ROW_RSS] > 0;
    }
    CHECK(sorted && rss, "rows in address order, some resident");
  }
  CHECK_ERR(mk_proc_smaps_rows(text, 0, rows, 0, 0), 0, "no text, no rows");
  CHECK_ERR(mk_proc_smaps_rows(NULL, 5, rows, 0, 1), EFAULT, "text NULL");
  CHECK_ERR(mk_proc_smaps_rows(text, 0, rows, 2, 1), EINVAL, "count above cap");
  free(rows);

  double row[2 * MK_SMAPS_ROW_SIZE];
  const char *good = "7f00-7f01 rw-p 00000000 00:00 0 \nRss:   4 kB\nSwap: 8\n";
  CHECK_EQ(mk_proc_smaps_rows((const uint8_t *)good, strlen(good), row, 0, 2), 1, "a kernel block");
  CHECK(row[MK_SMAPS_ROW_RSS] == 4096 && row[MK_SMAPS_ROW_SWAP] == 8, "kB and plain values");
  CHECK_ERR(mk_proc_smaps_rows((const uint8_t *)good, strlen(good), row, 0, 0), ENOSPC, "no room");
  /* Each cut short, or odd: refused (the caller parses it in full). */
  static const char *const odd[] = {
      "7f00", "7f00-", "7f00-7f01", "7f00-7f01 rw-p", "7f00-7f01 rw-p 0", "7f00-7f01 rw-p 0 00:00",
      "7f00-7f01 rw-p 0 00:00 ", "7f00-7f01 rwxq 0 00:00 0", "7F00-7f01 rw-p 0 00:00 0",
      "7f00-7f01 rw-p 0 0:00 0", "7f00-7f01 rw-p 0 000:00 0", "7f00-7f01 rw-p 0 00:00 0x",
      "7f00-7f01 rw-p 0 00:00 12345678901234567", "10000000000000000-1 rw-p 0 00:00 0",
      "7f01-7f00 rw-p 0 00:00 0", "20000000000001-20000000000002 rw-p 0 00:00 0",
      "7f00-7f01 rw-p 0 00:00 0\nRss: 4 KB", "7f00-7f01 rw-p 0 00:00 0\nRss:", "Rss: 4 kB",
      "7f00-7f01 rw-p 0 00:00 0\nPss: 1234567890123456 kB", ":x",
  };
  for (size_t k = 0; k < sizeof odd / sizeof odd[0]; k++) {
    /* Exactly the bytes of the line, on the heap: ASan sees a read past them. */
    size_t len = strlen(odd[k]);
    uint8_t *copy = malloc(len);
    if (copy == NULL) continue;
    memcpy(copy, odd[k], len);
    int64_t ret = mk_proc_smaps_rows(copy, len, row, 0, 2);
    char name[160];
    snprintf(name, sizeof name, "refused: \"%s\"", odd[k]);
    for (char *c = name; *c != '\0'; c++) *c = *c == '\n' ? '|' : *c; /* one TAP line */
    CHECK_ERR(ret, EBADMSG, name);
    free(copy);
  }
  /* Other fields, whatever they hold, are skipped. */
  const char *other = "7f00-7f01 rw-p 0 00:00 0 /a b\nVmFlags: rd wr\nTHPeligible: x\nFoo:\n";
  CHECK_EQ(mk_proc_smaps_rows((const uint8_t *)other, strlen(other), row, 0, 2), 1, "others skipped");
  CHECK_EQ(row[MK_SMAPS_ROW_PATH_LENGTH], 4, "the path after the inode's spaces");
}

/* Lines of a table: exact numbers, and cells, offsets and room checked. */
static void test_smaps_format(void) {
  double row[MK_SMAPS_ROW_SIZE] = {0};
  row[MK_SMAPS_ROW_START] = 0x7f0000001000;
  row[MK_SMAPS_ROW_OFFSET] = 0x1000;
  row[MK_SMAPS_ROW_MAJOR] = 0x103;
  row[MK_SMAPS_ROW_MINOR] = 2;
  row[MK_SMAPS_ROW_INODE] = 42;
  row[MK_SMAPS_ROW_PERMS] = 8 | 2 | 1;
  int32_t cells[MK_SMAPS_CELLS] = {0, 1, 1, 1, 1, 1, 1, 2, 3};
  const char *strings = "4 kiB0 Bfile     /x y";
  int32_t offsets[] = {0, 5, 8, 17, 21};
  uint8_t out[256];
  uint64_t written = 0;
  int64_t r = mk_proc_smaps_format(row, cells, 1, (const uint8_t *)strings, strlen(strings),
                                   offsets, 4, out, sizeof out, &written);
  const char *want = "    7f0000001000 r-xs 00001000 103:02       42 4 kiB 0 B 0 B 0 B 0 B 0 B 0 B "
                     "file      /x y\n";
  CHECK_EQ(r, 1, "one line");
  CHECK(written == strlen(want) && memcmp(out, want, written) == 0, "the line as the CLI prints it");
  CHECK_EQ(mk_proc_smaps_format(row, cells, 1, (const uint8_t *)strings, strlen(strings), offsets,
                                4, out, 50, &written),
           0, "no room: no line");
  CHECK_EQ(written, 0, "nothing written");
  cells[8] = 4;
  CHECK_ERR(mk_proc_smaps_format(row, cells, 1, (const uint8_t *)strings, strlen(strings), offsets,
                                 4, out, sizeof out, &written),
            EINVAL, "a cell outside the table");
  cells[8] = 3;
  offsets[4] = 99;
  CHECK_ERR(mk_proc_smaps_format(row, cells, 1, (const uint8_t *)strings, strlen(strings), offsets,
                                 4, out, sizeof out, &written),
            EINVAL, "an offset past the strings");
  offsets[4] = 21;
  row[MK_SMAPS_ROW_START] = 0.5;
  CHECK_ERR(mk_proc_smaps_format(row, cells, 1, (const uint8_t *)strings, strlen(strings), offsets,
                                 4, out, sizeof out, &written),
            EINVAL, "a number that is not whole");
  row[MK_SMAPS_ROW_START] = 18446744073709551616.0;
  CHECK_ERR(mk_proc_smaps_format(row, cells, 1, (const uint8_t *)strings, strlen(strings), offsets,
                                 4, out, sizeof out, &written),
            EINVAL, "2^64");
  CHECK_ERR(mk_proc_smaps_format(row, cells, 1, (const uint8_t *)strings, strlen(strings), offsets,
                                 4, out, sizeof out, NULL),
            EFAULT, "written NULL");
}

/* The size cells: distinct values in the order first met, totals, and room. */
static void test_smaps_sizes(void) {
  double rows[3 * MK_SMAPS_ROW_SIZE] = {0};
  for (int r = 0; r < 3; r++) {
    rows[r * MK_SMAPS_ROW_SIZE + MK_SMAPS_ROW_START] = 4096.0 * r;
    rows[r * MK_SMAPS_ROW_SIZE + MK_SMAPS_ROW_END] = 4096.0 * r + 4096;
    rows[r * MK_SMAPS_ROW_SIZE + MK_SMAPS_ROW_RSS] = r == 2 ? 8192 : 4096;
    rows[r * MK_SMAPS_ROW_SIZE + MK_SMAPS_ROW_PRIVATE_DIRTY] = 1024;
    rows[r * MK_SMAPS_ROW_SIZE + MK_SMAPS_ROW_SHARED_DIRTY] = 2048;
  }
  int32_t cells[3 * MK_SMAPS_CELLS];
  double values[4], totals[7];
  int64_t n = mk_proc_smaps_sizes(rows, 3, cells, values, 4, totals);
  CHECK_EQ(n, 4, "4096, 0, 3072 and 8192");
  CHECK(values[0] == 4096 && values[1] == 0 && values[2] == 3072 && values[3] == 8192,
        "in the order first met");
  CHECK(cells[0] == 0 && cells[1] == 0 && cells[2] == 1 && cells[3] == 2 &&
            cells[2 * MK_SMAPS_CELLS + 1] == 3,
        "each row's cells");
  CHECK(totals[0] == 3 * 4096 && totals[1] == 16384 && totals[3] == 3 * 3072 && totals[6] == 0,
        "the totals");
  CHECK_ERR(mk_proc_smaps_sizes(rows, 3, cells, values, 3, totals), ENOSPC, "more values than room");
  CHECK_ERR(mk_proc_smaps_sizes(rows, 3, cells, values, 4, NULL), EFAULT, "totals NULL");
  CHECK_EQ(mk_proc_smaps_sizes(rows, 0, cells, values, 0, totals), 0, "no rows");
}

int main(void) {
  test_read();
  test_exited();
  test_query();
  test_cap();
  test_smaps_rows();
  test_smaps_format();
  test_smaps_sizes();
  return tap_done();
}
