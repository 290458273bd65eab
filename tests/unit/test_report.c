/* Unit tests for the status renderers (src/ctl/report.c). */
#include "autoconfig.h"

#include "report.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>

/* A fresh renderer; aborts the test run when memory is short. */
static struct sfk_report *start(struct sfk_report_buf *rb, int fmt,
                                size_t max) {
  if (sfk_report_buf_init(rb, fmt, max) < 0) {
    printf("Bail out! out of memory\n");
    exit(1);
  }
  return sfk_report_buf_emitter(rb);
}

static void tree(struct sfk_report *r) {
  r->begin(r, "daemon", 0);
  r->num(r, "pid", 1);
  r->str(r, "study_id", "abc");
  r->end(r);
  r->str(r, "mapping", "none");
  r->begin(r, "peers", 1);
  r->begin(r, NULL, 0);
  r->num(r, "pid", 0);
  r->str(r, "state", "up");
  r->begin(r, "quic", 0);
  r->num(r, "rtt_us", -5);
  r->end(r);
  r->end(r);
  r->begin(r, NULL, 0);
  r->num(r, "pid", 2);
  r->end(r);
  r->end(r);
  r->begin(r, "empty", 1);
  r->end(r);
  r->begin(r, "nothing", 0);
  r->end(r);
}

static void test_nesting(void) {
  struct sfk_report_buf rb;
  tree(start(&rb, SFK_REPORT_JSON, 0));
  is_str(sfk_report_buf_finish(&rb, NULL),
         "{\"daemon\":{\"pid\":1,\"study_id\":\"abc\"},\"mapping\":\"none\","
         "\"peers\":[{\"pid\":0,\"state\":\"up\",\"quic\":{\"rtt_us\":-5}},"
         "{\"pid\":2}],\"empty\":[],\"nothing\":{}}\n",
         "json: objects, lists, numbers, empty containers");
  sfk_report_buf_free(&rb);

  tree(start(&rb, SFK_REPORT_TEXT, 0));
  is_str(sfk_report_buf_finish(&rb, NULL),
         "daemon:\n"
         "  pid: 1\n"
         "  study_id: abc\n"
         "mapping: none\n"
         "peers:\n"
         "  - pid: 0\n"
         "    state: up\n"
         "    quic:\n"
         "      rtt_us: -5\n"
         "  - pid: 2\n"
         "empty: (none)\n"
         "nothing: (none)\n",
         "text: indented key: value lines, lists as - items");
  sfk_report_buf_free(&rb);

  struct sfk_report *r = start(&rb, SFK_REPORT_TEXT, 0);
  r->begin(r, "l", 1);
  r->str(r, NULL, "a");
  r->num(r, NULL, 7);
  r->begin(r, NULL, 0);
  r->end(r);
  r->end(r);
  is_str(sfk_report_buf_finish(&rb, NULL), "l:\n  - a\n  - 7\n  - (none)\n",
         "text: scalar and empty items");
  sfk_report_buf_free(&rb);

  r = start(&rb, SFK_REPORT_JSON, 0);
  is_str(sfk_report_buf_finish(&rb, NULL), "{}\n", "json: empty report");
  sfk_report_buf_free(&rb);
}

