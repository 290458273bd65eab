/*
 * libcurl multi on libev (see sfkit_http.h).  libcurl tells us which
 * sockets to watch (socket callback) and when to call it back (timer
 * callback); the loop tells libcurl what happened with
 * curl_multi_socket_action(), after which finished transfers are
 * collected with curl_multi_info_read().
 */
#include "sfkit_http.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

/* One socket libcurl asked us to watch; owned by the client's list,
 * handed to libcurl with curl_multi_assign() so it finds it again. */
struct http_sock {
  ev_io io;
  struct sfk_http *c;
  curl_socket_t fd;
  struct http_sock *next;
};

struct sfk_http_req {
  struct sfk_http *c;
  CURL *easy; /* owned */
  struct sfk_http_req *next;
  char *buf; /* owned: body so far, NUL-terminated */
  size_t len, cap, max;
  int too_big;
  char errbuf[CURL_ERROR_SIZE];
  sfk_http_cb cb;
  void *arg;
};

struct sfk_http {
  struct ev_loop *loop; /* borrowed */
  CURLM *multi;         /* owned */
  ev_timer timer;       /* libcurl's timeout */
  struct http_sock *socks;
  struct sfk_http_req *reqs; /* in flight, owned */
};

static void check_done(struct sfk_http *c);

static void io_cb(struct ev_loop *loop, ev_io *w, int revents) {
  struct http_sock *s = w->data;
  struct sfk_http *c = s->c;
  int running, action = (revents & EV_READ ? CURL_CSELECT_IN : 0) |
                        (revents & EV_WRITE ? CURL_CSELECT_OUT : 0);
  (void)loop;
  /* s may be freed inside (the socket callback); use the copies. */
  curl_multi_socket_action(c->multi, s->fd, action, &running);
  check_done(c);
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents) {
  struct sfk_http *c = w->data;
  int running;
  (void)loop;
  (void)revents;
  curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_done(c);
}

static void sock_free(struct sfk_http *c, struct http_sock *s) {
  ev_io_stop(c->loop, &s->io);
  for (struct http_sock **pp = &c->socks; *pp; pp = &(*pp)->next)
    if (*pp == s) {
      *pp = s->next;
      break;
    }
  free(s);
}

/* CURLMOPT_SOCKETFUNCTION: watch fd for what libcurl wants. */
static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp,
                     void *socketp) {
  struct sfk_http *c = userp;
  struct http_sock *s = socketp;
  (void)easy;
  if (what == CURL_POLL_REMOVE) {
    if (s)
      sock_free(c, s);
    return 0;
  }
  if (!s) {
    s = calloc(1, sizeof *s);
    if (!s)
      return -1; /* libcurl fails the transfer */
    s->c = c;
    s->fd = fd;
    s->next = c->socks;
    c->socks = s;
    ev_init(&s->io, io_cb);
    s->io.data = s;
    curl_multi_assign(c->multi, fd, s);
  }
  int ev = (what & CURL_POLL_IN ? EV_READ : 0) |
           (what & CURL_POLL_OUT ? EV_WRITE : 0);
  ev_io_stop(c->loop, &s->io);
  ev_io_set(&s->io, fd, ev);
  ev_io_start(c->loop, &s->io);
  return 0;
}

/* CURLMOPT_TIMERFUNCTION: one timer, re-armed as libcurl says; never
 * call libcurl from here (a 0 ms timeout fires from the loop). */
static int timerfn_cb(CURLM *multi, long timeout_ms, void *userp) {
  struct sfk_http *c = userp;
  (void)multi;
  ev_timer_stop(c->loop, &c->timer);
  if (timeout_ms >= 0) {
    ev_timer_set(&c->timer, (double)timeout_ms / 1000.0, 0.);
    ev_timer_start(c->loop, &c->timer);
  }
  return 0;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *userp) {
  struct sfk_http_req *r = userp;
  size_t n = size * nmemb;
  if (n > r->max - r->len) {
    r->too_big = 1;
    return 0; /* CURLE_WRITE_ERROR ends the transfer */
  }
  if (r->len + n + 1 > r->cap) {
    size_t cap = r->cap ? r->cap : 4096;
    while (cap < r->len + n + 1)
      cap *= 2;
    if (cap > r->max + 1)
      cap = r->max + 1;
    char *b = realloc(r->buf, cap);
    if (!b)
      return 0;
    r->buf = b;
    r->cap = cap;
  }
  memcpy(r->buf + r->len, data, n);
  r->len += n;
  r->buf[r->len] = '\0';
  return n;
}

