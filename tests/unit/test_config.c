/* Unit tests for the daemon's config schema, overrides and queries. */
#include "autoconfig.h" /* autoconf: first in every .c file */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "tap.h"

/* struct sfk_config is large: one static instance, reloaded per test. */
static struct sfk_config cfg;

struct cap {
  FILE *f;
  char *buf;
  size_t len;
};

static void cap_open(struct cap *c) {
  c->buf = NULL;
  c->len = 0;
  c->f = open_memstream(&c->buf, &c->len);
  if (!c->f) {
    printf("Bail out! open_memstream\n");
    exit(99);
  }
}

static const char *cap_text(struct cap *c) {
  fflush(c->f);
  return c->buf ? c->buf : "";
}

static void cap_close(struct cap *c) {
  fclose(c->f);
  free(c->buf);
}

/* Load text as "c.yaml"; errors go to c (opened here). */
static int load_ov(struct cap *c, const char *text,
                   const struct sfk_overrides *ov) {
  cap_open(c);
  return sfk_config_load_string(&cfg, "c.yaml", text, strlen(text), ov, c->f);
}

static int load(struct cap *c, const char *text) {
  return load_ov(c, text, NULL);
}

/* Expect text to fail with exactly `want` on the sink. */
static void fails(const char *text, const char *want, const char *name) {
  struct cap c;
  is_int(load(&c, text), -EINVAL, name);
  is_str(cap_text(&c), want, name);
  sfk_config_free(&cfg);
  cap_close(&c);
}

/* Expect text to load without a message. */
static void loads(const char *text, const char *name) {
  struct cap c;
  int rc = load(&c, text);
  is_int(rc, 0, name);
  if (rc)
    printf("# %s", cap_text(&c));
  sfk_config_free(&cfg);
  cap_close(&c);
}

static const char *addr(const struct sockaddr_storage *ss, char *buf,
                        size_t len) {
  char ip[INET6_ADDRSTRLEN];
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *in = (const void *)ss;
    inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
    snprintf(buf, len, "%s:%u", ip, ntohs(in->sin_port));
  } else if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const void *)ss;
    inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
    snprintf(buf, len, "[%s]:%u", ip, ntohs(in6->sin6_port));
  } else {
    snprintf(buf, len, "none");
  }
  return buf;
}

/* ------------------------------------------------------------------ */

static void test_builtin_default(void) {
  char b[80];
  struct cap c;
  cap_open(&c);
  is_int(sfk_config_load(&cfg, NULL, NULL, c.f), 0, "built-in default loads");
  is_str(cap_text(&c), "", "built-in default: no messages");
  is_int(cfg.pid, 0, "default pid 0");
  is_int(cfg.net, 0x0a000000, "default network 10.0.0.0");
  is_int(cfg.prefix, 24, "default prefix /24");
  is_str(addr(&cfg.socks_listen, b, sizeof b), "127.0.0.1:1080",
         "default socks listen");
  is_int(cfg.socks_listenlen, sizeof(struct sockaddr_in), "socks len");
  is_str(addr(&cfg.udp_bind, b, sizeof b), "127.0.0.1:0", "default udp bind");
  is_str(cfg.key_file, "state/identity.key", "default key file");
  is_str(cfg.discovery.name, "none", "discovery none");
  is_str(cfg.registry.name, "static", "registry static");
  is_str(cfg.transport.name, "quic", "transport quic");
  is_str(cfg.relay.name, "", "no relay");
  ok(cfg.relay.section == NULL, "no relay section");
  ok(cfg.registry.section != NULL, "registry section kept for the plugin");
  is_int(cfg.nservices, 1, "one service");
  is_int(cfg.services[0].port_lo, 8000, "service from 8000");
  is_int(cfg.services[0].port_hi, 8999, "service to 8999");
  ok(cfg.services[0].all_peers, "service open to all peers");
  is_str(addr(&cfg.services[0].host, b, sizeof b), "127.0.0.1:0",
         "service host");
  is_int(cfg.log_level, SFK_LOG_INFO, "log info");
  is_int(cfg.log_format, SFK_LOGFMT_TEXT, "log text");
  is_str(cfg.control_socket, "", "no control socket");
  is_str(cfg.study_id, "", "no study");
  sfk_config_free(&cfg);
  ok(cfg.doc == NULL, "free clears doc");
  sfk_config_free(&cfg); /* twice is harmless */
  cap_close(&c);

  struct sfk_overrides ov;
  sfk_overrides_init(&ov);
  ov.pid = 1;
  cap_open(&c);
  is_int(sfk_config_load(&cfg, NULL, &ov, c.f), 0, "default with --pid 1");
  is_int(cfg.pid, 1, "pid overridden");
  sfk_config_free(&cfg);
  cap_close(&c);
}