static void test_escaping(void) {
  struct sfk_report_buf rb;
  struct sfk_report *r = start(&rb, SFK_REPORT_JSON, 0);
  r->str(r, "q\"k", "a\"b\\c\n\r\t\b\f\x01\x1f\x7f/");
  r->str(r, "utf8", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  r->str(r, "bad", "\xff\xc3(\xe2\x82\xed\xa0\x80\xc0\xaf\xf4\x90\x80\x80x");
  r->str(r, "trunc", "\xe2\x82");
  r->str(r, "null", NULL);
  r->num(r, "min", INT64_MIN);
  r->num(r, "max", INT64_MAX);
  is_str(sfk_report_buf_finish(&rb, NULL),
         "{\"q\\\"k\":\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001f\\u007f/\","
         "\"utf8\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\","
         "\"bad\":\"\\ufffd\\ufffd(\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd"
         "\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffdx\","
         "\"trunc\":\"\\ufffd\\ufffd\","
         "\"null\":null,"
         "\"min\":-9223372036854775808,\"max\":9223372036854775807}\n",
         "json: control characters escaped, UTF-8 kept, invalid bytes "
         "replaced");
  sfk_report_buf_free(&rb);

  r = start(&rb, SFK_REPORT_TEXT, 0);
  r->str(r, "why", "line1\nline2\t\x1b[31mred\x7f \xc2\x9b \xc3\xa9 \xff");
  r->str(r, "k\ney", "");
  is_str(sfk_report_buf_finish(&rb, NULL),
         "why: line1\\nline2\\t\\x1b[31mred\\x7f \\u009b \xc3\xa9 \\xff\n"
         "k\\ney: \"\"\n",
         "text: no raw control characters or escape sequences reach the "
         "terminal");
  sfk_report_buf_free(&rb);
}

/* Count the brackets outside strings: a crude validity check. */
static int balanced(const char *s) {
  int depth = 0, in_str = 0;
  for (; *s; s++) {
    if (in_str) {
      if (*s == '\\' && s[1])
        s++;
      else if (*s == '"')
        in_str = 0;
    } else if (*s == '"') {
      in_str = 1;
    } else if (*s == '{' || *s == '[') {
      depth++;
    } else if (*s == '}' || *s == ']') {
      if (--depth < 0)
        return 0;
    }
  }
  return depth == 0 && !in_str;
}

static void test_truncation(void) {
  struct sfk_report_buf rb;
  const size_t cap = 4096;
  char val[100];
  memset(val, 'x', sizeof val - 1);
  val[sizeof val - 1] = '\0';
  for (int fmt = 0; fmt < 2; fmt++) {
    struct sfk_report *r = start(&rb, fmt, cap);
    r->begin(r, "peers", 1);
    for (int i = 0; i < 1000; i++) {
      r->begin(r, NULL, 0);
      r->num(r, "pid", i);
      r->str(r, "why", val);
      r->begin(r, "deep", 0);
      r->str(r, "esc", "\x01\x01\x01\x01\x01\x01\x01\x01");
      r->end(r);
      r->end(r);
    }
    size_t len;
    const char *out = sfk_report_buf_finish(&rb, &len);
    ok(len <= cap, "%s: capped (%zu <= %zu)", fmt ? "json" : "text", len, cap);
    ok(strlen(out) == len, "%s: length matches", fmt ? "json" : "text");
    ok(rb.truncated, "%s: flagged as truncated", fmt ? "json" : "text");
    if (fmt == SFK_REPORT_JSON) {
      ok(balanced(out), "json: still balanced after the cut");
      const char *mk = "],\"truncated\":true}\n";
      ok(len > strlen(mk) && strcmp(out + len - strlen(mk), mk) == 0,
         "json: marker at the top level");
      ok(strstr(out, "\\u00") && !strstr(out, "\\u0\""),
         "json: no escape split by the cut");
    } else {
      ok(strstr(out, "(truncated: the report exceeded 4096 bytes)\n") != NULL,
         "text: marker line");
      ok(out[len - 1] == '\n', "text: ends with a full line");
    }
    sfk_report_buf_free(&rb);
  }

  /* Cut at the deepest level: the closers still fit in the cap. */
  for (int fmt = 0; fmt < 2; fmt++) {
    struct sfk_report *r = start(&rb, fmt, SFK_REPORT_MIN_CAP);
    for (int i = 0; i < SFK_REPORT_MAX_DEPTH; i++)
      r->begin(r, i % 2 ? NULL : "d", i % 2 == 0);
    for (int i = 0; i < 200; i++)
      r->str(r, "k", "0123456789");
    size_t len;
    const char *out = sfk_report_buf_finish(&rb, &len);
    ok(rb.truncated && len <= SFK_REPORT_MIN_CAP && strlen(out) == len,
       "%s: cut %d levels deep stays within the cap (%zu)",
       fmt ? "json" : "text", SFK_REPORT_MAX_DEPTH, len);
    if (fmt == SFK_REPORT_JSON)
      ok(balanced(out), "json: balanced after a deep cut");
    sfk_report_buf_free(&rb);
  }

  /* A single value larger than the cap. */
  char *big = malloc(10000);
  memset(big, 'y', 9999);
  big[9999] = '\0';
  struct sfk_report *r = start(&rb, SFK_REPORT_JSON, 1000);
  r->str(r, "a", "b");
  r->str(r, "big", big);
  r->str(r, "after", "c");
  is_str(sfk_report_buf_finish(&rb, NULL), "{\"a\":\"b\",\"truncated\":true}\n",
         "json: an oversized value is dropped whole, later ones too");
  sfk_report_buf_free(&rb);
  free(big);

  r = start(&rb, SFK_REPORT_JSON, 1);
  ok(rb.max == SFK_REPORT_MIN_CAP, "a tiny cap is raised to the minimum");
  sfk_report_buf_free(&rb);
}

static void test_mismatch(void) {
  struct sfk_report_buf rb;
  struct sfk_report *r = start(&rb, SFK_REPORT_JSON, 0);
  r->end(r); /* stray end at the root */
  r->end(r);
  r->begin(r, "a", 0);
  r->begin(r, "b", 1);
  r->str(r, "ignored_key", "v"); /* a key inside a list */
  r->end(r);
  r->str(r, NULL, "nokey"); /* no key inside an object */
  /* a and everything else left open */
  r->begin(r, "c", 1);
  r->begin(r, NULL, 1);
  is_str(sfk_report_buf_finish(&rb, NULL),
         "{\"a\":{\"b\":[\"v\"],\"\":\"nokey\",\"c\":[[]]}}\n",
         "json: stray ends ignored, missing ends closed, keys tolerated");
  r->str(r, "late", "x");
  r->end(r);
  is_str(sfk_report_buf_finish(&rb, NULL),
         "{\"a\":{\"b\":[\"v\"],\"\":\"nokey\",\"c\":[[]]}}\n",
         "calls after finish are ignored");
  sfk_report_buf_free(&rb);

  /* Deeper than SFK_REPORT_MAX_DEPTH: dropped, the rest still fits. */
  r = start(&rb, SFK_REPORT_JSON, 0);
  for (int i = 0; i < 100; i++)
    r->begin(r, "d", 0);
  r->str(r, "deep", "lost");
  for (int i = 0; i < 100; i++)
    r->end(r);
  r->str(r, "after", "kept");
  const char *out = sfk_report_buf_finish(&rb, NULL);
  ok(balanced(out) && strstr(out, "\"after\":\"kept\"}") &&
         !strstr(out, "lost"),
     "json: too deep is dropped, the levels still match");
  sfk_report_buf_free(&rb);

  r = start(&rb, SFK_REPORT_TEXT, 0);
  r->end(r);
  r->begin(r, "x", 0);
  r->begin(r, "y", 0);
  is_str(sfk_report_buf_finish(&rb, NULL), "x:\n  y: (none)\n",
         "text: unclosed levels closed");
  sfk_report_buf_free(&rb);
}

/* A plugin's bad calls cannot close the daemon's levels. */
static void test_guard(void) {
  struct sfk_report_buf rb;
  struct sfk_report *r = start(&rb, SFK_REPORT_JSON, 0);
  r->begin(r, "transport.x", 0);
  struct sfk_report_guard g;
  sfk_report_guard_init(&g, r);
  struct sfk_report *p = &g.r;
  p->str(p, "k", "v");
  p->end(p); /* would close transport.x */
  p->end(p);
  p->begin(p, "open", 0);
  p->begin(p, "more", 1);
  sfk_report_guard_close(&g); /* closes open and more */
  r->str(r, "daemon_key", "after");
  r->end(r);
  r->str(r, "root", "ok");
  is_str(sfk_report_buf_finish(&rb, NULL),
         "{\"transport.x\":{\"k\":\"v\",\"open\":{\"more\":[]},"
         "\"daemon_key\":\"after\"},\"root\":\"ok\"}\n",
         "guard: stray ends dropped, open levels closed");
  sfk_report_buf_free(&rb);
}

static void test_take(void) {
  struct sfk_report_buf rb;
  struct sfk_report *r = start(&rb, SFK_REPORT_TEXT, 0);
  r->str(r, "a", "b");
  size_t len = 0;
  char *s = sfk_report_buf_take(&rb, &len);
  is_str(s, "a: b\n", "take returns the text");
  is_int(len, 5, "take returns its length");
  ok(rb.buf == NULL, "take leaves nothing behind");
  sfk_report_buf_free(&rb); /* harmless */
  free(s);
}

int main(void) {
  test_nesting();
  test_escaping();
  test_truncation();
  test_mismatch();
  test_guard();
  test_take();
  return tap_done();
}
