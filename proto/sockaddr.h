/*
 * Socket address helpers shared by the plugins (sans I/O): comparing,
 * printing, and the IPv4 <-> v4-mapped IPv6 forms a dual-stack socket
 * needs.  Addresses are AF_INET or AF_INET6; anything else compares
 * unequal and prints as "(none)".
 */
#ifndef SFK_PROTO_SOCKADDR_H
#define SFK_PROTO_SOCKADDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Room for "[v6 address]:port" and its NUL. */
#define SA_STR_MAX 64

/* Same family, address and port. */
int sa_equal(const struct sockaddr *a, const struct sockaddr *b);
/* Same family and address (any port). */
int sa_same_ip(const struct sockaddr *a, const struct sockaddr *b);
/* Port in host order (0 for other families). */
uint16_t sa_port(const struct sockaddr *a);
/* "ip:port" or "[ip]:port" into buf (bufsz >= SA_STR_MAX); returns buf. */
const char *sa_str(const struct sockaddr *a, char *buf, size_t bufsz);
/* The wildcard address (0.0.0.0 or ::), or an unknown family. */
int sa_is_wildcard(const struct sockaddr *a);
/* An IPv4 address as a v4-mapped IPv6 one (::ffff:a.b.c.d), in place;
 * other families are left alone. */
void sa_map_v4(struct sockaddr_storage *a, socklen_t *alen);
/* A v4-mapped IPv6 address back to IPv4, in place; others untouched. */
void sa_unmap_v4(struct sockaddr_storage *a, socklen_t *alen);

#endif /* SFK_PROTO_SOCKADDR_H */
