/*
 * TURN requests.  Each transaction encodes its request once (with the
 * long-term credentials once the server's realm is known) and resends it
 * unchanged on a doubling timer.  Answers are matched by transaction id.
 * A success must carry a correct MESSAGE-INTEGRITY when we sent
 * credentials (RFC 8489 9.2.5); an error may lack one, but a wrong one
 * is dropped like a forgery.
 *
 * 401 and 438 are handled here for every kind of request: the request is
 * issued again, as a new transaction, with the realm and nonce the server
 * just gave.  A 401 to a request that already carried those credentials
 * means they are wrong, which is the caller's to report.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "turn.h"

/* 401 rounds (the first is expected) and 438 rounds per request. */
#define MAX_ROUNDS 3

static const uint16_t req_method[] = {
    [TR_ALLOCATE] = STUN_ALLOCATE,
    [TR_REFRESH] = STUN_REFRESH,
    [TR_DEALLOCATE] = STUN_REFRESH,
    [TR_PERMISSION] = STUN_CREATE_PERMISSION,
    [TR_CHANNEL] = STUN_CHANNEL_BIND,
};

static const char *const req_name[] = {
    [TR_ALLOCATE] = "Allocate",
    [TR_REFRESH] = "Refresh",
    [TR_DEALLOCATE] = "Refresh (lifetime 0)",
    [TR_PERMISSION] = "CreatePermission",
    [TR_CHANNEL] = "ChannelBind",
};

int turn_txn_encode(struct turn *t, int kind, int slot,
                    const uint8_t tid[STUN_TID_LEN], uint8_t *buf, size_t cap,
                    size_t *len) {
  struct stun_writer w;
  const struct turn_peer *p = slot >= 0 ? &t->peer[slot] : NULL;
  int rc = stun_enc_init(&w, buf, cap, stun_type(req_method[kind], STUN_REQUEST),
                         tid);

  switch (kind) {
  case TR_ALLOCATE:
    if (rc == 0)
      rc = stun_enc_u32(&w, STUN_A_REQUESTED_TRANSPORT, STUN_TRANSPORT_UDP);
    if (rc == 0)
      rc = stun_enc_u32(&w, STUN_A_LIFETIME, t->cfg.lifetime_s);
    break;
  case TR_REFRESH:
  case TR_DEALLOCATE:
    if (rc == 0)
      rc = stun_enc_u32(&w, STUN_A_LIFETIME,
                        kind == TR_REFRESH ? t->cfg.lifetime_s : 0);
    break;
  case TR_CHANNEL:
  case TR_PERMISSION:
    if (rc == 0 && kind == TR_CHANNEL)
      rc = stun_enc_u32(&w, STUN_A_CHANNEL_NUMBER, (uint32_t)p->chan << 16);
    if (rc == 0)
      rc = stun_enc_xaddr(&w, STUN_A_XOR_PEER_ADDRESS,
                          (const struct sockaddr *)&p->addr, p->addrlen);
    break;
  default:
    return -EINVAL;
  }
  if (t->have_key) {
    if (rc == 0)
      rc = stun_enc_str(&w, STUN_A_USERNAME, t->cfg.user);
    if (rc == 0)
      rc = stun_enc_str(&w, STUN_A_REALM, t->realm);
    if (rc == 0)
      rc = stun_enc_str(&w, STUN_A_NONCE, t->nonce);
    if (rc == 0)
      rc = stun_enc_integrity(&w, t->key, sizeof t->key);
  }
  if (rc == 0)
    rc = stun_enc_fingerprint(&w);
  if (rc < 0)
    return rc;
  *len = stun_enc_len(&w);
  return 0;
}

static void txn_send(struct turn_txn *x) {
  struct turn *t = x->t;
  int rc;

  x->sent++;
  t->n.requests++;
  if (x->sent > 1)
    t->n.retransmits++;
  rc = turn_send_raw(t, x->req, x->reqlen);
  /* A full socket buffer is a lost request: the timer covers it. */
  if (rc < 0 && t->h->log_enabled(t->h, SFK_LOG_DEBUG))
    t->h->log(t->h, SFK_LOG_DEBUG, "%s to %s not sent: %s", req_name[x->kind],
              t->server_str, strerror(-rc));
}

