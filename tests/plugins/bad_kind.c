/*
 * Check-only test plugin: a complete, valid registry plugin.  The loader
 * test loads it as a transport, which must be refused naming both kinds.
 */
#include "autoconfig.h"

#include "sfkit-proxy/plugin.h"

#include <stddef.h>

static int bk_create(const struct sfk_host *h, const struct sfk_cfg_node *cfg,
                     void **self) {
  (void)h;
  (void)cfg;
  *self = NULL;
  return 0;
}
static int bk_start(void *self) {
  (void)self;
  return 0;
}
static void bk_stop(void *self) {
  (void)self;
}
static void bk_destroy(void *self) {
  (void)self;
}
static int bk_publish(void *self, const char *addr, const char *pin) {
  (void)self;
  (void)addr;
  (void)pin;
  return 0;
}
static int bk_refresh(void *self, uint32_t pid) {
  (void)self;
  (void)pid;
  return 0;
}

static const struct sfk_registry_ops bk_ops = {
    .base = {.keys = NULL,
             .create = bk_create,
             .start = bk_start,
             .stop = bk_stop,
             .destroy = bk_destroy},
    .publish = bk_publish,
    .refresh = bk_refresh,
};

SFK_PLUGIN_DEFINE(REGISTRY, "bad_kind", "0", bk_ops);
