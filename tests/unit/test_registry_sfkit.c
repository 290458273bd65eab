/*
 * The sfkit registry plugin against a fake host: config checks in
 * create(), retries and one log line per error while the website is
 * unreachable, report() without the key, and stop() leaving no watcher
 * on the loop.  (tests/integration/registry_*.sh test it against the
 * website double.)
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <ev.h>

#include "sfkit-proxy/plugin.h"
#include "tap.h"

extern const struct sfk_plugin_desc sfkit_proxy_plugin;

#define KEY "s3cr3t-auth-key-0123456789"
#define PIN "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

/* The plugin's section: key/value pairs; the plugin sees it as opaque. */
struct sfk_cfg_node {
  const char *key[8];
  const char *val[8];
};

static char logs[65536]; /* everything logged and reported, for checks */
static size_t logs_len;
static unsigned n_results, n_errors;

static void say(const char *fmt, va_list ap) SFK_PRINTF(1, 0);
static void say(const char *fmt, va_list ap) {
  if (logs_len < sizeof logs - 1) {
    int n = vsnprintf(logs + logs_len, sizeof logs - logs_len, fmt, ap);
    if (n > 0)
      logs_len += (size_t)n < sizeof logs - logs_len
                      ? (size_t)n
                      : sizeof logs - logs_len - 1;
  }
  if (logs_len < sizeof logs - 1)
    logs[logs_len++] = '\n';
  logs[logs_len] = '\0';
}

static const char *get(const struct sfk_cfg_node *m, const char *key) {
  for (int i = 0; m && i < 8 && m->key[i]; i++)
    if (strcmp(m->key[i], key) == 0)
      return m->val[i];
  return NULL;
}

static uint64_t f_now(const struct sfk_host *h) {
  struct timespec ts;
  (void)h;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
static int f_log_enabled(const struct sfk_host *h, int level) {
  (void)h;
  return level <= SFK_LOG_DEBUG;
}
static void f_log(const struct sfk_host *h, int level, const char *fmt, ...)
    SFK_PRINTF(3, 4);
static void f_log(const struct sfk_host *h, int level, const char *fmt, ...) {
  char line[2048];
  va_list ap;
  (void)h;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  int n = snprintf(logs + logs_len, sizeof logs - logs_len, "L%d %s\n", level,
                   line);
  if (n > 0)
    logs_len = strlen(logs);
}
static const struct sfk_cfg_node *f_get(const struct sfk_cfg_node *m,
                                        const char *key) {
  (void)m;
  (void)key;
  return NULL; /* no positions in this fake */
}
static const char *f_scalar(const struct sfk_cfg_node *n) {
  (void)n;
  return NULL;
}
static void f_cfg_error(const struct sfk_host *h, const struct sfk_cfg_node *n,
                        const char *fmt, ...) SFK_PRINTF(3, 4);
static void f_cfg_error(const struct sfk_host *h, const struct sfk_cfg_node *n,
                        const char *fmt, ...) {
  va_list ap;
  (void)h;
  (void)n;
  n_errors++;
  va_start(ap, fmt);
  say(fmt, ap);
  va_end(ap);
}
static int f_string(const struct sfk_host *h, const struct sfk_cfg_node *m,
                    const char *key, const char *def, const char **out) {
  (void)h;
  *out = get(m, key) ? get(m, key) : def;
  return 0;
}
static int f_duration(const struct sfk_host *h, const struct sfk_cfg_node *m,
                      const char *key, uint64_t def, uint64_t *out) {
  (void)h;
  *out = get(m, key) ? strtoull(get(m, key), NULL, 10) : def;
  return 0;
}
static int f_path(const struct sfk_host *h, const struct sfk_cfg_node *m,
                  const char *key, const char *def, char *buf, size_t sz) {
  (void)h;
  snprintf(buf, sz, "%s", get(m, key) ? get(m, key) : def ? def : "");
  return 0;
}
static int f_secret(const struct sfk_host *h, const struct sfk_cfg_node *m,
                    const char *key, const char *def, char *buf, size_t sz) {
  (void)h;
  (void)def;
  snprintf(buf, sz, "%s", get(m, key) ? KEY : "");
  return 0;
}
static int f_random(const struct sfk_host *h, void *buf, size_t len) {
  (void)h;
  memset(buf, 0x5a, len);
  return 0;
}
static void f_peers_set(const struct sfk_host *h, const struct sfk_peer *v,
                        size_t n) {
  (void)h;
  (void)v;
  (void)n;
}
static void f_result(const struct sfk_host *h, int what, int err,
                     const char *why) {
  (void)h;
  (void)what;
  (void)err;
  (void)why;
  n_results++;
}
static struct sfk_identity ident = {.pin = PIN};
static const struct sfk_identity *f_identity(const struct sfk_host *h) {
  (void)h;
  return &ident;
}

/* The report emitter: prints into logs. */
static void r_begin(struct sfk_report *r, const char *key, int list) {
  (void)r;
  (void)list;
  logs_len += (size_t)snprintf(logs + logs_len, sizeof logs - logs_len, "{%s\n",
                               key ? key : "");
}
static void r_end(struct sfk_report *r) {
  (void)r;
  logs_len += (size_t)snprintf(logs + logs_len, sizeof logs - logs_len, "}\n");
}
static void r_str(struct sfk_report *r, const char *key, const char *val) {
  (void)r;
  logs_len += (size_t)snprintf(logs + logs_len, sizeof logs - logs_len,
                               "%s=%s\n", key, val);
}
static void r_num(struct sfk_report *r, const char *key, int64_t val) {
  (void)r;
  logs_len += (size_t)snprintf(logs + logs_len, sizeof logs - logs_len,
                               "%s=%lld\n", key, (long long)val);
}

static void stop_cb(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)w;
  (void)revents;
  ev_break(loop, EVBREAK_ALL);
}

