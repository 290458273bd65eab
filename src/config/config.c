/*
 * The daemon's schema (SPEC "Config (YAML, version 1)") checked over a
 * cfg tree.  Every section is checked even after an error, so one run
 * reports every mistake; the caller gets -EINVAL at the end.
 *
 * Decisions the SPEC leaves open:
 * - PIDs run from 0 (the network address itself, as in the SPEC's
 *   example) to 2^(32-prefix) - 2; the all-ones broadcast host is no PID.
 * - The network prefix is 8..24 ("/24 or wider", but not absurdly wide).
 * - A plugin section that is absent, empty or null uses its default
 *   plugin (discovery none, registry static, transport quic).  A
 *   non-empty discovery, registry or transport.relay section must name
 *   its plugin (its other keys mean nothing without one); transport
 *   defaults to quic.
 * - A services entry without `host` uses 127.0.0.1, without `peers`
 *   allows all peers; port ranges of two entries may not overlap.
 */
#include "autoconfig.h" /* autoconf: first in every .c file */

#include "config.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "log.h"

const char sfk_config_default_yaml[] =
    "# Built-in default: two parties on loopback, no website, no STUN.\n"
    "party:\n"
    "  pid: 0\n"
    "network: 10.0.0.0/24\n"
    "socks:\n"
    "  listen: 127.0.0.1:1080\n"
    "udp:\n"
    "  bind: 127.0.0.1:0\n"
    "identity:\n"
    "  key_file: state/identity.key\n"
    "discovery:\n"
    "  plugin: none\n"
    "registry:\n"
    "  plugin: static\n"
    "  peers: []\n"
    "transport:\n"
    "  plugin: quic\n"
    "services:\n"
    "  - ports: 8000-8999\n"
    "    host: 127.0.0.1\n"
    "    peers: all\n"
    "log:\n"
    "  level: info\n"
    "  format: text\n";

static const char *const top_keys[] = {
    "party",    "network",   "socks",    "udp",     "identity", "discovery",
    "registry", "transport", "services", "control", "log",      NULL};
static const char *const party_keys[] = {"pid", "study_id", NULL};
static const char *const socks_keys[] = {"listen", "username", "password_file",
                                         NULL};
static const char *const udp_keys[] = {"bind", NULL};
static const char *const identity_keys[] = {"key_file", NULL};
static const char *const control_keys[] = {"socket", NULL};
static const char *const log_keys[] = {"level", "format", NULL};
static const char *const service_keys[] = {"ports", "host", "peers", NULL};

#define DEFAULT_NETWORK "10.0.0.0/24"
#define MIN_PREFIX 8
#define MAX_PREFIX 24

/* Checking state shared by the section checkers. */
struct chk {
  struct sfk_config *cfg;
  const struct sfk_cfg_doc *doc;
  const struct sfk_cfg_node *root;
  int net_ok;      /* cfg->net / prefix are valid */
  uint32_t maxpid; /* highest PID (valid when net_ok) */
};

void sfk_overrides_init(struct sfk_overrides *ov) {
  memset(ov, 0, sizeof *ov);
  ov->pid = -1;
  ov->log_level = -1;
  ov->log_format = -1;
}

/* The key node of `key` in map (for "missing ..." messages), or NULL. */
static const struct sfk_cfg_node *key_node(const struct sfk_cfg_node *map,
                                           const char *key) {
  size_t n = sfk_cfg_len(map);
  if (sfk_cfg_type(map) != SFK_CFG_MAP)
    return NULL;
  for (size_t i = 0; i < n; i++)
    if (strcmp(sfk_cfg_key_at(map, i), key) == 0)
      return sfk_cfg_key_node_at(map, i);
  return NULL;
}

/*
 * A section (map) of parent: NULL when absent, null (`name:` alone) or
 * not a map (reported).
 */
static const struct sfk_cfg_node *section(const struct chk *c,
                                          const struct sfk_cfg_node *parent,
                                          const char *name, const char *label) {
  const struct sfk_cfg_node *n = sfk_cfg_get(parent, name);
  if (!n || sfk_cfg_is_null(n))
    return NULL;
  if (sfk_cfg_type(n) != SFK_CFG_MAP) {
    sfk_cfg_error(
        c->doc, n, "section '%s' must be a map of 'key: value' lines, not %s",
        label, sfk_cfg_type(n) == SFK_CFG_SEQ ? "a list" : "a single value");
    return NULL;
  }
  return n;
}