static void test_minimal_defaults(void) {
  char dir[] = "/tmp/sfk_test_config_XXXXXX", path[128], want[256], b[80];
  if (!mkdtemp(dir)) {
    printf("Bail out! mkdtemp\n");
    exit(99);
  }
  snprintf(path, sizeof path, "%s/site.yaml", dir);
  FILE *f = fopen(path, "w");
  if (!f)
    exit(99);
  fputs("party:\n  pid: 3\n", f);
  fclose(f);
  struct cap c;
  cap_open(&c);
  is_int(sfk_config_load(&cfg, path, NULL, c.f), 0, "minimal file loads");
  is_str(cap_text(&c), "", "minimal: no messages");
  is_int(cfg.pid, 3, "pid 3");
  is_int(cfg.net, 0x0a000000, "network default");
  is_int(cfg.prefix, 24, "prefix default");
  is_str(addr(&cfg.socks_listen, b, sizeof b), "127.0.0.1:1080",
         "socks default");
  is_str(addr(&cfg.udp_bind, b, sizeof b), "0.0.0.0:0", "udp default");
  snprintf(want, sizeof want, "%s/state/identity.key", dir);
  is_str(cfg.key_file, want, "key file relative to the config folder");
  is_str(cfg.discovery.name, "none", "discovery default none");
  is_str(cfg.registry.name, "static", "registry default static");
  is_str(cfg.transport.name, "quic", "transport default quic");
  ok(cfg.registry.section == NULL && cfg.transport.section == NULL,
     "absent sections are NULL");
  is_int(cfg.nservices, 0, "no services by default");
  ok(sfk_config_service(&cfg, 0, 8000) == NULL, "nothing reachable");
  is_int(cfg.log_level, SFK_LOG_INFO, "log default info");
  sfk_config_free(&cfg);
  cap_close(&c);
  unlink(path);

  cap_open(&c);
  errno = 0;
  is_int(sfk_config_load(&cfg, path, NULL, c.f), -ENOENT,
         "missing file: -ENOENT");
  sfk_config_free(&cfg);
  cap_close(&c);
  rmdir(dir);
}

static const char spec_example[] =
    "party:\n"
    "  pid: 1\n"
    "  study_id: \"abc123\"\n"
    "network: 10.0.0.0/24\n"
    "socks:\n"
    "  listen: 127.0.0.1:1080\n"
    "udp:\n"
    "  bind: 0.0.0.0:0\n"
    "identity:\n"
    "  key_file: state/identity.key\n"
    "discovery:\n"
    "  plugin: stun\n"
    "  servers: [\"stun:stun.l.google.com:19302\", "
    "\"stun:stun.cloudflare.com:3478\"]\n"
    "  keepalive: 25s\n"
    "registry:\n"
    "  plugin: sfkit\n"
    "  api_url: https://sfkit.org/api\n"
    "  auth_key_file: auth_key.txt\n"
    "  poll: 10s\n"
    "transport:\n"
    "  plugin: quic\n"
    "  idle_timeout: 24h\n"
    "  keepalive: 15s\n"
    "  relay:\n"
    "    plugin: turn\n"
    "    server: turn:turn.example.org:3478\n"
    "    username: site-a\n"
    "    password_file: turn.pass\n"
    "services:\n"
    "  - ports: 8100-8199\n"
    "    host: 127.0.0.1\n"
    "    peers: all\n"
    "control:\n"
    "  socket: state/control.sock\n"
    "log:\n"
    "  level: info\n"
    "  format: text\n";

