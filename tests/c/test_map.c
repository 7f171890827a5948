/* test_map.c: mk_map_* against the kernel: aliasing, protections,
 * placeholders, relocation, unmapping, checked through /proc/self/maps and real faults. */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "memkit.h"
#include "tap.h"

static uint64_t page;

#include "maps.h"

static void test_map_errors(void) {
  int32_t fd = filled_memfd("memkit-map-errors", 2, 1);
  if (!CHECK(fd >= 0, "a 2-page memfd for map errors")) return;

  CHECK_ERR(mk_map_fd(fd, 0, 0, MK_PROT_READ), EINVAL, "map with length 0 is -EINVAL");
  CHECK_ERR(mk_map_fd(fd, 0, page, 8), EINVAL, "map with unknown prot bit 8 is -EINVAL");
  CHECK_ERR(mk_map_fd(fd, 0, page, 0x80000000u), EINVAL, "map with prot 0x80000000 is -EINVAL");
  CHECK_ERR(mk_map_fd(fd, 1, page, MK_PROT_READ), EINVAL, "map at an unaligned offset is -EINVAL");
  CHECK_ERR(mk_map_fd(fd, (uint64_t)INT64_MAX + 1, page, MK_PROT_READ), EOVERFLOW,
            "map at an offset past INT64_MAX is -EOVERFLOW");
  CHECK_ERR(mk_map_fd(fd, 0, UINT64_MAX, MK_PROT_READ), EOVERFLOW,
            "map with a length past INT64_MAX is -EOVERFLOW");
  CHECK_ERR(mk_map_fd(fd, 0, (uint64_t)1 << 62, MK_PROT_READ), ENOMEM,
            "map of 4 EiB is -ENOMEM");
  CHECK_ERR(mk_map_fd(-1, 0, page, MK_PROT_READ), EBADF, "map of fd -1 is -EBADF");

  /* A read-only descriptor cannot back a shared writable mapping. */
  char link[64];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  int ro = open(link, O_RDONLY | O_CLOEXEC);
  if (CHECK(ro >= 0, "reopen the memfd read-only")) {
    CHECK_ERR(mk_map_fd(ro, 0, page, MK_PROT_READ | MK_PROT_WRITE), EACCES,
              "a writable map of a read-only descriptor is -EACCES");
    int64_t r = mk_map_fd(ro, 0, page, MK_PROT_READ);
    if (CHECK_OK(r, "a read-only map of a read-only descriptor works")) {
      CHECK_ERR(mk_map_protect((uint64_t)r, page, MK_PROT_READ | MK_PROT_WRITE), EACCES,
                "making that mapping writable is -EACCES");
      CHECK_EQ(mk_map_unmap((uint64_t)r, page), 0, "unmap it");
    }
    close(ro);
  }
  mk_core_close(fd);
  CHECK_ERR(mk_map_fd(fd, 0, page, MK_PROT_READ), EBADF, "map of a closed memfd is -EBADF");

  int p[2];
  if (CHECK(pipe2(p, O_CLOEXEC) == 0, "pipe2")) {
    CHECK_ERR(mk_map_fd(p[0], 0, page, MK_PROT_READ), ENODEV, "map of a pipe is -ENODEV");
    close(p[0]);
    close(p[1]);
  }
}

static void test_other_errors(void) {
  uint64_t hole = unmapped_range(4);
  if (!CHECK(hole != 0, "find an unmapped range")) return;

  CHECK_ERR(mk_map_unmap(0, page), EINVAL, "unmap at address 0 is -EINVAL");
  CHECK_ERR(mk_map_unmap(hole, 0), EINVAL, "unmap of length 0 is -EINVAL");
  CHECK_ERR(mk_map_unmap(hole + 1, page), EINVAL, "unmap at an unaligned address is -EINVAL");
  CHECK_EQ(mk_map_unmap(hole, page), 0, "unmap of an unmapped range is 0 (as munmap)");

  CHECK_ERR(mk_map_protect(0, page, MK_PROT_READ), EINVAL, "protect at address 0 is -EINVAL");
  CHECK_ERR(mk_map_protect(hole, 0, MK_PROT_READ), EINVAL, "protect of length 0 is -EINVAL");
  CHECK_ERR(mk_map_protect(hole, page, 8), EINVAL, "protect with unknown prot bit 8 is -EINVAL");
  CHECK_ERR(mk_map_protect(hole + 1, page, MK_PROT_READ), EINVAL,
            "protect at an unaligned address is -EINVAL");
  CHECK_ERR(mk_map_protect(hole, page, MK_PROT_READ), ENOMEM,
            "protect of an unmapped range is -ENOMEM");

  CHECK_ERR(mk_map_placeholder(0, page), EINVAL, "placeholder at address 0 is -EINVAL");
  CHECK_ERR(mk_map_placeholder(hole, 0), EINVAL, "placeholder of length 0 is -EINVAL");
  CHECK_ERR(mk_map_placeholder(hole + 1, page), EINVAL,
            "placeholder at an unaligned address is -EINVAL");
  CHECK_PERMS(hole, "none", "refused calls mapped nothing there");
}