/* Copy s into dst, or report that it is too long. */
static int copy_str(const struct chk *c, const struct sfk_cfg_node *at,
                    const char *key, const char *s, char *dst, size_t dstsz) {
  size_t n = strlen(s);
  if (n >= dstsz) {
    sfk_cfg_error(c->doc, at, "'%s' is too long (at most %zu bytes)", key,
                  dstsz - 1);
    return -EINVAL;
  }
  memcpy(dst, s, n + 1);
  return 0;
}

/* Printable, no white space, 1..max bytes. */
static int word_ok(const char *s, size_t max) {
  size_t n = strlen(s);
  if (n == 0 || n > max)
    return 0;
  for (; *s; s++)
    if ((unsigned char)*s <= 0x20 || (unsigned char)*s == 0x7f)
      return 0;
  return 1;
}

/* ------------------------------------------------------------------ */
/* network and party                                                    */

static void check_network(struct chk *c) {
  char q[SFK_CFG_QUOTE_MAX];
  const struct sfk_cfg_node *n = sfk_cfg_get(c->root, "network");
  const char *s;
  if (sfk_cfg_string(c->doc, c->root, "network", DEFAULT_NETWORK, &s) < 0)
    return;
  uint32_t net;
  unsigned prefix;
  if (sfk_parse_cidr4(s, &net, &prefix) < 0) {
    /* say why: host bits set is the common mistake */
    char host[INET_ADDRSTRLEN];
    const char *slash = strchr(s, '/');
    size_t hl = slash ? (size_t)(slash - s) : 0;
    struct in_addr a;
    uint64_t p = 0;
    int hostbits = 0;
    if (slash && hl > 0 && hl < sizeof host &&
        sfk_parse_uint(slash + 1, 0, 32, &p) == 0) {
      memcpy(host, s, hl);
      host[hl] = '\0';
      uint32_t mask = p == 0 ? 0 : UINT32_MAX << (32 - p);
      hostbits =
          inet_pton(AF_INET, host, &a) == 1 && (ntohl(a.s_addr) & ~mask) != 0;
    }
    if (hostbits) {
      uint32_t mask = p == 0 ? 0 : UINT32_MAX << (32 - p);
      struct in_addr m = {.s_addr = htonl(ntohl(a.s_addr) & mask)};
      inet_ntop(AF_INET, &m, host, sizeof host);
      sfk_cfg_error(c->doc, n,
                    "invalid network '%s': host bits are set (did you mean "
                    "%s/%u?)",
                    sfk_cfg_quote(s, q, sizeof q), host, (unsigned)p);
    } else {
      sfk_cfg_error(c->doc, n,
                    "invalid network '%s' (use an IPv4 CIDR like 10.0.0.0/24)",
                    sfk_cfg_quote(s, q, sizeof q));
    }
    return;
  }
  if (prefix < MIN_PREFIX || prefix > MAX_PREFIX) {
    sfk_cfg_error(c->doc, n,
                  "network '%s' must be /%d to /%d (a /24 holds PIDs 0..254)",
                  sfk_cfg_quote(s, q, sizeof q), MIN_PREFIX, MAX_PREFIX);
    return;
  }
  c->cfg->net = net;
  c->cfg->prefix = prefix;
  c->net_ok = 1;
  c->maxpid = (uint32_t)((1ull << (32 - prefix)) - 2);
}

static const char *net_str(const struct chk *c, char *buf, size_t len) {
  struct in_addr a = {.s_addr = htonl(c->cfg->net)};
  char ip[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a, ip, sizeof ip);
  snprintf(buf, len, "%s/%u", ip, c->cfg->prefix);
  return buf;
}

