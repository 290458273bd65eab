/*
 * QUIC transport plugin ("quic"): descriptor, config, instance lifetime,
 * datagram dispatch, stateless resets and the flush that drives writes.
 *
 * Config keys (section transport:) and why the defaults are what they are
 * ---------------------------------------------------------------------
 * idle_timeout (24h)      QUIC max_idle_timeout.  MPC jobs idle for long
 *                         stretches between rounds; keep-alives hold the
 *                         NAT open, so the connection only dies when the
 *                         peer is really gone (or restarts: see below).
 * keepalive (5s)          PING interval when idle.  Well below the ~30 s
 *                         UDP binding lifetime of common NATs, and a
 *                         quarter of peer_timeout: a live but idle peer
 *                         answers 3-4 PINGs (each retransmitted on loss)
 *                         within any peer_timeout window, so one or two
 *                         lost datagrams never make it look dead.  Cost:
 *                         one small packet and its ACK per 5 s per peer.
 * peer_timeout (20s)      A peer that sent nothing for this long while we
 *                         sent ack-eliciting packets (PINGs at least) is
 *                         down: its streams end with an error (the
 *                         program sees a reset, not a hang), the daemon
 *                         re-reads it from the registry, and the client
 *                         side dials again.  With the keepalive above a
 *                         peer killed at time t is declared down by
 *                         t + 20 s (its last packet was at most a
 *                         keepalive before t), within the 30 s target;
 *                         shorter would risk false alarms on paths that
 *                         lose a burst of packets.  Must exceed keepalive.
 * relay_fallback (5s)     relay mode auto: a client whose direct handshake
 *                         has not completed after this long tries the
 *                         relay (when the relay path is usable).  Half the
 *                         handshake timeout: punching normally opens both
 *                         NATs within a second or two, and the relay
 *                         attempt still has time before a waiting stream
 *                         gives up.  Without a relay it has no effect.
 * handshake_timeout (10s) Give up a handshake after this long; a stream
 *                         opened to a peer that cannot be reached gets
 *                         status 0x04 (host unreachable) within this time.
 * congestion (auto)       auto | cubic | reno | bbr | bbr2.  auto: BBR on
 *                         network paths (direct or relayed), CUBIC towards
 *                         loopback peers.  On the emulated WAN (bench/wan,
 *                         docs/performance.md) BBR kept one connection at
 *                         hundreds of Mbit/s under 0.1-1 % random loss
 *                         where CUBIC (ours and the kernel's) fell to a
 *                         few, and BBR2 (ngtcp2 0.12) was slower without
 *                         loss.  Loopback has no loss and CUBIC measured
 *                         best there.
 * queue (interactive)     interactive | always | off: when the queue
 *                         governor (quic_queue.c) holds bulk data back to
 *                         keep the router queue near queue_delay.
 *                         interactive: for 5 s after a stream sent a
 *                         little after a pause (a round trip waits), so
 *                         a bulk transfer alone keeps BBR's full rate and
 *                         an MPC round does not wait behind one (bench/wan:
 *                         p50 under load RTT + 3-6 ms instead of + 13-20,
 *                         at up to ~20 % of the bulk rate meanwhile).  always:
 *                         a link shared with other flows is shared (BBR
 *                         alone starves a CUBIC flow), at some single-
 *                         stream rate.  Never for loopback peers.
 * queue_delay (4ms)       The governor's target queueing delay.  On the
 *                         lab's 2-vCPU VM about 2-4 ms of the measured
 *                         delay is the receiver's own backlog, not queue;
 *                         a lower target empties the link.
 * stream_window (128 MiB) Upper bound of ngtcp2's per-stream receive window
 *                         auto-tuning.  ngtcp2 sends new credit when half
 *                         the window is used, so a stream moves at most
 *                         window / 2 per round trip: one stream at 1 Gbit/s
 *                         needs 2 x 12.5 MB at 100 ms, and more while a
 *                         router queue lengthens the round trip (16 MiB
 *                         held one stream near 450 Mbit/s there).  The
 *                         window starts at 256 KiB and only grows while the
 *                         daemon drains data quickly, so slow or idle
 *                         streams never get (or hold) large credit.
 *                         Capped by conn_window when only that is set.
 * conn_window (128 MiB)   Same for the whole connection (all streams of a
 *                         peer).  This also bounds what a peer can make
 *                         the daemon buffer for it.  Starts at 1 MiB.
 * max_streams (4096)      Concurrent bidirectional streams a peer may open
 *                         to us (MPC programs open hundreds of sockets).
 * send_buffer (64 MiB)    Per-stream cap on bytes queued but not yet
 *                         acknowledged, so it caps what one stream has in
 *                         flight: BBR keeps up to twice the bandwidth-delay
 *                         product in flight (1 Gbit/s * 100 ms = 12.5 MB,
 *                         more with a queue).  At most QUIC_UNSENT_MAX of
 *                         the bytes wait for ngtcp2.  stream_space()
 *                         reports what is left, so a slow path pushes back
 *                         on the TCP reader.  Memory is allocated in 16 KiB
 *                         chunks as bytes are queued and freed as they are
 *                         acked: an idle stream holds no buffer at all.
 * peer_send_memory (128 MiB) Send-buffer memory of all streams to one peer
 *                         together, and send_memory (256 MiB) of all
 *                         streams: at the bound, streams report no space
 *                         and the daemon stops reading from their TCP
 *                         sockets.  A peer that opens max_streams streams
 *                         and grants no credit cannot make us queue more
 *                         than peer_send_memory for it (instead of
 *                         max_streams * 128 KiB).  Per peer, then, at most
 *                         conn_window + peer_send_memory (256 MiB) is held
 *                         for it, whatever it does.
 * loopback_payload (16384) UDP payload for a peer on a loopback address
 *                         (127.0.0.0/8, ::1), whose path is this host's
 *                         loopback device (MTU 64 KiB): 11x fewer packets
 *                         to seal, send and acknowledge than with 1452.
 *                         Windows towards it stop at 2 / 4 MiB (stream /
 *                         connection): its bandwidth-delay product is
 *                         about 1 MB.  1200-1452 makes loopback behave
 *                         like a network path (a test uses it).  Other
 *                         peers always get ngtcp2's 1200-1452 (PMTUD).
 * relay                   The relay plugin's section; read by the daemon.
 *
 * Peers that cannot be reached: every state change goes to the daemon
 * (host->peer_state: CONNECTING, UP, DOWN with a reason a site admin can
 * act on), and a stream that gives up says the same reason.
 *
 * Restarts: the stateless reset key is derived from the identity key, so
 * a restarted peer answers packets of the old connection with a stateless
 * reset and the survivor notices at its next packet (at worst the next
 * keep-alive).  The server side also punches until a handshake completes;
 * a client that sees punches on an established connection probes it at
 * once, so a restarted server is noticed within about a second.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/crypto.h>

#include "quic.h"

#define KIB 1024ull
#define MIB (1024ull * 1024ull)

static const char *const quic_keys[] = {
    "idle_timeout", "keepalive",   "handshake_timeout", "congestion",
    "stream_window", "conn_window", "max_streams",       "send_buffer",
    "loopback_payload", "peer_timeout", "relay_fallback", "peer_send_memory",
    "send_memory", "queue", "queue_delay", "relay", NULL};

/* Reset only in answer to packets at least this long (no reset loops,
 * and never amplification). */
