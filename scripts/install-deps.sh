#!/bin/bash
# Install every Debian 12 package needed to build and test sfkit-proxy.
# Only what is missing is installed; apt-get update runs once, and only then.
# Works as root (or through sudo), non-interactively.
set -euo pipefail

PACKAGES=(
  # build
  build-essential autoconf automake libtool pkg-config autoconf-archive
  libev-dev libngtcp2-dev libngtcp2-crypto-gnutls-dev libgnutls28-dev
  libcurl4-gnutls-dev libyaml-dev libjansson-dev
  # sanitizer build, analysis
  clang libclang-rt-14-dev valgrind cppcheck
  # integration tests
  python3 curl ncat proxychains4 gnutls-bin procps iproute2 util-linux
  openssh-client openssh-server gnuplot-nox
  # NAT lab (tests/natlab), stun_discovery.sh, netcheck.sh: namespaces,
  # NAT, a real STUN/TURN server
  coturn iptables conntrack ethtool
  # WAN benchmark (bench/wan, make bench-wan): the NFQUEUE delay line, ping
  libnetfilter-queue-dev iputils-ping
)

installed() {
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

missing=()
for p in "${PACKAGES[@]}"; do
  installed "$p" || missing+=("$p")
done

if [ "${#missing[@]}" = 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages are installed"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=()
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || {
    echo "install-deps: not root and no sudo; install as root: apt-get install ${missing[*]}" >&2
    exit 1
  }
  SUDO=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -q </dev/null
"${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null

still=()
for p in "${missing[@]}"; do
  installed "$p" || still+=("$p")
done
if [ "${#still[@]}" != 0 ]; then
  echo "install-deps: still missing: ${still[*]}" >&2
  exit 1
fi
echo "install-deps: done"
