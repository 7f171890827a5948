/* test_pagemap.c: mk_pagemap_read, mk_pagemap_scan (ioctl and fallback)
 * and mk_kpage_read against the kernel: touched and untouched pages, the
 * zero page, aliases of one page, errors. */
#define _GNU_SOURCE 1
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "memkit.h"
#include "tap.h"

static long page;

#define NP 16

/* The oracle for kernels that differ: whether the page at `addr` is the
 * shared zero page, read from the raw /proc/self/pagemap entry and the raw
 * /proc/kpageflags word (bit 24, KPF_ZERO_PAGE), not through memkit.
 * 1: the zero page; 0: another frame; -1: cannot tell (no PFN visible, no
 * kpageflags), with the reason in `why`. Linux 6.1 maps the zero page on a
 * read fault of private anonymous memory; 6.18 may allocate a fresh page. */
static int zero_page_oracle(const void *addr, const char **why) {
  int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  uint64_t entry = 0, kflags = 0;
  off_t at = (off_t)((uintptr_t)addr / (uintptr_t)page * 8);
  int ok = pm >= 0 && pread(pm, &entry, 8, at) == 8;
  if (pm >= 0) close(pm);
  if (!ok || !(entry >> 63)) {
    *why = "the page is not present in the raw pagemap";
    return -1;
  }
  uint64_t pfn = entry & ((1ull << 55) - 1);
  if (pfn == 0) {
    *why = "the raw pagemap shows no PFN (needs CAP_SYS_ADMIN)";
    return -1;
  }
  int kf = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
  ok = kf >= 0 && pread(kf, &kflags, 8, (off_t)(pfn * 8)) == 8;
  if (kf >= 0) close(kf);
  if (!ok) {
    *why = "/proc/kpageflags cannot be read";
    return -1;
  }
  return (int)((kflags >> 24) & 1);
}

static void test_read(int fd) {
  char *p = mmap(NULL, (size_t)(NP * page), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                 -1, 0);
  if (!CHECK(p != MAP_FAILED, "map 16 private anonymous pages")) return;
  p[0] = 1;
  p[5 * page] = 1;
  uint64_t raw[NP], summary[3];
  double frame[NP];
  uint8_t flags[NP];
  int64_t n = mk_pagemap_read(fd, (uint64_t)(uintptr_t)p, NP, raw, frame, flags, summary);
  CHECK_EQ(n, NP, "read 16 entries");
  CHECK_EQ(summary[0], 2, "two pages are present");
  CHECK_EQ(summary[1], 0, "none is swapped");
  CHECK(flags[0] & MK_PM_PRESENT && flags[5] & MK_PM_PRESENT, "the touched pages are present");
  CHECK(!(flags[1] & MK_PM_PRESENT) && !(flags[15] & MK_PM_PRESENT),
        "untouched pages are absent");
  CHECK(flags[0] & MK_PM_EXCLUSIVE, "a private page is exclusively mapped");
  CHECK(!(flags[0] & MK_PM_FILE), "an anonymous private page is not a file page");
  CHECK((raw[0] >> 63) == 1, "the raw entry has bit 63");
  int root = mk_proc_cap_sys_admin() == 1;
  if (root) {
    CHECK(frame[0] > 0 && frame[0] == (double)(raw[0] & ((1ull << 55) - 1)),
          "the frame column is the PFN (root)");
    CHECK_EQ(summary[2], 0, "no present page reads PFN 0 (root)");
  } else {
    CHECK(frame[0] == 0 && summary[2] == 2, "PFNs read 0 without CAP_SYS_ADMIN");
  }

  CHECK_ERR(mk_pagemap_read(fd, (uint64_t)(uintptr_t)p + 1, 1, raw, frame, flags, NULL), EINVAL,
            "an unaligned address is -EINVAL");
  CHECK_ERR(mk_pagemap_read(fd, (uint64_t)(uintptr_t)p, 1, NULL, frame, flags, NULL), EFAULT,
            "a NULL raw column is -EFAULT");
  /* Raw entries only, decoded later: the same columns and counts. */
  uint64_t raw2[NP], summary2[3];
  double frame2[NP];
  uint8_t flags2[NP];
  memset(frame2, 0xff, sizeof frame2);
  memset(flags2, 0xff, sizeof flags2);
  CHECK_EQ(mk_pagemap_read(fd, (uint64_t)(uintptr_t)p, NP, raw2, NULL, NULL, summary2), NP,
           "a read without frame and flags columns reads 16 entries");
  CHECK(memcmp(raw2, raw, sizeof raw) == 0 && memcmp(summary2, summary, sizeof summary) == 0,
        "and gives the same raw entries and counts");
  CHECK_EQ(mk_pagemap_decode(raw2, NP, frame2, NULL), NP, "decode the frame column alone");
  CHECK(memcmp(frame2, frame, sizeof frame) == 0 && flags2[0] == 0xff,
        "it equals the read's frame column, and the flags are not written");
  CHECK_EQ(mk_pagemap_decode(raw2, NP, NULL, flags2), NP, "decode the flags column alone");
  CHECK(memcmp(flags2, flags, sizeof flags) == 0, "it equals the read's flags column");
  CHECK_ERR(mk_pagemap_decode(NULL, 1, frame2, flags2), EFAULT, "decode of NULL is -EFAULT");
  CHECK_EQ(mk_pagemap_decode(NULL, 0, NULL, NULL), 0, "decode of nothing is 0");
  CHECK_ERR(mk_pagemap_read(fd, UINT64_MAX - (uint64_t)page + 1, 2, raw, frame, flags, NULL),
            EOVERFLOW, "a range past 2^64 is -EOVERFLOW");
  CHECK_EQ(mk_pagemap_read(fd, 0x7ffffffff000ull - (uint64_t)page, 4, raw, frame, flags, NULL), 1,
           "a read across the top of user space stops there");
  CHECK_ERR(mk_pagemap_read(-1, 0, 1, raw, frame, flags, NULL), EBADF, "a bad fd is -EBADF");
  munmap(p, (size_t)(NP * page));
}

