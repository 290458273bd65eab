/*
 * Check-only test plugin: a transport descriptor that claims plugin ABI
 * 999.  The loader must refuse it before looking at anything else.
 */
#include "autoconfig.h"

#include "sfkit-proxy/plugin.h"

SFK_EXPORT const struct sfk_plugin_desc SFK_PLUGIN_SYMBOL = {
    .abi = 999,
    .desc_size = sizeof(struct sfk_plugin_desc),
    .host_size = sizeof(struct sfk_host),
    .kind = SFK_KIND_TRANSPORT,
    .name = "bad_abi",
    .version = "0",
    .ops = NULL,
    .ops_size = 0};
