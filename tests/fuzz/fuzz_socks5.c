/*
 * libFuzzer target for the SOCKS5 / RFC 1929 parsers.
 *
 * Every parser sees the whole input and every prefix of it (up to the
 * longest message, 513 bytes), each prefix in a heap buffer of exactly
 * its size so ASan sees any over-read.  Checked invariants:
 * - the result is > 0, 0 or one of the SOCKS5_E_* codes;
 * - consumed <= len, and no message is longer than the protocol allows;
 * - prefixes give 0 until the first nonzero result, which then holds for
 *   every longer prefix (feeding byte by byte gives the same answer);
 * - a success is reported exactly when its last byte arrives;
 * - strings in the output are NUL-terminated within their arrays and have
 *   the length the message announced;
 * - the output is left alone while more bytes are needed.
 */
#include "autoconfig.h"

#include "proto/socks5.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_MSG 513 /* RFC 1929 with 255-byte user and password */

typedef int (*parse_fn)(const uint8_t *buf, size_t len, void *out);

static int p_greeting(const uint8_t *b, size_t n, void *o) {
  return socks5_parse_greeting(b, n, o);
}
static int p_userpass(const uint8_t *b, size_t n, void *o) {
  return socks5_parse_userpass(b, n, o);
}
static int p_request(const uint8_t *b, size_t n, void *o) {
  return socks5_parse_request(b, n, o);
}

static void check_output(int which, const void *out, const uint8_t *msg,
                         int rc) {
  if (which == 1) {
    const struct socks5_userpass *up = out;
    size_t ul = msg[1];
    if (!memchr(up->user, 0, sizeof up->user) ||
        !memchr(up->pass, 0, sizeof up->pass))
      abort();
    if (strlen(up->user) != ul || strlen(up->pass) != msg[2 + ul] ||
        (size_t)rc != 3 + ul + msg[2 + ul])
      abort();
  } else if (which == 2) {
    const struct socks5_request *r = out;
    if (!memchr(r->domain, 0, sizeof r->domain))
      abort();
    if (r->atyp == SOCKS5_ATYP_DOMAIN &&
        (strlen(r->domain) != msg[4] || msg[4] == 0 || rc != 7 + msg[4]))
      abort();
    if (r->atyp == SOCKS5_ATYP_IPV4 && rc != 10)
      abort();
    if (r->atyp == SOCKS5_ATYP_IPV6 && rc != 22)
      abort();
    if (r->cmd != msg[1] || r->port != (msg[rc - 2] << 8 | msg[rc - 1]))
      abort();
  } else if (rc != 2 + msg[1]) {
    abort();
  }
}

static void run(int which, parse_fn parse, const uint8_t *data, size_t size,
                size_t outsz) {
  _Alignas(max_align_t) unsigned char
      out[sizeof(struct socks5_request) + sizeof(struct socks5_userpass)];
  unsigned char ref[sizeof out];
  size_t lim = size < MAX_MSG + 8 ? size : MAX_MSG + 8;
  int first = 0;

  for (size_t k = 0; k <= lim; k++) {
    uint8_t *buf = malloc(k ? k : 1);
    if (!buf)
      abort();
    if (k)
      memcpy(buf, data, k);
    memset(out, 0x5a, outsz);
    memcpy(ref, out, outsz);
    int rc = parse(buf, k, out);

    if (rc < SOCKS5_E_ATYP || (size_t)(rc > 0 ? rc : 0) > k || rc > MAX_MSG)
      abort();
    if (rc == 0) {
      if (first != 0 || memcmp(out, ref, outsz) != 0)
        abort();
    } else if (first == 0) {
      first = rc;
      if (rc > 0) {
        if ((size_t)rc != k)
          abort(); /* success must show exactly when the message is whole */
        check_output(which, out, buf, rc);
      }
    } else if (rc != first) {
      abort();
    }
    free(buf);
  }

  /* The whole input, possibly longer than any message. */
  memset(out, 0x5a, outsz);
  int rc = parse(data, size, out);
  if (rc != first) /* lim covers the longest message: same verdict */
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  run(0, p_greeting, data, size, sizeof(struct socks5_greeting));
  run(1, p_userpass, data, size, sizeof(struct socks5_userpass));
  run(2, p_request, data, size, sizeof(struct socks5_request));
  return 0;
}
