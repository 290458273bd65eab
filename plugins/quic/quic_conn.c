/*
 * QUIC transport: connections and peers.
 *
 * One QUIC v1 connection per peer; the higher PID dials (client), the
 * lower PID accepts (server) and punches towards the client's published
 * address until the handshake completes.  A client whose connection fails
 * or is lost dials again after a backoff of 0.5 s doubling to 10 s.
 *
 * The write loop packs stream data into packets (NGTCP2_WRITE_STREAM_FLAG_
 * MORE, streams served round robin) and hands runs of equal-size packets to
 * host->udp_send() as one GSO batch.  It never runs inside an ngtcp2
 * callback or an op: those mark the connection dirty and quic_flush() (an
 * ev_prepare watcher) writes before the loop blocks again.
 *
 * Connections are torn down only from quic_flush() (after quic_conn_doom())
 * or from stop(), so nothing below an upcall ever sees a freed connection.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>

#include "quic.h"

/* Initial flow-control windows; ngtcp2 grows them up to the configured
 * stream_window / conn_window as the daemon drains data fast enough. */
#define QUIC_INIT_STREAM_WINDOW (256 * 1024)
#define QUIC_INIT_CONN_WINDOW (1024 * 1024)
/* Client DCID length for the first Initial. */
#define QUIC_INIT_DCIDLEN 18
/* Write right after this many bytes of received packets, not only at
 * ev_prepare, so long receive batches still get timely ACKs.  One UDP GRO
 * message holds up to 64 KiB: an ACK per such run, as Linux TCP acks a
 * GRO-merged segment.  An ACK every 16 packets of 1452 bytes sent ~6 ACK
 * datagrams per recvmmsg call on loopback and cost 15-20 % more CPU with
 * 16 streams. */
#define QUIC_RX_WRITE_BYTES QUIC_GSO_BYTES

/* ------------------------------------------------------------------ */
/* ngtcp2 callbacks for connections                                     */

static ngtcp2_conn *get_conn(ngtcp2_crypto_conn_ref *ref) {
  struct quic_conn *qc = ref->user_data;
  return qc->conn;
}

static void cb_rand(uint8_t *dest, size_t destlen, const ngtcp2_rand_ctx *rc) {
  const struct quic_conn *qc = rc ? rc->native_handle : NULL;

  (void)gnutls_rnd(GNUTLS_RND_RANDOM, dest, destlen);
  /* ngtcp2 0.12 always advertises grease_quic_bit and, on a coin toss
   * made with one random byte while the connection is created, clears
   * the QUIC fixed bit on every packet.  A first byte of 0-3 is STUN on
   * our shared socket (RFC 9443), so the coin always says "keep it". */
  if (qc && (qc->flags & QCF_CREATING) && destlen == 1)
    dest[0] &= 0xfe;
}

static int cid_add(struct quic_conn *qc, const ngtcp2_cid *cid) {
  if (qc->ncids == QUIC_MAX_CIDS)
    return -1;
  qc->cids[qc->ncids++] = *cid;
  return 0;
}

static int cb_get_new_connection_id(ngtcp2_conn *conn, ngtcp2_cid *cid,
                                    uint8_t *token, size_t cidlen, void *ud) {
  struct quic_conn *qc = ud;
  (void)conn;

  if (gnutls_rnd(GNUTLS_RND_RANDOM, cid->data, cidlen) != 0)
    return NGTCP2_ERR_CALLBACK_FAILURE;
  cid->datalen = cidlen;
  if (ngtcp2_crypto_generate_stateless_reset_token(
          token, qc->qi->reset_secret, sizeof(qc->qi->reset_secret), cid) !=
      0)
    return NGTCP2_ERR_CALLBACK_FAILURE;
  return cid_add(qc, cid) == 0 ? 0 : NGTCP2_ERR_CALLBACK_FAILURE;
}

static int cb_remove_connection_id(ngtcp2_conn *conn, const ngtcp2_cid *cid,
                                   void *ud) {
  struct quic_conn *qc = ud;
  size_t i;
  (void)conn;

  for (i = 0; i < qc->ncids; i++) {
    if (ngtcp2_cid_eq(&qc->cids[i], cid)) {
      qc->cids[i] = qc->cids[--qc->ncids];
      break;
    }
  }
  return 0;
}

static const char *conn_addr(const struct quic_conn *qc, char *buf,
                             size_t bufsz) {
  return quic_addr_str((const struct sockaddr *)&qc->remote, qc->remotelen,
                       buf, bufsz);
}

/* The connection is usable: adopt it as the peer's connection. */
static int conn_up(struct quic_conn *qc) {
  struct quic_inst *qi = qc->qi;
  const struct sfk_host *h = qi->h;
  struct quic_peer *p;
  char a[64];

  /* The registry may have removed or re-keyed the peer while the
   * handshake ran (the pin was checked at its start): look again. */
  {
    const struct sfk_peer *e = h->peer_get(h, qc->pid);
    const char *why = !e ? "the peer left the registry during the handshake"
                      : strcmp(e->pin, qc->pin) != 0
                          ? "the peer's pin changed during the handshake"
                          : NULL;
    if (why) {
      snprintf(qc->fail_why, sizeof(qc->fail_why), "%s", why);
      h->log(h, SFK_LOG_WARN, "peer %u at %s: %s; refusing", qc->pid,
             conn_addr(qc, a, sizeof(a)), why);
      return NGTCP2_ERR_CALLBACK_FAILURE;
    }
  }
  p = qc->peer ? qc->peer : quic_peer_get(qi, qc->pid);
  if (!p)
    return NGTCP2_ERR_CALLBACK_FAILURE;
  if (p->conn && p->conn != qc) {
    /* The peer restarted: its old connection is dead. */
    quic_conn_doom(p->conn, -ENOTCONN, "replaced by a new connection");
    p->conn->peer = NULL;
  }
  p->conn = qc;
  qc->peer = p;
  qc->flags |= QCF_HS_DONE;
  if (qc->flags & QCF_SERVER)
    quic_peer_note_addr(p, (const struct sockaddr *)&qc->remote,
                        qc->remotelen);
  qc->up_ns = qc->last_rx_ns = quic_now(qi);
  p->backoff_ms = QUIC_BACKOFF_MIN_MS;
  p->attempts = 0;
  p->next_punch_ns = 0;
  if (p->punch_start_ns && !(quic_now(qi) < p->punch_force_until_ns))
    h->log(h, SFK_LOG_DEBUG, "peer %u: handshake after %u punches", qc->pid,
           p->punches);
  p->punch_start_ns = 0;
  /* The daemon logs the UP transition (peer_state); this is detail. */
  h->log(h, SFK_LOG_DEBUG, "peer %u at %s: connection up (%s, %s path)",
         qc->pid, conn_addr(qc, a, sizeof(a)),
         (qc->flags & QCF_SERVER) ? "accepted" : "dialled",
         qc->path == SFK_PATH_RELAY ? "relay" : "direct");
  quic_peer_state(p, SFK_PEER_UP, qc->path,
                  (const struct sockaddr *)&qc->remote, qc->remotelen, 0,
                  quic_path_why(qi, qc));
  quic_peer_schedule(p);
  quic_conn_dirty(qc);
  return 0;
}

static int cb_handshake_completed(ngtcp2_conn *conn, void *ud) {
  struct quic_conn *qc = ud;
  const struct sfk_host *h = qc->qi->h;
  char a[64];
  (void)conn;

  if (!(qc->flags & QCF_VERIFIED) || !quic_tls_alpn_ok(qc)) {
    h->log(h, SFK_LOG_WARN, "%s: handshake without a verified peer or ALPN "
           "\"sfkit\"; refusing", conn_addr(qc, a, sizeof(a)));
    return NGTCP2_ERR_CALLBACK_FAILURE;
  }
  /* The client waits for HANDSHAKE_DONE: only then has the server
   * accepted our certificate too. */
  return (qc->flags & QCF_SERVER) ? conn_up(qc) : 0;
}

