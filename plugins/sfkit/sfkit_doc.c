/*
 * The sfkit website's data (see sfkit_doc.h).  JSON is parsed with
 * jansson: a strict RFC 8259 parser (libyaml's YAML 1.1 parser accepts
 * much that is not JSON and has no notion of JSON's escapes or numbers).
 */
#include "sfkit_doc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* snprintf that cuts quietly: messages may be cut, never overflow. */
static void fmt(char *buf, size_t sz, const char *f, ...) SFK_PRINTF(3, 4);
static void fmt(char *buf, size_t sz, const char *f, ...) {
  va_list ap;
  va_start(ap, f);
  vsnprintf(buf, sz, f, ap);
  va_end(ap);
}

void sfk_doc_sanitize(const char *s, char *out, size_t outsz) {
  size_t n = strlen(s), o = 0;
  int cut = n >= outsz;
  size_t room = cut ? (outsz > 4 ? outsz - 4 : 0) : n;
  for (size_t i = 0; i < room && o + 1 < outsz; i++) {
    unsigned char c = (unsigned char)s[i];
    out[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
  }
  if (cut)
    for (int k = 0; k < 3 && o + 1 < outsz; k++)
      out[o++] = '.';
  out[o] = '\0';
}

int sfk_doc_pin_ok(const char *s) {
  size_t n = 0;
  for (; s[n]; n++)
    if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
      return 0;
  return n == SFK_PIN_LEN;
}

/* "1".."65535", digits only (no sign, no spaces). */
static int port_parse(const char *s, unsigned *port) {
  unsigned v = 0;
  size_t n = 0;
  for (; s[n]; n++) {
    if (s[n] < '0' || s[n] > '9' || n >= 5)
      return -EINVAL;
    v = v * 10 + (unsigned)(s[n] - '0');
  }
  if (!n || v == 0 || v > 65535)
    return -EINVAL;
  *port = v;
  return 0;
}

int sfk_doc_addr_parse(const char *s, struct sockaddr_storage *out,
                       socklen_t *outlen) {
  char host[INET6_ADDRSTRLEN + 1];
  const char *portstr;
  unsigned port;
  size_t hl;
  memset(out, 0, sizeof *out);
  *outlen = 0;
  if (s[0] == '[') {
    const char *end = strchr(s, ']');
    if (!end || end[1] != ':')
      return -EINVAL;
    hl = (size_t)(end - s - 1);
    if (hl == 0 || hl >= sizeof host)
      return -EINVAL;
    memcpy(host, s + 1, hl);
    host[hl] = '\0';
    portstr = end + 2;
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)out;
    if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1 ||
        IN6_IS_ADDR_UNSPECIFIED(&a->sin6_addr) ||
        IN6_IS_ADDR_MULTICAST(&a->sin6_addr) || port_parse(portstr, &port))
      return -EINVAL;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    *outlen = sizeof *a;
    return 0;
  }
  const char *colon = strchr(s, ':');
  if (!colon || strchr(colon + 1, ':'))
    return -EINVAL;
  hl = (size_t)(colon - s);
  if (hl == 0 || hl >= sizeof host)
    return -EINVAL;
  memcpy(host, s, hl);
  host[hl] = '\0';
  struct sockaddr_in *a = (struct sockaddr_in *)out;
  if (inet_pton(AF_INET, host, &a->sin_addr) != 1 ||
      a->sin_addr.s_addr == htonl(INADDR_ANY) ||
      IN_MULTICAST(ntohl(a->sin_addr.s_addr)) || port_parse(colon + 1, &port))
    return -EINVAL;
  a->sin_family = AF_INET;
  a->sin_port = htons((uint16_t)port);
  *outlen = sizeof *a;
  return 0;
}

int sfk_doc_addr_format(const char *s, char *out, size_t outsz) {
  struct sockaddr_storage ss;
  socklen_t len;
  int n;
  if (sfk_doc_addr_parse(s, &ss, &len) < 0)
    return -EINVAL;
  if (ss.ss_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
    n = snprintf(out, outsz, "%s:%u", ip, ntohs(a->sin_port));
  } else {
    /* Eight groups, never "::": the website splits on "::". */
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
    const uint8_t *b = a->sin6_addr.s6_addr;
    n = snprintf(out, outsz, "[%x:%x:%x:%x:%x:%x:%x:%x]:%u", b[0] << 8 | b[1],
                 b[2] << 8 | b[3], b[4] << 8 | b[5], b[6] << 8 | b[7],
                 b[8] << 8 | b[9], b[10] << 8 | b[11], b[12] << 8 | b[13],
                 b[14] << 8 | b[15], ntohs(a->sin6_port));
  }
  if (n < 0 || (size_t)n >= outsz) {
    if (outsz)
      out[0] = '\0';
    return -ENOSPC;
  }
  return 0;
}

/*
 * One published value of one participant: pp_user is the participant's
 * personal_parameters object (or NULL).  Sets *text to the string value
 * when it is present and non-empty.
 */
