//! The agent's API over TLS with client certificates (mTLS): `/v1` needs a certificate
//! signed by the client CA (and the token, when one is configured); probes reach
//! `/healthz` without one; a certificate from another CA fails the handshake.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::support::engine::MemoryEngine;
use crate::support::etcd::TestEtcd;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use podbank::agent::{Agent, AgentConfig};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

struct Pki {
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
    rogue_cert: PathBuf,
    rogue_key: PathBuf,
}

fn pki(dir: &Path) -> Pki {
    let write = |name: &str, text: String| {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write");
        p
    };
    let ca_key = KeyPair::generate().expect("key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("ca");
    let issuer = Issuer::new(ca_params, &ca_key);
    let server_key = KeyPair::generate().expect("key");
    let server = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .expect("params")
        .signed_by(&server_key, &issuer)
        .expect("server");
    let client_key = KeyPair::generate().expect("key");
    let client = CertificateParams::new(vec!["operator".to_string()])
        .expect("params")
        .signed_by(&client_key, &issuer)
        .expect("client");
    // A client certificate from a CA the agent does not trust.
    let rogue_ca_key = KeyPair::generate().expect("key");
    let mut rogue_ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    rogue_ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let rogue_issuer = Issuer::new(rogue_ca_params, &rogue_ca_key);
    let rogue_key = KeyPair::generate().expect("key");
    let rogue = CertificateParams::new(vec!["intruder".to_string()])
        .expect("params")
        .signed_by(&rogue_key, &rogue_issuer)
        .expect("rogue");
    Pki {
        ca: write("ca.pem", ca.pem()),
        server_cert: write("server.pem", server.pem()),
        server_key: write("server-key.pem", server_key.serialize_pem()),
        client_cert: write("client.pem", client.pem()),
        client_key: write("client-key.pem", client_key.serialize_pem()),
        rogue_cert: write("rogue.pem", rogue.pem()),
        rogue_key: write("rogue-key.pem", rogue_key.serialize_pem()),
    }
}

/// GET `path` over TLS, trusting `ca`, presenting `identity` (cert, key) if given.
async fn get(
    addr: std::net::SocketAddr,
    ca: &Path,
    identity: Option<(&Path, &Path)>,
    token: Option<&str>,
    path: &str,
) -> Result<u16, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).expect("ca") {
        roots.add(c.expect("cert")).expect("add");
    }
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    let config = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_file_iter(cert)
                    .expect("cert")
                    .collect::<Result<Vec<_>, _>>()
                    .expect("certs"),
                PrivateKeyDer::from_pem_file(key).expect("key"),
            )
            .expect("client auth"),
        None => builder.with_no_client_auth(),
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let name = ServerName::try_from("127.0.0.1").expect("name");
    let tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| format!("http: {e}"))?;
    tokio::spawn(conn);
    let mut req = http::Request::builder()
        .uri(path)
        .header("host", "127.0.0.1");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let resp = sender
        .send_request(req.body(Empty::<Bytes>::new()).expect("request"))
        .await
        .map_err(|e| format!("request: {e}"))?;
    let status = resp.status().as_u16();
    let _ = resp.into_body().collect().await;
    Ok(status)
}

