#!/bin/bash
# shellcheck disable=SC2119,SC2317 # optional arguments; functions run via wait_until
# curl through the SOCKS port: a >= 100 MB download and upload each way,
# through both parties' proxies, sha256 equal.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
need curl

cd "$T" || fail "cd $T"
MB=${SFK_BIG_MB:-100}
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy NO_PROXY no_proxy

make_pair
start_proxy p0 p0.yaml
start_proxy p1 p1.yaml
mkdir www0 www1
make_file www0/file "$MB"
make_file www1/file "$MB"
SUM0=$(sha_file www0/file)
SUM1=$(sha_file www1/file)
start_server http0 http www0
H0=$SERVER_PORT
start_server http1 http www1
H1=$SERVER_PORT

# download VIA_SOCKS URL WANT_SUM WHAT
download() {
  local t0 got
  t0=$(now)
  got=$(curl -sS --fail --max-time "$BIG_TIMEOUT" --speed-limit 1 --speed-time 30 --socks5 "127.0.0.1:$1" "$2" 2>curl.err | sha_stdin) ||
    fail "$4: curl failed (allowed $BIG_TIMEOUT s for $MB MiB): $(cat curl.err)"
  [ "$got" = "$3" ] || fail "$4: sha256 differs ($got, expected $3)"
  log "$4: $MB MiB, sha256 equal, $(elapsed "$t0") s"
}

# upload VIA_SOCKS URL FILE WHAT (the http server answers "SHA256 BYTES")
upload() {
  local t0 got
  t0=$(now)
  got=$(curl -sS --fail --max-time "$BIG_TIMEOUT" --speed-limit 1 --speed-time 30 --socks5 "127.0.0.1:$1" -T "$3" "$2" 2>curl.err) ||
    fail "$4: curl -T failed (allowed $BIG_TIMEOUT s for $MB MiB): $(cat curl.err)"
  [ "$got" = "$(sha_file "$3") $(file_size "$3")" ] || fail "$4: server got '$got'"
  log "$4: $MB MiB, sha256 equal, $(elapsed "$t0") s"
}

download "$P1_SOCKS" "http://10.0.0.0:$H0/file" "$SUM0" "download from party 0 via party 1"
upload "$P1_SOCKS" "http://10.0.0.0:$H0/upload" www1/file "upload to party 0 via party 1"
download "$P0_SOCKS" "http://10.0.0.1:$H1/file" "$SUM1" "download from party 1 via party 0"
upload "$P0_SOCKS" "http://10.0.0.1:$H1/upload" www0/file "upload to party 1 via party 0"

# curl's own POST upload (--data-binary) as well, and a missing file is a 404
got=$(curl -sS --fail --max-time "$BIG_TIMEOUT" --speed-limit 1 --speed-time 30 --socks5 "127.0.0.1:$P1_SOCKS" --data-binary @www1/file \
  "http://10.0.0.0:$H0/post" 2>curl.err) || fail "POST: curl failed: $(cat curl.err)"
[ "$got" = "$SUM1 $(file_size www1/file)" ] || fail "POST: server got '$got'"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 60 --socks5 "127.0.0.1:$P1_SOCKS" \
  "http://10.0.0.0:$H0/nosuch")
[ "$code" = 404 ] || fail "a missing file through the proxy: HTTP $code (expected 404)"

stop_all
pass
