/*
 * The YAML config as a tree of nodes that remember their position, and
 * the typed value parsers shared by the daemon and (through the host API)
 * by plugins.  Every error is printed as FILE:LINE:COLUMN: message to the
 * error sink of the document and counted.
 */
#ifndef SFK_CFG_H
#define SFK_CFG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "sfkit-proxy/plugin.h"

/* A loaded document: owns every node and the file name. */
struct sfk_cfg_doc;

/*
 * Parse a YAML file.  Syntax errors are reported through the document's
 * sink (stderr by default) and counted; the function returns NULL only
 * for out-of-memory or an unreadable file (reported too; errno is set).
 * Anchors and aliases are refused (a config has no use for them), as are
 * tags other than !!str/!!map/!!seq, a second document, nesting deeper
 * than SFK_CFG_MAX_DEPTH, files over SFK_CFG_MAX_FILE bytes, NUL bytes in
 * values and duplicate keys in any map.
 *
 * When the text cannot be parsed at all (a syntax error, a root that is
 * not a map, a second document, ...), the root is NULL and the error
 * count is nonzero: callers should then stop, since every further check
 * would only repeat the first error.
 */
#define SFK_CFG_MAX_FILE (1024u * 1024u)
#define SFK_CFG_MAX_DEPTH 64
#define SFK_CFG_MAX_MAP 1024 /* entries per map */
struct sfk_cfg_doc *sfk_cfg_load_file(const char *path, FILE *errsink);
/* Report later errors of doc to f (e.g. after a temporary sink closed). */
void sfk_cfg_doc_set_sink(struct sfk_cfg_doc *doc, FILE *f);
/* Parse YAML from memory; `name` is used in messages. */
struct sfk_cfg_doc *sfk_cfg_load_string(const char *name, const char *text,
                                        size_t len, FILE *errsink);
void sfk_cfg_doc_del(struct sfk_cfg_doc *doc);

/* Root node (a map), or NULL for an empty document. */
const struct sfk_cfg_node *sfk_cfg_root(const struct sfk_cfg_doc *doc);
/* Number of errors reported so far for this document. */
unsigned sfk_cfg_errors(const struct sfk_cfg_doc *doc);
/* File name as given, and its folder (for relative paths). */
const char *sfk_cfg_filename(const struct sfk_cfg_doc *doc);
const char *sfk_cfg_dir(const struct sfk_cfg_doc *doc);

/* Node accessors (plugin.h documents them).  sfk_cfg_len() counts the
 * entries of a map too; sfk_cfg_at() only indexes sequences (NULL for a
 * map: use sfk_cfg_value_at()). */
int sfk_cfg_type(const struct sfk_cfg_node *n);
const struct sfk_cfg_node *sfk_cfg_get(const struct sfk_cfg_node *map,
                                       const char *key);
size_t sfk_cfg_len(const struct sfk_cfg_node *seq);
const struct sfk_cfg_node *sfk_cfg_at(const struct sfk_cfg_node *seq,
                                      size_t i);
const char *sfk_cfg_scalar(const struct sfk_cfg_node *n);
/* 1-based line and column. */
unsigned sfk_cfg_line(const struct sfk_cfg_node *n);
unsigned sfk_cfg_column(const struct sfk_cfg_node *n);
/* Map iteration: key text and value of entry i (i < sfk_cfg_len(map)). */
const char *sfk_cfg_key_at(const struct sfk_cfg_node *map, size_t i);
const struct sfk_cfg_node *sfk_cfg_key_node_at(const struct sfk_cfg_node *map,
                                               size_t i);
/* Value of map entry i, or NULL. */
const struct sfk_cfg_node *sfk_cfg_value_at(const struct sfk_cfg_node *map,
                                            size_t i);
/* A plain empty value, `~` or `null` (as in `key:` with nothing after). */
int sfk_cfg_is_null(const struct sfk_cfg_node *n);

/* Report an error at node n (or at the document start if n is NULL). */
void sfk_cfg_error(const struct sfk_cfg_doc *doc, const struct sfk_cfg_node *n,
                   const char *fmt, ...) SFK_PRINTF(3, 4);
void sfk_cfg_verror(const struct sfk_cfg_doc *doc,
                    const struct sfk_cfg_node *n, const char *fmt, va_list ap)
    SFK_PRINTF(3, 0);
