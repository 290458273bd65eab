/*
 * The sfkit website's data, as the registry plugin `sfkit` reads and
 * writes it: the study document (get_doc_ref_dict), the published values
 * (EXTERNAL_ADDR, QUIC_PUBKEY_SHA256) and the website's error bodies.
 *
 * Pure functions on buffers, no I/O and no logging, so the fuzzer
 * (tests/fuzz/fuzz_registry_json.c) and the unit test
 * (tests/unit/test_sfkit_doc.c) call them directly.
 */
#ifndef SFKIT_DOC_H
#define SFKIT_DOC_H

#include <stddef.h>
#include <sys/socket.h>

#include "sfkit-proxy/plugin.h"

/* The names of the two per-party parameters the proxy publishes. */
#define SFK_DOC_ADDR_NAME "EXTERNAL_ADDR"
#define SFK_DOC_PIN_NAME "QUIC_PUBKEY_SHA256"

/* At most this many participants (the daemon's peer table limit). */
#define SFK_DOC_MAX_PARTIES 1024
/* User ids longer than this are cut (they are only shown in messages). */
#define SFK_DOC_USER_SIZE 128
/* Longest address value: "[" 8 groups of 4 hex + 7 ":" "]:" 5 digits. */
#define SFK_DOC_ADDR_SIZE 64

/* State of one published value of one participant. */
enum sfk_doc_value {
  SFK_DOC_UNSET = 0, /* not published yet: parameter missing, null or "" */
  SFK_DOC_OK = 1,    /* present and well-formed */
  SFK_DOC_BAD = 2    /* present but malformed (see party.bad) */
};

/* One participant; PID = its index in the study's `participants`. */
struct sfk_doc_party {
  char user[SFK_DOC_USER_SIZE]; /* user id, printable ASCII only, for
                                   messages ("" when not a string) */
  int addr_st;                  /* enum sfk_doc_value */
  int pin_st;
  struct sockaddr_storage addr; /* set when addr_st == SFK_DOC_OK */
  socklen_t addrlen;
  char pin[SFK_PIN_SIZE]; /* set when pin_st == SFK_DOC_OK */
  char bad[192];          /* why a value is malformed, for a log line;
                             the value is quoted, cut and sanitised */
};

/* A parsed study.  v is owned; free it with sfk_doc_free(). */
struct sfk_doc {
  struct sfk_doc_party *v;
  size_t n;
};

/*
 * Parse a get_doc_ref_dict answer (JSON, len bytes, need not be
 * NUL-terminated).  On success *out holds one entry per participant, in
 * order.  A malformed value of one participant only marks that entry
 * (SFK_DOC_BAD); errors that leave no participant list (not JSON, not an
 * object, no `participants` list, too many participants) return -EINVAL
 * (-ENOMEM when out of memory) with a sentence in err.  Entries of
 * `personal_parameters` that are not {"value": ...} objects (the real site
 * has "index" lists and numbers) are ignored unless they are one of the
 * two names above.
 */
int sfk_doc_parse(const char *body, size_t len, struct sfk_doc *out, char *err,
                  size_t errsz);

/* Free what sfk_doc_parse() allocated; *d is zeroed. */
void sfk_doc_free(struct sfk_doc *d);

/*
 * Parse a published address: "a.b.c.d:port" or "[ipv6]:port" (the IPv6
 * address in any form inet_pton(3) accepts, compressed or expanded).
 * Port 1-65535; the unspecified and multicast addresses are refused (no
 * peer can be reached there).  Returns 0 or -EINVAL.
 */
int sfk_doc_addr_parse(const char *s, struct sockaddr_storage *out,
                       socklen_t *outlen);

/*
 * The value to publish for address s (as sfk_doc_addr_parse accepts it):
 * IPv4 unchanged, IPv6 fully expanded without "::" because the website
 * splits messages on "::" ("[2001:db8:0:0:0:0:0:1]:4000").  The result
 * holds neither "=" nor "::".  Returns 0, or -EINVAL (not an address) or
 * -ENOSPC (out too small; SFK_DOC_ADDR_SIZE is enough).
 */
int sfk_doc_addr_format(const char *s, char *out, size_t outsz);

/* Nonzero when s is a pin: 64 lowercase hex digits. */
int sfk_doc_pin_ok(const char *s);

/*
 * The "error" text of a website error body ({"error": "..."}) into out,
 * printable ASCII only and cut to fit; "" when the body has none.  out
 * is always NUL-terminated (outsz > 0).
 */
void sfk_doc_error_text(const char *body, size_t len, char *out, size_t outsz);

/* Copy s into out (outsz > 0) keeping printable ASCII, other bytes as
 * '?', cut with "..." when too long. */
void sfk_doc_sanitize(const char *s, char *out, size_t outsz);

#endif
