/* libFuzzer target for the stream header codec. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "proto/stream_header.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint16_t port = 0;
  int r = sfk_sh_decode(size ? data : NULL, size, &port);

  if (r > 0) {
    uint8_t re[SFK_SH_LEN];
    /* A decoded header must re-encode to the same bytes. */
    if (r != SFK_SH_LEN || size < SFK_SH_LEN)
      abort();
    sfk_sh_encode(re, port);
    if (re[0] != data[0] || re[1] != data[1] || re[2] != data[2])
      abort();
  } else if (r == 0) {
    if (size >= SFK_SH_LEN || (size > 0 && data[0] != SFK_SH_VERSION))
      abort();
  } else if (size == 0 || data[0] == SFK_SH_VERSION) {
    abort();
  }
  return 0;
}
