/*
 * The party's identity with GnuTLS: the private key file (created on first
 * use), a self-signed certificate made fresh at each load, and the pin.
 *
 * Why the certificate is not stored: the pin covers only the public key,
 * so a new certificate (new serial, new validity) never changes what
 * peers check, and there is no expiry to manage.
 *
 * Key file handling follows ssh: a private key file readable or writable
 * by group or others is refused rather than silently fixed, because by
 * then the key may already have leaked.  A new key is written to a
 * temporary file in the same folder (O_EXCL, 0600), synced, and renamed
 * into place without replacing a key that appeared meanwhile.
 */
#include "autoconfig.h"

#include "identity.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define KEY_FILE_MAX (64 * 1024) /* a PEM key is a few hundred bytes */
#define CERT_CN "sfkit-proxy"
#define CERT_BACKDATE (60 * 60)               /* clock skew between peers */
#define CERT_LIFETIME (3653LL * 24 * 60 * 60) /* ten years */


/* A GnuTLS error as a negative errno. */
static int gtls_errno(int rc) {
  switch (rc) {
  case GNUTLS_E_MEMORY_ERROR:
    return -ENOMEM;
  case GNUTLS_E_BASE64_DECODING_ERROR:
  case GNUTLS_E_BASE64_UNEXPECTED_HEADER_ERROR:
  case GNUTLS_E_ASN1_DER_ERROR:
  case GNUTLS_E_ASN1_TAG_ERROR:
  case GNUTLS_E_ASN1_ELEMENT_NOT_FOUND:
  case GNUTLS_E_ASN1_DER_OVERFLOW:
  case GNUTLS_E_UNKNOWN_PK_ALGORITHM:
  case GNUTLS_E_DECRYPTION_FAILED:
  case GNUTLS_E_UNSUPPORTED_SIGNATURE_ALGORITHM:
  case GNUTLS_E_INVALID_REQUEST:
    return -EINVAL;
  default:
    return -EIO;
  }
}

/* Free a GnuTLS datum that held a secret. */
static void datum_wipe_free(gnutls_datum_t *d) {
  if (d->data) {
    sfk_wipe(d->data, d->size);
    gnutls_free(d->data);
  }
  d->data = NULL;
  d->size = 0;
}

/* ------------------------------------------------------------------ */
/* Files                                                                */

/* Create dir and its missing parents with mode 0700 (mkdir -p). */
static int make_dirs(const char *dir, char *err, size_t errlen) {
  char buf[PATH_MAX];
  size_t n = strlen(dir);
  if (n == 0 || n >= sizeof buf) {
    sfk_set_err(err, errlen, "identity key folder '%s': bad path", dir);
    return -ENAMETOOLONG;
  }
  memcpy(buf, dir, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (buf[i] != '/' && buf[i] != '\0')
      continue;
    char c = buf[i];
    buf[i] = '\0';
    if (mkdir(buf, 0700) < 0 && errno != EEXIST) {
      int e = errno;
      sfk_set_err(err, errlen, "cannot create identity key folder %s: %s", buf,
              strerror(e));
      return -e;
    }
    buf[i] = c;
  }
  struct stat st;
  if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
    sfk_set_err(err, errlen, "identity key folder %s is not a directory", dir);
    return -ENOTDIR;
  }
  return 0;
}

/*
 * Read the key file into a new buffer (secret: the caller wipes it).
 * -ENOENT without a message when the file does not exist.
 */
