#!/bin/bash
# shellcheck disable=SC2119,SC2317 # optional arguments; functions run via wait_until
# `sfkit-proxy identity`: key created 0600 on first use, a stable 64-hex pin,
# the pin matches the key, and the private key never shows in any output.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

cd "$T" || fail "cd $T"
make_pair # runs `identity` for both parties (creating p0.key, p1.key)

# every output of the daemon goes through these files
run_identity() {
  timeout 30 "$SFKIT_PROXY" identity -c "$1" >"$2.stdout" 2>"$2.err" </dev/null
  RC=$?
  check_sanitizer_log "$2.err" "identity -c $1"
}

free_port P2_SOCKS tcp
free_port P2_UDP udp
write_config p2.yaml 2 "$P2_SOCKS" "$P2_UDP" p2.key "0,$P0_UDP,$P0_PIN"
[ ! -e p2.key ] || fail "p2.key exists before the test"
run_identity p2.yaml first
[ "$RC" = 0 ] || fail "identity (new key): exit $RC: $(cat first.err)"
[ -f p2.key ] || fail "identity did not create the key file p2.key"
mode=$(stat -c %a p2.key)
[ "$mode" = 600 ] || fail "key file mode is $mode (expected 600)"
pin1=$(cat first.stdout)
[ "$(wc -l <first.stdout)" = 1 ] || fail "identity printed more than the pin on stdout: $(cat first.stdout)"
[[ $pin1 =~ ^[0-9a-f]{64}$ ]] || fail "identity printed '$pin1', not 64 lowercase hex"
keysum=$(sha_file p2.key)

run_identity p2.yaml second
[ "$RC" = 0 ] || fail "identity (existing key): exit $RC"
pin2=$(cat second.stdout)
[ "$pin1" = "$pin2" ] || fail "the pin changed between two runs: $pin1 / $pin2"
[ "$(sha_file p2.key)" = "$keysum" ] || fail "the second run rewrote the key file"
if [ "$pin1" = "$P1_PIN" ] || [ "$pin1" = "$P0_PIN" ]; then fail "two keys, one pin"; fi
log "pin $pin1"

# The pin is the SHA-256 of the DER SubjectPublicKeyInfo (SPEC). certtool
# (gnutls-bin) prints it as base64 "pin-sha256".
need certtool
if certtool --key-info --infile p2.key >certtool.txt 2>certtool.err; then
  b64=$(grep -o 'pin-sha256:[A-Za-z0-9+/=]*' certtool.txt | head -n 1 | cut -d: -f2)
  [ -n "$b64" ] || fail "certtool printed no pin-sha256"
  hex=$(printf '%s' "$b64" | base64 -d | od -An -v -tx1 | tr -d ' \n')
  [ "$hex" = "$pin1" ] || fail "pin $pin1 is not the SPKI SHA-256 of the key ($hex)"
  log "pin matches certtool's SPKI pin-sha256"
else
  echo "NOTE: certtool cannot read p2.key ($(head -n 1 certtool.err)); pin not cross-checked" >&2
fi

# Run the daemon with the most verbose log; its ready line shows the same pin.
start_proxy p0 p0.yaml -v -v -v
start_proxy p1 p1.yaml -v -v -v
[ "$(ready_pin p0)" = "$P0_PIN" ] || fail "ready line pin '$(ready_pin p0)' differs from identity's $P0_PIN"
[ "$(ready_pin p1)" = "$P1_PIN" ] || fail "ready line pin '$(ready_pin p1)' differs from identity's $P1_PIN"
run_identity p0.yaml third # while the daemon runs
[ "$(cat third.stdout)" = "$P0_PIN" ] || fail "identity while running printed another pin"
run_cli_check() {
  timeout 30 "$SFKIT_PROXY" --check-config -c p0.yaml -v -v -v >check.stdout 2>check.err </dev/null
}
run_cli_check || fail "--check-config on p0.yaml failed"
stop_all

# The key's secret material must appear in no output: look for every base64
# line of a PEM body, or for the raw key in base64 and hex otherwise.
outputs=(*.stdout *.err *.log *.out)
for key in p0.key p1.key p2.key; do
  if grep -q -- '-----BEGIN' "$key"; then
    grep -v -- '-----' "$key" | awk 'length($0) >= 16' >needles.txt
  else
    base64 -w0 "$key" | fold -w 24 | awk 'length($0) == 24' >needles.txt
    od -An -v -tx1 "$key" | tr -d ' \n' | fold -w 32 | awk 'length($0) == 32' >>needles.txt
  fi
  [ -s needles.txt ] || fail "cannot read the key body of $key"
  while IFS= read -r needle; do
    if grep -qF -- "$needle" "${outputs[@]}" 2>/dev/null; then
      fail "the private key $key appears in the output ($(grep -lF -- "$needle" "${outputs[@]}" | tr '\n' ' '))"
    fi
  done <needles.txt
  log "$key body ($(wc -l <needles.txt) pieces) found in none of ${#outputs[@]} outputs"
done

# A corrupt key file is an error, never silently replaced.
printf 'not a key\n' >p2.key
chmod 600 p2.key
run_identity p2.yaml corrupt
[ "$RC" != 0 ] || fail "identity accepted a corrupt key file (printed $(cat corrupt.stdout))"
[ "$(cat p2.key)" = "not a key" ] || fail "identity replaced a corrupt key file"
[ -s corrupt.err ] || fail "identity failed on a corrupt key without a message"
log "corrupt key: exit $RC: $(head -n 1 corrupt.err)"

pass
