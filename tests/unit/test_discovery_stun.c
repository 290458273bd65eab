/*
 * Discovery plugin `stun` against a fake host: a real libev loop, a
 * socket that records what the plugin sends, a resolver for address
 * literals, and responses built with the codec.  Checks the
 * retransmission schedule and failover, matching of responses to
 * transactions, mapping changes, keep-alives, error responses, the
 * report counters, and the probe's verdicts.
 */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "proto/stun.h"
#include "sfkit-proxy/plugin.h"
#include "tap.h"

/* The plugin is compiled into this program. */
extern const struct sfk_plugin_desc sfkit_proxy_plugin;

#define MAX_SENT 64

struct sent {
  struct sockaddr_in to;
  uint8_t buf[128];
  size_t len;
  double at; /* loop time */
};

struct pending_resolve {
  int used;
  ev_timer t;
  struct sockaddr_in addr;
  int ok;
  sfk_resolve_cb cb;
  void *arg;
};

struct fake {
  struct sfk_host host;
  struct ev_loop *loop;
  struct sfk_cfg_doc *doc;
  struct sent sent[MAX_SENT];
  size_t nsent;
  uint8_t rnd;
  struct sockaddr_storage mapping;
  unsigned nmapping;
  char mapping_server[128];
  struct sfk_probe_result probe;
  unsigned nprobe, nnat;
  struct pending_resolve res[8];
  char report[2048];
};

static struct fake *F(const struct sfk_host *h) {
  return h->core;
}

static uint64_t f_now(const struct sfk_host *h) {
  return (uint64_t)(ev_now(F(h)->loop) * 1e9);
}
static int f_log_enabled(const struct sfk_host *h, int level) {
  (void)h;
  return level <= SFK_LOG_DEBUG;
}
static void f_log(const struct sfk_host *h, int level, const char *fmt, ...)
    SFK_PRINTF(3, 4);
static void f_log(const struct sfk_host *h, int level, const char *fmt, ...) {
  va_list ap;
  (void)h;
  printf("# [%d] ", level);
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  printf("\n");
}
static int f_cfg_type(const struct sfk_cfg_node *n) {
  return sfk_cfg_type(n);
}
static const struct sfk_cfg_node *f_cfg_get(const struct sfk_cfg_node *m,
                                            const char *k) {
  return sfk_cfg_get(m, k);
}
static size_t f_cfg_len(const struct sfk_cfg_node *n) {
  return sfk_cfg_len(n);
}
static const struct sfk_cfg_node *f_cfg_at(const struct sfk_cfg_node *n,
                                           size_t i) {
  return sfk_cfg_at(n, i);
}
static const char *f_cfg_scalar(const struct sfk_cfg_node *n) {
  return sfk_cfg_scalar(n);
}
static void f_cfg_error(const struct sfk_host *h, const struct sfk_cfg_node *n,
                        const char *fmt, ...) SFK_PRINTF(3, 4);
static void f_cfg_error(const struct sfk_host *h, const struct sfk_cfg_node *n,
                        const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  sfk_cfg_verror(F(h)->doc, n, fmt, ap);
  va_end(ap);
}
static int f_cfg_uint(const struct sfk_host *h, const struct sfk_cfg_node *map,
                      const char *key, uint64_t min, uint64_t max, uint64_t def,
                      uint64_t *out) {
  return sfk_cfg_uint(F(h)->doc, map, key, min, max, def, out);
}
static int f_cfg_duration(const struct sfk_host *h,
                          const struct sfk_cfg_node *map, const char *key,
                          uint64_t def, uint64_t *out) {
  return sfk_cfg_duration_ms(F(h)->doc, map, key, def, out);
}

static int f_udp_send(const struct sfk_host *h, int path,
                      const struct sockaddr *to, socklen_t tolen,
                      const uint8_t *buf, size_t len, size_t gso) {
  struct fake *f = F(h);
  if (path != SFK_PATH_DIRECT || gso || to->sa_family != AF_INET ||
      tolen < sizeof(struct sockaddr_in) || len > sizeof f->sent[0].buf ||
      f->nsent >= MAX_SENT)
    return -EINVAL;
  struct sent *s = &f->sent[f->nsent++];
  memcpy(&s->to, to, sizeof s->to);
  memcpy(s->buf, buf, len);
  s->len = len;
  s->at = ev_now(f->loop);
  return 0;
}

