/*
 * sfkit-proxy plugin ABI.
 *
 * This is the only header a plugin includes from the daemon.  A plugin is a
 * shared object that exports exactly one symbol, SFK_PLUGIN_SYMBOL, a
 * `const struct sfk_plugin_desc`.  The daemon checks the descriptor (ABI
 * version, struct sizes, kind, name, required slots) before it calls any
 * plugin code, and refuses the plugin with a message naming the file.
 *
 * Plugins keep no global state.  Each instance receives a `struct sfk_host`
 * (one per instance) and talks to the daemon only through it: the event
 * loop, time, logging, its config subtree, the shared UDP socket, the peer
 * table, the identity and the upcalls.
 *
 * Conventions
 * - Functions returning int return 0 on success or a negative errno value
 *   (-EINVAL, -ENOMEM, -EAGAIN for back-pressure, ...).
 * - Buffers passed across the boundary are borrowed for the duration of the
 *   call; nothing allocated on one side is freed on the other.
 * - Every ops struct is filled with designated initialisers; optional slots
 *   are NULL.
 * - The plugin may create its own libev watchers on host->loop, but never
 *   calls ev_run(), ev_break() or uses EV_DEFAULT.
 */
#ifndef SFKIT_PROXY_PLUGIN_H
#define SFKIT_PROXY_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped on every incompatible change of any struct or slot below. */
#define SFK_ABI_VERSION 2

#define SFK_PLUGIN_SYMBOL sfkit_proxy_plugin
#define SFK_PLUGIN_SYMBOL_NAME "sfkit_proxy_plugin"

#if defined(__GNUC__)
#define SFK_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#define SFK_EXPORT __attribute__((visibility("default")))
#else
#define SFK_PRINTF(fmt, args)
#define SFK_EXPORT
#endif

struct ev_loop;

/* ------------------------------------------------------------------ */
/* Kinds, log levels, limits                                            */

enum sfk_kind {
  SFK_KIND_TRANSPORT = 1, /* carries streams between peers (quic) */
  SFK_KIND_RELAY = 2,     /* TURN-style relayed send path (turn) */
  SFK_KIND_DISCOVERY = 3, /* public mapping, keep-alive (stun, none) */
  SFK_KIND_REGISTRY = 4   /* publish own address/pin, read peers' (sfkit, static) */
};

enum sfk_log_level {
  SFK_LOG_ERROR = 0,
  SFK_LOG_WARN = 1,
  SFK_LOG_INFO = 2,
  SFK_LOG_DEBUG = 3,
  SFK_LOG_TRACE = 4
};

/* Lowercase hex SHA-256 of the DER SubjectPublicKeyInfo, NUL-terminated. */
#define SFK_PIN_LEN 64
#define SFK_PIN_SIZE (SFK_PIN_LEN + 1)

/* PIDs are the host part of the virtual network address. */
#define SFK_PID_NONE UINT32_MAX

/* SOCKS5 reply codes, also used as the stream status byte (SPEC). */
enum sfk_status {
  SFK_ST_OK = 0x00,
  SFK_ST_FAILURE = 0x01,
  SFK_ST_NOT_ALLOWED = 0x02,
  SFK_ST_NET_UNREACHABLE = 0x03,
  SFK_ST_HOST_UNREACHABLE = 0x04,
  SFK_ST_REFUSED = 0x05,
  SFK_ST_TTL_EXPIRED = 0x06,
  SFK_ST_CMD_UNSUPPORTED = 0x07,
  SFK_ST_ATYP_UNSUPPORTED = 0x08
};

/*
 * Paths.  A datagram to or from a peer travels either directly on the
 * shared UDP socket or through the relay (TURN).  The transport chooses
 * the path per peer and says which on every send; the daemon says which
 * on every datagram it hands over.
 */
enum sfk_path { SFK_PATH_DIRECT = 0, SFK_PATH_RELAY = 1 };

/* What the daemon knows of a path (host->path_info). */
struct sfk_path_info {
  int usable;                      /* datagrams can be sent on it now */
  struct sockaddr_storage addr;    /* our address on it as peers see it:
                                      direct: the public mapping (or the
                                      bound address); relay: the relayed
                                      address.  ss_family 0 if unknown */
  socklen_t addrlen;
  size_t overhead;                 /* framing bytes the path adds to each
                                      datagram (relay: TURN headers) */
  size_t max_payload;              /* largest datagram the path carries,
                                      0 = no limit beyond the socket's */
};

