#include "autoconfig.h"

#include "netstate.h"

#include <errno.h>
#include <string.h>

void sfk_netstate_init(struct sfk_netstate *ns) {
  memset(ns, 0, sizeof *ns);
}

int sfk_netstate_choose(const struct sfk_netstate *ns, int relay_mode,
                        char *buf, size_t bufsz, const char **why) {
  int want_relay = 0;
  if (relay_mode == SFK_RELAY_ALWAYS) {
    want_relay = 1;
    *why = "relay mode is 'always'";
  } else if (relay_mode == SFK_RELAY_AUTO && ns->nat_known &&
             ns->nat.mapping >= SFK_NAT_ADDRESS_DEPENDENT) {
    want_relay = 1;
    *why = "this NAT maps each destination to its own port, so peers "
           "cannot reach the mapping STUN sees";
  }
  if (want_relay) {
    if (!ns->relayedlen)
      return -EAGAIN;
    sfk_addr_str((const struct sockaddr *)&ns->relayed, buf, bufsz);
    return 0;
  }
  if (!ns->mappinglen)
    return -EAGAIN;
  *why = ns->mapping_server[0] ? "public mapping" : "bound address";
  sfk_addr_str((const struct sockaddr *)&ns->mapping, buf, bufsz);
  return 0;
}

const char *sfk_nat_str(int nat) {
  switch (nat) {
  case SFK_NAT_NONE:
    return "none";
  case SFK_NAT_ENDPOINT_INDEPENDENT:
    return "endpoint-independent";
  case SFK_NAT_ADDRESS_DEPENDENT:
    return "address-dependent";
  case SFK_NAT_ADDRESS_PORT_DEPENDENT:
    return "address-and-port-dependent";
  default:
    return "unknown";
  }
}

const char *sfk_peer_state_str(int state) {
  switch (state) {
  case SFK_PEER_IDLE:
    return "idle";
  case SFK_PEER_CONNECTING:
    return "connecting";
  case SFK_PEER_UP:
    return "up";
  case SFK_PEER_DOWN:
    return "down";
  default:
    return "unknown";
  }
}

const char *sfk_path_str(int path) {
  return path == SFK_PATH_RELAY ? "relay" : "direct";
}

const char *sfk_relay_mode_str(int mode) {
  switch (mode) {
  case SFK_RELAY_AUTO:
    return "auto";
  case SFK_RELAY_ALWAYS:
    return "always";
  case SFK_RELAY_NEVER:
    return "never";
  default:
    return "none";
  }
}
