/* libFuzzer target for the sfkit website's study parser (sfkit_doc.c). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sfkit_doc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct sfk_doc d;
  char err[256], txt[160], out[SFK_DOC_ADDR_SIZE];
  int rc = sfk_doc_parse((const char *)data, size, &d, err, sizeof err);
  if (rc == 0) {
    if (d.n > SFK_DOC_MAX_PARTIES)
      abort();
    for (size_t i = 0; i < d.n; i++) {
      const struct sfk_doc_party *p = &d.v[i];
      /* What is OK must be what the checks accept; what is not OK must
       * carry no value. */
      if (p->pin_st == SFK_DOC_OK ? !sfk_doc_pin_ok(p->pin) : p->pin[0] != 0)
        abort();
      if ((p->addr_st == SFK_DOC_OK) != (p->addrlen != 0))
        abort();
      if (memchr(p->user, 0, sizeof p->user) == NULL ||
          memchr(p->bad, 0, sizeof p->bad) == NULL)
        abort();
    }
    sfk_doc_free(&d);
  } else if (d.v || d.n || !err[0]) {
    abort();
  }
  sfk_doc_error_text((const char *)data, size, txt, sizeof txt);

  /* The address codec on the same bytes as one string: whatever parses
   * formats to a value the website can store, which parses again. */
  char s[128];
  size_t n = size < sizeof s - 1 ? size : sizeof s - 1;
  memcpy(s, data, n);
  s[n] = '\0';
  if (sfk_doc_addr_format(s, out, sizeof out) == 0) {
    struct sockaddr_storage a, b;
    socklen_t al, bl;
    if (strchr(out, '=') || strstr(out, "::") ||
        sfk_doc_addr_parse(s, &a, &al) || sfk_doc_addr_parse(out, &b, &bl) ||
        al != bl || memcmp(&a, &b, al) != 0)
      abort();
  }
  return 0;
}
