/*
 * Unit tests for the status tree (src/ctl/status.c) on a hand-built daemon
 * state: every section, every peer state, fake plugins that report (and
 * misbehave), and no secret in the output.
 */
#include "autoconfig.h"

#include "daemon.h"
#include "report.h"
#include "status.h"
#include "tap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

static void set_addr(struct sockaddr_storage *ss, socklen_t *len,
                     const char *ip, uint16_t port) {
  struct sockaddr_in *in = (struct sockaddr_in *)ss;
  memset(ss, 0, sizeof *ss);
  in->sin_family = AF_INET;
  in->sin_port = htons(port);
  inet_pton(AF_INET, ip, &in->sin_addr);
  *len = sizeof *in;
}

/* A transport whose reports leave levels open and close too many. */
static void fake_report(void *self, struct sfk_report *r) {
  (void)self;
  r->num(r, "connections", 2);
  r->begin(r, "left_open", 1);
  r->str(r, NULL, "x");
}

static void fake_peer_report(void *self, uint32_t pid, struct sfk_report *r) {
  (void)self;
  r->num(r, "rtt_us", 1000 + pid);
  r->num(r, "tx_bytes", 5);
  r->end(r); /* not ours to close */
  r->end(r);
}

static const struct sfk_transport_ops fake_ops = {
    .base = {.report = fake_report},
    .peer_report = fake_peer_report,
};
static const struct sfk_plugin_desc fake_desc = {.ops = &fake_ops};

static const struct sfk_registry_ops reg_ops = {.base = {.report = NULL}};
static const struct sfk_plugin_desc reg_desc = {.ops = &reg_ops};

static char *render(struct sfk_daemon *d, int fmt) {
  size_t len = 0;
  char *s = sfk_status_render(d, fmt, 0, &len);
  if (!s) {
    printf("Bail out! out of memory\n");
    exit(1);
  }
  return s;
}

