/* Unit tests for the YAML tree, the typed getters and the pure parsers. */
#include "autoconfig.h" /* autoconf: first in every .c file */

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfg.h"
#include "tap.h"

/* ------------------------------------------------------------------ */
/* An error sink captured in memory                                     */

struct cap {
  FILE *f;
  char *buf;
  size_t len;
};

static void cap_open(struct cap *c) {
  c->buf = NULL;
  c->len = 0;
  c->f = open_memstream(&c->buf, &c->len);
  if (!c->f) {
    perror("open_memstream");
    exit(99);
  }
}

static const char *cap_text(struct cap *c) {
  fflush(c->f);
  return c->buf ? c->buf : "";
}

static void cap_close(struct cap *c) {
  fclose(c->f);
  free(c->buf);
  c->f = NULL;
  c->buf = NULL;
}

/* Load text into doc with a fresh sink. */
static struct sfk_cfg_doc *load(struct cap *c, const char *text) {
  cap_open(c);
  struct sfk_cfg_doc *d =
      sfk_cfg_load_string("t.yaml", text, strlen(text), c->f);
  if (!d) {
    printf("Bail out! out of memory\n");
    exit(99);
  }
  return d;
}

/* Load, expect exactly `want` on the sink and no root (a fatal error). */
static void load_fails(const char *text, const char *want, const char *name) {
  struct cap c;
  struct sfk_cfg_doc *d = load(&c, text);
  is_str(cap_text(&c), want, name);
  ok(sfk_cfg_root(d) == NULL && sfk_cfg_errors(d) == 1,
     "%s: no root, one error", name);
  sfk_cfg_doc_del(d);
  cap_close(&c);
}

/* ------------------------------------------------------------------ */
/* Pure parsers                                                         */

static void test_uint(void) {
  uint64_t v = 12345;
  is_int(sfk_parse_uint("0", 0, 10, &v), 0, "uint 0");
  is_int(v, 0, "uint 0 value");
  ok(sfk_parse_uint("42", 0, 100, &v) == 0 && v == 42, "uint 42");
  ok(sfk_parse_uint("007", 0, 100, &v) == 0 && v == 7, "uint leading zeros");
  ok(sfk_parse_uint("18446744073709551615", 0, UINT64_MAX, &v) == 0 &&
         v == UINT64_MAX,
     "uint max uint64");
  v = 5;
  is_int(sfk_parse_uint("18446744073709551616", 0, UINT64_MAX, &v), -EINVAL,
         "uint overflow by one");
  is_int(v, 5, "uint: out untouched on error");
  is_int(sfk_parse_uint("99999999999999999999999", 0, UINT64_MAX, &v), -EINVAL,
         "uint far overflow");
  static const char *const bad[] = {"",     "-1",  "+1",  " 1",  "1 ",  "1x",
                                    "0x10", "1.0", "1e3", "one", "\t1", "1_0"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    is_int(sfk_parse_uint(bad[i], 0, UINT64_MAX, &v), -EINVAL, bad[i]);
  is_int(sfk_parse_uint(NULL, 0, 1, &v), -EINVAL, "uint NULL");
  is_int(sfk_parse_uint("5", 5, 9, &v), 0, "uint at min");
  is_int(sfk_parse_uint("9", 5, 9, &v), 0, "uint at max");
  is_int(sfk_parse_uint("4", 5, 9, &v), -EINVAL, "uint below min");
  is_int(sfk_parse_uint("10", 5, 9, &v), -EINVAL, "uint above max");
}

static void test_bool(void) {
  static const char *const t[] = {"true", "yes", "on", "TRUE", "Yes", "On"};
  static const char *const f[] = {"false", "no", "off", "False", "NO", "OFF"};
  static const char *const bad[] = {"",  "1",     "0",     "y",
                                    "n", "truee", " true", "enable"};
  int b;
  for (size_t i = 0; i < 6; i++) {
    b = -1;
    ok(sfk_parse_bool(t[i], &b) == 0 && b == 1, "bool %s", t[i]);
    b = -1;
    ok(sfk_parse_bool(f[i], &b) == 0 && b == 0, "bool %s", f[i]);
  }
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    is_int(sfk_parse_bool(bad[i], &b), -EINVAL, "bool bad");
}

static void test_duration(void) {
  static const struct {
    const char *s;
    uint64_t ms;
  } good[] = {{"250ms", 250},  {"10s", 10000},
              {"5m", 300000},  {"24h", 86400000},
              {"0", 0},        {"7", 7000},
              {"0ms", 0},      {"0h", 0},
              {"015s", 15000}, {"8760h", SFK_DURATION_MAX_MS},
              {"31536000000ms", SFK_DURATION_MAX_MS},
              {"525600m", SFK_DURATION_MAX_MS}, {"31536000", SFK_DURATION_MAX_MS},
              {"1ms", 1}};
  static const char *const bad[] = {"",
                                    "10x",
                                    "10 s",
                                    " 10s",
                                    "10s ",
                                    "-1s",
                                    "+1s",
                                    "1.5s",
                                    "1h30m",
                                    "s",
                                    "ms",
                                    "10S",
                                    "10sec",
                                    "10d",
                                    "10mss",
                                    "10hs",
                                    "0x10s",
                                    "1e3ms",
                                    "h",
                                    "10us",
                                    "10M",
                                    "18446744073709551616ms"};
  /* Longer than a year: refused before any conversion can overflow. */
  static const char *const too_long[] = {
      "8761h", "525601m", "31536001", "31536000001ms", "18446744073709551615ms",
      "18446744073709551615s", "18446744073709551615h"};
  uint64_t v;
  for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
    v = 1;
    ok(sfk_parse_duration_ms(good[i].s, &v) == 0 && v == good[i].ms,
       "duration '%s' = %" PRIu64, good[i].s, good[i].ms);
  }
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    is_int(sfk_parse_duration_ms(bad[i], &v), -EINVAL, bad[i]);
  is_int(sfk_parse_duration_ms(NULL, &v), -EINVAL, "duration NULL");
  for (size_t i = 0; i < sizeof too_long / sizeof *too_long; i++)
    is_int(sfk_parse_duration_ms(too_long[i], &v), -ERANGE, too_long[i]);
}

