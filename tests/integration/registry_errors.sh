#!/bin/bash
# shellcheck disable=SC2317 # functions run via wait_until
# What a user sees when the sfkit website says no: each refusal (401 wrong
# key, 403 non-participant, 400 missing parameter, 409 incomplete study)
# gives its own actionable message, once; 5xx answers are retried until
# the website recovers; a key file others can read is refused at start;
# the key never shows in logs or `ps`; HTTPS with a site CA works with
# ca_file and names the certificate problem without it.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/sfkit_lib.sh"
need certtool ps curl

cd "$T" || fail "cd $T"
K0=$(new_key key0)  # alice, party 0 of s-main (bob 1, carl 2 never starts)
K1=$(new_key key1)  # bob, party 1 of s-main
KE=$(new_key keyE)  # eve: a valid key, but not a participant of s-main
KC=$(new_key keyC)  # carol: a study whose parameters lack the proxy's two
KF=$(new_key keyF)  # frank: a study that is not complete yet
KW=$(new_key keyW)  # a key the website does not know
cat >web.json <<JSON
{"studies": {
   "s-main": {"participants": ["alice", "bob", "carl"]},
   "s-noparam": {"participants": ["carol", "dave"], "proxy_params": false},
   "s-incomplete": {"participants": ["frank", "gina"], "incomplete": true}},
 "keys": {"$K0": {"user": "alice", "study": "s-main"},
          "$K1": {"user": "bob", "study": "s-main"},
          "$KE": {"user": "eve", "study": "s-main"},
          "$KC": {"user": "carol", "study": "s-noparam"},
          "$KF": {"user": "frank", "study": "s-incomplete"}}}
JSON
start_website web --config web.json
log "website double at $WEB_URL"

# conf NAME PID KEYFILE [API_URL] [EXTRA_REGISTRY_LINES]: $T/NAME.yaml
conf() {
  local sp up
  free_port sp tcp
  free_port up udp
  write_sfkit_config "$1.yaml" "$2" "$sp" "$up" "$1.key" \
    "  api_url: ${4:-$WEB_URL}
  auth_key_file: $3
  poll: 2s${5:+
$5}"
}

SFK_LOG_LEVEL=debug # the key must not appear even in debug logs
export SFK_LOG_LEVEL

# expect NAME KEYFILE PID PATTERN WHAT: a proxy with that key logs PATTERN
# (an error or warning) exactly once, even after several requests.
expect() {
  local name=$1 n
  conf "$name" "$3" "$2"
  start_proxy "$name" "$name.yaml"
  wait_log "$name" "$4" 20
  grep -E -- "$4" "$T/$name.log" | grep -Eq ' (error|warn) ' || fail "$5: not logged as error/warn"
  log "$5: $(grep -E -m1 -- "$4" "$T/$name.log" | cut -d' ' -f3- | cut -c1-240)"
}

expect e401 keyW 0 'the auth key in .*keyW was not accepted \(wrong or expired key' "401 wrong key"
expect e403 keyE 0 'this auth key is not a participant of' "403 non-participant"
expect e400 keyC 0 'the study has no parameter EXTERNAL_ADDR for this party' "400 missing parameter"
grep -q 'the study has no parameter QUIC_PUBKEY_SHA256 for this party' e400.log || fail "400 for the pin not reported"
expect e409 keyF 0 'reading the study: the study is not complete yet' "409 incomplete study"
# Waiting for the study is polled, and said once.
wait_web web "e['party'] == 'frank' and e['status'] == 409 and e['path'].endswith('get_doc_ref_dict')" 3
wait_until 20 _web_log_has web "e['party'] == 'frank' and e['status'] == 409 and e['path'].endswith('get_doc_ref_dict')" 3 ||
  fail "the incomplete study is not polled again"
n=$(grep 'reading the study: the study is not complete yet' e409.log | grep -vc ' debug ')
[ "$n" = 1 ] || fail "the 409 message was logged $n times at warn (expected once)"
# ... and once the study is complete, the proxy goes on by itself.
web_ctl web 'incomplete?study=s-incomplete&on=0'
wait_log e409 'peers known 1/2' 20
wait_log e409 'published EXTERNAL_ADDR' 40
log "409: once the study is complete the proxy publishes and reads by itself"
for n in e401 e403 e400 e409; do stop_proxy "$n"; done

