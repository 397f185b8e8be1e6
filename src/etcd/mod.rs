//! etcd access: connection settings (the flags kube-apiserver itself uses), the scan of
//! several key prefixes at one pinned revision, and the agents' leader election.
//!
//! This module owns every call to etcd. It knows key prefixes and revisions, nothing of the
//! Kubernetes storage format: values leave it as opaque bytes for [`crate::codec`].
//! podbank only reads from the Kubernetes prefix; it never writes there. The one thing it
//! writes is its election candidate key, under its own prefix ([`election`]).

mod config;
pub mod election;
mod keys;
mod scan;

pub use config::EtcdConfig;
pub use election::{Election, ElectionConfig, ElectionError};
pub use keys::{Window, KEYS_PER_TXN};
pub use scan::{KeyValue, ScanOptions, ScanSink, ScanSummary};

use std::fmt;
use std::time::Duration;

use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};

pub use crate::model::Revision;

/// Errors talking to etcd.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EtcdError {
    /// A TLS file could not be read.
    #[error("cannot read {what} {path}: {source}")]
    TlsFile {
        /// Which flag the file came from (`--etcd-cafile`, ...).
        what: &'static str,
        /// The path given.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The settings are inconsistent (e.g. a client certificate without its key).
    #[error("etcd settings: {0}")]
    Settings(String),
    /// Could not reach etcd, or the TLS handshake failed.
    #[error("cannot connect to etcd at {endpoints}: {reason}")]
    Connect {
        /// The endpoints tried.
        endpoints: String,
        /// The cause, with a hint where one is known.
        reason: String,
    },
    /// A request failed.
    #[error("etcd {op} {key}: {source}")]
    Request {
        /// The operation (range, put, compact, ...).
        op: &'static str,
        /// The key or prefix concerned.
        key: String,
        /// The client's error.
        #[source]
        source: Box<etcd_client::Error>,
    },
    /// The pinned revision was compacted away on every attempt.
    #[error(
        "revision {revision} was compacted while scanning {key} and {restarts} restarts did not \
         help: etcd compacts faster than a full scan takes; raise --page-size, scan a smaller \
         selection, or lengthen kube-apiserver's --etcd-compaction-interval"
    )]
    Compacted {
        /// The last revision tried.
        revision: Revision,
        /// The key where the scan stood.
        key: String,
        /// Restarts attempted.
        restarts: u32,
    },
    /// A background fetch of the scan failed (panicked or was cancelled).
    #[error("etcd scan: fetching the next page failed: {0}")]
    Task(String),
    /// A response without the header that carries the revision.
    #[error("etcd answered a range of {key} without a response header")]
    NoHeader {
        /// The key or prefix concerned.
        key: String,
    },
}

/// A connected etcd client, read-only as far as the Kubernetes data goes.
#[derive(Clone)]
pub struct Etcd {
    client: Client,
    config: EtcdConfig,
}

impl fmt::Debug for Etcd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Etcd")
            .field("endpoints", &self.config.servers)
            .finish()
    }
}

/// The gRPC decoding limit: far above the 4 MiB default, so that a page holding objects of
/// 1.5 MiB (etcd's own request limit) passes. Pages are bounded by the page size anyway.
const MAX_DECODING_MESSAGE_SIZE: usize = 512 * 1024 * 1024;

/// The underlying etcd-client, for the seeder (`podbank_seed::write`), which puts demo and
/// test objects into etcd.
impl AsRef<Client> for Etcd {
    fn as_ref(&self) -> &Client {
        &self.client
    }
}

