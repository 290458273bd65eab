/* The peer table: what the registry last said about every other party. */
#ifndef SFK_PEERS_H
#define SFK_PEERS_H

#include <stddef.h>

#include "sfkit-proxy/plugin.h"

#define SFK_MAX_PEERS 1024
#define SFK_PEER_WHY_MAX 192

/* What the transport last said of a peer (peer_state), for logs and
 * status.  One per table entry, same order. */
struct sfk_peer_live {
  int state; /* enum sfk_peer_state */
  int path;  /* enum sfk_path */
  struct sockaddr_storage addr; /* remote in use; family 0 if none */
  socklen_t addrlen;
  uint64_t since_ns; /* when state last changed */
  int err;
  char why[SFK_PEER_WHY_MAX];
};

struct sfk_peers {
  struct sfk_peer *v;       /* owned, sorted by pid */
  struct sfk_peer_live *lv; /* owned, lv[i] belongs to v[i] */
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
/* Add or replace one entry (self_pid ignored: returns 0).  Same
 * results as sfk_peers_set; -ENOSPC past SFK_MAX_PEERS. */
int sfk_peers_set_one(struct sfk_peers *t, uint32_t self_pid,
                      const struct sfk_peer *p);
/* The live state of pid's entry, or NULL when pid is not in the table. */
struct sfk_peer_live *sfk_peers_live(struct sfk_peers *t, uint32_t pid);
/* A participant that has not published (neither address nor pin). */
int sfk_peer_is_unknown(const struct sfk_peer *p);

#endif
