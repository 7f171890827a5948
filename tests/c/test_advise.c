/* test_advise.c: mk_advise_* against the kernel: locks seen in smaps and
 * mincore, RLIMIT_MEMLOCK refusals as an unprivileged child, advice on
 * private and shared memory (dontneed, remove, populate), guard markers
 * that fault a child, and the probes. */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "memkit.h"
#include "tap.h"

static uint64_t page;

#include "maps.h"

/* The kB of one smaps field ("Locked", "Rss") of the mapping holding addr; -1 when absent. */
static long smaps_kb(uint64_t addr, const char *field) {
  FILE *f = fopen("/proc/self/smaps", "re");
  if (f == NULL) return -1;
  char *line = NULL;
  size_t cap = 0;
  int inside = 0;
  long kb = -1;
  size_t flen = strlen(field);
  while (kb < 0 && getline(&line, &cap, f) > 0) {
    unsigned long long start, end;
    /* A mapping's header line; no field name is hex digits and a dash. */
    if (sscanf(line, "%llx-%llx ", &start, &end) == 2) {
      inside = addr >= start && addr < end;
      continue;
    }
    if (inside && strncmp(line, field, flen) == 0 && line[flen] == ':') {
      kb = strtol(line + flen + 1, NULL, 10);
    }
  }
  free(line);
  fclose(f);
  return kb;
}

/* How many of the n pages at addr are resident (mincore). */
static long resident(uint64_t addr, uint64_t n) {
  unsigned char vec[64];
  if (n > sizeof vec || mincore((void *)(uintptr_t)addr, n * page, vec) < 0) return -1;
  long count = 0;
  for (uint64_t i = 0; i < n; i++) count += vec[i] & 1;
  return count;
}

static uint64_t map_memfd(int32_t fd, uint64_t n) {
  int64_t a = mk_map_fd(fd, 0, n * page, MK_PROT_READ | MK_PROT_WRITE);
  return a < 0 ? 0 : (uint64_t)a;
}

static void test_errors(void) {
  CHECK_ERR(mk_advise_lock(0, page, 0), EINVAL, "lock at address 0 is -EINVAL");
  CHECK_ERR(mk_advise_lock(page, 0, 0), EINVAL, "lock of length 0 is -EINVAL");
  CHECK_ERR(mk_advise_lock(page, page, 2), EINVAL, "lock with unknown flag 2 is -EINVAL");
  CHECK_ERR(mk_advise_unlock(0, page), EINVAL, "unlock at address 0 is -EINVAL");
  CHECK_ERR(mk_advise_range(0, page, MK_MADV_WILLNEED), EINVAL, "advise at address 0 is -EINVAL");
  CHECK_ERR(mk_advise_range(page, 0, MK_MADV_WILLNEED), EINVAL, "advise of length 0 is -EINVAL");
  /* MADV_HWPOISON (100) poisons pages: never passed through. */
  CHECK_ERR(mk_advise_range(page, page, 100), EINVAL, "advice 100 (MADV_HWPOISON) is -EINVAL");
  CHECK_ERR(mk_advise_range(page, page, 5), EINVAL, "advice 5 (none) is -EINVAL");
  CHECK_ERR(mk_advise_probe(100), EINVAL, "probing advice 100 is -EINVAL");
  CHECK_ERR(mk_advise_memlock_limit(NULL), EFAULT, "memlock_limit(NULL) is -EFAULT");
  uint64_t hole = unmapped_range(2);
  if (CHECK(hole != 0, "find an unmapped range")) {
    CHECK_ERR(mk_advise_lock(hole, page, 0), ENOMEM, "lock of an unmapped range is -ENOMEM");
    CHECK_ERR(mk_advise_range(hole, page, MK_MADV_WILLNEED), ENOMEM,
              "advice on an unmapped range is -ENOMEM");
    CHECK_ERR(mk_advise_range(hole + 1, page, MK_MADV_WILLNEED), EINVAL,
              "advice at an unaligned address is -EINVAL");
  }
}

