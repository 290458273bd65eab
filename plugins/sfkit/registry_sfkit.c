/*
 * Registry plugin `sfkit`: the sfkit website is the registry.
 *
 *   registry:
 *     plugin: sfkit
 *     api_url: https://sfkit.org/api   # or --api URL
 *     auth_key_file: auth_key.txt      # or --auth-key-file FILE (chmod 600)
 *     poll: 10s                        # re-read period once every peer is
 * known timeout: 10s                     # per request ca_file: site-ca.pem #
 * optional CA bundle
 *
 * Publishes EXTERNAL_ADDR and QUIC_PUBKEY_SHA256 (one update_firestore
 * call each) and reads every participant's values with get_doc_ref_dict;
 * PID = index in `participants` (SPEC, "The sfkit website API").
 *
 * Three operations (publish the address, publish the pin, read the
 * study) each have a due time; at most one request is in flight, the one
 * due first (publishing before reading on ties).  That coalesces
 * refreshes and keeps the website's load at one request at a time.
 */
#include "autoconfig.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <curl/curl.h>
#include <ev.h>

#include "sfkit-proxy/plugin.h"
#include "sfkit_doc.h"
#include "sfkit_http.h"

#define MAX_BODY (1u << 20)     /* answers above 1 MiB are errors */
#define KEY_SIZE 8192           /* auth keys / Terra tokens, with margin */
#define FAST_FIRST_MS 1000u     /* polling while peers are missing ... */
#define FAST_MAX_MS 5000u       /* ... backing off gently up to this */
#define BACKOFF_FIRST_MS 500u   /* retries after transient errors ... */
/* ... doubling up to this: after an outage ends a party is back within
 * ~10 s (with 30 s a 20 s outage kept one unpublished 47 s), and one
 * request per 5-10 s per party is no storm for the website. */
#define BACKOFF_MAX_MS 10000u
#define REFUSED_RETRY_MS 30000u /* after a 4xx: the cause needs a person */
#define REFRESH_DELAY_MS 200u   /* coalesces refreshes of several peers */

enum op { OP_ADDR = 0, OP_PIN = 1, OP_READ = 2, OP_N };
static const char *const op_name[OP_N] = {SFK_DOC_ADDR_NAME, SFK_DOC_PIN_NAME,
                                          "read"};

/* Settings from the section; replaced as a whole by reconfigure(). */
struct settings {
  char api_url[1024];  /* without a trailing '/' */
  char key_file[4096]; /* path only, for messages */
  char ca_file[4096];  /* "" for the system's CAs */
  uint64_t poll_ms, timeout_ms;
  int insecure_http;       /* http:// to a host that is not loopback */
  struct curl_slist *hdrs; /* owned: "Authorization: <key>" (a secret,
                              wiped before it is freed) */
};

struct op_state {
  int wanted;        /* ADDR/PIN: a value waits to be published */
  uint64_t due_ns;   /* not before this (loop clock) */
  unsigned failures; /* in a row, for backoff */
  char logged[320];  /* last error logged, so each is logged once */
};

/* Last outcome of a publish or a read, for report(). */
struct outcome {
  int done, err;
  time_t at;
  char why[320];
};

struct reg_sfkit {
  const struct sfk_host *h; /* borrowed */
  struct settings s;
  int curl_inited, started;
  struct sfk_http *http;    /* owned while started */
  struct sfk_http_req *req; /* in flight, or NULL */
  int inflight;             /* enum op of req, or -1 */
  char inflight_val[SFK_DOC_ADDR_SIZE + SFK_PIN_SIZE];
  int reread;     /* refresh() came during a read */
  ev_timer timer; /* the next due operation */

  struct op_state op[OP_N];
  char addr[SFK_DOC_ADDR_SIZE]; /* to publish (website form), "" none */
  char pin[SFK_PIN_SIZE];
  char done_addr[SFK_DOC_ADDR_SIZE]; /* last published */

  /* What peers_set() got last (owned); bad[i] the warning logged for
   * participant i, so a malformed entry is logged once. */
  struct sfk_peer *peers;
  char (*bad)[192];
  size_t npeers;
  int have_peers;
  size_t known;
  uint64_t fast_ms;
  int pid_warned;

  struct outcome pub, rd;
  uint64_t n_requests, n_failures, n_retries;
  unsigned streak; /* transient failures in a row, any op */
};

/* snprintf that cuts quietly: messages may be cut, never overflow. */
static void fmt(char *buf, size_t sz, const char *f, ...) SFK_PRINTF(3, 4);
static void fmt(char *buf, size_t sz, const char *f, ...) {
  va_list ap;
  va_start(ap, f);
  vsnprintf(buf, sz, f, ap);
  va_end(ap);
}

/* ---- small helpers */

