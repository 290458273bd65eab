/*
 * Check-only test plugin: a valid shared object that exports no
 * sfkit_proxy_plugin descriptor (only a look-alike name).
 */
#include "autoconfig.h"

#include "sfkit-proxy/plugin.h"

SFK_EXPORT const struct sfk_plugin_desc sfkit_proxy_plugin_v1 = {
    .abi = SFK_ABI_VERSION,
    .desc_size = sizeof(struct sfk_plugin_desc),
    .host_size = sizeof(struct sfk_host),
    .kind = SFK_KIND_TRANSPORT,
    .name = "no_symbol",
    .version = "0",
    .ops = NULL,
    .ops_size = 0};
