/*
 * QUIC transport: streams.
 *
 * One bidirectional QUIC stream carries one TCP connection.  The opener
 * sends the 3-byte header (stream_header.h) before the TCP bytes; the
 * acceptor answers with one status byte.  Both live in the send buffer as
 * ordinary stream bytes, so offsets, retransmission and FIN need no special
 * cases.
 *
 * Send buffer: a list of QUIC_CHUNK chunks, allocated when bytes are
 * queued and freed when the peer acknowledged them (ngtcp2 keeps pointers
 * into them until then).  A stream whose bytes are all acknowledged holds
 * no chunk, so idle streams cost only their struct.  stream_space() is
 * send_buffer minus the unacknowledged bytes: that bounds memory per stream
 * and is where back-pressure towards the TCP side comes from.
 *
 * Receive side: ngtcp2 hands us in-order bytes; we strip the header or
 * status byte (their credit is returned at once) and pass the rest to the
 * daemon, which returns credit with stream_consumed().  Nothing is buffered
 * here; the peer can never send beyond the window the daemon drained.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quic.h"
#include "proto/stream_header.h"

/* Offer stream_writable() again once this much space is free. */
static uint64_t writable_threshold(const struct quic_inst *qi) {
  uint64_t t = qi->cfg.send_buffer / 4;
  return t > 64 * 1024 ? 64 * 1024 : t;
}

/* ------------------------------------------------------------------ */
/* Send buffer                                                          */

/*
 * Memory bounds.  Every chunk is counted in its stream, its connection
 * (peer_send_memory) and the instance (send_memory); stream_space() is 0
 * while either total is at its bound, so a peer that opens max_streams
 * streams and grants no credit makes the daemon stop reading from the
 * local services instead of queueing 128 KiB for each (at a bound each
 * stream may still hold one chunk, QUIC_CHUNK, for requests and replies).
 * Streams refused that way are woken once MEM_SLACK is free again.
 */
#define MEM_SLACK (1024 * 1024)

static struct quic_chunk *chunk_new(struct quic_stream *s, size_t cap) {
  struct quic_chunk *c = malloc(sizeof(*c) + cap);
  uint64_t n = sizeof(*c) + cap;

  if (!c)
    return NULL;
  c->next = NULL;
  c->cap = cap;
  s->mem += n;
  s->qi->mem += n;
  if (s->qc)
    s->qc->mem += n;
  return c;
}

/* Wake every stream of qc (all connections when qc is NULL) that waits
 * for space: the bound that stopped it has room again. */
static void mem_wake(struct quic_inst *qi, struct quic_conn *qc) {
  struct quic_conn *c;
  struct quic_stream *s;

  TAILQ_FOREACH(c, &qi->conns, link) {
    if (qc && c != qc)
      continue;
    TAILQ_FOREACH(s, &c->streams, link) {
      if ((s->flags & QSF_WANT_WR) && s->app) {
        s->flags |= QSF_WRITABLE_Q;
        quic_stream_defer(s);
      }
    }
  }
}

static void chunk_free(struct quic_stream *s, struct quic_chunk *c) {
  struct quic_inst *qi = s->qi;
  struct quic_conn *qc = s->qc;
  uint64_t n = sizeof(*c) + c->cap;

  free(c);
  s->mem -= n;
  qi->mem -= n;
  if (qc) {
    qc->mem -= n;
    if (qc->mem_full && qc->mem + MEM_SLACK <= qi->cfg.peer_send_memory) {
      qc->mem_full = 0;
      mem_wake(qi, qc);
    }
  }
  if (qi->mem_full && qi->mem + MEM_SLACK <= qi->cfg.send_memory) {
    qi->mem_full = 0;
    mem_wake(qi, NULL);
  }
}

/* The stream joins or leaves a connection: its chunks move with it. */
void quic_stream_set_conn(struct quic_stream *s, struct quic_conn *qc) {
  if (s->qc)
    s->qc->mem -= s->mem;
  s->qc = qc;
  if (qc)
    qc->mem += s->mem;
}

static void sbuf_free(struct quic_stream *s) {
  struct quic_chunk *c = s->head;

  while (c) {
    struct quic_chunk *n = c->next;
    chunk_free(s, c);
    c = n;
  }
  s->head = s->tail = s->cur = NULL;
}