static void wipe(void *p, size_t n) {
#ifdef HAVE_EXPLICIT_BZERO
  explicit_bzero(p, n);
#else
  volatile unsigned char *v = p;
  while (n--)
    *v++ = 0;
#endif
}

static void hdrs_free(struct curl_slist *l) {
  for (struct curl_slist *i = l; i; i = i->next)
    if (i->data)
      wipe(i->data, strlen(i->data));
  curl_slist_free_all(l);
}

static uint64_t now_ns(const struct reg_sfkit *r) {
  return r->h->now_ns(r->h);
}

static uint64_t ms_ns(uint64_t ms) {
  return ms * 1000000u;
}

/* A random duration in [d/2, d] (jitter spreads parties' retries). */
static uint64_t jitter_ms(const struct reg_sfkit *r, uint64_t d) {
  uint32_t x = 0;
  if (r->h->random(r->h, &x, sizeof x) < 0)
    x = (uint32_t)(now_ns(r) >> 10);
  return d / 2 + (d / 2 ? x % (d / 2 + 1) : 0);
}

static int is_loopback_host(const char *host) {
  return strcmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 ||
         strcmp(host, "[::1]") == 0 || strcmp(host, "::1") == 0;
}

/* ---- settings */

static void settings_free(struct settings *s) {
  hdrs_free(s->hdrs);
  s->hdrs = NULL;
}

/* The node to blame for KEY: the key's own node when it is in the file
 * and not replaced by an option (then where == NULL marks the option). */
static const struct sfk_cfg_node *node_of(const struct sfk_host *h,
                                          const struct sfk_cfg_node *cfg,
                                          const char *key) {
  const struct sfk_cfg_node *n = cfg ? h->cfg_get(cfg, key) : NULL;
  return n ? n : cfg;
}

static int check_api_url(const struct sfk_host *h,
                         const struct sfk_cfg_node *cfg, const char *url,
                         const char *what, struct settings *s) {
  const struct sfk_cfg_node *n = node_of(h, cfg, "api_url");
  size_t len = strlen(url);
  if (strncasecmp(url, "https://", 8) != 0 &&
      strncasecmp(url, "http://", 7) != 0) {
    h->cfg_error(h, n,
                 "%s must be an https:// (or http://) URL such as "
                 "https://sfkit.org/api",
                 what);
    return -EINVAL;
  }
  while (len && url[len - 1] == '/')
    len--;
  if (len >= sizeof s->api_url) {
    h->cfg_error(h, n, "%s is too long (at most %zu bytes)", what,
                 sizeof s->api_url - 1);
    return -EINVAL;
  }
  memcpy(s->api_url, url, len);
  s->api_url[len] = '\0';
  CURLU *u = curl_url();
  char *host = NULL, *user = NULL, *query = NULL, *frag = NULL;
  int rc = 0;
  if (!u)
    return -ENOMEM;
  if (curl_url_set(u, CURLUPART_URL, s->api_url, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
    h->cfg_error(h, n, "%s is not a valid URL", what);
    rc = -EINVAL;
  } else if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK) {
    /* It would show in status and logs. */
    h->cfg_error(h, n,
                 "%s must not hold a user name or password (the "
                 "auth key goes in auth_key_file)",
                 what);
    rc = -EINVAL;
  } else if (curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK ||
             curl_url_get(u, CURLUPART_FRAGMENT, &frag, 0) == CURLUE_OK) {
    h->cfg_error(h, n,
                 "%s must not hold a query or fragment (use "
                 "party.study_id / --study for the study)",
                 what);
    rc = -EINVAL;
  } else {
    s->insecure_http =
        strncasecmp(s->api_url, "http://", 7) == 0 && !is_loopback_host(host);
  }
  curl_free(host);
  curl_free(user);
  curl_free(query);
  curl_free(frag);
  curl_url_cleanup(u);
  return rc;
}

/*
 * Read and check every key into *s.  Errors are reported at their
 * positions (or naming the option that replaced the key).
 */
