/*
 * STUN / TURN message codec: see stun.h.  Every read is preceded by a
 * length check against the bytes the caller gave; every write by a
 * check against the caller's capacity.
 */
#include "proto/stun.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

static uint16_t rd16(const uint8_t *p) {
  return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         p[3];
}

static void wr16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

static void wr32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static size_t pad4(size_t n) {
  return (n + 3) & ~(size_t)3;
}

/* CRC-32 (IEEE 802.3, reflected), a nibble at a time: a 16-entry table
 * is plenty for messages of a few hundred bytes. */
static uint32_t crc32(const uint8_t *p, size_t n) {
  static const uint32_t t[16] = {
      0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac, 0x76dc4190, 0x6b6b51f4,
      0x4db26158, 0x5005713c, 0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c,
      0x9b64c2b0, 0x86d3d2d4, 0xa00ae278, 0xbdbdf21c};
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    c = (c >> 4) ^ t[c & 15];
    c = (c >> 4) ^ t[c & 15];
  }
  return c ^ 0xffffffffu;
}

/* ------------------------------------------------------------------ */

uint16_t stun_type(uint16_t method, uint16_t cls) {
  /* Method bits M0-M3, M4-M6, M7-M11 around C0 (bit 4) and C1 (bit 8). */
  return (uint16_t)((method & 0x000f) | ((method & 0x0070) << 1) |
                    ((method & 0x0f80) << 2) | (cls & 0x0110));
}

uint16_t stun_type_method(uint16_t type) {
  return (uint16_t)((type & 0x000f) | ((type & 0x00e0) >> 1) |
                    ((type & 0x3e00) >> 2));
}

uint16_t stun_type_class(uint16_t type) {
  return type & 0x0110;
}

int stun_looks_like(const uint8_t *buf, size_t len) {
  return buf && len >= STUN_HDR_LEN && (buf[0] & 0xc0) == 0 &&
         (rd16(buf + 2) & 3) == 0 && rd32(buf + 4) == STUN_MAGIC;
}

/* ------------------------------------------------------------------ */
/* Encoder                                                              */

int stun_enc_init(struct stun_writer *w, uint8_t *buf, size_t cap,
                  uint16_t type, const uint8_t tid[STUN_TID_LEN]) {
  if (!w || !buf || !tid || (type & 0xc000))
    return -EINVAL;
  if (cap < STUN_HDR_LEN)
    return -ENOSPC;
  *w = (struct stun_writer){.buf = buf, .cap = cap, .len = STUN_HDR_LEN};
  wr16(buf, type);
  wr16(buf + 2, 0);
  wr32(buf + 4, STUN_MAGIC);
  memcpy(buf + 8, tid, STUN_TID_LEN);
  return 0;
}

size_t stun_enc_len(const struct stun_writer *w) {
  return w->len;
}

/* Room for an attribute of vlen value bytes?  Also keeps the message
 * within what the 16-bit length field can say. */
static int room(const struct stun_writer *w, size_t vlen) {
  if (w->sealed || vlen > 0xffff)
    return -EINVAL;
  size_t need = 4 + pad4(vlen);
  if (need > w->cap - w->len || w->len + need > STUN_MAX_MSG)
    return -ENOSPC;
  return 0;
}

/* Reserve an attribute header and padded value; returns its value. */
static uint8_t *put_hdr(struct stun_writer *w, uint16_t type, size_t vlen) {
  uint8_t *p = w->buf + w->len;
  wr16(p, type);
  wr16(p + 2, (uint16_t)vlen);
  memset(p + 4 + vlen, 0, pad4(vlen) - vlen);
  w->len += 4 + pad4(vlen);
  wr16(w->buf + 2, (uint16_t)(w->len - STUN_HDR_LEN));
  return p + 4;
}

int stun_enc_attr(struct stun_writer *w, uint16_t type, const void *val,
                  size_t len) {
  if (!w || (!val && len))
    return -EINVAL;
  int rc = room(w, len);
  if (rc < 0)
    return rc;
  uint8_t *v = put_hdr(w, type, len);
  if (len)
    memcpy(v, val, len);
  return 0;
}

