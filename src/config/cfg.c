/*
 * The YAML config tree.  libyaml's event parser feeds a small builder
 * with an explicit stack (no recursion, bounded depth), so every node
 * keeps the position libyaml reports for it.  All nodes of a document
 * sit on one list and are freed together.
 */
#include "autoconfig.h" /* autoconf: first in every .c file */

#include "cfg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#define CFG_MAX_NODES 100000u
#define CFG_MAX_SCALAR 65536u

struct sfk_cfg_node {
  int type;           /* enum sfk_cfg_type */
  unsigned line, col; /* 1-based */
  unsigned char null; /* plain "", "~" or "null" */
  unsigned char bad;  /* placeholder for a refused alias: already reported */
  char *text;         /* scalar text, owned */
  size_t len, cap;    /* seq items, or map entries */
  struct sfk_cfg_node **kids; /* seq: items; map: key0, val0, key1, val1 ... */
  struct sfk_cfg_node *all;   /* next node of the document (for freeing) */
};

/* Mutable part of a document: errors are counted through a const doc. */
struct cfg_sink {
  FILE *f;
  unsigned errors;
};

struct sfk_cfg_doc {
  char *name, *dir;
  struct cfg_sink *sink;
  struct sfk_cfg_node *root;
  struct sfk_cfg_node *all; /* every node */
  unsigned nnodes;
};

/* ------------------------------------------------------------------ */
/* Errors                                                               */

const char *sfk_cfg_quote(const char *s, char *buf, size_t bufsz) {
  static const char hex[] = "0123456789abcdef";
  size_t n = 0, shown = 0;
  if (!bufsz)
    return buf;
  if (!s)
    s = "";
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    /* room for "\xNN" and "..." and NUL */
    if (shown >= 48 || n + 4 + 4 > bufsz) {
      if (n + 4 <= bufsz) {
        memcpy(buf + n, "...", 3);
        n += 3;
      }
      break;
    }
    if (c >= 0x20 && c < 0x7f) {
      buf[n++] = (char)c;
    } else {
      buf[n++] = '\\';
      buf[n++] = 'x';
      buf[n++] = hex[c >> 4];
      buf[n++] = hex[c & 15];
    }
    shown++;
  }
  buf[n] = '\0';
  return buf;
}

static void report_at(const struct sfk_cfg_doc *doc, unsigned line,
                      unsigned col, const char *fmt, va_list ap)
    SFK_PRINTF(4, 0);
static void report_at(const struct sfk_cfg_doc *doc, unsigned line,
                      unsigned col, const char *fmt, va_list ap) {
  FILE *f = doc->sink->f;
  if (line)
    fprintf(f, "%s:%u:%u: ", doc->name, line, col);
  else
    fprintf(f, "%s: ", doc->name);
  vfprintf(f, fmt, ap);
  fputc('\n', f);
  fflush(f);
  doc->sink->errors++;
}

static void report(const struct sfk_cfg_doc *doc, unsigned line, unsigned col,
                   const char *fmt, ...) SFK_PRINTF(4, 5);
static void report(const struct sfk_cfg_doc *doc, unsigned line, unsigned col,
                   const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  report_at(doc, line, col, fmt, ap);
  va_end(ap);
}

void sfk_cfg_verror(const struct sfk_cfg_doc *doc, const struct sfk_cfg_node *n,
                    const char *fmt, va_list ap) {
  report_at(doc, n ? n->line : 1, n ? n->col : 1, fmt, ap);
}

void sfk_cfg_error(const struct sfk_cfg_doc *doc, const struct sfk_cfg_node *n,
                   const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  sfk_cfg_verror(doc, n, fmt, ap);
  va_end(ap);
}

void sfk_cfg_error_nopos(const struct sfk_cfg_doc *doc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  report_at(doc, 0, 0, fmt, ap);
  va_end(ap);
}

/* ------------------------------------------------------------------ */
/* Documents                                                            */

static struct sfk_cfg_doc *doc_new(const char *name, FILE *errsink) {
  struct sfk_cfg_doc *doc = calloc(1, sizeof *doc);
  if (!doc)
    return NULL;
  doc->sink = calloc(1, sizeof *doc->sink);
  doc->name = strdup(name ? name : "(config)");
  if (!doc->sink || !doc->name) {
    sfk_cfg_doc_del(doc);
    return NULL;
  }
  doc->sink->f = errsink ? errsink : stderr;
  return doc;
}

void sfk_cfg_doc_set_sink(struct sfk_cfg_doc *doc, FILE *f) {
  if (doc && doc->sink)
    doc->sink->f = f ? f : stderr;
}

