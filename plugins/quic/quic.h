/*
 * QUIC transport plugin: internal structures shared by its files.
 *
 * Ownership at a glance
 *   struct quic_inst    one per plugin instance (create() .. destroy());
 *                       owns the peers, the connections and every stream.
 *   struct quic_peer    one per PID we know of; owns the streams opened to
 *                       it that wait for a connection (pending list).
 *   struct quic_conn    one ngtcp2 connection + GnuTLS session; owns the
 *                       streams open on it.
 *   struct quic_stream  one QUIC bidirectional stream = one TCP connection;
 *                       `app` belongs to the daemon and is never freed here.
 *
 * Re-entrancy rule: upcalls into the daemon (host->stream_*) may call our
 * ops, and our ops never unlink or free anything, nor call ngtcp2 write
 * functions.  They only change a stream's fields, push it on the deferred
 * list and mark its connection dirty.  Unlinking and freeing happen in
 * quic_flush() (ev_prepare / ev_idle), in timers and at the top of
 * on_datagram, never below an upcall.
 *
 * host->peer_state is only called from quic_flush() (quic_peer_events):
 * a DOWN makes the daemon re-read the peer, which replaces the peer table
 * (every `const struct sfk_peer *` from peer_get/peer_at goes stale), so
 * code that learns a state records it with quic_peer_state() instead.
 *
 * Files: quic_plugin.c (lifetime, config, datagrams, flush), quic_conn.c
 * (connections), quic_peer.c (peers, dialling, punching, peer states,
 * status), quic_path.c (direct / relay paths, relay policy),
 * quic_stream.c (streams), quic_tls.c (TLS and pins).
 */
#ifndef SFK_QUIC_H
#define SFK_QUIC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <ev.h>
#include <gnutls/gnutls.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>

#include "sfkit-proxy/plugin.h"

/* Length of every connection ID we issue (short headers need a fixed one). */
#define QUIC_SCIDLEN 16
/* Our CIDs per connection: ngtcp2 keeps at most 8 + the client's DCID. */
#define QUIC_MAX_CIDS 12
/* Send buffer chunk: allocated on demand, freed once acknowledged. */
#define QUIC_CHUNK 16384
/* Most bytes a stream queues ahead of ngtcp2 (see stream_space()). */
#define QUIC_UNSENT_MAX (128 * 1024)
/* First chunk of an empty buffer when the write is small (headers, status
 * bytes, interactive traffic). */
#define QUIC_SMALL_CHUNK 512
/* Largest UDP payload we build on a network path (ngtcp2's default
 * max_tx_udp_payload_size). */
#define QUIC_MAX_PKT 1452
/* At most this many equal-size packets per GSO send: one send may carry
 * 64 KiB of UDP payload (45 * 1452 = 65340), which is also ngtcp2's send
 * quantum. */
#define QUIC_GSO_MAX 45
#define QUIC_GSO_BYTES (QUIC_GSO_MAX * QUIC_MAX_PKT)
/* Payload for a peer on a loopback address (loopback_payload): the path
 * is this host's loopback device (MTU 64 KiB), so the network's 1452
 * would only multiply per-packet work (AEAD, header protection, ngtcp2's
 * bookkeeping, ACKs).  The largest is IPv4's largest UDP payload, which
 * also sizes txbuf. */
#define QUIC_LOOP_PKT_DEFAULT 16384
#define QUIC_LOOP_PKT_MAX 65507
#define QUIC_TXBUF QUIC_LOOP_PKT_MAX
/* Receive windows towards a loopback peer grow at most to these (the
 * configured conn_window / stream_window if smaller). */
#define QUIC_LOOP_CONN_WINDOW (4 * 1024 * 1024)
#define QUIC_LOOP_STREAM_WINDOW (2 * 1024 * 1024)
_Static_assert(QUIC_TXBUF >= QUIC_GSO_BYTES, "txbuf holds a GSO batch");
/* How long the ACK for a lone data packet may wait for the reply it is
 * likely to prompt (a request/response round).  ngtcp2 0.12 would send
 * it after srtt/8, a few microseconds on a LAN: a packet of its own each
 * way per round trip, and a wakeup of the peer for nothing.  Well below
 * the max_ack_delay we announce (25 ms), so the peer's timers hold. */