impl Etcd {
    /// Connect to the endpoints in `config`, over TLS when a CA or client certificate is given.
    ///
    /// The connection is checked with one request, so that a wrong address, CA or
    /// certificate fails here with a clear message rather than at the first scan.
    pub async fn connect(config: &EtcdConfig) -> Result<Etcd, EtcdError> {
        let endpoints = config.endpoints();
        let mut options = ConnectOptions::new()
            .with_connect_timeout(config.connect_timeout)
            .with_timeout(config.request_timeout)
            .with_keep_alive(Duration::from_secs(30), Duration::from_secs(10));
        if let Some(tls) = tls_options(config)? {
            options = options.with_tls(tls);
        }
        let joined = endpoints.join(",");
        let client = Client::connect(endpoints, Some(options))
            .await
            .map_err(|e| EtcdError::Connect {
                endpoints: joined.clone(),
                reason: explain(&e),
            })?;
        let etcd = Etcd {
            client,
            config: config.clone(),
        };
        etcd.current_revision()
            .await
            .map_err(|e| EtcdError::Connect {
                endpoints: joined,
                reason: match e {
                    EtcdError::Request { source, .. } => explain(&source),
                    other => other.to_string(),
                },
            })?;
        Ok(etcd)
    }

    /// The settings this client was built from.
    pub fn config(&self) -> &EtcdConfig {
        &self.config
    }

    /// The underlying etcd-client, for the parts of podbank that write under podbank's own
    /// prefix (leader election). Never used to write under the Kubernetes prefix.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// A KV client with the raised decoding limit.
    fn kv(&self) -> etcd_client::KvClient {
        self.client
            .kv_client()
            .max_decoding_message_size(MAX_DECODING_MESSAGE_SIZE)
    }

    /// The current revision of the store (a one-key range on an empty key range).
    pub async fn current_revision(&self) -> Result<Revision, EtcdError> {
        let key = b"\0".to_vec();
        let resp = self
            .kv()
            .get(
                key,
                Some(
                    etcd_client::GetOptions::new()
                        .with_count_only()
                        .with_limit(1),
                ),
            )
            .await
            .map_err(|e| EtcdError::Request {
                op: "range",
                key: "\\0".into(),
                source: Box::new(e),
            })?;
        resp.header()
            .map(|h| Revision::new(h.revision()))
            .ok_or(EtcdError::NoHeader { key: "\\0".into() })
    }
}

fn tls_options(config: &EtcdConfig) -> Result<Option<TlsOptions>, EtcdError> {
    let read = |what: &'static str, path: &std::path::Path| {
        std::fs::read(path).map_err(|source| EtcdError::TlsFile {
            what,
            path: path.display().to_string(),
            source,
        })
    };
    let wants_tls = config.ca_file.is_some()
        || config.cert_file.is_some()
        || config.servers.iter().any(|s| s.starts_with("https://"));
    if !wants_tls {
        return Ok(None);
    }
    let mut tls = TlsOptions::new();
    if let Some(ca) = &config.ca_file {
        tls = tls.ca_certificate(Certificate::from_pem(read("--etcd-cafile", ca)?));
    }
    match (&config.cert_file, &config.key_file) {
        (Some(cert), Some(key)) => {
            tls = tls.identity(Identity::from_pem(
                read("--etcd-certfile", cert)?,
                read("--etcd-keyfile", key)?,
            ));
        }
        (None, None) => {}
        (Some(_), None) => {
            return Err(EtcdError::Settings(
                "--etcd-certfile is set but --etcd-keyfile is not".into(),
            ))
        }
        (None, Some(_)) => {
            return Err(EtcdError::Settings(
                "--etcd-keyfile is set but --etcd-certfile is not".into(),
            ))
        }
    }
    Ok(Some(tls))
}

/// Turn a client error into one line that says what probably went wrong.
fn explain(e: &etcd_client::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    let lower = text.to_lowercase();
    if lower.contains("certificate") || lower.contains("unknownissuer") || lower.contains("tls") {
        text.push_str(" (check --etcd-cafile, --etcd-certfile and --etcd-keyfile)");
    } else if lower.contains("connection refused") || lower.contains("transport error") {
        text.push_str(" (is etcd running there? check --etcd-servers)");
    }
    text
}
