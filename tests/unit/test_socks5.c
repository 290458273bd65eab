/* Unit tests for the sans-I/O SOCKS5 / RFC 1929 codec (proto/socks5.c). */
#include "autoconfig.h"

#include "proto/socks5.h"
#include "tap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* One signature for the three parsers so one feeder drives them all. */
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

/* What feeding a message one byte at a time showed. */
struct feed {
  int rc;        /* result on the whole buffer */
  size_t first;  /* shortest prefix with a nonzero result (len+1: none) */
  int steady;    /* 0 before `first`, the same value from `first` on */
  int untouched; /* out unchanged while the parser asked for more */
};

/*
 * Feed buf[0..len) as prefixes of 0, 1, ..., len bytes, each time in a
 * fresh heap copy of exactly that size (so ASan catches any read past the
 * prefix), with out pre-filled with a pattern.
 */
static struct feed feed(parse_fn parse, const uint8_t *buf, size_t len,
                        void *out, size_t outsz) {
  struct feed f = {0, len + 1, 1, 1};
  unsigned char *ref = malloc(outsz);
  int first_rc = 0;
  for (size_t k = 0; k <= len; k++) {
    uint8_t *copy = malloc(k ? k : 1);
    if (k)
      memcpy(copy, buf, k);
    memset(out, 0xA5, outsz);
    memcpy(ref, out, outsz);
    int rc = parse(copy, k, out);
    free(copy);
    if (rc == 0) {
      if (memcmp(ref, out, outsz) != 0)
        f.untouched = 0;
      if (f.first <= len)
        f.steady = 0;
    } else if (f.first > len) {
      f.first = k;
      first_rc = rc;
    } else if (rc != first_rc) {
      f.steady = 0;
    }
    f.rc = rc;
  }
  free(ref);
  return f;
}

/* A complete message must be consumed exactly when its last byte arrives. */
static void feed_ok(const char *what, parse_fn parse, const uint8_t *buf,
                    size_t len, void *out, size_t outsz) {
  struct feed f = feed(parse, buf, len, out, outsz);
  is_int(f.rc, (int)len, what);
  ok(f.first == len && f.steady, "%s: 0 for every shorter prefix", what);
  ok(f.untouched, "%s: out untouched while incomplete", what);
}

/* A bad message must fail with `err` once `at` bytes are present. */
static void feed_err(const char *what, parse_fn parse, const uint8_t *buf,
                     size_t len, void *out, size_t outsz, int err, size_t at) {
  struct feed f = feed(parse, buf, len, out, outsz);
  is_int(f.rc, err, what);
  is_int(f.first, at, "error reported as soon as the bad byte arrives");
  ok(f.steady, "%s: error stays once reported", what);
}

/* ------------------------------------------------------------------ */

