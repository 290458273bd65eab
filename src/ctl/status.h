/*
 * The status tree: what `sfkit-proxy status` shows, built from the
 * daemon's state and the plugins' reports.  Rendering is report.c's job;
 * this file only decides what goes in.  Never a secret: no keys, no
 * passwords, no auth key (the pin is public).
 */
#ifndef SFK_STATUS_H
#define SFK_STATUS_H

#include <stddef.h>

#include "sfkit-proxy/plugin.h"

struct sfk_daemon;

/*
 * Write the status of d into r, as children of r's current (root)
 * object: daemon, mapping, nat, relay, registry, peers, then one
 * section per plugin instance that has a report() slot, named by its
 * tag ("transport.quic").  Plugins write through a guard, so their
 * mistakes cannot close the daemon's levels.  Called from the loop.
 */
void sfk_status_report(struct sfk_daemon *d, struct sfk_report *r);

/*
 * Render the status as text or JSON (enum sfk_report_format), capped at
 * max bytes (0: SFK_REPORT_CAP).  Returns a malloc'd NUL-terminated
 * buffer the caller frees, its length in *len; NULL when out of memory.
 */
char *sfk_status_render(struct sfk_daemon *d, int format, size_t max,
                        size_t *len);

#endif
