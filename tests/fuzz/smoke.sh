#!/bin/sh
# Smoke run of every libFuzzer target (configure --enable-fuzz): each one
# replays its seed corpus, then fuzzes for SFK_FUZZ_SECONDS (default 10)
# from it, in a scratch copy (the checked-in corpus is not changed).  Any
# finding (crash, sanitizer report, leak, timeout) fails the test.
# SKIP (77) when the targets were not built.
#
#   SFK_FUZZ_DIR=build/tests/fuzz SFK_SRCDIR=. sh tests/fuzz/smoke.sh
set -u
dir=${SFK_FUZZ_DIR:-tests/fuzz}
src=${SFK_SRCDIR:-.}
secs=${SFK_FUZZ_SECONDS:-10}
targets="socks5 cfg stream_header stun registry_json turn quic"

found=0
for t in $targets; do
  [ -x "$dir/fuzz_$t" ] && found=1
done
if [ "$found" = 0 ]; then
  echo "SKIP: no fuzz targets in $dir (configure --enable-fuzz, needs clang)"
  exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/sfk-fuzz.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
fail=0
for t in $targets; do
  bin=$dir/fuzz_$t
  if [ ! -x "$bin" ]; then
    echo "FAIL: $bin not built"
    fail=1
    continue
  fi
  seeds=$src/tests/fuzz/corpus/$t
  mkdir -p "$tmp/$t" "$tmp/$t.art"
  if [ -d "$seeds" ]; then
    cp "$seeds"/* "$tmp/$t/" 2>/dev/null
  fi
  nseeds=$(ls "$tmp/$t" | wc -l)
  if [ "$nseeds" = 0 ]; then
    echo "FAIL: $t: no seed corpus in $seeds"
    fail=1
  fi
  # The corpus replays first; then fuzzing from it.
  if "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$tmp/$t.art/" \
      "$tmp/$t" >"$tmp/$t.log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$tmp/$t.log")
    cov=$(grep -E '^#[0-9]+' "$tmp/$t.log" | tail -n 1 | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
    echo "ok: $t: $nseeds seeds, ${runs:-?} runs in ${secs}s, cov ${cov:-?}"
  else
    echo "FAIL: $t: finding (log follows)"
    tail -n 60 "$tmp/$t.log"
    for a in "$tmp/$t.art"/*; do
      [ -f "$a" ] && echo "artifact: $(basename "$a"): $(od -An -tx1 "$a" | head -n 8)"
    done
    fail=1
  fi
done
exit $fail
