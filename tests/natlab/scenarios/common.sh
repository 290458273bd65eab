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

# serve_file PARTY MB: an HTTP server in PARTY's host (port LAB_SERVER_PORT)
# serving $www/fileMB, an MB-MiB file made once; sets the caller's www
# (the directory).
serve_file() {
  www=$LAB_DIR/$1/www
  mkdir -p "$www"
  [ -f "$www/file$2" ] || make_file "$www/file$2" "$2"
  lab_serve "$1" http "$www"
}

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
  serve_file "$to" "$mb"
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

# --- the relay (turn plugin) -------------------------------------------------------------
# The relayed transfers of the relay scenarios: 50 MiB each way (the issue's
# size; about 1.5 s through coturn here, under the sanitizers too);
# SFK_LAB_RELAY_MB overrides.
RELAY_MB=${SFK_LAB_RELAY_MB:-50}

# re ADDR: ADDR as an extended regex (dots escaped).
re() { echo "${1//./\\.}"; }

# msg LINE: a proxy log line without its timestamp and level.
msg() { sed -E 's/^[^ ]+ +[a-z]+ +//' <<<"$1"; }

# relayed_of NAME [SECONDS]: wait (default 30 s) until the party's daemon
# logs its relayed address; prints the last one (203.0.113.1:PORT).
relayed_of() {
  wait_log "$1" "daemon: relayed address $(re "$LAB_STUN_IP1"):[0-9]+" "${2:-30}" >/dev/null || exit 1
  grep -Eo "daemon: relayed address $(re "$LAB_STUN_IP1"):[0-9]+" "$LAB_DIR/$1/proxy.log" | tail -n 1 | awk '{print $4}'
}

# up_line NAME PEER PATH ADDR [SECONDS]: wait until NAME's proxy logs PEER
# up via PATH (direct|relay) at ADDR; prints the line (msg).
up_line() {
  local pid=${LAB_PROXY_PARTY_PID[$2]:-} line
  [ -n "$pid" ] || fail "up_line: no proxy started for $2"
  line=$(wait_log "$1" "peers: peer $pid \\(10\\.0\\.0\\.$pid\\) up via $3 $(re "$4")( |:|\$)" "${5:-30}") || exit 1
  msg "$line"
}

# jget FILE PATH: a value of a JSON file; PATH is dot-separated keys, and
# peers[PID] picks the entry of the peers list with that pid. Fails (exit
# 1, message on stderr) if it is missing.
jget() {
  "$PY" - "$1" "$2" <<'PYEOF'
import json, re, sys
d = json.load(open(sys.argv[1]))
for part in sys.argv[2].split("."):
    m = re.fullmatch(r"(\w+)\[(\d+)\]", part)
    try:
        if m:
            d = [x for x in d[m.group(1)] if str(x.get("pid")) == m.group(2)][0]
        else:
            d = d[part]
    except (KeyError, IndexError, TypeError):
        sys.exit("%s: no %s (at %s) in %s" % (sys.argv[1], sys.argv[2], part, json.dumps(d)[:600]))
print(json.dumps(d) if isinstance(d, (dict, list)) else d)
PYEOF
}

# status_json NAME: `status --json` of the party into $LAB_DIR/NAME/status.json;
# prints the file name.
status_json() {
  status_of "$1" --json >"$LAB_DIR/$1/status.json" || exit 1
  echo "$LAB_DIR/$1/status.json"
}

# check_status NAME PATH VALUE_REGEX: status --json of NAME has PATH
# matching the extended regex (now); prints the value.
check_status() {
  local f v
  f=$(status_json "$1") || exit 1
  v=$(jget "$f" "$2") || fail "status --json of $1: $(jget "$f" "$2" 2>&1)"
  [[ $v =~ $3 ]] || fail "status --json of $1: $2 is '$v', want /$3/ ($(cat "$f"))"
  echo "$v"
}

# check_peer_path NAME PEER PATH ADDR [WHY]: NAME's status --json shows
# PEER up on PATH at ADDR, and, with WHY, a path_why containing WHY (the
# reason for the path); logs them.
check_peer_path() {
  local pid=${LAB_PROXY_PARTY_PID[$2]} f st path addr why=
  f=$(status_json "$1") || exit 1
  st=$(jget "$f" "peers[$pid].state") || fail "status --json of $1, peer $pid: $(cat "$f")"
  path=$(jget "$f" "peers[$pid].path") || fail "status --json of $1, peer $pid ($st): no path: $(cat "$f")"
  addr=$(jget "$f" "peers[$pid].address") || fail "status --json of $1, peer $pid: no address: $(cat "$f")"
  [ "$st/$path/$addr" = "up/$3/$4" ] ||
    fail "status --json of $1: peer $pid is $st via $path $addr (want up via $3 $4)"
  if [ -n "${5:-}" ]; then
    why=$(jget "$f" "peers[$pid].path_why") || fail "status --json of $1, peer $pid: no path_why: $(cat "$f")"
    [[ $why == *"$5"* ]] || fail "status --json of $1: peer $pid path_why '$why' (want '$5')"
  fi
  log "$1: status --json: peer $pid up, path $path, address $addr${why:+, path_why: $why}"
}

# check_relay_bytes MIN_MB: at least MIN_MB MiB went to coturn's relayed
# addresses and as much came out of them; logs the counters.
check_relay_bytes() {
  local i o
  read -r i o <<<"$(lab_relay_bytes)"
  log "coturn relayed addresses: $((i / 1048576)) MiB in, $((o / 1048576)) MiB out"
  ((i >= $1 * 1048576 && o >= $1 * 1048576)) ||
    fail "only $i bytes in / $o bytes out through coturn's relayed addresses (want >= $1 MiB each)"
}

# relay_pair_transfer WHY_B DIRECT_WHAT: parties a and b are up via relay at
# each other's relayed address (the scenario's R[a], R[b]), b's path_why
# contains WHY_B; RELAY_MB MiB each way from each side, SHA-256 equal, all
# of it through coturn's relayed addresses; coturn granted an allocation
# to each; both still via relay after it, and no direct path ever came up
# (the failure says "a direct path DIRECT_WHAT").
relay_pair_transfer() {
  local line n
  line=$(up_line b a relay "${R[a]}" 20) || exit 1
  log "b: $line"
  line=$(up_line a b relay "${R[b]}" 20) || exit 1
  log "a: $line"
  check_peer_path a b relay "${R[b]}" "reached our relayed address"
  check_peer_path b a relay "${R[a]}" "$1"

  lab_transfer b a "$RELAY_MB"
  lab_transfer a b "$RELAY_MB"
  check_relay_bytes $((2 * RELAY_MB))
  n=$(lab_turn_allocations)
  [ "$n" -ge 2 ] || fail "coturn granted $n allocation(s), want one per party at least"
  log "coturn granted $n allocation(s)"
  check_peer_path a b relay "${R[b]}" "reached our relayed address"
  check_peer_path b a relay "${R[a]}" "$1"
  ! grep -q 'up via direct' "$LAB_DIR/a/proxy.log" "$LAB_DIR/b/proxy.log" ||
    fail "a direct path $2: $(grep -h 'up via direct' "$LAB_DIR"/[ab]/proxy.log)"
}
