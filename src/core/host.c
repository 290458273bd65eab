/*
 * The host API: thin adapters from a plugin's view (struct sfk_host,
 * one per instance) to the daemon's modules.  host->core points back at
 * the struct sfk_instance.
 */
#include "autoconfig.h"

#include "host.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <gnutls/crypto.h>

#include "bridge.h"
#include "daemon.h"
#include "log.h"
#include "util.h"

static struct sfk_instance *I(const struct sfk_host *h) {
  return h->core;
}

#define TAG_DAEMON "daemon"
#define TAG_PEERS "peers"

static uint64_t h_now_ns(const struct sfk_host *h) {
  (void)h;
  return sfk_daemon_now_ns();
}

static int h_log_enabled(const struct sfk_host *h, int level) {
  (void)h;
  return sfk_log_enabled(level);
}

static void h_log(const struct sfk_host *h, int level, const char *fmt, ...)
    SFK_PRINTF(3, 4);
static void h_log(const struct sfk_host *h, int level, const char *fmt, ...) {
  if (!sfk_log_enabled(level))
    return;
  va_list ap;
  va_start(ap, fmt);
  sfk_logv(level, I(h)->tag, fmt, ap);
  va_end(ap);
}

static void h_cfg_error(const struct sfk_host *h, const struct sfk_cfg_node *n,
                        const char *fmt, ...) SFK_PRINTF(3, 4);
static void h_cfg_error(const struct sfk_host *h, const struct sfk_cfg_node *n,
                        const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  sfk_cfg_verror(I(h)->doc, n, fmt, ap);
  va_end(ap);
}

/* The command-line value replacing KEY of this instance's section, or
 * NULL.  Only top-level keys of the section are overridden. */
static const struct sfk_cfg_override *
override_for(const struct sfk_instance *inst, const struct sfk_cfg_node *map,
             const char *key) {
  if (!map || map != inst->section)
    return NULL;
  for (unsigned i = 0; i < inst->novr; i++)
    if (strcmp(inst->ovr[i].key, key) == 0)
      return &inst->ovr[i];
  return NULL;
}

static int h_cfg_string(const struct sfk_host *h,
                        const struct sfk_cfg_node *map, const char *key,
                        const char *def, const char **out) {
  const struct sfk_cfg_override *o = override_for(I(h), map, key);
  if (o) {
    *out = o->value;
    return 0;
  }
  return sfk_cfg_string(I(h)->doc, map, key, def, out);
}

static int h_cfg_uint(const struct sfk_host *h, const struct sfk_cfg_node *map,
                      const char *key, uint64_t min, uint64_t max,
                      uint64_t def, uint64_t *out) {
  return sfk_cfg_uint(I(h)->doc, map, key, min, max, def, out);
}

static int h_cfg_duration(const struct sfk_host *h,
                          const struct sfk_cfg_node *map, const char *key,
                          uint64_t def, uint64_t *out) {
  return sfk_cfg_duration_ms(I(h)->doc, map, key, def, out);
}

static int h_cfg_addr(const struct sfk_host *h, const struct sfk_cfg_node *map,
                      const char *key, const char *def,
                      struct sockaddr_storage *out, socklen_t *outlen) {
  return sfk_cfg_addr(I(h)->doc, map, key, def, out, outlen);
}

/* An override's path is relative to the current folder, as any path
 * on a command line. */
static int override_path(const struct sfk_instance *inst,
                         const struct sfk_cfg_override *o, char *buf,
                         size_t bufsz) {
  int n = snprintf(buf, bufsz, "%s", o->value);
  if (!o->value[0] || n < 0 || (size_t)n >= bufsz) {
    buf[0] = '\0';
    sfk_cfg_error_nopos(inst->doc, "%s: %s", o->option,
                        o->value[0] ? "path too long" : "empty path");
    return -EINVAL;
  }
  return 0;
}