/* Queue up to n bytes; returns how many fit in memory (all, unless OOM). */
static size_t sbuf_append(struct quic_stream *s, const uint8_t *data,
                          size_t n) {
  size_t done = 0;

  while (done < n) {
    size_t room, k;

    if (!s->tail || s->end - s->tail_off == s->tail->cap) {
      size_t cap = !s->tail && n - done <= QUIC_SMALL_CHUNK ? QUIC_SMALL_CHUNK
                                                            : QUIC_CHUNK;
      struct quic_chunk *c = chunk_new(s, cap);
      if (!c)
        break;
      if (s->tail) {
        s->tail_off += s->tail->cap;
        s->tail->next = c;
      } else {
        s->head = c;
        s->head_off = s->tail_off = s->end;
      }
      s->tail = c;
      if (!s->cur && s->sent == s->tail_off) {
        s->cur = c;
        s->cur_off = s->tail_off;
      }
    }
    room = s->tail->cap - (size_t)(s->end - s->tail_off);
    k = n - done < room ? n - done : room;
    memcpy(s->tail->data + (s->end - s->tail_off), data + done, k);
    s->end += k;
    done += k;
  }
  return done;
}

/* Acceptor: the status byte goes first, whenever it is known. */
static int sbuf_set_status(struct quic_stream *s, uint8_t status) {
  if (s->end == 0)
    return sbuf_append(s, &status, 1) == 1 ? 0 : -1;
  s->head->data[0] = status;
  return 0;
}

int quic_stream_has_unsent(const struct quic_stream *s) {
  return s->sent < s->end ||
         ((s->flags & QSF_FIN_Q) && !(s->flags & QSF_FIN_SENT));
}

size_t quic_stream_unsent(struct quic_stream *s, ngtcp2_vec *v, size_t nv,
                          int *fin) {
  uint64_t off = s->sent, coff = s->cur_off;
  struct quic_chunk *c = s->cur;
  size_t i = 0;

  while (off < s->end && i < nv && c) {
    size_t start = (size_t)(off - coff);
    uint64_t lim = s->end - coff < c->cap ? s->end - coff : c->cap;
    size_t len = (size_t)lim - start;

    v[i].base = c->data + start;
    v[i].len = len;
    off += len;
    coff += c->cap;
    c = c->next;
    i++;
  }
  *fin = (s->flags & QSF_FIN_Q) && !(s->flags & QSF_FIN_SENT) && off == s->end;
  return i;
}

static size_t stream_space(struct quic_stream *s);

void quic_stream_sent(struct quic_stream *s, size_t n, int fin) {
  s->sent += n;
  while (s->cur && s->sent >= s->cur_off + s->cur->cap) {
    s->cur_off += s->cur->cap;
    s->cur = s->cur->next;
  }
  if (fin && s->sent == s->end)
    s->flags |= QSF_FIN_SENT;
  /* Handing bytes to ngtcp2 frees queue space (see stream_space); the
   * daemon hears of it in the next flush, outside the write loop. */
  if ((s->flags & QSF_WANT_WR) && s->app &&
      stream_space(s) >= writable_threshold(s->qi)) {
    s->flags |= QSF_WRITABLE_Q;
    quic_stream_defer(s);
  }
}

static void sbuf_acked(struct quic_stream *s, uint64_t upto) {
  if (upto > s->acked) {
    if (s->qc)
      s->qc->q_acked += upto - s->acked;
    s->acked = upto;
  }
  if (s->acked >= s->end) {
    /* Everything acknowledged: give all memory back. */
    sbuf_free(s);
    return;
  }
  while (s->head && s->head != s->cur && s->head != s->tail &&
         s->head_off + s->head->cap <= s->acked) {
    struct quic_chunk *c = s->head;
    s->head = c->next;
    s->head_off += c->cap;
    chunk_free(s, c);
  }
}

/*
 * Space = what send_buffer leaves beside the bytes in flight, but never
 * more than QUIC_UNSENT_MAX not yet handed to ngtcp2: the congestion
 * window, not this buffer, decides what is in flight, so a stream that
 * waits for the network holds a small queue instead of send_buffer bytes
 * (16 busy streams: about 2 MiB instead of 256 MiB).  128 KiB is still
 * two scheduling quanta, so the head stream never runs dry between two
 * reads of its TCP socket.
 */
