/*
 * Unit tests for the plugin loader (src/core/plugin_loader.c): descriptor
 * checks on in-memory descriptors, then the check-only plugins in
 * tests/plugins (SFK_TEST_PLUGIN_DIR, set by the Makefile to
 * tests/plugins/.libs) and the directory search.
 *
 * The messages are checked for the parts a user relies on: the file, the
 * ABI numbers, both kinds, the missing slot, the directories searched.
 */
#include "autoconfig.h"

#include "plugin_loader.h"
#include "tap.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef SFK_PLUGIN_DIR
#define SFK_PLUGIN_DIR "/usr/local/lib/sfkit-proxy"
#endif

static char err[1024];

/* Does err contain every one of the strings?  HAS("a", "b"). */
#define HAS(...) has_all((const char *const[]){__VA_ARGS__, NULL})
static int has_all(const char *const *want) {
  int all = 1;
  for (; *want; want++) {
    if (!strstr(err, *want)) {
      printf("#   message lacks '%s'\n", *want);
      all = 0;
    }
  }
  if (!all)
    printf("#   message: %s\n", err);
  return all;
}

/* ------------------------------------------------------------------ */
/* Stub ops so descriptors can be complete.                             */

static int s_create(const struct sfk_host *h, const struct sfk_cfg_node *c,
                    void **self) {
  (void)h;
  (void)c;
  *self = NULL;
  return 0;
}
static int s_start(void *self) {
  (void)self;
  return 0;
}
static void s_void(void *self) {
  (void)self;
}
static void s_dgram(void *self, const struct sockaddr *from, socklen_t fl,
                    const uint8_t *d, size_t n) {
  (void)self, (void)from, (void)fl, (void)d, (void)n;
}
static int s_open(void *self, uint32_t pid, uint16_t port, void *app,
                  void **ts) {
  (void)self, (void)pid, (void)port, (void)app;
  *ts = NULL;
  return 0;
}
static void s_reply(void *self, void *ts, uint8_t st) {
  (void)self, (void)ts, (void)st;
}
static size_t s_space(void *self, void *ts) {
  (void)self, (void)ts;
  return 0;
}
static size_t s_write(void *self, void *ts, const uint8_t *d, size_t n,
                      int fin) {
  (void)self, (void)ts, (void)d, (void)fin;
  return n;
}
static void s_consumed(void *self, void *ts, size_t n) {
  (void)self, (void)ts, (void)n;
}
static void s_reset(void *self, void *ts) {
  (void)self, (void)ts;
}
static int s_info(void *self, struct sfk_path_info *o) {
  (void)self, (void)o;
  return -EAGAIN;
}
static void s_unpermit(void *self, const struct sockaddr *p, socklen_t l) {
  (void)self, (void)p, (void)l;
}
static void s_tdgram(void *self, int path, const struct sockaddr *f,
                     socklen_t fl, const uint8_t *b, size_t n) {
  (void)path;
  s_dgram(self, f, fl, b, n);
}
static int s_permit(void *self, const struct sockaddr *p, socklen_t l) {
  (void)self, (void)p, (void)l;
  return 0;
}
static int s_send(void *self, const struct sockaddr *to, socklen_t tl,
                  const uint8_t *b, size_t n) {
  (void)self, (void)to, (void)tl, (void)b, (void)n;
  return 0;
}
static int s_owns(void *self, const struct sockaddr *f, socklen_t fl) {
  (void)self, (void)f, (void)fl;
  return 0;
}
static int s_publish(void *self, const char *a, const char *p) {
  (void)self, (void)a, (void)p;
  return 0;
}
static int s_refresh(void *self, uint32_t pid) {
  (void)self, (void)pid;
  return 0;
}

#define BASE                                                                   \
  { .create = s_create, .start = s_start, .stop = s_void, .destroy = s_void }

static const struct sfk_transport_ops t_ops = {.base = BASE,
                                               .on_datagram = s_tdgram,
                                               .peers_changed = s_void,
                                               .stream_open = s_open,
                                               .stream_reply = s_reply,
                                               .stream_space = s_space,
                                               .stream_write = s_write,
                                               .stream_consumed = s_consumed,
                                               .stream_reset = s_reset};
