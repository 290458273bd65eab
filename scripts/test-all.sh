#!/bin/bash
# The test command: install the Debian packages, build and `make check` in
# build/, the same with ASan+UBSan in build-san/ (with clang also the
# libFuzzer targets, whose smoke runs join its `make check`: about 1.5 min),
# then `make distcheck`.
# The last line is the union summary "N passed, N failed" (failed counts
# FAIL, ERROR and XPASS of both test suites; a build that fails counts as one
# failed test, and distcheck as one test). Exit status 0 only if nothing failed.
#
#   scripts/test-all.sh            # from anywhere in the repo
#   SFK_SKIP_DEPS=1 scripts/test-all.sh   # do not run install-deps.sh
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
JOBS=${JOBS:-2}
export LC_ALL=C

passed=0
failed=0
skipped=0
problems=()

stage() {
  echo
  echo "=== $(date +%H:%M:%S) $* ==="
}

# stage_failed WHAT: a step that is not a test failed; it counts as one.
stage_failed() {
  echo "*** FAILED: $1" >&2
  failed=$((failed + 1))
  problems+=("$1")
}

summary_and_exit() {
  echo
  echo "=== $(date +%H:%M:%S) summary ==="
  if [ "${#problems[@]}" != 0 ]; then
    printf 'failed: %s\n' "${problems[@]}"
  fi
  echo "skipped: $skipped"
  echo "$passed passed, $failed failed"
  [ "$failed" = 0 ]
  exit
}

# suite_count LOG WHAT: the number on LOG's "# WHAT: N" line.
suite_count() { sed -n "s/^# $2: *\\([0-9][0-9]*\\).*/\\1/p" "$1" | head -n 1; }

# count_suite DIR: add DIR/test-suite.log's counts; print failing tests' logs.
count_suite() {
  local dir=$1 log=$1/test-suite.log pass xfail fail error xpass skip trs
  if [ ! -f "$log" ]; then
    stage_failed "make check in $dir wrote no test-suite.log"
    return
  fi
  pass=$(suite_count "$log" PASS) xfail=$(suite_count "$log" XFAIL)
  fail=$(suite_count "$log" FAIL) error=$(suite_count "$log" ERROR)
  xpass=$(suite_count "$log" XPASS) skip=$(suite_count "$log" SKIP)
  passed=$((passed + ${pass:-0} + ${xfail:-0}))
  failed=$((failed + ${fail:-0} + ${error:-0} + ${xpass:-0}))
  skipped=$((skipped + ${skip:-0}))
  echo "$dir: PASS ${pass:-0}, FAIL ${fail:-0}, ERROR ${error:-0}, XPASS ${xpass:-0}, SKIP ${skip:-0}, XFAIL ${xfail:-0}"
  while IFS= read -r trs; do
    problems+=("$dir: ${trs#"$dir"/}")
  done < <(failing_trs "$dir")
  print_failing_logs "$dir"
}

# failing_trs DIR: .trs files of tests that failed, errored or passed unexpectedly
failing_trs() {
  find "$1" -name '*.trs' -print0 2>/dev/null | xargs -0 -r grep -lE '^:test-result: (FAIL|ERROR|XPASS)' | sort
}

print_failing_logs() {
  local trs
  while IFS= read -r trs; do
    echo
    echo "----- ${trs%.trs}.log -----"
    cat "${trs%.trs}.log" 2>/dev/null || echo "(no log)"
  done < <(failing_trs "$1")
}

# build_and_check DIR CONFIGURE_ARGS...
build_and_check() {
  local dir=$1 rc
  shift
  stage "configure in $dir: $*"
  mkdir -p "$dir"
  if ! (cd "$dir" && ../configure "$@"); then
    tail -n 40 "$dir/config.log" 2>/dev/null
    stage_failed "configure in $dir"
    return 1
  fi
  stage "make -j$JOBS in $dir"
  if ! make -C "$dir" -j"$JOBS"; then
    stage_failed "make in $dir"
    return 1
  fi
  stage "make check in $dir"
  rm -f "$dir/test-suite.log"
  make -C "$dir" check
  rc=$?
  local before=$failed
  count_suite "$dir"
  if [ "$rc" != 0 ] && [ "$failed" = "$before" ]; then
    stage_failed "make check in $dir exited $rc"
  fi
}

# --- 1. packages ---------------------------------------------------------------
if [ -z "${SFK_SKIP_DEPS:-}" ]; then
  stage "install-deps"
  bash "$ROOT/scripts/install-deps.sh" </dev/null || {
    stage_failed "scripts/install-deps.sh"
    summary_and_exit
  }
fi

# --- 2. autotools ------------------------------------------------------------------
stage "autoreconf -fi"
autoreconf -fi || {
  stage_failed "autoreconf -fi"
  summary_and_exit
}

# --- 3. the normal build ------------------------------------------------------------
build_and_check build --enable-werror
build_ok=$?

# --- 4. ASan + UBSan ------------------------------------------------------------------
SAN_CC=gcc
SAN_FUZZ=
if command -v clang >/dev/null 2>&1; then
  SAN_CC=clang
  SAN_FUZZ=--enable-fuzz # libFuzzer comes with clang: tests/fuzz/smoke.sh
fi
build_and_check build-san --enable-sanitizers --enable-werror $SAN_FUZZ CC="$SAN_CC"

# --- 5. distcheck --------------------------------------------------------------------
if [ "$build_ok" = 0 ]; then
  stage "make distcheck in build"
  if make -C build distcheck DISTCHECK_CONFIGURE_FLAGS=--enable-werror; then
    passed=$((passed + 1))
    echo "distcheck: OK"
  else
    stage_failed "make distcheck"
    for d in build/sfkit-proxy-*/_build; do
      [ -d "$d" ] && print_failing_logs "$d"
    done
  fi
else
  stage_failed "make distcheck (not run: the build failed)"
fi

summary_and_exit