static int value_of(const json_t *pp_user, const char *name, const char **text,
                    char *why, size_t whysz) {
  *text = NULL;
  const json_t *p = pp_user ? json_object_get(pp_user, name) : NULL;
  if (!p)
    return SFK_DOC_UNSET; /* the study has no such parameter for them */
  if (!json_is_object(p)) {
    fmt(why, whysz, "%s is not a parameter object", name);
    return SFK_DOC_BAD;
  }
  const json_t *v = json_object_get(p, "value");
  if (!v || json_is_null(v))
    return SFK_DOC_UNSET;
  if (!json_is_string(v)) {
    fmt(why, whysz, "%s value is not a string", name);
    return SFK_DOC_BAD;
  }
  const char *s = json_string_value(v);
  if (!s[0])
    return SFK_DOC_UNSET;
  /* A string with an embedded NUL cannot come from jansson without
   * JSON_ALLOW_NUL, so strlen is the whole value. */
  *text = s;
  return SFK_DOC_OK;
}

static void party_parse(struct sfk_doc_party *p, size_t i, const json_t *user,
                        const json_t *pp) {
  char why[96] = "", q[64];
  const char *s;
  if (!json_is_string(user)) {
    fmt(p->bad, sizeof p->bad, "participant %zu is not a user id", i);
    p->addr_st = p->pin_st = SFK_DOC_BAD;
    return;
  }
  sfk_doc_sanitize(json_string_value(user), p->user, sizeof p->user);
  const json_t *mine =
      json_is_object(pp) ? json_object_get(pp, json_string_value(user)) : NULL;
  if (mine && !json_is_object(mine))
    mine = NULL;

  p->addr_st = value_of(mine, SFK_DOC_ADDR_NAME, &s, why, sizeof why);
  if (p->addr_st == SFK_DOC_OK &&
      sfk_doc_addr_parse(s, &p->addr, &p->addrlen)) {
    sfk_doc_sanitize(s, q, sizeof q);
    fmt(why, sizeof why, "%s \"%s\" is not ip:port or [ipv6]:port",
        SFK_DOC_ADDR_NAME, q);
    p->addr_st = SFK_DOC_BAD;
  }
  if (p->addr_st == SFK_DOC_BAD)
    fmt(p->bad, sizeof p->bad, "%s", why);

  why[0] = '\0';
  p->pin_st = value_of(mine, SFK_DOC_PIN_NAME, &s, why, sizeof why);
  if (p->pin_st == SFK_DOC_OK) {
    if (sfk_doc_pin_ok(s)) {
      memcpy(p->pin, s, SFK_PIN_SIZE);
    } else {
      sfk_doc_sanitize(s, q, sizeof q);
      fmt(why, sizeof why, "%s \"%s\" is not 64 lowercase hex digits",
          SFK_DOC_PIN_NAME, q);
      p->pin_st = SFK_DOC_BAD;
    }
  }
  if (p->pin_st == SFK_DOC_BAD) {
    size_t l = strlen(p->bad);
    fmt(p->bad + l, sizeof p->bad - l, "%s%s", l ? "; " : "", why);
  }
  if (p->addr_st != SFK_DOC_OK) {
    memset(&p->addr, 0, sizeof p->addr);
    p->addrlen = 0;
  }
  if (p->pin_st != SFK_DOC_OK)
    p->pin[0] = '\0';
}

int sfk_doc_parse(const char *body, size_t len, struct sfk_doc *out, char *err,
                  size_t errsz) {
  json_error_t je;
  memset(out, 0, sizeof *out);
  if (errsz)
    err[0] = '\0';
  json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
  if (!root) {
    char t[sizeof je.text];
    sfk_doc_sanitize(je.text, t, sizeof t);
    fmt(err, errsz, "the answer is not JSON (line %d column %d: %s)", je.line,
        je.column, t);
    return -EINVAL;
  }
  int rc = -EINVAL;
  const json_t *parts = json_object_get(root, "participants");
  if (!json_is_object(root)) {
    fmt(err, errsz, "the answer is not a study (not a JSON object)");
    goto out;
  }
  if (!json_is_array(parts)) {
    fmt(err, errsz, "the study has no participants list");
    goto out;
  }
  size_t n = json_array_size(parts);
  if (n > SFK_DOC_MAX_PARTIES) {
    fmt(err, errsz, "the study lists %zu participants (at most %d)", n,
        SFK_DOC_MAX_PARTIES);
    goto out;
  }
  out->v = calloc(n ? n : 1, sizeof *out->v);
  if (!out->v) {
    fmt(err, errsz, "out of memory");
    rc = -ENOMEM;
    goto out;
  }
  out->n = n;
  const json_t *pp = json_object_get(root, "personal_parameters");
  for (size_t i = 0; i < n; i++)
    party_parse(&out->v[i], i, json_array_get(parts, i), pp);
  rc = 0;
out:
  json_decref(root);
  return rc;
}

void sfk_doc_free(struct sfk_doc *d) {
  free(d->v);
  memset(d, 0, sizeof *d);
}

void sfk_doc_error_text(const char *body, size_t len, char *out, size_t outsz) {
  json_error_t je;
  out[0] = '\0';
  if (!body || !len)
    return;
  json_t *root = json_loadb(body, len, 0, &je);
  const json_t *e = root ? json_object_get(root, "error") : NULL;
  if (json_is_string(e))
    sfk_doc_sanitize(json_string_value(e), out, outsz);
  json_decref(root);
}
