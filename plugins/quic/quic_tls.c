/*
 * QUIC transport: TLS (GnuTLS through ngtcp2_crypto_gnutls).
 *
 * Both sides present the daemon's self-signed certificate and require the
 * other's: TLS 1.3 only, ALPN "sfkit" mandatory.  Trust is the pin alone
 * (lowercase hex SHA-256 of the certificate's SubjectPublicKeyInfo, as
 * computed by host->cert_pin()): the TLS handshake proves possession of
 * the key, the pin ties the key to the PID in the registry.  No CA, no
 * names, no anonymous mode.
 *
 * The stateless reset secret is derived from the identity key, so a
 * restarted daemon can still reset connections its previous process
 * issued CIDs for; the Retry token secret likewise (another label).
 */
#include <errno.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>

#include "quic.h"

#define QUIC_ALPN "sfkit"
#define QUIC_RESET_LABEL "sfkit-proxy stateless reset"
#define QUIC_RETRY_LABEL "sfkit-proxy retry token"

/* TLS 1.3 only; no middlebox compatibility mode (RFC 9001, 8.4). */
static const char quic_priority[] =
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:"
    "+CHACHA20-POLY1305:-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:"
    "+GROUP-SECP384R1:%DISABLE_TLS13_COMPAT_MODE";

static int verify_cb(gnutls_session_t session) {
  ngtcp2_crypto_conn_ref *ref = gnutls_session_get_ptr(session);
  struct quic_conn *qc = ref->user_data;
  const struct sfk_host *h = qc->qi->h;
  const gnutls_datum_t *certs;
  unsigned int n = 0;
  char pin[SFK_PIN_SIZE];

  certs = gnutls_certificate_get_peers(session, &n);
  if (!certs || n == 0) {
    h->log(h, SFK_LOG_WARN, "peer presented no certificate; refusing");
    return -1;
  }
  if (h->cert_pin(h, certs[0].data, certs[0].size, pin) != 0) {
    h->log(h, SFK_LOG_WARN, "peer certificate unreadable; refusing");
    return -1;
  }
  return quic_conn_check_pin(qc, pin) == 0 ? 0 : -1;
}

int quic_tls_init(struct quic_inst *qi) {
  const struct sfk_host *h = qi->h;
  const struct sfk_identity *id = h->identity(h);
  gnutls_datum_t cert, key;
  int rv;

  if (!id || !id->cert_der || !id->key_der) {
    h->log(h, SFK_LOG_ERROR, "no identity (certificate and key)");
    return -EINVAL;
  }
  rv = gnutls_certificate_allocate_credentials(&qi->cred);
  if (rv < 0)
    return -ENOMEM;
  cert.data = (unsigned char *)id->cert_der;
  cert.size = (unsigned int)id->cert_der_len;
  key.data = (unsigned char *)id->key_der;
  key.size = (unsigned int)id->key_der_len;
  rv = gnutls_certificate_set_x509_key_mem2(qi->cred, &cert, &key,
                                            GNUTLS_X509_FMT_DER, NULL, 0);
  if (rv < 0) {
    h->log(h, SFK_LOG_ERROR, "cannot load the identity into GnuTLS: %s",
           gnutls_strerror(rv));
    quic_tls_free(qi);
    return -EINVAL;
  }
  gnutls_certificate_set_verify_function(qi->cred, verify_cb);
  rv = gnutls_hmac_fast(GNUTLS_MAC_SHA256, id->key_der, id->key_der_len,
                        QUIC_RESET_LABEL, strlen(QUIC_RESET_LABEL),
                        qi->reset_secret);
  /* Retry tokens: a restarted daemon still takes the ones it issued. */
  if (rv >= 0)
    rv = gnutls_hmac_fast(GNUTLS_MAC_SHA256, id->key_der, id->key_der_len,
                          QUIC_RETRY_LABEL, strlen(QUIC_RETRY_LABEL),
                          qi->retry_secret);
  if (rv < 0) {
    quic_tls_free(qi);
    return -EIO;
  }
  return 0;
}

void quic_tls_free(struct quic_inst *qi) {
  if (qi->cred) {
    gnutls_certificate_free_credentials(qi->cred);
    qi->cred = NULL;
  }
  gnutls_memset(qi->reset_secret, 0, sizeof(qi->reset_secret));
  gnutls_memset(qi->retry_secret, 0, sizeof(qi->retry_secret));
}

int quic_tls_session_new(struct quic_conn *qc) {
  static const gnutls_datum_t alpn = {(unsigned char *)QUIC_ALPN,
                                      sizeof(QUIC_ALPN) - 1};
  int server = (qc->flags & QCF_SERVER) != 0;
  gnutls_session_t s;

  if (gnutls_init(&s, (server ? GNUTLS_SERVER : GNUTLS_CLIENT) |
                          GNUTLS_NO_END_OF_EARLY_DATA | GNUTLS_NO_TICKETS) <
      0)
    return -1;
  if (gnutls_priority_set_direct(s, quic_priority, NULL) < 0)
    goto fail;
  if ((server ? ngtcp2_crypto_gnutls_configure_server_session(s)
              : ngtcp2_crypto_gnutls_configure_client_session(s)) != 0)
    goto fail;
  gnutls_session_set_ptr(s, &qc->ref);
  if (gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, qc->qi->cred) < 0)
    goto fail;
  if (server)
    gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
  if (gnutls_alpn_set_protocols(s, &alpn, 1, GNUTLS_ALPN_MANDATORY) < 0)
    goto fail;
  qc->tls = s;
  return 0;
fail:
  gnutls_deinit(s);
  return -1;
}

int quic_tls_alpn_ok(struct quic_conn *qc) {
  gnutls_datum_t p;

  if (gnutls_alpn_get_selected_protocol(qc->tls, &p) != 0)
    return 0;
  return p.size == sizeof(QUIC_ALPN) - 1 &&
         memcmp(p.data, QUIC_ALPN, p.size) == 0;
}
