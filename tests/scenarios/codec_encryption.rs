//! Encryption at rest and the error for every kind of unreadable value.
//!
//! Round trips prove podbank reads what it writes; the known-answer vectors in
//! `tests/data/codec/` (made by openssl and python `cryptography`, see
//! `make-vectors.sh`) and the NaCl secretbox vector from golang.org/x/crypto (the
//! library kube-apiserver uses) prove the format is kube-apiserver's, not just
//! self-consistent.

use std::path::PathBuf;

use k8s_pb::api::core::v1::{PersistentVolumeClaim, Pod};
use podbank::codec::{CodecError, Decoder, EncryptionConfig, ProtobufPart};

const PVC_KEY: &[u8] = b"/registry/persistentvolumeclaims/demo/data-pvc";
const POD_KEY: &[u8] = b"/registry/pods/demo/web-with-pvc";

fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/fixtures/apiserver-v1.32")
}

fn read(path: PathBuf) -> Vec<u8> {
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn pvc_plain() -> Vec<u8> {
    read(testdata().join("persistentvolumeclaims_demo_data-pvc.pb"))
}

fn pod_plain() -> Vec<u8> {
    read(testdata().join("pods_demo_web-with-pvc.pb"))
}

fn vector(name: &str) -> Vec<u8> {
    read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/codec")
            .join(name),
    )
}

/// One provider (then identity) for every resource.
fn config(provider: &str, secret: &str) -> EncryptionConfig {
    EncryptionConfig::from_yaml(&format!(
        r#"
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: ["pods", "persistentvolumeclaims", "persistentvolumes"]
    providers:
      - {provider}:
          keys:
            - name: key1
              secret: {secret}
      - identity: {{}}
"#
    ))
    .expect("valid configuration")
}

const KEY_00_1F: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const KEY_20_3F: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
const KEY_40_5F: &str = "QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8=";
const KEY_AES128: &str = "YGFiY2RlZmdoaWprbG1ubw==";

#[test]
fn round_trip_every_provider_and_key_size() {
    let plain = pod_plain();
    for (provider, secret) in [
        ("aescbc", KEY_00_1F),
        ("aescbc", KEY_AES128),
        ("aesgcm", KEY_20_3F),
        ("aesgcm", KEY_AES128),
        ("secretbox", KEY_40_5F),
    ] {
        let cfg = config(provider, secret);
        let sealed = cfg.encrypt(POD_KEY, "pods", &plain).unwrap();
        let prefix = format!("k8s:enc:{provider}:v1:key1:");
        assert!(sealed.starts_with(prefix.as_bytes()), "{provider}");
        assert!(
            !sealed.windows(12).any(|w| w == b"web-with-pvc"),
            "{provider} leaks plaintext"
        );
        let obj = Decoder::new(Some(cfg)).decode(POD_KEY, &sealed).unwrap();
        assert_eq!(obj.plain(), plain.as_slice(), "{provider}");
        let pod: Pod = obj.decode_protobuf().unwrap();
        assert_eq!(pod.metadata.unwrap().name.as_deref(), Some("web-with-pvc"));
    }
}

#[test]
fn identity_first_writes_plain_and_plain_values_need_no_config() {
    let cfg = EncryptionConfig::from_yaml(&format!(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n\
         - resources: [pods]\n  providers:\n  - identity: {{}}\n  - aescbc:\n      keys: [{{name: k, secret: {KEY_00_1F}}}]\n"
    ))
    .unwrap();
    assert_eq!(
        cfg.encrypt(POD_KEY, "pods", &pod_plain()).unwrap(),
        pod_plain()
    );
    // A resource with no entry is not encrypted either.
    assert_eq!(
        cfg.encrypt(b"/registry/x/y", "secrets", b"{}").unwrap(),
        b"{}"
    );
    let obj = Decoder::new(None).decode(POD_KEY, &pod_plain()).unwrap();
    assert_eq!(obj.kind(), "Pod");
}

#[test]
fn aescbc_known_answer_from_openssl() {
    let cfg = config("aescbc", KEY_00_1F);
    let value = vector("aescbc_data-pvc.etcd");
    let obj = Decoder::new(Some(cfg.clone()))
        .decode(PVC_KEY, &value)
        .unwrap();
    assert_eq!(obj.plain(), pvc_plain().as_slice());
    let pvc: PersistentVolumeClaim = obj.decode_protobuf().unwrap();
    assert_eq!(pvc.metadata.unwrap().name.as_deref(), Some("data-pvc"));
    // aescbc does not bind the etcd key: the same value reads under another key.
    assert!(Decoder::new(Some(cfg))
        .decode(b"/registry/persistentvolumeclaims/x/y", &value)
        .is_ok());
}

