#!/bin/bash
# shellcheck disable=SC2119,SC2317 # optional arguments; functions run via wait_until
# Party 0's service reads slowly while party 1's client pushes 200 MB: the
# proxies must push back (bounded memory, the sender held up) and the
# transfer completes once the reader speeds up.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
need ncat

cd "$T" || fail "cd $T"
MB=200
SLOW=${SFK_SLOW_SECONDS:-10}
RSS_LIMIT_KIB=$((64 * 1024))

make_pair
start_proxy p0 p0.yaml
start_proxy p1 p1.yaml
PID0=$(proxy_pid p0)
PID1=$(proxy_pid p1)
base0=$(rss_kib "$PID0")
base1=$(rss_kib "$PID1")

make_file push "$MB"
# 1 KiB per 10 ms (~100 KB/s) for $SLOW s, then full speed
start_server slow0 slow --chunk 1024 --interval 0.01 --slow-seconds "$SLOW"
t0=$(now)
ncat --proxy "127.0.0.1:$P1_SOCKS" --proxy-type socks5 --send-only 10.0.0.0 "$SERVER_PORT" <push 2>ncat.err &
NCAT=$!
track "$NCAT"

# sample memory every 200 ms until the sink has it all
LIMIT=$((SLOW + 120))
sanitized && LIMIT=$((SLOW + 400))
max0=0 max1=0 sent_slow=
while ! [ -s "$T/slow0.res" ]; do
  r0=$(rss_kib "$PID0")
  r1=$(rss_kib "$PID1")
  ((r0 > max0)) && max0=$r0
  ((r1 > max1)) && max1=$r1
  alive "$PID0" || fail "party 0's proxy died"
  alive "$PID1" || fail "party 1's proxy died"
  # how far the sender got while the reader was slow
  if [ -z "$sent_slow" ] && ! lt "$(elapsed "$t0")" "$((SLOW - 1))"; then
    sent_slow=$(awk '/^rchar:/{print $2}' "/proc/$NCAT/io" 2>/dev/null || echo gone)
    log "after $((SLOW - 1)) s of slow reading the sender has read $sent_slow bytes of $(file_size push); RSS p0 $r0 KiB, p1 $r1 KiB"
  fi
  lt "$(elapsed "$t0")" "$LIMIT" || fail "the transfer did not complete in $LIMIT s ($(awk '{print $2}' "$T/slow0.res" 2>/dev/null) bytes)"
  sleep 0.2
done
dt=$(elapsed "$t0")
wait_exit "$NCAT" 30 || fail "ncat still runs after the sink got everything"
[ "$EXIT_STATUS" = 0 ] || fail "ncat failed: $(cat ncat.err)"
read -r sum bytes <"$T/slow0.res"
[ "$bytes" = "$(file_size push)" ] || fail "the slow reader got $bytes bytes of $(file_size push)"
[ "$sum" = "$(sha_file push)" ] || fail "sha256 differs"

log "figures: $MB MiB in $dt s; RSS at start p0 $base0 KiB, p1 $base1 KiB; max p0 $max0 KiB, p1 $max1 KiB; limit $RSS_LIMIT_KIB KiB"
[ "$sent_slow" != gone ] || fail "the whole $MB MiB were taken from the sender while the reader was slow: no back-pressure"
if [ -n "$sent_slow" ] && [ "$sent_slow" -ge $((MB * 1048576 / 2)) ]; then
  fail "$sent_slow bytes were taken from the sender while the reader read ~$((SLOW * 100)) KB: no back-pressure"
fi
# once the reader is fast again the data must flow at loopback speed, not
# trickle (a congestion or flow-control window that never reopens)
rate=$(awk -v mb="$MB" -v dt="$dt" -v s="$SLOW" 'BEGIN{printf "%.1f", mb / (dt - s > 0.1 ? dt - s : 0.1)}')
log "after the slow phase: about $rate MiB/s"
if sanitized; then
  log "sanitizer build: the RSS limit and the rate are not checked"
else
  lt 5 "$rate" || fail "after the reader sped up the transfer ran at only $rate MiB/s (loopback; expected > 5)"
  ((max0 < RSS_LIMIT_KIB)) || fail "party 0's proxy grew to $max0 KiB RSS (limit $RSS_LIMIT_KIB)"
  ((max1 < RSS_LIMIT_KIB)) || fail "party 1's proxy grew to $max1 KiB RSS (limit $RSS_LIMIT_KIB)"
fi

stop_all
pass
