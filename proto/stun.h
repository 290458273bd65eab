/*
 * STUN / TURN message codec (RFC 8489, TURN attributes of RFC 8656,
 * RFC 5780 attributes), sans I/O.
 *
 * Pure buffer functions shared by the core, the discovery and relay
 * plugins, netcheck and the fuzzers: no sockets, no clocks, no
 * allocation (the HMAC of a received message is computed by GnuTLS,
 * which keeps its own short-lived context).  Every writer takes the
 * size of the caller's buffer and fails with -ENOSPC rather than
 * overrunning it; every reader checks each length against the bytes it
 * was given.
 *
 * Conventions
 * - int results are 0 (or a documented count) on success, else a
 *   negative errno: -EINVAL bad argument, -ENOSPC buffer too small,
 *   -EBADMSG malformed input, -ENOENT attribute absent, -EACCES
 *   MESSAGE-INTEGRITY mismatch, -EAFNOSUPPORT unknown address family.
 * - A parsed message (struct stun_msg) and its attributes point into the
 *   caller's buffer: valid while that buffer is.
 * - Multi-byte fields are big endian on the wire; the API uses host
 *   order.
 */
#ifndef SFK_PROTO_STUN_H
#define SFK_PROTO_STUN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define STUN_HDR_LEN 20
#define STUN_MAGIC 0x2112A442u
#define STUN_TID_LEN 12
#define STUN_FP_XOR 0x5354554eu /* "STUN" (RFC 8489 14.7) */
#define STUN_MI_LEN 20          /* HMAC-SHA1 */
#define STUN_LT_KEY_LEN 16      /* MD5 of user:realm:pass */
/* Largest message the 16-bit length field allows. */
#define STUN_MAX_MSG (STUN_HDR_LEN + 0xfffc)

/* Methods (RFC 8489 18.2, RFC 8656 17). */
enum stun_method {
  STUN_BINDING = 0x001,
  STUN_ALLOCATE = 0x003,
  STUN_REFRESH = 0x004,
  STUN_SEND = 0x006,
  STUN_DATA = 0x007,
  STUN_CREATE_PERMISSION = 0x008,
  STUN_CHANNEL_BIND = 0x009
};

/* Classes, as the bits they occupy in the message type. */
enum stun_class {
  STUN_REQUEST = 0x000,
  STUN_INDICATION = 0x010,
  STUN_SUCCESS = 0x100,
  STUN_ERROR = 0x110
};

/* Attribute types.  Below 0x8000: comprehension-required. */
enum stun_attr_type {
  STUN_A_MAPPED_ADDRESS = 0x0001,
  STUN_A_CHANGE_REQUEST = 0x0003, /* RFC 5780 */
  STUN_A_USERNAME = 0x0006,
  STUN_A_MESSAGE_INTEGRITY = 0x0008,
  STUN_A_ERROR_CODE = 0x0009,
  STUN_A_UNKNOWN_ATTRIBUTES = 0x000A,
  STUN_A_CHANNEL_NUMBER = 0x000C,
  STUN_A_LIFETIME = 0x000D,
  STUN_A_XOR_PEER_ADDRESS = 0x0012,
  STUN_A_DATA = 0x0013,
  STUN_A_REALM = 0x0014,
  STUN_A_NONCE = 0x0015,
  STUN_A_XOR_RELAYED_ADDRESS = 0x0016,
  STUN_A_REQUESTED_ADDRESS_FAMILY = 0x0017,
  STUN_A_EVEN_PORT = 0x0018,
  STUN_A_REQUESTED_TRANSPORT = 0x0019,
  STUN_A_DONT_FRAGMENT = 0x001A,
  STUN_A_MESSAGE_INTEGRITY_SHA256 = 0x001C,
  STUN_A_PASSWORD_ALGORITHM = 0x001D,
  STUN_A_USERHASH = 0x001E,
  STUN_A_XOR_MAPPED_ADDRESS = 0x0020,
  STUN_A_RESERVATION_TOKEN = 0x0022,
  STUN_A_PRIORITY = 0x0024,
  STUN_A_USE_CANDIDATE = 0x0025,
  STUN_A_PADDING = 0x0026,       /* RFC 5780 */
  STUN_A_RESPONSE_PORT = 0x0027, /* RFC 5780 */
  STUN_A_PASSWORD_ALGORITHMS = 0x8002,
  STUN_A_ALTERNATE_DOMAIN = 0x8003,
  STUN_A_SOFTWARE = 0x8022,
  STUN_A_ALTERNATE_SERVER = 0x8023,
  STUN_A_FINGERPRINT = 0x8028,
  STUN_A_ICE_CONTROLLED = 0x8029,
  STUN_A_ICE_CONTROLLING = 0x802A,
  STUN_A_RESPONSE_ORIGIN = 0x802B, /* RFC 5780 */
  STUN_A_OTHER_ADDRESS = 0x802C    /* RFC 5780 */
};

