/*
 * STUN codec: the RFC 5769 test vectors (parsing, and encoding that
 * reproduces MESSAGE-INTEGRITY and FINGERPRINT byte for byte), TURN
 * attributes, ChannelData, and malformed input.
 */
#include "proto/stun.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"

/* RFC 5769 2.1: request with short-term credentials. */
static const uint8_t req[] = {
    0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01,
    0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x10,
    0x53, 0x54, 0x55, 0x4e, 0x20, 0x74, 0x65, 0x73, 0x74, 0x20, 0x63, 0x6c,
    0x69, 0x65, 0x6e, 0x74, 0x00, 0x24, 0x00, 0x04, 0x6e, 0x00, 0x01, 0xff,
    0x80, 0x29, 0x00, 0x08, 0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36,
    0x00, 0x06, 0x00, 0x09, 0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68, 0x36, 0x76,
    0x59, 0x20, 0x20, 0x20, 0x00, 0x08, 0x00, 0x14, 0x9a, 0xea, 0xa7, 0x0c,
    0xbf, 0xd8, 0xcb, 0x56, 0x78, 0x1e, 0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49,
    0xc1, 0xb5, 0x71, 0xa2, 0x80, 0x28, 0x00, 0x04, 0xe5, 0x7a, 0x3b, 0xcf};

/* RFC 5769 2.2: IPv4 response. */
static const uint8_t resp4[] = {
    0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01,
    0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b,
    0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20,
    0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43,
    0x00, 0x08, 0x00, 0x14, 0x2b, 0x91, 0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3,
    0x8c, 0x74, 0x89, 0xf9, 0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7,
    0x80, 0x28, 0x00, 0x04, 0xc0, 0x7d, 0x4c, 0x96};

/* RFC 5769 2.3: IPv6 response. */
static const uint8_t resp6[] = {
    0x01, 0x01, 0x00, 0x48, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01,
    0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b,
    0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20,
    0x00, 0x20, 0x00, 0x14, 0x00, 0x02, 0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa,
    0xa5, 0xd3, 0xf1, 0x79, 0xbc, 0x25, 0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9,
    0x00, 0x08, 0x00, 0x14, 0xa3, 0x82, 0x95, 0x4e, 0x4b, 0xe6, 0x7b, 0xf1,
    0x17, 0x84, 0xc9, 0x7c, 0x82, 0x92, 0xc2, 0x75, 0xbf, 0xe3, 0xed, 0x41,
    0x80, 0x28, 0x00, 0x04, 0xc8, 0xfb, 0x0b, 0x4c};

/* RFC 5769 2.4: request with long-term credentials. */
static const uint8_t reqlt[] = {
    0x00, 0x01, 0x00, 0x60, 0x21, 0x12, 0xa4, 0x42, 0x78, 0xad, 0x34, 0x33,
    0xc6, 0xad, 0x72, 0xc0, 0x29, 0xda, 0x41, 0x2e, 0x00, 0x06, 0x00, 0x12,
    0xe3, 0x83, 0x9e, 0xe3, 0x83, 0x88, 0xe3, 0x83, 0xaa, 0xe3, 0x83, 0x83,
    0xe3, 0x82, 0xaf, 0xe3, 0x82, 0xb9, 0x00, 0x00, 0x00, 0x15, 0x00, 0x1c,
    0x66, 0x2f, 0x2f, 0x34, 0x39, 0x39, 0x6b, 0x39, 0x35, 0x34, 0x64, 0x36,
    0x4f, 0x4c, 0x33, 0x34, 0x6f, 0x4c, 0x39, 0x46, 0x53, 0x54, 0x76, 0x79,
    0x36, 0x34, 0x73, 0x41, 0x00, 0x14, 0x00, 0x0b, 0x65, 0x78, 0x61, 0x6d,
    0x70, 0x6c, 0x65, 0x2e, 0x6f, 0x72, 0x67, 0x00, 0x00, 0x08, 0x00, 0x14,
    0xf6, 0x70, 0x24, 0x65, 0x6d, 0xd6, 0x4a, 0x3e, 0x02, 0xb8, 0xe0, 0x71,
    0x2e, 0x85, 0xc9, 0xa2, 0x8c, 0xa8, 0x96, 0x66};

