/* Small helpers shared by the core: address formatting, fd flags. */
#ifndef SFK_UTIL_H
#define SFK_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define SFK_ADDRSTR_MAX 64 /* "[v6]:port" */

/* "1.2.3.4:80" or "[::1]:80"; "?" for unknown families. Returns buf. */
const char *sfk_addr_str(const struct sockaddr *sa, char *buf, size_t len);
/* Same address and port? */
int sfk_addr_equal(const struct sockaddr *a, const struct sockaddr *b);
int sfk_set_nonblock(int fd);
/* Do the NUL-terminated strings in a[n] and b[n] match?  Reads all n
 * bytes of both whatever they hold, so the time taken says nothing of
 * where they differ (password checks). */
int sfk_ct_streq(const char *a, const char *b, size_t n);
/* Wipe a secret so the compiler cannot drop the stores. */
void sfk_wipe(void *p, size_t n);
/* Format a message into err[errlen] (both may be NULL/0: nothing). */
void sfk_set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Read the first line of a small file (secret-safe: no partial logging).
 * Trailing CR/LF removed.  0, or negative errno. */
int sfk_read_first_line(const char *path, char *buf, size_t len);

/*
 * Read a secret (auth key, password): the first line of a regular file
 * that only its owner may read, without the line end, into buf[len].
 * Refuses a missing or unreadable file, a file readable or writable by
 * group or others, an empty first line, and a line of len bytes or
 * more.  Returns 0, or a negative errno with a message in err that names
 * the file and the fix (never any of its content).
 */
int sfk_secret_read(const char *path, char *buf, size_t len, char *err,
                    size_t errlen);

#endif
