#include "autoconfig.h"

#include "socks_server.h"

#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bridge.h"
#include "splice.h"
#include "daemon.h"
#include "log.h"
#include "proto/socks5.h"
#include "util.h"

#define TAG "socks"
/* A client must finish its handshake within this time; a stuck client
 * costs one small struct until then and never blocks anyone. */
#define HANDSHAKE_TIMEOUT 10.0
#define MAX_HANDSHAKES 1024
#define INBUF 600 /* greeting 257 + userpass 513 are read in turn */

enum client_state { C_GREETING, C_USERPASS, C_REQUEST };

struct socks_client {
  struct socks_client *prev, *next;
  struct sfk_socks_server *srv;
  int fd;
  ev_io rio;
  ev_timer timer;
  enum client_state state;
  uint8_t in[INBUF];
  size_t inlen;
};

static void client_free(struct socks_client *c, int close_fd) {
  struct sfk_socks_server *s = c->srv;
  ev_io_stop(s->d->loop, &c->rio);
  ev_timer_stop(s->d->loop, &c->timer);
  if (close_fd)
    close(c->fd);
  if (c->prev)
    c->prev->next = c->next;
  else
    s->clients = c->next;
  if (c->next)
    c->next->prev = c->prev;
  s->nclients--;
  sfk_wipe(c->in, sizeof c->in); /* may hold a password */
  free(c);
}

static void client_send(struct socks_client *c, const uint8_t *p, size_t n) {
  /* Handshake replies are tiny and the socket buffer is empty: a short
   * write means the client is gone or hostile; the read side finds out. */
  if (send(c->fd, p, n, MSG_NOSIGNAL) != (ssize_t)n)
    sfk_debug(TAG, "short write to client");
}

static void client_reply_close(struct socks_client *c, uint8_t rep) {
  uint8_t r[10];
  client_send(c, r, socks5_write_reply(r, rep, 0, 0));
  client_free(c, 1);
}

static void client_consume(struct socks_client *c, size_t n) {
  memmove(c->in, c->in + n, c->inlen - n);
  c->inlen -= n;
}

/* Decide what to do with a complete request. */
static void client_request(struct socks_client *c,
                           const struct socks5_request *rq) {
  struct sfk_daemon *d = c->srv->d;
  if (rq->cmd != SOCKS5_CMD_CONNECT) {
    sfk_info(TAG, "command 0x%02x not supported (only CONNECT)", rq->cmd);
    client_reply_close(c, SFK_ST_CMD_UNSUPPORTED);
    return;
  }
  if (rq->atyp != SOCKS5_ATYP_IPV4) {
    sfk_info(TAG, "address type 0x%02x not supported (use 10.0.0.<pid>)",
             rq->atyp);
    client_reply_close(c, SFK_ST_ATYP_UNSUPPORTED);
    return;
  }
  uint32_t pid;
  if (!sfk_config_virtual_pid(&d->cfg, rq->ipv4, &pid)) {
    sfk_info(TAG, "%u.%u.%u.%u is outside the virtual network; refused",
             rq->ipv4 >> 24, (rq->ipv4 >> 16) & 255, (rq->ipv4 >> 8) & 255,
             rq->ipv4 & 255);
    client_reply_close(c, SFK_ST_NOT_ALLOWED);
    return;
  }
  if (rq->port == 0) {
    client_reply_close(c, SFK_ST_NOT_ALLOWED);
    return;
  }
  /* Hand the fd over; bytes after the request go along. */
  int fd = c->fd;
  uint8_t early[INBUF];
  size_t earlylen = c->inlen;
  memcpy(early, c->in, earlylen);
  client_free(c, 0);

  if (pid == d->cfg.pid) {
    const struct sfk_service *svc = sfk_config_service(&d->cfg, pid, rq->port);
    if (!svc) {
      uint8_t r[10];
      sfk_info(TAG, "own port %u is not in services; refused", rq->port);
      send(fd, r, socks5_write_reply(r, SFK_ST_NOT_ALLOWED, 0, 0),
           MSG_NOSIGNAL);
      close(fd);
      return;
    }
    struct sockaddr_storage sa;
    memcpy(&sa, &svc->host, svc->hostlen);
    ((struct sockaddr_in *)&sa)->sin_port = htons(rq->port);
    sfk_splice_open(d, fd, (struct sockaddr *)&sa, svc->hostlen, early,
                          earlylen);
    return;
  }
  sfk_debug(TAG, "CONNECT %s:%u", VADDR(d, pid), rq->port);
  sfk_bridge_open_peer(d, fd, pid, rq->port, early, earlylen);
}

