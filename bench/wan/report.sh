# shellcheck shell=bash
# The WAN benchmark's report, sourced by bench/wan/wan.sh: medians of
# $RES ("rtt loss path metric value" lines) as Markdown tables, and the
# chart (gnuplot) when WAN_OUT names the report file.
med() { # med RTT LOSS PATH METRIC: the median, or "-"
  awk -v r="$1" -v l="$2" -v p="$3" -v m="$4" '$1 == r && $2 == l && $3 == p && $4 == m && $5 != "" {v[n++] = $5}
    END {if (!n) {print "-"; exit}
         for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (v[j] < v[i]) {t = v[i]; v[i] = v[j]; v[j] = t}
         x = (n % 2) ? v[int(n / 2)] : (v[n / 2 - 1] + v[n / 2]) / 2; printf "%.6g\n", x}' "$RES"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2fx\n", a / b}'; }
ms() { awk -v a="$1" 'BEGIN{if (a == "-") print "-"; else printf "%.2f\n", a / 1000}'; }
diffms() { awk -v a="$1" -v b="$2" 'BEGIN{if (a == "-" || b == "-") print "-"; else printf "%+.2f\n", (a - b) / 1000}'; }

report() {
  local r l p
  echo "Machine: $(nproc) vCPUs, $(uname -r); $(date -u +%Y-%m-%d); rate $WAN_RATE;"
  echo "repetitions: $REPS, bulk cells $SECS s; proxy transport extra: ${WAN_PROXY_EXTRA:-(defaults)}."
  echo
  echo "### Throughput (Mbit/s the receiver got; ratio = sfkit-proxy / direct TCP)"
  echo
  echo "| RTT ms | loss % | conns | direct TCP | ssh -D | sfkit-proxy | ratio |"
  echo "|---:|---:|---:|---:|---:|---:|---:|"
  for r in $RTTS; do for l in $LOSSES; do for c in 1 8; do
    local d s x
    [ "$(med "$r" "$l" direct "bulk$c")" = - ] && [ "$(med "$r" "$l" proxy "bulk$c")" = - ] && continue
    d=$(med "$r" "$l" direct "bulk$c"); s=$(med "$r" "$l" ssh "bulk$c"); x=$(med "$r" "$l" proxy "bulk$c")
    echo "| $r | $l | $c | $d | $s | $x | $(ratio "$x" "$d") |"
  done; done; done
  echo
  echo "### Latency at loss 0 (ms; added = over direct TCP)"
  echo
  echo "| RTT ms | ping (link) | direct p50 / p99 | ssh -D p50 / p99 | sfkit-proxy p50 / p99 | added p50 | under load p50: direct / ssh / sfkit | bulk beside it, Mbit/s: direct / ssh / sfkit | setup p50: direct / ssh / sfkit | sfkit connect p50 |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for r in $RTTS; do
    echo "| $r | $(med "$r" 0 link ping_ms) | $(ms "$(med "$r" 0 direct ping_p50)") / $(ms "$(med "$r" 0 direct ping_p99)") | $(ms "$(med "$r" 0 ssh ping_p50)") / $(ms "$(med "$r" 0 ssh ping_p99)") | $(ms "$(med "$r" 0 proxy ping_p50)") / $(ms "$(med "$r" 0 proxy ping_p99)") | $(diffms "$(med "$r" 0 proxy ping_p50)" "$(med "$r" 0 direct ping_p50)") | $(ms "$(med "$r" 0 direct loaded_p50)") / $(ms "$(med "$r" 0 ssh loaded_p50)") / $(ms "$(med "$r" 0 proxy loaded_p50)") | $(med "$r" 0 direct loaded_mbps) / $(med "$r" 0 ssh loaded_mbps) / $(med "$r" 0 proxy loaded_mbps) | $(ms "$(med "$r" 0 direct setup_p50)") / $(ms "$(med "$r" 0 ssh setup_p50)") / $(ms "$(med "$r" 0 proxy setup_p50)") | $(ms "$(med "$r" 0 proxy connect_p50)") |"
  done
  echo
  echo "### Peak RSS of each proxy (KiB, largest over the setting's runs, 8-connection cells included)"
  echo
  echo "| RTT ms | loss % | party 0 (sender) | party 1 (SOCKS side) |"
  echo "|---:|---:|---:|---:|"
  for r in $RTTS; do for l in $LOSSES; do
    [ "$(med "$r" "$l" proxy rss0_kib)" = - ] && continue
    echo "| $r | $l | $(med "$r" "$l" proxy rss0_kib) | $(med "$r" "$l" proxy rss1_kib) |"
  done; done
}

report | tee "$WAN_DIR/report.md"
echo
echo "raw results:"
cat "$RES"
if [ -n "${WAN_OUT:-}" ]; then
  # The file's introduction (up to the "Machine:" line) stays.
  { [ -f "$WAN_OUT" ] && sed '/^Machine: /,$d' "$WAN_OUT"; cat "$WAN_DIR/report.md"; } >"$WAN_DIR/out.md"
  cp "$WAN_DIR/out.md" "$WAN_OUT"
  cp "$RES" "${WAN_OUT%.md}.dat"
fi
if [ -n "${WAN_OUT:-}" ] && command -v gnuplot >/dev/null; then
  for r in $RTTS; do for l in $LOSSES; do
    [ "$(med "$r" "$l" direct bulk1)" = - ] && continue
    printf '"%s ms, %s %%"' "$r" "$l"
    for c in 1 8; do for p in direct ssh proxy; do
      x=$(med "$r" "$l" "$p" "bulk$c"); [ "$x" = - ] && x=0
      printf ' %s' "$x"
    done; done
    echo
  done; done >"$WAN_DIR/chart.dat"
  gnuplot -e "data='$WAN_DIR/chart.dat'; out='${WAN_OUT%.md}.png'" "$SRC/bench/wan/chart.gp" ||
    echo "wan: gnuplot failed" >&2
fi
