/*
 * quic_initial_flood: a test tool (built for `make check` only) that sends
 * real QUIC v1 client Initials to a server and never answers.
 *
 * Each Initial comes from a fresh ngtcp2 client connection with a random
 * DCID and a GnuTLS ClientHello (ALPN "sfkit", TLS 1.3 as the daemon
 * offers it): exactly what a server must take for a new client.  The
 * first datagram is sent from one of N UDP sockets (round robin), then the
 * connection is thrown away, so a server that admits it holds a
 * handshake until its handshake timeout.  Retry packets and everything
 * else the server sends are ignored (a spoofing flooder never sees them).
 *
 * Usage: quic_initial_flood [options] HOST:PORT
 *   --rate N       Initials a second (default 200)
 *   --duration S   stop after S seconds (default 0: until SIGTERM/SIGINT)
 *   --sources N    source sockets (default 64)
 *   --spread       bind source i to 127.0.0.(2 + i % 253) instead of
 *                  127.0.0.1 (loopback accepts all of 127/8): many source
 *                  IPs, as a spoofed flood has
 *   --progress N   print the count every N Initials (default 1000)
 * Prints "sent N" when it ends; exit 0 when at least one Initial went out.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>

#define ALPN "sfkit"
/* As plugins/quic/quic_tls.c offers it. */
static const char priority[] =
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:"
    "+CHACHA20-POLY1305:-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:"
    "+GROUP-SECP384R1:%DISABLE_TLS13_COMPAT_MODE";

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

struct client {
  ngtcp2_crypto_conn_ref ref;
  ngtcp2_conn *conn;
  gnutls_session_t tls;
};

static ngtcp2_conn *get_conn(ngtcp2_crypto_conn_ref *ref) {
  return ((struct client *)ref->user_data)->conn;
}

static uint64_t now_ns(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void cb_rand(uint8_t *dest, size_t destlen, const ngtcp2_rand_ctx *rc) {
  (void)rc;
  (void)gnutls_rnd(GNUTLS_RND_RANDOM, dest, destlen);
  /* As the daemon does (plugins/quic/quic_conn.c, cb_rand): ngtcp2 0.12's
   * one-byte coin toss for greasing the QUIC bit always says "keep it". */
  if (destlen == 1)
    dest[0] &= 0xfe;
}

static int cb_get_new_connection_id(ngtcp2_conn *conn, ngtcp2_cid *cid,
                                    uint8_t *token, size_t cidlen, void *ud) {
  (void)conn;
  (void)ud;
  if (gnutls_rnd(GNUTLS_RND_RANDOM, cid->data, cidlen) != 0 ||
      gnutls_rnd(GNUTLS_RND_RANDOM, token, NGTCP2_STATELESS_RESET_TOKENLEN) !=
          0)
    return NGTCP2_ERR_CALLBACK_FAILURE;
  cid->datalen = cidlen;
  return 0;
}

static int session_new(struct client *c,
                       gnutls_certificate_credentials_t cred) {
  static const gnutls_datum_t alpn = {(unsigned char *)ALPN,
                                      sizeof(ALPN) - 1};
  gnutls_session_t s;

  if (gnutls_init(&s, GNUTLS_CLIENT | GNUTLS_NO_END_OF_EARLY_DATA |
                          GNUTLS_NO_TICKETS) < 0)
    return -1;
  if (gnutls_priority_set_direct(s, priority, NULL) < 0 ||
      ngtcp2_crypto_gnutls_configure_client_session(s) != 0 ||
      gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred) < 0 ||
      gnutls_alpn_set_protocols(s, &alpn, 1, GNUTLS_ALPN_MANDATORY) < 0) {
    gnutls_deinit(s);
    return -1;
  }
  gnutls_session_set_ptr(s, &c->ref);
  c->tls = s;
  return 0;
}

/* One client Initial datagram into buf; its length, or -1. */
static ssize_t make_initial(gnutls_certificate_credentials_t cred,
                            const struct sockaddr_in *local,
                            const struct sockaddr_in *remote, uint8_t *buf,
                            size_t bufsz) {
  struct client c;
  ngtcp2_callbacks cb;
  ngtcp2_settings st;
  ngtcp2_transport_params tp;
  ngtcp2_path path;
  ngtcp2_pkt_info pi;
  ngtcp2_cid dcid, scid;
  ngtcp2_ssize n = -1;

  memset(&c, 0, sizeof(c));
  c.ref.get_conn = get_conn;
  c.ref.user_data = &c;
  memset(&cb, 0, sizeof(cb));
  cb.client_initial = ngtcp2_crypto_client_initial_cb;
  cb.recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb;
  cb.encrypt = ngtcp2_crypto_encrypt_cb;
  cb.decrypt = ngtcp2_crypto_decrypt_cb;
  cb.hp_mask = ngtcp2_crypto_hp_mask_cb;
  cb.recv_retry = ngtcp2_crypto_recv_retry_cb;
  cb.update_key = ngtcp2_crypto_update_key_cb;
  cb.delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb;
  cb.delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
  cb.get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb;
  cb.rand = cb_rand;
  cb.get_new_connection_id = cb_get_new_connection_id;

  dcid.datalen = 18;
  scid.datalen = 16;
  if (gnutls_rnd(GNUTLS_RND_RANDOM, dcid.data, dcid.datalen) != 0 ||
      gnutls_rnd(GNUTLS_RND_RANDOM, scid.data, scid.datalen) != 0)
    return -1;
  ngtcp2_settings_default(&st);
  st.initial_ts = now_ns();
  ngtcp2_transport_params_default(&tp);
  tp.initial_max_streams_bidi = 16;
  tp.initial_max_data = 1 << 20;
  tp.initial_max_stream_data_bidi_local = 1 << 18;
  tp.initial_max_stream_data_bidi_remote = 1 << 18;
  path.local.addr = (ngtcp2_sockaddr *)local;
  path.local.addrlen = sizeof(*local);
  path.remote.addr = (ngtcp2_sockaddr *)remote;
  path.remote.addrlen = sizeof(*remote);
  path.user_data = NULL;
  if (ngtcp2_conn_client_new(&c.conn, &dcid, &scid, &path,
                             NGTCP2_PROTO_VER_V1, &cb, &st, &tp, NULL,
                             &c) != 0)
    return -1;
  if (session_new(&c, cred) == 0) {
    ngtcp2_conn_set_tls_native_handle(c.conn, c.tls);
    memset(&pi, 0, sizeof(pi));
    n = ngtcp2_conn_write_pkt(c.conn, NULL, &pi, buf, bufsz, now_ns());
  }
  ngtcp2_conn_del(c.conn);
  if (c.tls)
    gnutls_deinit(c.tls);
  return n > 0 ? (ssize_t)n : -1;
}

