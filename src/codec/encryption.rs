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

use std::fmt;
use std::path::Path;

use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use base64::Engine as _;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use rand::RngCore;

use super::value::{describe_bytes, ENCRYPTED_PREFIX};
use super::CodecError;

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

    fn from_name(name: &str) -> Option<Self> {
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

/// A named key from the configuration.
#[derive(Clone)]
struct NamedKey {
    name: String,
    secret: Vec<u8>,
}

impl fmt::Debug for NamedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NamedKey({:?}, {} bytes)", self.name, self.secret.len())
    }
}

/// One entry of a `providers:` list.
#[derive(Debug, Clone)]
enum Provider {
    Identity,
    Cipher(CipherProvider, Vec<NamedKey>),
    Kms { name: String, api_version: String },
}

#[derive(Debug, Clone)]
struct ResourceRule {
    resources: Vec<String>,
    providers: Vec<Provider>,
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

mod raw {
    use serde::Deserialize;

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Config {
        pub api_version: Option<String>,
        pub kind: Option<String>,
        #[serde(default)]
        pub resources: Vec<Rule>,
    }

    #[derive(Deserialize)]
    pub struct Rule {
        #[serde(default)]
        pub resources: Vec<String>,
        #[serde(default)]
        pub providers: Vec<serde_yaml::Mapping>,
    }

    #[derive(Deserialize)]
    pub struct Keys {
        #[serde(default)]
        pub keys: Vec<Key>,
    }

    #[derive(Deserialize)]
    pub struct Key {
        pub name: String,
        pub secret: String,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Kms {
        pub name: String,
        #[serde(default)]
        pub api_version: Option<String>,
    }
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

