/*
 * Discovery plugin `stun`: learns the public UDP mapping of the daemon's
 * one socket from STUN servers (RFC 8489 Binding), keeps the NAT binding
 * alive, reports every change, and probes the NAT's behaviour (RFC 5780)
 * for netcheck and the relay policy.
 *
 *   discovery:
 *     plugin: stun
 *     servers: ["stun:stun.l.google.com:19302", "stun.example.org:3478"]
 *     keepalive: 25s   # a Binding request to the current server this often
 *     rto: 500ms       # first retransmission timeout (doubles each time)
 *     attempts: 4      # requests per transaction before failing over
 *
 * Servers are tried in order; an unanswered or failing one hands over to
 * the next (after its other addresses, if its name has several), and a
 * name is resolved again after its server failed.  Every request goes out
 * on the daemon's socket (host->udp_send, direct path); responses are
 * matched to outstanding transactions by their 96-bit random id, anything
 * else is dropped and counted.
 *
 * Retransmission (RFC 8489 6.2.1) with a shorter tail: the RFC's Rc = 7
 * requests and a final wait of 16 RTO take 39.5 s before a client may
 * give up; here `attempts` requests (default 4) at RTO, 2 RTO, 4 RTO and a
 * last wait of 8 RTO give up after 7.5 s, because the peers wait for our
 * published mapping and a dead first server must not hold it up for
 * long.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/sockaddr.h"
#include "proto/stun.h"
#include "sfkit-proxy/plugin.h"

#define MAX_SERVERS 8
#define MAX_ADDRS 4 /* addresses kept per resolved name */
#define NTXN 12     /* transactions in flight: 1 main + probe steps */
#define TXN_MAIN 0
#define REQ_MAX 64 /* a Binding request with CHANGE-REQUEST, FINGERPRINT */
#define URI_MAX 128
#define HOST_MAX 256
#define FILTER_ATTEMPTS 3 /* filtering tests expect silence: give up sooner */

enum state {
  ST_IDLE = 0,  /* not started, or stopped */
  ST_RESOLVING, /* waiting for the current server's name */
  ST_BINDING,   /* first Binding to the current server in flight */
  ST_BOUND,     /* mapping known; keep-alives running */
  ST_RETRY      /* every server failed; waiting to start over */
};

static const char *const state_names[] = {"idle", "resolving", "binding",
                                          "bound", "retrying"};

struct disc;

struct server {
  struct disc *d;      /* back pointer, for the resolver's callback */
  size_t idx;          /* index in d->srv */
  char uri[URI_MAX];   /* as configured, for messages and upcalls */
  char host[HOST_MAX]; /* name or address literal */
  uint16_t port;
  struct sfk_addr addr[MAX_ADDRS]; /* resolved; naddr 0 = resolve again */
  size_t naddr;
  size_t ai;               /* the address in use */
  struct sfk_resolve *res; /* pending resolution, or NULL */
};

struct txn;

/* Completion of a transaction: err 0 with the response (m, from), or a
 * negative errno (-ETIMEDOUT no answer, -EPROTO error response, with m).
 * Called with the transaction already inactive. */
typedef void (*txn_done_fn)(struct disc *d, struct txn *t, int err,
                            const struct stun_msg *m);

struct txn {
  struct disc *d;
  int active;
  uint8_t tid[STUN_TID_LEN];
  struct sockaddr_storage to;
  socklen_t tolen;
  uint32_t change;   /* CHANGE-REQUEST flags, 0: none */
  unsigned sent;     /* requests so far */
  unsigned attempts; /* requests before giving up */
  double wait_s;     /* the current wait */
  uint64_t t0_ns;    /* first request, for the RTT */
  uint64_t rtt_us;   /* set on an answer */
  ev_timer timer;
  txn_done_fn done;
  int tag; /* the caller's: server or observation index */
};

/* A NAT probe (netcheck, or the light mapping test at start). */
struct probe {
  int active;
  int filtering;   /* also test filtering (netcheck only) */
  sfk_probe_cb cb; /* NULL: report with host->nat_found */
  void *arg;
  int step;
  unsigned pending;   /* transactions of this step in flight */
  unsigned resolving; /* server names being resolved */
  uint32_t waiting;   /* bit i: the first step waits for srv[i]'s name */
  int last;           /* obs index of the step's request, -1 */
  int primary;        /* obs index of the first server that had
                         OTHER-ADDRESS, -1 none */
  struct sockaddr_storage other; /* its OTHER-ADDRESS */
  socklen_t otherlen;
  uint32_t change_obs;          /* bit i: obs[i] asked for CHANGE-REQUEST (its
                                   answer says nothing of the mapping) */
  struct sockaddr_storage map2; /* mapping seen via the alternate IP */
  socklen_t map2len;
  struct sfk_probe_result r;
};

struct disc {
  const struct sfk_host *host; /* borrowed from the daemon */
  struct server srv[MAX_SERVERS];
  size_t nsrv;
  uint64_t keepalive_ms, rto_ms;
  unsigned attempts;

