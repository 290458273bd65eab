/*
 * Daemon lifetime: load the config and plugins, create instances, open
 * the sockets, start plugins in dependency order, handle signals, stop.
 */
#include "autoconfig.h"

#include "daemon.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "bridge.h"
#include "splice.h"
#include "host.h"
#include "log.h"
#include "util.h"

#define TAG "daemon"

/* ---- demultiplexing the shared UDP socket (RFC 7983, RFC 9443) ---------- */

/* A STUN Binding message (RFC 8489: method 0x001 in any class), which
 * belongs to discovery even when the TURN server sent it: one coturn
 * often serves both. */
static int is_stun_binding(const uint8_t *data, size_t len) {
  if (len < 20 || data[0] > 3)
    return 0;
  unsigned type = (unsigned)data[0] << 8 | data[1];
  unsigned method = (type & 0x000f) | ((type & 0x00e0) >> 1) |
                    ((type & 0x3e00) >> 2);
  return method == 0x001;
}

static void daemon_on_udp(void *arg, const struct sockaddr *from,
                          socklen_t fromlen, const uint8_t *data, size_t len) {
  struct sfk_daemon *d = arg;
  if (!len)
    return;
  /* Datagrams from the TURN server belong to the relay, whatever they
   * look like, but for Binding answers to discovery. */
  if (d->relay.started) {
    const struct sfk_relay_ops *r = d->relay.plugin.desc->ops;
    if (r->owns_source(d->relay.self, from, fromlen) &&
        !is_stun_binding(data, len)) {
      r->on_datagram(d->relay.self, from, fromlen, data, len);
      return;
    }
  }
  if (data[0] <= 3) {
    if (d->discovery.started) {
      const struct sfk_discovery_ops *o = d->discovery.plugin.desc->ops;
      o->on_datagram(d->discovery.self, from, fromlen, data, len);
    }
    return;
  }
  if (d->transport.started)
    sfk_transport(d)->on_datagram(d->transport.self, SFK_PATH_DIRECT, from,
                                  fromlen, data, len);
}

uint64_t sfk_daemon_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void sfk_daemon_republish(struct sfk_daemon *d) {
  char addr[SFK_ADDRSTR_MAX];
  const char *why = "";
  if (!d->registry.started)
    return;
  if (sfk_netstate_choose(&d->net, d->cfg.relay_mode, addr, sizeof addr,
                          &why) < 0)
    return;
  if (strcmp(addr, d->net.published) == 0)
    return;
  sfk_info(TAG, "publishing %s (%s)", addr, why);
  snprintf(d->net.published, sizeof d->net.published, "%s", addr);
  d->net.published_ns = sfk_daemon_now_ns();
  const struct sfk_registry_ops *r = d->registry.plugin.desc->ops;
  r->publish(d->registry.self, addr, d->ident.pub.pin);
}

/* ---- plugin instances --------------------------------------------------- */

static void instance_clear(struct sfk_instance *inst, struct sfk_daemon *d,
                           int kind) {
  memset(inst, 0, sizeof *inst);
  inst->d = d;
  inst->kind = kind;
}

/*
 * Load, check keys and create one instance.  Errors are reported at the
 * section's position.  Returns 0 or a negative errno.
 */