static void test_hostport(void) {
  struct sockaddr_storage ss;
  socklen_t len = 0;
  const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
  const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;

  is_int(sfk_parse_hostport("1.2.3.4:80", &ss, &len), 0, "v4 host:port");
  is_int(ss.ss_family, AF_INET, "v4 family");
  is_int(len, sizeof(struct sockaddr_in), "v4 len");
  is_int(ntohs(in->sin_port), 80, "v4 port");
  is_int(ntohl(in->sin_addr.s_addr), 0x01020304, "v4 address");
  ok(sfk_parse_hostport("0.0.0.0:0", &ss, &len) == 0 && in->sin_port == 0,
     "port 0 allowed");
  ok(sfk_parse_hostport("127.0.0.1:65535", &ss, &len) == 0 &&
         ntohs(in->sin_port) == 65535,
     "port 65535");
  ok(sfk_parse_hostport("127.0.0.1:080", &ss, &len) == 0 &&
         ntohs(in->sin_port) == 80,
     "port with a leading zero");

  is_int(sfk_parse_hostport("[::1]:443", &ss, &len), 0, "v6 [::1]:443");
  is_int(ss.ss_family, AF_INET6, "v6 family");
  is_int(len, sizeof(struct sockaddr_in6), "v6 len");
  is_int(ntohs(in6->sin6_port), 443, "v6 port");
  ok(IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr), "v6 loopback");
  is_int(sfk_parse_hostport("[2001:db8::1]:0", &ss, &len), 0, "v6 port 0");

  static const char *const bad[] = {
      "1.2.3.4",
      "1.2.3.4:",
      "1.2.3.4:65536",
      "1.2.3.4:-1",
      "1.2.3.4:+80",
      "1.2.3.4:000080",
      "localhost:80",
      "::1:80",
      "[::1]",
      "[::1]80",
      "[]:80",
      "[1.2.3.4]:80",
      "1.2.3:80",
      "256.1.1.1:80",
      ":80",
      "",
      "[fe80::1%eth0]:80",
      "1.2.3.4:80 ",
      " 1.2.3.4:80",
      "1.2.3.4:8 0",
      "[::1]:99999",
      "1.2.3.4:80:81",
      "[::1]:",
      "01.2.3.4:80",
      "1.2.3.4:0x50",
      "[aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa]:1"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    is_int(sfk_parse_hostport(bad[i], &ss, &len), -EINVAL, bad[i]);
  is_int(sfk_parse_hostport(NULL, &ss, &len), -EINVAL, "hostport NULL");
}

