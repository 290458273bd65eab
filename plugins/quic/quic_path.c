/*
 * QUIC transport: paths (direct, relay) and the relay policy.
 *
 * Each connection runs on one path at a time and sends every packet on
 * it.  ngtcp2 identifies a path by (local, remote) address; a peer's
 * address can be the same directly and through the relay, so our local
 * label differs per path: the socket's address for SFK_PATH_DIRECT, our
 * relayed address for SFK_PATH_RELAY.  A move between paths is then a
 * path change ngtcp2 validates like any other (server side), and on send
 * the label tells which path a packet takes.
 *
 * Policy (host->relay_mode): direct first; the relay for every peer when
 * 'always'; with 'auto' when a direct handshake did not complete within
 * relay_fallback and the relay is usable; never with 'never' or without a
 * relay plugin (path_info(RELAY) is -ENOENT: everything stays direct).
 *
 * The relay plugin is plugins/turn (TURN, RFC 8656); tests/integration/
 * relay.sh also runs this path with a stand-in (tests/plugins/relay_udp.c).
 * Everything here is guarded by qi->relay_usable, which only a relay
 * plugin can set.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "quic.h"

void quic_path_refresh(struct quic_inst *qi) {
  const struct sfk_host *h = qi->h;
  struct sfk_path_info pi;
  int rv;

  memset(&pi, 0, sizeof(pi));
  rv = h->path_info(h, SFK_PATH_RELAY, &pi);
  qi->relay_present = rv != -ENOENT;
  /* Usable only with a relayed address that differs from the socket's:
   * otherwise ngtcp2 could not tell the paths apart. */
  qi->relay_usable =
      rv == 0 && pi.usable && pi.addrlen && pi.addr.ss_family != 0 &&
      pi.addrlen <= sizeof(qi->relay_local) &&
      !quic_addr_eq((const struct sockaddr *)&pi.addr, pi.addrlen,
                    (const struct sockaddr *)&qi->local, qi->locallen);
  memset(&qi->relay_local, 0, sizeof(qi->relay_local));
  qi->relay_locallen = 0;
  if (qi->relay_usable) {
    memcpy(&qi->relay_local, &pi.addr, pi.addrlen);
    qi->relay_locallen = pi.addrlen;
  }
  qi->relay_overhead = pi.overhead;
  qi->relay_max_payload = pi.max_payload;
}

int quic_path_choose(struct quic_inst *qi, struct quic_peer *p) {
  switch (qi->h->relay_mode) {
  case SFK_RELAY_ALWAYS:
    return qi->relay_usable ? SFK_PATH_RELAY : -1;
  case SFK_RELAY_AUTO:
    return p->direct_failed && qi->relay_usable ? SFK_PATH_RELAY
                                                : SFK_PATH_DIRECT;
  default:
    return SFK_PATH_DIRECT;
  }
}

void quic_path_local(const struct quic_inst *qi, int path,
                     const struct sockaddr **sa, socklen_t *len) {
  if (path == SFK_PATH_RELAY && qi->relay_locallen) {
    *sa = (const struct sockaddr *)&qi->relay_local;
    *len = qi->relay_locallen;
  } else {
    *sa = (const struct sockaddr *)&qi->local;
    *len = qi->locallen;
  }
}

int quic_path_of_local(const struct quic_inst *qi, const struct sockaddr *sa,
                       socklen_t len) {
  if (qi->relay_locallen &&
      quic_addr_eq(sa, len, (const struct sockaddr *)&qi->relay_local,
                   qi->relay_locallen))
    return SFK_PATH_RELAY;
  return SFK_PATH_DIRECT;
}

/* A relayed path is a network path whatever the relay server's own
 * address (its far side is one): ngtcp2's network size, minus the framing
 * the relay adds, never loopback_payload. */
size_t quic_path_relay_payload(const struct quic_inst *qi) {
  size_t n = QUIC_MAX_PKT;

  if (qi->relay_max_payload && qi->relay_max_payload < n)
    n = qi->relay_max_payload;
  n = n > qi->relay_overhead ? n - qi->relay_overhead : 0;
  return n < NGTCP2_MAX_UDP_PAYLOAD_SIZE ? NGTCP2_MAX_UDP_PAYLOAD_SIZE : n;
}

int quic_path_permit(struct quic_inst *qi, struct quic_peer *p) {
  const struct sfk_host *h = qi->h;
  int rv;

  if (!p->addrlen)
    return -EHOSTUNREACH;
  if (p->permitted &&
      quic_addr_eq((const struct sockaddr *)&p->permit_addr, p->permit_addrlen,
                   (const struct sockaddr *)&p->addr, p->addrlen))
    return 0;
  quic_path_unpermit(qi, p);
  rv = h->relay_permit(h, (const struct sockaddr *)&p->addr, p->addrlen);
  if (rv != 0) {
    char a[64];
    h->log(h, SFK_LOG_DEBUG, "peer %u: relay permission for %s: %s", p->pid,
           quic_addr_str((const struct sockaddr *)&p->addr, p->addrlen, a,
                         sizeof(a)),
           strerror(-rv));
    return rv;
  }
  p->permitted = 1;
  memcpy(&p->permit_addr, &p->addr, p->addrlen);
  p->permit_addrlen = p->addrlen;
  return 0;
}