  enum state state;
  size_t cur;                     /* current server */
  size_t fails_in_row;            /* servers failed since the last answer */
  struct sockaddr_storage mapped; /* ss_family 0 until known */
  socklen_t mappedlen;
  uint64_t last_answer_ns;
  uint64_t last_recheck_ns;
  int probed; /* the light probe at start has run */

  ev_timer keepalive; /* also the retry timer in ST_RETRY */
  struct txn txn[NTXN];
  struct probe probe;

  struct {
    uint64_t requests, responses, retransmits, dropped, failovers, errors,
        changes;
  } n;
};

static const char *const stun_keys[] = {"servers", "keepalive", "rto",
                                        "attempts", NULL};

/* ------------------------------------------------------------------ */
/* Small helpers                                                        */

static void set_port(struct sockaddr_storage *a, uint16_t port) {
  if (a->ss_family == AF_INET)
    ((struct sockaddr_in *)a)->sin_port = htons(port);
  else
    ((struct sockaddr_in6 *)a)->sin6_port = htons(port);
}

/* The socket's family, and whether it is a dual-stack IPv6 wildcard
 * ([::] without IPV6_V6ONLY, Linux's default), which reaches IPv4
 * servers at their v4-mapped addresses. */
static int sock_family(const struct disc *d, int *dual) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  *dual = 0;
  if (d->host->udp_local(d->host, &ss, &len) < 0)
    return AF_UNSPEC;
  if (ss.ss_family != AF_INET6)
    return AF_INET;
  *dual = sa_is_wildcard((struct sockaddr *)&ss);
  return AF_INET6;
}

/* Family for resolving server names: both on a dual-stack socket. */
static int resolve_family(const struct disc *d) {
  int dual, fam = sock_family(d, &dual);
  return dual ? AF_UNSPEC : fam;
}


/* ------------------------------------------------------------------ */
/* Config                                                               */

/*
 * Parse "stun:host[:port]", "host:port", "[v6]:port" into s.  Returns 0
 * or a message for the caller to report.
 */
static const char *parse_uri(const char *uri, struct server *s) {
  const char *p = uri;
  if (strncmp(p, "stuns:", 6) == 0)
    return "stuns: (STUN over TLS) is not supported; use stun:";
  if (strncmp(p, "turn:", 5) == 0 || strncmp(p, "turns:", 6) == 0)
    return "a TURN URI is not a STUN server (the relay takes turn: URIs)";
  if (strncmp(p, "stun:", 5) == 0)
    p += 5;
  if (strlen(uri) >= URI_MAX)
    return "server URI too long";
  const char *host = p, *colon;
  size_t hlen;
  if (*p == '[') {
    const char *close = strchr(p, ']');
    if (!close)
      return "missing ']' after an IPv6 address";
    host = p + 1;
    hlen = (size_t)(close - host);
    colon = close[1] == ':' ? close + 1 : NULL;
    if (close[1] && !colon)
      return "unexpected text after ']'";
  } else {
    colon = strrchr(p, ':');
    if (colon && strchr(p, ':') != colon)
      return "an IPv6 address must be written in brackets: [addr]:port";
    hlen = colon ? (size_t)(colon - p) : strlen(p);
  }
  if (hlen == 0 || hlen >= HOST_MAX)
    return "missing or overlong host name";
  memcpy(s->host, host, hlen);
  s->host[hlen] = 0;
  for (size_t i = 0; i < hlen; i++)
    if (s->host[i] == '/' || s->host[i] == '?' || s->host[i] == ' ')
      return "unexpected character in the host name";
  s->port = 3478;
  if (colon) {
    char *end;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (!colon[1] || *end || port == 0 || port > 65535)
      return "port must be 1-65535";
    s->port = (uint16_t)port;
  }
  snprintf(s->uri, sizeof s->uri, "%s", uri);
  return NULL;
}

static int parse_config(const struct sfk_host *h,
                        const struct sfk_cfg_node *cfg, struct disc *d) {
  int bad = 0;
  const struct sfk_cfg_node *list = cfg ? h->cfg_get(cfg, "servers") : NULL;
  if (!list) {
    h->cfg_error(h, cfg,
                 "discovery 'stun' needs 'servers', a list of "
                 "stun:host[:port] URIs");
    return -EINVAL;
  }
  if (h->cfg_type(list) != SFK_CFG_SEQ || h->cfg_len(list) == 0) {
    h->cfg_error(h, list,
                 "'servers' must be a non-empty list of "
                 "stun:host[:port] URIs");
    return -EINVAL;
  }
  if (h->cfg_len(list) > MAX_SERVERS) {
    h->cfg_error(h, list, "too many servers (at most %d)", MAX_SERVERS);
    return -EINVAL;
  }
  d->nsrv = h->cfg_len(list);
  for (size_t i = 0; i < d->nsrv; i++) {
    const struct sfk_cfg_node *e = h->cfg_at(list, i);
    const char *v = h->cfg_scalar(e);
    const char *why =
        v ? parse_uri(v, &d->srv[i]) : "a server must be a string";
    if (why) {
      h->cfg_error(h, e, "%s", why);
      bad = 1;
    }
  }
  uint64_t att = 4;
  if (h->cfg_duration_ms(h, cfg, "keepalive", 25000, &d->keepalive_ms) < 0 ||
      h->cfg_duration_ms(h, cfg, "rto", 500, &d->rto_ms) < 0 ||
      h->cfg_uint(h, cfg, "attempts", 1, 10, 4, &att) < 0)
    bad = 1;
  if (!bad && (d->keepalive_ms < 100 || d->keepalive_ms > 3600000)) {
    h->cfg_error(h, h->cfg_get(cfg, "keepalive"),
                 "keepalive must be between 100ms and 1h (NATs forget "
                 "idle UDP bindings after about 30 s)");
    bad = 1;
  }
  if (!bad && (d->rto_ms < 10 || d->rto_ms > 10000)) {
    h->cfg_error(h, h->cfg_get(cfg, "rto"), "rto must be between 10ms and 10s");
    bad = 1;
  }
  d->attempts = (unsigned)att;
  return bad ? -EINVAL : 0;
}