#[test]
fn aesgcm_known_answer_from_python_cryptography_and_aad_is_the_etcd_key() {
    let decoder = Decoder::new(Some(config("aesgcm", KEY_20_3F)));
    let value = vector("aesgcm_data-pvc.etcd");
    let obj = decoder.decode(PVC_KEY, &value).unwrap();
    assert_eq!(obj.plain(), pvc_plain().as_slice());
    // The same bytes under another etcd key fail authentication.
    let other = b"/registry/persistentvolumeclaims/demo/other";
    let err = decoder.decode(other, &value).unwrap_err();
    assert!(matches!(err, CodecError::DecryptionFailed { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("/registry/persistentvolumeclaims/demo/other"),
        "{err}"
    );
}

#[test]
fn secretbox_known_answer_from_nacl() {
    // golang.org/x/crypto/nacl/secretbox TestSecretBox: key 32 x 0x01, nonce 24 x 0x02,
    // message 64 x 0x03; expected box "generated using the C implementation of NaCl".
    let boxed = hex::decode(
        "8442bc313f4626f1359e3b50122b6ce6fe66ddfe7d39d14e637eb4fd5b45beadab55198df6ab5368439792a2\
         3c87db70acb6156dc5ef957ac04f6276cf6093b84be77ff0849cc33e34b7254d5a8f65ad",
    )
    .unwrap();
    let mut value = b"k8s:enc:secretbox:v1:key1:".to_vec();
    value.extend_from_slice(&[2u8; 24]);
    value.extend_from_slice(&boxed);
    let cfg = config("secretbox", "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=");
    assert_eq!(
        cfg.decrypt(b"/registry/pods/a/b", &value).unwrap(),
        vec![3u8; 64]
    );
    // One flipped bit fails authentication.
    let last = value.len() - 1;
    value[last] ^= 1;
    assert!(matches!(
        cfg.decrypt(b"/registry/pods/a/b", &value),
        Err(CodecError::DecryptionFailed { .. })
    ));
}

#[test]
fn wrong_secret_fails_decryption() {
    let decoder = Decoder::new(Some(config("aesgcm", KEY_00_1F)));
    let err = decoder
        .decode(PVC_KEY, &vector("aesgcm_data-pvc.etcd"))
        .unwrap_err();
    assert!(matches!(err, CodecError::DecryptionFailed { .. }), "{err}");
    let decoder = Decoder::new(Some(config("aescbc", KEY_20_3F)));
    let err = decoder
        .decode(PVC_KEY, &vector("aescbc_data-pvc.etcd"))
        .unwrap_err();
    assert!(matches!(err, CodecError::DecryptionFailed { .. }), "{err}");
    let mut short = b"k8s:enc:aesgcm:v1:key1:".to_vec();
    short.extend_from_slice(&[0; 10]);
    let decoder = Decoder::new(Some(config("aesgcm", KEY_00_1F)));
    let err = decoder.decode(PVC_KEY, &short).unwrap_err();
    assert!(err.to_string().contains("shorter"), "{err}");
}

#[test]
fn decrypting_to_something_that_is_not_an_object_is_a_decryption_failure() {
    let cfg = config("aescbc", KEY_00_1F);
    let sealed = cfg
        .encrypt(POD_KEY, "pods", b"not a kubernetes value")
        .unwrap();
    let err = Decoder::new(Some(cfg))
        .decode(POD_KEY, &sealed)
        .unwrap_err();
    assert!(matches!(err, CodecError::DecryptionFailed { .. }), "{err}");
    assert!(err.to_string().contains("key1"), "{err}");
}

#[test]
fn key_name_not_in_config_has_its_own_error() {
    let decoder = Decoder::new(Some(config("aescbc", KEY_00_1F)));
    let mut value = vector("aescbc_data-pvc.etcd");
    value.splice(18..22, b"old7".iter().copied()); // key1 -> old7
    let err = decoder.decode(PVC_KEY, &value).unwrap_err();
    match &err {
        CodecError::UnknownEncryptionKey {
            key,
            provider,
            key_name,
        } => {
            assert_eq!(key, "/registry/persistentvolumeclaims/demo/data-pvc");
            assert_eq!((provider.as_str(), key_name.as_str()), ("aescbc", "old7"));
        }
        other => panic!("unexpected {other}"),
    }
    // A provider type the configuration does not list at all: same error.
    let err = Decoder::new(Some(config("secretbox", KEY_40_5F)))
        .decode(PVC_KEY, &vector("aesgcm_data-pvc.etcd"))
        .unwrap_err();
    assert!(
        matches!(err, CodecError::UnknownEncryptionKey { .. }),
        "{err}"
    );
}

#[test]
fn encrypted_value_without_config_asks_for_it() {
    let err = Decoder::new(None)
        .decode(PVC_KEY, &vector("aescbc_data-pvc.etcd"))
        .unwrap_err();
    assert!(
        matches!(err, CodecError::EncryptionConfigNeeded { .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains("--encryption-provider-config"), "{msg}");
    assert!(msg.contains("key1") && msg.contains("aescbc"), "{msg}");
    assert!(
        msg.contains("/registry/persistentvolumeclaims/demo/data-pvc"),
        "{msg}"
    );
}

#[test]
fn kms_values_are_refused_naming_the_provider() {
    for (version, decoder) in [
        ("v1", Decoder::new(None)),
        ("v2", Decoder::new(Some(config("aesgcm", KEY_00_1F)))),
    ] {
        let value = format!("k8s:enc:kms:{version}:vault-kms:\x0a\x05opaque");
        let err = decoder.decode(POD_KEY, value.as_bytes()).unwrap_err();
        match &err {
            CodecError::KmsEncrypted {
                key,
                version: v,
                provider_name,
            } => {
                assert_eq!(key, "/registry/pods/demo/web-with-pvc");
                assert_eq!((v.as_str(), provider_name.as_str()), (version, "vault-kms"));
            }
            other => panic!("unexpected {other}"),
        }
        assert!(
            err.to_string().contains("cannot read KMS-encrypted"),
            "{err}"
        );
    }
}

#[test]
fn garbage_truncated_and_misplaced_magic_each_have_their_own_error() {
    let decoder = Decoder::new(None);
    let key = b"/registry/pods/demo/broken";
    let named =
        |e: &CodecError| assert!(e.to_string().contains("/registry/pods/demo/broken"), "{e}");

    let err = decoder.decode(key, b"\x00\x01garbage bytes").unwrap_err();
    assert!(matches!(err, CodecError::UnknownFormat { .. }), "{err}");
    named(&err);

    let mut truncated = pod_plain();
    truncated.truncate(truncated.len() / 2);
    let err = decoder.decode(key, &truncated).unwrap_err();
    assert!(
        matches!(
            err,
            CodecError::InvalidProtobuf {
                part: ProtobufPart::Envelope,
                ..
            }
        ),
        "{err}"
    );
    named(&err);

    // An envelope whose object is cut: the envelope is fine, the object is not.
    let raw = {
        let obj = decoder.decode(POD_KEY, &pod_plain()).unwrap();
        obj.object_bytes()[..100].to_vec()
    };
    let cut_object = podbank::codec::encode_envelope("v1", "Pod", &raw);
    let err = decoder.decode(key, &cut_object).unwrap_err();
    assert!(
        matches!(
            err,
            CodecError::InvalidProtobuf {
                part: ProtobufPart::Object,
                ..
            }
        ),
        "{err}"
    );
    named(&err);

    let mut shifted = b"\n\n".to_vec();
    shifted.extend_from_slice(&pod_plain());
    let err = decoder.decode(key, &shifted).unwrap_err();
    assert!(
        matches!(err, CodecError::MagicAtWrongOffset { offset: 2, .. }),
        "{err}"
    );
    named(&err);

    let err = decoder.decode(key, b"k8s:enc:rot13:v1:k:abc").unwrap_err();
    assert!(matches!(err, CodecError::UnknownFormat { .. }), "{err}");
    named(&err);
}

#[test]
fn configuration_files_and_the_old_format() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("enc.yaml");
    std::fs::write(
        &path,
        format!(
            "kind: EncryptionConfig\napiVersion: v1\nresources:\n  - resources: [persistentvolumeclaims]\n    providers:\n    - aescbc:\n        keys:\n        - name: key1\n          secret: {KEY_00_1F}\n"
        ),
    )
    .unwrap();
    let cfg = EncryptionConfig::from_file(&path).unwrap();
    let obj = Decoder::new(Some(cfg))
        .decode(PVC_KEY, &vector("aescbc_data-pvc.etcd"))
        .unwrap();
    assert_eq!(obj.kind(), "PersistentVolumeClaim");

    let missing = EncryptionConfig::from_file(&dir.path().join("nope.yaml")).unwrap_err();
    assert!(missing.to_string().contains("nope.yaml"), "{missing}");
    let bad = EncryptionConfig::from_yaml("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [pods]\n  providers:\n  - aescbc:\n      keys: [{name: k, secret: '!!notbase64'}]\n").unwrap_err();
    assert!(bad.to_string().contains("base64"), "{bad}");
}
