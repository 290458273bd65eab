#!/bin/bash
# shellcheck disable=SC2119 # optional arguments
# The website on HTTPS with a CA of the lab's own and in Terra mode (study_id
# on every call). Set LAB_CA_OPTION to the sfkit registry's CA bundle key
# (default ca_file) once the plugin has it.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/common.sh"

lab_init
lab_start_stun
lab_add_party a cone
lab_add_party b public
lab_make_tls_cert
lab_start_website --tls --terra
LAB_REGISTRY_EXTRA="  ${LAB_CA_OPTION:-ca_file}: $LAB_CA_CERT"
export LAB_REGISTRY_EXTRA
start_parties a b
check_published a
check_published b
! grep -q '"error": "Missing study ID"' "$LAB_DIR/website.jsonl" || fail "a call without study_id"
lab_transfer a b "$MB"
lab_transfer b a "$MB"
check_no_secrets
lab_proxy_stop_all
pass