static int settings_parse(const struct sfk_host *h,
                          const struct sfk_cfg_node *cfg, struct settings *s) {
  const char *url = NULL;
  int bad = 0;
  memset(s, 0, sizeof *s);

  const struct sfk_cfg_node *un = cfg ? h->cfg_get(cfg, "api_url") : NULL;
  if (h->cfg_string(h, cfg, "api_url", NULL, &url) < 0) {
    bad = 1;
  } else if (!url || !url[0]) {
    h->cfg_error(h, cfg,
                 "registry 'sfkit' needs api_url (the website's API, "
                 "e.g. https://sfkit.org/api) or --api URL");
    bad = 1;
  } else {
    /* A value that is not the file's scalar came from --api. */
    int from_opt = !un || h->cfg_scalar(un) != url;
    if (check_api_url(h, cfg, url, from_opt ? "--api" : "api_url", s) < 0)
      bad = 1;
  }

  if (h->cfg_duration_ms(h, cfg, "poll", 10000, &s->poll_ms) < 0) {
    bad = 1;
  } else if (s->poll_ms < 1000 || s->poll_ms > 86400000u) {
    h->cfg_error(h, node_of(h, cfg, "poll"), "poll must be 1s to 24h");
    bad = 1;
  }
  if (h->cfg_duration_ms(h, cfg, "timeout", 10000, &s->timeout_ms) < 0) {
    bad = 1;
  } else if (s->timeout_ms < 100 || s->timeout_ms > 600000u) {
    h->cfg_error(h, node_of(h, cfg, "timeout"), "timeout must be 100ms to 10m");
    bad = 1;
  }

  if (h->cfg_path(h, cfg, "ca_file", NULL, s->ca_file, sizeof s->ca_file) < 0) {
    bad = 1;
  } else if (s->ca_file[0]) {
    struct stat st;
    if (stat(s->ca_file, &st) < 0 || !S_ISREG(st.st_mode)) {
      h->cfg_error(h, node_of(h, cfg, "ca_file"),
                   "ca_file %s: no such file (a PEM bundle of the CA that "
                   "signed the website's certificate)",
                   s->ca_file);
      bad = 1;
    }
  }

  if (h->cfg_path(h, cfg, "auth_key_file", NULL, s->key_file,
                  sizeof s->key_file) < 0) {
    bad = 1;
  } else if (!s->key_file[0]) {
    h->cfg_error(h, cfg,
                 "registry 'sfkit' needs auth_key_file (the auth key "
                 "from the study's page, chmod 600) or "
                 "--auth-key-file FILE");
    bad = 1;
  } else {
    /* key[] and line[] hold the secret: wiped below on every path. */
    char key[KEY_SIZE], line[KEY_SIZE + 32];
    if (h->cfg_secret(h, cfg, "auth_key_file", NULL, key, sizeof key) < 0) {
      bad = 1;
    } else {
      int ctl = 0;
      for (const char *p = key; *p; p++)
        ctl |= (unsigned char)*p < 0x20 || *p == 0x7f;
      if (ctl) {
        h->cfg_error(h, node_of(h, cfg, "auth_key_file"),
                     "the auth key in %s holds control characters (it "
                     "must be one line of text)",
                     s->key_file);
        bad = 1;
      } else {
        fmt(line, sizeof line, "Authorization: %s", key);
        s->hdrs = curl_slist_append(NULL, line);
        if (!s->hdrs)
          bad = 1;
      }
      wipe(line, sizeof line);
    }
    wipe(key, sizeof key);
  }
  if (bad) {
    settings_free(s);
    return -EINVAL;
  }
  return 0;
}

/* ---- outcomes and messages */

static void outcome_set(struct outcome *o, int err, const char *why) {
  o->done = 1;
  o->err = err;
  o->at = time(NULL);
  fmt(o->why, sizeof o->why, "%s", why ? why : "");
}

/* Log msg at level unless it is what was logged last for this op. */
static void log_once(struct reg_sfkit *r, enum op op, int level,
                     const char *msg, const char *retry) {
  struct op_state *o = &r->op[op];
  if (strcmp(o->logged, msg) == 0) {
    r->h->log(r->h, SFK_LOG_DEBUG, "%s%s", msg, retry);
    return;
  }
  fmt(o->logged, sizeof o->logged, "%s", msg);
  r->h->log(r->h, level, "%s%s", msg, retry);
}

static const char *study_words(const struct reg_sfkit *r, char *buf,
                               size_t sz) {
  if (r->h->study_id && r->h->study_id[0])
    fmt(buf, sz, "study %s", r->h->study_id);
  else
    fmt(buf, sz, "the key's study");
  return buf;
}

enum kind { K_TRANSIENT, K_REFUSED, K_WAIT };

/*
 * Words for a failed request.  *kind says how to retry: TRANSIENT with
 * backoff (timeouts, connection errors, 5xx), WAIT at the polling pace
 * (the study is not complete yet), REFUSED slowly (a person must act).
 * The meanings follow the website's src/cli.py and src/auth.py.
 */