    fn parse(source: &str, text: &str) -> Result<Self, CodecError> {
        let err = |reason: String| CodecError::EncryptionConfig {
            source_name: source.to_string(),
            reason,
        };
        let cfg: raw::Config =
            serde_yaml::from_str(text).map_err(|e| err(format!("invalid YAML: {e}")))?;
        match (cfg.api_version.as_deref(), cfg.kind.as_deref()) {
            (
                Some("apiserver.config.k8s.io/v1" | "apiserver.config.k8s.io/v1alpha1"),
                Some("EncryptionConfiguration"),
            )
            | (Some("v1"), Some("EncryptionConfig")) => {}
            (v, k) => {
                return Err(err(format!(
                    "expected apiVersion apiserver.config.k8s.io/v1 and kind \
                     EncryptionConfiguration (or the older v1 EncryptionConfig), found {} {}",
                    v.unwrap_or("<none>"),
                    k.unwrap_or("<none>")
                )))
            }
        }
        if cfg.resources.is_empty() {
            return Err(err("no `resources` entries".to_string()));
        }
        let mut rules = Vec::new();
        for (i, rule) in cfg.resources.into_iter().enumerate() {
            if rule.resources.is_empty() || rule.providers.is_empty() {
                return Err(err(format!(
                    "resources[{i}] needs both `resources` and `providers`"
                )));
            }
            let mut providers = Vec::new();
            for (j, p) in rule.providers.into_iter().enumerate() {
                let at = format!("resources[{i}].providers[{j}]");
                providers.push(parse_provider(&at, p).map_err(err)?);
            }
            rules.push(ResourceRule {
                resources: rule.resources,
                providers,
            });
        }
        Ok(EncryptionConfig {
            source: source.to_string(),
            rules,
        })
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
                let body = seal(*cipher, &key.secret, etcd_key, plain).map_err(err)?;
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
        let mut last_error = String::new();
        let mut fallback = None;
        for k in &candidates {
            let data = &after[k.name.len() + 1..];
            match open(prefix.cipher, &k.secret, etcd_key, data) {
                Ok(plain) if looks_plain(&plain) => return Ok(plain),
                Ok(plain) => {
                    fallback.get_or_insert(plain);
                }
                Err(e) => last_error = e,
            }
        }
        if let Some(plain) = fallback {
            return Ok(plain);
        }
        Err(CodecError::DecryptionFailed {
            key,
            provider: prefix.cipher.name().to_string(),
            key_name: prefix.key_name,
            reason: last_error,
        })
    }
}

/// Whether a decrypted value starts like a plain storage value (protobuf or JSON).
fn looks_plain(value: &[u8]) -> bool {
    value.starts_with(super::value::PROTOBUF_MAGIC) || value.first() == Some(&b'{')
}

/// Provider and key name from an encrypted value's prefix, for messages.
pub(crate) fn prefix_names(value: &[u8]) -> (String, String) {
    let rest = value.strip_prefix(ENCRYPTED_PREFIX).unwrap_or(value);
    let mut parts = rest.splitn(4, |&b| b == b':');
    let provider = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let _version = parts.next();
    let name = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    (provider, name)
}

/// The error for an encrypted value when no configuration was given.
pub(crate) fn needs_config(key: &str, value: &[u8]) -> CodecError {
    match EncryptedPrefix::parse(key, value) {
        Ok(Some(p)) => CodecError::EncryptionConfigNeeded {
            key: key.to_string(),
            provider: p.cipher.name().to_string(),
            key_name: p.key_name,
        },
        Ok(None) => CodecError::UnknownFormat {
            key: key.to_string(),
            detail: "not encrypted".to_string(),
        },
        Err(e) => e,
    }
}

/// The parsed `k8s:enc:<provider>:v1:<key name>:` prefix of a value.
struct EncryptedPrefix {
    cipher: CipherProvider,
    /// Key name up to the next `:` (for messages; matching uses the configured names).
    key_name: String,
    /// Offset of the key name.
    cipher_start: usize,
}

impl EncryptedPrefix {
    /// `Ok(None)` if the value is not encrypted; errors for KMS and unknown providers.
    fn parse(key: &str, value: &[u8]) -> Result<Option<EncryptedPrefix>, CodecError> {
        let Some(rest) = value.strip_prefix(ENCRYPTED_PREFIX) else {
            return Ok(None);
        };
        let mut parts = rest.splitn(4, |&b| b == b':');
        let provider = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
        let version = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
        let name = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
        let complete = parts.next().is_some();
        if provider == "kms" {
            return Err(CodecError::KmsEncrypted {
                key: key.to_string(),
                version,
                provider_name: name,
            });
        }
        let Some(cipher) = CipherProvider::from_name(&provider) else {
            return Err(CodecError::UnknownFormat {
                key: key.to_string(),
                detail: format!(
                    "encrypted by provider {provider:?}, which kube-apiserver does not have \
                     (value starts with {})",
                    describe_bytes(value, 32)
                ),
            });
        };
        if version != "v1" || !complete {
            return Err(CodecError::UnknownFormat {
                key: key.to_string(),
                detail: format!(
                    "encrypted value with a malformed prefix (expected k8s:enc:{provider}:v1:<key name>:, \
                     found {})",
                    describe_bytes(value, 48)
                ),
            });
        }
        Ok(Some(EncryptedPrefix {
            cipher,
            key_name: name,
            cipher_start: ENCRYPTED_PREFIX.len() + provider.len() + 1 + version.len() + 1,
        }))
    }
}

fn parse_provider(at: &str, map: serde_yaml::Mapping) -> Result<Provider, String> {
    if map.len() != 1 {
        return Err(format!(
            "{at}: expected exactly one of aescbc, aesgcm, secretbox, identity, kms"
        ));
    }
    let Some((name, body)) = map.into_iter().next() else {
        return Err(format!("{at}: empty provider"));
    };
    let name = name.as_str().unwrap_or_default().to_string();
    if name == "identity" {
        return Ok(Provider::Identity);
    }
    if name == "kms" {
        let kms: raw::Kms = serde_yaml::from_value(body).map_err(|e| format!("{at}.kms: {e}"))?;
        return Ok(Provider::Kms {
            name: kms.name,
            api_version: kms.api_version.unwrap_or_else(|| "v1".to_string()),
        });
    }
    let Some(cipher) = CipherProvider::from_name(&name) else {
        return Err(format!(
            "{at}: unknown provider {name:?} (expected aescbc, aesgcm, secretbox, identity or kms)"
        ));
    };
    let keys: raw::Keys = serde_yaml::from_value(body).map_err(|e| format!("{at}.{name}: {e}"))?;
    if keys.keys.is_empty() {
        return Err(format!("{at}.{name}: no keys"));
    }
    let mut out = Vec::new();
    for k in keys.keys {
        if k.name.is_empty() || k.name.contains(':') {
            return Err(format!(
                "{at}.{name}: key name {:?} is empty or has a ':'",
                k.name
            ));
        }
        let secret = base64::engine::general_purpose::STANDARD
            .decode(k.secret.trim())
            .map_err(|e| format!("{at}.{name}: key {:?}: secret is not base64: {e}", k.name))?;
        let ok = match cipher {
            CipherProvider::Secretbox => secret.len() == 32,
            _ => matches!(secret.len(), 16 | 24 | 32),
        };
        if !ok {
            return Err(format!(
                "{at}.{name}: key {:?} is {} bytes; {name} needs {}",
                k.name,
                secret.len(),
                if cipher == CipherProvider::Secretbox {
                    "32"
                } else {
                    "16, 24 or 32"
                }
            ));
        }
        out.push(NamedKey {
            name: k.name,
            secret,
        });
    }
    Ok(Provider::Cipher(cipher, out))
}

type Aes192Gcm = aes_gcm::AesGcm<aes::Aes192, aes_gcm::aead::consts::U12>;

const GCM_NONCE: usize = 12;
const CBC_IV: usize = 16;
const SECRETBOX_NONCE: usize = 24;
const SECRETBOX_TAG: usize = 16;

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::thread_rng().fill_bytes(&mut b);
    b
}

fn gcm_seal<C: Aead + KeyInit>(key: &[u8], aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, String> {
    let c = C::new_from_slice(key).map_err(|e| e.to_string())?;
    let nonce = random::<GCM_NONCE>();
    let ct = c
        .encrypt(
            GenericArray::from_slice(&nonce),
            Payload { msg: plain, aad },
        )
        .map_err(|e| e.to_string())?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    Ok(out)
}

fn gcm_open<C: Aead + KeyInit>(key: &[u8], aad: &[u8], data: &[u8]) -> Result<Vec<u8>, String> {
    if data.len() < GCM_NONCE + 16 {
        return Err(format!(
            "the stored data ({} bytes) is shorter than the 12-byte nonce and 16-byte tag",
            data.len()
        ));
    }
    let c = C::new_from_slice(key).map_err(|e| e.to_string())?;
    c.decrypt(
        GenericArray::from_slice(&data[..GCM_NONCE]),
        Payload {
            msg: &data[GCM_NONCE..],
            aad,
        },
    )
    .map_err(|_| {
        "AES-GCM authentication failed (wrong key, or the value was written under another etcd key)"
            .to_string()
    })
}

fn cbc_seal<C>(key: &[u8], plain: &[u8]) -> Result<Vec<u8>, String>
where
    cbc::Encryptor<C>: KeyIvInit + BlockEncryptMut,
    C: cbc::cipher::BlockCipher + cbc::cipher::BlockEncryptMut,
{
    let iv = random::<CBC_IV>();
    let enc = cbc::Encryptor::<C>::new_from_slices(key, &iv).map_err(|e| e.to_string())?;
    let mut out = iv.to_vec();
    out.extend_from_slice(&enc.encrypt_padded_vec_mut::<Pkcs7>(plain));
    Ok(out)
}

fn cbc_open<C>(key: &[u8], data: &[u8]) -> Result<Vec<u8>, String>
where
    cbc::Decryptor<C>: KeyIvInit + BlockDecryptMut,
    C: cbc::cipher::BlockCipher + cbc::cipher::BlockDecryptMut,
{
    if data.len() < CBC_IV {
        return Err("the stored data is shorter than the 16-byte IV".to_string());
    }
    let body = &data[CBC_IV..];
    if body.is_empty() || !body.len().is_multiple_of(16) {
        return Err(format!(
            "the ciphertext ({} bytes) is not a non-zero multiple of the 16-byte block size",
            body.len()
        ));
    }
    let dec =
        cbc::Decryptor::<C>::new_from_slices(key, &data[..CBC_IV]).map_err(|e| e.to_string())?;
    dec.decrypt_padded_vec_mut::<Pkcs7>(body)
        .map_err(|_| "invalid PKCS#7 padding after AES-CBC decryption (wrong key?)".to_string())
}

/// Encrypt `plain` with one provider and key; returns the data after the key name.
fn seal(
    cipher: CipherProvider,
    key: &[u8],
    etcd_key: &[u8],
    plain: &[u8],
) -> Result<Vec<u8>, String> {
    match (cipher, key.len()) {
        (CipherProvider::AesGcm, 16) => gcm_seal::<aes_gcm::Aes128Gcm>(key, etcd_key, plain),
        (CipherProvider::AesGcm, 24) => gcm_seal::<Aes192Gcm>(key, etcd_key, plain),
        (CipherProvider::AesGcm, _) => gcm_seal::<aes_gcm::Aes256Gcm>(key, etcd_key, plain),
        (CipherProvider::AesCbc, 16) => cbc_seal::<aes::Aes128>(key, plain),
        (CipherProvider::AesCbc, 24) => cbc_seal::<aes::Aes192>(key, plain),
        (CipherProvider::AesCbc, _) => cbc_seal::<aes::Aes256>(key, plain),
        (CipherProvider::Secretbox, _) => {
            let c = crypto_secretbox::XSalsa20Poly1305::new_from_slice(key)
                .map_err(|e| e.to_string())?;
            let nonce = random::<SECRETBOX_NONCE>();
            let ct = c
                .encrypt(GenericArray::from_slice(&nonce), plain)
                .map_err(|e| e.to_string())?;
            let mut out = nonce.to_vec();
            out.extend_from_slice(&ct);
            Ok(out)
        }
    }
}

/// Decrypt the data after the key name with one provider and key.
fn open(
    cipher: CipherProvider,
    key: &[u8],
    etcd_key: &[u8],
    data: &[u8],
) -> Result<Vec<u8>, String> {
    match (cipher, key.len()) {
        (CipherProvider::AesGcm, 16) => gcm_open::<aes_gcm::Aes128Gcm>(key, etcd_key, data),
        (CipherProvider::AesGcm, 24) => gcm_open::<Aes192Gcm>(key, etcd_key, data),
        (CipherProvider::AesGcm, _) => gcm_open::<aes_gcm::Aes256Gcm>(key, etcd_key, data),
        (CipherProvider::AesCbc, 16) => cbc_open::<aes::Aes128>(key, data),
        (CipherProvider::AesCbc, 24) => cbc_open::<aes::Aes192>(key, data),
        (CipherProvider::AesCbc, _) => cbc_open::<aes::Aes256>(key, data),
        (CipherProvider::Secretbox, _) => {
            if data.len() < SECRETBOX_NONCE + SECRETBOX_TAG {
                return Err(
                    "the stored data is shorter than the 24-byte nonce and 16-byte tag".to_string(),
                );
            }
            let c = crypto_secretbox::XSalsa20Poly1305::new_from_slice(key)
                .map_err(|e| e.to_string())?;
            c.decrypt(
                GenericArray::from_slice(&data[..SECRETBOX_NONCE]),
                &data[SECRETBOX_NONCE..],
            )
            .map_err(|_| "secretbox authentication failed (wrong key or corrupt data)".to_string())
        }
    }
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
