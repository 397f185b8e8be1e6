#!/bin/bash
# podbank in one command, on the embedded default: a loopback etcd and a local bank.
# Installs etcd (Debian package), builds podbank, starts etcd on 127.0.0.1:2379 (unless one
# already answers there), seeds demo pods in kube-apiserver's storage format, lists them
# with their Cinder dependents, and protects them into a local bank.
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO=${PODBANK_DEMO_DIR:-/tmp/podbank-demo}
mkdir -p "$DEMO"
# Each step says what it does when it starts and how long it took when the next one starts.
T0=$SECONDS; STEP=""; STEP_T=$SECONDS
step() {
  [ -z "$STEP" ] || echo "   ($STEP: $((SECONDS - STEP_T)) s)"
  STEP=$1; STEP_T=$SECONDS
  echo "==> $1"
}
trap 'rc=$?; [ -z "$STEP" ] || echo "   ($STEP: $((SECONDS - STEP_T)) s)"; [ $rc = 0 ] || echo "quickstart failed during: $STEP (exit $rc, after $((SECONDS - T0)) s)" >&2' EXIT
# PODBANK_QUICKSTART_BIN: a podbank binary built already (the test that runs this script);
# dependencies and the build are then skipped. PODBANK_ETCD_SERVERS: an etcd to use instead of
# the one this script starts on 127.0.0.1:2379.
if [ -n "${PODBANK_QUICKSTART_BIN:-}" ]; then
  PB=$PODBANK_QUICKSTART_BIN
else
  step "installing dependencies (etcd, protoc; apt only for what is missing)"
  bash scripts/install-deps.sh --no-rigs
  step "building podbank (release; cold, on 2 cores, this takes 10-15 minutes)"
  cargo build --release
  PB=$PWD/target/release/podbank
fi
ETCD=${PODBANK_ETCD_SERVERS:-http://127.0.0.1:2379}
export PODBANK_ETCD_SERVERS=$ETCD
export PODBANK_BANK=$DEMO/bank

step "etcd on $ETCD"
if curl -sf "$ETCD/health" >/dev/null 2>&1; then
  echo "an etcd already answers there: using it"
elif [ "$ETCD" != http://127.0.0.1:2379 ]; then
  echo "no etcd answers at $ETCD (PODBANK_ETCD_SERVERS)" >&2; exit 1
else
  echo "starting etcd on 127.0.0.1:2379 (data in $DEMO/etcd, log $DEMO/etcd.log)"
  nohup etcd --data-dir "$DEMO/etcd" \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster default=http://127.0.0.1:2380 > "$DEMO/etcd.log" 2>&1 &
  echo $! > "$DEMO/etcd.pid"
  for _ in $(seq 1 100); do curl -sf http://127.0.0.1:2379/health >/dev/null 2>&1 && break; sleep 0.1; done
  curl -sf http://127.0.0.1:2379/health >/dev/null 2>&1 || { echo "etcd did not start; see $DEMO/etcd.log" >&2; exit 1; }
fi

step "seeding demo pods (skipped when etcd has pods already)"
if [ "$($PB pods list -o json | python3 -c 'import sys,json; print(len(json.load(sys.stdin)["items"]))')" = 0 ]; then
  echo "+ podbank demo seed --pods 500 --namespaces 5"
  $PB demo seed --pods 500 --namespaces 5
fi
step "listing pods and their dependents"
echo "+ podbank pods list -n ns-0 | head"
$PB pods list -n ns-0 | head -8
echo "+ podbank pods dependents ns-0/web-20"
$PB pods dependents ns-0/web-20
echo "+ podbank pods dependents ns-3/db-3"
$PB pods dependents ns-3/db-3
step "protecting the pods into the bank"
echo "+ podbank protect --backup-name demo --description 'quickstart' --no-volume-backups   (bank: $PODBANK_BANK)"
$PB protect --backup-name demo --description quickstart --no-volume-backups
step "checkpoints: list, show, verify"
echo "+ podbank checkpoints list"
$PB checkpoints list
ID=$($PB checkpoints list -o json | python3 -c 'import sys,json; print(json.load(sys.stdin)[-1]["id"])')
echo "+ podbank checkpoints show $ID | head"
$PB checkpoints show "$ID" | head -12
echo "+ podbank checkpoints verify $ID"
$PB checkpoints verify "$ID"
step "restore dry run (a plan, nothing restored)"
# A StatefulSet's pod with a Cinder CSI claim: the plan shows its owner, the claim bound to a
# restored PV and the volume (kept as it is with --original-volumes: the checkpoint has no
# volume backups on a machine without Cinder).
echo "+ podbank restore $ID --pod ns-0/web-0 --namespace-map ns-0=restored --original-volumes --dry-run --export $DEMO/plan"
$PB restore "$ID" --pod ns-0/web-0 --namespace-map ns-0=restored --original-volumes --dry-run --export "$DEMO/plan"
step "bank stats"
echo "+ podbank bank stats"
$PB bank stats
step "done"
STEP=""
echo "quickstart took $((SECONDS - T0)) s"
[ ! -f "$DEMO/etcd.pid" ] || echo "etcd keeps running (pid file $DEMO/etcd.pid); stop it with: kill \$(cat $DEMO/etcd.pid)"
