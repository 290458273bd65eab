#!/bin/bash
# shellcheck disable=SC2119,SC2317 # optional arguments; functions run via wait_until
# --check-config, --help, --version and usage errors, as an operator sees them.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

cd "$T" || fail "cd $T"

# run_cli NAME ARGS...: run the daemon in the foreground (bounded); stdout in
# NAME.stdout, stderr in NAME.err, status in RC.
run_cli() {
  local name=$1
  shift
  timeout 30 "$SFKIT_PROXY" "$@" >"$name.stdout" 2>"$name.err" </dev/null
  RC=$?
  [ "$RC" != 124 ] || fail "'sfkit-proxy $*' did not finish within 30 s"
  check_sanitizer_log "$name.err" "sfkit-proxy $*"
}

# --- a good config ----------------------------------------------------------
make_pair
cp p1.yaml good.yaml
run_cli good --check-config -c good.yaml
[ "$RC" = 0 ] || fail "good config: exit $RC (expected 0): $(cat good.err)"
grep -Eq '(^|/)good\.yaml: OK$' good.stdout good.err ||
  fail "good config: no 'good.yaml: OK' line; stdout: $(cat good.stdout) stderr: $(cat good.err)"
log "good config: $(cat good.stdout good.err | head -n 1)"

# the same with an absolute path
run_cli goodabs --check-config -c "$T/good.yaml"
[ "$RC" = 0 ] || fail "good config (absolute path): exit $RC"
grep -Fq "$T/good.yaml: OK" goodabs.stdout goodabs.err || fail "no '$T/good.yaml: OK' line"

# --- three mistakes, each reported at its position ----------------------------
# line numbers matter: keep this text as is.
cat >bad.yaml <<EOF
party:
  pid: 1
network: 10.0.0.0/33
socks:
  listen: 127.0.0.1:$P1_SOCKS
  lisen: 127.0.0.1:1080
udp:
  bind: 127.0.0.1:$P1_UDP
identity:
  key_file: p1.key
discovery:
  plugin: none
registry:
  plugin: static
  peers:
    - pid: 0
      addr: 127.0.0.1:$P0_UDP
      pubkey_sha256: $P0_PIN
transport:
  plugin: quic
  idle_timeout: 10parsecs
services:
  - ports: 1024-65535
    host: 127.0.0.1
    peers: all
EOF
run_cli bad --check-config -c bad.yaml
cat bad.err
[ "$RC" = 2 ] || fail "bad config: exit $RC (expected 2)"
# bad CIDR: the value of `network` (line 3, column 10)
grep -Eq '(^|/)bad\.yaml:3:10: ' bad.err || fail "bad CIDR not reported as bad.yaml:3:10"
# unknown key `lisen` (line 6, column 3)
grep -Eq '(^|/)bad\.yaml:6:3: .*lisen' bad.err || fail "unknown key 'lisen' not reported as bad.yaml:6:3"
# bad duration, checked by the quic plugin (line 21, column 17)
grep -Eq '(^|/)bad\.yaml:21:17: ' bad.err || fail "bad duration not reported as bad.yaml:21:17"
n=$(grep -Ec '(^|/)bad\.yaml:[0-9]+:[0-9]+: ' bad.err)
[ "$n" = 3 ] || fail "bad config: $n FILE:LINE:COLUMN lines (expected 3)"
grep -q ': OK' bad.stdout bad.err && fail "bad config also printed OK"

# --- a YAML syntax error ------------------------------------------------------
printf 'party: {pid: 1\nsocks:\n  listen: 127.0.0.1:1080\n' >syntax.yaml
run_cli syntax --check-config -c syntax.yaml
[ "$RC" = 2 ] || fail "YAML syntax error: exit $RC (expected 2)"
grep -Eq '(^|/)syntax\.yaml:[0-9]+:[0-9]+: ' syntax.err || fail "YAML syntax error not reported as FILE:LINE:COLUMN"

# --- a missing file ------------------------------------------------------------
run_cli missing --check-config -c nosuch.yaml
[ "$RC" = 2 ] || fail "missing config file: exit $RC (expected 2)"
grep -q 'nosuch\.yaml' missing.err || fail "missing config file: the message does not name the file: $(cat missing.err)"
grep -Eiq 'no such file|not found|does not exist|cannot open|can.t open' missing.err ||
  fail "missing config file: the message does not say what is wrong: $(cat missing.err)"
run_cli missing2 -c nosuch.yaml
[ "$RC" = 2 ] || fail "daemon with a missing config file: exit $RC (expected 2)"

# --- an unknown plugin: the error lists the dirs searched ---------------------
sed 's/plugin: quic/plugin: nosuch/' good.yaml >plugin.yaml
run_cli plugin --check-config -c plugin.yaml
[ "$RC" = 2 ] || fail "unknown plugin: exit $RC (expected 2)"
grep -q nosuch plugin.err || fail "unknown plugin: the message does not name it: $(cat plugin.err)"
found=0
IFS=: read -ra dirs <<<"$SFKIT_PROXY_PLUGIN_DIR"
for d in "${dirs[@]}"; do
  grep -qF "$d" plugin.err && found=1
done
[ "$found" = 1 ] || fail "unknown plugin: the message lists none of the searched dirs ($SFKIT_PROXY_PLUGIN_DIR): $(cat plugin.err)"

