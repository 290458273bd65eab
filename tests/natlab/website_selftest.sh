#!/bin/bash
# shellcheck disable=SC2317,SC2119,SC2015,SC2013 # functions via wait_until; optional args; A && B || fail
# The sfkit website double (tests/natlab/sfkit_website.py) checked with curl
# on loopback: every status code of the API, the stored values, Terra mode,
# HTTPS with a CA made by certtool, the request log (no keys in it) and each
# fault of the control channel. Needs no root.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lab.sh"

cd "$T" || fail "cd $T"
K_BROAD="k-broad-0123"
K_ALICE="k-alice-4567"
K_BOB="k-bob-89ab"
K_EVE="k-eve-cdef"
K_CAROL="k-carol-0000"
cat >site.json <<EOF
{
  "studies": {
    "s1": {"participants": ["Broad", "alice", "bob"], "incomplete": ["bob"],
           "personal_parameters": {"Broad": {"EXTERNAL_ADDR": "192.0.2.7:4000"}}},
    "s2": {"participants": ["carol"], "incomplete": true}
  },
  "keys": {
    "$K_BROAD": {"user": "Broad", "study": "s1"},
    "$K_ALICE": {"user": "alice", "study": "s1"},
    "$K_BOB": {"user": "bob", "study": "s1"},
    "$K_EVE": {"user": "eve", "study": "s1"},
    "$K_CAROL": {"user": "carol", "study": "s2"}
  }
}
EOF

# start_site NAME ARGS...: run the double on 127.0.0.1:0; sets URL_<NAME> via URL.
start_site() {
  local name=$1 p
  shift
  rm -f "$name.ready"
  "$PY" "$LAB_WEBSITE" --host 127.0.0.1 --port 0 --log "$name.jsonl" --ready-file "$name.ready" \
    --control-socket "$T/$name.ctl" "$@" >"$name.out" 2>"$name.err" &
  p=$!
  lab_track "$p"
  wait_until 20 _nonempty "$name.ready" || fail "the double ($name) did not start: $(cat "$name.err")"
  URL=$(cat "$name.ready")
  CTL=$T/$name.ctl
}

# code KEY PATH [CURL ARGS...]: print the HTTP status (000 if none) and
# leave the body in body.json; KEY "" sends no Authorization header.
code() {
  local key=$1 path=$2 h=()
  shift 2
  [ -n "$key" ] && h=(-H "Authorization: $key")
  curl -s --max-time 10 -o body.json -w '%{http_code}' "${h[@]}" "$@" "$URL/$path"
}
# expect WANT KEY PATH WHAT
expect() {
  local got
  got=$(code "$2" "$3")
  [ "$got" = "$1" ] || fail "$4: HTTP $got (expected $1): $(cat body.json 2>/dev/null)"
  log "$4: $got $(head -c 90 body.json)"
}
ctl() { curl -sS --max-time 10 --unix-socket "$CTL" "http://ctl/$1" >ctl.out || fail "control $1 failed"; }
jq_() { "$PY" -c "import json,sys; d=json.load(open('body.json')); print($1)"; }

start_site site --config site.json
U="update_firestore?msg=update_firestore::"