void sfk_cfg_doc_del(struct sfk_cfg_doc *doc) {
  if (!doc)
    return;
  struct sfk_cfg_node *n = doc->all;
  while (n) {
    struct sfk_cfg_node *next = n->all;
    free(n->text);
    free(n->kids);
    free(n);
    n = next;
  }
  free(doc->name);
  free(doc->dir);
  free(doc->sink);
  free(doc);
}

const struct sfk_cfg_node *sfk_cfg_root(const struct sfk_cfg_doc *doc) {
  return doc ? doc->root : NULL;
}

unsigned sfk_cfg_errors(const struct sfk_cfg_doc *doc) {
  return doc ? doc->sink->errors : 0;
}

const char *sfk_cfg_filename(const struct sfk_cfg_doc *doc) {
  return doc->name;
}

const char *sfk_cfg_dir(const struct sfk_cfg_doc *doc) {
  return doc->dir;
}

/* ------------------------------------------------------------------ */
/* Building the tree from libyaml events                                */

struct frame {
  struct sfk_cfg_node *n;
  struct sfk_cfg_node *key; /* map: key waiting for its value */
};

struct builder {
  struct sfk_cfg_doc *doc;
  struct frame stack[SFK_CFG_MAX_DEPTH];
  unsigned depth;
  struct sfk_cfg_node *top; /* the document's node */
  int oom;
  int fatal; /* reported; stop and drop the tree */
};

static struct sfk_cfg_node *node_new(struct builder *b, int type,
                                     yaml_mark_t m) {
  if (b->doc->nnodes >= CFG_MAX_NODES) {
    report(b->doc, (unsigned)m.line + 1, (unsigned)m.column + 1,
           "too many values in one config (more than %u)", CFG_MAX_NODES);
    b->fatal = 1;
    return NULL;
  }
  struct sfk_cfg_node *n = calloc(1, sizeof *n);
  if (!n) {
    b->oom = 1;
    return NULL;
  }
  n->type = type;
  n->line = (unsigned)m.line + 1;
  n->col = (unsigned)m.column + 1;
  n->all = b->doc->all;
  b->doc->all = n;
  b->doc->nnodes++;
  return n;
}

static int kids_push(struct builder *b, struct sfk_cfg_node *p,
                     struct sfk_cfg_node *k) {
  if (p->len == p->cap) {
    size_t cap = p->cap ? p->cap * 2 : 4;
    struct sfk_cfg_node **kids = realloc(p->kids, cap * sizeof *kids);
    if (!kids) {
      b->oom = 1;
      return -1;
    }
    p->kids = kids;
    p->cap = cap;
  }
  p->kids[p->len++] = k;
  return 0;
}

/* Attach a new node to the open collection (or make it the document). */
static int attach(struct builder *b, struct sfk_cfg_node *n) {
  if (b->depth == 0) {
    b->top = n;
    return 0;
  }
  struct frame *f = &b->stack[b->depth - 1];
  struct sfk_cfg_node *p = f->n;
  if (p->type == SFK_CFG_SEQ)
    return kids_push(b, p, n);

  if (!f->key) { /* n is a key */
    if (n->type != SFK_CFG_SCALAR && !n->bad)
      report(b->doc, n->line, n->col, "a key must be plain text, not a %s",
             n->type == SFK_CFG_MAP ? "map" : "list");
    f->key = n;
    return 0;
  }

  /* n is the value of f->key */
  struct sfk_cfg_node *key = f->key;
  f->key = NULL;
  if (p->len / 2 >= SFK_CFG_MAX_MAP) {
    report(b->doc, key->line, key->col,
           "too many keys in one map (more than %u)", SFK_CFG_MAX_MAP);
    b->fatal = 1;
    return -1;
  }
  if (key->type == SFK_CFG_SCALAR && key->text && !key->bad) {
    for (size_t i = 0; i < p->len; i += 2) {
      const struct sfk_cfg_node *k = p->kids[i];
      if (k->type == SFK_CFG_SCALAR && k->text && !k->bad &&
          strcmp(k->text, key->text) == 0) {
        char q[SFK_CFG_QUOTE_MAX];
        report(b->doc, key->line, key->col,
               "duplicate key '%s' (first given at line %u, column %u)",
               sfk_cfg_quote(key->text, q, sizeof q), k->line, k->col);
        break;
      }
    }
  }
  if (kids_push(b, p, key) < 0 || kids_push(b, p, n) < 0)
    return -1;
  return 0;
}

static int tag_ok(const yaml_char_t *tag, const char *allowed) {
  return !tag || strcmp((const char *)tag, allowed) == 0;
}

