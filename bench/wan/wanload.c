/*
 * wanload: load and latency for the WAN benchmark (bench/wan/wan.sh), in
 * C so that the load generator is never what limits 1 Gbit/s on two cores.
 *
 *   wanload server PORT
 *   wanload bulk    TARGET [-x SOCKS] -n CONNS -t SECONDS
 *   wanload ping    TARGET [-x SOCKS] -c COUNT
 *   wanload loaded  TARGET [-x SOCKS] -n CONNS -t SECONDS
 *   wanload setup   TARGET [-x SOCKS] -c COUNT
 *
 * TARGET and SOCKS are IPv4 HOST:PORT.  With -x the target is reached
 * through that SOCKS5 proxy (no authentication), else dialled directly.
 * A connection's first byte tells the server what to do: 'S' send bytes
 * until the client closes, 'E' echo.
 *
 *   bulk    CONNS connections download at once for SECONDS; only bytes
 *           the client (the receiver) read count.  mbps = bits / SECONDS.
 *   ping    one connection, TCP_NODELAY, 1-byte round trips (20 warm-up).
 *   loaded  bulk with CONNS connections and, on its own connection, the
 *           1-byte ping (3 warm-up rounds) running from the second second
 *           to the end: latency under load.
 *   setup   COUNT times: connect (through SOCKS: until its reply), then
 *           one 1-byte round trip, close.  connect_p50 is until the
 *           connection is usable, first_p50 includes the round trip.
 *
 * One line of key=value pairs on stdout; exit status 1 on any error.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WL_BUF (1 << 20)
#define WL_MAX_CONNS 64
#define WL_MAX_SAMPLES 1000000

static struct sockaddr_in wl_target, wl_socks;
static int wl_use_socks;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what) {
  fprintf(stderr, "wanload: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void fail(const char *what) {
  fprintf(stderr, "wanload: %s\n", what);
  exit(1);
}

static void parse_addr(const char *s, struct sockaddr_in *sa) {
  char host[64];
  const char *c = strrchr(s, ':');

  if (!c || (size_t)(c - s) >= sizeof(host))
    fail("expected IPv4 HOST:PORT");
  memcpy(host, s, (size_t)(c - s));
  host[c - s] = 0;
  memset(sa, 0, sizeof(*sa));
  sa->sin_family = AF_INET;
  sa->sin_port = htons((uint16_t)atoi(c + 1));
  if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
    fail("expected IPv4 HOST:PORT");
}

static void read_exact(int fd, void *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, (char *)buf + got, n - got);
    if (r == 0)
      fail("connection closed early");
    if (r < 0) {
      if (errno == EINTR)
        continue;
      die("read");
    }
    got += (size_t)r;
  }
}

static void write_all(int fd, const void *buf, size_t n) {
  size_t put = 0;
  while (put < n) {
    ssize_t r = write(fd, (const char *)buf + put, n - put);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      die("write");
    }
    put += (size_t)r;
  }
}

/* A connection to the target, usable when this returns. */
static int dial(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  const struct sockaddr_in *first = wl_use_socks ? &wl_socks : &wl_target;

  if (fd < 0)
    die("socket");
  if (connect(fd, (const struct sockaddr *)first, sizeof(*first)) < 0)
    die("connect");
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (wl_use_socks) {
    uint8_t req[3 + 10], rep[10];
    memcpy(req, "\x05\x01\x00", 3);
    req[3] = 5, req[4] = 1, req[5] = 0, req[6] = 1;
    memcpy(req + 7, &wl_target.sin_addr, 4);
    memcpy(req + 11, &wl_target.sin_port, 2);
    write_all(fd, req, sizeof(req)); /* method and request together */
    read_exact(fd, rep, 2);
    if (rep[0] != 5 || rep[1] != 0)
      fail("SOCKS5 method refused");
    read_exact(fd, rep, 10);
    if (rep[1] != 0) {
      fprintf(stderr, "wanload: SOCKS5 reply 0x%02x\n", rep[1]);
      exit(1);
    }
    if (rep[3] != 1)
      fail("SOCKS5 reply with a non-IPv4 address");
  }
  return fd;
}

