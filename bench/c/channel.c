/*
 * channel.c: the C side of bench/channel_bench.ts: the ring of a memkit
 * Channel (the layout of cbits/memkit.h, MK_CHANNEL_*) driven from C, over
 * the same mapped memory, both sides spinning. cb_pingpong sends `count`
 * messages of `len` bytes on `tx` and waits for each echo on `rx`, storing
 * each round trip's nanoseconds; cb_echo, in the peer process, sends back
 * every message it receives. Each side keeps its position in the header (as
 * the TypeScript side does), so a Channel is not used from JavaScript once
 * C has driven it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "../../cbits/memkit.h"

#define CB_API __attribute__((visibility("default")))
#define PAGE 4096u

static _Atomic uint32_t *word(uint64_t h, uint32_t off) {
  return (_Atomic uint32_t *)(uintptr_t)(h + off);
}

static uint32_t stride(uint32_t len) { return (4 + len + MK_CHANNEL_ALIGN - 1) & ~(MK_CHANNEL_ALIGN - 1); }

static void send_msg(uint64_t h, const uint8_t *data, uint32_t len) {
  uint32_t cap = atomic_load_explicit(word(h, MK_CHANNEL_OFF_CAPACITY), memory_order_relaxed);
  uint8_t *ring = (uint8_t *)(uintptr_t)(h + PAGE);
  uint32_t tail = atomic_load_explicit(word(h, MK_CHANNEL_OFF_TAIL), memory_order_relaxed);
  while (cap - (tail - atomic_load_explicit(word(h, MK_CHANNEL_OFF_HEAD), memory_order_acquire)) <
         stride(len)) {
  }
  uint32_t at = tail & (cap - 1);
  memcpy(ring + at, &len, 4);
  memcpy(ring + at + 4, data, len);
  atomic_store_explicit(word(h, MK_CHANNEL_OFF_TAIL), tail + stride(len), memory_order_release);
}

static uint32_t recv_msg(uint64_t h, uint8_t *out, uint32_t cap_out) {
  uint32_t cap = atomic_load_explicit(word(h, MK_CHANNEL_OFF_CAPACITY), memory_order_relaxed);
  uint8_t *ring = (uint8_t *)(uintptr_t)(h + PAGE);
  uint32_t head = atomic_load_explicit(word(h, MK_CHANNEL_OFF_HEAD), memory_order_relaxed);
  while (atomic_load_explicit(word(h, MK_CHANNEL_OFF_TAIL), memory_order_acquire) == head) {
  }
  uint32_t at = head & (cap - 1), len;
  memcpy(&len, ring + at, 4);
  if (len > cap_out) len = cap_out;
  memcpy(out, ring + at + 4, len);
  atomic_store_explicit(word(h, MK_CHANNEL_OFF_HEAD), head + stride(len), memory_order_release);
  return len;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

CB_API int64_t cb_pingpong(uint64_t tx, uint64_t rx, uint32_t len, uint32_t count, double *ns) {
  static uint8_t msg[65536], back[65536];
  if (len > sizeof msg) return -EINVAL;
  for (uint32_t i = 0; i < count; i++) {
    uint64_t t0 = now_ns();
    memcpy(msg, &i, sizeof i);
    send_msg(tx, msg, len);
    recv_msg(rx, back, sizeof back);
    ns[i] = (double)(now_ns() - t0);
  }
  return 0;
}

CB_API int64_t cb_flood(uint64_t tx, uint64_t rx, uint32_t len, uint32_t count) {
  static uint8_t msg[65536], back[65536];
  if (len > sizeof msg) return -EINVAL;
  uint64_t t0 = now_ns();
  uint32_t got = 0;
  uint32_t cap = atomic_load(word(rx, MK_CHANNEL_OFF_CAPACITY));
  (void)cap;
  for (uint32_t i = 0; i < count; i++) {
    send_msg(tx, msg, len);
    /* Take echoes as they come, so that neither ring fills for good. */
    while (atomic_load(word(rx, MK_CHANNEL_OFF_TAIL)) != atomic_load(word(rx, MK_CHANNEL_OFF_HEAD))) {
      recv_msg(rx, back, sizeof back);
      got++;
    }
  }
  while (got < count) {
    recv_msg(rx, back, sizeof back);
    got++;
  }
  return (int64_t)(now_ns() - t0);
}

CB_API int64_t cb_echo(uint64_t rx, uint64_t tx, uint32_t count) {
  static uint8_t buf[65536];
  for (uint32_t i = 0; i < count; i++) {
    uint32_t n = recv_msg(rx, buf, sizeof buf);
    send_msg(tx, buf, n);
  }
  return 0;
}
