/*
 * TCP <-> transport stream bridging.  See bridge.h for the contract.
 *
 * Ownership: a bridge owns its fd, its out-buffer chunks and itself; it
 * is on d->bridges from creation until bridge_free().  While b->ts is set
 * the transport may call upcalls with b as app; bridge_free() resets the
 * stream first, so no upcall can reach a freed bridge.
 */
#include "autoconfig.h"

#include "bridge.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "proto/socks5.h"
#include "util.h"

#define TAG "bridge"
#define CHUNK_SIZE (64 * 1024)
/* A SOCKS client waits at most this long for the peer's status; the
 * transport normally answers sooner (handshake_timeout). */
#define OPEN_TIMEOUT 30.0
/* Connecting to a local service. */
#define CONNECT_TIMEOUT 10.0

enum bridge_state {
  B_AWAIT_STATUS, /* opener: stream opened, SOCKS reply not sent yet */
  B_CONNECTING,   /* acceptor: TCP connect to the service in progress */
  B_OPEN,         /* relaying */
  B_DRAINING      /* stream ended cleanly; flushing out-buffer to TCP */
};

struct chunk {
  struct chunk *next;
  size_t len; /* bytes used in data */
  uint8_t data[CHUNK_SIZE];
};

struct sfk_bridge {
  struct sfk_bridge *prev, *next; /* d->bridges */
  struct sfk_daemon *d;
  int fd;
  ev_io rio, wio;
  ev_timer timer;
  void *ts; /* transport stream, NULL once ended */
  enum bridge_state state;
  uint32_t pid;
  uint16_t port;
  int opener;
  /* TCP -> stream */
  int rd_eof;        /* read returned 0 and FIN was queued */
  uint8_t *early;    /* opener: bytes sent by the client before the reply */
  size_t earlylen;
  /* stream -> TCP */
  struct chunk *out_head, *out_tail;
  size_t out_off; /* read offset into out_head */
  struct sfk_bridge *fq_next; /* d->flushq link */
  int queued;                 /* on d->flushq */
  int peer_fin;   /* peer's FIN received */
  int shut_wr;    /* we shut down the TCP write side */
  uint64_t up, down; /* byte counters for the close log line */
};

static void bridge_read_cb(struct ev_loop *loop, ev_io *w, int revents);
static void bridge_write_cb(struct ev_loop *loop, ev_io *w, int revents);
static void bridge_timer_cb(struct ev_loop *loop, ev_timer *w, int revents);

static const struct sfk_transport_ops *T(struct sfk_bridge *b) {
  return sfk_transport(b->d);
}

static void *TS(struct sfk_bridge *b) {
  return b->d->transport.self;
}

static struct sfk_bridge *bridge_new(struct sfk_daemon *d, int fd) {
  struct sfk_bridge *b = calloc(1, sizeof *b);
  if (!b)
    return NULL;
  b->d = d;
  b->fd = fd;
  ev_io_init(&b->rio, bridge_read_cb, fd, EV_READ);
  ev_io_init(&b->wio, bridge_write_cb, fd, EV_WRITE);
  ev_init(&b->timer, bridge_timer_cb);
  b->rio.data = b->wio.data = b->timer.data = b;
  b->next = d->bridges;
  if (d->bridges)
    d->bridges->prev = b;
  d->bridges = b;
  d->nbridges++;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return b;
}

/* End the bridge.  abort: reset the TCP connection (RST) so the client
 * sees an error, and reset the stream. */