static void check_party(struct chk *c, const struct sfk_overrides *ov) {
  char q[SFK_CFG_QUOTE_MAX], nb[32];
  const struct sfk_cfg_node *party = section(c, c->root, "party", "party");
  sfk_cfg_check_keys(c->doc, party, "party", party_keys, NULL);

  const struct sfk_cfg_node *pidn = sfk_cfg_get(party, "pid");
  uint64_t pid = UINT64_MAX;
  int pid_rc =
      sfk_cfg_uint(c->doc, party, "pid", 0, UINT32_MAX - 1, UINT64_MAX, &pid);

  if (ov && ov->pid != -1) {
    if (ov->pid < 0 || (c->net_ok && ov->pid > (long long)c->maxpid) ||
        ov->pid > (long long)UINT32_MAX - 1) {
      if (c->net_ok)
        sfk_cfg_error_nopos(c->doc,
                            "--pid %lld is outside the network %s (valid "
                            "PIDs: 0..%u)",
                            ov->pid, net_str(c, nb, sizeof nb), c->maxpid);
      else
        sfk_cfg_error_nopos(c->doc, "--pid %lld is not a valid PID", ov->pid);
    } else {
      c->cfg->pid = (uint32_t)ov->pid;
    }
  } else if (pid_rc == 0 && pid != UINT64_MAX) {
    if (c->net_ok && pid > c->maxpid)
      sfk_cfg_error(c->doc, pidn,
                    "pid %llu is outside the network %s (valid PIDs: 0..%u)",
                    (unsigned long long)pid, net_str(c, nb, sizeof nb),
                    c->maxpid);
    else
      c->cfg->pid = (uint32_t)pid;
  } else if (pid_rc == 0) {
    const struct sfk_cfg_node *pk = key_node(c->root, "party");
    if (party)
      sfk_cfg_error(c->doc, pk,
                    "missing 'pid' in section 'party' (this party's number; "
                    "or give --pid)");
    else
      sfk_cfg_error(c->doc, pk,
                    "missing section 'party' with this party's 'pid' (or "
                    "give --pid)");
  }

  const struct sfk_cfg_node *sn = sfk_cfg_get(party, "study_id");
  const char *study = NULL;
  if (sfk_cfg_string(c->doc, party, "study_id", NULL, &study) < 0)
    study = NULL;
  else if (study && !word_ok(study, sizeof c->cfg->study_id - 1))
    sfk_cfg_error(c->doc, sn,
                  "invalid study_id '%s' (1..%zu printable characters, no "
                  "spaces)",
                  sfk_cfg_quote(study, q, sizeof q),
                  sizeof c->cfg->study_id - 1);
  else if (study)
    copy_str(c, sn, "study_id", study, c->cfg->study_id,
             sizeof c->cfg->study_id);
  if (ov && ov->study_id) {
    if (!word_ok(ov->study_id, sizeof c->cfg->study_id - 1))
      sfk_cfg_error_nopos(c->doc,
                          "invalid --study '%s' (1..%zu printable "
                          "characters, no spaces)",
                          sfk_cfg_quote(ov->study_id, q, sizeof q),
                          sizeof c->cfg->study_id - 1);
    else
      copy_str(c, NULL, "study_id", ov->study_id, c->cfg->study_id,
               sizeof c->cfg->study_id);
  }
}

/* ------------------------------------------------------------------ */
/* socks, udp, identity, control, log                                   */

