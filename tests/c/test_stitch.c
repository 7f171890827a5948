/* test_stitch.c: mk_map_stitch, mk_map_guarded, mk_ring_map, mk_map_max_count
 * and mk_pkey_* against the kernel: contents, merging, rollback, real faults. */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "memkit.h"
#include "tap.h"

static uint64_t page;

#include "maps.h"

/* One chunk of a descriptor. */
static void fd_chunk(uint64_t *c, int32_t fd, uint64_t offset, uint64_t length) {
  c[0] = (uint64_t)(uint32_t)fd;
  c[1] = offset;
  c[2] = length;
}

/* The first byte of page i of a filled_memfd(.., seed): (i * page * 7 + seed) & 0xff. */
static unsigned char first_byte(uint64_t i, unsigned seed) {
  return (unsigned char)((i * page * 7 + seed) & 0xff);
}

static void test_stitch_fds(void) {
  int32_t a = filled_memfd("memkit-stitch-a", 4, 1);
  int32_t b = filled_memfd("memkit-stitch-b", 4, 2);
  if (!CHECK(a >= 0 && b >= 0, "two 4-page memfds")) return;
  uint64_t chunks[5 * 3], report[3] = {0};
  fd_chunk(chunks + 0, a, 2 * page, page); /* a2 a3 merge into one mmap */
  fd_chunk(chunks + 3, a, 3 * page, page);
  fd_chunk(chunks + 6, b, 0, page);
  fd_chunk(chunks + 9, a, 0, page);
  fd_chunk(chunks + 12, b, 0, page); /* b0 again: repeats are fine */
  int64_t r = mk_map_stitch(chunks, 5, MK_PROT_READ | MK_PROT_WRITE, report);
  if (!CHECK_OK(r, "stitch of 5 chunks of two memfds")) goto out;
  volatile unsigned char *p = (volatile unsigned char *)(uintptr_t)r;
  CHECK_EQ(report[0], 5, "report[0] is the chunk count when none failed");
  CHECK_EQ(report[1], 4, "the request needs 4 mappings (a2 and a3 continue each other)");
  CHECK_EQ(report[2], 4, "4 mappings were placed");
  CHECK(p[0] == first_byte(2, 1) && p[page] == first_byte(3, 1) && p[2 * page] == first_byte(0, 2) &&
            p[3 * page] == first_byte(0, 1) && p[4 * page] == first_byte(0, 2),
        "the stitched pages hold a2 a3 b0 a0 b0 in that order");
  p[2 * page + 1] = 0xee;
  CHECK(p[4 * page + 1] == 0xee, "both copies of b0 are the same memory");
  unsigned char byte = 0;
  CHECK(pread(b, &byte, 1, 1) == 1 && byte == 0xee, "a write through the view reaches memfd b");
  CHECK_PERMS(r, "rw-s", "the view is a shared read-write mapping");
  CHECK_OK(mk_map_unmap((uint64_t)r, 5 * page), "unmap the stitched view");
  CHECK_PERMS(r, "none", "unmapped");
out:
  mk_core_close(a);
  mk_core_close(b);
}

static void test_stitch_address(void) {
  int32_t a = filled_memfd("memkit-stitch-addr", 2, 3);
  if (!CHECK(a >= 0, "a 2-page memfd")) return;
  int64_t src = mk_map_fd(a, 0, 2 * page, MK_PROT_READ | MK_PROT_WRITE);
  CHECK_OK(src, "map it");
  uint64_t chunks[2 * 3] = {MK_STITCH_ADDRESS, (uint64_t)src + page, page,
                            MK_STITCH_ADDRESS, (uint64_t)src, page};
  uint64_t report[3];
  int64_t r = mk_map_stitch(chunks, 2, MK_PROT_READ, report);
  if (CHECK_OK(r, "stitch two pages of a mapping in swapped order")) {
    volatile unsigned char *p = (volatile unsigned char *)(uintptr_t)r;
    CHECK(p[0] == first_byte(1, 3) && p[page] == first_byte(0, 3), "pages 1 and 0");
    CHECK_EQ(report[1], 2, "address chunks are never merged");
    CHECK_PERMS(r, "r--s", "the alias got the protection asked for");
    CHECK_EQ(write_in_child(r, 1), 42, "a write to the read-only alias faults");
    *(volatile unsigned char *)(uintptr_t)src = 0x5a;
    CHECK(p[page] == 0x5a, "a write to the source shows through the alias");
    mk_map_unmap((uint64_t)r, 2 * page);
  }
  /* Private memory cannot be aliased (Linux 4.14+). */
  void *priv = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  uint64_t pchunk[3] = {MK_STITCH_ADDRESS, (uint64_t)(uintptr_t)priv, page};
  CHECK_ERR(mk_map_stitch(pchunk, 1, MK_PROT_READ, report), EINVAL,
            "an alias of private memory is -EINVAL");
  CHECK_EQ(report[0], 0, "and chunk 0 is the one that failed");
  munmap(priv, page);
  mk_map_unmap((uint64_t)src, 2 * page);
  mk_core_close(a);
}