#define QUIC_ACK_HOLD_NS (1000 * 1000)
/* congestion: auto: network paths (direct or relayed) get QUIC_CC_NETWORK,
 * loopback peers CUBIC (see quic_conn.c conn_settings). */
#define QUIC_CC_AUTO (-1)
#define QUIC_CC_NETWORK NGTCP2_CC_ALGO_BBR
/* transport.queue: when the queue governor (quic_queue.c) runs. */
enum { QUIC_Q_INTERACTIVE, QUIC_Q_ALWAYS, QUIC_Q_OFF };
/* While it holds bulk data: the longest the timer sleeps past a pacing
 * deadline (ACKs, not the timer, normally let the data go). */
#define QUIC_Q_RETRY_NS (1000 * 1000)
/* Bytes a stream sends before the next one in sendq gets its turn. */
#define QUIC_RR_QUANTUM (64 * 1024)
/* Packets written per connection per flush before yielding to the loop. */
#define QUIC_WRITE_BUDGET 256
/* Handshake admission (policy at quic_conn_accept in quic_conn.c).
 * Sources that are no client peer's published or recently verified
 * address share QUIC_MAX_UNVERIFIED handshakes, at most QUIC_HS_PER_IP
 * per source IP (IPv6: per /64); from QUIC_HS_RETRY_AT on, their Initials
 * without a token get a Retry.  A known address has QUIC_HS_PER_KNOWN
 * handshakes of its own, outside that pool.  A peer remembers the last
 * QUIC_RECENT_ADDRS addresses its verified connections came from, for
 * QUIC_RECENT_TTL_MS after last use.  Our Retry tokens are valid for
 * QUIC_RETRY_TOKEN_MS. */
#define QUIC_MAX_UNVERIFIED 16
#define QUIC_HS_PER_IP 4
#define QUIC_HS_RETRY_AT (QUIC_MAX_UNVERIFIED / 2)
#define QUIC_HS_PER_KNOWN 2
#define QUIC_RECENT_ADDRS 4
#define QUIC_RECENT_TTL_MS (3600ull * 1000)
#define QUIC_RETRY_TOKEN_MS 10000
/* Stateless resets: at most QUIC_SR_PER_SOURCE a second to one source
 * address (tracked in QUIC_SR_SOURCES slots, hashed with a per-instance
 * random key), and QUIC_SR_PER_SEC a second in all to addresses that are
 * no peer's published one: junk from anywhere cannot use up the answer a
 * restarted peer's partner needs. */
#define QUIC_SR_PER_SOURCE 3
#define QUIC_SR_SOURCES 256
#define QUIC_SR_PER_SEC 100
/* Retry packets: at most QUIC_RETRY_PER_SOURCE a second to one source
 * address (slots as for stateless resets).  No budget in all: a flood
 * from many addresses must not deny a real client the Retry it needs to
 * get in under load (a Retry is smaller than the Initial it answers). */
#define QUIC_RETRY_PER_SOURCE 3
/* Punch datagram: first byte in 0x40..0x7f, too short to be QUIC. */
#define QUIC_PUNCH "\x7f" "sfkit-punch"
#define QUIC_PUNCH_LEN 12
/* Punch schedule of the server side: every 500 ms for the first 10 s
 * (both NATs open within a round trip of the client's first Initial),
 * then every 5 s while no handshake arrives (the peer may start later;
 * a slow beat keeps our NAT open for it without flooding a dead address). */