static void check_socks(struct chk *c) {
  struct sfk_config *cfg = c->cfg;
  const struct sfk_cfg_node *s = section(c, c->root, "socks", "socks");
  sfk_cfg_check_keys(c->doc, s, "socks", socks_keys, NULL);
  sfk_cfg_addr(c->doc, s, "listen", "127.0.0.1:1080", &cfg->socks_listen,
               &cfg->socks_listenlen);

  const struct sfk_cfg_node *un = sfk_cfg_get(s, "username");
  const struct sfk_cfg_node *pn = sfk_cfg_get(s, "password_file");
  const char *user = NULL;
  if (sfk_cfg_string(c->doc, s, "username", NULL, &user) == 0 && user) {
    /* RFC 1929: 1..255 bytes */
    if (!*user || strlen(user) > 255) {
      char q[SFK_CFG_QUOTE_MAX];
      sfk_cfg_error(c->doc, un, "invalid username '%s' (1..255 bytes)",
                    sfk_cfg_quote(user, q, sizeof q));
    } else {
      copy_str(c, un, "username", user, cfg->socks_username,
               sizeof cfg->socks_username);
    }
  }
  sfk_cfg_path(c->doc, s, "password_file", NULL, cfg->socks_password_file,
               sizeof cfg->socks_password_file);
  if (cfg->socks_password_file[0] && un) {
    /* Checked here so --check-config catches what start-up would refuse
     * (missing, empty, readable by others); the daemon reads it again
     * when it opens the SOCKS port. */
    char pw[256], err[PATH_MAX + 160];
    if (sfk_secret_read(cfg->socks_password_file, pw, sizeof pw, err,
                        sizeof err) < 0)
      sfk_cfg_error(c->doc, pn, "%s", err);
    sfk_wipe(pw, sizeof pw);
  }
  if (un && !pn)
    sfk_cfg_error(c->doc, key_node(s, "username"),
                  "'username' needs 'password_file' in section 'socks'");
  if (pn && !un)
    sfk_cfg_error(c->doc, key_node(s, "password_file"),
                  "'password_file' needs 'username' in section 'socks'");
}

static void check_simple(struct chk *c) {
  char q[SFK_CFG_QUOTE_MAX];
  struct sfk_config *cfg = c->cfg;

  const struct sfk_cfg_node *u = section(c, c->root, "udp", "udp");
  sfk_cfg_check_keys(c->doc, u, "udp", udp_keys, NULL);
  sfk_cfg_addr(c->doc, u, "bind", "0.0.0.0:0", &cfg->udp_bind,
               &cfg->udp_bindlen);

  const struct sfk_cfg_node *id = section(c, c->root, "identity", "identity");
  sfk_cfg_check_keys(c->doc, id, "identity", identity_keys, NULL);
  sfk_cfg_path(c->doc, id, "key_file", "state/identity.key", cfg->key_file,
               sizeof cfg->key_file);

  const struct sfk_cfg_node *ctl = section(c, c->root, "control", "control");
  sfk_cfg_check_keys(c->doc, ctl, "control", control_keys, NULL);
  if (sfk_cfg_path(c->doc, ctl, "socket", NULL, cfg->control_socket,
                   sizeof cfg->control_socket) == 0) {
    size_t max = sizeof(((struct sockaddr_un *)NULL)->sun_path) - 1;
    if (strlen(cfg->control_socket) > max) {
      sfk_cfg_error(c->doc, sfk_cfg_get(ctl, "socket"),
                    "control socket path '%s' is too long for a Unix "
                    "socket (at most %zu bytes after resolving)",
                    sfk_cfg_quote(cfg->control_socket, q, sizeof q), max);
      cfg->control_socket[0] = '\0';
    }
  }

  const struct sfk_cfg_node *lg = section(c, c->root, "log", "log");
  sfk_cfg_check_keys(c->doc, lg, "log", log_keys, NULL);
  const char *s;
  cfg->log_level = SFK_LOG_INFO;
  cfg->log_format = SFK_LOGFMT_TEXT;
  if (sfk_cfg_string(c->doc, lg, "level", "info", &s) == 0) {
    int v = sfk_log_level_parse(s);
    if (v < 0)
      sfk_cfg_error(c->doc, sfk_cfg_get(lg, "level"),
                    "invalid log level '%s' (use error, warn, info, debug "
                    "or trace)",
                    sfk_cfg_quote(s, q, sizeof q));
    else
      cfg->log_level = v;
  }
  if (sfk_cfg_string(c->doc, lg, "format", "text", &s) == 0) {
    int v = sfk_log_format_parse(s);
    if (v < 0)
      sfk_cfg_error(c->doc, sfk_cfg_get(lg, "format"),
                    "invalid log format '%s' (use text or json)",
                    sfk_cfg_quote(s, q, sizeof q));
    else
      cfg->log_format = v;
  }
}