/* ------------------------------------------------------------------ */
/* Transactions                                                         */

static int txn_send(struct txn *t) {
  struct disc *d = t->d;
  uint8_t buf[REQ_MAX];
  struct stun_writer w;
  int rc = stun_enc_init(&w, buf, sizeof buf,
                         stun_type(STUN_BINDING, STUN_REQUEST), t->tid);
  if (rc == 0 && t->change)
    rc = stun_enc_u32(&w, STUN_A_CHANGE_REQUEST, t->change);
  if (rc == 0)
    rc = stun_enc_fingerprint(&w);
  if (rc < 0)
    return rc;
  t->sent++;
  d->n.requests++;
  if (t->sent > 1)
    d->n.retransmits++;
  rc = d->host->udp_send(d->host, SFK_PATH_DIRECT, (struct sockaddr *)&t->to,
                         t->tolen, buf, stun_enc_len(&w), 0);
  /* A full socket buffer or an unreachable network is like a lost
   * request: the retransmission timer covers it. */
  if (rc < 0 && d->host->log_enabled(d->host, SFK_LOG_DEBUG)) {
    char a[64];
    d->host->log(d->host, SFK_LOG_DEBUG, "Binding request to %s not sent: %s",
                 sa_str((struct sockaddr *)&t->to, a, sizeof a),
                 strerror(-rc));
  }
  return 0;
}

static void txn_finish(struct txn *t, int err, const struct stun_msg *m) {
  struct disc *d = t->d;
  ev_timer_stop(d->host->loop, &t->timer);
  t->active = 0;
  t->done(d, t, err, m);
}

static void txn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents) {
  struct txn *t = w->data;
  (void)loop;
  (void)revents;
  if (t->sent >= t->attempts) {
    txn_finish(t, -ETIMEDOUT, NULL);
    return;
  }
  txn_send(t);
  t->wait_s *= 2;
  ev_timer_set(&t->timer, t->wait_s, 0.);
  ev_timer_start(t->d->host->loop, &t->timer);
}

/* A free transaction slot other than the main one, or NULL. */
static struct txn *txn_slot(struct disc *d) {
  for (size_t i = TXN_MAIN + 1; i < NTXN; i++)
    if (!d->txn[i].active)
      return &d->txn[i];
  return NULL;
}

/* Start a Binding transaction on t to `to`. */
static int txn_start(struct disc *d, struct txn *t, const struct sockaddr *to,
                     socklen_t tolen, uint32_t change, unsigned attempts,
                     txn_done_fn done, int tag) {
  int rc = d->host->random(d->host, t->tid, sizeof t->tid);
  if (rc < 0)
    return rc;
  if (tolen > sizeof t->to)
    return -EINVAL;
  memcpy(&t->to, to, tolen);
  t->tolen = tolen;
  t->d = d;
  t->change = change;
  t->sent = 0;
  t->attempts = attempts;
  t->wait_s = (double)d->rto_ms / 1000.;
  t->t0_ns = d->host->now_ns(d->host);
  t->rtt_us = 0;
  t->done = done;
  t->tag = tag;
  t->active = 1;
  ev_timer_init(&t->timer, txn_timer_cb, t->wait_s, 0.);
  t->timer.data = t;
  ev_timer_start(d->host->loop, &t->timer);
  return txn_send(t);
}

static void txn_cancel_all(struct disc *d) {
  for (size_t i = 0; i < NTXN; i++)
    if (d->txn[i].active) {
      ev_timer_stop(d->host->loop, &d->txn[i].timer);
      d->txn[i].active = 0;
    }
}

/* ------------------------------------------------------------------ */
/* Discovery: bind, keep alive, fail over                                */

static void bind_current(struct disc *d);
static void probe_begin(struct disc *d, int filtering, sfk_probe_cb cb,
                        void *arg);

static void log_error_response(struct disc *d, const char *uri,
                               const struct stun_msg *m) {
  struct stun_attr a;
  int code = 0;
  const uint8_t *reason = NULL;
  size_t rlen = 0;
  if (m && stun_find(m, STUN_A_ERROR_CODE, &a) == 0)
    stun_attr_error(&a, &code, &reason, &rlen);
  if (rlen > 100)
    rlen = 100;
  d->host->log(d->host, SFK_LOG_WARN, "%s answered with error %d %.*s", uri,
               code, (int)rlen, reason ? (const char *)reason : "");
}