static int h_cfg_path(const struct sfk_host *h, const struct sfk_cfg_node *map,
                      const char *key, const char *def, char *buf,
                      size_t bufsz) {
  const struct sfk_cfg_override *o = override_for(I(h), map, key);
  if (o)
    return override_path(I(h), o, buf, bufsz);
  return sfk_cfg_path(I(h)->doc, map, key, def, buf, bufsz);
}

static int h_cfg_secret(const struct sfk_host *h,
                        const struct sfk_cfg_node *map, const char *key,
                        const char *def, char *buf, size_t bufsz) {
  struct sfk_instance *inst = I(h);
  const struct sfk_cfg_override *o = override_for(inst, map, key);
  char path[4096], err[4200];
  int rc = o ? override_path(inst, o, path, sizeof path)
             : sfk_cfg_path(inst->doc, map, key, def, path, sizeof path);
  if (bufsz)
    buf[0] = '\0';
  if (rc < 0)
    return rc;
  if (!path[0])
    return 0;
  rc = sfk_secret_read(path, buf, bufsz, err, sizeof err);
  if (rc < 0) {
    if (o) {
      sfk_cfg_error_nopos(inst->doc, "%s: %s", o->option, err);
    } else {
      const struct sfk_cfg_node *n = sfk_cfg_get(map, key);
      sfk_cfg_error(inst->doc, n ? n : map, "%s", err);
    }
    return -EINVAL;
  }
  return 0;
}

static unsigned h_cfg_check_keys(const struct sfk_host *h,
                                 const struct sfk_cfg_node *map,
                                 const char *section,
                                 const char *const *keys) {
  return sfk_cfg_check_keys(I(h)->doc, map, section, keys, NULL);
}

static const struct sfk_relay_ops *relay_ops(const struct sfk_daemon *d) {
  return d->relay.started ? d->relay.plugin.desc->ops : NULL;
}

static int h_udp_send(const struct sfk_host *h, int path,
                      const struct sockaddr *to, socklen_t tolen,
                      const uint8_t *buf, size_t len, size_t gso_size) {
  struct sfk_daemon *d = I(h)->d;
  if (path == SFK_PATH_DIRECT)
    return sfk_udp_send(&d->udp, to, tolen, buf, len, gso_size);
  if (path != SFK_PATH_RELAY)
    return -EINVAL;
  const struct sfk_relay_ops *r = relay_ops(d);
  if (!r)
    return -ENETUNREACH;
  /* The relay frames each datagram on its own (TURN has no GSO). */
  size_t seg = gso_size && gso_size < len ? gso_size : len;
  for (size_t off = 0; off < len; off += seg) {
    size_t n = len - off < seg ? len - off : seg;
    int rc = r->send(d->relay.self, to, tolen, buf + off, n);
    if (rc < 0)
      return rc;
  }
  return 0;
}

static int h_path_info(const struct sfk_host *h, int path,
                       struct sfk_path_info *out) {
  struct sfk_daemon *d = I(h)->d;
  memset(out, 0, sizeof *out);
  if (path == SFK_PATH_DIRECT) {
    out->usable = d->udp.fd >= 0;
    if (d->net.mappinglen) {
      memcpy(&out->addr, &d->net.mapping, d->net.mappinglen);
      out->addrlen = d->net.mappinglen;
    } else if (d->udp.fd >= 0) {
      memcpy(&out->addr, &d->udp.local, d->udp.locallen);
      out->addrlen = d->udp.locallen;
    }
    return 0;
  }
  if (path != SFK_PATH_RELAY)
    return -EINVAL;
  if (!d->relay.self)
    return -ENOENT;
  const struct sfk_relay_ops *r = relay_ops(d);
  if (!r || r->info(d->relay.self, out) < 0) {
    memset(out, 0, sizeof *out);
    out->usable = 0;
  }
  return 0;
}

static int h_relay_permit(const struct sfk_host *h, const struct sockaddr *peer,
                          socklen_t len) {
  struct sfk_daemon *d = I(h)->d;
  const struct sfk_relay_ops *r = relay_ops(d);
  if (!d->relay.self)
    return -ENOENT;
  return r ? r->permit(d->relay.self, peer, len) : -ENETUNREACH;
}

