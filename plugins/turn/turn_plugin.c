/*
 * Relay plugin `turn`: configuration, the relay ops, demultiplexing of
 * what the server sends, and the status report.  See turn.h for the
 * files and conventions.
 *
 *   transport:
 *     relay:
 *       plugin: turn
 *       server: turn:turn.example.org:3478   # UDP; port 3478 by default
 *       username: site-a
 *       password_file: turn.pass             # first line, chmod 600
 *       lifetime: 10m                        # requested allocation lifetime
 *       mode: auto                           # read by the daemon
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "turn.h"

#define NS 1000000000ull

static const char *const turn_keys[] = {"server", "username", "password_file",
                                        "lifetime", NULL};

/* ------------------------------------------------------------------ */
/* Addresses and the socket                                             */

void turn_to_wire(const struct turn *t, struct sockaddr_storage *a,
                  socklen_t *alen) {
  (void)t;
  sa_unmap_v4(a, alen);
}

void turn_to_socket(const struct turn *t, struct sockaddr_storage *a,
                    socklen_t *alen) {
  (void)t;
  (void)a;
  (void)alen; /* the core names IPv4 peers as IPv4 on every socket */
}

int turn_send_raw(struct turn *t, const uint8_t *buf, size_t len) {
  if (!t->serverlen)
    return -ENETUNREACH;
  return t->h->udp_send(t->h, SFK_PATH_DIRECT, (struct sockaddr *)&t->server,
                        t->serverlen, buf, len, 0);
}

/* ------------------------------------------------------------------ */
/* Config                                                               */

/* "turn:host[:port][?transport=udp]" (or "host:port") into c; NULL or a
 * message for the caller to report. */
static const char *parse_server(const char *uri, struct turn_cfg *c) {
  const char *p = uri, *end, *host, *colon;
  size_t hlen;

  if (strlen(uri) >= sizeof c->uri)
    return "server URI too long";
  if (strncmp(p, "turns:", 6) == 0)
    return "turns: (TURN over TLS) is not supported; use turn: (UDP)";
  if (strncmp(p, "stun:", 5) == 0 || strncmp(p, "stuns:", 6) == 0)
    return "a STUN URI cannot relay; the relay needs a turn: URI";
  if (strncmp(p, "turn:", 5) == 0)
    p += 5;
  end = strchr(p, '?');
  if (end && strcmp(end, "?transport=udp") != 0)
    return strncmp(end, "?transport=", 11) == 0
               ? "only ?transport=udp is supported (the relay shares the UDP "
                 "socket)"
               : "unexpected text after the host and port";
  if (!end)
    end = p + strlen(p);
  host = p;
  if (*p == '[') {
    const char *close = memchr(p, ']', (size_t)(end - p));
    if (!close)
      return "missing ']' after an IPv6 address";
    host = p + 1;
    hlen = (size_t)(close - host);
    colon = close + 1 < end && close[1] == ':' ? close + 1 : NULL;
    if (close + 1 < end && !colon)
      return "unexpected text after ']'";
  } else {
    colon = memchr(p, ':', (size_t)(end - p));
    if (colon && memchr(colon + 1, ':', (size_t)(end - colon - 1)))
      return "an IPv6 address must be written in brackets: [addr]:port";
    hlen = colon ? (size_t)(colon - p) : (size_t)(end - p);
  }
  if (hlen == 0 || hlen > TURN_HOST_MAX)
    return "missing or overlong host name";
  memcpy(c->host, host, hlen);
  c->host[hlen] = '\0';
  for (size_t i = 0; i < hlen; i++)
    if (c->host[i] == '/' || c->host[i] == '@' || c->host[i] <= ' ')
      return "unexpected character in the host name";
  c->port = 3478;
  if (colon) {
    char digits[8];
    size_t n = (size_t)(end - colon - 1);
    unsigned long port;
    char *e;
    if (n == 0 || n >= sizeof digits)
      return "port must be 1-65535";
    memcpy(digits, colon + 1, n);
    digits[n] = '\0';
    port = strtoul(digits, &e, 10);
    if (*e || port == 0 || port > 65535)
      return "port must be 1-65535";
    c->port = (uint16_t)port;
  }
  snprintf(c->uri, sizeof c->uri, "%s", uri);
  return NULL;
}

