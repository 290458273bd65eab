/*
 * libFuzzer target for the config loader: YAML text -> cfg tree -> the
 * daemon's schema check, plus the pure value parsers on the same bytes.
 * Messages go to a /dev/null sink (formatting is exercised, output is not
 * kept).
 */
#include "autoconfig.h" /* autoconf: first in every .c file */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct sfk_config cfg; /* large: not on the stack */

/* The value parsers take NUL-terminated text. */
static void parsers(const uint8_t *data, size_t size) {
  char s[128];
  size_t n = size < sizeof s - 1 ? size : sizeof s - 1;
  memcpy(s, data, n);
  s[n] = '\0';
  uint64_t u;
  int b;
  struct sockaddr_storage ss;
  socklen_t sl;
  uint32_t net;
  unsigned prefix;
  uint16_t lo, hi;
  char q[SFK_CFG_QUOTE_MAX];
  (void)sfk_parse_uint(s, 0, UINT64_MAX, &u);
  (void)sfk_parse_bool(s, &b);
  (void)sfk_parse_duration_ms(s, &u);
  (void)sfk_parse_hostport(s, &ss, &sl);
  (void)sfk_parse_cidr4(s, &net, &prefix);
  (void)sfk_parse_port_range(s, &lo, &hi);
  (void)sfk_cfg_quote(s, q, sizeof q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static FILE *sink;
  static const char *const keys[] = {"servers", "keepalive", "peers", NULL};
  if (!sink)
    sink = fopen("/dev/null", "w");
  parsers(data, size);

  struct sfk_overrides ov;
  sfk_overrides_init(&ov);
  if (size && (data[0] & 1))
    ov.pid = data[0] >> 1; /* sometimes as if --pid was given */
  (void)sfk_config_load_string(&cfg, "fuzz.yaml", (const char *)data, size, &ov,
                               sink);
  if (cfg.doc) {
    /* plugin-side checks and getters on whatever sections exist */
    for (int k = SFK_KIND_TRANSPORT; k <= SFK_KIND_REGISTRY; k++)
      (void)sfk_config_check_plugin_keys(&cfg, k, keys);
    const struct sfk_cfg_node *d = cfg.discovery.section;
    uint64_t v;
    int b;
    const char *str;
    char path[256];
    struct sockaddr_storage ss;
    socklen_t sl;
    (void)sfk_cfg_duration_ms(cfg.doc, d, "keepalive", 1, &v);
    (void)sfk_cfg_uint(cfg.doc, d, "keepalive", 0, 100, 1, &v);
    (void)sfk_cfg_bool(cfg.doc, d, "keepalive", 0, &b);
    (void)sfk_cfg_string(cfg.doc, d, "servers", NULL, &str);
    (void)sfk_cfg_addr(cfg.doc, d, "servers", NULL, &ss, &sl);
    (void)sfk_cfg_path(cfg.doc, d, "servers", NULL, path, sizeof path);
    for (uint32_t a = 0x0a000000; a < 0x0a000004; a++) {
      uint32_t pid;
      if (sfk_config_virtual_pid(&cfg, a, &pid))
        (void)sfk_config_service(&cfg, pid, (uint16_t)(8000 + a));
    }
  }
  sfk_config_free(&cfg);
  return 0;
}