static size_t stream_space(struct quic_stream *s) {
  uint64_t used = s->end - s->acked, cap = s->qi->cfg.send_buffer;
  uint64_t unsent = s->end - s->sent, space;

  if (!s->app ||
      (s->flags & (QSF_FIN_Q | QSF_NG_CLOSED | QSF_SHUT_REQ | QSF_FREE)))
    return 0;
  if (s->qc && !s->qc->conn)
    return 0;
  if (used >= cap || unsent >= QUIC_UNSENT_MAX)
    return 0;
  space = cap - used;
  /* The peer's and everyone's bounds.  At a bound a stream may still hold
   * one chunk of its own, so a request or a reply on a new stream gets
   * through beside streams that wait for credit. */
  if ((s->qc && s->qc->mem >= s->qi->cfg.peer_send_memory) ||
      s->qi->mem >= s->qi->cfg.send_memory) {
    if (s->qc && s->qc->mem >= s->qi->cfg.peer_send_memory)
      s->qc->mem_full = 1;
    if (s->qi->mem >= s->qi->cfg.send_memory)
      s->qi->mem_full = 1;
    if (used >= QUIC_CHUNK)
      return 0;
    if (space > QUIC_CHUNK - used)
      space = QUIC_CHUNK - used;
  }
  if (space > QUIC_UNSENT_MAX - unsent)
    space = QUIC_UNSENT_MAX - unsent;
  return (size_t)space;
}

/* ------------------------------------------------------------------ */
/* Lists                                                                */

void quic_stream_sendq_add(struct quic_stream *s) {
  struct quic_conn *qc = s->qc;

  if (!qc || !qc->conn || (s->flags & QSF_IN_SENDQ) ||
      !(s->flags & QSF_OPEN) ||
      (s->flags & (QSF_GATED | QSF_NG_CLOSED | QSF_BLOCKED | QSF_SHUT_REQ)) ||
      !quic_stream_has_unsent(s))
    return;
  /* A stream that comes back with little to send (a request, a reply, a
   * round of an interactive protocol) goes first instead of waiting for
   * every bulk stream's quantum; a backlog joins the end of the line.
   * Such a stream may also turn the queue governor on. */
  if (s->end - s->sent <= QUIC_RR_QUANTUM) {
    quic_queue_interactive(qc, s);
    TAILQ_INSERT_HEAD(&qc->sendq, s, sq);
  } else {
    TAILQ_INSERT_TAIL(&qc->sendq, s, sq);
  }
  s->flags |= QSF_IN_SENDQ;
  quic_conn_dirty(qc);
}

void quic_stream_sendq_del(struct quic_stream *s) {
  if (s->flags & QSF_IN_SENDQ) {
    TAILQ_REMOVE(&s->qc->sendq, s, sq);
    s->flags &= ~(uint32_t)QSF_IN_SENDQ;
  }
}

void quic_stream_defer(struct quic_stream *s) {
  if (!(s->flags & QSF_IN_DQ)) {
    TAILQ_INSERT_TAIL(&s->qi->deferred, s, dq);
    s->flags |= QSF_IN_DQ;
  }
  quic_kick(s->qi);
}

void quic_stream_free(struct quic_stream *s) {
  if (s->flags & QSF_IN_DQ) {
    TAILQ_REMOVE(&s->qi->deferred, s, dq);
    s->flags &= ~(uint32_t)QSF_IN_DQ;
  }
  sbuf_free(s);
  free(s);
}

/* Return the connection credit the daemon still holds, drop the app. */
static void stream_detach(struct quic_stream *s) {
  struct quic_conn *qc = s->qc;

  if (qc && qc->conn && s->delivered > s->consumed)
    ngtcp2_conn_extend_max_offset(qc->conn, s->delivered - s->consumed);
  s->consumed = s->delivered;
  s->app = NULL;
}

/* Tell the daemon the stream is over (safe contexts only). */
static void stream_close_app(struct quic_stream *s, int err) {
  const struct sfk_host *h = s->qi->h;
  void *app = s->app;

  if (!app)
    return;
  stream_detach(s);
  s->flags &= ~(uint32_t)QSF_CLOSE_Q;
  h->stream_closed(h, app, err);
}

/* Opener that never got a status: give it one (and why, for the log)
 * before the close. */
static void stream_status_then_close(struct quic_stream *s, uint8_t st,
                                     int err, const char *why) {
  const struct sfk_host *h = s->qi->h;

  if (s->app && s->role == QS_OPENER && !(s->flags & QSF_STATUS)) {
    s->flags |= QSF_STATUS;
    h->stream_status(h, s->app, st, why && why[0] ? why : NULL);
  }
  stream_close_app(s, err);
}