static void explain(const struct reg_sfkit *r, enum op op,
                    const struct sfk_http_res *res, char *msg, size_t sz,
                    enum kind *kind, int *err) {
  char srv[160], st[160];
  const char *what = op == OP_READ ? "reading the study" : "publishing";
  sfk_doc_error_text(res->body, res->len, srv, sizeof srv);
  study_words(r, st, sizeof st);
  *kind = K_REFUSED;
  *err = -EACCES;
  if (res->code != CURLE_OK) {
    *kind = K_TRANSIENT;
    *err = -EIO;
    switch (res->code) {
    case CURLE_OPERATION_TIMEDOUT:
      *err = -ETIMEDOUT;
      fmt(msg, sz, "%s: no answer from %s within the timeout (%s)", what,
          r->s.api_url, res->error);
      break;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
      *kind = K_REFUSED;
      *err = -EPERM;
      fmt(msg, sz,
          "%s: the website's TLS certificate was not "
          "accepted: %s (a site with its own CA needs registry.ca_file "
          "set to that CA's PEM file)",
          what, res->error);
      break;
    case CURLE_WRITE_ERROR:
      if (res->too_big) {
        *err = -EMSGSIZE;
        fmt(msg, sz, "%s: the answer is larger than %u bytes", what, MAX_BODY);
        break;
      }
      /* fall through */
    default:
      fmt(msg, sz, "%s: cannot reach %s: %s", what, r->s.api_url, res->error);
      break;
    }
    return;
  }
  long s = res->status;
  const char *name = op == OP_READ ? "" : op_name[op];
  if (s >= 500 || s == 408 || s == 429) {
    *kind = K_TRANSIENT;
    *err = -EAGAIN;
    fmt(msg, sz, "%s: the website answered %ld%s%s%s", what, s,
        srv[0] ? " (" : "", srv, srv[0] ? ")" : "");
  } else if (s == 401) {
    fmt(msg, sz,
        "%s: the auth key in %s was not accepted (wrong or "
        "expired key%s%s%s): download the study's auth key again from "
        "the website",
        what, r->s.key_file, srv[0] ? ": " : "", srv, "");
  } else if (s == 403) {
    if (r->h->study_id && r->h->study_id[0])
      fmt(msg, sz,
          "%s: this auth key is not a participant of %s (or the "
          "study does not exist): check party.study_id / --study and that "
          "%s is this party's key",
          what, st, r->s.key_file);
    else
      fmt(msg, sz,
          "%s: this auth key is not a participant of its study (or "
          "the study no longer exists): check that %s is this party's key "
          "for this study",
          what, r->s.key_file);
  } else if (s == 409 && strstr(srv, "GCP_PROJECT")) {
    fmt(msg, sz,
        "%s: the website refuses updates from this party "
        "until its personal parameters are set up (%s): open %s on "
        "the website and finish this party's parameters",
        what, srv, st);
  } else if (s == 409) {
    *kind = K_WAIT;
    *err = -EAGAIN;
    fmt(msg, sz,
        "%s: the study is not complete yet (not every "
        "participant joined%s%s%s); waiting",
        what, srv[0] ? ": " : "", srv, "");
  } else if (s == 400 && strstr(srv, "study ID")) {
    fmt(msg, sz,
        "%s: the website needs a study id (Terra): set "
        "party.study_id or pass --study ID",
        what);
  } else if (s == 400 && op != OP_READ) {
    fmt(msg, sz,
        "the study has no parameter %s for this party (the "
        "website answered 400%s%s%s): the study's personal parameters "
        "must include %s and %s; ask the study owner to create the "
        "study on an sfkit website version that creates them for "
        "every participant (or use registry plugin 'static')",
        name, srv[0] ? ": " : "", srv, "", SFK_DOC_ADDR_NAME, SFK_DOC_PIN_NAME);
  } else if (s == 404) {
    fmt(msg, sz,
        "%s: no sfkit API at %s (404): check api_url / --api "
        "(it ends in /api)",
        what, r->s.api_url);
  } else if (s >= 300 && s < 400) {
    fmt(msg, sz,
        "%s: the website redirects (%ld): set api_url to the "
        "address it redirects to",
        what, s);
  } else {
    fmt(msg, sz, "%s: the website answered %ld%s%s%s", what, s,
        srv[0] ? " (" : "", srv, srv[0] ? ")" : "");
  }
}

/* ---- scheduling */

static void schedule(struct reg_sfkit *r);

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop;
  (void)revents;
  schedule(w->data);
}

static void on_answer(void *arg, const struct sfk_http_res *res);

