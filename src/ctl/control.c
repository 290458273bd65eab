/*
 * The control socket (see control.h).  One small state machine per
 * client: read one line, render the answer, write it as the socket
 * takes it, close.  Everything is non-blocking on the daemon's loop.
 */
#include "autoconfig.h"

#include "control.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "report.h"
#include "status.h"

#define TAG "control"
#define BACKLOG 32
#define ACCEPT_BURST 16  /* accepts per wake-up, so others get the loop */
#define ACCEPT_PAUSE 1.0 /* seconds, after running out of descriptors */

struct ctl_client {
  struct ctl_client *prev, *next;
  struct sfk_control *ctl; /* owner */
  int fd;
  ev_io io;       /* EV_READ for the request, then EV_WRITE */
  ev_timer timer; /* SFK_CONTROL_TIMEOUT for the whole exchange */
  char in[SFK_CONTROL_REQ_MAX];
  size_t inlen;
  const char *out; /* the answer; owned (free) when out_owned */
  int out_owned;
  size_t outlen, outoff;
};

static const char busy_msg[] =
    "error: busy (too many status requests at once); try again\n";
static const char long_msg[] = "error: request too long\n";
static const char unknown_msg[] =
    "error: unknown request (send \"status text\" or \"status json\")\n";
static const char nomem_msg[] = "error: out of memory\n";

/* ---- clients ------------------------------------------------------------- */

static void client_free(struct ctl_client *cl) {
  struct sfk_control *c = cl->ctl;
  ev_io_stop(c->d->loop, &cl->io);
  ev_timer_stop(c->d->loop, &cl->timer);
  close(cl->fd);
  if (cl->out_owned)
    free((void *)cl->out);
  if (cl->prev)
    cl->prev->next = cl->next;
  else
    c->clients = cl->next;
  if (cl->next)
    cl->next->prev = cl->prev;
  c->nclients--;
  free(cl);
}

/* Discard what the client sent beyond its request (bounded): closing a
 * Unix socket with data still queued makes the client's next read fail
 * with ECONNRESET before it has read our answer. */
static void drain(int fd) {
  char sink[1024];
  for (int i = 0; i < 64; i++)
    if (recv(fd, sink, sizeof sink, MSG_DONTWAIT) <= 0)
      break;
}

/* Write what the socket takes; 1 when done or dead (cl freed), else 0. */
static int client_write(struct ctl_client *cl) {
  while (cl->outoff < cl->outlen) {
    ssize_t n = send(cl->fd, cl->out + cl->outoff, cl->outlen - cl->outoff,
                     MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return 0;
      sfk_debug(TAG, "client went away: %s", strerror(errno));
      client_free(cl);
      return 1;
    }
    cl->outoff += (size_t)n;
  }
  /* Our FIN tells the client the answer is complete. */
  shutdown(cl->fd, SHUT_WR);
  drain(cl->fd);
  client_free(cl);
  return 1;
}

static void client_io_cb(struct ev_loop *loop, ev_io *w, int revents);

/* Switch to writing `out` (owned: free it when done). */
static void client_respond(struct ctl_client *cl, const char *out, size_t len,
                           int owned) {
  struct ev_loop *loop = cl->ctl->d->loop;
  cl->out = out;
  cl->outlen = len;
  cl->outoff = 0;
  cl->out_owned = owned;
  ev_io_stop(loop, &cl->io);
  if (client_write(cl))
    return;
  ev_io_set(&cl->io, cl->fd, EV_WRITE);
  ev_io_start(loop, &cl->io);
}

static void client_request(struct ctl_client *cl, char *line, size_t len) {
  while (len && (line[len - 1] == '\r' || line[len - 1] == ' '))
    len--;
  line[len] = '\0';
  int format;
  if (strcmp(line, "status text") == 0) {
    format = SFK_REPORT_TEXT;
  } else if (strcmp(line, "status json") == 0) {
    format = SFK_REPORT_JSON;
  } else {
    client_respond(cl, unknown_msg, sizeof unknown_msg - 1, 0);
    return;
  }
  size_t outlen = 0;
  char *out = sfk_status_render(cl->ctl->d, format, 0, &outlen);
  if (!out)
    client_respond(cl, nomem_msg, sizeof nomem_msg - 1, 0);
  else
    client_respond(cl, out, outlen, 1);
}

