/*
 * Peers of the allocation: a CreatePermission and a channel (ChannelBind)
 * per peer address the transport permits, both renewed before they
 * expire, and the data path.  Until a peer's channel is bound, datagrams
 * to it go as Send indications (36 bytes of framing for IPv4); after, as
 * ChannelData (4 bytes).  From the server, ChannelData and Data
 * indications are unframed and handed to the core with the peer's
 * address.
 *
 * Channel numbers are handed out in order and never reused within an
 * allocation (RFC 8656 12: a number stays bound to its address for its
 * lifetime); a peer that goes and comes back keeps its number.  With
 * 4096 numbers and at most TURN_MAX_PEERS slots, running out only
 * happens after thousands of address changes, and then the peer simply
 * stays on Send indications.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "turn.h"

#define NS 1000000000ull

static int find_slot(const struct turn *t, const struct sockaddr *wire) {
  for (int i = 0; i < TURN_MAX_PEERS; i++)
    if (t->peer[i].used &&
        sa_equal((const struct sockaddr *)&t->peer[i].addr, wire))
      return i;
  return -1;
}

static void forget_channel(struct turn *t, struct turn_peer *p) {
  if (p->chan >= STUN_CHAN_MIN && p->chan <= STUN_CHAN_MAX)
    t->chan_slot[p->chan - STUN_CHAN_MIN] = 0;
  p->chan = 0;
  p->bind = TG_NONE;
}

int turn_peer_permit(struct turn *t, const struct sockaddr *peer,
                     socklen_t len) {
  struct sockaddr_storage w;
  socklen_t wl = len;
  int i;

  if (len > sizeof w || (peer->sa_family != AF_INET &&
                         peer->sa_family != AF_INET6))
    return -EAFNOSUPPORT;
  memcpy(&w, peer, len);
  turn_to_wire(t, &w, &wl);
  i = find_slot(t, (struct sockaddr *)&w);
  if (i < 0) {
    /* A free slot, else one a departed peer kept. */
    for (int j = 0; j < TURN_MAX_PEERS && i < 0; j++)
      if (!t->peer[j].used)
        i = j;
    for (int j = 0; j < TURN_MAX_PEERS && i < 0; j++)
      if (!t->peer[j].wanted)
        i = j;
    if (i < 0)
      return -ENOSPC;
    forget_channel(t, &t->peer[i]);
    memset(&t->peer[i], 0, sizeof t->peer[i]);
    t->peer[i].used = 1;
    t->peer[i].addr = w;
    t->peer[i].addrlen = wl;
  }
  if (!t->peer[i].wanted) {
    t->peer[i].wanted = 1;
    t->peer[i].perm_due_ns = 0;
    t->peer[i].bind_due_ns = 0;
  }
  if (t->state == TS_READY)
    turn_peer_tick(t, t->h->now_ns(t->h));
  return 0;
}

void turn_peer_unpermit(struct turn *t, const struct sockaddr *peer,
                        socklen_t len) {
  struct sockaddr_storage w;
  socklen_t wl = len;
  int i;

  if (len > sizeof w)
    return;
  memcpy(&w, peer, len);
  turn_to_wire(t, &w, &wl);
  /* Kept (not wanted): the permission and channel just lapse. */
  if ((i = find_slot(t, (struct sockaddr *)&w)) >= 0)
    t->peer[i].wanted = 0;
}

void turn_peer_reset(struct turn *t) {
  for (int i = 0; i < TURN_MAX_PEERS; i++) {
    struct turn_peer *p = &t->peer[i];
    if (!p->used)
      continue;
    forget_channel(t, p);
    p->perm = TG_NONE;
    p->perm_due_ns = p->bind_due_ns = 0;
    if (!p->wanted)
      memset(p, 0, sizeof *p);
  }
}