static void bridge_free(struct sfk_bridge *b, int abort) {
  struct sfk_daemon *d = b->d;
  if (b->ts) {
    T(b)->stream_reset(TS(b), b->ts);
    b->ts = NULL;
  }
  ev_io_stop(d->loop, &b->rio);
  ev_io_stop(d->loop, &b->wio);
  ev_timer_stop(d->loop, &b->timer);
  if (b->queued) {
    struct sfk_bridge **pp = &d->flushq;
    while (*pp != b)
      pp = &(*pp)->fq_next;
    *pp = b->fq_next;
  }
  if (b->fd >= 0) {
    if (abort) {
      struct linger lg = {.l_onoff = 1, .l_linger = 0};
      setsockopt(b->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    close(b->fd);
  }
  sfk_debug(TAG, "%s %s:%u closed%s: %llu bytes up, %llu down",
            b->opener ? "to" : "from", VADDR(b->d, b->pid), b->port,
            abort ? " (aborted)" : "", (unsigned long long)b->up,
            (unsigned long long)b->down);
  for (struct chunk *c = b->out_head, *n; c; c = n) {
    n = c->next;
    free(c);
  }
  free(b->early);
  if (b->prev)
    b->prev->next = b->next;
  else
    d->bridges = b->next;
  if (b->next)
    b->next->prev = b->prev;
  d->nbridges--;
  free(b);
}

/* Write a SOCKS reply; small enough for an empty socket buffer. */
static int bridge_socks_reply(struct sfk_bridge *b, uint8_t rep) {
  uint8_t r[10];
  size_t n = socks5_write_reply(r, rep, 0, 0);
  ssize_t w = send(b->fd, r, n, MSG_NOSIGNAL);
  return w == (ssize_t)n ? 0 : -1;
}

/* ---- stream -> TCP ------------------------------------------------------ */

/* Write buffered bytes with one writev per wakeup (up to 16 chunks);
 * return credit for what left.  0 ok, -1 error. */
static int bridge_flush(struct sfk_bridge *b) {
  size_t done = 0;
  while (b->out_head) {
    struct iovec iov[16];
    int n = 0;
    size_t off = b->out_off, total = 0;
    for (struct chunk *c = b->out_head; c && n < 16; c = c->next, off = 0) {
      iov[n].iov_base = c->data + off;
      iov[n].iov_len = c->len - off;
      total += iov[n].iov_len;
      n++;
    }
    ssize_t w = writev(b->fd, iov, n);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        break;
      return -1;
    }
    done += (size_t)w;
    size_t left = (size_t)w;
    while (left) {
      struct chunk *c = b->out_head;
      size_t avail = c->len - b->out_off;
      if (left < avail) {
        b->out_off += left;
        break;
      }
      left -= avail;
      b->out_head = c->next;
      if (!b->out_head)
        b->out_tail = NULL;
      b->out_off = 0;
      free(c);
    }
    if ((size_t)w < total)
      break; /* the socket buffer is full: wait for EV_WRITE */
  }
  if (done && b->ts)
    T(b)->stream_consumed(TS(b), b->ts, done);
  if (b->out_head)
    ev_io_start(b->d->loop, &b->wio);
  else
    ev_io_stop(b->d->loop, &b->wio);
  return 0;
}

/* After the out-buffer drained: pass the peer's FIN on, or finish. */
static void bridge_after_drain(struct sfk_bridge *b) {
  if (b->out_head)
    return;
  if (b->peer_fin && !b->shut_wr) {
    shutdown(b->fd, SHUT_WR);
    b->shut_wr = 1;
  }
  if (b->state == B_DRAINING)
    bridge_free(b, 0);
}

/* Write what is buffered; then pass the FIN on or finish, or abort the
 * bridge on a write error.  b may be freed on return. */
static void bridge_flush_or_free(struct sfk_bridge *b) {
  if (bridge_flush(b) < 0)
    bridge_free(b, 1);
  else
    bridge_after_drain(b);
}

static int bridge_buffer(struct sfk_bridge *b, const uint8_t *p, size_t n) {
  while (n) {
    struct chunk *c = b->out_tail;
    if (!c || c->len == CHUNK_SIZE) {
      c = malloc(sizeof *c);
      if (!c)
        return -1;
      c->next = NULL;
      c->len = 0;
      if (b->out_tail)
        b->out_tail->next = c;
      else
        b->out_head = c;
      b->out_tail = c;
    }
    size_t k = CHUNK_SIZE - c->len < n ? CHUNK_SIZE - c->len : n;
    memcpy(c->data + c->len, p, k);
    c->len += k;
    p += k;
    n -= k;
  }
  return 0;
}

static void bridge_write_cb(struct ev_loop *loop, ev_io *w, int revents) {
  struct sfk_bridge *b = w->data;
  (void)loop;
  (void)revents;
  if (b->state == B_CONNECTING) {
    /* Completion of the non-blocking connect to the service. */
    int err = 0;
    socklen_t el = sizeof err;
    getsockopt(b->fd, SOL_SOCKET, SO_ERROR, &err, &el);
    ev_io_stop(b->d->loop, &b->wio);
    ev_timer_stop(b->d->loop, &b->timer);
    uint8_t st = SFK_ST_OK;
    if (err == ECONNREFUSED)
      st = SFK_ST_REFUSED;
    else if (err == ENETUNREACH)
      st = SFK_ST_NET_UNREACHABLE;
    else if (err == EHOSTUNREACH || err == ETIMEDOUT)
      st = SFK_ST_HOST_UNREACHABLE;
    else if (err)
      st = SFK_ST_FAILURE;
    if (st != SFK_ST_OK) {
      sfk_info(TAG, "peer %u: service port %u: %s", b->pid, b->port,
               strerror(err));
      /* The transport finishes the stream and reports stream_closed. */
      T(b)->stream_reply(TS(b), b->ts, st);
      b->state = B_DRAINING; /* freed on stream_closed */
      close(b->fd);
      b->fd = -1;
      return;
    }
    T(b)->stream_reply(TS(b), b->ts, SFK_ST_OK);
    b->state = B_OPEN;
    ev_io_start(b->d->loop, &b->rio);
  }
  bridge_flush_or_free(b);
}

/* Write soon, without a trip through epoll: most of the time the socket
 * has room, and asking for EV_WRITE first costs two epoll_ctl calls and
 * a loop iteration per burst.  EV_WRITE is armed only on a short write. */
static void bridge_queue_flush(struct sfk_bridge *b) {
  if (b->queued || ev_is_active(&b->wio))
    return;
  b->queued = 1;
  b->fq_next = b->d->flushq;
  b->d->flushq = b;
}

/* ev_prepare, at a higher priority than the transport's own flush so that
 * the credit returned by stream_consumed() leaves in this iteration. */
static void bridge_flush_prepare_cb(struct ev_loop *loop, ev_prepare *w,
                                    int revents) {
  struct sfk_daemon *d = w->data;
  (void)loop;
  (void)revents;
  while (d->flushq) {
    struct sfk_bridge *b = d->flushq;
    d->flushq = b->fq_next;
    b->queued = 0;
    bridge_flush_or_free(b);
  }
}

void sfk_bridge_start(struct sfk_daemon *d) {
  ev_prepare_init(&d->flush_prep, bridge_flush_prepare_cb);
  d->flush_prep.data = d;
  ev_set_priority(&d->flush_prep, EV_MAXPRI);
  ev_prepare_start(d->loop, &d->flush_prep);
}

void sfk_bridge_stop(struct sfk_daemon *d) {
  ev_prepare_stop(d->loop, &d->flush_prep);
}

/* ---- TCP -> stream ------------------------------------------------------ */

static void bridge_pump(struct sfk_bridge *b) {
  const struct sfk_transport_ops *t = T(b);
  uint8_t *buf = b->d->scratch;
  /* Bounded work per wakeup: other connections get their turn. */
  for (int round = 0; round < 4 && b->ts && !b->rd_eof; round++) {
    size_t space = t->stream_space(TS(b), b->ts);
    if (!space) {
      ev_io_stop(b->d->loop, &b->rio); /* resumed by stream_writable */
      return;
    }
    if (space > SFK_SCRATCH)
      space = SFK_SCRATCH;
    ssize_t n = recv(b->fd, buf, space, 0);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        ev_io_start(b->d->loop, &b->rio);
        return;
      }
      sfk_debug(TAG, "peer %u port %u: read: %s", b->pid, b->port,
                strerror(errno));
      bridge_free(b, 1);
      return;
    }
    if (n == 0) {
      b->rd_eof = 1;
      ev_io_stop(b->d->loop, &b->rio);
      t->stream_write(TS(b), b->ts, NULL, 0, 1);
      return;
    }
    b->up += (uint64_t)n;
    /* n <= space: the transport takes it all, unless it ran out of
     * memory.  Then end the stream loudly rather than lose bytes. */
    if (t->stream_write(TS(b), b->ts, buf, (size_t)n, 0) < (size_t)n) {
      sfk_err(TAG, "peer %u port %u: the transport refused %zd bytes it had "
              "room for (out of memory?); resetting the connection so no "
              "byte is lost silently", b->pid, b->port, n);
      bridge_free(b, 1);
      return;
    }
    if ((size_t)n < space)
      break; /* socket drained for now */
  }
  if (b->ts && !b->rd_eof)
    ev_io_start(b->d->loop, &b->rio);
}