/* Start the request for op; 0 or a negative errno. */
static int op_start(struct reg_sfkit *r, enum op op) {
  char url[4096], q[512], sid[512] = "";
  int n;
  if (r->h->study_id && r->h->study_id[0]) {
    char e[400];
    if (sfk_http_escape(r->h->study_id, e, sizeof e) < 0)
      return -ENAMETOOLONG;
    fmt(sid, sizeof sid, "study_id=%s", e);
  }
  if (op == OP_READ) {
    r->inflight_val[0] = '\0';
    n = snprintf(url, sizeof url, "%s/get_doc_ref_dict%s%s", r->s.api_url,
                 sid[0] ? "?" : "", sid);
  } else {
    char m[256];
    fmt(r->inflight_val, sizeof r->inflight_val, "%s",
        op == OP_ADDR ? r->addr : r->pin);
    fmt(m, sizeof m, "update_firestore::%s=%s", op_name[op], r->inflight_val);
    if (sfk_http_escape(m, q, sizeof q) < 0)
      return -ENAMETOOLONG;
    n = snprintf(url, sizeof url, "%s/update_firestore?msg=%s%s%s",
                 r->s.api_url, q, sid[0] ? "&" : "", sid);
  }
  if (n < 0 || (size_t)n >= sizeof url)
    return -ENAMETOOLONG;
  const struct sfk_http_opts o = {
      .headers = r->s.hdrs,
      .ca_file = r->s.ca_file,
      .timeout_ms = (long)r->s.timeout_ms,
      .max_body = MAX_BODY,
      .user_agent = "sfkit-proxy/" PACKAGE_VERSION,
  };
  int rc = sfk_http_get(r->http, url, &o, on_answer, r, &r->req);
  if (rc < 0)
    return rc;
  r->inflight = (int)op;
  r->n_requests++;
  if (r->op[op].failures)
    r->n_retries++;
  if (r->h->log_enabled(r->h, SFK_LOG_DEBUG))
    r->h->log(r->h, SFK_LOG_DEBUG, "%s %s",
              op == OP_READ ? "reading the study from" : "publishing to",
              r->s.api_url);
  return 0;
}

static void schedule(struct reg_sfkit *r) {
  if (!r->started || r->req)
    return;
  ev_timer_stop(r->h->loop, &r->timer);
  for (;;) {
    /* The first op that is due (publishing before reading), else the
     * one due soonest. */
    uint64_t now = now_ns(r);
    int best = -1;
    for (int i = 0; i < OP_N && best < 0; i++)
      if (r->op[i].wanted && r->op[i].due_ns <= now)
        best = i;
    for (int i = 0; i < OP_N && best < 0; i++)
      if (r->op[i].wanted)
        best = i;
    if (best < 0)
      return;
    for (int i = 0; i < OP_N; i++)
      if (r->op[i].wanted && r->op[i].due_ns < r->op[best].due_ns &&
          r->op[best].due_ns > now)
        best = i;
    if (r->op[best].due_ns > now) {
      ev_timer_set(&r->timer, (double)(r->op[best].due_ns - now) / 1e9, 0.);
      ev_timer_start(r->h->loop, &r->timer);
      return;
    }
    int rc = op_start(r, (enum op)best);
    if (rc == 0)
      return;
    /* Cannot even start (out of memory, URL too long): try later. */
    r->h->log(r->h, SFK_LOG_ERROR, "cannot start a request: %s", strerror(-rc));
    r->op[best].due_ns = now + ms_ns(BACKOFF_MAX_MS);
  }
}

/* When op runs again after a failure of this kind. */
static uint64_t retry_delay_ms(struct reg_sfkit *r, enum kind k) {
  if (k == K_REFUSED)
    return jitter_ms(r, REFUSED_RETRY_MS);
  if (k == K_WAIT)
    return r->fast_ms;
  /* The streak counts failures of every op: when the website is down,
   * publishing and reading back off together. */
  uint64_t d = BACKOFF_FIRST_MS;
  for (unsigned i = 1; i < r->streak && d < BACKOFF_MAX_MS; i++)
    d *= 2;
  return jitter_ms(r, d < BACKOFF_MAX_MS ? d : BACKOFF_MAX_MS);
}

/* The website is failing: no op runs before `until`, so one request
 * probes it per backoff step instead of one per op. */
static void hold_all(struct reg_sfkit *r, uint64_t until) {
  for (int i = 0; i < OP_N; i++)
    if (r->op[i].wanted && r->op[i].due_ns < until)
      r->op[i].due_ns = until;
}

/* ---- reading the study */

static int peer_same(const struct sfk_peer *a, const struct sfk_peer *b) {
  return a->pid == b->pid && a->addrlen == b->addrlen &&
         memcmp(&a->addr, &b->addr, a->addrlen) == 0 &&
         strcmp(a->pin, b->pin) == 0;
}

