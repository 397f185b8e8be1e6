//! Encryption at rest, as kube-apiserver does it: the EncryptionConfiguration file
//! (`--encryption-provider-config`) and the `aescbc`, `aesgcm` and `secretbox` value
//! formats. KMS values are recognised and refused (podbank cannot call a KMS plugin).
//!
//! Value format: `k8s:enc:<provider>:v1:<key name>:<data>`. The formats and their
//! authenticated-data rules follow kube-apiserver's transformers
//! (kubernetes/kubernetes, `staging/src/k8s.io/apiserver/pkg/storage/value/encrypt/`):
//!
//! * `aesgcm` (`aes/aes.go`, `gcm`): `data` = 12-byte random nonce || AES-GCM ciphertext
//!   and 16-byte tag. The additional authenticated data is the full etcd key
//!   (`etcd3/store.go` passes `authenticatedDataString(preparedKey)`, i.e. the key with
//!   the `--etcd-prefix`), so a value copied to another key does not decrypt.
//! * `aescbc` (`aes/aes.go`, `cbc`): `data` = 16-byte random IV || AES-CBC ciphertext
//!   of the value with PKCS#7 padding. No authentication, no authenticated data.
//! * `secretbox` (`secretbox/secretbox.go`): `data` = 24-byte random nonce || NaCl
//!   secretbox (XSalsa20-Poly1305: 16-byte tag || ciphertext). Authenticated, but the
//!   etcd key is not bound to it.
//! * `kms`: `k8s:enc:kms:v1:<name>:` and `k8s:enc:kms:v2:<name>:`
//!   (`server/options/encryptionconfig/config.go`), refused with
//!   [`CodecError::KmsEncrypted`].
//!
//! AES keys may be 16, 24 or 32 bytes (AES-128/192/256), secretbox keys 32 bytes, all
//! base64 in the file. This module holds keys in memory only; its `Debug` output never
//! shows secrets. The only I/O is [`EncryptionConfig::from_file`].
//!
//! Parts: `config` parses and checks the EncryptionConfiguration file, `prefix` reads a
//! value's `k8s:enc:` prefix, `cipher` seals and opens with one key; this file resolves
//! which providers and keys apply to a value (as kube-apiserver does) and tries them.

use std::fmt;
use std::path::Path;

use super::CodecError;
use cipher::{open, seal, CipherError};
use config::{NamedKey, Provider, ResourceRule};
use prefix::EncryptedPrefix;
pub(crate) use prefix::{needs_config, prefix_names};

mod cipher;
mod config;
mod prefix;

/// The encrypting providers podbank can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CipherProvider {
    /// AES-CBC with PKCS#7 padding.
    AesCbc,
    /// AES-GCM with the etcd key as authenticated data.
    AesGcm,
    /// XSalsa20-Poly1305 (NaCl secretbox).
    Secretbox,
}

impl CipherProvider {
    /// The provider name in the configuration file and in value prefixes.
    pub fn name(self) -> &'static str {
        match self {
            CipherProvider::AesCbc => "aescbc",
            CipherProvider::AesGcm => "aesgcm",
            CipherProvider::Secretbox => "secretbox",
        }
    }

    pub(super) fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "aescbc" => CipherProvider::AesCbc,
            "aesgcm" => CipherProvider::AesGcm,
            "secretbox" => CipherProvider::Secretbox,
            _ => return None,
        })
    }

    /// The value prefix up to the key name: `k8s:enc:aescbc:v1:`.
    pub fn prefix(self) -> String {
        format!("k8s:enc:{}:v1:", self.name())
    }
}

impl fmt::Display for CipherProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A parsed kube-apiserver EncryptionConfiguration.
///
/// Accepts `apiVersion: apiserver.config.k8s.io/v1` (or `v1alpha1`) with
/// `kind: EncryptionConfiguration`, and the older `apiVersion: v1`, `kind: EncryptionConfig`.
#[derive(Debug, Clone)]
pub struct EncryptionConfig {
    source: String,
    rules: Vec<ResourceRule>,
}

