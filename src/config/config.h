/*
 * The daemon's config: the SPEC's schema checked against a cfg tree, and
 * the command-line overrides.  Plugin sections are only checked for the
 * `plugin` key here; their other keys belong to the plugin.
 */
#ifndef SFK_CONFIG_H
#define SFK_CONFIG_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "cfg.h"

#define SFK_MAX_SERVICES 64
#define SFK_MAX_SERVICE_PEERS 256
#define SFK_NAME_MAX 64

/* A `services` entry: local TCP endpoint(s) peers may reach. */
struct sfk_service {
  uint16_t port_lo, port_hi;      /* inclusive */
  struct sockaddr_storage host;   /* host address; port filled per connection */
  socklen_t hostlen;
  int all_peers;                  /* peers: all */
  uint32_t peers[SFK_MAX_SERVICE_PEERS]; /* else this list */
  unsigned npeers;
};

/* A plugin slot: name and the section the plugin parses. */
struct sfk_plugin_conf {
  char name[SFK_NAME_MAX];              /* "" when the section is absent */
  const struct sfk_cfg_node *section;   /* borrowed from doc */
};

struct sfk_config {
  struct sfk_cfg_doc *doc; /* owned; plugin sections point into it */

  uint32_t pid;            /* SFK_PID_NONE until set */
  char study_id[256];      /* "" if unset */

  uint32_t net;            /* virtual network, host order */
  unsigned prefix;         /* 8..24 */

  struct sockaddr_storage socks_listen;
  socklen_t socks_listenlen;
  char socks_username[256]; /* "" = no auth */
  char socks_password_file[PATH_MAX];

  struct sockaddr_storage udp_bind;
  socklen_t udp_bindlen;

  char key_file[PATH_MAX];

  struct sfk_plugin_conf discovery; /* default "none" if the section is absent */
  struct sfk_plugin_conf registry;  /* default "static" (no peers) */
  struct sfk_plugin_conf transport; /* default "quic" */
  struct sfk_plugin_conf relay;     /* transport.relay, optional */
  int relay_mode; /* transport.relay.mode (read here, not by the plugin):
                     enum sfk_relay_mode; SFK_RELAY_NONE without a relay */

  struct sfk_service services[SFK_MAX_SERVICES];
  unsigned nservices;

  char control_socket[PATH_MAX]; /* "" if unset */

  int log_level;  /* enum sfk_log_level */
  int log_format; /* enum sfk_log_format */
};

/* Command-line values that override the file (NULL / -1 = not given).
 * api_url and auth_key_file are not used by sfk_config_load(): they
 * belong to the registry section and are handed on by the daemon. */
struct sfk_overrides {
  long long pid;           /* -1 if not given */
  const char *study_id;
  const char *api_url;     /* applies to registry.api_url */
  const char *auth_key_file;
  int log_level;           /* -1 if not given */
  int log_format;          /* -1 if not given */
};

/*
 * Load and check the daemon's part of the config.  Every error is
 * reported as FILE:LINE:COLUMN: message on errsink.  Returns 0 and fills
 * *cfg (cfg->doc owned by it), or -EINVAL after reporting (cfg->doc may
 * still be set so plugin sections can be checked too; free with
 * sfk_config_free), or another negative errno when the file is unreadable.
 */
int sfk_config_load(struct sfk_config *cfg, const char *path,
                    const struct sfk_overrides *ov, FILE *errsink);
/* The same from memory; `name` is used in messages and relative paths
 * are relative to the current folder.  path == NULL above is this with
 * sfk_config_default_yaml. */
int sfk_config_load_string(struct sfk_config *cfg, const char *name,
                           const char *text, size_t len,
                           const struct sfk_overrides *ov, FILE *errsink);
void sfk_config_free(struct sfk_config *cfg);

/* Set every field of *ov to "not given". */
void sfk_overrides_init(struct sfk_overrides *ov);

/*
 * Check the keys of a plugin's section against the plugin's key list
 * (struct sfk_base_ops.keys): kind is enum sfk_kind; the relay kind
 * checks transport.relay.  "plugin" is always accepted, and "relay" in
 * the transport section.  Each other key is reported as
 * "unknown key 'x' in section 'y' (plugin 'p' accepts: a, b)".  Returns
 * the number of errors (0 when the section is absent).
 */
unsigned sfk_config_check_plugin_keys(const struct sfk_config *cfg, int kind,
                                      const char *const *keys);

/* Highest valid PID of the network: 2^(32-prefix) - 2 (the all-ones
 * host part is the broadcast address and never a party). */
uint32_t sfk_config_max_pid(const struct sfk_config *cfg);

/* The built-in default config (two parties on loopback, static registry,
 * discovery none), as YAML text. */
extern const char sfk_config_default_yaml[];

/* Is addr (host order) inside the virtual network?  Returns 1 and sets
 * *pid to its host part (which may still be no party, e.g. the
 * broadcast address), else 0. */
int sfk_config_virtual_pid(const struct sfk_config *cfg, uint32_t addr,
                           uint32_t *pid);
/* The virtual address of pid in the configured network ("10.0.0.3",
 * "172.16.1.44"), into buf.  Returns buf. */
const char *sfk_config_vaddr_str(const struct sfk_config *cfg, uint32_t pid,
                                 char *buf, size_t bufsz);
/* The service for (peer pid, port), or NULL if not allowed.  Service
 * port ranges never overlap (the loader refuses that), so at most one
 * matches. */
const struct sfk_service *sfk_config_service(const struct sfk_config *cfg,
                                             uint32_t peer, uint16_t port);

#endif