static int read_key_file(const char *path, gnutls_datum_t *out, char *err,
                         size_t errlen) {
  out->data = NULL;
  out->size = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    int e = errno;
    if (e != ENOENT)
      sfk_set_err(err, errlen, "cannot open identity key file %s: %s", path,
              strerror(e));
    return -e;
  }
  /* Checked on the open file, so the file checked is the file read. */
  struct stat st;
  int rc = 0;
  if (fstat(fd, &st) < 0) {
    rc = -errno;
    sfk_set_err(err, errlen, "cannot stat identity key file %s: %s", path,
            strerror(-rc));
  } else if (!S_ISREG(st.st_mode)) {
    rc = -EINVAL;
    sfk_set_err(err, errlen, "identity key file %s is not a regular file", path);
  } else if (st.st_mode & (S_IRWXG | S_IRWXO)) {
    rc = -EPERM;
    sfk_set_err(err, errlen,
            "identity key file %s has mode %04o: a private key must not be "
            "accessible to group or others; run `chmod 600 %s`",
            path, (unsigned)(st.st_mode & 07777), path);
  } else if (st.st_size <= 0 || st.st_size > KEY_FILE_MAX) {
    rc = -EINVAL;
    sfk_set_err(err, errlen,
            "identity key file %s is %s: expected a PEM private key", path,
            st.st_size <= 0 ? "empty" : "too large");
  }
  if (rc < 0) {
    close(fd);
    return rc;
  }

  size_t cap = (size_t)st.st_size;
  uint8_t *buf = malloc(cap + 1);
  if (!buf) {
    close(fd);
    sfk_set_err(err, errlen, "identity key file %s: out of memory", path);
    return -ENOMEM;
  }
  size_t n = 0;
  while (n < cap) {
    ssize_t r = read(fd, buf + n, cap - n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      rc = -errno;
      sfk_set_err(err, errlen, "cannot read identity key file %s: %s", path,
              strerror(-rc));
      break;
    }
    if (r == 0)
      break;
    n += (size_t)r;
  }
  close(fd);
  if (rc < 0) {
    sfk_wipe(buf, cap + 1);
    free(buf);
    return rc;
  }
  buf[n] = '\0';
  out->data = buf;
  out->size = (unsigned)n;
  return 0;
}

/* Wipe and free a buffer from read_key_file(). */
static void key_file_free(gnutls_datum_t *d) {
  if (d->data) {
    sfk_wipe(d->data, d->size);
    free(d->data);
  }
  d->data = NULL;
  d->size = 0;
}

/* Write all of buf to fd. */
static int write_all(int fd, const uint8_t *buf, size_t len) {
  while (len > 0) {
    ssize_t r = write(fd, buf, len);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return -errno;
    buf += r;
    len -= (size_t)r;
  }
  return 0;
}

/*
 * Store a new key at path atomically.  Returns -EEXIST (no message) when
 * another process created the file first; the caller then loads that one.
 */
static int write_key_file(const char *path, const gnutls_datum_t *pem,
                          char *err, size_t errlen) {
  char dir[PATH_MAX], tmp[PATH_MAX + 32];
  const char *slash = strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  if (slash) {
    size_t dl = slash == path ? 1 : (size_t)(slash - path);
    if (dl >= sizeof dir) {
      sfk_set_err(err, errlen, "identity key file %s: path too long", path);
      return -ENAMETOOLONG;
    }
    memcpy(dir, path, dl);
    dir[dl] = '\0';
  } else {
    memcpy(dir, ".", 2);
  }
  if (*base == '\0') {
    sfk_set_err(err, errlen, "identity key file '%s' names a folder", path);
    return -EISDIR;
  }
  int rc = make_dirs(dir, err, errlen);
  if (rc < 0)
    return rc;

  int fd = -1;
  for (int tries = 0; fd < 0 && tries < 16; tries++) {
    uint8_t rnd[6];
    if (gnutls_rnd(GNUTLS_RND_NONCE, rnd, sizeof rnd) < 0) {
      sfk_set_err(err, errlen, "cannot get random bytes for a temporary name");
      return -EIO;
    }
    int n = snprintf(tmp, sizeof tmp, "%s/.%s.%02x%02x%02x%02x%02x%02x.tmp",
                     dir, base, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
    if (n < 0 || (size_t)n >= sizeof tmp) {
      sfk_set_err(err, errlen, "identity key file %s: path too long", path);
      return -ENAMETOOLONG;
    }
    fd = open(tmp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 && errno != EEXIST) {
      rc = -errno;
      sfk_set_err(err, errlen, "cannot create identity key file in %s: %s", dir,
              strerror(-rc));
      return rc;
    }
  }
  if (fd < 0) {
    sfk_set_err(err, errlen, "cannot create a temporary file in %s", dir);
    return -EIO; /* not -EEXIST: that means "someone else stored a key" */
  }

  /* 0600 whatever the umask, so the owner can read it back. */
  if (fchmod(fd, 0600) < 0 || (rc = write_all(fd, pem->data, pem->size)) < 0 ||
      fsync(fd) < 0) {
    rc = rc < 0 ? rc : -errno;
    sfk_set_err(err, errlen, "cannot write identity key file %s: %s", tmp,
            strerror(-rc));
    close(fd);
    unlink(tmp);
    return rc;
  }
  if (close(fd) < 0) {
    rc = -errno;
    sfk_set_err(err, errlen, "cannot write identity key file %s: %s", tmp,
            strerror(-rc));
    unlink(tmp);
    return rc;
  }

  /* Never replace a key another process stored meanwhile: its pin may
   * already be published.  Fall back to rename() where the file system
   * has no RENAME_NOREPLACE. */
  rc = 0;
  if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) < 0) {
    rc = -errno;
    if ((rc == -EINVAL || rc == -ENOSYS || rc == -ENOTSUP))
      rc = rename(tmp, path) < 0 ? -errno : 0;
  }
  if (rc < 0) {
    if (rc != -EEXIST)
      sfk_set_err(err, errlen, "cannot store identity key file %s: %s", path,
              strerror(-rc));
    unlink(tmp);
    return rc;
  }
  /* Make the rename itself durable. */
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)fsync(dfd);
    close(dfd);
  }
  return 0;
}

