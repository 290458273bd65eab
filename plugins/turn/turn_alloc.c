/*
 * The TURN allocation: resolve the server, Allocate (the 401 round is
 * turn_txn.c's), Refresh at half the granted lifetime, check the
 * allocation early when relayed peers fall silent (a restarted server
 * forgets it: 437), and get a new one after a loss.  Failures back off by
 * cause so that no mistake becomes a storm: a lost server is tried again
 * after 1 s doubling to 30 s, refused credentials after 60 s doubling to
 * 15 min, a full server after 30 s doubling to 5 min.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "turn.h"

/* A probe when we sent through the allocation in the last 3 s but heard
 * nothing from the server for 6 s (peers keep alive every 5 s), at most
 * every 6 s. */
#define LIVE_TX_NS 3000000000ull
#define LIVE_SILENT_NS 6000000000ull
#define LIVE_EVERY_NS 6000000000ull
/* A refused permission or channel may mean the server lost the
 * allocation (restarted): ask at most every 2 s. */
#define CHECK_EVERY_NS 2000000000ull
#define NS 1000000000ull

enum backoff { BO_TRANSIENT, BO_CREDENTIALS, BO_CAPACITY };

static const char *const state_names[] = {
    [TS_IDLE] = "idle",         [TS_RESOLVING] = "resolving",
    [TS_ALLOCATING] = "allocating", [TS_READY] = "ready",
    [TS_WAITING] = "waiting"};

const char *turn_state_name(int state) {
  return state >= 0 && state <= TS_WAITING ? state_names[state] : "?";
}

static unsigned backoff_s(enum backoff b, unsigned fails) {
  static const unsigned first[] = {1, 60, 30}, cap[] = {30, 900, 300};
  unsigned s = first[b];
  for (unsigned i = 1; i < fails && s < cap[b]; i++)
    s *= 2;
  return s < cap[b] ? s : cap[b];
}

/* Tell the core the relay is gone, once per distinct reason. */
static void announce_loss(struct turn *t) {
  if (!t->announced && strcmp(t->reported, t->why) == 0)
    return;
  t->announced = 0;
  snprintf(t->reported, sizeof t->reported, "%s", t->why);
  t->h->relay_changed(t->h, NULL, 0, t->err, t->why);
}

/* The attempt failed: wait, then start over from the name. */
static void alloc_fail(struct turn *t, int err, enum backoff b,
                       const char *hint, const char *fmt, ...)
    SFK_PRINTF(5, 6);
static void alloc_fail(struct turn *t, int err, enum backoff b,
                       const char *hint, const char *fmt, ...) {
  const struct sfk_host *h = t->h;
  va_list ap;
  unsigned wait;

  va_start(ap, fmt);
  vsnprintf(t->why, sizeof t->why, fmt, ap);
  va_end(ap);
  t->err = err;
  wait = backoff_s(b, ++t->fails[b]);
  t->retry_ns = h->now_ns(h) + wait * NS;
  t->state = TS_WAITING;
  turn_txn_cancel_all(t);
  turn_peer_reset(t);
  memset(&t->relayed, 0, sizeof t->relayed);
  t->relayedlen = 0;
  h->log(h, b == BO_CREDENTIALS ? SFK_LOG_ERROR : SFK_LOG_WARN,
         "%s%s; next try in %u s", t->why, hint ? hint : "", wait);
  announce_loss(t);
}

/* A working allocation went away: start over after the shortest wait. */
static void alloc_lost(struct turn *t, int err, const char *what) {
  memset(t->fails, 0, sizeof t->fails);
  alloc_fail(t, err, BO_TRANSIENT, NULL, "allocation on %s lost: %s",
             t->cfg.uri, what);
}