static int instance_create(struct sfk_daemon *d, struct sfk_instance *inst,
                           const struct sfk_plugin_conf *pc,
                           const char *section_name) {
  char err[1024];
  const struct sfk_cfg_node *sec = pc->section;
  const struct sfk_cfg_node *where = sec ? sfk_cfg_get(sec, "plugin") : NULL;
  snprintf(inst->tag, sizeof inst->tag, "%s.%s", sfk_kind_name(inst->kind),
           pc->name);
  inst->doc = d->cfg.doc;
  inst->section = sec;
  if (inst->kind == SFK_KIND_REGISTRY) {
    /* --api and --auth-key-file replace the registry's keys (SPEC). */
    if (d->ov.api_url)
      inst->ovr[inst->novr++] = (struct sfk_cfg_override){
          .key = "api_url", .value = d->ov.api_url, .option = "--api"};
    if (d->ov.auth_key_file)
      inst->ovr[inst->novr++] = (struct sfk_cfg_override){
          .key = "auth_key_file",
          .value = d->ov.auth_key_file,
          .option = "--auth-key-file"};
  }
  int rc = sfk_plugin_load(&inst->plugin, inst->kind, pc->name, err, sizeof err);
  if (rc < 0) {
    sfk_cfg_error(d->cfg.doc, where ? where : sec, "%s", err);
    return rc;
  }
  inst->base = inst->plugin.desc->ops;
  if (sec) {
    /* The plugin's keys, plus the ones the daemon owns in its section. */
    const char *keys[128];
    size_t n = 0;
    for (const char *const *k = inst->base->keys; k && *k && n < 125; k++)
      keys[n++] = *k;
    keys[n++] = "plugin";
    if (inst->kind == SFK_KIND_TRANSPORT)
      keys[n++] = "relay";
    if (inst->kind == SFK_KIND_RELAY)
      keys[n++] = "mode"; /* the site's policy: the daemon's to read */
    keys[n] = NULL;
    if (sfk_cfg_check_keys(d->cfg.doc, sec, section_name, keys, NULL))
      return -EINVAL;
  }
  for (unsigned i = 0; i < inst->novr; i++) {
    const char *const *k = inst->base->keys;
    while (k && *k && strcmp(*k, inst->ovr[i].key) != 0)
      k++;
    if (!k || !*k)
      sfk_warn(TAG, "%s is ignored: the %s plugin '%s' has no '%s'",
               inst->ovr[i].option, sfk_kind_name(inst->kind), pc->name,
               inst->ovr[i].key);
  }
  sfk_host_init(inst);
  unsigned before = sfk_cfg_errors(d->cfg.doc);
  rc = inst->base->create(&inst->host, sec, &inst->self);
  if (rc < 0 || sfk_cfg_errors(d->cfg.doc) != before) {
    if (rc >= 0 && inst->self) {
      inst->base->destroy(inst->self);
      inst->self = NULL;
    }
    if (sfk_cfg_errors(d->cfg.doc) == before)
      sfk_cfg_error(d->cfg.doc, where ? where : sec, "%s plugin: %s",
                    inst->tag, strerror(-rc));
    return rc < 0 ? rc : -EINVAL;
  }
  return 0;
}

static int instance_start(struct sfk_instance *inst) {
  if (!inst->self)
    return 0;
  int rc = inst->base->start(inst->self);
  if (rc < 0) {
    sfk_err(TAG, "%s failed to start: %s", inst->tag, strerror(-rc));
    return rc;
  }
  inst->started = 1;
  return 0;
}

static void instance_stop(struct sfk_instance *inst) {
  if (inst->started) {
    inst->base->stop(inst->self);
    inst->started = 0;
  }
}

static void instance_destroy(struct sfk_instance *inst) {
  if (inst->self)
    inst->base->destroy(inst->self);
  inst->self = NULL;
  if (inst->plugin.handle)
    sfk_plugin_unload(&inst->plugin);
}

/* ---- signals ------------------------------------------------------------ */

/* Config errors found on SIGHUP go through the log, so they follow
 * --log-format json like every other line: a FILE* whose writes are cut
 * into lines and logged at error level. */
struct errsink {
  char line[1024];
  size_t len;
};

static ssize_t errsink_write(void *cookie, const char *buf, size_t n) {
  struct errsink *e = cookie;
  for (size_t i = 0; i < n; i++) {
    if (buf[i] == '\n' || e->len == sizeof e->line - 1) {
      e->line[e->len] = '\0';
      if (e->len)
        sfk_err("config", "%s", e->line);
      e->len = 0;
      if (buf[i] == '\n')
        continue;
    }
    e->line[e->len++] = buf[i];
  }
  return (ssize_t)n;
}

static int errsink_close(void *cookie) {
  struct errsink *e = cookie;
  if (e->len) {
    e->line[e->len] = '\0';
    sfk_err("config", "%s", e->line);
  }
  return 0;
}

