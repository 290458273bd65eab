/*
 * QUIC transport: peers.
 *
 * One struct quic_peer per PID we know of.  The higher PID dials (client
 * side, with a backoff of 0.5 s doubling to 10 s after failures); the
 * lower PID punches towards the client's published address on a bounded
 * schedule (every 500 ms for 10 s, then every 5 s) until the handshake
 * arrives, so both NATs open.
 *
 * What the daemon hears (host->peer_state) is recorded here with
 * quic_peer_state() wherever it is learnt, often below an ngtcp2 callback
 * or while iterating the daemon's peer table, and told from quic_flush()
 * by quic_peer_events(): a DOWN makes the daemon re-read the peer, which
 * replaces the table we might be iterating.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quic.h"

#define MS 1000000ull /* ns */

int quic_is_client_of(const struct quic_inst *qi, uint32_t pid) {
  return pid < qi->h->self_pid;
}

struct quic_peer *quic_peer_find(struct quic_inst *qi, uint32_t pid) {
  struct quic_peer *p;

  TAILQ_FOREACH(p, &qi->peers, link) {
    if (p->pid == pid)
      return p;
  }
  return NULL;
}

static void peer_timer_cb(struct ev_loop *loop, ev_timer *w, int revents);

/* Copy address and pin from the daemon's table.  Returns a bit mask:
 * 1 address changed, 2 pin changed. */
static int peer_update(struct quic_peer *p, const struct sfk_peer *e) {
  int changed = 0;

  if (e->addrlen != p->addrlen ||
      (e->addrlen &&
       !quic_addr_eq((const struct sockaddr *)&e->addr, e->addrlen,
                     (const struct sockaddr *)&p->addr, p->addrlen))) {
    changed |= 1;
    memset(&p->addr, 0, sizeof(p->addr));
    if (e->addrlen && e->addrlen <= sizeof(p->addr) && e->addr.ss_family != 0) {
      memcpy(&p->addr, &e->addr, e->addrlen);
      p->addrlen = e->addrlen;
    } else {
      p->addrlen = 0;
    }
  }
  if (strncmp(p->pin, e->pin, SFK_PIN_SIZE) != 0) {
    changed |= 2;
    memcpy(p->pin, e->pin, SFK_PIN_SIZE);
    p->pin[SFK_PIN_LEN] = '\0';
    p->warned_pin[0] = '\0';
  }
  return changed;
}

struct quic_peer *quic_peer_get(struct quic_inst *qi, uint32_t pid) {
  const struct sfk_host *h = qi->h;
  struct quic_peer *p = quic_peer_find(qi, pid);
  const struct sfk_peer *e;

  if (p)
    return p;
  p = calloc(1, sizeof(*p));
  if (!p)
    return NULL;
  p->qi = qi;
  p->pid = pid;
  p->backoff_ms = QUIC_BACKOFF_MIN_MS;
  p->st = p->told = SFK_PEER_UNKNOWN;
  TAILQ_INIT(&p->pending);
  ev_timer_init(&p->timer, peer_timer_cb, 0., 0.);
  p->timer.data = p;
  e = h->peer_get(h, pid);
  if (e) {
    p->present = 1;
    peer_update(p, e);
  }
  TAILQ_INSERT_TAIL(&qi->peers, p, link);
  return p;
}

void quic_peer_free(struct quic_peer *p) {
  struct quic_stream *s;

  ev_timer_stop(p->qi->h->loop, &p->timer);
  quic_path_unpermit(p->qi, p);
  while ((s = TAILQ_FIRST(&p->pending))) {
    TAILQ_REMOVE(&p->pending, s, link);
    quic_stream_free(s);
  }
  TAILQ_REMOVE(&p->qi->peers, p, link);
  free(p);
}

/* ------------------------------------------------------------------ */
/* State for the daemon                                                 */