/* transport.relay.mode: the site's relay policy (the daemon reads it). */
enum sfk_relay_mode {
  SFK_RELAY_NONE = 0,   /* no relay configured */
  SFK_RELAY_AUTO = 1,   /* relay when no direct path works (default) */
  SFK_RELAY_ALWAYS = 2, /* every peer through the relay */
  SFK_RELAY_NEVER = 3   /* site policy: never relay */
};

/* A peer's connection state, as the transport reports it (peer_state). */
enum sfk_peer_state {
  SFK_PEER_UNKNOWN = 0,    /* a participant that has not published yet */
  SFK_PEER_IDLE = 1,       /* published; no connection wanted or possible */
  SFK_PEER_CONNECTING = 2, /* handshake or punching in progress */
  SFK_PEER_UP = 3,         /* authenticated connection on `path` */
  SFK_PEER_DOWN = 4        /* lost or failed; `err` and `why` say why */
};

struct sfk_peer_event {
  uint32_t pid;
  int state;                   /* enum sfk_peer_state */
  int path;                    /* enum sfk_path (CONNECTING, UP) */
  const struct sockaddr *addr; /* remote address in use, or NULL */
  socklen_t addrlen;
  int err;                     /* DOWN: negative errno, else 0 */
  const char *why;             /* DOWN/CONNECTING: for people, or NULL */
};

/*
 * NAT behaviour (RFC 4787 / RFC 5780 terms), found by a discovery probe.
 */
enum sfk_nat {
  SFK_NAT_UNKNOWN = 0,
  SFK_NAT_NONE = 1,                   /* mapped address == local address */
  SFK_NAT_ENDPOINT_INDEPENDENT = 2,   /* one mapping / filter for all */
  SFK_NAT_ADDRESS_DEPENDENT = 3,
  SFK_NAT_ADDRESS_PORT_DEPENDENT = 4  /* mapping: a "symmetric" NAT */
};

#define SFK_PROBE_MAX_OBS 8

/* One Binding observation of a probe. */
struct sfk_probe_obs {
  char server[128];                /* the configured URI, or a note such
                                      as "alternate address" */
  struct sockaddr_storage server_addr; /* where the request went */
  socklen_t server_addrlen;
  struct sockaddr_storage mapped;  /* what the server saw; family 0 when
                                      no answer */
  socklen_t mappedlen;
  uint64_t rtt_us;                 /* 0 when no answer */
};

struct sfk_probe_result {
  int err;                /* 0, or negative errno (-ETIMEDOUT: no server
                             answered) */
  int mapping;            /* enum sfk_nat */
  int filtering;          /* enum sfk_nat */
  int direct_expected;    /* nonzero: punching should work with peers
                             whose NAT maps independently */
  struct sockaddr_storage local; /* the socket's bound address */
  socklen_t locallen;
  size_t nobs;
  struct sfk_probe_obs obs[SFK_PROBE_MAX_OBS];
  char summary[256];      /* one sentence for people */
};

/* Called once when a probe finishes; r is borrowed for the call. */
typedef void (*sfk_probe_cb)(void *arg, const struct sfk_probe_result *r);

/*
 * Status reports.  The daemon hands a plugin an emitter; the plugin
 * writes a tree of named values, the daemon renders it (text or JSON)
 * without knowing the plugin.  Keys are short lowercase words with
 * underscores; strings are copied.  Never emit a secret.
 */
struct sfk_report {
  void *ctx; /* daemon private */
  /* Open a nested object (list 0) or list (list 1); key is NULL for an
   * item of a list.  Every begin has one end. */
  void (*begin)(struct sfk_report *r, const char *key, int list);
  void (*end)(struct sfk_report *r);
  void (*str)(struct sfk_report *r, const char *key, const char *val);
  void (*num)(struct sfk_report *r, const char *key, int64_t val);
};

/* A name resolution in progress (host->resolve). */
struct sfk_resolve;

/* One resolved address. */
struct sfk_addr {
  struct sockaddr_storage ss;
  socklen_t len;
};