static void usage(void) {
  fprintf(stderr, "usage: quic_initial_flood [--rate N] [--duration S] "
                  "[--sources N] [--spread] [--progress N] HOST:PORT\n");
  exit(2);
}

int main(int argc, char **argv) {
  double rate = 200, duration = 0;
  long nsrc = 64, progress = 1000;
  int spread = 0, i;
  const char *target = NULL;
  struct sockaddr_in remote, *locals;
  int *socks;
  gnutls_certificate_credentials_t cred;
  uint8_t buf[1500];
  uint64_t start, next, gap, sent = 0, failed = 0;
  char host[64];
  const char *colon;

  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--rate") == 0 && i + 1 < argc)
      rate = atof(argv[++i]);
    else if (strcmp(argv[i], "--duration") == 0 && i + 1 < argc)
      duration = atof(argv[++i]);
    else if (strcmp(argv[i], "--sources") == 0 && i + 1 < argc)
      nsrc = atol(argv[++i]);
    else if (strcmp(argv[i], "--progress") == 0 && i + 1 < argc)
      progress = atol(argv[++i]);
    else if (strcmp(argv[i], "--spread") == 0)
      spread = 1;
    else if (argv[i][0] == '-' || target)
      usage();
    else
      target = argv[i];
  }
  if (!target || rate <= 0 || nsrc < 1 || nsrc > 4096 || progress < 1)
    usage();
  colon = strrchr(target, ':');
  if (!colon || (size_t)(colon - target) >= sizeof(host))
    usage();
  memcpy(host, target, (size_t)(colon - target));
  host[colon - target] = '\0';
  memset(&remote, 0, sizeof(remote));
  remote.sin_family = AF_INET;
  remote.sin_port = htons((uint16_t)atoi(colon + 1));
  if (inet_pton(AF_INET, host, &remote.sin_addr) != 1) {
    fprintf(stderr, "quic_initial_flood: %s is no IPv4 address\n", host);
    return 2;
  }

  socks = calloc((size_t)nsrc, sizeof(*socks));
  locals = calloc((size_t)nsrc, sizeof(*locals));
  if (!socks || !locals)
    return 1;
  for (i = 0; i < nsrc; i++) {
    socklen_t sl = sizeof(locals[i]);

    locals[i].sin_family = AF_INET;
    locals[i].sin_addr.s_addr =
        htonl(spread ? 0x7f000002u + (uint32_t)(i % 253) : 0x7f000001u);
    socks[i] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (socks[i] < 0 ||
        bind(socks[i], (struct sockaddr *)&locals[i], sizeof(locals[i])) != 0 ||
        getsockname(socks[i], (struct sockaddr *)&locals[i], &sl) != 0) {
      fprintf(stderr, "quic_initial_flood: source socket %d: %s\n", i,
              strerror(errno));
      return 1;
    }
  }
  if (gnutls_certificate_allocate_credentials(&cred) < 0)
    return 1;
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  signal(SIGPIPE, SIG_IGN);

  gap = (uint64_t)(1e9 / rate);
  start = next = now_ns();
  while (!stop) {
    uint64_t t = now_ns();
    int k = (int)(sent % (uint64_t)nsrc);
    ssize_t n;

    if (duration > 0 && t - start >= (uint64_t)(duration * 1e9))
      break;
    if (t < next) {
      struct timespec d = {0, (long)(next - t)};
      nanosleep(&d, NULL);
      continue;
    }
    next += gap;
    if (next + 1000000000u < t) /* fell behind by a second: do not burst */
      next = t;
    n = make_initial(cred, &locals[k], &remote, buf, sizeof(buf));
    if (n < 0) {
      if (++failed > 100) {
        fprintf(stderr, "quic_initial_flood: cannot build Initials\n");
        break;
      }
      continue;
    }
    if (sendto(socks[k], buf, (size_t)n, 0, (struct sockaddr *)&remote,
               sizeof(remote)) < 0 &&
        errno != EAGAIN && errno != ECONNREFUSED) {
      fprintf(stderr, "quic_initial_flood: sendto: %s\n", strerror(errno));
      continue;
    }
    sent++;
    if (sent % (uint64_t)progress == 0) {
      printf("%llu\n", (unsigned long long)sent);
      fflush(stdout);
    }
    /* Drain what the server sent back (Initial/Handshake, Retry). */
    while (recv(socks[k], buf, sizeof(buf), 0) > 0)
      ;
  }
  printf("sent %llu\n", (unsigned long long)sent);
  gnutls_certificate_free_credentials(cred);
  for (i = 0; i < nsrc; i++)
    close(socks[i]);
  free(socks);
  free(locals);
  return sent > 0 ? 0 : 1;
}