static void arm_keepalive(struct disc *d, double after_s) {
  ev_timer_stop(d->host->loop, &d->keepalive);
  ev_timer_set(&d->keepalive, after_s, 0.);
  ev_timer_start(d->host->loop, &d->keepalive);
}

/* The current server failed: its next address, else the next server. */
static void fail_over(struct disc *d, const char *why) {
  struct server *s = &d->srv[d->cur];
  d->host->log(d->host, SFK_LOG_WARN, "STUN server %s: %s", s->uri, why);
  d->n.failovers++;
  if (s->naddr && s->ai + 1 < s->naddr) {
    s->ai++;
    bind_current(d);
    return;
  }
  s->naddr = 0; /* resolve again next time: the name may have moved */
  d->cur = (d->cur + 1) % d->nsrv;
  if (++d->fails_in_row >= d->nsrv) {
    double retry = (double)d->keepalive_ms / 1000.;
    if (retry > 10.)
      retry = 10.;
    d->host->log(d->host, SFK_LOG_WARN,
                 "no STUN server answered; trying again in %.1f s", retry);
    d->fails_in_row = 0;
    d->state = ST_RETRY;
    arm_keepalive(d, retry);
    return;
  }
  bind_current(d);
}

static void main_done(struct disc *d, struct txn *t, int err,
                      const struct stun_msg *m) {
  struct server *s = &d->srv[d->cur];
  if (d->state == ST_IDLE)
    return;
  if (err == -EPROTO) {
    log_error_response(d, s->uri, m);
    fail_over(d, "error response");
    return;
  }
  if (err < 0) {
    fail_over(d, "no answer");
    return;
  }
  struct sockaddr_storage ss;
  socklen_t len = 0;
  int rc = stun_mapped_addr(m, &ss, &len);
  if (rc < 0) {
    fail_over(d, "answer without a usable (XOR-)MAPPED-ADDRESS");
    return;
  }
  if (d->host->log_enabled(d->host, SFK_LOG_DEBUG)) {
    char a[64];
    d->host->log(d->host, SFK_LOG_DEBUG,
                 "Binding answer from %s (%s) in %.2f ms", s->uri,
                 sa_str((struct sockaddr *)&t->to, a, sizeof a),
                 (double)t->rtt_us / 1000.);
  }
  d->fails_in_row = 0;
  d->last_answer_ns = d->host->now_ns(d->host);
  d->state = ST_BOUND;
  if (!d->mapped.ss_family ||
      !sa_equal((struct sockaddr *)&ss, (struct sockaddr *)&d->mapped)) {
    char a[64], b[64];
    sa_str((struct sockaddr *)&ss, a, sizeof a);
    if (d->mapped.ss_family) {
      d->n.changes++;
      d->host->log(d->host, SFK_LOG_INFO,
                   "mapping changed to %s (was %s), "
                   "from %s",
                   a, sa_str((struct sockaddr *)&d->mapped, b, sizeof b),
                   s->uri);
    } else {
      d->host->log(d->host, SFK_LOG_INFO, "mapping %s from %s", a, s->uri);
    }
    memcpy(&d->mapped, &ss, len);
    d->mappedlen = len;
    d->host->mapping_changed(d->host, (struct sockaddr *)&ss, len, s->uri);
  }
  arm_keepalive(d, (double)d->keepalive_ms / 1000.);
  /* Once: a cheap mapping test when a second vantage point exists. */
  struct stun_attr oa;
  if (!d->probed && !d->probe.active &&
      (d->nsrv > 1 || stun_find(m, STUN_A_OTHER_ADDRESS, &oa) == 0)) {
    d->probed = 1;
    probe_begin(d, 0, NULL, NULL);
  }
}

static void resolve_cb(void *arg, int err, const struct sfk_addr *v, size_t n);

static void bind_current(struct disc *d) {
  struct server *s = &d->srv[d->cur];
  if (s->res)
    return; /* a resolution (of the probe) is pending: resolve_cb binds */
  if (!s->naddr) {
    d->state = ST_RESOLVING;
    int rc = d->host->resolve(d->host, s->host, s->port, resolve_family(d),
                              resolve_cb, s, &s->res);
    if (rc < 0) {
      s->res = NULL;
      fail_over(d, "cannot resolve its name");
    }
    return;
  }
  if (d->state != ST_BOUND)
    d->state = ST_BINDING;
  struct sfk_addr *a = &s->addr[s->ai];
  if (d->txn[TXN_MAIN].active)
    return;
  if (txn_start(d, &d->txn[TXN_MAIN], (struct sockaddr *)&a->ss, a->len, 0,
                d->attempts, main_done, (int)d->cur) < 0)
    fail_over(d, "cannot send a request");
}

static void keepalive_cb(struct ev_loop *loop, ev_timer *w, int revents) {
  struct disc *d = w->data;
  (void)loop;
  (void)revents;
  if (d->state == ST_RETRY)
    d->state = ST_RESOLVING;
  bind_current(d);
}

