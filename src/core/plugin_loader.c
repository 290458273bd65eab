/*
 * Finding, loading and checking plugins.
 *
 * Order of checks: the name is validated before it becomes part of a
 * path; the descriptor is checked field by field in the order a broken
 * build would get them wrong (ABI first, since every other field's
 * meaning depends on it), and no plugin function is called before all
 * checks pass (only the ELF constructors of the object and its libraries
 * run at dlopen).  Each refusal says which file, what is wrong and what
 * to do.
 *
 * Plugins are opened RTLD_NODELETE: a plugin linked with GnuTLS or libcurl
 * must not have its libraries' destructors run by dlclose() while the
 * daemon still uses them (the knot-resolver lesson).
 *
 * Errors: -EINVAL bad name or kind argument, -ENOENT plugin not found,
 * -ENAMETOOLONG, -ENOEXEC the file cannot be loaded or its descriptor is
 * refused.
 */
#include "autoconfig.h"

#include "plugin_loader.h"
#include "util.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef SFK_PLUGIN_DIR
#define SFK_PLUGIN_DIR "/usr/local/lib/sfkit-proxy"
#endif

#define PLUGIN_ENV "SFKIT_PROXY_PLUGIN_DIR"
#define NAME_MAX_LEN 63


const char *sfk_kind_name(int kind) {
  switch (kind) {
  case SFK_KIND_TRANSPORT:
    return "transport";
  case SFK_KIND_RELAY:
    return "relay";
  case SFK_KIND_DISCOVERY:
    return "discovery";
  case SFK_KIND_REGISTRY:
    return "registry";
  default:
    return NULL;
  }
}