/* Anchors and tags other than `allowed` on a node are reported. */
static void check_props(struct builder *b, const yaml_event_t *ev,
                        const yaml_char_t *anchor, const yaml_char_t *tag,
                        const char *allowed) {
  char q[SFK_CFG_QUOTE_MAX];
  unsigned line = (unsigned)ev->start_mark.line + 1;
  unsigned col = (unsigned)ev->start_mark.column + 1;
  if (anchor)
    report(b->doc, line, col,
           "anchors (&%s) are not supported in the config; write the value "
           "out",
           sfk_cfg_quote((const char *)anchor, q, sizeof q));
  if (!tag_ok(tag, allowed))
    report(b->doc, line, col,
           "tag '%s' is not supported in the config; quote the value instead",
           sfk_cfg_quote((const char *)tag, q, sizeof q));
}

static int is_null_text(const char *s) {
  return !*s || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
         strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

static void on_scalar(struct builder *b, const yaml_event_t *ev) {
  const yaml_char_t *v = ev->data.scalar.value;
  size_t len = ev->data.scalar.length;
  check_props(b, ev, ev->data.scalar.anchor, ev->data.scalar.tag, YAML_STR_TAG);
  struct sfk_cfg_node *n = node_new(b, SFK_CFG_SCALAR, ev->start_mark);
  if (!n)
    return;
  if (len > CFG_MAX_SCALAR) {
    report(b->doc, n->line, n->col, "value longer than %u bytes",
           CFG_MAX_SCALAR);
    len = 0;
    n->bad = 1;
  } else if (memchr(v, '\0', len)) {
    report(b->doc, n->line, n->col, "NUL character in a value");
    len = 0;
    n->bad = 1;
  }
  n->text = malloc(len + 1);
  if (!n->text) {
    b->oom = 1;
    return;
  }
  memcpy(n->text, v, len);
  n->text[len] = '\0';
  if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
      !ev->data.scalar.tag && is_null_text(n->text))
    n->null = 1;
  attach(b, n);
}

static void on_start(struct builder *b, const yaml_event_t *ev, int type) {
  if (type == SFK_CFG_MAP)
    check_props(b, ev, ev->data.mapping_start.anchor,
                ev->data.mapping_start.tag, YAML_MAP_TAG);
  else
    check_props(b, ev, ev->data.sequence_start.anchor,
                ev->data.sequence_start.tag, YAML_SEQ_TAG);
  if (b->depth >= SFK_CFG_MAX_DEPTH) {
    report(b->doc, (unsigned)ev->start_mark.line + 1,
           (unsigned)ev->start_mark.column + 1, "nesting deeper than %d levels",
           SFK_CFG_MAX_DEPTH);
    b->fatal = 1;
    return;
  }
  struct sfk_cfg_node *n = node_new(b, type, ev->start_mark);
  if (!n || attach(b, n) < 0)
    return;
  b->stack[b->depth].n = n;
  b->stack[b->depth].key = NULL;
  b->depth++;
}

static void on_alias(struct builder *b, const yaml_event_t *ev) {
  char q[SFK_CFG_QUOTE_MAX];
  struct sfk_cfg_node *n = node_new(b, SFK_CFG_SCALAR, ev->start_mark);
  if (!n)
    return;
  report(b->doc, n->line, n->col,
         "aliases (*%s) are not supported in the config; write the value "
         "out",
         sfk_cfg_quote((const char *)ev->data.alias.anchor, q, sizeof q));
  n->bad = 1;
  n->null = 1;
  n->text = strdup("");
  if (!n->text) {
    b->oom = 1;
    return;
  }
  attach(b, n);
}

/* libyaml's own error: FILE:LINE:COLUMN: problem (context). */
static void report_parser(struct builder *b, const yaml_parser_t *p,
                          const char *text, size_t len) {
  unsigned line, col;
  if (p->error == YAML_READER_ERROR) {
    /* only a byte offset: count lines ourselves */
    size_t off = p->problem_offset < len ? p->problem_offset : len;
    line = 1;
    col = 1;
    for (size_t i = 0; i < off; i++) {
      if (text[i] == '\n') {
        line++;
        col = 1;
      } else {
        col++;
      }
    }
  } else {
    line = (unsigned)p->problem_mark.line + 1;
    col = (unsigned)p->problem_mark.column + 1;
  }
  const char *problem = p->problem ? p->problem : "invalid YAML";
  if (p->context && p->error != YAML_READER_ERROR)
    report(b->doc, line, col, "%s (%s at line %u, column %u)", problem,
           p->context, (unsigned)p->context_mark.line + 1,
           (unsigned)p->context_mark.column + 1);
  else
    report(b->doc, line, col, "%s", problem);
}