/* CHANGE-REQUEST flags (RFC 5780 7.2). */
#define STUN_CHANGE_IP 0x4u
#define STUN_CHANGE_PORT 0x2u

/* REQUESTED-TRANSPORT value for UDP (protocol 17 in the top byte). */
#define STUN_TRANSPORT_UDP (17u << 24)

/* ChannelData (RFC 8656 12). */
#define STUN_CHAN_HDR_LEN 4
#define STUN_CHAN_MIN 0x4000
#define STUN_CHAN_MAX 0x4FFF

/* ------------------------------------------------------------------ */
/* Message types                                                        */

/* Type field for METHOD (12 bits) and CLASS (enum stun_class): the
 * method bits are split around the two class bits (RFC 8489 5). */
uint16_t stun_type(uint16_t method, uint16_t cls);
/* The method of a type field. */
uint16_t stun_type_method(uint16_t type);
/* The class of a type field (one of enum stun_class). */
uint16_t stun_type_class(uint16_t type);

/*
 * Cheap demultiplexing test: nonzero when buf could be a STUN message
 * (at least a header, first two bits 0, the magic cookie, a length that
 * is a multiple of 4).  No attribute is looked at; stun_parse() decides.
 */
int stun_looks_like(const uint8_t *buf, size_t len);

/* ------------------------------------------------------------------ */
/* Encoder                                                              */

/*
 * A message being written into caller storage.  The header's length
 * field is kept current after every successful call, so buf[0..len) is
 * always a complete message.  Fields are private to the encoder.
 */
struct stun_writer {
  uint8_t *buf; /* borrowed: the caller's buffer */
  size_t cap;   /* its size */
  size_t len;   /* bytes written so far (header + attributes) */
  int sealed;   /* FINGERPRINT written: nothing may follow */
};

/*
 * Start a message of TYPE with transaction id TID (12 bytes, chosen by
 * the caller: random for requests, copied from the request for
 * responses) in buf (cap bytes).
 * Returns 0, -EINVAL (NULL argument, type with either top bit set),
 * -ENOSPC (cap < 20).
 */
int stun_enc_init(struct stun_writer *w, uint8_t *buf, size_t cap,
                  uint16_t type, const uint8_t tid[STUN_TID_LEN]);

/* Bytes of the message so far (== w->len). */
size_t stun_enc_len(const struct stun_writer *w);

/*
 * Append attribute TYPE with the len bytes at val (copied; val may be
 * NULL when len is 0), zero-padded to a multiple of 4.
 * Returns 0, -ENOSPC (no room, or the message would exceed the 16-bit
 * length), -EINVAL (after FINGERPRINT, or len > 0xffff).
 */
int stun_enc_attr(struct stun_writer *w, uint16_t type, const void *val,
                  size_t len);

/* Append a NUL-terminated string attribute (USERNAME, REALM, NONCE,
 * SOFTWARE).  Errors as stun_enc_attr. */
int stun_enc_str(struct stun_writer *w, uint16_t type, const char *s);

/* Append a 32-bit attribute (LIFETIME, CHANGE-REQUEST, PRIORITY,
 * REQUESTED-TRANSPORT).  Errors as stun_enc_attr. */
int stun_enc_u32(struct stun_writer *w, uint16_t type, uint32_t v);

/*
 * Append an address attribute from sa (AF_INET or AF_INET6, salen its
 * size).  stun_enc_xaddr XORs port and address with the magic cookie
 * and transaction id (XOR-MAPPED-, XOR-PEER-, XOR-RELAYED-ADDRESS);
 * stun_enc_addr writes them plainly (MAPPED-ADDRESS, OTHER-ADDRESS,
 * RESPONSE-ORIGIN, ALTERNATE-SERVER).
 * Returns 0, -EAFNOSUPPORT, -EINVAL (salen too small), or as
 * stun_enc_attr.
 */
