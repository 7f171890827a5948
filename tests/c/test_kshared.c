/* test_kshared.c: memkit's C half of cbits/memkit_kshared.h without the
 * module (that runs in the QEMU guest, tests/kshared_test.ts): the lock
 * word's CAS steps on a request page of anonymous shared memory, their
 * timeouts, the checksum of the header, bulk checked SeqLock reads of a
 * record written by hand (a torn one counted), the ioctls refused by a file
 * that is no such driver, and mk_device_open's refusals. */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "memkit_kshared.h"
#include "tap.h"

static int64_t ms_since(const struct timespec *t0) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

static void lock_word(void) {
  uint8_t *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) {
    CHECK(0, "mmap a request page");
    return;
  }
  struct mkks_req_page *p = (struct mkks_req_page *)page;
  uint64_t addr = (uint64_t)(uintptr_t)page, seen = 0;
  CHECK_ERR(mk_kshared_lock(addr + 8, 3, 0, &seen), EINVAL, "an unaligned page is EINVAL");
  CHECK_ERR(mk_kshared_lock(addr, 0, 0, &seen), EINVAL, "session 0 is EINVAL");
  CHECK_ERR(mk_kshared_lock(addr, 0x80000001u, 0, &seen), EINVAL, "an answered bit is no session");
  CHECK_EQ(mk_kshared_lock(addr, 3, 0, &seen), 0, "a free word is taken");
  CHECK_EQ(p->lock, 3, "the word is the session");
  CHECK_EQ(mk_kshared_lock_word(addr), 3, "mk_kshared_lock_word reads it");
  CHECK_ERR(mk_kshared_lock(addr, 3, 0, &seen), EDEADLK, "the holder taking it again: EDEADLK");
  CHECK_ERR(mk_kshared_lock(addr, 4, 0, &seen), ETIMEDOUT, "another session, no wait: ETIMEDOUT");
  CHECK_EQ(seen, 3, "seen names the holder");
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  CHECK_ERR(mk_kshared_lock(addr, 4, 50 * 1000000ll, &seen), ETIMEDOUT, "a bounded wait ends");
  CHECK(ms_since(&t0) >= 50, "it waited its timeout");
  CHECK_ERR(mk_kshared_release(addr, 4, &seen), EPERM, "a non-holder's release is EPERM");
  CHECK_EQ(mk_kshared_release(addr, 3, &seen), 1, "the holder releases, unanswered: 1");
  CHECK_EQ(p->lock, 0, "the word is free");
  CHECK_ERR(mk_kshared_release(addr, 3, &seen), EPERM, "a second release is EPERM");
  CHECK_EQ(seen, 0, "and says the word is free");
  p->lock = 3 | MKKS_LOCK_ANSWERED;
  CHECK_ERR(mk_kshared_lock(addr, 3, 0, &seen), EDEADLK, "an answer not released: EDEADLK");
  CHECK_EQ(mk_kshared_release(addr, 3, &seen), 0, "the answered word released: 0");
  p->lock = 0xdeadbeef;
  CHECK_ERR(mk_kshared_lock(addr, 3, 0, &seen), ETIMEDOUT, "garbage is taken by nobody");
  CHECK_EQ(seen, 0xdeadbeef, "seen is the garbage");
  /* A request on a page of no driver: the ring (an ioctl on /dev/null) is
   * ENOTTY, and the word goes back to free. */
  p->lock = 0;
  int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  struct mkks_request req;
  memset(&req, 0, sizeof req);
  req.id = 7;
  req.op = MKKS_OP_ECHO;
  req.length = 4;
  memcpy(req.data, "ping", 4);
  CHECK_ERR(mk_kshared_request(fd, addr, 5, 0, (uint8_t *)&req, &seen), ENOTTY,
            "the ring of a file that is no driver: ENOTTY");
  CHECK_EQ(p->lock, 0, "and the word was given back");
  CHECK_EQ(p->slot.id, 7, "the slot was written before the ring");
  CHECK(memcmp(p->slot.data, "ping", 4) == 0, "with the request's data");
  req.length = MKKS_DATA_BYTES + 1;
  CHECK_ERR(mk_kshared_request(fd, addr, 5, 0, (uint8_t *)&req, &seen), EINVAL,
            "a length over 256 is EINVAL");
  CHECK_EQ(p->lock, 0, "before the word is taken");
  CHECK_ERR(mk_kshared_call(fd, (uint8_t *)&req), EINVAL, "CALL with a length over 256: EINVAL");
  req.length = 1;
  CHECK_ERR(mk_kshared_call(fd, (uint8_t *)&req), ENOTTY, "CALL on no driver: ENOTTY");
  CHECK_ERR(mk_kshared_session(fd), ENOTTY, "SESSION on no driver: ENOTTY");
  CHECK_ERR(mk_kshared_ring(fd), ENOTTY, "RING on no driver: ENOTTY");
  close(fd);
  munmap(page, 4096);
}