static void test_lock(void) {
  int32_t fd = filled_memfd("memkit-advise-lock", 4, 3);
  uint64_t a = fd < 0 ? 0 : map_memfd(fd, 4);
  if (!CHECK(a != 0, "a 4-page memfd mapping to lock")) return;
  CHECK_EQ(smaps_kb(a, "Locked"), 0, "smaps Locked is 0 before the lock");

  CHECK_EQ(mk_advise_lock(a, 4 * page, MK_LOCK_ONFAULT), 0, "mlock2 MLOCK_ONFAULT of 4 pages");
  CHECK_EQ(smaps_kb(a, "Locked"), 0, "on fault: nothing is locked before a touch");
  *(volatile unsigned char *)(uintptr_t)(a + page) = 1;
  CHECK_EQ(smaps_kb(a, "Locked"), (long)(page / 1024), "on fault: the touched page is locked");
  CHECK_EQ(mk_advise_unlock(a, 4 * page), 0, "munlock");
  CHECK_EQ(smaps_kb(a, "Locked"), 0, "smaps Locked is 0 after munlock");

  CHECK_EQ(mk_advise_range(a, 4 * page, MK_MADV_DONTNEED), 0, "dontneed before the full lock");
  CHECK_EQ(smaps_kb(a, "Rss"), 0, "no page is mapped after dontneed (smaps Rss 0)");
  CHECK_EQ(mk_advise_lock(a, 4 * page, 0), 0, "mlock2 without flags prefaults the range");
  CHECK_EQ(smaps_kb(a, "Rss"), (long)(4 * page / 1024), "every page is mapped after the lock");
  CHECK_EQ(smaps_kb(a, "Locked"), (long)(4 * page / 1024), "smaps Locked counts all 4 pages");
  CHECK_ERR(mk_advise_range(a, 4 * page, MK_MADV_DONTNEED), EINVAL,
            "dontneed of locked pages is -EINVAL (the kernel keeps them)");
  CHECK_EQ(mk_advise_unlock(a, 4 * page), 0, "munlock again");
  mk_map_unmap(a, 4 * page);
  mk_core_close(fd);
}

/* In a child that is nobody (so without CAP_IPC_LOCK): the limit as read
 * back, and the refusals of mlock2 over it. Skipped when not root. */
static void test_rlimit(void) {
  if (geteuid() != 0) {
    SKIP("RLIMIT_MEMLOCK refusals in an unprivileged child", "needs root to become nobody");
    return;
  }
  uint64_t lim[2];
  CHECK_EQ(mk_advise_memlock_limit(lim), 0, "memlock_limit of this process");
  struct rlimit rl;
  getrlimit(RLIMIT_MEMLOCK, &rl);
  CHECK(lim[0] == (rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : rl.rlim_cur),
        "memlock_limit's soft limit is getrlimit's");

  int32_t fd = filled_memfd("memkit-advise-rlimit", 4, 5);
  uint64_t a = fd < 0 ? 0 : map_memfd(fd, 4);
  if (!CHECK(a != 0, "a 4-page memfd mapping for the limit")) return;
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    /* Each failed step exits with its number. */
    struct rlimit small = {page, page};
    if (setrlimit(RLIMIT_MEMLOCK, &small) < 0) _exit(10);
    if (setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0) _exit(11);
    uint64_t got[2];
    if (mk_advise_memlock_limit(got) != 0 || got[0] != page || got[1] != page) _exit(12);
    if (mk_advise_lock(a, page, 0) != 0) _exit(13);                        /* within it */
    if (mk_advise_lock(a + page, 3 * page, 0) != -ENOMEM) _exit(14);       /* over it */
    if (mk_advise_lock(a + page, page, MK_LOCK_ONFAULT) != -ENOMEM) _exit(15); /* on fault too */
    struct rlimit zero = {0, 0};
    if (setrlimit(RLIMIT_MEMLOCK, &zero) < 0) _exit(16);
    if (mk_advise_lock(a + page, page, 0) != -EPERM) _exit(17); /* a zero limit */
    _exit(0);
  }
  int status = 0;
  int ok = pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status);
  CHECK_EQ(ok ? WEXITSTATUS(status) : -1, 0,
           "as nobody: within RLIMIT_MEMLOCK locks, over it -ENOMEM, a zero limit -EPERM");
  mk_map_unmap(a, 4 * page);
  mk_core_close(fd);
}

/* dontneed drops data of private anonymous memory, and only page table
 * entries of shared memory, whose data stays in the memfd. */
