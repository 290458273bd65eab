/*
 * Status tree renderers (JSON, text) behind struct sfk_report.
 *
 * Every element (a scalar, or the opening of a container) is written as a
 * whole or not at all: on failure the buffer is rolled back to where the
 * element began, so a cut never splits a string or an escape.  Closers
 * and the marker come out of SFK_REPORT_RESERVE, which content never
 * uses, so closing always fits.
 */
#include "autoconfig.h"

#include "report.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INITIAL_CAP 4096

static struct sfk_report_buf *RB(struct sfk_report *r) {
  return r->ctx;
}

/* ---- the buffer ---------------------------------------------------------- */

/* Make room for need bytes (plus the NUL); need <= rb->max. */
static int grow(struct sfk_report_buf *rb, size_t need) {
  if (need <= rb->cap)
    return 0;
  size_t cap = rb->cap;
  while (cap < need)
    cap = cap > rb->max / 2 ? rb->max : cap * 2;
  char *nb = realloc(rb->buf, cap + 1);
  if (!nb)
    return -1;
  rb->buf = nb;
  rb->cap = cap;
  return 0;
}

/* Append n bytes unless that would pass `limit`.  0 or -1. */
static int put(struct sfk_report_buf *rb, const char *p, size_t n,
               size_t limit) {
  if (n > limit || rb->len > limit - n || grow(rb, rb->len + n) < 0)
    return -1;
  memcpy(rb->buf + rb->len, p, n);
  rb->len += n;
  rb->buf[rb->len] = '\0';
  return 0;
}

static int puts_(struct sfk_report_buf *rb, const char *s, size_t limit) {
  return put(rb, s, strlen(s), limit);
}

static int put_indent(struct sfk_report_buf *rb, unsigned n, size_t limit) {
  static const char sp[] = "                                ";
  while (n) {
    unsigned k = n < sizeof sp - 1 ? n : (unsigned)(sizeof sp - 1);
    if (put(rb, sp, k, limit) < 0)
      return -1;
    n -= k;
  }
  return 0;
}

/* ---- escaping ------------------------------------------------------------ */

/* Length of the well-formed UTF-8 sequence of 2-4 bytes at p (RFC 3629:
 * no overlongs, no surrogates, nothing past U+10FFFF), else 0.  Stops at
 * the NUL, so never reads past the string. */
static size_t utf8_seq(const unsigned char *p) {
  unsigned c = p[0];
  if (c >= 0xc2 && c <= 0xdf)
    return (p[1] & 0xc0) == 0x80 ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    if ((p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
      return 0;
    if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] >= 0xa0))
      return 0;
    return 3;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if ((p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 || (p[3] & 0xc0) != 0x80)
      return 0;
    if ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] >= 0x90))
      return 0;
    return 4;
  }
  return 0;
}

/*
 * JSON string with quotes: '"', '\\' and every control character
 * escaped, valid UTF-8 passed through, each byte of invalid UTF-8 as
 * U+FFFD, so the output is always valid UTF-8 JSON.
 */
static int put_json_str(struct sfk_report_buf *rb, const char *s,
                        size_t limit) {
  const unsigned char *p = (const unsigned char *)s;
  if (put(rb, "\"", 1, limit) < 0)
    return -1;
  while (*p) {
    const unsigned char *run = p;
    while (*p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\')
      p++;
    if (p > run && put(rb, (const char *)run, (size_t)(p - run), limit) < 0)
      return -1;
    if (!*p)
      break;
    char esc[8];
    const char *e = esc;
    size_t n;
    if (*p < 0x80) {
      switch (*p) {
      case '"':
        e = "\\\"";
        break;
      case '\\':
        e = "\\\\";
        break;
      case '\n':
        e = "\\n";
        break;
      case '\r':
        e = "\\r";
        break;
      case '\t':
        e = "\\t";
        break;
      case '\b':
        e = "\\b";
        break;
      case '\f':
        e = "\\f";
        break;
      default:
        snprintf(esc, sizeof esc, "\\u%04x", *p);
        break;
      }
      n = 1;
    } else if ((n = utf8_seq(p)) > 0) {
      if (put(rb, (const char *)p, n, limit) < 0)
        return -1;
      p += n;
      continue;
    } else {
      e = "\\ufffd";
      n = 1;
    }
    if (puts_(rb, e, limit) < 0)
      return -1;
    p += n;
  }
  return put(rb, "\"", 1, limit);
}

/*
 * Text for a terminal: printable ASCII and valid UTF-8 as they are;
 * control characters (C0, DEL and the C1 range, which terminals may
 * act on) and invalid bytes as visible escapes, so a peer's text can
 * neither break a line nor send escape sequences.
 */
static int put_text_str(struct sfk_report_buf *rb, const char *s,
                        size_t limit) {
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    const unsigned char *run = p;
    while (*p >= 0x20 && *p < 0x7f)
      p++;
    if (p > run && put(rb, (const char *)run, (size_t)(p - run), limit) < 0)
      return -1;
    if (!*p)
      break;
    char esc[12];
    size_t n = *p >= 0x80 ? utf8_seq(p) : 0;
    if (n == 2 && p[0] == 0xc2 && p[1] < 0xa0) {
      snprintf(esc, sizeof esc, "\\u%04x", p[1]); /* C1 control */
    } else if (n > 0) {
      if (put(rb, (const char *)p, n, limit) < 0)
        return -1;
      p += n;
      continue;
    } else if (*p == '\n') {
      snprintf(esc, sizeof esc, "\\n");
      n = 1;
    } else if (*p == '\t') {
      snprintf(esc, sizeof esc, "\\t");
      n = 1;
    } else {
      snprintf(esc, sizeof esc, "\\x%02x", *p);
      n = 1;
    }
    if (puts_(rb, esc, limit) < 0)
      return -1;
    p += n;
  }
  return 0;
}

