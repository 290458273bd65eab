/* Socket address helpers: see sockaddr.h. */
#include "sockaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

int sa_equal(const struct sockaddr *a, const struct sockaddr *b) {
  return sa_same_ip(a, b) && sa_port(a) == sa_port(b);
}

int sa_same_ip(const struct sockaddr *a, const struct sockaddr *b) {
  if (a->sa_family != b->sa_family)
    return 0;
  if (a->sa_family == AF_INET)
    return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
           ((const struct sockaddr_in *)b)->sin_addr.s_addr;
  if (a->sa_family == AF_INET6)
    return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                  &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
  return 0;
}

uint16_t sa_port(const struct sockaddr *a) {
  if (a->sa_family == AF_INET)
    return ntohs(((const struct sockaddr_in *)a)->sin_port);
  if (a->sa_family == AF_INET6)
    return ntohs(((const struct sockaddr_in6 *)a)->sin6_port);
  return 0;
}

const char *sa_str(const struct sockaddr *a, char *buf, size_t bufsz) {
  char ip[INET6_ADDRSTRLEN] = "?";
  if (a->sa_family == AF_INET) {
    inet_ntop(AF_INET, &((const struct sockaddr_in *)a)->sin_addr, ip,
              sizeof ip);
    snprintf(buf, bufsz, "%s:%u", ip, sa_port(a));
  } else if (a->sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)a)->sin6_addr, ip,
              sizeof ip);
    snprintf(buf, bufsz, "[%s]:%u", ip, sa_port(a));
  } else {
    snprintf(buf, bufsz, "(none)");
  }
  return buf;
}

int sa_is_wildcard(const struct sockaddr *a) {
  if (a->sa_family == AF_INET)
    return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
           htonl(INADDR_ANY);
  if (a->sa_family == AF_INET6)
    return IN6_IS_ADDR_UNSPECIFIED(
        &((const struct sockaddr_in6 *)a)->sin6_addr);
  return 1;
}

void sa_map_v4(struct sockaddr_storage *a, socklen_t *alen) {
  if (a->ss_family != AF_INET)
    return;
  struct sockaddr_in in;
  memcpy(&in, a, sizeof in);
  struct sockaddr_in6 in6;
  memset(&in6, 0, sizeof in6);
  in6.sin6_family = AF_INET6;
  in6.sin6_port = in.sin_port;
  in6.sin6_addr.s6_addr[10] = 0xff;
  in6.sin6_addr.s6_addr[11] = 0xff;
  memcpy(&in6.sin6_addr.s6_addr[12], &in.sin_addr, 4);
  memset(a, 0, sizeof *a);
  memcpy(a, &in6, sizeof in6);
  *alen = sizeof in6;
}

void sa_unmap_v4(struct sockaddr_storage *a, socklen_t *alen) {
  if (a->ss_family != AF_INET6)
    return;
  struct sockaddr_in6 in6;
  memcpy(&in6, a, sizeof in6);
  if (!IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr))
    return;
  struct sockaddr_in in;
  memset(&in, 0, sizeof in);
  in.sin_family = AF_INET;
  in.sin_port = in6.sin6_port;
  memcpy(&in.sin_addr, &in6.sin6_addr.s6_addr[12], 4);
  memset(a, 0, sizeof *a);
  memcpy(a, &in, sizeof in);
  *alen = sizeof in;
}
