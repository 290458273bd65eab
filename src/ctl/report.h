/*
 * Renderers for struct sfk_report (plugin.h): the status tree written as
 * JSON or as indented text for people, into one bounded, growable buffer.
 *
 * The emitter never fails from the caller's point of view: whatever a
 * plugin does (too deep, too long, an end without a begin, a key where
 * none belongs, NULL strings), the output stays well formed and within
 * the cap.  Past the cap the tree is cut at an element boundary, every
 * open container is closed and a marker says so ("truncated": 1 at the
 * top of the JSON object; a last line in text).
 */
#ifndef SFK_REPORT_H
#define SFK_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "sfkit-proxy/plugin.h"

enum sfk_report_format { SFK_REPORT_TEXT = 0, SFK_REPORT_JSON = 1 };

/* Deepest nesting rendered; deeper begins are dropped with their content. */
#define SFK_REPORT_MAX_DEPTH 16
/* Default cap of a rendered report. */
#define SFK_REPORT_CAP (1024 * 1024)
/* Bytes kept back from the cap for closing containers and the marker. */
#define SFK_REPORT_RESERVE 256
/* Smallest cap sfk_report_buf_init accepts (raised to this). */
#define SFK_REPORT_MIN_CAP (2 * SFK_REPORT_RESERVE)

struct sfk_report_level {
  uint8_t list;         /* 1: list, 0: object */
  uint8_t open_line;    /* text: "key:" written, its newline still due */
  uint8_t inline_first; /* text: object item; first child goes after "- " */
  uint32_t n;           /* children written so far */
  unsigned indent;      /* text: indentation of the children's lines */
};

/* A renderer.  Lives on the caller's storage; buf is owned by it. */
struct sfk_report_buf {
  struct sfk_report r; /* the emitter handed out; r.ctx == this */
  int format;          /* enum sfk_report_format */
  char *buf;           /* owned, NUL-terminated; NULL after take */
  size_t len, cap;     /* bytes used / allocated (without the NUL) */
  size_t max;          /* the cap of len */
  int truncated;       /* content was dropped */
  int finished;
  unsigned depth; /* open levels above the root */
  unsigned skip;  /* open begins being dropped (too deep, truncated) */
  struct sfk_report_level lv[SFK_REPORT_MAX_DEPTH + 1]; /* lv[0]: root */
};

/*
 * Start a report in FORMAT capped at max bytes (0: SFK_REPORT_CAP).  The
 * root is an object.  Returns 0, or -ENOMEM (nothing to free then).
 */
int sfk_report_buf_init(struct sfk_report_buf *rb, int format, size_t max);

/* The emitter to hand to sfk_status_report() or a plugin's report(). */
static inline struct sfk_report *
sfk_report_buf_emitter(struct sfk_report_buf *rb) {
  return &rb->r;
}

/*
 * Close everything still open, add the truncation marker if needed and
 * return the text (NUL-terminated, *len bytes without the NUL).  The
 * buffer stays owned by rb; further emitter calls are ignored.
 */
const char *sfk_report_buf_finish(struct sfk_report_buf *rb, size_t *len);

/*
 * Finish, then hand the buffer to the caller (free() it); rb keeps
 * nothing.  Returns NULL only if rb had no buffer.
 */
char *sfk_report_buf_take(struct sfk_report_buf *rb, size_t *len);

/* Free the buffer (if not taken). */
void sfk_report_buf_free(struct sfk_report_buf *rb);

/*
 * A guard between the daemon's emitter and a plugin: it forwards every
 * call to `inner` but ignores an end() that would close a level the
 * plugin did not open, and sfk_report_guard_close() ends whatever the
 * plugin left open.  So a plugin's mistakes stay inside its own section.
 */
struct sfk_report_guard {
  struct sfk_report r;      /* hand &g->r to the plugin */
  struct sfk_report *inner; /* borrowed */
  unsigned depth;           /* levels the plugin opened and not closed */
};

void sfk_report_guard_init(struct sfk_report_guard *g,
                           struct sfk_report *inner);
void sfk_report_guard_close(struct sfk_report_guard *g);

#endif