static int f_udp_local(const struct sfk_host *h, struct sockaddr_storage *out,
                       socklen_t *outlen) {
  (void)h;
  struct sockaddr_in *in = (struct sockaddr_in *)out;
  memset(out, 0, sizeof *out);
  in->sin_family = AF_INET;
  in->sin_port = htons(5000);
  inet_pton(AF_INET, "192.168.1.10", &in->sin_addr);
  *outlen = sizeof *in;
  return 0;
}

static void res_cb(struct ev_loop *loop, ev_timer *w, int revents) {
  struct pending_resolve *r = w->data;
  (void)loop;
  (void)revents;
  r->used = 0;
  struct sfk_addr a = {.len = sizeof r->addr};
  memcpy(&a.ss, &r->addr, sizeof r->addr);
  r->cb(r->arg, r->ok ? 0 : -ENOENT, r->ok ? &a : NULL, r->ok ? 1 : 0);
}

/* Address literals only; the answer comes from the loop, as promised. */
static int f_resolve(const struct sfk_host *h, const char *name, uint16_t port,
                     int family, sfk_resolve_cb cb, void *arg,
                     struct sfk_resolve **out) {
  struct fake *f = F(h);
  (void)family;
  for (size_t i = 0; i < 8; i++) {
    struct pending_resolve *r = &f->res[i];
    if (r->used)
      continue;
    memset(r, 0, sizeof *r);
    r->used = 1;
    r->addr.sin_family = AF_INET;
    r->addr.sin_port = htons(port);
    r->ok = inet_pton(AF_INET, name, &r->addr.sin_addr) == 1;
    r->cb = cb;
    r->arg = arg;
    ev_timer_init(&r->t, res_cb, 0., 0.);
    r->t.data = r;
    ev_timer_start(f->loop, &r->t);
    *out = (struct sfk_resolve *)r;
    return 0;
  }
  return -ENOMEM;
}

static void f_resolve_cancel(const struct sfk_host *h, struct sfk_resolve *q) {
  struct pending_resolve *r = (struct pending_resolve *)q;
  ev_timer_stop(F(h)->loop, &r->t);
  r->used = 0;
}

static int f_random(const struct sfk_host *h, void *buf, size_t len) {
  struct fake *f = F(h);
  uint8_t *p = buf;
  for (size_t i = 0; i < len; i++)
    p[i] = (uint8_t)(++f->rnd * 37u);
  return 0;
}

static void f_mapping_changed(const struct sfk_host *h,
                              const struct sockaddr *addr, socklen_t len,
                              const char *server) {
  struct fake *f = F(h);
  memcpy(&f->mapping, addr, len);
  f->nmapping++;
  snprintf(f->mapping_server, sizeof f->mapping_server, "%s", server);
}

static void f_nat_found(const struct sfk_host *h,
                        const struct sfk_probe_result *r) {
  F(h)->nnat++;
  F(h)->probe = *r;
}

/* Report emitter: "key=value " pairs appended to f->report. */
static void rep_begin(struct sfk_report *r, const char *key, int list) {
  (void)r, (void)key, (void)list;
}
static void rep_end(struct sfk_report *r) {
  (void)r;
}
static void rep_str(struct sfk_report *r, const char *key, const char *val) {
  struct fake *f = r->ctx;
  size_t n = strlen(f->report);
  snprintf(f->report + n, sizeof f->report - n, "%s=%s ", key, val);
}
static void rep_num(struct sfk_report *r, const char *key, int64_t val) {
  struct fake *f = r->ctx;
  size_t n = strlen(f->report);
  snprintf(f->report + n, sizeof f->report - n, "%s=%lld ", key,
           (long long)val);
}

static const struct sfk_discovery_ops *ops(void) {
  return sfkit_proxy_plugin.ops;
}

static void fake_init(struct fake *f, const char *yaml) {
  memset(f, 0, sizeof *f);
  f->loop = ev_loop_new(EVFLAG_AUTO);
  f->doc = sfk_cfg_load_string("test.yaml", yaml, strlen(yaml), stdout);
  f->host = (struct sfk_host){
      .abi = SFK_ABI_VERSION,
      .size = sizeof(struct sfk_host),
      .core = f,
      .loop = f->loop,
      .instance = "discovery.stun",
      .now_ns = f_now,
      .log_enabled = f_log_enabled,
      .log = f_log,
      .cfg_type = f_cfg_type,
      .cfg_get = f_cfg_get,
      .cfg_len = f_cfg_len,
      .cfg_at = f_cfg_at,
      .cfg_scalar = f_cfg_scalar,
      .cfg_error = f_cfg_error,
      .cfg_uint = f_cfg_uint,
      .cfg_duration_ms = f_cfg_duration,
      .udp_send = f_udp_send,
      .udp_local = f_udp_local,
      .resolve = f_resolve,
      .resolve_cancel = f_resolve_cancel,
      .random = f_random,
      .mapping_changed = f_mapping_changed,
      .nat_found = f_nat_found,
  };
}