static void resolve_cb(void *arg, int err, const struct sfk_addr *v,
                       size_t n) {
  struct turn *t = arg;
  size_t i;

  t->res = NULL;
  if (err < 0) {
    alloc_fail(t, err, BO_TRANSIENT, NULL, "TURN server %s: cannot resolve %s: %s",
               t->cfg.uri, t->cfg.host,
               err == -ENOENT ? "no such name" : "temporary failure");
    return;
  }
  for (i = 0; i < n; i++)
    if (v[i].ss.ss_family == AF_INET || t->sock_v6)
      break;
  if (i == n || v[i].len > sizeof t->server) {
    alloc_fail(t, -EAFNOSUPPORT, BO_TRANSIENT, NULL,
               "TURN server %s: %s has no address the UDP socket (IPv4) can "
               "reach",
               t->cfg.uri, t->cfg.host);
    return;
  }
  memcpy(&t->server, &v[i].ss, v[i].len);
  t->serverlen = v[i].len;
  turn_to_wire(t, &t->server, &t->serverlen);
  sa_str((struct sockaddr *)&t->server, t->server_str, sizeof t->server_str);
  t->state = TS_ALLOCATING;
  if ((err = turn_txn_start(t, TR_ALLOCATE, -1)) < 0)
    alloc_fail(t, err, BO_TRANSIENT, NULL, "TURN server %s: Allocate not sent: %s",
               t->cfg.uri, strerror(-err));
}

void turn_alloc_begin(struct turn *t) {
  const struct sfk_host *h = t->h;
  int rc;

  if (t->res) {
    h->resolve_cancel(h, t->res);
    t->res = NULL;
  }
  turn_txn_cancel_all(t);
  t->state = TS_RESOLVING;
  rc = h->resolve(h, t->cfg.host, t->cfg.port,
                  t->sock_v6 ? AF_UNSPEC : AF_INET, resolve_cb, t, &t->res);
  if (rc < 0) {
    t->res = NULL;
    alloc_fail(t, rc, BO_TRANSIENT, NULL, "TURN server %s: cannot resolve %s: %s",
               t->cfg.uri, t->cfg.host, strerror(-rc));
  }
}

static void alloc_ready(struct turn *t, const struct stun_msg *m) {
  const struct sfk_host *h = t->h;
  struct stun_attr a;
  struct sockaddr_storage relayed, mapped = {0};
  socklen_t relayedlen = 0, mappedlen = 0;
  uint32_t life = t->cfg.lifetime_s;
  uint64_t now = h->now_ns(h);
  char rs[SA_STR_MAX], ms[SA_STR_MAX] = "unknown";

  if (stun_find(m, STUN_A_XOR_RELAYED_ADDRESS, &a) < 0 ||
      stun_attr_addr(m, &a, 1, &relayed, &relayedlen) < 0) {
    alloc_fail(t, -EPROTO, BO_TRANSIENT, NULL,
               "TURN server %s answered Allocate without a usable "
               "XOR-RELAYED-ADDRESS",
               t->cfg.uri);
    return;
  }
  if (stun_find(m, STUN_A_XOR_MAPPED_ADDRESS, &a) == 0 &&
      stun_attr_addr(m, &a, 1, &mapped, &mappedlen) == 0)
    sa_str((struct sockaddr *)&mapped, ms, sizeof ms);
  if (stun_find(m, STUN_A_LIFETIME, &a) == 0)
    stun_attr_u32(&a, &life);
  if (life < 2)
    life = 2;
  t->relayed = relayed;
  t->relayedlen = relayedlen;
  t->mapped = mapped;
  t->mappedlen = mappedlen;
  t->lifetime_s = life;
  t->refresh_ns = now + (uint64_t)life * NS / 2;
  t->expires_ns = now + (uint64_t)life * NS;
  t->last_rx_ns = now;
  t->next_chan = STUN_CHAN_MIN;
  t->state = TS_READY;
  memset(t->fails, 0, sizeof t->fails);
  t->mismatches = 0;
  t->err = 0;
  t->why[0] = '\0';
  t->reported[0] = '\0';
  t->n.allocations++;
  h->log(h, SFK_LOG_INFO,
         "allocated relayed address %s on %s (%s; we are %s there; lifetime "
         "%u s)",
         sa_str((struct sockaddr *)&relayed, rs, sizeof rs), t->cfg.uri,
         t->server_str, ms, life);
  turn_peer_reset(t);
  t->announced = 1;
  turn_to_socket(t, &relayed, &relayedlen);
  h->relay_changed(h, (struct sockaddr *)&relayed, relayedlen, 0, NULL);
  turn_peer_tick(t, now);
}

