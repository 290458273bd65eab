/* Logging to stderr: one line per message, text or JSON. */
#include "autoconfig.h" /* autoconf: first in every .c file */

#include "log.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static int log_threshold = SFK_LOG_INFO;
static int log_format = SFK_LOGFMT_TEXT;

static const char *const level_names[] = {"error", "warn", "info", "debug",
                                          "trace"};

void sfk_log_setup(int level, int format) {
  if (level >= SFK_LOG_ERROR && level <= SFK_LOG_TRACE)
    log_threshold = level;
  if (format == SFK_LOGFMT_TEXT || format == SFK_LOGFMT_JSON)
    log_format = format;
}

int sfk_log_level(void) {
  return log_threshold;
}

int sfk_log_enabled(int level) {
  return level <= log_threshold;
}

int sfk_log_level_parse(const char *s) {
  for (int i = 0; i <= SFK_LOG_TRACE; i++)
    if (strcasecmp(s, level_names[i]) == 0)
      return i;
  if (strcasecmp(s, "warning") == 0)
    return SFK_LOG_WARN;
  return -1;
}

int sfk_log_format_parse(const char *s) {
  if (strcmp(s, "text") == 0)
    return SFK_LOGFMT_TEXT;
  if (strcmp(s, "json") == 0)
    return SFK_LOGFMT_JSON;
  return -1;
}

/* Append s to out as a JSON string body (without quotes). */
static size_t json_escape(char *out, size_t cap, const char *s) {
  size_t n = 0;
  for (; *s && n + 7 < cap; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
      out[n++] = '\\';
      out[n++] = (char)c;
    } else if (c < 0x20) {
      n += (size_t)snprintf(out + n, cap - n, "\\u%04x", c);
    } else {
      out[n++] = (char)c;
    }
  }
  out[n] = '\0';
  return n;
}

void sfk_logv(int level, const char *tag, const char *fmt, va_list ap) {
  if (!sfk_log_enabled(level))
    return;
  if (level < SFK_LOG_ERROR)
    level = SFK_LOG_ERROR;
  if (level > SFK_LOG_TRACE)
    level = SFK_LOG_TRACE;

  char msg[1024];
  vsnprintf(msg, sizeof msg, fmt, ap);

  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char when[40];
  size_t wl = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(when + wl, sizeof when - wl, ".%03ldZ", ts.tv_nsec / 1000000);

  /* One fputs per line so lines from a burst never interleave. */
  char line[2600];
  if (log_format == SFK_LOGFMT_JSON) {
    char emsg[2100], etag[140];
    json_escape(emsg, sizeof emsg, msg);
    json_escape(etag, sizeof etag, tag ? tag : "");
    snprintf(line, sizeof line,
             "{\"ts\":\"%s\",\"level\":\"%s\",\"module\":\"%s\",\"msg\":\"%s\"}"
             "\n",
             when, level_names[level], etag, emsg);
  } else {
    snprintf(line, sizeof line, "%s %-5s %s: %s\n", when, level_names[level],
             tag ? tag : "-", msg);
  }
  fputs(line, stderr);
}

void sfk_log(int level, const char *tag, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  sfk_logv(level, tag, fmt, ap);
  va_end(ap);
}