void quic_path_unpermit(struct quic_inst *qi, struct quic_peer *p) {
  const struct sfk_host *h = qi->h;

  if (!p->permitted)
    return;
  p->permitted = 0;
  h->relay_unpermit(h, (const struct sockaddr *)&p->permit_addr,
                    p->permit_addrlen);
}

int quic_path_fallback(struct quic_inst *qi, struct quic_peer *p,
                       uint64_t now) {
  const struct sfk_host *h = qi->h;
  struct quic_conn *qc = p->conn;
  char why[QUIC_WHY_MAX], d[32];

  if (!qc || (qc->flags & (QCF_HS_DONE | QCF_SERVER | QCF_DOOMED)) ||
      qc->path != SFK_PATH_DIRECT || h->relay_mode != SFK_RELAY_AUTO ||
      !qi->relay_usable ||
      now < qc->created_ns + qi->cfg.relay_fallback_ms * 1000000u)
    return 0;
  p->direct_failed = 1;
  snprintf(why, sizeof(why), "no direct handshake in %s; trying the relay",
           quic_dur_str(qi->cfg.relay_fallback_ms, d, sizeof(d)));
  h->log(h, SFK_LOG_INFO, "peer %u: %s", p->pid, why);
  qc->flags |= QCF_QUIET;
  quic_conn_doom(qc, -ETIMEDOUT, why);
  return 1;
}

const char *quic_path_why(const struct quic_inst *qi,
                          const struct quic_conn *qc) {
  int mode = qi->h->relay_mode;

  if (qc->flags & QCF_SERVER)
    return qc->path == SFK_PATH_RELAY
               ? "the peer reached our relayed address"
               : "the peer reached our address directly";
  if (qc->path == SFK_PATH_RELAY)
    return mode == SFK_RELAY_ALWAYS ? "relay mode 'always'"
                                    : "no direct handshake within "
                                      "relay_fallback, so through the relay";
  switch (mode) {
  case SFK_RELAY_NEVER:
    return "direct: relay mode 'never'";
  case SFK_RELAY_AUTO:
    return "direct first (relay mode 'auto')";
  default:
    return "direct: no relay configured";
  }
}

const char *quic_path_policy_note(const struct quic_inst *qi) {
  switch (qi->h->relay_mode) {
  case SFK_RELAY_NEVER:
    return "; relay mode is 'never' (site policy), so no relay is tried";
  case SFK_RELAY_AUTO:
  case SFK_RELAY_ALWAYS:
    return qi->relay_usable ? "" : "; the relay is not usable either";
  default:
    return "";
  }
}

void quic_op_path_changed(void *self, int path) {
  struct quic_inst *qi = self;
  const struct sfk_host *h = qi->h;
  struct quic_peer *p;
  struct sockaddr_storage old;
  socklen_t oldlen;

  if (!qi->started || qi->stopped)
    return;
  if (path == SFK_PATH_DIRECT) {
    /* Our public mapping moved: punch again at once so the clients' NATs
     * let the new one in, and give the direct path another chance. */
    TAILQ_FOREACH(p, &qi->peers, link) p->direct_failed = 0;
    quic_punch_restart_all(qi);
    quic_kick(qi);
    return;
  }
  if (path != SFK_PATH_RELAY)
    return;
  old = qi->relay_local;
  oldlen = qi->relay_locallen;
  quic_path_refresh(qi);
  TAILQ_FOREACH(p, &qi->peers, link) {
    struct quic_conn *qc = p->conn;
    int client = quic_is_client_of(qi, p->pid);

    if (qc && qc->path == SFK_PATH_RELAY &&
        (!qi->relay_usable ||
         !quic_addr_eq((const struct sockaddr *)&old, oldlen,
                       (const struct sockaddr *)&qi->relay_local,
                       qi->relay_locallen)))
      quic_conn_doom(qc, -ENETUNREACH,
                     qi->relay_usable ? "our relayed address changed"
                                      : "the relay is gone");
    else if (qc && client && qc->path == SFK_PATH_DIRECT &&
             h->relay_mode == SFK_RELAY_ALWAYS && qi->relay_usable) {
      qc->flags |= QCF_QUIET;
      quic_conn_doom(qc, -ENOTCONN,
                     "relay mode 'always': moving to the "
                     "relay");
    }
    if (!client && p->addrlen) {
      if (qi->relay_usable && h->relay_mode != SFK_RELAY_NEVER)
        quic_path_permit(qi, p);
      else
        quic_path_unpermit(qi, p);
    }
    if (client && !p->conn && p->next_connect_ns == UINT64_MAX)
      p->next_connect_ns = 0; /* was waiting for the relay */
    quic_peer_schedule(p);
  }
  quic_kick(qi);
}
