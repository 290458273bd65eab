/*
 * libFuzzer target for the QUIC transport plugin's datagram entry point
 * (ops->on_datagram): everything anyone on the network can send to the
 * daemon's UDP socket once the demultiplexer has decided "QUIC".  The
 * plugin's sources are compiled into this target so they are
 * instrumented; the identity and pins come from the (instrumented) core;
 * the host is a stand-in that checks what the plugin hands back.
 *
 * Per input: a fresh instance (self PID 2) with two peers in the table,
 * PID 1 at 192.0.2.1:4000 (we dial it: our Initial goes out at start)
 * and PID 3 at 192.0.2.3:4000 (it dials us); start(); then the records;
 * after each record one loop iteration (the flush, timers that are due);
 * stop(); destroy().
 * Both peers carry our own pin, so a handshake with a copy of ourselves
 * would be accepted.
 *
 * The input is a sequence of records: one byte of operation, two bytes of
 * length (big endian), then that many bytes (copied into a heap block of
 * exactly that size, so ASan sees any over-read):
 *   op & 3     the source: 0 peer 1, 1 peer 3, 2 a stranger
 *              (203.0.113.5:5555), 3 an IPv6 stranger ([2001:db8::5]:5555)
 *   op & 4     arrived on the relay path (else direct)
 *   op >> 3    the clock advances by that many 50 ms steps first (the
 *              plugin's timers with it: see step())
 * A datagram of the stream header's length or a stray punch is as good as
 * any other: the plugin sorts them out.
 *
 * Checked invariants: datagrams sent are within the size a UDP payload
 * may have (and gso is honest), go on a path that exists, to an address
 * of the right size; peer_state events name a peer of the table with a
 * state in range; no stream upcall ever names an application handle
 * (none was handed out); after destroy() no watcher is left on the loop;
 * nothing leaks (ASan).
 *
 * FUZZ_QUIC_LOG=1 prints the plugin's messages (for a crash's story).
 * Seeds: FUZZ_QUIC_SEEDS=DIR ./fuzz_quic -runs=0 writes a seed corpus
 * into DIR from the plugin's own client Initial (see make_seeds()).
 */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gnutls/crypto.h>

#include "identity.h"
#include "plugins/quic/quic.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);
extern const struct sfk_plugin_desc sfkit_proxy_plugin;

#define SELF_PID 2
#define NPEERS 2

static struct ev_loop *loop;
static uint64_t now;
static struct sfk_ident ident;
static struct sfk_peer peers[NPEERS];
static struct sockaddr_storage srcs[4];
static socklen_t srclens[4];

/* Seed capture: the first datagrams the plugin sends. */
static int capture;
static int verbose; /* FUZZ_QUIC_LOG=1: the plugin's messages to stderr */
static uint8_t cap_buf[4][2048];
static size_t cap_len[4];
static size_t ncap;

static uint64_t f_now(const struct sfk_host *h) {
  (void)h;
  return now;
}
static int f_log_enabled(const struct sfk_host *h, int level) {
  (void)h;
  (void)level;
  return 1; /* format every message: a bad format would show */
}
static void f_log(const struct sfk_host *h, int level, const char *fmt, ...)
    SFK_PRINTF(3, 4);