static void test_greeting(void) {
  struct socks5_greeting g;

  static const uint8_t none[] = {5, 1, 0};
  feed_ok("greeting: no-auth", p_greeting, none, sizeof none, &g, sizeof g);
  ok(g.offers_none && !g.offers_userpass, "greeting: offers none only");

  static const uint8_t both[] = {5, 2, 0, 2};
  feed_ok("greeting: two methods", p_greeting, both, sizeof both, &g, sizeof g);
  ok(g.offers_none && g.offers_userpass, "greeting: offers none + userpass");

  static const uint8_t up[] = {5, 3, 1, 2, 0x80};
  feed_ok("greeting: gssapi, userpass, private", p_greeting, up, sizeof up, &g,
          sizeof g);
  ok(!g.offers_none && g.offers_userpass, "greeting: offers userpass only");

  static const uint8_t other[] = {5, 1, 0xff};
  feed_ok("greeting: only unknown", p_greeting, other, sizeof other, &g,
          sizeof g);
  ok(!g.offers_none && !g.offers_userpass, "greeting: offers nothing usable");

  uint8_t many[2 + 255];
  many[0] = 5;
  many[1] = 255;
  for (int i = 0; i < 255; i++)
    many[2 + i] = (uint8_t)(i + 3); /* neither 0 nor 2 ... */
  many[2 + 254] = 0;                /* ... except the last one */
  feed_ok("greeting: 255 methods", p_greeting, many, sizeof many, &g, sizeof g);
  ok(g.offers_none && !g.offers_userpass, "greeting: last method seen");

  /* Pipelined bytes after the greeting are left for the next parser. */
  static const uint8_t piped[] = {5, 1, 0, 5, 1, 0, 1};
  is_int(socks5_parse_greeting(piped, sizeof piped, &g), 3,
         "greeting: trailing bytes not consumed");

  static const uint8_t v4[] = {4, 1, 0, 80, 127, 0, 0, 1, 0};
  feed_err("greeting: SOCKS4 refused", p_greeting, v4, sizeof v4, &g, sizeof g,
           SOCKS5_E_VERSION, 1);
  static const uint8_t zero[] = {5, 0};
  feed_err("greeting: NMETHODS 0", p_greeting, zero, sizeof zero, &g, sizeof g,
           SOCKS5_E_FORMAT, 2);
  static const uint8_t http[] = "GET / HTTP/1.1\r\n";
  is_int(socks5_parse_greeting(http, sizeof http - 1, &g), SOCKS5_E_VERSION,
         "greeting: HTTP refused");
}

/* Build an RFC 1929 message; returns its length. */
static size_t userpass_msg(uint8_t *m, const char *u, size_t ul, const char *p,
                           size_t pl) {
  m[0] = 1;
  m[1] = (uint8_t)ul;
  memcpy(m + 2, u, ul);
  m[2 + ul] = (uint8_t)pl;
  memcpy(m + 3 + ul, p, pl);
  return 3 + ul + pl;
}

static void test_userpass(void) {
  struct socks5_userpass up;
  uint8_t m[600];

  size_t n = userpass_msg(m, "alice", 5, "s3cret!", 7);
  feed_ok("userpass: alice", p_userpass, m, n, &up, sizeof up);
  is_str(up.user, "alice", "userpass: user");
  is_str(up.pass, "s3cret!", "userpass: pass");

  char u[255], p[255];
  memset(u, 'u', sizeof u);
  memset(p, 'p', sizeof p);
  n = userpass_msg(m, u, 255, p, 255);
  is_int(n, 513, "userpass: longest message is 513 bytes");
  feed_ok("userpass: 255/255", p_userpass, m, n, &up, sizeof up);
  is_int(strlen(up.user), 255, "userpass: user 255 bytes");
  is_int(strlen(up.pass), 255, "userpass: pass 255 bytes");
  ok(up.user[0] == 'u' && up.pass[254] == 'p', "userpass: bytes copied");

  n = userpass_msg(m, "", 0, "", 0);
  feed_ok("userpass: empty user and pass", p_userpass, m, n, &up, sizeof up);
  is_str(up.user, "", "userpass: empty user");
  is_str(up.pass, "", "userpass: empty pass");

  n = userpass_msg(m, "bob", 3, "pw", 2);
  m[n] = 0x05; /* the request follows */
  is_int(socks5_parse_userpass(m, n + 1, &up), (int)n,
         "userpass: trailing bytes not consumed");

  n = userpass_msg(m, "bob", 3, "pw", 2);
  m[0] = 5; /* a client that sent the SOCKS version byte */
  feed_err("userpass: version 5 refused", p_userpass, m, n, &up, sizeof up,
           SOCKS5_E_VERSION, 1);

  n = userpass_msg(m, "b\0b", 3, "pw", 2);
  feed_err("userpass: NUL in user", p_userpass, m, n, &up, sizeof up,
           SOCKS5_E_FORMAT, 4);
  n = userpass_msg(m, "bob", 3, "p\0w", 3);
  feed_err("userpass: NUL in password", p_userpass, m, n, &up, sizeof up,
           SOCKS5_E_FORMAT, n);
}