static int status_errno(uint8_t st) {
  switch (st) {
  case SFK_ST_NOT_ALLOWED:
    return -EACCES;
  case SFK_ST_NET_UNREACHABLE:
    return -ENETUNREACH;
  case SFK_ST_HOST_UNREACHABLE:
    return -EHOSTUNREACH;
  case SFK_ST_TTL_EXPIRED:
    return -ETIMEDOUT;
  default:
    return -ECONNREFUSED;
  }
}

/* Deferred work: ngtcp2 shutdowns, close upcalls from ops, frees. */
void quic_stream_process_deferred(struct quic_inst *qi) {
  struct quic_stream *s;

  while ((s = TAILQ_FIRST(&qi->deferred))) {
    struct quic_conn *qc = s->qc;

    TAILQ_REMOVE(&qi->deferred, s, dq);
    s->flags &= ~(uint32_t)QSF_IN_DQ;
    if ((s->flags & QSF_WRITABLE_Q) && (s->flags & QSF_WANT_WR) && s->app &&
        !qi->stopped && !(s->flags & QSF_CLOSE_Q)) {
      s->flags &= ~(uint32_t)(QSF_WRITABLE_Q | QSF_WANT_WR);
      qi->h->stream_writable(qi->h, s->app);
    }
    s->flags &= ~(uint32_t)QSF_WRITABLE_Q;
    if ((s->flags & QSF_CLOSE_Q) && s->app && !qi->stopped)
      stream_close_app(s, s->close_err);
    if ((s->flags & (QSF_SHUT_REQ | QSF_STOP_REQ)) &&
        (s->flags & QSF_OPEN) && !(s->flags & QSF_NG_CLOSED) && qc &&
        qc->conn) {
      if (s->flags & QSF_SHUT_REQ) {
        quic_stream_sendq_del(s);
        ngtcp2_conn_shutdown_stream(qc->conn, s->id, QUIC_APP_ERR_RESET);
      } else {
        ngtcp2_conn_shutdown_stream_read(qc->conn, s->id, QUIC_APP_ERR_RESET);
      }
      s->flags &= ~(uint32_t)QSF_STOP_REQ;
      quic_conn_dirty(qc);
    }
    if ((s->flags & QSF_FREE) &&
        (!(s->flags & QSF_OPEN) || (s->flags & QSF_NG_CLOSED))) {
      if (qc) {
        quic_stream_sendq_del(s);
        TAILQ_REMOVE(&qc->streams, s, link);
      } else if (s->peer) {
        TAILQ_REMOVE(&s->peer->pending, s, link);
      }
      quic_stream_free(s);
    }
  }
}

/* ------------------------------------------------------------------ */
/* Pending streams (opener side, before the connection is usable)       */

void quic_stream_open_pending(struct quic_peer *p) {
  struct quic_conn *qc = p->conn;
  struct quic_stream *s, *next;

  if (!qc || !qc->conn || !(qc->flags & QCF_HS_DONE) ||
      (qc->flags & QCF_DOOMED))
    return;
  for (s = TAILQ_FIRST(&p->pending); s; s = next) {
    int64_t id;

    next = TAILQ_NEXT(s, link);
    if (!s->app || (s->flags & QSF_FREE))
      continue;
    if (ngtcp2_conn_get_streams_bidi_left(qc->conn) == 0)
      break;
    if (ngtcp2_conn_open_bidi_stream(qc->conn, &id, s) != 0)
      break;
    TAILQ_REMOVE(&p->pending, s, link);
    TAILQ_INSERT_TAIL(&qc->streams, s, link);
    s->peer = NULL;
    quic_stream_set_conn(s, qc);
    s->id = id;
    s->flags |= QSF_OPEN;
    quic_stream_sendq_add(s);
  }
}

/* Fail pending streams past their deadline (or all of them). */
void quic_stream_fail_pending(struct quic_peer *p, uint64_t now, int all) {
  struct quic_stream *s, *next;
  char buf[QUIC_WHY_MAX], why[QUIC_WHY_MAX];

  for (s = TAILQ_FIRST(&p->pending); s; s = next) {
    next = TAILQ_NEXT(s, link);
    if (!s->app || (s->flags & QSF_FREE))
      continue;
    if (!all && s->deadline_ns > now)
      continue;
    s->flags |= QSF_FREE;
    quic_stream_defer(s);
    /* Copied: the upcall may change p->why (a new peer table). */
    snprintf(why, sizeof(why), "%s",
             all && !p->present ? "the peer left the registry"
                                : quic_peer_why(p, buf, sizeof(buf)));
    stream_status_then_close(s, SFK_ST_HOST_UNREACHABLE, -EHOSTUNREACH, why);
  }
}