/* An error answer to Allocate. */
static void allocate_refused(struct turn *t, int code, const char *reason) {
  switch (code) {
  case 437:
    /* Our address still holds an allocation: from a run that ended
     * without Deallocate, or one the server is still closing (coturn
     * takes a moment after a Deallocate).  Release it, wait a second,
     * allocate again. */
    if (++t->mismatches <= 3) {
      t->h->log(t->h, SFK_LOG_INFO,
                "%s still holds an allocation for our address (437 %s); "
                "releasing it",
                t->cfg.uri, reason);
      if (turn_txn_start(t, TR_DEALLOCATE, -1) == 0)
        return;
    }
    alloc_fail(t, -EADDRINUSE, BO_TRANSIENT, NULL,
               "TURN server %s keeps answering 437 %s to Allocate", t->cfg.uri,
               reason);
    return;
  case 403:
    alloc_fail(t, -EPERM, BO_CREDENTIALS,
               " (the server's policy; ask its operator)",
               "TURN server %s forbids allocations for user '%s' (403 %s)",
               t->cfg.uri, t->cfg.user, reason);
    return;
  case 486:
    alloc_fail(t, -EDQUOT, BO_CAPACITY, NULL,
               "TURN server %s: allocation quota of user '%s' reached (486 %s)",
               t->cfg.uri, t->cfg.user, reason);
    return;
  case 508:
    alloc_fail(t, -ENOSPC, BO_CAPACITY, NULL,
               "TURN server %s is out of relay ports (508 %s)", t->cfg.uri,
               reason);
    return;
  case 300:
    alloc_fail(t, -EPROTO, BO_CREDENTIALS,
               " (configure the other server in transport.relay.server)",
               "TURN server %s redirects to another server (300 %s)",
               t->cfg.uri, reason);
    return;
  default:
    alloc_fail(t, -EPROTO, BO_TRANSIENT, NULL,
               "TURN server %s refused Allocate: %d %s", t->cfg.uri, code,
               reason);
  }
}

/* 401/403 to an Allocate or a Refresh: the same failure, the same hint. */
static void credentials_refused(struct turn *t, int code, const char *reason) {
  alloc_fail(t, -EACCES, BO_CREDENTIALS,
             " (check 'username' and 'password_file' in transport.relay)",
             "TURN server %s refused the credentials of user '%s' (%d %s)",
             t->cfg.uri, t->cfg.user, code, reason);
}

