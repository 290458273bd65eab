#include "autoconfig.h"

#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *sfk_addr_str(const struct sockaddr *sa, char *buf, size_t len) {
  char ip[INET6_ADDRSTRLEN];
  if (sa && sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
    snprintf(buf, len, "%s:%u", ip, ntohs(in->sin_port));
  } else if (sa && sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
    snprintf(buf, len, "[%s]:%u", ip, ntohs(in6->sin6_port));
  } else {
    snprintf(buf, len, "?");
  }
  return buf;
}

int sfk_addr_equal(const struct sockaddr *a, const struct sockaddr *b) {
  if (a->sa_family != b->sa_family)
    return 0;
  if (a->sa_family == AF_INET) {
    const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
    return x->sin_port == y->sin_port &&
           x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  if (a->sa_family == AF_INET6) {
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return x->sin6_port == y->sin6_port &&
           memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
  }
  return 0;
}

int sfk_set_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
    return -errno;
  return 0;
}

void sfk_wipe(void *p, size_t n) {
#ifdef HAVE_EXPLICIT_BZERO
  explicit_bzero(p, n);
#else
  volatile unsigned char *v = p;
  while (n--)
    *v++ = 0;
#endif
}

int sfk_read_first_line(const char *path, char *buf, size_t len) {
  FILE *f = fopen(path, "re");
  if (!f)
    return -errno;
  int rc = 0;
  if (!fgets(buf, (int)len, f)) {
    rc = ferror(f) ? -EIO : -ENODATA;
    buf[0] = '\0';
  } else {
    buf[strcspn(buf, "\r\n")] = '\0';
  }
  fclose(f);
  return rc;
}

int sfk_ct_streq(const char *a, const char *b, size_t n) {
  unsigned diff = 0, ended_a = 0, ended_b = 0;
  for (size_t i = 0; i < n; i++) {
    /* Compare up to each string's end; bytes after it count as 0. */
    unsigned ca = ended_a ? 0u : (unsigned char)a[i];
    unsigned cb = ended_b ? 0u : (unsigned char)b[i];
    diff |= ca ^ cb;
    ended_a |= ca == 0;
    ended_b |= cb == 0;
  }
  return diff == 0;
}

int sfk_secret_read(const char *path, char *buf, size_t len, char *err,
                    size_t errlen) {
  if (len == 0)
    return -EINVAL;
  buf[0] = '\0';
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    int e = errno;
    sfk_set_err(err, errlen, "cannot open %s: %s", path, strerror(e));
    return -e;
  }
  struct stat st;
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    sfk_set_err(err, errlen, "%s is not a regular file", path);
    return -EINVAL;
  }
  if (st.st_mode & (S_IRWXG | S_IRWXO)) {
    close(fd);
    sfk_set_err(err, errlen,
                "%s has mode %04o: a secret must be readable by its owner "
                "only (chmod 600 %s)",
                path, (unsigned)(st.st_mode & 07777), path);
    return -EPERM;
  }
  /* Read at most len bytes: a longer first line is an error, and the
   * rest of the file is never read into memory. */
  size_t got = 0;
  while (got < len) {
    ssize_t n = read(fd, buf + got, len - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      int e = errno;
      close(fd);
      sfk_wipe(buf, len);
      buf[0] = '\0';
      sfk_set_err(err, errlen, "cannot read %s: %s", path, strerror(e));
      return -e;
    }
    if (n == 0)
      break;
    got += (size_t)n;
    if (memchr(buf + got - (size_t)n, '\n', (size_t)n))
      break;
  }
  close(fd);
  size_t line = 0;
  while (line < got && buf[line] != '\n' && buf[line] != '\r')
    line++;
  if (line >= len) {
    sfk_wipe(buf, len);
    buf[0] = '\0';
    sfk_set_err(err, errlen, "%s: the first line is longer than %zu bytes",
                path, len - 1);
    return -E2BIG;
  }
  sfk_wipe(buf + line, len - line);
  if (line == 0) {
    sfk_set_err(err, errlen, "%s: the first line is empty (the secret "
                "goes on the first line)", path);
    return -ENODATA;
  }
  return 0;
}

void sfk_set_err(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || errlen == 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}
