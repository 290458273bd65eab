/*
 * Discovery plugin `none`: no STUN.  The public address is the UDP
 * socket's own bound address, which is right on a LAN or on loopback.
 * STUN datagrams that still arrive are ignored.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>

#include "sfkit-proxy/plugin.h"

struct disc_none {
  const struct sfk_host *host; /* borrowed */
};

static const char *const none_keys[] = {NULL};

static int none_create(const struct sfk_host *h, const struct sfk_cfg_node *cfg,
                       void **self) {
  (void)cfg;
  struct disc_none *n = calloc(1, sizeof *n);
  if (!n)
    return -ENOMEM;
  n->host = h;
  *self = n;
  return 0;
}

static int none_start(void *self) {
  struct disc_none *n = self;
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  int rc = n->host->udp_local(n->host, &ss, &len);
  if (rc < 0)
    return rc;
  if ((ss.ss_family == AF_INET &&
       ((struct sockaddr_in *)&ss)->sin_addr.s_addr == htonl(INADDR_ANY)) ||
      ss.ss_family == AF_INET6)
    n->host->log(n->host, SFK_LOG_WARN,
                 "udp.bind is a wildcard address: with discovery 'none' "
                 "peers must be told this host's address in their configs");
  n->host->mapping_changed(n->host, (struct sockaddr *)&ss, len, NULL);
  return 0;
}

static void none_stop(void *self) {
  (void)self;
}

static void none_destroy(void *self) {
  free(self);
}

static void none_on_datagram(void *self, const struct sockaddr *from,
                             socklen_t fromlen, const uint8_t *data,
                             size_t len) {
  struct disc_none *n = self;
  (void)from;
  (void)fromlen;
  (void)data;
  /* Nothing here sends STUN, so this is noise or a misrouted packet:
   * worth seeing at debug level. */
  n->host->log(n->host, SFK_LOG_DEBUG, "ignoring a %zu-byte STUN datagram",
               len);
}

static const struct sfk_discovery_ops none_ops = {
    .base =
        {
            .keys = none_keys,
            .create = none_create,
            .start = none_start,
            .stop = none_stop,
            .destroy = none_destroy,
        },
    .on_datagram = none_on_datagram,
};

SFK_PLUGIN_DEFINE(DISCOVERY, "none", "1.0", none_ops);
