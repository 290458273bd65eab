#!/bin/bash
# shellcheck disable=SC2119 # optional arguments
# The website fails in every way the double can while the proxies start and
# run. First it answers 503 to every API request for 20 s from before the
# proxies start: they must come up anyway (ready, SOCKS port open), retry
# with backoff (no storm), publish as soon as it answers, find each other
# and carry traffic. Then refused connections, dropped connections and slow
# answers while connected: the established peer connection does not need
# the website.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/common.sh"
MB=${SFK_LAB_MB:-10}

lab_init
lab_start_stun
lab_add_party a cone
lab_add_party b cone
lab_start_website
lab_website_ctl 'fault?kind=status&code=503&seconds=20' >/dev/null
t0=$(now)
start_parties a b
log "both proxies ready $(elapsed "$t0") s into the 20 s of 503s"
# the 5xx answers are logged as what they are, with a retry
for n in a b; do
  line=$(wait_log "$n" 'registry\.sfkit: .*503' 15) || exit 1
  log "$n: ${line#* * }"
done
# retries back off up to 30 s (plugins/sfkit BACKOFF_MAX_MS, with jitter),
# so the last retry may come up to ~35 s after the website recovers
for n in a b; do
  lab_wait_published "$n" EXTERNAL_ADDR "^$(lab_wan_ip "$n"):$LAB_UDP_PORT\$" 60 >/dev/null || exit 1
done
check_published a
check_published b
lt 19.5 "$(elapsed "$t0")" || fail "published after $(elapsed "$t0") s, during the 503s?"
log "both published $(elapsed "$t0") s after the 503s began"
"$PY" - "$LAB_DIR/website.jsonl" "$(lab_wan_ip a)" "$(lab_wan_ip b)" <<'PYEOF' || fail "the website log does not show the 503s then 200s"
import json, sys
es = [json.loads(l) for l in open(sys.argv[1])]
es = [e for e in es if e.get("path", "").startswith("/api/")]
bad = [e for e in es if e["status"] == 503]
ok = [e for e in es if e["status"] == 200]
assert bad and ok, (len(bad), len(ok))
span = max(e["ts"] for e in bad) - min(e["ts"] for e in bad)
# a fault answers before the key is looked up: tell the parties by address
for ip in sys.argv[2:]:
    n = sum(1 for e in bad if e["client"].split(":")[0] == ip)
    # retried while it failed, with backoff: more than once, no storm
    assert 2 <= n <= 40, (ip, n)
assert span >= 8, span  # retries back off: the last 503 can be well before 20 s
print(f"{len(bad)} answers 503 over {span:.1f} s, then {len(ok)} answers 200")
PYEOF
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