void turn_peer_tick(struct turn *t, uint64_t now) {
  if (t->state != TS_READY)
    return;
  for (int i = 0; i < TURN_MAX_PEERS; i++) {
    struct turn_peer *p = &t->peer[i];
    if (!p->used || !p->wanted)
      continue;
    if (now >= p->perm_due_ns && !turn_txn_busy(t, TR_PERMISSION, i)) {
      if (turn_txn_start(t, TR_PERMISSION, i) == 0) {
        if (p->perm == TG_NONE)
          p->perm = TG_PENDING;
        p->perm_due_ns = UINT64_MAX; /* the answer sets the next time */
      } else {
        p->perm_due_ns = now + NS;
      }
    }
    if (now >= p->bind_due_ns && !turn_txn_busy(t, TR_CHANNEL, i)) {
      if (!p->chan) {
        if (t->next_chan > STUN_CHAN_MAX || t->next_chan < STUN_CHAN_MIN) {
          p->bind_due_ns = UINT64_MAX; /* Send indications from now on */
          continue;
        }
        p->chan = t->next_chan++;
        t->chan_slot[p->chan - STUN_CHAN_MIN] = (uint8_t)(i + 1);
      }
      if (turn_txn_start(t, TR_CHANNEL, i) == 0) {
        if (p->bind == TG_NONE)
          p->bind = TG_PENDING;
        p->bind_due_ns = UINT64_MAX;
      } else {
        p->bind_due_ns = now + NS;
      }
    }
  }
}

void turn_peer_answer(struct turn *t, int kind, int slot, int err, int code,
                      const char *reason) {
  const struct sfk_host *h = t->h;
  struct turn_peer *p;
  uint64_t now = h->now_ns(h), retry;
  char a[SA_STR_MAX];

  if (slot < 0 || slot >= TURN_MAX_PEERS || t->state != TS_READY)
    return;
  p = &t->peer[slot];
  if (!p->used)
    return;
  sa_str((struct sockaddr *)&p->addr, a, sizeof a);
  if (err == 0) {
    if (kind == TR_PERMISSION) {
      if (p->perm != TG_OK)
        h->log(h, SFK_LOG_DEBUG, "permission for %s on %s", a, t->cfg.uri);
      p->perm = TG_OK;
      p->perm_due_ns = now + TURN_PERM_REFRESH_S * NS;
    } else {
      if (p->bind != TG_OK)
        h->log(h, SFK_LOG_INFO, "channel 0x%04x bound to %s on %s", p->chan, a,
               t->cfg.uri);
      p->bind = TG_OK;
      p->bind_due_ns = now + TURN_CHAN_REFRESH_S * NS;
    }
    return;
  }
  /* A refusal by policy (403: the server does not relay to that address)
   * is retried slowly; a lost request soon. */
  retry = now + (code == 403 ? 60 : 5) * NS;
  if (code)
    h->log(h, code == 403 ? SFK_LOG_WARN : SFK_LOG_DEBUG,
           "%s for %s on %s refused: %d %s%s",
           kind == TR_PERMISSION ? "CreatePermission" : "ChannelBind", a,
           t->cfg.uri, code, reason,
           code == 403 ? " (the server refuses to relay to this address)" : "");
  else
    h->log(h, SFK_LOG_DEBUG, "%s for %s on %s failed: %s",
           kind == TR_PERMISSION ? "CreatePermission" : "ChannelBind", a,
           t->cfg.uri, strerror(err < 0 ? -err : EIO));
  /* Anything but a policy refusal may mean the server lost the
   * allocation (a restart answers 400 or 437 here): find out now, not
   * at the next Refresh minutes away. */
  if (code != 403)
    turn_alloc_check(t, kind == TR_PERMISSION ? "CreatePermission failed"
                                              : "ChannelBind failed");
  if (kind == TR_PERMISSION) {
    if (p->perm == TG_PENDING)
      p->perm = TG_NONE;
    p->perm_due_ns = retry;
  } else {
    /* 400 may mean the number is taken: bind a fresh one next time. */
    if (code == 400)
      forget_channel(t, p);
    else if (p->bind == TG_PENDING)
      p->bind = TG_NONE;
    p->bind_due_ns = retry;
  }
}

