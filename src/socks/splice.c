/*
 * A party's own virtual address (10.0.0.<self>) reaches its own services
 * directly: a plain TCP-to-TCP relay with one bounded buffer per
 * direction, half-close kept, RST passed on as RST.
 */
#include "autoconfig.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "proto/socks5.h"
#include "splice.h"

#define TAG "local"
#define SPLICE_BUF (64 * 1024)

struct splice;

/* One direction: bytes read from `from` wait in buf for `to`. */
struct half {
  struct splice *s;
  int from, to;
  ev_io rio, wio; /* rio on from, wio on to */
  uint8_t buf[SPLICE_BUF];
  size_t off, len;
  int eof; /* from reached EOF; FIN passed on once buf is empty */
  int done;
};

struct splice {
  struct splice *prev, *next; /* d->splices */
  struct sfk_daemon *d;
  int client, svc;
  ev_io connect_w;
  ev_timer timer;
  struct half up, down; /* client->svc, svc->client */
};

static void splice_free(struct splice *s, int abort) {
  struct ev_loop *loop = s->d->loop;
  ev_io_stop(loop, &s->up.rio);
  ev_io_stop(loop, &s->up.wio);
  ev_io_stop(loop, &s->down.rio);
  ev_io_stop(loop, &s->down.wio);
  ev_io_stop(loop, &s->connect_w);
  ev_timer_stop(loop, &s->timer);
  if (abort) {
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(s->client, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    setsockopt(s->svc, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  }
  close(s->client);
  close(s->svc);
  if (s->prev)
    s->prev->next = s->next;
  else
    s->d->splices = s->next;
  if (s->next)
    s->next->prev = s->prev;
  free(s);
}

void sfk_splice_close_all(struct sfk_daemon *d) {
  while (d->splices)
    splice_free(d->splices, 1);
}

/* Move what we can; returns -1 on a hard error. */
static int half_run(struct half *h) {
  struct ev_loop *loop = h->s->d->loop;
  for (;;) {
    if (h->len) {
      ssize_t w = send(h->to, h->buf + h->off, h->len, MSG_NOSIGNAL);
      if (w < 0) {
        if (errno == EINTR)
          continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
          return -1;
        ev_io_start(loop, &h->wio);
        ev_io_stop(loop, &h->rio);
        return 0;
      }
      h->off += (size_t)w;
      h->len -= (size_t)w;
      continue;
    }
    ev_io_stop(loop, &h->wio);
    h->off = 0;
    if (h->eof) {
      shutdown(h->to, SHUT_WR);
      h->done = 1;
      ev_io_stop(loop, &h->rio);
      return 0;
    }
    ssize_t r = recv(h->from, h->buf, sizeof h->buf, 0);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        return -1;
      ev_io_start(loop, &h->rio);
      return 0;
    }
    if (r == 0)
      h->eof = 1;
    h->len = (size_t)r;
  }
}

static void half_cb(struct ev_loop *loop, ev_io *w, int revents) {
  struct half *h = w->data;
  struct splice *s = h->s;
  (void)loop;
  (void)revents;
  if (half_run(h) < 0) {
    splice_free(s, 1);
    return;
  }
  if (s->up.done && s->down.done)
    splice_free(s, 0);
}

static void half_init(struct splice *s, struct half *h, int from, int to) {
  h->s = s;
  h->from = from;
  h->to = to;
  ev_io_init(&h->rio, half_cb, from, EV_READ);
  ev_io_init(&h->wio, half_cb, to, EV_WRITE);
  h->rio.data = h->wio.data = h;
}

static void splice_reply(int fd, uint8_t rep) {
  uint8_t r[10];
  send(fd, r, socks5_write_reply(r, rep, 0, 0), MSG_NOSIGNAL);
}

static void splice_connected(struct ev_loop *loop, ev_io *w, int revents) {
  struct splice *s = w->data;
  (void)revents;
  int err = 0;
  socklen_t el = sizeof err;
  getsockopt(s->svc, SOL_SOCKET, SO_ERROR, &err, &el);
  ev_io_stop(loop, &s->connect_w);
  ev_timer_stop(loop, &s->timer);
  if (err) {
    sfk_info(TAG, "own service: %s", strerror(err));
    splice_reply(s->client, err == ECONNREFUSED ? SFK_ST_REFUSED
                                                : SFK_ST_HOST_UNREACHABLE);
    splice_free(s, 0);
    return;
  }
  splice_reply(s->client, SFK_ST_OK);
  if (half_run(&s->up) < 0 || half_run(&s->down) < 0)
    splice_free(s, 1);
  else if (s->up.done && s->down.done)
    splice_free(s, 0); /* both ended at once: no watcher would free it */
}

static void splice_timeout(struct ev_loop *loop, ev_timer *w, int revents) {
  struct splice *s = w->data;
  (void)loop;
  (void)revents;
  splice_reply(s->client, SFK_ST_HOST_UNREACHABLE);
  splice_free(s, 0);
}

void sfk_splice_open(struct sfk_daemon *d, int fd, const struct sockaddr *svc,
                     socklen_t svclen, const uint8_t *early, size_t earlylen) {
  struct splice *s = calloc(1, sizeof *s);
  int sfd =
      socket(svc->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (!s || sfd < 0) {
    splice_reply(fd, SFK_ST_FAILURE);
    close(fd);
    if (sfd >= 0)
      close(sfd);
    free(s);
    return;
  }
  s->d = d;
  s->client = fd;
  s->svc = sfd;
  s->next = d->splices;
  if (d->splices)
    d->splices->prev = s;
  d->splices = s;
  int one = 1;
  setsockopt(sfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  half_init(s, &s->up, fd, sfd);
  half_init(s, &s->down, sfd, fd);
  if (earlylen > sizeof s->up.buf)
    earlylen = sizeof s->up.buf; /* cannot happen: SOCKS input is small */
  memcpy(s->up.buf, early, earlylen);
  s->up.len = earlylen;
  if (connect(sfd, svc, svclen) < 0 && errno != EINPROGRESS) {
    int e = errno;
    splice_reply(fd,
                 e == ECONNREFUSED ? SFK_ST_REFUSED : SFK_ST_HOST_UNREACHABLE);
    splice_free(s, 0);
    return;
  }
  ev_io_init(&s->connect_w, splice_connected, sfd, EV_WRITE);
  s->connect_w.data = s;
  ev_io_start(d->loop, &s->connect_w);
  ev_timer_init(&s->timer, splice_timeout, 10., 0.);
  s->timer.data = s;
  ev_timer_start(d->loop, &s->timer);
}