int stun_enc_xaddr(struct stun_writer *w, uint16_t type,
                   const struct sockaddr *sa, socklen_t salen);
int stun_enc_addr(struct stun_writer *w, uint16_t type,
                  const struct sockaddr *sa, socklen_t salen);

/*
 * Append ERROR-CODE: code 300..699 (class = code / 100, number =
 * code % 100) and a reason phrase (NULL: none).  -EINVAL for a code out
 * of range; else as stun_enc_attr.
 */
int stun_enc_error(struct stun_writer *w, int code, const char *reason);

/*
 * Append MESSAGE-INTEGRITY: HMAC-SHA1 with key (short-term: the
 * password; long-term: stun_long_term_key()) over the message so far,
 * the length field counting the new attribute (RFC 8489 14.5).  Must
 * come before FINGERPRINT.
 * Returns 0, -EINVAL (after FINGERPRINT, key NULL with keylen > 0),
 * -ENOSPC, -EIO (GnuTLS failed).
 */
int stun_enc_integrity(struct stun_writer *w, const uint8_t *key,
                       size_t keylen);

/*
 * Append FINGERPRINT (CRC-32 of the message so far XOR 0x5354554e) and
 * seal the message: no attribute may follow.
 * Returns 0, -EINVAL (already sealed), -ENOSPC.
 */
int stun_enc_fingerprint(struct stun_writer *w);

/*
 * Long-term credential key (RFC 8489 9.2.2): MD5(user ":" realm ":"
 * pass) into out.  The password is used as given (no SASLprep: callers
 * pass ASCII passwords).
 * Returns 0, -EINVAL (NULL argument), -EIO (GnuTLS failed).
 */
int stun_long_term_key(const char *user, const char *realm, const char *pass,
                       uint8_t out[STUN_LT_KEY_LEN]);

/* ------------------------------------------------------------------ */
/* Parser                                                               */

/*
 * A validated message.  Points into the caller's buffer (borrowed).
 * mi_off / fp_off are offsets of the MESSAGE-INTEGRITY and FINGERPRINT
 * attribute headers from the start of the message, 0 when absent.
 */
struct stun_msg {
  const uint8_t *buf; /* the message: header + attributes */
  size_t len;         /* 20 + the header's length field */
  uint16_t type;
  const uint8_t *tid; /* 12 bytes at buf + 8 */
  size_t mi_off;
  size_t fp_off;
  /* Attributes are taken from [20, end): after MESSAGE-INTEGRITY only
   * MESSAGE-INTEGRITY-SHA256 and FINGERPRINT count (RFC 8489 14.5). */
  size_t end;
};

/* One attribute; val points into the message (borrowed). */
struct stun_attr {
  uint16_t type;
  uint16_t len; /* value bytes, without padding */
  const uint8_t *val;
};

/*
 * Validate buf (len bytes, e.g. one datagram) as a STUN message: first
 * two bits 0, magic cookie, length a multiple of 4 that fits in len,
 * every attribute's length within the message, FINGERPRINT (if any) last
 * and 8 bytes long, MESSAGE-INTEGRITY (if any) 20 bytes.  Bytes after
 * the message are not part of it (m->len says where it ends).
 * Returns 0 and fills *m, -EINVAL (NULL argument), -EBADMSG.
 */
int stun_parse(struct stun_msg *m, const uint8_t *buf, size_t len);

/* Iterator over the attributes that count (see stun_msg.end). */
struct stun_iter {
  const struct stun_msg *m;
  size_t off;
};

/* Start iterating over m's attributes (m must stay valid meanwhile). */
void stun_iter_init(struct stun_iter *it, const struct stun_msg *m);
/* Next attribute into *a: returns 1, or 0 at the end.  Ignored
 * attributes (after MESSAGE-INTEGRITY) are skipped.  Never fails: the
 * lengths were checked by stun_parse(). */
int stun_iter_next(struct stun_iter *it, struct stun_attr *a);

/* First attribute of TYPE that counts: 0 and *a, or -ENOENT. */
int stun_find(const struct stun_msg *m, uint16_t type, struct stun_attr *a);

/*
 * Decode an address attribute into out (sockaddr_in or sockaddr_in6,
 * zeroed first) and *outlen.  xor: undo the XOR with the magic cookie
 * and m's transaction id (XOR-* attributes); stun_attr_is_xor() says
 * which types are XORed.
 * Returns 0, -EBADMSG (bad length), -EAFNOSUPPORT (family not 1 or 2).
 */