/* ------------------------------------------------------------------ */
/* Keys and certificates                                                */

/* Generate an ECDSA P-256 key and store it at path as PKCS#8 PEM. */
static int create_key(gnutls_x509_privkey_t key, const char *path, char *err,
                      size_t errlen) {
  int rc = gnutls_x509_privkey_generate2(
      key, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0,
      NULL, 0);
  if (rc < 0) {
    sfk_set_err(err, errlen, "cannot generate an identity key: %s",
            gnutls_strerror(rc));
    return gtls_errno(rc);
  }
  gnutls_datum_t pem = {NULL, 0};
  rc = gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_PEM, NULL,
                                         GNUTLS_PKCS_PLAIN, &pem);
  if (rc < 0) {
    sfk_set_err(err, errlen, "cannot encode the identity key: %s",
            gnutls_strerror(rc));
    return gtls_errno(rc);
  }
  rc = write_key_file(path, &pem, err, errlen);
  datum_wipe_free(&pem);
  return rc;
}

/* Parse a PEM key read from path; refuse types TLS 1.3 cannot sign with. */
static int import_key(gnutls_x509_privkey_t key, const gnutls_datum_t *pem,
                      const char *path, char *err, size_t errlen) {
  int rc = gnutls_x509_privkey_import2(key, pem, GNUTLS_X509_FMT_PEM, NULL,
                                       GNUTLS_PKCS_PLAIN);
  if (rc < 0) {
    /* gnutls_strerror() names the problem, never the bytes. */
    sfk_set_err(err, errlen,
            "identity key file %s: not an unencrypted PEM private key (%s); "
            "move it away to have a new key made (this changes the pin)",
            path, gnutls_strerror(rc));
    return -EINVAL;
  }
  int pk = gnutls_x509_privkey_get_pk_algorithm2(key, NULL);
  switch (pk) {
  case GNUTLS_PK_RSA:
  case GNUTLS_PK_RSA_PSS:
  case GNUTLS_PK_ECDSA:
  case GNUTLS_PK_EDDSA_ED25519:
  case GNUTLS_PK_EDDSA_ED448:
    return 0;
  default:
    sfk_set_err(err, errlen,
            "identity key file %s: a %s key cannot sign TLS 1.3 handshakes; "
            "use an ECDSA, Ed25519 or RSA key",
            path, pk < 0 ? "unknown" : gnutls_pk_get_name((unsigned)pk));
    return -EINVAL;
  }
}