static int parse_config(const struct sfk_host *h,
                        const struct sfk_cfg_node *cfg, struct turn_cfg *c) {
  const char *server = NULL, *user = NULL, *msg;
  uint64_t life_ms = 0;
  int bad = 0;

  memset(c, 0, sizeof *c);
  if (h->cfg_string(h, cfg, "server", NULL, &server) < 0)
    bad = 1;
  else if (!server || !*server) {
    h->cfg_error(h, cfg, "relay 'turn' needs 'server' (turn:host[:port])");
    bad = 1;
  } else if ((msg = parse_server(server, c))) {
    h->cfg_error(h, h->cfg_get(cfg, "server"), "server '%s': %s", server, msg);
    bad = 1;
  }
  if (h->cfg_string(h, cfg, "username", NULL, &user) < 0) {
    bad = 1;
  } else if (!user || !*user) {
    h->cfg_error(h, cfg, "relay 'turn' needs 'username' (the TURN user this "
                         "site was given)");
    bad = 1;
  } else if (strlen(user) >= sizeof c->user || strchr(user, ':')) {
    h->cfg_error(h, h->cfg_get(cfg, "username"),
                 "username must be under %zu characters, without ':'",
                 sizeof c->user);
    bad = 1;
  } else {
    snprintf(c->user, sizeof c->user, "%s", user);
  }
  if (!h->cfg_get(cfg, "password_file")) {
    h->cfg_error(h, cfg, "relay 'turn' needs 'password_file' (a file whose "
                         "first line is the TURN password, chmod 600)");
    bad = 1;
  } else if (h->cfg_secret(h, cfg, "password_file", NULL, c->pass,
                           sizeof c->pass) < 0) {
    bad = 1;
  }
  if (h->cfg_duration_ms(h, cfg, "lifetime", 600000, &life_ms) < 0) {
    bad = 1;
  } else if (life_ms < 10000 || life_ms > 3600000) {
    h->cfg_error(h, h->cfg_get(cfg, "lifetime"),
                 "lifetime must be between 10s and 1h");
    bad = 1;
  }
  c->lifetime_s = (uint32_t)(life_ms / 1000);
  if (bad)
    explicit_bzero(c->pass, sizeof c->pass);
  return bad ? -EINVAL : 0;
}

/* ------------------------------------------------------------------ */
/* Ops                                                                  */

static int turn_create(const struct sfk_host *h, const struct sfk_cfg_node *cfg,
                       void **self) {
  struct turn *t = calloc(1, sizeof *t);
  int rc;

  if (!t)
    return -ENOMEM;
  t->h = h;
  if ((rc = parse_config(h, cfg, &t->cfg)) < 0) {
    explicit_bzero(t, sizeof *t);
    free(t);
    return rc;
  }
  *self = t;
  return 0;
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents) {
  struct turn *t = w->data;
  uint64_t now = t->h->now_ns(t->h);
  (void)loop;
  (void)revents;
  turn_alloc_tick(t, now);
  turn_peer_tick(t, now);
}

static int turn_start(void *self) {
  struct turn *t = self;
  const struct sfk_host *h = t->h;
  struct sockaddr_storage local;
  socklen_t ll = sizeof local;
  int rc;

  if ((rc = h->udp_local(h, &local, &ll)) < 0)
    return rc;
  t->sock_v6 = local.ss_family == AF_INET6;
  if ((rc = h->random(h, t->ind_tid, sizeof t->ind_tid)) < 0)
    return rc;
  ev_timer_init(&t->tick, tick_cb, 1., 1.);
  t->tick.data = t;
  ev_timer_start(h->loop, &t->tick);
  t->started = 1;
  turn_alloc_begin(t);
  return 0;
}