/* Run the parsers over what has arrived.  Returns 0 to keep reading. */
static void client_advance(struct socks_client *c) {
  struct sfk_socks_server *s = c->srv;
  for (;;) {
    int n;
    if (c->state == C_GREETING) {
      struct socks5_greeting g;
      n = socks5_parse_greeting(c->in, c->inlen, &g);
      if (n == 0)
        return;
      if (n < 0) {
        sfk_info(TAG, "not a SOCKS5 greeting; closing");
        client_free(c, 1);
        return;
      }
      client_consume(c, (size_t)n);
      uint8_t r[2];
      int want_auth = s->username[0] != '\0';
      if (want_auth ? !g.offers_userpass : !g.offers_none) {
        sfk_info(TAG, "client offers no acceptable auth method");
        client_send(c, r, socks5_write_method(r, SOCKS5_AUTH_NO_ACCEPTABLE));
        client_free(c, 1);
        return;
      }
      client_send(c, r,
                  socks5_write_method(r, want_auth ? SOCKS5_AUTH_USERPASS
                                                   : SOCKS5_AUTH_NONE));
      c->state = want_auth ? C_USERPASS : C_REQUEST;
    } else if (c->state == C_USERPASS) {
      struct socks5_userpass up;
      n = socks5_parse_userpass(c->in, c->inlen, &up);
      if (n == 0)
        return;
      uint8_t r[2];
      /* Both compared in full, so timing tells nothing about either. */
      int good = n > 0;
      good &= sfk_ct_streq(up.user, s->username, sizeof up.user);
      good &= sfk_ct_streq(up.pass, s->password, sizeof up.pass);
      sfk_wipe(&up, sizeof up);
      if (n > 0)
        client_consume(c, (size_t)n);
      client_send(c, r, socks5_write_auth_status(r, good));
      if (!good) {
        sfk_warn(TAG, "SOCKS authentication failed");
        client_free(c, 1);
        return;
      }
      c->state = C_REQUEST;
    } else {
      struct socks5_request rq;
      n = socks5_parse_request(c->in, c->inlen, &rq);
      if (n == 0)
        return;
      if (n == SOCKS5_E_ATYP) {
        sfk_info(TAG, "unknown address type in SOCKS5 request");
        client_reply_close(c, SFK_ST_ATYP_UNSUPPORTED);
        return;
      }
      if (n < 0) {
        sfk_info(TAG, "malformed SOCKS5 request; closing");
        client_reply_close(c, SFK_ST_FAILURE);
        return;
      }
      client_consume(c, (size_t)n);
      client_request(c, &rq);
      return;
    }
  }
}

static void client_read_cb(struct ev_loop *loop, ev_io *w, int revents) {
  struct socks_client *c = w->data;
  (void)loop;
  (void)revents;
  if (c->inlen == sizeof c->in) {
    client_free(c, 1); /* cannot happen with valid messages */
    return;
  }
  ssize_t n = recv(c->fd, c->in + c->inlen, sizeof c->in - c->inlen, 0);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
    return;
  if (n <= 0) {
    sfk_debug(TAG, "client left during the handshake");
    client_free(c, 1);
    return;
  }
  c->inlen += (size_t)n;
  client_advance(c);
}