static void test_spec_example(void) {
  struct cap c;
  int rc = load(&c, spec_example);
  is_int(rc, 0, "SPEC example loads");
  is_str(cap_text(&c), "", "SPEC example: no messages");
  is_int(cfg.pid, 1, "pid");
  is_str(cfg.study_id, "abc123", "study_id");
  is_str(cfg.discovery.name, "stun", "discovery stun");
  is_str(cfg.registry.name, "sfkit", "registry sfkit");
  is_str(cfg.transport.name, "quic", "transport quic");
  is_str(cfg.relay.name, "turn", "relay turn");
  ok(cfg.relay.section != NULL &&
         sfk_cfg_get(cfg.relay.section, "server") != NULL,
     "relay section handed on");
  is_str(cfg.control_socket, "state/control.sock", "control socket");
  is_int(cfg.nservices, 1, "one service");

  /* plugin keys are the plugin's: checked with its list */
  static const char *const quic_keys[] = {"idle_timeout", "keepalive", NULL};
  static const char *const turn_keys[] = {"server", "username", "password_file",
                                          NULL};
  static const char *const stun_keys[] = {"servers", NULL};
  is_int(sfk_config_check_plugin_keys(&cfg, SFK_KIND_TRANSPORT, quic_keys), 0,
         "transport keys ok (plugin and relay accepted)");
  is_int(sfk_config_check_plugin_keys(&cfg, SFK_KIND_RELAY, turn_keys), 0,
         "relay keys ok");
  is_int(sfk_config_check_plugin_keys(&cfg, SFK_KIND_DISCOVERY, stun_keys), 1,
         "discovery: keepalive unknown to this key list");
  is_str(cap_text(&c),
         "c.yaml:14:3: unknown key 'keepalive' in section 'discovery' "
         "(plugin 'stun' accepts: servers)\n",
         "plugin key message");
  is_int(sfk_config_check_plugin_keys(&cfg, SFK_KIND_REGISTRY, NULL), 3,
         "registry without keys: every key but plugin unknown");
  sfk_config_free(&cfg);
  cap_close(&c);
}

static void test_three_mistakes(void) {
  fails("party:\n"
        "  pid: 1\n"
        "network: 10.0.0.0/24\n"
        "socks:\n"
        "  listn: 127.0.0.1:1080\n"
        "transport:\n"
        "  plugin: quic\n"
        "  relay:\n"
        "    plugin: turn\n"
        "log:\n"
        "  level: loud\n"
        "services:\n"
        "  - ports: 8100-8099\n",
        "c.yaml:5:3: unknown key 'listn' in section 'socks'\n"
        "c.yaml:11:10: invalid log level 'loud' (use error, warn, info, "
        "debug or trace)\n"
        "c.yaml:13:12: invalid port range '8100-8099' for 'ports' (use e.g. "
        "8100-8199 or 8100; ports 1..65535, low one first)\n",
        "three mistakes, three positioned errors");
  struct cap c;
  load(&c, "party: {pid: x}\nnetwork: 10.0.0.1/24\nudp: {bind: 1.2.3.4}\n");
  is_int(sfk_cfg_errors(cfg.doc), 3, "three errors counted in the doc");
  ok(cfg.doc != NULL, "doc kept after errors");
  sfk_config_free(&cfg);
  cap_close(&c);
}

static void test_keys(void) {
  fails("party: {pid: 1}\nsocks:\n  listn: 1\n",
        "c.yaml:3:3: unknown key 'listn' in section 'socks'\n",
        "unknown socks key");
  fails("party: {pid: 1}\nprty: {}\n",
        "c.yaml:2:1: unknown top-level key 'prty'\n", "unknown top-level key");
  fails("party: {pid: 1, pid: 2}\n",
        "c.yaml:1:17: duplicate key 'pid' (first given at line 1, column 9)\n",
        "duplicate key");
  fails("party: {pid: 1}\nlog: {level: info}\nlog: {level: debug}\n",
        "c.yaml:3:1: duplicate key 'log' (first given at line 2, column 1)\n",
        "duplicate section");
  fails(
      "party: {pid: 1}\nudp: {bind: 0.0.0.0:0, port: 1}\nidentity: {file: x}\n"
      "control: {sock: x}\nlog: {lvl: 1}\n",
      "c.yaml:2:24: unknown key 'port' in section 'udp'\n"
      "c.yaml:3:12: unknown key 'file' in section 'identity'\n"
      "c.yaml:4:11: unknown key 'sock' in section 'control'\n"
      "c.yaml:5:7: unknown key 'lvl' in section 'log'\n",
      "unknown keys in every daemon section");
  fails("party: {pid: 1, name: x}\n",
        "c.yaml:1:17: unknown key 'name' in section 'party'\n",
        "unknown party key");
  fails("party: &p {pid: 1}\n",
        "c.yaml:1:8: anchors (&p) are not supported in the config; write the "
        "value out\n",
        "anchors refused");
  fails("party:\n  pid: 1\n  pid 2\n",
        "c.yaml:4:1: could not find expected ':' (while scanning a simple key "
        "at line 3, column 3)\n",
        "a syntax error is the only message");
  fails("",
        "c.yaml:1:1: missing section 'party' with this party's 'pid' (or "
        "give --pid)\n",
        "empty file: pid missing");
  fails("socks: 1080\nparty: {pid: 1}\n",
        "c.yaml:1:8: section 'socks' must be a map of 'key: value' lines, not "
        "a single value\n",
        "section of the wrong kind");
  fails("party: {pid: 1}\nlog: [info]\n",
        "c.yaml:2:6: section 'log' must be a map of 'key: value' lines, not "
        "a list\n",
        "section as a list");
  loads("party: {pid: 1}\nsocks:\nlog:\ndiscovery:\ncontrol: {}\n",
        "empty and null sections are absent");
}