# --- status codes ---------------------------------------------------------------------
expect 401 "" get_doc_ref_dict "no Authorization"
expect 401 "no-such-key" get_doc_ref_dict "unknown key"
expect 403 "$K_EVE" get_doc_ref_dict "a key of a non-participant"
expect 409 "$K_CAROL" get_doc_ref_dict "a study without participants yet"
expect 200 "$K_ALICE" get_doc_ref_dict "get_doc_ref_dict"
[ "$(jq_ '",".join(d["participants"])')" = Broad,alice,bob ] || fail "participants: $(cat body.json)"
[ "$(jq_ 'd["personal_parameters"]["alice"]["EXTERNAL_ADDR"]["value"]')" = "" ] || fail "EXTERNAL_ADDR not empty"
[ "$(jq_ 'd["personal_parameters"]["alice"]["QUIC_PUBKEY_SHA256"]["value"]')" = "" ] || fail "QUIC_PUBKEY_SHA256 not empty"
[ "$(jq_ 'd["personal_parameters"]["Broad"]["EXTERNAL_ADDR"]["value"]')" = 192.0.2.7:4000 ] || fail "initial value"
[ "$(jq_ 'type(d["personal_parameters"]["alice"]["NUM_THREADS"]["value"]).__name__')" = int ] || fail "NUM_THREADS is not a number"
[ "$(jq_ 'type(d["personal_parameters"]["alice"]["index"]).__name__')" = list ] || fail "no index list"
expect 200 "$K_ALICE" "${U}EXTERNAL_ADDR=203.0.113.101:40000" "update EXTERNAL_ADDR"
[ "$(cat body.json)" = "{}" ] || fail "update answer: $(cat body.json)"
pin=$(printf x | sha256sum | awk '{print $1}')
expect 200 "$K_ALICE" "${U}QUIC_PUBKEY_SHA256=$pin" "update QUIC_PUBKEY_SHA256"
expect 200 "$K_BROAD" get_doc_ref_dict "another party reads"
[ "$(jq_ 'd["personal_parameters"]["alice"]["EXTERNAL_ADDR"]["value"]')" = 203.0.113.101:40000 ] || fail "stored EXTERNAL_ADDR"
[ "$(jq_ 'd["personal_parameters"]["alice"]["QUIC_PUBKEY_SHA256"]["value"]')" = "$pin" ] || fail "stored pin"
expect 200 "$K_ALICE" "${U}EXTERNAL_ADDR=" "an empty value"
expect 400 "$K_ALICE" "${U}NO_SUCH_NAME=1" "a NAME the party does not have"
expect 400 "$K_ALICE" "${U}NUM_SNPS=1" "a study-wide NAME (the real site would take it; SPEC: 400)"
expect 400 "$K_ALICE" "${U}EXTERNAL_ADDR=a=b" "a VALUE with ="
expect 400 "$K_ALICE" "${U}EXTERNAL_ADDR=%5B2001:db8::1%5D:4000" "a VALUE with :: (an IPv6 address)"
expect 400 "$K_ALICE" "${U}EXTERNAL_ADDR" "no ="
expect 400 "$K_ALICE" "update_firestore" "no msg"
expect 400 "$K_ALICE" "update_firestore?msg=EXTERNAL_ADDR=1" "msg without ::"
expect 400 "" "update_firestore?msg=nonsense" "a bad msg is 400 before the key is looked at (as the real site)"
expect 401 "" "${U}EXTERNAL_ADDR=1" "update without a key"
expect 401 "bad" "${U}EXTERNAL_ADDR=1" "update with an unknown key"
expect 403 "$K_EVE" "${U}EXTERNAL_ADDR=1" "update by a non-participant"
expect 409 "$K_BOB" "${U}EXTERNAL_ADDR=1" "update by a party without GCP_PROJECT (incomplete)"
expect 409 "$K_CAROL" "${U}EXTERNAL_ADDR=1" "update in a study without participants"
expect 200 "$K_ALICE" "${U}status=ready%20to%20begin" "status="
expect 200 "$K_ALICE" get_doc_ref_dict "status stored"
[ "$(jq_ 'd["status"]["alice"]')" = "ready to begin" ] || fail "status: $(cat body.json)"
expect 200 "$K_ALICE" get_username "get_username"
[ "$(jq_ 'd["username"]')" = alice ] || fail "get_username: $(cat body.json)"
expect 404 "$K_ALICE" "../other/get_doc_ref_dict" "outside the base path"
got=$(code "$K_ALICE" get_doc_ref_dict -X POST)
[ "$got" = 405 ] || fail "POST get_doc_ref_dict: $got"
got=$(code "$K_ALICE" "${U}PUBLIC_KEY=abc" -X POST)
[ "$got" = 200 ] || fail "POST update_firestore: $got (the real site takes GET and POST)"