/*
 * Result of host->resolve(): err 0 and n >= 1 addresses (borrowed for
 * the call), or a negative errno (-ENOENT: no such name, -EAGAIN:
 * temporary failure, try later).  Called exactly once, from the loop,
 * never inside resolve() itself, unless the request was cancelled.
 */
typedef void (*sfk_resolve_cb)(void *arg, int err, const struct sfk_addr *v,
                               size_t n);

/* ------------------------------------------------------------------ */
/* Config nodes                                                         */

/*
 * A node of the parsed YAML config, owned by the daemon and valid from
 * create() until destroy().  Every node remembers its line and column, so
 * host->cfg_error() prints FILE:LINE:COLUMN: message.
 */
struct sfk_cfg_node;

enum sfk_cfg_type { SFK_CFG_SCALAR = 1, SFK_CFG_MAP = 2, SFK_CFG_SEQ = 3 };

/* ------------------------------------------------------------------ */
/* Peers and identity                                                   */

/*
 * One entry of the peer table, as the registry last reported it.  An
 * entry with neither address nor pin is a participant that has not
 * published yet ("unknown"); a PID absent from the table is no
 * participant at all ("removed").
 */
struct sfk_peer {
  uint32_t pid;
  struct sockaddr_storage addr; /* published UDP address; ss_family 0 if unknown */
  socklen_t addrlen;
  char pin[SFK_PIN_SIZE]; /* "" if unknown; a peer without a pin is never accepted */
};

/* This party's identity.  Owned by the daemon; valid for the process. */
struct sfk_identity {
  const uint8_t *cert_der; /* self-signed X.509 certificate */
  size_t cert_der_len;
  const uint8_t *key_der; /* private key, PKCS#8 DER; a secret: never log.
                             NULL for every instance but the transport */
  size_t key_der_len;
  char pin[SFK_PIN_SIZE];
};

/* ------------------------------------------------------------------ */
/* The host API: one per plugin instance                               */

struct sfk_host {
  uint32_t abi;  /* SFK_ABI_VERSION */
  uint32_t size; /* sizeof(struct sfk_host) as the daemon was built */
  void *core;    /* daemon private; do not touch */

  struct ev_loop *loop; /* the daemon's loop: own watchers only */
  const char *instance; /* "transport.quic" etc., for messages */
  uint32_t self_pid;    /* this party's PID */
  const char *study_id; /* "" when not configured */
  int relay_mode;       /* enum sfk_relay_mode */
  /* The virtual network (host order) and prefix length, for messages
   * that name a peer's virtual address. */
  uint32_t net;
  unsigned prefix;

  /* --- time and logging ---------------------------------------------- */

  /* Monotonic clock in nanoseconds (the loop's notion of now). */
  uint64_t (*now_ns)(const struct sfk_host *h);
  /* Nonzero when messages of this level would be printed; check before
   * formatting anything expensive. */
  int (*log_enabled)(const struct sfk_host *h, int level);
  /* Log a message tagged with the instance name.  Never pass secrets. */
  void (*log)(const struct sfk_host *h, int level, const char *fmt, ...)
      SFK_PRINTF(3, 4);

  /* --- config (the plugin's own section) ------------------------------ */

