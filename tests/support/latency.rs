//! A latency-injecting TCP forwarder: what a far object store costs in round trips, on
//! loopback. Put in front of the Swift rig (or anything speaking HTTP/1.1 without
//! pipelining), it holds back each request by a fixed delay before passing it on, so that
//! every round trip a client makes shows up as time, as it would over a real network.
//!
//! A request is recognised without parsing HTTP: on each connection, the first bytes the
//! client sends after the server last answered (or after connecting) start a new request.
//! Only those are delayed; the rest of the request (a PUT's body) and every answer pass at
//! once. The bytes pass unchanged, the `Host` header included: the Swift rig builds its
//! storage URL from it, so a client authenticated through the forwarder stays behind it.
//!
//! The forwarder counts the requests it delayed ([`LatencyProxy::requests`]): a cross-check
//! of a client's own counters.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A running forwarder; it stops when dropped.
#[derive(Debug)]
pub struct LatencyProxy {
    /// Where clients connect, e.g. `http://127.0.0.1:40123`.
    pub url: String,
    requests: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl LatencyProxy {
    /// Starts a forwarder on a free loopback port to `upstream` (`host:port`), holding
    /// back each request by `delay`.
    pub async fn start(upstream: &str, delay: Duration) -> std::io::Result<LatencyProxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let requests = Arc::new(AtomicU64::new(0));
        let upstream = upstream.to_string();
        let counted = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let counted = counted.clone();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(&upstream).await {
                        forward(client, server, delay, counted).await;
                    }
                });
            }
        });
        Ok(LatencyProxy {
            url,
            requests,
            task,
        })
    }

    /// For an upstream URL such as `http://127.0.0.1:8080`: its `host:port`.
    pub fn host_port(url: &str) -> String {
        url.trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string()
    }

    /// Requests delayed so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for LatencyProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies both ways until either side closes, delaying the first bytes of each request.
async fn forward(client: TcpStream, server: TcpStream, delay: Duration, requests: Arc<AtomicU64>) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    // Set when the server has answered: the client's next bytes start a new request.
    let answered = Arc::new(AtomicBool::new(true));
    let answered_up = answered.clone();
    let up = async move {
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if answered_up.swap(false, Ordering::SeqCst) {
                requests.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
            }
            if server_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = server_write.shutdown().await;
    };
    let down = async move {
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            answered.store(true, Ordering::SeqCst);
            if client_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = client_write.shutdown().await;
    };
    tokio::join!(up, down);
}
