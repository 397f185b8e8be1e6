//! Storage backends of the bank: one [`Backend`] trait, one file per implementation.
//!
//! A backend is a flat key-value object store. It knows nothing of packs, indexes or
//! encryption: those live above it ([`crate::bank`]) or wrap it as decorators (a file of
//! their own each, implementing this same trait around an inner `Arc<dyn Backend>`).
//!
//! Objects are addressed by a [`Kind`] (which "folder") and a name (for content-addressed
//! kinds, the hex of an [`crate::bank::ObjectId`]). Every implementation, the decorators
//! included, must pass the conformance suite in `tests/scenarios/bank_backends.rs`.
//!
//! Locations ([`open_with`]): a path or `file:///path` (local), `s3://bucket/prefix` (S3),
//! `swift://container/prefix` (OpenStack Swift); endpoints and credentials come from
//! [`BackendSettings`]. On object stores every kind lives under `<prefix>/<folder>/` with no
//! fan-out (`<prefix>/config`, `<prefix>/data/<name>`, `<prefix>/index/<name>`, ...).
//!
//! Retrying happens in one place, [`RetryBackend`], which [`open_with`] puts around the
//! object stores: a backend tries each request once and says whether a failure is
//! transient ([`BackendError::is_transient`]).
//!
//! Counting happens in one place too, [`CountedBackend`], which [`crate::bank::Bank::open`]
//! puts around the backend it is given: the bank's requests and bytes read
//! ([`crate::bank::Bank::requests`]).
//!
//! Caching of the small records (manifests, index files) happens in [`CachedBackend`],
//! per command ([`scoped`]), above the encryption.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

mod cached;
mod counted;
mod crypt;
mod local;
mod retry;
mod s3;
mod settings;
mod swift;
pub use cached::{scoped, CachedBackend, RecordCache};
pub use counted::{CountedBackend, RequestCounter, RequestCounts};
pub use crypt::{BankKey, CryptBackend, KeyMaterialError, PACK_CHUNK};
pub use local::LocalBackend;
pub use retry::{GaveUp, RetryBackend};
pub use s3::S3Backend;
pub use settings::{BackendSettings, S3Settings, Secret, SwiftSettings};
pub use swift::SwiftBackend;

/// What an object in the bank is. Each kind lives under its own folder/prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// The bank's configuration (format version, bank id, encryption parameters). Name: `config`.
    Config,
    /// Pack files: many compressed objects each. Name: hex sha256 of the stored pack bytes.
    Pack,
    /// Index files: object id -> (pack, offset, length). Name: hex sha256.
    Index,
    /// Checkpoint manifests. Name: the checkpoint id.
    Checkpoint,
    /// Restore records. Name: the restore id.
    Restore,
    /// The journal batches of restores in progress. Name: `<restore id>.<seq, 8 digits>`.
    Journal,
    /// Protection plans kept in the bank (Karbor's plans). Name: the plan's UUID.
    Plan,
    /// Triggers kept in the bank (Karbor's triggers). Name: the trigger's UUID.
    Trigger,
    /// Scheduled operations kept in the bank (Karbor's scheduled operations). Name: the
    /// operation's UUID.
    ScheduledOperation,
    /// Karbor operation logs kept in the bank. Name: the log's UUID.
    OperationLog,
    /// Karbor verifications kept in the bank. Name: the verification's UUID.
    Verification,
    /// Lock / lease objects held by writers and by gc. Name: random id.
    Lock,
    /// Files `bank repair` moved aside because they cannot be read, with its reports.
    /// Name: `<repair time>-<folder>-<name>`.
    Quarantine,
}

impl Kind {
    /// Every kind, in a fixed order.
    pub const ALL: [Kind; 13] = [
        Kind::Config,
        Kind::Pack,
        Kind::Index,
        Kind::Checkpoint,
        Kind::Restore,
        Kind::Journal,
        Kind::Plan,
        Kind::Trigger,
        Kind::ScheduledOperation,
        Kind::OperationLog,
        Kind::Verification,
        Kind::Lock,
        Kind::Quarantine,
    ];