/* ---- server ---- */

static void *serve(void *arg) {
  int fd = (int)(intptr_t)arg;
  static char zeros[WL_BUF];
  char cmd, buf[65536];
  ssize_t r;

  if (read(fd, &cmd, 1) != 1)
    goto out;
  if (cmd == 'S') {
    while (write(fd, zeros, sizeof(zeros)) > 0)
      ;
  } else if (cmd == 'E') {
    while ((r = read(fd, buf, sizeof(buf))) > 0)
      if (write(fd, buf, (size_t)r) != r)
        break;
  }
out:
  close(fd);
  return NULL;
}

static _Noreturn void server(int port) {
  int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)port)};

  signal(SIGPIPE, SIG_IGN);
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(ls, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(ls, 512) < 0)
    die("listen");
  printf("ready=1\n");
  fflush(stdout);
  for (;;) {
    pthread_t t;
    int fd = accept(ls, NULL, NULL);
    if (fd < 0)
      continue;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (pthread_create(&t, NULL, serve, (void *)(intptr_t)fd) != 0)
      close(fd);
    else
      pthread_detach(t);
  }
}

/* ---- clients ---- */

struct bulk_conn {
  pthread_t t;
  int fd;
  double until;
  uint64_t bytes;
};

static void *bulk_reader(void *arg) {
  struct bulk_conn *c = arg;
  static __thread char buf[WL_BUF];

  while (now_s() < c->until) {
    ssize_t r = read(c->fd, buf, sizeof(buf));
    if (r <= 0)
      break;
    c->bytes += (uint64_t)r;
  }
  return NULL;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double q) {
  size_t i;
  if (!n)
    return 0;
  i = (size_t)(q / 100.0 * (double)n + 0.999999);
  if (i < 1)
    i = 1;
  return v[i - 1];
}

/* Round trips on fd until `until` (or count done), after `warm` not
 * counted; times into v. */
static size_t pingpong(int fd, double *v, size_t max, double until,
                       int warm) {
  size_t n = 0;
  char b = 'p';

  for (int i = 0; i < warm; i++) {
    write_all(fd, &b, 1);
    read_exact(fd, &b, 1);
  }
  while (n < max && (until == 0 || now_s() < until)) {
    double t0 = now_s();
    write_all(fd, &b, 1);
    read_exact(fd, &b, 1);
    v[n++] = (now_s() - t0) * 1e6;
  }
  return n;
}

static void print_lat(const char *pre, double *v, size_t n) {
  qsort(v, n, sizeof(*v), cmp_double);
  printf("%scount=%zu %sp50_us=%.1f %sp99_us=%.1f", pre, n, pre,
         pct(v, n, 50), pre, pct(v, n, 99));
}

static int bulk(int nconns, double secs, int loaded) {
  struct bulk_conn c[WL_MAX_CONNS];
  double t0, until;
  uint64_t total = 0;
  double *v = NULL;
  size_t nv = 0;
  int pfd = -1;

  if (nconns < 1 || nconns > WL_MAX_CONNS)
    fail("-n: 1 to 64");
  if (loaded) {
    v = malloc(sizeof(*v) * WL_MAX_SAMPLES);
    if (!v)
      fail("out of memory");
    pfd = dial();
    write_all(pfd, "E", 1);
  }
  for (int i = 0; i < nconns; i++)
    c[i].fd = dial();
  t0 = now_s();
  until = t0 + secs;
  for (int i = 0; i < nconns; i++) {
    c[i].until = until;
    c[i].bytes = 0;
    write_all(c[i].fd, "S", 1);
    if (pthread_create(&c[i].t, NULL, bulk_reader, &c[i]) != 0)
      fail("pthread_create");
  }
  if (loaded) {
    /* The bulk transfers fill the link first. */
    while (now_s() < t0 + (secs > 3 ? 2 : secs / 2))
      usleep(10000);
    /* Three warm-up rounds, not ping's 20: under load at 100 ms those
     * took two of the last three seconds and left 3-10 round trips. */
    nv = pingpong(pfd, v, WL_MAX_SAMPLES, until, 3);
  }
  for (int i = 0; i < nconns; i++) {
    pthread_join(c[i].t, NULL);
    total += c[i].bytes;
    close(c[i].fd);
  }
  printf("conns=%d seconds=%.1f bytes=%llu mbps=%.1f", nconns, secs,
         (unsigned long long)total, (double)total * 8 / secs / 1e6);
  if (loaded) {
    printf(" ");
    print_lat("ping_", v, nv);
    close(pfd);
    free(v);
  }
  printf("\n");
  return 0;
}

