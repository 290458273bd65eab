/*
 * Queue governor: keeps the bottleneck's queue short while a round trip
 * waits on the connection, so an MPC round does not queue behind a bulk
 * transfer to the same peer.
 *
 * ngtcp2 0.12's BBR (v1) lets up to two bandwidth-delay products into
 * flight; with a deep router queue it keeps a standing queue of 10-20 ms
 * there (docs/performance.md), and every packet of the connection waits
 * in it, a one-byte reply as much as bulk data.  Bulk streams do not
 * mind; a round trip does.  So while the governor is on, bulk data (a
 * stream with more than QUIC_RR_QUANTUM unsent) waits while `q_cap` bytes
 * are in flight; short sends never wait.
 *
 * The cap follows the queueing delay, smoothed RTT - minimum RTT, about
 * once per smoothed RTT:
 *   - above queue_delay: cap = rate x (min RTT + queue_delay), the bytes
 *     that fill the path plus queue_delay's worth of queue.  The rate is
 *     what was acknowledged in that round trip: with a queue standing
 *     the link was busy, so it is the path's.
 *   - below queue_delay, while bulk data waited for the cap: + 1/16.
 *   - never below 3/4 of the bandwidth-delay product at the largest rate
 *     seen since the governor turned on (nor QUIC_Q_FLOOR_PKTS packets):
 *     part of the delay we see is not queue (a busy receiver's own
 *     backlog), and a cap chasing it would walk itself and the measured
 *     rate down together until the link is idle.
 * So the queue settles near queue_delay and the link stays full.  Before
 * the first round trip with a queue there is no cap (BBR's startup runs
 * as it is).
 *
 * When: `queue: interactive` (the default) turns it on for QUIC_Q_HOLD_NS
 * after a stream sent a little after a pause (everything it had sent
 * acknowledged, 1 to QUIC_RR_QUANTUM new bytes: a FIN alone is a close),
 * from the second such send on: a stream's first payload after its header or status byte does not
 * count, so a bulk transfer alone never turns it on and keeps BBR's full
 * rate.  `always`: on all the time (shares a link politely with other
 * flows, at some bulk throughput); `off`: BBR alone.  Network paths only:
 * loopback peers have no router queue.
 */
#include "quic.h"

/* How long the governor stays on after the last interactive send.  MPC
 * rounds come in bursts; one a few seconds after the last still finds a
 * short queue. */
#define QUIC_Q_HOLD_NS (5 * NGTCP2_SECONDS)
/* The cap never goes below this many full packets. */
#define QUIC_Q_FLOOR_PKTS 16

static int q_applies(const struct quic_conn *qc) {
  return qc->qi->cfg.queue_mode != QUIC_Q_OFF && !qc->q_loopback;
}

void quic_queue_interactive(struct quic_conn *qc, struct quic_stream *s) {
  /* New bytes (a FIN alone is a close, not a round), everything sent
   * before acknowledged, and the second time. */
  if (!q_applies(qc) || s->sent == 0 || s->acked != s->sent ||
      s->end == s->sent)
    return;
  if (s->q_small < 2)
    s->q_small++;
  if (s->q_small >= 2)
    qc->q_until_ns = quic_now(qc->qi) + QUIC_Q_HOLD_NS;
}

int quic_queue_on(const struct quic_conn *qc, uint64_t now) {
  return q_applies(qc) && (qc->qi->cfg.queue_mode == QUIC_Q_ALWAYS ||
                           now < qc->q_until_ns);
}

static uint64_t bytes_for(uint64_t rate, ngtcp2_duration d) {
  return (uint64_t)((double)rate * (double)d / (double)NGTCP2_SECONDS);
}

/* Refresh the cap; once per write pass. */
uint64_t quic_queue_cap(struct quic_conn *qc, uint64_t now) {
  const struct quic_cfg *cfg = &qc->qi->cfg;
  ngtcp2_duration target = cfg->queue_delay_ms * NGTCP2_MILLISECONDS;
  ngtcp2_conn_stat cs;

  if (!quic_queue_on(qc, now)) {
    qc->q_cap = 0;
    return 0;
  }
  ngtcp2_conn_get_conn_stat(qc->conn, &cs);
  if (cs.min_rtt == UINT64_MAX || cs.smoothed_rtt == 0)
    return 0;
  if (qc->q_cap == 0) { /* just turned on: measure first */
    qc->q_cap = UINT64_MAX;
    qc->q_rate = qc->q_peak = 0;
    qc->q_hit = 0;
    qc->q_win_acked = qc->q_acked;
    qc->q_win_ns = now;
    qc->q_next_ns = now + cs.smoothed_rtt;
  }
  if (now >= qc->q_next_ns) {
    /* Bytes per second acknowledged over the last round trip.  With a
     * queue standing the link was busy, so that is the path's rate;
     * without one only a higher rate tells us more. */
    uint64_t rate = (uint64_t)((double)(qc->q_acked - qc->q_win_acked) *
                               (double)NGTCP2_SECONDS /
                               (double)(now - qc->q_win_ns));
    uint64_t qd =
        cs.smoothed_rtt > cs.min_rtt ? cs.smoothed_rtt - cs.min_rtt : 0;
    uint64_t lo;

    if (qd > target || rate > qc->q_rate)
      qc->q_rate = rate;
    if (rate > qc->q_peak)
      qc->q_peak = rate;
    if (qd > target) {
      uint64_t c = bytes_for(qc->q_rate, cs.min_rtt + target);
      if (c < qc->q_cap)
        qc->q_cap = c;
    } else if (qc->q_cap != UINT64_MAX && qc->q_hit) {
      qc->q_cap += qc->q_cap / 16;
    }
    lo = bytes_for(qc->q_peak, cs.min_rtt) / 4 * 3;
    if (lo < QUIC_Q_FLOOR_PKTS * cs.max_tx_udp_payload_size)
      lo = QUIC_Q_FLOOR_PKTS * cs.max_tx_udp_payload_size;
    if (qc->q_cap < lo)
      qc->q_cap = lo;
    qc->q_hit = 0;
    qc->q_win_acked = qc->q_acked;
    qc->q_win_ns = now;
    qc->q_next_ns = now + cs.smoothed_rtt;
  }
  return qc->q_cap == UINT64_MAX ? 0 : qc->q_cap;
}

int quic_queue_allows(struct quic_conn *qc, const struct quic_stream *s,
                      uint64_t cap) {
  ngtcp2_conn_stat cs;

  if (!cap || s->end - s->sent <= QUIC_RR_QUANTUM)
    return 1;
  ngtcp2_conn_get_conn_stat(qc->conn, &cs);
  if (cs.bytes_in_flight < cap)
    return 1;
  qc->q_hit = 1;
  return 0;
}
