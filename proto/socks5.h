/*
 * SOCKS5 (RFC 1928) and username/password auth (RFC 1929) as pure buffer
 * functions: feed the bytes received so far, get how many were used and
 * what was asked.  No I/O, no allocation.
 */
#ifndef SFK_SOCKS5_PROTO_H
#define SFK_SOCKS5_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define SOCKS5_VER 0x05
#define SOCKS5_AUTH_NONE 0x00
#define SOCKS5_AUTH_USERPASS 0x02
#define SOCKS5_AUTH_NO_ACCEPTABLE 0xff
#define SOCKS5_CMD_CONNECT 0x01
#define SOCKS5_CMD_BIND 0x02
#define SOCKS5_CMD_UDP 0x03
#define SOCKS5_ATYP_IPV4 0x01
#define SOCKS5_ATYP_DOMAIN 0x03
#define SOCKS5_ATYP_IPV6 0x04

/* Results of the parsers: >0 bytes consumed, 0 need more, <0 error. */
#define SOCKS5_NEED_MORE 0
#define SOCKS5_E_VERSION (-1) /* not SOCKS5 (or bad auth subnegotiation version) */
#define SOCKS5_E_FORMAT (-2)  /* malformed (zero methods, bad reserved byte) */
/* Request with an unknown ATYP: its length cannot be known, so nothing is
 * consumed; answer reply 0x08 (address type not supported) and close. */
#define SOCKS5_E_ATYP (-3)

/* Greeting: VER NMETHODS METHODS... */
struct socks5_greeting {
  int offers_none;
  int offers_userpass;
};
int socks5_parse_greeting(const uint8_t *buf, size_t len,
                          struct socks5_greeting *out);

/* RFC 1929: VER(1) ULEN UNAME PLEN PASSWD. Strings NUL-terminated. */
struct socks5_userpass {
  char user[256];
  char pass[256]; /* secret: wipe after use */
};
int socks5_parse_userpass(const uint8_t *buf, size_t len,
                          struct socks5_userpass *out);

/* Request: VER CMD RSV ATYP DST.ADDR DST.PORT */
struct socks5_request {
  uint8_t cmd;
  uint8_t atyp;
  uint32_t ipv4;    /* host order, for ATYP_IPV4 */
  uint8_t ipv6[16]; /* for ATYP_IPV6 */
  char domain[256]; /* for ATYP_DOMAIN, NUL-terminated */
  uint16_t port;    /* host order */
};
int socks5_parse_request(const uint8_t *buf, size_t len,
                         struct socks5_request *out);

/* Encoders write into out (at least 10 bytes) and return the length. */
size_t socks5_write_method(uint8_t out[2], uint8_t method);
size_t socks5_write_auth_status(uint8_t out[2], int ok);
/* Reply with an IPv4 bound address (host order) and port. */
size_t socks5_write_reply(uint8_t out[10], uint8_t rep, uint32_t addr,
                          uint16_t port);
/* RFC 1928's name for a reply code, for logs ("host unreachable"). */
const char *socks5_reply_str(uint8_t rep);

#endif