int stun_enc_str(struct stun_writer *w, uint16_t type, const char *s) {
  if (!s)
    return -EINVAL;
  return stun_enc_attr(w, type, s, strlen(s));
}

int stun_enc_u32(struct stun_writer *w, uint16_t type, uint32_t v) {
  uint8_t b[4];
  wr32(b, v);
  return stun_enc_attr(w, type, b, sizeof b);
}

/* Family, port and address of sa into v (8 or 20 bytes); XORed when tid
 * is not NULL.  Returns the value length or a negative errno. */
static int addr_value(uint8_t v[20], const struct sockaddr *sa, socklen_t salen,
                      const uint8_t *tid) {
  uint8_t mask[16];
  wr32(mask, STUN_MAGIC);
  if (tid)
    memcpy(mask + 4, tid, STUN_TID_LEN);
  if (!sa)
    return -EINVAL;
  v[0] = 0;
  if (sa->sa_family == AF_INET) {
    if (salen < (socklen_t)sizeof(struct sockaddr_in))
      return -EINVAL;
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    v[1] = 0x01;
    memcpy(v + 2, &in->sin_port, 2); /* network order already */
    memcpy(v + 4, &in->sin_addr, 4);
    if (tid)
      for (int i = 0; i < 6; i++)
        v[2 + i] ^= mask[i < 2 ? i : i - 2];
    return 8;
  }
  if (sa->sa_family == AF_INET6) {
    if (salen < (socklen_t)sizeof(struct sockaddr_in6))
      return -EINVAL;
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    v[1] = 0x02;
    memcpy(v + 2, &in6->sin6_port, 2);
    memcpy(v + 4, &in6->sin6_addr, 16);
    if (tid) {
      v[2] ^= mask[0];
      v[3] ^= mask[1];
      for (int i = 0; i < 16; i++)
        v[4 + i] ^= mask[i];
    }
    return 20;
  }
  return -EAFNOSUPPORT;
}

int stun_enc_xaddr(struct stun_writer *w, uint16_t type,
                   const struct sockaddr *sa, socklen_t salen) {
  if (!w)
    return -EINVAL;
  uint8_t v[20];
  int n = addr_value(v, sa, salen, w->buf + 8);
  return n < 0 ? n : stun_enc_attr(w, type, v, (size_t)n);
}

int stun_enc_addr(struct stun_writer *w, uint16_t type,
                  const struct sockaddr *sa, socklen_t salen) {
  uint8_t v[20];
  int n = addr_value(v, sa, salen, NULL);
  return n < 0 ? n : stun_enc_attr(w, type, v, (size_t)n);
}

int stun_enc_error(struct stun_writer *w, int code, const char *reason) {
  /* 763 bytes is the RFC's limit for the reason phrase. */
  uint8_t v[4 + 763];
  size_t rlen = reason ? strlen(reason) : 0;
  if (code < 300 || code > 699 || rlen > 763)
    return -EINVAL;
  v[0] = v[1] = 0;
  v[2] = (uint8_t)(code / 100);
  v[3] = (uint8_t)(code % 100);
  if (rlen)
    memcpy(v + 4, reason, rlen);
  return stun_enc_attr(w, STUN_A_ERROR_CODE, v, 4 + rlen);
}

int stun_enc_integrity(struct stun_writer *w, const uint8_t *key,
                       size_t keylen) {
  if (!w || (!key && keylen))
    return -EINVAL;
  int rc = room(w, STUN_MI_LEN);
  if (rc < 0)
    return rc;
  /* The HMAC covers the message up to the attribute, with the length
   * field already counting it (RFC 8489 14.5). */
  size_t covered = w->len;
  wr16(w->buf + 2, (uint16_t)(covered + 4 + STUN_MI_LEN - STUN_HDR_LEN));
  uint8_t mac[STUN_MI_LEN];
  /* gnutls wants a non-NULL key even for an empty one. */
  static const uint8_t empty[1];
  if (gnutls_hmac_fast(GNUTLS_MAC_SHA1, key ? key : empty, keylen, w->buf,
                       covered, mac) < 0) {
    wr16(w->buf + 2, (uint16_t)(covered - STUN_HDR_LEN));
    return -EIO;
  }
  memcpy(put_hdr(w, STUN_A_MESSAGE_INTEGRITY, STUN_MI_LEN), mac, STUN_MI_LEN);
  return 0;
}