/* Maps all of fd twice, read-write and read-only (checked); on failure
 * unmaps what was mapped, closes fd and returns 0. */
static int map_pair(int32_t fd, uint64_t len, int64_t *rw, int64_t *ro) {
  *rw = mk_map_fd(fd, 0, len, MK_PROT_READ | MK_PROT_WRITE);
  *ro = mk_map_fd(fd, 0, len, MK_PROT_READ);
  if (CHECK_OK(*rw, "map the memfd read-write") & CHECK_OK(*ro, "map it again read-only")) return 1;
  if (*rw >= 0) mk_map_unmap((uint64_t)*rw, len);
  if (*ro >= 0) mk_map_unmap((uint64_t)*ro, len);
  mk_core_close(fd);
  return 0;
}

static void test_alias(void) {
  const uint64_t n = 4, len = n * page;
  int32_t fd = filled_memfd("memkit-alias", n, 3);
  if (!CHECK(fd >= 0, "a 4-page memfd for aliasing")) return;

  int64_t rw, ro;
  if (!map_pair(fd, len, &rw, &ro)) return;
  volatile unsigned char *w = (volatile unsigned char *)(uintptr_t)rw;
  const volatile unsigned char *r = (const volatile unsigned char *)(uintptr_t)ro;
  CHECK(rw != ro, "the two mappings are at different addresses");
  CHECK(rw % (int64_t)page == 0 && ro % (int64_t)page == 0, "both addresses are page-aligned");

  int same = 1;
  for (uint64_t i = 0; i < len; i++) same &= r[i] == (unsigned char)((i * 7 + 3) & 0xff);
  CHECK(same, "the read-only mapping sees the memfd's contents");
  for (uint64_t i = 0; i < len; i++) w[i] = (unsigned char)(i * 13 + 1);
  same = 1;
  for (uint64_t i = 0; i < len; i++) same &= r[i] == (unsigned char)(i * 13 + 1);
  CHECK(same, "writes through one mapping show in the other at once");
  unsigned char b = 0;
  CHECK(pread(fd, &b, 1, (off_t)(page + 5)) == 1 && b == (unsigned char)((page + 5) * 13 + 1),
        "and in the memfd itself");

  struct vma v;
  CHECK(find_vma((uint64_t)rw, &v) && strcmp(v.perms, "rw-s") == 0 &&
            v.start == (uint64_t)rw && v.end == (uint64_t)rw + len,
        "/proc/self/maps shows the first as rw-s over 4 pages");
  CHECK(strcmp(v.path, "/memfd:memkit-alias (deleted)") == 0, "backed by the memfd");
  CHECK_PERMS((uint64_t)ro, "r--s", "/proc/self/maps shows the second as r--s");

  /* A window at an offset sees the pages from there. */
  int64_t win = mk_map_fd(fd, page * 2, page, MK_PROT_READ);
  if (CHECK_OK(win, "map one page at offset 2 pages")) {
    w[page * 2 + 17] = 0xa5;
    CHECK_EQ(((volatile unsigned char *)(uintptr_t)win)[17], 0xa5, "the window sees page 2");
    CHECK_EQ(mk_map_unmap((uint64_t)win, page), 0, "unmap the window");
  }

  CHECK_EQ(mk_map_unmap((uint64_t)rw, len), 0, "unmap the read-write mapping");
  CHECK_PERMS((uint64_t)rw, "none", "it is gone from /proc/self/maps");
  CHECK_EQ(r[page + 5], (unsigned char)((page + 5) * 13 + 1),
           "the read-only mapping still sees the data");
  CHECK_EQ(mk_map_unmap((uint64_t)ro, len), 0, "unmap the read-only mapping");
  CHECK_PERMS((uint64_t)ro, "none", "it is gone from /proc/self/maps");
  CHECK_EQ(mk_core_close(fd), 0, "close the memfd");
}