static void h_relay_unpermit(const struct sfk_host *h,
                             const struct sockaddr *peer, socklen_t len) {
  struct sfk_daemon *d = I(h)->d;
  const struct sfk_relay_ops *r = relay_ops(d);
  if (r)
    r->unpermit(d->relay.self, peer, len);
}

static int h_resolve(const struct sfk_host *h, const char *name, uint16_t port,
                     int family, sfk_resolve_cb cb, void *arg,
                     struct sfk_resolve **out) {
  return sfk_resolve_start(&I(h)->d->resolver, name, port, family, cb, arg,
                           out);
}

static void h_resolve_cancel(const struct sfk_host *h, struct sfk_resolve *r) {
  sfk_resolve_cancel(&I(h)->d->resolver, r);
}

static int h_random(const struct sfk_host *h, void *buf, size_t len) {
  (void)h;
  return gnutls_rnd(GNUTLS_RND_RANDOM, buf, len) == 0 ? 0 : -EIO;
}

static int h_udp_local(const struct sfk_host *h, struct sockaddr_storage *out,
                       socklen_t *outlen) {
  const struct sfk_udp *u = &I(h)->d->udp;
  if (u->fd < 0)
    return -ENOTCONN;
  memcpy(out, &u->local, u->locallen);
  *outlen = u->locallen;
  return 0;
}

static const struct sfk_peer *h_peer_get(const struct sfk_host *h,
                                         uint32_t pid) {
  return sfk_peers_get(&I(h)->d->peers, pid);
}

static size_t h_peer_count(const struct sfk_host *h) {
  return I(h)->d->peers.n;
}

static const struct sfk_peer *h_peer_at(const struct sfk_host *h, size_t i) {
  const struct sfk_peers *p = &I(h)->d->peers;
  return i < p->n ? &p->v[i] : NULL;
}

static const struct sfk_identity *h_identity(const struct sfk_host *h) {
  struct sfk_instance *inst = I(h);
  /* Only the transport needs the private key (TLS); everyone else sees
   * the certificate and the pin. */
  if (inst->kind == SFK_KIND_TRANSPORT)
    return &inst->d->ident.pub;
  inst->ident_view = inst->d->ident.pub;
  inst->ident_view.key_der = NULL;
  inst->ident_view.key_der_len = 0;
  return &inst->ident_view;
}

static int h_cert_pin(const struct sfk_host *h, const uint8_t *der, size_t len,
                      char out[SFK_PIN_SIZE]) {
  (void)h;
  return sfk_cert_pin(der, len, out);
}

static void log_peer_entry(struct sfk_daemon *d, const struct sfk_peer *p,
                           const char *what) {
  char as[SFK_ADDRSTR_MAX], va[32];
  sfk_config_vaddr_str(&d->cfg, p->pid, va, sizeof va);
  if (sfk_peer_is_unknown(p))
    sfk_info("peers", "peer %u (%s) %s: not published yet", p->pid, va, what);
  else
    sfk_info("peers", "peer %u (%s) %s: address %s pin %s", p->pid, va, what,
             p->addrlen ? sfk_addr_str((const struct sockaddr *)&p->addr, as,
                                       sizeof as)
                        : "(none)",
             p->pin[0] ? p->pin : "(none)");
}

static void peers_changed(struct sfk_daemon *d) {
  if (d->transport.started)
    sfk_transport(d)->peers_changed(d->transport.self);
}

