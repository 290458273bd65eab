/*
 * libFuzzer target for the turn relay plugin: everything a TURN server
 * (or anyone who spoofs its address) can send, and the transport's calls
 * in between, against an allocation with two permitted peers and five
 * requests in flight.  The plugin's sources are compiled into this target
 * so they are instrumented; the host is a stand-in that checks what the
 * plugin hands back.
 *
 * The input is a sequence of records: one byte of operation, two bytes
 * of length (big endian), then that many bytes (copied into a heap block
 * of exactly that size, so ASan sees any over-read):
 *   0  a datagram from the server
 *   1  permit the address in the record (4 bytes IPv4 + 2 port)
 *   2  unpermit it
 *   3  send the record's bytes to peer 0 through the relay
 *   4  the 1 s housekeeping tick, time advanced by the first byte in s
 * Transaction ids come from a counter: the n-th random() call fills 12
 * bytes of n, so the requests in flight have ids 0x01.. to 0x05..
 * (permission and channel of peer 0, of peer 1, then a Refresh).
 * Credentials: user "user", realm "realm", password "pass", nonce
 * "nonce".  Checked invariants: datagrams handed to relay_recv() lie in
 * the input and come with an IPv4 address; datagrams sent fit the framing
 * buffer; the state stays in range; nothing leaks (ASan).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugins/turn/turn.h"
#include "tests/fuzz/fake_host.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
extern const struct sfk_plugin_desc sfkit_proxy_plugin;

static struct ev_loop *loop;
static unsigned rnd;
static const uint8_t *in_lo, *in_hi; /* the record being handled */

static int f_random(const struct sfk_host *h, void *buf, size_t len) {
  (void)h;
  memset(buf, (int)(++rnd & 0xff), len);
  return 0;
}
static int f_udp_send(const struct sfk_host *h, int path,
                      const struct sockaddr *to, socklen_t tolen,
                      const uint8_t *buf, size_t len, size_t gso) {
  (void)h;
  (void)to;
  if (path != SFK_PATH_DIRECT || tolen == 0 || len == 0 ||
      len > TURN_OUT_MAX || gso)
    abort();
  volatile uint8_t x = buf[0] ^ buf[len - 1];
  (void)x;
  return 0;
}
static int f_udp_local(const struct sfk_host *h, struct sockaddr_storage *out,
                       socklen_t *outlen) {
  (void)h;
  struct sockaddr_in *in = (struct sockaddr_in *)out;
  memset(out, 0, sizeof *out);
  in->sin_family = AF_INET;
  *outlen = sizeof *in;
  return 0;
}
static int f_resolve(const struct sfk_host *h, const char *name, uint16_t port,
                     int family, sfk_resolve_cb cb, void *arg,
                     struct sfk_resolve **out) {
  (void)h, (void)name, (void)port, (void)family, (void)cb, (void)arg;
  *out = NULL;
  return -EAGAIN; /* the attempt fails and backs off */
}
static void f_resolve_cancel(const struct sfk_host *h, struct sfk_resolve *r) {
  (void)h;
  (void)r;
}
static void f_relay_recv(const struct sfk_host *h, const struct sockaddr *from,
                         socklen_t fromlen, const uint8_t *d, size_t len) {
  (void)h;
  if (from->sa_family != AF_INET || fromlen != sizeof(struct sockaddr_in) ||
      len == 0 || d < in_lo || d + len > in_hi)
    abort();
}
static void f_relay_changed(const struct sfk_host *h,
                            const struct sockaddr *addr, socklen_t len,
                            int err, const char *why) {
  (void)h;
  if ((addr && !len) || (!addr && (err >= 0 || !why)))
    abort();
}

static struct sfk_host host = {
    .abi = SFK_ABI_VERSION,
    .size = sizeof(struct sfk_host),
    .instance = "relay.turn",
    .now_ns = f_now,
    .log_enabled = f_log_enabled,
    .log = f_log,
    .random = f_random,
    .udp_send = f_udp_send,
    .udp_local = f_udp_local,
    .resolve = f_resolve,
    .resolve_cancel = f_resolve_cancel,
    .relay_recv = f_relay_recv,
    .relay_changed = f_relay_changed,
};

