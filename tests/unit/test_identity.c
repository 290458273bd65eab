/*
 * Unit tests for the identity (src/core/identity.c): key file creation and
 * permissions, certificate renewal with a stable pin, and the pin checked
 * against two computations that do not use our code: the SPKI cut out of
 * the certificate DER by hand, and `certtool --key-info` (gnutls-bin).
 */
#include "autoconfig.h"

#include "identity.h"
#include "tap.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/sfk-test-identity-XXXXXX";

/* ------------------------------------------------------------------ */
/* Helpers                                                              */

/* One DER element at p (at most len bytes): *hdr header bytes; returns
 * the total element length, 0 when malformed. */
static size_t der_elem(const uint8_t *p, size_t len, size_t *hdr) {
  if (len < 2)
    return 0;
  size_t h = 2, body = p[1];
  if (p[1] & 0x80) {
    size_t nb = p[1] & 0x7f;
    if (nb == 0 || nb > 3 || len < 2 + nb)
      return 0;
    body = 0;
    for (size_t i = 0; i < nb; i++)
      body = body << 8 | p[2 + i];
    h += nb;
  }
  if (body > len - h)
    return 0;
  *hdr = h;
  return h + body;
}

/* The SubjectPublicKeyInfo of a DER certificate, found by walking the
 * structure (RFC 5280 4.1): tbsCertificate's 7th field, or 6th without
 * the optional [0] version. */
static int cert_spki(const uint8_t *der, size_t len, const uint8_t **spki,
                     size_t *spki_len) {
  size_t hdr, n = der_elem(der, len, &hdr);
  if (!n || der[0] != 0x30)
    return -1;
  const uint8_t *tbs = der + hdr;
  n = der_elem(tbs, n - hdr, &hdr);
  if (!n || tbs[0] != 0x30)
    return -1;
  const uint8_t *p = tbs + hdr, *end = tbs + n;
  int skip = p[0] == 0xa0 ? 6 : 5; /* version, serial, alg, issuer,
                                      validity, subject */
  for (int i = 0; i < skip; i++) {
    size_t e = der_elem(p, (size_t)(end - p), &hdr);
    if (!e)
      return -1;
    p += e;
  }
  size_t e = der_elem(p, (size_t)(end - p), &hdr);
  if (!e || p[0] != 0x30)
    return -1;
  *spki = p;
  *spki_len = e;
  return 0;
}

static void hex(const uint8_t *d, size_t n, char *out) {
  for (size_t i = 0; i < n; i++)
    sprintf(out + 2 * i, "%02x", d[i]);
}

/* The pin as certtool computes it from the key file, as hex; "" when
 * certtool is not available. */
static void certtool_pin(const char *keyfile, char out[SFK_PIN_SIZE]) {
  char cmd[PATH_MAX + 80], line[512];
  out[0] = '\0';
  snprintf(cmd, sizeof cmd,
           "certtool --key-info --load-privkey '%s' 2>/dev/null", keyfile);
  FILE *f = popen(cmd, "r");
  if (!f)
    return;
  while (fgets(line, sizeof line, f)) {
    const char *b = strstr(line, "pin-sha256:");
    if (!b || out[0])
      continue;
    b += strlen("pin-sha256:");
    gnutls_datum_t in = {(unsigned char *)b, (unsigned)strcspn(b, "\r\n")};
    gnutls_datum_t raw = {NULL, 0};
    if (gnutls_base64_decode2(&in, &raw) == 0 && raw.size == 32)
      hex(raw.data, 32, out);
    gnutls_free(raw.data);
  }
  pclose(f);
}

static int write_file(const char *path, const char *text, mode_t mode) {
  int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
  if (fd < 0)
    return -1;
  ssize_t n = write(fd, text, strlen(text));
  close(fd);
  if (n != (ssize_t)strlen(text) || chmod(path, mode) < 0)
    return -1;
  return 0;
}

static char *slurp(const char *path) {
  static char buf[8192];
  FILE *f = fopen(path, "r");
  if (!f)
    return NULL;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  return buf;
}

