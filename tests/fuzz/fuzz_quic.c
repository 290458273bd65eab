/*
 * libFuzzer target for the QUIC transport plugin's datagram entry point
 * (ops->on_datagram): everything anyone on the network can send to the
 * daemon's UDP socket once the demultiplexer has decided "QUIC".  The
 * plugin's sources are compiled into this target so they are
 * instrumented; identities and pins come from the (instrumented) core;
 * the host is a stand-in that checks what the plugin hands back.
 *
 * Per input: two fresh instances on one loop, party A (PID 2 at
 * 192.0.2.2:4000) and party B (PID 1 at 192.0.2.1:4000), each with the
 * other and PID 3 (192.0.2.3:4000, a pin nobody holds) in its peer table.
 * A dials B at start; B punches towards A and 3.  Then the records, after
 * each one loop iteration (the flush, the timers that are due); stop();
 * destroy().
 *
 * The input is a sequence of records: one byte of operation, two bytes of
 * length (big endian), then that many bytes (copied into a heap block of
 * exactly that size, so ASan sees any over-read):
 *   op >> 3    first the clock advances by that many 50 ms steps (the
 *              plugins' timers with it: see step())
 *   op & 4     the record is for B (else for A)
 *   op & 3     the source of a datagram: 0 the other party, 1 PID 3,
 *              2 a stranger (203.0.113.5:5555), 3 an IPv6 stranger
 * A record of 2 or more bytes is a datagram from that source.  A record
 * of 0 or 1 bytes drives the network between the two instances instead
 * (see struct sent): 0 bytes: the oldest datagram either sent arrives
 * where it went; 1 byte b: b & 7 = 0 it is lost, 1 it is duplicated,
 * 2 the newest arrives first, 3 the oldest arrives cut to (b >> 3) * 24 + 1
 * bytes.  So the fuzzer schedules a real handshake (order, loss,
 * duplicates, truncation, time) and can inject packets into it.  And
 * b & 7 = 4..7 drives streams of party (b >> 3) & 1 (see stream_cmd()):
 * open one to port b >> 4 of the other (odd ports refuse), write, reset,
 * finish.  Between records the daemon's part is done (service()).
 *
 * Checked invariants: datagrams sent are within the size a UDP payload
 * may have (and gso is honest), go on a path that exists, to an address
 * of the right size; peer_state events name a peer of the table with a
 * state in range; streams only come from authenticated peers; every
 * stream upcall names a live handle of that party (none after
 * stream_closed() or stream_reset());
 * after destroy() no watcher is left on the loop; nothing leaks (ASan).
 *
 * FUZZ_QUIC_LOG=1 prints the plugins' messages (for a crash's story).
 * Seeds: FUZZ_QUIC_SEEDS=DIR ./fuzz_quic writes the seed corpus into DIR
 * (see make_seeds()).
 */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gnutls/crypto.h>

#include "identity.h"
#include "plugins/quic/quic.h"
#include "tests/fuzz/fake_host.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);
extern const struct sfk_plugin_desc sfkit_proxy_plugin;

#define NPEERS 2

/* One party: the host must come first (the callbacks get &party.host). */
struct party {
  struct sfk_host host;
  struct sfk_ident ident;
  struct sfk_peer peers[NPEERS];
  struct sockaddr_storage addr;
  socklen_t addrlen;
  struct quic_inst *qi;
};
static struct party parties[2]; /* A, B */

static struct ev_loop *loop;
static struct sockaddr_storage pid3, stranger4, stranger6;
static socklen_t pid3len, stranger4len, stranger6len;

static struct party *party_of(const struct sfk_host *h) {
  return (struct party *)(void *)h;
}

/*
 * What the instances sent, oldest first.  Delivery hands a datagram to
 * the party at its destination, from the sender's address; one for an
 * address that is no party (PID 3's) comes back to its sender from there
 * (a mirror: punches and Initials meet our own server side).
 */
#define SQ_MAX 64
#define SQ_DGRAM 1500 /* ngtcp2's largest UDP payload off loopback is 1452 */
struct sent {
  int from; /* index of the sending party */
  struct sockaddr_storage to;
  socklen_t tolen;
  size_t len;
  uint8_t b[SQ_DGRAM];
};
static struct sent sq[SQ_MAX];
static size_t sq_head, sq_n;