static FILE *log_errsink(struct errsink *es) {
  return fopencookie(es, "w",
                     (cookie_io_functions_t){.write = errsink_write,
                                             .close = errsink_close});
}

static int services_equal(const struct sfk_config *a,
                          const struct sfk_config *b) {
  if (a->nservices != b->nservices)
    return 0;
  for (unsigned i = 0; i < a->nservices; i++) {
    const struct sfk_service *x = &a->services[i], *y = &b->services[i];
    if (x->port_lo != y->port_lo || x->port_hi != y->port_hi ||
        x->hostlen != y->hostlen || memcmp(&x->host, &y->host, x->hostlen) ||
        x->all_peers != y->all_peers || x->npeers != y->npeers ||
        memcmp(x->peers, y->peers, x->npeers * sizeof x->peers[0]))
      return 0;
  }
  return 1;
}

/* Warn about every change that SIGHUP does not apply. */
static void reload_warn_restart(const struct sfk_config *o,
                                const struct sfk_config *n) {
  struct {
    int changed;
    const char *what;
  } c[] = {
      {o->pid != n->pid, "party.pid"},
      {strcmp(o->study_id, n->study_id) != 0, "party.study_id"},
      {o->net != n->net || o->prefix != n->prefix, "network"},
      {o->socks_listenlen != n->socks_listenlen ||
           memcmp(&o->socks_listen, &n->socks_listen, o->socks_listenlen),
       "socks.listen"},
      {strcmp(o->socks_username, n->socks_username) != 0 ||
           strcmp(o->socks_password_file, n->socks_password_file) != 0,
       "socks.username/password_file"},
      {o->udp_bindlen != n->udp_bindlen ||
           memcmp(&o->udp_bind, &n->udp_bind, o->udp_bindlen),
       "udp.bind"},
      {strcmp(o->key_file, n->key_file) != 0, "identity.key_file"},
      {strcmp(o->discovery.name, n->discovery.name) != 0, "discovery.plugin"},
      {strcmp(o->transport.name, n->transport.name) != 0, "transport.plugin"},
      {strcmp(o->relay.name, n->relay.name) != 0 ||
           o->relay_mode != n->relay_mode,
       "transport.relay"},
      {strcmp(o->registry.name, n->registry.name) != 0, "registry.plugin"},
      {!services_equal(o, n), "services"},
      {strcmp(o->control_socket, n->control_socket) != 0, "control.socket"},
  };
  for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
    if (c[i].changed)
      sfk_warn(TAG, "SIGHUP: %s changed; it takes effect only after a "
               "restart (the running value stays)", c[i].what);
}

/*
 * SIGHUP for one instance: check the new section's keys (the plugin's and
 * the daemon's own) and hand it to the plugin's reconfigure.  The
 * instance sees the new document during the call, so overrides from the
 * command line still replace its keys.  0, or -EINVAL / the plugin's
 * error (logged; the running settings stay, as `what` says).
 */
static int instance_reconfigure(struct sfk_instance *inst,
                                const struct sfk_config *nc,
                                const struct sfk_cfg_node *section,
                                const char *name, const char *what) {
  const struct sfk_cfg_doc *old = inst->doc;
  const struct sfk_cfg_node *old_sec = inst->section;
  const char *keys[128];
  size_t n = 0;
  int rc;

  for (const char *const *k = inst->base->keys; k && *k && n < 125; k++)
    keys[n++] = *k;
  keys[n++] = "plugin";
  if (inst->kind == SFK_KIND_RELAY)
    keys[n++] = "mode";
  keys[n] = NULL;
  inst->doc = nc->doc;
  inst->section = section;
  if (sfk_cfg_check_keys(nc->doc, section, name, keys, NULL) != 0) {
    sfk_err(TAG, "SIGHUP: the %s section has errors; keeping the running %s",
            name, what);
    rc = -EINVAL;
  } else if ((rc = inst->base->reconfigure(inst->self, section)) < 0) {
    sfk_err(TAG, "SIGHUP: %s rejected the new settings (%s); keeping the "
            "running %s", inst->tag, strerror(-rc), what);
  }
  inst->doc = old;
  inst->section = old_sec;
  return rc;
}