#define QUIC_SR_MIN_TRIGGER 23
#define QUIC_SR_MAX_LEN 43

uint64_t quic_now(const struct quic_inst *qi) {
  return qi->h->now_ns(qi->h);
}

const char *quic_dur_str(uint64_t ms, char *buf, size_t bufsz) {
  if (ms % 1000 == 0)
    snprintf(buf, bufsz, "%" PRIu64 " s", ms / 1000);
  else if (ms < 1000)
    snprintf(buf, bufsz, "%" PRIu64 " ms", ms);
  else
    snprintf(buf, bufsz, "%" PRIu64 ".%" PRIu64 " s", ms / 1000,
             ms % 1000 / 100);
  return buf;
}

const char *quic_cc_name(int cc_algo) {
  switch (cc_algo) {
  case NGTCP2_CC_ALGO_RENO:
    return "reno";
  case NGTCP2_CC_ALGO_CUBIC:
    return "cubic";
  case NGTCP2_CC_ALGO_BBR:
    return "bbr";
  case NGTCP2_CC_ALGO_BBR2:
    return "bbr2";
  default:
    return "auto";
  }
}

const char *quic_addr_str(const struct sockaddr *sa, socklen_t len,
                          char *buf, size_t bufsz) {
  char ip[INET6_ADDRSTRLEN];

  if (sa && sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
    snprintf(buf, bufsz, "%s:%u", ip, ntohs(in->sin_port));
  } else if (sa && sa->sa_family == AF_INET6 &&
             len >= sizeof(struct sockaddr_in6)) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
    snprintf(buf, bufsz, "[%s]:%u", ip, ntohs(in6->sin6_port));
  } else {
    snprintf(buf, bufsz, "(unknown)");
  }
  return buf;
}