static void build(struct builder *b, const char *text, size_t len) {
  yaml_parser_t p;
  if (!yaml_parser_initialize(&p)) {
    b->oom = 1;
    return;
  }
  yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
  int ndocs = 0, done = 0;
  while (!done && !b->oom && !b->fatal) {
    yaml_event_t ev;
    if (!yaml_parser_parse(&p, &ev)) {
      if (p.error == YAML_MEMORY_ERROR)
        b->oom = 1;
      else
        report_parser(b, &p, text, len);
      b->fatal = 1;
      break;
    }
    switch (ev.type) {
    case YAML_DOCUMENT_START_EVENT:
      if (++ndocs > 1) {
        report(b->doc, (unsigned)ev.start_mark.line + 1,
               (unsigned)ev.start_mark.column + 1,
               "a second YAML document ('---'); a config is one document");
        b->fatal = 1;
      }
      break;
    case YAML_SCALAR_EVENT:
      on_scalar(b, &ev);
      break;
    case YAML_SEQUENCE_START_EVENT:
      on_start(b, &ev, SFK_CFG_SEQ);
      break;
    case YAML_MAPPING_START_EVENT:
      on_start(b, &ev, SFK_CFG_MAP);
      break;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
      if (b->depth)
        b->depth--;
      break;
    case YAML_ALIAS_EVENT:
      on_alias(b, &ev);
      break;
    case YAML_STREAM_END_EVENT:
      done = 1;
      break;
    default:
      break;
    }
    yaml_event_delete(&ev);
  }
  yaml_parser_delete(&p);
}

static int set_dir(struct sfk_cfg_doc *doc, const char *path) {
  const char *slash = path ? strrchr(path, '/') : NULL;
  if (!slash)
    doc->dir = strdup(".");
  else if (slash == path)
    doc->dir = strdup("/");
  else
    doc->dir = strndup(path, (size_t)(slash - path));
  return doc->dir ? 0 : -1;
}

static struct sfk_cfg_doc *load(struct sfk_cfg_doc *doc, const char *text,
                                size_t len) {
  struct builder b;
  memset(&b, 0, sizeof b);
  b.doc = doc;
  build(&b, text, len);
  if (b.oom) {
    sfk_cfg_doc_del(doc);
    errno = ENOMEM;
    return NULL;
  }
  if (b.fatal || !b.top)
    return doc; /* root stays NULL */
  if (b.top->type == SFK_CFG_SCALAR && b.top->null)
    return doc; /* "---" alone, or "~": empty */
  if (b.top->type != SFK_CFG_MAP) {
    if (!b.top->bad)
      report(doc, b.top->line, b.top->col,
             "the config must be a map of sections (like 'party:'), not a %s",
             b.top->type == SFK_CFG_SEQ ? "list" : "single value");
    return doc;
  }
  doc->root = b.top;
  return doc;
}

struct sfk_cfg_doc *sfk_cfg_load_string(const char *name, const char *text,
                                        size_t len, FILE *errsink) {
  struct sfk_cfg_doc *doc = doc_new(name, errsink);
  if (!doc || set_dir(doc, NULL) < 0) {
    sfk_cfg_doc_del(doc);
    errno = ENOMEM;
    return NULL;
  }
  if (len > SFK_CFG_MAX_FILE) {
    report(doc, 0, 0, "larger than %u bytes; not a config file",
           SFK_CFG_MAX_FILE);
    return doc;
  }
  return load(doc, text ? text : "", text ? len : 0);
}

struct sfk_cfg_doc *sfk_cfg_load_file(const char *path, FILE *errsink) {
  FILE *sink = errsink ? errsink : stderr;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    fprintf(sink, "%s: cannot open: %s\n", path, strerror(e));
    errno = e;
    return NULL;
  }
  struct stat st;
  if (fstat(fd, &st) < 0) {
    int e = errno;
    fprintf(sink, "%s: cannot read: %s\n", path, strerror(e));
    close(fd);
    errno = e;
    return NULL;
  }
  if (!S_ISREG(st.st_mode)) {
    int e = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
    fprintf(sink, "%s: cannot read: %s\n", path,
            e == EISDIR ? strerror(e) : "not a regular file");
    close(fd);
    errno = e;
    return NULL;
  }
  struct sfk_cfg_doc *doc = doc_new(path, errsink);
  char *buf = malloc(SFK_CFG_MAX_FILE + 1);
  if (!doc || !buf || set_dir(doc, path) < 0) {
    sfk_cfg_doc_del(doc);
    free(buf);
    close(fd);
    errno = ENOMEM;
    return NULL;
  }
  size_t len = 0;
  while (len <= SFK_CFG_MAX_FILE) {
    ssize_t r = read(fd, buf + len, SFK_CFG_MAX_FILE + 1 - len);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      int e = errno;
      fprintf(sink, "%s: cannot read: %s\n", path, strerror(e));
      sfk_cfg_doc_del(doc);
      free(buf);
      close(fd);
      errno = e;
      return NULL;
    }
    if (r == 0)
      break;
    len += (size_t)r;
  }
  close(fd);
  if (len > SFK_CFG_MAX_FILE) {
    report(doc, 0, 0, "larger than %u bytes; not a config file",
           SFK_CFG_MAX_FILE);
    free(buf);
    return doc;
  }
  doc = load(doc, buf, len);
  free(buf);
  return doc;
}