ctl "incomplete?study=s2&on=0"
expect 200 "$K_CAROL" get_doc_ref_dict "incomplete toggled off at run time"
ctl "incomplete?study=s1&on=1"
expect 409 "$K_ALICE" get_doc_ref_dict "incomplete toggled on at run time"
ctl "incomplete?study=s1&on=0"
ctl "set?study=s1&user=bob&name=EXTERNAL_ADDR&value=198.51.100.9:5000"
expect 200 "$K_ALICE" get_doc_ref_dict "a value set by the control channel"
[ "$(jq_ 'd["personal_parameters"]["bob"]["EXTERNAL_ADDR"]["value"]')" = 198.51.100.9:5000 ] || fail "control set"

# --- faults ---------------------------------------------------------------------------------
ctl "fault?kind=status&code=503&requests=2"
expect 503 "$K_ALICE" get_doc_ref_dict "fault 503, request 1 of 2"
expect 503 "$K_ALICE" get_doc_ref_dict "fault 503, request 2 of 2"
expect 200 "$K_ALICE" get_doc_ref_dict "after the 503s"
ctl "fault?kind=status&code=500&seconds=1"
t0=$(now)
expect 500 "$K_ALICE" get_doc_ref_dict "fault 500 for 1 s"
_ok() { [ "$(code "$K_ALICE" get_doc_ref_dict)" = 200 ]; }
wait_until 5 _ok || fail "still failing 5 s after a 1 s fault"
lt 0.9 "$(elapsed "$t0")" || fail "the 1 s fault ended after $(elapsed "$t0") s"
log "fault 500 for 1 s: 200 again after $(elapsed "$t0") s"
ctl "fault?kind=delay&ms=700&requests=1"
t0=$(now)
expect 200 "$K_ALICE" get_doc_ref_dict "delay 700 ms"
lt 0.65 "$(elapsed "$t0")" || fail "delay: answered after $(elapsed "$t0") s"
ctl "fault?kind=close&requests=1"
curl -s --max-time 10 -o /dev/null -H "Authorization: $K_ALICE" "$URL/get_doc_ref_dict"
rc=$?
[ "$rc" = 52 ] || fail "close: curl exit $rc (expected 52, empty reply)"
log "close: curl exit 52 (empty reply)"
ctl "fault?kind=hang&seconds=1"
t0=$(now)
curl -s --max-time 10 -o /dev/null -H "Authorization: $K_ALICE" "$URL/get_doc_ref_dict"
rc=$?
[ "$rc" = 52 ] && lt 0.9 "$(elapsed "$t0")" || fail "hang: curl exit $rc after $(elapsed "$t0") s"
log "hang 1 s: no answer for $(elapsed "$t0") s, then closed"
ctl "fault?kind=hang&requests=1"
t0=$(now)
curl -s --max-time 10 -o /dev/null -H "Authorization: $K_ALICE" "$URL/get_doc_ref_dict" &
hung=$!
_hung() { ctl state && grep -q '"hung": 1' ctl.out; }
wait_until 5 _hung || fail "hang requests=1: no request is held"
expect 200 "$K_ALICE" get_doc_ref_dict "one request hung, the next one answered"
lab_alive "$hung" || fail "hang requests=1: the hung request ended early"
ctl reset
wait "$hung"
rc=$?
[ "$rc" = 52 ] || fail "hang until reset: curl exit $rc"
log "hang requests=1: held until reset ($(elapsed "$t0") s), then closed"
ctl "fault?kind=refuse&seconds=1"
t0=$(now)
curl -s --max-time 10 -o /dev/null "$URL/get_doc_ref_dict"
rc=$?
[ "$rc" = 7 ] || fail "refuse: curl exit $rc (expected 7, refused)"
wait_until 5 _ok || fail "still refused 5 s after a 1 s outage"
log "refuse 1 s: curl exit 7, then 200 again after $(elapsed "$t0") s"
ctl "fault?kind=refuse"
_refused() { curl -s --max-time 5 -o /dev/null "$URL/get_doc_ref_dict"; [ $? = 7 ]; }
_refused || fail "refuse until reset: not refused"
ctl reset
wait_until 5 _ok || fail "reset did not end the outage"
log "refuse until reset: refused, then 200 after reset"
ctl "fault?kind=nonsense"
grep -q '"ok": false' ctl.out || fail "a bad fault kind was accepted"
"$PY" "$LAB_WEBSITE" ctl "$CTL" state >state.json || fail "sfkit_website.py ctl state failed"
grep -q '"listening": true' state.json || fail "state: $(head -c 300 state.json)"