static const char short_pass[] = "VOkJxbRl1RmTxUk/WvJxBt";
/* "matrix" in katakana, UTF-8 */
static const char lt_user[] =
    "\xe3\x83\x9e\xe3\x83\x88\xe3\x83\xaa\xe3\x83\x83\xe3\x82\xaf\xe3\x82\xb9";
/* The RFC's password after SASLprep ("The\u00adM\u00aatr\u2168x"). */
static const char lt_pass[] = "TheMatrIX";

static const uint8_t *key_s = (const uint8_t *)short_pass;
#define KEY_S_LEN (sizeof short_pass - 1)

static void sa4(struct sockaddr_storage *ss, const char *ip, uint16_t port) {
  struct sockaddr_in *in = (struct sockaddr_in *)ss;
  memset(ss, 0, sizeof *ss);
  in->sin_family = AF_INET;
  in->sin_port = htons(port);
  inet_pton(AF_INET, ip, &in->sin_addr);
}

static void sa6(struct sockaddr_storage *ss, const char *ip, uint16_t port) {
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
  memset(ss, 0, sizeof *ss);
  in6->sin6_family = AF_INET6;
  in6->sin6_port = htons(port);
  inet_pton(AF_INET6, ip, &in6->sin6_addr);
}

static int same_addr(const struct sockaddr_storage *a,
                     const struct sockaddr_storage *b) {
  if (a->ss_family != b->ss_family)
    return 0;
  if (a->ss_family == AF_INET) {
    const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
    return x->sin_port == y->sin_port &&
           x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
  return x->sin6_port == y->sin6_port &&
         memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
}

/* A copy in a heap block of exactly n bytes, so ASan sees over-reads. */
static uint8_t *dup_exact(const uint8_t *p, size_t n) {
  uint8_t *q = malloc(n ? n : 1);
  if (!q)
    abort();
  memcpy(q, p, n);
  return q;
}

static void test_request(void) {
  struct stun_msg m;
  struct stun_attr a;
  char s[64];
  is_int(stun_parse(&m, req, sizeof req), 0, "2.1 parses");
  is_int(m.type, stun_type(STUN_BINDING, STUN_REQUEST), "2.1 Binding request");
  is_int(m.len, sizeof req, "2.1 length");
  ok(memcmp(m.tid, req + 8, 12) == 0, "2.1 transaction id");
  is_int(stun_check_fingerprint(&m), 0, "2.1 fingerprint verifies");
  is_int(stun_check_integrity(&m, key_s, KEY_S_LEN), 0,
         "2.1 integrity verifies with the short-term password");
  is_int(stun_check_integrity(&m, (const uint8_t *)"wrong", 5), -EACCES,
         "2.1 integrity fails with another password");
  ok(stun_find(&m, STUN_A_USERNAME, &a) == 0 &&
         stun_attr_str(&a, s, sizeof s) == 0,
     "2.1 USERNAME found");
  is_str(s, "evtj:h6vY", "2.1 USERNAME value");
  ok(stun_find(&m, STUN_A_SOFTWARE, &a) == 0 &&
         stun_attr_str(&a, s, sizeof s) == 0,
     "2.1 SOFTWARE found");
  is_str(s, "STUN test client", "2.1 SOFTWARE value");
  uint32_t prio = 0;
  ok(stun_find(&m, STUN_A_PRIORITY, &a) == 0 && stun_attr_u32(&a, &prio) == 0 &&
         prio == 0x6e0001ff,
     "2.1 PRIORITY");
  is_int(stun_attr_str(&a, s, 4), -ENOSPC, "a string longer than the buffer");

  /* Encode the same request; the vector pads USERNAME with spaces. */
  uint8_t buf[256];
  struct stun_writer w;
  static const uint8_t tie[] = {0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36};
  int rc = stun_enc_init(&w, buf, sizeof buf, m.type, req + 8);
  rc |= stun_enc_str(&w, STUN_A_SOFTWARE, "STUN test client");
  rc |= stun_enc_u32(&w, STUN_A_PRIORITY, 0x6e0001ff);
  rc |= stun_enc_attr(&w, STUN_A_ICE_CONTROLLED, tie, sizeof tie);
  rc |= stun_enc_str(&w, STUN_A_USERNAME, "evtj:h6vY");
  memset(buf + stun_enc_len(&w) - 3, ' ', 3);
  rc |= stun_enc_integrity(&w, key_s, KEY_S_LEN);
  rc |= stun_enc_fingerprint(&w);
  is_int(rc, 0, "2.1 encodes");
  ok(stun_enc_len(&w) == sizeof req && memcmp(buf, req, sizeof req) == 0,
     "2.1 encoding reproduces the vector (integrity and fingerprint)");
  is_int(stun_enc_u32(&w, STUN_A_LIFETIME, 1), -EINVAL,
         "nothing may follow FINGERPRINT");
}

static void test_response(const uint8_t *vec, size_t vlen, int v6) {
  const char *n = v6 ? "2.3" : "2.2";
  struct stun_msg m;
  struct sockaddr_storage got, want;
  socklen_t gotlen = 0;
  if (v6)
    sa6(&want, "2001:db8:1234:5678:11:2233:4455:6677", 32853);
  else
    sa4(&want, "192.0.2.1", 32853);
  is_int(stun_parse(&m, vec, vlen), 0, n);
  is_int(m.type, stun_type(STUN_BINDING, STUN_SUCCESS), "success response");
  is_int(stun_check_fingerprint(&m), 0, "fingerprint verifies");
  is_int(stun_check_integrity(&m, key_s, KEY_S_LEN), 0, "integrity verifies");
  is_int(stun_mapped_addr(&m, &got, &gotlen), 0, "mapped address decodes");
  ok(same_addr(&got, &want), "%s mapped address is the RFC's", n);
  is_int(gotlen, v6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in),
         "address length");

  uint8_t buf[256];
  struct stun_writer w;
  int rc = stun_enc_init(&w, buf, sizeof buf, m.type, vec + 8);
  rc |= stun_enc_str(&w, STUN_A_SOFTWARE, "test vector");
  buf[stun_enc_len(&w) - 1] = ' '; /* the vector pads with a space */
  rc |= stun_enc_xaddr(&w, STUN_A_XOR_MAPPED_ADDRESS, (struct sockaddr *)&want,
                       sizeof want);
  rc |= stun_enc_integrity(&w, key_s, KEY_S_LEN);
  rc |= stun_enc_fingerprint(&w);
  is_int(rc, 0, "encodes");
  ok(stun_enc_len(&w) == vlen && memcmp(buf, vec, vlen) == 0,
     "%s encoding reproduces the vector", n);
}