  int (*cfg_type)(const struct sfk_cfg_node *n);
  /* Value of KEY in a map node, or NULL if absent (or n is not a map). */
  const struct sfk_cfg_node *(*cfg_get)(const struct sfk_cfg_node *map,
                                        const char *key);
  /* Number of items of a sequence or entries of a map (0 for scalars);
   * sfk_cfg_at gives sequence items (NULL otherwise). */
  size_t (*cfg_len)(const struct sfk_cfg_node *seq);
  const struct sfk_cfg_node *(*cfg_at)(const struct sfk_cfg_node *seq,
                                       size_t i);
  /* Text of a scalar node, or NULL. */
  const char *(*cfg_scalar)(const struct sfk_cfg_node *n);
  /* Report FILE:LINE:COLUMN: message for node n and count an error.
   * create() then returns -EINVAL. */
  void (*cfg_error)(const struct sfk_host *h, const struct sfk_cfg_node *n,
                    const char *fmt, ...) SFK_PRINTF(3, 4);
  /*
   * Typed getters for KEY in map.  When the key is absent *out gets def
   * and 0 is returned; a malformed value is reported with its position
   * and -EINVAL returned.
   */
  int (*cfg_string)(const struct sfk_host *h, const struct sfk_cfg_node *map,
                    const char *key, const char *def, const char **out);
  int (*cfg_uint)(const struct sfk_host *h, const struct sfk_cfg_node *map,
                  const char *key, uint64_t min, uint64_t max, uint64_t def,
                  uint64_t *out);
  /* Durations take ms, s, m, h suffixes; result in milliseconds. */
  int (*cfg_duration_ms)(const struct sfk_host *h,
                         const struct sfk_cfg_node *map, const char *key,
                         uint64_t def, uint64_t *out);
  /* "host:port" (IPv4 dotted, or [IPv6]) without name resolution.  With
   * no key and no def (def NULL), *outlen is 0. */
  int (*cfg_addr)(const struct sfk_host *h, const struct sfk_cfg_node *map,
                  const char *key, const char *def,
                  struct sockaddr_storage *out, socklen_t *outlen);
  /* A path relative to the config file's folder, resolved into buf. */
  int (*cfg_path)(const struct sfk_host *h, const struct sfk_cfg_node *map,
                  const char *key, const char *def, char *buf, size_t bufsz);
  /* Report every key of map not in keys (NULL-terminated), for nested
   * maps such as list entries.  Returns the number of errors. */
  unsigned (*cfg_check_keys)(const struct sfk_host *h,
                             const struct sfk_cfg_node *map,
                             const char *section, const char *const *keys);

  /*
   * A secret from a file named by KEY (auth keys, passwords): its first
   * line without the line end, into buf (NUL-terminated).  Refused with a
   * positioned error when the file is missing, unreadable, empty on its
   * first line, longer than bufsz - 1, or readable by group or others
   * (chmod 600).  The content never reaches a message.  def as in
   * cfg_path; with no key and no def, buf is "" and 0 is returned.
   */
  int (*cfg_secret)(const struct sfk_host *h, const struct sfk_cfg_node *map,
                    const char *key, const char *def, char *buf,
                    size_t bufsz);

  /* --- the shared UDP socket and its paths ---------------------------- */

  /*
   * Send one datagram on PATH, or when gso_size > 0, len/gso_size
   * datagrams of gso_size bytes (the last may be shorter) in one call.
   * SFK_PATH_DIRECT goes out on the socket to `to`; SFK_PATH_RELAY goes
   * through the relay plugin to `to` (the peer's address as the relay
   * server sees it).  Returns 0, -EAGAIN when the socket buffer is full
   * (the datagram was dropped; QUIC recovers), -ENETUNREACH when the path
   * is not usable now, or another negative errno.
   */
  int (*udp_send)(const struct sfk_host *h, int path, const struct sockaddr *to,
                  socklen_t tolen, const uint8_t *buf, size_t len,
                  size_t gso_size);
  /* The socket's local address (as bound). */
  int (*udp_local)(const struct sfk_host *h, struct sockaddr_storage *out,
                   socklen_t *outlen);
  /* What is known of PATH now.  -ENOENT: no such path (no relay). */
  int (*path_info)(const struct sfk_host *h, int path,
                   struct sfk_path_info *out);
  /* Transport: ask the relay to accept datagrams from this peer address
   * (TURN CreatePermission / ChannelBind), kept until relay_unpermit.
   * -ENOENT without a relay. */
  int (*relay_permit)(const struct sfk_host *h, const struct sockaddr *peer,
                      socklen_t len);
  void (*relay_unpermit)(const struct sfk_host *h, const struct sockaddr *peer,
                         socklen_t len);

  /* --- name resolution -------------------------------------------------- */

  /*
   * Resolve NAME (a host name or an address literal) for PORT without
   * blocking the loop.  family: AF_INET, AF_INET6 or AF_UNSPEC.  Returns
   * 0 and *out (a handle valid until the callback runs or it is
   * cancelled), or a negative errno.  cb runs later, from the loop.
   */
  int (*resolve)(const struct sfk_host *h, const char *name, uint16_t port,
                 int family, sfk_resolve_cb cb, void *arg,
                 struct sfk_resolve **out);
  /* Forget a pending resolution: cb is never called. */
  void (*resolve_cancel)(const struct sfk_host *h, struct sfk_resolve *r);

  /* Fill buf with len cryptographically random bytes.  0 or -errno. */
  int (*random)(const struct sfk_host *h, void *buf, size_t len);