# check_quic NAME LINES: good.yaml with LINES (`\n` between them) added to its
# transport section, checked; the first added line's number in LINE.
check_quic() {
  sed "s/^  plugin: quic\$/  plugin: quic\n$2/" good.yaml >"$1.yaml"
  line=$(grep -nxF -- "${2%%\\n*}" "$1.yaml" | cut -d: -f1)
  run_cli "$1" --check-config -c "$1.yaml"
}

# --- a plugin's own unknown key --------------------------------------------------
check_quic pkey '  idle_timout: 5s'
[ "$RC" = 2 ] || fail "unknown quic key: exit $RC (expected 2)"
grep -Eq "(^|/)pkey\\.yaml:$line:3: .*idle_timout" pkey.err || fail "unknown quic key not reported as pkey.yaml:$line:3: $(cat pkey.err)"

# --- a plugin's own value out of range -------------------------------------------
check_quic prange '  loopback_payload: 70000'
[ "$RC" = 2 ] || fail "loopback_payload 70000: exit $RC (expected 2)"
grep -Eq "(^|/)prange\.yaml:$line:21: .*loopback_payload.*1200\.\.65507" prange.err ||
  fail "loopback_payload 70000 not reported as prange.yaml:$line:21 with its range: $(cat prange.err)"

# --- a congestion control ngtcp2 does not have: the choices are listed -----------
check_quic pcc '  congestion: fast'
[ "$RC" = 2 ] || fail "congestion: fast: exit $RC (expected 2)"
grep -Eq "(^|/)pcc\.yaml:$line:15: .*auto, cubic, reno, bbr or bbr2.*\"fast\"" pcc.err ||
  fail "congestion: fast not reported as pcc.yaml:$line:15 with the choices: $(cat pcc.err)"
for cc in auto cubic reno bbr bbr2; do
  check_quic "pcc-$cc" "  congestion: $cc"
  [ "$RC" = 0 ] || fail "congestion: $cc: exit $RC (expected 0): $(cat "pcc-$cc.err")"
done

# --- conn_window alone, below the default stream window: the stream window
# follows it (a config written before the defaults grew still loads); both
# set the other way round is an error.
check_quic pwin '  conn_window: 67108864'
[ "$RC" = 0 ] || fail "conn_window alone (64 MiB): exit $RC (expected 0): $(cat pwin.err)"
check_quic pwin2 '  conn_window: 67108864\n  stream_window: 134217728'
[ "$RC" = 2 ] || fail "stream_window above conn_window: exit $RC (expected 2): $(cat pwin2.err)"
grep -q 'stream_window' pwin2.err || fail "stream_window above conn_window: the message does not name the key: $(cat pwin2.err)"


# --- the queue governor: its three modes, and a target out of range ---------------
check_quic pq '  queue: sometimes'
[ "$RC" = 2 ] || fail "queue: sometimes: exit $RC (expected 2)"
grep -Eq "(^|/)pq\.yaml:$line:10: .*interactive, always or off.*\"sometimes\"" pq.err ||
  fail "queue: sometimes not reported as pq.yaml:$line:10 with the choices: $(cat pq.err)"
for qm in interactive always off; do
  check_quic "pq-$qm" "  queue: $qm\n  queue_delay: 10ms"
  [ "$RC" = 0 ] || fail "queue: $qm: exit $RC (expected 0): $(cat "pq-$qm.err")"
done
check_quic pqd '  queue_delay: 0ms'
[ "$RC" = 2 ] || fail "queue_delay: 0ms: exit $RC (expected 2)"
grep -Eq "(^|/)pqd\.yaml:$line:16: .*queue_delay: between 1ms and 1s" pqd.err ||
  fail "queue_delay: 0ms not reported as pqd.yaml:$line:16 with its range: $(cat pqd.err)"
# --- command-line errors ----------------------------------------------------------
run_cli badopt --no-such-option
[ "$RC" = 2 ] || fail "unknown option: exit $RC (expected 2)"
[ -s badopt.err ] || fail "unknown option: nothing on stderr"
run_cli badpid --check-config -c good.yaml --pid abc
[ "$RC" = 2 ] || fail "--pid abc: exit $RC (expected 2)"
run_cli pidover --check-config -c good.yaml --pid 7
[ "$RC" = 0 ] || fail "--pid 7 override: exit $RC (expected 0): $(cat pidover.err)"

# --- --help and --version -----------------------------------------------------------
run_cli help --help
[ "$RC" = 0 ] || fail "--help: exit $RC"
grep -q -- '--check-config' help.stdout || fail "--help does not mention --check-config on stdout"
grep -q -- 'identity' help.stdout || fail "--help does not mention the identity command"

version=$(sed -n 's/^AC_INIT(\[sfkit-proxy\], *\[\([^]]*\)\].*/\1/p' "$SFK_SRCDIR/configure.ac")
run_cli version --version
[ "$RC" = 0 ] || fail "--version: exit $RC"
[ -n "$version" ] || fail "cannot read the version from configure.ac"
grep -qF "$version" version.stdout || fail "--version does not print $version: $(cat version.stdout)"
log "version: $(head -n 1 version.stdout)"

pass