static void sq_push(int from, const struct sockaddr *to, socklen_t tolen,
                    const uint8_t *b, size_t len) {
  struct sent *e;
  if (sq_n == SQ_MAX || len > SQ_DGRAM || tolen > sizeof e->to)
    return; /* a full queue drops, as a full socket buffer does */
  e = &sq[(sq_head + sq_n++) % SQ_MAX];
  e->from = from;
  memcpy(&e->to, to, tolen);
  e->tolen = tolen;
  e->len = len;
  memcpy(e->b, b, len);
}

static void f_cfg_error(const struct sfk_host *h, const struct sfk_cfg_node *n,
                        const char *fmt, ...) SFK_PRINTF(3, 4);
static void f_cfg_error(const struct sfk_host *h, const struct sfk_cfg_node *n,
                        const char *fmt, ...) {
  (void)h, (void)n, (void)fmt;
  abort(); /* the defaults are valid */
}
static const struct sfk_cfg_node *f_cfg_get(const struct sfk_cfg_node *map,
                                            const char *key) {
  (void)map, (void)key;
  return NULL;
}
static int f_cfg_string(const struct sfk_host *h,
                        const struct sfk_cfg_node *map, const char *key,
                        const char *def, const char **out) {
  (void)h, (void)map, (void)key;
  *out = def;
  return 0;
}
static int f_cfg_uint(const struct sfk_host *h, const struct sfk_cfg_node *map,
                      const char *key, uint64_t min, uint64_t max,
                      uint64_t def, uint64_t *out) {
  (void)h, (void)map, (void)key, (void)min, (void)max;
  *out = def;
  return 0;
}
static int f_cfg_duration_ms(const struct sfk_host *h,
                             const struct sfk_cfg_node *map, const char *key,
                             uint64_t def, uint64_t *out) {
  (void)h, (void)map, (void)key;
  *out = def;
  return 0;
}

static int f_udp_send(const struct sfk_host *h, int path,
                      const struct sockaddr *to, socklen_t tolen,
                      const uint8_t *buf, size_t len, size_t gso) {
  /* No relay (path_info says -ENOENT, relay_mode none): direct only. */
  if (path != SFK_PATH_DIRECT || !to || len == 0 || len > 65507 || gso > len)
    abort();
  if (!((to->sa_family == AF_INET && tolen == sizeof(struct sockaddr_in)) ||
        (to->sa_family == AF_INET6 && tolen == sizeof(struct sockaddr_in6))))
    abort();
  volatile uint8_t x = buf[0] ^ buf[len - 1];
  (void)x;
  for (size_t o = 0, g = gso ? gso : len; o < len; o += g)
    sq_push(party_of(h) == &parties[1], to, tolen, buf + o,
            len - o < g ? len - o : g);
  return 0;
}
static int f_udp_local(const struct sfk_host *h, struct sockaddr_storage *out,
                       socklen_t *outlen) {
  const struct party *pt = party_of(h);
  memcpy(out, &pt->addr, pt->addrlen);
  *outlen = pt->addrlen;
  return 0;
}
static int f_path_info(const struct sfk_host *h, int path,
                       struct sfk_path_info *out) {
  (void)h;
  memset(out, 0, sizeof *out);
  if (path != SFK_PATH_DIRECT)
    return -ENOENT;
  out->usable = 1;
  f_udp_local(h, &out->addr, &out->addrlen);
  return 0;
}
static int f_relay_permit(const struct sfk_host *h, const struct sockaddr *p,
                          socklen_t len) {
  (void)h, (void)p, (void)len;
  return -ENOENT;
}
static void f_relay_unpermit(const struct sfk_host *h,
                             const struct sockaddr *p, socklen_t len) {
  (void)h, (void)p, (void)len;
}
static int f_random(const struct sfk_host *h, void *buf, size_t len) {
  (void)h;
  return gnutls_rnd(GNUTLS_RND_NONCE, buf, len) == 0 ? 0 : -EIO;
}
static const struct sfk_peer *f_peer_get(const struct sfk_host *h,
                                         uint32_t pid) {
  const struct party *pt = party_of(h);
  for (size_t i = 0; i < NPEERS; i++)
    if (pt->peers[i].pid == pid)
      return &pt->peers[i];
  return NULL;
}
static size_t f_peer_count(const struct sfk_host *h) {
  (void)h;
  return NPEERS;
}
static const struct sfk_peer *f_peer_at(const struct sfk_host *h, size_t i) {
  return i < NPEERS ? &party_of(h)->peers[i] : NULL;
}
static const struct sfk_identity *f_identity(const struct sfk_host *h) {
  return &party_of(h)->ident.pub;
}
static int f_cert_pin(const struct sfk_host *h, const uint8_t *der, size_t len,
                      char out[SFK_PIN_SIZE]) {
  (void)h;
  return sfk_cert_pin(der, len, out);
}
static void f_peer_state(const struct sfk_host *h,
                         const struct sfk_peer_event *ev) {
  if (!f_peer_get(h, ev->pid) || ev->state < SFK_PEER_UNKNOWN ||
      ev->state > SFK_PEER_DOWN || (ev->addr && !ev->addrlen) ||
      (ev->state == SFK_PEER_DOWN && ev->err > 0))
    abort();
  if (ev->why)
    (void)strlen(ev->why);
}
/*
 * Streams: the daemon side of each party is a table of application
 * handles.  An upcall must name a live handle of the party it is made
 * to; after stream_closed() (or our stream_reset()) the handle is dead.
 */