/* ------------------------------------------------------------------ */
/* Accessors                                                            */

int sfk_cfg_type(const struct sfk_cfg_node *n) {
  return n ? n->type : 0;
}

const struct sfk_cfg_node *sfk_cfg_get(const struct sfk_cfg_node *map,
                                       const char *key) {
  if (!map || map->type != SFK_CFG_MAP || !key)
    return NULL;
  for (size_t i = 0; i + 1 < map->len; i += 2) {
    const struct sfk_cfg_node *k = map->kids[i];
    if (k->type == SFK_CFG_SCALAR && k->text && strcmp(k->text, key) == 0)
      return map->kids[i + 1];
  }
  return NULL;
}

size_t sfk_cfg_len(const struct sfk_cfg_node *n) {
  if (!n)
    return 0;
  if (n->type == SFK_CFG_SEQ)
    return n->len;
  if (n->type == SFK_CFG_MAP)
    return n->len / 2;
  return 0;
}

const struct sfk_cfg_node *sfk_cfg_at(const struct sfk_cfg_node *seq,
                                      size_t i) {
  if (!seq || seq->type != SFK_CFG_SEQ || i >= seq->len)
    return NULL;
  return seq->kids[i];
}

const char *sfk_cfg_scalar(const struct sfk_cfg_node *n) {
  return n && n->type == SFK_CFG_SCALAR ? n->text : NULL;
}

int sfk_cfg_is_null(const struct sfk_cfg_node *n) {
  return n && n->type == SFK_CFG_SCALAR && n->null;
}

unsigned sfk_cfg_line(const struct sfk_cfg_node *n) {
  return n ? n->line : 0;
}

unsigned sfk_cfg_column(const struct sfk_cfg_node *n) {
  return n ? n->col : 0;
}

const struct sfk_cfg_node *sfk_cfg_key_node_at(const struct sfk_cfg_node *map,
                                               size_t i) {
  if (!map || map->type != SFK_CFG_MAP || i >= map->len / 2)
    return NULL;
  return map->kids[2 * i];
}

const char *sfk_cfg_key_at(const struct sfk_cfg_node *map, size_t i) {
  const struct sfk_cfg_node *k = sfk_cfg_key_node_at(map, i);
  /* a non-text key was reported by the loader; it matches nothing */
  return k && k->type == SFK_CFG_SCALAR && k->text ? k->text : "";
}

const struct sfk_cfg_node *sfk_cfg_value_at(const struct sfk_cfg_node *map,
                                            size_t i) {
  if (!map || map->type != SFK_CFG_MAP || i >= map->len / 2)
    return NULL;
  return map->kids[2 * i + 1];
}

unsigned sfk_cfg_check_keys(const struct sfk_cfg_doc *doc,
                            const struct sfk_cfg_node *map, const char *section,
                            const char *const *keys, const char *extra) {
  char q[SFK_CFG_QUOTE_MAX];
  unsigned errs = 0;
  size_t n = sfk_cfg_len(map);
  if (!map || map->type != SFK_CFG_MAP)
    return 0;
  for (size_t i = 0; i < n; i++) {
    const struct sfk_cfg_node *k = sfk_cfg_key_node_at(map, i);
    if (k->type != SFK_CFG_SCALAR || k->bad)
      continue; /* reported by the loader */
    int known = extra && strcmp(k->text, extra) == 0;
    for (size_t j = 0; keys && keys[j] && !known; j++)
      known = strcmp(k->text, keys[j]) == 0;
    if (known)
      continue;
    if (section && *section)
      sfk_cfg_error(doc, k, "unknown key '%s' in section '%s'",
                    sfk_cfg_quote(k->text, q, sizeof q), section);
    else
      sfk_cfg_error(doc, k, "unknown top-level key '%s'",
                    sfk_cfg_quote(k->text, q, sizeof q));
    errs++;
  }
  return errs;
}