static int cb_handshake_confirmed(ngtcp2_conn *conn, void *ud) {
  struct quic_conn *qc = ud;
  (void)conn;

  if (qc->flags & QCF_SERVER)
    return 0;
  return conn_up(qc);
}

static int cb_extend_max_local_streams_bidi(ngtcp2_conn *conn,
                                            uint64_t max_streams, void *ud) {
  (void)conn;
  (void)max_streams;
  quic_conn_dirty(ud);
  return 0;
}

static int cb_recv_stateless_reset(ngtcp2_conn *conn,
                                   const ngtcp2_pkt_stateless_reset *sr,
                                   void *ud) {
  struct quic_conn *qc = ud;
  const struct sfk_host *h = qc->qi->h;
  (void)conn;
  (void)sr;

  qc->flags |= QCF_SR_RECV;
  qc->qi->stats.sr_received++;
  h->log(h, SFK_LOG_DEBUG, "peer %u: stateless reset received", qc->pid);
  return 0;
}

static void ng_log(void *ud, const char *fmt, ...) SFK_PRINTF(2, 3);
static void ng_log(void *ud, const char *fmt, ...) {
  struct quic_conn *qc = ud;
  const struct sfk_host *h = qc->qi->h;
  char buf[512];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  h->log(h, SFK_LOG_TRACE, "ngtcp2 peer %u: %s", qc->pid, buf);
}

static void fill_callbacks(ngtcp2_callbacks *cb, int server) {
  memset(cb, 0, sizeof(*cb));
  if (server)
    cb->recv_client_initial = ngtcp2_crypto_recv_client_initial_cb;
  else
    cb->client_initial = ngtcp2_crypto_client_initial_cb;
  cb->recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb;
  cb->handshake_completed = cb_handshake_completed;
  cb->handshake_confirmed = cb_handshake_confirmed;
  cb->encrypt = ngtcp2_crypto_encrypt_cb;
  cb->decrypt = ngtcp2_crypto_decrypt_cb;
  cb->hp_mask = ngtcp2_crypto_hp_mask_cb;
  cb->recv_stateless_reset = cb_recv_stateless_reset;
  cb->recv_retry = ngtcp2_crypto_recv_retry_cb;
  cb->extend_max_local_streams_bidi = cb_extend_max_local_streams_bidi;
  cb->rand = cb_rand;
  cb->get_new_connection_id = cb_get_new_connection_id;
  cb->remove_connection_id = cb_remove_connection_id;
  cb->update_key = ngtcp2_crypto_update_key_cb;
  cb->delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb;
  cb->delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
  cb->get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb;
  cb->version_negotiation = ngtcp2_crypto_version_negotiation_cb;
  quic_stream_set_callbacks(cb);
}

/* ------------------------------------------------------------------ */
/* Creation                                                             */

static void conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents);

static struct quic_conn *conn_alloc(struct quic_inst *qi, int path,
                                    const struct sockaddr *remote,
                                    socklen_t remotelen) {
  struct quic_conn *qc = calloc(1, sizeof(*qc));
  const struct sockaddr *local;
  socklen_t locallen;

  if (!qc || remotelen > sizeof(qc->remote)) {
    free(qc);
    return NULL;
  }
  qc->qi = qi;
  qc->rr_id = -1;
  qc->ref.get_conn = get_conn;
  qc->ref.user_data = qc;
  qc->pid = SFK_PID_NONE;
  qc->cand_pid = SFK_PID_NONE;
  qc->path = path;
  quic_path_local(qi, path, &local, &locallen);
  memcpy(&qc->local, local, locallen);
  qc->locallen = locallen;
  memcpy(&qc->remote, remote, remotelen);
  qc->remotelen = remotelen;
  qc->created_ns = quic_now(qi);
  TAILQ_INIT(&qc->streams);
  TAILQ_INIT(&qc->sendq);
  ev_timer_init(&qc->timer, conn_timer_cb, 0., 0.);
  qc->timer.data = qc;
  return qc;
}