static void daemon_reload(struct sfk_daemon *d) {
  if (!d->config_path) {
    sfk_info(TAG, "SIGHUP: running on built-in defaults, nothing to re-read");
    return;
  }
  struct errsink es = {.len = 0};
  FILE *sink = log_errsink(&es);
  struct sfk_config nc;
  int rc = sfk_config_load(&nc, d->config_path, &d->ov, sink ? sink : stderr);
  if (rc < 0) {
    if (sink)
      fclose(sink);
    sfk_err(TAG, "SIGHUP: %s has errors; keeping the running config and "
            "peer list", d->config_path);
    sfk_config_free(&nc);
    return;
  }
  sfk_log_setup(d->ov.log_level >= 0 ? d->ov.log_level : nc.log_level,
                d->ov.log_format >= 0 ? d->ov.log_format : nc.log_format);
  reload_warn_restart(&d->cfg, &nc);
  struct sfk_instance *reg = &d->registry;
  const struct sfk_registry_ops *r = reg->plugin.desc->ops;
  int reread = 0;
  if (strcmp(nc.registry.name, d->cfg.registry.name) != 0) {
    /* warned above; the running registry goes on as it was */
  } else if (reg->base->reconfigure && nc.registry.section) {
    reread = instance_reconfigure(reg, &nc, nc.registry.section, "registry",
                                  "registry settings and peer list") == 0;
  } else {
    r->refresh(reg->self, SFK_PID_NONE);
    reread = 1;
  }
  /* The relay takes new credentials or a new server (a site that fixed
   * its password file); its plugin and mode need a restart (warned). */
  if (d->relay.started && d->relay.base->reconfigure && nc.relay.section &&
      strcmp(nc.relay.name, d->cfg.relay.name) == 0 &&
      instance_reconfigure(&d->relay, &nc, nc.relay.section,
                           "transport.relay", "relay settings") == 0)
    sfk_info(TAG, "SIGHUP: relay settings re-read");
  if (sink)
    fclose(sink);
  sfk_config_free(&nc);
  if (reread)
    sfk_info(TAG, "SIGHUP: re-reading the peer list");
}

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents) {
  struct sfk_daemon *d = w->data;
  (void)revents;
  if (w->signum == SIGHUP) {
    daemon_reload(d);
    return;
  }
  sfk_info(TAG, "%s received; stopping", w->signum == SIGINT ? "SIGINT"
                                                             : "SIGTERM");
  sfk_daemon_stop(d);
  ev_break(loop, EVBREAK_ALL);
}

/* ---- lifetime ------------------------------------------------------------ */

/* --check-config: an existing key file must load (mode, format) as it
 * would at start; a missing one is created at start, so only say so. */
static void check_identity(struct sfk_daemon *d) {
  struct stat st;
  const struct sfk_cfg_node *sec =
      sfk_cfg_get(sfk_cfg_root(d->cfg.doc), "identity");
  const struct sfk_cfg_node *kn = sfk_cfg_get(sec, "key_file");
  if (stat(d->cfg.key_file, &st) < 0) {
    if (errno != ENOENT)
      sfk_cfg_error(d->cfg.doc, kn ? kn : sec, "identity key %s: %s",
                    d->cfg.key_file, strerror(errno));
    return;
  }
  struct sfk_ident id;
  char err[512];
  int created = 0;
  if (sfk_ident_load(&id, d->cfg.key_file, &created, err, sizeof err) < 0) {
    sfk_cfg_error(d->cfg.doc, kn ? kn : sec, "%s", err);
    return;
  }
  sfk_ident_free(&id);
}

/* What daemon_init prepares: everything (run), everything without
 * touching the identity (--check-config), or the config and the
 * discovery instance only (netcheck). */
enum { INIT_RUN = 0, INIT_CHECK = 1, INIT_DISCOVERY = 2 };