/* ------------------------------------------------------------------ */
/* Pure parsers                                                         */

/* Decimal digits only, no overflow; *end gets the first non-digit. */
static int digits(const char *s, uint64_t *out, const char **end) {
  uint64_t v = 0;
  const char *p = s;
  if (*p < '0' || *p > '9')
    return -EINVAL;
  for (; *p >= '0' && *p <= '9'; p++) {
    unsigned d = (unsigned)(*p - '0');
    if (v > (UINT64_MAX - d) / 10)
      return -EINVAL;
    v = v * 10 + d;
  }
  *out = v;
  *end = p;
  return 0;
}

int sfk_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out) {
  uint64_t v;
  const char *end;
  if (!s || digits(s, &v, &end) < 0 || *end || v < min || v > max)
    return -EINVAL;
  *out = v;
  return 0;
}

int sfk_parse_bool(const char *s, int *out) {
  static const char *const t[] = {"true", "yes", "on"};
  static const char *const f[] = {"false", "no", "off"};
  if (!s)
    return -EINVAL;
  for (size_t i = 0; i < 3; i++) {
    if (strcasecmp(s, t[i]) == 0) {
      *out = 1;
      return 0;
    }
    if (strcasecmp(s, f[i]) == 0) {
      *out = 0;
      return 0;
    }
  }
  return -EINVAL;
}

int sfk_parse_duration_ms(const char *s, uint64_t *out) {
  uint64_t v, mult;
  const char *end;
  if (!s || digits(s, &v, &end) < 0)
    return -EINVAL;
  if (strcmp(end, "ms") == 0)
    mult = 1;
  else if (strcmp(end, "s") == 0 || *end == '\0')
    mult = 1000;
  else if (strcmp(end, "m") == 0)
    mult = 60 * 1000;
  else if (strcmp(end, "h") == 0)
    mult = 60 * 60 * 1000;
  else
    return -EINVAL;
  /* A year at most: every duration is later turned into nanoseconds
   * and added to a clock, which must not overflow. */
  if (v > SFK_DURATION_MAX_MS / mult)
    return -ERANGE;
  *out = v * mult;
  return 0;
}

/* A port: 1 to 5 digits, <= 65535, and nothing after. */
static int parse_port(const char *s, uint16_t *out) {
  uint64_t v;
  const char *end;
  if (digits(s, &v, &end) < 0 || *end || end - s > 5 || v > 65535)
    return -EINVAL;
  *out = (uint16_t)v;
  return 0;
}

int sfk_parse_hostport(const char *s, struct sockaddr_storage *out,
                       socklen_t *outlen) {
  char host[INET6_ADDRSTRLEN + 1];
  size_t hlen;
  uint16_t pnum;
  if (!s)
    return -EINVAL;
  if (s[0] == '[') {
    const char *close = strchr(s, ']');
    if (!close || close[1] != ':')
      return -EINVAL;
    hlen = (size_t)(close - s - 1);
    if (hlen == 0 || hlen >= sizeof host)
      return -EINVAL;
    memcpy(host, s + 1, hlen);
    host[hlen] = '\0';
    struct in6_addr a6;
    if (parse_port(close + 2, &pnum) < 0 || inet_pton(AF_INET6, host, &a6) != 1)
      return -EINVAL;
    struct sockaddr_in6 sin6;
    memset(&sin6, 0, sizeof sin6);
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(pnum);
    sin6.sin6_addr = a6;
    memset(out, 0, sizeof *out);
    memcpy(out, &sin6, sizeof sin6);
    *outlen = sizeof sin6;
    return 0;
  }
  const char *colon = strchr(s, ':');
  if (!colon || strchr(colon + 1, ':'))
    return -EINVAL; /* no port, or IPv6 without brackets */
  hlen = (size_t)(colon - s);
  if (hlen == 0 || hlen >= sizeof host)
    return -EINVAL;
  memcpy(host, s, hlen);
  host[hlen] = '\0';
  struct in_addr a4;
  if (parse_port(colon + 1, &pnum) < 0 || inet_pton(AF_INET, host, &a4) != 1)
    return -EINVAL;
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_port = htons(pnum);
  sin.sin_addr = a4;
  memset(out, 0, sizeof *out);
  memcpy(out, &sin, sizeof sin);
  *outlen = sizeof sin;
  return 0;
}