static void test_long_term(void) {
  struct stun_msg m;
  struct stun_attr a;
  uint8_t key[STUN_LT_KEY_LEN];
  char s[128];
  is_int(stun_long_term_key(lt_user, "example.org", lt_pass, key), 0,
         "long-term key");
  is_int(stun_parse(&m, reqlt, sizeof reqlt), 0, "2.4 parses");
  is_int(stun_check_fingerprint(&m), -ENOENT, "2.4 has no fingerprint");
  is_int(stun_check_integrity(&m, key, sizeof key), 0,
         "2.4 integrity verifies with the long-term key");
  ok(stun_find(&m, STUN_A_NONCE, &a) == 0 &&
         stun_attr_str(&a, s, sizeof s) == 0,
     "2.4 NONCE");
  is_str(s, "f//499k954d6OL34oL9FSTvy64sA", "2.4 NONCE value");
  ok(stun_find(&m, STUN_A_REALM, &a) == 0 &&
         stun_attr_str(&a, s, sizeof s) == 0,
     "2.4 REALM");
  is_str(s, "example.org", "2.4 REALM value");

  uint8_t buf[256];
  struct stun_writer w;
  int rc = stun_enc_init(&w, buf, sizeof buf, m.type, reqlt + 8);
  rc |= stun_enc_str(&w, STUN_A_USERNAME, lt_user);
  rc |= stun_enc_str(&w, STUN_A_NONCE, "f//499k954d6OL34oL9FSTvy64sA");
  rc |= stun_enc_str(&w, STUN_A_REALM, "example.org");
  rc |= stun_enc_integrity(&w, key, sizeof key);
  is_int(rc, 0, "2.4 encodes");
  ok(stun_enc_len(&w) == sizeof reqlt && memcmp(buf, reqlt, sizeof reqlt) == 0,
     "2.4 encoding reproduces the vector");
}

