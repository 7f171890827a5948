/* test_channel.c: the channel's ring (mk_channel_map) and its sleep protocol
 * (mk_channel_publish, mk_channel_arm, an eventfd per direction, poll),
 * driven by a producer and a consumer thread, as the two processes drive
 * it: 200,000 messages through a one-page ring, each side sleeping when it
 * must. Runs under ThreadSanitizer too (tests/run.sh): the ring's bytes are
 * ordered by the tail's and head's stores and loads alone. */
#define _GNU_SOURCE 1
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "memkit.h"
#include "tap.h"

#define COUNT 200000u
#define PAGE 4096u

static uint64_t header;
static uint32_t capacity;
static int32_t data_ev, space_ev;
static atomic_uint sleeps[2];

static _Atomic uint32_t *word(uint32_t off) { return (_Atomic uint32_t *)(uintptr_t)(header + off); }
static uint32_t stride(uint32_t len) { return (4 + len + 7) & ~7u; }
static uint8_t *ring(void) { return (uint8_t *)(uintptr_t)(header + PAGE); }

/* Sleeps until the word at `offset` is no longer `seen` (or a wake). */
static void sleep_on(uint32_t wait_off, uint32_t offset, uint32_t seen, int32_t ev, int side) {
  if (mk_channel_arm(header, wait_off, offset, seen) != 0) return;
  atomic_fetch_add(&sleeps[side], 1);
  int32_t p[2] = {ev, MK_POLL_IN};
  mk_socket_poll(p, 1, 1000);
  mk_socket_drain(ev);
}

static void *producer(void *arg) {
  (void)arg;
  uint32_t tail = 0;
  uint8_t msg[300];
  for (uint32_t i = 0; i < COUNT; i++) {
    uint32_t len = 4 + i % 250;
    memcpy(msg, &i, 4);
    memset(msg + 4, (int)(i & 0xff), len - 4);
    for (;;) {
      uint32_t head = atomic_load(word(MK_CHANNEL_OFF_HEAD));
      if (capacity - (tail - head) >= stride(len)) break;
      sleep_on(MK_CHANNEL_OFF_SPACE_WAIT, MK_CHANNEL_OFF_HEAD, head, space_ev, 0);
    }
    uint32_t at = tail & (capacity - 1);
    memcpy(ring() + at, &len, 4);
    memcpy(ring() + at + 4, msg, len);
    tail += stride(len);
    mk_channel_publish(header, MK_CHANNEL_OFF_TAIL, tail, MK_CHANNEL_OFF_DATA_WAIT, data_ev);
  }
  return NULL;
}

static uint32_t bad;

static void *consumer(void *arg) {
  (void)arg;
  uint32_t head = 0;
  uint8_t msg[300];
  for (uint32_t i = 0; i < COUNT; i++) {
    for (;;) {
      uint32_t tail = atomic_load(word(MK_CHANNEL_OFF_TAIL));
      if (tail != head) break;
      sleep_on(MK_CHANNEL_OFF_DATA_WAIT, MK_CHANNEL_OFF_TAIL, tail, data_ev, 1);
    }
    uint32_t at = head & (capacity - 1), len, seq;
    memcpy(&len, ring() + at, 4);
    if (len > sizeof msg) {
      bad++;
      break;
    }
    memcpy(msg, ring() + at + 4, len);
    memcpy(&seq, msg, 4);
    if (seq != i || len != 4 + i % 250 || (len > 4 && msg[len - 1] != (uint8_t)(i & 0xff))) bad++;
    head += stride(len);
    mk_channel_publish(header, MK_CHANNEL_OFF_HEAD, head, MK_CHANNEL_OFF_SPACE_WAIT, space_ev);
  }
  return NULL;
}


/* The peer of a Unix socket: this process (a socketpair), a live child
 * (a pidfd that turns readable at its death) and a child already gone. */
