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
 *     what was delivered in that round trip: with a queue standing the
 *     link was busy, so it is the path's.
 *   - below queue_delay, while bulk data waited for the cap: + 1/16.
 *   - a round trip in which no bulk data was ready to send, or (for the
 *     short queue) whose rate still grew by a quarter (a transfer getting
 *     going), lowers nothing: its rate is the sender's, not the path's.
 *   - never below 3/4 of the bandwidth-delay product at the largest rate
 *     seen since the governor turned on (nor QUIC_Q_FLOOR_PKTS packets):
 *     part of the delay we see is not queue (a busy receiver's own
 *     backlog), and a cap chasing it would walk itself and the measured
 *     rate down together until the link is idle.
 * So the queue settles near queue_delay and the link stays full.  Before
 * the first round trip with a queue there is no cap (BBR's startup runs
 * as it is).
 *
 * The ceiling: while the governor is off, the same cap runs with a
 * target of 4/5 of the minimum RTT (queue_delay if that is longer), so
 * less than a round trip's worth of data waits in the queue, which is
 * about what BBR means to allow (two bandwidth-delay products in
 * flight).  Not a whole round trip: that is the depth of a router queue
 * sized at one bandwidth-delay product, which then sat at its brim (up
 * to 10,000 drops in a 5 s transfer), and a CUBIC flow next to ours got
 * 70-225 Mbit/s of 1 Gbit/s; at 4/5 it got 300-700, and single
 * transfers were as fast (docs/performance.md).  It is there because
 * BBR's rate estimate runs high on a long fast path: a busy receiver
 * acknowledges in bursts, the bursts read as a rate above the link's, BBR's
 * startup never ends, and at 100 ms / 1 Gbit/s it kept 35-48 MB in flight into
 * a 12.5 MB router queue, and a third of the packets it sent were dropped there
 * (docs/performance.md).  The rate the cap uses is counted over a whole round
 * trip, which the bursts do not inflate.
 *
 * When: `queue: interactive` (the default) turns it on for QUIC_Q_HOLD_NS
 * after a stream sent a little after a pause (everything it had sent
 * acknowledged, 1 to QUIC_RR_QUANTUM new bytes: a FIN alone is a close),
 * from the second such send on: a stream's first payload after its header or
 * status byte does not count, so a bulk transfer alone never turns it on and
 * gets only the ceiling.  `always`: on all the time (shares a link politely
 * with other flows, at some bulk throughput); `off`: BBR alone, no ceiling
 * either. Network paths only: loopback peers have no router queue.
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
  return q_applies(qc) &&
         (qc->qi->cfg.queue_mode == QUIC_Q_ALWAYS || now < qc->q_until_ns);
}

static uint64_t bytes_for(uint64_t rate, ngtcp2_duration d) {
  return (uint64_t)((double)rate * (double)d / (double)NGTCP2_SECONDS);
}

/* The ceiling's queue target: 4/5 of the minimum RTT, or queue_delay
 * (`target`) if that is longer. */
static ngtcp2_duration ceiling_target(const ngtcp2_conn_stat *cs,
                                      ngtcp2_duration target) {
  ngtcp2_duration t = cs->min_rtt / 5 * 4;
  return t > target ? t : target;
}

/* A new measuring round trip starts now. */
static void q_window_start(struct quic_conn *qc, const ngtcp2_conn_stat *cs,
                           uint64_t now) {
  qc->q_win_acked = qc->q_acked;
  qc->q_win_tx = qc->tx_bytes;
  qc->q_win_inflight = cs->bytes_in_flight;
  qc->q_win_ns = now;
  qc->q_next_ns = now + cs->smoothed_rtt;
}

/* Refresh the cap (the governor's, else the ceiling's); once per write
 * pass. */