#define NAPPS 16
struct app {
  int live;
  int party;
  void *ts;
  int reply;         /* accepted: answer with stream_reply() */
  size_t unconsumed; /* received, to give back with stream_consumed() */
};
static struct app apps[NAPPS];

static struct app *app_new(int party) {
  for (size_t i = 0; i < NAPPS; i++) {
    if (!apps[i].live) {
      memset(&apps[i], 0, sizeof apps[i]);
      apps[i].live = 1;
      apps[i].party = party;
      return &apps[i];
    }
  }
  return NULL;
}
static struct app *app_check(const struct sfk_host *h, void *app) {
  struct app *a = app;
  if (a < apps || a >= apps + NAPPS || !a->live ||
      &parties[a->party].host != h)
    abort();
  return a;
}
static void *f_stream_accept(const struct sfk_host *h, void *ts, uint32_t pid,
                             uint16_t port, uint8_t *status) {
  struct app *a;
  if (!f_peer_get(h, pid) || pid == 3)
    abort(); /* only an authenticated peer opens streams */
  if ((port & 1) || !(a = app_new(party_of(h) == &parties[1]))) {
    *status = port & 1 ? SFK_ST_REFUSED : SFK_ST_FAILURE;
    return NULL; /* odd ports are closed */
  }
  a->ts = ts;
  a->reply = 1;
  return a;
}
static void f_stream_status(const struct sfk_host *h, void *app,
                            uint8_t status, const char *why) {
  (void)status;
  app_check(h, app);
  if (why)
    (void)strlen(why);
}
static void f_stream_data(const struct sfk_host *h, void *app,
                          const uint8_t *d, size_t len, int fin) {
  struct app *a = app_check(h, app);
  (void)fin;
  if (len) {
    volatile uint8_t x = d[0] ^ d[len - 1];
    (void)x;
  }
  a->unconsumed += len;
}
static void f_stream_writable(const struct sfk_host *h, void *app) {
  app_check(h, app);
}
static void f_stream_closed(const struct sfk_host *h, void *app, int err) {
  struct app *a = app_check(h, app);
  if (err > 0)
    abort();
  a->live = 0;
}

