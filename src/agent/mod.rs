//! `podbank agent`: the long-running mode. A thin shell over the application API: leader
//! election ([`crate::etcd::election`]), the scheduler ([`schedule`]) that only the leader
//! runs, the HTTP server ([`http`]) of [`crate::api`], operations and metrics
//! ([`metrics`]), all around an [`Engine`] that does the actual protection work.
//!
//! The agent owns no data: checkpoints and restores live in the bank, behind the engine.
//! Its own state (operations, metrics) is in memory and per replica. Must not touch: the
//! bank, Cinder or etcd's data directly (all through the engine; etcd only for the
//! election).
//!
//! Life cycle ([`Agent::start`], [`Agent::shutdown`]):
//! 1. validate the config, read the token, bind the listener, start campaigning;
//! 2. serve HTTP on every replica; run schedules on the leader only;
//! 3. on shutdown: stop the scheduler and refuse new operations (HTTP 503, `/readyz`
//!    fails), let running operations finish within the grace period and cancel the rest,
//!    resign leadership, stop serving.

pub mod auth;
pub mod config;
pub mod http;
pub mod karbor;
pub mod limit;
pub mod metrics;
pub mod operations;
mod oplog;
pub mod schedule;
pub mod service;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::AgentConfig;
pub use service::Service;

use crate::engine::Engine;

use crate::etcd::{Election, ElectionError, Etcd};

/// Errors starting or running the agent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The `agent:` section of the config file is wrong; the message names the field.
    #[error("config: {0}")]
    Config(String),
    /// Leader election could not start (bad key or TTL).
    #[error(transparent)]
    Election(#[from] ElectionError),
    /// The listen address cannot be bound.
    #[error(
        "cannot listen on {addr}: {source} (is another agent running there? change agent.listen)"
    )]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A TLS file is missing or wrong; the message names it.
    #[error("TLS: {0}")]
    Tls(String),
    /// The HTTP server failed.
    #[error("HTTP server: {0}")]
    Serve(#[source] std::io::Error),
}

/// A running agent.
pub struct Agent {
    addr: SocketAddr,
    service: Arc<Service>,
    election: Election,
    stop: watch::Sender<bool>,
    scheduler: JoinHandle<()>,
    server: JoinHandle<Result<(), std::io::Error>>,
    server_stop: watch::Sender<bool>,
    grace: Duration,
}

