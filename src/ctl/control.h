/*
 * The control socket: a Unix stream socket (control.socket, mode 0600)
 * that answers one request line per connection:
 *
 *   "status text\n"  the status tree as indented text
 *   "status json\n"  the same as one JSON object
 *
 * Anything else gets one "error: ..." line.  The answer is written with
 * back-pressure, then the connection is closed.  Bounded: at most
 * SFK_CONTROL_MAX_CLIENTS connections at once (more are told so and
 * closed), SFK_CONTROL_REQ_MAX request bytes, SFK_CONTROL_TIMEOUT
 * seconds per connection, so a stuck client never blocks the daemon.
 */
#ifndef SFK_CONTROL_H
#define SFK_CONTROL_H

#include <ev.h>
#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

#define SFK_CONTROL_MAX_CLIENTS 16
#define SFK_CONTROL_REQ_MAX 64
#define SFK_CONTROL_TIMEOUT 5.0

struct sfk_daemon;
struct ctl_client;

/*
 * All zero (as inside a memset struct sfk_daemon) is a valid closed
 * state: sfk_control_close() on it does nothing.
 */
struct sfk_control {
  struct sfk_daemon *d; /* borrowed owner */
  int active;           /* fd is open and path is ours */
  int fd;               /* listening socket (valid when active) */
  ev_io accept_w;
  ev_timer accept_pause;      /* out of descriptors: accept again later */
  struct ctl_client *clients; /* owned, doubly linked */
  size_t nclients;
  char path[PATH_MAX]; /* the socket file we created */
  dev_t dev;           /* its identity, so close unlinks only ours */
  ino_t ino;
};

/*
 * Open d->cfg.control_socket and start serving.  Without one configured,
 * logs once (info) that status is unavailable and returns 0.  Creates
 * the parent folder (0700) if missing; replaces an existing file only
 * if it is a socket nobody answers on.  Returns 0, or a negative errno
 * after logging why (-EADDRINUSE: another daemon answers on the path).
 */
int sfk_control_open(struct sfk_control *c, struct sfk_daemon *d);

/* Stop serving, drop every client, remove the socket file (if it is
 * still the one we created).  Safe to call more than once. */
void sfk_control_close(struct sfk_control *c);

#endif