void quic_peer_state(struct quic_peer *p, int state, int path,
                     const struct sockaddr *addr, socklen_t addrlen, int err,
                     const char *why) {
  if (state == SFK_PEER_CONNECTING && p->st == SFK_PEER_DOWN)
    return; /* a retry: stay DOWN with the reason until UP */
  p->st = state;
  p->st_path = path;
  p->st_err = err;
  memset(&p->st_addr, 0, sizeof(p->st_addr));
  p->st_addrlen = 0;
  if (addr && addrlen && addrlen <= sizeof(p->st_addr)) {
    memcpy(&p->st_addr, addr, addrlen);
    p->st_addrlen = addrlen;
  }
  snprintf(p->st_why, sizeof(p->st_why), "%s", why ? why : "");
  if (state == SFK_PEER_DOWN && why && why[0])
    snprintf(p->why, sizeof(p->why), "%s", why);
  else if (state == SFK_PEER_UP)
    p->why[0] = '\0';
  p->st_dirty = 1;
  quic_kick(p->qi);
}

static int peer_told_differs(const struct quic_peer *p) {
  return p->st != p->told || p->st_path != p->told_path ||
         p->st_err != p->told_err || p->st_addrlen != p->told_addrlen ||
         memcmp(&p->st_addr, &p->told_addr, p->st_addrlen) != 0 ||
         strcmp(p->st_why, p->told_why) != 0;
}

/* From quic_flush(): tell the daemon what changed.  The DOWN upcall may
 * re-read the peer table (peers_changed only sets a flag here). */
void quic_peer_events(struct quic_inst *qi) {
  const struct sfk_host *h = qi->h;
  struct quic_peer *p;

  TAILQ_FOREACH(p, &qi->peers, link) {
    struct sfk_peer_event ev;

    if (!p->st_dirty || qi->stopped)
      continue;
    p->st_dirty = 0;
    if (!peer_told_differs(p))
      continue;
    p->told = p->st;
    p->told_path = p->st_path;
    p->told_err = p->st_err;
    p->told_addr = p->st_addr;
    p->told_addrlen = p->st_addrlen;
    memcpy(p->told_why, p->st_why, sizeof(p->told_why));
    memset(&ev, 0, sizeof(ev));
    ev.pid = p->pid;
    ev.state = p->told;
    ev.path = p->told_path;
    ev.addr = p->told_addrlen ? (const struct sockaddr *)&p->told_addr : NULL;
    ev.addrlen = p->told_addrlen;
    ev.err = p->told_err;
    ev.why = p->told_why[0] ? p->told_why : NULL;
    h->peer_state(h, &ev);
  }
}

const char *quic_peer_why(struct quic_peer *p, char *buf, size_t bufsz) {
  const struct quic_inst *qi = p->qi;
  char d[32];

  if (p->why[0])
    return p->why;
  if (p->present && !p->addrlen && quic_is_client_of(qi, p->pid))
    return "no address published for this peer yet";
  quic_dur_str(qi->cfg.handshake_timeout_ms, d, sizeof(d));
  if (quic_is_client_of(qi, p->pid))
    snprintf(buf, bufsz,
             "no answer to the handshake in %s (peer offline, "
             "or its NAT filters us)%s",
             d, quic_path_policy_note(qi));
  else
    snprintf(buf, bufsz,
             "no handshake from the peer in %s (peer offline, "
             "or its NAT filters us)%s",
             d, quic_path_policy_note(qi));
  return buf;
}

/* ------------------------------------------------------------------ */
/* Scheduling                                                           */

/* Server side: should we punch towards p now (no handshake yet, or our
 * mapping moved)? */
static int wants_punch(const struct quic_peer *p, uint64_t now) {
  const struct quic_inst *qi = p->qi;

  if (!p->present || !p->addrlen || quic_is_client_of(qi, p->pid))
    return 0;
  return !p->conn || !(p->conn->flags & QCF_HS_DONE) ||
         now < p->punch_force_until_ns;
}

static int wants_dial(const struct quic_peer *p) {
  return p->present && p->addrlen && p->pin[0] &&
         quic_is_client_of(p->qi, p->pid) && !p->conn;
}

