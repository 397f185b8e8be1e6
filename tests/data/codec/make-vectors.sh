#!/bin/sh
# Regenerates the known-answer vectors for tests/scenarios/codec_encryption.rs with tools that
# share no code with podbank: the openssl CLI (aescbc) and python3 `cryptography`
# (aesgcm). Input: the real kube-apiserver v1.32 etcd value of a PVC.
# Run from this directory: sh make-vectors.sh
set -eu
PLAIN=../fixtures/apiserver-v1.32/persistentvolumeclaims_demo_data-pvc.pb
# aescbc: key 00..1f (AES-256), IV a0..af; value = prefix || IV || AES-CBC(PKCS#7)
KEY=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
IV=a0a1a2a3a4a5a6a7a8a9aaabacadaeaf
{ printf 'k8s:enc:aescbc:v1:key1:'; printf '%s' "$IV" | xxd -r -p;
  openssl enc -aes-256-cbc -K "$KEY" -iv "$IV" -in "$PLAIN"; } > aescbc_data-pvc.etcd
# aesgcm: key 20..3f (AES-256), nonce b0..bb; AAD = the etcd key
python3 - "$PLAIN" <<'PY'
import sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
plain = open(sys.argv[1], "rb").read()
key = bytes(range(0x20, 0x40))
nonce = bytes(range(0xb0, 0xbc))
aad = b"/registry/persistentvolumeclaims/demo/data-pvc"
ct = AESGCM(key).encrypt(nonce, plain, aad)
open("aesgcm_data-pvc.etcd", "wb").write(b"k8s:enc:aesgcm:v1:key1:" + nonce + ct)
PY