uint64_t quic_queue_cap(struct quic_conn *qc, uint64_t now) {
  const struct quic_cfg *cfg = &qc->qi->cfg;
  ngtcp2_duration target = cfg->queue_delay_ms * NGTCP2_MILLISECONDS;
  ngtcp2_conn_stat cs;
  int tight = quic_queue_on(qc, now);

  if (!q_applies(qc)) {
    qc->q_cap = 0;
    return 0;
  }
  ngtcp2_conn_get_conn_stat(qc->conn, &cs);
  qc->q_inflight = cs.bytes_in_flight;
  if (cs.min_rtt == UINT64_MAX || cs.smoothed_rtt == 0)
    return 0;
  if (tight != qc->q_tight) {
    qc->q_tight = tight;
    /* Into the short queue the cap starts again from measuring (the
     * ceiling's cap and peak, kept, made round trips under load 5-20 ms
     * longer at 50 and 100 ms).  Back from it, the cap jumps to the
     * ceiling's level at once: grown back by 1/16 per round trip it
     * would hold a bulk transfer back for a second or more at 100 ms. */
    if (tight)
      qc->q_cap = 0;
    else if (qc->q_cap) {
      uint64_t c =
          bytes_for(qc->q_peak, cs.min_rtt + ceiling_target(&cs, target));
      if (qc->q_cap < c)
        qc->q_cap = c;
    }
  }
  if (!tight)
    target = ceiling_target(&cs, target);
  if (qc->q_cap == 0) { /* just turned on: measure first */
    qc->q_cap = UINT64_MAX;
    qc->q_rate = qc->q_peak = qc->q_last = 0;
    qc->q_hit = 0;
    q_window_start(qc, &cs, now);
  }
  if (now >= qc->q_next_ns) {
    /* Bytes per second delivered over the last round trip: stream
     * bytes acknowledged in order.  They jump when a retransmission
     * fills a hole (1.5 Gbit/s read on a 1 Gbit/s path), so for the
     * short queue the rate is the lower of that and the bytes that left
     * flight (sent in the round trip minus what is still in flight,
     * which counts lost ones too); the ceiling keeps the higher reading,
     * which a lower one cost single transfers 10-20 % at 100 ms.  With
     * a queue standing the link was busy, so that is the path's rate;
     * without one only a higher rate tells us more. */
    uint64_t gone = qc->tx_bytes - qc->q_win_tx + qc->q_win_inflight;
    uint64_t acked = qc->q_acked - qc->q_win_acked;
    uint64_t qd =
        cs.smoothed_rtt > cs.min_rtt ? cs.smoothed_rtt - cs.min_rtt : 0;
    uint64_t rate, lo;
    int growing;

    gone = gone > cs.bytes_in_flight ? gone - cs.bytes_in_flight : 0;
    if (tight && gone < acked)
      acked = gone;
    rate = (uint64_t)((double)acked * (double)NGTCP2_SECONDS /
                      (double)(now - qc->q_win_ns));
    /* Neither a round trip with no bulk data ready (the sender's pace)
     * nor, for the short queue, a rate still growing by a quarter
     * (BBR's test for a full pipe: a transfer getting going; the
     * ceiling is there to stop BBR's startup) tells the path's rate: a round
     * trip of pings that found the previous transfer's queue still draining
     * read 0 Mbit/s with a queue, and the cap taken from it held the
     * next eight streams at 30-60 Mbit/s for 5 s at 100 ms. */
    growing = tight && rate > qc->q_last + qc->q_last / 4;
    qc->q_last = rate;
    if ((qd > target && qc->q_bulk) || rate > qc->q_rate)
      qc->q_rate = rate;
    if (rate > qc->q_peak)
      qc->q_peak = rate;
    if (qd > target) {
      uint64_t c = bytes_for(qc->q_rate, cs.min_rtt + target);
      if (qc->q_bulk && !growing && c < qc->q_cap)
        qc->q_cap = c;
    } else if (qc->q_cap != UINT64_MAX && qc->q_hit) {
      qc->q_cap += qc->q_cap / 16;
    }
    lo = bytes_for(qc->q_peak, cs.min_rtt) / 4 * 3;
    if (lo < QUIC_Q_FLOOR_PKTS * cs.max_tx_udp_payload_size)
      lo = QUIC_Q_FLOOR_PKTS * cs.max_tx_udp_payload_size;
    if (qc->q_cap < lo)
      qc->q_cap = lo;
    qc->q_hit = qc->q_bulk = 0;
    q_window_start(qc, &cs, now);
  }
  return qc->q_cap == UINT64_MAX ? 0 : qc->q_cap;
}

int quic_queue_allows(struct quic_conn *qc, const struct quic_stream *s,
                      uint64_t cap) {
  if (s->end - s->sent <= QUIC_RR_QUANTUM)
    return 1;
  qc->q_bulk = 1;
  if (!cap || qc->q_inflight < cap)
    return 1;
  qc->q_hit = 1;
  return 0;
}
