/*
 * A bridge joins one TCP connection to one transport stream.
 *
 * Opener side: a SOCKS client asked for 10.0.0.<pid>:<port>; the bridge
 * opens the stream, waits for the peer's status byte, sends the SOCKS
 * reply, then relays.  Acceptor side: a peer opened a stream to one of our
 * services; the bridge connects to the service and replies with the
 * status byte.  Both then move bytes with back-pressure: TCP is read only
 * while the stream has send space, and received bytes are credited back
 * to the peer only once written to TCP, so memory stays bounded by the
 * flow-control window.
 */
#ifndef SFK_BRIDGE_H
#define SFK_BRIDGE_H

#include <ev.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct sfk_daemon;
struct sfk_bridge;

/*
 * Opener: take over fd (a SOCKS client that sent CONNECT to pid:port;
 * no reply sent yet).  `early` holds bytes the client sent after its
 * request (copied).  The bridge sends the SOCKS reply.  Never fails: on
 * error the client gets a SOCKS error reply and fd is closed.
 */
void sfk_bridge_open_peer(struct sfk_daemon *d, int fd, uint32_t pid,
                          uint16_t port, const uint8_t *early,
                          size_t earlylen);
/* Start / stop the end-of-iteration flush of received stream data. */
void sfk_bridge_start(struct sfk_daemon *d);
void sfk_bridge_stop(struct sfk_daemon *d);
/* Abort every bridge (shutdown). */
void sfk_bridge_close_all(struct sfk_daemon *d);

/* A peer's virtual address for a log line ("10.0.0.3"); the buffer
 * lives until the end of the enclosing full expression's block. */
#define VADDR(d, pid)                                                         \
  sfk_config_vaddr_str(&(d)->cfg, (pid), (char[32]){0}, 32)

/* Host upcalls (host.c forwards to these). */
void *sfk_bridge_on_accept(struct sfk_daemon *d, void *ts, uint32_t pid,
                           uint16_t port, uint8_t *status);
void sfk_bridge_on_status(struct sfk_daemon *d, void *app, uint8_t status,
                          const char *why);
void sfk_bridge_on_data(struct sfk_daemon *d, void *app, const uint8_t *data,
                        size_t len, int fin);
void sfk_bridge_on_writable(struct sfk_daemon *d, void *app);
void sfk_bridge_on_closed(struct sfk_daemon *d, void *app, int err);

#endif
