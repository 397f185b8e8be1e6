//! Connection settings, named after kube-apiserver's own etcd flags.

use std::path::PathBuf;
use std::time::Duration;

/// How to reach etcd: the same settings kube-apiserver takes (`--etcd-servers`,
/// `--etcd-cafile`, `--etcd-certfile`, `--etcd-keyfile`, `--etcd-prefix`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EtcdConfig {
    /// Endpoints, e.g. `https://10.0.0.5:2379`.
    pub servers: Vec<String>,
    /// CA bundle that signed the servers' certificates.
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM).
    pub cert_file: Option<PathBuf>,
    /// Client key (PEM).
    pub key_file: Option<PathBuf>,
    /// kube-apiserver's `--etcd-prefix`.
    pub prefix: String,
    /// Most keys per range request of a scan (pages are sized by bytes within it; see
    /// [`super::ScanOptions`]).
    pub page_size: usize,
    /// Time allowed to establish a connection.
    #[serde(with = "secs")]
    pub connect_timeout: Duration,
    /// Time allowed for one request.
    #[serde(with = "secs")]
    pub request_timeout: Duration,
}

impl Default for EtcdConfig {
    fn default() -> Self {
        EtcdConfig {
            servers: vec!["http://127.0.0.1:2379".into()],
            ca_file: None,
            cert_file: None,
            key_file: None,
            prefix: "/registry".into(),
            page_size: super::scan::DEFAULT_PAGE_SIZE,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(60),
        }
    }
}

impl EtcdConfig {
    /// The endpoints as etcd-client wants them.
    pub fn endpoints(&self) -> Vec<String> {
        self.servers
            .iter()
            .flat_map(|s| s.split(','))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// The prefix without a trailing slash (`/registry`).
    pub fn prefix(&self) -> &str {
        let p = self.prefix.trim_end_matches('/');
        if p.is_empty() {
            ""
        } else {
            p
        }
    }
}

mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}
