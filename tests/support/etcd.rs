//! A real etcd for one test: its own process, a free loopback port, a temporary data dir.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use podbank::etcd::{Etcd, EtcdConfig};

/// A running etcd; stopped and its data removed when dropped.
pub struct TestEtcd {
    child: Child,
    /// Client URL, e.g. `http://127.0.0.1:40123`.
    pub url: String,
    /// Data directory (inside `_dir`).
    pub data_dir: PathBuf,
    /// TLS material when started with [`TestEtcd::start_tls`].
    pub tls: Option<TlsFiles>,
    _dir: tempfile::TempDir,
}

/// Certificates written for a TLS etcd.
pub struct TlsFiles {
    /// CA that signed server and client certificates.
    pub ca: PathBuf,
    /// Client certificate.
    pub client_cert: PathBuf,
    /// Client key.
    pub client_key: PathBuf,
    /// A different CA, which did not sign the server's certificate.
    pub other_ca: PathBuf,
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

fn etcd_binary() -> &'static str {
    if Path::new("/usr/bin/etcd").exists() {
        "/usr/bin/etcd"
    } else {
        "etcd"
    }
}

impl TestEtcd {
    /// Start a plain-HTTP etcd and wait until it answers.
    pub fn start() -> TestEtcd {
        Self::spawn(None)
    }

    /// Start an etcd that requires TLS client certificates signed by a fresh CA.
    pub fn start_tls() -> TestEtcd {
        let dir = tempfile::tempdir().expect("tempdir");
        let tls = make_certs(dir.path());
        Self::spawn(Some((dir, tls)))
    }

    fn spawn(tls: Option<(tempfile::TempDir, (TlsFiles, PathBuf, PathBuf))>) -> TestEtcd {
        let (dir, tls) = match tls {
            Some((d, t)) => (d, Some(t)),
            None => (tempfile::tempdir().expect("tempdir"), None),
        };
        let data_dir = dir.path().join("data");
        let scheme = if tls.is_some() { "https" } else { "http" };
        // Ports can be taken between probing and binding: retry a few times.
        for _attempt in 0..5 {
            let (cport, pport) = (free_port(), free_port());
            let url = format!("{scheme}://127.0.0.1:{cport}");
            let peer = format!("http://127.0.0.1:{pport}");
            let mut cmd = Command::new(etcd_binary());
            cmd.arg("--name=default")
                .arg(format!("--data-dir={}", data_dir.display()))
                .arg(format!("--listen-client-urls={url}"))
                .arg(format!("--advertise-client-urls={url}"))
                .arg(format!("--listen-peer-urls={peer}"))
                .arg(format!("--initial-advertise-peer-urls={peer}"))
                .arg(format!("--initial-cluster=default={peer}"))
                .arg("--max-request-bytes=3145728")
                .arg("--log-level=error")
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if let Some((files, server_cert, server_key)) = &tls {
                cmd.arg(format!("--cert-file={}", server_cert.display()))
                    .arg(format!("--key-file={}", server_key.display()))
                    .arg(format!("--trusted-ca-file={}", files.ca.display()))
                    .arg("--client-cert-auth=true");
            }
            let mut child = cmd
                .spawn()
                .expect("cannot start etcd: install the Debian package etcd-server");
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut up = false;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // exited: port clash, retry
                }
                if std::net::TcpStream::connect(("127.0.0.1", cport)).is_ok() {
                    up = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if up {
                let etcd = TestEtcd {
                    child,
                    url,
                    data_dir,
                    tls: tls.map(|t| t.0),
                    _dir: dir,
                };
                etcd.wait_ready();
                return etcd;
            }
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(&data_dir);
        }
        panic!("etcd did not come up on a free loopback port");
    }

    /// Poll until a request is served (the port can be open before etcd serves).
    fn wait_ready(&self) {
        // On a thread of its own: callers may be inside an async runtime already.
        let config = self.config();
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("runtime");
                    let deadline = Instant::now() + Duration::from_secs(20);
                    loop {
                        match rt.block_on(Etcd::connect(&config)) {
                            Ok(_) => return,
                            Err(e) if Instant::now() > deadline => panic!("etcd not ready: {e}"),
                            Err(_) => std::thread::sleep(Duration::from_millis(50)),
                        }
                    }
                })
                .join()
                .expect("readiness check");
        });
    }

    /// Client settings for this etcd (with the TLS client certificate if any).
    pub fn config(&self) -> EtcdConfig {
        let mut c = EtcdConfig {
            servers: vec![self.url.clone()],
            ..EtcdConfig::default()
        };
        if let Some(t) = &self.tls {
            c.ca_file = Some(t.ca.clone());
            c.cert_file = Some(t.client_cert.clone());
            c.key_file = Some(t.client_key.clone());
        }
        c
    }

    /// A connected client.
    pub async fn connect(&self) -> Etcd {
        Etcd::connect(&self.config())
            .await
            .expect("connect to test etcd")
    }
}

impl Drop for TestEtcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn make_certs(dir: &Path) -> (TlsFiles, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let write = |name: &str, text: String| {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write cert");
        p
    };
    let ca_key = KeyPair::generate().expect("key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("ca");
    let issuer = Issuer::new(ca_params, &ca_key);

    let server_key = KeyPair::generate().expect("key");
    let server_params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("params");
    let server = server_params
        .signed_by(&server_key, &issuer)
        .expect("server cert");

    let client_key = KeyPair::generate().expect("key");
    let client_params = CertificateParams::new(vec!["podbank".to_string()]).expect("params");
    let client = client_params
        .signed_by(&client_key, &issuer)
        .expect("client cert");

    let other_key = KeyPair::generate().expect("key");
    let mut other_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    other_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let other = other_params.self_signed(&other_key).expect("other ca");

    let files = TlsFiles {
        ca: write("ca.pem", ca.pem()),
        client_cert: write("client.pem", client.pem()),
        client_key: write("client-key.pem", client_key.serialize_pem()),
        other_ca: write("other-ca.pem", other.pem()),
    };
    let sc = write("server.pem", server.pem());
    let sk = write("server-key.pem", server_key.serialize_pem());
    (files, sc, sk)
}