void quic_peer_schedule(struct quic_peer *p) {
  struct quic_inst *qi = p->qi;
  uint64_t now, t = UINT64_MAX, d;
  double delay;

  ev_timer_stop(qi->h->loop, &p->timer);
  if (!qi->started || qi->stopped)
    return;
  now = quic_now(qi);
  if (wants_dial(p)) {
    if (p->next_connect_ns == 0)
      p->next_connect_ns = now;
    t = p->next_connect_ns;
  }
  if (p->conn && !(p->conn->flags & QCF_HS_DONE) &&
      p->conn->path == SFK_PATH_DIRECT && !(p->conn->flags & QCF_SERVER) &&
      qi->h->relay_mode == SFK_RELAY_AUTO && qi->relay_usable) {
    d = p->conn->created_ns + qi->cfg.relay_fallback_ms * MS;
    if (d < t)
      t = d;
  }
  if (wants_punch(p, now)) {
    if (p->next_punch_ns == 0)
      p->next_punch_ns = now;
    if (p->next_punch_ns < t)
      t = p->next_punch_ns;
  }
  d = quic_stream_next_deadline(p);
  if (d < t)
    t = d;
  if (t == UINT64_MAX)
    return;
  delay = t > now ? (double)(t - now) / 1e9 : 0.;
  ev_timer_set(&p->timer, delay, 0.);
  ev_timer_start(qi->h->loop, &p->timer);
}

void quic_peer_backoff(struct quic_peer *p) {
  struct quic_inst *qi = p->qi;
  const struct sfk_host *h = qi->h;
  uint64_t ms = p->backoff_ms;

  p->next_connect_ns = quic_now(qi) + ms * MS;
  p->backoff_ms *= 2;
  if (p->backoff_ms > QUIC_BACKOFF_MAX_MS)
    p->backoff_ms = QUIC_BACKOFF_MAX_MS;
  /* Info on the first retry and when the backoff reaches its ceiling;
   * every other retry at debug. */
  if (p->attempts <= 1)
    h->log(h, SFK_LOG_INFO,
           "peer %u: dialling again in %" PRIu64 " ms, "
           "backing off to every %u s while it fails",
           p->pid, ms, QUIC_BACKOFF_MAX_MS / 1000);
  else if (ms < QUIC_BACKOFF_MAX_MS && p->backoff_ms == QUIC_BACKOFF_MAX_MS)
    h->log(h, SFK_LOG_INFO,
           "peer %u: no connection after %u attempts; "
           "dialling every %u s",
           p->pid, p->attempts, QUIC_BACKOFF_MAX_MS / 1000);
  else
    h->log(h, SFK_LOG_DEBUG,
           "peer %u: dialling again in %" PRIu64 " ms "
           "(attempt %u)",
           p->pid, ms, p->attempts + 1);
}

/* Server side: one punch, on the schedule described at the top. */
static void punch_tick(struct quic_peer *p, uint64_t now) {
  struct quic_inst *qi = p->qi;
  const struct sfk_host *h = qi->h;
  int up = p->conn && (p->conn->flags & QCF_HS_DONE);
  char a[64];
  int rv;

  quic_addr_str((const struct sockaddr *)&p->addr, p->addrlen, a, sizeof(a));
  if (p->punch_start_ns == 0) {
    p->punch_start_ns = now;
    p->punches = 0;
    p->punch_slow = 0;
    if (up)
      h->log(h, SFK_LOG_INFO,
             "peer %u: our mapping moved; punching towards "
             "%s every %u ms for %u s",
             p->pid, a, QUIC_PUNCH_INTERVAL_MS, QUIC_PUNCH_FAST_MS / 1000);
    else
      h->log(h, SFK_LOG_INFO,
             "peer %u: punching towards %s every %u ms "
             "until its handshake arrives",
             p->pid, a, QUIC_PUNCH_INTERVAL_MS);
    if (!up)
      quic_peer_state(p, SFK_PEER_CONNECTING, SFK_PATH_DIRECT,
                      (const struct sockaddr *)&p->addr, p->addrlen, 0,
                      "punching; waiting for its handshake");
  }
  rv = h->udp_send(h, SFK_PATH_DIRECT, (const struct sockaddr *)&p->addr,
                   p->addrlen, (const uint8_t *)QUIC_PUNCH, QUIC_PUNCH_LEN, 0);
  p->punches++;
  qi->stats.punches_sent++;
  h->log(h, SFK_LOG_DEBUG, "peer %u: punch %u to %s%s%s", p->pid, p->punches, a,
         rv ? ": " : "", rv ? strerror(-rv) : "");
  if (!p->punch_slow && now - p->punch_start_ns >= QUIC_PUNCH_FAST_MS * MS) {
    p->punch_slow = 1;
    if (!up)
      h->log(h, SFK_LOG_INFO,
             "peer %u: no handshake after %u punches in "
             "%u s; punching every %u s",
             p->pid, p->punches, QUIC_PUNCH_FAST_MS / 1000,
             QUIC_PUNCH_SLOW_MS / 1000);
  }
  p->next_punch_ns =
      now + (p->punch_slow ? QUIC_PUNCH_SLOW_MS : QUIC_PUNCH_INTERVAL_MS) * MS;
}

