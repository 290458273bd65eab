/*
 * A party's own virtual address reaches its own services directly: a
 * TCP-to-TCP relay (splice.c) instead of a transport stream.
 */
#ifndef SFK_SPLICE_H
#define SFK_SPLICE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct sfk_daemon;

/* Take over fd (a SOCKS client that asked for one of our own services
 * at svc; no reply sent yet) and relay it to svc.  `early` holds bytes
 * the client sent after its request (copied).  Never fails: on error the
 * client gets a SOCKS error reply and fd is closed. */
void sfk_splice_open(struct sfk_daemon *d, int fd, const struct sockaddr *svc,
                     socklen_t svclen, const uint8_t *early, size_t earlylen);
/* Abort every local relay (shutdown). */
void sfk_splice_close_all(struct sfk_daemon *d);

#endif