static int addr_is_loopback(const struct sockaddr *sa) {
  if (sa->sa_family == AF_INET)
    return ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24 ==
           127;
  if (sa->sa_family == AF_INET6) {
    const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(a) ||
           (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
  }
  return 0;
}

static void conn_settings(struct quic_conn *qc, ngtcp2_settings *st,
                          ngtcp2_transport_params *tp) {
  const struct quic_inst *qi = qc->qi;
  const struct quic_cfg *cfg = &qi->cfg;

  ngtcp2_settings_default(st);
  st->rand_ctx.native_handle = qc;
  st->initial_ts = quic_now(qi);
  st->cc_algo = cfg->cc_algo == QUIC_CC_AUTO ? QUIC_CC_NETWORK
                                             : (ngtcp2_cc_algo)cfg->cc_algo;
  st->max_window = cfg->conn_window;
  st->max_stream_window = cfg->stream_window;
  st->handshake_timeout = cfg->handshake_timeout_ms * NGTCP2_MILLISECONDS;
  if (qi->h->log_enabled(qi->h, SFK_LOG_TRACE))
    st->log_printf = ng_log;
  /* A loopback peer (unless loopback_payload asks for network packets):
   * no probing, the device's MTU is the path's (ngtcp2 0.12's PMTUD would
   * stop at 1444 bytes); and windows for its bandwidth-delay product,
   * about 1 MB, not a WAN's.  ngtcp2 doubles a window whenever credit
   * goes out within two RTTs, so they grew until a slow local reader let
   * 8 MiB pile up in the bridge (peak RSS 17.5 MiB, 16-stream echo).
   * qc->remote is where the packets go: a relayed path must not pass a
   * loopback relay's address here, its far side is a network.  Sizes are
   * fixed at creation, so a server connection that may later move to the
   * relay (a relay plugin exists) keeps network sizes too. */
  if (qc->path == SFK_PATH_RELAY) {
    st->max_tx_udp_payload_size = quic_path_relay_payload(qi);
  } else if (cfg->loopback_payload > QUIC_MAX_PKT &&
             !((qc->flags & QCF_SERVER) && qi->relay_present) &&
             addr_is_loopback((const struct sockaddr *)&qc->remote)) {
    st->max_tx_udp_payload_size = (size_t)cfg->loopback_payload;
    st->no_tx_udp_payload_size_shaping = 1;
    st->no_pmtud = 1;
    if (st->max_window > QUIC_LOOP_CONN_WINDOW)
      st->max_window = QUIC_LOOP_CONN_WINDOW;
    if (st->max_stream_window > QUIC_LOOP_STREAM_WINDOW)
      st->max_stream_window = QUIC_LOOP_STREAM_WINDOW;
    if (cfg->cc_algo == QUIC_CC_AUTO)
      st->cc_algo = NGTCP2_CC_ALGO_CUBIC;
    qc->q_loopback = 1;
  }
  qc->cc_algo = st->cc_algo;

  ngtcp2_transport_params_default(tp);
  tp->initial_max_stream_data_bidi_local =
      cfg->stream_window < QUIC_INIT_STREAM_WINDOW ? cfg->stream_window
                                                   : QUIC_INIT_STREAM_WINDOW;
  tp->initial_max_stream_data_bidi_remote =
      tp->initial_max_stream_data_bidi_local;
  tp->initial_max_stream_data_uni = 0;
  tp->initial_max_data = cfg->conn_window < QUIC_INIT_CONN_WINDOW
                             ? cfg->conn_window
                             : QUIC_INIT_CONN_WINDOW;
  tp->initial_max_streams_bidi = cfg->max_streams;
  tp->initial_max_streams_uni = 0;
  tp->max_idle_timeout = cfg->idle_timeout_ms * NGTCP2_MILLISECONDS;
  /* Ask peers not to grease the QUIC bit (RFC 9287): the socket is shared
   * with STUN (RFC 9443).  ngtcp2 0.12 overrides this; see cb_rand. */
  tp->grease_quic_bit = 0;
}

/* The ngtcp2 path of a datagram on our path `which` from remote. */
static void conn_path(struct quic_conn *qc, ngtcp2_path *path, int which,
                      const struct sockaddr *remote, socklen_t remotelen) {
  const struct sockaddr *local;
  socklen_t locallen;

  quic_path_local(qc->qi, which, &local, &locallen);
  path->local.addr = (ngtcp2_sockaddr *)local;
  path->local.addrlen = locallen;
  path->remote.addr = (ngtcp2_sockaddr *)remote;
  path->remote.addrlen = remotelen;
  path->user_data = NULL;
}

/* Common tail of client and server creation. */
static int conn_finish(struct quic_conn *qc) {
  struct quic_inst *qi = qc->qi;

  if (quic_tls_session_new(qc) != 0)
    return -1;
  ngtcp2_conn_set_tls_native_handle(qc->conn, qc->tls);
  ngtcp2_conn_set_keep_alive_timeout(qc->conn, qi->cfg.keepalive_ms *
                                                   NGTCP2_MILLISECONDS);
  TAILQ_INSERT_TAIL(&qi->conns, qc, link);
  quic_conn_dirty(qc);
  return 0;
}

static void conn_free(struct quic_conn *qc) {
  if (qc->conn)
    ngtcp2_conn_del(qc->conn);
  if (qc->tls)
    gnutls_deinit(qc->tls);
  free(qc);
}

/* Client: dial peer p on path. */
int quic_conn_connect(struct quic_peer *p, int path) {
  struct quic_inst *qi = p->qi;
  const struct sfk_host *h = qi->h;
  struct quic_conn *qc;
  ngtcp2_callbacks cb;
  ngtcp2_settings st;
  ngtcp2_transport_params tp;
  ngtcp2_path np;
  ngtcp2_cid dcid, scid;
  char a[64];
  int rv;

  p->attempts++;
  if (path == SFK_PATH_RELAY && (rv = quic_path_permit(qi, p)) != 0)
    return rv;
  qc = conn_alloc(qi, path, (const struct sockaddr *)&p->addr, p->addrlen);
  if (!qc)
    return -ENOMEM;
  qc->pid = p->pid;
  qc->peer = p;
  dcid.datalen = QUIC_INIT_DCIDLEN;
  scid.datalen = QUIC_SCIDLEN;
  if (gnutls_rnd(GNUTLS_RND_RANDOM, dcid.data, dcid.datalen) != 0 ||
      gnutls_rnd(GNUTLS_RND_RANDOM, scid.data, scid.datalen) != 0) {
    conn_free(qc);
    return -EIO;
  }
  cid_add(qc, &scid);
  fill_callbacks(&cb, 0);
  conn_settings(qc, &st, &tp);
  conn_path(qc, &np, qc->path, (const struct sockaddr *)&qc->remote,
            qc->remotelen);
  qc->flags |= QCF_CREATING;
  rv = ngtcp2_conn_client_new(&qc->conn, &dcid, &scid, &np,
                              NGTCP2_PROTO_VER_V1, &cb, &st, &tp, NULL, qc);
  qc->flags &= ~(uint32_t)QCF_CREATING;
  if (rv != 0) {
    qc->conn = NULL;
    conn_free(qc);
    return -ENOMEM;
  }
  if (conn_finish(qc) != 0) {
    conn_free(qc);
    return -EIO;
  }
  p->conn = qc;
  qi->stats.dialled++;
  h->log(h, SFK_LOG_DEBUG, "peer %u at %s: connecting (%s path, attempt %u)",
         p->pid, conn_addr(qc, a, sizeof(a)),
         path == SFK_PATH_RELAY ? "relay" : "direct", p->attempts);
  quic_peer_state(p, SFK_PEER_CONNECTING, path,
                  (const struct sockaddr *)&qc->remote, qc->remotelen, 0,
                  NULL);
  quic_peer_schedule(p);
  return 0;
}

/*
 * Handshake admission.  Every long-header packet for an unknown DCID
 * lands here, from any address, spoofed or not, and a server handshake
 * holds state and TLS work until it completes or handshake_timeout ends
 * it.  The policy, so that Initials from any number of addresses cannot
 * keep a registered peer from connecting or reconnecting:
 *
 *  - Known sources.  An Initial from a client peer's published address,
 *    or from an address one of its verified connections came from in the
 *    last QUIC_RECENT_TTL_MS (peer-reflexive clients: a NAT maps them
 *    elsewhere than they published), runs on capacity of its own,
 *    QUIC_HS_PER_KNOWN handshakes per address, outside the pool below:
 *    no flood from other addresses can take it.
 *  - Unknown sources share QUIC_MAX_UNVERIFIED handshakes, at most
 *    QUIC_HS_PER_IP per source IP (IPv6: per /64).
 *  - Address validation under load.  An Initial without our token gets a
 *    Retry (no state kept; smaller than the Initial, so no amplification)
 *    instead of a handshake when its capacity is under load: an unknown
 *    source once the pool holds QUIC_HS_RETRY_AT or its IP holds
 *    QUIC_HS_PER_IP, a known address once a handshake from it runs.
 *    Only a client that receives at its source address comes back with
 *    the token, so a spoofed flood holds at most QUIC_HS_RETRY_AT slots
 *    of the pool (and one per known address) and displaces nobody.
 *  - An Initial with a valid token is always admitted: when its capacity
 *    (address, IP or pool) is full, the oldest handshake there ends
 *    (evicted), preferring one whose client never proved its address.
 *    At most QUIC_RETRY_PER_SOURCE Retries a second go to one source
 *    address; its further Initials are dropped (a client retransmits).
 *  - An invalid or expired Retry token: dropped.  Other tokens (NEW_TOKEN,
 *    which we never issue) count as none.
 * Counters: status' transport "handshakes" and "dropped" objects.
 */

static int hs_running(const struct quic_conn *qc) {
  return (qc->flags & (QCF_SERVER | QCF_HS_DONE | QCF_DOOMED)) == QCF_SERVER;
}

/* Same source IP (IPv6: same /64; a host has a /64 to pick from). */
static int same_ip(const struct sockaddr *a, const struct sockaddr *b) {
  if (a->sa_family != b->sa_family)
    return 0;
  if (a->sa_family == AF_INET)
    return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
           ((const struct sockaddr_in *)b)->sin_addr.s_addr;
  if (a->sa_family == AF_INET6) {
    const struct in6_addr *x = &((const struct sockaddr_in6 *)a)->sin6_addr;
    const struct in6_addr *y = &((const struct sockaddr_in6 *)b)->sin6_addr;
    size_t n = IN6_IS_ADDR_V4MAPPED(x) ? 16 : 8;
    return memcmp(x->s6_addr, y->s6_addr, n) == 0;
  }
  return 0;
}

/* The handshakes a new one from `from` competes with (qi->conns is in
 * order of creation, so the first seen is the oldest). */
struct hs_group {
  unsigned n;
  struct quic_conn *oldest, *oldest_unvalidated;
};

static void group_add(struct hs_group *g, struct quic_conn *qc) {
  g->n++;
  if (!g->oldest)
    g->oldest = qc;
  if (!g->oldest_unvalidated && !(qc->flags & QCF_VALIDATED))
    g->oldest_unvalidated = qc;
}

static void hs_evict(struct quic_inst *qi, struct hs_group *g) {
  const struct sfk_host *h = qi->h;
  struct quic_conn *v = g->oldest_unvalidated ? g->oldest_unvalidated
                                              : g->oldest;
  char a[64];

  if (!v)
    return;
  h->log(h, SFK_LOG_DEBUG, "%s: handshake evicted for a newer one",
         conn_addr(v, a, sizeof(a)));
  /* No CONNECTION_CLOSE to a source that may be spoofed, and no DOWN for
   * the peer its address pointed to: it is not that peer's failure. */
  v->flags |= QCF_NO_CLOSE;
  v->cand_pid = SFK_PID_NONE;
  quic_conn_doom(v, -ETIMEDOUT, "evicted by a newer handshake");
  qi->stats.hs_evicted++;
}

/* Answer an Initial with a Retry carrying our address validation token;
 * -EAGAIN when its source had its Retries for this second. */
static int send_retry(struct quic_inst *qi, int path,
                      const struct sockaddr *from, socklen_t fromlen,
                      const ngtcp2_pkt_hd *hd) {
  const struct sfk_host *h = qi->h;
  uint8_t token[NGTCP2_CRYPTO_MAX_RETRY_TOKENLEN];
  uint8_t buf[256];
  ngtcp2_cid scid;
  ngtcp2_ssize tokenlen, n;
  struct quic_sr_slot *rl =
      quic_src_slot(qi, qi->retry_rl, from, fromlen, quic_now(qi));

  if (rl->count >= QUIC_RETRY_PER_SOURCE) {
    qi->stats.drop_retry_limit++;
    return -EAGAIN;
  }
  rl->count++;
  scid.datalen = QUIC_SCIDLEN;
  if (gnutls_rnd(GNUTLS_RND_NONCE, scid.data, scid.datalen) != 0)
    return -1;
  tokenlen = ngtcp2_crypto_generate_retry_token(
      token, qi->retry_secret, sizeof(qi->retry_secret), hd->version,
      (const ngtcp2_sockaddr *)from, (ngtcp2_socklen)fromlen, &scid,
      &hd->dcid, quic_now(qi));
  if (tokenlen < 0)
    return -1;
  n = ngtcp2_crypto_write_retry(buf, sizeof(buf), hd->version, &hd->scid,
                                &scid, &hd->dcid, token, (size_t)tokenlen);
  if (n <= 0)
    return -1;
  h->udp_send(h, path, from, fromlen, buf, (size_t)n, 0);
  qi->stats.retry_sent++;
  if (h->log_enabled(h, SFK_LOG_DEBUG)) {
    char a[64];
    h->log(h, SFK_LOG_DEBUG, "%s: handshakes under load; sent a Retry",
           quic_addr_str(from, fromlen, a, sizeof(a)));
  }
  return 0;
}

/* Server: a client's first Initial for an unknown DCID. */
int quic_conn_accept(struct quic_inst *qi, int path,
                     const struct sockaddr *from, socklen_t fromlen,
                     const uint8_t *data, size_t len) {
  const struct sfk_host *h = qi->h;
  struct quic_conn *qc, *it;
  ngtcp2_pkt_hd hd;
  ngtcp2_callbacks cb;
  ngtcp2_settings st;
  ngtcp2_transport_params tp;
  ngtcp2_path np;
  ngtcp2_cid scid, odcid;
  struct hs_group same_addr = {0}, same_ip_g = {0}, pool = {0};
  uint32_t known;
  int validated = 0, loaded;
  char a[64];
  int rv;

  if (ngtcp2_accept(&hd, data, len) != 0) {
    qi->stats.drop_bad_initial++;
    return -EINVAL;
  }
  if (hd.token.len && hd.token.base[0] == NGTCP2_CRYPTO_TOKEN_MAGIC_RETRY) {
    if (ngtcp2_crypto_verify_retry_token(
            &odcid, hd.token.base, hd.token.len, qi->retry_secret,
            sizeof(qi->retry_secret), hd.version,
            (const ngtcp2_sockaddr *)from, (ngtcp2_socklen)fromlen, &hd.dcid,
            QUIC_RETRY_TOKEN_MS * NGTCP2_MILLISECONDS, quic_now(qi)) != 0) {
      qi->stats.drop_bad_token++;
      h->log(h, SFK_LOG_DEBUG, "%s: Initial with an invalid or expired "
             "Retry token; dropped",
             quic_addr_str(from, fromlen, a, sizeof(a)));
      return -EINVAL;
    }
    validated = 1;
  }
  known = quic_peer_known_src(qi, from, fromlen);
  TAILQ_FOREACH(it, &qi->conns, link) {
    const struct sockaddr *r = (const struct sockaddr *)&it->remote;

    if (!hs_running(it))
      continue;
    if (it->flags & QCF_KNOWN_SRC) {
      if (known != SFK_PID_NONE &&
          quic_addr_eq(r, it->remotelen, from, fromlen))
        group_add(&same_addr, it);
    } else {
      group_add(&pool, it);
      if (same_ip(r, from))
        group_add(&same_ip_g, it);
    }
  }
  if (known != SFK_PID_NONE)
    loaded = same_addr.n > 0;
  else
    loaded = pool.n >= QUIC_HS_RETRY_AT || same_ip_g.n >= QUIC_HS_PER_IP;
  if (loaded && !validated) {
    rv = send_retry(qi, path, from, fromlen, &hd);
    if (rv == 0)
      return 0;
    if (rv == -EAGAIN)
      return -EBUSY; /* this source had its Retries for this second */
    qi->stats.drop_busy++;
    h->log(h, SFK_LOG_DEBUG, "%s: too many handshakes in progress; dropped",
           quic_addr_str(from, fromlen, a, sizeof(a)));
    return -EBUSY;
  }
  /* Room for it (only a validated client gets here with none left). */
  if (known != SFK_PID_NONE) {
    if (same_addr.n >= QUIC_HS_PER_KNOWN)
      hs_evict(qi, &same_addr);
  } else if (same_ip_g.n >= QUIC_HS_PER_IP) {
    hs_evict(qi, &same_ip_g);
  } else if (pool.n >= QUIC_MAX_UNVERIFIED) {
    hs_evict(qi, &pool);
  }
  qc = conn_alloc(qi, path, from, fromlen);
  if (!qc)
    return -ENOMEM;
  qc->flags |= QCF_SERVER;
  if (known != SFK_PID_NONE)
    qc->flags |= QCF_KNOWN_SRC;
  if (validated)
    qc->flags |= QCF_VALIDATED;
  /* Only a hint for messages and the pin check's first guess: a client
   * is whoever holds a pinned key, from whatever address (its NAT may
   * map it elsewhere than it published: peer-reflexive). */
  qc->cand_pid = known;
  scid.datalen = QUIC_SCIDLEN;
  if (gnutls_rnd(GNUTLS_RND_RANDOM, scid.data, scid.datalen) != 0) {
    conn_free(qc);
    return -EIO;
  }
  cid_add(qc, &scid);
  cid_add(qc, &hd.dcid);
  fill_callbacks(&cb, 1);
  conn_settings(qc, &st, &tp);
  if (validated) {
    /* hd.dcid is the SCID of our Retry; the token held the first DCID. */
    tp.original_dcid = odcid;
    tp.retry_scid = hd.dcid;
    tp.retry_scid_present = 1;
    st.token = hd.token;
  } else {
    tp.original_dcid = hd.dcid;
  }
  tp.stateless_reset_token_present = 1;
  if (ngtcp2_crypto_generate_stateless_reset_token(
          tp.stateless_reset_token, qi->reset_secret,
          sizeof(qi->reset_secret), &scid) != 0) {
    conn_free(qc);
    return -EIO;
  }
  conn_path(qc, &np, path, (const struct sockaddr *)&qc->remote,
            qc->remotelen);
  qc->flags |= QCF_CREATING;
  rv = ngtcp2_conn_server_new(&qc->conn, &hd.scid, &scid, &np, hd.version,
                              &cb, &st, &tp, NULL, qc);
  qc->flags &= ~(uint32_t)QCF_CREATING;
  if (rv != 0) {
    qc->conn = NULL;
    conn_free(qc);
    return -ENOMEM;
  }
  if (conn_finish(qc) != 0) {
    conn_free(qc);
    return -EIO;
  }
  qi->stats.accepted++;
  if (known != SFK_PID_NONE)
    qi->stats.hs_known++;
  if (validated)
    qi->stats.hs_validated++;
  h->log(h, SFK_LOG_DEBUG, "%s: handshake from a client (%s path%s%s)",
         conn_addr(qc, a, sizeof(a)),
         path == SFK_PATH_RELAY ? "relay" : "direct",
         known != SFK_PID_NONE ? ", known address" : "",
         validated ? ", address validated" : "");
  quic_conn_read(qc, path, from, fromlen, data, len);
  return 0;
}

struct quic_conn *quic_conn_find(struct quic_inst *qi, const uint8_t *dcid,
                                 size_t dcidlen) {
  struct quic_conn *qc;
  size_t i;

  /* Few peers per study: a linear scan over a handful of CIDs each. */
  TAILQ_FOREACH(qc, &qi->conns, link) {
    for (i = 0; i < qc->ncids; i++) {
      if (qc->cids[i].datalen == dcidlen &&
          memcmp(qc->cids[i].data, dcid, dcidlen) == 0)
        return qc;
    }
  }
  return NULL;
}

/* ------------------------------------------------------------------ */
/* Verification (called from the GnuTLS verify callback)                */

/* A pin that does not match: full pins in the log and in qc->fail_why
 * (the DOWN reason), so a site can fix its config from either. */
static void log_pin_mismatch(struct quic_conn *qc, uint32_t pid,
                             const char *addr, const char *got,
                             const char *want) {
  struct quic_inst *qi = qc->qi;
  const struct sfk_host *h = qi->h;
  struct quic_peer *p = quic_peer_get(qi, pid);
  int level = SFK_LOG_WARN;

  if (p && strcmp(p->warned_pin, got) == 0)
    level = SFK_LOG_DEBUG;
  else if (p)
    snprintf(p->warned_pin, sizeof(p->warned_pin), "%s", got);
  if (want[0])
    snprintf(qc->fail_why, sizeof(qc->fail_why),
             "certificate pin %s does not match the registry's %s", got,
             want);
  else
    snprintf(qc->fail_why, sizeof(qc->fail_why),
             "certificate pin %s, but the registry has no pin for this peer",
             got);
  qc->cand_pid = pid;
  h->log(h, level, "peer %u at %s: %s; refusing", pid, addr, qc->fail_why);
}

/* Two participants with one key: whoever holds it could be either, so
 * neither is accepted.  Returns the other PID, or SFK_PID_NONE. */
static uint32_t pin_shared(const struct sfk_host *h, const char *pin,
                           uint32_t pid) {
  for (size_t i = 0, n = h->peer_count(h); i < n; i++) {
    const struct sfk_peer *x = h->peer_at(h, i);
    if (x && x->pid != pid && x->pid != h->self_pid &&
        strcmp(x->pin, pin) == 0)
      return x->pid;
  }
  return strcmp(h->identity(h)->pin, pin) == 0 && pid != h->self_pid
             ? h->self_pid
             : SFK_PID_NONE;
}

static int check_pin_owner(struct quic_conn *qc, const char *pin) {
  struct quic_inst *qi = qc->qi;
  const struct sfk_host *h = qi->h;
  const struct sfk_peer *e;
  char a[64];
  size_t i, n;

  conn_addr(qc, a, sizeof(a));
  if (!(qc->flags & QCF_SERVER)) {
    e = h->peer_get(h, qc->pid);
    if (!e || !e->pin[0] || strcmp(e->pin, pin) != 0) {
      log_pin_mismatch(qc, qc->pid, a, pin, e ? e->pin : "");
      return -1;
    }
  } else {
    uint32_t pid = SFK_PID_NONE;

    e = qc->cand_pid != SFK_PID_NONE ? h->peer_get(h, qc->cand_pid) : NULL;
    if (e && e->pin[0] && strcmp(e->pin, pin) == 0) {
      pid = e->pid;
    } else {
      n = h->peer_count(h);
      for (i = 0; i < n; i++) {
        const struct sfk_peer *x = h->peer_at(h, i);
        if (x && x->pid > h->self_pid && x->pin[0] &&
            strcmp(x->pin, pin) == 0) {
          pid = x->pid;
          break;
        }
      }
    }
    if (pid == SFK_PID_NONE) {
      if (e) {
        log_pin_mismatch(qc, e->pid, a, pin, e->pin);
      } else if (strcmp(qi->unknown_warned_pin, pin) != 0) {
        snprintf(qi->unknown_warned_pin, sizeof(qi->unknown_warned_pin), "%s",
                 pin);
        h->log(h, SFK_LOG_WARN,
               "unknown peer at %s: certificate pin %s matches no peer "
               "in the registry; refusing",
               a, pin);
      }
      return -1;
    }
    qc->pid = pid;
  }
  snprintf(qc->pin, sizeof(qc->pin), "%s", pin);
  qc->flags |= QCF_VERIFIED;
  return 0;
}

int quic_conn_check_pin(struct quic_conn *qc, const char *pin) {
  struct quic_inst *qi = qc->qi;
  const struct sfk_host *h = qi->h;
  char a[64];
  int rv;

  rv = check_pin_owner(qc, pin);
  if (rv == 0 && qc->pid != SFK_PID_NONE) {
    uint32_t other = pin_shared(h, pin, qc->pid);
    if (other != SFK_PID_NONE) {
      snprintf(qc->fail_why, sizeof(qc->fail_why),
               "certificate pin %s is published for PIDs %u and %u: a key "
               "used by two parties proves neither",
               pin, qc->pid, other);
      h->log(h, SFK_LOG_ERROR, "peer %u at %s: %s; refusing (each party "
             "needs its own key)", qc->pid, conn_addr(qc, a, sizeof(a)),
             qc->fail_why);
      qc->flags &= ~(uint32_t)QCF_VERIFIED;
      return -1;
    }
  }
  return rv;
}

/* ------------------------------------------------------------------ */
/* I/O                                                                  */

void quic_conn_dirty(struct quic_conn *qc) {
  qc->flags |= QCF_DIRTY;
  quic_kick(qc->qi);
}

void quic_conn_doom(struct quic_conn *qc, int err, const char *why) {
  if (qc->flags & QCF_DOOMED)
    return;
  qc->flags |= QCF_DOOMED;
  qc->doom_err = err;
  snprintf(qc->doom_why, sizeof(qc->doom_why), "%s", why ? why : "");
  ev_timer_stop(qc->qi->h->loop, &qc->timer);
  quic_kick(qc->qi);
}

static void conn_arm_timer(struct quic_conn *qc) {
  struct ev_loop *loop = qc->qi->h->loop;
  ngtcp2_tstamp exp, now;

  ev_timer_stop(loop, &qc->timer);
  if (!qc->conn || (qc->flags & QCF_DOOMED))
    return;
  exp = ngtcp2_conn_get_expiry(qc->conn);
  if (exp < qc->ack_hold_ns)
    exp = qc->ack_hold_ns;
  now = quic_now(qc->qi);
  if (qc->flags & QCF_HS_DONE) {
    /* The liveness check (conn_peer_silent).  Past its deadline with
     * nothing ack-eliciting sent since the peer's last packet, look again
     * shortly (a keep-alive is due) rather than spin. */
    uint64_t live = qc->last_rx_ns + qc->qi->cfg.peer_timeout_ms * 1000000u;
    if (live <= now)
      live = now + 250 * 1000000u;
    if (live < exp)
      exp = live;
  }
  /* Bulk data held by the governor: ngtcp2's pacing deadline has passed
   * and stays there until a packet goes out, so it would wake us at once,
   * again and again.  An ACK (a read makes the connection dirty) is what
   * lets data go; the timer only has to keep ngtcp2's others. */
  if (qc->q_held && exp <= now)
    exp = now + QUIC_Q_RETRY_NS;
  if (exp == UINT64_MAX)
    return;
  ev_timer_set(&qc->timer, exp > now ? (double)(exp - now) / 1e9 : 0., 0.);
  ev_timer_start(loop, &qc->timer);
}

/*
 * Liveness: the peer sent nothing for peer_timeout although we sent
 * ack-eliciting packets after its last one (keep-alive PINGs guarantee we
 * do every `keepalive`).  ngtcp2's idle timeout (24 h) is for idle MPC
 * rounds, not for a peer that was killed or lost its network.
 */
static int conn_peer_silent(struct quic_conn *qc, uint64_t now) {
  ngtcp2_conn_stat cs;
  ngtcp2_tstamp tx;

  if (!(qc->flags & QCF_HS_DONE) ||
      now < qc->last_rx_ns + qc->qi->cfg.peer_timeout_ms * 1000000u)
    return 0;
  ngtcp2_conn_get_conn_stat(qc->conn, &cs);
  tx = cs.last_tx_pkt_ts[NGTCP2_PKTNS_ID_APPLICATION];
  return tx != UINT64_MAX && tx > qc->last_rx_ns;
}

static void conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents) {
  struct quic_conn *qc = w->data;
  struct quic_inst *qi = qc->qi;
  char why[QUIC_WHY_MAX], d[32];
  uint64_t now;
  int rv;
  (void)loop;
  (void)revents;

  if (!qc->conn || (qc->flags & QCF_DOOMED))
    return;
  now = quic_now(qi);
  if (conn_peer_silent(qc, now)) {
    snprintf(why, sizeof(why), "no packets from the peer for %s",
             quic_dur_str(qi->cfg.peer_timeout_ms, d, sizeof(d)));
    quic_conn_doom(qc, -ETIMEDOUT, why);
    return;
  }
  rv = ngtcp2_conn_handle_expiry(qc->conn, now);
  if (rv != 0) {
    qc->flags |= QCF_NO_CLOSE;
    if (rv == NGTCP2_ERR_IDLE_CLOSE) {
      snprintf(why, sizeof(why), "no packets from the peer for %s (idle "
               "timeout)", quic_dur_str(qi->cfg.idle_timeout_ms, d,
                                        sizeof(d)));
      quic_conn_doom(qc, -ETIMEDOUT, why);
    } else if (rv == NGTCP2_ERR_HANDSHAKE_TIMEOUT) {
      snprintf(why, sizeof(why), "no answer to the handshake in %s (peer "
               "offline, or its NAT filters us)%s",
               quic_dur_str(qi->cfg.handshake_timeout_ms, d, sizeof(d)),
               qc->path == SFK_PATH_DIRECT ? quic_path_policy_note(qi) : "");
      quic_conn_doom(qc, -ETIMEDOUT, why);
    } else {
      quic_conn_doom(qc, -ENOTCONN, ngtcp2_strerror(rv));
    }
    return;
  }
  quic_conn_dirty(qc);
}