static void test_cidr(void) {
  uint32_t net = 1;
  unsigned p = 1;
  is_int(sfk_parse_cidr4("10.0.0.0/24", &net, &p), 0, "cidr 10.0.0.0/24");
  is_int(net, 0x0a000000, "cidr network");
  is_int(p, 24, "cidr prefix");
  ok(sfk_parse_cidr4("0.0.0.0/0", &net, &p) == 0 && net == 0 && p == 0,
     "cidr /0");
  ok(sfk_parse_cidr4("10.0.0.1/32", &net, &p) == 0 && net == 0x0a000001 &&
         p == 32,
     "cidr /32");
  ok(sfk_parse_cidr4("172.16.0.0/12", &net, &p) == 0 && p == 12, "cidr /12");
  static const char *const bad[] = {
      "10.0.0.1/24",  "10.0.0.0/33", "10.0.0.0",     "10.0.0.0/",
      "/24",          "10.0.0.0/-1", "10.0.0.0/024", "10.0.0.0/ 24",
      "10.0.0/24",    "::/0",        "10.0.0.0/24x", "",
      "10.0.0.0/8/8", "0.0.0.1/0",   "a/24"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    is_int(sfk_parse_cidr4(bad[i], &net, &p), -EINVAL, bad[i]);
}

static void test_port_range(void) {
  uint16_t lo = 0, hi = 0;
  ok(sfk_parse_port_range("8100-8199", &lo, &hi) == 0 && lo == 8100 &&
         hi == 8199,
     "range 8100-8199");
  ok(sfk_parse_port_range("8100", &lo, &hi) == 0 && lo == 8100 && hi == 8100,
     "single port");
  ok(sfk_parse_port_range("1-65535", &lo, &hi) == 0 && lo == 1 && hi == 65535,
     "full range");
  ok(sfk_parse_port_range("65535", &lo, &hi) == 0 && lo == 65535, "port 65535");
  ok(sfk_parse_port_range("8100-8100", &lo, &hi) == 0 && lo == 8100 &&
         hi == 8100,
     "range of one");
  static const char *const bad[] = {
      "0",          "0-10",  "8199-8100",   "8100-", "-8100",
      "8100-65536", "",      "8100 - 8199", "a-b",   "8100-8199-8300",
      "1-2x",       "65536", "123456-1",    "+1-2",  "1--2"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    is_int(sfk_parse_port_range(bad[i], &lo, &hi), -EINVAL, bad[i]);
}

static void test_quote(void) {
  char q[SFK_CFG_QUOTE_MAX];
  is_str(sfk_cfg_quote("abc", q, sizeof q), "abc", "quote plain");
  is_str(sfk_cfg_quote("a\tb\n", q, sizeof q), "a\\x09b\\x0a",
         "quote control characters");
  char long_s[200];
  memset(long_s, 'x', sizeof long_s - 1);
  long_s[sizeof long_s - 1] = '\0';
  sfk_cfg_quote(long_s, q, sizeof q);
  ok(strlen(q) < sizeof q && strcmp(q + strlen(q) - 3, "...") == 0,
     "quote cuts long text with ...");
  char tiny[6];
  sfk_cfg_quote("abcdefgh", tiny, sizeof tiny);
  ok(strlen(tiny) < sizeof tiny, "quote respects a tiny buffer");
}

/* ------------------------------------------------------------------ */
/* Loading                                                              */

static void test_tree(void) {
  struct cap c;
  struct sfk_cfg_doc *d =
      load(&c, "a:\n  b: 1\n  c: [x, 'y']\nd: two words\ne:\n");
  const struct sfk_cfg_node *r = sfk_cfg_root(d);
  is_str(cap_text(&c), "", "tree: no errors");
  is_int(sfk_cfg_errors(d), 0, "tree: error count 0");
  is_int(sfk_cfg_type(r), SFK_CFG_MAP, "root is a map");
  is_int(sfk_cfg_len(r), 3, "root has 3 entries");
  is_str(sfk_cfg_key_at(r, 1), "d", "key 1 is d");
  is_str(sfk_cfg_scalar(sfk_cfg_value_at(r, 1)), "two words", "value of d");
  is_int(sfk_cfg_line(sfk_cfg_key_node_at(r, 2)), 5, "key e line");
  ok(sfk_cfg_at(r, 0) == NULL, "sfk_cfg_at on a map is NULL");
  ok(sfk_cfg_value_at(r, 3) == NULL && sfk_cfg_key_node_at(r, 3) == NULL,
     "map index past the end");
  ok(sfk_cfg_is_null(sfk_cfg_get(r, "e")), "e: is null");
  ok(!sfk_cfg_is_null(sfk_cfg_get(r, "d")), "d is not null");
  const struct sfk_cfg_node *a = sfk_cfg_get(r, "a");
  const struct sfk_cfg_node *b = sfk_cfg_get(a, "b");
  is_int(sfk_cfg_line(b), 2, "a.b line");
  is_int(sfk_cfg_column(b), 6, "a.b column");
  const struct sfk_cfg_node *seq = sfk_cfg_get(a, "c");
  is_int(sfk_cfg_type(seq), SFK_CFG_SEQ, "a.c is a sequence");
  is_int(sfk_cfg_len(seq), 2, "a.c has two items");
  is_str(sfk_cfg_scalar(sfk_cfg_at(seq, 1)), "y", "a.c[1]");
  is_int(sfk_cfg_column(sfk_cfg_at(seq, 1)), 10, "a.c[1] column");
  ok(sfk_cfg_at(seq, 2) == NULL, "a.c[2] is NULL");
  ok(sfk_cfg_get(seq, "x") == NULL, "sfk_cfg_get on a sequence is NULL");
  ok(sfk_cfg_get(r, "zz") == NULL, "absent key");
  ok(sfk_cfg_scalar(a) == NULL, "sfk_cfg_scalar of a map is NULL");
  is_str(sfk_cfg_filename(d), "t.yaml", "filename");
  is_str(sfk_cfg_dir(d), ".", "string docs live in .");
  sfk_cfg_doc_del(d);
  cap_close(&c);

  /* quoted "null" is a string, plain null is null */
  d = load(&c, "a: 'null'\nb: null\nc: ~\nd: \"\"\n");
  r = sfk_cfg_root(d);
  ok(!sfk_cfg_is_null(sfk_cfg_get(r, "a")), "'null' quoted is text");
  ok(sfk_cfg_is_null(sfk_cfg_get(r, "b")), "null is null");
  ok(sfk_cfg_is_null(sfk_cfg_get(r, "c")), "~ is null");
  ok(!sfk_cfg_is_null(sfk_cfg_get(r, "d")), "\"\" is an empty string");
  sfk_cfg_doc_del(d);
  cap_close(&c);
}

static void test_load_errors(void) {
  load_fails("a: b: c\n",
             "t.yaml:1:5: mapping values are not allowed in this context\n",
             "syntax error");
  load_fails("a: [1, 2\n",
             "t.yaml:2:1: did not find expected ',' or ']' (while parsing a "
             "flow sequence at line 1, column 4)\n",
             "unclosed flow sequence");
  load_fails("a: 1\n---\nb: 2\n",
             "t.yaml:2:1: a second YAML document ('---'); a config is one "
             "document\n",
             "two documents");
  load_fails("- a\n- b\n",
             "t.yaml:1:1: the config must be a map of sections (like "
             "'party:'), not a list\n",
             "root is a list");
  load_fails("hello\n",
             "t.yaml:1:1: the config must be a map of sections (like "
             "'party:'), not a single value\n",
             "root is a scalar");
  load_fails("a: \xff\n", "t.yaml:1:4: invalid leading UTF-8 octet\n",
             "invalid UTF-8");
  load_fails("a:\n  b: 1\n c: 2\n",
             "t.yaml:3:2: did not find expected key (while parsing a block "
             "mapping at line 1, column 1)\n",
             "bad indentation");

  /* nesting: the root map and 63 lists are fine, one more is not */
  char text[200];
  size_t n = 0;
  n += (size_t)snprintf(text, sizeof text, "a: ");
  for (int i = 0; i < SFK_CFG_MAX_DEPTH - 1; i++)
    text[n++] = '[';
  for (int i = 0; i < SFK_CFG_MAX_DEPTH - 1; i++)
    text[n++] = ']';
  text[n++] = '\n';
  text[n] = '\0';
  struct cap c;
  struct sfk_cfg_doc *d = load(&c, text);
  is_str(cap_text(&c), "", "64 levels load");
  ok(sfk_cfg_root(d) != NULL, "64 levels: root");
  sfk_cfg_doc_del(d);
  cap_close(&c);
  n = (size_t)snprintf(text, sizeof text, "a: ");
  for (int i = 0; i < SFK_CFG_MAX_DEPTH; i++)
    text[n++] = '[';
  text[n++] = '\n';
  text[n] = '\0';
  d = load(&c, text);
  is_str(cap_text(&c), "t.yaml:1:67: nesting deeper than 64 levels\n",
         "65 levels refused");
  ok(sfk_cfg_root(d) == NULL, "deep: no root");
  sfk_cfg_doc_del(d);
  cap_close(&c);

  /* empty documents: no root, no error */
  static const char *const empty[] = {"", "---\n", "# just a comment\n", "~\n",
                                      "\n\n"};
  for (size_t i = 0; i < sizeof empty / sizeof *empty; i++) {
    d = load(&c, empty[i]);
    ok(sfk_cfg_root(d) == NULL && sfk_cfg_errors(d) == 0 &&
           strcmp(cap_text(&c), "") == 0,
       "empty document %zu: no root, no error", i);
    sfk_cfg_doc_del(d);
    cap_close(&c);
  }
}

static void test_refused(void) {
  struct cap c;
  struct sfk_cfg_doc *d = load(&c, "a: &x 1\nb: *x\n");
  is_str(cap_text(&c),
         "t.yaml:1:4: anchors (&x) are not supported in the config; write "
         "the value out\n"
         "t.yaml:2:4: aliases (*x) are not supported in the config; write "
         "the value out\n",
         "anchor and alias refused with positions");
  is_int(sfk_cfg_errors(d), 2, "two errors");
  ok(sfk_cfg_root(d) != NULL, "tree kept after anchors (more checks can run)");
  const char *s = "unset";
  /* the alias placeholder is bad: no second message */
  is_int(sfk_cfg_string(d, sfk_cfg_root(d), "b", "def", &s), -EINVAL,
         "alias value is an error");
  is_int(sfk_cfg_errors(d), 2, "alias value not reported twice");
  sfk_cfg_doc_del(d);
  cap_close(&c);

  d = load(&c, "base: &b {x: 1}\nuse:\n  <<: *b\n");
  is_int(sfk_cfg_errors(d), 2, "merge key with alias refused");
  sfk_cfg_doc_del(d);
  cap_close(&c);

  d = load(&c, "a: 1\nb: 2\na: 3\nc:\n  x: 1\n  x: 2\n");
  is_str(cap_text(&c),
         "t.yaml:3:1: duplicate key 'a' (first given at line 1, column 1)\n"
         "t.yaml:6:3: duplicate key 'x' (first given at line 5, column 3)\n",
         "duplicate keys at every level");
  is_str(sfk_cfg_scalar(sfk_cfg_get(sfk_cfg_root(d), "a")), "1",
         "first of duplicates wins for lookups");
  sfk_cfg_doc_del(d);
  cap_close(&c);

  d = load(&c, "a: !!int 1\nb: !!str 2\nc: !custom x\n");
  is_str(cap_text(&c),
         "t.yaml:1:4: tag 'tag:yaml.org,2002:int' is not supported in the "
         "config; quote the value instead\n"
         "t.yaml:3:4: tag '!custom' is not supported in the config; quote "
         "the value instead\n",
         "tags other than !!str refused");
  sfk_cfg_doc_del(d);
  cap_close(&c);

  d = load(&c, "a: \"x\\0y\"\n");
  is_str(cap_text(&c), "t.yaml:1:4: NUL character in a value\n",
         "NUL in a value refused");
  sfk_cfg_doc_del(d);
  cap_close(&c);

  d = load(&c, "? [a]\n: 1\n");
  is_str(cap_text(&c), "t.yaml:1:3: a key must be plain text, not a list\n",
         "complex key refused");
  sfk_cfg_doc_del(d);
  cap_close(&c);
}

static void test_check_keys(void) {
  static const char *const keys[] = {"listen", "username", NULL};
  struct cap c;
  struct sfk_cfg_doc *d =
      load(&c, "socks:\n  listn: 1\n  listen: 2\n  plugin: x\ntop: 1\n");
  const struct sfk_cfg_node *s = sfk_cfg_get(sfk_cfg_root(d), "socks");
  is_int(sfk_cfg_check_keys(d, s, "socks", keys, "plugin"), 1,
         "one unknown key");
  is_str(cap_text(&c), "t.yaml:2:3: unknown key 'listn' in section 'socks'\n",
         "unknown key message");
  static const char *const top[] = {"socks", NULL};
  is_int(sfk_cfg_check_keys(d, sfk_cfg_root(d), NULL, top, NULL), 1,
         "unknown top-level key");
  is_str(cap_text(&c),
         "t.yaml:2:3: unknown key 'listn' in section 'socks'\n"
         "t.yaml:5:1: unknown top-level key 'top'\n",
         "top-level message");
  is_int(sfk_cfg_check_keys(d, s, "socks", keys, NULL), 2,
         "without extra, 'plugin' is unknown too");
  is_int(sfk_cfg_check_keys(d, NULL, "x", keys, NULL), 0, "NULL map: 0");
  is_int(sfk_cfg_errors(d), 4, "all counted");
  sfk_cfg_doc_del(d);
  cap_close(&c);
}

/* ------------------------------------------------------------------ */
/* Getters                                                              */

static void test_getters(void) {
  struct cap c;
  struct sfk_cfg_doc *d = load(&c, "# line 1\n"
                                   "n: 42\n"                   /* 2 */
                                   "big: 300\n"                /* 3 */
                                   "word: abc\n"               /* 4 */
                                   "map:\n"                    /* 5 */
                                   "  x: 1\n"                  /* 6 */
                                   "list: [1]\n"               /* 7 */
                                   "empty:\n"                  /* 8 */
                                   "yes: on\n"                 /* 9 */
                                   "bad_bool: maybe\n"         /* 10 */
                                   "d: 1500ms\n"               /* 11 */
                                   "t:\n"                      /* 12 */
                                   "  keepalive: 10x\n"        /* 13 */
                                   "addr: '[::1]:53'\n"        /* 14 */
                                   "badaddr: example.org:53\n" /* 15 */
                                   "p: state/x.key\n"          /* 16 */
                                   "abs: /etc/x\n"             /* 17 */
                                   "emptypath: ''\n");         /* 18 */
  const struct sfk_cfg_node *r = sfk_cfg_root(d);
  uint64_t v = 0;
  is_int(sfk_cfg_uint(d, r, "n", 0, 100, 7, &v), 0, "uint getter");
  is_int(v, 42, "uint getter value");
  is_int(sfk_cfg_uint(d, r, "absent", 0, 100, 7, &v), 0, "uint absent");
  is_int(v, 7, "uint default");
  is_int(sfk_cfg_uint(d, NULL, "n", 0, 100, 9, &v), 0, "NULL map: default");
  is_int(v, 9, "NULL map default value");
  is_int(sfk_cfg_uint(d, r, "big", 0, 255, 0, &v), -EINVAL, "uint range");
  is_int(sfk_cfg_uint(d, r, "word", 0, 255, 0, &v), -EINVAL, "uint junk");
  is_int(sfk_cfg_uint(d, r, "map", 0, 255, 0, &v), -EINVAL, "uint of a map");
  is_int(sfk_cfg_uint(d, r, "list", 0, 255, 0, &v), -EINVAL, "uint of a list");
  is_int(sfk_cfg_uint(d, r, "empty", 0, 255, 0, &v), -EINVAL, "uint no value");
  is_str(cap_text(&c),
         "t.yaml:3:6: 300 for 'big' is out of range (0..255)\n"
         "t.yaml:4:7: invalid number 'abc' for 'word' (a whole number, "
         "0..255)\n"
         "t.yaml:6:3: 'map' must be a single value, not a map\n"
         "t.yaml:7:7: 'list' must be a single value, not a list\n"
         "t.yaml:8:7: 'empty' has no value\n",
         "uint getter messages");
  is_int(sfk_cfg_errors(d), 5, "five errors so far");
  cap_close(&c);
  sfk_cfg_doc_del(d);

  d = load(&c, "yes: on\nbad_bool: maybe\nd: 1500ms\nt:\n"
               "  x: 1\n  y: 2\n  z: 3\n  a: 4\n  b: 5\n  c: 6\n  e: 7\n"
               "  keepalive: 10x\n");
  r = sfk_cfg_root(d);
  int b = -1;
  ok(sfk_cfg_bool(d, r, "yes", 0, &b) == 0 && b == 1, "bool getter");
  ok(sfk_cfg_bool(d, r, "no_such", 1, &b) == 0 && b == 1, "bool default");
  is_int(sfk_cfg_bool(d, r, "bad_bool", 0, &b), -EINVAL, "bad bool");
  ok(sfk_cfg_duration_ms(d, r, "d", 0, &v) == 0 && v == 1500,
     "duration getter");
  ok(sfk_cfg_duration_ms(d, r, "none", 25000, &v) == 0 && v == 25000,
     "duration default");
  is_int(sfk_cfg_duration_ms(d, sfk_cfg_get(r, "t"), "keepalive", 0, &v),
         -EINVAL, "bad duration");
  is_str(cap_text(&c),
         "t.yaml:2:11: invalid boolean 'maybe' for 'bad_bool' (use true or "
         "false)\n"
         "t.yaml:12:14: invalid duration '10x' for 'keepalive' (use e.g. "
         "250ms, 10s, 5m, 24h)\n",
         "bool and duration messages, exact positions");
  sfk_cfg_doc_del(d);
  cap_close(&c);

  d = load(&c, "addr: '[::1]:53'\nbadaddr: example.org:53\ns: text\n"
               "m: {a: 1}\n");
  r = sfk_cfg_root(d);
  struct sockaddr_storage ss;
  socklen_t len = 99;
  ok(sfk_cfg_addr(d, r, "addr", NULL, &ss, &len) == 0 &&
         ss.ss_family == AF_INET6 && len == sizeof(struct sockaddr_in6),
     "addr getter");
  ok(sfk_cfg_addr(d, r, "none", NULL, &ss, &len) == 0 && len == 0,
     "addr absent, no default: len 0");
  ok(sfk_cfg_addr(d, r, "none", "127.0.0.1:9", &ss, &len) == 0 &&
         ss.ss_family == AF_INET &&
         ntohs(((struct sockaddr_in *)&ss)->sin_port) == 9,
     "addr default");
  is_int(sfk_cfg_addr(d, r, "badaddr", NULL, &ss, &len), -EINVAL,
         "host names refused");
  const char *s = NULL;
  ok(sfk_cfg_string(d, r, "s", NULL, &s) == 0 && strcmp(s, "text") == 0,
     "string getter");
  ok(sfk_cfg_string(d, r, "none", "dflt", &s) == 0 && strcmp(s, "dflt") == 0,
     "string default");
  ok(sfk_cfg_string(d, r, "none", NULL, &s) == 0 && s == NULL,
     "string default NULL");
  is_int(sfk_cfg_string(d, r, "m", NULL, &s), -EINVAL, "string of a map");
  is_str(cap_text(&c),
         "t.yaml:2:10: invalid address 'example.org:53' for 'badaddr' (use "
         "IPv4:port like 127.0.0.1:1080 or [IPv6]:port; no host names)\n"
         "t.yaml:4:4: 'm' must be a single value, not a map\n",
         "addr and string messages");
  sfk_cfg_doc_del(d);
  cap_close(&c);

  /* sfk_cfg_error variants */
  d = load(&c, "a: 1\n");
  sfk_cfg_error(d, NULL, "at %s", "start");
  sfk_cfg_error(d, sfk_cfg_get(sfk_cfg_root(d), "a"), "here");
  sfk_cfg_error_nopos(d, "--pid %d is bad", 3);
  is_str(cap_text(&c),
         "t.yaml:1:1: at start\nt.yaml:1:4: here\nt.yaml: --pid 3 is bad\n",
         "error formats");
  is_int(sfk_cfg_errors(d), 3, "errors counted");
  sfk_cfg_doc_del(d);
  cap_close(&c);
}

/* ------------------------------------------------------------------ */
/* Files and paths                                                      */

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
    printf("Bail out! cannot write %s\n", path);
    exit(99);
  }
}