int stun_enc_fingerprint(struct stun_writer *w) {
  if (!w)
    return -EINVAL;
  int rc = room(w, 4);
  if (rc < 0)
    return rc;
  size_t covered = w->len;
  wr16(w->buf + 2, (uint16_t)(covered + 8 - STUN_HDR_LEN));
  uint32_t fp = crc32(w->buf, covered) ^ STUN_FP_XOR;
  wr32(put_hdr(w, STUN_A_FINGERPRINT, 4), fp);
  w->sealed = 1;
  return 0;
}

int stun_long_term_key(const char *user, const char *realm, const char *pass,
                       uint8_t out[STUN_LT_KEY_LEN]) {
  if (!user || !realm || !pass || !out)
    return -EINVAL;
  /* MD5 over three pieces; gnutls_hash_fast takes one buffer. */
  gnutls_hash_hd_t h;
  if (gnutls_hash_init(&h, GNUTLS_DIG_MD5) < 0)
    return -EIO;
  int bad = gnutls_hash(h, user, strlen(user)) < 0;
  bad |= gnutls_hash(h, ":", 1) < 0;
  bad |= gnutls_hash(h, realm, strlen(realm)) < 0;
  bad |= gnutls_hash(h, ":", 1) < 0;
  bad |= gnutls_hash(h, pass, strlen(pass)) < 0;
  gnutls_hash_deinit(h, out);
  return bad ? -EIO : 0;
}

/* ------------------------------------------------------------------ */
/* Parser                                                               */

int stun_parse(struct stun_msg *m, const uint8_t *buf, size_t len) {
  if (!m || (!buf && len))
    return -EINVAL;
  if (!stun_looks_like(buf, len))
    return -EBADMSG;
  size_t mlen = STUN_HDR_LEN + rd16(buf + 2);
  if (mlen > len)
    return -EBADMSG;
  struct stun_msg r = {
      .buf = buf, .len = mlen, .type = rd16(buf), .tid = buf + 8, .end = mlen};
  size_t off = STUN_HDR_LEN;
  while (off < mlen) {
    if (mlen - off < 4)
      return -EBADMSG;
    uint16_t type = rd16(buf + off);
    size_t vlen = rd16(buf + off + 2);
    /* The last attribute's padding must be inside the message too. */
    if (pad4(vlen) > mlen - off - 4)
      return -EBADMSG;
    if (r.fp_off)
      return -EBADMSG; /* FINGERPRINT must be last */
    if (type == STUN_A_FINGERPRINT) {
      if (vlen != 4)
        return -EBADMSG;
      r.fp_off = off;
    } else if (type == STUN_A_MESSAGE_INTEGRITY && !r.mi_off) {
      if (vlen != STUN_MI_LEN)
        return -EBADMSG;
      r.mi_off = off;
    }
    off += 4 + pad4(vlen);
  }
  *m = r;
  return 0;
}

void stun_iter_init(struct stun_iter *it, const struct stun_msg *m) {
  it->m = m;
  it->off = STUN_HDR_LEN;
}

/* After MESSAGE-INTEGRITY only these still count (RFC 8489 14.5). */
static int counts(const struct stun_msg *m, size_t off, uint16_t type) {
  return !m->mi_off || off <= m->mi_off ||
         type == STUN_A_MESSAGE_INTEGRITY_SHA256 || type == STUN_A_FINGERPRINT;
}

int stun_iter_next(struct stun_iter *it, struct stun_attr *a) {
  const struct stun_msg *m = it->m;
  /* stun_parse() checked every length, so these reads stay inside. */
  while (it->off + 4 <= m->end) {
    size_t off = it->off;
    uint16_t type = rd16(m->buf + off);
    uint16_t vlen = rd16(m->buf + off + 2);
    it->off += 4 + pad4(vlen);
    if (!counts(m, off, type))
      continue;
    *a = (struct stun_attr){.type = type, .len = vlen, .val = m->buf + off + 4};
    return 1;
  }
  return 0;
}

