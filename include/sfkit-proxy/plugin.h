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
#define SFK_ABI_VERSION 1

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

/* One entry of the peer table, as the registry last reported it. */
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
  const uint8_t *key_der; /* private key, PKCS#8 DER; a secret: never log */
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

  /* --- the shared UDP socket -------------------------------------------- */

  /*
   * Send one datagram, or when gso_size > 0, len/gso_size datagrams of
   * gso_size bytes (the last may be shorter) in one call.  The daemon
   * routes through the relay when the destination is only reachable so.
   * Returns 0, -EAGAIN when the socket buffer is full (the datagram was
   * dropped; QUIC recovers), or another negative errno.
   */
  int (*udp_send)(const struct sfk_host *h, const struct sockaddr *to,
                  socklen_t tolen, const uint8_t *buf, size_t len,
                  size_t gso_size);
  /* The socket's local address (as bound). */
  int (*udp_local)(const struct sfk_host *h, struct sockaddr_storage *out,
                   socklen_t *outlen);

  /* --- peers ------------------------------------------------------------ */

  /* The entry for pid, or NULL.  Valid until the next return to the loop. */
  const struct sfk_peer *(*peer_get)(const struct sfk_host *h, uint32_t pid);
  /* Peer table size and entries, for iteration. */
  size_t (*peer_count)(const struct sfk_host *h);
  const struct sfk_peer *(*peer_at)(const struct sfk_host *h, size_t i);

  /* --- identity --------------------------------------------------------- */

  const struct sfk_identity *(*identity)(const struct sfk_host *h);
  /* Pin of a DER certificate: lowercase hex SHA-256 of its SPKI. */
  int (*cert_pin)(const struct sfk_host *h, const uint8_t *der, size_t len,
                  char out[SFK_PIN_SIZE]);

  /* --- upcalls: registry and discovery ------------------------------- */

  /* Registry: replace the peer table (own PID is ignored).  Peers whose
   * address or pin changed are reported to the transport. */
  void (*peers_set)(const struct sfk_host *h, const struct sfk_peer *peers,
                    size_t n);
  /* Registry: a peer could not be read (for logs and status). */
  void (*peer_unknown)(const struct sfk_host *h, uint32_t pid,
                       const char *why);
  /* Discovery: our public address changed (or is first known). */
  void (*mapping_changed)(const struct sfk_host *h, const struct sockaddr *addr,
                          socklen_t addrlen);

  /* --- upcalls: transport streams ------------------------------------- */
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
   * decided: SFK_ST_HOST_UNREACHABLE when the peer cannot be reached). */
  void (*stream_status)(const struct sfk_host *h, void *app, uint8_t status);
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
  /* Stop every watcher; no upcalls after this returns. */
  void (*stop)(void *self);
  /* Free everything. */
  void (*destroy)(void *self);
  /* Optional: the config file was re-read (SIGHUP).  The new section is
   * already checked against keys and is valid only during the call (copy
   * what you keep).  Return 0 or a negative errno (the old settings stay). */
  int (*reconfigure)(void *self, const struct sfk_cfg_node *cfg);
};

struct sfk_transport_ops {
  struct sfk_base_ops base;
  /* A datagram for the transport (the daemon demultiplexed it). */
  void (*on_datagram)(void *self, const struct sockaddr *from,
                      socklen_t fromlen, const uint8_t *data, size_t len);
  /* The peer table changed: connect to new peers, re-validate changed
   * pins and addresses, drop removed peers. */
  void (*peers_changed)(void *self);
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

struct sfk_relay_ops {
  struct sfk_base_ops base;
  /* A datagram that came from the relay server. */
  void (*on_datagram)(void *self, const struct sockaddr *from,
                      socklen_t fromlen, const uint8_t *data, size_t len);
  /* Relayed address once allocated (0) or -EAGAIN while pending. */
  int (*relayed_addr)(void *self, struct sockaddr_storage *out,
                      socklen_t *outlen);
  /* Allow a peer's address to send to us through the relay. */
  int (*permit)(void *self, const struct sockaddr *peer, socklen_t len);
  /* Send one datagram to a peer through the relay. */
  int (*send)(void *self, const struct sockaddr *to, socklen_t tolen,
              const uint8_t *buf, size_t len);
  /* Nonzero when datagrams from this source belong to the relay. */
  int (*owns_source)(void *self, const struct sockaddr *from,
                     socklen_t fromlen);
};

struct sfk_discovery_ops {
  struct sfk_base_ops base;
  /* A STUN datagram (first byte 0-3) that is not the relay's. */
  void (*on_datagram)(void *self, const struct sockaddr *from,
                      socklen_t fromlen, const uint8_t *data, size_t len);
};

struct sfk_registry_ops {
  struct sfk_base_ops base;
  /* Publish our address ("ip:port") and pin; may complete asynchronously. */
  int (*publish)(void *self, const char *addr, const char *pin);
  /* Re-read one peer (SFK_PID_NONE: all); results via peers_set(). */
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
