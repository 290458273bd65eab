/*
 * Test transport plugin `shortwrite`: the real transport (the .so named
 * by SFK_SHORTWRITE_REAL, transport_quic.so) with one fault injected, for
 * tests/integration/short_write.sh.  A stream this daemon opens to port
 * SFK_SHORTWRITE_PORT accepts SFK_SHORTWRITE_AFTER bytes (default 1 MiB);
 * its next stream_write() returns 0 although stream_space() said there was
 * room, as the transport does when a chunk cannot be allocated.  Once per
 * stream; every other stream and every other slot is the real transport's.
 * For tests only (built with `make check`).
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sfkit-proxy/plugin.h"

#define MAX_STREAMS 64

static struct sfk_transport_ops sw_ops; /* the real ops, two replaced */
static size_t (*real_write)(void *, void *, const uint8_t *, size_t, int);
static int (*real_open)(void *, uint32_t, uint16_t, void *, void **);
static void (*real_reset)(void *, void *);
static unsigned long sw_port;
static unsigned long long sw_after = 1024 * 1024;

/* Streams to sw_port that have not had their short write yet. */
static struct {
  void *ts;
  unsigned long long written;
} watched[MAX_STREAMS];

static void unwatch(void *ts) {
  for (int i = 0; i < MAX_STREAMS; i++)
    if (watched[i].ts == ts)
      watched[i].ts = NULL;
}

static int sw_open(void *self, uint32_t pid, uint16_t port, void *app,
                   void **ts) {
  int rc = real_open(self, pid, port, app, ts);
  if (rc == 0 && port == sw_port) {
    for (int i = 0; i < MAX_STREAMS; i++) {
      if (!watched[i].ts) {
        watched[i].ts = *ts;
        watched[i].written = 0;
        break;
      }
    }
  }
  return rc;
}

static size_t sw_write(void *self, void *ts, const uint8_t *data, size_t len,
                       int fin) {
  for (int i = 0; ts && len && i < MAX_STREAMS; i++) {
    if (watched[i].ts != ts)
      continue;
    if (watched[i].written >= sw_after) {
      watched[i].ts = NULL; /* once */
      fprintf(stderr, "shortwrite: refusing %zu bytes on a stream to port "
              "%lu after %llu\n", len, sw_port, watched[i].written);
      return 0;
    }
    size_t n = real_write(self, ts, data, len, fin);
    watched[i].written += n;
    return n;
  }
  return real_write(self, ts, data, len, fin);
}

static void sw_reset(void *self, void *ts) {
  unwatch(ts);
  real_reset(self, ts);
}

__attribute__((constructor)) static void sw_init(void) {
  const char *real = getenv("SFK_SHORTWRITE_REAL");
  const char *port = getenv("SFK_SHORTWRITE_PORT");
  const char *after = getenv("SFK_SHORTWRITE_AFTER");
  void *h;
  const struct sfk_plugin_desc *d;

  /* Without a real transport the ops stay empty: the daemon then refuses
   * the plugin for its missing slots. */
  if (!real || !(h = dlopen(real, RTLD_NOW | RTLD_LOCAL))) {
    fprintf(stderr, "shortwrite: set SFK_SHORTWRITE_REAL to a transport "
            "plugin (%s)\n", real ? dlerror() : "unset");
    return;
  }
  d = dlsym(h, SFK_PLUGIN_SYMBOL_NAME);
  if (!d || d->kind != SFK_KIND_TRANSPORT || d->ops_size != sizeof sw_ops) {
    fprintf(stderr, "shortwrite: %s is not a transport plugin of this ABI\n",
            real);
    return;
  }
  memcpy(&sw_ops, d->ops, sizeof sw_ops);
  real_write = sw_ops.stream_write;
  real_open = sw_ops.stream_open;
  real_reset = sw_ops.stream_reset;
  sw_ops.stream_write = sw_write;
  sw_ops.stream_open = sw_open;
  sw_ops.stream_reset = sw_reset;
  sw_port = port ? strtoul(port, NULL, 10) : 0;
  if (after)
    sw_after = strtoull(after, NULL, 10);
}

SFK_PLUGIN_DEFINE(TRANSPORT, "shortwrite", "0.1", sw_ops);
