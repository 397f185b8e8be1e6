//! The `k8s:enc:<provider>:v1:<key name>:` prefix of an encrypted value: what it names,
//! and the errors for values podbank cannot open (KMS, unknown providers, no
//! configuration given).

use super::CipherProvider;
use crate::codec::value::{describe_bytes, ENCRYPTED_PREFIX};
use crate::codec::CodecError;

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
pub(super) struct EncryptedPrefix {
    pub(super) cipher: CipherProvider,
    /// Key name up to the next `:` (for messages; matching uses the configured names).
    pub(super) key_name: String,
    /// Offset of the key name.
    pub(super) cipher_start: usize,
}

impl EncryptedPrefix {
    /// `Ok(None)` if the value is not encrypted; errors for KMS and unknown providers.
    pub(super) fn parse(key: &str, value: &[u8]) -> Result<Option<EncryptedPrefix>, CodecError> {
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
