/*
 * The SOCKS5 front end: listens (loopback by default), runs the RFC 1928
 * / RFC 1929 handshake per client with a deadline, checks the request
 * against the virtual network and hands accepted CONNECTs to a bridge.
 */
#ifndef SFK_SOCKS_SERVER_H
#define SFK_SOCKS_SERVER_H

#include <ev.h>
#include <stddef.h>
#include <sys/socket.h>

struct sfk_daemon;
struct socks_client;

struct sfk_socks_server {
  struct sfk_daemon *d;
  int fd;
  ev_io accept_w;
  ev_timer accept_pause; /* after EMFILE: retry accepting later */
  struct socks_client *clients; /* handshakes in progress, owned;
                                   newest first */
  size_t nclients;
  double evict_warned;          /* ev_now() of the last "closing the
                                   oldest" warning (rate limit) */
  char username[256]; /* "" = no auth */
  char password[256]; /* secret, read from password_file; wiped on close */
};

int sfk_socks_open(struct sfk_socks_server *s, struct sfk_daemon *d);
void sfk_socks_close(struct sfk_socks_server *s);

#endif
