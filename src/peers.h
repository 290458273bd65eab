/* The peer table: what the registry last said about every other party. */
#ifndef SFK_PEERS_H
#define SFK_PEERS_H

#include <stddef.h>

#include "sfkit-proxy/plugin.h"

#define SFK_MAX_PEERS 1024

struct sfk_peers {
  struct sfk_peer *v; /* owned, sorted by pid */
  size_t n;
};

void sfk_peers_init(struct sfk_peers *t);
void sfk_peers_free(struct sfk_peers *t);
const struct sfk_peer *sfk_peers_get(const struct sfk_peers *t, uint32_t pid);
/*
 * Replace the table with list (self_pid dropped, later duplicates win,
 * at most SFK_MAX_PEERS).  Returns 1 if anything changed, 0 if not,
 * -ENOMEM.
 */
int sfk_peers_set(struct sfk_peers *t, uint32_t self_pid,
                  const struct sfk_peer *list, size_t n);

#endif