/* Hand a request's outcome to the module that asked. */
static void dispatch(struct turn *t, int kind, int slot, int err, int code,
                     const char *reason, const struct stun_msg *m) {
  if (kind == TR_PERMISSION || kind == TR_CHANNEL)
    turn_peer_answer(t, kind, slot, err, code, reason);
  else
    turn_alloc_answer(t, kind, err, code, reason, m);
}

/* End a transaction (its slot is free before the outcome is handled, so
 * the handler may start the next request). */
static void txn_finish(struct turn_txn *x, int err, int code,
                       const char *reason, const struct stun_msg *m) {
  ev_timer_stop(x->t->h->loop, &x->timer);
  x->active = 0;
  dispatch(x->t, x->kind, x->slot, err, code, reason, m);
}

static void txn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents) {
  struct turn_txn *x = w->data;
  (void)loop;
  (void)revents;
  if (x->sent >= TURN_ATTEMPTS) {
    txn_finish(x, -ETIMEDOUT, 0, NULL, NULL);
    return;
  }
  txn_send(x);
  if (x->wait_s < TURN_RTO_MAX_MS / 1000.)
    x->wait_s *= 2;
  ev_timer_set(&x->timer, x->wait_s, 0.);
  ev_timer_start(x->t->h->loop, &x->timer);
}

static int txn_start_round(struct turn *t, int kind, int slot,
                           unsigned rounds) {
  struct turn_txn *x = NULL;
  int rc;

  for (size_t i = 0; i < TURN_NTXN && !x; i++)
    if (!t->txn[i].active)
      x = &t->txn[i];
  if (!x)
    return -EAGAIN;
  if ((rc = t->h->random(t->h, x->tid, sizeof x->tid)) < 0)
    return rc;
  rc = turn_txn_encode(t, kind, slot, x->tid, x->req, sizeof x->req,
                       &x->reqlen);
  if (rc < 0)
    return rc;
  x->t = t;
  x->kind = kind;
  x->slot = slot;
  x->rounds = rounds;
  x->authed = t->have_key;
  x->sent = 0;
  x->wait_s = TURN_RTO_MS / 1000.;
  x->t0_ns = t->h->now_ns(t->h);
  x->active = 1;
  ev_timer_init(&x->timer, txn_timer_cb, x->wait_s, 0.);
  x->timer.data = x;
  ev_timer_start(t->h->loop, &x->timer);
  txn_send(x);
  return 0;
}

int turn_txn_start(struct turn *t, int kind, int slot) {
  return txn_start_round(t, kind, slot, 0);
}

int turn_txn_busy(const struct turn *t, int kind, int slot) {
  for (size_t i = 0; i < TURN_NTXN; i++)
    if (t->txn[i].active && t->txn[i].kind == kind &&
        (slot < 0 || t->txn[i].slot == slot))
      return 1;
  return 0;
}

void turn_txn_cancel_all(struct turn *t) {
  for (size_t i = 0; i < TURN_NTXN; i++)
    if (t->txn[i].active) {
      ev_timer_stop(t->h->loop, &t->txn[i].timer);
      t->txn[i].active = 0;
    }
}

/* A text attribute of the answer into buf; 0 or -ENOENT/-ENOSPC. */
static int answer_str(const struct stun_msg *m, uint16_t type, char *buf,
                      size_t bufsz) {
  struct stun_attr a;
  int rc = stun_find(m, type, &a);
  return rc < 0 ? rc : stun_attr_str(&a, buf, bufsz);
}

/* Take the server's realm and nonce from a 401 or 438; derive the key
 * again when the realm is new.  Returns 1 when either changed, 0 when
 * both are what we sent, or a negative errno (missing, overlong). */