static void fake_free(struct fake *f) {
  sfk_cfg_doc_del(f->doc);
  ev_loop_destroy(f->loop);
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop, (void)w, (void)revents;
}

/* Run the loop until cond(f) holds or `limit` seconds pass. */
static int run_until(struct fake *f, int (*cond)(struct fake *), double limit) {
  ev_timer tick;
  ev_timer_init(&tick, tick_cb, 0.005, 0.005);
  ev_timer_start(f->loop, &tick);
  ev_now_update(f->loop);
  double end = ev_now(f->loop) + limit;
  int ok;
  while (!(ok = cond(f)) && ev_now(f->loop) < end)
    ev_run(f->loop, EVRUN_ONCE);
  ev_timer_stop(f->loop, &tick);
  return ok;
}

static size_t want_sent;
static int sent_enough(struct fake *f) {
  return f->nsent >= want_sent;
}
static int wait_sent(struct fake *f, size_t n) {
  want_sent = n;
  return run_until(f, sent_enough, 5.);
}

static void sin4(struct sockaddr_in *in, const char *ip, uint16_t port) {
  memset(in, 0, sizeof *in);
  in->sin_family = AF_INET;
  in->sin_port = htons(port);
  inet_pton(AF_INET, ip, &in->sin_addr);
}

static int to_is(const struct sent *s, const char *ip, uint16_t port) {
  struct sockaddr_in x;
  sin4(&x, ip, port);
  return s->to.sin_port == x.sin_port &&
         s->to.sin_addr.s_addr == x.sin_addr.s_addr;
}

/* Options of a scripted answer. */
#define A_MAPPED_ONLY 1 /* MAPPED-ADDRESS instead of XOR-MAPPED-ADDRESS */
#define A_BAD_FP 2      /* corrupt the FINGERPRINT */
#define A_OTHER_TID 4   /* a transaction id nobody asked for */
#define A_ERROR 8       /* a 500 error response */

/* Answer the request s with mapped ip:port (and OTHER-ADDRESS other, or
 * NULL), handing the response to the plugin. */
static void answer(struct fake *f, void *self, const struct sent *s,
                   const char *ip, uint16_t port, const char *other,
                   int flags) {
  struct stun_msg req;
  if (stun_parse(&req, s->buf, s->len) < 0)
    abort();
  uint8_t tid[STUN_TID_LEN], buf[256];
  memcpy(tid, req.tid, sizeof tid);
  if (flags & A_OTHER_TID)
    tid[0] ^= 0xff;
  struct stun_writer w;
  struct sockaddr_in m, o;
  sin4(&m, ip, port);
  stun_enc_init(
      &w, buf, sizeof buf,
      stun_type(STUN_BINDING, flags & A_ERROR ? STUN_ERROR : STUN_SUCCESS),
      tid);
  if (flags & A_ERROR)
    stun_enc_error(&w, 500, "Server Error");
  else if (flags & A_MAPPED_ONLY)
    stun_enc_addr(&w, STUN_A_MAPPED_ADDRESS, (struct sockaddr *)&m, sizeof m);
  else
    stun_enc_xaddr(&w, STUN_A_XOR_MAPPED_ADDRESS, (struct sockaddr *)&m,
                   sizeof m);
  if (other) {
    char h[64];
    snprintf(h, sizeof h, "%s", other);
    char *colon = strchr(h, ':');
    *colon = 0;
    sin4(&o, h, (uint16_t)atoi(colon + 1));
    stun_enc_addr(&w, STUN_A_OTHER_ADDRESS, (struct sockaddr *)&o, sizeof o);
  }
  stun_enc_fingerprint(&w);
  if (flags & A_BAD_FP)
    buf[stun_enc_len(&w) - 1] ^= 1;
  (void)f;
  ops()->on_datagram(self, (struct sockaddr *)&s->to, sizeof s->to, buf,
                     stun_enc_len(&w));
}