void turn_alloc_answer(struct turn *t, int kind, int err, int code,
                       const char *reason, const struct stun_msg *m) {
  const struct sfk_host *h = t->h;
  uint64_t now = h->now_ns(h);

  if (!reason)
    reason = "";
  switch (kind) {
  case TR_ALLOCATE:
    if (t->state != TS_ALLOCATING)
      return;
    if (err == 0)
      alloc_ready(t, m);
    else if (err == -EACCES)
      credentials_refused(t, code, reason);
    else if (err == -EPROTO && code)
      allocate_refused(t, code, reason);
    else if (err == -ETIMEDOUT)
      alloc_fail(t, err, BO_TRANSIENT, NULL,
                 "no answer from TURN server %s (%s) to Allocate after %d "
                 "tries",
                 t->cfg.uri, t->server_str, TURN_ATTEMPTS);
    else
      alloc_fail(t, err, BO_TRANSIENT, NULL,
                 "TURN server %s: Allocate failed: %s%s%s", t->cfg.uri,
                 strerror(err < 0 ? -err : EIO), *reason ? ": " : "", reason);
    return;
  case TR_DEALLOCATE:
    /* After a 437: whatever the answer, allocate again in a second (not
     * a failure: no backoff, no warning). */
    if (t->state == TS_ALLOCATING) {
      t->state = TS_WAITING;
      t->retry_ns = now + NS;
    }
    return;
  case TR_REFRESH:
    if (t->state != TS_READY)
      return;
    if (err == 0) {
      struct stun_attr a;
      uint32_t life = t->lifetime_s;
      if (stun_find(m, STUN_A_LIFETIME, &a) == 0)
        stun_attr_u32(&a, &life);
      if (life < 2)
        life = 2;
      t->lifetime_s = life;
      t->refresh_ns = now + (uint64_t)life * NS / 2;
      t->expires_ns = now + (uint64_t)life * NS;
      t->n.refreshes++;
    } else if (err == -EPROTO && code == 437) {
      alloc_lost(t, -ENOENT, "the server no longer knows it (437: it "
                             "restarted, or the allocation expired)");
    } else if (err == -ETIMEDOUT) {
      char w[96];
      snprintf(w, sizeof w, "no answer to Refresh after %d tries",
               TURN_ATTEMPTS);
      alloc_lost(t, err, w);
    } else if (err == -EACCES) {
      credentials_refused(t, code, reason);
    } else {
      char w[192];
      snprintf(w, sizeof w, "Refresh refused: %d %s", code, reason);
      alloc_lost(t, err, w);
    }
    return;
  default:
    return;
  }
}

void turn_alloc_tick(struct turn *t, uint64_t now) {
  const struct sfk_host *h = t->h;

  if (t->state == TS_WAITING && now >= t->retry_ns) {
    turn_alloc_begin(t);
    return;
  }
  if (t->state != TS_READY)
    return;
  if (now >= t->expires_ns) {
    alloc_lost(t, -ETIMEDOUT, "it expired before a Refresh was answered");
    return;
  }
  if (turn_txn_busy(t, TR_REFRESH, -1))
    return;
  if (now >= t->refresh_ns) {
    t->refresh_ns = now + 30 * NS; /* until the answer sets it */
    turn_txn_start(t, TR_REFRESH, -1);
  } else if (t->last_tx_ns + LIVE_TX_NS > now &&
             now > t->last_rx_ns + LIVE_SILENT_NS &&
             now > t->probe_ns + LIVE_EVERY_NS) {
    t->probe_ns = now;
    t->n.probes++;
    h->log(h, SFK_LOG_DEBUG,
           "nothing from %s for %.0f s while sending: checking the "
           "allocation",
           t->cfg.uri, (double)(now - t->last_rx_ns) / 1e9);
    turn_txn_start(t, TR_REFRESH, -1);
  }
}

void turn_alloc_check(struct turn *t, const char *why) {
  const struct sfk_host *h = t->h;
  uint64_t now = h->now_ns(h);

  if (t->state != TS_READY || turn_txn_busy(t, TR_REFRESH, -1) ||
      now < t->probe_ns + CHECK_EVERY_NS)
    return;
  t->probe_ns = now;
  t->n.probes++;
  h->log(h, SFK_LOG_DEBUG, "%s: checking the allocation on %s", why,
         t->cfg.uri);
  turn_txn_start(t, TR_REFRESH, -1);
}

void turn_alloc_release(struct turn *t) {
  uint8_t tid[STUN_TID_LEN], buf[TURN_REQ_MAX];
  size_t len;

  if (t->state != TS_READY)
    return;
  /* One datagram, no answer awaited (we are stopping): the server frees
   * the relayed port now instead of at the end of the lifetime. */
  if (t->h->random(t->h, tid, sizeof tid) == 0 &&
      turn_txn_encode(t, TR_DEALLOCATE, -1, tid, buf, sizeof buf, &len) == 0 &&
      turn_send_raw(t, buf, len) == 0)
    t->h->log(t->h, SFK_LOG_INFO, "released the allocation on %s", t->cfg.uri);
  t->state = TS_IDLE;
}