/* Hand the study's participants to the daemon when anything changed. */
static int apply_doc(struct reg_sfkit *r, const struct sfk_doc *d) {
  const struct sfk_host *h = r->h;
  size_t n = d->n, known = 0;
  struct sfk_peer *v = calloc(n ? n : 1, sizeof *v);
  char(*bad)[192] = calloc(n ? n : 1, sizeof *bad);
  if (!v || !bad) {
    free(v);
    free(bad);
    return -ENOMEM;
  }
  for (size_t i = 0; i < n; i++) {
    const struct sfk_doc_party *p = &d->v[i];
    v[i].pid = (uint32_t)i;
    if (p->addr_st == SFK_DOC_BAD || p->pin_st == SFK_DOC_BAD) {
      /* Unknown, and said once per distinct problem. */
      fmt(bad[i], sizeof bad[i], "%s", p->bad);
      if (!(r->bad && i < r->npeers && strcmp(r->bad[i], bad[i]) == 0))
        h->log(h, SFK_LOG_WARN,
               "participant %zu (%s) published a malformed "
               "value, treated as not published: %s",
               i, p->user[0] ? p->user : "?", p->bad);
      continue;
    }
    if (p->addr_st == SFK_DOC_OK && p->pin_st == SFK_DOC_OK) {
      v[i].addr = p->addr;
      v[i].addrlen = p->addrlen;
      memcpy(v[i].pin, p->pin, SFK_PIN_SIZE);
      known++;
    }
  }
  int changed = !r->have_peers || n != r->npeers;
  for (size_t i = 0; !changed && i < n; i++)
    changed = !peer_same(&v[i], &r->peers[i]);
  if (known != r->known || !r->have_peers) {
    /* Progress, said when it changes; polling quickens again. */
    h->log(h, SFK_LOG_INFO, "peers known %zu/%zu", known, n);
    r->fast_ms = FAST_FIRST_MS;
  } else if (known < n) {
    uint64_t cap = r->s.poll_ms < FAST_MAX_MS ? r->s.poll_ms : FAST_MAX_MS;
    r->fast_ms = r->fast_ms * 5 / 4 < cap ? r->fast_ms * 5 / 4 : cap;
  }
  if (h->self_pid >= n && !r->pid_warned) {
    h->log(h, SFK_LOG_ERROR,
           "party.pid is %u but the study has %zu "
           "participants (PIDs 0-%zu): check --pid",
           h->self_pid, n, n ? n - 1 : 0);
    r->pid_warned = 1;
  } else if (h->self_pid < n && !r->pid_warned) {
    /* Our pin under another PID: this party's user is elsewhere in the
     * list, so peers would look for us at the wrong virtual address. */
    const char *mine = h->identity(h)->pin;
    for (size_t i = 0; i < n; i++)
      if (i != h->self_pid && strcmp(v[i].pin, mine) == 0 &&
          strcmp(v[h->self_pid].pin, mine) != 0) {
        h->log(h, SFK_LOG_ERROR,
               "party.pid is %u but the website lists "
               "this party's pin at participant %zu (%s): use --pid %zu",
               h->self_pid, i, d->v[i].user, i);
        r->pid_warned = 1;
      }
  }
  free(r->peers);
  free(r->bad);
  r->peers = v;
  r->bad = bad;
  r->npeers = n;
  r->known = known;
  r->have_peers = 1;
  if (changed)
    h->peers_set(h, v, n);
  return 0;
}

static void read_done(struct reg_sfkit *r, const struct sfk_http_res *res) {
  struct op_state *o = &r->op[OP_READ];
  struct sfk_doc d;
  char err[256], why[320];
  uint64_t now = now_ns(r);
  int rc = sfk_doc_parse(res->body, res->len, &d, err, sizeof err);
  if (rc == 0)
    rc = apply_doc(r, &d);
  if (rc < 0) {
    fmt(why, sizeof why, "reading the study: %s",
        rc == -ENOMEM ? "out of memory" : err);
    o->failures++;
    r->n_failures++;
    r->streak++;
    uint64_t delay = retry_delay_ms(r, K_TRANSIENT);
    char retry[64];
    fmt(retry, sizeof retry, "; retrying in %.1f s", (double)delay / 1e3);
    log_once(r, OP_READ, SFK_LOG_WARN, why, retry);
    outcome_set(&r->rd, rc, why);
    r->h->registry_result(r->h, 1, rc, why);
    o->due_ns = now + ms_ns(delay);
    hold_all(r, o->due_ns);
    sfk_doc_free(&d);
    return;
  }
  if (o->logged[0])
    r->h->log(r->h, SFK_LOG_INFO, "reading the study works again");
  o->logged[0] = '\0';
  o->failures = 0;
  fmt(why, sizeof why, "participants %zu, known %zu", d.n, r->known);
  outcome_set(&r->rd, 0, why);
  r->h->registry_result(r->h, 1, 0, why);
  o->due_ns = now + ms_ns(r->known == d.n && d.n ? r->s.poll_ms : r->fast_ms);
  sfk_doc_free(&d);
}

/* ---- publishing */

static void publish_done(struct reg_sfkit *r, enum op op) {
  struct op_state *o = &r->op[op];
  const char *want = op == OP_ADDR ? r->addr : r->pin;
  o->failures = 0;
  o->logged[0] = '\0';
  /* A newer value may have come while this one was on its way. */
  if (strcmp(r->inflight_val, want) == 0)
    o->wanted = 0;
  if (op == OP_ADDR && !o->wanted)
    fmt(r->done_addr, sizeof r->done_addr, "%s", r->addr);
  if (!r->op[OP_ADDR].wanted && !r->op[OP_PIN].wanted) {
    char why[320];
    fmt(why, sizeof why, "published %s %s and %s %s", SFK_DOC_ADDR_NAME,
        r->addr, SFK_DOC_PIN_NAME, r->pin);
    r->h->log(r->h, SFK_LOG_INFO, "%s", why);
    outcome_set(&r->pub, 0, why);
    r->h->registry_result(r->h, 0, 0, why);
  }
}