#define QUIC_PUNCH_INTERVAL_MS 500
#define QUIC_PUNCH_FAST_MS 10000
#define QUIC_PUNCH_SLOW_MS 5000
/* Reconnect backoff of the client side. */
#define QUIC_BACKOFF_MIN_MS 500
#define QUIC_BACKOFF_MAX_MS 10000
/* Longest reason text we keep (two full pins and some words fit). */
#define QUIC_WHY_MAX 256
/* Application error code for our RESET_STREAM / STOP_SENDING. */
#define QUIC_APP_ERR_RESET 0x1

struct quic_inst;
struct quic_peer;
struct quic_conn;
struct quic_stream;

TAILQ_HEAD(quic_stream_list, quic_stream);
TAILQ_HEAD(quic_conn_list, quic_conn);
TAILQ_HEAD(quic_peer_list, quic_peer);

/* Parsed config; see the comment block in quic_plugin.c for defaults. */
struct quic_cfg {
  uint64_t idle_timeout_ms;
  uint64_t keepalive_ms;
  uint64_t handshake_timeout_ms;
  int cc_algo; /* ngtcp2_cc_algo, or QUIC_CC_AUTO */
  uint64_t stream_window;
  uint64_t conn_window;
  uint64_t max_streams;
  uint64_t send_buffer;
  uint64_t peer_send_memory; /* all streams to one peer, bytes */
  uint64_t send_memory;      /* all streams, bytes */
  uint64_t loopback_payload; /* to loopback peers; <= 1452: as on a network */
  uint64_t peer_timeout_ms;  /* no packet for this long: the peer is down */
  uint64_t relay_fallback_ms; /* auto: relay after this long without a
                                 direct handshake */
  int queue_mode;             /* QUIC_Q_* */
  uint64_t queue_delay_ms;    /* the governor's target queueing delay */
};

/* Counters for base.report (status). */
struct quic_stats {
  uint64_t accepted, dialled, hs_failed;
  uint64_t sr_sent, sr_received;
  uint64_t punches_sent, punches_received;
  uint64_t migrations;
  /* datagrams dropped, by why */
  uint64_t drop_not_quic;     /* neither a punch nor a QUIC header */
  uint64_t drop_busy;         /* no handshake slot and no Retry sent */
  uint64_t drop_bad_token;    /* an Initial with an invalid Retry token */
  uint64_t drop_retry_limit;  /* owed a Retry, over its source's budget */
  /* handshake admission (quic_conn_accept) */
  uint64_t hs_known;          /* admitted from a known peer address */
  uint64_t hs_evicted;        /* handshakes ended to make room */
  uint64_t retry_sent;        /* Retry packets (address validation) */
  uint64_t hs_validated;      /* admitted with a valid Retry token */
  uint64_t drop_bad_initial;  /* a long header that is no valid Initial */
  uint64_t drop_unknown_cid;  /* short header for no connection of ours */
  uint64_t drop_unknown_punch; /* punch from an address of no peer */
};

struct quic_chunk {
  struct quic_chunk *next;
  size_t cap; /* QUIC_CHUNK, or QUIC_SMALL_CHUNK for a lone small write */
  uint8_t data[];
};

enum quic_role { QS_OPENER = 1, QS_ACCEPTOR = 2 };

/* struct quic_stream.flags */
enum {
  QSF_OPEN = 1u << 0,       /* exists in ngtcp2 (id valid) */
  QSF_NG_CLOSED = 1u << 1,  /* ngtcp2 closed it: no more ngtcp2 calls */
  QSF_GATED = 1u << 2,      /* acceptor: nothing sent before the reply */
  QSF_STATUS = 1u << 3,     /* opener: status delivered */
  QSF_HDR = 1u << 4,        /* acceptor: header parsed */
  QSF_FIN_Q = 1u << 5,      /* FIN queued after the last byte */
  QSF_FIN_SENT = 1u << 6,   /* FIN handed to ngtcp2 */
  QSF_WANT_WR = 1u << 7,    /* a short write happened: stream_writable */
  QSF_SHUT_REQ = 1u << 8,   /* abort both directions in the next flush */
  QSF_STOP_REQ = 1u << 9,   /* STOP_SENDING only (rejected stream) */
  QSF_IN_SENDQ = 1u << 10,  /* on conn->sendq */
  QSF_IN_DQ = 1u << 11,     /* on inst->deferred */
  QSF_CLOSE_Q = 1u << 12,   /* stream_closed(app, close_err) is due */
  QSF_FREE = 1u << 13,      /* free in the next flush */
  QSF_BLOCKED = 1u << 14,   /* flow-control blocked (wait for credit) */
  QSF_RD_FIN = 1u << 15,    /* FIN received and delivered */
  QSF_IN_ACCEPT = 1u << 16, /* inside host->stream_accept() */
  QSF_WRITABLE_Q = 1u << 17 /* stream_writable() is due (next flush) */
};

