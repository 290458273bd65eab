/*
 * Logging to stderr, text or JSON lines, with a level threshold.
 * One logger per process (the daemon's); plugins log through the host,
 * which tags each line with the instance name.
 */
#ifndef SFK_LOG_H
#define SFK_LOG_H

#include <stdarg.h>

#include "sfkit-proxy/plugin.h"

enum sfk_log_format { SFK_LOGFMT_TEXT = 0, SFK_LOGFMT_JSON = 1 };

/* Set the threshold (enum sfk_log_level) and format.  Defaults: info, text. */
void sfk_log_setup(int level, int format);
int sfk_log_level(void);
int sfk_log_enabled(int level);

/* Parse "error|warn|info|debug|trace"; -1 if unknown. */
int sfk_log_level_parse(const char *s);
/* Parse "text|json"; -1 if unknown. */
int sfk_log_format_parse(const char *s);

/* Log one line.  tag names the module or plugin instance ("socks",
 * "transport.quic"). */
void sfk_logv(int level, const char *tag, const char *fmt, va_list ap)
    SFK_PRINTF(3, 0);
void sfk_log(int level, const char *tag, const char *fmt, ...) SFK_PRINTF(3, 4);

#define sfk_err(tag, ...) sfk_log(SFK_LOG_ERROR, tag, __VA_ARGS__)
#define sfk_warn(tag, ...) sfk_log(SFK_LOG_WARN, tag, __VA_ARGS__)
#define sfk_info(tag, ...) sfk_log(SFK_LOG_INFO, tag, __VA_ARGS__)
#define sfk_debug(tag, ...)                                                   \
  do {                                                                        \
    if (sfk_log_enabled(SFK_LOG_DEBUG))                                       \
      sfk_log(SFK_LOG_DEBUG, tag, __VA_ARGS__);                               \
  } while (0)
#define sfk_trace(tag, ...)                                                   \
  do {                                                                        \
    if (sfk_log_enabled(SFK_LOG_TRACE))                                       \
      sfk_log(SFK_LOG_TRACE, tag, __VA_ARGS__);                               \
  } while (0)

#endif