/* Report an error that has no place in the file (a command-line value):
 * printed as FILE: message, and counted. */
void sfk_cfg_error_nopos(const struct sfk_cfg_doc *doc, const char *fmt, ...)
    SFK_PRINTF(2, 3);
/* Copy s into buf for a message: at most ~48 characters, non-printable
 * bytes as \xNN, "..." when cut.  Returns buf. */
const char *sfk_cfg_quote(const char *s, char *buf, size_t bufsz);
#define SFK_CFG_QUOTE_MAX 64

/*
 * Check that every key of `map` is in `keys` (NULL-terminated), plus
 * `extra` if not NULL; report each other key ("unknown key 'x' in
 * section 'y'"; section NULL: "unknown top-level key 'x'").  A
 * duplicated key is an error too; the loader reports it once for every
 * map, so it is not repeated here.  Returns the number of errors
 * reported.  A NULL or non-map `map` has no keys to check (0).
 */
unsigned sfk_cfg_check_keys(const struct sfk_cfg_doc *doc,
                            const struct sfk_cfg_node *map,
                            const char *section, const char *const *keys,
                            const char *extra);

/* Typed getters: absent key (or a NULL map) gives def; a bad value is
 * reported and -EINVAL returned.  A node of the wrong type (map for a
 * scalar) is bad, and so is a key given without a value (`key:`).
 * sfk_cfg_addr with no key and def NULL sets *outlen to 0; sfk_cfg_path
 * with no key and def NULL sets buf to "".  A relative def is resolved
 * like a value. */
int sfk_cfg_string(const struct sfk_cfg_doc *doc,
                   const struct sfk_cfg_node *map, const char *key,
                   const char *def, const char **out);
int sfk_cfg_uint(const struct sfk_cfg_doc *doc, const struct sfk_cfg_node *map,
                 const char *key, uint64_t min, uint64_t max, uint64_t def,
                 uint64_t *out);
int sfk_cfg_bool(const struct sfk_cfg_doc *doc, const struct sfk_cfg_node *map,
                 const char *key, int def, int *out);
int sfk_cfg_duration_ms(const struct sfk_cfg_doc *doc,
                        const struct sfk_cfg_node *map, const char *key,
                        uint64_t def, uint64_t *out);
int sfk_cfg_addr(const struct sfk_cfg_doc *doc, const struct sfk_cfg_node *map,
                 const char *key, const char *def,
                 struct sockaddr_storage *out, socklen_t *outlen);
int sfk_cfg_path(const struct sfk_cfg_doc *doc, const struct sfk_cfg_node *map,
                 const char *key, const char *def, char *buf, size_t bufsz);

/* Pure value parsers (no document): 0 or -EINVAL; *out untouched on
 * error.  Exposed for tests and for the command line.  None of them
 * accepts surrounding or inner white space, a sign or an empty string. */
/* Decimal digits only (leading zeros allowed), min <= value <= max. */
int sfk_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* true/false, yes/no, on/off, any case. */
int sfk_parse_bool(const char *s, int *out);
/* The longest duration a config may give: 365 days (every duration
 * becomes nanoseconds added to a clock later, which must not overflow). */
#define SFK_DURATION_MAX_MS (365ull * 24 * 3600 * 1000)
/* "250ms", "10s", "5m", "24h", also a bare number of seconds: one whole
 * number and at most one unit (no "1.5s", no "1h30m", no "10 s").
 * 0, -EINVAL (malformed) or -ERANGE (over SFK_DURATION_MAX_MS). */
int sfk_parse_duration_ms(const char *s, uint64_t *out);
/* "1.2.3.4:80", "[::1]:80"; port 0 allowed; no host names, no IPv6
 * without brackets, no scope ids, the port is required. */
int sfk_parse_hostport(const char *s, struct sockaddr_storage *out,
                       socklen_t *outlen);
/* "10.0.0.0/24": network and prefix (0..32, required); host bits must
 * be zero. */
int sfk_parse_cidr4(const char *s, uint32_t *net_host_order,
                    unsigned *prefix);
/* "8100-8199" or "8100"; lo <= hi, 1..65535. */
int sfk_parse_port_range(const char *s, uint16_t *lo, uint16_t *hi);

#endif