/* After reading a packet: may its ACK wait for data to carry it?  Only a
 * lone data packet on an established connection with nothing of ours
 * queued; a second packet, a handshake, or anything that asked for a
 * write (quic_conn_dirty) sends at once, as ngtcp2 would. */
static int conn_may_hold_ack(const struct quic_conn *qc) {
  return (qc->flags & (QCF_HS_DONE | QCF_RX_DATA | QCF_DIRTY)) ==
             (QCF_HS_DONE | QCF_RX_DATA) &&
         qc->rx_since_write == 0 && TAILQ_EMPTY(&qc->sendq);
}

/* Why the peer closed (we saw its CONNECTION_CLOSE or reset). */
static void closed_why(struct quic_conn *qc, char *buf, size_t bufsz) {
  const struct sfk_identity *id = qc->qi->h->identity(qc->qi->h);
  ngtcp2_connection_close_error cc;

  if (qc->flags & QCF_SR_RECV) {
    snprintf(buf, bufsz, "stateless reset from the peer (it restarted)");
    return;
  }
  ngtcp2_conn_get_connection_close_error(qc->conn, &cc);
  if (cc.type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_TRANSPORT &&
      (cc.error_code & ~(uint64_t)0xff) == NGTCP2_CRYPTO_ERROR &&
      !(qc->flags & QCF_HS_DONE)) {
    unsigned alert = (unsigned)(cc.error_code & 0xff);

    /* 42-46: bad / unsupported / revoked / expired / unknown
     * certificate; our certificate is only refused for its pin. */
    if (alert >= 42 && alert <= 46)
      snprintf(buf, bufsz, "the peer refused our certificate (its registry "
               "pin for us differs: ours is %s)", id ? id->pin : "?");
    else
      snprintf(buf, bufsz, "the peer ended the TLS handshake (alert %u)",
               alert);
  } else if (cc.error_code == 0) {
    snprintf(buf, bufsz, "closed by the peer");
  } else {
    snprintf(buf, bufsz, "closed by the peer (%s error 0x%" PRIx64 ")",
             cc.type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_TRANSPORT
                 ? "transport"
                 : "application",
             cc.error_code);
  }
}