static void test_protect(void) {
  const uint64_t len = 2 * page;
  int32_t fd = filled_memfd("memkit-protect", 2, 0);
  if (!CHECK(fd >= 0, "a 2-page memfd for protect")) return;
  int64_t m = mk_map_fd(fd, 0, len, MK_PROT_READ | MK_PROT_WRITE);
  if (!CHECK_OK(m, "map it read-write")) {
    mk_core_close(fd);
    return;
  }
  uint64_t a = (uint64_t)m;
  volatile unsigned char *p = (volatile unsigned char *)(uintptr_t)a;

  CHECK_EQ(write_in_child(a, 0x11), 0, "a write to the rw mapping goes through");
  CHECK_EQ(p[0], 0x11, "and lands in the shared memory");

  CHECK_EQ(mk_map_protect(a, len, MK_PROT_READ), 0, "protect to read-only is 0");
  CHECK_PERMS(a, "r--s", "/proc/self/maps shows r--s");
  CHECK_EQ(write_in_child(a, 0x22), 42, "a write to the read-only mapping faults");
  CHECK_EQ(p[0], 0x11, "the read-only mapping still reads, unchanged");

  CHECK_EQ(mk_map_protect(a, len, MK_PROT_NONE), 0, "protect to none is 0");
  CHECK_PERMS(a, "---s", "/proc/self/maps shows ---s");

  CHECK_EQ(mk_map_protect(a, len, MK_PROT_READ | MK_PROT_WRITE), 0, "protect back to rw is 0");
  CHECK_PERMS(a, "rw-s", "/proc/self/maps shows rw-s");
  CHECK_EQ(write_in_child(a, 0x33), 0, "a write goes through again");
  CHECK_EQ(p[0], 0x33, "and lands in the shared memory");

  /* One page of two: the mapping splits. */
  CHECK_EQ(mk_map_protect(a + page, page, MK_PROT_READ), 0, "protect the second page only");
  CHECK_PERMS(a, "rw-s", "the first page stays rw-s");
  CHECK_PERMS(a + page, "r--s", "the second page is r--s");
  CHECK_EQ(write_in_child(a + page, 0x44), 42, "a write to the second page faults");
  CHECK_EQ(write_in_child(a, 0x55), 0, "a write to the first page goes through");

  CHECK_EQ(mk_map_unmap(a, len), 0, "unmap both pages at once");
  CHECK_PERMS(a, "none", "the first page is gone");
  CHECK_PERMS(a + page, "none", "the second page is gone");
  mk_core_close(fd);
}

