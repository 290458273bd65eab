/*
 * Registry plugin `static`: the peers are listed in the config file.
 *
 *   registry:
 *     plugin: static
 *     peers:
 *       - pid: 0
 *         addr: 192.0.2.10:40000
 *         pubkey_sha256: 3f9a...   # 64 lowercase hex digits
 *
 * Nothing is published (the other parties' configs list us); SIGHUP
 * re-reads the list through reconfigure().
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sfkit-proxy/plugin.h"

#define MAX_PEERS 1024

struct reg_static {
  const struct sfk_host *host; /* borrowed from the daemon */
  struct sfk_peer *peers;      /* owned */
  size_t npeers;
};

static int pin_ok(const char *s) {
  size_t n = 0;
  for (; s[n]; n++)
    if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
      return 0;
  return n == SFK_PIN_LEN;
}

/* Parse `peers` into a new array; errors reported at their positions. */
static int parse_peers(const struct sfk_host *h, const struct sfk_cfg_node *cfg,
                       struct sfk_peer **out, size_t *nout) {
  static const char *const entry_keys[] = {"pid", "addr", "pubkey_sha256",
                                           NULL};
  const struct sfk_cfg_node *list = cfg ? h->cfg_get(cfg, "peers") : NULL;
  *out = NULL;
  *nout = 0;
  if (!list)
    return 0;
  if (h->cfg_type(list) != SFK_CFG_SEQ) {
    h->cfg_error(h, list, "'peers' must be a list of {pid, addr, pubkey_sha256}");
    return -EINVAL;
  }
  size_t n = h->cfg_len(list);
  if (n > MAX_PEERS) {
    h->cfg_error(h, list, "too many peers (%zu, at most %d)", n, MAX_PEERS);
    return -EINVAL;
  }
  struct sfk_peer *v = calloc(n ? n : 1, sizeof *v);
  if (!v)
    return -ENOMEM;
  int bad = 0;
  for (size_t i = 0; i < n; i++) {
    const struct sfk_cfg_node *e = h->cfg_at(list, i);
    if (h->cfg_type(e) != SFK_CFG_MAP) {
      h->cfg_error(h, e, "a peer must be a map with pid, addr, pubkey_sha256");
      bad = 1;
      continue;
    }
    if (h->cfg_check_keys(h, e, "registry.peers", entry_keys))
      bad = 1;
    uint64_t pid;
    const char *pin;
    if (!h->cfg_get(e, "pid")) {
      h->cfg_error(h, e, "peer without 'pid'");
      bad = 1;
    } else if (h->cfg_uint(h, e, "pid", 0, 0xffffff, 0, &pid) == 0) {
      v[i].pid = (uint32_t)pid;
      for (size_t j = 0; j < i; j++)
        if (v[j].pid == v[i].pid) {
          h->cfg_error(h, h->cfg_get(e, "pid"), "peer %u listed twice",
                       v[i].pid);
          bad = 1;
        }
    } else {
      bad = 1;
    }
    if (h->cfg_addr(h, e, "addr", NULL, &v[i].addr, &v[i].addrlen) < 0)
      bad = 1;
    if (h->cfg_string(h, e, "pubkey_sha256", "", &pin) < 0) {
      bad = 1;
    } else if (!pin_ok(pin)) {
      h->cfg_error(h, h->cfg_get(e, "pubkey_sha256") ? h->cfg_get(e, "pubkey_sha256") : e,
                   "pubkey_sha256 must be the peer's pin: 64 lowercase hex "
                   "digits (run 'sfkit-proxy identity' at the peer)");
      bad = 1;
    } else {
      memcpy(v[i].pin, pin, SFK_PIN_SIZE);
    }
  }
  if (bad) {
    free(v);
    return -EINVAL;
  }
  *out = v;
  *nout = n;
  return 0;
}

/* Say what the list means for this party, at create() (so also under
 * --check-config): entries the daemon would drop or could not use. */
static void warn_entries(const struct sfk_host *h, const struct sfk_peer *v,
                         size_t n) {
  const struct sfk_identity *id = h->identity(h);
  for (size_t i = 0; i < n; i++) {
    if (v[i].pid == h->self_pid) {
      /* One file for every party lists everyone, ourselves included; a
       * different pin there means the PID is probably wrong. */
      if (id && id->pin[0] && strcmp(id->pin, v[i].pin) != 0)
        h->log(h, SFK_LOG_WARN,
               "registry.peers lists pid %u, this party's own PID, with pin "
               "%s, but this party's key has pin %s: is --pid / party.pid "
               "right?  The entry is ignored",
               v[i].pid, v[i].pin, id->pin);
      else
        h->log(h, SFK_LOG_DEBUG,
               "registry.peers: the entry for pid %u (this party) is ignored",
               v[i].pid);
      continue;
    }
    if (!v[i].addrlen && v[i].pid < h->self_pid)
      h->log(h, SFK_LOG_WARN,
             "registry.peers: peer %u has no addr, but this party (pid %u, "
             "the higher PID) must dial it: connections to it will fail "
             "until an address is configured",
             v[i].pid, h->self_pid);
  }
}

static const char *const static_keys[] = {"peers", NULL};

static int static_create(const struct sfk_host *h,
                         const struct sfk_cfg_node *cfg, void **self) {
  struct reg_static *r = calloc(1, sizeof *r);
  if (!r)
    return -ENOMEM;
  r->host = h;
  int rc = parse_peers(h, cfg, &r->peers, &r->npeers);
  if (rc < 0) {
    free(r);
    return rc;
  }
  warn_entries(h, r->peers, r->npeers);
  *self = r;
  return 0;
}

static int static_start(void *self) {
  struct reg_static *r = self;
  r->host->peers_set(r->host, r->peers, r->npeers);
  if (!r->npeers)
    r->host->log(r->host, SFK_LOG_WARN, "no peers listed in registry.peers");
  return 0;
}

static void static_stop(void *self) {
  (void)self;
}

static void static_destroy(void *self) {
  struct reg_static *r = self;
  free(r->peers);
  free(r);
}

static int static_reconfigure(void *self, const struct sfk_cfg_node *cfg) {
  struct reg_static *r = self;
  struct sfk_peer *v;
  size_t n;
  int rc = parse_peers(r->host, cfg, &v, &n);
  if (rc < 0)
    return rc;
  free(r->peers);
  r->peers = v;
  r->npeers = n;
  r->host->peers_set(r->host, r->peers, r->npeers);
  return 0;
}

static int static_publish(void *self, const char *addr, const char *pin) {
  struct reg_static *r = self;
  (void)pin;
  r->host->log(r->host, SFK_LOG_DEBUG,
               "static registry: not publishing %s (peers list us in their "
               "configs)",
               addr);
  return 0;
}

static int static_refresh(void *self, uint32_t pid) {
  struct reg_static *r = self;
  (void)pid;
  r->host->peers_set(r->host, r->peers, r->npeers);
  return 0;
}

static const struct sfk_registry_ops static_ops = {
    .base =
        {
            .keys = static_keys,
            .create = static_create,
            .start = static_start,
            .stop = static_stop,
            .destroy = static_destroy,
            .reconfigure = static_reconfigure,
        },
    .publish = static_publish,
    .refresh = static_refresh,
};

SFK_PLUGIN_DEFINE(REGISTRY, "static", "1.0", static_ops);