/* Sign a new self-signed certificate for key; DER into *der (malloc). */
static int make_cert(gnutls_x509_privkey_t key, uint8_t **der, size_t *len,
                     char *err, size_t errlen) {
  gnutls_x509_crt_t crt = NULL;
  gnutls_privkey_t signer = NULL;
  gnutls_datum_t out = {NULL, 0};
  const char *step = "init";
  int rc;

  if ((rc = gnutls_x509_crt_init(&crt)) < 0)
    goto fail;
  step = "signer";
  if ((rc = gnutls_privkey_init(&signer)) < 0 ||
      (rc = gnutls_privkey_import_x509(signer, key, 0)) < 0)
    goto fail;

  step = "fields";
  uint8_t serial[16];
  if ((rc = gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof serial)) < 0)
    goto fail;
  serial[0] = (uint8_t)((serial[0] & 0x7f) | 0x40); /* positive, 16 bytes */
  time_t now = time(NULL);
  if ((rc = gnutls_x509_crt_set_version(crt, 3)) < 0 ||
      (rc = gnutls_x509_crt_set_serial(crt, serial, sizeof serial)) < 0 ||
      (rc = gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0,
                                          CERT_CN, strlen(CERT_CN))) < 0 ||
      (rc = gnutls_x509_crt_set_activation_time(crt, now - CERT_BACKDATE)) <
          0 ||
      (rc = gnutls_x509_crt_set_expiration_time(
           crt, (time_t)(now + CERT_LIFETIME))) < 0 ||
      (rc = gnutls_x509_crt_set_key(crt, key)) < 0 ||
      (rc = gnutls_x509_crt_set_basic_constraints(crt, 0, -1)) < 0 ||
      (rc = gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE)) <
          0 ||
      (rc = gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER,
                                                0)) < 0 ||
      (rc = gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_CLIENT,
                                                0)) < 0)
    goto fail;

  /* Ed25519/Ed448 fix their own hash; everything else uses SHA-256. */
  int pk = gnutls_x509_privkey_get_pk_algorithm2(key, NULL);
  gnutls_digest_algorithm_t dig =
      pk == GNUTLS_PK_EDDSA_ED25519 || pk == GNUTLS_PK_EDDSA_ED448
          ? GNUTLS_DIG_UNKNOWN
          : GNUTLS_DIG_SHA256;
  step = "sign";
  if ((rc = gnutls_x509_crt_privkey_sign(crt, crt, signer, dig, 0)) < 0)
    goto fail;
  step = "export";
  if ((rc = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &out)) < 0)
    goto fail;

  *der = malloc(out.size);
  if (!*der) {
    rc = GNUTLS_E_MEMORY_ERROR;
    goto fail;
  }
  memcpy(*der, out.data, out.size);
  *len = out.size;
  gnutls_free(out.data);
  gnutls_privkey_deinit(signer);
  gnutls_x509_crt_deinit(crt);
  return 0;

fail:
  sfk_set_err(err, errlen, "cannot make the identity certificate (%s): %s", step,
          gnutls_strerror(rc));
  gnutls_free(out.data);
  if (signer)
    gnutls_privkey_deinit(signer);
  if (crt)
    gnutls_x509_crt_deinit(crt);
  return gtls_errno(rc);
}

/* The key as unencrypted PKCS#8 DER into *der (malloc; secret). */
static int export_key(gnutls_x509_privkey_t key, uint8_t **der, size_t *len,
                      char *err, size_t errlen) {
  gnutls_datum_t out = {NULL, 0};
  int rc = gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_DER, NULL,
                                             GNUTLS_PKCS_PLAIN, &out);
  if (rc < 0) {
    sfk_set_err(err, errlen, "cannot encode the identity key: %s",
            gnutls_strerror(rc));
    return gtls_errno(rc);
  }
  *der = malloc(out.size);
  if (!*der) {
    datum_wipe_free(&out);
    sfk_set_err(err, errlen, "out of memory");
    return -ENOMEM;
  }
  memcpy(*der, out.data, out.size);
  *len = out.size;
  datum_wipe_free(&out);
  return 0;
}

/* ------------------------------------------------------------------ */