int stun_find(const struct stun_msg *m, uint16_t type, struct stun_attr *a) {
  struct stun_iter it;
  struct stun_attr x;
  stun_iter_init(&it, m);
  while (stun_iter_next(&it, &x))
    if (x.type == type) {
      *a = x;
      return 0;
    }
  return -ENOENT;
}

int stun_attr_is_xor(uint16_t type) {
  return type == STUN_A_XOR_MAPPED_ADDRESS || type == STUN_A_XOR_PEER_ADDRESS ||
         type == STUN_A_XOR_RELAYED_ADDRESS;
}

int stun_attr_addr(const struct stun_msg *m, const struct stun_attr *a, int xor,
                   struct sockaddr_storage *out, socklen_t *outlen) {
  if (a->len < 4)
    return -EBADMSG;
  uint8_t mask[16];
  wr32(mask, STUN_MAGIC);
  memcpy(mask + 4, m->tid, STUN_TID_LEN);
  uint8_t port[2] = {a->val[2], a->val[3]};
  if (xor) {
    port[0] ^= mask[0];
    port[1] ^= mask[1];
  }
  memset(out, 0, sizeof *out);
  if (a->val[1] == 0x01) {
    if (a->len != 8)
      return -EBADMSG;
    struct sockaddr_in *in = (struct sockaddr_in *)out;
    uint8_t ip[4];
    for (int i = 0; i < 4; i++)
      ip[i] = a->val[4 + i] ^ (xor? mask[i] : 0);
    in->sin_family = AF_INET;
    memcpy(&in->sin_port, port, 2);
    memcpy(&in->sin_addr, ip, 4);
    *outlen = sizeof *in;
    return 0;
  }
  if (a->val[1] == 0x02) {
    if (a->len != 20)
      return -EBADMSG;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;
    uint8_t ip[16];
    for (int i = 0; i < 16; i++)
      ip[i] = a->val[4 + i] ^ (xor? mask[i] : 0);
    in6->sin6_family = AF_INET6;
    memcpy(&in6->sin6_port, port, 2);
    memcpy(&in6->sin6_addr, ip, 16);
    *outlen = sizeof *in6;
    return 0;
  }
  return -EAFNOSUPPORT;
}

int stun_mapped_addr(const struct stun_msg *m, struct sockaddr_storage *out,
                     socklen_t *outlen) {
  struct stun_attr a;
  if (stun_find(m, STUN_A_XOR_MAPPED_ADDRESS, &a) == 0)
    return stun_attr_addr(m, &a, 1, out, outlen);
  if (stun_find(m, STUN_A_MAPPED_ADDRESS, &a) == 0)
    return stun_attr_addr(m, &a, 0, out, outlen);
  return -ENOENT;
}

int stun_attr_u32(const struct stun_attr *a, uint32_t *v) {
  if (a->len != 4)
    return -EBADMSG;
  *v = rd32(a->val);
  return 0;
}

int stun_attr_error(const struct stun_attr *a, int *code,
                    const uint8_t **reason, size_t *reason_len) {
  if (a->len < 4)
    return -EBADMSG;
  int cls = a->val[2] & 7, num = a->val[3];
  if (cls < 3 || cls > 6 || num > 99)
    return -EBADMSG;
  *code = cls * 100 + num;
  *reason_len = a->len - 4u;
  *reason = *reason_len ? a->val + 4 : NULL;
  return 0;
}

int stun_attr_unknown(const struct stun_attr *a, uint16_t *types, size_t max,
                      size_t *n) {
  if (a->len & 1)
    return -EBADMSG;
  *n = a->len / 2u;
  for (size_t i = 0; i < *n && i < max; i++)
    types[i] = rd16(a->val + 2 * i);
  return 0;
}

int stun_attr_channel(const struct stun_attr *a, uint16_t *ch) {
  if (a->len != 4)
    return -EBADMSG;
  uint16_t c = rd16(a->val);
  if (c < STUN_CHAN_MIN || c > STUN_CHAN_MAX)
    return -EBADMSG;
  *ch = c;
  return 0;
}