static void cert_serial(const struct sfk_ident *id, uint8_t *ser, size_t *len) {
  gnutls_x509_crt_t crt;
  gnutls_datum_t d = {(unsigned char *)id->cert_der,
                      (unsigned)id->cert_der_len};
  size_t cap = *len;
  *len = 0;
  if (gnutls_x509_crt_init(&crt) < 0)
    return;
  if (gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_DER) == 0 &&
      gnutls_x509_crt_get_serial(crt, ser, &cap) == 0)
    *len = cap;
  gnutls_x509_crt_deinit(crt);
}

static void rm_rf(const char *dir) {
  char cmd[PATH_MAX + 16];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "# could not remove %s\n", dir);
}

/* ------------------------------------------------------------------ */

static void test_create_and_reload(void) {
  char dir[256], path[PATH_MAX], err[512];
  snprintf(dir, sizeof dir, "%s/state/sub", tmpdir);
  snprintf(path, sizeof path, "%s/identity.key", dir);

  struct sfk_ident a, b;
  int created = -1;
  int rc = sfk_ident_load(&a, path, &created, err, sizeof err);
  is_int(rc, 0, "first load creates the key");
  if (rc)
    printf("# %s\n", err);
  is_int(created, 1, "created is set");

  struct stat st;
  ok(stat(path, &st) == 0 && (st.st_mode & 07777) == 0600,
     "key file mode 0600 (got %04o)", (unsigned)(st.st_mode & 07777));
  ok(stat(dir, &st) == 0 && (st.st_mode & 07777) == 0700,
     "missing parent created 0700 (got %04o)", (unsigned)(st.st_mode & 07777));
  char *text = slurp(path);
  ok(text && strncmp(text, "-----BEGIN PRIVATE KEY-----", 27) == 0,
     "key file is PKCS#8 PEM");

  int entries = 0;
  DIR *d = opendir(dir);
  for (struct dirent *e; d && (e = readdir(d));)
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
      entries++;
  if (d)
    closedir(d);
  is_int(entries, 1, "no temporary file left behind");

  ok(sfk_pin_valid(a.pub.pin), "pin is 64 lowercase hex: %s", a.pub.pin);
  ok(a.pub.cert_der == a.cert_der && a.pub.cert_der_len == a.cert_der_len &&
         a.pub.key_der == a.key_der && a.pub.key_der_len == a.key_der_len &&
         a.cert_der_len > 100 && a.key_der_len > 50,
     "public view points at the owned buffers");

  /* Independent pin 1: hash the SPKI bytes cut out of the DER by hand. */
  const uint8_t *spki_a = NULL, *spki_b = NULL;
  size_t spki_a_len = 0, spki_b_len = 0;
  ok(cert_spki(a.cert_der, a.cert_der_len, &spki_a, &spki_a_len) == 0,
     "certificate DER walks to its SPKI");
  uint8_t dig[32];
  char want[SFK_PIN_SIZE] = "";
  if (spki_a &&
      gnutls_hash_fast(GNUTLS_DIG_SHA256, spki_a, spki_a_len, dig) == 0)
    hex(dig, 32, want);
  is_str(a.pub.pin, want, "pin = SHA-256 of the certificate's SPKI bytes");

  /* Independent pin 2: certtool on the key file. */
  char ct[SFK_PIN_SIZE];
  certtool_pin(path, ct);
  if (ct[0])
    is_str(a.pub.pin, ct, "pin = certtool's pin-sha256 of the key file");
  else
    ok(1, "# SKIP certtool not available");

  char again[SFK_PIN_SIZE];
  is_int(sfk_cert_pin(a.cert_der, a.cert_der_len, again), 0,
         "sfk_cert_pin on our certificate");
  is_str(again, a.pub.pin, "sfk_cert_pin gives the same pin");

  /* The certificate itself. */
  gnutls_x509_crt_t crt;
  gnutls_datum_t cd = {a.cert_der, (unsigned)a.cert_der_len};
  ok(gnutls_x509_crt_init(&crt) == 0 &&
         gnutls_x509_crt_import(crt, &cd, GNUTLS_X509_FMT_DER) == 0,
     "certificate parses");
  char cn[64] = "";
  size_t cnlen = sizeof cn;
  gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn,
                                &cnlen);
  is_str(cn, "sfkit-proxy", "subject CN");
  is_int(gnutls_x509_crt_get_version(crt), 3, "X.509 v3");
  time_t now = time(NULL);
  time_t nb = gnutls_x509_crt_get_activation_time(crt);
  time_t na = gnutls_x509_crt_get_expiration_time(crt);
  ok(nb <= now - 3500 && nb >= now - 3700, "valid from about an hour ago");
  ok(na >= now + 3650LL * 86400 && na <= now + 3660LL * 86400,
     "valid for about ten years");
  is_int(gnutls_x509_crt_get_signature_algorithm(crt), GNUTLS_SIGN_ECDSA_SHA256,
         "signed ECDSA with SHA-256 (P-256 key)");
  unsigned status = 99;
  ok(gnutls_x509_crt_verify(crt, &crt, 1, 0, &status) == 0 && status == 0,
     "self-signature verifies (status %#x)", status);
  gnutls_x509_crt_deinit(crt);

  /* What the QUIC plugin does with cert_der/key_der. */
  gnutls_certificate_credentials_t cred;
  gnutls_datum_t kd = {a.key_der, (unsigned)a.key_der_len};
  ok(gnutls_certificate_allocate_credentials(&cred) == 0 &&
         gnutls_certificate_set_x509_key_mem2(
             cred, &cd, &kd, GNUTLS_X509_FMT_DER, NULL, 0) >= 0,
     "cert_der + key_der (PKCS#8 DER) make GnuTLS credentials");
  gnutls_certificate_free_credentials(cred);

  /* Second load: same key and pin, new certificate. */
  created = -1;
  rc = sfk_ident_load(&b, path, &created, err, sizeof err);
  is_int(rc, 0, "second load");
  is_int(created, 0, "second load does not create");
  is_str(b.pub.pin, a.pub.pin, "same pin across loads");
  ok(b.key_der_len == a.key_der_len &&
         memcmp(b.key_der, a.key_der, a.key_der_len) == 0,
     "same key across loads");
  ok(a.cert_der_len != b.cert_der_len ||
         memcmp(a.cert_der, b.cert_der, a.cert_der_len) != 0,
     "a new certificate at each load");
  uint8_t sa[64], sb[64];
  size_t sal = sizeof sa, sbl = sizeof sb;
  cert_serial(&a, sa, &sal);
  cert_serial(&b, sb, &sbl);
  ok(sal >= 8 && sbl >= 8 && (sal != sbl || memcmp(sa, sb, sal) != 0),
     "serials differ (%zu, %zu bytes)", sal, sbl);
  ok(cert_spki(b.cert_der, b.cert_der_len, &spki_b, &spki_b_len) == 0 &&
         spki_a_len == spki_b_len && memcmp(spki_a, spki_b, spki_a_len) == 0,
     "same SPKI in both certificates");
  ok(stat(path, &st) == 0 && (st.st_mode & 07777) == 0600,
     "reload leaves the mode alone");

  /* Refusals must leave the key file untouched. */
  char before[8192];
  snprintf(before, sizeof before, "%s", slurp(path));

  chmod(path, 0640);
  struct sfk_ident c;
  err[0] = '\0';
  rc = sfk_ident_load(&c, path, NULL, err, sizeof err);
  is_int(rc, -EPERM, "group-readable key file refused");
  ok(strstr(err, path) != NULL, "message names the file: %s", err);
  ok(strstr(err, "chmod 600") != NULL, "message says chmod 600");
  ok(strstr(err, "PRIVATE") == NULL && strstr(err, before + 28) == NULL,
     "no key bytes in the message");
  ok(c.cert_der == NULL && c.key_der == NULL, "nothing returned on error");
  chmod(path, 0604);
  rc = sfk_ident_load(&c, path, NULL, err, sizeof err);
  is_int(rc, -EPERM, "other-readable key file refused");
  chmod(path, 0620);
  rc = sfk_ident_load(&c, path, NULL, err, sizeof err);
  is_int(rc, -EPERM, "group-writable key file refused");
  is_str(slurp(path), before, "refused key file left unchanged");
  chmod(path, 0600);

  sfk_ident_free(&a);
  ok(a.cert_der == NULL && a.key_der == NULL && a.key_der_len == 0,
     "free clears the struct");
  sfk_ident_free(&b);
}