struct quic_stream {
  struct quic_inst *qi;
  struct quic_peer *peer;         /* opener while pending: owner */
  struct quic_conn *qc;           /* once open: owner */
  TAILQ_ENTRY(quic_stream) link;  /* peer->pending or qc->streams */
  TAILQ_ENTRY(quic_stream) sq;    /* qc->sendq */
  TAILQ_ENTRY(quic_stream) dq;    /* qi->deferred */
  void *app;                      /* daemon's handle; NULL when detached */
  int64_t id;
  uint32_t pid;
  uint32_t flags;
  uint16_t port;
  uint8_t role;
  uint8_t hdrlen;
  uint8_t hdr[3];
  int close_err;        /* for QSF_CLOSE_Q */
  uint64_t deadline_ns; /* opener: HOST_UNREACHABLE after this */
  /* Send buffer, in stream offsets: [acked, sent) in flight, retained for
   * retransmission; [sent, end) not yet handed to ngtcp2. */
  struct quic_chunk *head, *tail, *cur;
  uint64_t head_off; /* stream offset of head->data[0] */
  uint64_t tail_off; /* stream offset of tail->data[0] */
  uint64_t cur_off;  /* stream offset of cur->data[0] (chunk holding sent) */
  uint64_t acked, sent, end;
  unsigned q_small;  /* short sends after a pause, up to 2 (quic_queue.c) */
  uint64_t mem; /* bytes of chunks held (counted in qc->mem, qi->mem) */
  /* Receive accounting (daemon bytes only, headers excluded). */
  uint64_t delivered, consumed;
};

/* struct quic_conn.flags */
enum {
  QCF_SERVER = 1u << 0,
  QCF_HS_DONE = 1u << 1,
  QCF_DIRTY = 1u << 2,
  QCF_DOOMED = 1u << 3,   /* tear down in the next flush */
  QCF_NO_CLOSE = 1u << 4, /* do not send CONNECTION_CLOSE (draining) */
  QCF_VERIFIED = 1u << 5,
  QCF_PROBE = 1u << 6, /* send a PING soon (peer may have lost state) */
  QCF_CREATING = 1u << 7, /* inside ngtcp2_conn_{client,server}_new */
  QCF_RX_DATA = 1u << 8,  /* the packet being read carried stream data */
  QCF_SR_RECV = 1u << 9,  /* the peer's stateless reset ended it */
  QCF_QUIET = 1u << 10,   /* replaced on purpose (path switch): no DOWN,
                             redial at once */
  QCF_KNOWN_SRC = 1u << 11, /* server: accepted from a known peer address */
  QCF_VALIDATED = 1u << 12  /* server: the client proved its address (Retry
                               token) */
};

