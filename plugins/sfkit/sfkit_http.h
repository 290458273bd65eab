/*
 * HTTP GET requests with libcurl's multi interface driven by a libev
 * loop (CURLMOPT_SOCKETFUNCTION / CURLMOPT_TIMERFUNCTION with ev_io /
 * ev_timer): nothing here blocks the loop.  One easy handle per request;
 * the answer body is bounded.  No global state: one client per plugin
 * instance.
 *
 * TLS verification is libcurl's default (peer and host verified); the
 * proxy environment variables (https_proxy, no_proxy, ...) work as in
 * curl(1) because no proxy is set here.  Redirects are not followed.
 */
#ifndef SFKIT_HTTP_H
#define SFKIT_HTTP_H

#include <stddef.h>

#include <curl/curl.h>

struct ev_loop;
struct sfk_http;
struct sfk_http_req;

/* What a finished request produced; borrowed for the callback. */
struct sfk_http_res {
  CURLcode code;    /* CURLE_OK when an HTTP answer arrived */
  long status;      /* HTTP status, 0 without an answer */
  int too_big;      /* the body exceeded max_body (code is an error) */
  const char *body; /* NUL-terminated; "" without one */
  size_t len;
  const char *error; /* curl's message when code != CURLE_OK, else "" */
};

/* Called once per request from the loop, never from sfk_http_get(),
 * and not at all after sfk_http_cancel()/sfk_http_del().  The callback
 * may start or cancel requests, but must not delete the client. */
typedef void (*sfk_http_cb)(void *arg, const struct sfk_http_res *res);

struct sfk_http_opts {
  const struct curl_slist *headers; /* borrowed: must outlive the request */
  const char *ca_file;              /* CA bundle, or NULL/"" for the system's */
  long timeout_ms;                  /* whole request, connect included */
  size_t max_body;                  /* larger answers fail (too_big) */
  const char *user_agent;
};

/* A client on loop.  Returns 0 and *out, or -ENOMEM. */
int sfk_http_new(struct ev_loop *loop, struct sfk_http **out);

/*
 * Start GET url.  The url is copied by libcurl, opts are read now (but
 * headers must stay valid until the callback or a cancel).  Returns 0 and
 * *out (valid until the callback returns or the request is cancelled), or
 * a negative errno.
 */
int sfk_http_get(struct sfk_http *c, const char *url,
                 const struct sfk_http_opts *opts, sfk_http_cb cb, void *arg,
                 struct sfk_http_req **out);

/* Abort one request; its callback is never called. */
void sfk_http_cancel(struct sfk_http *c, struct sfk_http_req *r);

/* Abort everything, close every connection, stop every watcher, free.
 * NULL is fine. */
void sfk_http_del(struct sfk_http *c);

/* Escape s for a URL query (percent-encoding) into out; 0 or -ENOSPC. */
int sfk_http_escape(const char *s, char *out, size_t outsz);

#endif
