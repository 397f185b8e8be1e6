//! The EncryptionConfiguration file: its YAML shape, the checks kube-apiserver makes on
//! it (one provider per entry, key names, base64 secrets of the right length), and the
//! providers and keys it holds.

use std::fmt;

use base64::Engine as _;

use super::{CipherProvider, EncryptionConfig};
use crate::codec::CodecError;

/// A named key from the configuration.
#[derive(Clone)]
pub(super) struct NamedKey {
    pub(super) name: String,
    pub(super) secret: Vec<u8>,
}

impl fmt::Debug for NamedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NamedKey({:?}, {} bytes)", self.name, self.secret.len())
    }
}

/// One entry of a `providers:` list.
#[derive(Debug, Clone)]
pub(super) enum Provider {
    Identity,
    Cipher(CipherProvider, Vec<NamedKey>),
    Kms { name: String, api_version: String },
}

#[derive(Debug, Clone)]
pub(super) struct ResourceRule {
    pub(super) resources: Vec<String>,
    pub(super) providers: Vec<Provider>,
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
    /// Parses the configuration text; `source` names it in errors.
    pub(super) fn parse(source: &str, text: &str) -> Result<Self, CodecError> {
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
                providers.push(parse_provider(&at, p).map_err(|e| err(e.to_string()))?);
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
}

/// An entry of a `providers:` list that kube-apiserver would refuse. `at` is where it is
/// (`resources[0].providers[1]`), `name` the provider's name.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(super) enum ProviderError {
    /// The entry names no provider, or several.
    #[error("{at}: expected exactly one of aescbc, aesgcm, secretbox, identity, kms")]
    NotOne { at: String },
    /// The entry is empty.
    #[error("{at}: empty provider")]
    Empty { at: String },
    /// A `kms` entry that does not have the shape of one.
    #[error("{at}.kms: {source}")]
    Kms {
        at: String,
        source: serde_yaml::Error,
    },
    /// A provider kube-apiserver does not have.
    #[error(
        "{at}: unknown provider {name:?} (expected aescbc, aesgcm, secretbox, identity or kms)"
    )]
    Unknown { at: String, name: String },
    /// A cipher entry whose `keys` do not have the shape of a list of keys.
    #[error("{at}.{name}: {source}")]
    Keys {
        at: String,
        name: String,
        source: serde_yaml::Error,
    },
    /// A cipher entry without keys.
    #[error("{at}.{name}: no keys")]
    NoKeys { at: String, name: String },
    /// A key name that cannot appear in a value's prefix.
    #[error("{at}.{name}: key name {key:?} is empty or has a ':'")]
    KeyName {
        at: String,
        name: String,
        key: String,
    },
    /// A secret that is not base64.
    #[error("{at}.{name}: key {key:?}: secret is not base64: {source}")]
    NotBase64 {
        at: String,
        name: String,
        key: String,
        source: base64::DecodeError,
    },
    /// A secret of a length the cipher does not take.
    #[error("{at}.{name}: key {key:?} is {length} bytes; {name} needs {needs}")]
    KeyLength {
        at: String,
        name: String,
        key: String,
        length: usize,
        /// The lengths it takes, in words.
        needs: &'static str,
    },
}

