/*
 * The status tree from the daemon's state.  Ages are whole seconds on the
 * monotonic clock, so a wall-clock jump never shows a negative age.
 */
#include "autoconfig.h"

#include "status.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "netstate.h"
#include "peers.h"
#include "report.h"
#include "util.h"

static int64_t age_s(uint64_t now, uint64_t then) {
  return then && now > then ? (int64_t)((now - then) / 1000000000u) : 0;
}

static void addr_str(struct sfk_report *r, const char *key,
                     const struct sockaddr_storage *ss, socklen_t len) {
  char b[SFK_ADDRSTR_MAX];
  if (!len || !ss->ss_family)
    return;
  r->str(r, key, sfk_addr_str((const struct sockaddr *)ss, b, sizeof b));
}

/* "error" and the errno text, or nothing for err 0. */
static void error_str(struct sfk_report *r, int err) {
  if (err)
    r->str(r, "error", strerror(err < 0 ? -err : err));
}

static void report_daemon(struct sfk_daemon *d, struct sfk_report *r,
                          uint64_t now) {
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  r->begin(r, "daemon", 0);
  r->num(r, "pid", d->cfg.pid);
  r->str(r, "study_id", d->cfg.study_id);
  r->str(r, "version", PACKAGE_VERSION);
  r->num(r, "process_id", (int64_t)getpid());
  r->num(r, "uptime_s", age_s(now, d->started_ns));
  r->str(r, "pin", d->ident.pub.pin);
  if (d->socks.fd >= 0 &&
      getsockname(d->socks.fd, (struct sockaddr *)&ss, &sl) == 0)
    addr_str(r, "socks", &ss, sl);
  else
    addr_str(r, "socks", &d->cfg.socks_listen, d->cfg.socks_listenlen);
  /* Whether auth is on, never the credentials. */
  r->str(r, "socks_auth",
         d->cfg.socks_username[0] ? "username/password" : "none");
  if (d->udp.fd >= 0)
    addr_str(r, "udp", &d->udp.local, d->udp.locallen);
  r->str(r, "relay_mode", sfk_relay_mode_str(d->cfg.relay_mode));
  r->num(r, "connections", (int64_t)d->nbridges);
  r->end(r);
}

static void report_mapping(struct sfk_daemon *d, struct sfk_report *r,
                           uint64_t now) {
  const struct sfk_netstate *ns = &d->net;
  if (!ns->mappinglen) {
    r->str(r, "mapping", "none");
    return;
  }
  r->begin(r, "mapping", 0);
  addr_str(r, "address", &ns->mapping, ns->mappinglen);
  /* No server: discovery "none" reports the bound address itself. */
  r->str(r, "server",
         ns->mapping_server[0] ? ns->mapping_server : "(bound address)");
  r->num(r, "age_s", age_s(now, ns->mapping_ns));
  r->end(r);
}

static void report_nat(struct sfk_daemon *d, struct sfk_report *r) {
  const struct sfk_netstate *ns = &d->net;
  if (!ns->nat_known) {
    r->str(r, "nat", "unknown");
    return;
  }
  r->begin(r, "nat", 0);
  r->str(r, "mapping", sfk_nat_str(ns->nat.mapping));
  r->str(r, "filtering", sfk_nat_str(ns->nat.filtering));
  r->str(r, "direct_expected", ns->nat.direct_expected ? "yes" : "no");
  error_str(r, ns->nat.err);
  if (ns->nat.summary[0])
    r->str(r, "summary", ns->nat.summary);
  r->end(r);
}

static void report_relay(struct sfk_daemon *d, struct sfk_report *r) {
  const struct sfk_netstate *ns = &d->net;
  if (!d->relay.self) {
    r->str(r, "relay", "not configured");
    return;
  }
  r->begin(r, "relay", 0);
  r->str(r, "mode", sfk_relay_mode_str(d->cfg.relay_mode));
  if (d->cfg.relay_mode == SFK_RELAY_NEVER) {
    r->str(r, "state", "off");
    r->str(r, "why", "relay mode 'never' (site policy): the relay is not "
                     "contacted and no peer is relayed");
  } else if (ns->relayedlen) {
    r->str(r, "state", "allocated");
    addr_str(r, "address", &ns->relayed, ns->relayedlen);
  } else {
    r->str(r, "state",
           ns->relay_err || ns->relay_why[0] ? "unavailable" : "pending");
    error_str(r, ns->relay_err);
    if (ns->relay_why[0])
      r->str(r, "why", ns->relay_why);
  }
  r->end(r);
}