  /* --- peers ------------------------------------------------------------ */

  /*
   * The entry for pid, or NULL.  Entries live in the daemon's table:
   * a pointer is valid until the table next changes, which happens only
   * in peers_set/peer_set (registry upcalls) and is announced to the
   * transport with peers_changed().  Do not keep pointers across a
   * return to the loop; copy what you keep.
   */
  const struct sfk_peer *(*peer_get)(const struct sfk_host *h, uint32_t pid);
  /* Peer table size and entries (sorted by PID), for iteration. */
  size_t (*peer_count)(const struct sfk_host *h);
  const struct sfk_peer *(*peer_at)(const struct sfk_host *h, size_t i);

  /* --- identity --------------------------------------------------------- */

  /* The identity; key_der is set only for the transport instance. */
  const struct sfk_identity *(*identity)(const struct sfk_host *h);
  /* Pin of a DER certificate: lowercase hex SHA-256 of its SPKI. */
  int (*cert_pin)(const struct sfk_host *h, const uint8_t *der, size_t len,
                  char out[SFK_PIN_SIZE]);

  /* --- upcalls: registry ------------------------------------------------ */

  /*
   * Registry: the study's participants are exactly these (own PID is
   * ignored; an entry without address and pin is "unknown", a PID not
   * listed is removed).  Peers whose entry changed are reported to the
   * transport with peers_changed().
   */
  void (*peers_set)(const struct sfk_host *h, const struct sfk_peer *peers,
                    size_t n);
  /* Registry: one participant's entry was read again (added or
   * changed); the others stay as they are. */
  void (*peer_set)(const struct sfk_host *h, const struct sfk_peer *peer);
  /* Registry: the last publish (what 0) or read (what 1) finished:
   * err 0, or a negative errno and why (for logs and status). */
  void (*registry_result)(const struct sfk_host *h, int what, int err,
                          const char *why);

  /* --- upcalls: discovery and relay ----------------------------------- */

  /* Discovery: our public UDP mapping changed (or is first known), as
   * `server` reported it.  The daemon republishes it through the
   * registry and tells the transport (path_changed). */
  void (*mapping_changed)(const struct sfk_host *h, const struct sockaddr *addr,
                          socklen_t addrlen, const char *server);
  /* Discovery: what a probe of the NAT found (at start, or later when
   * the plugin probes again); the daemon keeps it for status and the
   * relay policy.  r is borrowed. */
  void (*nat_found)(const struct sfk_host *h, const struct sfk_probe_result *r);
  /* Relay: a datagram from a peer arrived through the relay; `from` is
   * the peer's address as the relay server saw it.  Borrowed. */
  void (*relay_recv)(const struct sfk_host *h, const struct sockaddr *from,
                     socklen_t fromlen, const uint8_t *data, size_t len);
  /* Relay: the allocation is ready (addr set, err 0) or gone (addr NULL,
   * err negative, why for people).  The daemon decides what to publish
   * and tells the transport (path_changed). */
  void (*relay_changed)(const struct sfk_host *h, const struct sockaddr *addr,
                        socklen_t addrlen, int err, const char *why);

  /* --- upcalls: transport peers and streams --------------------------- */

  /* Transport: a peer's connection state changed (see sfk_peer_event).
   * DOWN makes the daemon re-read that peer from the registry. */
  void (*peer_state)(const struct sfk_host *h, const struct sfk_peer_event *ev);

  /*
   * Stream lifetime: a stream has a transport handle `ts` (opaque to the
   * daemon) and an application handle `app` (opaque to the transport).
   * It ends exactly once, either by stream_closed() from the transport
   * (after which the daemon never uses ts), or by the daemon calling
   * ops->stream_reset() (after which the transport never calls an upcall
   * with that app).
   */

