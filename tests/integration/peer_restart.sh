#!/bin/bash
# shellcheck disable=SC2119,SC2317 # optional arguments; functions run via wait_until
# Party 0's proxy is killed (SIGKILL) during a transfer and restarted: the
# client in flight gets an error (no hang), and a new connection through the
# proxy works within 10 s, bytes equal.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
need curl

cd "$T" || fail "cd $T"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy NO_PROXY no_proxy
# a dead peer is noticed after the idle timeout (keep-alives keep a live one)
make_pair "$(printf '  handshake_timeout: 2s\n  idle_timeout: 5s\n  keepalive: 1s')"
start_proxy p0 p0.yaml
start_proxy p1 p1.yaml

mkdir www
make_file www/big 200
make_file www/small 1
start_server http0 http www
H0=$SERVER_PORT

# --- a download in flight when party 0's proxy dies --------------------------------
curl -sS --socks5 "127.0.0.1:$P1_SOCKS" --limit-rate 4M --max-time 120 \
  -o inflight "http://10.0.0.0:$H0/big" 2>inflight.err &
CURL=$!
track "$CURL"
_got_some() { [ "$(stat -c %s inflight 2>/dev/null || echo 0)" -ge 4000000 ]; }
wait_until 30 _got_some || fail "the download did not start"
log "in flight: $(file_size inflight) bytes; SIGKILL to party 0's proxy"
kill_proxy p0
t0=$(now)

wait_exit "$CURL" 60 || fail "the client in flight still hangs 60 s after the peer died"
rc=$EXIT_STATUS
dt=$(elapsed "$t0")
[ "$rc" != 0 ] || fail "the client in flight finished without an error ($(file_size inflight) bytes)"
[ "$rc" != 28 ] || fail "the client in flight only stopped at its own --max-time ($dt s)"
log "client in flight: curl status $rc after $dt s ($(head -n 1 inflight.err)); $(file_size inflight) of $(file_size www/big) bytes"
assert_alive p1

# --- restart: a new connection works within 10 s --------------------------------------
start_proxy p0r p0.yaml
t0=$(now)
_new_works() {
  curl -sS --fail --socks5 "127.0.0.1:$P1_SOCKS" --max-time 3 -o small.out \
    "http://10.0.0.0:$H0/small" 2>>retry.err
}
wait_until 10 _new_works || fail "no new connection through party 1 within 10 s of the restart: $(tail -n 3 retry.err)"
[ "$(sha_file small.out)" = "$(sha_file www/small)" ] || fail "after the restart: sha256 differs"
log "new connection after the restart: ok after $(elapsed "$t0") s, 1 MiB sha256 equal"

# and a bigger transfer, both ways
head -c $((32 * 1048576)) www/big >www/mid
got=$(curl -sS --fail --max-time 300 --speed-limit 1 --speed-time 30 --socks5 "127.0.0.1:$P1_SOCKS" \
  "http://10.0.0.0:$H0/mid" 2>curl.err | sha_stdin) || fail "download after the restart failed: $(cat curl.err)"
[ "$got" = "$(sha_file www/mid)" ] || fail "download after the restart: sha256 differs"
start_server http1 http www
got=$(curl -sS --fail --max-time 300 --speed-limit 1 --speed-time 30 --socks5 "127.0.0.1:$P0_SOCKS" \
  "http://10.0.0.1:$SERVER_PORT/mid" 2>curl.err | sha_stdin) || fail "download via the restarted party 0 failed: $(cat curl.err)"
[ "$got" = "$(sha_file www/mid)" ] || fail "download via the restarted party 0: sha256 differs"
log "32 MiB each way after the restart: sha256 equal"

stop_all
pass