static void test_bad_files(void) {
  char path[PATH_MAX], err[512];
  struct sfk_ident id;

  snprintf(path, sizeof path, "%s/garbage.key", tmpdir);
  write_file(path, "hello, this is not a key\n", 0600);
  int rc = sfk_ident_load(&id, path, NULL, err, sizeof err);
  is_int(rc, -EINVAL, "garbage key file refused");
  ok(strstr(err, path) && strstr(err, "PEM"), "clear message: %s", err);
  ok(strstr(err, "hello") == NULL, "file content not echoed");
  is_str(slurp(path), "hello, this is not a key\n",
         "garbage file not overwritten");

  snprintf(path, sizeof path, "%s/empty.key", tmpdir);
  write_file(path, "", 0600);
  rc = sfk_ident_load(&id, path, NULL, err, sizeof err);
  ok(rc < 0 && strstr(err, path), "empty key file refused: %s", err);

  snprintf(path, sizeof path, "%s/trunc.key", tmpdir);
  write_file(path,
             "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49"
             "\n-----END PRIVATE KEY-----\n",
             0600);
  rc = sfk_ident_load(&id, path, NULL, err, sizeof err);
  ok(rc < 0 && strstr(err, path), "truncated PEM key refused: %s", err);

  snprintf(path, sizeof path, "%s/adir", tmpdir);
  mkdir(path, 0700);
  rc = sfk_ident_load(&id, path, NULL, err, sizeof err);
  ok(rc < 0 && strstr(err, path), "a directory is refused: %s", err);

  rc = sfk_ident_load(&id, "", NULL, err, sizeof err);
  is_int(rc, -EINVAL, "empty path refused");

  snprintf(path, sizeof path, "%s/garbage.key/x.key", tmpdir);
  rc = sfk_ident_load(&id, path, NULL, err, sizeof err);
  ok(rc < 0 && err[0], "parent is a file: error, no crash: %s", err);

  uint8_t junk[64];
  memset(junk, 0x30, sizeof junk);
  char pin[SFK_PIN_SIZE];
  ok(sfk_cert_pin(junk, sizeof junk, pin) < 0, "sfk_cert_pin on junk fails");
  ok(sfk_cert_pin(NULL, 0, pin) < 0, "sfk_cert_pin on nothing fails");
}