static void test_pid_network(void) {
  loads("party: {pid: 254}\n", "pid 254 in a /24");
  loads("party: {pid: 0}\n", "pid 0 (the network address) is valid");
  fails("party: {pid: 255}\n",
        "c.yaml:1:14: pid 255 is outside the network 10.0.0.0/24 (valid PIDs: "
        "0..254)\n",
        "pid 255 (broadcast) refused");
  fails("party: {pid: -1}\n",
        "c.yaml:1:14: invalid number '-1' for 'pid' (a whole number, "
        "0..4294967294)\n",
        "negative pid");
  fails("party: {pid: 99999999999}\n",
        "c.yaml:1:14: 99999999999 for 'pid' is out of range (0..4294967294)\n",
        "huge pid");
  fails("party:\n  study_id: x\n",
        "c.yaml:1:1: missing 'pid' in section 'party' (this party's number; "
        "or give --pid)\n",
        "pid missing");
  fails("party:\n  pid:\n", "c.yaml:2:7: 'pid' has no value\n",
        "pid without a value");
  loads("party: {pid: 65534}\nnetwork: 10.1.0.0/16\n", "pid 65534 in a /16");
  fails("party: {pid: 65535}\nnetwork: 10.1.0.0/16\n",
        "c.yaml:1:14: pid 65535 is outside the network 10.1.0.0/16 (valid "
        "PIDs: 0..65534)\n",
        "pid 65535 in a /16");
  loads("party: {pid: 1}\nnetwork: 10.0.0.0/8\n", "/8 allowed");
  fails("party: {pid: 1}\nnetwork: 10.0.0.0/25\n",
        "c.yaml:2:10: network '10.0.0.0/25' must be /8 to /24 (a /24 holds "
        "PIDs 0..254)\n",
        "/25 too small");
  fails("party: {pid: 1}\nnetwork: 0.0.0.0/0\n",
        "c.yaml:2:10: network '0.0.0.0/0' must be /8 to /24 (a /24 holds "
        "PIDs 0..254)\n",
        "/0 refused");
  fails("party: {pid: 1}\nnetwork: 10.0.0.1/24\n",
        "c.yaml:2:10: invalid network '10.0.0.1/24': host bits are set (did "
        "you mean 10.0.0.0/24?)\n",
        "host bits set: suggestion");
  fails("party: {pid: 1}\nnetwork: 10.0.0.0\n",
        "c.yaml:2:10: invalid network '10.0.0.0' (use an IPv4 CIDR like "
        "10.0.0.0/24)\n",
        "network without prefix");

  /* a bad network does not add errors about the pid */
  fails("party: {pid: 300}\nnetwork: nope\n",
        "c.yaml:2:10: invalid network 'nope' (use an IPv4 CIDR like "
        "10.0.0.0/24)\n",
        "bad network: no follow-up pid error");
}