int sfk_ident_load(struct sfk_ident *id, const char *path, int *created,
                   char *err, size_t errlen) {
  memset(id, 0, sizeof *id);
  if (created)
    *created = 0;
  if (err && errlen)
    err[0] = '\0';
  if (!path || !*path) {
    sfk_set_err(err, errlen, "no identity key file configured");
    return -EINVAL;
  }

  gnutls_x509_privkey_t key = NULL;
  gnutls_datum_t pem = {NULL, 0};
  int rc = gnutls_x509_privkey_init(&key);
  if (rc < 0) {
    sfk_set_err(err, errlen, "cannot set up GnuTLS: %s", gnutls_strerror(rc));
    return gtls_errno(rc);
  }

  rc = read_key_file(path, &pem, err, errlen);
  if (rc == -ENOENT) {
    rc = create_key(key, path, err, errlen);
    if (rc == 0 && created)
      *created = 1;
    if (rc == -EEXIST) {
      /* Another process stored a key first: use that one. */
      gnutls_x509_privkey_deinit(key);
      key = NULL;
      if ((rc = gnutls_x509_privkey_init(&key)) < 0) {
        sfk_set_err(err, errlen, "cannot set up GnuTLS: %s", gnutls_strerror(rc));
        return gtls_errno(rc);
      }
      rc = read_key_file(path, &pem, err, errlen);
      if (rc == -ENOENT)
        sfk_set_err(err, errlen, "identity key file %s vanished", path);
      if (rc == 0)
        rc = import_key(key, &pem, path, err, errlen);
    }
  } else if (rc == 0) {
    rc = import_key(key, &pem, path, err, errlen);
  }
  key_file_free(&pem);

  if (rc == 0)
    rc = make_cert(key, &id->cert_der, &id->cert_der_len, err, errlen);
  if (rc == 0)
    rc = export_key(key, &id->key_der, &id->key_der_len, err, errlen);
  if (rc == 0 &&
      (rc = sfk_cert_pin(id->cert_der, id->cert_der_len, id->pub.pin)) < 0)
    sfk_set_err(err, errlen, "cannot compute the public-key pin");
  gnutls_x509_privkey_deinit(key);

  if (rc < 0) {
    sfk_ident_free(id);
    return rc;
  }
  id->pub.cert_der = id->cert_der;
  id->pub.cert_der_len = id->cert_der_len;
  id->pub.key_der = id->key_der;
  id->pub.key_der_len = id->key_der_len;
  return 0;
}

void sfk_ident_free(struct sfk_ident *id) {
  if (!id)
    return;
  if (id->key_der) {
    sfk_wipe(id->key_der, id->key_der_len);
    free(id->key_der);
  }
  free(id->cert_der);
  memset(id, 0, sizeof *id);
}

int sfk_cert_pin(const uint8_t *der, size_t len, char out[SFK_PIN_SIZE]) {
  static const char hex[] = "0123456789abcdef";
  out[0] = '\0';
  if (!der || len == 0 || len > UINT_MAX)
    return -EINVAL;

  gnutls_x509_crt_t crt = NULL;
  gnutls_pubkey_t pub = NULL;
  gnutls_datum_t spki = {NULL, 0};
  const gnutls_datum_t in = {(unsigned char *)der, (unsigned)len};
  uint8_t digest[32];
  int rc;

  if ((rc = gnutls_x509_crt_init(&crt)) < 0 ||
      (rc = gnutls_x509_crt_import(crt, &in, GNUTLS_X509_FMT_DER)) < 0 ||
      (rc = gnutls_pubkey_init(&pub)) < 0 ||
      (rc = gnutls_pubkey_import_x509(pub, crt, 0)) < 0 ||
      (rc = gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &spki)) < 0 ||
      (rc = gnutls_hash_fast(GNUTLS_DIG_SHA256, spki.data, spki.size, digest)) <
          0) {
    rc = gtls_errno(rc);
  } else {
    for (size_t i = 0; i < sizeof digest; i++) {
      out[2 * i] = hex[digest[i] >> 4];
      out[2 * i + 1] = hex[digest[i] & 15];
    }
    out[SFK_PIN_LEN] = '\0';
  }
  gnutls_free(spki.data);
  if (pub)
    gnutls_pubkey_deinit(pub);
  if (crt)
    gnutls_x509_crt_deinit(crt);
  return rc < 0 ? rc : 0;
}

int sfk_pin_valid(const char *s) {
  if (!s)
    return 0;
  size_t i = 0;
  for (; s[i]; i++) {
    if (i >= SFK_PIN_LEN)
      return 0;
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return 0;
  }
  return i == SFK_PIN_LEN;
}