static void unlink_req(struct sfk_http *c, struct sfk_http_req *r) {
  for (struct sfk_http_req **pp = &c->reqs; *pp; pp = &(*pp)->next)
    if (*pp == r) {
      *pp = r->next;
      return;
    }
}

static void req_free(struct sfk_http *c, struct sfk_http_req *r) {
  if (r->easy) {
    curl_multi_remove_handle(c->multi, r->easy);
    curl_easy_cleanup(r->easy);
  }
  free(r->buf);
  free(r);
}

static void check_done(struct sfk_http *c) {
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(c->multi, &left))) {
    if (m->msg != CURLMSG_DONE)
      continue;
    struct sfk_http_req *r = NULL;
    CURLcode code = m->data.result;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
    if (!r)
      continue;
    struct sfk_http_res res = {.code = code, .too_big = r->too_big};
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &res.status);
    res.body = r->buf ? r->buf : "";
    res.len = r->len;
    res.error = code == CURLE_OK ? ""
                : r->errbuf[0]   ? r->errbuf
                                 : curl_easy_strerror(code);
    unlink_req(c, r);
    /* The callback may start or cancel requests, but r is no longer
     * listed, so it is freed only here. */
    r->cb(r->arg, &res);
    req_free(c, r);
  }
}

int sfk_http_new(struct ev_loop *loop, struct sfk_http **out) {
  struct sfk_http *c = calloc(1, sizeof *c);
  if (!c)
    return -ENOMEM;
  c->loop = loop;
  c->multi = curl_multi_init();
  if (!c->multi) {
    free(c);
    return -ENOMEM;
  }
  ev_init(&c->timer, timer_cb);
  c->timer.data = c;
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timerfn_cb);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
  *out = c;
  return 0;
}

int sfk_http_get(struct sfk_http *c, const char *url,
                 const struct sfk_http_opts *o, sfk_http_cb cb, void *arg,
                 struct sfk_http_req **out) {
  struct sfk_http_req *r = calloc(1, sizeof *r);
  if (!r)
    return -ENOMEM;
  r->c = c;
  r->cb = cb;
  r->arg = arg;
  r->max = o->max_body;
  r->easy = curl_easy_init();
  if (!r->easy) {
    free(r);
    return -ENOMEM;
  }
  CURL *e = r->easy;
  int bad = 0;
  bad |= curl_easy_setopt(e, CURLOPT_URL, url) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_HTTPGET, 1L) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)r) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, r) != CURLE_OK;
  /* No SIGALRM in a daemon: the threaded resolver needs no signals. */
  bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, o->timeout_ms) != CURLE_OK;
  bad |=
      curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, o->timeout_ms) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE,
                          (curl_off_t)o->max_body) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK;
  if (o->headers)
    bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, o->headers) != CURLE_OK;
  if (o->ca_file && o->ca_file[0])
    bad |= curl_easy_setopt(e, CURLOPT_CAINFO, o->ca_file) != CURLE_OK;
  if (o->user_agent)
    bad |= curl_easy_setopt(e, CURLOPT_USERAGENT, o->user_agent) != CURLE_OK;
  if (bad || curl_multi_add_handle(c->multi, e) != CURLM_OK) {
    curl_easy_cleanup(e);
    free(r);
    return -EINVAL;
  }
  r->next = c->reqs;
  c->reqs = r;
  *out = r;
  return 0;
}

void sfk_http_cancel(struct sfk_http *c, struct sfk_http_req *r) {
  if (!c || !r)
    return;
  unlink_req(c, r);
  req_free(c, r);
}

void sfk_http_del(struct sfk_http *c) {
  if (!c)
    return;
  while (c->reqs) {
    struct sfk_http_req *r = c->reqs;
    c->reqs = r->next;
    req_free(c, r);
  }
  /* Closes the cached connections; libcurl reports each socket removed. */
  curl_multi_cleanup(c->multi);
  while (c->socks)
    sock_free(c, c->socks);
  ev_timer_stop(c->loop, &c->timer);
  free(c);
}

int sfk_http_escape(const char *s, char *out, size_t outsz) {
  static const char hex[] = "0123456789ABCDEF";
  size_t o = 0;
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    int plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' ||
                ch == '_' || ch == '~';
    if (o + (plain ? 1 : 3) >= outsz) {
      if (outsz)
        out[0] = '\0';
      return -ENOSPC;
    }
    if (plain) {
      out[o++] = (char)ch;
    } else {
      out[o++] = '%';
      out[o++] = hex[ch >> 4];
      out[o++] = hex[ch & 15];
    }
  }
  if (o >= outsz)
    return -ENOSPC;
  out[o] = '\0';
  return 0;
}