int stun_attr_addr(const struct stun_msg *m, const struct stun_attr *a, int xor,
                   struct sockaddr_storage *out, socklen_t *outlen);
/* Nonzero for XOR-MAPPED-, XOR-PEER-, XOR-RELAYED-ADDRESS. */
int stun_attr_is_xor(uint16_t type);

/*
 * The mapped address of a Binding response: XOR-MAPPED-ADDRESS, or
 * MAPPED-ADDRESS when that is absent (old servers).  0, -ENOENT (neither
 * present), or as stun_attr_addr.
 */
int stun_mapped_addr(const struct stun_msg *m, struct sockaddr_storage *out,
                     socklen_t *outlen);

/* A 32-bit value (LIFETIME, CHANGE-REQUEST, PRIORITY): 0 or -EBADMSG
 * (length not 4). */
int stun_attr_u32(const struct stun_attr *a, uint32_t *v);

/*
 * ERROR-CODE: *code = class * 100 + number (300..699); *reason and
 * *reason_len the reason phrase (borrowed, not NUL-terminated; may be
 * NULL/0).  -EBADMSG for a short value, class outside 3..6 or number
 * above 99.
 */
int stun_attr_error(const struct stun_attr *a, int *code,
                    const uint8_t **reason, size_t *reason_len);

/*
 * UNKNOWN-ATTRIBUTES: up to max types into types[], *n the number
 * present in the attribute (may exceed max; only max are stored).
 * -EBADMSG for an odd length.
 */
int stun_attr_unknown(const struct stun_attr *a, uint16_t *types, size_t max,
                      size_t *n);

/* CHANNEL-NUMBER: 0 and *ch, -EBADMSG (length not 4 or channel outside
 * 0x4000..0x4FFF). */
int stun_attr_channel(const struct stun_attr *a, uint16_t *ch);

/*
 * Copy a text attribute (REALM, NONCE, USERNAME, SOFTWARE) into buf as a
 * NUL-terminated string.  -ENOSPC when len + 1 > bufsz, -EBADMSG when
 * the value holds a NUL byte (it could not be echoed faithfully).
 */
int stun_attr_str(const struct stun_attr *a, char *buf, size_t bufsz);

/*
 * FINGERPRINT: 0 when present and correct, -ENOENT when absent,
 * -EBADMSG when wrong.
 */
int stun_check_fingerprint(const struct stun_msg *m);

/*
 * MESSAGE-INTEGRITY with key (see stun_enc_integrity), compared in
 * constant time: 0 when it matches, -ENOENT when absent, -EACCES when
 * it does not match, -EIO when GnuTLS failed.
 */
int stun_check_integrity(const struct stun_msg *m, const uint8_t *key,
                         size_t keylen);

/* ------------------------------------------------------------------ */
/* ChannelData (RFC 8656 12.4)                                         */

/* Nonzero when the first byte marks ChannelData (0x40..0x4F). */
int stun_chan_looks_like(const uint8_t *buf, size_t len);

/*
 * Write the 4-byte ChannelData header for channel ch and len payload
 * bytes to hdr (so a caller can place the payload after it without a
 * copy).  -EINVAL for a channel outside 0x4000..0x4FFF or len > 0xffff.
 */
int stun_chan_header(uint8_t hdr[STUN_CHAN_HDR_LEN], uint16_t ch, size_t len);

/*
 * Frame data (len bytes, copied) as ChannelData in buf (cap bytes);
 * pad: zero-pad to a multiple of 4 (required over TCP, optional over
 * UDP).  Returns the frame's length (> 0), -EINVAL as stun_chan_header,
 * -ENOSPC.
 */
int stun_chan_encode(uint8_t *buf, size_t cap, uint16_t ch, const uint8_t *data,
                     size_t len, int pad);

/*
 * Parse ChannelData in buf (len bytes): *ch, *data (borrowed), *dlen.
 * Padding after the payload is allowed and ignored.  -EBADMSG when the
 * channel is outside 0x4000..0x4FFF or the length exceeds the buffer.
 */
int stun_chan_decode(const uint8_t *buf, size_t len, uint16_t *ch,
                     const uint8_t **data, size_t *dlen);

#endif /* SFK_PROTO_STUN_H */