static int daemon_init(struct sfk_daemon *d, struct ev_loop *loop,
                       const char *config_path, const struct sfk_overrides *ov,
                       int mode, FILE *errs) {
  memset(d, 0, sizeof *d);
  d->loop = loop;
  d->config_path = config_path;
  d->ov = *ov;
  d->udp.fd = -1;
  d->socks.fd = -1;
  sfk_peers_init(&d->peers);
  sfk_netstate_init(&d->net);
  d->started_ns = sfk_daemon_now_ns();
  instance_clear(&d->transport, d, SFK_KIND_TRANSPORT);
  instance_clear(&d->relay, d, SFK_KIND_RELAY);
  instance_clear(&d->discovery, d, SFK_KIND_DISCOVERY);
  instance_clear(&d->registry, d, SFK_KIND_REGISTRY);

  int rc = sfk_config_load(&d->cfg, config_path, ov, errs);
  if (rc < 0 && !d->cfg.doc)
    return rc;
  int bad = rc < 0;
  sfk_log_setup(d->cfg.log_level, d->cfg.log_format);

  if (mode == INIT_CHECK && !bad)
    check_identity(d);
  if (mode == INIT_RUN && !bad) {
    char err[512];
    int created = 0;
    rc = sfk_ident_load(&d->ident, d->cfg.key_file, &created, err, sizeof err);
    if (rc < 0) {
      sfk_err(TAG, "identity: %s", err);
      return rc;
    }
    if (created)
      sfk_info(TAG, "created a new identity key in %s", d->cfg.key_file);
  }

  /* Create every plugin, even after errors, so one run reports them all. */
  struct {
    struct sfk_instance *inst;
    const struct sfk_plugin_conf *pc;
    const char *section;
  } order[] = {
      {&d->transport, &d->cfg.transport, "transport"},
      {&d->relay, &d->cfg.relay, "transport.relay"},
      {&d->discovery, &d->cfg.discovery, "discovery"},
      {&d->registry, &d->cfg.registry, "registry"},
  };
  for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
    if (!order[i].pc->name[0])
      continue; /* optional and absent (relay) */
    if (mode == INIT_DISCOVERY && order[i].inst != &d->discovery)
      continue;
    if (instance_create(d, order[i].inst, order[i].pc, order[i].section) < 0)
      bad = 1;
  }
  if (bad || sfk_cfg_errors(d->cfg.doc))
    return -EINVAL;
  return 0;
}

int sfk_daemon_init(struct sfk_daemon *d, struct ev_loop *loop,
                    const char *config_path, const struct sfk_overrides *ov,
                    int check_only) {
  /* With --log-format json every line is JSON, config errors too;
   * --check-config keeps the documented FILE:LINE:COLUMN form. */
  struct errsink es = {.len = 0};
  FILE *sink = NULL;
  if (!check_only && ov->log_format == SFK_LOGFMT_JSON) {
    sfk_log_setup(-1, SFK_LOGFMT_JSON);
    sink = log_errsink(&es);
  }
  int rc = daemon_init(d, loop, config_path, ov,
                       check_only ? INIT_CHECK : INIT_RUN, sink ? sink : stderr);
  if (sink) {
    if (d->cfg.doc)
      sfk_cfg_doc_set_sink(d->cfg.doc, stderr); /* the cookie is gone */
    fclose(sink);
  }
  return rc;
}

int sfk_daemon_init_discovery(struct sfk_daemon *d, struct ev_loop *loop,
                              const char *config_path,
                              const struct sfk_overrides *ov) {
  return daemon_init(d, loop, config_path, ov, INIT_DISCOVERY, stderr);
}

/* Each bridged connection holds a descriptor on each side; the usual
 * soft limit (1024) would cap a party at about a thousand connections
 * although the hard limit allows far more.  Take what is allowed. */
static void daemon_raise_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
    return;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
      getrlimit(RLIMIT_NOFILE, &rl);
  }
  if (rl.rlim_cur == RLIM_INFINITY)
    sfk_info(TAG, "open files: no limit");
  else
    sfk_info(TAG, "open files: up to %llu (ulimit -n)",
             (unsigned long long)rl.rlim_cur);
}