    /// The folder (or key prefix) the kind is stored under.
    pub fn folder(self) -> &'static str {
        match self {
            Kind::Config => "",
            Kind::Pack => "data",
            Kind::Index => "index",
            Kind::Checkpoint => "checkpoints",
            Kind::Restore => "restores",
            Kind::Journal => "restore-journal",
            Kind::Plan => "plans",
            Kind::Trigger => "triggers",
            Kind::ScheduledOperation => "scheduled_operations",
            Kind::OperationLog => "operation-logs",
            Kind::Verification => "verifications",
            Kind::Lock => "locks",
            Kind::Quarantine => "quarantine",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Config => "config",
            Kind::Pack => "pack",
            Kind::Index => "index",
            Kind::Checkpoint => "checkpoint",
            Kind::Restore => "restore",
            Kind::Journal => "restore journal batch",
            Kind::Plan => "plan",
            Kind::Trigger => "trigger",
            Kind::ScheduledOperation => "scheduled operation",
            Kind::OperationLog => "operation log",
            Kind::Verification => "verification",
            Kind::Lock => "lock",
            Kind::Quarantine => "quarantined file",
        })
    }
}

/// One entry of a [`Backend::list`] answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The object's name within its kind.
    pub name: String,
    /// Stored size in bytes.
    pub size: u64,
    /// When it was last written, if the store says (gc and locks use it to tell a
    /// leftover from something in progress).
    pub modified: Option<std::time::SystemTime>,
}

/// Errors of a storage backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// The object does not exist.
    #[error("{kind} {name} not found in bank {location}")]
    NotFound {
        /// Bank location (URL or path).
        location: String,
        /// Object kind.
        kind: Kind,
        /// Object name.
        name: String,
    },
    /// The bank location or its credentials are wrong.
    #[error("bank {location}: {reason}")]
    Config {
        /// Bank location (URL or path).
        location: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// An I/O or transport failure, or an answer the backend cannot use.
    #[error("bank {location}: {op} {kind} {name}: {source}")]
    Io {
        /// Bank location (URL or path).
        location: String,
        /// The operation: get, put, list, delete.
        op: &'static str,
        /// Object kind.
        kind: Kind,
        /// Object name.
        name: String,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
        /// Whether the same operation may succeed if tried again (a refused connection, a
        /// timeout, a 5xx answer, a body damaged in transit): [`RetryBackend`] retries
        /// these. `false` for what a retry repeats (a range past the end, an object that
        /// does not decrypt, an unexpected 4xx answer), and once a [`RetryBackend`] has
        /// spent its tries.
        transient: bool,
    },
}

impl BackendError {
    /// Whether trying the same operation again may succeed: an [`BackendError::Io`] marked
    /// transient; never [`BackendError::NotFound`] or [`BackendError::Config`].
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            BackendError::Io {
                transient: true,
                ..
            }
        )
    }
}

/// A flat object store holding the bank.
///
/// Implementations: local directory (`local.rs`), S3 (`s3.rs`), OpenStack Swift
/// (`swift.rs`). Decorators (encryption `crypt.rs`, retries `retry.rs`) implement it
/// around another backend.
///
/// Contract, relied upon by the bank and checked by the conformance suite:
/// * `put` is atomic: a reader sees either nothing or the whole object, never a part,
///   even if the writer crashes mid-way (local: temp file + fsync + rename; object
///   stores: one PUT). `put` over an existing name replaces it.
/// * `get` of a missing object is [`BackendError::NotFound`], never an empty body.
/// * `list` returns every object of the kind (no paging visible to the caller), names
///   only (no folder prefix), in no particular order.
/// * `delete` of a missing object succeeds (idempotent).
/// * Every operation is idempotent: doing it twice leaves the store as doing it once, so
///   [`RetryBackend`] may repeat any of them after a transient failure.
/// * An operation is tried once: a failure that another try may cure is an
///   [`BackendError::Io`] with `transient: true`, and retrying it is [`RetryBackend`]'s.
#[async_trait]
pub trait Backend: Send + Sync + fmt::Debug {
    /// Where the bank is, for messages (a path or URL, without credentials).
    fn location(&self) -> String;