static void client_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents) {
  struct socks_client *c = w->data;
  (void)loop;
  (void)revents;
  sfk_info(TAG, "client did not finish the SOCKS handshake in %.0fs; closing",
           HANDSHAKE_TIMEOUT);
  client_free(c, 1);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents) {
  struct sfk_socks_server *s = w->data;
  (void)revents;
  for (int i = 0; i < 64; i++) {
    int fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
          errno == ENOMEM) {
        /* Out of descriptors: stop accepting briefly instead of spinning. */
        sfk_warn(TAG, "accept: %s; pausing for 1s", strerror(errno));
        ev_io_stop(loop, &s->accept_w);
        ev_timer_start(loop, &s->accept_pause);
      }
      return;
    }
    if (s->nclients >= MAX_HANDSHAKES) {
      sfk_warn(TAG, "too many SOCKS handshakes in progress; dropping a client");
      close(fd);
      continue;
    }
    struct socks_client *c = calloc(1, sizeof *c);
    if (!c) {
      close(fd);
      continue;
    }
    c->srv = s;
    c->fd = fd;
    ev_io_init(&c->rio, client_read_cb, fd, EV_READ);
    c->rio.data = c;
    ev_timer_init(&c->timer, client_timeout_cb, HANDSHAKE_TIMEOUT, 0.);
    c->timer.data = c;
    c->next = s->clients;
    if (s->clients)
      s->clients->prev = c;
    s->clients = c;
    s->nclients++;
    ev_io_start(loop, &c->rio);
    ev_timer_start(loop, &c->timer);
  }
}

static void accept_resume_cb(struct ev_loop *loop, ev_timer *w, int revents) {
  struct sfk_socks_server *s = w->data;
  (void)revents;
  ev_io_start(loop, &s->accept_w);
}

/* 127.0.0.0/8, ::1, or ::ffff:127.x: only this host can connect. */
static int is_loopback(const struct sockaddr *a) {
  if (a->sa_family == AF_INET)
    return (ntohl(((const struct sockaddr_in *)a)->sin_addr.s_addr) >> 24) ==
           127;
  if (a->sa_family == AF_INET6) {
    const struct in6_addr *v6 = &((const struct sockaddr_in6 *)a)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(v6) ||
           (IN6_IS_ADDR_V4MAPPED(v6) && v6->s6_addr[12] == 127);
  }
  return 0;
}

int sfk_socks_open(struct sfk_socks_server *s, struct sfk_daemon *d) {
  char as[SFK_ADDRSTR_MAX];
  const struct sockaddr *la = (const struct sockaddr *)&d->cfg.socks_listen;
  memset(s, 0, sizeof *s);
  s->d = d;
  s->fd = -1;
  if (d->cfg.socks_username[0]) {
    char err[PATH_MAX + 160];
    int rc = sfk_secret_read(d->cfg.socks_password_file, s->password,
                             sizeof s->password, err, sizeof err);
    if (rc < 0) {
      sfk_err(TAG, "socks.password_file: %s", err);
      return rc;
    }
    snprintf(s->username, sizeof s->username, "%s", d->cfg.socks_username);
  }
  s->fd = socket(la->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s->fd < 0)
    return -errno;
  int one = 1;
  setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(s->fd, la, d->cfg.socks_listenlen) < 0 || listen(s->fd, 1024) < 0) {
    int e = errno;
    sfk_err(TAG, "cannot listen on %s: %s", sfk_addr_str(la, as, sizeof as),
            strerror(e));
    close(s->fd);
    s->fd = -1;
    return -e;
  }
  if (!is_loopback(la))
    sfk_warn(TAG, "SOCKS listens on %s, not loopback: anyone who can reach it "
                  "can use this party's connections%s",
             sfk_addr_str(la, as, sizeof as),
             s->username[0] ? "" : " (no authentication configured)");
  ev_io_init(&s->accept_w, accept_cb, s->fd, EV_READ);
  s->accept_w.data = s;
  ev_timer_init(&s->accept_pause, accept_resume_cb, 1., 0.);
  s->accept_pause.data = s;
  ev_io_start(d->loop, &s->accept_w);
  return 0;
}

void sfk_socks_close(struct sfk_socks_server *s) {
  if (!s->d)
    return;
  while (s->clients)
    client_free(s->clients, 1);
  if (s->fd >= 0) {
    ev_io_stop(s->d->loop, &s->accept_w);
    ev_timer_stop(s->d->loop, &s->accept_pause);
    close(s->fd);
    s->fd = -1;
  }
  sfk_wipe(s->password, sizeof s->password);
}