static const struct sfk_relay_ops r_ops = {.base = BASE,
                                           .on_datagram = s_dgram,
                                           .owns_source = s_owns,
                                           .permit = s_permit,
                                           .unpermit = s_unpermit,
                                           .send = s_send,
                                           .info = s_info};
static const struct sfk_discovery_ops d_ops = {.base = BASE,
                                               .on_datagram = s_dgram};
static const struct sfk_registry_ops g_ops = {
    .base = BASE, .publish = s_publish, .refresh = s_refresh};

static struct sfk_plugin_desc desc(int kind, const char *name, const void *ops,
                                   size_t ops_size) {
  struct sfk_plugin_desc d = {.abi = SFK_ABI_VERSION,
                              .desc_size = sizeof(struct sfk_plugin_desc),
                              .host_size = sizeof(struct sfk_host),
                              .kind = (uint32_t)kind,
                              .name = name,
                              .version = "1",
                              .ops = ops,
                              .ops_size = (uint32_t)ops_size};
  return d;
}

/* Required slots per kind: name and offset of the function pointer. */
struct req {
  int kind;
  const char *slot;
  size_t off;
};
#define RB(k, f)                                                               \
  { k, #f, offsetof(struct sfk_base_ops, f) }
#define RT(f)                                                                  \
  { SFK_KIND_TRANSPORT, #f, offsetof(struct sfk_transport_ops, f) }
#define RR(f)                                                                  \
  { SFK_KIND_RELAY, #f, offsetof(struct sfk_relay_ops, f) }
static const struct req reqs[] = {
    RB(SFK_KIND_TRANSPORT, create),
    RB(SFK_KIND_TRANSPORT, start),
    RB(SFK_KIND_TRANSPORT, stop),
    RB(SFK_KIND_TRANSPORT, destroy),
    RB(SFK_KIND_RELAY, create),
    RB(SFK_KIND_DISCOVERY, start),
    RB(SFK_KIND_REGISTRY, destroy),
    RT(on_datagram),
    RT(peers_changed),
    RT(stream_open),
    RT(stream_reply),
    RT(stream_space),
    RT(stream_write),
    RT(stream_consumed),
    RT(stream_reset),
    RR(on_datagram),
    RR(owns_source),
    RR(permit),
    RR(unpermit),
    RR(send),
    RR(info),
    {SFK_KIND_DISCOVERY, "on_datagram",
     offsetof(struct sfk_discovery_ops, on_datagram)},
    {SFK_KIND_REGISTRY, "publish", offsetof(struct sfk_registry_ops, publish)},
    {SFK_KIND_REGISTRY, "refresh", offsetof(struct sfk_registry_ops, refresh)},
};

static const void *ops_of(int kind, size_t *size) {
  switch (kind) {
  case SFK_KIND_TRANSPORT:
    *size = sizeof t_ops;
    return &t_ops;
  case SFK_KIND_RELAY:
    *size = sizeof r_ops;
    return &r_ops;
  case SFK_KIND_DISCOVERY:
    *size = sizeof d_ops;
    return &d_ops;
  default:
    *size = sizeof g_ops;
    return &g_ops;
  }
}

/* ------------------------------------------------------------------ */

static void test_kind_names(void) {
  is_str(sfk_kind_name(SFK_KIND_TRANSPORT), "transport", "kind transport");
  is_str(sfk_kind_name(SFK_KIND_RELAY), "relay", "kind relay");
  is_str(sfk_kind_name(SFK_KIND_DISCOVERY), "discovery", "kind discovery");
  is_str(sfk_kind_name(SFK_KIND_REGISTRY), "registry", "kind registry");
  ok(sfk_kind_name(0) == NULL && sfk_kind_name(5) == NULL,
     "unknown kinds have no name");
}

static void test_check_desc(void) {
  struct sfk_plugin_desc d;
  int rc;

  for (int k = SFK_KIND_TRANSPORT; k <= SFK_KIND_REGISTRY; k++) {
    size_t sz;
    const void *ops = ops_of(k, &sz);
    d = desc(k, "good", ops, sz);
    rc = sfk_plugin_check_desc(&d, k, "good", err, sizeof err);
    is_int(rc, 0, "complete descriptor accepted");
    if (rc)
      printf("#   %s\n", err);
  }
  /* Bigger ops (say, a later optional slot) are fine; optional slots
   * (keys, reconfigure) may stay NULL, as in the stubs above. */
  _Alignas(struct sfk_discovery_ops) unsigned char big[sizeof d_ops + 16];
  memset(big, 0, sizeof big);
  memcpy(big, &d_ops, sizeof d_ops);
  d = desc(SFK_KIND_DISCOVERY, "good", big, sizeof big);
  is_int(sfk_plugin_check_desc(&d, SFK_KIND_DISCOVERY, "good", err, sizeof err),
         0, "larger ops table accepted");

  d = desc(SFK_KIND_TRANSPORT, "quic", &t_ops, sizeof t_ops);
  d.abi = 1; /* a plugin built before NAT traversal */
  rc = sfk_plugin_check_desc(&d, SFK_KIND_TRANSPORT, "quic", err, sizeof err);
  is_int(rc, -ENOEXEC, "ABI 1 refused");
  ok(HAS("built for plugin ABI 1, this daemon speaks ABI 2: rebuild the "
         "plugin against this sfkit-proxy's include/sfkit-proxy/plugin.h"),
     "ABI message as documented");

  d = desc(SFK_KIND_TRANSPORT, "quic", &t_ops, sizeof t_ops);
  d.desc_size += 8;
  rc = sfk_plugin_check_desc(&d, SFK_KIND_TRANSPORT, "quic", err, sizeof err);
  is_int(rc, -ENOEXEC, "descriptor size refused");
  ok(HAS("descriptor", "rebuild", "plugin.h"), "desc_size message");

  d = desc(SFK_KIND_TRANSPORT, "quic", &t_ops, sizeof t_ops);
  d.host_size -= 8;
  rc = sfk_plugin_check_desc(&d, SFK_KIND_TRANSPORT, "quic", err, sizeof err);
  is_int(rc, -ENOEXEC, "host size refused");
  ok(HAS("host API", "rebuild", "plugin.h"), "host_size message");

  d = desc(SFK_KIND_REGISTRY, "quic", &g_ops, sizeof g_ops);
  rc = sfk_plugin_check_desc(&d, SFK_KIND_TRANSPORT, "quic", err, sizeof err);
  is_int(rc, -ENOEXEC, "wrong kind refused");
  ok(HAS("registry plugin", "not a transport plugin"),
     "kind message names both kinds");
  d.kind = 77;
  rc = sfk_plugin_check_desc(&d, SFK_KIND_TRANSPORT, "quic", err, sizeof err);
  ok(rc == -ENOEXEC && HAS("unknown kind 77", "transport"),
     "unknown kind refused");

  d = desc(SFK_KIND_RELAY, "tern", &r_ops, sizeof r_ops);
  rc = sfk_plugin_check_desc(&d, SFK_KIND_RELAY, "turn", err, sizeof err);
  is_int(rc, -ENOEXEC, "name mismatch refused");
  ok(HAS("'tern'", "'turn'", "relay_turn.so"),
     "name message names both names and the file");
  d.name = NULL;
  rc = sfk_plugin_check_desc(&d, SFK_KIND_RELAY, "turn", err, sizeof err);
  is_int(rc, -ENOEXEC, "NULL name refused");

  d = desc(SFK_KIND_REGISTRY, "static", NULL, 0);
  rc = sfk_plugin_check_desc(&d, SFK_KIND_REGISTRY, "static", err, sizeof err);
  ok(rc == -ENOEXEC && HAS("no ops table", "sfk_registry_ops"),
     "NULL ops refused");

  d = desc(SFK_KIND_TRANSPORT, "quic", &t_ops, sizeof(struct sfk_relay_ops));
  rc = sfk_plugin_check_desc(&d, SFK_KIND_TRANSPORT, "quic", err, sizeof err);
  char need[32];
  snprintf(need, sizeof need, "needs %zu", sizeof(struct sfk_transport_ops));
  ok(rc == -ENOEXEC && HAS("ops table is", need, "transport"),
     "short ops table refused");

  /* Every required slot, one at a time. */
  for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
    _Alignas(struct sfk_transport_ops) unsigned char
        buf[sizeof(struct sfk_transport_ops)];
    size_t sz;
    const void *ops = ops_of(reqs[i].kind, &sz);
    memcpy(buf, ops, sz);
    memset(buf + reqs[i].off, 0, sizeof(void (*)(void)));
    d = desc(reqs[i].kind, "x", buf, sz);
    rc = sfk_plugin_check_desc(&d, reqs[i].kind, "x", err, sizeof err);
    char slot[64];
    snprintf(slot, sizeof slot, "entry %s:", reqs[i].slot);
    ok(rc == -ENOEXEC && HAS(slot, sfk_kind_name(reqs[i].kind)),
       "%s without %s refused", sfk_kind_name(reqs[i].kind), reqs[i].slot);
  }
  struct sfk_transport_ops two = t_ops;
  two.stream_write = NULL;
  two.base.stop = NULL;
  d = desc(SFK_KIND_TRANSPORT, "x", &two, sizeof two);
  rc = sfk_plugin_check_desc(&d, SFK_KIND_TRANSPORT, "x", err, sizeof err);
  ok(rc == -ENOEXEC && HAS("entries stop, stream_write"),
     "all missing slots listed");

  rc = sfk_plugin_check_desc(NULL, SFK_KIND_TRANSPORT, "x", err, sizeof err);
  is_int(rc, -ENOEXEC, "NULL descriptor refused");

  /* Names and kinds asked for. */
  d = desc(SFK_KIND_TRANSPORT, "x", &t_ops, sizeof t_ops);
  static const char *const bad[] = {"",     "../x", "Quic", "a-b",
                                    "a.so", "a/b",  "a b"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    rc = sfk_plugin_check_desc(&d, SFK_KIND_TRANSPORT, bad[i], err, sizeof err);
    ok(rc == -EINVAL && HAS("bad transport plugin name"), "name '%s' refused",
       bad[i]);
  }
  char longname[80];
  memset(longname, 'a', 63);
  longname[63] = '\0';
  d.name = longname;
  is_int(
      sfk_plugin_check_desc(&d, SFK_KIND_TRANSPORT, longname, err, sizeof err),
      0, "63-character name accepted");
  longname[63] = 'a';
  longname[64] = '\0';
  is_int(
      sfk_plugin_check_desc(&d, SFK_KIND_TRANSPORT, longname, err, sizeof err),
      -EINVAL, "64-character name refused");
  is_int(sfk_plugin_check_desc(&d, 9, "x", err, sizeof err), -EINVAL,
         "unknown kind asked for");

  /* A short error buffer truncates without overflowing. */
  char tiny[8];
  d = desc(SFK_KIND_TRANSPORT, "x", &t_ops, sizeof t_ops);
  d.abi = 1;
  sfk_plugin_check_desc(&d, SFK_KIND_TRANSPORT, "x", tiny, sizeof tiny);
  is_int(strlen(tiny), 7, "message truncated to the buffer");
}

/* ------------------------------------------------------------------ */
/* Real files                                                           */

static char plugdir[PATH_MAX];

static void plugin_path(char *out, size_t len, const char *file) {
  snprintf(out, len, "%s/%s", plugdir, file);
}

static void test_load_file(const char *tmp) {
  struct sfk_plugin p;
  char path[PATH_MAX + 64];
  int rc;

  plugin_path(path, sizeof path, "bad_abi.so");
  rc = sfk_plugin_load_file(&p, path, SFK_KIND_TRANSPORT, "bad_abi", err,
                            sizeof err);
  is_int(rc, -ENOEXEC, "bad_abi.so refused");
  ok(HAS(path, "ABI 999", "ABI 2", "rebuild", "include/sfkit-proxy/plugin.h"),
     "bad_abi: file, both ABI numbers, the fix");
  ok(p.handle == NULL && p.desc == NULL, "nothing kept on failure");

  plugin_path(path, sizeof path, "bad_kind.so");
  rc = sfk_plugin_load_file(&p, path, SFK_KIND_TRANSPORT, "bad_kind", err,
                            sizeof err);
  is_int(rc, -ENOEXEC, "bad_kind.so refused as transport");
  ok(HAS(path, "registry", "transport"), "bad_kind: file, both kinds");

  /* bad_kind is a valid registry plugin: the success path. */
  rc = sfk_plugin_load_file(&p, path, SFK_KIND_REGISTRY, "bad_kind", err,
                            sizeof err);
  is_int(rc, 0, "bad_kind.so loads as a registry");
  if (rc)
    printf("#   %s\n", err);
  ok(p.handle && p.desc && p.desc->kind == SFK_KIND_REGISTRY &&
         strcmp(p.desc->name, "bad_kind") == 0,
     "descriptor kept");
  is_str(p.path, path, "path kept");
  sfk_plugin_unload(&p);
  ok(p.handle == NULL && p.desc == NULL, "unload clears");
  /* RTLD_NODELETE: the object stays mapped after dlclose(), so libraries
   * it pulled in (GnuTLS, libcurl) never run their destructors early. */
  void *still = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
  ok(still != NULL, "unloaded plugin stays resident (RTLD_NODELETE)");
  if (still)
    dlclose(still);
  sfk_plugin_unload(&p); /* twice is harmless */

  rc = sfk_plugin_load_file(&p, path, SFK_KIND_REGISTRY, "static", err,
                            sizeof err);
  ok(rc == -ENOEXEC && HAS(path, "'bad_kind'", "'static'"),
     "name mismatch names the file and both names");

  plugin_path(path, sizeof path, "missing_ops.so");
  rc = sfk_plugin_load_file(&p, path, SFK_KIND_TRANSPORT, "missing_ops", err,
                            sizeof err);
  is_int(rc, -ENOEXEC, "missing_ops.so refused");
  ok(HAS(path, "stream_write"), "missing_ops: file and slot");
  ok(strstr(err, "stream_reset") == NULL, "only the missing slot named");

  plugin_path(path, sizeof path, "no_symbol.so");
  rc = sfk_plugin_load_file(&p, path, SFK_KIND_TRANSPORT, "no_symbol", err,
                            sizeof err);
  is_int(rc, -ENOEXEC, "no_symbol.so refused");
  ok(HAS(path, "'sfkit_proxy_plugin'", "SFK_PLUGIN_DEFINE"),
     "no_symbol: file and symbol");

  plugin_path(path, sizeof path, "does_not_exist.so");
  rc = sfk_plugin_load_file(&p, path, SFK_KIND_TRANSPORT, "x", err, sizeof err);
  ok(rc == -ENOEXEC && HAS(path, "No such file"),
     "missing file: dlerror() included");

  snprintf(path, sizeof path, "%s/text.so", tmp);
  FILE *f = fopen(path, "w");
  if (f) {
    fputs("this is not an ELF object, it is long enough to have a header\n", f);
    fclose(f);
  }
  rc = sfk_plugin_load_file(&p, path, SFK_KIND_TRANSPORT, "x", err, sizeof err);
  ok(rc == -ENOEXEC && HAS(path, "cannot load transport plugin") &&
         (strstr(err, "ELF") || strstr(err, "too short")),
     "non-ELF file: dlerror() included");
  unlink(path);

  rc = sfk_plugin_load_file(&p, path, SFK_KIND_TRANSPORT, "../x", err,
                            sizeof err);
  is_int(rc, -EINVAL, "load_file checks the name too");
}

static void test_search(const char *tmp) {
  struct sfk_plugin p;
  char a[PATH_MAX], b[PATH_MAX], env[2 * PATH_MAX + 8];
  char link[PATH_MAX + 64], target[PATH_MAX + 64];
  int rc;

  snprintf(a, sizeof a, "%s/dir_a", tmp);
  snprintf(b, sizeof b, "%s/dir_b", tmp);
  mkdir(a, 0700);
  mkdir(b, 0700);
  snprintf(env, sizeof env, "%s:%s", a, b);
  setenv("SFKIT_PROXY_PLUGIN_DIR", env, 1);

  rc = sfk_plugin_load(&p, SFK_KIND_DISCOVERY, "stun", err, sizeof err);
  is_int(rc, -ENOENT, "absent plugin: -ENOENT");
  char both[2 * PATH_MAX + 4];
  snprintf(both, sizeof both, "%s, %s", a, b);
  ok(HAS("no discovery plugin 'stun': looked for discovery_stun.so in ", both,
         "(set SFKIT_PROXY_PLUGIN_DIR or install the plugin)"),
     "not-found message lists both directories");

  /* Found in the second directory. */
  plugin_path(target, sizeof target, "bad_kind.so");
  snprintf(link, sizeof link, "%s/registry_bad_kind.so", b);
  ok(symlink(target, link) == 0, "link registry_bad_kind.so into dir_b");
  rc = sfk_plugin_load(&p, SFK_KIND_REGISTRY, "bad_kind", err, sizeof err);
  is_int(rc, 0, "found in the second directory");
  if (rc)
    printf("#   %s\n", err);
  is_str(p.path, link, "path of the found file");
  sfk_plugin_unload(&p);

  /* The first directory wins; a refused file is an error, not skipped. */
  plugin_path(target, sizeof target, "missing_ops.so");
  snprintf(link, sizeof link, "%s/registry_bad_kind.so", a);
  ok(symlink(target, link) == 0, "shadow it in dir_a with a bad plugin");
  rc = sfk_plugin_load(&p, SFK_KIND_REGISTRY, "bad_kind", err, sizeof err);
  ok(rc == -ENOEXEC && HAS(link, "transport", "registry"),
     "first directory wins and its refusal is reported");

  /* Empty components are ignored. */
  snprintf(env, sizeof env, "::%s:", b);
  setenv("SFKIT_PROXY_PLUGIN_DIR", env, 1);
  rc = sfk_plugin_load(&p, SFK_KIND_REGISTRY, "bad_kind", err, sizeof err);
  is_int(rc, 0, "empty list components skipped");
  sfk_plugin_unload(&p);

  /* Names are checked before any path is built. */
  rc = sfk_plugin_load(&p, SFK_KIND_TRANSPORT, "../dir_b/registry_bad_kind",
                       err, sizeof err);
  ok(rc == -EINVAL && HAS("bad transport plugin name"),
     "path in a name refused");
  rc = sfk_plugin_load(&p, 0, "quic", err, sizeof err);
  is_int(rc, -EINVAL, "unknown kind refused");

  /* Without the variable, the build-time directory is searched. */
  unsetenv("SFKIT_PROXY_PLUGIN_DIR");
  rc =
      sfk_plugin_load(&p, SFK_KIND_RELAY, "no_such_relay_xyz", err, sizeof err);
  ok(rc == -ENOENT && HAS("relay_no_such_relay_xyz.so", SFK_PLUGIN_DIR),
     "default directory " SFK_PLUGIN_DIR " searched");
  setenv("SFKIT_PROXY_PLUGIN_DIR", "", 1);
  rc =
      sfk_plugin_load(&p, SFK_KIND_RELAY, "no_such_relay_xyz", err, sizeof err);
  ok(rc == -ENOENT && HAS(SFK_PLUGIN_DIR), "empty variable means the default");
  unsetenv("SFKIT_PROXY_PLUGIN_DIR");
}

int main(void) {
  test_kind_names();
  test_check_desc();

  const char *dir = getenv("SFK_TEST_PLUGIN_DIR");
  snprintf(plugdir, sizeof plugdir, "%s",
           dir && *dir ? dir : "tests/plugins/.libs");
  char probe[PATH_MAX + 32];
  plugin_path(probe, sizeof probe, "bad_abi.so");
  if (access(probe, R_OK) != 0) {
    ok(0, "test plugins in %s (set SFK_TEST_PLUGIN_DIR)", plugdir);
    return tap_done();
  }
  char tmp[] = "/tmp/sfk-test-loader-XXXXXX";
  if (!mkdtemp(tmp)) {
    perror("mkdtemp");
    return 99;
  }
  test_load_file(tmp);
  test_search(tmp);

  char cmd[PATH_MAX];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
  if (system(cmd) != 0)
    printf("# could not remove %s\n", tmp);
  return tap_done();
}