static void h_peers_set(const struct sfk_host *h, const struct sfk_peer *v,
                        size_t n) {
  struct sfk_daemon *d = I(h)->d;
  /* Log what is new or different before the table changes under us. */
  for (size_t i = 0; i < n && i < SFK_MAX_PEERS; i++) {
    if (v[i].pid == d->cfg.pid)
      continue;
    const struct sfk_peer *old = sfk_peers_get(&d->peers, v[i].pid);
    if (!old)
      log_peer_entry(d, &v[i], "joined");
    else if (old->addrlen != v[i].addrlen ||
             memcmp(&old->addr, &v[i].addr, v[i].addrlen) != 0 ||
             strcmp(old->pin, v[i].pin) != 0)
      log_peer_entry(d, &v[i], "changed");
  }
  for (size_t i = 0; i < d->peers.n; i++) {
    size_t j;
    for (j = 0; j < n && v[j].pid != d->peers.v[i].pid; j++)
      ;
    if (j == n)
      sfk_info("peers", "peer %u left the study", d->peers.v[i].pid);
  }
  int rc = sfk_peers_set(&d->peers, d->cfg.pid, v, n);
  if (rc < 0) {
    sfk_err("peers", "out of memory updating the peer table");
    return;
  }
  if (rc)
    peers_changed(d);
}

static void h_peer_set(const struct sfk_host *h, const struct sfk_peer *p) {
  struct sfk_daemon *d = I(h)->d;
  const struct sfk_peer *old = sfk_peers_get(&d->peers, p->pid);
  int rc = sfk_peers_set_one(&d->peers, d->cfg.pid, p);
  if (rc < 0) {
    sfk_err("peers", "cannot add peer %u: %s", p->pid, strerror(-rc));
    return;
  }
  if (rc) {
    log_peer_entry(d, sfk_peers_get(&d->peers, p->pid),
                   old ? "changed" : "joined");
    peers_changed(d);
  }
}

static void h_registry_result(const struct sfk_host *h, int what, int err,
                              const char *why) {
  struct sfk_daemon *d = I(h)->d;
  struct sfk_reg_outcome *o = what ? &d->net.read : &d->net.publish;
  o->done = 1;
  o->err = err;
  o->at_ns = sfk_daemon_now_ns();
  snprintf(o->why, sizeof o->why, "%s", why ? why : "");
}

static void path_changed(struct sfk_daemon *d, int path) {
  const struct sfk_transport_ops *t = sfk_transport(d);
  if (d->transport.started && t->path_changed)
    t->path_changed(d->transport.self, path);
}

static void h_mapping_changed(const struct sfk_host *h,
                              const struct sockaddr *addr, socklen_t len,
                              const char *server) {
  struct sfk_daemon *d = I(h)->d;
  struct sfk_netstate *ns = &d->net;
  char as[SFK_ADDRSTR_MAX];
  if (!addr || len == 0 || len > sizeof ns->mapping)
    return;
  memcpy(&ns->mapping, addr, len);
  ns->mappinglen = len;
  ns->mapping_ns = sfk_daemon_now_ns();
  snprintf(ns->mapping_server, sizeof ns->mapping_server, "%s",
           server ? server : "");
  sfk_addr_str(addr, as, sizeof as);
  if (server && *server)
    sfk_info(TAG_DAEMON, "public address %s (from %s)", as, server);
  else
    sfk_info(TAG_DAEMON, "public address %s", as);
  sfk_daemon_republish(d);
  path_changed(d, SFK_PATH_DIRECT);
}

static void h_nat_found(const struct sfk_host *h,
                        const struct sfk_probe_result *r) {
  struct sfk_daemon *d = I(h)->d;
  d->net.nat = *r;
  d->net.nat_known = 1;
  sfk_info(TAG_DAEMON, "NAT: mapping %s, filtering %s%s%s",
           sfk_nat_str(r->mapping), sfk_nat_str(r->filtering),
           r->summary[0] ? ": " : "", r->summary);
  if (r->mapping >= SFK_NAT_ADDRESS_DEPENDENT) {
    if (d->cfg.relay_mode == SFK_RELAY_NONE)
      sfk_warn(TAG_DAEMON, "this NAT maps each destination to its own port: "
               "peers cannot punch through it and no relay is configured "
               "(transport.relay); only peers that can reach us some other "
               "way will connect");
    else if (d->cfg.relay_mode == SFK_RELAY_NEVER)
      sfk_warn(TAG_DAEMON, "this NAT maps each destination to its own port "
               "and relay mode is 'never': peers behind NATs will not "
               "reach us");
  }
  sfk_daemon_republish(d);
}