static uint32_t change_flags(const struct sent *s) {
  struct stun_msg m;
  struct stun_attr a;
  uint32_t v = 0;
  if (stun_parse(&m, s->buf, s->len) == 0 &&
      stun_find(&m, STUN_A_CHANGE_REQUEST, &a) == 0)
    stun_attr_u32(&a, &v);
  return v;
}

static int mapped_is(struct fake *f, const char *ip, uint16_t port) {
  struct sockaddr_in x;
  const struct sockaddr_in *m = (const struct sockaddr_in *)&f->mapping;
  sin4(&x, ip, port);
  return m->sin_family == AF_INET && m->sin_port == x.sin_port &&
         m->sin_addr.s_addr == x.sin_addr.s_addr;
}

static int natted(struct fake *f) {
  return f->nnat > 0;
}

static void test_discovery(void) {
  struct fake f;
  fake_init(&f, "servers: [\"stun:192.0.2.1\", \"192.0.2.2:3479\"]\n"
                "rto: 20ms\nattempts: 4\nkeepalive: 150ms\n");
  void *self = NULL;
  const struct sfk_cfg_node *root = sfk_cfg_root(f.doc);
  is_int(ops()->base.create(&f.host, root, &self), 0, "create");
  is_int(ops()->base.start(self), 0, "start");
  ok(wait_sent(&f, 5), "4 requests to the silent server, then the next");
  int first_ok = 1, schedule_ok = 1;
  for (size_t i = 0; i < 4; i++) {
    first_ok &= to_is(&f.sent[i], "192.0.2.1", 3478);
    /* Timers never fire early: each wait is at least RTO * 2^(i-1). */
    if (i)
      schedule_ok &=
          f.sent[i].at - f.sent[i - 1].at >= 0.020 * (1 << (i - 1)) - 0.001;
  }
  ok(first_ok, "the first four go to stun:192.0.2.1 on the default port 3478");
  ok(schedule_ok, "the retransmission timeout doubles (20, 40, 80 ms)");
  ok(f.sent[4].at - f.sent[3].at >= 0.160 - 0.001,
     "the last wait is 8 RTO before failing over");
  ok(to_is(&f.sent[4], "192.0.2.2", 3479), "failover to the second server");
  is_int(f.nmapping, 0, "no mapping yet");

  /* A stray answer, one with a bad fingerprint, then the real one. */
  answer(&f, self, &f.sent[4], "198.51.100.1", 1111, NULL, A_OTHER_TID);
  answer(&f, self, &f.sent[4], "198.51.100.2", 2222, NULL, A_BAD_FP);
  is_int(f.nmapping, 0, "stray and bad-fingerprint answers are ignored");
  answer(&f, self, &f.sent[4], "203.0.113.5", 40000, NULL, A_MAPPED_ONLY);
  is_int(f.nmapping, 1, "MAPPED-ADDRESS answer reports the mapping");
  ok(mapped_is(&f, "203.0.113.5", 40000), "the mapping is the server's view");
  is_str(f.mapping_server, "192.0.2.2:3479", "named by the configured URI");
  /* A duplicate answer (the request was retransmitted) matches nothing. */
  answer(&f, self, &f.sent[4], "203.0.113.5", 40000, NULL, 0);

  /* Two servers: the light probe at start asks both, then keep-alives. */
  size_t n = f.nsent;
  ok(wait_sent(&f, n + 1), "the start-up probe or a keep-alive goes out");
  /* Answer everything to the second server with a new mapping; the
   * first stays silent. */
  int saw_keepalive = 0;
  for (int round = 0; round < 40 && f.nmapping < 2; round++) {
    for (size_t i = n; i < f.nsent; i++)
      if (to_is(&f.sent[i], "192.0.2.2", 3479)) {
        answer(&f, self, &f.sent[i], "203.0.113.5", 40001, NULL, 0);
        saw_keepalive = 1;
      }
    n = f.nsent;
    wait_sent(&f, n + 1);
  }
  ok(saw_keepalive, "Binding requests keep going to the current server");
  is_int(f.nmapping, 2, "a changed mapping is reported again");
  ok(mapped_is(&f, "203.0.113.5", 40001), "with the new port");

  ok(run_until(&f, natted, 2.), "the start-up probe reports the NAT");
  is_int(f.probe.mapping, SFK_NAT_UNKNOWN,
         "one of two servers answered: mapping behaviour unknown");

  /* An error response fails over (back to the first server). */
  n = f.nsent;
  for (int round = 0; round < 40; round++) {
    wait_sent(&f, n + 1);
    size_t i = n;
    for (; i < f.nsent; i++)
      if (to_is(&f.sent[i], "192.0.2.2", 3479) && !change_flags(&f.sent[i]))
        break;
    n = f.nsent;
    if (i < f.nsent) {
      answer(&f, self, &f.sent[i], "0.0.0.0", 0, NULL, A_ERROR);
      break;
    }
  }
  ok(wait_sent(&f, n + 1) && to_is(&f.sent[f.nsent - 1], "192.0.2.1", 3478),
     "an error response moves on to the next server");

  /* Bind to the first server, then recheck: a request at once, none
   * while it is in flight, none again within a second. */
  answer(&f, self, &f.sent[f.nsent - 1], "203.0.113.5", 40001, NULL, 0);
  n = f.nsent;
  is_int(ops()->recheck(self), 0, "recheck starts a request");
  is_int(f.nsent, n + 1, "at once");
  is_int(ops()->recheck(self), -EALREADY, "not while one is in flight");
  answer(&f, self, &f.sent[f.nsent - 1], "203.0.113.5", 40001, NULL, 0);
  is_int(ops()->recheck(self), -EAGAIN, "nor twice within a second");

  ops()->base.report(self, &(struct sfk_report){.ctx = &f,
                                                .begin = rep_begin,
                                                .end = rep_end,
                                                .str = rep_str,
                                                .num = rep_num});
  printf("# report: %s\n", f.report);
  ok(strstr(f.report, "mapping=203.0.113.5:40001 ") != NULL,
     "report: the mapping");
  ok(strstr(f.report, "retransmits=0 ") == NULL, "report: retransmits counted");
  ok(strstr(f.report, "dropped=0 ") == NULL, "report: drops counted");
  ok(strstr(f.report, "failovers=0 ") == NULL, "report: failovers counted");
  ok(strstr(f.report, "error_responses=1 ") != NULL, "report: one error");
  ops()->base.stop(self);
  size_t after = f.nsent;
  ev_run(f.loop, EVRUN_NOWAIT);
  is_int(f.nsent, after, "nothing is sent after stop");
  ops()->base.destroy(self);
  fake_free(&f);
}