/* After a packet or a write: did ngtcp2 move the connection to another
 * path (the peer's NAT rebinding, which the server side follows after
 * path validation, or a move between direct and relay)? */
static void conn_track_path(struct quic_conn *qc) {
  struct quic_inst *qi = qc->qi;
  const struct sfk_host *h = qi->h;
  const ngtcp2_path *np = ngtcp2_conn_get_path(qc->conn);
  char a[64], b[64], why[QUIC_WHY_MAX];

  if (!np || np->remote.addrlen > sizeof(qc->remote) ||
      np->local.addrlen > sizeof(qc->local))
    return;
  if (quic_addr_eq(np->remote.addr, np->remote.addrlen,
                   (const struct sockaddr *)&qc->remote, qc->remotelen) &&
      quic_addr_eq(np->local.addr, np->local.addrlen,
                   (const struct sockaddr *)&qc->local, qc->locallen))
    return;
  conn_addr(qc, a, sizeof(a));
  memcpy(&qc->remote, np->remote.addr, np->remote.addrlen);
  qc->remotelen = np->remote.addrlen;
  memcpy(&qc->local, np->local.addr, np->local.addrlen);
  qc->locallen = np->local.addrlen;
  qc->path = quic_path_of_local(qi, np->local.addr, np->local.addrlen);
  qi->stats.migrations++;
  snprintf(why, sizeof(why), "moved from %s (connection migration)", a);
  h->log(h, SFK_LOG_DEBUG, "peer %u: path now %s %s; %s", qc->pid,
         qc->path == SFK_PATH_RELAY ? "relay" : "direct",
         conn_addr(qc, b, sizeof(b)), why);
  if ((qc->flags & QCF_HS_DONE) && qc->peer && qc->peer->conn == qc &&
      (qc->flags & QCF_SERVER))
    quic_peer_note_addr(qc->peer, (const struct sockaddr *)&qc->remote,
                        qc->remotelen);
  if ((qc->flags & QCF_HS_DONE) && qc->peer && qc->peer->conn == qc)
    quic_peer_state(qc->peer, SFK_PEER_UP, qc->path,
                    (const struct sockaddr *)&qc->remote, qc->remotelen, 0,
                    why);
}