uint64_t quic_stream_next_deadline(const struct quic_peer *p) {
  const struct quic_stream *s;
  uint64_t t = UINT64_MAX;

  TAILQ_FOREACH(s, &p->pending, link) {
    if (s->app && !(s->flags & QSF_FREE) && s->deadline_ns < t)
      t = s->deadline_ns;
  }
  return t;
}

/*
 * The connection is gone (already deleted in ngtcp2).  Streams that only
 * sent their header and have no status yet go back to the peer's pending
 * list and retry on the next connection within their deadline; the rest
 * end with err.  Frees every stream of qc.
 */
void quic_stream_conn_lost(struct quic_conn *qc, int err, const char *why) {
  struct quic_inst *qi = qc->qi;
  struct quic_stream *s;

  while ((s = TAILQ_FIRST(&qc->streams))) {
    struct quic_peer *p;

    TAILQ_REMOVE(&qc->streams, s, link);
    quic_stream_sendq_del(s);
    p = s->app ? quic_peer_find(qi, s->pid) : NULL;
    if (s->app && !qi->stopped && s->role == QS_OPENER &&
        !(s->flags & (QSF_STATUS | QSF_FIN_Q | QSF_SHUT_REQ | QSF_FREE)) &&
        s->end == SFK_SH_LEN && p && p->present &&
        s->deadline_ns > quic_now(qi)) {
      uint8_t hdr[SFK_SH_LEN];

      sbuf_free(s);
      s->acked = s->sent = s->end = 0;
      s->flags &= QSF_IN_DQ;
      quic_stream_set_conn(s, NULL);
      s->peer = p;
      s->id = -1;
      sfk_sh_encode(hdr, s->port);
      if (sbuf_append(s, hdr, sizeof(hdr)) == sizeof(hdr)) {
        TAILQ_INSERT_TAIL(&p->pending, s, link);
        quic_peer_schedule(p);
        continue;
      }
    }
    quic_stream_set_conn(s, NULL);
    if (s->app && !qi->stopped) {
      if (s->flags & QSF_CLOSE_Q)
        stream_close_app(s, s->close_err);
      else
        stream_status_then_close(s, SFK_ST_HOST_UNREACHABLE, err, why);
    }
    quic_stream_free(s);
  }
}

/* The peer sent STOP_SENDING (seen as SHUT_WR while writing). */
void quic_stream_peer_stopped(struct quic_stream *s) {
  quic_stream_sendq_del(s);
  if (s->app && !(s->flags & QSF_CLOSE_Q)) {
    s->flags |= QSF_CLOSE_Q;
    s->close_err = -ECONNRESET;
  }
  s->flags |= QSF_SHUT_REQ;
  quic_stream_defer(s);
}

/* ------------------------------------------------------------------ */
/* ngtcp2 callbacks                                                     */

static int cb_stream_open(ngtcp2_conn *conn, int64_t id, void *ud) {
  struct quic_conn *qc = ud;
  struct quic_stream *s;

  if (!ngtcp2_is_bidi_stream(id))
    return 0;
  s = calloc(1, sizeof(*s));
  if (!s)
    return NGTCP2_ERR_CALLBACK_FAILURE;
  s->qi = qc->qi;
  s->qc = qc;
  s->id = id;
  s->pid = qc->pid;
  s->role = QS_ACCEPTOR;
  /* Nothing allocated until the status is known or data is written. */
  s->flags = QSF_OPEN | QSF_GATED;
  TAILQ_INSERT_TAIL(&qc->streams, s, link);
  ngtcp2_conn_set_stream_user_data(conn, id, s);
  if (!(qc->flags & QCF_VERIFIED) || qc->qi->stopped) {
    s->flags |= QSF_SHUT_REQ;
    quic_stream_defer(s);
  }
  return 0;
}

