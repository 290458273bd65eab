/*
 * sfkit-proxy: command line.  Parses options, picks the subcommand, and
 * runs the daemon on the default libev loop.
 */
#include "autoconfig.h"

#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "cfg.h"
#include "daemon.h"
#include "identity.h"
#include "netcheck.h"
#include "log.h"

#define DEFAULT_CONFIG SFK_SYSCONF_DIR "/sfkit-proxy.yaml"

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

static void usage(FILE *out) {
  fprintf(out,
          "Usage: sfkit-proxy [OPTION]...\n"
          "       sfkit-proxy status [-c FILE] [--json]\n"
          "       sfkit-proxy identity [-c FILE]\n"
          "       sfkit-proxy netcheck [-c FILE] [--json]\n"
          "\n"
          "Connect the parties of an MPC study: a local SOCKS5 proxy for\n"
          "10.0.0.<pid>:<port>, carried over authenticated QUIC between the\n"
          "parties' proxies.\n"
          "\n"
          "Options:\n"
          "  -c, --config FILE      config file (default " DEFAULT_CONFIG
          ";\n"
          "                         built-in two-party loopback defaults when\n"
          "                         that file does not exist)\n"
          "      --pid N            this party's PID (overrides party.pid)\n"
          "      --study ID         study id (overrides party.study_id)\n"
          "      --api URL          sfkit website API (overrides registry.api_url)\n"
          "      --auth-key-file F  auth key file (overrides registry.auth_key_file)\n"
          "  -v, --verbose          more logging (repeat for trace)\n"
          "  -q, --quiet            only warnings and errors\n"
          "      --log-format FMT   text or json\n"
          "      --check-config     load config and plugins, print FILE: OK or\n"
          "                         each error as FILE:LINE:COLUMN: message\n"
          "      --version          print the version\n"
          "  -h, --help             this help\n"
          "\n"
          "Subcommands:\n"
          "  status                 ask the running daemon, over\n"
          "                         control.socket, for its state: mapping,\n"
          "                         relay, registry, peers (--json: as JSON)\n"
          "  identity               create the key if missing and print its\n"
          "                         public-key pin (for peers' configs)\n"
          "  netcheck               probe the NAT with the STUN servers of\n"
          "                         discovery: will direct connections work?\n"
          "                         (see sfkit-proxy netcheck --help)\n"
          "\n"
          "Signals: SIGTERM/SIGINT stop cleanly (exit 0); SIGHUP re-reads the\n"
          "peer list and log level.  Exit status: 0 clean stop, 1 runtime\n"
          "failure, 2 usage or config error.\n"
          "Environment: SFKIT_PROXY_PLUGIN_DIR (colon-separated) overrides the\n"
          "plugin directory " SFK_PLUGIN_DIR ".\n");
}

static int parse_pid(const char *s, long long *out) {
  uint64_t v;
  if (sfk_parse_uint(s, 0, 0xffffff, &v) < 0)
    return -1;
  *out = (long long)v;
  return 0;
}

/* No -c: the installed file if it exists, else the built-in defaults. */
static const char *pick_config(const char *given) {
  if (given)
    return given;
  struct stat st;
  if (stat(DEFAULT_CONFIG, &st) == 0)
    return DEFAULT_CONFIG;
  return NULL;
}

