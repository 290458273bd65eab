/*
 * Finding and checking plugins.  A plugin of kind K named N is the file
 * `K_N.so` in one of the plugin directories: SFKIT_PROXY_PLUGIN_DIR (a
 * colon-separated list) when set, else the build-time SFK_PLUGIN_DIR.
 * The descriptor is checked before any plugin code runs.
 */
#ifndef SFK_PLUGIN_LOADER_H
#define SFK_PLUGIN_LOADER_H

#include <stddef.h>

#include "sfkit-proxy/plugin.h"

struct sfk_plugin {
  void *handle;                      /* dlopen handle, owned */
  const struct sfk_plugin_desc *desc; /* inside the loaded object */
  char path[4096];                   /* file it came from */
};

/* "transport", "relay", "discovery", "registry", or NULL. */
const char *sfk_kind_name(int kind);

/*
 * Load plugin `name` of `kind`.  On failure returns a negative errno and
 * an explanation in err: the directories searched when not found, or
 * what is wrong with the descriptor (ABI version, sizes, kind, name,
 * missing required slots) and how to fix it.
 */
int sfk_plugin_load(struct sfk_plugin *p, int kind, const char *name,
                    char *err, size_t errlen);
/* Load from an explicit file (tests). */
int sfk_plugin_load_file(struct sfk_plugin *p, const char *path, int kind,
                         const char *name, char *err, size_t errlen);
/* Check a descriptor without loading (pure; for tests too). */
int sfk_plugin_check_desc(const struct sfk_plugin_desc *d, int kind,
                          const char *name, char *err, size_t errlen);
void sfk_plugin_unload(struct sfk_plugin *p);

#endif