struct quic_conn {
  ngtcp2_crypto_conn_ref ref; /* gnutls_session_get_ptr() points here */
  struct quic_inst *qi;
  struct quic_peer *peer; /* NULL for a server conn until identified */
  TAILQ_ENTRY(quic_conn) link;
  ngtcp2_conn *conn; /* owned; NULL once deleted */
  gnutls_session_t tls;
  ev_timer timer;
  /* The current path as ngtcp2 knows it: `local` is our address label
   * for qc->path (the socket's address, or our relayed address), so a
   * move between paths is a path change for ngtcp2 even when the peer's
   * address is the same on both. */
  int path; /* enum sfk_path */
  int cc_algo; /* ngtcp2_cc_algo chosen for this connection */
  struct sockaddr_storage local, remote;
  socklen_t locallen, remotelen;
  ngtcp2_cid cids[QUIC_MAX_CIDS]; /* DCIDs that route to us */
  size_t ncids;
  uint32_t pid;      /* dialled (client) or verified (server) */
  uint32_t cand_pid; /* server: peer found by source address */
  uint32_t flags;
  unsigned gen; /* flush generation */
  int doom_err; /* errno for the streams when doomed */
  int liberr;   /* ngtcp2 error for CONNECTION_CLOSE, 0 = NO_ERROR */
  char pin[SFK_PIN_SIZE]; /* the peer's verified pin */
  char doom_why[QUIC_WHY_MAX];
  char fail_why[QUIC_WHY_MAX]; /* set by the pin check: why TLS failed */
  uint64_t last_rx_ns;         /* last packet ngtcp2 accepted */
  size_t rx_since_write; /* bytes of packets read since the last write */
  int64_t rr_id;    /* stream at the head of sendq for its quantum, or -1 */
  size_t rr_bytes;  /* bytes it sent in this turn */
  uint64_t ack_hold_ns; /* != 0: an ACK waits until then for data to ride on */
  uint64_t created_ns, up_ns;
  /* UDP payload bytes and packets, for the "connection down" line. */
  uint64_t tx_pkts, tx_bytes, rx_pkts, rx_bytes;
  uint64_t mem;  /* send-buffer bytes of its streams (peer_send_memory) */
  int mem_full;  /* a stream was refused space for it: wake them later */
  size_t tx_largest;
  /* Queue governor (quic_queue.c). */
  int q_loopback;       /* a loopback peer: no governor */
  int q_hit;            /* bulk data waited for the cap this round trip */
  int q_bulk;           /* bulk data was ready to send this round trip */
  int q_held;           /* ... in the last write pass */
  int q_tight;          /* the cap aims at queue_delay (else 4/5 min RTT) */
  uint64_t q_inflight;  /* bytes in flight as of this write pass: ngtcp2's
                           at its start plus every packet written since */
  uint64_t q_until_ns;  /* interactive: on until then */
  uint64_t q_cap;       /* bytes in flight for bulk data; 0 = off,
                           UINT64_MAX = on, no queue seen yet */
  uint64_t q_rate;      /* the path's rate as last measured, bytes/s */
  uint64_t q_peak;      /* the largest since the governor turned on */
  uint64_t q_last;      /* the rate of the round trip before, bytes/s */
  uint64_t q_acked;     /* stream bytes acknowledged, all streams */
  /* q_acked, tx_bytes and bytes in flight at this round trip's start */
  uint64_t q_win_acked, q_win_tx, q_win_inflight, q_win_ns, q_next_ns;
  struct quic_stream_list streams;
  struct quic_stream_list sendq;
};