static void test_request(void) {
  struct socks5_request r;

  static const uint8_t v4[] = {5, 1, 0, 1, 10, 0, 0, 2, 0x1f, 0xa4};
  feed_ok("request: CONNECT 10.0.0.2:8100", p_request, v4, sizeof v4, &r,
          sizeof r);
  is_int(r.cmd, SOCKS5_CMD_CONNECT, "request: cmd CONNECT");
  is_int(r.atyp, SOCKS5_ATYP_IPV4, "request: atyp IPv4");
  is_int(r.ipv4, 0x0a000002, "request: IPv4 in host order");
  is_int(r.port, 8100, "request: port in host order");

  static const uint8_t dom[] = {5,   1,   0,   3,   11,  'e', 'x', 'a',  'm',
                                'p', 'l', 'e', '.', 'o', 'r', 'g', 0x01, 0xbb};
  feed_ok("request: example.org:443", p_request, dom, sizeof dom, &r, sizeof r);
  is_int(r.atyp, SOCKS5_ATYP_DOMAIN, "request: atyp domain");
  is_str(r.domain, "example.org", "request: domain");
  is_int(r.port, 443, "request: domain port");

  uint8_t longdom[4 + 1 + 255 + 2];
  memcpy(longdom, (const uint8_t[]){5, 1, 0, 3, 255}, 5);
  memset(longdom + 5, 'a', 255);
  longdom[260] = 0xff;
  longdom[261] = 0xfe;
  feed_ok("request: 255-byte domain", p_request, longdom, sizeof longdom, &r,
          sizeof r);
  is_int(strlen(r.domain), 255, "request: 255-byte domain copied");
  is_int(r.port, 0xfffe, "request: port 65534");

  static const uint8_t v6[] = {5, 1, 0, 4, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0,
                               0, 0, 0, 0, 0,    0,    0,    0,    1, 0, 80};
  feed_ok("request: [2001:db8::1]:80", p_request, v6, sizeof v6, &r, sizeof r);
  is_int(r.atyp, SOCKS5_ATYP_IPV6, "request: atyp IPv6");
  ok(memcmp(r.ipv6, v6 + 4, 16) == 0, "request: IPv6 bytes");
  is_int(r.port, 80, "request: IPv6 port");

  static const uint8_t bind[] = {5, 2, 0, 1, 0, 0, 0, 0, 0, 0};
  is_int(socks5_parse_request(bind, sizeof bind, &r), 10, "request: BIND");
  is_int(r.cmd, SOCKS5_CMD_BIND, "request: cmd BIND kept for the server");
  static const uint8_t udp[] = {5, 3, 0, 1, 0, 0, 0, 0, 0, 0};
  is_int(socks5_parse_request(udp, sizeof udp, &r), 10,
         "request: UDP ASSOCIATE");
  is_int(r.cmd, SOCKS5_CMD_UDP, "request: cmd UDP kept for the server");
  static const uint8_t odd[] = {5, 9, 0, 1, 0, 0, 0, 0, 0, 0};
  is_int(socks5_parse_request(odd, sizeof odd, &r), 10,
         "request: unknown command parsed");
  is_int(r.cmd, 9, "request: unknown command kept (server replies 0x07)");

  static const uint8_t piped[] = {5, 1, 0, 1, 10, 0, 0, 2, 0, 22, 'S', 'S'};
  is_int(socks5_parse_request(piped, sizeof piped, &r), 10,
         "request: early data not consumed");

  /* Errors. */
  static const uint8_t ver[] = {4, 1, 0, 1, 10, 0, 0, 2, 0, 22};
  feed_err("request: version 4", p_request, ver, sizeof ver, &r, sizeof r,
           SOCKS5_E_VERSION, 1);
  static const uint8_t rsv[] = {5, 1, 1, 1, 10, 0, 0, 2, 0, 22};
  feed_err("request: RSV 1", p_request, rsv, sizeof rsv, &r, sizeof r,
           SOCKS5_E_FORMAT, 3);
  static const uint8_t atyp2[] = {5, 1, 0, 2, 10, 0, 0, 2, 0, 22};
  feed_err("request: ATYP 2", p_request, atyp2, sizeof atyp2, &r, sizeof r,
           SOCKS5_E_ATYP, 4);
  static const uint8_t atyp0[] = {5, 1, 0, 0};
  feed_err("request: ATYP 0", p_request, atyp0, sizeof atyp0, &r, sizeof r,
           SOCKS5_E_ATYP, 4);
  static const uint8_t empty[] = {5, 1, 0, 3, 0, 0, 80};
  feed_err("request: empty domain", p_request, empty, sizeof empty, &r,
           sizeof r, SOCKS5_E_FORMAT, 5);
  static const uint8_t nul[] = {5, 1, 0, 3, 3, 'a', 0, 'b', 0, 80};
  feed_err("request: NUL in domain", p_request, nul, sizeof nul, &r, sizeof r,
           SOCKS5_E_FORMAT, sizeof nul);
}