static void h_relay_recv(const struct sfk_host *h, const struct sockaddr *from,
                         socklen_t fromlen, const uint8_t *data, size_t len) {
  struct sfk_daemon *d = I(h)->d;
  if (d->transport.started && len)
    sfk_transport(d)->on_datagram(d->transport.self, SFK_PATH_RELAY, from,
                                  fromlen, data, len);
}

static void h_relay_changed(const struct sfk_host *h,
                            const struct sockaddr *addr, socklen_t len, int err,
                            const char *why) {
  struct sfk_daemon *d = I(h)->d;
  struct sfk_netstate *ns = &d->net;
  char as[SFK_ADDRSTR_MAX];
  if (addr && len && len <= sizeof ns->relayed) {
    memcpy(&ns->relayed, addr, len);
    ns->relayedlen = len;
    ns->relay_err = 0;
    ns->relay_why[0] = '\0';
    sfk_info(TAG_DAEMON, "relayed address %s",
             sfk_addr_str(addr, as, sizeof as));
  } else {
    memset(&ns->relayed, 0, sizeof ns->relayed);
    ns->relayedlen = 0;
    ns->relay_err = err;
    snprintf(ns->relay_why, sizeof ns->relay_why, "%s", why ? why : "");
    sfk_warn(TAG_DAEMON, "relay unavailable: %s",
             why && *why ? why : strerror(err < 0 ? -err : EIO));
  }
  sfk_daemon_republish(d);
  path_changed(d, SFK_PATH_RELAY);
}

static void h_peer_state(const struct sfk_host *h,
                         const struct sfk_peer_event *ev) {
  struct sfk_daemon *d = I(h)->d;
  struct sfk_peer_live *lv = sfk_peers_live(&d->peers, ev->pid);
  char as[SFK_ADDRSTR_MAX], va[32];
  if (!lv)
    return; /* no longer a participant: nothing to track */
  int was = lv->state;
  int same_path = lv->path == ev->path && ev->addr &&
                  lv->addrlen == ev->addrlen &&
                  memcmp(&lv->addr, ev->addr, ev->addrlen) == 0;
  if (was != ev->state)
    lv->since_ns = sfk_daemon_now_ns();
  lv->state = ev->state;
  lv->path = ev->path;
  lv->err = ev->err;
  if (ev->addr && ev->addrlen && ev->addrlen <= sizeof lv->addr) {
    memcpy(&lv->addr, ev->addr, ev->addrlen);
    lv->addrlen = ev->addrlen;
  } else {
    memset(&lv->addr, 0, sizeof lv->addr);
    lv->addrlen = 0;
  }
  snprintf(lv->why, sizeof lv->why, "%s", ev->why ? ev->why : "");
  sfk_config_vaddr_str(&d->cfg, ev->pid, va, sizeof va);
  const char *addr =
      lv->addrlen ? sfk_addr_str((struct sockaddr *)&lv->addr, as, sizeof as)
                  : "(no address)";
  switch (ev->state) {
  case SFK_PEER_UP:
    if (was != SFK_PEER_UP || !same_path)
      sfk_info(TAG_PEERS, "peer %u (%s) up via %s %s%s%s", ev->pid, va,
               sfk_path_str(ev->path), addr, lv->why[0] ? ": " : "", lv->why);
    break;
  case SFK_PEER_DOWN:
    if (was != SFK_PEER_DOWN)
      sfk_warn(TAG_PEERS, "peer %u (%s) down: %s", ev->pid, va,
               lv->why[0] ? lv->why : strerror(ev->err < 0 ? -ev->err : EIO));
    break;
  case SFK_PEER_CONNECTING:
    if (was != SFK_PEER_CONNECTING)
      sfk_debug(TAG_PEERS, "peer %u (%s) connecting via %s %s%s%s", ev->pid,
                va, sfk_path_str(ev->path), addr, lv->why[0] ? ": " : "",
                lv->why);
    break;
  default:
    break;
  }
  /* A broken connection may mean the peer moved (read it again) or
   * that our own NAT rebound (check our mapping now, not at the next
   * keep-alive). */
  if (ev->state == SFK_PEER_DOWN && was != SFK_PEER_DOWN) {
    if (d->registry.started) {
      const struct sfk_registry_ops *r = d->registry.plugin.desc->ops;
      r->refresh(d->registry.self, ev->pid);
    }
    if (d->discovery.started) {
      const struct sfk_discovery_ops *o = d->discovery.plugin.desc->ops;
      if (o->recheck)
        o->recheck(d->discovery.self);
    }
  }
}