static void test_placeholder(void) {
  const uint64_t n = 3, len = n * page;
  int32_t fd = filled_memfd("memkit-placeholder", n, 9);
  if (!CHECK(fd >= 0, "a 3-page memfd for placeholders")) return;
  int64_t rw, ro;
  if (!map_pair(fd, len, &rw, &ro)) return;
  const volatile unsigned char *r = (const volatile unsigned char *)(uintptr_t)ro;
  volatile unsigned char *w = (volatile unsigned char *)(uintptr_t)rw;
  w[0] = 0xc3;
  CHECK_EQ(r[0], 0xc3, "the read-only mapping sees a write before the placeholder");

  CHECK_EQ(mk_map_placeholder((uint64_t)ro, len), 0, "placeholder over the read-only mapping is 0");
  struct vma v;
  CHECK(find_vma((uint64_t)ro, &v), "the address is still mapped");
  CHECK(v.start <= (uint64_t)ro && v.end >= (uint64_t)ro + len,
        "one mapping covers the whole placeholder");
  CHECK(strcmp(v.perms, "r--p") == 0, "the placeholder is private and read-only (r--p)");
  CHECK(v.ino == 0 && v.path[0] == '\0', "the placeholder is anonymous, not the memfd");
  CHECK(all_zero(r, len), "the same address reads zeros");
  CHECK_EQ(write_in_child((uint64_t)ro, 1), 42, "a write to the placeholder faults");

  w[1] = 0x3c;
  CHECK(w[0] == 0xc3 && w[1] == 0x3c, "the other mapping still holds and takes data");
  CHECK_EQ(r[1], 0, "the placeholder does not see it");
  unsigned char b[2] = {0, 0};
  CHECK(pread(fd, b, 2, 0) == 2 && b[0] == 0xc3 && b[1] == 0x3c, "the memfd keeps its data");
  CHECK_EQ(w[2 * page + 1], (unsigned char)(((2 * page + 1) * 7 + 9) & 0xff),
           "the memfd's last page is intact");

  /* Placeholder over the writable mapping too: the data stays in the memfd. */
  CHECK_EQ(mk_map_placeholder((uint64_t)rw + page, page), 0,
           "placeholder over one page of the rw mapping is 0");
  CHECK_PERMS((uint64_t)rw, "rw-s", "its first page stays rw-s");
  CHECK_PERMS((uint64_t)rw + page, "r--p", "its middle page becomes r--p");
  CHECK_PERMS((uint64_t)rw + 2 * page, "rw-s", "its last page stays rw-s");
  CHECK(all_zero(w + page, page), "the middle page reads zeros");
  CHECK(pread(fd, b, 1, (off_t)page) == 1 &&
            b[0] == (unsigned char)((page * 7 + 9) & 0xff),
        "the memfd keeps the middle page's data");

  CHECK_EQ(mk_map_unmap((uint64_t)ro, len), 0, "unmap the placeholder");
  CHECK_PERMS((uint64_t)ro, "none", "it is gone from /proc/self/maps");
  CHECK_EQ(mk_map_unmap((uint64_t)rw, len), 0, "unmap the mixed rw/placeholder range");
  CHECK_PERMS((uint64_t)rw + page, "none", "all of it is gone");
  mk_core_close(fd);
}

static void test_scrub(void) {
  const uint64_t len = 2 * page;
  CHECK_ERR(mk_map_scrub(0, page), EINVAL, "scrub at address 0 is -EINVAL");
  CHECK_ERR(mk_map_scrub(unmapped_range(1), 0), EINVAL, "scrub of length 0 is -EINVAL");
  int32_t fd = filled_memfd("memkit-scrub", 2, 5);
  if (!CHECK(fd >= 0, "a 2-page memfd to scrub")) return;
  int64_t rw = mk_map_fd(fd, 0, len, MK_PROT_READ | MK_PROT_WRITE);
  if (!CHECK_OK(rw, "map it read-write")) {
    mk_core_close(fd);
    return;
  }
  volatile unsigned char *w = (volatile unsigned char *)(uintptr_t)rw;
  CHECK_EQ(mk_map_scrub((uint64_t)rw, len), 0, "scrub of the mapping is 0");
  CHECK_PERMS((uint64_t)rw, "rw-p", "the range is private read-write (rw-p)");
  CHECK(all_zero(w, len), "it reads zeros");
  w[3] = 0x77; /* a write must not fault */
  CHECK_EQ(w[3], 0x77, "a write through it lands in private pages");
  unsigned char b = 0;
  CHECK(pread(fd, &b, 1, 3) == 1 && b == (unsigned char)((3 * 7 + 5) & 0xff),
        "the memfd neither sees that write nor loses its data");
  CHECK_EQ(mk_map_unmap((uint64_t)rw, len), 0, "unmap the scrubbed range");
  mk_core_close(fd);
}