static void apply_log_overrides(struct chk *c, const struct sfk_overrides *ov) {
  if (!ov)
    return;
  if (ov->log_level != -1) {
    if (ov->log_level < SFK_LOG_ERROR || ov->log_level > SFK_LOG_TRACE)
      sfk_cfg_error_nopos(c->doc, "invalid log level %d from the command line",
                          ov->log_level);
    else
      c->cfg->log_level = ov->log_level;
  }
  if (ov->log_format != -1) {
    if (ov->log_format != SFK_LOGFMT_TEXT && ov->log_format != SFK_LOGFMT_JSON)
      sfk_cfg_error_nopos(c->doc, "invalid log format %d from the command line",
                          ov->log_format);
    else
      c->cfg->log_format = ov->log_format;
  }
}

/* ------------------------------------------------------------------ */
/* Plugin sections                                                      */

static int plugin_name_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n >= SFK_NAME_MAX)
    return 0;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
      return 0;
  return 1;
}

/*
 * Fill pc from section `name` of parent.  def: plugin used when the
 * section is absent or empty; need_name: a non-empty section must say
 * `plugin:` (else def applies to it too).
 */
static void plugin_section(struct chk *c, const struct sfk_cfg_node *parent,
                           const char *name, const char *label, const char *def,
                           int need_name, struct sfk_plugin_conf *pc) {
  const struct sfk_cfg_node *s = section(c, parent, name, label);
  memset(pc, 0, sizeof *pc);
  pc->section = s;
  if (!s || sfk_cfg_len(s) == 0) {
    if (def)
      snprintf(pc->name, sizeof pc->name, "%s", def);
    return;
  }
  const char *p = NULL;
  if (sfk_cfg_string(c->doc, s, "plugin", NULL, &p) < 0)
    return;
  if (!p) {
    if (need_name || !def)
      sfk_cfg_error(c->doc, key_node(parent, name),
                    "missing 'plugin' in section '%s' (which %s plugin to "
                    "use)",
                    label, name);
    else
      snprintf(pc->name, sizeof pc->name, "%s", def);
    return;
  }
  if (!plugin_name_ok(p)) {
    char q[SFK_CFG_QUOTE_MAX];
    sfk_cfg_error(c->doc, sfk_cfg_get(s, "plugin"),
                  "invalid plugin name '%s' (lowercase letters, digits and "
                  "'_', at most %d)",
                  sfk_cfg_quote(p, q, sizeof q), SFK_NAME_MAX - 1);
    return;
  }
  snprintf(pc->name, sizeof pc->name, "%s", p);
}

static void check_plugins(struct chk *c) {
  struct sfk_config *cfg = c->cfg;
  plugin_section(c, c->root, "discovery", "discovery", "none", 1,
                 &cfg->discovery);
  plugin_section(c, c->root, "registry", "registry", "static", 1,
                 &cfg->registry);
  plugin_section(c, c->root, "transport", "transport", "quic", 0,
                 &cfg->transport);
  plugin_section(c, cfg->transport.section, "relay", "transport.relay", NULL, 1,
                 &cfg->relay);
  cfg->relay_mode = SFK_RELAY_NONE;
  if (cfg->relay.name[0]) {
    const char *m = NULL;
    cfg->relay_mode = SFK_RELAY_AUTO;
    if (sfk_cfg_string(c->doc, cfg->relay.section, "mode", "auto", &m) < 0)
      return;
    if (strcmp(m, "always") == 0)
      cfg->relay_mode = SFK_RELAY_ALWAYS;
    else if (strcmp(m, "never") == 0)
      cfg->relay_mode = SFK_RELAY_NEVER;
    else if (strcmp(m, "auto") != 0) {
      char q[SFK_CFG_QUOTE_MAX];
      sfk_cfg_error(c->doc, sfk_cfg_get(cfg->relay.section, "mode"),
                    "relay mode '%s': use auto, always or never",
                    sfk_cfg_quote(m, q, sizeof q));
    }
  }
}