async fn start(etcd: &TestEtcd, dir: &Path, pki: &Pki, token: bool) -> Agent {
    let token_line = if token {
        std::fs::write(dir.join("token"), "tls-token").expect("token");
        format!("token_file: {}", dir.join("token").display())
    } else {
        String::new()
    };
    let text = format!(
        "listen: 127.0.0.1:0\n{token_line}\ntls: {{ cert_file: {}, key_file: {}, client_ca_file: {} }}\nelection: {{ ttl: 3 }}\n",
        pki.server_cert.display(),
        pki.server_key.display(),
        pki.ca.display()
    );
    let config =
        AgentConfig::from_yaml(&serde_yaml::from_str(&text).expect("yaml")).expect("config");
    Agent::start(&config, MemoryEngine::new("tls", 3), &etcd.connect().await)
        .await
        .expect("agent with TLS")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_and_token_both_required_on_v1_probes_open() {
    let etcd = TestEtcd::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = pki(dir.path());
    let agent = start(&etcd, dir.path(), &pki, true).await;
    let addr = agent.local_addr();
    let me = Some((pki.client_cert.as_path(), pki.client_key.as_path()));

    assert_eq!(
        get(addr, &pki.ca, me, Some("tls-token"), "/v1/operations").await,
        Ok(200)
    );
    assert_eq!(
        get(addr, &pki.ca, me, None, "/v1/operations").await,
        Ok(401)
    );
    assert_eq!(
        get(addr, &pki.ca, me, Some("wrong"), "/v1/operations").await,
        Ok(401)
    );
    assert_eq!(
        get(addr, &pki.ca, None, Some("tls-token"), "/v1/operations").await,
        Ok(401)
    );
    // Probes carry no client certificate.
    assert_eq!(get(addr, &pki.ca, None, None, "/healthz").await, Ok(200));
    assert_eq!(get(addr, &pki.ca, None, None, "/metrics").await, Ok(200));
    // A certificate from another CA does not get through the handshake.
    let rogue = Some((pki.rogue_cert.as_path(), pki.rogue_key.as_path()));
    let r = get(addr, &pki.ca, rogue, Some("tls-token"), "/v1/operations").await;
    assert!(r.is_err(), "{r:?}");
    // Plain HTTP on the TLS port gets no answer.
    let r = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        crate::support::http::try_request(addr, "GET", "/healthz"),
    )
    .await;
    assert!(!matches!(r, Ok(Ok(200))), "{r:?}");
    agent.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_alone_is_enough_authentication() {
    let etcd = TestEtcd::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = pki(dir.path());
    let agent = start(&etcd, dir.path(), &pki, false).await;
    let addr = agent.local_addr();
    let me = Some((pki.client_cert.as_path(), pki.client_key.as_path()));
    assert_eq!(
        get(addr, &pki.ca, me, None, "/v1/operations").await,
        Ok(200)
    );
    assert_eq!(
        get(addr, &pki.ca, None, None, "/v1/operations").await,
        Ok(401)
    );
    agent.shutdown().await.expect("shutdown");
}

/// `podbank --agent https://...` with the CA, client certificate and token files.
async fn cli(addr: std::net::SocketAddr, pki: &Pki, dir: &Path, mtls: bool) -> (i32, String) {
    let mut cmd = tokio::process::Command::new(crate::support::podbank_bin());
    cmd.env_remove("PODBANK_CONFIG")
        .env_remove("PODBANK_AGENT")
        .arg("--agent")
        .arg(format!("https://{addr}"))
        .arg("--agent-ca-file")
        .arg(&pki.ca)
        .arg("--agent-token-file")
        .arg(dir.join("token"));
    if mtls {
        cmd.arg("--agent-cert-file")
            .arg(&pki.client_cert)
            .arg("--agent-key-file")
            .arg(&pki.client_key);
    }
    let out = cmd
        .args(["plans", "list", "-o", "json"])
        .output()
        .await
        .expect("run podbank");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_reaches_an_mtls_agent_with_its_ca_and_client_certificate() {
    let etcd = TestEtcd::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = pki(dir.path());
    let agent = start(&etcd, dir.path(), &pki, true).await;
    let addr = agent.local_addr();

    let (code, out) = cli(addr, &pki, dir.path(), true).await;
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("plans JSON");
    assert!(v["items"].is_array(), "{out}");
    // Without the client certificate the agent says 401 (or the handshake fails).
    let (code, out) = cli(addr, &pki, dir.path(), false).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("client certificate") || out.contains("cannot reach"),
        "{out}"
    );
    agent.shutdown().await.expect("shutdown");
}