# Terra mode needs the study id: without party.study_id / --study, a clear
# message (the website's 400 "Missing study ID").
MAIN_URL=$WEB_URL
start_website terra --config web.json --terra
conf eterra 0 key0 "$WEB_URL"
start_proxy eterra eterra.yaml
wait_log eterra 'reading the study: the website needs a study id \(Terra\): set party.study_id or pass --study ID' 20
stop_proxy eterra
log "Terra without a study id: $(grep -m1 'needs a study id' eterra.log | cut -d' ' -f4- | cut -c1-160)"
WEB_URL=$MAIN_URL

# 5xx for a few seconds: retried with backoff; both parties come up after.
web_ctl web 'fault?kind=status&code=503&seconds=3'
conf p0 0 key0
conf p1 1 key1
start_proxy p0 p0.yaml
start_proxy p1 p1.yaml
wait_log p0 'the website answered 503' 10
wait_log p0 'peers known 2/3' 40
wait_log p1 'peers known 2/3' 40
wait_log p1 'peer 0 .* up via direct' 30
# (the double answers an injected fault before it looks at the key)
n=$(web_log web "e['fault'] == 'status' and e['status'] == 503")
[ "$n" -ge 2 ] || fail "only $n requests got the injected 503"
grep -q 'retrying in' p0.log || fail "no retry announced"
log "503 for 3 s: $n requests refused, retried, both parties came up afterwards"

# A participant's malformed value is logged once, that participant stays
# unknown, and the others carry on.
web_ctl web 'set?study=s-main&user=carl&name=QUIC_PUBKEY_SHA256&value=0011223344556677889900112233445566778899001122334455667788990011'
web_ctl web 'set?study=s-main&user=carl&name=EXTERNAL_ADDR&value=2001:db8::1:4000'
wait_log p0 'participant 2 \(carl\) published a malformed value, treated as not published: EXTERNAL_ADDR "2001:db8::1:4000"' 20
n=$(web_log web "e['party'] == 'alice' and e['path'].endswith('get_doc_ref_dict')")
wait_until 20 _web_log_has web "e['party'] == 'alice' and e['path'].endswith('get_doc_ref_dict')" $((n + 2)) ||
  fail "party 0 stopped reading the study"
n=$(grep -c 'participant 2 (carl) published a malformed value' p0.log)
[ "$n" = 1 ] || fail "the malformed value was logged $n times (expected once)"
grep -q 'peers known 3/3' p0.log && fail "a malformed participant counted as known"
grep -Eq 'peer 1 .*(down|left)' p0.log && fail "a malformed participant broke peer 1"
mkdir www0
make_file www0/file 1
start_server http0 http www0
got=$(curl -sS --fail --max-time 30 --socks5 "127.0.0.1:$(grep -m1 'listen:' p1.yaml | sed 's/.*127.0.0.1://')" \
  "http://10.0.0.0:$SERVER_PORT/file" 2>curl.err | sha_stdin) || fail "curl between parties 0 and 1 failed: $(cat curl.err)"
[ "$got" = "$(sha_file www0/file)" ] || fail "sha256 differs"
# Fixed (the bracketed form), carl becomes known.
web_ctl web 'set?study=s-main&user=carl&name=EXTERNAL_ADDR&value=%5B2001:db8::1%5D:4000'
wait_log p0 'peers known 3/3' 20
log "carl's malformed EXTERNAL_ADDR: warned once, carl unknown, parties 0 and 1 unaffected; fixed, carl known"