static void test_stitch_rollback(void) {
  int32_t a = filled_memfd("memkit-stitch-rollback", 8, 4);
  if (!CHECK(a >= 0, "an 8-page memfd")) return;
  uint64_t chunks[8 * 3], report[3];
  for (int i = 0; i < 8; i++) fd_chunk(chunks + 3 * i, a, (uint64_t)(7 - i) * page, page);
  chunks[3 * 5] = 9999; /* chunk 5: a descriptor that is not open */
  int before = maps_count();
  CHECK_ERR(mk_map_stitch(chunks, 8, MK_PROT_READ, report), EBADF,
            "a bad descriptor in chunk 5 fails the call with -EBADF");
  CHECK_EQ(report[0], 5, "report[0] names chunk 5");
  CHECK_EQ(report[2], 5, "after 5 mappings were placed");
  CHECK_EQ(maps_count(), before, "and they were all unmapped again, the reservation too");

  fd_chunk(chunks, a, 1, page);
  CHECK_ERR(mk_map_stitch(chunks, 8, MK_PROT_READ, report), EINVAL, "an unaligned offset");
  CHECK_EQ(report[0], 0, "names chunk 0");
  fd_chunk(chunks, a, 0, 0);
  CHECK_ERR(mk_map_stitch(chunks, 1, MK_PROT_READ, report), EINVAL, "a zero length");
  fd_chunk(chunks, a, 0, page);
  CHECK_ERR(mk_map_stitch(chunks, 0, MK_PROT_READ, report), EINVAL, "no chunks");
  CHECK_ERR(mk_map_stitch(chunks, 1, 8, report), EINVAL, "an unknown prot bit");
  CHECK_ERR(mk_map_stitch(NULL, 1, MK_PROT_READ, report), EINVAL, "no chunk buffer");
  CHECK_ERR(mk_map_stitch(chunks, 1, MK_PROT_READ, NULL), EINVAL, "no report buffer");
  chunks[0] = 0x100000000ull | 3; /* neither a descriptor nor MK_STITCH_ADDRESS */
  CHECK_ERR(mk_map_stitch(chunks, 1, MK_PROT_READ, report), EINVAL, "a malformed first word");
  fd_chunk(chunks, a, 0, page);
  fd_chunk(chunks + 3, a, 0, (uint64_t)INT64_MAX & ~(page - 1));
  CHECK_ERR(mk_map_stitch(chunks, 2, MK_PROT_READ, report), EINVAL,
            "a total past INT64_MAX is -EINVAL");
  mk_core_close(a);
}