void quic_conn_read(struct quic_conn *qc, int which,
                    const struct sockaddr *from, socklen_t fromlen,
                    const uint8_t *data, size_t len) {
  const struct sfk_host *h = qc->qi->h;
  ngtcp2_path path;
  ngtcp2_pkt_info pi;
  char why[QUIC_WHY_MAX];
  int rv;

  if (!qc->conn || (qc->flags & QCF_DOOMED))
    return;
  memset(&pi, 0, sizeof(pi));
  conn_path(qc, &path, which, from, fromlen);
  qc->rx_pkts++;
  qc->rx_bytes += len;
  qc->flags &= ~(uint32_t)QCF_RX_DATA;
  rv = ngtcp2_conn_read_pkt(qc->conn, &path, &pi, data, len,
                            quic_now(qc->qi));
  if (rv != 0) {
    h->log(h, SFK_LOG_TRACE, "peer %u: read_pkt: %s", qc->pid,
           ngtcp2_strerror(rv));
    switch (rv) {
    case NGTCP2_ERR_DRAINING:
      qc->flags |= QCF_NO_CLOSE;
      closed_why(qc, why, sizeof(why));
      quic_conn_doom(qc, -ENOTCONN, why);
      return;
    case NGTCP2_ERR_DROP_CONN:
    case NGTCP2_ERR_CLOSING:
      qc->flags |= QCF_NO_CLOSE;
      quic_conn_doom(qc, -ENOTCONN, "dropped");
      return;
    case NGTCP2_ERR_DISCARD_PKT:
      return;
    default:
      qc->liberr = rv;
      if (qc->fail_why[0])
        snprintf(why, sizeof(why), "%s", qc->fail_why);
      else if (rv == NGTCP2_ERR_CRYPTO)
        snprintf(why, sizeof(why), "TLS handshake failed (alert %u)",
                 (unsigned)ngtcp2_conn_get_tls_alert(qc->conn));
      else
        snprintf(why, sizeof(why), "%s", ngtcp2_strerror(rv));
      quic_conn_doom(qc, -ENOTCONN, why);
      return;
    }
  }
  qc->last_rx_ns = quic_now(qc->qi);
  conn_track_path(qc);
  if (conn_may_hold_ack(qc)) {
    if (!qc->ack_hold_ns)
      qc->ack_hold_ns = quic_now(qc->qi) + QUIC_ACK_HOLD_NS;
    conn_arm_timer(qc);
  } else {
    quic_conn_dirty(qc);
  }
  qc->rx_since_write += len;
  if (qc->rx_since_write >= QUIC_RX_WRITE_BYTES)
    quic_conn_write(qc);
}