unsigned sfk_config_check_plugin_keys(const struct sfk_config *cfg, int kind,
                                      const char *const *keys) {
  char q[SFK_CFG_QUOTE_MAX], list[256];
  const struct sfk_plugin_conf *pc;
  const char *label, *extra = NULL;
  switch (kind) {
  case SFK_KIND_TRANSPORT:
    pc = &cfg->transport;
    label = "transport";
    extra = "relay";
    break;
  case SFK_KIND_RELAY:
    pc = &cfg->relay;
    label = "transport.relay";
    extra = "mode";
    break;
  case SFK_KIND_DISCOVERY:
    pc = &cfg->discovery;
    label = "discovery";
    break;
  case SFK_KIND_REGISTRY:
    pc = &cfg->registry;
    label = "registry";
    break;
  default:
    return 0;
  }
  const struct sfk_cfg_node *s = pc->section;
  size_t n = sfk_cfg_len(s);
  if (!s || sfk_cfg_type(s) != SFK_CFG_MAP)
    return 0;

  /* what the plugin accepts, for the message */
  size_t used = 0;
  list[0] = '\0';
  for (size_t j = 0; keys && keys[j] && used < sizeof list; j++) {
    int w = snprintf(list + used, sizeof list - used, "%s%s", j ? ", " : "",
                     keys[j]);
    if (w < 0)
      break;
    used += (size_t)w;
  }
  if (used >= sizeof list)
    snprintf(list + sizeof list - 4, 4, "...");

  unsigned errs = 0;
  for (size_t i = 0; i < n; i++) {
    const struct sfk_cfg_node *kn = sfk_cfg_key_node_at(s, i);
    const char *k = sfk_cfg_scalar(kn);
    if (!k || sfk_cfg_type(kn) != SFK_CFG_SCALAR)
      continue; /* a non-text key: reported by the loader */
    int known = strcmp(k, "plugin") == 0 || (extra && strcmp(k, extra) == 0);
    for (size_t j = 0; keys && keys[j] && !known; j++)
      known = strcmp(k, keys[j]) == 0;
    if (known)
      continue;
    if (list[0])
      sfk_cfg_error(cfg->doc, kn,
                    "unknown key '%s' in section '%s' (plugin '%s' accepts: "
                    "%s)",
                    sfk_cfg_quote(k, q, sizeof q), label, pc->name, list);
    else
      sfk_cfg_error(cfg->doc, kn,
                    "unknown key '%s' in section '%s' (plugin '%s' takes no "
                    "settings)",
                    sfk_cfg_quote(k, q, sizeof q), label, pc->name);
    errs++;
  }
  return errs;
}

/* ------------------------------------------------------------------ */
/* services                                                             */

static int check_peers(struct chk *c, const struct sfk_cfg_node *entry,
                       struct sfk_service *sv) {
  char q[SFK_CFG_QUOTE_MAX];
  const struct sfk_cfg_node *p = sfk_cfg_get(entry, "peers");
  int bad = 0;
  if (!p) {
    sv->all_peers = 1;
    return 0;
  }
  if (sfk_cfg_type(p) == SFK_CFG_SCALAR) {
    const char *s;
    if (sfk_cfg_string(c->doc, entry, "peers", NULL, &s) < 0)
      return -EINVAL;
    if (strcmp(s, "all") == 0) {
      sv->all_peers = 1;
      return 0;
    }
  }
  size_t n = sfk_cfg_len(p);
  if (sfk_cfg_type(p) != SFK_CFG_SEQ || n == 0) {
    sfk_cfg_error(c->doc, p,
                  "'peers' must be 'all' or a non-empty list of PIDs like "
                  "[1, 2]");
    return -EINVAL;
  }
  uint32_t max = c->net_ok ? c->maxpid : UINT32_MAX - 1;
  for (size_t i = 0; i < n; i++) {
    const struct sfk_cfg_node *it = sfk_cfg_at(p, i);
    const char *s = sfk_cfg_scalar(it);
    uint64_t v;
    if (i >= SFK_MAX_SERVICE_PEERS) {
      sfk_cfg_error(c->doc, it, "too many peers in one service (at most %d)",
                    SFK_MAX_SERVICE_PEERS);
      return -EINVAL;
    }
    if (!s || sfk_cfg_is_null(it) || sfk_parse_uint(s, 0, max, &v) < 0) {
      sfk_cfg_error(c->doc, it, "invalid PID '%s' in 'peers' (0..%u)",
                    s ? sfk_cfg_quote(s, q, sizeof q) : "(not a value)", max);
      bad = 1;
      continue;
    }
    int dup = 0;
    for (unsigned j = 0; j < sv->npeers && !dup; j++)
      dup = sv->peers[j] == (uint32_t)v;
    if (dup) {
      sfk_cfg_error(c->doc, it, "PID %llu is listed twice in 'peers'",
                    (unsigned long long)v);
      bad = 1;
      continue;
    }
    sv->peers[sv->npeers++] = (uint32_t)v;
  }
  return bad ? -EINVAL : 0;
}