/* ---- the answer of any request */

static void on_answer(void *arg, const struct sfk_http_res *res) {
  struct reg_sfkit *r = arg;
  enum op op = (enum op)r->inflight;
  struct op_state *o = &r->op[op];
  r->req = NULL;
  r->inflight = -1;
  if (res->code == CURLE_OK && res->status >= 200 && res->status < 300) {
    r->streak = 0;
    if (op == OP_READ)
      read_done(r, res);
    else
      publish_done(r, op);
  } else {
    char msg[300], retry[64];
    enum kind k;
    int err;
    explain(r, op, res, msg, sizeof msg, &k, &err);
    o->failures++;
    r->n_failures++;
    if (k == K_TRANSIENT)
      r->streak++;
    uint64_t delay = retry_delay_ms(r, k);
    fmt(retry, sizeof retry, "; retrying in %.1f s", (double)delay / 1e3);
    log_once(r, op, k == K_REFUSED ? SFK_LOG_ERROR : SFK_LOG_WARN, msg, retry);
    outcome_set(op == OP_READ ? &r->rd : &r->pub, err, msg);
    r->h->registry_result(r->h, op == OP_READ ? 1 : 0, err, msg);
    o->due_ns = now_ns(r) + ms_ns(delay);
    if (k == K_TRANSIENT)
      hold_all(r, o->due_ns);
  }
  if (op == OP_READ && r->reread) {
    /* A refresh came while this read was on its way. */
    r->reread = 0;
    uint64_t soon = now_ns(r) + ms_ns(REFRESH_DELAY_MS);
    if (!o->failures && o->due_ns > soon)
      o->due_ns = soon;
  }
  schedule(r);
}

/* ---- ops */

static const char *const sfkit_keys[] = {"api_url", "auth_key_file", "poll",
                                         "timeout", "ca_file",       NULL};

static int sfkit_create(const struct sfk_host *h,
                        const struct sfk_cfg_node *cfg, void **self) {
  struct reg_sfkit *r = calloc(1, sizeof *r);
  if (!r)
    return -ENOMEM;
  r->h = h;
  r->inflight = -1;
  r->fast_ms = FAST_FIRST_MS;
  if (settings_parse(h, cfg, &r->s) < 0) {
    free(r);
    return -EINVAL;
  }
  ev_init(&r->timer, timer_cb);
  r->timer.data = r;
  *self = r;
  return 0;
}

static int sfkit_start(void *self) {
  struct reg_sfkit *r = self;
  /* libcurl counts init/cleanup pairs itself, and is built thread-safe
   * for it (curl >= 7.84, CURL_VERSION_THREADSAFE); the daemon calls
   * plugins from one thread anyway.  So each instance pairs its own
   * init (here) with a cleanup (destroy) and no plugin global is needed. */
  if (!r->curl_inited) {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      r->h->log(r->h, SFK_LOG_ERROR, "libcurl failed to initialise");
      return -EIO;
    }
    r->curl_inited = 1;
  }
  int rc = sfk_http_new(r->h->loop, &r->http);
  if (rc < 0)
    return rc;
  if (r->s.insecure_http)
    r->h->log(r->h, SFK_LOG_WARN,
              "api_url %s is plain http: the auth key "
              "crosses the network unencrypted (use https://)",
              r->s.api_url);
  r->started = 1;
  r->op[OP_READ].wanted = 1;
  r->op[OP_READ].due_ns = now_ns(r);
  /* From the loop, not now: the daemon publishes right after start(), and
   * publishing first lets the first read show our own values too. */
  ev_timer_set(&r->timer, 0., 0.);
  ev_timer_start(r->h->loop, &r->timer);
  return 0;
}

static void sfkit_stop(void *self) {
  struct reg_sfkit *r = self;
  if (!r->started)
    return;
  r->started = 0;
  ev_timer_stop(r->h->loop, &r->timer);
  /* Cancels the request in flight (no callback) and closes connections. */
  sfk_http_del(r->http);
  r->http = NULL;
  r->req = NULL;
  r->inflight = -1;
}

static void sfkit_destroy(void *self) {
  struct reg_sfkit *r = self;
  sfkit_stop(r);
  settings_free(&r->s);
  free(r->peers);
  free(r->bad);
  if (r->curl_inited)
    curl_global_cleanup();
  free(r);
}