static void probe_done(void *arg, const struct sfk_probe_result *r) {
  struct fake *f = arg;
  f->probe = *r;
  f->nprobe++;
}
static int probed(struct fake *f) {
  return f->nprobe > 0;
}

/* Run a probe answering with answer_fn until it reports. */
typedef void (*answer_fn)(struct fake *f, void *self, const struct sent *s);

static void run_probe(struct fake *f, const char *yaml, answer_fn fn) {
  void *self = NULL;
  fake_init(f, yaml);
  if (ops()->base.create(&f->host, sfk_cfg_root(f->doc), &self) < 0)
    abort();
  is_int(ops()->probe(self, probe_done, f), 0, "probe starts");
  size_t done = 0;
  for (int round = 0; round < 200 && !f->nprobe; round++) {
    for (; done < f->nsent; done++)
      fn(f, self, &f->sent[done]);
    want_sent = f->nsent + 1;
    run_until(f, sent_enough, 0.05);
    if (!f->nprobe)
      run_until(f, probed, 0.001);
  }
  ops()->base.stop(self);
  ops()->base.destroy(self);
}

/* A NAT whose mapping depends on the destination address. */
static void ans_symmetric(struct fake *f, void *self, const struct sent *s) {
  answer(f, self, s, "203.0.113.5", to_is(s, "192.0.2.1", 3478) ? 1000 : 2000,
         NULL, 0);
}

/* An endpoint-independent NAT behind an RFC 5780 server at 192.0.2.1
 * (alternate 192.0.2.9:3479) that filters nothing. */
static void ans_rfc5780(struct fake *f, void *self, const struct sent *s) {
  answer(f, self, s, "203.0.113.5", 7000, "192.0.2.9:3479", 0);
}

/* Same, but the NAT filters by address and port: CHANGE-REQUEST answers
 * never arrive. */
static void ans_filtering(struct fake *f, void *self, const struct sent *s) {
  if (change_flags(s))
    return;
  answer(f, self, s, "203.0.113.5", 7000, "192.0.2.9:3479", 0);
}

