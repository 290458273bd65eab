/* The sfkit website's data: study parsing, address values, error bodies. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "sfkit_doc.h"
#include "tap.h"

#define PIN_A "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define PIN_B "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"

static int parse(const char *json, struct sfk_doc *d, char *err, size_t n) {
  return sfk_doc_parse(json, strlen(json), d, err, n);
}

static void test_study(void) {
  struct sfk_doc d;
  char err[256];
  /* As the real site: numbers, "index" lists, AUTH_KEY values, parties
   * without the proxy's parameters. */
  const char *j =
      "{\"participants\":[\"Broad\",\"alice\",\"bob\",\"carol\"],"
      "\"personal_parameters\":{"
      "\"Broad\":{\"NUM_THREADS\":{\"value\":20},\"index\":[\"NUM_THREADS\"],"
      "\"EXTERNAL_ADDR\":{\"value\":\"192.0.2.1:4000\"},"
      "\"QUIC_PUBKEY_SHA256\":{\"value\":\"" PIN_A "\"}},"
      "\"alice\":{\"EXTERNAL_ADDR\":{\"value\":\"\"},"
      "\"QUIC_PUBKEY_SHA256\":{\"value\":\"\"},\"AUTH_KEY\":{\"value\":\"k\"}},"
      "\"bob\":{\"EXTERNAL_ADDR\":{\"value\":\"[2001:db8::1]:5000\"},"
      "\"QUIC_PUBKEY_SHA256\":{\"value\":\"" PIN_B "\"}}}}";
  is_int(parse(j, &d, err, sizeof err), 0, "a study parses");
  is_int(d.n, 4, "four participants");
  is_str(d.v[0].user, "Broad", "PID 0 is the first participant");
  is_int(d.v[0].addr_st, SFK_DOC_OK, "PID 0 address ok");
  is_int(d.v[0].pin_st, SFK_DOC_OK, "PID 0 pin ok");
  is_str(d.v[0].pin, PIN_A, "PID 0 pin");
  const struct sockaddr_in *a4 = (const struct sockaddr_in *)&d.v[0].addr;
  ok(d.v[0].addrlen == sizeof *a4 && a4->sin_family == AF_INET &&
         ntohs(a4->sin_port) == 4000,
     "PID 0 address is 192.0.2.1:4000");
  is_int(d.v[1].addr_st, SFK_DOC_UNSET, "an empty value is not published");
  is_int(d.v[1].pin_st, SFK_DOC_UNSET, "an empty pin is not published");
  is_int(d.v[2].addr_st, SFK_DOC_OK, "a compressed IPv6 address is read");
  is_int(d.v[2].addr.ss_family, AF_INET6, "as IPv6");
  is_int(d.v[3].addr_st, SFK_DOC_UNSET, "a party without parameters");
  is_str(d.v[3].bad, "", "is not malformed");
  sfk_doc_free(&d);
  ok(d.v == NULL && d.n == 0, "free zeroes");
}

static void test_malformed(void) {
  struct sfk_doc d;
  char err[256];
  const char *j =
      "{\"participants\":[\"a\",7,\"c\",\"d\"],\"personal_parameters\":{"
      "\"a\":{\"EXTERNAL_ADDR\":{\"value\":\"1.2.3.4\"},"
      "\"QUIC_PUBKEY_SHA256\":{\"value\":\"" PIN_A "\"}},"
      "\"c\":{\"EXTERNAL_ADDR\":\"1.2.3.4:5\","
      "\"QUIC_PUBKEY_SHA256\":{\"value\":\"ABC\"}},"
      "\"d\":{\"EXTERNAL_ADDR\":{\"value\":\"10.1.1.1:9\"},"
      "\"QUIC_PUBKEY_SHA256\":{\"value\":\"" PIN_B "\"}}}}";
  is_int(parse(j, &d, err, sizeof err), 0, "one bad party breaks nothing");
  is_int(d.n, 4, "all participants listed");
  is_int(d.v[0].addr_st, SFK_DOC_BAD, "address without port is bad");
  ok(strstr(d.v[0].bad, "\"1.2.3.4\"") != NULL, "the bad value is quoted");
  ok(d.v[0].addrlen == 0, "a bad address is not kept");
  is_int(d.v[0].pin_st, SFK_DOC_OK, "its pin is still read");
  is_int(d.v[1].addr_st, SFK_DOC_BAD, "a user id that is no string");
  is_int(d.v[2].addr_st, SFK_DOC_BAD, "a parameter that is no object");
  is_int(d.v[2].pin_st, SFK_DOC_BAD, "an uppercase short pin");
  ok(d.v[2].pin[0] == '\0', "a bad pin is not kept");
  is_int(d.v[3].addr_st, SFK_DOC_OK, "the next party is fine");
  is_int(d.v[3].pin_st, SFK_DOC_OK, "with its pin");
  sfk_doc_free(&d);
}