/* Acceptor: collect and act on the header. Returns bytes used. */
static size_t stream_take_header(struct quic_stream *s, ngtcp2_conn *conn,
                                 const uint8_t *data, size_t len, int fin) {
  const struct sfk_host *h = s->qi->h;
  size_t n = SFK_SH_LEN - s->hdrlen;
  uint16_t port = 0;
  uint8_t status = SFK_ST_FAILURE;
  void *app;
  int r;

  if (n > len)
    n = len;
  memcpy(s->hdr + s->hdrlen, data, n);
  s->hdrlen = (uint8_t)(s->hdrlen + n);
  ngtcp2_conn_extend_max_stream_offset(conn, s->id, n);
  ngtcp2_conn_extend_max_offset(conn, n);
  r = sfk_sh_decode(s->hdr, s->hdrlen, &port);
  if (r < 0 || (r == 0 && fin)) {
    h->log(h, SFK_LOG_DEBUG,
           "peer %u: stream %lld: bad stream header (version 0x%02x, %u "
           "bytes); resetting it",
           s->pid, (long long)s->id, s->hdr[0], s->hdrlen);
    s->flags |= QSF_SHUT_REQ;
    quic_stream_defer(s);
    return n;
  }
  if (r == 0)
    return n;
  s->flags |= QSF_HDR | QSF_IN_ACCEPT;
  s->port = port;
  app = h->stream_accept(h, s, s->pid, port, &status);
  s->flags &= ~(uint32_t)QSF_IN_ACCEPT;
  if (app) {
    s->app = app;
    return n;
  }
  if (status == SFK_ST_OK)
    status = SFK_ST_FAILURE;
  h->log(h, SFK_LOG_DEBUG, "peer %u: stream to port %u refused (0x%02x)",
         s->pid, port, status);
  if ((s->flags & QSF_GATED) && sbuf_set_status(s, status) == 0) {
    s->end = 1;
    s->flags &= ~(uint32_t)QSF_GATED;
    s->flags |= QSF_FIN_Q | QSF_STOP_REQ;
    quic_stream_defer(s);
    quic_stream_sendq_add(s);
  }
  return n;
}

static int cb_recv_stream_data(ngtcp2_conn *conn, uint32_t flags, int64_t id,
                               uint64_t offset, const uint8_t *data,
                               size_t len, void *ud, void *sud) {
  struct quic_conn *qc = ud;
  struct quic_stream *s = sud;
  int fin = (flags & NGTCP2_STREAM_DATA_FLAG_FIN) != 0;
  const struct sfk_host *h = qc->qi->h;
  (void)offset;

  qc->flags |= QCF_RX_DATA;
  if (!s || qc->qi->stopped) {
    ngtcp2_conn_extend_max_offset(conn, len);
    return 0;
  }
  if (s->role == QS_ACCEPTOR && !(s->flags & QSF_HDR)) {
    size_t n = 0;
    /* A stream already being reset (bad header, unverified connection)
     * takes no header: its bytes go back as connection credit below,
     * like the rest of a packet after a bad header, or the window
     * shrinks by everything that arrives before the reset is sent. */
    if (!(s->flags & (QSF_SHUT_REQ | QSF_STOP_REQ | QSF_FREE)))
      n = stream_take_header(s, conn, data, len, fin);
    data += n;
    len -= n;
    if (!s->app) {
      if (len)
        ngtcp2_conn_extend_max_offset(conn, len);
      return 0;
    }
    if (!len && !fin)
      return 0;
  }
  if (!s->app) {
    ngtcp2_conn_extend_max_offset(conn, len);
    return 0;
  }
  if (s->role == QS_OPENER && !(s->flags & QSF_STATUS)) {
    uint8_t st;

    if (len == 0) {
      if (fin) {
        s->flags |= QSF_SHUT_REQ;
        quic_stream_defer(s);
        stream_status_then_close(s, SFK_ST_FAILURE, -ECONNRESET, NULL);
      }
      return 0;
    }
    st = data[0];
    data++;
    len--;
    ngtcp2_conn_extend_max_stream_offset(conn, id, 1);
    ngtcp2_conn_extend_max_offset(conn, 1);
    s->flags |= QSF_STATUS;
    h->stream_status(h, s->app, st, NULL);
    if (s->app && st != SFK_ST_OK) {
      s->flags |= QSF_SHUT_REQ;
      quic_stream_defer(s);
      stream_close_app(s, status_errno(st));
    }
    if (!s->app) {
      if (len)
        ngtcp2_conn_extend_max_offset(conn, len);
      return 0;
    }
    if (!len && !fin)
      return 0;
  }
  s->delivered += len;
  if (fin)
    s->flags |= QSF_RD_FIN;
  h->stream_data(h, s->app, data, len, fin);
  return 0;
}

