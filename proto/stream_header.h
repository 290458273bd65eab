/*
 * Stream header codec (sans I/O).
 *
 * Every stream starts, opener -> acceptor, with a 3-byte header:
 *
 *     0x01 (version) | destination port (2 bytes, big endian)
 *
 * and the acceptor answers with one status byte (0x00 connected, else a
 * SOCKS5 reply code).  The functions here only look at buffers.
 */
#ifndef SFK_STREAM_HEADER_H
#define SFK_STREAM_HEADER_H

#include <stddef.h>
#include <stdint.h>

#define SFK_SH_VERSION 0x01
#define SFK_SH_LEN 3

/*
 * Encode the header for `port` into out.  Returns SFK_SH_LEN.
 */
size_t sfk_sh_encode(uint8_t out[SFK_SH_LEN], uint16_t port);

/*
 * Decode a header from the first len bytes of buf.
 *
 * Returns SFK_SH_LEN (bytes consumed) and sets *port; 0 when more bytes
 * are needed (len < SFK_SH_LEN and what is there is valid so far); or
 * -1 when the version byte is not SFK_SH_VERSION.  buf may be NULL when
 * len is 0.
 */
int sfk_sh_decode(const uint8_t *buf, size_t len, uint16_t *port);

#endif /* SFK_STREAM_HEADER_H */
