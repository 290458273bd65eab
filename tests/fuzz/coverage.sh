#!/bin/bash
# Line coverage of each parser that a fuzz target reaches with its corpus.
#
#   tests/fuzz/coverage.sh [CORPUS_ROOT]     # from the source tree
#
# Builds the fuzz targets with clang's source-based coverage
# (-fprofile-instr-generate -fcoverage-mapping) in build-cov/ (a separate
# build dir; SFK_COV_BUILD overrides it), replays every corpus
# (CORPUS_ROOT/<target>/, default tests/fuzz/corpus: point it at the
# corpora a long run grew), merges the profiles with llvm-profdata and
# prints, per target, the line coverage of its parser files (llvm-cov
# report).  Needs clang, llvm-profdata, llvm-cov (any matching version;
# LLVM_PROFDATA / LLVM_COV override).  Replays only: no fuzzing.
set -euo pipefail

src=$(cd "$(dirname "$0")/../.." && pwd)
corpora=$(cd "${1:-$src/tests/fuzz/corpus}" && pwd)
build=${SFK_COV_BUILD:-$src/build-cov}
profdata=${LLVM_PROFDATA:-llvm-profdata}
cov=${LLVM_COV:-llvm-cov}
jobs=${JOBS:-2}

# target: the parser files it is there for
declare -A files=(
  [socks5]="proto/socks5.c"
  [cfg]="src/config/cfg.c src/config/config.c"
  [stream_header]="proto/stream_header.c"
  [stun]="proto/stun.c"
  [registry_json]="plugins/sfkit/sfkit_doc.c"
  [turn]="plugins/turn/turn_plugin.c plugins/turn/turn_txn.c plugins/turn/turn_alloc.c plugins/turn/turn_peer.c proto/stun.c"
  [quic]="plugins/quic/quic_plugin.c plugins/quic/quic_conn.c plugins/quic/quic_peer.c plugins/quic/quic_stream.c plugins/quic/quic_path.c plugins/quic/quic_tls.c proto/stream_header.c"
)
targets="socks5 cfg stream_header stun registry_json turn quic"

mkdir -p "$build"
if [ ! -f "$build/Makefile" ]; then
  [ -x "$src/configure" ] || (cd "$src" && autoreconf -fi)
  (cd "$build" && "$src/configure" --enable-fuzz CC=clang \
    CFLAGS="-O1 -g -fprofile-instr-generate -fcoverage-mapping" \
    LDFLAGS="-fprofile-instr-generate -fcoverage-mapping") >"$build/configure.out"
fi
make -C "$build" -j"$jobs" $(for t in $targets; do printf 'tests/fuzz/fuzz_%s ' "$t"; done) \
  >"$build/make-cov.out"

prof=$build/cov-profiles
rm -rf "$prof"
mkdir -p "$prof"
printf '%-15s %-34s %7s %7s %7s\n' target file lines missed cover
for t in $targets; do
  bin=$build/tests/fuzz/fuzz_$t
  dir=$corpora/$t
  if [ ! -d "$dir" ]; then
    echo "$t: no corpus in $dir" >&2
    continue
  fi
  n=$(find "$dir" -type f | wc -l)
  LLVM_PROFILE_FILE="$prof/$t-%p.profraw" "$bin" -runs=0 -rss_limit_mb=4096 \
    "$dir" >"$prof/$t.replay.log" 2>&1 || {
    echo "$t: replay failed (see $prof/$t.replay.log)" >&2
    continue
  }
  "$profdata" merge -sparse "$prof/$t"-*.profraw -o "$prof/$t.profdata"
  "$cov" report "$bin" -instr-profile="$prof/$t.profdata" >"$prof/$t.report"
  tl=0 tm=0
  for f in ${files[$t]}; do
    # Columns: file, regions, missed, cover, functions, missed, executed,
    # lines, missed lines, line cover, ...
    line=$(awk -v f="$f" 'index($1, f) && substr($1, length($1) - length(f) + 1) == f' \
      "$prof/$t.report" | head -n 1)
    if [ -z "$line" ]; then
      printf '%-15s %-34s %7s\n' "$t" "$f" "(not in binary)"
      continue
    fi
    set -- $line
    printf '%-15s %-34s %7s %7s %7s\n' "$t" "$f" "$8" "$9" "${10}"
    tl=$((tl + $8)) tm=$((tm + $9))
  done
  if [ "$tl" -gt 0 ]; then
    printf '%-15s %-34s %7s %7s %6s%%  (%s inputs)\n' "$t" "(parser files)" "$tl" "$tm" \
      "$(awk -v l="$tl" -v m="$tm" 'BEGIN { printf "%.1f", 100 * (l - m) / l }')" "$n"
  fi
done