  /*
   * A peer opened a stream to `port`.  The daemon returns its app handle
   * and later answers with ops->stream_reply(); or returns NULL having
   * already decided the status (*status), which the transport sends
   * before finishing the stream itself.
   */
  void *(*stream_accept)(const struct sfk_host *h, void *ts, uint32_t pid,
                         uint16_t port, uint8_t *status);
  /* Opener side: the acceptor's status byte arrived (or the transport
   * decided: SFK_ST_HOST_UNREACHABLE when the peer cannot be reached;
   * `why` then says why, for the log, else NULL). */
  void (*stream_status)(const struct sfk_host *h, void *app, uint8_t status,
                        const char *why);
  /*
   * Bytes from the peer, in order.  The daemon takes all of them (they
   * are within the credit it granted) and returns credit later with
   * ops->stream_consumed().  fin is set with the last bytes.
   */
  void (*stream_data)(const struct sfk_host *h, void *app,
                      const uint8_t *data, size_t len, int fin);
  /* Send space is available again after stream_write() accepted less. */
  void (*stream_writable)(const struct sfk_host *h, void *app);
  /* The stream is over: err 0 after both FINs, else a negative errno
   * (-ECONNRESET reset by peer, -ETIMEDOUT, -ENOTCONN connection lost). */
  void (*stream_closed)(const struct sfk_host *h, void *app, int err);
};

/* ------------------------------------------------------------------ */
/* Ops                                                                  */

/* Shared first member of every kind's ops. */
struct sfk_base_ops {
  /* Keys the plugin's section accepts besides "plugin"; NULL-terminated.
   * The daemon reports any other key as an error before create(). */
  const char *const *keys;
  /* Parse and validate the config, allocate; no I/O (--check-config
   * stops here).  On success *self is the instance. */
  int (*create)(const struct sfk_host *h, const struct sfk_cfg_node *cfg,
                void **self);
  /* Start timers and work.  Called once, after every plugin is created. */
  int (*start)(void *self);
  /* Stop every watcher; no upcalls after this returns.  May start a
   * last exchange that needs no answer (QUIC CONNECTION_CLOSE, TURN
   * Refresh with lifetime 0). */
  void (*stop)(void *self);
  /* Free everything. */
  void (*destroy)(void *self);
  /* Optional: the config file was re-read (SIGHUP).  The new section is
   * already checked against keys and is valid only during the call (copy
   * what you keep).  Return 0 or a negative errno (the old settings stay). */
  int (*reconfigure)(void *self, const struct sfk_cfg_node *cfg);
  /* Optional: describe state and counters for `status` (see
   * sfk_report).  Called from the loop; must not block. */
  void (*report)(void *self, struct sfk_report *r);
};

struct sfk_transport_ops {
  struct sfk_base_ops base;
  /* A datagram for the transport that arrived on PATH (the daemon
   * demultiplexed it).  For SFK_PATH_RELAY, from is the peer's address
   * as the relay server saw it. */
  void (*on_datagram)(void *self, int path, const struct sockaddr *from,
                      socklen_t fromlen, const uint8_t *data, size_t len);
  /* The peer table changed: connect to new peers, re-validate changed
   * pins and addresses, drop removed peers. */
  void (*peers_changed)(void *self);
  /* Optional: our address on PATH changed (new mapping, relay allocated
   * or lost); path_info() has the new state.  Re-punch, migrate. */
  void (*path_changed)(void *self, int path);
  /* Optional: per-peer details for `status` (RTT, bytes, streams), into
   * the peer's object that the daemon has opened. */
  void (*peer_report)(void *self, uint32_t pid, struct sfk_report *r);
  /*
   * Open a stream to `port` of peer `pid` for the daemon's `app`.  The
   * transport sends the stream header and reports the peer's status via
   * stream_status().  Returns 0 and *ts, or a negative errno
   * (-EHOSTUNREACH: no such peer).
   */
  int (*stream_open)(void *self, uint32_t pid, uint16_t port, void *app,
                     void **ts);
  /* Acceptor side: send the status byte; for a nonzero status the
   * transport finishes the stream and calls stream_closed() later. */
  void (*stream_reply)(void *self, void *ts, uint8_t status);
  /* Bytes the stream would accept now (0: wait for stream_writable()). */
  size_t (*stream_space)(void *self, void *ts);
  /*
   * Queue bytes (copied).  Returns how many were accepted (<= len;
   * 0 with len > 0 means no space).  fin: no more data after these;
   * fin is only honoured when all bytes were accepted.
   */
  size_t (*stream_write)(void *self, void *ts, const uint8_t *data, size_t len,
                         int fin);
  /* The daemon delivered n received bytes onward: extend credit. */
  void (*stream_consumed)(void *self, void *ts, size_t n);
  /* Abort both directions (RESET_STREAM + STOP_SENDING).  ts is invalid
   * afterwards and no upcall mentions app again. */
  void (*stream_reset)(void *self, void *ts);
};

