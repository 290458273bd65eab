/*
 * delayline: a fixed one-way delay (and optional per-packet random loss)
 * for the WAN benchmark, on a netfilter queue, because this kernel has no
 * sch_netem.  Every packet of the queue is held for DELAY and then
 * accepted, in arrival order (the delay is constant, so FIFO is exact);
 * with LOSS each packet is dropped with that probability instead.
 *
 *   delayline -q QUEUE -d DELAY_MS [-l LOSS_PCT] [-g] [-s SEED]
 *
 * -g asks the kernel for whole GSO aggregates (NFQA_CFG_F_GSO): far fewer
 * packets to handle, but a loss would then drop a whole aggregate, so -g
 * and -l do not go together.  Without -g the kernel segments aggregates
 * before queueing and each wire packet is held (and maybe dropped) alone.
 * Only packet metadata is copied to us (NFQNL_COPY_META).
 *
 * Counters go to stderr at SIGTERM/SIGINT: packets, dropped by the loss
 * model, held at most, netlink overruns (ENOBUFS: the kernel dropped
 * queue messages, so the run is not faithful).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <arpa/inet.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <linux/netfilter.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

/* Held packets: at 1 Gbit/s and 50 ms one way about 4,200 MTU-sized
 * packets; the ring allows 64 times that.  The kernel's queue is as long. */
#define DL_MAX_HELD (1u << 18)
#define DL_RCVBUF (64 * 1024 * 1024)

struct dl_held {
  uint32_t id;
  uint64_t due_ns;
};

struct dl {
  struct nfq_q_handle *qh;
  struct dl_held *ring; /* owned; DL_MAX_HELD entries */
  size_t head, n;
  uint64_t delay_ns;
  uint32_t loss_thresh; /* drop when rand32 < this; 0 = no loss */
  uint64_t rng;
  uint64_t pkts, dropped, overflow, enobufs;
  size_t max_held;
};

static volatile sig_atomic_t dl_stop;