static long count(const char *needle) {
  long n = 0;
  for (const char *p = logs; (p = strstr(p, needle)); p++)
    n++;
  return n;
}

static long report_num(const char *report, const char *key) {
  const char *p = strstr(report, key);
  return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

int main(void) {
  const struct sfk_registry_ops *ops = sfkit_proxy_plugin.ops;
  struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
  struct sfk_host h = {
      .abi = SFK_ABI_VERSION,
      .size = sizeof h,
      .loop = loop,
      .instance = "registry.sfkit",
      .self_pid = 0,
      .study_id = "study-7",
      .now_ns = f_now,
      .log_enabled = f_log_enabled,
      .log = f_log,
      .cfg_get = f_get,
      .cfg_scalar = f_scalar,
      .cfg_error = f_cfg_error,
      .cfg_string = f_string,
      .cfg_duration_ms = f_duration,
      .cfg_path = f_path,
      .cfg_secret = f_secret,
      .random = f_random,
      .peers_set = f_peers_set,
      .registry_result = f_result,
      .identity = f_identity,
  };
  void *self = NULL;
  ok(sfkit_proxy_plugin.abi == SFK_ABI_VERSION &&
         sfkit_proxy_plugin.kind == SFK_KIND_REGISTRY &&
         strcmp(sfkit_proxy_plugin.name, "sfkit") == 0,
     "the descriptor is a registry named sfkit");

  struct sfk_cfg_node none = {.key = {"auth_key_file"}, .val = {"k.txt"}};
  is_int(ops->base.create(&h, &none, &self), -EINVAL, "api_url is required");
  ok(strstr(logs, "needs api_url") != NULL, "and the error says so");
  struct sfk_cfg_node ftp = {.key = {"api_url", "auth_key_file"},
                             .val = {"ftp://example.org/api", "k.txt"}};
  is_int(ops->base.create(&h, &ftp, &self), -EINVAL, "ftp:// is refused");
  struct sfk_cfg_node nokey = {.key = {"api_url"},
                               .val = {"https://example.org/api"}};
  is_int(ops->base.create(&h, &nokey, &self), -EINVAL,
         "auth_key_file is required");
  ok(strstr(logs, "needs auth_key_file") != NULL, "and the error says so");

  /* A website that refuses connections: port 1 on loopback. */
  struct sfk_cfg_node good = {
      .key = {"api_url", "auth_key_file", "timeout"},
      .val = {"http://127.0.0.1:1/api/", "key.txt", "2000"}};
  unsigned errs = n_errors;
  is_int(ops->base.create(&h, &good, &self), 0, "a good section");
  is_int(n_errors, errs, "without errors");
  is_int(ops->base.start(self), 0, "start");
  is_int(ops->publish(self, "[2001:db8::1]:4000", PIN), 0, "publish");
  is_int(ops->publish(self, "not an address", PIN), -EINVAL,
         "publish refuses a bad address");
  ev_timer t;
  ev_timer_init(&t, stop_cb, 2.5, 0.);
  ev_timer_start(loop, &t);
  ev_run(loop, 0);
  for (int i = 0; i < 10; i++)
    ops->refresh(self, 1);

  size_t before = logs_len;
  struct sfk_report rp = {
      .begin = r_begin, .end = r_end, .str = r_str, .num = r_num};
  ops->base.report(self, &rp);
  const char *report = logs + before;
  printf("# report:\n# %.*s\n", (int)(logs_len - before), report);
  ok(strstr(report, "api_url=http://127.0.0.1:1/api\n") != NULL,
     "report: api_url without the trailing /");
  ok(strstr(report, "study_id=study-7") != NULL, "report: study_id");
  ok(strstr(report, "address=[2001:db8:0:0:0:0:0:1]:4000") != NULL,
     "report: the address as published (expanded IPv6)");
  ok(strstr(report, "state=error") != NULL, "report: the last outcome failed");
  long req = report_num(report, "requests="),
       fail = report_num(report, "failures="),
       retr = report_num(report, "retries=");
  ok(req >= 3 && fail == req && retr >= 1,
     "report: counters (requests %ld, failures %ld, retries %ld)", req, fail,
     retr);
  ok(req <= 8, "backoff: at most 8 requests in 2.5 s (%ld)", req);
  is_int(count("L1 publishing: cannot reach"), 1,
         "the publish error is logged once at warn");
  ok(count("cannot reach http://127.0.0.1:1/api") >= 2, "repeats go to debug");
  ok(n_results >= 3, "every outcome reaches registry_result (%u)", n_results);
  ok(strstr(logs, KEY) == NULL, "the key is in no log and not in the report");

  ops->base.stop(self);
  ev_timer_stop(loop, &t);
  ok(ev_run(loop, EVRUN_NOWAIT) == 0, "stop() leaves no active watcher");
  ops->base.destroy(self);
  ev_loop_destroy(loop);
  return tap_done();
}