static void bridge_read_cb(struct ev_loop *loop, ev_io *w, int revents) {
  (void)loop;
  (void)revents;
  bridge_pump(w->data);
}

static void bridge_timer_cb(struct ev_loop *loop, ev_timer *w, int revents) {
  struct sfk_bridge *b = w->data;
  (void)loop;
  (void)revents;
  if (b->state == B_AWAIT_STATUS) {
    sfk_info(TAG, "%s:%u: no answer from the peer in %.0fs",
             VADDR(b->d, b->pid), b->port, OPEN_TIMEOUT);
    bridge_socks_reply(b, SFK_ST_HOST_UNREACHABLE);
    bridge_free(b, 0);
  } else if (b->state == B_CONNECTING) {
    sfk_info(TAG, "peer %u: service port %u: connect timed out", b->pid,
             b->port);
    T(b)->stream_reply(TS(b), b->ts, SFK_ST_HOST_UNREACHABLE);
    ev_io_stop(b->d->loop, &b->wio);
    b->state = B_DRAINING;
    close(b->fd);
    b->fd = -1;
  }
}

/* Start relaying once both ends are connected. */
static void bridge_start_relay(struct sfk_bridge *b) {
  b->state = B_OPEN;
  ev_timer_stop(b->d->loop, &b->timer);
  if (b->earlylen) {
    /* Bytes the client sent right after its request; well below any
     * stream buffer, so accepted whole unless memory ran out. */
    if (T(b)->stream_write(TS(b), b->ts, b->early, b->earlylen, 0) <
        b->earlylen) {
      sfk_err(TAG, "peer %u port %u: the transport refused the first %zu "
              "bytes (out of memory?); resetting the connection", b->pid,
              b->port, b->earlylen);
      bridge_free(b, 1);
      return;
    }
    b->up += b->earlylen;
    free(b->early);
    b->early = NULL;
    b->earlylen = 0;
  }
  ev_io_start(b->d->loop, &b->rio);
  if (b->out_head)
    ev_io_start(b->d->loop, &b->wio);
}