    /// Store `data` under (`kind`, `name`), atomically.
    async fn put(&self, kind: Kind, name: &str, data: Bytes) -> Result<(), BackendError>;

    /// Read the whole object.
    async fn get(&self, kind: Kind, name: &str) -> Result<Bytes, BackendError>;

    /// Read `length` bytes at `offset`. The default reads the whole object and slices it.
    async fn get_range(
        &self,
        kind: Kind,
        name: &str,
        offset: u64,
        length: u64,
    ) -> Result<Bytes, BackendError> {
        let all = self.get(kind, name).await?;
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let end = start.saturating_add(usize::try_from(length).unwrap_or(usize::MAX));
        if end > all.len() {
            return Err(BackendError::Io {
                location: self.location(),
                op: "get_range",
                kind,
                name: name.to_string(),
                source: format!(
                    "range {offset}+{length} is past the end of the object ({} bytes)",
                    all.len()
                )
                .into(),
                transient: false,
            });
        }
        Ok(all.slice(start..end))
    }

    /// List every object of `kind`.
    async fn list(&self, kind: Kind) -> Result<Vec<ObjectInfo>, BackendError>;

    /// Remove the object; succeeds if it is already gone.
    async fn delete(&self, kind: Kind, name: &str) -> Result<(), BackendError>;

    /// Removes what interrupted writes left behind (a local bank's temporary files) that
    /// is older than `older_than`, so that nothing a live writer is writing goes; returns
    /// how many were removed. Object stores write each object in one request and leave
    /// nothing: the default does nothing.
    async fn remove_leftovers(
        &self,
        older_than: std::time::Duration,
    ) -> Result<usize, BackendError> {
        let _ = older_than;
        Ok(0)
    }
}

/// Opens the backend that a bank location names, with settings from the environment
/// ([`BackendSettings::from_env`]).
///
/// # Arguments
/// * `location` - a local path, `file:///path`, `s3://bucket/prefix` or
///   `swift://container/prefix`.
pub fn open(location: &str) -> Result<Arc<dyn Backend>, BackendError> {
    open_with(location, &BackendSettings::from_env())
}

/// Opens the backend that a bank location names. Nothing is contacted yet: object stores
/// authenticate on the first request, so wrong credentials show up there, as
/// [`BackendError::Config`]. The object stores come wrapped in a [`RetryBackend`] with
/// [`crate::openstack::RetryPolicy::OBJECT_STORE`].
///
/// # Arguments
/// * `location` - a local path, `file:///path`, `s3://bucket/prefix` or
///   `swift://container/prefix`.
/// * `settings` - endpoints and credentials of the object stores.
pub fn open_with(
    location: &str,
    settings: &BackendSettings,
) -> Result<Arc<dyn Backend>, BackendError> {
    if location.is_empty() {
        return Err(BackendError::Config {
            location: location.to_string(),
            reason: "empty bank location: give a directory, file://, s3:// or swift:// URL".into(),
        });
    }
    if let Some(path) = location.strip_prefix("file://") {
        if path.is_empty() {
            return Err(BackendError::Config {
                location: location.to_string(),
                reason: "file:// needs a path, e.g. file:///var/lib/podbank/bank".into(),
            });
        }
        return Ok(Arc::new(LocalBackend::new(path)?));
    }
    if let Some(rest) = location.strip_prefix("s3://") {
        let (bucket, prefix) = split_bucket(location, rest, "bucket")?;
        let s3 = S3Backend::new(&bucket, &prefix, &settings.s3)?;
        return Ok(Arc::new(RetryBackend::new(Arc::new(s3))));
    }
    if let Some(rest) = location.strip_prefix("swift://") {
        let (container, prefix) = split_bucket(location, rest, "container")?;
        let swift = SwiftBackend::new(&container, &prefix, &settings.swift)?;
        return Ok(Arc::new(RetryBackend::new(Arc::new(swift))));
    }
    if let Some((scheme, _)) = location.split_once("://") {
        return Err(BackendError::Config {
            location: location.to_string(),
            reason: format!(
                "unknown bank scheme {scheme:?}: use a path, file://, s3://bucket/prefix or \
                 swift://container/prefix"
            ),
        });
    }
    Ok(Arc::new(LocalBackend::new(location)?))
}