static void check_services(struct chk *c) {
  char q[SFK_CFG_QUOTE_MAX];
  struct sfk_config *cfg = c->cfg;
  const struct sfk_cfg_node *list = sfk_cfg_get(c->root, "services");
  unsigned lines[SFK_MAX_SERVICES], cols[SFK_MAX_SERVICES];
  cfg->nservices = 0;
  if (!list || sfk_cfg_is_null(list))
    return;
  if (sfk_cfg_type(list) != SFK_CFG_SEQ) {
    sfk_cfg_error(c->doc, list,
                  "'services' must be a list of entries ('- ports: ...')");
    return;
  }
  size_t n = sfk_cfg_len(list);
  for (size_t i = 0; i < n; i++) {
    const struct sfk_cfg_node *e = sfk_cfg_at(list, i);
    if (i >= SFK_MAX_SERVICES) {
      sfk_cfg_error(c->doc, e, "too many services (at most %d)",
                    SFK_MAX_SERVICES);
      return;
    }
    if (sfk_cfg_type(e) != SFK_CFG_MAP) {
      sfk_cfg_error(c->doc, e,
                    "a services entry must be a map with 'ports', 'host' "
                    "and 'peers'");
      continue;
    }
    sfk_cfg_check_keys(c->doc, e, "services", service_keys, NULL);
    struct sfk_service *sv = &cfg->services[cfg->nservices];
    memset(sv, 0, sizeof *sv);
    int bad = 0;

    const char *s = NULL;
    const struct sfk_cfg_node *pn = sfk_cfg_get(e, "ports");
    if (sfk_cfg_string(c->doc, e, "ports", NULL, &s) < 0) {
      bad = 1;
    } else if (!s) {
      sfk_cfg_error(c->doc, e,
                    "missing 'ports' in this services entry (e.g. ports: "
                    "8100-8199)");
      bad = 1;
    } else if (sfk_parse_port_range(s, &sv->port_lo, &sv->port_hi) < 0) {
      sfk_cfg_error(c->doc, pn,
                    "invalid port range '%s' for 'ports' (use e.g. 8100-8199 "
                    "or 8100; ports 1..65535, low one first)",
                    sfk_cfg_quote(s, q, sizeof q));
      bad = 1;
    } else {
      for (unsigned j = 0; j < cfg->nservices; j++) {
        const struct sfk_service *o = &cfg->services[j];
        if (sv->port_lo <= o->port_hi && o->port_lo <= sv->port_hi) {
          sfk_cfg_error(c->doc, pn,
                        "ports %u-%u overlap the services entry at line %u, "
                        "column %u (%u-%u)",
                        sv->port_lo, sv->port_hi, lines[j], cols[j], o->port_lo,
                        o->port_hi);
          bad = 1;
          break;
        }
      }
    }

    if (sfk_cfg_string(c->doc, e, "host", "127.0.0.1", &s) < 0) {
      bad = 1;
    } else {
      struct sockaddr_in sin;
      memset(&sin, 0, sizeof sin);
      sin.sin_family = AF_INET;
      if (inet_pton(AF_INET, s, &sin.sin_addr) != 1) {
        sfk_cfg_error(c->doc, sfk_cfg_get(e, "host"),
                      "invalid host '%s' for a service (use an IPv4 address "
                      "like 127.0.0.1, without a port)",
                      sfk_cfg_quote(s, q, sizeof q));
        bad = 1;
      } else {
        memcpy(&sv->host, &sin, sizeof sin);
        sv->hostlen = sizeof sin;
      }
    }

    if (check_peers(c, e, sv) < 0)
      bad = 1;
    if (!bad) {
      lines[cfg->nservices] = sfk_cfg_line(e);
      cols[cfg->nservices] = sfk_cfg_column(e);
      cfg->nservices++;
    }
  }
}