int sfk_parse_cidr4(const char *s, uint32_t *net_host_order, unsigned *prefix) {
  char host[INET_ADDRSTRLEN + 1];
  uint64_t p;
  const char *end;
  if (!s)
    return -EINVAL;
  const char *slash = strchr(s, '/');
  if (!slash)
    return -EINVAL;
  size_t hlen = (size_t)(slash - s);
  if (hlen == 0 || hlen >= sizeof host)
    return -EINVAL;
  memcpy(host, s, hlen);
  host[hlen] = '\0';
  if (digits(slash + 1, &p, &end) < 0 || *end || end - (slash + 1) > 2 ||
      p > 32)
    return -EINVAL;
  struct in_addr a;
  if (inet_pton(AF_INET, host, &a) != 1)
    return -EINVAL;
  uint32_t addr = ntohl(a.s_addr);
  uint32_t mask = p == 0 ? 0 : UINT32_MAX << (32 - p);
  if (addr & ~mask)
    return -EINVAL;
  *net_host_order = addr;
  *prefix = (unsigned)p;
  return 0;
}

int sfk_parse_port_range(const char *s, uint16_t *lo, uint16_t *hi) {
  char a[8];
  uint16_t l, h;
  if (!s)
    return -EINVAL;
  const char *dash = strchr(s, '-');
  if (!dash) {
    if (parse_port(s, &l) < 0 || l == 0)
      return -EINVAL;
    *lo = *hi = l;
    return 0;
  }
  size_t n = (size_t)(dash - s);
  if (n == 0 || n >= sizeof a)
    return -EINVAL;
  memcpy(a, s, n);
  a[n] = '\0';
  if (parse_port(a, &l) < 0 || parse_port(dash + 1, &h) < 0 || l == 0 || l > h)
    return -EINVAL;
  *lo = l;
  *hi = h;
  return 0;
}

/* ------------------------------------------------------------------ */
/* Typed getters                                                        */

static const char *kind_name(const struct sfk_cfg_node *n) {
  return n->type == SFK_CFG_MAP   ? "map"
         : n->type == SFK_CFG_SEQ ? "list"
                                  : "value";
}

/*
 * The scalar value of key, or NULL when absent (*rc 0) or bad (*rc
 * -EINVAL, reported).
 */
static const struct sfk_cfg_node *value_of(const struct sfk_cfg_doc *doc,
                                           const struct sfk_cfg_node *map,
                                           const char *key, int *rc) {
  char q[SFK_CFG_QUOTE_MAX];
  const struct sfk_cfg_node *v = sfk_cfg_get(map, key);
  *rc = 0;
  if (!v)
    return NULL;
  *rc = -EINVAL;
  if (v->bad)
    return NULL; /* already reported */
  if (v->type != SFK_CFG_SCALAR) {
    sfk_cfg_error(doc, v, "'%s' must be a single value, not a %s",
                  sfk_cfg_quote(key, q, sizeof q), kind_name(v));
    return NULL;
  }
  if (v->null) {
    sfk_cfg_error(doc, v, "'%s' has no value", sfk_cfg_quote(key, q, sizeof q));
    return NULL;
  }
  *rc = 0;
  return v;
}

int sfk_cfg_string(const struct sfk_cfg_doc *doc,
                   const struct sfk_cfg_node *map, const char *key,
                   const char *def, const char **out) {
  int rc;
  const struct sfk_cfg_node *v = value_of(doc, map, key, &rc);
  if (rc < 0)
    return rc;
  *out = v ? v->text : def;
  return 0;
}

int sfk_cfg_uint(const struct sfk_cfg_doc *doc, const struct sfk_cfg_node *map,
                 const char *key, uint64_t min, uint64_t max, uint64_t def,
                 uint64_t *out) {
  char q[SFK_CFG_QUOTE_MAX], qk[SFK_CFG_QUOTE_MAX];
  uint64_t x;
  int rc;
  const struct sfk_cfg_node *v = value_of(doc, map, key, &rc);
  if (rc < 0)
    return rc;
  if (!v) {
    *out = def;
    return 0;
  }
  if (sfk_parse_uint(v->text, min, max, out) == 0)
    return 0;
  sfk_cfg_quote(v->text, q, sizeof q);
  sfk_cfg_quote(key, qk, sizeof qk);
  if (sfk_parse_uint(v->text, 0, UINT64_MAX, &x) == 0)
    sfk_cfg_error(doc, v, "%s for '%s' is out of range (%llu..%llu)", q, qk,
                  (unsigned long long)min, (unsigned long long)max);
  else
    sfk_cfg_error(doc, v,
                  "invalid number '%s' for '%s' (a whole number, %llu..%llu)",
                  q, qk, (unsigned long long)min, (unsigned long long)max);
  return -EINVAL;
}