/* A record of the reference module's shape for counter c. */
static void make_record(struct mkks_record *r, uint64_t c) {
  memset(r, 0, sizeof *r);
  r->counter = c;
  r->time_ns = 1;
  r->payload_bytes = MKKS_PAYLOAD_BYTES;
  for (unsigned i = 0; i < MKKS_PAYLOAD_BYTES; i++) r->payload[i] = (uint8_t)((c + i) & 0xff);
  r->checksum = mkks_checksum(r);
}

static void records(void) {
  struct mkks_record r;
  make_record(&r, 42);
  CHECK_EQ(mk_kshared_checksum((const uint8_t *)&r, sizeof r), r.checksum,
           "mk_kshared_checksum is mkks_checksum");
  CHECK_ERR(mk_kshared_checksum((const uint8_t *)&r, 63), EINVAL, "63 bytes is EINVAL");
  uint64_t *area = aligned_alloc(64, 4096);
  memset(area, 0, 4096);
  uint64_t addr = (uint64_t)(uintptr_t)area + 64, out[MK_KSHARED_READS_WORDS];
  CHECK_ERR(mk_kshared_read_many(addr, 10, out), EBADMSG, "no SeqLock there: EBADMSG");
  CHECK_EQ(mk_seqlock_init(addr, 32), 0, "a SeqLock of 32 bytes");
  CHECK_ERR(mk_kshared_read_many(addr, 10, out), EBADMSG, "of the wrong length: EBADMSG");
  CHECK_EQ(mk_seqlock_init(addr, 64), 0, "a SeqLock of the record's 64 bytes");
  memcpy((uint8_t *)(uintptr_t)addr + MK_SEQLOCK_HEADER, &r, sizeof r);
  CHECK_EQ(mk_kshared_read_many(addr, 1000, out), 0, "1000 checked reads");
  CHECK_EQ(out[0], 1000, "1000 clean");
  CHECK_EQ(out[2], 0, "none torn");
  CHECK_EQ(out[3], 42, "the first counter");
  CHECK_EQ(out[4], 42, "the last counter");
  r.payload[3] ^= 1; /* the checksum no longer matches */
  memcpy((uint8_t *)(uintptr_t)addr + MK_SEQLOCK_HEADER, &r, sizeof r);
  CHECK_EQ(mk_kshared_read_many(addr, 10, out), 0, "reads of a corrupt record");
  CHECK_EQ(out[2], 10, "each counted torn");
  free(area);
  uint64_t stats[MK_KSHARED_STATS_WORDS];
  struct mkks_pub_header h = {.instance = 9, .reclaims = 1, .answered = 2, .refused = 3,
                              .lock_timeout_ms = 200};
  CHECK_EQ(mk_kshared_stats((uint64_t)(uintptr_t)&h, stats), 0, "mk_kshared_stats");
  CHECK(stats[0] == 9 && stats[1] == 1 && stats[2] == 2 && stats[3] == 3 && stats[4] == 200,
        "it reads instance, reclaims, answered, refused and the timeout");
}

/* mk_device_open of a path looked up as the gate does. */
static int64_t open_device(const char *path, uint32_t flags, uint64_t *info) {
  uint8_t resolved[4097];
  int64_t pathfd = mk_file_path_open(path, resolved, sizeof resolved);
  if (pathfd < 0) return pathfd;
  int64_t fd = mk_device_open(path, flags, (int32_t)pathfd, info);
  close((int)pathfd);
  return fd;
}

static void devices(void) {
  uint64_t info[4];
  int64_t fd = open_device("/dev/zero", MK_DEVICE_WRITE, info);
  CHECK_OK(fd, "/dev/zero opens read-write");
  CHECK(info[0] == MK_DEVICE_CHAR && info[2] == 1 && info[3] == 5, "a character device, 1:5");
  if (fd >= 0) close((int)fd);
  char dir[] = "/tmp/memkit-kshared-XXXXXX";
  if (mkdtemp(dir) == NULL) {
    CHECK(0, "mkdtemp");
    return;
  }
  char file[64];
  snprintf(file, sizeof file, "%s/regular", dir);
  int f = open(file, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  if (f >= 0) close(f);
  CHECK_ERR(open_device(file, 0, info), ENODEV, "a regular file is ENODEV");
  CHECK_EQ(info[0], MK_DEVICE_REGULAR, "said to be a regular file");
  CHECK_ERR(open_device(dir, 0, info), EISDIR, "a directory is EISDIR");
  CHECK_EQ(info[0], MK_DEVICE_DIRECTORY, "said to be a directory");
  CHECK_ERR(mk_device_open("/dev/zero", 4, -1, info), EINVAL, "unknown flags are EINVAL");
  CHECK_ERR(mk_device_open("dev/zero", 0, -1, info), EINVAL, "a relative path is EINVAL");
  unlink(file);
  rmdir(dir);
}

int main(void) {
  lock_word();
  records();
  devices();
  return tap_done();
}
