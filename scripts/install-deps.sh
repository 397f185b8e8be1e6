#!/bin/bash
# Install what podbank's build and tests need on Debian (bookworm): etcd, protoc, and the
# real OpenStack services the tests run against (Swift with s3api, Cinder with Keystone), and
# Karbor's own client (python-karborclient 2.1.0, in a virtualenv) that drives the Karbor API.
# Idempotent. Needs root (or sudo).
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
need=""
for p in etcd-server etcd-client protobuf-compiler libprotobuf-dev curl python3 python3-venv; do
  dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"
done
if [ -n "$need" ]; then
  echo "install-deps: apt-get install$need (apt-get update first; a minute or two)"
  $SUDO apt-get -o DPkg::Lock::Timeout=900 update -q
  $SUDO apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends $need
else
  echo "install-deps: etcd, protoc, curl, python3 already installed"
fi
# Debian's etcd-server package starts a system etcd on :2379; podbank's tests start their own.
if [ "${1:-}" != "--no-rigs" ]; then
  for rig in tests/rig/swift tests/rig/cinder; do
    if [ -f "$rig/install.sh" ]; then
      echo "install-deps: $rig/install.sh (the OpenStack packages of that rig)"
      $SUDO bash "$rig/install.sh"
    fi
  done
fi
# python-karborclient 2.1.0 for tests/scenarios/karbor_api.rs (PODBANK_TEST_KARBORCLIENT).
if [ "${1:-}" != "--no-rigs" ]; then
  KARBOR_VENV=${PODBANK_KARBOR_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/podbank/venv-karbor}
  if ! "$KARBOR_VENV/bin/pip" show python-karborclient 2>/dev/null | grep -qx 'Version: 2.1.0'; then
    echo "install-deps: python-karborclient 2.1.0 into $KARBOR_VENV (pip)"
    mkdir -p "$(dirname "$KARBOR_VENV")"
    python3 -m venv "$KARBOR_VENV"
    "$KARBOR_VENV/bin/pip" install -q python-karborclient==2.1.0
  fi
fi
echo "install-deps: podbank dependencies installed"