static void peer_timer_cb(struct ev_loop *loop, ev_timer *w, int revents) {
  struct quic_peer *p = w->data;
  struct quic_inst *qi = p->qi;
  uint64_t now = quic_now(qi);
  (void)loop;
  (void)revents;

  if (qi->stopped)
    return;
  if (p->conn && !(p->conn->flags & QCF_HS_DONE))
    quic_path_fallback(qi, p, now);
  if (wants_dial(p) && p->next_connect_ns <= now) {
    int path = quic_path_choose(qi, p);

    if (path < 0) {
      /* Relay mode 'always' and no relay yet: path_changed(RELAY) will
       * bring us back. */
      p->next_connect_ns = UINT64_MAX;
      quic_peer_state(p, SFK_PEER_CONNECTING, SFK_PATH_RELAY, NULL, 0, 0,
                      "waiting for the relay (relay mode 'always')");
    } else if (quic_conn_connect(p, path) != 0) {
      quic_peer_backoff(p);
    }
  }
  if (wants_punch(p, now) && p->next_punch_ns <= now)
    punch_tick(p, now);
  quic_stream_fail_pending(p, now, 0);
  quic_peer_schedule(p);
  quic_kick(qi);
}

/* Restart the punch schedule towards every client peer: our mapping
 * moved (path_changed(DIRECT)), so their NATs must learn the new one,
 * even where a connection is up. */
void quic_punch_restart_all(struct quic_inst *qi) {
  struct quic_peer *p;
  uint64_t now = quic_now(qi);

  TAILQ_FOREACH(p, &qi->peers, link) {
    if (quic_is_client_of(qi, p->pid) || !p->present || !p->addrlen)
      continue;
    p->punch_start_ns = 0;
    p->next_punch_ns = 0;
    p->punch_force_until_ns = now + QUIC_PUNCH_FAST_MS * MS;
    quic_peer_schedule(p);
  }
}

/* The static state of a peer without a connection, from the table. */
static void peer_table_state(struct quic_peer *p) {
  const struct quic_inst *qi = p->qi;

  if (p->conn || !p->present)
    return;
  if (!p->addrlen && quic_is_client_of(qi, p->pid))
    quic_peer_state(p, SFK_PEER_DOWN, SFK_PATH_DIRECT, NULL, 0, -EHOSTUNREACH,
                    "no address published for this peer yet");
  else if (!p->pin[0] && quic_is_client_of(qi, p->pid))
    quic_peer_state(p, SFK_PEER_DOWN, SFK_PATH_DIRECT, NULL, 0, -EHOSTUNREACH,
                    "no pin published for this peer yet");
  else if (!p->addrlen && p->st == SFK_PEER_UNKNOWN)
    quic_peer_state(p, SFK_PEER_IDLE, SFK_PATH_DIRECT, NULL, 0, 0,
                    "no address published for this peer yet; it dials us");
}

