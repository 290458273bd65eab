/*
 * Relay plugin `turn`: a TURN client (RFC 8656) over UDP on the daemon's
 * one socket, with long-term credentials (RFC 8489 9.2).
 *
 * Files, one purpose each:
 *   turn_plugin.c  config, the relay ops, demultiplexing, status report
 *   turn_txn.c     requests: credentials, retransmission, answers, 401/438
 *   turn_alloc.c   the allocation: resolve, Allocate, Refresh, liveness,
 *                  loss and backoff, Deallocate
 *   turn_peer.c    permissions and channels per peer address, and the
 *                  data path (ChannelData, Send and Data indications)
 *
 * Addresses: the core names IPv4 peers as plain IPv4 on every socket,
 * dual-stack included, and so does TURN on the wire; turn_to_wire()
 * takes back a v4-mapped address a caller might still pass, and
 * turn_to_socket() is where a conversion for the core would go.
 *
 * Secrets: the password and the long-term key live in struct turn_cfg and
 * struct turn only, are never formatted into a message, and are wiped in
 * destroy.
 */
#ifndef SFK_PLUGIN_TURN_H
#define SFK_PLUGIN_TURN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <ev.h>

#include "sfkit-proxy/plugin.h"
#include "proto/sockaddr.h"
#include "proto/stun.h"

#define TURN_URI_MAX 256
#define TURN_HOST_MAX 254
#define TURN_CRED_MAX 256   /* username, password, realm, nonce (with NUL) */
#define TURN_MAX_PEERS 64   /* peer addresses with a permission or channel */
#define TURN_NTXN 64        /* requests in flight */
#define TURN_REQ_MAX 768    /* one request, credentials included */
#define TURN_WHY_MAX 320
/* The framing buffer: the largest datagram a ChannelData message holds. */
#define TURN_OUT_MAX (STUN_CHAN_HDR_LEN + 0xffff)

/* Permissions last 300 s and channels 600 s (RFC 8656 9, 12): renew both
 * with a minute to spare, so one lost request is retried in time. */
#define TURN_PERM_REFRESH_S 240
#define TURN_CHAN_REFRESH_S 480
/* Retransmissions: RTO doubling from 500 ms up to 4 s, 5 sends: no
 * answer 11.5 s after the first. */
#define TURN_RTO_MS 500
#define TURN_RTO_MAX_MS 4000
#define TURN_ATTEMPTS 5

enum turn_state {
  TS_IDLE = 0,    /* not started, or stopped */
  TS_RESOLVING,   /* the server's name */
  TS_ALLOCATING,  /* Allocate (and its 401/438 rounds) in flight */
  TS_READY,       /* an allocation: the relay path is usable */
  TS_WAITING      /* failed; the next attempt is at retry_ns */
};

/* What a request is for (decides how it is built and answered). */
enum turn_req {
  TR_ALLOCATE = 0,
  TR_REFRESH,     /* keeps the allocation; also the liveness probe */
  TR_DEALLOCATE,  /* Refresh with LIFETIME 0 */
  TR_PERMISSION,  /* CreatePermission for one peer */
  TR_CHANNEL      /* ChannelBind for one peer */
};

/* State of a peer's permission or channel. */
enum turn_grant { TG_NONE = 0, TG_PENDING, TG_OK };

struct turn;

struct turn_txn {
  struct turn *t;  /* owner */
  int active;
  int kind;        /* enum turn_req */
  int slot;        /* peer slot for TR_PERMISSION / TR_CHANNEL, else -1 */
  unsigned rounds; /* 401/438 rounds so far (a new transaction each) */
  int authed;      /* the request carried credentials */
  uint8_t tid[STUN_TID_LEN];
  uint8_t req[TURN_REQ_MAX]; /* the encoded request, resent unchanged */
  size_t reqlen;
  unsigned sent;
  double wait_s;
  uint64_t t0_ns;
  ev_timer timer;
};

struct turn_peer {
  int used;     /* slot holds an address */
  int wanted;   /* permitted by the transport; else kept only so that a
                   returning peer gets its channel number back */
  struct sockaddr_storage addr; /* server form */
  socklen_t addrlen;
  uint16_t chan;               /* channel number, 0 before the first bind */
  int perm, bind;              /* enum turn_grant */
  uint64_t perm_due_ns, bind_due_ns; /* next (re)request; 0 = now */
  uint64_t tx_pkts, tx_bytes, rx_pkts, rx_bytes;
};

struct turn_cfg {
  char uri[TURN_URI_MAX];   /* as configured, for messages */
  char host[TURN_HOST_MAX + 1];
  uint16_t port;
  char user[TURN_CRED_MAX];
  char pass[TURN_CRED_MAX]; /* secret */
  uint32_t lifetime_s;      /* requested allocation lifetime */
};

struct turn {
  const struct sfk_host *h; /* borrowed */
  struct turn_cfg cfg;
  int state;                /* enum turn_state */
  int started;
  int sock_v6;              /* the socket is IPv6 (v4 peers v4-mapped) */
  struct sfk_resolve *res;  /* pending name resolution, or NULL */

  struct sockaddr_storage server; /* plain IPv4 for an IPv4 server */
  socklen_t serverlen;
  char server_str[SA_STR_MAX];

  /* Long-term credentials: realm and nonce from the server's 401/438. */
  char realm[TURN_CRED_MAX];
  char nonce[TURN_CRED_MAX];
  uint8_t key[STUN_LT_KEY_LEN]; /* secret: MD5(user:realm:pass) */
  int have_key;

