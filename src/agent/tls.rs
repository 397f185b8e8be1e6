//! TLS of the HTTP API: the rustls server configuration built from the `agent.tls` files.
//!
//! With `client_ca_file`, the handshake asks for a client certificate and verifies any one
//! presented against that CA. Presenting one stays optional at the TLS level, so that
//! kubelet probes (which present none) still reach `/healthz` and `/readyz`; the HTTP layer
//! then refuses `/v1` to connections without a verified certificate ([`super::http`]).

use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::config::TlsConfig;
use super::AgentError;

fn err(what: &str, path: &std::path::Path, e: impl std::fmt::Display) -> AgentError {
    AgentError::Tls(format!("agent.tls.{what} {}: {e}", path.display()))
}

fn certs(what: &str, path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, AgentError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(what, path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(what, path, e))?;
    if certs.is_empty() {
        return Err(err(what, path, "no PEM certificate in the file"));
    }
    Ok(certs)
}

/// The server configuration for `tls` (HTTP/1.1 and HTTP/2 over ALPN).
pub fn server_config(tls: &TlsConfig) -> Result<ServerConfig, AgentError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certs("cert_file", &tls.cert_file)?;
    let key = PrivateKeyDer::from_pem_file(&tls.key_file)
        .map_err(|e| err("key_file", &tls.key_file, e))?;
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| AgentError::Tls(e.to_string()))?;
    let builder = match &tls.client_ca_file {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in certs("client_ca_file", ca)? {
                roots.add(c).map_err(|e| err("client_ca_file", ca, e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| err("client_ca_file", ca, e))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| err("key_file", &tls.key_file, e))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}