impl EncryptionConfig {
    /// Read and parse the file kube-apiserver's `--encryption-provider-config` names.
    pub fn from_file(path: &Path) -> Result<Self, CodecError> {
        let source = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| CodecError::EncryptionConfig {
            source_name: source.clone(),
            reason: format!("cannot read the file: {e}"),
        })?;
        Self::parse(&source, &text)
    }

    /// Parse EncryptionConfiguration YAML (or JSON) text.
    pub fn from_yaml(text: &str) -> Result<Self, CodecError> {
        Self::parse("<inline>", text)
    }

    /// Where the configuration came from (a path or `<inline>`).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The providers kube-apiserver uses for `resource` (e.g. `pods`): an exact entry
    /// first, then `*.` (all core resources), then `*.*`, as kube-apiserver resolves them.
    fn providers_for(&self, resource: &str) -> Option<&[Provider]> {
        let exact = [resource.to_string(), format!("{resource}.")];
        let find = |pred: &dyn Fn(&str) -> bool| {
            self.rules
                .iter()
                .find(|r| r.resources.iter().any(|s| pred(s)))
                .map(|r| r.providers.as_slice())
        };
        find(&|s| exact.iter().any(|e| e == s))
            .or_else(|| find(&|s| s == "*."))
            .or_else(|| find(&|s| s == "*.*"))
    }

    /// Encrypt a plain value the way kube-apiserver writes it: with the FIRST provider
    /// configured for `resource` and that provider's first key (identity, or no entry for
    /// the resource, returns the value unchanged). Used by the seeder and tests.
    ///
    /// # Arguments
    ///
    /// * `etcd_key` - the full key the value will be stored under (authenticated by aesgcm).
    /// * `resource` - the resource name, e.g. `pods`.
    /// * `plain` - the plaintext value (`k8s\0` + envelope, or JSON).
    pub fn encrypt(
        &self,
        etcd_key: &[u8],
        resource: &str,
        plain: &[u8],
    ) -> Result<Vec<u8>, CodecError> {
        let key_text = String::from_utf8_lossy(etcd_key).into_owned();
        let err = |reason: String| CodecError::Encrypt {
            key: key_text.clone(),
            reason,
        };
        let Some(first) = self.providers_for(resource).and_then(|p| p.first()) else {
            return Ok(plain.to_vec());
        };
        match first {
            Provider::Identity => Ok(plain.to_vec()),
            Provider::Kms { name, api_version } => Err(err(format!(
                "the first provider for {resource} is KMS {api_version} ({name}); podbank cannot \
                 encrypt with KMS"
            ))),
            Provider::Cipher(cipher, keys) => {
                let key = keys
                    .first()
                    .ok_or_else(|| err(format!("{cipher} provider has no keys")))?;
                let body =
                    seal(*cipher, &key.secret, etcd_key, plain).map_err(|e| err(e.to_string()))?;
                let mut out = format!("{}{}:", cipher.prefix(), key.name).into_bytes();
                out.extend_from_slice(&body);
                Ok(out)
            }
        }
    }

    /// Decrypt a value that starts with `k8s:enc:`; the result is the plain value.
    ///
    /// Every key of the value's provider type whose name matches the value's prefix is
    /// tried (the resource's own entry first). A value that does not start with
    /// `k8s:enc:` is returned unchanged (the identity provider).
    ///
    /// # Arguments
    ///
    /// * `etcd_key` - the full etcd key (aesgcm's authenticated data; named in errors).
    /// * `value` - the stored value.
    pub fn decrypt(&self, etcd_key: &[u8], value: &[u8]) -> Result<Vec<u8>, CodecError> {
        let key = String::from_utf8_lossy(etcd_key).into_owned();
        let prefix = match EncryptedPrefix::parse(&key, value)? {
            None => return Ok(value.to_vec()),
            Some(p) => p,
        };
        let after = &value[prefix.cipher_start..];
        let resource = key.trim_start_matches('/').split('/').nth(1).unwrap_or("");
        let mut candidates: Vec<&NamedKey> = Vec::new();
        let own = self.providers_for(resource).unwrap_or(&[]);
        let all = self.rules.iter().flat_map(|r| r.providers.iter());
        for provider in own.iter().chain(all) {
            if let Provider::Cipher(c, keys) = provider {
                if *c != prefix.cipher {
                    continue;
                }
                for k in keys {
                    let matches = after.starts_with(k.name.as_bytes())
                        && after.get(k.name.len()) == Some(&b':');
                    if matches
                        && !candidates
                            .iter()
                            .any(|c| c.name == k.name && c.secret == k.secret)
                    {
                        candidates.push(k);
                    }
                }
            }
        }
        if candidates.is_empty() {
            return Err(CodecError::UnknownEncryptionKey {
                key,
                provider: prefix.cipher.name().to_string(),
                key_name: prefix.key_name,
            });
        }
        // aescbc is not authenticated: a wrong key of the same name can "succeed" with
        // garbage (valid padding by chance). Prefer a result that looks like a storage
        // value; keep the first other success as the fallback.
        let mut last_error: Option<CipherError> = None;
        let mut fallback = None;
        for k in &candidates {
            let data = &after[k.name.len() + 1..];
            match open(prefix.cipher, &k.secret, etcd_key, data) {
                Ok(plain) if looks_plain(&plain) => return Ok(plain),
                Ok(plain) => {
                    fallback.get_or_insert(plain);
                }
                Err(e) => last_error = Some(e),
            }
        }
        if let Some(plain) = fallback {
            return Ok(plain);
        }
        Err(CodecError::DecryptionFailed {
            key,
            provider: prefix.cipher.name().to_string(),
            key_name: prefix.key_name,
            reason: last_error.map(|e| e.to_string()).unwrap_or_default(),
        })
    }
}

