# shellcheck shell=bash
# shellcheck disable=SC2034,SC2317 # used by the scenarios; functions run via wait_until
# Shared start of the NAT-traversal scenarios: the lab library, and a SKIP
# unless the stun discovery and sfkit registry plugins are built. `make
# check` runs the scenarios listed in NATLAB_SCENARIOS (Makefile.am).
# shellcheck source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/../lab.sh"
[ -x "$SFKIT_PROXY" ] || fail "daemon not built: $SFKIT_PROXY"
lab_need_plugins discovery_stun registry_sfkit
MB=${SFK_LAB_MB:-20}

# start_parties NAME...: party configs (PID = position) and proxies.
start_parties() {
  local n pid=0
  for n in "$@"; do
    lab_party_config "$n" "$pid"
    lab_proxy_start "$n" "$pid" "$LAB_CONF"
    pid=$((pid + 1))
  done
}

# check_published NAME [ADDR_REGEX]: the party published its address (by
# default its router's WAN IP and any port) and the pin of its ready line.
check_published() {
  local re=${2:-^$(lab_wan_ip "$1" | sed 's/\./\\./g'):[0-9]+\$} addr pin
  addr=$(lab_wait_published "$1" EXTERNAL_ADDR "$re" 30) || exit 1
  pin=$(lab_wait_published "$1" QUIC_PUBKEY_SHA256 '^[0-9a-f]{64}$' 30) || exit 1
  [ "$pin" = "$(lab_ready_pin "$1")" ] || fail "$1 published pin $pin, its ready line says $(lab_ready_pin "$1")"
  log "$1 published EXTERNAL_ADDR=$addr and its pin"
}

# check_no_secrets: no auth key and no TURN password in any proxy log (the
# website's study JSON carries every party's AUTH_KEY, as the real one does).
check_no_secrets() {
  local n f
  for n in "${LAB_PARTIES[@]}"; do
    for f in "$LAB_DIR"/*/proxy.log; do
      ! grep -qF "$(cat "$LAB_DIR/$n/auth_key.txt")" "$f" || fail "$f holds $n's auth key"
      ! grep -qF "$LAB_TURN_PASS" "$f" || fail "$f holds the TURN password"
    done
  done
}

# wait_log NAME REGEX [SECONDS]: wait (default 30 s) until the party's proxy
# log has a line matching the extended REGEX; prints the first such line.
_log_has() { grep -Eq -- "$2" "$LAB_DIR/$1/proxy.log"; }
wait_log() {
  wait_until "${3:-30}" _log_has "$1" "$2" ||
    fail "$1's proxy logged nothing matching '$2' within ${3:-30} s"
  grep -Em1 -- "$2" "$LAB_DIR/$1/proxy.log"
}

# socks_reply FROM TO PORT [TIMEOUT]: one SOCKS5 CONNECT from FROM's host
# to 10.0.0.<TO's PID>:PORT through FROM's proxy; prints the reply code
# (0x00, 0x04, ...), `closed` or `timeout` (tests/integration/socks_client.py).
socks_reply() {
  local pid=${LAB_PROXY_PARTY_PID[$2]:-}
  [ -n "$pid" ] || fail "socks_reply: no proxy started for $2"
  lab_exec "$1" "$PY" "$SFK_SRCDIR/tests/integration/socks_client.py" \
    "127.0.0.1:$LAB_SOCKS_PORT" "10.0.0.$pid" "$3" --timeout "${4:-40}" 2>&1
}
_socks_ok() { [ "$(socks_reply "$1" "$2" "$3" 10)" = 0x00 ]; }

# pc_fetch FROM TO MB: an unmodified curl under proxychains4 in FROM's host
# downloads MB MiB from an HTTP server in TO's host (10.0.0.<TO's PID>);
# SHA-256 compared.
pc_fetch() {
  local from=$1 to=$2 mb=$3 www pid got conf
  need proxychains4
  pid=${LAB_PROXY_PARTY_PID[$to]:-}
  [ -n "$pid" ] || fail "pc_fetch: no proxy started for $to"
  conf=$LAB_DIR/$from/proxychains.conf
  # strict_chain: nothing ever goes direct; only loopback bypasses the proxy
  printf 'strict_chain\nquiet_mode\ntcp_read_time_out 15000\ntcp_connect_time_out 10000\nlocalnet 127.0.0.0/255.0.0.0\n[ProxyList]\nsocks5 127.0.0.1 %s\n' \
    "$LAB_SOCKS_PORT" >"$conf"
  www=$LAB_DIR/$to/www
  mkdir -p "$www"
  [ -f "$www/file$mb" ] || make_file "$www/file$mb" "$mb"
  lab_serve "$to" http "$www"
  got=$(lab_exec "$from" env -u http_proxy -u https_proxy -u ALL_PROXY -u all_proxy \
    timeout 120 proxychains4 -q -f "$conf" curl -sS --fail "http://10.0.0.$pid:$LAB_SERVER_PORT/file$mb" \
    2>"$LAB_DIR/$from/pc.err" | sha_stdin) || fail "proxychains4 curl $from <- $to failed: $(cat "$LAB_DIR/$from/pc.err")"
  [ "$got" = "$(sha_file "$www/file$mb")" ] || fail "proxychains4 curl $from <- $to: sha256 differs"
  log "$from <- $to: $mb MiB with proxychains4 curl (no SOCKS option), sha256 equal"
}

# status_of NAME [--json]: `sfkit-proxy status` against the party's config
# (control.sock in its dir), run in its host; output on stdout.
status_of() {
  local name=$1
  shift
  lab_exec "$name" timeout 20 "$SFKIT_PROXY" status -c "${LAB_PROXY_CONF[$name]}" "$@" 2>"$LAB_DIR/$name/status.err" ||
    fail "status of $name failed: $(cat "$LAB_DIR/$name/status.err")"
}

# lab_proxy_kill NAME: SIGKILL the party's proxy (no clean stop to check).
lab_proxy_kill() {
  local p=${LAB_PROXY_PID[$1]:-}
  [ -n "$p" ] || fail "proxy $1 is not running"
  kill -KILL "$p"
  wait "$p" 2>/dev/null
  unset "LAB_PROXY_PID[$1]"
  cp "$LAB_DIR/$1/proxy.log" "$LAB_DIR/$1/proxy.killed.log"
}