static int cb_acked_stream_data_offset(ngtcp2_conn *conn, int64_t id,
                                       uint64_t offset, uint64_t datalen,
                                       void *ud, void *sud) {
  struct quic_stream *s = sud;
  (void)conn;
  (void)id;
  (void)ud;

  if (!s)
    return 0;
  sbuf_acked(s, offset + datalen);
  if ((s->flags & QSF_WANT_WR) && s->app &&
      stream_space(s) >= writable_threshold(s->qi)) {
    const struct sfk_host *h = s->qi->h;
    s->flags &= ~(uint32_t)QSF_WANT_WR;
    h->stream_writable(h, s->app);
  }
  return 0;
}

static int cb_stream_close(ngtcp2_conn *conn, uint32_t flags, int64_t id,
                           uint64_t app_error_code, void *ud, void *sud) {
  struct quic_stream *s = sud;
  (void)conn;
  (void)id;
  (void)ud;
  (void)app_error_code;

  /* Stream ids are cumulative: give the peer a new one for each of its
   * streams that ends, or it stalls after max_streams connections. */
  if (!ngtcp2_conn_is_local_stream(conn, id))
    ngtcp2_conn_extend_max_streams_bidi(conn, 1);
  if (!s)
    return 0;
  s->flags |= QSF_NG_CLOSED | QSF_FREE;
  quic_stream_sendq_del(s);
  quic_stream_defer(s);
  if (s->app && !s->qi->stopped) {
    int err = (flags & NGTCP2_STREAM_CLOSE_FLAG_APP_ERROR_CODE_SET)
                  ? -ECONNRESET
                  : 0;
    if (s->flags & QSF_CLOSE_Q)
      err = s->close_err;
    if (s->role == QS_OPENER && !(s->flags & QSF_STATUS) && err == 0)
      err = -ECONNRESET;
    stream_status_then_close(s, SFK_ST_FAILURE, err, NULL);
  }
  return 0;
}

static int cb_stream_reset(ngtcp2_conn *conn, int64_t id, uint64_t final_size,
                           uint64_t app_error_code, void *ud, void *sud) {
  struct quic_stream *s = sud;
  (void)conn;
  (void)id;
  (void)final_size;
  (void)app_error_code;
  (void)ud;

  if (!s)
    return 0;
  s->flags |= QSF_SHUT_REQ;
  quic_stream_sendq_del(s);
  quic_stream_defer(s);
  if (s->app && !s->qi->stopped)
    stream_status_then_close(s, SFK_ST_FAILURE, -ECONNRESET, NULL);
  return 0;
}

static int cb_extend_max_stream_data(ngtcp2_conn *conn, int64_t id,
                                     uint64_t max_data, void *ud, void *sud) {
  struct quic_stream *s = sud;
  (void)conn;
  (void)id;
  (void)max_data;
  (void)ud;

  if (!s)
    return 0;
  s->flags &= ~(uint32_t)QSF_BLOCKED;
  quic_stream_sendq_add(s);
  return 0;
}

void quic_stream_set_callbacks(ngtcp2_callbacks *cb) {
  cb->stream_open = cb_stream_open;
  cb->recv_stream_data = cb_recv_stream_data;
  cb->acked_stream_data_offset = cb_acked_stream_data_offset;
  cb->stream_close = cb_stream_close;
  cb->stream_reset = cb_stream_reset;
  cb->extend_max_stream_data = cb_extend_max_stream_data;
}

/* ------------------------------------------------------------------ */
/* Transport ops on streams                                             */

int quic_op_stream_open(void *self, uint32_t pid, uint16_t port, void *app,
                        void **ts) {
  struct quic_inst *qi = self;
  const struct sfk_host *h = qi->h;
  struct quic_peer *p;
  struct quic_stream *s;
  uint8_t hdr[SFK_SH_LEN];

  if (qi->stopped || !qi->started || pid == h->self_pid ||
      !h->peer_get(h, pid))
    return -EHOSTUNREACH;
  p = quic_peer_get(qi, pid);
  if (!p)
    return -ENOMEM;
  s = calloc(1, sizeof(*s));
  if (!s)
    return -ENOMEM;
  s->qi = qi;
  s->peer = p;
  s->app = app;
  s->id = -1;
  s->pid = pid;
  s->port = port;
  s->role = QS_OPENER;
  s->deadline_ns = quic_now(qi) + qi->cfg.handshake_timeout_ms * 1000000u;
  sfk_sh_encode(hdr, port);
  if (sbuf_append(s, hdr, sizeof(hdr)) != sizeof(hdr)) {
    free(s);
    return -ENOMEM;
  }
  TAILQ_INSERT_TAIL(&p->pending, s, link);
  /* Connect now if we are the dialling side and are only waiting. */
  if (pid < h->self_pid && !p->conn)
    p->next_connect_ns = 1;
  quic_peer_schedule(p);
  if (p->conn)
    quic_conn_dirty(p->conn);
  quic_kick(qi);
  *ts = s;
  return 0;
}

