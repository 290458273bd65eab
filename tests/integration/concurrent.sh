#!/bin/bash
# shellcheck disable=SC2119,SC2317 # optional arguments; functions run via wait_until
# 100 concurrent connections (plus 20 the other way) through the proxies,
# each moving its own data through an echo service; every sha256 correct.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
need ncat ss

cd "$T" || fail "cd $T"
N1=${SFK_CONCURRENT:-100} # via party 1 to party 0
N0=20                     # via party 0 to party 1, at the same time
KIB=512

start_echo_pair

mkdir io
for ((i = 0; i < N1 + N0; i++)); do
  head -c $((KIB * 1024)) /dev/urandom >"io/in.$i"
done

# One ncat per connection; each writes its exit status to io/rc.I. Its data
# waits behind a one-byte gate on the FIFO `go`, so that every connection is
# open before any data moves.
mkfifo go || fail "mkfifo"
exec 9<>go
client() {
  local i=$1 sp=$2 addr=$3 port=$4
  { read -r -n 1 _ <go; cat "io/in.$i"; } |
    timeout 180 ncat --proxy "127.0.0.1:$sp" --proxy-type socks5 "$addr" "$port" \
      >"io/out.$i" 2>"io/err.$i"
  echo $? >"io/rc.$i"
}
# established PORT: number of established TCP connections to local port PORT
established() { ss -Htn state established "( sport = :$1 )" | wc -l; }
all_open() { [ "$(established "$E0")" -ge "$N1" ] && [ "$(established "$E1")" -ge "$N0" ]; }

pids=()
for ((i = 0; i < N1 + N0; i++)); do
  if ((i < N1)); then
    client "$i" "$P1_SOCKS" 10.0.0.0 "$E0" &
  else
    client "$i" "$P0_SOCKS" 10.0.0.1 "$E1" &
  fi
  pids+=($!)
done
track "${pids[@]}"
wait_until 60 all_open ||
  fail "after 60 s only $(established "$E0") of $N1 and $(established "$E1") of $N0 connections are open"
log "$(established "$E0") + $(established "$E1") connections open at once; data starts"
t0=$(now)
printf '%*s' $((N1 + N0)) '' >&9
wait "${pids[@]}"
dt=$(elapsed "$t0")
exec 9>&-

sha256sum io/in.* io/out.* 2>/dev/null | sed 's|  io/| |' >sums
bad=0
for ((i = 0; i < N1 + N0; i++)); do
  rc=$(cat "io/rc.$i" 2>/dev/null || echo none)
  if [ "$rc" != 0 ]; then
    bad=$((bad + 1))
    echo "connection $i: ncat status $rc: $(head -c 300 "io/err.$i")" >&2
  elif [ "$(awk -v f="in.$i" '$2 == f {print $1}' sums)" != "$(awk -v f="out.$i" '$2 == f {print $1}' sums)" ]; then
    bad=$((bad + 1))
    echo "connection $i: sha256 differs ($(file_size "io/out.$i") of $((KIB * 1024)) bytes back)" >&2
  fi
done
[ "$bad" = 0 ] || fail "$bad of $((N1 + N0)) concurrent connections failed"
log "$((N1 + N0)) concurrent connections ($N1 via party 1, $N0 via party 0), $KIB KiB each way each: all sha256 equal in $dt s"

stop_all
pass
