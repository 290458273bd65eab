/*
 * This party's identity: a private key, a self-signed certificate and the
 * public-key pin (lowercase hex SHA-256 of the certificate's DER
 * SubjectPublicKeyInfo).  The key file holds the PEM private key (mode
 * 0600); the certificate is made anew from it at every start, so the pin
 * depends only on the key and stays stable across restarts and renewals.
 */
#ifndef SFK_IDENTITY_H
#define SFK_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#include "sfkit-proxy/plugin.h"

struct sfk_ident {
  struct sfk_identity pub; /* what plugins see; points into the buffers below */
  uint8_t *cert_der;       /* owned */
  size_t cert_der_len;
  uint8_t *key_der;        /* owned, secret: wiped before free */
  size_t key_der_len;
};

/*
 * Load the key from path, creating it (ECDSA P-256, mode 0600, parent
 * folder created 0700) when missing; refuse a key file readable by group
 * or others.  *created tells whether a new key was made.  On error returns
 * a negative errno and writes a message (never key material) into
 * err[errlen].
 */
int sfk_ident_load(struct sfk_ident *id, const char *path, int *created,
                   char *err, size_t errlen);
void sfk_ident_free(struct sfk_ident *id);

/* Pin of a DER certificate. */
int sfk_cert_pin(const uint8_t *der, size_t len, char out[SFK_PIN_SIZE]);

/* Is s a well-formed pin (64 lowercase hex digits)? */
int sfk_pin_valid(const char *s);

#endif