int sfk_cfg_bool(const struct sfk_cfg_doc *doc, const struct sfk_cfg_node *map,
                 const char *key, int def, int *out) {
  char q[SFK_CFG_QUOTE_MAX], qk[SFK_CFG_QUOTE_MAX];
  int rc;
  const struct sfk_cfg_node *v = value_of(doc, map, key, &rc);
  if (rc < 0)
    return rc;
  if (!v) {
    *out = def;
    return 0;
  }
  if (sfk_parse_bool(v->text, out) == 0)
    return 0;
  sfk_cfg_error(doc, v, "invalid boolean '%s' for '%s' (use true or false)",
                sfk_cfg_quote(v->text, q, sizeof q),
                sfk_cfg_quote(key, qk, sizeof qk));
  return -EINVAL;
}

int sfk_cfg_duration_ms(const struct sfk_cfg_doc *doc,
                        const struct sfk_cfg_node *map, const char *key,
                        uint64_t def, uint64_t *out) {
  char q[SFK_CFG_QUOTE_MAX], qk[SFK_CFG_QUOTE_MAX];
  int rc;
  const struct sfk_cfg_node *v = value_of(doc, map, key, &rc);
  if (rc < 0)
    return rc;
  if (!v) {
    *out = def;
    return 0;
  }
  if ((rc = sfk_parse_duration_ms(v->text, out)) == 0)
    return 0;
  if (rc == -ERANGE) {
    sfk_cfg_error(doc, v, "duration '%s' for '%s' is too long (at most 365 "
                          "days, 8760h)",
                  sfk_cfg_quote(v->text, q, sizeof q),
                  sfk_cfg_quote(key, qk, sizeof qk));
    return -EINVAL;
  }
  sfk_cfg_error(
      doc, v, "invalid duration '%s' for '%s' (use e.g. 250ms, 10s, 5m, 24h)",
      sfk_cfg_quote(v->text, q, sizeof q), sfk_cfg_quote(key, qk, sizeof qk));
  return -EINVAL;
}

int sfk_cfg_addr(const struct sfk_cfg_doc *doc, const struct sfk_cfg_node *map,
                 const char *key, const char *def, struct sockaddr_storage *out,
                 socklen_t *outlen) {
  char q[SFK_CFG_QUOTE_MAX], qk[SFK_CFG_QUOTE_MAX];
  int rc;
  const struct sfk_cfg_node *v = value_of(doc, map, key, &rc);
  if (rc < 0)
    return rc;
  if (!v) {
    if (!def) {
      memset(out, 0, sizeof *out);
      *outlen = 0;
      return 0;
    }
    if (sfk_parse_hostport(def, out, outlen) == 0)
      return 0;
    sfk_cfg_error(doc, map, "invalid built-in default '%s' for '%s'",
                  sfk_cfg_quote(def, q, sizeof q),
                  sfk_cfg_quote(key, qk, sizeof qk));
    return -EINVAL;
  }
  if (sfk_parse_hostport(v->text, out, outlen) == 0)
    return 0;
  sfk_cfg_error(doc, v,
                "invalid address '%s' for '%s' (use IPv4:port like "
                "127.0.0.1:1080 or [IPv6]:port; no host names)",
                sfk_cfg_quote(v->text, q, sizeof q),
                sfk_cfg_quote(key, qk, sizeof qk));
  return -EINVAL;
}

int sfk_cfg_path(const struct sfk_cfg_doc *doc, const struct sfk_cfg_node *map,
                 const char *key, const char *def, char *buf, size_t bufsz) {
  char qk[SFK_CFG_QUOTE_MAX];
  int rc, n;
  const struct sfk_cfg_node *v = value_of(doc, map, key, &rc);
  const char *p = v ? v->text : def;
  if (rc < 0)
    return rc;
  if (!bufsz)
    return -EINVAL;
  buf[0] = '\0';
  if (!p)
    return 0;
  if (!*p) {
    sfk_cfg_error(doc, v ? v : map, "empty path for '%s'",
                  sfk_cfg_quote(key, qk, sizeof qk));
    return -EINVAL;
  }
  if (p[0] == '/' || strcmp(doc->dir, ".") == 0)
    n = snprintf(buf, bufsz, "%s", p);
  else if (strcmp(doc->dir, "/") == 0)
    n = snprintf(buf, bufsz, "/%s", p);
  else
    n = snprintf(buf, bufsz, "%s/%s", doc->dir, p);
  if (n < 0 || (size_t)n >= bufsz) {
    buf[0] = '\0';
    sfk_cfg_error(doc, v ? v : map, "path for '%s' is too long (%zu bytes max)",
                  sfk_cfg_quote(key, qk, sizeof qk), bufsz - 1);
    return -EINVAL;
  }
  return 0;
}