struct quic_peer {
  struct quic_inst *qi;
  TAILQ_ENTRY(quic_peer) link;
  uint32_t pid;
  int present; /* in the daemon's peer table */
  struct sockaddr_storage addr;
  socklen_t addrlen;
  char pin[SFK_PIN_SIZE];
  char warned_pin[SFK_PIN_SIZE]; /* last mismatching pin we logged */
  struct quic_conn *conn;        /* current connection, or NULL */
  struct quic_stream_list pending;
  ev_timer timer;
  uint64_t backoff_ms;
  uint64_t next_connect_ns; /* client: 0 = not scheduled */
  unsigned attempts;        /* client: dials since the last UP */
  int last_err;             /* client: how the last attempt ended */
  /* Server side punching: a phase starts when punching (re)starts. */
  uint64_t next_punch_ns;   /* 0 = start a phase now */
  uint64_t punch_start_ns;  /* 0 = no phase running */
  uint64_t punch_force_until_ns; /* punch even while up (our mapping moved) */
  unsigned punches;         /* in this phase */
  int punch_slow;           /* the fast part of the phase is over */
  /* Path choice (quic_path.c). */
  int direct_failed;        /* auto: no direct handshake in relay_fallback */
  int permitted;            /* relay_permit() holds permit_addr */
  struct sockaddr_storage permit_addr;
  socklen_t permit_addrlen;
  /* State for the daemon (peer_state): wanted now, and last told. */
  int st, st_path, st_err;
  struct sockaddr_storage st_addr;
  socklen_t st_addrlen;
  char st_why[QUIC_WHY_MAX];
  int told, told_path, told_err;
  struct sockaddr_storage told_addr;
  socklen_t told_addrlen;
  char told_why[QUIC_WHY_MAX];
  int st_dirty;
  char why[QUIC_WHY_MAX]; /* last failure, for streams that give up */
  /* Addresses its verified (accepted) connections came from: a
   * peer-reflexive client dials from them again (quic_peer_known_src). */
  struct quic_recent_addr {
    struct sockaddr_storage addr;
    socklen_t addrlen; /* 0 = empty */
    uint64_t seen_ns;
  } recent[QUIC_RECENT_ADDRS];
};

struct quic_inst {
  const struct sfk_host *h;
  struct quic_cfg cfg;
  gnutls_certificate_credentials_t cred;
  uint8_t reset_secret[32];
  uint8_t retry_secret[32]; /* Retry tokens (address validation) */
  struct sockaddr_storage local; /* the socket's address: direct label */
  socklen_t locallen;
  /* The relay path as path_info() last said (quic_path.c). */
  int relay_present;   /* a relay plugin exists (path_info != -ENOENT) */
  int relay_usable;
  struct sockaddr_storage relay_local; /* our relayed address: relay label */
  socklen_t relay_locallen;
  size_t relay_overhead, relay_max_payload;
  struct quic_stats stats;
  struct quic_conn_list conns;
  struct quic_peer_list peers;
  struct quic_stream_list deferred;
  uint64_t mem;  /* send-buffer bytes of every stream (send_memory) */
  int mem_full;
  ev_prepare prep;
  ev_idle idle;
  int started, stopped;
  int peers_dirty;
  int in_flush;
  unsigned flush_gen;
  uint64_t sr_window_ns; /* global budget (sources that are no peer's) */
  unsigned sr_count;
  uint64_t sr_seed;
  struct quic_sr_slot {
    uint64_t key, window_ns;
    unsigned count;
  } sr[QUIC_SR_SOURCES];
  struct quic_sr_slot retry_rl[QUIC_SR_SOURCES]; /* Retry, per source */
  char unknown_warned_pin[SFK_PIN_SIZE];
  uint8_t txbuf[QUIC_TXBUF];
};

/* ---- quic_plugin.c -------------------------------------------------- */
uint64_t quic_now(const struct quic_inst *qi);
/* quic_queue.c: the queue governor. */
void quic_queue_interactive(struct quic_conn *qc, struct quic_stream *s);
int quic_queue_on(const struct quic_conn *qc, uint64_t now);
uint64_t quic_queue_cap(struct quic_conn *qc, uint64_t now);
int quic_queue_allows(struct quic_conn *qc, const struct quic_stream *s,
                      uint64_t cap);
/* "10 s", "500 ms", "2.5 s" for messages. */
const char *quic_dur_str(uint64_t ms, char *buf, size_t bufsz);
/* "cubic", "bbr", ... for a ngtcp2_cc_algo; "auto" for QUIC_CC_AUTO. */
const char *quic_cc_name(int cc_algo);
/* Make sure quic_flush() runs before the loop blocks again. */
void quic_kick(struct quic_inst *qi);
void quic_flush(struct quic_inst *qi);
/* "ip:port" for logs. */
const char *quic_addr_str(const struct sockaddr *sa, socklen_t len,
                          char *buf, size_t bufsz);