/* ------------------------------------------------------------------ */
/* Probe (RFC 5780 4.3 mapping, 4.4 filtering)                          */

enum { P_SERVERS = 0, P_MAP2, P_MAP3, P_FILT2, P_FILT3, P_DONE };

static void probe_step(struct disc *d);

static void probe_finish(struct disc *d) {
  struct probe *p = &d->probe;
  struct sfk_probe_result *r = &p->r;
  const struct sfk_probe_obs *first = NULL;
  int differs = 0, all_local = 1, answered = 0, distinct_dst = 0;
  for (size_t i = 0; i < r->nobs; i++) {
    const struct sfk_probe_obs *o = &r->obs[i];
    if (!o->mapped.ss_family || (p->change_obs & (1u << i)))
      continue;
    answered++;
    if (!first) {
      first = o;
    } else {
      if (!sa_same_ip((struct sockaddr *)&o->server_addr,
                   (struct sockaddr *)&first->server_addr))
        distinct_dst = 1;
      if (!sa_equal((struct sockaddr *)&o->mapped,
                     (struct sockaddr *)&first->mapped))
        differs = 1;
    }
    if (!r->locallen || sa_is_wildcard((struct sockaddr *)&r->local) ||
        !sa_equal((struct sockaddr *)&o->mapped, (struct sockaddr *)&r->local))
      all_local = 0;
  }
  if (!answered) {
    r->err = -ETIMEDOUT;
    r->mapping = SFK_NAT_UNKNOWN;
  } else if (r->mapping == SFK_NAT_UNKNOWN) {
    /* No RFC 5780 server: compare the servers' views. */
    if (distinct_dst)
      r->mapping =
          differs ? SFK_NAT_ADDRESS_DEPENDENT : SFK_NAT_ENDPOINT_INDEPENDENT;
  }
  /* Two servers that see different mappings settle it, whatever the
   * RFC 5780 tests said (servers on one IP differ only by port). */
  if (answered && differs && r->mapping < SFK_NAT_ADDRESS_DEPENDENT)
    r->mapping = distinct_dst ? SFK_NAT_ADDRESS_DEPENDENT
                              : SFK_NAT_ADDRESS_PORT_DEPENDENT;
  if (answered && all_local)
    r->mapping = SFK_NAT_NONE;
  r->direct_expected =
      r->mapping == SFK_NAT_NONE || r->mapping == SFK_NAT_ENDPOINT_INDEPENDENT;
  char a[64];
  if (!answered)
    snprintf(r->summary, sizeof r->summary, "no STUN server answered");
  else if (r->mapping == SFK_NAT_NONE)
    snprintf(r->summary, sizeof r->summary,
             "no NAT: the servers see the socket's own address %s",
             sa_str((struct sockaddr *)&first->mapped, a, sizeof a));
  else if (r->direct_expected)
    snprintf(r->summary, sizeof r->summary,
             "endpoint-independent mapping to %s: direct connections "
             "should work",
             sa_str((struct sockaddr *)&first->mapped, a, sizeof a));
  else if (r->mapping == SFK_NAT_UNKNOWN)
    snprintf(r->summary, sizeof r->summary,
             "mapped to %s; one vantage point only, so the mapping "
             "behaviour is unknown (configure a second STUN server)",
             sa_str((struct sockaddr *)&first->mapped, a, sizeof a));
  else
    snprintf(r->summary, sizeof r->summary,
             "the mapping depends on the destination: peers cannot reach "
             "this address directly; a TURN relay is needed");
  p->active = 0;
  p->step = P_DONE;
  if (p->cb)
    p->cb(p->arg, r);
  else
    d->host->nat_found(d->host, r);
}

/* Record an observation; returns its index or -1 when full. */
static int probe_obs(struct disc *d, const char *what,
                     const struct sockaddr *to, socklen_t tolen) {
  struct sfk_probe_result *r = &d->probe.r;
  if (r->nobs >= SFK_PROBE_MAX_OBS)
    return -1;
  struct sfk_probe_obs *o = &r->obs[r->nobs];
  memset(o, 0, sizeof *o);
  snprintf(o->server, sizeof o->server, "%s", what);
  memcpy(&o->server_addr, to, tolen);
  o->server_addrlen = tolen;
  return (int)r->nobs++;
}

static void probe_txn_done(struct disc *d, struct txn *t, int err,
                           const struct stun_msg *m) {
  struct probe *p = &d->probe;
  if (!p->active)
    return;
  struct sfk_probe_obs *o = &p->r.obs[t->tag];
  if (err == 0) {
    struct sockaddr_storage ss;
    socklen_t len = 0;
    if (stun_mapped_addr(m, &ss, &len) == 0) {
      memcpy(&o->mapped, &ss, len);
      o->mappedlen = len;
      o->rtt_us = t->rtt_us;
    }
    struct stun_attr a;
    /* The first RFC 5780 server is the primary of the next tests (an
     * OTHER-ADDRESS on the server's own IP would test nothing). */
    struct sockaddr_storage oth;
    socklen_t othlen = 0;
    if (p->step == P_SERVERS && p->primary < 0 &&
        stun_find(m, STUN_A_OTHER_ADDRESS, &a) == 0 &&
        stun_attr_addr(m, &a, 0, &oth, &othlen) == 0) {
      if (oth.ss_family == o->server_addr.ss_family &&
          !sa_same_ip((struct sockaddr *)&oth,
                   (struct sockaddr *)&o->server_addr)) {
        memcpy(&p->other, &oth, othlen);
        p->otherlen = othlen;
        p->primary = t->tag;
      }
    }
  } else if (err == -EPROTO && p->step >= P_FILT2) {
    /* The server refused CHANGE-REQUEST (420): filtering unknown. */
    p->r.filtering = SFK_NAT_UNKNOWN;
    p->step = P_DONE;
  }
  /* The first step also waits for every server's name. */
  if (--p->pending == 0 && (p->step != P_SERVERS || p->resolving == 0))
    probe_step(d);
}