static int cmd_netcheck(int argc, char **argv) {
  const char *cfgpath = NULL;
  static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                       {"json", no_argument, NULL, 'j'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  int c, json = 0, verbose = 0;
  optind = 1;
  while ((c = getopt_long(argc, argv, "c:vh", opts, NULL)) != -1) {
    if (c == 'c') {
      cfgpath = optarg;
    } else if (c == 'j') {
      json = 1;
    } else if (c == 'v') {
      verbose++;
    } else if (c == 'h') {
      printf("Usage: sfkit-proxy netcheck [-c FILE] [--json] [-v]\n"
             "Probe the NAT with the configured STUN servers (discovery:\n"
             "plugin: stun) and say whether direct connections can work.\n"
             "Needs no running daemon.  Exit status: 0 direct connections\n"
             "expected, 1 the mapping depends on the destination (a relay\n"
             "is needed), 2 usage or config error, 3 no STUN server\n"
             "answered, 4 only one vantage point answered (behaviour\n"
             "unknown), 5 runtime failure.\n");
      return EXIT_OK;
    } else {
      return EXIT_USAGE;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "sfkit-proxy netcheck: unexpected argument '%s'\n",
            argv[optind]);
    return EXIT_USAGE;
  }
  struct sfk_overrides ov = {.pid = -1, .log_level = -1, .log_format = -1};
  if (verbose)
    ov.log_level = verbose > 1 ? SFK_LOG_DEBUG : SFK_LOG_INFO;
  return sfk_netcheck_run(pick_config(cfgpath), &ov, json);
}

static int cmd_identity(int argc, char **argv) {
  const char *cfgpath = NULL;
  static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
    if (c == 'c')
      cfgpath = optarg;
    else if (c == 'h') {
      printf("Usage: sfkit-proxy identity [-c FILE]\n"
             "Create the identity key named by identity.key_file if missing\n"
             "and print its public-key pin (lowercase hex SHA-256 of the\n"
             "SubjectPublicKeyInfo).\n");
      return EXIT_OK;
    } else
      return EXIT_USAGE;
  }
  if (optind < argc) {
    fprintf(stderr, "sfkit-proxy identity: unexpected argument '%s'\n",
            argv[optind]);
    return EXIT_USAGE;
  }
  struct sfk_overrides ov = {.pid = -1, .log_level = -1, .log_format = -1};
  struct sfk_config cfg;
  cfgpath = pick_config(cfgpath);
  int rc = sfk_config_load(&cfg, cfgpath, &ov, stderr);
  if (rc < 0) {
    sfk_config_free(&cfg);
    return EXIT_USAGE; /* errors already printed */
  }
  struct sfk_ident id;
  char err[512];
  int created = 0;
  rc = sfk_ident_load(&id, cfg.key_file, &created, err, sizeof err);
  if (rc < 0) {
    fprintf(stderr, "sfkit-proxy: %s\n", err);
    sfk_config_free(&cfg);
    return EXIT_RUNTIME;
  }
  if (created)
    fprintf(stderr, "sfkit-proxy: created a new key in %s\n", cfg.key_file);
  printf("%s\n", id.pub.pin);
  sfk_ident_free(&id);
  sfk_config_free(&cfg);
  return EXIT_OK;
}

/* How long `status` waits for the daemon: it answers from its loop at
 * once, so this only matters when the daemon is wedged. */
#define STATUS_TIMEOUT_S 10

