/*
 * libFuzzer target for the STUN / ChannelData codec (proto/stun.c,
 * compiled into this target so it is instrumented).
 *
 * The input is copied into a heap block of exactly its size so ASan sees
 * any over-read.  Checked invariants:
 * - stun_parse() returns 0 or -EBADMSG, and a parsed message lies within
 *   the input, with MESSAGE-INTEGRITY / FINGERPRINT offsets inside it;
 * - iteration ends, every attribute (header, value and padding) lies in
 *   the message, and each decoder returns 0 or a documented error;
 * - a decoded address re-encodes to the same value bytes (after the
 *   reserved first byte);
 * - verification returns only its documented results, and a message
 *   re-encoded from its attributes with integrity and fingerprint
 *   verifies;
 * - ChannelData decoding stays in bounds and re-encodes to the same
 *   header and payload.
 */
#include "proto/stun.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t key[] = "VOkJxbRl1RmTxUk/WvJxBt";

static void check_attr(const struct stun_msg *m, const struct stun_attr *a) {
  const uint8_t *end = m->buf + m->len;
  if (a->val < m->buf + STUN_HDR_LEN + 4 ||
      a->val + ((a->len + 3u) & ~3u) > end)
    abort();
  struct sockaddr_storage ss;
  socklen_t sl;
  uint32_t v;
  int code, rc;
  const uint8_t *reason;
  size_t rlen, n;
  uint16_t types[8], ch;
  char s[800];
  switch (a->type) {
  case STUN_A_MAPPED_ADDRESS:
  case STUN_A_XOR_MAPPED_ADDRESS:
  case STUN_A_XOR_PEER_ADDRESS:
  case STUN_A_XOR_RELAYED_ADDRESS:
  case STUN_A_OTHER_ADDRESS:
  case STUN_A_RESPONSE_ORIGIN:
  case STUN_A_ALTERNATE_SERVER: {
    int x = stun_attr_is_xor(a->type);
    rc = stun_attr_addr(m, a, x, &ss, &sl);
    if (rc == 0) {
      /* Re-encode into a message with the same transaction id. */
      uint8_t buf[64];
      struct stun_writer w;
      if (stun_enc_init(&w, buf, sizeof buf, 0x0101, m->tid) < 0)
        abort();
      rc = x ? stun_enc_xaddr(&w, a->type, (struct sockaddr *)&ss, sl)
             : stun_enc_addr(&w, a->type, (struct sockaddr *)&ss, sl);
      if (rc < 0 || buf[22] != 0 || buf[23] != a->len ||
          memcmp(buf + 25, a->val + 1, a->len - 1u) != 0)
        abort();
    } else if (rc != -EBADMSG && rc != -EAFNOSUPPORT) {
      abort();
    }
    break;
  }
  case STUN_A_LIFETIME:
  case STUN_A_CHANGE_REQUEST:
  case STUN_A_PRIORITY:
    rc = stun_attr_u32(a, &v);
    if (rc != 0 && rc != -EBADMSG)
      abort();
    break;
  case STUN_A_ERROR_CODE:
    rc = stun_attr_error(a, &code, &reason, &rlen);
    if (rc == 0 && (code < 300 || code > 699 || rlen + 4 != a->len))
      abort();
    if (rc != 0 && rc != -EBADMSG)
      abort();
    break;
  case STUN_A_UNKNOWN_ATTRIBUTES:
    rc = stun_attr_unknown(a, types, 8, &n);
    if (rc == 0 && n * 2 != a->len)
      abort();
    break;
  case STUN_A_CHANNEL_NUMBER:
    rc = stun_attr_channel(a, &ch);
    if (rc == 0 && (ch < STUN_CHAN_MIN || ch > STUN_CHAN_MAX))
      abort();
    break;
  case STUN_A_REALM:
  case STUN_A_NONCE:
  case STUN_A_USERNAME:
  case STUN_A_SOFTWARE:
    rc = stun_attr_str(a, s, sizeof s);
    if (rc == 0 && strlen(s) != a->len)
      abort();
    if (rc != 0 && rc != -EBADMSG && rc != -ENOSPC)
      abort();
    break;
  default:
    break;
  }
}

/* Re-encode m's attributes (up to integrity) with integrity and
 * fingerprint: the result must parse and verify. */
static void reencode(const struct stun_msg *m) {
  static uint8_t buf[STUN_MAX_MSG + 64];
  struct stun_writer w;
  struct stun_iter it;
  struct stun_attr a;
  if (stun_enc_init(&w, buf, sizeof buf, m->type, m->tid) < 0)
    abort();
  stun_iter_init(&it, m);
  while (stun_iter_next(&it, &a)) {
    if (a.type == STUN_A_MESSAGE_INTEGRITY || a.type == STUN_A_FINGERPRINT ||
        a.type == STUN_A_MESSAGE_INTEGRITY_SHA256)
      break;
    if (stun_enc_attr(&w, a.type, a.val, a.len) < 0)
      return; /* no room left for integrity + fingerprint: fine */
  }
  if (stun_enc_integrity(&w, key, sizeof key - 1) < 0 ||
      stun_enc_fingerprint(&w) < 0)
    return;
  struct stun_msg r;
  if (stun_parse(&r, buf, stun_enc_len(&w)) != 0 ||
      stun_check_fingerprint(&r) != 0 ||
      stun_check_integrity(&r, key, sizeof key - 1) != 0)
    abort();
}

static void fuzz_stun(const uint8_t *p, size_t size) {
  struct stun_msg m;
  int rc = stun_parse(&m, p, size);
  if (rc != 0) {
    if (rc != -EBADMSG)
      abort();
    return;
  }
  if (m.len > size || m.len < STUN_HDR_LEN || (m.len & 3) ||
      m.mi_off + (m.mi_off ? 24 : 0) > m.len ||
      m.fp_off + (m.fp_off ? 8 : 0) != (m.fp_off ? m.len : 0))
    abort();
  struct stun_iter it;
  struct stun_attr a;
  size_t count = 0;
  stun_iter_init(&it, &m);
  while (stun_iter_next(&it, &a)) {
    check_attr(&m, &a);
    if (++count > m.len / 4)
      abort(); /* iteration must progress */
  }
  rc = stun_check_fingerprint(&m);
  if (rc != 0 && rc != -ENOENT && rc != -EBADMSG)
    abort();
  rc = stun_check_integrity(&m, key, sizeof key - 1);
  if (rc != 0 && rc != -ENOENT && rc != -EACCES)
    abort();
  reencode(&m);
}

static void fuzz_chan(const uint8_t *p, size_t size) {
  uint16_t ch;
  const uint8_t *d;
  size_t n;
  if (stun_chan_decode(p, size, &ch, &d, &n) != 0)
    return;
  if (d != p + STUN_CHAN_HDR_LEN || n > size - STUN_CHAN_HDR_LEN)
    abort();
  uint8_t *buf = malloc(n + 8);
  if (!buf)
    abort();
  int r = stun_chan_encode(buf, n + 8, ch, d, n, 1);
  if (r < 0 || (size_t)r < n + 4 || memcmp(buf, p, 4) != 0 ||
      memcmp(buf + 4, d, n) != 0)
    abort();
  free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t *p = malloc(size ? size : 1);
  if (!p)
    return 0;
  if (size)
    memcpy(p, data, size);
  fuzz_stun(size ? p : NULL, size);
  fuzz_chan(size ? p : NULL, size);
  free(p);
  return 0;
}