/* ------------------------------------------------------------------ */
/* Loading                                                              */

static void defaults(struct sfk_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->pid = SFK_PID_NONE;
  cfg->log_level = SFK_LOG_INFO;
  cfg->log_format = SFK_LOGFMT_TEXT;
}

static int check(struct sfk_config *cfg, struct sfk_cfg_doc *doc,
                 const struct sfk_overrides *ov) {
  struct chk c;
  memset(&c, 0, sizeof c);
  c.cfg = cfg;
  c.doc = doc;
  c.root = sfk_cfg_root(doc);
  cfg->doc = doc;
  if (!c.root && sfk_cfg_errors(doc))
    return -EINVAL; /* unparsable: nothing more to say */

  sfk_cfg_check_keys(doc, c.root, NULL, top_keys, NULL);
  check_network(&c);
  check_party(&c, ov);
  check_socks(&c);
  check_simple(&c);
  apply_log_overrides(&c, ov);
  check_plugins(&c);
  check_services(&c);
  return sfk_cfg_errors(doc) ? -EINVAL : 0;
}

int sfk_config_load_string(struct sfk_config *cfg, const char *name,
                           const char *text, size_t len,
                           const struct sfk_overrides *ov, FILE *errsink) {
  defaults(cfg);
  struct sfk_cfg_doc *doc = sfk_cfg_load_string(name, text, len, errsink);
  if (!doc)
    return -ENOMEM;
  return check(cfg, doc, ov);
}

int sfk_config_load(struct sfk_config *cfg, const char *path,
                    const struct sfk_overrides *ov, FILE *errsink) {
  if (!path)
    return sfk_config_load_string(
        cfg, "(built-in default config)", sfk_config_default_yaml,
        sizeof sfk_config_default_yaml - 1, ov, errsink);
  defaults(cfg);
  struct sfk_cfg_doc *doc = sfk_cfg_load_file(path, errsink);
  if (!doc)
    return errno ? -errno : -EIO;
  return check(cfg, doc, ov);
}

void sfk_config_free(struct sfk_config *cfg) {
  if (!cfg)
    return;
  sfk_cfg_doc_del(cfg->doc);
  cfg->doc = NULL;
  cfg->discovery.section = cfg->registry.section = NULL;
  cfg->transport.section = cfg->relay.section = NULL;
}

/* ------------------------------------------------------------------ */
/* Queries                                                              */

uint32_t sfk_config_max_pid(const struct sfk_config *cfg) {
  if (cfg->prefix < MIN_PREFIX || cfg->prefix > 31)
    return 0;
  return (uint32_t)((1ull << (32 - cfg->prefix)) - 2);
}

int sfk_config_virtual_pid(const struct sfk_config *cfg, uint32_t addr,
                           uint32_t *pid) {
  if (cfg->prefix > 32)
    return 0;
  uint32_t mask = cfg->prefix == 0 ? 0 : UINT32_MAX << (32 - cfg->prefix);
  if ((addr & mask) != cfg->net)
    return 0;
  *pid = addr & ~mask;
  return 1;
}

const struct sfk_service *sfk_config_service(const struct sfk_config *cfg,
                                             uint32_t peer, uint16_t port) {
  for (unsigned i = 0; i < cfg->nservices; i++) {
    const struct sfk_service *s = &cfg->services[i];
    if (port < s->port_lo || port > s->port_hi)
      continue;
    if (s->all_peers)
      return s;
    for (unsigned j = 0; j < s->npeers; j++)
      if (s->peers[j] == peer)
        return s;
    return NULL; /* ranges do not overlap: no other entry has this port */
  }
  return NULL;
}

const char *sfk_config_vaddr_str(const struct sfk_config *cfg, uint32_t pid,
                                 char *buf, size_t bufsz) {
  uint32_t a = cfg->net + pid;
  snprintf(buf, bufsz, "%u.%u.%u.%u", a >> 24, (a >> 16) & 0xff,
           (a >> 8) & 0xff, a & 0xff);
  return buf;
}