static int cmd_status(int argc, char **argv) {
  const char *cfgpath = NULL;
  int json = 0, c;
  enum { OPT_JSON = 256 };
  static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                       {"json", no_argument, NULL, OPT_JSON},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  optind = 1;
  opterr = 0; /* getopt would name the program "status" */
  while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
    if (c == 'c') {
      cfgpath = optarg;
    } else if (c == OPT_JSON) {
      json = 1;
    } else if (c == 'h') {
      printf("Usage: sfkit-proxy status [-c FILE] [--json]\n"
             "Ask the daemon started with the same config for its state, over\n"
             "the Unix socket named by control.socket: its addresses, the\n"
             "public mapping, the NAT, the relay, the registry's last publish\n"
             "and read, every peer (state, path, address), and what the\n"
             "plugins report (traffic, round-trip times, ...).\n"
             "\n"
             "  -c, --config FILE  config file (default " DEFAULT_CONFIG ")\n"
             "      --json         one JSON object instead of text\n"
             "  -h, --help         this help\n"
             "\n"
             "Exit status: 0 the daemon answered, 1 no daemon answers (or\n"
             "control.socket is not set), 2 usage or config error.\n");
      return EXIT_OK;
    } else {
      fprintf(stderr,
              "sfkit-proxy status: %s '%s'\nTry 'sfkit-proxy status "
              "--help'.\n",
              optopt == 'c' ? "missing the file after" : "unknown option",
              argv[optind - 1]);
      opterr = 1;
      return EXIT_USAGE;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "sfkit-proxy status: unexpected argument '%s'\n",
            argv[optind]);
    return EXIT_USAGE;
  }
  struct sfk_overrides ov = {.pid = -1, .log_level = -1, .log_format = -1};
  struct sfk_config cfg;
  cfgpath = pick_config(cfgpath);
  const char *shown = cfgpath ? cfgpath : "the config (built-in defaults)";
  if (sfk_config_load(&cfg, cfgpath, &ov, stderr) < 0) {
    sfk_config_free(&cfg);
    return EXIT_USAGE; /* errors already printed */
  }
  char path[sizeof(((struct sockaddr_un *)NULL)->sun_path)];
  if (!cfg.control_socket[0] ||
      strlen(cfg.control_socket) >= sizeof path) {
    fprintf(stderr,
            "sfkit-proxy status: control.socket is not set in %s; set "
            "control.socket in %s to use status (and restart the daemon)\n",
            shown, cfgpath ? cfgpath : "a config file");
    sfk_config_free(&cfg);
    return EXIT_RUNTIME;
  }
  snprintf(path, sizeof path, "%s", cfg.control_socket);
  sfk_config_free(&cfg);

  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  memcpy(sa.sun_path, path, strlen(path) + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    fprintf(stderr, "sfkit-proxy status: socket: %s\n", strerror(errno));
    return EXIT_RUNTIME;
  }
  struct timeval tv = {.tv_sec = STATUS_TIMEOUT_S};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int e = errno;
    if (e == ENOENT || e == ECONNREFUSED || e == ENOTSOCK)
      fprintf(stderr,
              "sfkit-proxy status: no daemon is answering on %s (not "
              "running, or started with another config?)\n",
              path);
    else
      fprintf(stderr, "sfkit-proxy status: cannot connect to %s: %s%s\n",
              path, strerror(e),
              e == EACCES ? " (run as the daemon's user)" : "");
    close(fd);
    return EXIT_RUNTIME;
  }
  const char *req = json ? "status json\n" : "status text\n";
  if (send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req)) {
    /* A busy daemon answers and closes before reading: read that. */
    int e = errno;
    if (e != EPIPE && e != ECONNRESET) {
      fprintf(stderr, "sfkit-proxy status: cannot send to %s: %s\n", path,
              strerror(e));
      close(fd);
      return EXIT_RUNTIME;
    }
  }
  /* Copy the answer through; an "error:" line goes to stderr instead. */
  char buf[16384];
  size_t total = 0;
  int is_error = 0;
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      int e = errno;
      fprintf(stderr, "sfkit-proxy status: %s\n",
              e == EAGAIN || e == EWOULDBLOCK
                  ? "the daemon did not answer in time"
                  : strerror(e));
      close(fd);
      return EXIT_RUNTIME;
    }
    if (n == 0)
      break;
    if (total == 0 && n >= 6 && memcmp(buf, "error:", 6) == 0)
      is_error = 1;
    if (is_error)
      fprintf(stderr, "sfkit-proxy status: %.*s", (int)n, buf);
    else if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
      break;
    total += (size_t)n;
  }
  close(fd);
  if (fflush(stdout) != 0 || ferror(stdout)) {
    fprintf(stderr, "sfkit-proxy status: cannot write the answer: %s\n",
            strerror(errno));
    return EXIT_RUNTIME;
  }
  if (total == 0) {
    fprintf(stderr, "sfkit-proxy status: the daemon on %s closed the "
                    "connection without an answer\n", path);
    return EXIT_RUNTIME;
  }
  return is_error ? EXIT_RUNTIME : EXIT_OK;
}