static void test_types(void) {
  is_int(stun_type(STUN_BINDING, STUN_REQUEST), 0x0001, "Binding request");
  is_int(stun_type(STUN_BINDING, STUN_SUCCESS), 0x0101, "Binding success");
  is_int(stun_type(STUN_BINDING, STUN_ERROR), 0x0111, "Binding error");
  is_int(stun_type(STUN_ALLOCATE, STUN_REQUEST), 0x0003, "Allocate request");
  is_int(stun_type(STUN_ALLOCATE, STUN_ERROR), 0x0113, "Allocate error");
  is_int(stun_type(STUN_SEND, STUN_INDICATION), 0x0016, "Send indication");
  is_int(stun_type(STUN_DATA, STUN_INDICATION), 0x0017, "Data indication");
  is_int(stun_type(STUN_CHANNEL_BIND, STUN_SUCCESS), 0x0109,
         "ChannelBind success");
  ok(stun_type_method(stun_type(0xabc, STUN_ERROR)) == 0xabc &&
         stun_type_class(stun_type(0xabc, STUN_ERROR)) == STUN_ERROR,
     "method and class round-trip through the type");
}

static void test_turn_attrs(void) {
  uint8_t buf[512];
  uint8_t tid[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  struct stun_writer w;
  struct sockaddr_storage peer, relayed, other, got;
  socklen_t gl;
  sa4(&peer, "198.51.100.7", 40000);
  sa6(&relayed, "2001:db8::1", 50000);
  sa4(&other, "203.0.113.2", 3479);
  static const uint8_t payload[] = "quic bytes";
  uint8_t unk[4] = {0x00, 0x1a, 0x80, 0x99};
  int rc = stun_enc_init(&w, buf, sizeof buf,
                         stun_type(STUN_ALLOCATE, STUN_ERROR), tid);
  rc |= stun_enc_error(&w, 438, "Stale Nonce");
  rc |= stun_enc_attr(&w, STUN_A_UNKNOWN_ATTRIBUTES, unk, sizeof unk);
  rc |= stun_enc_xaddr(&w, STUN_A_XOR_PEER_ADDRESS, (struct sockaddr *)&peer,
                       sizeof(struct sockaddr_in));
  rc |=
      stun_enc_xaddr(&w, STUN_A_XOR_RELAYED_ADDRESS,
                     (struct sockaddr *)&relayed, sizeof(struct sockaddr_in6));
  rc |= stun_enc_addr(&w, STUN_A_OTHER_ADDRESS, (struct sockaddr *)&other,
                      sizeof(struct sockaddr_in));
  rc |= stun_enc_u32(&w, STUN_A_LIFETIME, 600);
  rc |= stun_enc_u32(&w, STUN_A_CHANNEL_NUMBER, 0x4001u << 16);
  rc |= stun_enc_u32(&w, STUN_A_CHANGE_REQUEST,
                     STUN_CHANGE_IP | STUN_CHANGE_PORT);
  rc |= stun_enc_attr(&w, STUN_A_DATA, payload, sizeof payload - 1);
  rc |= stun_enc_fingerprint(&w);
  is_int(rc, 0, "TURN attributes encode");

  struct stun_msg m;
  struct stun_attr a;
  is_int(stun_parse(&m, buf, stun_enc_len(&w)), 0, "and parse");
  is_int(stun_check_fingerprint(&m), 0, "fingerprint of an encoded message");
  is_int(stun_check_integrity(&m, key_s, KEY_S_LEN), -ENOENT,
         "no integrity attribute");
  int code = 0;
  const uint8_t *reason;
  size_t rlen;
  ok(stun_find(&m, STUN_A_ERROR_CODE, &a) == 0 &&
         stun_attr_error(&a, &code, &reason, &rlen) == 0 && code == 438 &&
         rlen == 11 && memcmp(reason, "Stale Nonce", 11) == 0,
     "ERROR-CODE 438 Stale Nonce");
  uint16_t types[4];
  size_t nt = 0;
  ok(stun_find(&m, STUN_A_UNKNOWN_ATTRIBUTES, &a) == 0 &&
         stun_attr_unknown(&a, types, 4, &nt) == 0 && nt == 2 &&
         types[0] == 0x001a && types[1] == 0x8099,
     "UNKNOWN-ATTRIBUTES");
  ok(stun_find(&m, STUN_A_XOR_PEER_ADDRESS, &a) == 0 &&
         stun_attr_addr(&m, &a, stun_attr_is_xor(a.type), &got, &gl) == 0 &&
         same_addr(&got, &peer),
     "XOR-PEER-ADDRESS (IPv4)");
  ok(stun_find(&m, STUN_A_XOR_RELAYED_ADDRESS, &a) == 0 &&
         stun_attr_addr(&m, &a, 1, &got, &gl) == 0 && same_addr(&got, &relayed),
     "XOR-RELAYED-ADDRESS (IPv6, XOR with the transaction id)");
  ok(stun_find(&m, STUN_A_OTHER_ADDRESS, &a) == 0 &&
         !stun_attr_is_xor(a.type) &&
         stun_attr_addr(&m, &a, 0, &got, &gl) == 0 && same_addr(&got, &other),
     "OTHER-ADDRESS (plain)");
  uint32_t v = 0;
  ok(stun_find(&m, STUN_A_LIFETIME, &a) == 0 && stun_attr_u32(&a, &v) == 0 &&
         v == 600,
     "LIFETIME");
  uint16_t ch = 0;
  ok(stun_find(&m, STUN_A_CHANNEL_NUMBER, &a) == 0 &&
         stun_attr_channel(&a, &ch) == 0 && ch == 0x4001,
     "CHANNEL-NUMBER");
  ok(stun_find(&m, STUN_A_CHANGE_REQUEST, &a) == 0 &&
         stun_attr_u32(&a, &v) == 0 && v == 6,
     "CHANGE-REQUEST change-IP and change-port");
  ok(stun_find(&m, STUN_A_DATA, &a) == 0 && a.len == sizeof payload - 1 &&
         memcmp(a.val, payload, a.len) == 0,
     "DATA");
  is_int(stun_mapped_addr(&m, &got, &gl), -ENOENT, "no mapped address");
  is_int(stun_find(&m, STUN_A_NONCE, &a), -ENOENT, "absent attribute");
  is_int(stun_enc_error(&w, 700, NULL), -EINVAL, "error code out of range");

  /* MAPPED-ADDRESS fallback for servers that send only that. */
  stun_enc_init(&w, buf, sizeof buf, stun_type(STUN_BINDING, STUN_SUCCESS),
                tid);
  stun_enc_addr(&w, STUN_A_MAPPED_ADDRESS, (struct sockaddr *)&peer,
                sizeof(struct sockaddr_in));
  ok(stun_parse(&m, buf, stun_enc_len(&w)) == 0 &&
         stun_mapped_addr(&m, &got, &gl) == 0 && same_addr(&got, &peer),
     "MAPPED-ADDRESS when XOR-MAPPED-ADDRESS is absent");
}

static void test_bounds(void) {
  uint8_t buf[64];
  uint8_t tid[12] = {0};
  struct stun_writer w;
  is_int(stun_enc_init(&w, buf, 19, 0x0001, tid), -ENOSPC, "header needs 20");
  is_int(stun_enc_init(&w, buf, 20, 0xc001, tid), -EINVAL,
         "type with the top bits set");
  is_int(stun_enc_init(&w, buf, 28, 0x0001, tid), 0, "init in 28 bytes");
  is_int(stun_enc_str(&w, STUN_A_SOFTWARE, "12345"), -ENOSPC,
         "5-byte value needs 12 bytes with header and padding");
  is_int(stun_enc_len(&w), 20, "a failed add leaves the message alone");
  is_int(stun_enc_integrity(&w, key_s, KEY_S_LEN), -ENOSPC,
         "integrity needs 24 bytes");
  is_int(stun_enc_str(&w, STUN_A_SOFTWARE, "1234"), 0, "8 bytes fit");
  is_int(stun_enc_fingerprint(&w), -ENOSPC, "fingerprint does not fit");
  ok(buf[2] == 0 && buf[3] == 8, "length field counts the attribute");
  struct sockaddr_storage un = {.ss_family = AF_UNIX};
  stun_enc_init(&w, buf, sizeof buf, 0x0001, tid);
  is_int(stun_enc_xaddr(&w, STUN_A_XOR_MAPPED_ADDRESS, (struct sockaddr *)&un,
                        sizeof un),
         -EAFNOSUPPORT, "no AF_UNIX addresses");
}

/* Write a message with one attribute of TYPE and value length VLEN
 * (value zeroed) into buf; returns its length. */
static size_t one_attr(uint8_t *buf, size_t cap, uint16_t type, size_t vlen) {
  uint8_t tid[12] = {7};
  uint8_t val[64] = {0};
  struct stun_writer w;
  stun_enc_init(&w, buf, cap, 0x0101, tid);
  stun_enc_attr(&w, type, val, vlen);
  return stun_enc_len(&w);
}

static void test_malformed(void) {
  struct stun_msg m;
  struct stun_attr a;
  uint8_t b[256];
  struct sockaddr_storage ss;
  socklen_t sl;

  int all_fail = 1;
  for (size_t n = 0; n < sizeof req; n++) {
    uint8_t *p = dup_exact(req, n);
    if (stun_parse(&m, p, n) != -EBADMSG)
      all_fail = 0;
    free(p);
  }
  ok(all_fail, "every truncation of 2.1 is refused");
  memcpy(b, req, sizeof req);
  b[sizeof req] = 0xee;
  ok(stun_parse(&m, b, sizeof req + 1) == 0 && m.len == sizeof req,
     "bytes after the message are not part of it");

  memcpy(b, req, sizeof req);
  b[4] ^= 1;
  is_int(stun_parse(&m, b, sizeof req), -EBADMSG, "bad magic cookie");
  memcpy(b, req, sizeof req);
  b[0] |= 0x80;
  is_int(stun_parse(&m, b, sizeof req), -EBADMSG, "first bits not zero");
  memcpy(b, req, sizeof req);
  b[3] = 0x56; /* 86: not a multiple of 4 */
  is_int(stun_parse(&m, b, sizeof req), -EBADMSG, "length not a multiple of 4");
  memcpy(b, req, sizeof req);
  b[23] = 0x60; /* SOFTWARE claims 96 bytes */
  is_int(stun_parse(&m, b, sizeof req), -EBADMSG,
         "attribute longer than the message");
  memcpy(b, req, sizeof req);
  b[3] = 0x54; /* message ends inside FINGERPRINT's header */
  is_int(stun_parse(&m, b, sizeof req), -EBADMSG, "attribute header cut off");

  memcpy(b, req, sizeof req);
  b[30] ^= 0x20; /* SOFTWARE text changed */
  is_int(stun_parse(&m, b, sizeof req), 0, "altered message still parses");
  is_int(stun_check_fingerprint(&m), -EBADMSG, "bad fingerprint");
  is_int(stun_check_integrity(&m, key_s, KEY_S_LEN), -EACCES, "bad integrity");
  memcpy(b, req, sizeof req);
  b[sizeof req - 1] ^= 1;
  ok(stun_parse(&m, b, sizeof req) == 0 &&
         stun_check_fingerprint(&m) == -EBADMSG &&
         stun_check_integrity(&m, key_s, KEY_S_LEN) == 0,
     "wrong fingerprint value; integrity (before it) unaffected");

  /* FINGERPRINT not last. */
  {
    uint8_t tid[12] = {0};
    struct stun_writer w;
    stun_enc_init(&w, b, sizeof b, 0x0001, tid);
    stun_enc_fingerprint(&w);
    w.sealed = 0; /* force an attribute after it */
    stun_enc_u32(&w, STUN_A_PRIORITY, 1);
    is_int(stun_parse(&m, b, stun_enc_len(&w)), -EBADMSG,
           "attribute after FINGERPRINT");
  }
  size_t n = one_attr(b, sizeof b, STUN_A_MESSAGE_INTEGRITY, 16);
  is_int(stun_parse(&m, b, n), -EBADMSG, "MESSAGE-INTEGRITY of 16 bytes");
  n = one_attr(b, sizeof b, STUN_A_FINGERPRINT, 8);
  is_int(stun_parse(&m, b, n), -EBADMSG, "FINGERPRINT of 8 bytes");

  n = one_attr(b, sizeof b, STUN_A_XOR_MAPPED_ADDRESS, 7);
  b[25] = 1; /* IPv4 */
  ok(stun_parse(&m, b, n) == 0 && stun_mapped_addr(&m, &ss, &sl) == -EBADMSG,
     "XOR-MAPPED-ADDRESS of 7 bytes");
  n = one_attr(b, sizeof b, STUN_A_XOR_MAPPED_ADDRESS, 2);
  ok(stun_parse(&m, b, n) == 0 && stun_mapped_addr(&m, &ss, &sl) == -EBADMSG,
     "XOR-MAPPED-ADDRESS of 2 bytes");
  n = one_attr(b, sizeof b, STUN_A_XOR_MAPPED_ADDRESS, 8);
  b[25] = 3;
  ok(stun_parse(&m, b, n) == 0 &&
         stun_mapped_addr(&m, &ss, &sl) == -EAFNOSUPPORT,
     "unknown address family");
  n = one_attr(b, sizeof b, STUN_A_XOR_MAPPED_ADDRESS, 20);
  b[25] = 1; /* IPv4 with an IPv6 length */
  ok(stun_parse(&m, b, n) == 0 && stun_mapped_addr(&m, &ss, &sl) == -EBADMSG,
     "IPv4 address of 20 bytes");
  int code;
  const uint8_t *r;
  size_t rl;
  n = one_attr(b, sizeof b, STUN_A_ERROR_CODE, 3);
  ok(stun_parse(&m, b, n) == 0 && stun_find(&m, STUN_A_ERROR_CODE, &a) == 0 &&
         stun_attr_error(&a, &code, &r, &rl) == -EBADMSG,
     "ERROR-CODE of 3 bytes");
  n = one_attr(b, sizeof b, STUN_A_ERROR_CODE, 4);
  b[26] = 2; /* class 2 */
  ok(stun_parse(&m, b, n) == 0 && stun_find(&m, STUN_A_ERROR_CODE, &a) == 0 &&
         stun_attr_error(&a, &code, &r, &rl) == -EBADMSG,
     "ERROR-CODE class 2");
  size_t nt;
  uint16_t t[2];
  n = one_attr(b, sizeof b, STUN_A_UNKNOWN_ATTRIBUTES, 3);
  ok(stun_parse(&m, b, n) == 0 &&
         stun_find(&m, STUN_A_UNKNOWN_ATTRIBUTES, &a) == 0 &&
         stun_attr_unknown(&a, t, 2, &nt) == -EBADMSG,
     "UNKNOWN-ATTRIBUTES of odd length");
  uint16_t ch;
  n = one_attr(b, sizeof b, STUN_A_CHANNEL_NUMBER, 4);
  ok(stun_parse(&m, b, n) == 0 &&
         stun_find(&m, STUN_A_CHANNEL_NUMBER, &a) == 0 &&
         stun_attr_channel(&a, &ch) == -EBADMSG,
     "CHANNEL-NUMBER 0");
  n = one_attr(b, sizeof b, STUN_A_NONCE, 5);
  char s[16];
  ok(stun_parse(&m, b, n) == 0 && stun_find(&m, STUN_A_NONCE, &a) == 0 &&
         stun_attr_str(&a, s, sizeof s) == -EBADMSG,
     "text attribute holding NUL");
}

static void test_after_integrity(void) {
  /* 2.1 without its FINGERPRINT, then an attribute after the
   * MESSAGE-INTEGRITY: it must be ignored, and integrity still holds
   * (the length field is patched for the check). */
  uint8_t b[256];
  size_t n = sizeof req - 8;
  memcpy(b, req, n);
  b[n++] = 0x80;
  b[n++] = 0x22;
  b[n++] = 0x00;
  b[n++] = 0x04;
  b[n++] = 'e';
  b[n++] = 'v';
  b[n++] = 'i';
  b[n++] = 'l';
  b[n++] = 0x00;
  b[n++] = 0x0d;
  b[n++] = 0x00;
  b[n++] = 0x04;
  b[n++] = 0;
  b[n++] = 0;
  b[n++] = 0;
  b[n++] = 9;
  b[2] = 0;
  b[3] = (uint8_t)(n - 20);
  struct stun_msg m;
  struct stun_attr a;
  is_int(stun_parse(&m, b, n), 0, "attributes after MESSAGE-INTEGRITY parse");
  is_int(stun_check_integrity(&m, key_s, KEY_S_LEN), 0,
         "integrity holds with attributes after it");
  char s[32];
  ok(stun_find(&m, STUN_A_SOFTWARE, &a) == 0 &&
         stun_attr_str(&a, s, sizeof s) == 0 &&
         strcmp(s, "STUN test client") == 0,
     "the SOFTWARE before integrity is the one found");
  is_int(stun_find(&m, STUN_A_LIFETIME, &a), -ENOENT,
         "LIFETIME after integrity is ignored");
  struct stun_iter it;
  int count = 0;
  stun_iter_init(&it, &m);
  while (stun_iter_next(&it, &a))
    count++;
  is_int(count, 5, "iteration sees the 5 attributes up to integrity");
}

static void test_channel_data(void) {
  uint8_t b[32];
  static const uint8_t d[5] = {1, 2, 3, 4, 5};
  uint16_t ch;
  const uint8_t *p;
  size_t n;
  is_int(stun_chan_encode(b, sizeof b, 0x4000, d, 5, 1), 12, "padded frame");
  ok(b[0] == 0x40 && b[1] == 0 && b[2] == 0 && b[3] == 5 && b[9] == 0 &&
         b[11] == 0,
     "header and zero padding");
  ok(stun_chan_looks_like(b, 12), "looks like ChannelData");
  ok(stun_chan_decode(b, 12, &ch, &p, &n) == 0 && ch == 0x4000 && n == 5 &&
         memcmp(p, d, 5) == 0,
     "decodes with padding");
  is_int(stun_chan_encode(b, sizeof b, 0x4fff, d, 5, 0), 9, "unpadded frame");
  ok(stun_chan_decode(b, 9, &ch, &p, &n) == 0 && ch == 0x4fff && n == 5,
     "decodes without padding");
  is_int(stun_chan_decode(b, 8, &ch, &p, &n), -EBADMSG, "truncated payload");
  is_int(stun_chan_decode(b, 3, &ch, &p, &n), -EBADMSG, "truncated header");
  is_int(stun_chan_encode(b, sizeof b, 0x5000, d, 5, 0), -EINVAL,
         "channel 0x5000 refused");
  is_int(stun_chan_encode(b, sizeof b, 0x3fff, d, 5, 0), -EINVAL,
         "channel 0x3fff refused");
  is_int(stun_chan_encode(b, 8, 0x4000, d, 5, 0), -ENOSPC, "no room");
  b[0] = 0x50;
  is_int(stun_chan_decode(b, 9, &ch, &p, &n), -EBADMSG,
         "reserved channel range");
  ok(!stun_looks_like(b, 9), "ChannelData is not STUN");
}

int main(void) {
  test_types();
  test_request();
  test_response(resp4, sizeof resp4, 0);
  test_response(resp6, sizeof resp6, 1);
  test_long_term();
  test_turn_attrs();
  test_bounds();
  test_malformed();
  test_after_integrity();
  test_channel_data();
  return tap_done();
}
