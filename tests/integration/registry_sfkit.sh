#!/bin/bash
# shellcheck disable=SC2317 # functions run via wait_until
# Two proxies find each other through the sfkit website (the test double,
# Terra mode) and move a file through SOCKS; the website's request log
# shows what each party published and read. --api, --auth-key-file and
# --study on the command line replace the config's values.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/sfkit_lib.sh"
need curl

cd "$T" || fail "cd $T"
STUDY=nat-study-1
K0=$(new_key key0)
K1=$(new_key key1)
start_website web --terra --study "$STUDY" --participant "alice=$K0" --participant "bob=$K1"
log "website double at $WEB_URL (Terra mode, study $STUDY)"

free_port P0_SOCKS tcp
free_port P1_SOCKS tcp
free_port P0_UDP udp
free_port P1_UDP udp
free_port DEAD tcp
# Party 0's config names a website and a key file that do not exist: the
# command line (--api, --auth-key-file, --study) must replace them.
write_sfkit_config p0.yaml 0 "$P0_SOCKS" "$P0_UDP" p0.key \
  "  api_url: http://127.0.0.1:$DEAD/wrong
  auth_key_file: no-such-key.txt
  poll: 2s"
write_sfkit_config p1.yaml 1 "$P1_SOCKS" "$P1_UDP" p1.key \
  "  api_url: $WEB_URL
  auth_key_file: key1
  poll: 2s" "  study_id: $STUDY"

start_proxy p0 p0.yaml --api "$WEB_URL" --auth-key-file "$T/key0" --study "$STUDY"
start_proxy p1 p1.yaml
P0_PIN=$(ready_pin p0)
P1_PIN=$(ready_pin p1)

wait_log p0 'peers known 2/2' 30
wait_log p1 'peers known 2/2' 30
wait_log p0 'peer 1 .* up via direct' 30
wait_log p1 'peer 0 .* up via direct' 30
log "both proxies found each other through the website"

mkdir www0
make_file www0/file 8
start_server http0 http www0
got=$(curl -sS --fail --max-time 60 --socks5 "127.0.0.1:$P1_SOCKS" "http://10.0.0.0:$SERVER_PORT/file" 2>curl.err | sha_stdin) ||
  fail "curl through party 1 failed: $(cat curl.err)"
[ "$got" = "$(sha_file www0/file)" ] || fail "sha256 differs: $got"
log "8 MiB from party 0 via party 1's SOCKS port, sha256 equal"

# The website saw both parties publish both values and read the study.
check_web() {
  local n
  n=$(web_log web "$1")
  [ "$n" -ge 1 ] || fail "website log: no request for $1"
}
check_web "e['party'] == 'alice' and e['pid'] == 0 and e['status'] == 200 and e['update'] == 'EXTERNAL_ADDR=127.0.0.1:$P0_UDP'"
check_web "e['party'] == 'alice' and e['status'] == 200 and e['update'] == 'QUIC_PUBKEY_SHA256=$P0_PIN'"
check_web "e['party'] == 'bob' and e['pid'] == 1 and e['status'] == 200 and e['update'] == 'EXTERNAL_ADDR=127.0.0.1:$P1_UDP'"
check_web "e['party'] == 'bob' and e['status'] == 200 and e['update'] == 'QUIC_PUBKEY_SHA256=$P1_PIN'"
check_web "e['party'] == 'alice' and e['path'] == '/api/get_doc_ref_dict' and e['status'] == 200"
check_web "e['party'] == 'bob' and e['path'] == '/api/get_doc_ref_dict' and e['status'] == 200"
# Terra mode: every call named the study, both from --study and party.study_id.
bad=$(web_log web "q.get('study_id') != '$STUDY'")
[ "$bad" = 0 ] || fail "$bad requests without study_id=$STUDY"
# Nothing went to the config's wrong website, and no key reached a log.
grep -q "$DEAD/wrong" p0.log && fail "party 0 used the config's api_url despite --api"
for k in "$K0" "$K1"; do
  grep -q "$k" p0.log p1.log web.jsonl && fail "an auth key appears in a log"
done
# Each value was published once (the daemon publishes at start and on
# changes only).
n=$(web_log web "e['party'] == 'alice' and (e['update'] or '').startswith('EXTERNAL_ADDR=')")
[ "$n" = 1 ] || fail "party 0 published EXTERNAL_ADDR $n times (expected once)"
# Unchanged reads (polled every 2 s) do not repeat the progress line.
n=$(grep -c 'peers known 2/2' p0.log)
[ "$n" = 1 ] || fail "'peers known 2/2' logged $n times (expected once)"
log "website log: both parties published EXTERNAL_ADDR and QUIC_PUBKEY_SHA256 and read the study, study_id=$STUDY on every call"

# SIGHUP re-reads the registry section; the command line still wins.
n0=$(web_log web "e['party'] == 'alice' and e['path'].endswith('get_doc_ref_dict')")
kill -HUP "$(proxy_pid p0)"
wait_log p0 "registry.sfkit: website $WEB_URL, poll 2.0 s" 10
wait_until 10 _web_log_has web "e['party'] == 'alice' and e['path'].endswith('get_doc_ref_dict')" $((n0 + 1)) ||
  fail "no read from party 0 after SIGHUP"
grep -q "$DEAD/wrong" p0.log && fail "after SIGHUP party 0 used the config's api_url despite --api"
grep -Eq 'registry.sfkit: .*(error|cannot|not accepted)' p0.log && fail "party 0 logged a registry error after SIGHUP"
bad=$(web_log web "q.get('study_id') != '$STUDY'")
[ "$bad" = 0 ] || fail "after SIGHUP: $bad requests without study_id=$STUDY"
log "SIGHUP: party 0 re-read its registry section and kept --api / --auth-key-file / --study"

stop_all
pass
