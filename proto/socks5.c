/*
 * SOCKS5 (RFC 1928) and RFC 1929 username/password messages as pure
 * buffer functions.
 *
 * Every parser looks at the bytes received so far and returns the length
 * of the complete message (> 0), SOCKS5_NEED_MORE (0) when the message is
 * not complete yet, or a negative SOCKS5_E_* code.  A malformed field is
 * reported as soon as its byte is present, so a bad client is dropped
 * without waiting for the rest.  `out` is written only when a message is
 * complete; the caller may feed the same growing buffer again and again.
 *
 * Choices where the RFCs leave room:
 * - Greeting with NMETHODS 0: SOCKS5_E_FORMAT (no method could be chosen).
 * - Request with RSV != 0: SOCKS5_E_FORMAT (RFC 1928 says X'00').
 * - Request with an unknown CMD: parsed; the server answers 0x07.
 * - Request with an unknown ATYP: SOCKS5_E_ATYP (its length is unknown).
 * - Domain of length 0, or a domain containing a NUL byte:
 *   SOCKS5_E_FORMAT.  An empty name names nothing, and a NUL would make
 *   the NUL-terminated copy differ from what the client sent.
 * - RFC 1929 with ULEN or PLEN 0: accepted (some clients send an empty
 *   password); the credential check rejects them.  A NUL inside the user
 *   name or password: SOCKS5_E_FORMAT, for the same reason as above.
 * - RFC 1929 sub-negotiation version other than 0x01: SOCKS5_E_VERSION.
 */
#include "autoconfig.h"

#include "proto/socks5.h"

#include <string.h>

#define RFC1929_VER 0x01

/* Big-endian 16-bit value at p. */
static uint16_t get_be16(const uint8_t *p) {
  return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

/* Copy a string of n <= 255 bytes (its length came from one byte) into
 * dst[256] and terminate it.  The caller has refused embedded NULs. */
static void copy_str(char dst[256], const uint8_t *src, size_t n) {
  memcpy(dst, src, n);
  dst[n] = '\0';
}

int socks5_parse_greeting(const uint8_t *buf, size_t len,
                          struct socks5_greeting *out) {
  if (len < 1)
    return SOCKS5_NEED_MORE;
  if (buf[0] != SOCKS5_VER)
    return SOCKS5_E_VERSION;
  if (len < 2)
    return SOCKS5_NEED_MORE;
  size_t n = buf[1];
  if (n == 0)
    return SOCKS5_E_FORMAT;
  if (len < 2 + n)
    return SOCKS5_NEED_MORE;

  struct socks5_greeting g = {0, 0};
  for (size_t i = 0; i < n; i++) {
    if (buf[2 + i] == SOCKS5_AUTH_NONE)
      g.offers_none = 1;
    else if (buf[2 + i] == SOCKS5_AUTH_USERPASS)
      g.offers_userpass = 1;
  }
  *out = g;
  return (int)(2 + n);
}

int socks5_parse_userpass(const uint8_t *buf, size_t len,
                          struct socks5_userpass *out) {
  if (len < 1)
    return SOCKS5_NEED_MORE;
  if (buf[0] != RFC1929_VER)
    return SOCKS5_E_VERSION;
  if (len < 2)
    return SOCKS5_NEED_MORE;
  size_t ulen = buf[1];
  /* Check the bytes already there, so a NUL is refused early. */
  size_t have = len - 2 < ulen ? len - 2 : ulen;
  if (memchr(buf + 2, 0, have))
    return SOCKS5_E_FORMAT;
  if (len < 2 + ulen + 1)
    return SOCKS5_NEED_MORE;
  size_t plen = buf[2 + ulen];
  size_t total = 2 + ulen + 1 + plen;
  if (len < total)
    return SOCKS5_NEED_MORE;

  /* The password goes straight into out (no stack copy left to wipe). */
  if (memchr(buf + 3 + ulen, 0, plen))
    return SOCKS5_E_FORMAT;
  copy_str(out->user, buf + 2, ulen);
  copy_str(out->pass, buf + 3 + ulen, plen);
  return (int)total;
}

int socks5_parse_request(const uint8_t *buf, size_t len,
                         struct socks5_request *out) {
  if (len < 1)
    return SOCKS5_NEED_MORE;
  if (buf[0] != SOCKS5_VER)
    return SOCKS5_E_VERSION;
  if (len < 3)
    return SOCKS5_NEED_MORE;
  if (buf[2] != 0x00)
    return SOCKS5_E_FORMAT;
  if (len < 4)
    return SOCKS5_NEED_MORE;

  size_t addrlen; /* bytes of DST.ADDR, including a domain's length byte */
  switch (buf[3]) {
  case SOCKS5_ATYP_IPV4:
    addrlen = 4;
    break;
  case SOCKS5_ATYP_IPV6:
    addrlen = 16;
    break;
  case SOCKS5_ATYP_DOMAIN:
    if (len < 5)
      return SOCKS5_NEED_MORE;
    if (buf[4] == 0)
      return SOCKS5_E_FORMAT;
    addrlen = 1 + (size_t)buf[4];
    break;
  default:
    return SOCKS5_E_ATYP;
  }
  size_t total = 4 + addrlen + 2;
  if (len < total)
    return SOCKS5_NEED_MORE;

  struct socks5_request r;
  memset(&r, 0, sizeof r);
  r.cmd = buf[1];
  r.atyp = buf[3];
  const uint8_t *a = buf + 4;
  if (r.atyp == SOCKS5_ATYP_IPV4) {
    r.ipv4 = (uint32_t)a[0] << 24 | (uint32_t)a[1] << 16 | (uint32_t)a[2] << 8 |
             (uint32_t)a[3];
  } else if (r.atyp == SOCKS5_ATYP_IPV6) {
    memcpy(r.ipv6, a, sizeof r.ipv6);
  } else {
    if (memchr(a + 1, 0, addrlen - 1))
      return SOCKS5_E_FORMAT;
    copy_str(r.domain, a + 1, addrlen - 1);
  }
  r.port = get_be16(buf + 4 + addrlen);
  *out = r;
  return (int)total;
}

size_t socks5_write_method(uint8_t out[2], uint8_t method) {
  out[0] = SOCKS5_VER;
  out[1] = method;
  return 2;
}

size_t socks5_write_auth_status(uint8_t out[2], int ok) {
  out[0] = RFC1929_VER;
  out[1] = ok ? 0x00 : 0x01;
  return 2;
}

size_t socks5_write_reply(uint8_t out[10], uint8_t rep, uint32_t addr,
                          uint16_t port) {
  out[0] = SOCKS5_VER;
  out[1] = rep;
  out[2] = 0x00;
  out[3] = SOCKS5_ATYP_IPV4;
  out[4] = (uint8_t)(addr >> 24);
  out[5] = (uint8_t)(addr >> 16);
  out[6] = (uint8_t)(addr >> 8);
  out[7] = (uint8_t)addr;
  out[8] = (uint8_t)(port >> 8);
  out[9] = (uint8_t)port;
  return 10;
}

const char *socks5_reply_str(uint8_t rep) {
  static const char *const names[] = {"succeeded",
                                      "general failure",
                                      "not allowed by ruleset",
                                      "network unreachable",
                                      "host unreachable",
                                      "connection refused",
                                      "TTL expired",
                                      "command not supported",
                                      "address type not supported"};
  return rep < sizeof names / sizeof names[0] ? names[rep] : "unassigned";
}