static void turn_stop(void *self) {
  struct turn *t = self;
  const struct sfk_host *h = t->h;

  if (!t->started)
    return;
  turn_alloc_release(t);
  turn_txn_cancel_all(t);
  if (t->res) {
    h->resolve_cancel(h, t->res);
    t->res = NULL;
  }
  ev_timer_stop(h->loop, &t->tick);
  t->state = TS_IDLE;
  t->started = 0;
}

static void turn_destroy(void *self) {
  struct turn *t = self;
  /* The password and the key are in here. */
  explicit_bzero(t, sizeof *t);
  free(t);
}

static void turn_on_datagram(void *self, const struct sockaddr *from,
                             socklen_t fromlen, const uint8_t *data,
                             size_t len) {
  struct turn *t = self;
  struct stun_msg m;
  (void)from;
  (void)fromlen;

  if (!t->started)
    return;
  if (stun_chan_looks_like(data, len)) {
    t->last_rx_ns = t->h->now_ns(t->h);
    turn_peer_channel_data(t, data, len);
    return;
  }
  if (stun_parse(&m, data, len) < 0) {
    t->n.dropped++;
    return;
  }
  t->last_rx_ns = t->h->now_ns(t->h);
  switch (stun_type_class(m.type)) {
  case STUN_INDICATION:
    if (stun_type_method(m.type) == STUN_DATA && t->state == TS_READY)
      turn_peer_data_indication(t, &m);
    else
      t->n.dropped++;
    return;
  case STUN_SUCCESS:
  case STUN_ERROR:
    turn_txn_answer(t, &m);
    return;
  default:
    t->n.dropped++; /* a request: we serve none */
  }
}

static int turn_owns_source(void *self, const struct sockaddr *from,
                            socklen_t fromlen) {
  struct turn *t = self;
  (void)fromlen;
  return t->serverlen && sa_equal(from, (struct sockaddr *)&t->server);
}

static int turn_permit(void *self, const struct sockaddr *peer,
                       socklen_t len) {
  return turn_peer_permit(self, peer, len);
}

static void turn_unpermit(void *self, const struct sockaddr *peer,
                          socklen_t len) {
  turn_peer_unpermit(self, peer, len);
}

static int turn_send(void *self, const struct sockaddr *to, socklen_t tolen,
                     const uint8_t *buf, size_t len) {
  return turn_peer_send(self, to, tolen, buf, len);
}

static int turn_info(void *self, struct sfk_path_info *out) {
  struct turn *t = self;
  struct sockaddr_storage a;
  socklen_t al;

  memset(out, 0, sizeof *out);
  if (t->state != TS_READY)
    return -EAGAIN;
  a = t->relayed;
  al = t->relayedlen;
  turn_to_socket(t, &a, &al);
  out->usable = 1;
  out->addr = a;
  out->addrlen = al;
  /* The worst case, a Send indication: header, XOR-PEER-ADDRESS, DATA
   * header and up to 3 bytes of padding. */
  out->overhead = STUN_HDR_LEN + (t->relayed.ss_family == AF_INET6 ? 24 : 12) +
                  4 + 3;
  out->max_payload = 0xffff - out->overhead;
  return 0;
}

/* Settings re-read on SIGHUP: new credentials or a new server mean a new
 * allocation (the site may just have fixed its password file). */