/* Send one probe request, recorded as an observation (d->probe.last).
 * Returns 0 or a negative errno (then last is -1). */
static int probe_send(struct disc *d, const char *what,
                      const struct sockaddr *to, socklen_t tolen,
                      uint32_t change) {
  struct txn *t = txn_slot(d);
  d->probe.last = -1;
  if (!t || d->probe.r.nobs >= SFK_PROBE_MAX_OBS)
    return -ENOSPC;
  int oi = probe_obs(d, what, to, tolen);
  if (change)
    d->probe.change_obs |= 1u << oi;
  unsigned att = change ? FILTER_ATTEMPTS : d->attempts;
  if (txn_start(d, t, to, tolen, change, att, probe_txn_done, oi) < 0)
    return -EIO;
  d->probe.pending++;
  d->probe.last = oi;
  return 0;
}

/* The answer to the step's request, or NULL (none sent or no answer). */
static const struct sfk_probe_obs *last_answer(struct disc *d) {
  const struct probe *p = &d->probe;
  if (p->last < 0 || !p->r.obs[p->last].mapped.ss_family)
    return NULL;
  return &p->r.obs[p->last];
}

static const struct sfk_probe_obs *primary_obs(struct disc *d) {
  return d->probe.primary >= 0 ? &d->probe.r.obs[d->probe.primary] : NULL;
}

/* Advance after every transaction of the step finished. */
static void probe_step(struct disc *d) {
  struct probe *p = &d->probe;
  const struct sfk_probe_obs *po = primary_obs(d);
  struct sockaddr_storage to;
  for (;;) {
    switch (p->step) {
    case P_SERVERS:
      /* Test II: the alternate IP, the primary port. */
      p->step = P_MAP2;
      if (!po || !po->mapped.ss_family)
        break;
      memcpy(&to, &p->other, sizeof to);
      set_port(&to, sa_port((struct sockaddr *)&po->server_addr));
      if (probe_send(d, "alternate address, primary port",
                     (struct sockaddr *)&to, p->otherlen, 0) == 0)
        return;
      break;
    case P_MAP2: {
      p->step = P_MAP3;
      const struct sfk_probe_obs *o2 = last_answer(d);
      if (!po || !o2)
        break;
      if (sa_equal((struct sockaddr *)&o2->mapped,
                    (struct sockaddr *)&po->mapped)) {
        p->r.mapping = SFK_NAT_ENDPOINT_INDEPENDENT;
        break;
      }
      memcpy(&p->map2, &o2->mapped, sizeof p->map2);
      p->map2len = o2->mappedlen;
      /* Test III: the alternate IP and port. */
      if (probe_send(d, "alternate address and port",
                     (struct sockaddr *)&p->other, p->otherlen, 0) == 0)
        return;
      break;
    }
    case P_MAP3: {
      p->step = P_FILT2;
      const struct sfk_probe_obs *o3 = last_answer(d);
      if (p->map2.ss_family) {
        if (o3)
          p->r.mapping = sa_equal((struct sockaddr *)&o3->mapped,
                                   (struct sockaddr *)&p->map2)
                             ? SFK_NAT_ADDRESS_DEPENDENT
                             : SFK_NAT_ADDRESS_PORT_DEPENDENT;
      }
      if (!p->filtering || !po)
        break;
      /* Filtering test II: answer from the other IP and port. */
      if (probe_send(d, "change IP and port",
                     (struct sockaddr *)&po->server_addr, po->server_addrlen,
                     STUN_CHANGE_IP | STUN_CHANGE_PORT) == 0)
        return;
      break;
    }
    case P_FILT2: {
      p->step = P_FILT3;
      if (!p->filtering || !po || p->last < 0)
        break;
      if (last_answer(d)) {
        p->r.filtering = SFK_NAT_ENDPOINT_INDEPENDENT;
        p->step = P_DONE;
        break;
      }
      /* Filtering test III: answer from the other port only. */
      if (probe_send(d, "change port", (struct sockaddr *)&po->server_addr,
                     po->server_addrlen, STUN_CHANGE_PORT) == 0)
        return;
      break;
    }
    case P_FILT3:
      p->step = P_DONE;
      if (p->filtering && po && p->last >= 0 &&
          p->r.filtering == SFK_NAT_UNKNOWN)
        p->r.filtering = last_answer(d) ? SFK_NAT_ADDRESS_DEPENDENT
                                        : SFK_NAT_ADDRESS_PORT_DEPENDENT;
      break;
    default:
      probe_finish(d);
      return;
    }
  }
}

