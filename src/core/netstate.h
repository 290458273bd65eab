/*
 * What this party knows of its own reachability: the public mapping and
 * the STUN server that reported it, the NAT probe's finding, the relay
 * allocation, and the registry's last publish and read.  The daemon
 * decides from it what to publish as EXTERNAL_ADDR (sfk_netstate_choose)
 * and renders it for `status`.
 */
#ifndef SFK_NETSTATE_H
#define SFK_NETSTATE_H

#include <stdint.h>
#include <sys/socket.h>

#include "sfkit-proxy/plugin.h"
#include "util.h"

#define SFK_WHY_MAX 192

/* Outcome of the last registry operation of one kind. */
struct sfk_reg_outcome {
  int done;      /* 0 until the first result */
  int err;       /* 0 or negative errno */
  uint64_t at_ns; /* monotonic time of the result */
  char why[SFK_WHY_MAX];
};

struct sfk_netstate {
  struct sockaddr_storage mapping; /* family 0 until discovery reports */
  socklen_t mappinglen;
  char mapping_server[128];
  uint64_t mapping_ns;

  int nat_known;
  struct sfk_probe_result nat; /* copied from nat_found */

  struct sockaddr_storage relayed; /* family 0 without an allocation */
  socklen_t relayedlen;
  int relay_err;
  char relay_why[SFK_WHY_MAX];

  struct sfk_reg_outcome publish, read;
  char published[SFK_ADDRSTR_MAX]; /* address last handed to publish() */
  uint64_t published_ns;
};

void sfk_netstate_init(struct sfk_netstate *ns);

/*
 * The address to publish under relay_mode (enum sfk_relay_mode) into
 * buf, with a reason for the log in *why: the relayed address when
 * the policy says always, or auto and the NAT maps per destination;
 * else the public mapping.  Returns 0, or -EAGAIN when what the policy
 * wants is not known yet (no mapping, or relay wanted but not ready).
 */
int sfk_netstate_choose(const struct sfk_netstate *ns, int relay_mode,
                        char *buf, size_t bufsz, const char **why);

/* Human names of the enums, for logs and status. */
const char *sfk_nat_str(int nat);
const char *sfk_peer_state_str(int state);
const char *sfk_path_str(int path);
const char *sfk_relay_mode_str(int mode);

#endif