/* The rate slot of source `from` in tab (QUIC_SR_SOURCES slots), its
 * count started afresh when another source or a new second took it. */
struct quic_sr_slot *quic_src_slot(struct quic_inst *qi,
                                   struct quic_sr_slot *tab,
                                   const struct sockaddr *from,
                                   socklen_t fromlen, uint64_t now);
int quic_addr_eq(const struct sockaddr *a, socklen_t alen,
                 const struct sockaddr *b, socklen_t blen);

/* ---- quic_tls.c ----------------------------------------------------- */
int quic_tls_init(struct quic_inst *qi);
void quic_tls_free(struct quic_inst *qi);
int quic_tls_session_new(struct quic_conn *qc);
int quic_tls_alpn_ok(struct quic_conn *qc);

/* ---- quic_peer.c ---------------------------------------------------- */
struct quic_peer *quic_peer_find(struct quic_inst *qi, uint32_t pid);
struct quic_peer *quic_peer_get(struct quic_inst *qi, uint32_t pid);
void quic_peer_schedule(struct quic_peer *p);
void quic_peer_free(struct quic_peer *p);
void quic_peers_sync(struct quic_inst *qi);
/* Nonzero when we dial pid (it has the lower PID). */
int quic_is_client_of(const struct quic_inst *qi, uint32_t pid);
/* The published peer at this address (want_client: a higher PID). */
uint32_t quic_peer_by_addr(struct quic_inst *qi, const struct sockaddr *sa,
                           socklen_t len, int want_client);
/* The client peer whose published address this is, or whose verified
 * connection came from it within QUIC_RECENT_TTL_MS; SFK_PID_NONE. */
uint32_t quic_peer_known_src(struct quic_inst *qi, const struct sockaddr *sa,
                             socklen_t len);
/* A verified connection of p uses this remote address now. */
void quic_peer_note_addr(struct quic_peer *p, const struct sockaddr *sa,
                         socklen_t len);
void quic_punch_recv(struct quic_inst *qi, int path,
                     const struct sockaddr *from, socklen_t fromlen);
/* Restart the punch schedule of every client peer (our mapping moved). */
void quic_punch_restart_all(struct quic_inst *qi);
/* Record the state the daemon should hear of (told in the next flush by
 * quic_peer_events(); never below an upcall).  While DOWN, a new dial
 * does not turn the peer CONNECTING again: it stays DOWN with its last
 * reason until it is UP. */
void quic_peer_state(struct quic_peer *p, int state, int path,
                     const struct sockaddr *addr, socklen_t addrlen, int err,
                     const char *why);
void quic_peer_events(struct quic_inst *qi);
/* Why a stream waiting for this peer gives up (p->why or a default). */
const char *quic_peer_why(struct quic_peer *p, char *buf, size_t bufsz);
/* The client's connection p->conn ended (teardown): schedule a redial. */
void quic_peer_backoff(struct quic_peer *p);
void quic_op_peer_report(void *self, uint32_t pid, struct sfk_report *r);
void quic_report(struct quic_inst *qi, struct sfk_report *r);

/* ---- quic_path.c ---------------------------------------------------- */
/* Refresh qi->relay_* from host->path_info(SFK_PATH_RELAY). */
void quic_path_refresh(struct quic_inst *qi);
/* The path the next dial towards p takes. */
int quic_path_choose(struct quic_inst *qi, struct quic_peer *p);
/* Our address label for ngtcp2 on path. */
void quic_path_local(const struct quic_inst *qi, int path,
                     const struct sockaddr **sa, socklen_t *len);
/* Which path an ngtcp2 local address label means. */
int quic_path_of_local(const struct quic_inst *qi, const struct sockaddr *sa,
                       socklen_t len);
/* Largest UDP payload on a relayed path (network size minus framing). */
size_t quic_path_relay_payload(const struct quic_inst *qi);
/* Ask the relay to let p's address in (idempotent), or drop that. */
int quic_path_permit(struct quic_inst *qi, struct quic_peer *p);
void quic_path_unpermit(struct quic_inst *qi, struct quic_peer *p);
/* Client: the direct handshake of p->conn has run for relay_fallback
 * without completing; switch to the relay when policy and path allow.
 * Returns 1 when it doomed the connection to redial on the relay. */
