/*
 * The one UDP socket shared by STUN, TURN and QUIC.  Incoming datagrams
 * are read in batches and handed to the demultiplexer callback; sends
 * may carry several equal-size datagrams at once (UDP GSO when the kernel
 * has it, one sendmsg each otherwise).
 */
#ifndef SFK_UDP_H
#define SFK_UDP_H

#include <ev.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Every slot holds the largest datagram (a loopback peer sends up to
 * 64 KiB); only the bytes received touch memory.  With UDP GRO the
 * kernel hands over runs of equal-size datagrams from one sender as one
 * message (at most 64 KiB), so fewer slots do. */
#define SFK_UDP_SLOT (64 * 1024)
#define SFK_UDP_BATCH 32
#define SFK_UDP_GRO_BATCH 8
#define SFK_UDP_RBUF (SFK_UDP_BATCH * SFK_UDP_SLOT)

typedef void (*sfk_udp_recv_fn)(void *arg, const struct sockaddr *from,
                                socklen_t fromlen, const uint8_t *data,
                                size_t len);

struct sfk_udp {
  int fd;
  ev_io rio;
  struct sockaddr_storage local; /* as bound (port filled in) */
  socklen_t locallen;
  int gso;                       /* kernel accepted UDP_SEGMENT so far */
  int gro;                       /* UDP_GRO enabled on the socket */
  sfk_udp_recv_fn on_recv;
  void *arg;
  uint8_t *rbuf; /* SFK_UDP_RBUF bytes, owned */
  uint64_t rx_dgrams, tx_dgrams, tx_errors, rx_truncated;
};

/* Bind addr, set buffers, start reading.  0 or -errno (message logged). */
int sfk_udp_open(struct sfk_udp *u, struct ev_loop *loop,
                 const struct sockaddr *addr, socklen_t addrlen,
                 sfk_udp_recv_fn on_recv, void *arg);
void sfk_udp_close(struct sfk_udp *u, struct ev_loop *loop);
/* See sfk_host.udp_send. */
int sfk_udp_send(struct sfk_udp *u, const struct sockaddr *to,
                 socklen_t tolen, const uint8_t *buf, size_t len,
                 size_t gso_size);

#endif
