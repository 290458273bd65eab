#!/bin/bash
# shellcheck disable=SC2119,SC2317 # optional arguments; functions run via wait_until
# ncat through the SOCKS port: 100 MB each way with sha256, an echo both ways
# at once, and half-close (send, shut the write side, still get the answer).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
need ncat

cd "$T" || fail "cd $T"
MB=${SFK_BIG_MB:-100}
N=$((MB * 1048576))

make_pair
start_proxy p0 p0.yaml
start_proxy p1 p1.yaml

# nc_via SOCKS_PORT ADDR PORT [ncat options]: ncat through a party's proxy.
nc_via() {
  local sp=$1 addr=$2 port=$3
  shift 3
  timeout "$BIG_TIMEOUT" ncat --proxy "127.0.0.1:$sp" --proxy-type socks5 "$@" "$addr" "$port"
}

# --- upload: party 1's client -> party 0's sink -----------------------------------
make_file up "$MB"
start_server sink0 sink
t0=$(now)
nc_via "$P1_SOCKS" 10.0.0.0 "$SERVER_PORT" --send-only <up 2>ncat.err || fail "upload: ncat failed or took over $BIG_TIMEOUT s: $(cat ncat.err)"
wait_lines "$T/sink0.res" 1 60
read -r sum bytes <"$T/sink0.res"
[ "$bytes" = "$N" ] || fail "upload: the sink got $bytes bytes, expected $N"
[ "$sum" = "$(sha_file up)" ] || fail "upload: sha256 differs"
log "upload via party 1: $MB MiB, sha256 equal, $(elapsed "$t0") s"

# --- download: party 1's source -> party 0's client ----------------------------
start_server source1 source "$N" 42
read -r want _ <"$T/source1.res"
t0=$(now)
got=$(nc_via "$P0_SOCKS" 10.0.0.1 "$SERVER_PORT" --recv-only 2>ncat.err | sha_stdin) ||
  fail "download: ncat failed or took over $BIG_TIMEOUT s: $(cat ncat.err)"
[ "$got" = "$want" ] || fail "download: sha256 differs"
log "download via party 0: $MB MiB, sha256 equal, $(elapsed "$t0") s"

# --- both directions at once: echo ------------------------------------------------
make_file small 32
start_server echo0 echo
t0=$(now)
got=$(nc_via "$P1_SOCKS" 10.0.0.0 "$SERVER_PORT" <small 2>ncat.err | sha_stdin) || fail "echo: ncat failed: $(cat ncat.err)"
[ "$got" = "$(sha_file small)" ] || fail "echo: sha256 differs"
log "echo 32 MiB each way at once: ok, $(elapsed "$t0") s"

# --- half-close: the server answers only after our FIN ----------------------------
# ncat shuts its write side at EOF on stdin and keeps reading.
start_server digest0 digest
D0=$SERVER_PORT
start_server digest1 digest
D1=$SERVER_PORT
got=$(nc_via "$P1_SOCKS" 10.0.0.0 "$D0" <small 2>ncat.err) || fail "half-close: ncat failed: $(cat ncat.err)"
[ "$got" = "$(sha_file small) $(file_size small)" ] || fail "half-close via party 1: answer '$got'"
got=$(printf 'hello' | nc_via "$P0_SOCKS" 10.0.0.1 "$D1" 2>ncat.err) || fail "half-close: ncat failed: $(cat ncat.err)"
[ "$got" = "$(printf 'hello' | sha_stdin) 5" ] || fail "half-close via party 0: answer '$got'"
got=$(nc_via "$P1_SOCKS" 10.0.0.0 "$D0" </dev/null 2>ncat.err) || fail "half-close: ncat failed: $(cat ncat.err)"
[ "$got" = "$(sha_stdin </dev/null) 0" ] || fail "half-close with no data: answer '$got'"
log "half-close: answers arrive after the client's FIN, both ways"

stop_all
pass
