/*
 * Test discovery plugin `file`: the public mapping is whatever "ip:port"
 * (IPv4) the file named by `file` holds, read at start and every 100 ms;
 * a change is reported with mapping_changed(), as a STUN plugin reports a
 * NAT that rebound.  For tests only (built with `make check`).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "sfkit-proxy/plugin.h"

struct disc_file {
  const struct sfk_host *host; /* borrowed */
  char path[4096];
  char last[64];
  ev_timer timer;
};

static const char *const file_keys[] = {"file", NULL};

static int file_create(const struct sfk_host *h, const struct sfk_cfg_node *cfg,
                       void **self) {
  struct disc_file *f = calloc(1, sizeof *f);
  if (!f)
    return -ENOMEM;
  f->host = h;
  if (h->cfg_path(h, cfg, "file", NULL, f->path, sizeof f->path) < 0 ||
      !f->path[0]) {
    if (!f->path[0])
      h->cfg_error(h, cfg, "discovery 'file' needs 'file'");
    free(f);
    return -EINVAL;
  }
  *self = f;
  return 0;
}

static void file_check(struct disc_file *f) {
  char buf[64], ip[48];
  unsigned port;
  struct sockaddr_in sin;
  FILE *fp = fopen(f->path, "r");
  if (!fp)
    return;
  if (!fgets(buf, sizeof buf, fp)) {
    fclose(fp);
    return;
  }
  fclose(fp);
  buf[strcspn(buf, "\r\n")] = '\0';
  if (strcmp(buf, f->last) == 0)
    return;
  memset(&sin, 0, sizeof sin);
  if (sscanf(buf, "%47[0-9.]:%u", ip, &port) != 2 || port > 65535 ||
      inet_pton(AF_INET, ip, &sin.sin_addr) != 1)
    return;
  snprintf(f->last, sizeof f->last, "%s", buf);
  sin.sin_family = AF_INET;
  sin.sin_port = htons((uint16_t)port);
  f->host->mapping_changed(f->host, (struct sockaddr *)&sin, sizeof sin,
                           f->path);
}

static void file_timer_cb(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop;
  (void)revents;
  file_check(w->data);
}

static int file_start(void *self) {
  struct disc_file *f = self;
  file_check(f);
  ev_timer_init(&f->timer, file_timer_cb, 0.1, 0.1);
  f->timer.data = f;
  ev_timer_start(f->host->loop, &f->timer);
  return 0;
}

static void file_stop(void *self) {
  struct disc_file *f = self;
  ev_timer_stop(f->host->loop, &f->timer);
}

static void file_destroy(void *self) {
  free(self);
}

static void file_on_datagram(void *self, const struct sockaddr *from,
                             socklen_t fromlen, const uint8_t *data,
                             size_t len) {
  (void)self;
  (void)from;
  (void)fromlen;
  (void)data;
  (void)len;
}

static const struct sfk_discovery_ops file_ops = {
    .base =
        {
            .keys = file_keys,
            .create = file_create,
            .start = file_start,
            .stop = file_stop,
            .destroy = file_destroy,
        },
    .on_datagram = file_on_datagram,
};

SFK_PLUGIN_DEFINE(DISCOVERY, "file", "1.0", file_ops);
