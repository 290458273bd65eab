/*
 * The parts of a stand-in struct sfk_host that the fuzz targets driving a
 * plugin through its host share (fuzz_quic.c, fuzz_turn.c): a clock the
 * target sets, and logging that formats every message (a bad format would
 * show under ASan/UBSan) and prints it only when fake_log_verbose is set.
 * Included once by each target, after sfkit-proxy/plugin.h.
 */
#ifndef SFK_FUZZ_FAKE_HOST_H
#define SFK_FUZZ_FAKE_HOST_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

#include "sfkit-proxy/plugin.h"

static uint64_t now;          /* the fake clock, in ns */
static int fake_log_verbose;  /* the plugins' messages to stderr */

static uint64_t f_now(const struct sfk_host *h) {
  (void)h;
  return now;
}
static int f_log_enabled(const struct sfk_host *h, int level) {
  (void)h;
  (void)level;
  return 1; /* format every message: a bad format would show */
}
static void f_log(const struct sfk_host *h, int level, const char *fmt, ...)
    SFK_PRINTF(3, 4);
static void f_log(const struct sfk_host *h, int level, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (fake_log_verbose)
    fprintf(stderr, "%s[%d]: %s\n", h->instance, level, buf);
}

#endif