static void *h_stream_accept(const struct sfk_host *h, void *ts, uint32_t pid,
                             uint16_t port, uint8_t *status) {
  return sfk_bridge_on_accept(I(h)->d, ts, pid, port, status);
}

static void h_stream_status(const struct sfk_host *h, void *app,
                            uint8_t status, const char *why) {
  sfk_bridge_on_status(I(h)->d, app, status, why);
}

static void h_stream_data(const struct sfk_host *h, void *app,
                          const uint8_t *data, size_t len, int fin) {
  sfk_bridge_on_data(I(h)->d, app, data, len, fin);
}

static void h_stream_writable(const struct sfk_host *h, void *app) {
  sfk_bridge_on_writable(I(h)->d, app);
}

static void h_stream_closed(const struct sfk_host *h, void *app, int err) {
  sfk_bridge_on_closed(I(h)->d, app, err);
}

void sfk_host_init(struct sfk_instance *inst) {
  struct sfk_host *h = &inst->host;
  *h = (struct sfk_host){
      .abi = SFK_ABI_VERSION,
      .size = sizeof(struct sfk_host),
      .core = inst,
      .loop = inst->d->loop,
      .instance = inst->tag,
      .self_pid = inst->d->cfg.pid,
      .study_id = inst->d->cfg.study_id,
      .relay_mode = inst->d->cfg.relay_mode,
      .net = inst->d->cfg.net,
      .prefix = inst->d->cfg.prefix,
      .now_ns = h_now_ns,
      .log_enabled = h_log_enabled,
      .log = h_log,
      .cfg_type = sfk_cfg_type,
      .cfg_get = sfk_cfg_get,
      .cfg_len = sfk_cfg_len,
      .cfg_at = sfk_cfg_at,
      .cfg_scalar = sfk_cfg_scalar,
      .cfg_error = h_cfg_error,
      .cfg_string = h_cfg_string,
      .cfg_uint = h_cfg_uint,
      .cfg_duration_ms = h_cfg_duration,
      .cfg_addr = h_cfg_addr,
      .cfg_path = h_cfg_path,
      .cfg_check_keys = h_cfg_check_keys,
      .cfg_secret = h_cfg_secret,
      .udp_send = h_udp_send,
      .udp_local = h_udp_local,
      .path_info = h_path_info,
      .relay_permit = h_relay_permit,
      .relay_unpermit = h_relay_unpermit,
      .resolve = h_resolve,
      .resolve_cancel = h_resolve_cancel,
      .random = h_random,
      .peer_get = h_peer_get,
      .peer_count = h_peer_count,
      .peer_at = h_peer_at,
      .identity = h_identity,
      .cert_pin = h_cert_pin,
      .peers_set = h_peers_set,
      .peer_set = h_peer_set,
      .registry_result = h_registry_result,
      .mapping_changed = h_mapping_changed,
      .nat_found = h_nat_found,
      .relay_recv = h_relay_recv,
      .relay_changed = h_relay_changed,
      .peer_state = h_peer_state,
      .stream_accept = h_stream_accept,
      .stream_status = h_stream_status,
      .stream_data = h_stream_data,
      .stream_writable = h_stream_writable,
      .stream_closed = h_stream_closed,
  };
}