static void scan_both(int fd, uint64_t start, uint64_t end, const uint64_t *masks,
                      const char *what) {
  uint64_t a[NP * 3], b[NP * 3], wa = 0, wb = 0;
  int64_t na = mk_pagemap_scan(fd, start, end, masks, 0, a, NP, &wa);
  int64_t nb = mk_pagemap_scan(fd, start, end, masks, MK_SCAN_FALLBACK, b, NP, &wb);
  char name[160];
  snprintf(name, sizeof name, "%s: ioctl and fallback agree", what);
  CHECK(na >= 0 && na == nb && wa == wb && memcmp(a, b, (size_t)na * 24) == 0, name);
}

static void test_scan(int fd) {
  char *p = mmap(NULL, (size_t)(NP * page), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                 -1, 0);
  if (!CHECK(p != MAP_FAILED, "map 16 private anonymous pages")) return;
  p[0] = 1;
  p[page] = 1;
  volatile char x = p[3 * page]; /* a read fault: the zero page, or a fresh page */
  (void)x;
  const char *why = NULL;
  int zero = zero_page_oracle(p + 3 * page, &why);
  p[8 * page] = 1;
  uint64_t s = (uint64_t)(uintptr_t)p, e = s + (uint64_t)(NP * page);
  uint64_t vec[NP * 3], walk = 0;
  uint64_t present[4] = {MK_PAGE_IS_PRESENT, 0, 0, MK_PAGE_IS_PRESENT | MK_PAGE_IS_PFNZERO};
  int64_t n = mk_pagemap_scan(fd, s, e, present, 0, vec, NP, &walk);
  if (CHECK_EQ(n, 3, "three present regions")) {
    CHECK(vec[0] == s && vec[1] == s + 2 * (uint64_t)page && vec[2] == MK_PAGE_IS_PRESENT,
          "pages 0-1 are present");
    CHECK(vec[3] == s + 3 * (uint64_t)page && (vec[5] & MK_PAGE_IS_PRESENT),
          "page 3 is present");
    if (zero < 0) {
      SKIP("page 3's PFNZERO category agrees with kpageflags", why);
    } else {
      CHECK(!!(vec[5] & MK_PAGE_IS_PFNZERO) == zero,
            zero ? "page 3 is the zero page, as kpageflags says"
                 : "page 3 is not the zero page, as kpageflags says (this kernel allocates)");
    }
    CHECK(vec[6] == s + 8 * (uint64_t)page, "page 8 is present");
  }
  CHECK_EQ(walk, e, "the walk reached the end");
  n = mk_pagemap_scan(fd, s, e, present, 0, vec, 1, &walk);
  CHECK(n == 1 && walk == s + 3 * (uint64_t)page, "a full vector stops the walk where it was");

  uint64_t plain[4] = {MK_PAGE_IS_PRESENT, 0, 0, MK_PAGE_IS_PRESENT};
  scan_both(fd, s, e, plain, "present pages");
  uint64_t absent[4] = {MK_PAGE_IS_PRESENT, MK_PAGE_IS_PRESENT, 0, MK_PAGE_IS_PRESENT};
  scan_both(fd, s, e, absent, "absent pages");
  uint64_t all[4] = {0, 0, 0, MK_PAGE_IS_PRESENT | MK_PAGE_IS_WRITTEN | MK_PAGE_IS_FILE};
  scan_both(fd, s, e, all, "every page, with written and file");
  uint64_t anyof[4] = {0, 0, MK_PAGE_IS_PRESENT | MK_PAGE_IS_SWAPPED, MK_PAGE_IS_PRESENT};
  scan_both(fd, s, e, anyof, "present or swapped");
  uint64_t one[4] = {MK_PAGE_IS_PRESENT, 0, 0, MK_PAGE_IS_PRESENT};
  uint64_t a[3], b[3], wa, wb;
  int64_t na = mk_pagemap_scan(fd, s, e, one, 0, a, 1, &wa);
  int64_t nb = mk_pagemap_scan(fd, s, e, one, MK_SCAN_FALLBACK, b, 1, &wb);
  CHECK(na == 1 && nb == 1 && wa == wb, "a full vector stops both at the same address");

  CHECK_ERR(mk_pagemap_scan(fd, s, e, present, MK_SCAN_FALLBACK, vec, NP, &walk), EOPNOTSUPP,
            "the fallback cannot tell the zero page: -EOPNOTSUPP");
  CHECK_ERR(mk_pagemap_scan(fd, s + 1, e, plain, 0, vec, NP, &walk), EINVAL,
            "an unaligned start is -EINVAL");
  CHECK_ERR(mk_pagemap_scan(fd, e, s, plain, 0, vec, NP, &walk), EINVAL,
            "end before start is -EINVAL");
  uint64_t bad[4] = {0x200, 0, 0, 1};
  CHECK_ERR(mk_pagemap_scan(fd, s, e, bad, 0, vec, NP, &walk), EINVAL,
            "an unknown category is -EINVAL");
  CHECK_ERR(mk_pagemap_scan(fd, s, e, plain, 2, vec, NP, &walk), EINVAL,
            "an unknown flag is -EINVAL");
  n = mk_pagemap_scan(fd, 0x7fff00000000ull, 0xffffffffffff0000ull, plain, 0, vec, NP, &walk);
  CHECK(n >= 0 && walk == 0xffffffffffff0000ull, "a range past the top of user space is clipped");
  munmap(p, (size_t)(NP * page));
}

