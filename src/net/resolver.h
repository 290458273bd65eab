/*
 * Non-blocking name resolution for plugins (host->resolve): getaddrinfo
 * runs on a short-lived worker thread; the answer comes back to the loop
 * through an ev_async and the caller's callback runs there.
 *
 * Ownership: a request (struct sfk_resolve) belongs to the resolver from
 * sfk_resolve_start() until its callback has run or it was cancelled.
 * The mailbox the workers post into is reference-counted, so a worker
 * stuck in a slow DNS query never touches freed memory after the daemon
 * stopped: the last one out frees it.
 */
#ifndef SFK_RESOLVER_H
#define SFK_RESOLVER_H

#include <ev.h>
#include <stdint.h>

#include "sfkit-proxy/plugin.h"

/* Lookups in flight at once; more are refused with -EBUSY (a plugin
 * resolves a handful of server names, and retries later). */
#define SFK_RESOLVE_MAX_INFLIGHT 16
/* Addresses handed to a callback at most. */
#define SFK_RESOLVE_MAX_ADDRS 8
#define SFK_RESOLVE_NAME_MAX 256

struct sfk_resolve_box;

struct sfk_resolver {
  struct sfk_resolve_box *box; /* shared with the workers; NULL when closed */
};

/* 0 or -errno. */
int sfk_resolver_init(struct sfk_resolver *r, struct ev_loop *loop);
/* Cancel everything pending; no callback runs afterwards. */
void sfk_resolver_free(struct sfk_resolver *r);

/* See sfk_host.resolve / resolve_cancel. */
int sfk_resolve_start(struct sfk_resolver *r, const char *name, uint16_t port,
                      int family, sfk_resolve_cb cb, void *arg,
                      struct sfk_resolve **out);
void sfk_resolve_cancel(struct sfk_resolver *r, struct sfk_resolve *q);

#endif