static void test_overrides(void) {
  struct sfk_overrides ov;
  struct cap c;
  sfk_overrides_init(&ov);
  ok(ov.pid == -1 && ov.log_level == -1 && ov.log_format == -1 &&
         ov.study_id == NULL && ov.api_url == NULL,
     "overrides_init");

  ov.pid = 2;
  ov.study_id = "study-7";
  ov.log_level = SFK_LOG_DEBUG;
  ov.log_format = SFK_LOGFMT_JSON;
  is_int(
      load_ov(&c, "party: {pid: 1, study_id: s1}\nlog: {level: warn}\n", &ov),
      0, "overrides load");
  is_int(cfg.pid, 2, "--pid replaces party.pid");
  is_str(cfg.study_id, "study-7", "--study replaces study_id");
  is_int(cfg.log_level, SFK_LOG_DEBUG, "log level override");
  is_int(cfg.log_format, SFK_LOGFMT_JSON, "log format override");
  sfk_config_free(&cfg);
  cap_close(&c);

  sfk_overrides_init(&ov);
  ov.pid = 5;
  is_int(load_ov(&c, "network: 10.0.0.0/24\n", &ov), 0,
         "--pid makes party.pid optional");
  is_int(cfg.pid, 5, "pid from --pid");
  sfk_config_free(&cfg);
  cap_close(&c);

  ov.pid = 255;
  is_int(load_ov(&c, "party: {pid: 1}\n", &ov), -EINVAL, "--pid 255 refused");
  is_str(cap_text(&c),
         "c.yaml: --pid 255 is outside the network 10.0.0.0/24 (valid PIDs: "
         "0..254)\n",
         "--pid error has no position");
  sfk_config_free(&cfg);
  cap_close(&c);

  ov.pid = -7;
  is_int(load_ov(&c, "party: {pid: 1}\n", &ov), -EINVAL, "--pid -7 refused");
  sfk_config_free(&cfg);
  cap_close(&c);

  sfk_overrides_init(&ov);
  ov.study_id = "has space";
  is_int(load_ov(&c, "party: {pid: 1}\n", &ov), -EINVAL, "bad --study");
  is_str(cap_text(&c),
         "c.yaml: invalid --study 'has space' (1..255 printable characters, "
         "no spaces)\n",
         "bad --study message");
  sfk_config_free(&cfg);
  cap_close(&c);

  /* a mistake in the file is reported even when overridden */
  sfk_overrides_init(&ov);
  ov.pid = 1;
  ov.log_level = SFK_LOG_TRACE;
  is_int(load_ov(&c, "party: {pid: x}\nlog: {level: loud}\n", &ov), -EINVAL,
         "file errors still count under overrides");
  is_int(sfk_cfg_errors(cfg.doc), 2, "both file errors reported");
  sfk_config_free(&cfg);
  cap_close(&c);
}

/* A password file with mode 0600 holding `text`; its path in out. */
static void secret_file(char *out, size_t len, const char *text, int mode) {
  snprintf(out, len, "/tmp/sfk-test-pw-XXXXXX");
  int fd = mkstemp(out);
  if (fd >= 0) {
    if (write(fd, text, strlen(text)) < 0)
      out[0] = '\0';
    fchmod(fd, (mode_t)mode);
    close(fd);
  }
}