static void report_outcome(struct sfk_report *r, const char *key,
                           const struct sfk_reg_outcome *o, uint64_t now) {
  if (!o->done) {
    r->str(r, key, "pending");
    return;
  }
  r->begin(r, key, 0);
  r->str(r, "result", o->err ? "error" : "ok");
  error_str(r, o->err);
  if (o->why[0])
    r->str(r, "why", o->why);
  r->num(r, "age_s", age_s(now, o->at_ns));
  r->end(r);
}

static void report_registry(struct sfk_daemon *d, struct sfk_report *r,
                            uint64_t now) {
  const struct sfk_netstate *ns = &d->net;
  r->begin(r, "registry", 0);
  r->str(r, "plugin", d->cfg.registry.name);
  if (ns->published[0]) {
    r->str(r, "published", ns->published);
    r->num(r, "published_age_s", age_s(now, ns->published_ns));
  } else {
    r->str(r, "published", "nothing yet");
  }
  report_outcome(r, "publish", &ns->publish, now);
  report_outcome(r, "read", &ns->read, now);
  r->end(r);
}

static void report_peer(struct sfk_daemon *d, struct sfk_report *r, size_t i,
                        uint64_t now) {
  const struct sfk_peer *p = &d->peers.v[i];
  const struct sfk_peer_live *lv = &d->peers.lv[i];
  char va[32];
  uint32_t pid = p->pid;
  r->begin(r, NULL, 0);
  r->num(r, "pid", pid);
  r->str(r, "vaddr", sfk_config_vaddr_str(&d->cfg, pid, va, sizeof va));
  if (sfk_peer_is_unknown(p)) {
    r->str(r, "state", "unknown"); /* a participant not published yet */
  } else {
    /* Published, but the transport has said nothing yet: idle. */
    int st = lv->state == SFK_PEER_UNKNOWN ? SFK_PEER_IDLE : lv->state;
    r->str(r, "state", sfk_peer_state_str(st));
    if (p->addrlen)
      addr_str(r, "published", &p->addr, p->addrlen);
    else
      r->str(r, "published", "none");
    r->str(r, "pin", p->pin[0] ? p->pin : "none");
    if (lv->state == SFK_PEER_UP || lv->state == SFK_PEER_CONNECTING) {
      r->str(r, "path", sfk_path_str(lv->path));
      addr_str(r, "address", &lv->addr, lv->addrlen);
      if (lv->state == SFK_PEER_UP && lv->why[0])
        r->str(r, "path_why", lv->why);
    }
    if (lv->since_ns)
      r->num(r, "since_s", age_s(now, lv->since_ns));
    if (lv->state == SFK_PEER_DOWN || lv->state == SFK_PEER_CONNECTING) {
      error_str(r, lv->err);
      if (lv->why[0])
        r->str(r, "why", lv->why);
    }
  }
  const struct sfk_transport_ops *t =
      d->transport.started ? sfk_transport(d) : NULL;
  if (t && t->peer_report) {
    struct sfk_report_guard g;
    sfk_report_guard_init(&g, r);
    t->peer_report(d->transport.self, pid, &g.r);
    sfk_report_guard_close(&g);
  }
  r->end(r);
}

static void report_plugin(struct sfk_instance *inst, struct sfk_report *r) {
  if (!inst->started || !inst->base || !inst->base->report)
    return;
  struct sfk_report_guard g;
  r->begin(r, inst->tag, 0);
  sfk_report_guard_init(&g, r);
  inst->base->report(inst->self, &g.r);
  sfk_report_guard_close(&g);
  r->end(r);
}

void sfk_status_report(struct sfk_daemon *d, struct sfk_report *r) {
  uint64_t now = sfk_daemon_now_ns();
  report_daemon(d, r, now);
  report_mapping(d, r, now);
  report_nat(d, r);
  report_relay(d, r);
  report_registry(d, r, now);
  r->begin(r, "peers", 1);
  /* Bounds re-checked each time: the table is the daemon's, and nothing
   * here should change it, but a plugin's peer_report runs in between. */
  for (size_t i = 0; i < d->peers.n; i++)
    report_peer(d, r, i, now);
  r->end(r);
  report_plugin(&d->transport, r);
  report_plugin(&d->relay, r);
  report_plugin(&d->discovery, r);
  report_plugin(&d->registry, r);
}

char *sfk_status_render(struct sfk_daemon *d, int format, size_t max,
                        size_t *len) {
  struct sfk_report_buf rb;
  if (sfk_report_buf_init(&rb, format, max) < 0)
    return NULL;
  sfk_status_report(d, sfk_report_buf_emitter(&rb));
  return sfk_report_buf_take(&rb, len);
}