# --- the request log ----------------------------------------------------------------------------
n=$(grep -vc '"CONTROL"' site.jsonl)
[ "$n" -ge 40 ] || fail "only $n API requests in the log"
for k in "$K_BROAD" "$K_ALICE" "$K_BOB" "$K_EVE" "$K_CAROL"; do
  ! grep -qF "$k" site.jsonl || fail "the log holds an auth key"
done
"$PY" - site.jsonl <<'EOF' || fail "log entries incomplete"
import json, sys
need = {"ts", "time", "method", "path", "query", "party", "pid", "status", "update", "fault"}
ups = 0
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["method"] == "CONTROL":
        continue
    missing = need - set(e)
    if missing:
        sys.exit("missing %s in %s" % (missing, line))
    if e["update"] == "EXTERNAL_ADDR=203.0.113.101:40000":
        assert e["party"] == "alice" and e["pid"] == 1 and e["status"] == 200, line
        ups += 1
assert ups == 1, ups
EOF
log "request log: $n API requests, updates with party and PID, no key"

# --- Terra mode -------------------------------------------------------------------------------
start_site terra --config site.json --terra
expect 401 "" "get_doc_ref_dict?study_id=s1" "Terra: no Authorization"
expect 400 "$K_ALICE" get_doc_ref_dict "Terra: no study_id"
expect 200 "$K_ALICE" "get_doc_ref_dict?study_id=s1" "Terra: study_id=s1"
expect 200 "Bearer $K_ALICE" "get_doc_ref_dict?study_id=s1" "Terra: a bearer token"
expect 403 "$K_ALICE" "get_doc_ref_dict?study_id=nosuch" "Terra: an unknown study"
expect 409 "$K_ALICE" "get_doc_ref_dict?study_id=s2" "Terra: a study without participants (checked before membership, as the real site)"
ctl "incomplete?study=s2&on=0"
expect 403 "$K_ALICE" "get_doc_ref_dict?study_id=s2" "Terra: a study the user is not in"
expect 400 "$K_ALICE" "${U}EXTERNAL_ADDR=1" "Terra: update without study_id"
expect 200 "$K_ALICE" "${U}EXTERNAL_ADDR=1&study_id=s1" "Terra: update with study_id"

# --- flags instead of a config file, HTTPS --------------------------------------------------------
lab_make_tls_cert
echo "$K_ALICE" >alice.key
start_site tls --participant Broad="$K_BROAD" --participant alice=@alice.key --outsider eve="$K_EVE" \
  --param alice.EXTERNAL_ADDR=192.0.2.1:1 --tls-cert "$LAB_WEB_CERT" --tls-key "$LAB_WEB_KEY"
case $URL in https://*) ;; *) fail "TLS: ready URL $URL" ;; esac
got=$(code "$K_ALICE" get_doc_ref_dict --cacert "$LAB_CA_CERT")
[ "$got" = 200 ] || fail "HTTPS with the lab CA: $got"
[ "$(jq_ 'd["personal_parameters"]["alice"]["EXTERNAL_ADDR"]["value"]')" = 192.0.2.1:1 ] || fail "--param"
log "HTTPS with the lab CA: 200"
code "$K_ALICE" get_doc_ref_dict >/dev/null
rc=$?
[ "$rc" = 60 ] || fail "HTTPS without the CA: curl exit $rc (expected 60)"
log "HTTPS without the CA: curl exit 60 (certificate not trusted)"
got=$(code "$K_EVE" get_doc_ref_dict --cacert "$LAB_CA_CERT")
[ "$got" = 403 ] || fail "--outsider: $got"
ctl quit
wait_until 10 eval "[ ! -S '$CTL' ]" || fail "quit: the double did not stop"
pass