static void test_dontneed(void) {
  void *p = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (!CHECK(p != MAP_FAILED, "a private anonymous mapping")) return;
  uint64_t a = (uint64_t)(uintptr_t)p;
  memset(p, 0x5a, 2 * page);
  CHECK_EQ(mk_advise_range(a, 2 * page, MK_MADV_DONTNEED), 0, "dontneed of private memory");
  CHECK(all_zero(p, 2 * page), "private memory reads zeros after dontneed: its data is gone");
  munmap(p, 2 * page);

  int32_t fd = filled_memfd("memkit-advise-dontneed", 2, 9);
  uint64_t s = fd < 0 ? 0 : map_memfd(fd, 2);
  if (!CHECK(s != 0, "a memfd mapping")) return;
  unsigned char before = *(volatile unsigned char *)(uintptr_t)(s + page + 3);
  CHECK_EQ(resident(s, 2), 2, "the memfd's pages are resident (touched by pwrite and a read)");
  CHECK_EQ(mk_advise_range(s, 2 * page, MK_MADV_DONTNEED), 0, "dontneed of shared memory");
  CHECK_EQ(resident(s, 2), 2, "mincore still finds the memfd's pages in its page cache");
  CHECK_EQ(*(volatile unsigned char *)(uintptr_t)(s + page + 3), before,
           "shared memory reads its data after dontneed");
  CHECK_EQ(mk_advise_range(s, 2 * page, MK_MADV_FREE), -EINVAL,
           "free (MADV_FREE) of shared memory is -EINVAL: private anonymous only");

  /* remove punches a hole: the data is gone, the size is not, nothing faults. */
  CHECK_EQ(mk_advise_range(s + page, page, MK_MADV_REMOVE), 0, "remove the second page");
  CHECK(all_zero((unsigned char *)(uintptr_t)(s + page), page), "the removed page reads zeros");
  CHECK_EQ(*(volatile unsigned char *)(uintptr_t)s, 9, "the first page keeps its data");
  CHECK_EQ(mk_core_fd_size(fd), (int64_t)(2 * page), "the memfd keeps its size");
  char buf[1] = {1};
  CHECK(pread(fd, buf, 1, (off_t)page) == 1 && buf[0] == 0, "the memfd itself reads the hole");
  mk_map_unmap(s, 2 * page);

  /* The kernel asks only that the mapping could be made writable
   * (VM_MAYWRITE): a read-only mapping of a read-write descriptor may punch
   * holes, one of a read-only descriptor may not. */
  int64_t ro = mk_map_fd(fd, 0, page, MK_PROT_READ);
  if (CHECK_OK(ro, "a read-only mapping of the read-write memfd")) {
    CHECK_EQ(mk_advise_range((uint64_t)ro, page, MK_MADV_REMOVE), 0,
             "remove through it works: the kernel checks VM_MAYWRITE, not PROT_WRITE");
    mk_map_unmap((uint64_t)ro, page);
  }
  char link[64];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  int rofd = open(link, O_RDONLY | O_CLOEXEC);
  int64_t rom = rofd < 0 ? -1 : mk_map_fd(rofd, 0, page, MK_PROT_READ);
  if (CHECK_OK(rom, "a mapping of the memfd reopened read-only")) {
    CHECK_ERR(mk_advise_range((uint64_t)rom, page, MK_MADV_REMOVE), EACCES,
              "remove through a mapping of a read-only descriptor is -EACCES");
    mk_map_unmap((uint64_t)rom, page);
  }
  if (rofd >= 0) close(rofd);
  mk_core_close(fd);
}