int quic_addr_eq(const struct sockaddr *a, socklen_t alen,
                 const struct sockaddr *b, socklen_t blen) {
  if (!a || !b || a->sa_family != b->sa_family)
    return 0;
  if (a->sa_family == AF_INET && alen >= sizeof(struct sockaddr_in) &&
      blen >= sizeof(struct sockaddr_in)) {
    const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
    return x->sin_port == y->sin_port &&
           x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  if (a->sa_family == AF_INET6 && alen >= sizeof(struct sockaddr_in6) &&
      blen >= sizeof(struct sockaddr_in6)) {
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return x->sin6_port == y->sin6_port &&
           memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
  }
  return 0;
}

/* ------------------------------------------------------------------ */
/* Flush: deferred work, teardown, writes                               */

void quic_kick(struct quic_inst *qi) {
  /* The ev_prepare watcher runs before every poll; when we are inside
   * the flush itself, its tail notices the leftover work and keeps the
   * idle watcher going. */
  (void)qi;
}

static int work_left(struct quic_inst *qi) {
  struct quic_conn *qc;
  struct quic_peer *p;

  if (!TAILQ_EMPTY(&qi->deferred) || qi->peers_dirty)
    return 1;
  TAILQ_FOREACH(p, &qi->peers, link) {
    if (p->st_dirty)
      return 1;
  }
  TAILQ_FOREACH(qc, &qi->conns, link) {
    if (qc->flags & (QCF_DIRTY | QCF_DOOMED))
      return 1;
  }
  return 0;
}

void quic_flush(struct quic_inst *qi) {
  struct quic_conn *qc;
  struct quic_peer *p;
  unsigned gen, round;

  if (!qi->started || qi->stopped || qi->in_flush)
    return;
  qi->in_flush = 1;
  gen = ++qi->flush_gen;
  for (round = 0; round < 8; round++) {
    int again = 0;

    if (qi->peers_dirty)
      quic_peers_sync(qi);
    quic_stream_process_deferred(qi);
    TAILQ_FOREACH(p, &qi->peers, link) quic_stream_open_pending(p);
    for (;;) {
      TAILQ_FOREACH(qc, &qi->conns, link) {
        if (qc->flags & QCF_DOOMED)
          break;
      }
      if (!qc)
        break;
      quic_conn_teardown(qc, 1);
    }
    for (;;) {
      TAILQ_FOREACH(qc, &qi->conns, link) {
        if ((qc->flags & QCF_DIRTY) && !(qc->flags & QCF_DOOMED) &&
            qc->gen != gen)
          break;
      }
      if (!qc)
        break;
      qc->gen = gen;
      quic_conn_write(qc);
    }
    /* After teardowns: tell the daemon (a DOWN may re-read the table;
     * then peers_dirty brings us round again). */
    quic_peer_events(qi);
    TAILQ_FOREACH(qc, &qi->conns, link) {
      if (qc->flags & QCF_DOOMED)
        again = 1;
    }
    if (!again && TAILQ_EMPTY(&qi->deferred) && !qi->peers_dirty)
      break;
  }
  qi->in_flush = 0;
  if (work_left(qi))
    ev_idle_start(qi->h->loop, &qi->idle);
  else
    ev_idle_stop(qi->h->loop, &qi->idle);
}

static void prepare_cb(struct ev_loop *loop, ev_prepare *w, int revents) {
  (void)loop;
  (void)revents;
  quic_flush(w->data);
}

static void idle_cb(struct ev_loop *loop, ev_idle *w, int revents) {
  (void)loop;
  (void)revents;
  quic_flush(w->data);
}

/* ------------------------------------------------------------------ */
/* Datagrams                                                            */

/* FNV-1a over the address, seeded with a secret: an off-path sender
 * cannot aim its junk at a peer's slot. */
static uint64_t sr_key(const struct quic_inst *qi, const struct sockaddr *sa,
                       socklen_t len) {
  const uint8_t *p = (const uint8_t *)sa;
  size_t n = sa->sa_family == AF_INET    ? sizeof(struct sockaddr_in)
             : sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                         : 0;
  uint64_t h = 0xcbf29ce484222325ull ^ qi->sr_seed;

  if (n > len)
    n = len;
  /* Family, port and address; sin6_flowinfo and scope are zeroed by the
   * kernel for received datagrams, so hashing the struct is stable. */
  for (size_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h | 1; /* 0 marks a free slot */
}

struct quic_sr_slot *quic_src_slot(struct quic_inst *qi,
                                   struct quic_sr_slot *tab,
                                   const struct sockaddr *from,
                                   socklen_t fromlen, uint64_t now) {
  uint64_t key = sr_key(qi, from, fromlen);
  struct quic_sr_slot *s = &tab[key % QUIC_SR_SOURCES];

  if (s->key != key || now - s->window_ns >= 1000000000u) {
    s->key = key; /* a new source takes the slot over */
    s->window_ns = now;
    s->count = 0;
  }
  return s;
}

/* May we send a stateless reset to this source now? */
static int sr_budget(struct quic_inst *qi, const struct sockaddr *from,
                     socklen_t fromlen, uint64_t now) {
  const struct sfk_host *h = qi->h;
  struct quic_sr_slot *s = quic_src_slot(qi, qi->sr, from, fromlen, now);
  int peer = 0;

  if (s->count >= QUIC_SR_PER_SOURCE)
    return 0;
  for (size_t i = 0, n = h->peer_count(h); i < n && !peer; i++) {
    const struct sfk_peer *e = h->peer_at(h, i);
    peer = e && e->addrlen &&
           quic_addr_eq((const struct sockaddr *)&e->addr, e->addrlen, from,
                        fromlen);
  }
  if (!peer) {
    if (now - qi->sr_window_ns >= 1000000000u) {
      qi->sr_window_ns = now;
      qi->sr_count = 0;
    }
    if (qi->sr_count >= QUIC_SR_PER_SEC)
      return 0;
    qi->sr_count++;
  }
  s->count++;
  return 1;
}

static void stateless_reset(struct quic_inst *qi, int path,
                            const struct sockaddr *from,
                            socklen_t fromlen, const ngtcp2_version_cid *vc,
                            size_t len) {
  const struct sfk_host *h = qi->h;
  uint8_t token[NGTCP2_STATELESS_RESET_TOKENLEN];
  uint8_t rnd[QUIC_SR_MAX_LEN], buf[QUIC_SR_MAX_LEN];
  uint64_t now = quic_now(qi);
  ngtcp2_cid cid;
  size_t size, randlen;
  ngtcp2_ssize n;

  if (len < QUIC_SR_MIN_TRIGGER || vc->dcidlen > NGTCP2_MAX_CIDLEN ||
      !sr_budget(qi, from, fromlen, now))
    return;
  ngtcp2_cid_init(&cid, vc->dcid, vc->dcidlen);
  if (ngtcp2_crypto_generate_stateless_reset_token(
          token, qi->reset_secret, sizeof(qi->reset_secret), &cid) != 0)
    return;
  size = len - 1 < QUIC_SR_MAX_LEN ? len - 1 : QUIC_SR_MAX_LEN;
  randlen = size - 1 - NGTCP2_STATELESS_RESET_TOKENLEN;
  if (gnutls_rnd(GNUTLS_RND_NONCE, rnd, randlen) != 0)
    return;
  n = ngtcp2_pkt_write_stateless_reset(buf, size, token, rnd, randlen);
  if (n <= 0)
    return;
  h->udp_send(h, path, from, fromlen, buf, (size_t)n, 0);
  qi->stats.sr_sent++;
  if (h->log_enabled(h, SFK_LOG_DEBUG)) {
    char a[64];
    h->log(h, SFK_LOG_DEBUG, "%s: packet for an unknown connection; sent a "
           "stateless reset", quic_addr_str(from, fromlen, a, sizeof(a)));
  }
}

static void quic_on_datagram(void *self, int path,
                             const struct sockaddr *from, socklen_t fromlen,
                             const uint8_t *data, size_t len) {
  struct quic_inst *qi = self;
  ngtcp2_version_cid vc;
  struct quic_conn *qc;

  if (!qi->started || qi->stopped || len == 0)
    return;
  if (path != SFK_PATH_RELAY)
    path = SFK_PATH_DIRECT;
  if (len == QUIC_PUNCH_LEN && memcmp(data, QUIC_PUNCH, QUIC_PUNCH_LEN) == 0) {
    quic_punch_recv(qi, path, from, fromlen);
    return;
  }
  if (ngtcp2_pkt_decode_version_cid(&vc, data, len, QUIC_SCIDLEN) != 0) {
    qi->stats.drop_not_quic++;
    return;
  }
  qc = quic_conn_find(qi, vc.dcid, vc.dcidlen);
  if (qc) {
    quic_conn_read(qc, path, from, fromlen, data, len);
  } else if (data[0] & 0x80) {
    quic_conn_accept(qi, path, from, fromlen, data, len);
  } else {
    /* A short header with a DCID we never issued: either the peer's
     * stateless reset for one of our connections (its DCID is random; ngtcp2
     * recognises the token), or a packet for a connection we no longer
     * have, which we answer with our own stateless reset. */
    int reset_seen = 0;

    TAILQ_FOREACH(qc, &qi->conns, link) {
      if ((qc->flags & QCF_DOOMED) ||
          !quic_addr_eq((const struct sockaddr *)&qc->remote, qc->remotelen,
                        from, fromlen))
        continue;
      quic_conn_read(qc, path, from, fromlen, data, len);
      if (qc->flags & QCF_DOOMED)
        reset_seen = 1;
    }
    if (!reset_seen) {
      qi->stats.drop_unknown_cid++;
      stateless_reset(qi, path, from, fromlen, &vc, len);
    }
  }
}

/* ------------------------------------------------------------------ */
/* Lifetime                                                             */

static int parse_cfg(const struct sfk_host *h, const struct sfk_cfg_node *cfg,
                     struct quic_cfg *c) {
  const struct sfk_cfg_node *n;
  const char *cc = NULL, *qm = NULL;
  int bad = 0;

  bad |= h->cfg_duration_ms(h, cfg, "idle_timeout", 24ull * 3600 * 1000,
                            &c->idle_timeout_ms) != 0;
  bad |= h->cfg_duration_ms(h, cfg, "keepalive", 5000, &c->keepalive_ms) != 0;
  bad |= h->cfg_duration_ms(h, cfg, "peer_timeout", 20000,
                            &c->peer_timeout_ms) != 0;
  bad |= h->cfg_duration_ms(h, cfg, "relay_fallback", 5000,
                            &c->relay_fallback_ms) != 0;
  bad |= h->cfg_duration_ms(h, cfg, "handshake_timeout", 10000,
                            &c->handshake_timeout_ms) != 0;
  bad |= h->cfg_uint(h, cfg, "stream_window", 64 * KIB, 1024 * MIB, 128 * MIB,
                     &c->stream_window) != 0;
  bad |= h->cfg_uint(h, cfg, "conn_window", 64 * KIB, 4096 * MIB, 128 * MIB,
                     &c->conn_window) != 0;
  bad |= h->cfg_uint(h, cfg, "max_streams", 1, 1u << 20, 4096,
                     &c->max_streams) != 0;
  bad |= h->cfg_uint(h, cfg, "send_buffer", 16 * KIB, 1024 * MIB, 64 * MIB,
                     &c->send_buffer) != 0;
  bad |= h->cfg_uint(h, cfg, "peer_send_memory", 1 * MIB, 65536 * MIB,
                     128 * MIB, &c->peer_send_memory) != 0;
  bad |= h->cfg_uint(h, cfg, "send_memory", 1 * MIB, 65536 * MIB, 256 * MIB,
                     &c->send_memory) != 0;
  bad |= h->cfg_uint(h, cfg, "loopback_payload", 1200, QUIC_LOOP_PKT_MAX,
                     QUIC_LOOP_PKT_DEFAULT, &c->loopback_payload) != 0;
  bad |= h->cfg_string(h, cfg, "congestion", "auto", &cc) != 0;
  bad |= h->cfg_string(h, cfg, "queue", "interactive", &qm) != 0;
  bad |= h->cfg_duration_ms(h, cfg, "queue_delay", 4, &c->queue_delay_ms) != 0;
  if (bad)
    return -EINVAL;
  if (strcmp(cc, "auto") == 0)
    c->cc_algo = QUIC_CC_AUTO;
  else if (strcmp(cc, "cubic") == 0)
    c->cc_algo = NGTCP2_CC_ALGO_CUBIC;
  else if (strcmp(cc, "reno") == 0)
    c->cc_algo = NGTCP2_CC_ALGO_RENO;
  else if (strcmp(cc, "bbr") == 0)
    c->cc_algo = NGTCP2_CC_ALGO_BBR;
  else if (strcmp(cc, "bbr2") == 0)
    c->cc_algo = NGTCP2_CC_ALGO_BBR2;
  else {
    h->cfg_error(h, h->cfg_get(cfg, "congestion"),
                 "congestion: expected auto, cubic, reno, bbr or bbr2, not \"%s\"",
                 cc);
    return -EINVAL;
  }
  if (strcmp(qm, "interactive") == 0)
    c->queue_mode = QUIC_Q_INTERACTIVE;
  else if (strcmp(qm, "always") == 0)
    c->queue_mode = QUIC_Q_ALWAYS;
  else if (strcmp(qm, "off") == 0)
    c->queue_mode = QUIC_Q_OFF;
  else {
    h->cfg_error(h, h->cfg_get(cfg, "queue"),
                 "queue: expected interactive, always or off, not \"%s\"", qm);
    return -EINVAL;
  }
  if (c->queue_delay_ms < 1 || c->queue_delay_ms > 1000) {
    h->cfg_error(h, h->cfg_get(cfg, "queue_delay"),
                 "queue_delay: between 1ms and 1s");
    return -EINVAL;
  }
  if (c->idle_timeout_ms < 1000) {
    h->cfg_error(h, h->cfg_get(cfg, "idle_timeout"),
                 "idle_timeout: at least 1s");
    return -EINVAL;
  }
  if (c->keepalive_ms < 100 || c->keepalive_ms >= c->idle_timeout_ms) {
    n = h->cfg_get(cfg, "keepalive");
    h->cfg_error(h, n ? n : h->cfg_get(cfg, "idle_timeout"),
                 "keepalive: at least 100ms and below idle_timeout");
    return -EINVAL;
  }
  if (c->peer_timeout_ms < 1000 || c->peer_timeout_ms <= c->keepalive_ms) {
    n = h->cfg_get(cfg, "peer_timeout");
    h->cfg_error(h, n ? n : h->cfg_get(cfg, "keepalive"),
                 "peer_timeout: at least 1s and above keepalive (%" PRIu64
                 " ms): a live peer answers a keep-alive first",
                 c->keepalive_ms);
    return -EINVAL;
  }
  if (c->relay_fallback_ms < 100) {
    h->cfg_error(h, h->cfg_get(cfg, "relay_fallback"),
                 "relay_fallback: at least 100ms");
    return -EINVAL;
  }
  if (c->handshake_timeout_ms < 100) {
    h->cfg_error(h, h->cfg_get(cfg, "handshake_timeout"),
                 "handshake_timeout: at least 100ms");
    return -EINVAL;
  }
  /* A conn_window set below the default stream_window (a config from
   * before the windows grew) caps the stream window instead of failing. */
  if (c->conn_window < c->stream_window && !h->cfg_get(cfg, "stream_window"))
    c->stream_window = c->conn_window;
  if (c->conn_window < c->stream_window) {
    n = h->cfg_get(cfg, "conn_window");
    h->cfg_error(h, n ? n : h->cfg_get(cfg, "stream_window"),
                 "conn_window must not be smaller than stream_window");
    return -EINVAL;
  }
  return 0;
}

static int quic_create(const struct sfk_host *h,
                       const struct sfk_cfg_node *cfg, void **self) {
  struct quic_inst *qi;
  struct quic_cfg c;
  int rv;

  memset(&c, 0, sizeof(c));
  rv = parse_cfg(h, cfg, &c);
  if (rv != 0)
    return rv;
  qi = calloc(1, sizeof(*qi));
  if (!qi)
    return -ENOMEM;
  qi->h = h;
  qi->cfg = c;
  TAILQ_INIT(&qi->conns);
  TAILQ_INIT(&qi->peers);
  TAILQ_INIT(&qi->deferred);
  ev_prepare_init(&qi->prep, prepare_cb);
  qi->prep.data = qi;
  ev_idle_init(&qi->idle, idle_cb);
  qi->idle.data = qi;
  *self = qi;
  return 0;
}

static int quic_start(void *self) {
  struct quic_inst *qi = self;
  const struct sfk_host *h = qi->h;
  int rv;

  if (qi->started)
    return -EALREADY;
  rv = quic_tls_init(qi);
  if (rv != 0)
    return rv;
  if (gnutls_rnd(GNUTLS_RND_NONCE, &qi->sr_seed, sizeof(qi->sr_seed)) != 0) {
    quic_tls_free(qi);
    return -EIO;
  }
  qi->locallen = sizeof(qi->local);
  rv = h->udp_local(h, &qi->local, &qi->locallen);
  if (rv != 0) {
    quic_tls_free(qi);
    return rv;
  }
  qi->started = 1;
  qi->peers_dirty = 1;
  quic_path_refresh(qi);
  ev_prepare_start(h->loop, &qi->prep);
  quic_flush(qi);
  return 0;
}

static void quic_stop(void *self) {
  struct quic_inst *qi = self;
  struct ev_loop *loop = qi->h->loop;
  struct quic_peer *p;

  if (!qi->started || qi->stopped)
    return;
  qi->stopped = 1;
  quic_conn_close_all(qi);
  TAILQ_FOREACH(p, &qi->peers, link) {
    ev_timer_stop(loop, &p->timer);
    quic_path_unpermit(qi, p);
  }
  ev_prepare_stop(loop, &qi->prep);
  ev_idle_stop(loop, &qi->idle);
}

static void quic_destroy(void *self) {
  struct quic_inst *qi = self;
  struct quic_peer *p;
  struct quic_stream *s;

  if (!qi)
    return;
  quic_stop(qi);
  while ((p = TAILQ_FIRST(&qi->peers)))
    quic_peer_free(p);
  while ((s = TAILQ_FIRST(&qi->deferred))) /* defensive: should be empty */
    quic_stream_free(s);
  quic_tls_free(qi);
  free(qi);
}

static void quic_peers_changed(void *self) {
  struct quic_inst *qi = self;

  /* Applied in the next flush, never below an upcall. */
  qi->peers_dirty = 1;
  quic_kick(qi);
}

static void quic_op_report(void *self, struct sfk_report *r) {
  quic_report(self, r);
}

static const struct sfk_transport_ops quic_ops = {
    .base =
        {
            .keys = quic_keys,
            .create = quic_create,
            .start = quic_start,
            .stop = quic_stop,
            .destroy = quic_destroy,
            .reconfigure = NULL,
            .report = quic_op_report,
        },
    .on_datagram = quic_on_datagram,
    .peers_changed = quic_peers_changed,
    .path_changed = quic_op_path_changed,
    .peer_report = quic_op_peer_report,
    .stream_open = quic_op_stream_open,
    .stream_reply = quic_op_stream_reply,
    .stream_space = quic_op_stream_space,
    .stream_write = quic_op_stream_write,
    .stream_consumed = quic_op_stream_consumed,
    .stream_reset = quic_op_stream_reset,
};

SFK_PLUGIN_DEFINE(TRANSPORT, "quic", "0.1", quic_ops);