static void test_socks_password(void) {
  char pw[64], yaml[256];
  struct cap c;
  static const struct {
    const char *text;
    int mode;
    const char *want;
    const char *name;
  } bad[] = {
      {"\nsecond\n", 0600, "the first line is empty", "empty first line"},
      {"", 0600, "the first line is empty", "empty file"},
      {"pw\n", 0644, "a secret must be readable by its owner only",
       "mode 0644 refused"},
      {"pw\n", 0640, "has mode 0640", "group-readable refused"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    secret_file(pw, sizeof pw, bad[i].text, bad[i].mode);
    snprintf(yaml, sizeof yaml,
             "party: {pid: 1}\nsocks:\n  username: mpc\n"
             "  password_file: %s\n", pw);
    is_int(load(&c, yaml), -EINVAL, bad[i].name);
    ok(strstr(cap_text(&c), bad[i].want) && strstr(cap_text(&c), "c.yaml:4:18: "),
       "%s: message at the key", bad[i].name);
    sfk_config_free(&cfg);
    cap_close(&c);
    unlink(pw);
  }
  snprintf(yaml, sizeof yaml,
           "party: {pid: 1}\nsocks:\n  username: mpc\n"
           "  password_file: /nonexistent/pw\n");
  is_int(load(&c, yaml), -EINVAL, "missing password file refused");
  ok(strstr(cap_text(&c), "cannot open /nonexistent/pw") != NULL,
     "missing file named");
  sfk_config_free(&cfg);
  cap_close(&c);
}

static void test_sections(void) {
  char b[80], pw[64], yaml[512];
  struct cap c;
  secret_file(pw, sizeof pw, "s3cret\n", 0600);
  snprintf(yaml, sizeof yaml,
           "party: {pid: 1}\nsocks:\n  listen: '[::1]:1081'\n"
           "  username: mpc\n  password_file: %s\n"
           "udp: {bind: '192.0.2.1:4000'}\nlog: {level: warning, "
           "format: json}\ncontrol: {socket: /run/x.sock}\n", pw);
  is_int(load(&c, yaml), 0, "socks auth, v6 listen");
  is_str(addr(&cfg.socks_listen, b, sizeof b), "[::1]:1081", "v6 listen");
  is_str(cfg.socks_username, "mpc", "username");
  is_str(cfg.socks_password_file, pw, "password file");
  unlink(pw);
  is_str(addr(&cfg.udp_bind, b, sizeof b), "192.0.2.1:4000", "udp bind");
  is_int(cfg.log_level, SFK_LOG_WARN, "warning accepted");
  is_int(cfg.log_format, SFK_LOGFMT_JSON, "json");
  is_str(cfg.control_socket, "/run/x.sock", "control socket");
  sfk_config_free(&cfg);
  cap_close(&c);

  fails("party: {pid: 1}\nsocks:\n  username: mpc\n",
        "c.yaml:3:3: 'username' needs 'password_file' in section 'socks'\n",
        "username without password_file");
  fails("party: {pid: 1}\nsocks:\n  password_file: p\n",
        "c.yaml:3:3: 'password_file' needs 'username' in section 'socks'\n",
        "password_file without username");
  fails("party: {pid: 1}\nsocks: {listen: localhost:1080}\n",
        "c.yaml:2:17: invalid address 'localhost:1080' for 'listen' (use "
        "IPv4:port like 127.0.0.1:1080 or [IPv6]:port; no host names)\n",
        "socks listen host name");
  fails("party: {pid: 1}\nudp: {bind: 0.0.0.0}\n",
        "c.yaml:2:13: invalid address '0.0.0.0' for 'bind' (use IPv4:port "
        "like 127.0.0.1:1080 or [IPv6]:port; no host names)\n",
        "udp bind without port");
  fails("party: {pid: 1}\nlog: {format: xml}\n",
        "c.yaml:2:15: invalid log format 'xml' (use text or json)\n",
        "bad log format");
  fails("party: {pid: 1}\nidentity: {key_file: ''}\n",
        "c.yaml:2:22: empty path for 'key_file'\n", "empty key_file");

  char longp[200];
  memset(longp, 'a', sizeof longp - 1);
  longp[sizeof longp - 1] = '\0';
  char text[400];
  snprintf(text, sizeof text, "party: {pid: 1}\ncontrol: {socket: /%s}\n",
           longp);
  is_int(load(&c, text), -EINVAL, "control socket path too long");
  ok(strstr(cap_text(&c), "c.yaml:2:19: control socket path '/aaaa") ==
         cap_text(&c),
     "control socket message positioned");
  sfk_config_free(&cfg);
  cap_close(&c);
  fails("party: {pid: 1, study_id: ''}\n",
        "c.yaml:1:27: invalid study_id '' (1..255 printable characters, no "
        "spaces)\n",
        "empty study_id");
}

static void test_plugin_sections(void) {
  struct cap c;
  is_int(load(&c, "party: {pid: 1}\ntransport:\n  idle_timeout: 1h\n"
                  "  relay: {plugin: turn, server: x}\n"),
         0, "transport without plugin: quic");
  is_str(cfg.transport.name, "quic", "transport default applies");
  is_str(cfg.relay.name, "turn", "relay named");
  static const char *const quic_keys[] = {"idle_timeout", NULL};
  is_int(sfk_config_check_plugin_keys(&cfg, SFK_KIND_TRANSPORT, quic_keys), 0,
         "relay accepted in transport");
  static const char *const none[] = {NULL};
  is_int(sfk_config_check_plugin_keys(&cfg, SFK_KIND_RELAY, none), 1,
         "relay plugin without keys");
  is_str(cap_text(&c),
         "c.yaml:4:25: unknown key 'server' in section 'transport.relay' "
         "(plugin 'turn' takes no settings)\n",
         "no-settings message");
  is_int(sfk_config_check_plugin_keys(&cfg, SFK_KIND_DISCOVERY, none), 0,
         "absent section: nothing to check");
  is_int(sfk_config_check_plugin_keys(&cfg, 99, none), 0, "unknown kind: 0");
  sfk_config_free(&cfg);
  cap_close(&c);

  fails("party: {pid: 1}\ndiscovery:\n  servers: [a]\n",
        "c.yaml:2:1: missing 'plugin' in section 'discovery' (which discovery "
        "plugin to use)\n",
        "discovery without plugin");
  fails("party: {pid: 1}\nregistry:\n  peers: []\n",
        "c.yaml:2:1: missing 'plugin' in section 'registry' (which registry "
        "plugin to use)\n",
        "registry without plugin");
  fails("party: {pid: 1}\ntransport:\n  relay:\n    server: x\n",
        "c.yaml:3:3: missing 'plugin' in section 'transport.relay' (which "
        "relay plugin to use)\n",
        "relay without plugin");
  fails("party: {pid: 1}\ndiscovery: {plugin: STUN}\n",
        "c.yaml:2:21: invalid plugin name 'STUN' (lowercase letters, digits "
        "and '_', at most 63)\n",
        "uppercase plugin name");
  fails("party: {pid: 1}\nregistry: {plugin: ../evil}\n",
        "c.yaml:2:20: invalid plugin name '../evil' (lowercase letters, "
        "digits and '_', at most 63)\n",
        "path in plugin name");
  fails("party: {pid: 1}\nregistry: {plugin: [a]}\n",
        "c.yaml:2:20: 'plugin' must be a single value, not a list\n",
        "plugin as a list");
  loads("party: {pid: 1}\nregistry: {plugin: my_reg2}\n",
        "plugin name with digits and _");
}

static void test_services(void) {
  struct cap c;
  is_int(load(&c, "party: {pid: 1}\nservices:\n"
                  "  - ports: 8100-8199\n    peers: [0, 2]\n"
                  "  - ports: 9000\n    host: 127.0.0.2\n    peers: all\n"
                  "  - ports: 22\n"),
         0, "three services");
  is_int(cfg.nservices, 3, "nservices");
  const struct sfk_service *s = sfk_config_service(&cfg, 2, 8150);
  ok(s == &cfg.services[0], "peer 2 may reach 8150");
  ok(sfk_config_service(&cfg, 0, 8100) == &cfg.services[0], "peer 0, 8100");
  ok(sfk_config_service(&cfg, 0, 8199) == &cfg.services[0], "peer 0, 8199");
  ok(sfk_config_service(&cfg, 3, 8150) == NULL, "peer 3 may not");
  ok(sfk_config_service(&cfg, 2, 8099) == NULL, "port 8099 below range");
  ok(sfk_config_service(&cfg, 2, 8200) == NULL, "port 8200 above range");
  ok(sfk_config_service(&cfg, 7, 9000) == &cfg.services[1], "9000 for all");
  ok(sfk_config_service(&cfg, 7, 9001) == NULL, "9001 not a service");
  const struct sockaddr_in *h = (const void *)&cfg.services[1].host;
  is_int(ntohl(h->sin_addr.s_addr), 0x7f000002, "service host 127.0.0.2");
  is_int(cfg.services[1].hostlen, sizeof(struct sockaddr_in), "host len");
  ok(sfk_config_service(&cfg, 5, 22) == &cfg.services[2],
     "no peers key: all peers");
  is_int(cfg.services[0].npeers, 2, "two peers listed");
  sfk_config_free(&cfg);
  cap_close(&c);

  fails("party: {pid: 1}\nservices:\n  - ports: 8100-8199\n  - ports: 8150\n",
        "c.yaml:4:12: ports 8150-8150 overlap the services entry at line 3, "
        "column 5 (8100-8199)\n",
        "overlapping services");
  fails("party: {pid: 1}\nservices:\n  - host: 127.0.0.1\n",
        "c.yaml:3:5: missing 'ports' in this services entry (e.g. ports: "
        "8100-8199)\n",
        "service without ports");
  fails("party: {pid: 1}\nservices:\n  - ports: 0\n",
        "c.yaml:3:12: invalid port range '0' for 'ports' (use e.g. 8100-8199 "
        "or 8100; ports 1..65535, low one first)\n",
        "port 0");
  fails("party: {pid: 1}\nservices:\n  - ports: 80\n    host: 127.0.0.1:80\n",
        "c.yaml:4:11: invalid host '127.0.0.1:80' for a service (use an IPv4 "
        "address like 127.0.0.1, without a port)\n",
        "host with a port");
  fails(
      "party: {pid: 1}\nservices:\n  - ports: 80\n    peers: [1, 255, x, 1]\n",
      "c.yaml:4:16: invalid PID '255' in 'peers' (0..254)\n"
      "c.yaml:4:21: invalid PID 'x' in 'peers' (0..254)\n"
      "c.yaml:4:24: PID 1 is listed twice in 'peers'\n",
      "bad peers");
  fails("party: {pid: 1}\nservices:\n  - ports: 80\n    peers: []\n",
        "c.yaml:4:12: 'peers' must be 'all' or a non-empty list of PIDs like "
        "[1, 2]\n",
        "empty peers");
  fails("party: {pid: 1}\nservices:\n  - ports: 80\n    peers: some\n",
        "c.yaml:4:12: 'peers' must be 'all' or a non-empty list of PIDs like "
        "[1, 2]\n",
        "peers neither all nor a list");
  fails("party: {pid: 1}\nservices:\n  - ports: 80\n    prots: 1\n",
        "c.yaml:4:5: unknown key 'prots' in section 'services'\n",
        "unknown service key");
  fails("party: {pid: 1}\nservices:\n  ports: 80\n",
        "c.yaml:3:3: 'services' must be a list of entries ('- ports: ...')\n",
        "services as a map");
  fails("party: {pid: 1}\nservices:\n  - 80\n",
        "c.yaml:3:5: a services entry must be a map with 'ports', 'host' and "
        "'peers'\n",
        "service entry as a scalar");
  loads("party: {pid: 1}\nservices: []\n", "empty services list");
  loads("party: {pid: 1}\nservices:\n", "null services");

  /* SFK_MAX_SERVICES entries fit, one more does not */
  size_t cap_sz = 64 + (SFK_MAX_SERVICES + 1) * 24;
  char *text = malloc(cap_sz);
  size_t n = (size_t)snprintf(text, cap_sz, "party: {pid: 1}\nservices:\n");
  for (int i = 0; i < SFK_MAX_SERVICES; i++)
    n += (size_t)snprintf(text + n, cap_sz - n, "  - ports: %d\n", 1000 + i);
  loads(text, "SFK_MAX_SERVICES services");
  snprintf(text + n, cap_sz - n, "  - ports: 2000\n");
  is_int(load(&c, text), -EINVAL, "one service too many");
  is_str(cap_text(&c), "c.yaml:67:5: too many services (at most 64)\n",
         "too many services message");
  sfk_config_free(&cfg);
  cap_close(&c);
  free(text);
}

static void test_virtual_pid(void) {
  struct cap c;
  uint32_t pid = 77;
  load(&c, "party: {pid: 1}\n");
  ok(sfk_config_virtual_pid(&cfg, 0x0a000005, &pid) == 1 && pid == 5,
     "10.0.0.5 is pid 5");
  ok(sfk_config_virtual_pid(&cfg, 0x0a000000, &pid) == 1 && pid == 0,
     "10.0.0.0 is pid 0");
  pid = 77;
  ok(sfk_config_virtual_pid(&cfg, 0x0a000105, &pid) == 0 && pid == 77,
     "10.0.1.5 is outside");
  ok(sfk_config_virtual_pid(&cfg, 0x7f000001, &pid) == 0, "127.0.0.1 outside");
  is_int(sfk_config_max_pid(&cfg), 254, "max pid /24");
  sfk_config_free(&cfg);
  cap_close(&c);
  load(&c, "party: {pid: 1}\nnetwork: 172.16.0.0/12\n");
  ok(sfk_config_virtual_pid(&cfg, 0xac1f0102, &pid) == 1 && pid == 0x0f0102,
     "172.31.1.2 in a /12");
  ok(sfk_config_virtual_pid(&cfg, 0xac200000, &pid) == 0, "172.32.0.0 outside");
  is_int(sfk_config_max_pid(&cfg), (1u << 20) - 2, "max pid /12");
  sfk_config_free(&cfg);
  cap_close(&c);
}

/* The shipped config files pass the daemon's schema. */
static void test_conf_files(void) {
  static const char *const files[] = {"sfkit-proxy.yaml", "site-example.yaml",
                                      "static-two-party.yaml"};
  const char *src = getenv("SFK_SRCDIR");
  char path[512];
  for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
    snprintf(path, sizeof path, "%s/conf/%s", src ? src : ".", files[i]);
    if (access(path, R_OK) != 0)
      snprintf(path, sizeof path, "../../conf/%s", files[i]);
    struct cap c;
    cap_open(&c);
    int rc = sfk_config_load(&cfg, path, NULL, c.f);
    is_int(rc, 0, files[i]);
    if (rc)
      printf("# %s", cap_text(&c));
    sfk_config_free(&cfg);
    cap_close(&c);
  }
}

int main(void) {
  test_builtin_default();
  test_minimal_defaults();
  test_spec_example();
  test_three_mistakes();
  test_keys();
  test_pid_network();
  test_overrides();
  test_sections();
  test_socks_password();
  test_plugin_sections();
  test_services();
  test_virtual_pid();
  test_conf_files();
  return tap_done();
}