/* ---- elements ------------------------------------------------------------ */

static size_t content_limit(const struct sfk_report_buf *rb) {
  return rb->max - SFK_REPORT_RESERVE;
}

static struct sfk_report_level *top(struct sfk_report_buf *rb) {
  return &rb->lv[rb->depth];
}

/* Separator, indentation and key of the next child of the top level. */
static int put_prefix(struct sfk_report_buf *rb, const char *key,
                      size_t limit) {
  const struct sfk_report_level *L = top(rb);
  if (rb->format == SFK_REPORT_JSON) {
    if (L->n && put(rb, ",", 1, limit) < 0)
      return -1;
    if (!L->list) /* a key outside a list is required; tolerate NULL */
      return put_json_str(rb, key ? key : "", limit) < 0 ||
                     put(rb, ":", 1, limit) < 0
                 ? -1
                 : 0;
    return 0;
  }
  if (L->open_line && put(rb, "\n", 1, limit) < 0)
    return -1;
  if (!(L->inline_first && L->n == 0) && put_indent(rb, L->indent, limit) < 0)
    return -1;
  if (L->list)
    return put(rb, "- ", 2, limit);
  return put_text_str(rb, key ? key : "?", limit);
}

/* Roll back a failed element: from now on the report is cut here. */
static void cut(struct sfk_report_buf *rb, size_t mark) {
  rb->len = mark;
  if (rb->buf)
    rb->buf[rb->len] = '\0';
  rb->truncated = 1;
}

/* A child of the top level was written. */
static void wrote(struct sfk_report_buf *rb) {
  struct sfk_report_level *L = top(rb);
  L->open_line = 0;
  L->n++;
}

static void scalar(struct sfk_report_buf *rb, const char *key, const char *val,
                   int quoted) {
  if (rb->finished || rb->skip || rb->truncated)
    return;
  size_t mark = rb->len, lim = content_limit(rb);
  int bad = put_prefix(rb, key, lim) < 0;
  if (rb->format == SFK_REPORT_JSON) {
    if (!bad)
      bad = !val     ? puts_(rb, "null", lim) < 0
            : quoted ? put_json_str(rb, val, lim) < 0
                     : puts_(rb, val, lim) < 0;
  } else {
    if (!bad && !top(rb)->list)
      bad = put(rb, ": ", 2, lim) < 0;
    /* An empty string shows as "" so the line does not look cut off. */
    if (!bad)
      bad = (val && *val ? put_text_str(rb, val, lim)
                         : puts_(rb, "\"\"", lim)) < 0 ||
            put(rb, "\n", 1, lim) < 0;
  }
  if (bad)
    cut(rb, mark);
  else
    wrote(rb);
}

static void r_str(struct sfk_report *r, const char *key, const char *val) {
  scalar(RB(r), key, val, 1);
}

static void r_num(struct sfk_report *r, const char *key, int64_t val) {
  char b[24];
  snprintf(b, sizeof b, "%" PRId64, val);
  scalar(RB(r), key, b, 0);
}

static void r_begin(struct sfk_report *r, const char *key, int list) {
  struct sfk_report_buf *rb = RB(r);
  if (rb->finished)
    return;
  if (rb->skip || rb->truncated || rb->depth >= SFK_REPORT_MAX_DEPTH) {
    rb->skip++; /* dropped with its content; its end() is matched */
    return;
  }
  size_t mark = rb->len, lim = content_limit(rb);
  const struct sfk_report_level *L = top(rb);
  int bad = put_prefix(rb, key, lim) < 0;
  if (!bad) {
    if (rb->format == SFK_REPORT_JSON)
      bad = put(rb, list ? "[" : "{", 1, lim) < 0;
    else if (!L->list)
      bad = put(rb, ":", 1, lim) < 0;
  }
  if (bad) {
    cut(rb, mark);
    rb->skip++;
    return;
  }
  unsigned indent = L->indent + 2;
  int item = L->list;
  wrote(rb);
  rb->depth++;
  rb->lv[rb->depth] = (struct sfk_report_level){
      .list = list ? 1 : 0,
      .open_line = item ? 0 : 1,    /* "key:" waits for its first child */
      .inline_first = item ? 1 : 0, /* a list item starts after "- " */
      .n = 0,
      .indent = indent};
}

