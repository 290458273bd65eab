#include "autoconfig.h"

#include "resolver.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One lookup.  Fields above `mu`-protected ones are written by the
 * caller before the worker starts and read-only afterwards. */
struct sfk_resolve {
  struct sfk_resolve *next; /* box->done or box->active */
  struct sfk_resolve_box *box;
  char name[SFK_RESOLVE_NAME_MAX];
  uint16_t port;
  int family;
  sfk_resolve_cb cb;
  void *arg;
  /* written by the worker, under box->mu */
  int cancelled;
  int err;
  size_t n;
  struct sfk_addr addrs[SFK_RESOLVE_MAX_ADDRS];
};

struct sfk_resolve_box {
  pthread_mutex_t mu;
  unsigned refs;  /* the resolver's own + one per running worker */
  int closed;     /* the resolver is gone: post nothing */
  struct ev_loop *loop;
  ev_async async;
  struct sfk_resolve *active; /* handed to a worker, not finished */
  struct sfk_resolve *done;   /* finished, callback not yet run */
  unsigned inflight;
};

static void box_unref_locked(struct sfk_resolve_box *b) {
  /* Called with b->mu held; releases it. */
  int last = --b->refs == 0;
  pthread_mutex_unlock(&b->mu);
  if (last) {
    pthread_mutex_destroy(&b->mu);
    free(b);
  }
}

static void list_remove(struct sfk_resolve **head, struct sfk_resolve *q) {
  for (struct sfk_resolve **pp = head; *pp; pp = &(*pp)->next) {
    if (*pp == q) {
      *pp = q->next;
      return;
    }
  }
}

static int gai_errno(int rc) {
  switch (rc) {
  case EAI_NONAME:
#ifdef EAI_NODATA
  case EAI_NODATA:
#endif
  case EAI_FAMILY:
    return -ENOENT;
  case EAI_AGAIN:
    return -EAGAIN;
  case EAI_MEMORY:
    return -ENOMEM;
  default:
    return -EIO;
  }
}

static void resolve_now(struct sfk_resolve *q, int numeric_only) {
  struct addrinfo hints = {.ai_family = q->family,
                           .ai_socktype = SOCK_DGRAM,
                           .ai_flags = AI_ADDRCONFIG |
                                       (numeric_only ? AI_NUMERICHOST : 0)};
  struct addrinfo *res = NULL;
  char port[8];
  snprintf(port, sizeof port, "%u", q->port);
  int rc = getaddrinfo(q->name, port, &hints, &res);
  if (rc == EAI_NONAME && !numeric_only) {
    /* AI_ADDRCONFIG hides every address in a namespace with only
     * loopback configured; ask again without it. */
    hints.ai_flags = 0;
    rc = getaddrinfo(q->name, port, &hints, &res);
  }
  q->n = 0;
  if (rc != 0) {
    q->err = gai_errno(rc);
    return;
  }
  for (struct addrinfo *ai = res; ai && q->n < SFK_RESOLVE_MAX_ADDRS;
       ai = ai->ai_next) {
    if (ai->ai_addrlen > sizeof q->addrs[0].ss)
      continue;
    memcpy(&q->addrs[q->n].ss, ai->ai_addr, ai->ai_addrlen);
    q->addrs[q->n].len = ai->ai_addrlen;
    q->n++;
  }
  freeaddrinfo(res);
  q->err = q->n ? 0 : -ENOENT;
}

/* Hand a finished request to the loop (b->mu held). */
static void post_locked(struct sfk_resolve_box *b, struct sfk_resolve *q) {
  list_remove(&b->active, q);
  if (b->closed || q->cancelled) {
    free(q);
    return;
  }
  q->next = b->done;
  b->done = q;
  ev_async_send(b->loop, &b->async);
}

static void *worker(void *arg) {
  struct sfk_resolve *q = arg;
  struct sfk_resolve_box *b = q->box;
  resolve_now(q, 0);
  pthread_mutex_lock(&b->mu);
  b->inflight--;
  post_locked(b, q);
  box_unref_locked(b);
  return NULL;
}

