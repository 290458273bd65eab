#!/bin/bash
# shellcheck disable=SC2119,SC2317 # optional arguments; functions run via wait_until
# Small limits a careful operator would expect:
# A: durations longer than a year are refused at their position (they
#    would overflow once turned into nanoseconds on a clock).
# B: the "SOCKS not on loopback" warning knows all of loopback (127/8,
#    ::1) and warns for the IPv6 wildcard too.
# C: the daemon is not dumpable: another process of its user cannot read
#    its memory (secrets) through /proc; its /proc files belong to root.
# D: without UDP GRO (SFKIT_PROXY_NO_GRO) loopback peers' 16 KiB datagrams
#    still fit the read slots: a transfer between two parties works.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

cd "$T" || fail "cd $T"
make_pair

# --- A -------------------------------------------------------------------------------
sed 's/^  plugin: quic$/  plugin: quic\n  idle_timeout: 18446744073709551615ms/' p1.yaml >long.yaml
timeout 30 "$SFKIT_PROXY" --check-config -c long.yaml >long.out 2>&1 </dev/null
rc=$?
check_sanitizer_log long.out "check-config"
line=$(grep -n 'idle_timeout' long.yaml | cut -d: -f1)
[ "$rc" = 2 ] || fail "A: a 584-million-year idle_timeout: exit $rc (expected 2): $(cat long.out)"
grep -qF "long.yaml:$line:17: duration '18446744073709551615ms' for 'idle_timeout' is too long (at most 365 days, 8760h)" long.out ||
  fail "A: no positioned error: $(cat long.out)"
log "A: $(head -n 1 long.out)"
sed 's/^  plugin: quic$/  plugin: quic\n  idle_timeout: 8760h/' p1.yaml >year.yaml
timeout 30 "$SFKIT_PROXY" --check-config -c year.yaml >year.out 2>&1 </dev/null ||
  fail "A: a year is refused: $(cat year.out)"

# --- B -------------------------------------------------------------------------------
# listen_warns ADDR: start party 1 with socks.listen ADDR; 0 if it warned.
listen_warns() {
  local name=$1 addr=$2
  sed "s|^  listen: .*|  listen: \"$addr\"|" p1.yaml >"$name.yaml"
  start_proxy "$name" "$name.yaml"
  stop_proxy "$name"
  grep -q 'not loopback' "$T/$name.log"
}
free_port S1 tcp
listen_warns lo2 "127.0.0.2:$S1" && fail "B: 127.0.0.2 (loopback) was warned about"
free_port S2 tcp
listen_warns any4 "0.0.0.0:$S2" || fail "B: 0.0.0.0 was not warned about"
if ip -6 addr show dev lo 2>/dev/null | grep -q 'inet6 ::1/'; then
  free_port S3 tcp
  listen_warns lo6 "[::1]:$S3" && fail "B: [::1] (loopback) was warned about"
  free_port S4 tcp
  listen_warns any6 "[::]:$S4" || fail "B: [::] was not warned about"
  log "B: $(grep -m1 'not loopback' any6.log | sed 's/.*socks: //')"
else
  log "B: no ::1 on lo: the IPv6 cases are not run"
fi

# --- C -------------------------------------------------------------------------------
need setpriv
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
  D=$(mktemp -d /tmp/sfk-nobody.XXXXXX) || fail "mktemp"
  chmod 755 "$D"
  cp p1.yaml "$D/p.yaml"
  sed -i "s|key_file: .*|key_file: $D/p.key|" "$D/p.yaml"
  chown -R nobody "$D"
  setpriv --reuid=nobody --regid=nogroup --clear-groups "$SFKIT_PROXY" -c "$D/p.yaml" \
    >"$T/nobody.out" 2>"$T/nobody.log" </dev/null &
  NP=$!
  track "$NP"
  wait_until 20 grep -q 'ready:' "$T/nobody.log" || fail "C: the daemon as nobody did not start: $(cat "$T/nobody.log")"
  # the daemon itself (the libtool wrapper execs it: same pid)
  [ "$(stat -c %u "/proc/$NP")" = 65534 ] || fail "C: /proc/$NP is not nobody's process"
  owner=$(stat -c %u "/proc/$NP/mem")
  [ "$owner" = 0 ] || fail "C: /proc/$NP/mem belongs to uid $owner, not root: the daemon is dumpable"
  ! setpriv --reuid=nobody --regid=nogroup --clear-groups head -c 1 "/proc/$NP/environ" >/dev/null 2>&1 ||
    fail "C: another process of the same user read the daemon's environment"
  log "C: the daemon runs as nobody; /proc/$NP/mem belongs to root and nobody cannot read /proc/$NP/environ"
  kill -TERM "$NP"
  wait "$NP"
  rc=$?
  rm -rf "$D"
  [ "$rc" = 0 ] || fail "C: the daemon as nobody exited $rc"
  check_sanitizer_log "$T/nobody.log" "daemon as nobody"
else
  log "C: not root, or no user nobody: not run"
fi

# --- D -------------------------------------------------------------------------------
need curl
mkdir -p www
make_file www/f 4
start_server http0 http www
SFKIT_PROXY_NO_GRO=1 start_proxy p0 p0.yaml
SFKIT_PROXY_NO_GRO=1 start_proxy p1 p1.yaml
grep -q 'UDP GRO off' p1.log || fail "D: GRO was not turned off"
got=$(curl -sS --fail --max-time 30 --socks5 "127.0.0.1:$P1_SOCKS" "http://10.0.0.0:$SERVER_PORT/f" 2>curl.err | sha_stdin) ||
  fail "D: the download without GRO failed: $(cat curl.err)"
[ "$got" = "$(sha_file www/f)" ] || fail "D: sha256 differs"
stop_all
line=$(grep -m1 'connection down' p0.log) || fail "D: no 'connection down' line"
largest=$(sed 's/.*largest \([0-9]*\).*/\1/' <<<"$line")
[ "$largest" -gt 2048 ] || fail "D: party 0 sent at most $largest-byte packets: the case is not tested"
log "D: without GRO, 4 MiB in $largest-byte datagrams arrived intact"
pass