static void send_batch(struct quic_conn *qc, const ngtcp2_path *path,
                       const uint8_t *buf, size_t len, size_t npk,
                       size_t gso) {
  const struct sfk_host *h = qc->qi->h;
  int rv;

  /* Our local label says which path ngtcp2 chose (see quic_path.c). */
  rv = h->udp_send(h,
                   quic_path_of_local(qc->qi, path->local.addr,
                                      path->local.addrlen),
                   (const struct sockaddr *)path->remote.addr,
                   path->remote.addrlen, buf, len, npk > 1 ? gso : 0);
  if (rv != 0 && rv != -EAGAIN)
    h->log(h, SFK_LOG_DEBUG, "peer %u: udp_send: %s", qc->pid, strerror(-rv));
}

/* Account nd stream bytes written for s (the head of sendq).  Round robin
 * with a quantum: a stream keeps the head for QUIC_RR_QUANTUM bytes, so a
 * GSO batch carries long runs of few streams and the peer writes each run
 * to TCP with one writev, not one small write per stream per batch. */
static void account(struct quic_conn *qc, struct quic_stream *s,
                    ngtcp2_ssize nd, int fin) {
  if (!s || nd < 0)
    return;
  quic_stream_sent(s, (size_t)nd, fin);
  if (qc->rr_id != s->id) {
    qc->rr_id = s->id;
    qc->rr_bytes = 0;
  }
  qc->rr_bytes += (size_t)nd;
  if (quic_stream_has_unsent(s) && !(s->flags & QSF_BLOCKED)) {
    if (qc->rr_bytes < QUIC_RR_QUANTUM)
      return; /* stays at the head */
    quic_stream_sendq_del(s);
    TAILQ_INSERT_TAIL(&qc->sendq, s, sq);
    s->flags |= QSF_IN_SENDQ;
  } else {
    quic_stream_sendq_del(s);
  }
  qc->rr_id = -1;
}

static void conn_count_tx(struct quic_conn *qc, size_t n) {
  qc->tx_pkts++;
  qc->tx_bytes += n;
  if (n > qc->tx_largest)
    qc->tx_largest = n;
}

void quic_conn_write(struct quic_conn *qc) {
  struct quic_inst *qi = qc->qi;
  uint8_t *buf = qi->txbuf;
  ngtcp2_path_storage ps;
  ngtcp2_pkt_info pi;
  ngtcp2_tstamp now;
  size_t pktmax, room, maxpk, off = 0, npk = 0, gso = 0;
  unsigned budget = QUIC_WRITE_BUDGET, spins = 0;
  uint64_t qcap;

  if (!qc->conn || (qc->flags & QCF_DOOMED) || qi->stopped)
    return;
  qc->flags &= ~(uint32_t)QCF_DIRTY;
  qc->rx_since_write = 0;
  qc->ack_hold_ns = 0;
  qc->q_held = 0;
  now = quic_now(qi);
  pktmax = ngtcp2_conn_get_path_max_tx_udp_payload_size(qc->conn);
  if (pktmax > QUIC_LOOP_PKT_MAX)
    pktmax = QUIC_LOOP_PKT_MAX;
  /* Room for a full QUIC_MAX_PKT even while the validated path size is
   * smaller: ngtcp2 keeps ordinary packets to that size itself, and a
   * PMTUD probe (up to 1444 bytes) is only written when it fits, so a
   * pktmax-sized room would keep every connection at 1200-byte packets
   * for ever. */
  room = pktmax > QUIC_MAX_PKT ? pktmax : QUIC_MAX_PKT;
  maxpk = ngtcp2_conn_get_send_quantum(qc->conn) / pktmax;
  if (maxpk > QUIC_GSO_BYTES / room) /* the batch fits txbuf */
    maxpk = QUIC_GSO_BYTES / room;
  if (maxpk < 1)
    maxpk = 1;
  if (qc->flags & QCF_PROBE) /* elicit an ACK or a stateless reset */
    ngtcp2_conn_set_keep_alive_timeout(qc->conn, 1);
  ngtcp2_path_storage_zero(&ps);
  memset(&pi, 0, sizeof(pi));
  qcap = quic_queue_cap(qc, now);

  for (;;) {
    struct quic_stream *s = TAILQ_FIRST(&qc->sendq);
    ngtcp2_vec v[4];
    size_t nv = 0;
    int fin = 0;
    uint32_t fl = NGTCP2_WRITE_STREAM_FLAG_MORE;
    ngtcp2_ssize nd = -1, n;

    if (++spins > QUIC_WRITE_BUDGET * 8) {
      qc->flags |= QCF_DIRTY;
      break;
    }
    /* Bulk data over the governor's cap waits for ACKs (they make the
     * connection dirty again); short sends sit at the head of sendq and
     * have gone out before.  ACKs and control frames still go. */
    if (s && (qc->q_held || !quic_queue_allows(qc, s, qcap))) {
      qc->q_held = 1;
      s = NULL;
    }
    if (s) {
      nv = quic_stream_unsent(s, v, 4, &fin);
      if (fin)
        fl |= NGTCP2_WRITE_STREAM_FLAG_FIN;
    }
    n = ngtcp2_conn_writev_stream(qc->conn, &ps.path, &pi, buf + off, room,
                                  &nd, fl, s ? s->id : -1, v, nv, now);
    if (n < 0) {
      if (n == NGTCP2_ERR_WRITE_MORE) {
        account(qc, s, nd, fin);
        continue;
      }
      if (s && n == NGTCP2_ERR_STREAM_DATA_BLOCKED) {
        quic_stream_sendq_del(s);
        s->flags |= QSF_BLOCKED;
        continue;
      }
      if (s && (n == NGTCP2_ERR_STREAM_SHUT_WR ||
                n == NGTCP2_ERR_STREAM_NOT_FOUND)) {
        quic_stream_peer_stopped(s);
        continue;
      }
      qc->liberr = (int)n;
      quic_conn_doom(qc, -ENOTCONN, ngtcp2_strerror((int)n));
      break;
    }
    account(qc, s, nd, fin);
    if (n == 0)
      break;
    conn_count_tx(qc, (size_t)n);
    qc->q_inflight += (uint64_t)n; /* for quic_queue_allows */
    if (npk == 0) {
      gso = (size_t)n;
      off += (size_t)n;
      npk = 1;
    } else if ((size_t)n > gso) {
      send_batch(qc, &ps.path, buf, off, npk, gso);
      memmove(buf, buf + off, (size_t)n);
      off = gso = (size_t)n;
      npk = 1;
    } else {
      off += (size_t)n;
      npk++;
    }
    if ((size_t)n < gso || npk >= maxpk) {
      send_batch(qc, &ps.path, buf, off, npk, gso);
      off = npk = 0;
    }
    if (--budget == 0) {
      qc->flags |= QCF_DIRTY;
      break;
    }
  }
  if (npk)
    send_batch(qc, &ps.path, buf, off, npk, gso);
  if (qc->flags & QCF_PROBE) {
    qc->flags &= ~(uint32_t)QCF_PROBE;
    if (qc->conn)
      ngtcp2_conn_set_keep_alive_timeout(qc->conn, qi->cfg.keepalive_ms *
                                                       NGTCP2_MILLISECONDS);
  }
  if (!qc->conn || (qc->flags & QCF_DOOMED))
    return;
  /* Pacing matters only while something waits to be sent.  Started after
   * a last small packet, the pacing deadline (microseconds away) would
   * wake the loop once more per round trip for nothing. */
  if ((qc->flags & QCF_DIRTY) || !TAILQ_EMPTY(&qc->sendq))
    ngtcp2_conn_update_pkt_tx_time(qc->conn, now);
  conn_arm_timer(qc);
  if (qc->flags & QCF_DIRTY)
    quic_kick(qi);
}