/* A key made elsewhere (certtool, Ed25519) is used as is. */
static void test_foreign_key(void) {
  char path[PATH_MAX], cmd[PATH_MAX + 128], err[512];
  snprintf(path, sizeof path, "%s/ed25519.key", tmpdir);
  snprintf(cmd, sizeof cmd,
           "certtool --generate-privkey --key-type ed25519 --no-text "
           "--outfile '%s' >/dev/null 2>&1",
           path);
  if (system(cmd) != 0) {
    ok(1, "# SKIP certtool cannot make an Ed25519 key");
    return;
  }
  chmod(path, 0600);
  struct sfk_ident id;
  int created = -1;
  int rc = sfk_ident_load(&id, path, &created, err, sizeof err);
  is_int(rc, 0, "Ed25519 key loads");
  if (rc)
    printf("# %s\n", err);
  is_int(created, 0, "existing key is not replaced");
  char ct[SFK_PIN_SIZE];
  certtool_pin(path, ct);
  is_str(id.pub.pin, ct, "Ed25519 pin = certtool's pin");
  sfk_ident_free(&id);
}

static void test_pin_valid(void) {
  const char *good =
      "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  ok(sfk_pin_valid(good), "64 lowercase hex digits valid");
  char s[80];
  snprintf(s, sizeof s, "%s", good);
  s[63] = '\0';
  ok(!sfk_pin_valid(s), "63 digits invalid");
  snprintf(s, sizeof s, "%s0", good);
  ok(!sfk_pin_valid(s), "65 digits invalid");
  snprintf(s, sizeof s, "%s", good);
  s[10] = 'A';
  ok(!sfk_pin_valid(s), "uppercase invalid");
  s[10] = 'g';
  ok(!sfk_pin_valid(s), "non-hex invalid");
  s[10] = ' ';
  ok(!sfk_pin_valid(s), "space invalid");
  ok(!sfk_pin_valid(""), "empty invalid");
  ok(!sfk_pin_valid(NULL), "NULL invalid");
  ok(!sfk_pin_valid("sha256:0123"), "prefixed invalid");
}

int main(void) {
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 99;
  }
  test_create_and_reload();
  test_bad_files();
  test_foreign_key();
  test_pin_valid();
  rm_rf(tmpdir);
  return tap_done();
}