static int sfkit_reconfigure(void *self, const struct sfk_cfg_node *cfg) {
  struct reg_sfkit *r = self;
  struct settings ns;
  if (settings_parse(r->h, cfg, &ns) < 0)
    return -EINVAL;
  /* The request in flight used the old settings (maybe another site or
   * key): drop it and do everything again with the new ones. */
  if (r->req) {
    sfk_http_cancel(r->http, r->req);
    r->req = NULL;
    r->inflight = -1;
  }
  settings_free(&r->s);
  r->s = ns;
  uint64_t now = now_ns(r);
  for (int i = 0; i < OP_N; i++) {
    r->op[i].failures = 0;
    r->op[i].logged[0] = '\0';
    r->op[i].due_ns = now;
  }
  r->op[OP_ADDR].wanted = r->op[OP_PIN].wanted = r->addr[0] != '\0';
  r->h->log(r->h, SFK_LOG_INFO, "website %s, poll %.1f s", r->s.api_url,
            (double)r->s.poll_ms / 1e3);
  schedule(r);
  return 0;
}

static int sfkit_publish(void *self, const char *addr, const char *pin) {
  struct reg_sfkit *r = self;
  char a[SFK_DOC_ADDR_SIZE];
  if (sfk_doc_addr_format(addr, a, sizeof a) < 0 || !sfk_doc_pin_ok(pin)) {
    char why[160];
    fmt(why, sizeof why, "cannot publish %s: not ip:port with a pin", addr);
    r->h->log(r->h, SFK_LOG_ERROR, "%s", why);
    outcome_set(&r->pub, -EINVAL, why);
    r->h->registry_result(r->h, 0, -EINVAL, why);
    return -EINVAL;
  }
  fmt(r->addr, sizeof r->addr, "%s", a);
  fmt(r->pin, sizeof r->pin, "%s", pin);
  /* Both values on every call: the daemon calls at start and when the
   * address changes, and the pin may have been reset on the website. */
  uint64_t now = now_ns(r);
  for (int i = OP_ADDR; i <= OP_PIN; i++) {
    r->op[i].wanted = 1;
    r->op[i].due_ns = now;
    r->op[i].failures = 0;
  }
  schedule(r);
  return 0;
}

static int sfkit_refresh(void *self, uint32_t pid) {
  struct reg_sfkit *r = self;
  struct op_state *o = &r->op[OP_READ];
  (void)pid; /* one read serves every peer */
  if (!r->started)
    return 0;
  if (r->inflight == OP_READ) {
    r->reread = 1;
    return 0;
  }
  /* Never sooner than a backoff after failures says. */
  uint64_t soon = now_ns(r) + ms_ns(REFRESH_DELAY_MS);
  if (!o->failures && o->due_ns > soon)
    o->due_ns = soon;
  schedule(r);
  return 0;
}

static void report_outcome(struct sfk_report *rp, const char *key,
                           const struct outcome *o) {
  char at[32];
  rp->begin(rp, key, 0);
  rp->str(rp, "state", !o->done ? "pending" : o->err ? "error" : "ok");
  if (o->done) {
    struct tm tm;
    gmtime_r(&o->at, &tm);
    strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%SZ", &tm);
    rp->str(rp, "at", at);
    rp->num(rp, "ago_s", (int64_t)(time(NULL) - o->at));
    rp->str(rp, o->err ? "error" : "result", o->why);
  }
}

static void sfkit_report(void *self, struct sfk_report *rp) {
  struct reg_sfkit *r = self;
  rp->str(rp, "api_url", r->s.api_url);
  rp->str(rp, "study_id",
          r->h->study_id && r->h->study_id[0] ? r->h->study_id
                                              : "(the auth key's study)");
  rp->num(rp, "poll_ms", (int64_t)r->s.poll_ms);
  report_outcome(rp, "publish", &r->pub);
  rp->str(rp, "address", r->addr[0] ? r->addr : "(none yet)");
  rp->str(rp, "confirmed", r->done_addr[0] ? r->done_addr : "(none yet)");
  rp->end(rp);
  report_outcome(rp, "read", &r->rd);
  rp->num(rp, "participants", (int64_t)r->npeers);
  rp->num(rp, "known", (int64_t)r->known);
  rp->end(rp);
  rp->begin(rp, "counters", 0);
  rp->num(rp, "requests", (int64_t)r->n_requests);
  rp->num(rp, "failures", (int64_t)r->n_failures);
  rp->num(rp, "retries", (int64_t)r->n_retries);
  rp->end(rp);
}

static const struct sfk_registry_ops sfkit_ops = {
    .base =
        {
            .keys = sfkit_keys,
            .create = sfkit_create,
            .start = sfkit_start,
            .stop = sfkit_stop,
            .destroy = sfkit_destroy,
            .reconfigure = sfkit_reconfigure,
            .report = sfkit_report,
        },
    .publish = sfkit_publish,
    .refresh = sfkit_refresh,
};

SFK_PLUGIN_DEFINE(REGISTRY, "sfkit", "1.0", sfkit_ops);