/* [a-z0-9_]{1,63}: safe to put into a file name. */
static int name_ok(const char *name) {
  if (!name || !*name)
    return 0;
  size_t i = 0;
  for (; name[i]; i++) {
    char c = name[i];
    if (i >= NAME_MAX_LEN ||
        !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
      return 0;
  }
  return 1;
}

/* Check the arguments shared by the load functions. */
static int check_args(int kind, const char *name, char *err, size_t errlen) {
  if (!sfk_kind_name(kind)) {
    sfk_set_err(err, errlen, "unknown plugin kind %d", kind);
    return -EINVAL;
  }
  if (!name_ok(name)) {
    sfk_set_err(err, errlen,
            "bad %s plugin name '%.80s': use 1 to %d characters from a-z, 0-9 "
            "and _",
            sfk_kind_name(kind), name ? name : "", NAME_MAX_LEN);
    return -EINVAL;
  }
  return 0;
}

/* ------------------------------------------------------------------ */
/* Descriptor checks                                                    */

/* A required slot: its name and whether the plugin filled it. */
struct slot {
  const char *name;
  int set;
};

#define SLOT(ops, field)                                                       \
  { #field, (ops)->field != NULL }

/* Append the names of unset slots to buf ("a, b"); returns how many. */
static int missing_slots(const struct slot *s, size_t n, char *buf,
                         size_t len) {
  int count = 0;
  size_t used = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < n; i++) {
    if (s[i].set)
      continue;
    int w =
        snprintf(buf + used, len - used, "%s%s", count ? ", " : "", s[i].name);
    if (w > 0 && (size_t)w < len - used)
      used += (size_t)w;
    count++;
  }
  return count;
}

/* sizeof the kind's ops struct (0 for unknown kinds). */
static size_t ops_size_of(int kind) {
  switch (kind) {
  case SFK_KIND_TRANSPORT:
    return sizeof(struct sfk_transport_ops);
  case SFK_KIND_RELAY:
    return sizeof(struct sfk_relay_ops);
  case SFK_KIND_DISCOVERY:
    return sizeof(struct sfk_discovery_ops);
  case SFK_KIND_REGISTRY:
    return sizeof(struct sfk_registry_ops);
  default:
    return 0;
  }
}

/* List the required slots of ops (already known to be large enough). */
static size_t required_slots(int kind, const void *ops, struct slot *s) {
  const struct sfk_base_ops *b = ops; /* first member of every kind */
  size_t n = 0;
  s[n++] = (struct slot)SLOT(b, create);
  s[n++] = (struct slot)SLOT(b, start);
  s[n++] = (struct slot)SLOT(b, stop);
  s[n++] = (struct slot)SLOT(b, destroy);
  if (kind == SFK_KIND_TRANSPORT) {
    const struct sfk_transport_ops *t = ops;
    s[n++] = (struct slot)SLOT(t, on_datagram);
    s[n++] = (struct slot)SLOT(t, peers_changed);
    s[n++] = (struct slot)SLOT(t, stream_open);
    s[n++] = (struct slot)SLOT(t, stream_reply);
    s[n++] = (struct slot)SLOT(t, stream_space);
    s[n++] = (struct slot)SLOT(t, stream_write);
    s[n++] = (struct slot)SLOT(t, stream_consumed);
    s[n++] = (struct slot)SLOT(t, stream_reset);
  } else if (kind == SFK_KIND_RELAY) {
    const struct sfk_relay_ops *r = ops;
    s[n++] = (struct slot)SLOT(r, on_datagram);
    s[n++] = (struct slot)SLOT(r, owns_source);
    s[n++] = (struct slot)SLOT(r, permit);
    s[n++] = (struct slot)SLOT(r, unpermit);
    s[n++] = (struct slot)SLOT(r, send);
    s[n++] = (struct slot)SLOT(r, info);
  } else if (kind == SFK_KIND_DISCOVERY) {
    const struct sfk_discovery_ops *d = ops;
    s[n++] = (struct slot)SLOT(d, on_datagram);
  } else if (kind == SFK_KIND_REGISTRY) {
    const struct sfk_registry_ops *r = ops;
    s[n++] = (struct slot)SLOT(r, publish);
    s[n++] = (struct slot)SLOT(r, refresh);
  }
  return n;
}

#define REBUILD                                                                \
  "rebuild the plugin against this sfkit-proxy's "                             \
  "include/sfkit-proxy/plugin.h"

int sfk_plugin_check_desc(const struct sfk_plugin_desc *d, int kind,
                          const char *name, char *err, size_t errlen) {
  int rc = check_args(kind, name, err, errlen);
  if (rc < 0)
    return rc;
  const char *want = sfk_kind_name(kind);
  if (!d) {
    sfk_set_err(err, errlen, "no plugin descriptor");
    return -ENOEXEC;
  }
  if (d->abi != SFK_ABI_VERSION) {
    sfk_set_err(err, errlen,
            "built for plugin ABI %u, this daemon speaks ABI %d: " REBUILD,
            (unsigned)d->abi, SFK_ABI_VERSION);
    return -ENOEXEC;
  }
  if (d->desc_size != sizeof(struct sfk_plugin_desc)) {
    sfk_set_err(err, errlen,
            "descriptor is %u bytes, this daemon's is %zu (same ABI %d, "
            "different header): " REBUILD,
            (unsigned)d->desc_size, sizeof(struct sfk_plugin_desc),
            SFK_ABI_VERSION);
    return -ENOEXEC;
  }
  if (d->host_size != sizeof(struct sfk_host)) {
    sfk_set_err(err, errlen,
            "built with a host API of %u bytes, this daemon's is %zu (same "
            "ABI %d, different header): " REBUILD,
            (unsigned)d->host_size, sizeof(struct sfk_host), SFK_ABI_VERSION);
    return -ENOEXEC;
  }
  if (d->kind != (uint32_t)kind) {
    const char *got = sfk_kind_name((int)d->kind);
    if (got)
      sfk_set_err(err, errlen,
              "is a %s plugin, not a %s plugin: configure a %s plugin "
              "here, or install this file as %s_%s.so",
              got, want, want, got, name);
    else
      sfk_set_err(err, errlen,
              "declares unknown kind %u, expected a %s plugin: " REBUILD,
              (unsigned)d->kind, want);
    return -ENOEXEC;
  }
  if (!d->name || strcmp(d->name, name) != 0) {
    sfk_set_err(err, errlen,
            "calls itself '%.63s' but was loaded as %s plugin '%s': the name "
            "in SFK_PLUGIN_DEFINE must match the file name %s_%s.so",
            d->name ? d->name : "(null)", want, name, want, name);
    return -ENOEXEC;
  }
  if (!d->ops) {
    sfk_set_err(err, errlen,
            "has no ops table: define the descriptor with SFK_PLUGIN_DEFINE "
            "and a struct sfk_%s_ops",
            want);
    return -ENOEXEC;
  }
  size_t need = ops_size_of(kind);
  if (d->ops_size < need) {
    sfk_set_err(err, errlen,
            "ops table is %u bytes, a %s plugin needs %zu: it must be a "
            "struct sfk_%s_ops; " REBUILD,
            (unsigned)d->ops_size, want, need, want);
    return -ENOEXEC;
  }

  struct slot slots[16];
  size_t n = required_slots(kind, d->ops, slots);
  char list[256];
  int missing = missing_slots(slots, n, list, sizeof list);
  if (missing) {
    sfk_set_err(err, errlen,
            "%s plugin '%s' lacks required entr%s %s: implement %s in its "
            "struct sfk_%s_ops",
            want, name, missing > 1 ? "ies" : "y", list,
            missing > 1 ? "them" : "it", want);
    return -ENOEXEC;
  }
  return 0;
}

/* ------------------------------------------------------------------ */
/* Loading                                                              */

int sfk_plugin_load_file(struct sfk_plugin *p, const char *path, int kind,
                         const char *name, char *err, size_t errlen) {
  memset(p, 0, sizeof *p);
  int rc = check_args(kind, name, err, errlen);
  if (rc < 0)
    return rc;
  size_t plen = path ? strlen(path) : 0;
  if (plen == 0 || plen >= sizeof p->path) {
    sfk_set_err(err, errlen, "plugin path %s", plen ? "too long" : "empty");
    return plen ? -ENAMETOOLONG : -EINVAL;
  }

  dlerror();
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (!h) {
    const char *why = dlerror();
    sfk_set_err(err, errlen, "cannot load %s plugin %s: %s", sfk_kind_name(kind),
            path, why ? why : "unknown dlopen error");
    return -ENOEXEC;
  }

  dlerror();
  const struct sfk_plugin_desc *d = dlsym(h, SFK_PLUGIN_SYMBOL_NAME);
  if (!d) {
    sfk_set_err(err, errlen,
            "%s is not an sfkit-proxy plugin: it exports no '%s' symbol "
            "(define one with SFK_PLUGIN_DEFINE from sfkit-proxy/plugin.h)",
            path, SFK_PLUGIN_SYMBOL_NAME);
    dlclose(h);
    return -ENOEXEC;
  }

  char why[768];
  rc = sfk_plugin_check_desc(d, kind, name, why, sizeof why);
  if (rc < 0) {
    sfk_set_err(err, errlen, "%s: %s", path, why);
    dlclose(h);
    return rc;
  }

  p->handle = h;
  p->desc = d;
  memcpy(p->path, path, plen + 1);
  return 0;
}

int sfk_plugin_load(struct sfk_plugin *p, int kind, const char *name, char *err,
                    size_t errlen) {
  memset(p, 0, sizeof *p);
  int rc = check_args(kind, name, err, errlen);
  if (rc < 0)
    return rc;
  const char *kname = sfk_kind_name(kind);

  const char *env = getenv(PLUGIN_ENV);
  const char *dirs = env && *env ? env : SFK_PLUGIN_DIR;
  char file[NAME_MAX_LEN + 32];
  snprintf(file, sizeof file, "%s_%s.so", kname, name);

  /* The first directory holding the file wins, as with PATH; a file that
   * exists but is refused is an error, not a reason to look further. */
  char searched[1024] = "";
  size_t slen = 0;
  for (const char *s = dirs; *s;) {
    size_t n = strcspn(s, ":");
    if (n > 0) {
      char path[sizeof p->path];
      int w = snprintf(path, sizeof path, "%.*s/%s", (int)n, s, file);
      struct stat st;
      if (w > 0 && (size_t)w < sizeof path && stat(path, &st) == 0 &&
          S_ISREG(st.st_mode))
        return sfk_plugin_load_file(p, path, kind, name, err, errlen);
      w = snprintf(searched + slen, sizeof searched - slen, "%s%.*s",
                   slen ? ", " : "", (int)n, s);
      if (w > 0 && (size_t)w < sizeof searched - slen)
        slen += (size_t)w;
    }
    s += n;
    if (*s == ':')
      s++;
  }
  sfk_set_err(err, errlen,
          "no %s plugin '%s': looked for %s in %s (set " PLUGIN_ENV
          " or install the plugin)",
          kname, name, file, slen ? searched : "(no directory)");
  return -ENOENT;
}

void sfk_plugin_unload(struct sfk_plugin *p) {
  if (!p)
    return;
  if (p->handle)
    dlclose(p->handle); /* RTLD_NODELETE: the code stays mapped */
  memset(p, 0, sizeof *p);
}
