/*
 * `sfkit-proxy netcheck`: probe the NAT in front of this host with the
 * configured STUN servers (RFC 5780 style, through the discovery
 * plugin's probe op) and say whether direct connections can work.
 *
 * It needs no running daemon and opens no SOCKS port: it loads the
 * config and only the discovery plugin, opens a UDP socket on
 * udp.bind's address with port 0 (the daemon may hold the configured
 * port; the NAT's behaviour does not depend on it), and runs the loop
 * until the probe reports or a deadline passes.
 */
#include "autoconfig.h"

#include "netcheck.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "daemon.h"
#include "log.h"
#include "netstate.h"
#include "util.h"

#define TAG "netcheck"
/* Longer than the slowest probe (every step timing out at the default
 * RTO is about 30 s). */
#define DEADLINE_S 60.

struct nc {
  struct sfk_daemon *d;
  const struct sfk_discovery_ops *ops;
  int done;
  struct sfk_probe_result r; /* copied from the callback */
  ev_timer deadline;
};

/* Only STUN (first byte 0-3) matters here; QUIC cannot arrive on a
 * fresh socket nobody knows. */
static void nc_on_udp(void *arg, const struct sockaddr *from, socklen_t fromlen,
                      const uint8_t *data, size_t len) {
  struct nc *c = arg;
  if (len && data[0] <= 3 && !c->done)
    c->ops->on_datagram(c->d->discovery.self, from, fromlen, data, len);
}

static void nc_probe_cb(void *arg, const struct sfk_probe_result *r) {
  struct nc *c = arg;
  c->r = *r;
  c->done = 1;
  ev_break(c->d->loop, EVBREAK_ALL);
}

static void nc_deadline_cb(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)w;
  (void)revents;
  ev_break(loop, EVBREAK_ALL);
}

/* A JSON string literal of s into f. */
static void json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\')
      fprintf(f, "\\%c", ch);
    else if (ch < 0x20)
      fprintf(f, "\\u%04x", ch);
    else
      fputc(ch, f);
  }
  fputc('"', f);
}

static const char *verdict(const struct sfk_probe_result *r, int code) {
  switch (code) {
  case SFK_NETCHECK_DIRECT:
    return "direct connections are expected to work";
  case SFK_NETCHECK_RELAY:
    return "the NAT maps each destination differently: peers cannot punch "
           "through it; configure transport.relay (TURN) or run on a "
           "network with an endpoint-independent NAT";
  case SFK_NETCHECK_UNKNOWN:
    return "only one vantage point answered: add a second STUN server (or "
           "one that supports RFC 5780) to learn the mapping behaviour";
  default:
    (void)r;
    return "no STUN server answered: check that outgoing UDP to the "
           "servers is allowed and the names resolve";
  }
}

static int exit_code(const struct sfk_probe_result *r) {
  if (r->err < 0)
    return SFK_NETCHECK_NO_ANSWER;
  if (r->direct_expected)
    return SFK_NETCHECK_DIRECT;
  if (r->mapping == SFK_NAT_UNKNOWN)
    return SFK_NETCHECK_UNKNOWN;
  return SFK_NETCHECK_RELAY;
}

static void print_text(const struct sfk_probe_result *r, int code) {
  char a[SFK_ADDRSTR_MAX], b[SFK_ADDRSTR_MAX];
  printf("local address:  %s\n",
         r->locallen
             ? sfk_addr_str((const struct sockaddr *)&r->local, a, sizeof a)
             : "(unknown)");
  for (size_t i = 0; i < r->nobs; i++) {
    const struct sfk_probe_obs *o = &r->obs[i];
    const char *to =
        o->server_addrlen
            ? sfk_addr_str((const struct sockaddr *)&o->server_addr, a,
                           sizeof a)
            : "unresolved";
    if (o->mapped.ss_family)
      printf("%s (%s): mapped %s in %.2f ms\n", o->server, to,
             sfk_addr_str((const struct sockaddr *)&o->mapped, b, sizeof b),
             (double)o->rtt_us / 1000.);
    else
      printf("%s (%s): no answer\n", o->server, to);
  }
  printf("mapping:        %s\n", sfk_nat_str(r->mapping));
  printf("filtering:      %s\n", sfk_nat_str(r->filtering));
  printf("summary:        %s\n", r->summary);
  printf("verdict:        %s\n", verdict(r, code));
}