/* A server's name is known (or failed) during the probe's first step. */
static void probe_server_ready(struct disc *d, size_t i) {
  struct probe *p = &d->probe;
  struct server *s = &d->srv[i];
  if (!p->active || p->step != P_SERVERS)
    return;
  if (s->naddr) {
    struct sfk_addr *a = &s->addr[s->ai];
    if (probe_send(d, s->uri, (struct sockaddr *)&a->ss, a->len, 0) < 0)
      d->host->log(d->host, SFK_LOG_WARN, "probe: cannot ask %s", s->uri);
  } else {
    /* Unresolved: listed without an address or answer. */
    probe_obs(d, s->uri, (struct sockaddr *)&s->addr[0].ss, 0);
  }
  if (p->resolving == 0 && p->pending == 0)
    probe_step(d);
}

static void probe_begin(struct disc *d, int filtering, sfk_probe_cb cb,
                        void *arg) {
  struct probe *p = &d->probe;
  memset(p, 0, sizeof *p);
  p->active = 1;
  p->filtering = filtering;
  p->cb = cb;
  p->arg = arg;
  p->primary = -1;
  p->last = -1;
  p->step = P_SERVERS;
  p->r.locallen = sizeof p->r.local;
  if (d->host->udp_local(d->host, &p->r.local, &p->r.locallen) < 0)
    p->r.locallen = 0;
  /* Resolve what is not known yet; count first so a synchronous path
   * cannot finish the step early. */
  for (size_t i = 0; i < d->nsrv; i++)
    if (!d->srv[i].naddr) {
      p->resolving++;
      p->waiting |= 1u << i;
    }
  for (size_t i = 0; i < d->nsrv; i++) {
    struct server *s = &d->srv[i];
    if (s->naddr) {
      probe_server_ready(d, i);
      continue;
    }
    if (s->res)
      continue; /* discovery's resolution is pending: resolve_cb tells us */
    if (d->host->resolve(d->host, s->host, s->port, resolve_family(d),
                         resolve_cb, s, &s->res) < 0) {
      s->res = NULL;
      p->resolving--;
      p->waiting &= ~(1u << i);
      probe_server_ready(d, i);
    }
  }
  if (p->active && p->step == P_SERVERS && !p->resolving && !p->pending)
    probe_step(d);
}

static void resolve_cb(void *arg, int err, const struct sfk_addr *v, size_t n) {
  struct server *s = arg;
  struct disc *d = s->d;
  size_t i = s->idx;
  s->res = NULL;
  if (err < 0 || n == 0) {
    s->naddr = 0;
    d->host->log(d->host, SFK_LOG_WARN, "cannot resolve %s: %s", s->host,
                 err == -EAGAIN ? "temporary failure, will try again"
                 : err == -ENOENT || err == 0 ? "no such host name"
                                              : strerror(-err));
  } else {
    s->naddr = n < MAX_ADDRS ? n : MAX_ADDRS;
    memcpy(s->addr, v, s->naddr * sizeof *v);
    s->ai = 0;
  }
  /* Only names the probe counted (discovery may resolve again meanwhile). */
  if (d->probe.active && d->probe.step == P_SERVERS &&
      (d->probe.waiting & (1u << i))) {
    d->probe.waiting &= ~(1u << i);
    d->probe.resolving--;
    probe_server_ready(d, i);
  }
  if (d->state != ST_RESOLVING || d->cur != i)
    return;
  if (!s->naddr)
    fail_over(d, "cannot resolve its name");
  else
    bind_current(d);
}

/* ------------------------------------------------------------------ */
/* Ops                                                                  */

static int stun_create(const struct sfk_host *h, const struct sfk_cfg_node *cfg,
                       void **self) {
  struct disc *d = calloc(1, sizeof *d);
  if (!d)
    return -ENOMEM;
  d->host = h;
  int rc = parse_config(h, cfg, d);
  if (rc < 0) {
    free(d);
    return rc;
  }
  ev_timer_init(&d->keepalive, keepalive_cb, 1., 0.);
  d->keepalive.data = d;
  for (size_t i = 0; i < NTXN; i++)
    d->txn[i].d = d;
  for (size_t i = 0; i < d->nsrv; i++) {
    d->srv[i].d = d;
    d->srv[i].idx = i;
  }
  *self = d;
  return 0;
}

static int stun_start(void *self) {
  struct disc *d = self;
  d->cur = 0;
  d->fails_in_row = 0;
  d->state = ST_RESOLVING;
  bind_current(d);
  return 0;
}

static void stun_stop(void *self) {
  struct disc *d = self;
  ev_timer_stop(d->host->loop, &d->keepalive);
  txn_cancel_all(d);
  for (size_t i = 0; i < d->nsrv; i++)
    if (d->srv[i].res) {
      d->host->resolve_cancel(d->host, d->srv[i].res);
      d->srv[i].res = NULL;
    }
  d->probe.active = 0;
  d->state = ST_IDLE;
}