/* Close the top level; always fits (the reserve). */
static void close_level(struct sfk_report_buf *rb) {
  const struct sfk_report_level *L = top(rb);
  size_t lim = rb->max;
  if (rb->format == SFK_REPORT_JSON) {
    put(rb, L->list ? "]" : "}", 1, lim);
  } else if (L->n == 0) {
    if (rb->truncated)
      (void)((L->open_line || L->inline_first) && put(rb, "\n", 1, lim));
    else if (L->open_line)
      put(rb, " (none)\n", 8, lim);
    else if (L->inline_first)
      put(rb, "(none)\n", 7, lim);
  }
  rb->depth--;
}

static void r_end(struct sfk_report *r) {
  struct sfk_report_buf *rb = RB(r);
  if (rb->finished)
    return;
  if (rb->skip) {
    rb->skip--;
    return;
  }
  if (rb->depth == 0)
    return; /* an end without a begin: the root stays open */
  close_level(rb);
}

/* ---- lifetime ------------------------------------------------------------ */

int sfk_report_buf_init(struct sfk_report_buf *rb, int format, size_t max) {
  memset(rb, 0, sizeof *rb);
  rb->r = (struct sfk_report){
      .ctx = rb, .begin = r_begin, .end = r_end, .str = r_str, .num = r_num};
  rb->format = format == SFK_REPORT_JSON ? SFK_REPORT_JSON : SFK_REPORT_TEXT;
  rb->max = max ? max : SFK_REPORT_CAP;
  if (rb->max < SFK_REPORT_MIN_CAP)
    rb->max = SFK_REPORT_MIN_CAP;
  rb->cap = rb->max < INITIAL_CAP ? rb->max : INITIAL_CAP;
  rb->buf = malloc(rb->cap + 1);
  if (!rb->buf)
    return -ENOMEM;
  rb->buf[0] = '\0';
  if (rb->format == SFK_REPORT_JSON)
    put(rb, "{", 1, rb->max);
  return 0;
}

const char *sfk_report_buf_finish(struct sfk_report_buf *rb, size_t *len) {
  if (!rb->buf) {
    if (len)
      *len = 0;
    return NULL;
  }
  if (!rb->finished) {
    rb->skip = 0;
    while (rb->depth)
      close_level(rb);
    if (rb->format == SFK_REPORT_JSON) {
      if (rb->truncated)
        puts_(rb, rb->lv[0].n ? ",\"truncated\":true" : "\"truncated\":true",
              rb->max);
      put(rb, "}\n", 2, rb->max);
    } else if (rb->truncated) {
      char m[96];
      snprintf(m, sizeof m, "(truncated: the report exceeded %zu bytes)\n",
               rb->max);
      puts_(rb, m, rb->max);
    }
    rb->finished = 1;
  }
  if (len)
    *len = rb->len;
  return rb->buf;
}

char *sfk_report_buf_take(struct sfk_report_buf *rb, size_t *len) {
  sfk_report_buf_finish(rb, len);
  char *b = rb->buf;
  rb->buf = NULL;
  rb->len = rb->cap = 0;
  return b;
}

void sfk_report_buf_free(struct sfk_report_buf *rb) {
  free(rb->buf);
  rb->buf = NULL;
  rb->len = rb->cap = 0;
}

/* ---- guard --------------------------------------------------------------- */

static void g_begin(struct sfk_report *r, const char *key, int list) {
  struct sfk_report_guard *g = r->ctx;
  g->depth++;
  g->inner->begin(g->inner, key, list);
}

static void g_end(struct sfk_report *r) {
  struct sfk_report_guard *g = r->ctx;
  if (!g->depth)
    return; /* would close the daemon's level */
  g->depth--;
  g->inner->end(g->inner);
}

static void g_str(struct sfk_report *r, const char *key, const char *val) {
  struct sfk_report_guard *g = r->ctx;
  g->inner->str(g->inner, key, val);
}

static void g_num(struct sfk_report *r, const char *key, int64_t val) {
  struct sfk_report_guard *g = r->ctx;
  g->inner->num(g->inner, key, val);
}

void sfk_report_guard_init(struct sfk_report_guard *g,
                           struct sfk_report *inner) {
  g->r = (struct sfk_report){
      .ctx = g, .begin = g_begin, .end = g_end, .str = g_str, .num = g_num};
  g->inner = inner;
  g->depth = 0;
}

void sfk_report_guard_close(struct sfk_report_guard *g) {
  while (g->depth) {
    g->depth--;
    g->inner->end(g->inner);
  }
}