static void print_json(const struct sfk_probe_result *r, int code) {
  char a[SFK_ADDRSTR_MAX];
  printf("{\"local\":");
  json_str(stdout,
           r->locallen
               ? sfk_addr_str((const struct sockaddr *)&r->local, a, sizeof a)
               : "");
  printf(",\"mapping\":\"%s\",\"filtering\":\"%s\",\"direct_expected\":%s,"
         "\"exit_status\":%d,\"observations\":[",
         sfk_nat_str(r->mapping), sfk_nat_str(r->filtering),
         r->direct_expected ? "true" : "false", code);
  for (size_t i = 0; i < r->nobs; i++) {
    const struct sfk_probe_obs *o = &r->obs[i];
    printf("%s{\"server\":", i ? "," : "");
    json_str(stdout, o->server);
    printf(",\"server_addr\":");
    if (o->server_addrlen)
      json_str(stdout, sfk_addr_str((const struct sockaddr *)&o->server_addr, a,
                                    sizeof a));
    else
      printf("null");
    printf(",\"mapped\":");
    if (o->mapped.ss_family) {
      json_str(stdout,
               sfk_addr_str((const struct sockaddr *)&o->mapped, a, sizeof a));
      printf(",\"rtt_ms\":%.3f}", (double)o->rtt_us / 1000.);
    } else {
      printf("null,\"rtt_ms\":null}");
    }
  }
  printf("],\"summary\":");
  json_str(stdout, r->summary);
  printf(",\"verdict\":");
  json_str(stdout, verdict(r, code));
  printf("}\n");
}

int sfk_netcheck_run(const char *config_path, const struct sfk_overrides *ov,
                     int json) {
  struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO);
  if (!loop) {
    fprintf(stderr, "sfkit-proxy netcheck: cannot initialise the event loop\n");
    return SFK_NETCHECK_ERROR;
  }
  struct sfk_daemon d;
  int rc = sfk_daemon_init_discovery(&d, loop, config_path, ov);
  if (rc < 0) {
    sfk_daemon_free(&d);
    return rc == -EINVAL || rc == -ENOENT ? SFK_NETCHECK_USAGE
                                          : SFK_NETCHECK_ERROR;
  }
  /* Progress messages would mix with the report: warnings only, unless
   * asked for more with -v (ov->log_level). */
  sfk_log_setup(ov->log_level >= 0 ? ov->log_level : SFK_LOG_WARN, -1);
  struct nc c = {.d = &d, .ops = d.discovery.plugin.desc->ops};
  if (!c.ops->probe) {
    fprintf(stderr,
            "sfkit-proxy netcheck: discovery plugin '%s' cannot probe the "
            "NAT; configure 'discovery: plugin: stun' with servers\n",
            d.cfg.discovery.name);
    sfk_daemon_free(&d);
    return SFK_NETCHECK_USAGE;
  }
  int code = SFK_NETCHECK_ERROR;
  struct sockaddr_storage bind = d.cfg.udp_bind;
  if (bind.ss_family == AF_INET)
    ((struct sockaddr_in *)&bind)->sin_port = 0;
  else
    ((struct sockaddr_in6 *)&bind)->sin6_port = 0;
  rc = sfk_resolver_init(&d.resolver, loop);
  if (rc == 0)
    rc = sfk_udp_open(&d.udp, loop, (struct sockaddr *)&bind, d.cfg.udp_bindlen,
                      nc_on_udp, &c);
  if (rc < 0)
    goto out;
  rc = c.ops->probe(d.discovery.self, nc_probe_cb, &c);
  if (rc < 0) {
    sfk_err(TAG, "the probe did not start: %s", strerror(-rc));
    goto out;
  }
  if (!c.done) {
    ev_timer_init(&c.deadline, nc_deadline_cb, DEADLINE_S, 0.);
    ev_timer_start(loop, &c.deadline);
    ev_run(loop, 0);
    ev_timer_stop(loop, &c.deadline);
  }
  /* stop() cancels the probe's timers and resolutions. */
  c.ops->base.stop(d.discovery.self);
  if (!c.done) {
    memset(&c.r, 0, sizeof c.r);
    c.r.err = -ETIMEDOUT;
    snprintf(c.r.summary, sizeof c.r.summary,
             "the probe did not finish within %.0f s", DEADLINE_S);
  }
  code = exit_code(&c.r);
  if (json)
    print_json(&c.r, code);
  else
    print_text(&c.r, code);
out:
  if (d.udp.fd >= 0)
    sfk_udp_close(&d.udp, loop);
  sfk_daemon_free(&d);
  return code;
}