static void v4(struct sockaddr_storage *ss, socklen_t *len, const char *ip,
               uint16_t port) {
  struct sockaddr_in *in = (struct sockaddr_in *)ss;
  memset(ss, 0, sizeof *ss);
  in->sin_family = AF_INET;
  in->sin_port = htons(port);
  inet_pton(AF_INET, ip, &in->sin_addr);
  *len = sizeof *in;
}

static struct turn *setup(void) {
  struct turn *t = calloc(1, sizeof *t);
  struct sockaddr_storage p;
  socklen_t pl;
  if (!t)
    abort();
  host.loop = loop;
  t->h = &host;
  snprintf(t->cfg.uri, sizeof t->cfg.uri, "turn:192.0.2.1");
  snprintf(t->cfg.host, sizeof t->cfg.host, "192.0.2.1");
  t->cfg.port = 3478;
  snprintf(t->cfg.user, sizeof t->cfg.user, "user");
  snprintf(t->cfg.pass, sizeof t->cfg.pass, "pass");
  t->cfg.lifetime_s = 600;
  t->started = 1;
  v4(&t->server, &t->serverlen, "192.0.2.1", 3478);
  snprintf(t->server_str, sizeof t->server_str, "192.0.2.1:3478");
  snprintf(t->realm, sizeof t->realm, "realm");
  snprintf(t->nonce, sizeof t->nonce, "nonce");
  if (stun_long_term_key("user", "realm", "pass", t->key) < 0)
    abort();
  t->have_key = 1;
  v4(&t->relayed, &t->relayedlen, "192.0.2.1", 50000);
  t->lifetime_s = 600;
  t->refresh_ns = now + 300000000000ull;
  t->expires_ns = now + 600000000000ull;
  t->next_chan = STUN_CHAN_MIN;
  t->state = TS_READY;
  t->announced = 1;
  v4(&p, &pl, "198.51.100.1", 4000);
  turn_peer_permit(t, (struct sockaddr *)&p, pl);
  v4(&p, &pl, "198.51.100.2", 5000);
  turn_peer_permit(t, (struct sockaddr *)&p, pl);
  turn_txn_start(t, TR_REFRESH, -1);
  return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const struct sfk_relay_ops *ops = sfkit_proxy_plugin.ops;
  struct turn *t;
  size_t off = 0;

  if (!loop && !(loop = ev_loop_new(EVFLAG_AUTO)))
    abort();
  now = 1000000000000ull;
  rnd = 0;
  t = setup();
  while (off + 3 <= size) {
    uint8_t op = data[off];
    size_t len = (size_t)data[off + 1] << 8 | data[off + 2];
    off += 3;
    if (len > size - off)
      len = size - off;
    uint8_t *rec = malloc(len ? len : 1);
    if (!rec)
      abort();
    memcpy(rec, data + off, len);
    off += len;
    in_lo = rec;
    in_hi = rec + len;
    struct sockaddr_storage a;
    socklen_t al;
    v4(&a, &al, "198.51.100.1", 4000);
    switch (op % 5) {
    case 0:
      if (len)
        ops->on_datagram(t, (struct sockaddr *)&t->server, t->serverlen, rec,
                         len);
      break;
    case 1:
    case 2:
      if (len >= 6) {
        memcpy(&((struct sockaddr_in *)&a)->sin_addr, rec, 4);
        memcpy(&((struct sockaddr_in *)&a)->sin_port, rec + 4, 2);
      }
      if (op % 5 == 1)
        ops->permit(t, (struct sockaddr *)&a, al);
      else
        ops->unpermit(t, (struct sockaddr *)&a, al);
      break;
    case 3:
      if (len)
        ops->send(t, (struct sockaddr *)&a, al, rec, len);
      break;
    default:
      now += (uint64_t)(len ? rec[0] : 1) * 1000000000ull;
      turn_alloc_tick(t, now);
      turn_peer_tick(t, now);
      break;
    }
    free(rec);
    if (t->state < TS_IDLE || t->state > TS_WAITING)
      abort();
  }
  turn_txn_cancel_all(t);
  if (t->res)
    abort();
  free(t);
  return 0;
}