int sfk_daemon_start(struct sfk_daemon *d) {
  char ua[SFK_ADDRSTR_MAX], sa[SFK_ADDRSTR_MAX];
  int rc;
  daemon_raise_nofile();
  d->scratch = malloc(SFK_SCRATCH);
  if (!d->scratch)
    return -ENOMEM;
  rc = sfk_resolver_init(&d->resolver, d->loop);
  if (rc < 0)
    return rc;
  rc = sfk_udp_open(&d->udp, d->loop, (struct sockaddr *)&d->cfg.udp_bind,
                    d->cfg.udp_bindlen, daemon_on_udp, d);
  if (rc < 0)
    return rc;
  rc = sfk_socks_open(&d->socks, d);
  if (rc < 0)
    return rc;
  rc = sfk_control_open(&d->control, d);
  if (rc < 0)
    return rc;

  ev_signal_init(&d->sig_term, signal_cb, SIGTERM);
  ev_signal_init(&d->sig_int, signal_cb, SIGINT);
  ev_signal_init(&d->sig_hup, signal_cb, SIGHUP);
  d->sig_term.data = d->sig_int.data = d->sig_hup.data = d;
  ev_signal_start(d->loop, &d->sig_term);
  ev_signal_start(d->loop, &d->sig_int);
  ev_signal_start(d->loop, &d->sig_hup);
  signal(SIGPIPE, SIG_IGN);
  sfk_bridge_start(d);

  /* Transport first (it must see the peers the registry reports), the
   * registry last (it publishes what discovery found). */
  if ((rc = instance_start(&d->transport)) < 0 ||
      /* 'never': the site's policy forbids relays, so the relay is not
       * even contacted (no allocation, no credentials sent). */
      (d->cfg.relay_mode != SFK_RELAY_NEVER &&
       (rc = instance_start(&d->relay)) < 0) ||
      (rc = instance_start(&d->discovery)) < 0 ||
      (rc = instance_start(&d->registry)) < 0)
    return rc;
  sfk_daemon_republish(d);

  struct sockaddr_storage sl;
  socklen_t sll = sizeof sl;
  getsockname(d->socks.fd, (struct sockaddr *)&sl, &sll);
  sfk_info(TAG, "ready: pid %u socks %s udp %s pin %s", d->cfg.pid,
           sfk_addr_str((struct sockaddr *)&sl, sa, sizeof sa),
           sfk_addr_str((struct sockaddr *)&d->udp.local, ua, sizeof ua),
           d->ident.pub.pin);
  return 0;
}

void sfk_daemon_stop(struct sfk_daemon *d) {
  sfk_control_close(&d->control);
  sfk_socks_close(&d->socks);
  /* Bridges reset their streams; then the transport closes connections
   * (CONNECTION_CLOSE) while the UDP socket is still open. */
  sfk_bridge_close_all(d);
  sfk_bridge_stop(d);
  sfk_splice_close_all(d);
  instance_stop(&d->registry);
  instance_stop(&d->discovery);
  instance_stop(&d->transport);
  instance_stop(&d->relay);
  ev_signal_stop(d->loop, &d->sig_term);
  ev_signal_stop(d->loop, &d->sig_int);
  ev_signal_stop(d->loop, &d->sig_hup);
  if (d->udp.fd >= 0)
    sfk_udp_close(&d->udp, d->loop);
}

void sfk_daemon_free(struct sfk_daemon *d) {
  sfk_resolver_free(&d->resolver);
  instance_destroy(&d->registry);
  instance_destroy(&d->discovery);
  instance_destroy(&d->relay);
  instance_destroy(&d->transport);
  if (d->udp.rbuf)
    sfk_udp_close(&d->udp, d->loop);
  sfk_peers_free(&d->peers);
  sfk_ident_free(&d->ident);
  sfk_config_free(&d->cfg);
  free(d->scratch);
  d->scratch = NULL;
}