static void client_read(struct ctl_client *cl) {
  int eof = 0;
  for (;;) {
    ssize_t n = recv(cl->fd, cl->in + cl->inlen, sizeof cl->in - cl->inlen, 0);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        break;
      client_free(cl);
      return;
    }
    if (n == 0) {
      eof = 1;
      break;
    }
    cl->inlen += (size_t)n;
    if (cl->inlen == sizeof cl->in || memchr(cl->in, '\n', cl->inlen))
      break;
  }
  char *nl = memchr(cl->in, '\n', cl->inlen);
  if (nl) {
    /* Bytes after the line are ignored: one request per connection. */
    client_request(cl, cl->in, (size_t)(nl - cl->in));
  } else if (cl->inlen == sizeof cl->in) {
    client_respond(cl, long_msg, sizeof long_msg - 1, 0);
  } else if (eof) {
    if (cl->inlen == 0) {
      client_free(cl); /* connected and left: nothing to answer */
      return;
    }
    char line[SFK_CONTROL_REQ_MAX + 1];
    memcpy(line, cl->in, cl->inlen); /* a last line without '\n' */
    client_request(cl, line, cl->inlen);
  }
}

static void client_io_cb(struct ev_loop *loop, ev_io *w, int revents) {
  struct ctl_client *cl = w->data;
  (void)loop;
  if (revents & EV_WRITE)
    client_write(cl);
  else if (revents & EV_READ)
    client_read(cl);
}

static void client_timer_cb(struct ev_loop *loop, ev_timer *w, int revents) {
  struct ctl_client *cl = w->data;
  (void)loop;
  (void)revents;
  sfk_debug(TAG, "client took more than %.0f s; dropped", SFK_CONTROL_TIMEOUT);
  client_free(cl);
}

/* Only our own user (or root) may ask: mode 0600 already says so, this
 * holds even if the socket's folder or mode was changed by hand. */
static int peer_allowed(int fd) {
  struct ucred cr;
  socklen_t len = sizeof cr;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
    return 0;
  return cr.uid == geteuid() || cr.uid == 0;
}

static void client_new(struct sfk_control *c, int fd) {
  if (!peer_allowed(fd)) {
    sfk_warn(TAG, "refused a control connection from another user");
    close(fd);
    return;
  }
  if (c->nclients >= SFK_CONTROL_MAX_CLIENTS) {
    /* Tell it why rather than leave it waiting in the backlog. */
    (void)!send(fd, busy_msg, sizeof busy_msg - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    shutdown(fd, SHUT_WR);
    drain(fd);
    close(fd);
    return;
  }
  struct ctl_client *cl = calloc(1, sizeof *cl);
  if (!cl) {
    close(fd);
    return;
  }
  cl->ctl = c;
  cl->fd = fd;
  ev_io_init(&cl->io, client_io_cb, fd, EV_READ);
  cl->io.data = cl;
  ev_timer_init(&cl->timer, client_timer_cb, SFK_CONTROL_TIMEOUT, 0.);
  cl->timer.data = cl;
  cl->next = c->clients;
  if (c->clients)
    c->clients->prev = cl;
  c->clients = cl;
  c->nclients++;
  ev_io_start(c->d->loop, &cl->io);
  ev_timer_start(c->d->loop, &cl->timer);
}

/* ---- the listening socket ------------------------------------------------ */

static void accept_pause_cb(struct ev_loop *loop, ev_timer *w, int revents) {
  struct sfk_control *c = w->data;
  (void)revents;
  ev_io_start(loop, &c->accept_w);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents) {
  struct sfk_control *c = w->data;
  (void)revents;
  for (int i = 0; i < ACCEPT_BURST; i++) {
    int fd = accept4(c->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      int e = errno;
      if (e == EINTR || e == ECONNABORTED)
        continue;
      if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
        sfk_warn(TAG, "cannot accept: %s; pausing for %.0f s", strerror(e),
                 ACCEPT_PAUSE);
        ev_io_stop(loop, &c->accept_w);
        ev_timer_set(&c->accept_pause, ACCEPT_PAUSE, 0.);
        ev_timer_start(loop, &c->accept_pause);
      } else if (e != EAGAIN && e != EWOULDBLOCK) {
        sfk_debug(TAG, "accept: %s", strerror(e));
      }
      return;
    }
    client_new(c, fd);
  }
}