static void test_relocate(void) {
  const uint64_t len = 3 * page;
  uint64_t runs[4] = {0, page, page, 2 * page};
  CHECK_ERR(mk_map_relocate(0, len, runs, 2), EINVAL, "relocate from address 0 is -EINVAL");
  CHECK_ERR(mk_map_relocate(unmapped_range(3), len, runs, 0), EINVAL,
            "relocate with no run (nothing would be placed) is -EINVAL");
  CHECK_ERR(mk_map_relocate(unmapped_range(3), 0, runs, 2), EINVAL,
            "relocate of span 0 is -EINVAL");
  uint64_t past[2] = {2 * page, 2 * page};
  CHECK_ERR(mk_map_relocate(unmapped_range(3), len, past, 1), EINVAL,
            "a run past the span is -EINVAL");
  int32_t fd = filled_memfd("memkit-relocate", 3, 9);
  if (!CHECK(fd >= 0, "a 3-page memfd to relocate")) return;
  int64_t rw = mk_map_fd(fd, 0, len, MK_PROT_READ | MK_PROT_WRITE);
  if (!CHECK_OK(rw, "map it read-write")) {
    mk_core_close(fd);
    return;
  }
  /* Private anonymous memory cannot be duplicated by mremap(old_size 0). */
  void *anon = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (CHECK(anon != MAP_FAILED, "a private anonymous page")) {
    uint64_t one[2] = {0, page};
    CHECK_ERR(mk_map_relocate((uint64_t)(uintptr_t)anon, page, one, 1), EINVAL,
              "relocating private memory is -EINVAL, nothing changed");
    CHECK_PERMS((uint64_t)(uintptr_t)anon, "rw-p", "the private page is still there");
    munmap(anon, page);
  }
  int64_t to = mk_map_relocate((uint64_t)rw, len, runs, 2);
  if (CHECK_OK(to, "relocate the mapping in two runs")) {
    volatile unsigned char *n = (volatile unsigned char *)(uintptr_t)to;
    volatile unsigned char *o = (volatile unsigned char *)(uintptr_t)rw;
    CHECK(to != rw, "the new address differs");
    CHECK_PERMS((uint64_t)to, "rw-s", "the new range maps the memfd (rw-s)");
    CHECK_EQ(n[2 * page + 5], (unsigned char)(((2 * page + 5) * 7 + 9) & 0xff),
             "the new range reads the memfd's data");
    CHECK_PERMS((uint64_t)rw, "rw-p", "the old range is private zero pages (rw-p)");
    CHECK(all_zero(o, len), "the old range reads zeros");
    o[1] = 0x42; /* what native code may still write there: must not fault */
    n[page] = 0x24;
    unsigned char b = 0;
    CHECK(pread(fd, &b, 1, 1) == 1 && b == (unsigned char)((1 * 7 + 9) & 0xff),
          "a write into the old range does not reach the memfd");
    CHECK(pread(fd, &b, 1, page) == 1 && b == 0x24, "a write into the new range does");
    CHECK_EQ(mk_map_unmap((uint64_t)to, len), 0, "unmap the new range");
  }
  CHECK_EQ(mk_map_unmap((uint64_t)rw, len), 0, "unmap the old range");
  mk_core_close(fd);
}

static void test_anonymous(void) {
  int64_t r = mk_map_anonymous(2 * page, MK_PROT_READ | MK_PROT_WRITE, 0);
  if (CHECK_OK(r, "a 2-page shared anonymous mapping")) {
    uint64_t u = (uint64_t)r;
    volatile unsigned char *p = (volatile unsigned char *)(uintptr_t)u;
    CHECK(p[0] == 0 && p[2 * page - 1] == 0, "it reads zeros");
    CHECK_PERMS(u, "rw-s", "it is shared read-write");
    /* mremap(old_size 0) duplicates shared mappings only: a second address. */
    void *again = mremap((void *)(uintptr_t)u, 0, 2 * page, MREMAP_MAYMOVE);
    if (CHECK(again != MAP_FAILED, "a second address of it (shared memory)")) {
      p[page + 1] = 9;
      CHECK(((volatile unsigned char *)again)[page + 1] == 9,
            "a write shows at the second address");
      CHECK_OK(mk_map_unmap((uint64_t)(uintptr_t)again, 2 * page), "unmap the second address");
    }
    CHECK_OK(mk_map_unmap(u, 2 * page), "unmap it");
  }
  r = mk_map_anonymous(page, MK_PROT_NONE, MK_ANON_NORESERVE);
  if (CHECK_OK(r, "a PROT_NONE MAP_NORESERVE one")) {
    CHECK_PERMS((uint64_t)r, "---s", "it is shared with no access");
    CHECK_OK(mk_map_unmap((uint64_t)r, page), "unmap it");
  }
  CHECK_ERR(mk_map_anonymous(0, MK_PROT_READ, 0), EINVAL, "length 0 is -EINVAL");
  CHECK_ERR(mk_map_anonymous(page + 1, MK_PROT_READ, 0), EINVAL, "an unaligned length");
  CHECK_ERR(mk_map_anonymous(page, 8, 0), EINVAL, "an unknown prot bit");
  CHECK_ERR(mk_map_anonymous(page, MK_PROT_READ, 2), EINVAL, "an unknown flag");
  CHECK_ERR(mk_map_anonymous(((uint64_t)INT64_MAX + 1), MK_PROT_READ, 0), EOVERFLOW,
            "a length past INT64_MAX is -EOVERFLOW");
  CHECK_ERR(mk_map_anonymous((uint64_t)1 << 62, MK_PROT_READ, MK_ANON_NORESERVE), ENOMEM,
            "4 EiB is -ENOMEM");
}