int main(void) {
  static struct sfk_daemon d; /* large: not on the stack */
  memset(&d, 0, sizeof d);
  d.cfg.pid = 1;
  snprintf(d.cfg.study_id, sizeof d.cfg.study_id, "study\"1");
  d.cfg.net = 0x0a000000;
  d.cfg.prefix = 24;
  d.cfg.relay_mode = SFK_RELAY_AUTO;
  snprintf(d.cfg.registry.name, sizeof d.cfg.registry.name, "sfkit");
  snprintf(d.cfg.socks_username, sizeof d.cfg.socks_username, "alice");
  snprintf(d.socks.password, sizeof d.socks.password, "hunter2-secret");
  set_addr(&d.cfg.socks_listen, &d.cfg.socks_listenlen, "127.0.0.1", 1080);
  d.socks.fd = -1;
  d.udp.fd = -1;
  memset(d.ident.pub.pin, 'a', SFK_PIN_LEN);
  d.started_ns = sfk_daemon_now_ns() - 3000000000ull;

  /* Peers: 0 up (direct), 2 down, 3 not published, 4 published, silent. */
  struct sfk_peer pl[4];
  memset(pl, 0, sizeof pl);
  pl[0].pid = 0;
  set_addr(&pl[0].addr, &pl[0].addrlen, "192.0.2.10", 40000);
  memset(pl[0].pin, 'b', SFK_PIN_LEN);
  pl[1].pid = 2;
  set_addr(&pl[1].addr, &pl[1].addrlen, "192.0.2.12", 40002);
  memset(pl[1].pin, 'c', SFK_PIN_LEN);
  pl[2].pid = 3;
  pl[3].pid = 4;
  set_addr(&pl[3].addr, &pl[3].addrlen, "192.0.2.14", 40004);
  memset(pl[3].pin, 'd', SFK_PIN_LEN);
  if (sfk_peers_set(&d.peers, 1, pl, 4) < 0) {
    printf("Bail out! out of memory\n");
    return 1;
  }
  struct sfk_peer_live *lv = sfk_peers_live(&d.peers, 0);
  lv->state = SFK_PEER_UP;
  lv->path = SFK_PATH_DIRECT;
  set_addr(&lv->addr, &lv->addrlen, "192.0.2.10", 40000);
  lv->since_ns = sfk_daemon_now_ns() - 2000000000ull;
  lv = sfk_peers_live(&d.peers, 2);
  lv->state = SFK_PEER_DOWN;
  lv->err = -ETIMEDOUT;
  snprintf(lv->why, sizeof lv->why, "handshake timed out\x1b[2J");
  lv->since_ns = sfk_daemon_now_ns();

  /* Nothing known yet. */
  char *s = render(&d, SFK_REPORT_JSON);
  ok(strstr(s, "\"mapping\":\"none\"") != NULL, "no mapping: none");
  ok(strstr(s, "\"nat\":\"unknown\"") != NULL, "no probe: nat unknown");
  ok(strstr(s, "\"relay\":\"not configured\"") != NULL, "no relay");
  ok(strstr(s, "\"publish\":\"pending\",\"read\":\"pending\"") != NULL,
     "registry outcomes pending");
  ok(strstr(s, "\"published\":\"nothing yet\"") != NULL, "nothing published");
  ok(strstr(s, "\"peers\":[]") == NULL, "peers listed");
  free(s);

  /* Everything known. */
  set_addr(&d.net.mapping, &d.net.mappinglen, "203.0.113.5", 61000);
  snprintf(d.net.mapping_server, sizeof d.net.mapping_server,
           "stun:stun.example.org:3478");
  d.net.mapping_ns = sfk_daemon_now_ns();
  d.net.nat_known = 1;
  d.net.nat.mapping = SFK_NAT_ADDRESS_PORT_DEPENDENT;
  d.net.nat.filtering = SFK_NAT_ENDPOINT_INDEPENDENT;
  snprintf(d.net.nat.summary, sizeof d.net.nat.summary, "symmetric");
  d.relay.self = &d; /* configured, no allocation yet */
  d.net.relay_err = -EACCES;
  snprintf(d.net.relay_why, sizeof d.net.relay_why, "401 from TURN");
  d.net.publish.done = 1;
  d.net.publish.err = -EINVAL;
  snprintf(d.net.publish.why, sizeof d.net.publish.why, "HTTP 400");
  d.net.read.done = 1;
  snprintf(d.net.published, sizeof d.net.published, "198.51.100.7:3478");
  d.net.published_ns = sfk_daemon_now_ns();
  d.transport.plugin.desc = &fake_desc;
  d.transport.base = &fake_ops.base;
  d.transport.self = &d;
  d.transport.started = 1;
  snprintf(d.transport.tag, sizeof d.transport.tag, "transport.fake");
  d.registry.plugin.desc = &reg_desc;
  d.registry.base = &reg_ops.base;
  d.registry.self = &d;
  d.registry.started = 1;
  snprintf(d.registry.tag, sizeof d.registry.tag, "registry.sfkit");

  s = render(&d, SFK_REPORT_JSON);
  ok(strstr(s, "\"study_id\":\"study\\\"1\"") != NULL, "study id escaped");
  ok(strstr(s, "\"uptime_s\":3") != NULL, "uptime in seconds");
  ok(strstr(s, "\"socks\":\"127.0.0.1:1080\",\"socks_auth\":"
               "\"username/password\"") != NULL,
     "socks address from the config while not listening; auth on");
  ok(strstr(s, "hunter2") == NULL && strstr(s, "alice") == NULL,
     "no SOCKS credentials");
  ok(strstr(s, "\"relay_mode\":\"auto\"") != NULL, "relay mode");
  ok(strstr(s, "\"mapping\":{\"address\":\"203.0.113.5:61000\",\"server\":"
               "\"stun:stun.example.org:3478\",\"age_s\":0}") != NULL,
     "mapping with server and age");
  ok(strstr(s, "\"nat\":{\"mapping\":\"address-and-port-dependent\","
               "\"filtering\":\"endpoint-independent\"") != NULL,
     "nat behaviour by name");
  ok(strstr(s, "\"relay\":{\"mode\":\"auto\",\"state\":\"unavailable\","
               "\"error\":\"Permission denied\",\"why\":\"401 from TURN\"}") !=
         NULL,
     "relay error and why");
  ok(strstr(s, "\"publish\":{\"result\":\"error\",\"error\":\"Invalid "
               "argument\",\"why\":\"HTTP 400\",\"age_s\":") != NULL,
     "publish error");
  ok(strstr(s, "\"read\":{\"result\":\"ok\",\"age_s\":") != NULL, "read ok");
  ok(strstr(s, "{\"pid\":0,\"vaddr\":\"10.0.0.0\",\"state\":\"up\","
               "\"published\":\"192.0.2.10:40000\",\"pin\":\"bbbb") != NULL,
     "peer 0 up, published address and pin");
  ok(strstr(s, "\"path\":\"direct\",\"address\":\"192.0.2.10:40000\","
               "\"since_s\":2,\"rtt_us\":1000,\"tx_bytes\":5}") != NULL,
     "peer 0 path, address, since, then the transport's counters");
  ok(strstr(s, "{\"pid\":2,\"vaddr\":\"10.0.0.2\",\"state\":\"down\"") !=
             NULL &&
         strstr(s, "\"error\":\"Connection timed out\",\"why\":\"handshake "
                   "timed out\\u001b[2J\"") != NULL,
     "peer 2 down with error and why (escaped)");
  ok(strstr(s, "{\"pid\":3,\"vaddr\":\"10.0.0.3\",\"state\":\"unknown\","
               "\"rtt_us\":1003") != NULL,
     "peer 3 not published: unknown");
  ok(strstr(s, "{\"pid\":4,\"vaddr\":\"10.0.0.4\",\"state\":\"idle\"") != NULL,
     "peer 4 published, transport silent: idle");
  ok(strstr(s, "],\"transport.fake\":{\"connections\":2,\"left_open\":"
               "[\"x\"]}}\n") != NULL,
     "plugin section under its tag, its open level closed, the root intact");
  ok(strstr(s, "registry.sfkit") == NULL, "plugin without report skipped");
  free(s);

  s = render(&d, SFK_REPORT_TEXT);
  ok(strstr(s, "\npeers:\n  - pid: 0\n    vaddr: 10.0.0.0\n    state: up\n") !=
         NULL,
     "text: peers as list items");
  ok(strstr(s, "    why: handshake timed out\\x1b[2J\n") != NULL,
     "text: escape sequences shown, not sent");
  ok(strstr(s, "transport.fake:\n  connections: 2\n  left_open:\n    - x\n") !=
         NULL,
     "text: plugin section");
  ok(strstr(s, "hunter2") == NULL, "text: no SOCKS password");
  free(s);

  sfk_peers_free(&d.peers);
  return tap_done();
}
