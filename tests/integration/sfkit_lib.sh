# shellcheck shell=bash
# Helpers for the tests of the `sfkit` registry plugin; sourced after
# lib.sh.  The website is tests/natlab/sfkit_website.py (the test double).

WEBSITE=$SFK_SRCDIR/tests/natlab/sfkit_website.py
[ -f "$WEBSITE" ] || fail "the website double is missing: $WEBSITE"
# libcurl honours proxy variables; the tests talk to 127.0.0.1 directly.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy NO_PROXY no_proxy

# new_key FILE: a random auth key, mode 0600; prints the key.
new_key() {
  local k
  k=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  (umask 077 && printf '%s\n' "$k" >"$1") || fail "cannot write $1"
  echo "$k"
}

# start_website NAME ARGS...: start the double on 127.0.0.1 (port 0) with a
# request log $T/NAME.jsonl and a control socket $T/NAME.ctl; sets WEB_URL
# and WEB_PID. Output in $T/NAME.err.
start_website() {
  local name=$1
  shift
  rm -f "$T/$name.url"
  "$PY" "$WEBSITE" --host 127.0.0.1 --port 0 --log "$T/$name.jsonl" \
    --ready-file "$T/$name.url" --control-socket "$T/$name.ctl" "$@" \
    >"$T/$name.out" 2>"$T/$name.err" &
  WEB_PID=$!
  track "$WEB_PID"
  wait_until 20 _nonempty "$T/$name.url" || fail "website double $name did not start: $(cat "$T/$name.err")"
  WEB_URL=$(cat "$T/$name.url")
}

# web_ctl NAME 'fault?kind=status&code=503&seconds=3': a control command.
web_ctl() {
  "$PY" "$WEBSITE" ctl "$T/$1.ctl" "$2" >"$T/$1.ctl.out" || fail "website control $2 failed: $(cat "$T/$1.ctl.out")"
}

# web_log NAME PYTHON-EXPR: count request-log lines (as dict `e`) for which
# EXPR is true, e.g. web_log web 'e["party"] == "alice" and e["status"] == 200'
web_log() {
  "$PY" - "$T/$1.jsonl" "$2" <<'PYEOF'
import json, sys
n = 0
with open(sys.argv[1]) as f:
    for line in f:
        e = json.loads(line)
        if e.get("method") == "CONTROL":
            continue
        q = e.get("query") or {}
        if eval(sys.argv[2]):
            n += 1
print(n)
PYEOF
}
_web_log_has() { [ "$(web_log "$1" "$2")" -ge "${3:-1}" ]; }
# wait_web NAME EXPR [SECONDS]: until the request log has a line for EXPR.
wait_web() { wait_until "${3:-20}" _web_log_has "$1" "$2" || fail "no request in the website log for: $2"; }

# log_has NAME PATTERN (grep -E on the proxy's log)
_log_has() { grep -Eq -- "$2" "$T/$1.log"; }
wait_log() { wait_until "${3:-20}" _log_has "$1" "$2" || fail "proxy $1 did not log /$2/ in ${3:-20} s"; }

# write_sfkit_config FILE PID SOCKS_PORT UDP_PORT KEYFILE REGISTRY_LINES [PARTY_LINES]
#   REGISTRY_LINES: the lines of the registry section after "plugin: sfkit",
#   each indented by 2 spaces (printf-style, one string with \n).
write_sfkit_config() {
  local file=$1 pid=$2 sport=$3 uport=$4 key=$5 reg=$6 party=${7:-}
  {
    echo "# $TEST_NAME party $pid"
    echo "party:"
    echo "  pid: $pid"
    [ -n "$party" ] && printf '%s\n' "$party"
    echo "network: 10.0.0.0/24"
    echo "socks:"
    echo "  listen: 127.0.0.1:$sport"
    echo "udp:"
    echo "  bind: \"127.0.0.1:$uport\""
    echo "identity:"
    echo "  key_file: $key"
    echo "discovery:"
    echo "  plugin: none"
    echo "registry:"
    echo "  plugin: sfkit"
    printf '%s\n' "$reg"
    echo "transport:"
    echo "  plugin: quic"
    echo "services:"
    echo "  - ports: 1024-65535"
    echo "    host: 127.0.0.1"
    echo "    peers: all"
    echo "log:"
    echo "  level: ${SFK_LOG_LEVEL:-info}"
  } >"$file"
}