/* A range the quarantine reserved (private zero pages, scribbled on) placed
 * under a new shared mapping with MAP_FIXED: the scribbles are gone. */
static void test_reuse(void) {
  const uint64_t rw = MK_PROT_READ | MK_PROT_WRITE, len = 2 * page;
  int64_t r = mk_map_anonymous(len, (uint32_t)rw, 0);
  if (!CHECK_OK(r, "a range to reuse")) return;
  uint64_t at = (uint64_t)r;
  volatile unsigned char *p = (volatile unsigned char *)(uintptr_t)at;
  CHECK_OK(mk_map_scrub(at, len), "private zero pages over it, as the quarantine leaves it");
  p[0] = 0x5a; /* a late write of a native op */
  p[len - 1] = 0x5a;
  CHECK_EQ(mk_map_reuse(at, -1, 0, len, (uint32_t)rw, 0), (int64_t)at,
           "shared anonymous memory placed over it, at the same address");
  CHECK(p[0] == 0 && p[len - 1] == 0, "the scribbles are gone: fresh zeros");
  CHECK_PERMS(at, "rw-s", "it is shared now");
  CHECK_OK(mk_map_scrub(at, len), "back to private zero pages");
  p[1] = 0x5a;
  int32_t fd = filled_memfd("memkit-reuse", 2, 3);
  if (CHECK(fd >= 0, "a 2-page memfd")) {
    CHECK_EQ(mk_map_reuse(at, fd, page, page, (uint32_t)rw, 0), (int64_t)at,
             "its second page placed over the range's first");
    CHECK(p[1] == (unsigned char)((page + 1) * 7 + 3), "it shows the memfd's bytes");
    CHECK_PERMS(at, "rw-s", "shared");
    CHECK_PERMS(at + page, "rw-p", "the rest of the range stays as it was");
    /* A read-only descriptor cannot back a shared writable mapping: refused,
     * and the range is left as the kernel left it (mapped here). */
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    int ro = open(link, O_RDONLY | O_CLOEXEC);
    if (CHECK(ro >= 0, "a read-only descriptor of it")) {
      CHECK_ERR(mk_map_reuse(at, ro, 0, len, (uint32_t)rw, 0), EACCES,
                "a writable placement from a read-only descriptor is -EACCES");
      CHECK_PERMS(at, "rw-s", "nothing was replaced, nothing unmapped");
      close(ro);
    }
    CHECK_ERR(mk_map_reuse(at, fd, 0, len, (uint32_t)rw, MK_ANON_NORESERVE), EINVAL,
              "flags with a descriptor are -EINVAL");
    mk_core_close(fd);
  }
  CHECK_ERR(mk_map_reuse(at + 1, -1, 0, len, (uint32_t)rw, 0), EINVAL, "an unaligned address");
  CHECK_ERR(mk_map_reuse(0, -1, 0, len, (uint32_t)rw, 0), EINVAL, "address 0");
  CHECK_ERR(mk_map_reuse(at, -1, 0, len + 1, (uint32_t)rw, 0), EINVAL, "an unaligned length");
  CHECK_ERR(mk_map_reuse(at, -1, page, len, (uint32_t)rw, 0), EINVAL,
            "an offset without a descriptor");
  CHECK_ERR(mk_map_reuse(at, -2, 0, len, (uint32_t)rw, 0), EINVAL, "fd -2");
  CHECK_ERR(mk_map_reuse(at, -1, 0, len, 8, 0), EINVAL, "an unknown prot bit");
  CHECK_ERR(mk_map_reuse(at, -1, 0, len, (uint32_t)rw, 2), EINVAL, "an unknown flag");
  CHECK_ERR(mk_map_reuse(UINT64_MAX - page + 1, -1, 0, len, (uint32_t)rw, 0), EOVERFLOW,
            "a range past the end of the address space");
  CHECK_OK(mk_map_unmap(at, len), "unmap it");
}

int main(void) {
  page = (uint64_t)mk_core_page_size();
  test_anonymous();
  test_reuse();
  test_relocate();
  test_scrub();
  test_map_errors();
  test_other_errors();
  test_alias();
  test_protect();
  test_placeholder();
  return tap_done();
}
