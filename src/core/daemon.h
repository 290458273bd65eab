/*
 * The daemon: owns the loop, the config, the identity, the UDP socket,
 * the peer table, the plugin instances, the SOCKS front end and every
 * bridged connection.  One per process, but no globals: everything hangs
 * off struct sfk_daemon so tests could run two.
 */
#ifndef SFK_DAEMON_H
#define SFK_DAEMON_H

#include <ev.h>

#include "config.h"
#include "control.h"
#include "identity.h"
#include "netstate.h"
#include "peers.h"
#include "plugin_loader.h"
#include "socks_server.h"
#include "resolver.h"
#include "udp.h"

/* A command-line value that replaces a key of a plugin's section
 * (--api, --auth-key-file).  value is borrowed from argv. */
struct sfk_cfg_override {
  const char *key;
  const char *value;
  const char *option; /* "--api", for messages */
};
#define SFK_MAX_OVERRIDES 4

/* A loaded plugin and its instance. */
struct sfk_instance {
  struct sfk_daemon *d;        /* owner */
  int kind;                    /* enum sfk_kind */
  struct sfk_plugin plugin;    /* dlopen handle + descriptor */
  struct sfk_host host;        /* handed to the plugin; host.core = this */
  const struct sfk_base_ops *base; /* == plugin.desc->ops */
  const struct sfk_cfg_doc *doc;   /* config doc for cfg_error; swapped on reload */
  void *self;                  /* plugin instance; NULL until created */
  int started;
  char tag[80];                /* "transport.quic" */
  const struct sfk_cfg_node *section; /* the plugin's section, or NULL */
  struct sfk_cfg_override ovr[SFK_MAX_OVERRIDES]; /* apply to `section` */
  unsigned novr;
  struct sfk_identity ident_view; /* identity without the key (host.c) */
};

struct sfk_daemon {
  struct ev_loop *loop; /* borrowed (the default loop in main) */
  struct sfk_config cfg;
  const char *config_path; /* NULL: embedded default */
  struct sfk_overrides ov;
  struct sfk_ident ident;
  struct sfk_udp udp;
  struct sfk_peers peers;
  struct sfk_instance transport, relay, discovery, registry;
  struct sfk_socks_server socks;
  struct sfk_control control; /* the status socket (control.c) */
  struct sfk_bridge *bridges; /* every live bridge, doubly linked */
  size_t nbridges;
  struct sfk_bridge *flushq;  /* bridges with bytes for TCP (bridge.c) */
  ev_prepare flush_prep;      /* writes them before the loop blocks */
  struct splice *splices;     /* local TCP-to-TCP relays (splice.c) */
  uint8_t *scratch;           /* TCP read buffer, SFK_SCRATCH bytes, owned */
  struct sfk_netstate net;     /* mapping, NAT, relay, registry outcomes */
  struct sfk_resolver resolver;
  uint64_t started_ns;
  ev_signal sig_term, sig_int, sig_hup;
  int exit_code;
};

#define SFK_SCRATCH (256 * 1024)

/*
 * Load config (path NULL = embedded default) and plugins, create every
 * instance.  check_only: stop after create (--check-config).  Errors go
 * to stderr as FILE:LINE:COLUMN: message.  Returns 0, -EINVAL (config
 * errors: exit 2) or another negative errno.
 */
int sfk_daemon_init(struct sfk_daemon *d, struct ev_loop *loop,
                    const char *config_path, const struct sfk_overrides *ov,
                    int check_only);
/*
 * For netcheck: load the config and create only the discovery instance
 * (no identity, no other plugin, no socket).  Errors as sfk_daemon_init;
 * free with sfk_daemon_free.
 */
int sfk_daemon_init_discovery(struct sfk_daemon *d, struct ev_loop *loop,
                              const char *config_path,
                              const struct sfk_overrides *ov);
/* Bind sockets and start plugins; log the ready line.  0 or -errno. */
int sfk_daemon_start(struct sfk_daemon *d);
/* Stop everything (plugins first so QUIC sends CONNECTION_CLOSE). */
void sfk_daemon_stop(struct sfk_daemon *d);
void sfk_daemon_free(struct sfk_daemon *d);

/* Monotonic clock, nanoseconds. */
uint64_t sfk_daemon_now_ns(void);
/* Publish what the relay policy picks (sfk_netstate_choose) if it
 * differs from what was last published. */
void sfk_daemon_republish(struct sfk_daemon *d);

/* Transport instance ops (typed). */
static inline const struct sfk_transport_ops *
sfk_transport(const struct sfk_daemon *d) {
  return (const struct sfk_transport_ops *)d->transport.plugin.desc->ops;
}

#endif