/// Splits `bucket/prefix/parts` into the bucket (or container) and the prefix without
/// leading, trailing or doubled slashes.
fn split_bucket(location: &str, rest: &str, what: &str) -> Result<(String, String), BackendError> {
    let invalid = |reason: String| BackendError::Config {
        location: location.to_string(),
        reason,
    };
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(invalid(format!(
            "no {what} name: write it as scheme://{what}/prefix"
        )));
    }
    if bucket.contains(['@', '?', '#', ':']) || rest.contains(['?', '#']) {
        return Err(invalid(format!(
            "invalid {what} name {bucket:?}: credentials, ports and query strings do not \
             belong in the bank URL (use the settings or environment variables)"
        )));
    }
    let parts: Vec<&str> = prefix.split('/').filter(|p| !p.is_empty()).collect();
    if parts.iter().any(|p| *p == "." || *p == "..") {
        return Err(invalid(format!(
            "invalid prefix {prefix:?}: no . or .. segments"
        )));
    }
    Ok((bucket.to_string(), parts.join("/")))
}

/// Checks an object name for the object stores (same rules as the local backend).
fn check_name(location: &str, kind: Kind, name: &str) -> Result<(), BackendError> {
    if name.is_empty() || name.starts_with('.') || name.contains(['/', '\\', '\0']) {
        return Err(BackendError::Config {
            location: location.to_string(),
            reason: format!("invalid {kind} name {name:?}"),
        });
    }
    Ok(())
}

/// The key prefix under which an object store keeps `kind`: `<prefix>/<folder>/`
/// (`<prefix>/` for the config, `<folder>/` without a prefix).
fn kind_prefix(prefix: &str, kind: Kind) -> String {
    let mut out = String::new();
    for part in [prefix, kind.folder()] {
        if !part.is_empty() {
            out.push_str(part);
            out.push('/');
        }
    }
    out
}

/// The key of (`kind`, `name`) in an object store under `prefix`.
fn object_key(prefix: &str, kind: Kind, name: &str) -> String {
    kind_prefix(prefix, kind) + name
}

/// The error of a ranged read whose answer does not have the length asked for.
fn short_range(
    location: String,
    kind: Kind,
    name: &str,
    offset: u64,
    length: u64,
    got: usize,
) -> BackendError {
    BackendError::Io {
        location,
        op: "get_range",
        kind,
        name: name.to_string(),
        source: format!("range {offset}+{length} is past the end of the object (got {got} bytes)")
            .into(),
        transient: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_parsed_or_named_in_the_error() {
        assert_eq!(
            split_bucket("s3://b//x/y/", "b//x/y/", "bucket").ok(),
            Some(("b".to_string(), "x/y".to_string()))
        );
        assert_eq!(
            split_bucket("s3://b", "b", "bucket").ok(),
            Some(("b".to_string(), String::new()))
        );
        let settings = BackendSettings::default();
        for bad in [
            "ftp://x/y",
            "s3://",
            "s3:///p",
            "swift://a@b/p",
            "s3://b/../p",
            "",
        ] {
            let err = open_with(bad, &settings).expect_err(bad).to_string();
            assert!(err.contains(&format!("bank {bad}:")), "{bad}: {err}");
        }
        assert_eq!(object_key("p/q", Kind::Pack, "ab"), "p/q/data/ab");
        assert_eq!(object_key("", Kind::Config, "config"), "config");
        assert_eq!(object_key("p", Kind::Config, "config"), "p/config");
        assert_eq!(kind_prefix("", Kind::Lock), "locks/");
    }
}