static void f_log(const struct sfk_host *h, int level, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  (void)h;
  (void)level;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (verbose)
    fprintf(stderr, "quic[%d]: %s\n", level, buf);
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
  (void)h;
  if ((path != SFK_PATH_DIRECT && path != SFK_PATH_RELAY) || !to ||
      len == 0 || len > 65507 || gso > len)
    abort();
  if (!((to->sa_family == AF_INET && tolen == sizeof(struct sockaddr_in)) ||
        (to->sa_family == AF_INET6 && tolen == sizeof(struct sockaddr_in6))))
    abort();
  volatile uint8_t x = buf[0] ^ buf[len - 1];
  (void)x;
  if (path == SFK_PATH_RELAY)
    return -ENETUNREACH; /* no relay (the answer to a relayed datagram) */
  if (capture && ncap < 4 && len <= sizeof cap_buf[0] && !gso) {
    memcpy(cap_buf[ncap], buf, len);
    cap_len[ncap++] = len;
  }
  return 0;
}
static int f_udp_local(const struct sfk_host *h, struct sockaddr_storage *out,
                       socklen_t *outlen) {
  (void)h;
  struct sockaddr_in *in = (struct sockaddr_in *)out;
  memset(out, 0, sizeof *out);
  in->sin_family = AF_INET;
  in->sin_port = htons(4000);
  inet_pton(AF_INET, "192.0.2.2", &in->sin_addr);
  *outlen = sizeof *in;
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
  (void)h;
  for (size_t i = 0; i < NPEERS; i++)
    if (peers[i].pid == pid)
      return &peers[i];
  return NULL;
}
static size_t f_peer_count(const struct sfk_host *h) {
  (void)h;
  return NPEERS;
}
static const struct sfk_peer *f_peer_at(const struct sfk_host *h, size_t i) {
  (void)h;
  return i < NPEERS ? &peers[i] : NULL;
}
static const struct sfk_identity *f_identity(const struct sfk_host *h) {
  (void)h;
  return &ident.pub;
}
static int f_cert_pin(const struct sfk_host *h, const uint8_t *der, size_t len,
                      char out[SFK_PIN_SIZE]) {
  (void)h;
  return sfk_cert_pin(der, len, out);
}
static void f_peer_state(const struct sfk_host *h,
                         const struct sfk_peer_event *ev) {
  (void)h;
  if (!f_peer_get(h, ev->pid) || ev->state < SFK_PEER_UNKNOWN ||
      ev->state > SFK_PEER_DOWN || (ev->addr && !ev->addrlen) ||
      (ev->state == SFK_PEER_DOWN && ev->err > 0))
    abort();
  if (ev->why)
    (void)strlen(ev->why);
}
static void *f_stream_accept(const struct sfk_host *h, void *ts, uint32_t pid,
                             uint16_t port, uint8_t *status) {
  (void)h, (void)ts, (void)port;
  if (!f_peer_get(h, pid))
    abort(); /* only an authenticated peer opens streams */
  *status = SFK_ST_REFUSED;
  return NULL;
}
/* No application handle was ever handed out: none may come back. */
static void f_stream_status(const struct sfk_host *h, void *app,
                            uint8_t status, const char *why) {
  (void)h, (void)app, (void)status, (void)why;
  abort();
}
static void f_stream_data(const struct sfk_host *h, void *app,
                          const uint8_t *d, size_t len, int fin) {
  (void)h, (void)app, (void)d, (void)len, (void)fin;
  abort();
}
static void f_stream_writable(const struct sfk_host *h, void *app) {
  (void)h, (void)app;
  abort();
}
static void f_stream_closed(const struct sfk_host *h, void *app, int err) {
  (void)h, (void)app, (void)err;
  abort();
}

static struct sfk_host host = {
    .abi = SFK_ABI_VERSION,
    .size = sizeof(struct sfk_host),
    .instance = "transport.quic",
    .self_pid = SELF_PID,
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

  if (!(loop = ev_loop_new(EVFLAG_AUTO)) || !mkdtemp(dir))
    abort();
  snprintf(path, sizeof path, "%s/key.pem", dir);
  if (sfk_ident_load(&ident, path, &created, err, sizeof err) != 0) {
    fprintf(stderr, "fuzz_quic: identity: %s\n", err);
    abort();
  }
  unlink(path);
  rmdir(dir);
  for (size_t i = 0; i < NPEERS; i++) {
    peers[i].pid = i == 0 ? 1 : 3;
    v4(&peers[i].addr, &peers[i].addrlen, i == 0 ? "192.0.2.1" : "192.0.2.3",
       4000);
    memcpy(peers[i].pin, ident.pub.pin, SFK_PIN_SIZE);
  }
  v4(&srcs[0], &srclens[0], "192.0.2.1", 4000);
  v4(&srcs[1], &srclens[1], "192.0.2.3", 4000);
  v4(&srcs[2], &srclens[2], "203.0.113.5", 5555);
  v6(&srcs[3], &srclens[3], "2001:db8::5", 5555);
  host.loop = loop;
}

static const struct sfk_transport_ops *ops(void) {
  return sfkit_proxy_plugin.ops;
}

static struct quic_inst *instance(void) {
  void *self = NULL;
  now = 1000000000000ull;
  if (ops()->base.create(&host, NULL, &self) != 0 || !self)
    abort();
  if (ops()->base.start(self) != 0)
    abort();
  return self;
}

/*
 * The plugin's clock is ours (now_ns), its timers are libev's (real
 * time).  To let time pass, every active timer of the instance (each peer
 * and each connection has one, all one-shot) is moved earlier by the same
 * step; then one loop iteration runs what is due, after the flush that
 * the prepare watcher does.
 */
static void step(struct quic_inst *qi, uint64_t dt) {
  struct quic_peer *p;
  struct quic_conn *qc;
  double d = (double)dt / 1e9;

  now += dt;
  if (dt) {
    TAILQ_FOREACH(p, &qi->peers, link) {
      if (ev_is_active(&p->timer)) {
        double rem = ev_timer_remaining(loop, &p->timer) - d;
        ev_timer_stop(loop, &p->timer);
        ev_timer_set(&p->timer, rem > 0 ? rem : 0., 0.);
        ev_timer_start(loop, &p->timer);
      }
    }
    TAILQ_FOREACH(qc, &qi->conns, link) {
      if (ev_is_active(&qc->timer)) {
        double rem = ev_timer_remaining(loop, &qc->timer) - d;
        ev_timer_stop(loop, &qc->timer);
        ev_timer_set(&qc->timer, rem > 0 ? rem : 0., 0.);
        ev_timer_start(loop, &qc->timer);
      }
    }
  }
  ev_run(loop, EVRUN_NOWAIT);
}

