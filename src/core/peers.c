#include "autoconfig.h"

#include "peers.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void sfk_peers_init(struct sfk_peers *t) {
  t->v = NULL;
  t->lv = NULL;
  t->n = 0;
}

void sfk_peers_free(struct sfk_peers *t) {
  free(t->v);
  free(t->lv);
  sfk_peers_init(t);
}

static int peer_cmp(const void *a, const void *b) {
  const struct sfk_peer *x = a, *y = b;
  return x->pid < y->pid ? -1 : x->pid > y->pid;
}

static long peer_index(const struct sfk_peers *t, uint32_t pid) {
  size_t lo = 0, hi = t->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (t->v[mid].pid == pid)
      return (long)mid;
    if (t->v[mid].pid < pid)
      lo = mid + 1;
    else
      hi = mid;
  }
  return -1;
}

const struct sfk_peer *sfk_peers_get(const struct sfk_peers *t, uint32_t pid) {
  long i = peer_index(t, pid);
  return i < 0 ? NULL : &t->v[i];
}

struct sfk_peer_live *sfk_peers_live(struct sfk_peers *t, uint32_t pid) {
  long i = peer_index(t, pid);
  return i < 0 ? NULL : &t->lv[i];
}

int sfk_peer_is_unknown(const struct sfk_peer *p) {
  return p->addrlen == 0 && p->pin[0] == '\0';
}

static int peer_same(const struct sfk_peer *a, const struct sfk_peer *b) {
  return a->pid == b->pid && a->addrlen == b->addrlen &&
         memcmp(&a->addr, &b->addr, a->addrlen) == 0 &&
         strcmp(a->pin, b->pin) == 0;
}

static void peer_sanitize(struct sfk_peer *p) {
  p->pin[SFK_PIN_LEN] = '\0';
  if (p->addrlen > sizeof p->addr || p->addr.ss_family == 0)
    p->addrlen = 0;
}

int sfk_peers_set(struct sfk_peers *t, uint32_t self_pid,
                  const struct sfk_peer *list, size_t n) {
  if (n > SFK_MAX_PEERS)
    n = SFK_MAX_PEERS;
  struct sfk_peer *v = calloc(n ? n : 1, sizeof *v);
  struct sfk_peer_live *lv = calloc(n ? n : 1, sizeof *lv);
  if (!v || !lv) {
    free(v);
    free(lv);
    return -ENOMEM;
  }
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    if (list[i].pid == self_pid)
      continue;
    size_t j;
    for (j = 0; j < m && v[j].pid != list[i].pid; j++)
      ;
    v[j] = list[i];
    peer_sanitize(&v[j]);
    if (j == m)
      m++;
  }
  qsort(v, m, sizeof *v, peer_cmp);

  int changed = m != t->n;
  for (size_t i = 0; i < m; i++) {
    long k = peer_index(t, v[i].pid);
    if (k >= 0) {
      lv[i] = t->lv[k]; /* a re-read keeps what the transport said */
      changed |= !peer_same(&v[i], &t->v[k]);
    } else {
      changed = 1;
    }
  }
  free(t->v);
  free(t->lv);
  t->v = v;
  t->lv = lv;
  t->n = m;
  return changed;
}

int sfk_peers_set_one(struct sfk_peers *t, uint32_t self_pid,
                      const struct sfk_peer *p) {
  if (p->pid == self_pid)
    return 0;
  long k = peer_index(t, p->pid);
  if (k >= 0) {
    struct sfk_peer np = *p;
    peer_sanitize(&np);
    if (peer_same(&np, &t->v[k]))
      return 0;
    t->v[k] = np;
    return 1;
  }
  if (t->n >= SFK_MAX_PEERS)
    return -ENOSPC;
  struct sfk_peer *v = realloc(t->v, (t->n + 1) * sizeof *v);
  if (!v)
    return -ENOMEM;
  t->v = v;
  struct sfk_peer_live *lv = realloc(t->lv, (t->n + 1) * sizeof *lv);
  if (!lv)
    return -ENOMEM;
  t->lv = lv;
  size_t i = t->n;
  while (i > 0 && t->v[i - 1].pid > p->pid) {
    t->v[i] = t->v[i - 1];
    t->lv[i] = t->lv[i - 1];
    i--;
  }
  t->v[i] = *p;
  peer_sanitize(&t->v[i]);
  memset(&t->lv[i], 0, sizeof t->lv[i]);
  t->n++;
  return 1;
}