static int ping(long count) {
  double *v = malloc(sizeof(*v) * (size_t)count);
  int fd;
  size_t n;

  if (!v)
    fail("out of memory");
  fd = dial();
  write_all(fd, "E", 1);
  n = pingpong(fd, v, (size_t)count, 0, 20);
  print_lat("", v, n);
  printf("\n");
  close(fd);
  free(v);
  return 0;
}

static int setup(long count) {
  double *vc = malloc(sizeof(double) * (size_t)count);
  double *vf = malloc(sizeof(double) * (size_t)count);
  char b = 'p';

  if (!vc || !vf)
    fail("out of memory");
  for (long i = 0; i < count; i++) {
    double t0 = now_s(), t1;
    int fd = dial();
    t1 = now_s();
    write_all(fd, "E", 1);
    write_all(fd, &b, 1);
    read_exact(fd, &b, 1);
    vc[i] = (t1 - t0) * 1e6;
    vf[i] = (now_s() - t0) * 1e6;
    close(fd);
  }
  qsort(vc, (size_t)count, sizeof(double), cmp_double);
  qsort(vf, (size_t)count, sizeof(double), cmp_double);
  printf("count=%ld connect_p50_us=%.1f first_p50_us=%.1f\n", count,
         pct(vc, (size_t)count, 50), pct(vf, (size_t)count, 50));
  free(vc);
  free(vf);
  return 0;
}

int main(int argc, char **argv) {
  const char *mode;
  int opt, nconns = 1;
  long count = 1000;
  double secs = 5;

  if (argc < 3) {
    fprintf(stderr, "usage: wanload server PORT | wanload bulk|ping|loaded|"
                    "setup HOST:PORT [-x SOCKS] [-n CONNS] [-t SECONDS] "
                    "[-c COUNT]\n");
    return 2;
  }
  mode = argv[1];
  if (strcmp(mode, "server") == 0)
    server(atoi(argv[2]));
  parse_addr(argv[2], &wl_target);
  optind = 3;
  while ((opt = getopt(argc, argv, "x:n:t:c:")) != -1) {
    switch (opt) {
    case 'x':
      parse_addr(optarg, &wl_socks);
      wl_use_socks = 1;
      break;
    case 'n':
      nconns = atoi(optarg);
      break;
    case 't':
      secs = strtod(optarg, NULL);
      break;
    case 'c':
      count = atol(optarg);
      break;
    default:
      return 2;
    }
  }
  if (count < 1 || count > WL_MAX_SAMPLES || secs <= 0)
    fail("bad -c or -t");
  signal(SIGPIPE, SIG_IGN);
  if (strcmp(mode, "bulk") == 0)
    return bulk(nconns, secs, 0);
  if (strcmp(mode, "loaded") == 0)
    return bulk(nconns, secs, 1);
  if (strcmp(mode, "ping") == 0)
    return ping(count);
  if (strcmp(mode, "setup") == 0)
    return setup(count);
  fail("unknown mode");
  return 2;
}
