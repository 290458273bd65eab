#include "autoconfig.h"

#include "peers.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void sfk_peers_init(struct sfk_peers *t) {
  t->v = NULL;
  t->n = 0;
}

void sfk_peers_free(struct sfk_peers *t) {
  free(t->v);
  sfk_peers_init(t);
}

static int peer_cmp(const void *a, const void *b) {
  const struct sfk_peer *x = a, *y = b;
  return x->pid < y->pid ? -1 : x->pid > y->pid;
}

const struct sfk_peer *sfk_peers_get(const struct sfk_peers *t, uint32_t pid) {
  struct sfk_peer key = {.pid = pid};
  if (!t->n)
    return NULL;
  return bsearch(&key, t->v, t->n, sizeof *t->v, peer_cmp);
}

static int peer_same(const struct sfk_peer *a, const struct sfk_peer *b) {
  return a->pid == b->pid && a->addrlen == b->addrlen &&
         memcmp(&a->addr, &b->addr, a->addrlen) == 0 &&
         strcmp(a->pin, b->pin) == 0;
}

int sfk_peers_set(struct sfk_peers *t, uint32_t self_pid,
                  const struct sfk_peer *list, size_t n) {
  if (n > SFK_MAX_PEERS)
    n = SFK_MAX_PEERS;
  struct sfk_peer *v = calloc(n ? n : 1, sizeof *v);
  if (!v)
    return -ENOMEM;
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    if (list[i].pid == self_pid)
      continue;
    size_t j;
    for (j = 0; j < m && v[j].pid != list[i].pid; j++)
      ;
    v[j] = list[i];
    v[j].pin[SFK_PIN_LEN] = '\0';
    if (v[j].addrlen > sizeof v[j].addr)
      v[j].addrlen = 0;
    if (j == m)
      m++;
  }
  qsort(v, m, sizeof *v, peer_cmp);

  int changed = m != t->n;
  for (size_t i = 0; !changed && i < m; i++)
    changed = !peer_same(&v[i], &t->v[i]);
  free(t->v);
  t->v = v;
  t->n = m;
  return changed;
}