void quic_op_stream_reply(void *self, void *ts, uint8_t status) {
  struct quic_stream *s = ts;
  (void)self;

  if ((!s->app && !(s->flags & QSF_IN_ACCEPT)) || s->role != QS_ACCEPTOR ||
      !(s->flags & QSF_GATED))
    return;
  if (sbuf_set_status(s, status) != 0) {
    /* Out of memory: end the stream instead. */
    s->flags |= QSF_SHUT_REQ | QSF_CLOSE_Q;
    s->close_err = -ENOMEM;
    quic_stream_defer(s);
    return;
  }
  s->flags &= ~(uint32_t)QSF_GATED;
  if (status != SFK_ST_OK) {
    s->end = 1;
    s->flags |= QSF_FIN_Q | QSF_STOP_REQ | QSF_CLOSE_Q;
    s->close_err = 0;
    quic_stream_defer(s);
  }
  quic_stream_sendq_add(s);
}

size_t quic_op_stream_space(void *self, void *ts) {
  struct quic_stream *s = ts;
  size_t space = stream_space(s);
  (void)self;
  /* Contract (plugin.h): 0 means "wait for stream_writable()". */
  if (!space && s->app)
    s->flags |= QSF_WANT_WR;
  return space;
}

size_t quic_op_stream_write(void *self, void *ts, const uint8_t *data,
                            size_t len, int fin) {
  struct quic_stream *s = ts;
  size_t space = stream_space(s), n;
  (void)self;

  if (!s->app && !(s->flags & QSF_IN_ACCEPT))
    return 0;
  /* Acceptor writing before its reply: keep byte 0 for the status. */
  if ((s->flags & QSF_GATED) && s->end == 0 && space > 1 &&
      sbuf_set_status(s, SFK_ST_OK) == 0)
    space--;
  n = len < space ? len : space;
  n = n ? sbuf_append(s, data, n) : 0;
  if (n < len || n == space)
    s->flags |= QSF_WANT_WR; /* full: stream_writable() when space reopens */
  else if (fin && !(s->flags & (QSF_FIN_Q | QSF_NG_CLOSED | QSF_SHUT_REQ)))
    s->flags |= QSF_FIN_Q;
  if (n || fin) {
    quic_stream_sendq_add(s);
    quic_kick(s->qi);
  }
  return n;
}

void quic_op_stream_consumed(void *self, void *ts, size_t n) {
  struct quic_stream *s = ts;
  struct quic_conn *qc = s->qc;
  (void)self;

  if (!s->app || n == 0)
    return;
  if (n > s->delivered - s->consumed)
    n = (size_t)(s->delivered - s->consumed);
  s->consumed += n;
  if (!qc || !qc->conn)
    return;
  if ((s->flags & QSF_OPEN) && !(s->flags & QSF_NG_CLOSED))
    ngtcp2_conn_extend_max_stream_offset(qc->conn, s->id, n);
  ngtcp2_conn_extend_max_offset(qc->conn, n);
  /* While an ACK is held, the credit rides along with it (half a window
   * of slack remains, so a millisecond costs nothing). */
  if (!qc->ack_hold_ns)
    quic_conn_dirty(qc);
}

void quic_op_stream_reset(void *self, void *ts) {
  struct quic_stream *s = ts;
  (void)self;

  if (!s->app && !(s->flags & QSF_IN_ACCEPT))
    return;
  stream_detach(s);
  s->flags &= ~(uint32_t)(QSF_CLOSE_Q | QSF_WANT_WR);
  if (!(s->flags & QSF_OPEN))
    s->flags |= QSF_FREE;
  else if (!(s->flags & QSF_NG_CLOSED))
    s->flags |= QSF_SHUT_REQ;
  quic_stream_defer(s);
}