int stun_attr_str(const struct stun_attr *a, char *buf, size_t bufsz) {
  if ((size_t)a->len + 1 > bufsz)
    return -ENOSPC;
  if (a->len && memchr(a->val, 0, a->len))
    return -EBADMSG;
  if (a->len)
    memcpy(buf, a->val, a->len);
  buf[a->len] = 0;
  return 0;
}

int stun_check_fingerprint(const struct stun_msg *m) {
  if (!m->fp_off)
    return -ENOENT;
  /* FINGERPRINT is last, so the length field already ends with it. */
  uint32_t want = crc32(m->buf, m->fp_off) ^ STUN_FP_XOR;
  return rd32(m->buf + m->fp_off + 4) == want ? 0 : -EBADMSG;
}

int stun_check_integrity(const struct stun_msg *m, const uint8_t *key,
                         size_t keylen) {
  if (!m->mi_off)
    return -ENOENT;
  if (!key && keylen)
    return -EINVAL;
  /* The HMAC is over the message up to the attribute, with a length
   * field that ends with it: hash a patched copy of the header, then
   * the rest in place (the message itself is const). */
  uint8_t hdr[STUN_HDR_LEN];
  memcpy(hdr, m->buf, STUN_HDR_LEN);
  wr16(hdr + 2, (uint16_t)(m->mi_off + 4 + STUN_MI_LEN - STUN_HDR_LEN));
  static const uint8_t empty[1];
  gnutls_hmac_hd_t h;
  uint8_t mac[STUN_MI_LEN];
  if (gnutls_hmac_init(&h, GNUTLS_MAC_SHA1, key ? key : empty, keylen) < 0)
    return -EIO;
  int bad = gnutls_hmac(h, hdr, sizeof hdr) < 0;
  if (m->mi_off > STUN_HDR_LEN)
    bad |= gnutls_hmac(h, m->buf + STUN_HDR_LEN, m->mi_off - STUN_HDR_LEN) < 0;
  gnutls_hmac_deinit(h, mac);
  if (bad)
    return -EIO;
  return gnutls_memcmp(mac, m->buf + m->mi_off + 4, STUN_MI_LEN) == 0 ? 0
                                                                      : -EACCES;
}

/* ------------------------------------------------------------------ */
/* ChannelData                                                          */

int stun_chan_looks_like(const uint8_t *buf, size_t len) {
  return buf && len >= STUN_CHAN_HDR_LEN && (buf[0] & 0xf0) == 0x40;
}

int stun_chan_header(uint8_t hdr[STUN_CHAN_HDR_LEN], uint16_t ch, size_t len) {
  if (!hdr || ch < STUN_CHAN_MIN || ch > STUN_CHAN_MAX || len > 0xffff)
    return -EINVAL;
  wr16(hdr, ch);
  wr16(hdr + 2, (uint16_t)len);
  return 0;
}

int stun_chan_encode(uint8_t *buf, size_t cap, uint16_t ch, const uint8_t *data,
                     size_t len, int pad) {
  if (!buf || (!data && len))
    return -EINVAL;
  if (ch < STUN_CHAN_MIN || ch > STUN_CHAN_MAX || len > 0xffff)
    return -EINVAL;
  size_t total = STUN_CHAN_HDR_LEN + (pad ? pad4(len) : len);
  if (total > cap)
    return -ENOSPC;
  /* Payload first: data may already sit at buf + 4 (then this is a
   * no-op) or overlap it. */
  if (len)
    memmove(buf + STUN_CHAN_HDR_LEN, data, len);
  memset(buf + STUN_CHAN_HDR_LEN + len, 0, total - STUN_CHAN_HDR_LEN - len);
  stun_chan_header(buf, ch, len);
  return (int)total;
}

int stun_chan_decode(const uint8_t *buf, size_t len, uint16_t *ch,
                     const uint8_t **data, size_t *dlen) {
  if (!buf || len < STUN_CHAN_HDR_LEN)
    return -EBADMSG;
  uint16_t c = rd16(buf);
  size_t n = rd16(buf + 2);
  if (c < STUN_CHAN_MIN || c > STUN_CHAN_MAX || n > len - STUN_CHAN_HDR_LEN)
    return -EBADMSG;
  *ch = c;
  *data = buf + STUN_CHAN_HDR_LEN;
  *dlen = n;
  return 0;
}