static int take_credentials(struct turn *t, const struct stun_msg *m) {
  char realm[TURN_CRED_MAX], nonce[TURN_CRED_MAX];
  int changed = 0, rc;

  rc = answer_str(m, STUN_A_NONCE, nonce, sizeof nonce);
  if (rc < 0 || !nonce[0])
    return rc < 0 ? rc : -EBADMSG;
  rc = answer_str(m, STUN_A_REALM, realm, sizeof realm);
  if (rc == -ENOENT && t->realm[0]) /* 438 may omit an unchanged realm */
    snprintf(realm, sizeof realm, "%s", t->realm);
  else if (rc < 0 || !realm[0])
    return rc < 0 ? rc : -EBADMSG;
  if (!t->have_key || strcmp(realm, t->realm) != 0) {
    snprintf(t->realm, sizeof t->realm, "%s", realm);
    if ((rc = stun_long_term_key(t->cfg.user, t->realm, t->cfg.pass,
                                 t->key)) < 0)
      return rc;
    t->have_key = 1;
    changed = 1;
  }
  if (strcmp(nonce, t->nonce) != 0) {
    snprintf(t->nonce, sizeof t->nonce, "%s", nonce);
    changed = 1;
  }
  return changed;
}

/* The reason phrase as printable text (it comes from the network). */
static void reason_text(const uint8_t *r, size_t n, char *buf, size_t bufsz) {
  size_t i;
  /* Some servers (coturn's 400) count a terminating NUL in the phrase. */
  while (n && (r[n - 1] == '\0' || r[n - 1] == ' '))
    n--;
  if (n >= bufsz)
    n = bufsz - 1;
  for (i = 0; i < n; i++)
    buf[i] = r[i] >= 0x20 && r[i] < 0x7f ? (char)r[i] : '?';
  buf[i] = '\0';
}

void turn_txn_answer(struct turn *t, const struct stun_msg *m) {
  const struct sfk_host *h = t->h;
  struct turn_txn *x = NULL;
  int cls = stun_type_class(m->type), authed, code = 0, rc;
  char reason[128] = "";

  for (size_t i = 0; i < TURN_NTXN && !x; i++)
    if (t->txn[i].active && memcmp(t->txn[i].tid, m->tid, STUN_TID_LEN) == 0)
      x = &t->txn[i];
  if (!x || stun_type_method(m->type) != req_method[x->kind]) {
    /* Late answers to retransmitted requests end up here too. */
    t->n.dropped++;
    return;
  }
  if (stun_check_fingerprint(m) == -EBADMSG) {
    t->n.dropped++;
    h->log(h, SFK_LOG_DEBUG, "dropped an answer with a bad FINGERPRINT");
    return;
  }
  /* Did this request carry credentials?  Then the answer must prove it
   * knows them too (an error only if it says anything about it). */
  authed = x->authed;
  if (authed) {
    rc = stun_check_integrity(m, t->key, sizeof t->key);
    if ((cls == STUN_SUCCESS && rc != 0) || rc == -EACCES) {
      t->n.unauthenticated++;
      h->log(h, SFK_LOG_DEBUG, "dropped a %s answer from %s without a valid "
             "MESSAGE-INTEGRITY", req_name[x->kind], t->server_str);
      return;
    }
  }
  if (cls == STUN_SUCCESS) {
    txn_finish(x, 0, 0, NULL, m);
    return;
  }

  struct stun_attr a;
  const uint8_t *r = NULL;
  size_t rlen = 0;
  if (stun_find(m, STUN_A_ERROR_CODE, &a) < 0 ||
      stun_attr_error(&a, &code, &r, &rlen) < 0) {
    code = 0;
    snprintf(reason, sizeof reason, "an error answer without ERROR-CODE");
  } else {
    reason_text(r, rlen, reason, sizeof reason);
  }
  t->n.errors++;

  if ((code == 401 || code == 438) && x->rounds + 1 < MAX_ROUNDS) {
    int kind = x->kind, slot = x->slot;
    unsigned rounds = x->rounds + 1;
    rc = take_credentials(t, m);
    /* 401 with the very credentials we sent: they are wrong. */
    if (rc < 0 || (code == 401 && authed && rc == 0)) {
      txn_finish(x, rc < 0 ? -EPROTO : -EACCES, code, reason, m);
      return;
    }
    if (code == 438)
      t->n.stale_nonces++;
    ev_timer_stop(h->loop, &x->timer);
    x->active = 0;
    if ((rc = txn_start_round(t, kind, slot, rounds)) < 0)
      dispatch(t, kind, slot, rc, 0, NULL, NULL);
    return;
  }
  txn_finish(x, code == 401 ? -EACCES : -EPROTO, code, reason, m);
}
