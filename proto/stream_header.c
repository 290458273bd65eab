/* Stream header codec; see stream_header.h. */
#include "proto/stream_header.h"

size_t sfk_sh_encode(uint8_t out[SFK_SH_LEN], uint16_t port) {
  out[0] = SFK_SH_VERSION;
  out[1] = (uint8_t)(port >> 8);
  out[2] = (uint8_t)(port & 0xff);
  return SFK_SH_LEN;
}

int sfk_sh_decode(const uint8_t *buf, size_t len, uint16_t *port) {
  if (len == 0)
    return 0;
  if (buf[0] != SFK_SH_VERSION)
    return -1;
  if (len < SFK_SH_LEN)
    return 0;
  *port = (uint16_t)((uint16_t)buf[1] << 8 | buf[2]);
  return SFK_SH_LEN;
}
