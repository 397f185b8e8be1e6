#!/bin/bash
# Run podbank's checks and tests: format, lints, then every test, against a real etcd
# (started per test), a real Swift with s3api and a real Cinder with Keystone (started here,
# once, on 127.0.0.1, and stopped on exit). Run scripts/install-deps.sh once before.
set -euo pipefail
cd "$(dirname "$0")/.."
RIGS=${PODBANK_RIG_DIR:-$PWD/target/rigs}
mkdir -p "$RIGS"
cleanup() {
  [ -f tests/rig/swift/stop.sh ] && SWIFT_DIR=$RIGS/swift bash tests/rig/swift/stop.sh >/dev/null 2>&1 || true
  [ -f tests/rig/cinder/stop.sh ] && CINDER_DIR=$RIGS/cinder bash tests/rig/cinder/stop.sh >/dev/null 2>&1 || true
}
trap cleanup EXIT

t0=$(date +%s)
# A CI run builds once: incremental state would only take disk (gigabytes of it).
[ "${CI:-}" = true ] && export CARGO_INCREMENTAL=0
cargo fmt --all --check
cargo clippy --all-targets -- -D warnings

if [ -f tests/rig/swift/start.sh ]; then
  echo "starting Swift (tempauth + s3api) in $RIGS/swift"
  if [ -f tests/rig/cinder/start.sh ]; then
    # Also a proxy on :8081 that takes tokens of the Cinder rig's Keystone (started below).
    export SWIFT_KEYSTONE_URL=http://127.0.0.1:5000/v3
    export PODBANK_TEST_SWIFT_KEYSTONE=http://127.0.0.1:8081
  fi
  SWIFT_DIR=$RIGS/swift bash tests/rig/swift/start.sh
  export PODBANK_TEST_SWIFT=http://127.0.0.1:8080
fi
if [ -f tests/rig/cinder/start.sh ]; then
  echo "starting Cinder + Keystone in $RIGS/cinder"
  CINDER_DIR=$RIGS/cinder bash tests/rig/cinder/start.sh keystone
  export PODBANK_TEST_CINDER_DIR=$RIGS/cinder
fi

# Karbor's client, installed by scripts/install-deps.sh.
export PODBANK_TEST_KARBORCLIENT=${PODBANK_TEST_KARBORCLIENT:-${PODBANK_KARBOR_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/podbank/venv-karbor}/bin/karbor}

RUST_TEST_THREADS="${PODBANK_TEST_THREADS:-2}" cargo test --all-targets --no-fail-fast
echo "all checks passed in $(( $(date +%s) - t0 )) s"