static void test_guarded(void) {
  int64_t r = mk_map_guarded(2 * page, 3 * page, MK_PROT_READ | MK_PROT_WRITE);
  if (!CHECK_OK(r, "a 2-page mapping with 3 guard pages each side")) return;
  uint64_t u = (uint64_t)r;
  CHECK_PERMS(u - 1, "---p", "the page before is a guard");
  CHECK_PERMS(u - 3 * page, "---p", "three pages of guard before");
  CHECK_PERMS(u, "rw-s", "the usable part is shared read-write");
  CHECK_PERMS(u + 2 * page, "---p", "the page after is a guard");
  CHECK_EQ(write_in_child(u - 1, 1), 42, "a write just before faults");
  CHECK_EQ(write_in_child(u + 2 * page, 1), 42, "a write just after faults");
  CHECK_EQ(write_in_child(u + 2 * page - 1, 7), 0, "the last usable byte takes a write");
  CHECK(*(volatile unsigned char *)(uintptr_t)(u + 2 * page - 1) == 7,
        "the child's write shows here (shared memory)");
  CHECK_OK(mk_map_unmap(u - 3 * page, 8 * page), "unmap it with its guards");
  CHECK_ERR(mk_map_guarded(0, page, MK_PROT_READ), EINVAL, "length 0 is -EINVAL");
  CHECK_ERR(mk_map_guarded(page + 1, page, MK_PROT_READ), EINVAL, "an unaligned length");
  CHECK_ERR(mk_map_guarded(page, 1, MK_PROT_READ), EINVAL, "an unaligned guard");
  CHECK_ERR(mk_map_guarded(page, page, 16), EINVAL, "an unknown prot bit");
}

static void test_ring(void) {
  int64_t fd = mk_memfd_create("memkit-ring", 0);
  if (!CHECK_OK(fd, "a memfd for the ring")) return;
  mk_memfd_resize((int32_t)fd, 2 * page, NULL);
  int64_t r = mk_ring_map((int32_t)fd, 2 * page);
  if (CHECK_OK(r, "map a 2-page ring")) {
    volatile unsigned char *p = (volatile unsigned char *)(uintptr_t)r;
    p[2 * page - 1] = 0x11;
    p[2 * page] = 0x22; /* the second copy's first byte is the first byte */
    CHECK(p[0] == 0x22 && p[4 * page - 1] == 0x11, "the two copies are the same memory");
    CHECK_PERMS((uint64_t)r + 3 * page, "rw-s", "the second copy is shared read-write");
    mk_map_unmap((uint64_t)r, 4 * page);
  }
  CHECK_ERR(mk_ring_map((int32_t)fd, page + 1), EINVAL, "an unaligned size");
  CHECK_ERR(mk_ring_map((int32_t)fd, 0), EINVAL, "size 0");
  CHECK_ERR(mk_ring_map(-1, page), EBADF, "a bad descriptor is -EBADF, nothing left mapped");
  mk_core_close((int32_t)fd);
}

static void test_limits_and_keys(void) {
  int64_t max = mk_map_max_count();
  CHECK(max > 0, "vm.max_map_count reads as a positive number");
  int64_t get = mk_pkey_get(0);
  int64_t key = mk_pkey_alloc(0);
  if (get == -ENOSYS) {
    CHECK(key < 0, "without OSPKE no key can be allocated");
    CHECK_ERR(mk_pkey_set(1, 0), ENOSYS, "pkey_set without OSPKE is -ENOSYS, not SIGILL");
  } else {
    CHECK(get >= 0, "PKRU can be read");
    if (CHECK_OK(key, "a protection key")) {
      CHECK_OK(mk_pkey_set((int32_t)key, MK_PKEY_DISABLE_WRITE), "rights: no writes");
      CHECK_EQ(mk_pkey_get((int32_t)key), MK_PKEY_DISABLE_WRITE, "PKRU says so");
      CHECK_OK(mk_pkey_set((int32_t)key, 0), "rights: all");
      CHECK_OK(mk_pkey_free((int32_t)key), "free the key");
    }
  }
  CHECK_ERR(mk_pkey_alloc(4), EINVAL, "unknown rights are -EINVAL");
  CHECK_ERR(mk_pkey_set(16, 0), EINVAL, "key 16 does not exist");
  CHECK_ERR(mk_pkey_set(0, MK_PKEY_DISABLE_ACCESS), EINVAL, "key 0 (all other memory) is refused");
  CHECK_ERR(mk_pkey_get(-1), EINVAL, "key -1 does not exist");
  CHECK_ERR(mk_pkey_mprotect(0, page, MK_PROT_READ, 0), EINVAL, "pkey_mprotect of address 0");
}

int main(void) {
  page = (uint64_t)mk_core_page_size();
  test_stitch_fds();
  test_stitch_address();
  test_stitch_rollback();
  test_guarded();
  test_ring();
  test_limits_and_keys();
  return tap_done();
}