static void test_errors(void) {
  struct sfk_doc d;
  char err[256];
  ok(parse("<html>", &d, err, sizeof err) < 0 && strstr(err, "not JSON"),
     "HTML is not a study: %s", err);
  ok(parse("[1,2]", &d, err, sizeof err) < 0, "a list is not a study");
  ok(parse("{\"title\":\"x\"}", &d, err, sizeof err) < 0 &&
         strstr(err, "participants"),
     "no participants list: %s", err);
  ok(parse("{\"participants\":[],\"participants\":[]}", &d, err, sizeof err) <
         0,
     "duplicate keys are refused");
  ok(sfk_doc_parse("{\"participants\":[]}", 5, &d, err, sizeof err) < 0,
     "a cut answer is refused");
  is_int(parse("{\"participants\":[]}", &d, err, sizeof err), 0,
         "an empty study parses");
  sfk_doc_free(&d);
  char t[64];
  sfk_doc_error_text("{\"error\":\"Missing study ID\"}", 28, t, sizeof t);
  is_str(t, "Missing study ID", "error text of a website error body");
  sfk_doc_error_text("<html>oops</html>", 17, t, sizeof t);
  is_str(t, "", "no error text in HTML");
  sfk_doc_error_text("{\"error\":\"a\\nb\"}", 16, t, sizeof t);
  is_str(t, "a?b", "control characters are replaced");
}

static void test_addr(void) {
  char out[SFK_DOC_ADDR_SIZE];
  struct sockaddr_storage ss;
  socklen_t len;
  is_int(sfk_doc_addr_format("[2001:db8::1]:4000", out, sizeof out), 0,
         "IPv6 formats");
  is_str(out, "[2001:db8:0:0:0:0:0:1]:4000", "fully expanded, no ::");
  is_int(sfk_doc_addr_format("[::ffff:192.0.2.1]:9", out, sizeof out), 0,
         "IPv4-mapped formats");
  ok(strstr(out, "::") == NULL && strchr(out, '=') == NULL, "as %s", out);
  is_int(sfk_doc_addr_parse(out, &ss, &len), 0, "and parses back");
  is_int(sfk_doc_addr_format("192.0.2.7:40000", out, sizeof out), 0,
         "IPv4 formats");
  is_str(out, "192.0.2.7:40000", "unchanged");
  is_int(sfk_doc_addr_parse("[2001:db8:0:0:0:0:0:1]:4000", &ss, &len), 0,
         "the expanded form parses");
  const char *bad[] = {"1.2.3.4",
                       "1.2.3.4:0",
                       "1.2.3.4:65536",
                       "1.2.3.4:+80",
                       "0.0.0.0:80",
                       "224.0.0.1:80",
                       "[::]:80",
                       "[ff02::1]:80",
                       "2001:db8::1:80",
                       "[2001:db8::1]80",
                       "host.example:80",
                       "1.2.3.4:8 0",
                       "[fe80::1%eth0]:80",
                       "",
                       ":80",
                       "1.2.3.4:123456"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    ok(sfk_doc_addr_parse(bad[i], &ss, &len) < 0, "refused: '%s'", bad[i]);
  is_int(sfk_doc_addr_format("[2001:db8::1]:4000", out, 10), -ENOSPC,
         "a small buffer is refused");
}

static void test_pin(void) {
  ok(sfk_doc_pin_ok(PIN_A), "a pin");
  ok(!sfk_doc_pin_ok("00"), "short");
  ok(!sfk_doc_pin_ok(PIN_A "0"), "long");
  ok(!sfk_doc_pin_ok(
         "00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff"),
     "uppercase");
  char s[8];
  sfk_doc_sanitize("abcdefghij", s, sizeof s);
  is_str(s, "abcd...", "sanitize cuts with ...");
}

int main(void) {
  test_study();
  test_malformed();
  test_errors();
  test_addr();
  test_pin();
  return tap_done();
}