static void on_signal(int sig) {
  (void)sig;
  dl_stop = 1;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: reproducible per seed, cheap per packet. */
static uint32_t rand32(struct dl *d) {
  d->rng ^= d->rng >> 12;
  d->rng ^= d->rng << 25;
  d->rng ^= d->rng >> 27;
  return (uint32_t)((d->rng * 2685821657736338717ull) >> 32);
}

static int on_packet(struct nfq_q_handle *qh, struct nfgenmsg *msg,
                     struct nfq_data *nfa, void *data) {
  struct dl *d = data;
  struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
  uint32_t id;
  (void)msg;

  if (!ph)
    return 0;
  id = ntohl(ph->packet_id);
  d->pkts++;
  if (d->loss_thresh && rand32(d) < d->loss_thresh) {
    d->dropped++;
    return nfq_set_verdict(qh, id, NF_DROP, 0, NULL);
  }
  if (d->n == DL_MAX_HELD) { /* never seen; would distort the delay */
    d->overflow++;
    return nfq_set_verdict(qh, id, NF_ACCEPT, 0, NULL);
  }
  d->ring[(d->head + d->n) % DL_MAX_HELD] =
      (struct dl_held){.id = id, .due_ns = now_ns() + d->delay_ns};
  d->n++;
  if (d->n > d->max_held)
    d->max_held = d->n;
  return 0;
}

/* Accept every packet that is due.  Drops were given their verdict on
 * arrival, so all packets still queued with an id up to the last due one
 * are due: one batch verdict releases them. */
static void release_due(struct dl *d) {
  uint64_t now = now_ns();
  uint32_t last = 0;
  int any = 0;

  while (d->n && d->ring[d->head].due_ns <= now) {
    last = d->ring[d->head].id;
    any = 1;
    d->head = (d->head + 1) % DL_MAX_HELD;
    d->n--;
  }
  if (any)
    nfq_set_verdict_batch(d->qh, last, NF_ACCEPT);
}

static void usage(void) {
  fprintf(stderr, "usage: delayline -q QUEUE -d DELAY_MS [-l LOSS_PCT] "
                  "[-g] [-s SEED]\n");
  exit(2);
}

int main(int argc, char **argv) {
  struct dl d;
  struct nfq_handle *h;
  int opt, fd, gso = 0;
  unsigned queue = 0;
  double delay_ms = -1, loss_pct = 0;
  uint64_t seed = 1;
  static char buf[65536 + 4096];

  memset(&d, 0, sizeof(d));
  while ((opt = getopt(argc, argv, "q:d:l:gs:")) != -1) {
    switch (opt) {
    case 'q':
      queue = (unsigned)strtoul(optarg, NULL, 10);
      break;
    case 'd':
      delay_ms = strtod(optarg, NULL);
      break;
    case 'l':
      loss_pct = strtod(optarg, NULL);
      break;
    case 'g':
      gso = 1;
      break;
    case 's':
      seed = strtoull(optarg, NULL, 10);
      break;
    default:
      usage();
    }
  }
  if (delay_ms < 0 || loss_pct < 0 || loss_pct > 100 || (gso && loss_pct > 0))
    usage();
  d.delay_ns = (uint64_t)(delay_ms * 1e6);
  d.loss_thresh = (uint32_t)(loss_pct / 100.0 * 4294967295.0);
  d.rng = seed ? seed : 1;
  d.ring = calloc(DL_MAX_HELD, sizeof(*d.ring));
  if (!d.ring)
    return 1;

  h = nfq_open();
  if (!h || nfq_unbind_pf(h, AF_INET) < 0 || nfq_bind_pf(h, AF_INET) < 0) {
    perror("delayline: nfq_open");
    return 1;
  }
  /* The previous delay line on this queue may still be letting go. */
  for (int i = 0; i < 100; i++) {
    d.qh = nfq_create_queue(h, (uint16_t)queue, on_packet, &d);
    if (d.qh)
      break;
    usleep(20000);
  }
  if (!d.qh || nfq_set_mode(d.qh, NFQNL_COPY_META, 0) < 0 ||
      nfq_set_queue_maxlen(d.qh, DL_MAX_HELD) < 0) {
    perror("delayline: queue");
    return 1;
  }
  if (gso && nfq_set_queue_flags(d.qh, NFQA_CFG_F_GSO, NFQA_CFG_F_GSO) < 0) {
    perror("delayline: NFQA_CFG_F_GSO");
    return 1;
  }
  fd = nfq_fd(h);
  {
    int sz = DL_RCVBUF, one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) < 0)
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    /* ENOBUFS is counted, not fatal. */
    setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof(one));
  }
  prctl(PR_SET_TIMERSLACK, 1UL); /* release on time, not 50 us late */
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  printf("delayline: queue %u, %.3f ms, loss %.3f %%, %s\n", queue, delay_ms,
         loss_pct, gso ? "GSO aggregates" : "single packets");
  fflush(stdout);

  while (!dl_stop) {
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    struct timespec ts, *tsp = NULL;
    ssize_t r;

    release_due(&d);
    if (d.n) {
      uint64_t due = d.ring[d.head].due_ns, now = now_ns();
      uint64_t wait = due > now ? due - now : 0;
      ts.tv_sec = (time_t)(wait / 1000000000u);
      ts.tv_nsec = (long)(wait % 1000000000u);
      tsp = &ts;
    }
    if (ppoll(&pfd, 1, tsp, NULL) < 0) {
      if (errno == EINTR)
        continue;
      perror("delayline: ppoll");
      break;
    }
    if (!(pfd.revents & POLLIN))
      continue;
    /* Drain what is there: each recv is one queued packet's message. */
    for (int i = 0; i < 256; i++) {
      r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
      if (r < 0) {
        if (errno == ENOBUFS) {
          d.enobufs++;
          continue;
        }
        break;
      }
      nfq_handle_packet(h, buf, (int)r);
    }
  }
  /* Let what is held go, so the path is not left black-holed. */
  while (d.n) {
    d.ring[d.head].due_ns = 0;
    release_due(&d);
  }
  fprintf(stderr,
          "delayline: queue %u: packets=%" PRIu64 " dropped=%" PRIu64
          " held_max=%zu overflow=%" PRIu64 " enobufs=%" PRIu64 "\n",
          queue, d.pkts, d.dropped, d.max_held, d.overflow, d.enobufs);
  nfq_destroy_queue(d.qh);
  nfq_close(h);
  free(d.ring);
  return 0;
}