  /* The allocation (server form). */
  struct sockaddr_storage relayed, mapped;
  socklen_t relayedlen, mappedlen;
  uint32_t lifetime_s;      /* as granted */
  uint64_t refresh_ns;      /* next Refresh */
  uint64_t expires_ns;
  uint16_t next_chan;       /* never reused within an allocation */
  unsigned mismatches;      /* 437 answers to Allocate since the last
                               allocation */

  /* Failure and backoff. */
  int err;                  /* last failure, negative errno; 0 */
  char why[TURN_WHY_MAX];   /* last failure, for logs and status */
  char reported[TURN_WHY_MAX]; /* what relay_changed() last said */
  int announced;            /* relay_changed() told the core "ready" */
  unsigned fails[3];        /* attempts failed in a row, per backoff
                               class (turn_alloc.c) */
  uint64_t retry_ns;        /* TS_WAITING: next attempt */

  /* Liveness of the allocation while peers use it. */
  uint64_t last_rx_ns, last_tx_ns, probe_ns;

  ev_timer tick;            /* 1 s housekeeping: refreshes, retries */
  uint8_t ind_tid[STUN_TID_LEN]; /* Send indications: random + counter */
  uint32_t ind_seq;

  struct turn_txn txn[TURN_NTXN];
  struct turn_peer peer[TURN_MAX_PEERS];
  uint8_t chan_slot[STUN_CHAN_MAX - STUN_CHAN_MIN + 1]; /* slot + 1, 0 free */

  struct {
    uint64_t allocations, refreshes, probes, requests, retransmits,
        stale_nonces, errors, chan_tx, send_tx, chan_rx, data_rx, dropped,
        unauthenticated;
  } n;

  uint8_t out[TURN_OUT_MAX]; /* framing buffer for one datagram */
};

/* --- turn_plugin.c --------------------------------------------------- */
/* Addresses between the core's (socket) form and the wire's. */
void turn_to_wire(const struct turn *t, struct sockaddr_storage *a,
                  socklen_t *alen);
void turn_to_socket(const struct turn *t, struct sockaddr_storage *a,
                    socklen_t *alen);
/* One datagram to the server on the direct path. */
int turn_send_raw(struct turn *t, const uint8_t *buf, size_t len);

/* --- turn_txn.c ------------------------------------------------------ */
/* Start a request of KIND (slot: peer for permission/channel, else -1).
 * 0, -EAGAIN (no free transaction slot), or another negative errno. */
int turn_txn_start(struct turn *t, int kind, int slot);
/* A success or error response from the server (m is parsed). */
void turn_txn_answer(struct turn *t, const struct stun_msg *m);
/* A transaction of KIND (and slot, or -1 for any) is in flight. */
int turn_txn_busy(const struct turn *t, int kind, int slot);
/* Forget every transaction (no callbacks). */
void turn_txn_cancel_all(struct turn *t);
/* Encode a request of KIND into buf; 0 or negative errno. */
int turn_txn_encode(struct turn *t, int kind, int slot,
                    const uint8_t tid[STUN_TID_LEN], uint8_t *buf, size_t cap,
                    size_t *len);

/* --- turn_alloc.c ---------------------------------------------------- */
/* Begin (or begin again) getting an allocation. */
void turn_alloc_begin(struct turn *t);
/* Answers of allocation requests: err 0 with a success m, a negative
 * errno (-ETIMEDOUT no answer, -EPROTO error response with code, -EACCES
 * credentials refused) with m NULL or the error response. */
void turn_alloc_answer(struct turn *t, int kind, int err, int code,
                       const char *reason, const struct stun_msg *m);
/* Housekeeping from the tick: refresh, liveness, retry. */
void turn_alloc_tick(struct turn *t, uint64_t now);
/* Check the allocation now with a Refresh (rate-limited): something
 * suggests the server lost it.  why is for the debug log. */
void turn_alloc_check(struct turn *t, const char *why);
/* Clean stop: Deallocate without waiting for the answer. */
void turn_alloc_release(struct turn *t);
/* The state's name, for status. */
const char *turn_state_name(int state);

/* --- turn_peer.c ----------------------------------------------------- */
int turn_peer_permit(struct turn *t, const struct sockaddr *peer,
                     socklen_t len);
void turn_peer_unpermit(struct turn *t, const struct sockaddr *peer,
                        socklen_t len);
/* A new allocation: every wanted peer needs its permission and channel
 * again; an allocation lost: nothing is granted any more. */
void turn_peer_reset(struct turn *t);
/* Answers of permission/channel requests (as turn_alloc_answer). */
void turn_peer_answer(struct turn *t, int kind, int slot, int err, int code,
                      const char *reason);
/* Housekeeping: (re)request what is due. */
void turn_peer_tick(struct turn *t, uint64_t now);
/* Data path. */
int turn_peer_send(struct turn *t, const struct sockaddr *to, socklen_t tolen,
                   const uint8_t *buf, size_t len);
void turn_peer_channel_data(struct turn *t, const uint8_t *data, size_t len);
void turn_peer_data_indication(struct turn *t, const struct stun_msg *m);
/* Per-peer lines for status. */
void turn_peer_report(struct turn *t, struct sfk_report *r);

#endif /* SFK_PLUGIN_TURN_H */
