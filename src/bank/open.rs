//! Opening a bank: reading (or creating) its config, checking the format version and the
//! key, putting the encryption decorator in front of the backend; and the one-time
//! rewrite of an older bank's config before its first write.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::RwLock;

use super::backend::{self, Backend, Kind};
use super::format::{self, now_ms, pb};
use super::{Bank, BankError, LoadedIndex, OpenOptions};

/// Text sealed in the config to check a key.
const KEY_CHECK: &[u8] = b"podbank bank key check v1";

impl Bank {
    /// Opens the bank on `backend` (creating it if `options.create` and there is none),
    /// checks the key and loads the index. Every request made of `backend` from here on is
    /// counted ([`Bank::requests`]).
    pub async fn open(
        backend: Arc<dyn Backend>,
        options: OpenOptions,
    ) -> Result<Arc<Self>, BankError> {
        let location = backend.location();
        let counted = backend::CountedBackend::new(backend);
        let requests = counted.counter();
        let backend: Arc<dyn Backend> = Arc::new(counted);
        // The raw backend never answers from the cache (its bytes are sealed) but makes it
        // forget what repair moves aside.
        let raw: Arc<dyn Backend> = Arc::new(backend::CachedBackend::new(backend.clone(), false));
        let config = match backend.get(Kind::Config, "config").await {
            Ok(data) => format::decode_config(&data).map_err(|e| BankError::BadConfig {
                location: location.clone(),
                reason: format!("the config object is not a readable podbank bank config: {e}"),
            })?,
            Err(backend::BackendError::NotFound { .. }) if options.create => {
                let config = Self::new_config(&options);
                backend
                    .put(Kind::Config, "config", format::encode_config(&config))
                    .await?;
                config
            }
            Err(backend::BackendError::NotFound { .. }) => {
                return Err(BankError::NotABank { location });
            }
            Err(e) => return Err(e.into()),
        };
        if !(format::OLDEST_FORMAT_VERSION..=format::FORMAT_VERSION).contains(&config.version) {
            return Err(BankError::BadConfig {
                location,
                reason: format!(
                    "bank format version {} is not supported (this podbank reads versions {} to {})",
                    config.version,
                    format::OLDEST_FORMAT_VERSION,
                    format::FORMAT_VERSION
                ),
            });
        }
        let backend: Arc<dyn Backend> = match (&options.key, config.encrypted) {
            (None, true) => {
                return Err(BankError::Key {
                    location,
                    reason: "the bank is encrypted: pass its key with --bank-key-file".into(),
                });
            }
            (Some(_), false) => {
                return Err(BankError::Key {
                    location,
                    reason: "a key was given but the bank is not encrypted; drop --bank-key-file"
                        .into(),
                });
            }
            (Some(key), true) => {
                if key
                    .open(config.bank_id.as_bytes(), &config.key_check)
                    .as_deref()
                    != Some(KEY_CHECK)
                {
                    return Err(BankError::Key {
                        location,
                        reason: "the key given with --bank-key-file does not open this bank".into(),
                    });
                }
                Arc::new(backend::CryptBackend::new(backend, key.clone()))
            }
            (None, false) => backend,
        };
        let backend: Arc<dyn Backend> = Arc::new(backend::CachedBackend::new(backend, true));
        let bank = Arc::new(Self {
            backend,
            raw,
            requests,
            config,
            upgraded: std::sync::atomic::AtomicBool::new(false),
            index: RwLock::new(LoadedIndex::default()),
        });
        bank.reload_index().await?;
        Ok(bank)
    }

    fn new_config(options: &OpenOptions) -> pb::BankConfig {
        let bank_id = hex::encode(rand::random::<[u8; 16]>());
        let key_check = options
            .key
            .as_ref()
            .map(|k| k.seal(bank_id.as_bytes(), KEY_CHECK))
            .unwrap_or_default();
        pb::BankConfig {
            version: format::FORMAT_VERSION,
            encrypted: options.key.is_some(),
            key_check: key_check.into(),
            created_unix_ms: now_ms(),
            pack_target_bytes: options.pack_target_bytes.unwrap_or(4 << 20),
            bank_id,
            checksum: Bytes::new(),
        }
    }

    /// Before the first write to a bank of an older format: writes its config with this
    /// podbank's format version, so that an older podbank refuses the bank (naming the
    /// version) rather than misreading what is written now. Done once per open bank.
    pub(super) async fn upgrade_format(&self) -> Result<(), BankError> {
        if self.config.version >= format::FORMAT_VERSION
            || self
                .upgraded
                .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return Ok(());
        }
        let config = pb::BankConfig {
            version: format::FORMAT_VERSION,
            ..self.config.clone()
        };
        let written = self
            .backend
            .put(Kind::Config, "config", format::encode_config(&config))
            .await;
        if written.is_err() {
            self.upgraded
                .store(false, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(written?)
    }
}