static void async_cb(struct ev_loop *loop, ev_async *w, int revents) {
  struct sfk_resolve_box *b = w->data;
  (void)loop;
  (void)revents;
  pthread_mutex_lock(&b->mu);
  struct sfk_resolve *list = b->done;
  b->done = NULL;
  pthread_mutex_unlock(&b->mu);
  /* Oldest first, as they were posted in reverse. */
  struct sfk_resolve *rev = NULL;
  while (list) {
    struct sfk_resolve *q = list;
    list = q->next;
    q->next = rev;
    rev = q;
  }
  while (rev) {
    struct sfk_resolve *q = rev;
    rev = q->next;
    /* A callback may cancel a request that is still on our private list:
     * cancel marks it, and we skip it here. */
    if (!q->cancelled)
      q->cb(q->arg, q->err, q->addrs, q->n);
    free(q);
  }
}

int sfk_resolver_init(struct sfk_resolver *r, struct ev_loop *loop) {
  struct sfk_resolve_box *b = calloc(1, sizeof *b);
  if (!b)
    return -ENOMEM;
  if (pthread_mutex_init(&b->mu, NULL) != 0) {
    free(b);
    return -ENOMEM;
  }
  b->refs = 1;
  b->loop = loop;
  ev_async_init(&b->async, async_cb);
  b->async.data = b;
  ev_async_start(loop, &b->async);
  r->box = b;
  return 0;
}

void sfk_resolver_free(struct sfk_resolver *r) {
  struct sfk_resolve_box *b = r->box;
  if (!b)
    return;
  r->box = NULL;
  ev_async_stop(b->loop, &b->async);
  pthread_mutex_lock(&b->mu);
  b->closed = 1;
  while (b->done) {
    struct sfk_resolve *q = b->done;
    b->done = q->next;
    free(q);
  }
  /* Workers still running free their own request (closed is set). */
  box_unref_locked(b);
}

int sfk_resolve_start(struct sfk_resolver *r, const char *name, uint16_t port,
                      int family, sfk_resolve_cb cb, void *arg,
                      struct sfk_resolve **out) {
  struct sfk_resolve_box *b = r->box;
  if (!b)
    return -ESHUTDOWN;
  if (!name || !*name || strlen(name) >= SFK_RESOLVE_NAME_MAX || !cb)
    return -EINVAL;
  struct sfk_resolve *q = calloc(1, sizeof *q);
  if (!q)
    return -ENOMEM;
  snprintf(q->name, sizeof q->name, "%s", name);
  q->port = port;
  q->family = family;
  q->cb = cb;
  q->arg = arg;
  q->box = b;

  /* An address literal needs no thread; the callback still runs later,
   * from the loop, as promised. */
  resolve_now(q, 1);
  pthread_mutex_lock(&b->mu);
  if (q->err == 0) {
    q->next = b->active;
    b->active = q;
    post_locked(b, q);
    pthread_mutex_unlock(&b->mu);
    *out = q;
    return 0;
  }
  if (b->inflight >= SFK_RESOLVE_MAX_INFLIGHT) {
    pthread_mutex_unlock(&b->mu);
    free(q);
    return -EBUSY;
  }
  q->err = 0;
  q->next = b->active;
  b->active = q;
  b->inflight++;
  b->refs++;
  pthread_mutex_unlock(&b->mu);

  pthread_attr_t at;
  pthread_t t;
  sigset_t all, old;
  int rc = pthread_attr_init(&at);
  if (rc == 0) {
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&at, 256 * 1024);
    /* Signals belong to the loop thread (libev's signal watchers). */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&t, &at, worker, q);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&at);
  }
  if (rc != 0) {
    pthread_mutex_lock(&b->mu);
    list_remove(&b->active, q);
    b->inflight--;
    b->refs--;
    pthread_mutex_unlock(&b->mu);
    free(q);
    return -rc;
  }
  *out = q;
  return 0;
}

void sfk_resolve_cancel(struct sfk_resolver *r, struct sfk_resolve *q) {
  struct sfk_resolve_box *b = r->box;
  if (!b || !q)
    return;
  pthread_mutex_lock(&b->mu);
  /* Still with a worker, or posted and waiting for the loop, or on the
   * loop's private list in async_cb: in every case the flag suffices;
   * whoever holds it frees it. */
  q->cancelled = 1;
  pthread_mutex_unlock(&b->mu);
}