/* ------------------------------------------------------------------ */
/* Teardown                                                             */

static void conn_send_close(struct quic_conn *qc) {
  struct quic_inst *qi = qc->qi;
  ngtcp2_connection_close_error ccerr;
  ngtcp2_path_storage ps;
  ngtcp2_pkt_info pi;
  ngtcp2_ssize n;

  if (!qc->conn || (qc->flags & QCF_NO_CLOSE) ||
      ngtcp2_conn_is_in_closing_period(qc->conn) ||
      ngtcp2_conn_is_in_draining_period(qc->conn))
    return;
  ngtcp2_connection_close_error_default(&ccerr);
  if (qc->liberr == NGTCP2_ERR_CRYPTO)
    ngtcp2_connection_close_error_set_transport_error_tls_alert(
        &ccerr, ngtcp2_conn_get_tls_alert(qc->conn), NULL, 0);
  else if (qc->liberr)
    ngtcp2_connection_close_error_set_transport_error_liberr(
        &ccerr, qc->liberr, NULL, 0);
  ngtcp2_path_storage_zero(&ps);
  memset(&pi, 0, sizeof(pi));
  n = ngtcp2_conn_write_connection_close(qc->conn, &ps.path, &pi, qi->txbuf,
                                         QUIC_MAX_PKT, &ccerr, quic_now(qi));
  if (n > 0)
    send_batch(qc, &ps.path, qi->txbuf, (size_t)n, 1, 0);
}

/*
 * Free qc and its streams.  With upcalls (and the instance not stopped)
 * the streams' apps get stream_closed(doom_err).  Runs only at top level.
 */
void quic_conn_teardown(struct quic_conn *qc, int upcalls) {
  struct quic_inst *qi = qc->qi;
  const struct sfk_host *h = qi->h;
  struct quic_peer *p = qc->peer;
  const char *why = qc->doom_why[0] ? qc->doom_why : "closed";
  int hs_failed = !(qc->flags & QCF_HS_DONE);
  int err = qc->doom_err ? qc->doom_err : -ENOTCONN;
  char a[64];

  TAILQ_REMOVE(&qi->conns, qc, link);
  ev_timer_stop(h->loop, &qc->timer);
  if (hs_failed && upcalls)
    qi->stats.hs_failed++;
  /* Traffic summary; the daemon logs the state change itself. */
  if (qc->flags & QCF_HS_DONE)
    h->log(h, SFK_LOG_INFO,
           "peer %u at %s: connection down (%s); sent %" PRIu64
           " packets, %" PRIu64 " bytes, largest %zu; received %" PRIu64
           " packets, %" PRIu64 " bytes",
           qc->pid, conn_addr(qc, a, sizeof(a)), why, qc->tx_pkts,
           qc->tx_bytes, qc->tx_largest, qc->rx_pkts, qc->rx_bytes);
  else if (qc->pid != SFK_PID_NONE || !(qc->flags & QCF_SERVER))
    h->log(h, SFK_LOG_DEBUG, "peer %u at %s: handshake failed (%s)", qc->pid,
           conn_addr(qc, a, sizeof(a)), why);
  /* A server connection that failed before it knew its peer: tell the
   * peer its address or its pin pointed to, unless that one is up. */
  if (!p && upcalls && hs_failed && (qc->flags & QCF_SERVER) &&
      qc->cand_pid != SFK_PID_NONE) {
    struct quic_peer *cp = quic_peer_find(qi, qc->cand_pid);

    if (cp && cp->present &&
        !(cp->conn && (cp->conn->flags & QCF_HS_DONE)))
      quic_peer_state(cp, SFK_PEER_DOWN, qc->path,
                      (const struct sockaddr *)&qc->remote, qc->remotelen,
                      err, why);
  }
  if (p && p->conn == qc) {
    p->conn = NULL;
    if ((qc->flags & (QCF_SERVER | QCF_HS_DONE)) ==
        (QCF_SERVER | QCF_HS_DONE)) /* last used now */
      quic_peer_note_addr(p, (const struct sockaddr *)&qc->remote,
                          qc->remotelen);
    if (upcalls && !(qc->flags & QCF_QUIET))
      quic_peer_state(p, SFK_PEER_DOWN, qc->path,
                      (const struct sockaddr *)&qc->remote, qc->remotelen,
                      err, why);
    if (quic_is_client_of(qi, p->pid)) {
      if (hs_failed && qc->path == SFK_PATH_DIRECT && err == -ETIMEDOUT)
        p->direct_failed = 1; /* auto: the next dial may take the relay */
      if (qc->path == SFK_PATH_RELAY)
        quic_path_unpermit(qi, p);
      p->last_err = err;
      if (qc->flags & QCF_QUIET)
        p->next_connect_ns = 0;
      else if (upcalls)
        quic_peer_backoff(p);
    } else {
      p->next_punch_ns = 0;
      p->punch_start_ns = 0;
    }
  }
  conn_send_close(qc);
  if (qc->conn) {
    ngtcp2_conn_del(qc->conn);
    qc->conn = NULL;
  }
  if (qc->tls) {
    gnutls_deinit(qc->tls);
    qc->tls = NULL;
  }
  if (!upcalls)
    qi->stopped++;
  quic_stream_conn_lost(qc, err, why);
  if (!upcalls)
    qi->stopped--;
  if (p)
    quic_peer_schedule(p);
  free(qc);
}

size_t quic_conn_nstreams(const struct quic_conn *qc) {
  const struct quic_stream *s;
  size_t n = 0;

  TAILQ_FOREACH(s, &qc->streams, link) n++;
  return n;
}

/* stop(): CONNECTION_CLOSE(NO_ERROR) everywhere, no upcalls. */
void quic_conn_close_all(struct quic_inst *qi) {
  struct quic_conn *qc;

  while ((qc = TAILQ_FIRST(&qi->conns))) {
    if (!(qc->flags & QCF_DOOMED))
      qc->liberr = 0;
    snprintf(qc->doom_why, sizeof(qc->doom_why), "stopping");
    quic_conn_teardown(qc, 0);
  }
}