/*
 * Relay (TURN).  The daemon hands it every datagram whose source it owns
 * (its server), the transport's relayed sends and permits.  It reports
 * peers' datagrams with host->relay_recv() and its allocation with
 * host->relay_changed().
 */
struct sfk_relay_ops {
  struct sfk_base_ops base;
  /* A datagram that came from the relay server. */
  void (*on_datagram)(void *self, const struct sockaddr *from,
                      socklen_t fromlen, const uint8_t *data, size_t len);
  /* Nonzero when datagrams from this source belong to the relay. */
  int (*owns_source)(void *self, const struct sockaddr *from,
                     socklen_t fromlen);
  /* Allow a peer's address to send to us through the relay (kept and
   * refreshed until unpermit). */
  int (*permit)(void *self, const struct sockaddr *peer, socklen_t len);
  void (*unpermit)(void *self, const struct sockaddr *peer, socklen_t len);
  /* Send one datagram to a peer through the relay.  -ENETUNREACH while
   * there is no allocation, -EAGAIN when the socket is full. */
  int (*send)(void *self, const struct sockaddr *to, socklen_t tolen,
              const uint8_t *buf, size_t len);
  /* Relayed address and per-datagram overhead: 0, or -EAGAIN while
   * there is no allocation. */
  int (*info)(void *self, struct sfk_path_info *out);
};

struct sfk_discovery_ops {
  struct sfk_base_ops base;
  /* A STUN datagram (first byte 0-3) that is not the relay's. */
  void (*on_datagram)(void *self, const struct sockaddr *from,
                      socklen_t fromlen, const uint8_t *data, size_t len);
  /*
   * Optional: probe the NAT's mapping and filtering (netcheck) on the
   * host's socket; cb runs once with the result.  Used instead of the
   * plugin's normal work (start() is not called in a probe run).
   */
  int (*probe)(void *self, sfk_probe_cb cb, void *arg);
  /* Optional: check the mapping now instead of at the next keep-alive
   * (the daemon calls it when a peer's connection broke: our NAT may
   * have rebound).  Rate-limit as needed; 0 or -errno. */
  int (*recheck)(void *self);
};

struct sfk_registry_ops {
  struct sfk_base_ops base;
  /* Publish our address ("ip:port"; an IPv6 address as "[ip]:port")
   * and pin; may complete asynchronously (host->registry_result). */
  int (*publish)(void *self, const char *addr, const char *pin);
  /* Re-read one peer (SFK_PID_NONE: all); results via peers_set() or
   * peer_set(). */
  int (*refresh)(void *self, uint32_t pid);
};

/* ------------------------------------------------------------------ */
/* The descriptor                                                       */

struct sfk_plugin_desc {
  uint32_t abi;       /* SFK_ABI_VERSION */
  uint32_t desc_size; /* sizeof(struct sfk_plugin_desc) */
  uint32_t host_size; /* sizeof(struct sfk_host) the plugin was built with */
  uint32_t kind;      /* enum sfk_kind */
  const char *name;   /* must equal the name it is loaded by */
  const char *version;
  const void *ops; /* struct sfk_<kind>_ops */
  uint32_t ops_size;
};

/*
 * Define the plugin's descriptor.  KIND is TRANSPORT, RELAY, DISCOVERY or
 * REGISTRY; OPS a `static const struct sfk_<kind>_ops` variable.
 */
#define SFK_PLUGIN_DEFINE(KIND, NAME, VERSION, OPS)                           \
  SFK_EXPORT const struct sfk_plugin_desc SFK_PLUGIN_SYMBOL = {               \
      .abi = SFK_ABI_VERSION,                                                 \
      .desc_size = sizeof(struct sfk_plugin_desc),                            \
      .host_size = sizeof(struct sfk_host),                                   \
      .kind = SFK_KIND_##KIND,                                                \
      .name = (NAME),                                                         \
      .version = (VERSION),                                                   \
      .ops = &(OPS),                                                          \
      .ops_size = sizeof(OPS)}

#ifdef __cplusplus
}
#endif

#endif /* SFKIT_PROXY_PLUGIN_H */