int main(int argc, char **argv) {
  enum {
    OPT_PID = 256,
    OPT_STUDY,
    OPT_API,
    OPT_AUTH,
    OPT_LOGFMT,
    OPT_CHECK,
    OPT_VERSION
  };
  static const struct option opts[] = {
      {"config", required_argument, NULL, 'c'},
      {"pid", required_argument, NULL, OPT_PID},
      {"study", required_argument, NULL, OPT_STUDY},
      {"api", required_argument, NULL, OPT_API},
      {"auth-key-file", required_argument, NULL, OPT_AUTH},
      {"verbose", no_argument, NULL, 'v'},
      {"quiet", no_argument, NULL, 'q'},
      {"log-format", required_argument, NULL, OPT_LOGFMT},
      {"check-config", no_argument, NULL, OPT_CHECK},
      {"version", no_argument, NULL, OPT_VERSION},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};

  /* Secrets live in this process: keep them out of core files, and keep
   * other processes of the same user from reading its memory through
   * /proc or ptrace (not dumpable: /proc/PID/mem and friends belong to
   * root). */
  struct rlimit nocore = {0, 0};
  setrlimit(RLIMIT_CORE, &nocore);
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
#ifdef M_TRIM_THRESHOLD
  /* Buffers come and go in bursts of up to a few MiB (a batch of
   * datagrams for a stream is queued, written, freed).  glibc returns
   * free heap above 128 KiB to the kernel at once, so every burst paid
   * for brk() and for faulting the same pages in again.  Keep up to
   * 4 MiB; peak RSS is unchanged. */
  mallopt(M_TRIM_THRESHOLD, 4 * 1024 * 1024);
#endif

  if (argc > 1 && strcmp(argv[1], "identity") == 0)
    return cmd_identity(argc - 1, argv + 1);
  if (argc > 1 && strcmp(argv[1], "status") == 0)
    return cmd_status(argc - 1, argv + 1);
  if (argc > 1 && strcmp(argv[1], "netcheck") == 0)
    return cmd_netcheck(argc - 1, argv + 1);

  const char *cfgpath = NULL;
  struct sfk_overrides ov = {.pid = -1, .log_level = -1, .log_format = -1};
  int verbose = 0, quiet = 0, check = 0, c;
  while ((c = getopt_long(argc, argv, "c:vqh", opts, NULL)) != -1) {
    switch (c) {
    case 'c':
      cfgpath = optarg;
      break;
    case OPT_PID:
      if (parse_pid(optarg, &ov.pid) < 0) {
        fprintf(stderr, "sfkit-proxy: --pid: '%s' is not a PID (0..16777215)\n",
                optarg);
        return EXIT_USAGE;
      }
      break;
    case OPT_STUDY:
      ov.study_id = optarg;
      break;
    case OPT_API:
      ov.api_url = optarg;
      break;
    case OPT_AUTH:
      ov.auth_key_file = optarg;
      break;
    case 'v':
      verbose++;
      break;
    case 'q':
      quiet = 1;
      break;
    case OPT_LOGFMT:
      ov.log_format = sfk_log_format_parse(optarg);
      if (ov.log_format < 0) {
        fprintf(stderr, "sfkit-proxy: --log-format: use text or json\n");
        return EXIT_USAGE;
      }
      break;
    case OPT_CHECK:
      check = 1;
      break;
    case OPT_VERSION:
      printf("sfkit-proxy %s (plugin ABI %d)\n", PACKAGE_VERSION,
             SFK_ABI_VERSION);
      return EXIT_OK;
    case 'h':
      usage(stdout);
      return EXIT_OK;
    default:
      fprintf(stderr, "Try 'sfkit-proxy --help'.\n");
      return EXIT_USAGE;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "sfkit-proxy: unexpected argument '%s'\nTry 'sfkit-proxy "
                    "--help'.\n",
            argv[optind]);
    return EXIT_USAGE;
  }

  const char *path = pick_config(cfgpath);
  struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO);
  if (!loop) {
    fprintf(stderr, "sfkit-proxy: cannot initialise the event loop\n");
    return EXIT_RUNTIME;
  }
  struct sfk_daemon d;
  int rc = sfk_daemon_init(&d, loop, path, &ov, check);
  /* Command-line verbosity applies on top of the config's level. */
  int level = d.cfg.doc ? sfk_log_level() : SFK_LOG_INFO;
  if (ov.log_level < 0 && (verbose || quiet)) {
    level = quiet ? SFK_LOG_WARN : level + verbose;
    if (level > SFK_LOG_TRACE)
      level = SFK_LOG_TRACE;
    sfk_log_setup(level, -1);
    d.ov.log_level = level;
  }
  const char *shown = path ? path : "(built-in defaults)";
  if (check) {
    if (rc == 0)
      printf("%s: OK\n", shown);
    sfk_daemon_free(&d);
    return rc == 0 ? EXIT_OK : EXIT_USAGE;
  }
  if (rc < 0) {
    sfk_daemon_free(&d);
    return rc == -EINVAL || rc == -ENOENT ? EXIT_USAGE : EXIT_RUNTIME;
  }
  if (!path)
    sfk_info("daemon", "no config file at %s: using the built-in defaults",
             DEFAULT_CONFIG);
  rc = sfk_daemon_start(&d);
  if (rc < 0) {
    sfk_daemon_stop(&d);
    sfk_daemon_free(&d);
    return EXIT_RUNTIME;
  }
  ev_run(loop, 0);
  sfk_daemon_free(&d);
  sfk_info("daemon", "stopped");
  ev_loop_destroy(loop);
  return EXIT_OK;
}