/* RFC 5780 server; the mapping changes with the destination port. */
static void ans_port_dep(struct fake *f, void *self, const struct sent *s) {
  uint16_t port = 7000;
  if (to_is(s, "192.0.2.9", 3478))
    port = 7001;
  else if (to_is(s, "192.0.2.9", 3479))
    port = 7002;
  answer(f, self, s, "203.0.113.5", port, "192.0.2.9:3479", 0);
}

static void test_probe(void) {
  struct fake f;
  run_probe(&f,
            "servers: [\"192.0.2.1:3478\", \"192.0.2.2:3478\"]\nrto: 10ms\n",
            ans_symmetric);
  is_int(f.nprobe, 1, "two servers: the probe reports once");
  is_int(f.probe.mapping, SFK_NAT_ADDRESS_DEPENDENT,
         "different mappings for different servers: address-dependent");
  is_int(f.probe.direct_expected, 0, "no direct connections expected");
  is_int(f.probe.nobs, 2, "two observations");
  fake_free(&f);

  run_probe(&f, "servers: [\"192.0.2.1:3478\"]\nrto: 10ms\n", ans_rfc5780);
  is_int(f.probe.mapping, SFK_NAT_ENDPOINT_INDEPENDENT,
         "RFC 5780: same mapping via the alternate address");
  is_int(f.probe.filtering, SFK_NAT_ENDPOINT_INDEPENDENT,
         "CHANGE-REQUEST answered: endpoint-independent filtering");
  is_int(f.probe.direct_expected, 1, "direct connections expected");
  ok(f.probe.nobs >= 3 && f.probe.obs[1].server_addr.ss_family == AF_INET &&
         ((struct sockaddr_in *)&f.probe.obs[1].server_addr)->sin_port ==
             htons(3478),
     "test II goes to the alternate IP on the primary port");
  fake_free(&f);

  run_probe(&f, "servers: [\"192.0.2.1:3478\"]\nrto: 10ms\n", ans_filtering);
  is_int(f.probe.mapping, SFK_NAT_ENDPOINT_INDEPENDENT, "mapping as before");
  is_int(f.probe.filtering, SFK_NAT_ADDRESS_PORT_DEPENDENT,
         "no CHANGE-REQUEST answer: address-and-port-dependent filtering");
  fake_free(&f);

  run_probe(&f, "servers: [\"192.0.2.1:3478\"]\nrto: 10ms\n", ans_port_dep);
  is_int(f.probe.mapping, SFK_NAT_ADDRESS_PORT_DEPENDENT,
         "RFC 5780: the port changes with the destination port");
  is_int(f.probe.direct_expected, 0, "relay needed");
  fake_free(&f);

  run_probe(
      &f, "servers: [\"192.0.2.1:3478\", \"nonexistent.invalid\"]\nrto: 10ms\n",
      ans_symmetric);
  is_int(f.probe.mapping, SFK_NAT_UNKNOWN,
         "one vantage point (the other name does not resolve): unknown");
  is_int(f.probe.err, 0, "but an answer came");
  fake_free(&f);
}

static void test_config(void) {
  static const char *const bad[] = {
      "servers: []\n",
      "keepalive: 25s\n",
      "servers: [\"stuns:x\"]\n",
      "servers: [\"x:99999\"]\n",
      "servers: [\"stun:[::1\"]\n",
      "servers: [\"a\"]\nrto: 1ms\n",
      "servers: [\"a\"]\nattempts: 11\n",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    struct fake f;
    void *self = NULL;
    fake_init(&f, bad[i]);
    int rc = ops()->base.create(&f.host, sfk_cfg_root(f.doc), &self);
    ok(rc == -EINVAL && sfk_cfg_errors(f.doc) > 0, "refused: %.*s",
       (int)strcspn(bad[i], "\n"), bad[i]);
    fake_free(&f);
  }
  struct fake f;
  void *self = NULL;
  fake_init(&f, "servers: [\"stun:[2001:db8::1]:3480\", \"h.example:1\"]\n");
  is_int(ops()->base.create(&f.host, sfk_cfg_root(f.doc), &self), 0,
         "IPv6 in brackets and host:port accepted");
  ops()->base.destroy(self);
  fake_free(&f);
}

int main(void) {
  ok(sfkit_proxy_plugin.abi == SFK_ABI_VERSION &&
         sfkit_proxy_plugin.kind == SFK_KIND_DISCOVERY &&
         strcmp(sfkit_proxy_plugin.name, "stun") == 0,
     "descriptor");
  test_config();
  test_discovery();
  test_probe();
  return tap_done();
}