static void test_peer(void) {
  int sv[2];
  int64_t out[2];
  CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
  int64_t pidfd = mk_channel_peer(sv[0], out);
  CHECK_OK(pidfd, "mk_channel_peer on a socketpair");
  CHECK_EQ(out[0], (int64_t)getpid(), "the peer of a socketpair is this process");
  CHECK_EQ(out[1], mk_lock_self(), "its identity word is mk_lock_self()'s");
  CHECK_EQ(mk_channel_alive((int32_t)pidfd, 0), 1, "alive by its pidfd");
  CHECK_EQ(mk_channel_alive(-1, (uint64_t)out[1]), 1, "alive by its identity word");
  if (pidfd >= 0) close((int)pidfd);
  close(sv[0]);
  close(sv[1]);
  int memfd = memfd_create("not-a-socket", MFD_CLOEXEC);
  CHECK_ERR(mk_channel_peer(memfd, out), ENOTSOCK, "a memfd has no peer: ENOTSOCK");
  close(memfd);

  /* A child connects to an abstract socket, then waits to be killed. */
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  snprintf(addr.sun_path + 1, sizeof addr.sun_path - 1, "memkit-ctest-peer-%d", (int)getpid());
  socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(addr.sun_path + 1));
  for (int round = 0; round < 2; round++) {
    int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(l >= 0 && bind(l, (struct sockaddr *)&addr, alen) == 0 && listen(l, 1) == 0, "listen");
    pid_t child = fork();
    if (child == 0) {
      int c = socket(AF_UNIX, SOCK_STREAM, 0);
      if (connect(c, (struct sockaddr *)&addr, alen) != 0) _exit(1);
      if (round == 1) _exit(0);
      pause();
      _exit(0);
    }
    int a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    CHECK(a >= 0, "accept the child");
    if (round == 0) {
      pidfd = mk_channel_peer(a, out);
      CHECK_OK(pidfd, "mk_channel_peer of a live child");
      CHECK_EQ(out[0], (int64_t)child, "its pid");
      CHECK_EQ(mk_channel_alive((int32_t)pidfd, 0), 1, "the child lives");
      kill(child, SIGKILL);
      struct pollfd p = {.fd = (int)pidfd, .events = POLLIN};
      CHECK(poll(&p, 1, 10000) == 1, "its pidfd turns readable when it is killed");
      CHECK_EQ(mk_channel_alive((int32_t)pidfd, 0), 0, "the child is gone, by its pidfd");
      CHECK_EQ(mk_channel_alive(-1, (uint64_t)out[1]), 0, "and by its identity word");
      waitpid(child, NULL, 0);
      close((int)pidfd);
    } else {
      waitpid(child, NULL, 0);
      CHECK_ERR(mk_channel_peer(a, out), ESRCH, "a peer already gone is ESRCH");
    }
    close(a);
    close(l);
  }
}

int main(void) {
  int fd = memfd_create("ctest-channel", MFD_CLOEXEC);
  capacity = PAGE;
  CHECK(fd >= 0 && ftruncate(fd, PAGE + capacity) == 0, "memfd of a page and a ring");
  CHECK_ERR(mk_channel_map(fd, 3 * PAGE), EINVAL, "a ring that is no power of two is EINVAL");
  CHECK_ERR(mk_channel_map(fd, 100), EINVAL, "a ring under a page is EINVAL");
  int64_t h = mk_channel_map(fd, capacity);
  CHECK_OK(h, "mk_channel_map");
  header = (uint64_t)h;
  /* The ring is mapped twice after the header. */
  ring()[5] = 42;
  CHECK_EQ(ring()[capacity + 5], 42, "byte i and byte i + capacity are the same memory");
  ring()[5] = 0;
  CHECK_ERR(mk_channel_publish(header, 5000, 0, 0, -1), EINVAL, "an offset past the header");
  data_ev = (int32_t)mk_socket_event();
  space_ev = (int32_t)mk_socket_event();
  CHECK(data_ev >= 0 && space_ev >= 0, "eventfds");
  pthread_t p, c;
  pthread_create(&c, NULL, consumer, NULL);
  pthread_create(&p, NULL, producer, NULL);
  pthread_join(p, NULL);
  pthread_join(c, NULL);
  CHECK_EQ(bad, 0, "200,000 messages arrive in order, intact");
  printf("# the producer slept %u times, the consumer %u\n", atomic_load(&sleeps[0]),
         atomic_load(&sleeps[1]));
  CHECK(atomic_load(word(MK_CHANNEL_OFF_DATA_WAIT)) == 0 &&
            atomic_load(word(MK_CHANNEL_OFF_SPACE_WAIT)) == 0,
        "no sleeping flag left raised");
  munmap((void *)(uintptr_t)header, PAGE + 2 * capacity);
  close(data_ev);
  close(space_ev);
  close(fd);
  test_peer();
  return tap_done();
}