static void stun_destroy(void *self) {
  free(self);
}

static void stun_on_datagram(void *self, const struct sockaddr *from,
                             socklen_t fromlen, const uint8_t *data,
                             size_t len) {
  struct disc *d = self;
  struct stun_msg m;
  (void)fromlen;
  if (stun_parse(&m, data, len) < 0 ||
      stun_type_method(m.type) != STUN_BINDING ||
      (stun_type_class(m.type) != STUN_SUCCESS &&
       stun_type_class(m.type) != STUN_ERROR)) {
    d->n.dropped++;
    d->host->log(d->host, SFK_LOG_DEBUG,
                 "dropped a %zu-byte datagram: not a Binding response", len);
    return;
  }
  struct txn *t = NULL;
  for (size_t i = 0; i < NTXN; i++)
    if (d->txn[i].active && memcmp(d->txn[i].tid, m.tid, STUN_TID_LEN) == 0)
      t = &d->txn[i];
  if (!t) {
    /* A late answer to a retransmitted request lands here too. */
    d->n.dropped++;
    d->host->log(d->host, SFK_LOG_DEBUG,
                 "dropped a Binding response matching no transaction");
    return;
  }
  if (stun_check_fingerprint(&m) == -EBADMSG) {
    d->n.dropped++;
    d->host->log(d->host, SFK_LOG_DEBUG,
                 "dropped a response with a bad "
                 "FINGERPRINT");
    return;
  }
  if (d->host->log_enabled(d->host, SFK_LOG_TRACE)) {
    char a[64];
    d->host->log(d->host, SFK_LOG_TRACE, "Binding %s from %s",
                 stun_type_class(m.type) == STUN_SUCCESS ? "success" : "error",
                 sa_str(from, a, sizeof a));
  }
  d->n.responses++;
  t->rtt_us = (d->host->now_ns(d->host) - t->t0_ns) / 1000;
  if (stun_type_class(m.type) == STUN_ERROR) {
    d->n.errors++;
    txn_finish(t, -EPROTO, &m);
  } else {
    txn_finish(t, 0, &m);
  }
}

/* At most one recheck a second: a burst of peers going down (our NAT
 * rebound, or the network went away) must not become a burst of
 * requests. */
#define RECHECK_MIN_NS 1000000000ull

static int stun_recheck(void *self) {
  struct disc *d = self;
  uint64_t now = d->host->now_ns(d->host);
  if (d->state == ST_IDLE)
    return -ENOTCONN;
  if (d->txn[TXN_MAIN].active || d->state == ST_RESOLVING)
    return -EALREADY; /* an answer is on its way anyway */
  if (d->last_recheck_ns && now - d->last_recheck_ns < RECHECK_MIN_NS)
    return -EAGAIN;
  d->last_recheck_ns = now;
  d->host->log(d->host, SFK_LOG_DEBUG, "rechecking the mapping with %s",
               d->srv[d->cur].uri);
  if (d->state == ST_RETRY)
    d->state = ST_RESOLVING;
  /* The keep-alive restarts from the answer. */
  ev_timer_stop(d->host->loop, &d->keepalive);
  bind_current(d);
  return 0;
}

static int stun_probe(void *self, sfk_probe_cb cb, void *arg) {
  struct disc *d = self;
  if (!cb)
    return -EINVAL;
  if (d->probe.active)
    return -EBUSY;
  probe_begin(d, 1, cb, arg);
  return 0;
}

static void stun_report(void *self, struct sfk_report *r) {
  struct disc *d = self;
  const struct server *s = &d->srv[d->cur];
  char a[64];
  r->str(r, "state", state_names[d->state]);
  r->str(r, "server", s->uri);
  if (s->naddr)
    r->str(r, "server_addr",
           sa_str((const struct sockaddr *)&s->addr[s->ai].ss, a, sizeof a));
  if (d->mapped.ss_family)
    r->str(r, "mapping", sa_str((struct sockaddr *)&d->mapped, a, sizeof a));
  if (d->last_answer_ns)
    r->num(r, "last_answer_ms",
           (int64_t)((d->host->now_ns(d->host) - d->last_answer_ns) / 1000000));
  r->begin(r, "counters", 0);
  r->num(r, "requests", (int64_t)d->n.requests);
  r->num(r, "responses", (int64_t)d->n.responses);
  r->num(r, "retransmits", (int64_t)d->n.retransmits);
  r->num(r, "dropped", (int64_t)d->n.dropped);
  r->num(r, "error_responses", (int64_t)d->n.errors);
  r->num(r, "failovers", (int64_t)d->n.failovers);
  r->num(r, "mapping_changes", (int64_t)d->n.changes);
  r->end(r);
}

static const struct sfk_discovery_ops stun_ops = {
    .base =
        {
            .keys = stun_keys,
            .create = stun_create,
            .start = stun_start,
            .stop = stun_stop,
            .destroy = stun_destroy,
            .report = stun_report,
        },
    .on_datagram = stun_on_datagram,
    .probe = stun_probe,
    .recheck = stun_recheck,
};

SFK_PLUGIN_DEFINE(DISCOVERY, "stun", "1.0", stun_ops);