static void test_encoders(void) {
  uint8_t out[16];
  memset(out, 0xEE, sizeof out);

  is_int(socks5_write_method(out, SOCKS5_AUTH_NONE), 2, "method: 2 bytes");
  ok(memcmp(out, (const uint8_t[]){5, 0, 0xEE}, 3) == 0,
     "method: 05 00, nothing more written");
  socks5_write_method(out, SOCKS5_AUTH_NO_ACCEPTABLE);
  ok(memcmp(out, (const uint8_t[]){5, 0xff}, 2) == 0, "method: 05 ff");
  socks5_write_method(out, SOCKS5_AUTH_USERPASS);
  ok(memcmp(out, (const uint8_t[]){5, 2}, 2) == 0, "method: 05 02");

  is_int(socks5_write_auth_status(out, 1), 2, "auth status: 2 bytes");
  ok(memcmp(out, (const uint8_t[]){1, 0}, 2) == 0, "auth status ok: 01 00");
  socks5_write_auth_status(out, 0);
  ok(memcmp(out, (const uint8_t[]){1, 1}, 2) == 0, "auth status bad: 01 01");

  memset(out, 0xEE, sizeof out);
  is_int(socks5_write_reply(out, 0x00, 0x0a000001, 8100), 10,
         "reply: 10 bytes");
  ok(memcmp(out, (const uint8_t[]){5, 0, 0, 1, 10, 0, 0, 1, 0x1f, 0xa4, 0xEE},
            11) == 0,
     "reply: 05 00 00 01 0a 00 00 01 1f a4, nothing more written");
  socks5_write_reply(out, 0x05, 0, 0);
  ok(memcmp(out, (const uint8_t[]){5, 5, 0, 1, 0, 0, 0, 0, 0, 0}, 10) == 0,
     "reply refused: 05 05 00 01 00 00 00 00 00 00");
  socks5_write_reply(out, 0x08, 0xc0a80102, 0xfffe);
  ok(memcmp(out, (const uint8_t[]){5, 8, 0, 1, 192, 168, 1, 2, 0xff, 0xfe},
            10) == 0,
     "reply 08 192.168.1.2:65534");

  /* A reply has the request's shape: parse it back. */
  struct socks5_request r;
  socks5_write_reply(out, 0x00, 0x7f000001, 1080);
  is_int(socks5_parse_request(out, 10, &r), 10, "reply parses as a request");
  ok(r.cmd == 0 && r.ipv4 == 0x7f000001 && r.port == 1080,
     "reply round trip: rep, address, port");
}

static void test_reply_str(void) {
  is_str(socks5_reply_str(0x00), "succeeded", "reply name 00");
  is_str(socks5_reply_str(0x04), "host unreachable", "reply name 04");
  is_str(socks5_reply_str(0x08), "address type not supported",
         "reply name 08, the last one RFC 1928 assigns");
  is_str(socks5_reply_str(0x09), "unassigned", "reply name 09");
  is_str(socks5_reply_str(0xff), "unassigned", "reply name ff");
}

int main(void) {
  test_greeting();
  test_userpass();
  test_request();
  test_reply_str();
  test_encoders();
  return tap_done();
}
