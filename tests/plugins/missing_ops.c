/*
 * Check-only test plugin: a transport whose ops table leaves the required
 * stream_write slot NULL.  The loader must refuse it naming the slot.
 */
#include "autoconfig.h"

#include "sfkit-proxy/plugin.h"

#include <stddef.h>

static int mo_create(const struct sfk_host *h, const struct sfk_cfg_node *cfg,
                     void **self) {
  (void)h;
  (void)cfg;
  *self = NULL;
  return 0;
}
static int mo_start(void *self) {
  (void)self;
  return 0;
}
static void mo_void(void *self) {
  (void)self;
}
static void mo_on_datagram(void *self, int path, const struct sockaddr *from,
                           socklen_t fromlen, const uint8_t *data, size_t len) {
  (void)self;
  (void)path;
  (void)from;
  (void)fromlen;
  (void)data;
  (void)len;
}
static int mo_stream_open(void *self, uint32_t pid, uint16_t port, void *app,
                          void **ts) {
  (void)self;
  (void)pid;
  (void)port;
  (void)app;
  *ts = NULL;
  return 0;
}
static void mo_stream_reply(void *self, void *ts, uint8_t status) {
  (void)self;
  (void)ts;
  (void)status;
}
static size_t mo_stream_space(void *self, void *ts) {
  (void)self;
  (void)ts;
  return 0;
}
static void mo_stream_consumed(void *self, void *ts, size_t n) {
  (void)self;
  (void)ts;
  (void)n;
}
static void mo_stream_reset(void *self, void *ts) {
  (void)self;
  (void)ts;
}

static const struct sfk_transport_ops mo_ops = {
    .base = {.keys = NULL,
             .create = mo_create,
             .start = mo_start,
             .stop = mo_void,
             .destroy = mo_void},
    .on_datagram = mo_on_datagram,
    .peers_changed = mo_void,
    .stream_open = mo_stream_open,
    .stream_reply = mo_stream_reply,
    .stream_space = mo_stream_space,
    .stream_write = NULL, /* the point of this plugin */
    .stream_consumed = mo_stream_consumed,
    .stream_reset = mo_stream_reset,
};

SFK_PLUGIN_DEFINE(TRANSPORT, "missing_ops", "0", mo_ops);