impl Agent {
    /// Start the agent: election, scheduler and HTTP server.
    ///
    /// # Arguments
    /// * `config` - the typed `agent:` section.
    /// * `engine` - the protection engine.
    /// * `etcd` - a connection to the cluster's etcd, used for the election only.
    pub async fn start(
        config: &AgentConfig,
        engine: Arc<dyn Engine>,
        etcd: &Etcd,
    ) -> Result<Agent, AgentError> {
        let plans = config.plans()?;
        let (token, keystone) = match config.authentication()? {
            config::Authentication::Token(token) => (token, None),
            config::Authentication::Keystone(k) => {
                let tokens = crate::engine::identity::KeystoneTokens::from_cloud(
                    &k.cloud,
                    k.clouds_file.as_deref(),
                    std::time::Duration::from_secs(k.cache_seconds),
                    k.cache_size,
                )
                .map_err(|e| AgentError::Config(format!("agent.keystone: {e}")))?;
                (None, Some(tokens))
            }
        };
        let client_certs = config
            .tls
            .as_ref()
            .is_some_and(|t| t.client_ca_file.is_some());
        if token.is_none() && keystone.is_none() && !client_certs {
            return Err(AgentError::Config(
                "agent.token_file (or agent.tls.client_ca_file) is required: the API must \
                 not be open to anyone who reaches the port"
                    .into(),
            ));
        }
        let tls = config.tls.as_ref().map(tls::server_config).transpose()?;
        let election_config = config.election_config();
        election_config.validate(etcd.config().prefix())?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| AgentError::Listen {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| AgentError::Listen {
            addr: config.listen,
            source,
        })?;
        let election = Election::start(etcd, election_config)?;
        let service = Service::with_read_limits(engine, plans, election.leading(), config.reads);
        let (router, _) = http::router_with_auth(
            Arc::clone(&service),
            http::Auth {
                token: token.as_deref(),
                client_cert: client_certs,
                keystone,
            },
        );
        let (stop, stop_rx) = watch::channel(false);
        let scheduler = tokio::spawn(schedule::run_scheduler(
            Arc::clone(&service),
            election.leading(),
            stop_rx,
        ));
        let (server_stop, mut server_stop_rx) = watch::channel(false);
        let server = match tls {
            None => tokio::spawn(async move {
                axum::serve(listener, router)
                    .with_graceful_shutdown(async move {
                        let _ = server_stop_rx.wait_for(|s| *s).await;
                    })
                    .await
            }),
            Some(tls) => {
                let std_listener = listener.into_std().map_err(|source| AgentError::Listen {
                    addr: config.listen,
                    source,
                })?;
                let handle = axum_server::Handle::new();
                let server = axum_server::from_tcp_rustls(
                    std_listener,
                    axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(tls)),
                )
                .map_err(|source| AgentError::Listen {
                    addr: config.listen,
                    source,
                })?
                .handle(handle.clone());
                tokio::spawn(async move {
                    let stopper = tokio::spawn(async move {
                        let _ = server_stop_rx.wait_for(|s| *s).await;
                        handle.graceful_shutdown(Some(Duration::from_secs(10)));
                    });
                    let out = server.serve(router.into_make_service()).await;
                    stopper.abort();
                    out
                })
            }
        };
        tracing::info!(%addr, identity = %election.config().identity, key = %election.config().key, "agent started");
        Ok(Agent {
            addr,
            service,
            election,
            stop,
            scheduler,
            server,
            server_stop,
            grace: config.grace_period,
        })
    }

    /// The address the HTTP API listens on (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether this replica leads, and its changes.
    pub fn leading(&self) -> watch::Receiver<bool> {
        self.election.leading()
    }

    /// The agent's core (operations, plans, metrics).
    pub fn service(&self) -> &Arc<Service> {
        &self.service
    }

    /// Stop gracefully: no new work; running operations get the grace period, then are
    /// cancelled; leadership is resigned; the HTTP server stops. Returns the ids of the
    /// operations cancelled.
    pub async fn shutdown(self) -> Result<Vec<String>, AgentError> {
        tracing::info!(grace = ?self.grace, running = self.service.operations().running(), "agent: shutting down");
        let _ = self.stop.send(true);
        self.service.operations().close();
        let _ = self.scheduler.await;
        let cancelled = self.service.operations().drain(self.grace).await;
        if !cancelled.is_empty() {
            tracing::warn!(
                ?cancelled,
                "agent: operations cancelled at the end of the grace period"
            );
        }
        self.election.resign(Duration::from_secs(5)).await;
        let _ = self.server_stop.send(true);
        match tokio::time::timeout(Duration::from_secs(10), self.server).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => return Err(AgentError::Serve(e)),
            // The task panicked, or connections outlived the timeout: nothing more to do.
            Ok(Err(_)) | Err(_) => {}
        }
        tracing::info!("agent: stopped");
        Ok(cancelled)
    }

    /// Simulate a crash (tests): stop everything at once, resign nothing. Another replica
    /// takes over when the lease expires.
    pub fn abort(self) {
        self.scheduler.abort();
        self.server.abort();
        drop(self.election);
    }
}

/// Run the agent until `shutdown` resolves, then stop gracefully.
pub async fn run(
    config: &AgentConfig,
    engine: Arc<dyn Engine>,
    etcd: &Etcd,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AgentError> {
    let agent = Agent::start(config, engine, etcd).await?;
    shutdown.await;
    agent.shutdown().await.map(|_| ())
}

/// A future that resolves on SIGTERM or SIGINT (Ctrl-C).
///
/// The handlers are installed when this function returns, not when the future is first
/// polled: a signal that arrives in between is not lost, and no longer kills the process.
#[cfg(unix)]
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
    })
}
