/* Unit tests for the stream header codec (proto/stream_header.c). */
#include <stdint.h>
#include <string.h>

#include "proto/stream_header.h"
#include "tap.h"

static void test_encode(void) {
  uint8_t b[SFK_SH_LEN];

  is_int(sfk_sh_encode(b, 8100), 3, "encode returns 3");
  ok(b[0] == 0x01 && b[1] == 0x1f && b[2] == 0xa4, "encode 8100 = 01 1f a4");
  sfk_sh_encode(b, 0);
  ok(b[0] == 0x01 && b[1] == 0 && b[2] == 0, "encode port 0");
  sfk_sh_encode(b, 65535);
  ok(b[1] == 0xff && b[2] == 0xff, "encode port 65535");
}

static void test_decode(void) {
  const uint8_t good[] = {0x01, 0x1f, 0xa4, 0x55};
  const uint8_t bad[] = {0x02, 0x1f, 0xa4};
  uint16_t port = 7;

  is_int(sfk_sh_decode(good, 3, &port), 3, "decode full header");
  is_int(port, 8100, "decoded port");
  port = 7;
  is_int(sfk_sh_decode(good, 4, &port), 3, "trailing bytes not consumed");
  is_int(port, 8100, "decoded port with trailing data");
  port = 7;
  is_int(sfk_sh_decode(NULL, 0, &port), 0, "empty input needs more");
  is_int(sfk_sh_decode(good, 1, &port), 0, "1 byte needs more");
  is_int(sfk_sh_decode(good, 2, &port), 0, "2 bytes need more");
  is_int(port, 7, "port untouched while incomplete");
  ok(sfk_sh_decode(bad, 3, &port) < 0, "bad version rejected");
  ok(sfk_sh_decode(bad, 1, &port) < 0, "bad version rejected on 1st byte");
  {
    const uint8_t zero[] = {0x00};
    ok(sfk_sh_decode(zero, 1, &port) < 0, "version 0 rejected");
  }
}

static void test_roundtrip(void) {
  static const uint16_t ports[] = {0, 1, 80, 255, 256, 8100, 40000, 65535};
  size_t i;
  int all = 1;

  for (i = 0; i < sizeof(ports) / sizeof(ports[0]); i++) {
    uint8_t b[SFK_SH_LEN];
    uint16_t p = 0;
    sfk_sh_encode(b, ports[i]);
    if (sfk_sh_decode(b, sizeof(b), &p) != 3 || p != ports[i])
      all = 0;
  }
  ok(all, "round trip of boundary ports");
}

static void test_split(void) {
  /* The header may arrive split across packets: feed it byte by byte. */
  uint8_t b[SFK_SH_LEN], acc[SFK_SH_LEN];
  uint16_t p = 0;
  size_t n;
  int r = 0;

  sfk_sh_encode(b, 4242);
  for (n = 0; n < SFK_SH_LEN; n++) {
    acc[n] = b[n];
    r = sfk_sh_decode(acc, n + 1, &p);
    if (n + 1 < SFK_SH_LEN && r != 0)
      break;
  }
  is_int(r, 3, "split header completes on the 3rd byte");
  is_int(p, 4242, "split header port");
}

int main(void) {
  test_encode();
  test_decode();
  test_roundtrip();
  test_split();
  return tap_done();
}
