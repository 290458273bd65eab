/*
 * Test relay plugin `udp`: a stand-in for TURN, with the relay server
 * tests/integration/relay_server.py.  Framing (one byte type, then an
 * IPv4 address and port, 6 bytes, then payload):
 *   to the server:   'A' allocate, 'P' permit addr, 'U' unpermit addr,
 *                    'S' send payload to addr
 *   from the server: 'a' allocated: addr is our relayed address,
 *                    'D' payload from addr
 * For tests only (built with `make check`): it lets the transport's relay
 * path run end to end on loopback.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "sfkit-proxy/plugin.h"

#define HDR 7
#define MAXDG 2048

struct relay_udp {
  const struct sfk_host *host; /* borrowed */
  struct sockaddr_storage server;
  socklen_t serverlen;
  struct sockaddr_in relayed; /* sin_family 0 until allocated */
  ev_timer timer;             /* allocation retries */
  uint8_t buf[MAXDG];
};

static const char *const udp_keys[] = {"server", NULL};

static int udp_create(const struct sfk_host *h, const struct sfk_cfg_node *cfg,
                      void **self) {
  struct relay_udp *r = calloc(1, sizeof *r);
  if (!r)
    return -ENOMEM;
  r->host = h;
  if (h->cfg_addr(h, cfg, "server", NULL, &r->server, &r->serverlen) < 0 ||
      r->server.ss_family != AF_INET) {
    if (r->serverlen == 0 || r->server.ss_family != AF_INET)
      h->cfg_error(h, cfg, "relay 'udp' needs 'server' (IPv4 host:port)");
    free(r);
    return -EINVAL;
  }
  *self = r;
  return 0;
}

static void put_addr(uint8_t *p, const struct sockaddr *sa) {
  const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
  memcpy(p, &in->sin_addr, 4);
  memcpy(p + 4, &in->sin_port, 2);
}

static void get_addr(struct sockaddr_in *in, const uint8_t *p) {
  memset(in, 0, sizeof *in);
  in->sin_family = AF_INET;
  memcpy(&in->sin_addr, p, 4);
  memcpy(&in->sin_port, p + 4, 2);
}

static int to_server(struct relay_udp *r, uint8_t type,
                     const struct sockaddr *addr, const uint8_t *data,
                     size_t len) {
  if (len > MAXDG - HDR)
    return -EMSGSIZE;
  r->buf[0] = type;
  memset(r->buf + 1, 0, 6);
  if (addr) {
    if (addr->sa_family != AF_INET)
      return -EAFNOSUPPORT;
    put_addr(r->buf + 1, addr);
  }
  if (len)
    memcpy(r->buf + HDR, data, len);
  return r->host->udp_send(r->host, SFK_PATH_DIRECT,
                           (const struct sockaddr *)&r->server, r->serverlen,
                           r->buf, HDR + len, 0);
}

static void alloc_cb(struct ev_loop *loop, ev_timer *w, int revents) {
  struct relay_udp *r = w->data;
  (void)loop;
  (void)revents;
  if (!r->relayed.sin_family)
    to_server(r, 'A', NULL, NULL, 0);
  else
    ev_timer_stop(r->host->loop, &r->timer);
}

static int udp_start(void *self) {
  struct relay_udp *r = self;
  ev_timer_init(&r->timer, alloc_cb, 0., 0.5);
  r->timer.data = r;
  ev_timer_start(r->host->loop, &r->timer);
  return 0;
}

static void udp_stop(void *self) {
  struct relay_udp *r = self;
  ev_timer_stop(r->host->loop, &r->timer);
}

static void udp_destroy(void *self) {
  free(self);
}

static void udp_on_datagram(void *self, const struct sockaddr *from,
                            socklen_t fromlen, const uint8_t *data,
                            size_t len) {
  struct relay_udp *r = self;
  struct sockaddr_in in;
  (void)from;
  (void)fromlen;
  if (len < HDR)
    return;
  get_addr(&in, data + 1);
  if (data[0] == 'a' && !r->relayed.sin_family) {
    r->relayed = in;
    r->host->relay_changed(r->host, (struct sockaddr *)&in, sizeof in, 0,
                           NULL);
  } else if (data[0] == 'D' && len > HDR) {
    r->host->relay_recv(r->host, (struct sockaddr *)&in, sizeof in,
                        data + HDR, len - HDR);
  }
}

static int udp_owns_source(void *self, const struct sockaddr *from,
                           socklen_t fromlen) {
  struct relay_udp *r = self;
  const struct sockaddr_in *a = (const struct sockaddr_in *)from;
  const struct sockaddr_in *b = (const struct sockaddr_in *)&r->server;
  return from->sa_family == AF_INET && fromlen >= sizeof *a &&
         a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
}

static int udp_permit(void *self, const struct sockaddr *peer, socklen_t len) {
  (void)len;
  return to_server(self, 'P', peer, NULL, 0);
}

static void udp_unpermit(void *self, const struct sockaddr *peer,
                         socklen_t len) {
  (void)len;
  to_server(self, 'U', peer, NULL, 0);
}

static int udp_send(void *self, const struct sockaddr *to, socklen_t tolen,
                    const uint8_t *buf, size_t len) {
  struct relay_udp *r = self;
  (void)tolen;
  if (!r->relayed.sin_family)
    return -ENETUNREACH;
  return to_server(r, 'S', to, buf, len);
}

static int udp_info(void *self, struct sfk_path_info *out) {
  struct relay_udp *r = self;
  memset(out, 0, sizeof *out);
  if (!r->relayed.sin_family)
    return -EAGAIN;
  out->usable = 1;
  memcpy(&out->addr, &r->relayed, sizeof r->relayed);
  out->addrlen = sizeof r->relayed;
  out->overhead = HDR;
  return 0;
}

static const struct sfk_relay_ops udp_ops = {
    .base =
        {
            .keys = udp_keys,
            .create = udp_create,
            .start = udp_start,
            .stop = udp_stop,
            .destroy = udp_destroy,
        },
    .on_datagram = udp_on_datagram,
    .owns_source = udp_owns_source,
    .permit = udp_permit,
    .unpermit = udp_unpermit,
    .send = udp_send,
    .info = udp_info,
};

SFK_PLUGIN_DEFINE(RELAY, "udp", "1.0", udp_ops);