/* Guard regions (MADV_GUARD_INSTALL, Linux 6.13+) read as bit 58 and the
 * GUARD category; soft-dirty pages as bit 55 after clear_refs. */
static void test_guard_and_soft_dirty(int fd) {
  char *p = mmap(NULL, (size_t)(4 * page), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                 -1, 0);
  if (!CHECK(p != MAP_FAILED, "map 4 private anonymous pages")) return;
  uint64_t s = (uint64_t)(uintptr_t)p, raw[4], summary[3];
  double frame[4];
  uint8_t flags[4];
  if (madvise(p + page, (size_t)page, 102 /* MADV_GUARD_INSTALL */) == 0) {
    mk_pagemap_read(fd, s, 4, raw, frame, flags, summary);
    CHECK(flags[1] & MK_PM_GUARD, "a guard page has the guard bit");
    CHECK(!(flags[0] & MK_PM_GUARD), "its neighbour has not");
    CHECK(!(flags[1] & MK_PM_SWAPPED) && summary[1] == 0, "a guard page is not counted swapped");
    uint64_t m[4] = {MK_PAGE_IS_GUARD, 0, 0, MK_PAGE_IS_GUARD};
    uint64_t vec[12], walk;
    int64_t n = mk_pagemap_scan(fd, s, s + 4 * (uint64_t)page, m, 0, vec, 4, &walk);
    CHECK(n == 1 && vec[0] == s + (uint64_t)page && vec[1] == s + 2 * (uint64_t)page,
          "PAGEMAP_SCAN finds the guard page");
    int64_t nf = mk_pagemap_scan(fd, s, s + 4 * (uint64_t)page, m, MK_SCAN_FALLBACK, vec, 4, &walk);
    CHECK_EQ(nf, n, "and so does the fallback");
  } else {
    SKIP("guard pages", "the kernel lacks MADV_GUARD_INSTALL");
  }
  FILE *f = fopen("/proc/self/clear_refs", "w");
  if (f != NULL && fputs("4", f) >= 0 && fclose(f) == 0) {
    p[2 * page] = 1;
    mk_pagemap_read(fd, s, 4, raw, frame, flags, summary);
    if (flags[2] & MK_PM_SOFT_DIRTY)
      CHECK(!(flags[3] & MK_PM_SOFT_DIRTY),
            "after clear_refs a written page is soft-dirty, an untouched one not");
    else
      SKIP("soft-dirty", "the kernel is built without CONFIG_MEM_SOFT_DIRTY");
  } else {
    if (f != NULL) fclose(f);
    SKIP("soft-dirty", "cannot write /proc/self/clear_refs");
  }
  munmap(p, (size_t)(4 * page));
}

