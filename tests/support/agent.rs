//! A real `podbank agent` process for tests: start, wait until it listens, ask, signal.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::etcd::{free_port, TestEtcd};
use super::http::request;

/// The bearer token [`AgentProc::get`] sends.
pub const TOKEN: &str = "process-token";

/// A `podbank agent` process with its log file.
pub struct AgentProc {
    pub child: Child,
    pub addr: std::net::SocketAddr,
    pub log: PathBuf,
}

impl AgentProc {
    /// Start `podbank agent --no-volume-backups` with `dir/podbank.yaml` and the bank
    /// `dir/bank`.
    pub fn spawn(etcd: &TestEtcd, dir: &Path, name: &str) -> AgentProc {
        Self::spawn_with(etcd, dir, name, &[])
    }

    /// Like [`AgentProc::spawn`], with more environment variables.
    pub fn spawn_with(
        etcd: &TestEtcd,
        dir: &Path,
        name: &str,
        env: &[(&str, &std::ffi::OsStr)],
    ) -> AgentProc {
        let port = free_port();
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(super::podbank_bin())
            .args([
                "agent",
                "--no-volume-backups",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--identity",
                name,
            ])
            .env("PODBANK_CONFIG", dir.join("podbank.yaml"))
            .env("PODBANK_ETCD_SERVERS", &etcd.url)
            .env("PODBANK_BANK", dir.join("bank"))
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start podbank agent");
        AgentProc {
            child,
            addr: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            log,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        request(self.addr, "GET", path, Some(TOKEN), None).await
    }

    pub async fn wait_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(self.addr).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("agent exited with {status}:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "agent never listened:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn leads(&self) -> bool {
        self.get("/v1/podbank/plans").await.1["leader"] == true
    }

    /// Plan runs this replica started.
    pub async fn plan_runs(&self) -> Vec<Value> {
        let (_, ops) = self.get("/v1/operations").await;
        ops["items"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|o| o["kind"] == "plan_run")
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill {sig}");
    }

    pub async fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "agent did not exit:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