void sfk_bridge_open_peer(struct sfk_daemon *d, int fd, uint32_t pid,
                          uint16_t port, const uint8_t *early,
                          size_t earlylen) {
  struct sfk_bridge *b = bridge_new(d, fd);
  if (!b) {
    uint8_t r[10];
    send(fd, r, socks5_write_reply(r, SFK_ST_FAILURE, 0, 0), MSG_NOSIGNAL);
    close(fd);
    return;
  }
  b->opener = 1;
  b->pid = pid;
  b->port = port;
  b->state = B_AWAIT_STATUS;
  if (earlylen) {
    b->early = malloc(earlylen);
    if (!b->early) {
      bridge_socks_reply(b, SFK_ST_FAILURE);
      bridge_free(b, 0);
      return;
    }
    memcpy(b->early, early, earlylen);
    b->earlylen = earlylen;
  }
  void *ts = NULL;
  int rc = sfk_transport(d)->stream_open(d->transport.self, pid, port, b, &ts);
  if (rc < 0) {
    sfk_info(TAG, "%s:%u: %s", VADDR(d, pid), port,
             rc == -EHOSTUNREACH ? "no such peer" : strerror(-rc));
    bridge_socks_reply(b, rc == -EHOSTUNREACH ? SFK_ST_HOST_UNREACHABLE
                                              : SFK_ST_FAILURE);
    bridge_free(b, 0);
    return;
  }
  b->ts = ts;
  ev_timer_set(&b->timer, OPEN_TIMEOUT, 0.);
  ev_timer_start(d->loop, &b->timer);
}

/* ---- upcalls ------------------------------------------------------------ */