/* Bring our peers in line with the daemon's table (from quic_flush()). */
void quic_peers_sync(struct quic_inst *qi) {
  const struct sfk_host *h = qi->h;
  struct quic_peer *p, *next;
  size_t i, n = h->peer_count(h);

  qi->peers_dirty = 0;
  TAILQ_FOREACH(p, &qi->peers, link) p->present = -p->present;
  for (i = 0; i < n; i++) {
    const struct sfk_peer *e = h->peer_at(h, i);
    int changed;

    if (!e || e->pid == h->self_pid)
      continue;
    p = quic_peer_get(qi, e->pid);
    if (!p)
      continue;
    p->present = 1;
    changed = peer_update(p, e);
    if ((changed & 2) && p->conn && (p->conn->flags & QCF_VERIFIED) &&
        strcmp(p->conn->pin, p->pin) != 0)
      quic_conn_doom(p->conn, -ENOTCONN, "the peer's pin changed");
    if (changed)
      p->why[0] = '\0'; /* the last failure was about the old entry */
    if (changed & 1) {
      p->direct_failed = 0;
      p->backoff_ms = QUIC_BACKOFF_MIN_MS;
      if (quic_is_client_of(qi, p->pid)) {
        /* ngtcp2 0.12 lets a client migrate only to a new local address
         * (ngtcp2_conn_initiate_migration: INVALID_ARGUMENT otherwise)
         * and drops packets from any other server address, so a server
         * that moved means a new connection. */
        if (p->conn && p->addrlen &&
            !quic_addr_eq((const struct sockaddr *)&p->conn->remote,
                          p->conn->remotelen, (const struct sockaddr *)&p->addr,
                          p->addrlen)) {
          char a[64], why[QUIC_WHY_MAX];

          snprintf(why, sizeof(why),
                   "the peer's address changed to %s; "
                   "reconnecting",
                   quic_addr_str((const struct sockaddr *)&p->addr, p->addrlen,
                                 a, sizeof(a)));
          quic_conn_doom(p->conn, -ENOTCONN, why);
        }
        p->next_connect_ns = 0;
      } else {
        /* The client moved (a new mapping or relayed address): punch
         * towards it now, even while the old connection lingers until
         * peer_timeout, so its new handshake gets through our NAT. */
        p->next_punch_ns = 0;
        p->punch_start_ns = 0;
        p->punch_force_until_ns = quic_now(qi) + QUIC_PUNCH_FAST_MS * MS;
      }
      if (p->permitted)
        quic_path_unpermit(qi, p);
    }
    if (!quic_is_client_of(qi, p->pid) && p->addrlen && qi->relay_usable &&
        h->relay_mode != SFK_RELAY_NEVER)
      quic_path_permit(qi, p); /* clients may dial our relayed address */
    peer_table_state(p);
  }
  for (p = TAILQ_FIRST(&qi->peers); p; p = next) {
    next = TAILQ_NEXT(p, link);
    if (p->present < 0 || (p->present == 0 && !p->conn)) {
      p->present = 0;
      if (p->conn)
        quic_conn_doom(p->conn, -ENOTCONN, "the peer left the registry");
      else if (p->st != SFK_PEER_UNKNOWN && p->st != SFK_PEER_DOWN)
        quic_peer_state(p, SFK_PEER_DOWN, SFK_PATH_DIRECT, NULL, 0, -ENOTCONN,
                        "the peer left the registry");
      quic_path_unpermit(qi, p);
      quic_stream_fail_pending(p, 0, 1);
    }
    quic_peer_schedule(p);
  }
}

/* ------------------------------------------------------------------ */
/* Punches received                                                     */

uint32_t quic_peer_by_addr(struct quic_inst *qi, const struct sockaddr *sa,
                           socklen_t len, int want_client) {
  const struct sfk_host *h = qi->h;
  size_t i, n = h->peer_count(h);

  for (i = 0; i < n; i++) {
    const struct sfk_peer *e = h->peer_at(h, i);
    if (!e || e->pid == h->self_pid || !e->addrlen)
      continue;
    if (want_client != (e->pid > h->self_pid))
      continue;
    if (quic_addr_eq((const struct sockaddr *)&e->addr, e->addrlen, sa, len))
      return e->pid;
  }
  return SFK_PID_NONE;
}

