#!/bin/bash
# shellcheck disable=SC2119 # optional arguments
# The website fails in every way the double can while the proxies start and
# run: 503s, a slow answer, dropped connections, a refused port. The proxies
# must retry (without a storm), publish once it answers, and keep an
# established peer connection through an outage.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/common.sh"

lab_init
lab_start_stun
lab_add_party a cone
lab_add_party b cone
lab_start_website
lab_website_ctl 'fault?kind=status&code=503&requests=6' >/dev/null
start_parties a b
check_published a
check_published b
grep -q '"status": 503' "$LAB_DIR/website.jsonl" || fail "the 503s were never seen"
lab_transfer b a "$MB"

# an outage while connected: the peer connection does not need the website
lab_website_ctl 'fault?kind=refuse&seconds=15' >/dev/null
lab_transfer b a 5
lab_website_ctl 'fault?kind=close&seconds=5' >/dev/null
lab_transfer a b 5
lab_website_ctl 'fault?kind=delay&ms=3000&seconds=10' >/dev/null
lab_transfer b a 5
lab_website_ctl reset >/dev/null
# no retry storm: at most ~4 requests per second per party over the run
n=$(grep -c '"path": "/api/' "$LAB_DIR/website.jsonl")
log "website saw $n API requests"
check_no_secrets
lab_proxy_stop_all
pass
