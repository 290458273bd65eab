/* `sfkit-proxy netcheck`: probe the NAT with the configured STUN servers. */
#ifndef SFK_NETCHECK_H
#define SFK_NETCHECK_H

#include "config.h"

/* Exit statuses of netcheck (also in the man page). */
enum {
  SFK_NETCHECK_DIRECT = 0,    /* endpoint-independent mapping (or no NAT) */
  SFK_NETCHECK_RELAY = 1,     /* mapping depends on the destination */
  SFK_NETCHECK_USAGE = 2,     /* usage or config error */
  SFK_NETCHECK_NO_ANSWER = 3, /* no STUN server answered */
  SFK_NETCHECK_UNKNOWN = 4,   /* one vantage point: behaviour not known */
  SFK_NETCHECK_ERROR = 5      /* runtime failure (socket, loop) */
};

/*
 * Load config_path (NULL: built-in defaults) with ov applied, load only
 * the discovery plugin, probe on a fresh UDP socket at udp.bind's
 * address (port 0), print the result to stdout (one JSON object when
 * json), and return one of the exit statuses above.  Config errors go to
 * stderr as FILE:LINE:COLUMN: message.
 */
int sfk_netcheck_run(const char *config_path, const struct sfk_overrides *ov,
                     int json);

#endif