/* Create the missing folders of path's parent with mode 0700 (mkdir -p);
 * existing ones are left as they are. */
static int make_parent(const char *path) {
  char buf[PATH_MAX];
  size_t n = strlen(path);
  if (n >= sizeof buf)
    return -ENAMETOOLONG;
  memcpy(buf, path, n + 1);
  char *slash = strrchr(buf, '/');
  if (!slash || slash == buf)
    return 0; /* in the current folder, or directly under / */
  *slash = '\0';
  for (char *p = buf + 1;; p++) {
    if (*p != '/' && *p != '\0')
      continue;
    char c = *p;
    *p = '\0';
    struct stat st;
    /* mkdir only what is missing: on a read-only filesystem mkdir of an
     * existing folder may fail with EROFS instead of EEXIST. */
    if (stat(buf, &st) < 0 && mkdir(buf, 0700) < 0 && errno != EEXIST) {
      int e = errno;
      sfk_err(TAG, "cannot create the control socket's folder %s: %s", buf,
              strerror(e));
      return -e;
    }
    *p = c;
    if (!c)
      break;
  }
  struct stat st;
  if (stat(buf, &st) < 0 || !S_ISDIR(st.st_mode)) {
    sfk_err(TAG, "the control socket's folder %s is not a folder", buf);
    return -ENOTDIR;
  }
  return 0;
}

/* Bind with mode 0600: umask decides the mode bind() gives the file. */
static int bind_private(int fd, const struct sockaddr_un *sa) {
  mode_t old = umask(0177);
  int rc = bind(fd, (const struct sockaddr *)sa, sizeof *sa);
  int e = errno;
  umask(old);
  return rc < 0 ? -e : 0;
}

/*
 * Something exists at path.  Returns 0 after removing a stale socket
 * (nobody accepts on it), or a negative errno after logging: a live
 * daemon (-EADDRINUSE), not a socket (-EEXIST), or another failure.
 */
static int remove_stale(const char *path, const struct sockaddr_un *sa) {
  struct stat st;
  if (lstat(path, &st) < 0)
    return errno == ENOENT ? 0 : -errno; /* gone meanwhile: bind again */
  if (!S_ISSOCK(st.st_mode)) {
    sfk_err(TAG,
            "control.socket %s exists and is not a socket; remove it "
            "or set another control.socket",
            path);
    return -EEXIST;
  }
  int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (probe < 0)
    return -errno;
  int rc = connect(probe, (const struct sockaddr *)sa, sizeof *sa);
  int e = rc < 0 ? errno : 0;
  close(probe);
  /* Connected, or a full backlog: somebody is listening. */
  if (rc == 0 || e == EAGAIN || e == EINPROGRESS) {
    sfk_err(TAG,
            "another sfkit-proxy is already running with control socket "
            "%s; stop it first, or give this one another "
            "control.socket",
            path);
    return -EADDRINUSE;
  }
  if (e != ECONNREFUSED) {
    sfk_err(TAG, "cannot check the existing control socket %s: %s", path,
            strerror(e));
    return -e;
  }
  if (unlink(path) < 0 && errno != ENOENT) {
    e = errno;
    sfk_err(TAG, "cannot remove the stale control socket %s: %s", path,
            strerror(e));
    return -e;
  }
  sfk_info(TAG, "removed a stale control socket %s (nobody answered on it)",
           path);
  return 0;
}