static void test_populate(void) {
  int64_t bits = mk_advise_probe(MK_MADV_POPULATE_WRITE);
  if (!(bits & MK_PROBE_SHARED)) {
    SKIP("populate-read/write on a memfd", "the kernel lacks MADV_POPULATE_* (Linux 5.14)");
    return;
  }
  CHECK_EQ(mk_advise_probe(MK_MADV_POPULATE_READ), MK_PROBE_PRIVATE | MK_PROBE_SHARED,
           "the probe finds populate-read on private and shared memory");
  int64_t fd = mk_memfd_create("memkit-advise-populate", 0);
  if (!CHECK(fd >= 0 && mk_memfd_resize((int32_t)fd, 8 * page, NULL) == 0, "an empty 8-page memfd"))
    return;
  uint64_t a = map_memfd((int32_t)fd, 8);
  if (!CHECK(a != 0, "its mapping")) return;
  CHECK_EQ(resident(a, 8), 0, "no page is resident before populating");
  CHECK_EQ(smaps_kb(a, "Rss"), 0, "smaps Rss is 0 before populating");
  CHECK_EQ(mk_advise_range(a, 4 * page, MK_MADV_POPULATE_WRITE), 0, "populate-write 4 pages");
  CHECK_EQ(resident(a, 8), 4, "4 pages are resident after populate-write");
  CHECK_EQ(smaps_kb(a, "Rss"), (long)(4 * page / 1024), "and mapped: smaps Rss is 4 pages");
  CHECK_EQ(mk_advise_range(a + 4 * page, 4 * page, MK_MADV_POPULATE_READ), 0,
           "populate-read the other 4");
  CHECK_EQ(smaps_kb(a, "Rss"), (long)(8 * page / 1024), "smaps Rss is 8 pages");
  mk_map_unmap(a, 8 * page);

  int64_t ro = mk_map_fd((int32_t)fd, 0, page, MK_PROT_READ);
  if (CHECK_OK(ro, "a read-only mapping")) {
    CHECK_ERR(mk_advise_range((uint64_t)ro, page, MK_MADV_POPULATE_WRITE), EINVAL,
              "populate-write of a read-only mapping is -EINVAL, not a fault");
    mk_map_unmap((uint64_t)ro, page);
  }
  mk_core_close((int32_t)fd);
}

static void test_guard(void) {
  int64_t bits = mk_advise_probe(MK_MADV_GUARD_INSTALL);
  CHECK_OK(bits, "probe MADV_GUARD_INSTALL");
  CHECK_EQ(mk_advise_probe(MK_MADV_GUARD_REMOVE), bits, "GUARD_REMOVE probes as GUARD_INSTALL");
  if (!(bits & MK_PROBE_SHARED)) {
    SKIP("guard markers on a memfd mapping",
         bits ? "the kernel has guard markers for private memory only (shared: Linux 6.15)"
              : "the kernel lacks MADV_GUARD_INSTALL (Linux 6.13)");
    return;
  }
  int32_t fd = filled_memfd("memkit-advise-guard", 3, 1);
  uint64_t a = fd < 0 ? 0 : map_memfd(fd, 3);
  if (!CHECK(a != 0, "a 3-page memfd mapping to guard")) return;
  int mid = *(volatile unsigned char *)(uintptr_t)(a + page + 1);
  CHECK_EQ(mk_advise_range(a + page, page, MK_MADV_GUARD_INSTALL), 0, "guard the middle page");
  CHECK_EQ(read_in_child(a + page + 1), 256, "a read of the guarded page faults (in a child)");
  CHECK_EQ(read_in_child(a + 2 * page), (int)((2 * page * 7 + 1) & 0xff),
           "the page after it reads");
  CHECK_PERMS(a + page, "rw-s", "maps still shows one rw-s mapping: no split");
  /* mlock prefaults and stops at the marker; the VMA is locked even so. */
  CHECK_ERR(mk_advise_lock(a, 3 * page, 0), ENOMEM,
            "mlock of a range with a guard marker is -ENOMEM (its prefault stops there)");
  CHECK_EQ(mk_advise_unlock(a, 3 * page), 0, "munlock it");
  CHECK_EQ(mk_advise_lock(a, 3 * page, MK_LOCK_ONFAULT), 0,
           "mlock2 MLOCK_ONFAULT of that range works (nothing is prefaulted)");
  CHECK_ERR(mk_advise_range(a + page, page, MK_MADV_GUARD_INSTALL), EINVAL,
            "guarding locked memory is -EINVAL");
  CHECK_EQ(mk_advise_unlock(a, 3 * page), 0, "munlock again");
  CHECK_EQ(mk_advise_range(a + page, page, MK_MADV_GUARD_REMOVE), 0, "remove the guard");
  CHECK_EQ(read_in_child(a + page + 1), mid, "the page reads its data again: guards drop no data");
  mk_map_unmap(a, 3 * page);
  mk_core_close(fd);
}

static void test_compact(void) {
  if (geteuid() != 0) {
    CHECK_ERR(mk_advise_compact(), EACCES, "compact_memory is root's: -EACCES");
    return;
  }
  CHECK_EQ(mk_advise_compact(), 0, "write 1 to /proc/sys/vm/compact_memory");
}

int main(void) {
  page = (uint64_t)mk_core_page_size();
  test_errors();
  test_lock();
  test_rlimit();
  test_dontneed();
  test_populate();
  test_guard();
  test_compact();
  return tap_done();
}