static int turn_reconfigure(void *self, const struct sfk_cfg_node *cfg) {
  struct turn *t = self;
  struct turn_cfg c;
  int rc;

  if ((rc = parse_config(t->h, cfg, &c)) < 0)
    return rc;
  if (strcmp(c.uri, t->cfg.uri) == 0 && strcmp(c.user, t->cfg.user) == 0 &&
      strcmp(c.pass, t->cfg.pass) == 0 && c.lifetime_s == t->cfg.lifetime_s) {
    explicit_bzero(&c, sizeof c);
    return 0;
  }
  turn_alloc_release(t);
  turn_txn_cancel_all(t);
  turn_peer_reset(t);
  if (t->announced) {
    /* The old relayed address is gone until the new one is known. */
    t->announced = 0;
    snprintf(t->why, sizeof t->why, "settings changed: allocating again");
    snprintf(t->reported, sizeof t->reported, "%s", t->why);
    t->h->relay_changed(t->h, NULL, 0, -ECANCELED, t->why);
  }
  explicit_bzero(t->cfg.pass, sizeof t->cfg.pass);
  t->cfg = c;
  explicit_bzero(&c, sizeof c);
  explicit_bzero(t->key, sizeof t->key);
  t->have_key = 0;
  t->realm[0] = t->nonce[0] = '\0';
  memset(t->fails, 0, sizeof t->fails);
  t->h->log(t->h, SFK_LOG_INFO, "settings changed: allocating on %s as '%s'",
            t->cfg.uri, t->cfg.user);
  if (t->started)
    turn_alloc_begin(t);
  return 0;
}

static void turn_report(void *self, struct sfk_report *r) {
  struct turn *t = self;
  uint64_t now = t->h->now_ns(t->h);
  char a[SA_STR_MAX];

  r->str(r, "server", t->cfg.uri);
  if (t->serverlen)
    r->str(r, "server_address", t->server_str);
  r->str(r, "username", t->cfg.user);
  r->str(r, "state", turn_state_name(t->state));
  if (t->state == TS_READY) {
    r->str(r, "relayed_address",
           sa_str((struct sockaddr *)&t->relayed, a, sizeof a));
    if (t->mappedlen)
      r->str(r, "mapped_address",
             sa_str((struct sockaddr *)&t->mapped, a, sizeof a));
    r->num(r, "lifetime_s", t->lifetime_s);
    r->num(r, "expires_in_s",
           t->expires_ns > now ? (int64_t)((t->expires_ns - now) / NS) : 0);
  }
  if (t->why[0]) {
    r->str(r, "error", t->why);
    if (t->state == TS_WAITING)
      r->num(r, "next_try_in_s",
             t->retry_ns > now ? (int64_t)((t->retry_ns - now) / NS) : 0);
  }
  turn_peer_report(t, r);
  r->begin(r, "counters", 0);
  r->num(r, "allocations", (int64_t)t->n.allocations);
  r->num(r, "refreshes", (int64_t)t->n.refreshes);
  r->num(r, "liveness_probes", (int64_t)t->n.probes);
  r->num(r, "requests", (int64_t)t->n.requests);
  r->num(r, "retransmits", (int64_t)t->n.retransmits);
  r->num(r, "error_answers", (int64_t)t->n.errors);
  r->num(r, "stale_nonces", (int64_t)t->n.stale_nonces);
  r->num(r, "channel_data_sent", (int64_t)t->n.chan_tx);
  r->num(r, "send_indications", (int64_t)t->n.send_tx);
  r->num(r, "channel_data_received", (int64_t)t->n.chan_rx);
  r->num(r, "data_indications", (int64_t)t->n.data_rx);
  r->num(r, "dropped", (int64_t)t->n.dropped);
  r->num(r, "unauthenticated", (int64_t)t->n.unauthenticated);
  r->end(r);
}

static const struct sfk_relay_ops turn_ops = {
    .base =
        {
            .keys = turn_keys,
            .create = turn_create,
            .start = turn_start,
            .stop = turn_stop,
            .destroy = turn_destroy,
            .reconfigure = turn_reconfigure,
            .report = turn_report,
        },
    .on_datagram = turn_on_datagram,
    .owns_source = turn_owns_source,
    .permit = turn_permit,
    .unpermit = turn_unpermit,
    .send = turn_send,
    .info = turn_info,
};

SFK_PLUGIN_DEFINE(RELAY, "turn", "1.0", turn_ops);