/* The socket file is ours, a socket, and only its owner may use it. */
static int check_mode(struct sfk_control *c) {
  struct stat st;
  for (int tries = 0; tries < 2; tries++) {
    if (lstat(c->path, &st) < 0) {
      int e = errno;
      sfk_err(TAG, "cannot stat the control socket %s: %s", c->path,
              strerror(e));
      return -e;
    }
    if (!S_ISSOCK(st.st_mode)) {
      sfk_err(TAG, "%s is not the socket just bound", c->path);
      return -EEXIST;
    }
    if ((st.st_mode & 0777) == 0600) {
      c->dev = st.st_dev;
      c->ino = st.st_ino;
      return 0;
    }
    chmod(c->path, 0600); /* a filesystem that ignored umask */
  }
  sfk_err(TAG,
          "the control socket %s has mode %03o, not 0600; refusing to "
          "serve status on it",
          c->path, (unsigned)(st.st_mode & 0777));
  return -EPERM;
}

int sfk_control_open(struct sfk_control *c, struct sfk_daemon *d) {
  memset(c, 0, sizeof *c);
  c->d = d;
  c->fd = -1;
  const char *path = d->cfg.control_socket;
  if (!path[0]) {
    sfk_info(TAG, "control.socket is not set: `sfkit-proxy status` is "
                  "unavailable for this daemon");
    return 0;
  }
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof sa.sun_path) {
    sfk_err(TAG, "control.socket %s is too long for a Unix socket", path);
    return -ENAMETOOLONG;
  }
  memcpy(sa.sun_path, path, strlen(path) + 1);
  snprintf(c->path, sizeof c->path, "%s", path);

  int rc = make_parent(path);
  if (rc < 0)
    return rc;
  c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0) {
    rc = -errno;
    sfk_err(TAG, "cannot create the control socket: %s", strerror(-rc));
    return rc;
  }
  rc = bind_private(c->fd, &sa);
  if (rc == -EADDRINUSE) {
    rc = remove_stale(path, &sa);
    if (rc == 0)
      rc = bind_private(c->fd, &sa);
    else
      goto fail_quiet;
  }
  if (rc < 0) {
    sfk_err(TAG, "cannot bind the control socket %s: %s", path, strerror(-rc));
    goto fail_quiet;
  }
  if ((rc = check_mode(c)) < 0) {
    unlink(path);
    goto fail_quiet;
  }
  if (listen(c->fd, BACKLOG) < 0) {
    rc = -errno;
    sfk_err(TAG, "cannot listen on the control socket %s: %s", path,
            strerror(-rc));
    unlink(path);
    goto fail_quiet;
  }
  ev_io_init(&c->accept_w, accept_cb, c->fd, EV_READ);
  c->accept_w.data = c;
  ev_timer_init(&c->accept_pause, accept_pause_cb, ACCEPT_PAUSE, 0.);
  c->accept_pause.data = c;
  ev_io_start(d->loop, &c->accept_w);
  c->active = 1;
  sfk_info(TAG, "status on %s (mode 0600): sfkit-proxy status%s%s", path,
           d->config_path ? " -c " : "", d->config_path ? d->config_path : "");
  return 0;

fail_quiet:
  close(c->fd);
  c->fd = -1;
  return rc;
}

void sfk_control_close(struct sfk_control *c) {
  if (!c->active)
    return;
  ev_io_stop(c->d->loop, &c->accept_w);
  ev_timer_stop(c->d->loop, &c->accept_pause);
  while (c->clients)
    client_free(c->clients);
  close(c->fd);
  c->fd = -1;
  /* Remove the file only if it is still ours: a second daemon that
   * replaced it after we went quiet keeps its socket. */
  struct stat st;
  if (lstat(c->path, &st) == 0 && st.st_dev == c->dev && st.st_ino == c->ino)
    unlink(c->path);
  c->active = 0;
}