static const struct sfk_host host_template = {
    .abi = SFK_ABI_VERSION,
    .size = sizeof(struct sfk_host),
    .instance = "transport.quic",
    .study_id = "fuzz",
    .relay_mode = SFK_RELAY_NONE,
    .net = 0x0a000000,
    .prefix = 8,
    .now_ns = f_now,
    .log_enabled = f_log_enabled,
    .log = f_log,
    .cfg_get = f_cfg_get,
    .cfg_error = f_cfg_error,
    .cfg_string = f_cfg_string,
    .cfg_uint = f_cfg_uint,
    .cfg_duration_ms = f_cfg_duration_ms,
    .udp_send = f_udp_send,
    .udp_local = f_udp_local,
    .path_info = f_path_info,
    .relay_permit = f_relay_permit,
    .relay_unpermit = f_relay_unpermit,
    .random = f_random,
    .peer_get = f_peer_get,
    .peer_count = f_peer_count,
    .peer_at = f_peer_at,
    .identity = f_identity,
    .cert_pin = f_cert_pin,
    .peer_state = f_peer_state,
    .stream_accept = f_stream_accept,
    .stream_status = f_stream_status,
    .stream_data = f_stream_data,
    .stream_writable = f_stream_writable,
    .stream_closed = f_stream_closed,
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

static void v6(struct sockaddr_storage *ss, socklen_t *len, const char *ip,
               uint16_t port) {
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
  memset(ss, 0, sizeof *ss);
  in6->sin6_family = AF_INET6;
  in6->sin6_port = htons(port);
  inet_pton(AF_INET6, ip, &in6->sin6_addr);
  *len = sizeof *in6;
}

static void setup_once(void) {
  char dir[] = "/tmp/fuzz_quic.XXXXXX", path[64], err[256];
  int created;
  static const char *const ip[2] = {"192.0.2.2", "192.0.2.1"};
  static const uint32_t pid[2] = {2, 1};

  if (!(loop = ev_loop_new(EVFLAG_AUTO)) || !mkdtemp(dir))
    abort();
  for (int k = 0; k < 2; k++) {
    struct party *pt = &parties[k];
    pt->host = host_template;
    pt->host.loop = loop;
    pt->host.self_pid = pid[k];
    snprintf(path, sizeof path, "%s/key%d.pem", dir, k);
    if (sfk_ident_load(&pt->ident, path, &created, err, sizeof err) != 0) {
      fprintf(stderr, "fuzz_quic: identity: %s\n", err);
      abort();
    }
    unlink(path);
    v4(&pt->addr, &pt->addrlen, ip[k], 4000);
  }
  rmdir(dir);
  for (int k = 0; k < 2; k++) {
    struct party *pt = &parties[k], *other = &parties[!k];
    /* sorted by PID */
    pt->peers[0].pid = other->host.self_pid;
    pt->peers[0].addr = other->addr;
    pt->peers[0].addrlen = other->addrlen;
    memcpy(pt->peers[0].pin, other->ident.pub.pin, SFK_PIN_SIZE);
    pt->peers[1].pid = 3; /* a well-formed pin nobody holds */
    v4(&pt->peers[1].addr, &pt->peers[1].addrlen, "192.0.2.3", 4000);
    memset(pt->peers[1].pin, 'a', SFK_PIN_LEN);
  }
  v4(&pid3, &pid3len, "192.0.2.3", 4000);
  v4(&stranger4, &stranger4len, "203.0.113.5", 5555);
  v6(&stranger6, &stranger6len, "2001:db8::5", 5555);
}

static const struct sfk_transport_ops *ops(void) {
  return sfkit_proxy_plugin.ops;
}

static void instances(void) {
  now = 1000000000000ull;
  sq_head = sq_n = 0;
  memset(apps, 0, sizeof apps);
  for (int k = 0; k < 2; k++) {
    void *self = NULL;
    if (ops()->base.create(&parties[k].host, NULL, &self) != 0 || !self)
      abort();
    parties[k].qi = self;
  }
  for (int k = 0; k < 2; k++)
    if (ops()->base.start(parties[k].qi) != 0)
      abort();
}

static void shift_timer(ev_timer *w, double d) {
  if (ev_is_active(w)) {
    double rem = ev_timer_remaining(loop, w) - d;
    ev_timer_stop(loop, w);
    ev_timer_set(w, rem > 0 ? rem : 0., 0.);
    ev_timer_start(loop, w);
  }
}

/*
 * The plugins' clock is ours (now_ns), their timers are libev's (real
 * time).  To let time pass, every active timer of the instances (each
 * peer and each connection has one, all one-shot) is moved earlier by the
 * same step; then one loop iteration runs what is due, after the flush
 * that the prepare watcher does.
 */
static void step(uint64_t dt) {
  struct quic_peer *p;
  struct quic_conn *qc;

  now += dt;
  if (dt) {
    for (int k = 0; k < 2; k++) {
      TAILQ_FOREACH(p, &parties[k].qi->peers, link)
      shift_timer(&p->timer, (double)dt / 1e9);
      TAILQ_FOREACH(qc, &parties[k].qi->conns, link)
      shift_timer(&qc->timer, (double)dt / 1e9);
    }
  }
  ev_run(loop, EVRUN_NOWAIT);
}

static void finish(void) {
  for (int k = 0; k < 2; k++)
    ops()->base.stop(parties[k].qi);
  for (int k = 0; k < 2; k++)
    ops()->base.destroy(parties[k].qi);
  /* Nothing may be left on the loop: ev_run() says whether any watcher
   * is still active (and runs what is due: a stale one shows in ASan). */
  if (ev_run(loop, EVRUN_NOWAIT))
    abort(); /* a watcher outlived its instance */
}

/* A datagram for party k from src. */
static void deliver(int k, const struct sockaddr_storage *src,
                    socklen_t srclen, const uint8_t *b, size_t len) {
  uint8_t *d = malloc(len ? len : 1);
  if (!d)
    abort();
  if (len)
    memcpy(d, b, len);
  ops()->on_datagram(parties[k].qi, SFK_PATH_DIRECT,
                     (const struct sockaddr *)src, srclen, d, len);
  free(d);
}

static void write_seed(const char *dir, const char *name, const uint8_t *d,
                       size_t n) {
  char path[512];
  FILE *f;
  snprintf(path, sizeof path, "%s/%s", dir, name);
  if (!(f = fopen(path, "wb")) || fwrite(d, 1, n, f) != n || fclose(f) != 0)
    abort();
}

/* Append a record (op, length, bytes) to buf at *off. */
static void rec(uint8_t *buf, size_t *off, uint8_t op, const uint8_t *d,
                size_t n) {
  buf[(*off)++] = op;
  buf[(*off)++] = (uint8_t)(n >> 8);
  buf[(*off)++] = (uint8_t)n;
  if (n)
    memcpy(buf + *off, d, n);
  *off += n;
}

/* Sent datagram i (0 the oldest) arrives, its first len bytes; it is
 * dequeued first when pop is set (answers queue up behind). */
static void reflect(size_t i, size_t len, int pop) {
  struct sent e = sq[(sq_head + i) % SQ_MAX];
  const struct sockaddr *to = (const struct sockaddr *)&e.to;

  if (pop) {
    if (i == 0) {
      sq_head = (sq_head + 1) % SQ_MAX;
      sq_n--;
    } else if (i == sq_n - 1) {
      sq_n--;
    } else {
      abort();
    }
  }
  if (len > e.len)
    len = e.len;
  for (int k = 0; k < 2; k++) {
    if (quic_addr_eq(to, e.tolen, (const struct sockaddr *)&parties[k].addr,
                     parties[k].addrlen)) {
      deliver(k, &parties[e.from].addr, parties[e.from].addrlen, e.b, len);
      return;
    }
  }
  deliver(e.from, &e.to, e.tolen, e.b, len); /* the mirror */
}

/*
 * Seeds: A's client Initial (what start() sends to B) as it would arrive
 * at A from PID 3, from strangers, twice, after time passed, cut short, and
 * at B from A; a short-header packet (a stateless reset is the answer), a
 * punch, a version nobody speaks; and the network between the two: the
 * handshake in order, with loss, duplicates and reordering, and a
 * connection left idle through its keep-alives.
 */
static void make_seeds(const char *dir) {
  static uint8_t b[16384];
  size_t n, k = 0, il;
  uint8_t ini[SQ_DGRAM], sh[64], vn[64], c;

  instances();
  step(0);
  step(0);
  while (k < sq_n && (sq[k].from != 0 || sq[k].len < 1200 ||
                      (sq[k].b[0] & 0xf0) != 0xc0))
    k++; /* A's first long-header Initial (a punch may go first) */
  if (k == sq_n) {
    fprintf(stderr, "fuzz_quic: no client Initial captured\n");
    abort();
  }
  il = sq[k].len;
  memcpy(ini, sq[k].b, il);
  finish();

  for (size_t i = 0; i < sizeof sh; i++)
    sh[i] = (uint8_t)(i * 37);
  sh[0] = 0x40;
  memcpy(vn, ini, sizeof vn);
  vn[1] = 0x1a, vn[2] = 0x2a, vn[3] = 0x3a, vn[4] = 0x4a;

  n = 0, rec(b, &n, 1, ini, il), write_seed(dir, "initial-pid3", b, n);
  n = 0, rec(b, &n, 2, ini, il), write_seed(dir, "initial-stranger", b, n);
  n = 0, rec(b, &n, 3, ini, il), write_seed(dir, "initial-v6", b, n);
  n = 0, rec(b, &n, 4, ini, il), write_seed(dir, "initial-at-b", b, n);
  n = 0, rec(b, &n, 1, ini, il), rec(b, &n, 1 | 8 * 4, ini, il);
  write_seed(dir, "initial-twice", b, n);
  n = 0, rec(b, &n, 2, ini, il), rec(b, &n, 2, sh, sizeof sh),
  rec(b, &n, 2 | 8 * 31, (const uint8_t *)QUIC_PUNCH, QUIC_PUNCH_LEN);
  write_seed(dir, "initial-short-punch", b, n);
  n = 0, rec(b, &n, 2, sh, sizeof sh), write_seed(dir, "short-header", b, n);
  n = 0, rec(b, &n, 0, (const uint8_t *)QUIC_PUNCH, QUIC_PUNCH_LEN);
  rec(b, &n, 1 | 4, (const uint8_t *)QUIC_PUNCH, QUIC_PUNCH_LEN);
  write_seed(dir, "punch", b, n);
  n = 0, rec(b, &n, 2, vn, sizeof vn), write_seed(dir, "unknown-version", b, n);
  n = 0;
  for (int i = 0; i < 12; i++)
    rec(b, &n, (uint8_t)(2 | (i & 1) | 8), ini, il < 600 ? il : 600);
  write_seed(dir, "truncated-initials", b, n);

  n = 0;
  for (int i = 0; i < 60; i++)
    rec(b, &n, (uint8_t)(i % 10 == 9 ? 8 * 4 : 0), NULL, 0);
  write_seed(dir, "handshake", b, n);
  n = 0;
  for (int i = 0; i < 80; i++) {
    c = (uint8_t)(i % 7 == 3 ? 0 : i % 7 == 5 ? 1 : i % 11 == 4 ? 2 : 9);
    if (c == 9)
      rec(b, &n, (uint8_t)(i % 13 == 0 ? 8 * 31 : 0), NULL, 0);
    else
      rec(b, &n, 0, &c, 1);
  }
  write_seed(dir, "handshake-lossy", b, n);
  n = 0;
  for (int i = 0; i < 40; i++)
    rec(b, &n, 0, NULL, 0);
  for (int i = 0; i < 40; i++)
    rec(b, &n, i % 4 ? 0 : 8 * 31, NULL, 0); /* keep-alives, timeouts */
  rec(b, &n, 0, sh, sizeof sh);
  rec(b, &n, 4, sh, sizeof sh);
  write_seed(dir, "handshake-idle", b, n);
  n = 0;
  for (int i = 0; i < 30; i++)
    rec(b, &n, 0, NULL, 0);
  c = 3 | 4 << 2;
  for (int i = 0; i < 10; i++)
    rec(b, &n, 0, &c, 1);
  write_seed(dir, "handshake-cut", b, n);
  /* Streams once the connection is up: A opens to port 2 (accepted) and
   * 3 (refused) of B, writes and finishes; B answers and resets. */
  n = 0;
  for (int i = 0; i < 30; i++)
    rec(b, &n, 0, NULL, 0);
  static const uint8_t cmds[] = {4 | 2 << 4, 4 | 3 << 4, 5 | 3 << 5, 5 | 16,
                                 7, 4 | 8 | 4 << 4, 5 | 8 | 1 << 5, 6 | 8};
  for (size_t i = 0; i < sizeof cmds; i++) {
    rec(b, &n, 0, &cmds[i], 1);
    for (int j = 0; j < 6; j++)
      rec(b, &n, 0, NULL, 0);
  }
  for (int j = 0; j < 20; j++)
    rec(b, &n, j % 5 ? 0 : 8 * 3, NULL, 0);
  write_seed(dir, "streams", b, n);
}

/* What the daemon does between events: answer accepted streams, give
 * credit back for what was delivered. */
static void service(void) {
  for (size_t i = 0; i < NAPPS; i++) {
    struct app *a = &apps[i];
    void *qi = parties[a->party].qi;
    if (a->live && a->reply) {
      a->reply = 0;
      ops()->stream_reply(qi, a->ts, SFK_ST_OK);
    }
    if (a->live && a->unconsumed) {
      size_t n = a->unconsumed;
      a->unconsumed = 0;
      ops()->stream_consumed(qi, a->ts, n);
    }
  }
}

static struct app *newest(int party) {
  for (size_t i = NAPPS; i-- > 0;)
    if (apps[i].live && apps[i].party == party && apps[i].ts)
      return &apps[i];
  return NULL;
}

/* A stream command: c & 7 is 4..7, c >> 3 & 1 the party. */
static void stream_cmd(uint8_t c) {
  static uint8_t junk[8000];
  int k = c >> 3 & 1;
  void *qi = parties[k].qi;
  struct app *a;
  void *ts = NULL;

  switch (c & 7) {
  case 4: /* open a stream to the other party, port c >> 4 (odd: refused) */
    if (!(a = app_new(k)))
      return;
    if (ops()->stream_open(qi, parties[!k].host.self_pid, c >> 4, a, &ts) != 0)
      a->live = 0;
    else
      a->ts = ts;
    break;
  case 5: /* write ((c >> 5) + 1) * 1000 bytes, fin when c & 16 */
    if ((a = newest(k)) && ops()->stream_space(qi, a->ts))
      (void)ops()->stream_write(qi, a->ts, junk, (size_t)((c >> 5) + 1) * 1000,
                                c >> 4 & 1);
    break;
  case 6: /* reset */
    if ((a = newest(k))) {
      ops()->stream_reset(qi, a->ts);
      a->live = 0;
    }
    break;
  default: /* fin alone */
    if ((a = newest(k)))
      (void)ops()->stream_write(qi, a->ts, NULL, 0, 1);
    break;
  }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  const char *dir = getenv("FUZZ_QUIC_SEEDS");
  (void)argc, (void)argv;
  fake_log_verbose = getenv("FUZZ_QUIC_LOG") != NULL; /* FUZZ_QUIC_LOG=1 */
  setup_once();
  if (dir && *dir) {
    make_seeds(dir);
    exit(0);
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  size_t off = 0;

  instances();
  step(0); /* A's dial to B is due at once */
  while (off + 3 <= size) {
    uint8_t op = data[off];
    size_t len = (size_t)data[off + 1] << 8 | data[off + 2];
    off += 3;
    if (len > size - off)
      len = size - off;
    const uint8_t *d = data + off;
    off += len;
    if (op >> 3)
      step((uint64_t)(op >> 3) * 50000000ull);
    if (len > 1) {
      int k = op & 4 ? 1 : 0;
      switch (op & 3) {
      case 0:
        deliver(k, &parties[!k].addr, parties[!k].addrlen, d, len);
        break;
      case 1:
        deliver(k, &pid3, pid3len, d, len);
        break;
      case 2:
        deliver(k, &stranger4, stranger4len, d, len);
        break;
      default:
        deliver(k, &stranger6, stranger6len, d, len);
        break;
      }
    } else if (len == 1 && (d[0] & 7) >= 4) {
      stream_cmd(d[0]);
    } else if (sq_n) { /* the network */
      uint8_t c = len ? d[0] : 0xff;
      switch (len ? c & 7 : 4) {
      case 0: /* lost */
        sq_head = (sq_head + 1) % SQ_MAX;
        sq_n--;
        break;
      case 1: /* duplicated: arrives, and stays queued */
        reflect(0, SIZE_MAX, 0);
        break;
      case 2: /* reordered: the newest first */
        reflect(sq_n - 1, SIZE_MAX, 1);
        break;
      case 3: /* truncated */
        reflect(0, (size_t)(c >> 3) * 24 + 1, 1);
        break;
      default:
        reflect(0, SIZE_MAX, 1);
        break;
      }
    }
    service();
    step(0);
  }
  finish();
  return 0;
}
