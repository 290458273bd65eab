/*
 * The host API: thin adapters from a plugin's view (struct sfk_host,
 * one per instance) to the daemon's modules.  host->core points back at
 * the struct sfk_instance.
 */
#include "autoconfig.h"

#include "host.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "bridge.h"
#include "daemon.h"
#include "log.h"
#include "util.h"

static struct sfk_instance *I(const struct sfk_host *h) {
  return h->core;
}

static uint64_t h_now_ns(const struct sfk_host *h) {
  (void)h;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
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

static int h_cfg_string(const struct sfk_host *h,
                        const struct sfk_cfg_node *map, const char *key,
                        const char *def, const char **out) {
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

static int h_cfg_path(const struct sfk_host *h, const struct sfk_cfg_node *map,
                      const char *key, const char *def, char *buf,
                      size_t bufsz) {
  return sfk_cfg_path(I(h)->doc, map, key, def, buf, bufsz);
}

static unsigned h_cfg_check_keys(const struct sfk_host *h,
                                 const struct sfk_cfg_node *map,
                                 const char *section,
                                 const char *const *keys) {
  return sfk_cfg_check_keys(I(h)->doc, map, section, keys, NULL);
}

static int h_udp_send(const struct sfk_host *h, const struct sockaddr *to,
                      socklen_t tolen, const uint8_t *buf, size_t len,
                      size_t gso_size) {
  /* A relay plugin (later) takes over destinations without a direct
   * path; until then every datagram goes out directly. */
  return sfk_udp_send(&I(h)->d->udp, to, tolen, buf, len, gso_size);
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
  return &I(h)->d->ident.pub;
}

static int h_cert_pin(const struct sfk_host *h, const uint8_t *der, size_t len,
                      char out[SFK_PIN_SIZE]) {
  (void)h;
  return sfk_cert_pin(der, len, out);
}

static void h_peers_set(const struct sfk_host *h, const struct sfk_peer *v,
                        size_t n) {
  struct sfk_daemon *d = I(h)->d;
  int rc = sfk_peers_set(&d->peers, d->cfg.pid, v, n);
  if (rc < 0) {
    sfk_err("peers", "out of memory updating the peer table");
    return;
  }
  if (!rc)
    return;
  for (size_t i = 0; i < d->peers.n; i++) {
    char as[SFK_ADDRSTR_MAX];
    const struct sfk_peer *p = &d->peers.v[i];
    sfk_info("peers", "peer %u at %s pin %.12s...", p->pid,
             p->addrlen ? sfk_addr_str((const struct sockaddr *)&p->addr, as,
                                       sizeof as)
                        : "(unknown)",
             p->pin[0] ? p->pin : "(none)");
  }
  if (d->transport.started)
    sfk_transport(d)->peers_changed(d->transport.self);
}

static void h_peer_unknown(const struct sfk_host *h, uint32_t pid,
                           const char *why) {
  sfk_warn(I(h)->tag, "peer %u unknown: %s", pid, why);
}

static void h_mapping_changed(const struct sfk_host *h,
                              const struct sockaddr *addr, socklen_t len) {
  struct sfk_daemon *d = I(h)->d;
  char as[SFK_ADDRSTR_MAX];
  if (len > sizeof d->mapping)
    return;
  memcpy(&d->mapping, addr, len);
  d->mappinglen = len;
  sfk_addr_str(addr, as, sizeof as);
  sfk_info("daemon", "public address %s", as);
  if (d->registry.started) {
    const struct sfk_registry_ops *r = d->registry.plugin.desc->ops;
    r->publish(d->registry.self, as, d->ident.pub.pin);
  }
}

static void *h_stream_accept(const struct sfk_host *h, void *ts, uint32_t pid,
                             uint16_t port, uint8_t *status) {
  return sfk_bridge_on_accept(I(h)->d, ts, pid, port, status);
}

static void h_stream_status(const struct sfk_host *h, void *app,
                            uint8_t status) {
  sfk_bridge_on_status(I(h)->d, app, status);
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
      .udp_send = h_udp_send,
      .udp_local = h_udp_local,
      .peer_get = h_peer_get,
      .peer_count = h_peer_count,
      .peer_at = h_peer_at,
      .identity = h_identity,
      .cert_pin = h_cert_pin,
      .peers_set = h_peers_set,
      .peer_unknown = h_peer_unknown,
      .mapping_changed = h_mapping_changed,
      .stream_accept = h_stream_accept,
      .stream_status = h_stream_status,
      .stream_data = h_stream_data,
      .stream_writable = h_stream_writable,
      .stream_closed = h_stream_closed,
  };
}