static void finish(struct quic_inst *qi) {
  ops()->base.stop(qi);
  ops()->base.destroy(qi);
  /* Nothing may be left on the loop: ev_run() says whether any watcher
   * is still active (and runs what is due: a stale one shows in ASan). */
  if (ev_run(loop, EVRUN_NOWAIT))
    abort(); /* a watcher outlived its instance */
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
  memcpy(buf + *off, d, n);
  *off += n;
}

/*
 * Seeds: our own client Initial (what start() sends to peer 1) as it
 * would arrive from peer 3, from strangers, twice, on the relay path, and
 * after time passed; with a short-header packet and a punch; the short
 * header alone (a stateless reset is the answer); a version we do not
 * speak (version negotiation is not ours to send: dropped).
 */
static void make_seeds(const char *dir) {
  static uint8_t b[8192];
  size_t n;
  struct quic_inst *qi;
  uint8_t sh[64], vn[64];

  capture = 1;
  qi = instance();
  step(qi, 0);
  step(qi, 0);
  finish(qi);
  capture = 0;
  size_t k = 0;
  while (k < ncap && (cap_len[k] < 1200 || (cap_buf[k][0] & 0xf0) != 0xc0))
    k++; /* the first long-header Initial (a punch may go first) */
  if (k == ncap) {
    fprintf(stderr, "fuzz_quic: no client Initial captured\n");
    abort();
  }
  const uint8_t *ini = cap_buf[k];
  size_t il = cap_len[k];

  memset(sh, 0, sizeof sh);
  sh[0] = 0x40;
  for (size_t i = 1; i < sizeof sh; i++)
    sh[i] = (uint8_t)(i * 37);
  memcpy(vn, ini, sizeof vn);
  vn[1] = 0x1a, vn[2] = 0x2a, vn[3] = 0x3a, vn[4] = 0x4a;

  n = 0, rec(b, &n, 1, ini, il), write_seed(dir, "initial-peer", b, n);
  n = 0, rec(b, &n, 2, ini, il), write_seed(dir, "initial-stranger", b, n);
  n = 0, rec(b, &n, 3, ini, il), write_seed(dir, "initial-v6", b, n);
  n = 0, rec(b, &n, 1 | 4, ini, il), write_seed(dir, "initial-relay", b, n);
  n = 0, rec(b, &n, 1, ini, il), rec(b, &n, 1 | 8 * 4, ini, il);
  write_seed(dir, "initial-twice", b, n);
  n = 0, rec(b, &n, 2, ini, il), rec(b, &n, 2, sh, sizeof sh),
  rec(b, &n, 2 | 8 * 31, (const uint8_t *)QUIC_PUNCH, QUIC_PUNCH_LEN);
  write_seed(dir, "initial-short-punch", b, n);
  n = 0, rec(b, &n, 0, sh, sizeof sh), write_seed(dir, "short-header", b, n);
  n = 0, rec(b, &n, 0, (const uint8_t *)QUIC_PUNCH, QUIC_PUNCH_LEN);
  rec(b, &n, 1, (const uint8_t *)QUIC_PUNCH, QUIC_PUNCH_LEN);
  write_seed(dir, "punch", b, n);
  n = 0, rec(b, &n, 2, vn, sizeof vn), write_seed(dir, "unknown-version", b, n);
  n = 0;
  for (int i = 0; i < 12; i++)
    rec(b, &n, (uint8_t)(2 | (i & 1) | 8), ini, il < 600 ? il : 600);
  write_seed(dir, "truncated-initials", b, n);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  const char *dir = getenv("FUZZ_QUIC_SEEDS");
  (void)argc, (void)argv;
  verbose = getenv("FUZZ_QUIC_LOG") != NULL;
  setup_once();
  if (dir && *dir) {
    make_seeds(dir);
    exit(0);
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct quic_inst *qi = instance();
  size_t off = 0;

  step(qi, 0); /* the dial to peer 1 is due at once */
  while (off + 3 <= size) {
    uint8_t op = data[off];
    size_t len = (size_t)data[off + 1] << 8 | data[off + 2];
    off += 3;
    if (len > size - off)
      len = size - off;
    uint8_t *d = malloc(len ? len : 1);
    if (!d)
      abort();
    memcpy(d, data + off, len);
    off += len;
    if (op >> 3)
      step(qi, (uint64_t)(op >> 3) * 50000000ull);
    ops()->on_datagram(qi, op & 4 ? SFK_PATH_RELAY : SFK_PATH_DIRECT,
                       (const struct sockaddr *)&srcs[op & 3], srclens[op & 3],
                       d, len);
    free(d);
    step(qi, 0);
  }
  finish(qi);
  return 0;
}