uint32_t quic_peer_known_src(struct quic_inst *qi, const struct sockaddr *sa,
                             socklen_t len) {
  const struct sfk_host *h = qi->h;
  uint32_t pid = quic_peer_by_addr(qi, sa, len, 1);
  uint64_t now = quic_now(qi);
  struct quic_peer *p;
  size_t i;

  if (pid != SFK_PID_NONE)
    return pid;
  TAILQ_FOREACH(p, &qi->peers, link) {
    if (!p->present || p->pid <= h->self_pid)
      continue;
    for (i = 0; i < QUIC_RECENT_ADDRS; i++) {
      const struct quic_recent_addr *r = &p->recent[i];
      if (r->addrlen && now - r->seen_ns < QUIC_RECENT_TTL_MS * MS &&
          quic_addr_eq((const struct sockaddr *)&r->addr, r->addrlen, sa,
                       len))
        return p->pid;
    }
  }
  return SFK_PID_NONE;
}

void quic_peer_note_addr(struct quic_peer *p, const struct sockaddr *sa,
                         socklen_t len) {
  struct quic_recent_addr *r, *slot = &p->recent[0];
  size_t i;

  if (len > sizeof(slot->addr))
    return;
  for (i = 0; i < QUIC_RECENT_ADDRS; i++) {
    r = &p->recent[i];
    if (r->addrlen &&
        quic_addr_eq((const struct sockaddr *)&r->addr, r->addrlen, sa, len)) {
      slot = r;
      break;
    }
    if (!r->addrlen || r->seen_ns < slot->seen_ns)
      slot = r; /* an empty one, else the least recently used */
    if (!r->addrlen)
      break;
  }
  memcpy(&slot->addr, sa, len);
  slot->addrlen = len;
  slot->seen_ns = quic_now(p->qi);
}

/*
 * A punch from the server side of a peer.  Without a connection: dial now
 * (it is up) unless it refused us.  With an established one older than a few
 * seconds: the peer punches only while it has no connection to us (or its
 * mapping moved), so it probably restarted; send a PING at once so its
 * stateless reset ends our stale connection.
 */
void quic_punch_recv(struct quic_inst *qi, int path,
                     const struct sockaddr *from, socklen_t fromlen) {
  uint32_t pid = quic_peer_by_addr(qi, from, fromlen, 0);
  struct quic_peer *p;
  (void)path;

  if (pid == SFK_PID_NONE || !(p = quic_peer_find(qi, pid))) {
    qi->stats.drop_unknown_punch++;
    return;
  }
  qi->stats.punches_received++;
  if (!p->conn) {
    /* Dial at once unless the peer actively refused us last time (a pin
     * mismatch would otherwise retry at the punch rate). */
    if ((p->attempts == 0 || p->last_err == -ETIMEDOUT) &&
        p->next_connect_ns > quic_now(qi) + 100 * MS) {
      p->next_connect_ns = 1;
      quic_peer_schedule(p);
    }
    return;
  }
  if ((p->conn->flags & QCF_HS_DONE) &&
      quic_now(qi) - p->conn->up_ns > 2000 * MS) {
    p->conn->flags |= QCF_PROBE;
    quic_conn_dirty(p->conn);
  }
}

/* ------------------------------------------------------------------ */
/* Status                                                               */