/// Whether a decrypted value starts like a plain storage value (protobuf or JSON).
fn looks_plain(value: &[u8]) -> bool {
    value.starts_with(super::value::PROTOBUF_MAGIC) || value.first() == Some(&b'{')
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [pods]
    providers:
      - aesgcm:
          keys: [{name: g1, secret: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}]
      - identity: {}
  - resources: ["*."]
    providers:
      - secretbox:
          keys: [{name: s1, secret: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}]
  - resources: ["*.*"]
    providers:
      - identity: {}
"#;

    #[test]
    fn resolution_follows_kube_apiserver() {
        let c = EncryptionConfig::from_yaml(CONFIG).unwrap();
        let v = c.encrypt(b"/registry/pods/a/b", "pods", b"k8s\0x").unwrap();
        assert!(v.starts_with(b"k8s:enc:aesgcm:v1:g1:"));
        let v = c
            .encrypt(
                b"/registry/persistentvolumes/p",
                "persistentvolumes",
                b"k8s\0x",
            )
            .unwrap();
        assert!(v.starts_with(b"k8s:enc:secretbox:v1:s1:"));
        assert_eq!(
            c.decrypt(b"/registry/persistentvolumes/p", &v).unwrap(),
            b"k8s\0x"
        );
    }

    #[test]
    fn config_errors_are_specific() {
        let bad = CONFIG.replace("EncryptionConfiguration", "Something");
        assert!(EncryptionConfig::from_yaml(&bad)
            .unwrap_err()
            .to_string()
            .contains("kind"));
        let short = CONFIG.replace("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "AAECAwQ=");
        assert!(EncryptionConfig::from_yaml(&short)
            .unwrap_err()
            .to_string()
            .contains("bytes"));
        let debug = format!("{:?}", EncryptionConfig::from_yaml(CONFIG).unwrap());
        assert!(!debug.contains("AAECAw"), "{debug}");
    }
}
