# shellcheck shell=bash
# shellcheck disable=SC2034 # used by the scenarios
# Shared start of the NAT-traversal scenarios: the lab library, and a SKIP
# until the stun discovery and sfkit registry plugins are built. These
# scenarios are not in `make check` yet: add them to INTEGRATION_TESTS in
# Makefile.am (and the new plugin dirs to SFKIT_PROXY_PLUGIN_DIR in
# AM_TESTS_ENVIRONMENT) when the plugins land.
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