int quic_path_fallback(struct quic_inst *qi, struct quic_peer *p,
                       uint64_t now);
/* ops->path_changed. */
void quic_op_path_changed(void *self, int path);
/* Text for a DOWN why: what the relay policy adds to a failed direct
 * attempt ("" when nothing). */
const char *quic_path_policy_note(const struct quic_inst *qi);
/* Why a connection that just came up runs on its path, for the UP
 * event (the daemon logs it and shows it in status). */
const char *quic_path_why(const struct quic_inst *qi,
                          const struct quic_conn *qc);

/* ---- quic_conn.c ---------------------------------------------------- */
/* Client: dial p on path.  0 or -errno. */
int quic_conn_connect(struct quic_peer *p, int path);
struct quic_conn *quic_conn_find(struct quic_inst *qi, const uint8_t *dcid,
                                 size_t dcidlen);
int quic_conn_accept(struct quic_inst *qi, int path,
                     const struct sockaddr *from, socklen_t fromlen,
                     const uint8_t *data, size_t len);
void quic_conn_read(struct quic_conn *qc, int path,
                    const struct sockaddr *from, socklen_t fromlen,
                    const uint8_t *data, size_t len);
void quic_conn_dirty(struct quic_conn *qc);
/* Mark qc for teardown in the next flush; why is copied. */
void quic_conn_doom(struct quic_conn *qc, int err, const char *why);
void quic_conn_write(struct quic_conn *qc);
void quic_conn_teardown(struct quic_conn *qc, int upcalls);
void quic_conn_close_all(struct quic_inst *qi);
int quic_conn_check_pin(struct quic_conn *qc, const char *pin);
size_t quic_conn_nstreams(const struct quic_conn *qc);

/* ---- quic_stream.c -------------------------------------------------- */
void quic_stream_set_callbacks(ngtcp2_callbacks *cb);
void quic_stream_defer(struct quic_stream *s);
void quic_stream_process_deferred(struct quic_inst *qi);
/* Move a stream (and its memory count) to qc, or off its connection. */
void quic_stream_set_conn(struct quic_stream *s, struct quic_conn *qc);
void quic_stream_free(struct quic_stream *s);
void quic_stream_open_pending(struct quic_peer *p);
/* Fail pending streams past their deadline (or all) with
 * HOST_UNREACHABLE and quic_peer_why(). */
void quic_stream_fail_pending(struct quic_peer *p, uint64_t now, int all);
uint64_t quic_stream_next_deadline(const struct quic_peer *p);
/* The connection is gone: streams end with err (openers without a
 * status get HOST_UNREACHABLE and why). */
void quic_stream_conn_lost(struct quic_conn *qc, int err, const char *why);
/* Build iovecs of unsent data; returns count; *fin set when FIN fits. */
size_t quic_stream_unsent(struct quic_stream *s, ngtcp2_vec *v, size_t nv,
                          int *fin);
void quic_stream_sent(struct quic_stream *s, size_t n, int fin);
int quic_stream_has_unsent(const struct quic_stream *s);
void quic_stream_sendq_add(struct quic_stream *s);
void quic_stream_sendq_del(struct quic_stream *s);
void quic_stream_peer_stopped(struct quic_stream *s);

int quic_op_stream_open(void *self, uint32_t pid, uint16_t port, void *app,
                        void **ts);
void quic_op_stream_reply(void *self, void *ts, uint8_t status);
size_t quic_op_stream_space(void *self, void *ts);
size_t quic_op_stream_write(void *self, void *ts, const uint8_t *data,
                            size_t len, int fin);
void quic_op_stream_consumed(void *self, void *ts, size_t n);
void quic_op_stream_reset(void *self, void *ts);

#endif /* SFK_QUIC_H */