void quic_op_peer_report(void *self, uint32_t pid, struct sfk_report *r) {
  struct quic_inst *qi = self;
  struct quic_peer *p = quic_peer_find(qi, pid);
  struct quic_conn *qc;

  if (!p)
    return;
  r->str(r, "role", quic_is_client_of(qi, pid) ? "client" : "server");
  if (p->why[0])
    r->str(r, "last_failure", p->why);
  if (quic_is_client_of(qi, pid))
    r->num(r, "dial_attempts", p->attempts);
  else
    r->num(r, "punches", p->punches);
  qc = p->conn;
  if (!qc || !qc->conn)
    return;
  /* Path and remote address are the daemon's (from peer_state), next
   * to these in the same object: not repeated here. */
  if (qc->flags & QCF_HS_DONE) {
    ngtcp2_conn_stat cs;

    ngtcp2_conn_get_conn_stat(qc->conn, &cs);
    /* Microseconds: on a LAN or in a lab the RTT is below 1 ms. */
    r->num(r, "rtt_us", (int64_t)(cs.smoothed_rtt / NGTCP2_MICROSECONDS));
    r->num(r, "rttvar_us", (int64_t)(cs.rttvar / NGTCP2_MICROSECONDS));
    r->num(r, "min_rtt_us", (int64_t)(cs.min_rtt / NGTCP2_MICROSECONDS));
    r->str(r, "congestion", quic_cc_name(qc->cc_algo));
    r->num(r, "cwnd", (int64_t)cs.cwnd);
    r->num(r, "bytes_in_flight", (int64_t)cs.bytes_in_flight);
    /* The congestion controller's view of the path's rate (bit/s). */
    r->num(r, "delivery_rate_bps", (int64_t)(cs.delivery_rate_sec * 8));
    /* The queue governor: on or off now, and its cap on bulk data in
     * flight (0: none; while off, the ceiling's). */
    r->str(r, "queue", quic_queue_on(qc, quic_now(qi)) ? "on" : "off");
    r->num(r, "queue_cap",
           qc->q_cap == UINT64_MAX ? 0 : (int64_t)qc->q_cap);
    r->num(r, "pto_count", (int64_t)cs.pto_count);
    r->num(r, "age_s", (int64_t)((quic_now(qi) - qc->up_ns) / 1000000000u));
  }
  r->num(r, "bytes_sent", (int64_t)qc->tx_bytes);
  r->num(r, "bytes_received", (int64_t)qc->rx_bytes);
  r->num(r, "packets_sent", (int64_t)qc->tx_pkts);
  r->num(r, "packets_received", (int64_t)qc->rx_pkts);
  r->num(r, "send_memory", (int64_t)qc->mem);
  /* ngtcp2 0.12 counts no lost packets for us (no loss callback for
   * stream frames); pto_count above shows a path in trouble. */
  r->num(r, "streams_open", (int64_t)quic_conn_nstreams(qc));
}

void quic_report(struct quic_inst *qi, struct sfk_report *r) {
  const struct quic_stats *s = &qi->stats;
  struct quic_conn *qc;
  int64_t nconns = 0;

  TAILQ_FOREACH(qc, &qi->conns, link) nconns++;
  r->num(r, "connections", nconns);
  r->num(r, "connections_accepted", (int64_t)s->accepted);
  r->num(r, "connections_dialled", (int64_t)s->dialled);
  r->num(r, "handshakes_failed", (int64_t)s->hs_failed);
  r->num(r, "stateless_resets_sent", (int64_t)s->sr_sent);
  r->num(r, "stateless_resets_received", (int64_t)s->sr_received);
  r->num(r, "punches_sent", (int64_t)s->punches_sent);
  r->num(r, "punches_received", (int64_t)s->punches_received);
  r->num(r, "migrations", (int64_t)s->migrations);
  r->num(r, "send_memory", (int64_t)qi->mem);
  r->num(r, "send_memory_limit", (int64_t)qi->cfg.send_memory);
  /* Handshake admission under load (quic_conn_accept). */
  r->begin(r, "handshakes", 0);
  r->num(r, "from_known_address", (int64_t)s->hs_known);
  r->num(r, "address_validated", (int64_t)s->hs_validated);
  r->num(r, "retries_sent", (int64_t)s->retry_sent);
  r->num(r, "evicted", (int64_t)s->hs_evicted);
  r->end(r);
  r->str(r, "relay",
         !qi->relay_present ? "none"
         : qi->relay_usable ? "usable"
                            : "not usable");
  r->begin(r, "dropped", 0);
  r->num(r, "not_quic", (int64_t)s->drop_not_quic);
  r->num(r, "too_many_handshakes", (int64_t)s->drop_busy);
  r->num(r, "bad_retry_token", (int64_t)s->drop_bad_token);
  r->num(r, "retry_rate_limited", (int64_t)s->drop_retry_limit);
  r->num(r, "bad_initial", (int64_t)s->drop_bad_initial);
  r->num(r, "unknown_connection", (int64_t)s->drop_unknown_cid);
  r->num(r, "punch_from_unknown_address", (int64_t)s->drop_unknown_punch);
  r->end(r);
}