/// Parses one entry of a `providers:` list (`at` names it in errors).
fn parse_provider(at: &str, map: serde_yaml::Mapping) -> Result<Provider, ProviderError> {
    let at = at.to_string();
    if map.len() != 1 {
        return Err(ProviderError::NotOne { at });
    }
    let Some((name, body)) = map.into_iter().next() else {
        return Err(ProviderError::Empty { at });
    };
    let name = name.as_str().unwrap_or_default().to_string();
    if name == "identity" {
        return Ok(Provider::Identity);
    }
    if name == "kms" {
        let kms: raw::Kms =
            serde_yaml::from_value(body).map_err(|source| ProviderError::Kms { at, source })?;
        return Ok(Provider::Kms {
            name: kms.name,
            api_version: kms.api_version.unwrap_or_else(|| "v1".to_string()),
        });
    }
    let Some(cipher) = CipherProvider::from_name(&name) else {
        return Err(ProviderError::Unknown { at, name });
    };
    let keys: raw::Keys = match serde_yaml::from_value(body) {
        Ok(keys) => keys,
        Err(source) => return Err(ProviderError::Keys { at, name, source }),
    };
    if keys.keys.is_empty() {
        return Err(ProviderError::NoKeys { at, name });
    }
    let mut out = Vec::new();
    for k in keys.keys {
        out.push(parse_key(&at, &name, cipher, k)?);
    }
    Ok(Provider::Cipher(cipher, out))
}

/// Checks one key of a cipher entry: its name, its base64 secret and the secret's length.
fn parse_key(
    at: &str,
    name: &str,
    cipher: CipherProvider,
    k: raw::Key,
) -> Result<NamedKey, ProviderError> {
    if k.name.is_empty() || k.name.contains(':') {
        return Err(ProviderError::KeyName {
            at: at.to_string(),
            name: name.to_string(),
            key: k.name,
        });
    }
    let secret = match base64::engine::general_purpose::STANDARD.decode(k.secret.trim()) {
        Ok(secret) => secret,
        Err(source) => {
            return Err(ProviderError::NotBase64 {
                at: at.to_string(),
                name: name.to_string(),
                key: k.name,
                source,
            })
        }
    };
    let ok = match cipher {
        CipherProvider::Secretbox => secret.len() == 32,
        _ => matches!(secret.len(), 16 | 24 | 32),
    };
    if !ok {
        return Err(ProviderError::KeyLength {
            at: at.to_string(),
            name: name.to_string(),
            key: k.name,
            length: secret.len(),
            needs: if cipher == CipherProvider::Secretbox {
                "32"
            } else {
                "16, 24 or 32"
            },
        });
    }
    Ok(NamedKey {
        name: k.name,
        secret,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(yaml: &str) -> String {
        let map: serde_yaml::Mapping = serde_yaml::from_str(yaml).expect("a mapping");
        match parse_provider("resources[0].providers[0]", map) {
            Ok(p) => panic!("{yaml} parsed: {p:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn provider_errors_say_where_and_what() {
        let at = "resources[0].providers[0]";
        assert_eq!(
            error_of("{identity: {}, aescbc: {}}"),
            format!("{at}: expected exactly one of aescbc, aesgcm, secretbox, identity, kms")
        );
        assert_eq!(
            error_of("{rot13: {}}"),
            format!(
                "{at}: unknown provider \"rot13\" (expected aescbc, aesgcm, secretbox, \
                 identity or kms)"
            )
        );
        assert_eq!(
            error_of("{aescbc: {keys: []}}"),
            format!("{at}.aescbc: no keys")
        );
        assert_eq!(
            error_of("{aescbc: {keys: [{name: 'a:b', secret: AAAA}]}}"),
            format!("{at}.aescbc: key name \"a:b\" is empty or has a ':'")
        );
        assert!(error_of("{aescbc: {keys: [{name: k, secret: '!!'}]}}")
            .starts_with(&format!("{at}.aescbc: key \"k\": secret is not base64: ")));
        assert_eq!(
            error_of("{secretbox: {keys: [{name: k, secret: AAECAwQFBgcICQoLDA0ODw==}]}}"),
            format!("{at}.secretbox: key \"k\" is 16 bytes; secretbox needs 32")
        );
        assert_eq!(
            error_of("{aesgcm: {keys: [{name: k, secret: AAECAw==}]}}"),
            format!("{at}.aesgcm: key \"k\" is 4 bytes; aesgcm needs 16, 24 or 32")
        );
        assert!(error_of("{kms: {}}").starts_with(&format!("{at}.kms: ")));
    }
}
