#!/bin/bash
# shellcheck disable=SC2119,SC2317 # optional arguments; functions run via wait_until
# Unmodified programs (curl, ncat) run under proxychains4 reach party 0's
# services as 10.0.0.0:PORT through party 1's SOCKS port.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
need proxychains4 curl ncat

cd "$T" || fail "cd $T"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy NO_PROXY no_proxy

make_pair
start_proxy p0 p0.yaml
start_proxy p1 p1.yaml

# strict_chain: if the proxy fails the connect fails; nothing ever goes direct.
# localnet: only loopback bypasses the proxy; 10.0.0.0/24 must NOT be listed.
# proxy_dns is off: the destinations are numeric, and the proxy refuses
# domain names (0x08) anyway.
cat >pc.conf <<EOF
strict_chain
quiet_mode
tcp_read_time_out 15000
tcp_connect_time_out 8000
localnet 127.0.0.0/255.0.0.0
[ProxyList]
socks5 127.0.0.1 $P1_SOCKS
EOF
PC=(timeout 300 proxychains4 -q -f "$T/pc.conf")

mkdir www
make_file www/file 32
start_server http0 http www
H0=$SERVER_PORT
start_server sink0 sink
S0=$SERVER_PORT

# curl, knowing nothing about SOCKS
got=$("${PC[@]}" curl -sS --fail "http://10.0.0.0:$H0/file" 2>curl.err | sha_stdin) ||
  fail "proxychains4 curl failed: $(cat curl.err)"
[ "$got" = "$(sha_file www/file)" ] || fail "proxychains4 curl: sha256 differs"
log "proxychains4 curl: 32 MiB, sha256 equal"

# ncat, knowing nothing about SOCKS, the other way
make_file up 32
"${PC[@]}" ncat --send-only 10.0.0.0 "$S0" <up 2>ncat.err || fail "proxychains4 ncat failed: $(cat ncat.err)"
wait_lines "$T/sink0.res" 1 60
read -r sum _ <"$T/sink0.res"
[ "$sum" = "$(sha_file up)" ] || fail "proxychains4 ncat: sha256 differs"
log "proxychains4 ncat: 32 MiB, sha256 equal"

# a refused remote port looks refused to the program
free_port REFUSED tcp
t0=$(now)
"${PC[@]}" curl -sS --max-time 30 "http://10.0.0.0:$REFUSED/" >/dev/null 2>curl.err && fail "curl to a refused port succeeded"
lt "$(elapsed "$t0")" 15 || fail "curl to a refused port took $(elapsed "$t0") s"
log "proxychains4 curl to a refused port fails at once: $(head -n 1 curl.err)"

stop_all
pass