int turn_peer_send(struct turn *t, const struct sockaddr *to, socklen_t tolen,
                   const uint8_t *buf, size_t len) {
  struct sockaddr_storage w;
  socklen_t wl = tolen;
  struct turn_peer *p = NULL;
  int i, rc;

  if (t->state != TS_READY)
    return -ENETUNREACH;
  if (tolen > sizeof w)
    return -EINVAL;
  memcpy(&w, to, tolen);
  turn_to_wire(t, &w, &wl);
  if ((i = find_slot(t, (struct sockaddr *)&w)) >= 0)
    p = &t->peer[i];
  t->last_tx_ns = t->h->now_ns(t->h);
  if (p && p->bind == TG_OK) {
    if (len > sizeof t->out - STUN_CHAN_HDR_LEN)
      return -EMSGSIZE;
    stun_chan_header(t->out, p->chan, len);
    memcpy(t->out + STUN_CHAN_HDR_LEN, buf, len);
    rc = turn_send_raw(t, t->out, STUN_CHAN_HDR_LEN + len);
    t->n.chan_tx++;
  } else {
    struct stun_writer sw;
    /* Indications need no answer, so a counter makes the id unique. */
    uint32_t seq = ++t->ind_seq;
    memcpy(t->ind_tid + 8, &seq, 4);
    rc = stun_enc_init(&sw, t->out, sizeof t->out,
                       stun_type(STUN_SEND, STUN_INDICATION), t->ind_tid);
    if (rc == 0)
      rc = stun_enc_xaddr(&sw, STUN_A_XOR_PEER_ADDRESS, (struct sockaddr *)&w,
                          wl);
    if (rc == 0)
      rc = stun_enc_attr(&sw, STUN_A_DATA, buf, len);
    if (rc < 0)
      return rc == -ENOSPC ? -EMSGSIZE : rc;
    rc = turn_send_raw(t, t->out, stun_enc_len(&sw));
    t->n.send_tx++;
  }
  if (rc == 0 && p) {
    p->tx_pkts++;
    p->tx_bytes += len;
  }
  return rc;
}

/* Hand a peer's datagram to the core in the socket's address form. */
static void deliver(struct turn *t, struct turn_peer *p,
                    const struct sockaddr *from, socklen_t fromlen,
                    const uint8_t *data, size_t len) {
  struct sockaddr_storage s;
  socklen_t sl = fromlen;

  if (!len || fromlen > sizeof s)
    return;
  memcpy(&s, from, fromlen);
  turn_to_socket(t, &s, &sl);
  if (p) {
    p->rx_pkts++;
    p->rx_bytes += len;
  }
  t->h->relay_recv(t->h, (struct sockaddr *)&s, sl, data, len);
}

void turn_peer_channel_data(struct turn *t, const uint8_t *data, size_t len) {
  uint16_t ch;
  const uint8_t *payload;
  size_t plen;
  unsigned s;

  if (stun_chan_decode(data, len, &ch, &payload, &plen) < 0 ||
      !(s = t->chan_slot[ch - STUN_CHAN_MIN])) {
    t->n.dropped++;
    return;
  }
  t->n.chan_rx++;
  struct turn_peer *p = &t->peer[s - 1];
  deliver(t, p, (struct sockaddr *)&p->addr, p->addrlen, payload, plen);
}

void turn_peer_data_indication(struct turn *t, const struct stun_msg *m) {
  struct stun_attr pa, da;
  struct sockaddr_storage from;
  socklen_t fromlen;
  int i;

  if (stun_find(m, STUN_A_XOR_PEER_ADDRESS, &pa) < 0 ||
      stun_attr_addr(m, &pa, 1, &from, &fromlen) < 0 ||
      stun_find(m, STUN_A_DATA, &da) < 0) {
    t->n.dropped++;
    return;
  }
  t->n.data_rx++;
  i = find_slot(t, (struct sockaddr *)&from);
  deliver(t, i >= 0 ? &t->peer[i] : NULL, (struct sockaddr *)&from, fromlen,
          da.val, da.len);
}

static const char *grant_name(int g) {
  return g == TG_OK ? "ok" : g == TG_PENDING ? "pending" : "none";
}

void turn_peer_report(struct turn *t, struct sfk_report *r) {
  char a[SA_STR_MAX];

  r->begin(r, "peers", 1);
  for (int i = 0; i < TURN_MAX_PEERS; i++) {
    const struct turn_peer *p = &t->peer[i];
    if (!p->used || !p->wanted)
      continue;
    r->begin(r, NULL, 0);
    r->str(r, "address", sa_str((const struct sockaddr *)&p->addr, a, sizeof a));
    r->str(r, "permission", grant_name(p->perm));
    if (p->chan)
      r->num(r, "channel", p->chan);
    r->str(r, "channel_state", grant_name(p->bind));
    r->num(r, "tx_packets", (int64_t)p->tx_pkts);
    r->num(r, "tx_bytes", (int64_t)p->tx_bytes);
    r->num(r, "rx_packets", (int64_t)p->rx_pkts);
    r->num(r, "rx_bytes", (int64_t)p->rx_bytes);
    r->end(r);
  }
  r->end(r);
}