static void test_kpage(int fd) {
  if (mk_proc_cap_sys_admin() != 1) {
    SKIP("kpageflags of a shared page", "needs CAP_SYS_ADMIN");
    return;
  }
  int mfd = (int)mk_memfd_create("test_pagemap", 0);
  mk_memfd_resize(mfd, (uint64_t)page, NULL);
  char *a = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
  char *b = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
  if (!CHECK(a != MAP_FAILED && b != MAP_FAILED, "map one memfd page twice")) return;
  a[0] = 1;
  b[1] = 1;
  uint64_t ra, rb;
  double fa, fb;
  uint8_t ga, gb;
  mk_pagemap_read(fd, (uint64_t)(uintptr_t)a, 1, &ra, &fa, &ga, NULL);
  mk_pagemap_read(fd, (uint64_t)(uintptr_t)b, 1, &rb, &fb, &gb, NULL);
  CHECK(fa > 0 && fa == fb, "both aliases have the same PFN");
  CHECK(ga & MK_PM_FILE, "a memfd page counts as file or shared");
  uint64_t pfns[3] = {(uint64_t)fa, (uint64_t)fa, (uint64_t)fa + 1}, out[3];
  CHECK_EQ(mk_kpage_read(MK_KPAGE_FLAGS, pfns, 3, out), 3, "read kpageflags of 3 PFNs");
  CHECK(out[0] == out[1], "the same PFN twice reads the same flags");
  CHECK((out[0] >> 14) & 1, "the page is SWAPBACKED");
  CHECK(!((out[0] >> 12) & 1), "the page is not ANON");
  CHECK((out[0] >> 11) & 1, "the page is MMAP");
  CHECK_EQ(mk_kpage_read(MK_KPAGE_COUNT, pfns, 1, out), 1, "read kpagecount");
  CHECK_EQ(out[0], 2, "the page is mapped twice");
  uint64_t far = 1ull << 50;
  CHECK_ERR(mk_kpage_read(MK_KPAGE_FLAGS, &far, 1, out), ERANGE,
            "a PFN past physical memory is -ERANGE");
  CHECK_ERR(mk_kpage_read(2, pfns, 1, out), EINVAL, "an unknown file is -EINVAL");
  CHECK_EQ(mk_kpage_read(MK_KPAGE_FLAGS, NULL, 0, NULL), 0, "no PFNs read nothing");
  munmap(a, (size_t)page);
  munmap(b, (size_t)page);
  close(mfd);

  /* The shared zero page: a read fault of private anonymous memory. */
  char *z = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  volatile char x = z[0];
  (void)x;
  uint64_t zr;
  double zf;
  uint8_t zg;
  mk_pagemap_read(fd, (uint64_t)(uintptr_t)z, 1, &zr, &zf, &zg, NULL);
  pfns[0] = (uint64_t)zf;
  const char *zwhy = NULL;
  int zero = zero_page_oracle(z, &zwhy);
  if (zero < 0) {
    SKIP("a read-faulted anonymous page's ZERO_PAGE flag agrees with the raw files", zwhy);
  } else {
    CHECK(mk_kpage_read(MK_KPAGE_FLAGS, pfns, 1, out) == 1 && (int)((out[0] >> 24) & 1) == zero,
          zero ? "a read-faulted anonymous page is the ZERO_PAGE, as the raw files say"
               : "a read-faulted anonymous page is a fresh frame, as the raw files say");
  }
  munmap(z, (size_t)page);

  /* A transparent huge page, where THP is enabled for madvise. */
  size_t huge = 2u << 20;
  char *h = mmap(NULL, 2 * huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  char *al = (char *)(((uintptr_t)h + huge - 1) & ~(uintptr_t)(huge - 1));
  if (h != MAP_FAILED && madvise(al, huge, MADV_HUGEPAGE) == 0) {
    memset(al, 1, huge);
    uint64_t m[4] = {MK_PAGE_IS_HUGE, 0, 0, MK_PAGE_IS_HUGE | MK_PAGE_IS_PRESENT};
    uint64_t vec[6], walk;
    int64_t n = mk_pagemap_scan(fd, (uint64_t)(uintptr_t)al, (uint64_t)(uintptr_t)al + huge, m, 0,
                                vec, 2, &walk);
    if (n == 1) {
      CHECK(vec[1] - vec[0] == huge, "PAGEMAP_SCAN reports the 2 MiB as huge");
      uint64_t hr;
      double hf;
      uint8_t hg;
      mk_pagemap_read(fd, (uint64_t)(uintptr_t)al, 1, &hr, &hf, &hg, NULL);
      pfns[0] = (uint64_t)hf;
      CHECK(mk_kpage_read(MK_KPAGE_FLAGS, pfns, 1, out) == 1 && ((out[0] >> 22) & 1) &&
                ((out[0] >> 15) & 1),
            "its first frame has THP and COMPOUND_HEAD in kpageflags");
    } else {
      SKIP("transparent huge pages", "the kernel gave no huge page (THP off or no memory)");
    }
  } else {
    SKIP("transparent huge pages", "MADV_HUGEPAGE refused");
  }
  if (h != MAP_FAILED) munmap(h, 2 * huge);
}

int main(void) {
  page = sysconf(_SC_PAGESIZE);
  int64_t fd = mk_pagemap_open(0);
  if (!CHECK_OK(fd, "open /proc/self/pagemap")) return tap_done();
  CHECK_ERR(mk_pagemap_open(0x3fffffff), ENOENT, "the pagemap of a missing pid is -ENOENT");
  CHECK_ERR(mk_pagemap_open(-5), EINVAL, "a negative pid is -EINVAL");
  test_read((int)fd);
  test_scan((int)fd);
  test_guard_and_soft_dirty((int)fd);
  test_kpage((int)fd);
  mk_core_close((int32_t)fd);
  return tap_done();
}