void *sfk_bridge_on_accept(struct sfk_daemon *d, void *ts, uint32_t pid,
                           uint16_t port, uint8_t *status) {
  const struct sfk_service *svc = sfk_config_service(&d->cfg, pid, port);
  if (!svc) {
    sfk_info(TAG, "peer %u asked for port %u: not in services; refused", pid,
             port);
    *status = SFK_ST_NOT_ALLOWED;
    return NULL;
  }
  struct sockaddr_storage sa;
  memcpy(&sa, &svc->host, svc->hostlen);
  if (sa.ss_family == AF_INET)
    ((struct sockaddr_in *)&sa)->sin_port = htons(port);
  else
    ((struct sockaddr_in6 *)&sa)->sin6_port = htons(port);
  int fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    sfk_warn(TAG, "socket: %s", strerror(errno));
    *status = SFK_ST_FAILURE;
    return NULL;
  }
  struct sfk_bridge *b = bridge_new(d, fd);
  if (!b) {
    close(fd);
    *status = SFK_ST_FAILURE;
    return NULL;
  }
  b->ts = ts;
  b->pid = pid;
  b->port = port;
  b->state = B_CONNECTING;
  if (connect(fd, (struct sockaddr *)&sa, svc->hostlen) < 0 &&
      errno != EINPROGRESS) {
    int e = errno;
    b->ts = NULL; /* the transport sends *status itself */
    bridge_free(b, 0);
    *status = e == ECONNREFUSED ? SFK_ST_REFUSED : SFK_ST_HOST_UNREACHABLE;
    sfk_info(TAG, "peer %u: service port %u: %s", pid, port, strerror(e));
    return NULL;
  }
  /* Connect completion (even an immediate one) is seen on writability. */
  ev_io_start(d->loop, &b->wio);
  ev_timer_set(&b->timer, CONNECT_TIMEOUT, 0.);
  ev_timer_start(d->loop, &b->timer);
  sfk_debug(TAG, "peer %u: stream to service port %u", pid, port);
  return b;
}

void sfk_bridge_on_status(struct sfk_daemon *d, void *app, uint8_t status,
                          const char *why) {
  struct sfk_bridge *b = app;
  if (b->state != B_AWAIT_STATUS)
    return;
  if (status != SFK_ST_OK) {
    sfk_info(TAG, "%s:%u: SOCKS reply 0x%02x (%s)%s%s", VADDR(d, b->pid),
             b->port, status, socks5_reply_str(status), why ? ": " : "",
             why ? why : "");
    bridge_socks_reply(b, status);
    bridge_free(b, 0);
    return;
  }
  if (bridge_socks_reply(b, SFK_ST_OK) < 0) {
    bridge_free(b, 1);
    return;
  }
  bridge_start_relay(b);
}

void sfk_bridge_on_data(struct sfk_daemon *d, void *app, const uint8_t *data,
                        size_t len, int fin) {
  struct sfk_bridge *b = app;
  (void)d;
  b->down += len;
  if (fin)
    b->peer_fin = 1;
  if (b->fd < 0) {
    /* Service connect failed; drop what still arrives. */
    if (len && b->ts)
      T(b)->stream_consumed(TS(b), b->ts, len);
    return;
  }
  /* Queue, and write once the batch of datagrams is processed: a burst
   * then leaves in one writev instead of one send() per QUIC packet. */
  if (len && bridge_buffer(b, data, len) < 0) {
    sfk_err(TAG, "out of memory buffering stream data");
    bridge_free(b, 1);
    return;
  }
  if (b->state == B_OPEN)
    bridge_queue_flush(b);
}

void sfk_bridge_on_writable(struct sfk_daemon *d, void *app) {
  struct sfk_bridge *b = app;
  (void)d;
  if (b->state == B_OPEN && !b->rd_eof)
    bridge_pump(b);
}

void sfk_bridge_on_closed(struct sfk_daemon *d, void *app, int err) {
  struct sfk_bridge *b = app;
  b->ts = NULL;
  if (b->state == B_AWAIT_STATUS) {
    sfk_info(TAG, "%s:%u: stream ended before the peer answered (%s)",
             VADDR(d, b->pid), b->port, strerror(-err));
    bridge_socks_reply(b, SFK_ST_HOST_UNREACHABLE);
    bridge_free(b, 0);
    return;
  }
  if (err < 0 || b->fd < 0) {
    if (err < 0)
      sfk_debug(TAG, "%s:%u: stream ended: %s", VADDR(d, b->pid), b->port,
                strerror(-err));
    bridge_free(b, err < 0);
    return;
  }
  /* Clean end: deliver what is buffered, then close. */
  ev_io_stop(d->loop, &b->rio);
  b->state = B_DRAINING;
  if (b->out_head)
    ev_io_start(d->loop, &b->wio);
  else
    bridge_after_drain(b);
}

void sfk_bridge_close_all(struct sfk_daemon *d) {
  while (d->bridges)
    bridge_free(d->bridges, 1);
}