static void test_files(void) {
  char dir[] = "/tmp/sfk_test_cfg_XXXXXX";
  if (!mkdtemp(dir)) {
    printf("Bail out! mkdtemp\n");
    exit(99);
  }
  char sub[64], file[96], want[400], buf[256];
  snprintf(sub, sizeof sub, "%s/etc", dir);
  mkdir(sub, 0700);
  snprintf(file, sizeof file, "%s/site.yaml", sub);
  write_file(file, "p: state/x.key\nabs: /var/lib/x\nempty: ''\n"
                   "dot: ./y\n");

  struct cap c;
  cap_open(&c);
  struct sfk_cfg_doc *d = sfk_cfg_load_file(file, c.f);
  ok(d != NULL, "load_file");
  const struct sfk_cfg_node *r = sfk_cfg_root(d);
  is_str(sfk_cfg_filename(d), file, "file name kept");
  is_str(sfk_cfg_dir(d), sub, "dir is the file's folder");
  is_int(sfk_cfg_path(d, r, "p", NULL, buf, sizeof buf), 0, "relative path");
  snprintf(want, sizeof want, "%s/state/x.key", sub);
  is_str(buf, want, "relative to the config folder");
  ok(sfk_cfg_path(d, r, "abs", NULL, buf, sizeof buf) == 0 &&
         strcmp(buf, "/var/lib/x") == 0,
     "absolute path kept");
  ok(sfk_cfg_path(d, r, "none", NULL, buf, sizeof buf) == 0 && buf[0] == 0,
     "absent path, no default: empty");
  snprintf(want, sizeof want, "%s/state/id.key", sub);
  ok(sfk_cfg_path(d, r, "none", "state/id.key", buf, sizeof buf) == 0 &&
         strcmp(buf, want) == 0,
     "relative default resolved too");
  is_int(sfk_cfg_path(d, r, "empty", NULL, buf, sizeof buf), -EINVAL,
         "empty path refused");
  char small[16];
  is_int(sfk_cfg_path(d, r, "p", NULL, small, sizeof small), -EINVAL,
         "path too long for the buffer");
  is_str(small, "", "buffer emptied on overflow");
  snprintf(want, sizeof want,
           "%s:3:8: empty path for 'empty'\n"
           "%s:1:4: path for 'p' is too long (15 bytes max)\n",
           file, file);
  is_str(cap_text(&c), want, "path messages name the file");
  sfk_cfg_doc_del(d);
  cap_close(&c);

  /* a file in the current folder: paths stay relative */
  d = sfk_cfg_load_string("site.yaml", "p: a/b\n", 7, NULL);
  ok(sfk_cfg_path(d, sfk_cfg_root(d), "p", NULL, buf, sizeof buf) == 0 &&
         strcmp(buf, "a/b") == 0,
     "string doc: path relative to .");
  sfk_cfg_doc_del(d);

  /* unreadable */
  snprintf(file, sizeof file, "%s/missing.yaml", dir);
  cap_open(&c);
  errno = 0;
  d = sfk_cfg_load_file(file, c.f);
  ok(d == NULL && errno == ENOENT, "missing file: NULL, ENOENT");
  snprintf(want, sizeof want, "%s: cannot open: No such file or directory\n",
           file);
  is_str(cap_text(&c), want, "missing file message");
  cap_close(&c);

  cap_open(&c);
  d = sfk_cfg_load_file(sub, c.f);
  ok(d == NULL && errno == EISDIR, "a folder: NULL, EISDIR");
  cap_close(&c);

  /* too big */
  snprintf(file, sizeof file, "%s/big.yaml", dir);
  FILE *f = fopen(file, "w");
  static const char line[] = "# a comment line\n";
  for (size_t i = 0; f && i <= SFK_CFG_MAX_FILE / (sizeof line - 1); i++)
    fputs(line, f);
  if (f)
    fclose(f);
  cap_open(&c);
  d = sfk_cfg_load_file(file, c.f);
  ok(d && !sfk_cfg_root(d) && sfk_cfg_errors(d) == 1,
     "a file over the limit is refused");
  snprintf(want, sizeof want, "%s: larger than %u bytes; not a config file\n",
           file, SFK_CFG_MAX_FILE);
  is_str(cap_text(&c), want, "too big message");
  sfk_cfg_doc_del(d);
  cap_close(&c);
  unlink(file);

  snprintf(file, sizeof file, "%s/site.yaml", sub);
  unlink(file);
  rmdir(sub);
  rmdir(dir);
}

int main(void) {
  test_uint();
  test_bool();
  test_duration();
  test_hostport();
  test_cidr();
  test_port_range();
  test_quote();
  test_tree();
  test_load_errors();
  test_refused();
  test_check_keys();
  test_getters();
  test_files();
  return tap_done();
}