# The key never reaches a log, the website's log, or the process list.
ps -eo args >ps.txt
for k in "$K0" "$K1" "$KE" "$KC" "$KF" "$KW"; do
  grep -q "$k" ./*.log web.jsonl ps.txt && fail "an auth key appears in a log or in ps"
done
log "no auth key in any proxy log (debug level), the website log or ps"
stop_proxy p0
stop_proxy p1

# A key file others may read is refused at start: exit 2, a clear message.
cp key0 open-auth.txt
chmod 0644 open-auth.txt
conf open 0 open-auth.txt
timeout 20 "$SFKIT_PROXY" -c open.yaml >open.out 2>open.err </dev/null
rc=$?
[ "$rc" = 2 ] || fail "a 0644 key file: exit $rc (expected 2): $(cat open.err)"
grep -q 'open-auth.txt has mode 0644.*chmod 600' open.err || fail "a 0644 key file: no clear message: $(cat open.err)"
grep -q "$K0" open.err && fail "the key's content is in the error"
log "0644 key file refused: $(grep -m1 'mode 0644' open.err | cut -c1-240)"

# libcurl's proxy variables are honoured: through a proxy that is not
# there the website is unreachable (and the error names that proxy); with
# no_proxy for the website's host it is reached directly.
free_port NOPROXY tcp
conf px 0 key0
http_proxy=http://127.0.0.1:$NOPROXY start_proxy px px.yaml
wait_log px "cannot reach $WEB_URL: .*$NOPROXY" 20
stop_proxy px
conf pxn 0 key0
http_proxy=http://127.0.0.1:$NOPROXY no_proxy=127.0.0.1 start_proxy pxn pxn.yaml
wait_log pxn 'published EXTERNAL_ADDR' 20
stop_proxy pxn
log "http_proxy is honoured ($(grep -m1 'cannot reach' px.log | sed 's/.*cannot reach/cannot reach/' | cut -c1-160)); no_proxy too"

# Config errors are positioned, like every config error.
cc() {
  conf cc 0 key0 "$1" "$2"
  timeout 20 "$SFKIT_PROXY" --check-config -c cc.yaml >cc.out 2>&1
  rc=$?
  [ "$rc" = 2 ] || fail "--check-config with $3: exit $rc (expected 2)"
  grep -Eq "^cc.yaml:[0-9]+:[0-9]+: .*$4" cc.out || fail "--check-config with $3: $(cat cc.out)"
}
cc "ftp://example.org/api" "" "an ftp URL" "api_url must be an https:// \(or http://\) URL"
cc "https://user:pw@example.org/api" "" "credentials in the URL" "must not hold a user name or password"
cc "$WEB_URL" "  timeout: 50ms" "timeout 50ms" "timeout must be 100ms to 10m"
cc "$WEB_URL" "  ca_file: nosuch.pem" "a missing ca_file" "ca_file .*nosuch.pem: no such file"
grep -q 'pw' cc.out && fail "the URL's password is echoed"
log "config errors: positioned (e.g. $(head -n1 cc.out | cut -c1-160))"

# HTTPS with the site's own CA (certtool).
cat >ca.tmpl <<TMPL
cn = "sfkit-proxy test CA"
ca
cert_signing_key
expiration_days = 2
TMPL
cat >srv.tmpl <<TMPL
cn = "127.0.0.1"
ip_address = "127.0.0.1"
tls_www_server
signing_key
encryption_key
expiration_days = 2
TMPL
{
  certtool --generate-privkey --key-type ecdsa --outfile ca.key.pem &&
    certtool --generate-self-signed --load-privkey ca.key.pem --template ca.tmpl --outfile ca.pem &&
    certtool --generate-privkey --key-type ecdsa --outfile srv.key.pem &&
    certtool --generate-certificate --load-privkey srv.key.pem --load-ca-certificate ca.pem \
      --load-ca-privkey ca.key.pem --template srv.tmpl --outfile srv.pem
} >certtool.out 2>&1 || fail "certtool failed: $(tail -n5 certtool.out)"
start_website tls --config web.json --tls-cert srv.pem --tls-key srv.key.pem
case $WEB_URL in https://*) ;; *) fail "the TLS double serves $WEB_URL" ;; esac
conf tca 0 key0 "$WEB_URL" "  ca_file: ca.pem"
start_proxy tca tca.yaml
wait_log tca 'published EXTERNAL_ADDR' 20
log "HTTPS with ca_file: published"
conf tnoca 1 key1 "$WEB_URL"
start_proxy tnoca tnoca.yaml
wait_log tnoca "TLS certificate was not accepted: .*certificate" 20
log "HTTPS without ca_file: $(grep -m1 'TLS certificate' tnoca.log | cut -d' ' -f3- | cut -c1-240)"
stop_proxy tca
stop_proxy tnoca

stop_all
pass
