//! Leader election among agent replicas, through an etcd lease and etcd's election API
//! (`campaign` / `leader` / `observe` / `resign`, plus lease keep-alive).
//!
//! This is the only place where podbank writes to etcd, and it writes only under its own
//! election key (default `/podbank/election/<name>`): etcd's election service puts one key
//! per candidate, `<key>/<lease id>`, attached to the candidate's lease. A key under the
//! Kubernetes prefix (kube-apiserver's `--etcd-prefix`) is refused.
//!
//! Guarantees, relied upon by the agent:
//! * At most one participant believes it leads at any time, as long as clocks run at the
//!   same rate: a leader steps down (its [`Election::leading`] turns `false`) as soon as it
//!   cannot prove, from a keep-alive answer, that its lease is still alive — never later
//!   than the lease would expire on the server, because the local deadline is counted from
//!   the moment the keep-alive was *sent*.
//! * When a leader's process dies (or [`Election`] is dropped, which behaves like a crash),
//!   its lease expires within the TTL and the next candidate's `campaign` returns.
//! * [`Election::resign`] is the graceful path: the key is deleted and the lease revoked,
//!   so another replica takes over at once.

use std::time::Duration;

use etcd_client::{Client, LeaderKey, ResignOptions};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{sleep, sleep_until, Instant};

use super::Etcd;

/// The default prefix of election keys; the election name is appended.
pub const DEFAULT_ELECTION_PREFIX: &str = "/podbank/election/";

/// Shortest lease TTL accepted (etcd's own minimum is a few seconds).
pub const MIN_TTL: Duration = Duration::from_secs(2);

/// The longest election TTL taken: a dead leader keeps the role for up to a TTL, so an hour
/// is already long; etcd itself refuses leases of more than 9e9 s ("too large lease TTL").
pub const MAX_TTL: Duration = Duration::from_secs(3600);

/// Errors of leader election.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ElectionError {
    /// The election key lies under the Kubernetes prefix, where podbank never writes.
    #[error(
        "election key {key:?} is under the Kubernetes prefix {prefix:?}, where podbank never \
         writes: choose a key under {DEFAULT_ELECTION_PREFIX}"
    )]
    KeyUnderKubernetesPrefix {
        /// The key given.
        key: String,
        /// kube-apiserver's `--etcd-prefix`.
        prefix: String,
    },
    /// The key is not an absolute etcd key.
    #[error("election key {0:?} is invalid: it must start with '/' and name an election, e.g. /podbank/election/agent")]
    InvalidKey(String),
    /// The TTL is too short, too long or not a whole number of seconds.
    #[error("election TTL {0:?} is invalid: use a whole number of seconds from 2 to 3600 (15 is a good default)")]
    InvalidTtl(Duration),
    /// An etcd request failed.
    #[error("leader election {op} on {key}: {source}")]
    Etcd {
        /// The request (grant, campaign, leader, resign, revoke).
        op: &'static str,
        /// The election key.
        key: String,
        /// The client's error.
        #[source]
        source: Box<etcd_client::Error>,
    },
}

/// What to campaign for, and as whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElectionConfig {
    /// The election key (etcd's election "name"), e.g. `/podbank/election/agent`.
    pub key: String,
    /// Lease time to live: how long a dead leader keeps the role at most.
    pub ttl: Duration,
    /// This participant's identity, stored as the value of its candidate key (node name,
    /// host name, ...). Shown as the leader by [`Election::leader`].
    pub identity: String,
}

impl ElectionConfig {
    /// The default key for an election called `name`: `/podbank/election/<name>`.
    pub fn default_key(name: &str) -> String {
        format!("{DEFAULT_ELECTION_PREFIX}{name}")
    }

    /// Check the key and TTL; `kubernetes_prefix` is kube-apiserver's `--etcd-prefix`.
    pub fn validate(&self, kubernetes_prefix: &str) -> Result<(), ElectionError> {
        let key = self.key.as_str();
        if !key.starts_with('/') || key.trim_end_matches('/').is_empty() {
            return Err(ElectionError::InvalidKey(self.key.clone()));
        }
        let prefix = kubernetes_prefix.trim_end_matches('/');
        let under = if prefix.is_empty() {
            // kube-apiserver writes `/<resource>/...` at the root: only podbank's own
            // folder is safe.
            !key.starts_with(DEFAULT_ELECTION_PREFIX.trim_end_matches("election/"))
        } else {
            key == prefix || key.starts_with(&format!("{prefix}/"))
        };
        if under {
            return Err(ElectionError::KeyUnderKubernetesPrefix {
                key: self.key.clone(),
                prefix: kubernetes_prefix.to_string(),
            });
        }
        if self.ttl < MIN_TTL || self.ttl > MAX_TTL || self.ttl.subsec_nanos() != 0 {
            return Err(ElectionError::InvalidTtl(self.ttl));
        }
        Ok(())
    }
}

/// A running participation in an election.
///
/// Dropping it stops participating *without* resigning, as a crash would: if it led, the
/// others take over when its lease expires. Call [`Election::resign`] to step down at once.
pub struct Election {
    config: ElectionConfig,
    client: Client,
    leading: watch::Receiver<bool>,
    leader: watch::Receiver<Option<String>>,
    stop: watch::Sender<bool>,
    campaign: Option<JoinHandle<()>>,
    observer: JoinHandle<()>,
}

impl std::fmt::Debug for Election {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Election")
            .field("config", &self.config)
            .field("leading", &*self.leading.borrow())
            .finish()
    }
}

impl Election {
    /// Validate `config` and start campaigning in the background.
    ///
    /// Returns at once; [`Election::leading`] turns `true` when this participant wins.
    /// etcd being unreachable is not an error here: the participant retries, and never
    /// leads while it cannot keep its lease alive.
    pub fn start(etcd: &Etcd, config: ElectionConfig) -> Result<Election, ElectionError> {
        config.validate(etcd.config().prefix())?;
        let client = etcd.client().clone();
        let (leading_tx, leading) = watch::channel(false);
        let (leader_tx, leader) = watch::channel(None);
        let (stop, stop_rx) = watch::channel(false);
        let campaign = tokio::spawn(participate(
            client.clone(),
            config.clone(),
            leading_tx,
            stop_rx.clone(),
        ));
        let observer = tokio::spawn(observe(
            client.clone(),
            config.key.clone(),
            leader_tx,
            stop_rx,
        ));
        Ok(Election {
            config,
            client,
            leading,
            leader,
            stop,
            campaign: Some(campaign),
            observer,
        })
    }

    /// Whether this participant leads now, and every change of it.
    pub fn leading(&self) -> watch::Receiver<bool> {
        self.leading.clone()
    }

    /// Whether this participant leads now.
    pub fn is_leader(&self) -> bool {
        *self.leading.borrow()
    }

    /// The identity of the leader as last observed through etcd's `observe` stream
    /// (`None` until a leader has been seen).
    pub fn leader(&self) -> watch::Receiver<Option<String>> {
        self.leader.clone()
    }

    /// Ask etcd who leads now (`None` if nobody does).
    pub async fn current_leader(&self) -> Result<Option<String>, ElectionError> {
        let mut election = self.client.election_client();
        match election.leader(self.config.key.as_bytes()).await {
            Ok(resp) => Ok(resp
                .kv()
                .map(|kv| String::from_utf8_lossy(kv.value()).into_owned())),
            // etcd answers "election: no leader" as an error.
            Err(e) if e.to_string().contains("no leader") => Ok(None),
            Err(e) => Err(ElectionError::Etcd {
                op: "leader",
                key: self.config.key.clone(),
                source: Box::new(e),
            }),
        }
    }

    /// The settings this participant runs with.
    pub fn config(&self) -> &ElectionConfig {
        &self.config
    }

    /// Step down and stop participating: the candidate key is deleted and the lease
    /// revoked, so another participant can lead at once. Waits at most `timeout` for etcd;
    /// past it, the lease simply expires.
    pub async fn resign(mut self, timeout: Duration) {
        let _ = self.stop.send(true);
        if let Some(task) = self.campaign.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(timeout, task).await.is_err() {
                abort.abort();
            }
        }
        self.observer.abort();
    }
}

impl Drop for Election {
    fn drop(&mut self) {
        if let Some(task) = &self.campaign {
            task.abort();
        }
        self.observer.abort();
    }
}

/// Why a lease is no longer known to be alive.
#[derive(Debug)]
struct LeaseLost(String);

/// Campaign, lead, lose, campaign again — until `stop`.
async fn participate(
    client: Client,
    config: ElectionConfig,
    leading: watch::Sender<bool>,
    mut stop: watch::Receiver<bool>,
) {
    let ttl_secs = i64::try_from(config.ttl.as_secs()).unwrap_or(i64::MAX);
    let mut backoff = Backoff::new(config.ttl);
    loop {
        if *stop.borrow() {
            return;
        }
        let mut leases = client.lease_client();
        let lease = match leases.grant(ttl_secs, None).await {
            Ok(resp) => resp.id(),
            Err(e) => {
                tracing::warn!(key = %config.key, error = %e, "leader election: cannot get a lease; retrying");
                if wait_or_stop(backoff.next(), &mut stop).await {
                    return;
                }
                continue;
            }
        };
        // The lease counts from the grant: the local deadline starts now, before any
        // keep-alive answer arrives.
        let keep = keep_alive(
            client.clone(),
            lease,
            config.ttl,
            Instant::now() + config.ttl,
        );
        tokio::pin!(keep);
        let won = tokio::select! {
            won = campaign(client.clone(), &config, lease) => Some(won),
            lost = &mut keep => {
                tracing::warn!(key = %config.key, reason = %lost.0, "leader election: lease lost while campaigning");
                None
            }
            _ = stopped(&mut stop) => {
                revoke(&client, lease).await;
                return;
            }
        };
        let Some(leader_key) = won else {
            continue;
        };
        backoff.reset();
        tracing::info!(key = %config.key, identity = %config.identity, "leader election: leading");
        let _ = leading.send(true);
        tokio::select! {
            lost = &mut keep => {
                let _ = leading.send(false);
                tracing::warn!(key = %config.key, reason = %lost.0, "leader election: lost leadership");
            }
            _ = stopped(&mut stop) => {
                let _ = leading.send(false);
                let mut election = client.election_client();
                if let Err(e) = election
                    .resign(Some(ResignOptions::new().with_leader(leader_key)))
                    .await
                {
                    tracing::warn!(key = %config.key, error = %e, "leader election: resign failed; the lease is revoked instead");
                }
                revoke(&client, lease).await;
                tracing::info!(key = %config.key, "leader election: resigned");
                return;
            }
        }
    }
}

/// Campaign until elected. Retries on errors (etcd unreachable, the client's request
/// timeout while another participant leads): campaigning again with the same lease is
/// idempotent in etcd's election service.
async fn campaign(client: Client, config: &ElectionConfig, lease: i64) -> LeaderKey {
    let mut backoff = Backoff::new(config.ttl);
    loop {
        let mut election = client.election_client();
        let called = Instant::now();
        match election
            .campaign(config.key.as_bytes(), config.identity.as_bytes(), lease)
            .await
        {
            Ok(mut resp) => {
                if let Some(key) = resp.take_leader() {
                    return key;
                }
                tracing::warn!(key = %config.key, "leader election: campaign answered without a leader key; retrying");
            }
            Err(e) => {
                tracing::debug!(key = %config.key, error = %e, "leader election: campaign interrupted; retrying");
                if called.elapsed() >= Duration::from_millis(500) {
                    // A long wait that ended (the client's request timeout while another
                    // participant leads): expected; campaign again at once, so that a
                    // leader's death is noticed without delay.
                    backoff.reset();
                    continue;
                }
            }
        }
        sleep(backoff.next()).await;
    }
}

/// Keep `lease` alive; returns when it can no longer be proven alive.
///
/// `deadline` is when the lease expires at the latest as far as this side knows. Each
/// answer moves it to (time the request was sent + the TTL the server granted).
async fn keep_alive(client: Client, lease: i64, ttl: Duration, mut deadline: Instant) -> LeaseLost {
    let period = (ttl / 3).max(Duration::from_millis(500));
    loop {
        let mut leases = client.lease_client();
        let stream = tokio::select! {
            r = leases.keep_alive(lease) => r,
            _ = sleep_until(deadline) => return LeaseLost("no keep-alive stream before the lease expired".into()),
        };
        let (mut keeper, mut stream) = match stream {
            Ok(pair) => pair,
            Err(e) => {
                tracing::debug!(lease, error = %e, "lease keep-alive: cannot open the stream; retrying");
                tokio::select! {
                    _ = sleep(Duration::from_millis(200)) => continue,
                    _ = sleep_until(deadline) => return LeaseLost(format!("keep-alive failed until the lease expired: {e}")),
                }
            }
        };
        // Opening the stream sent the first request.
        let mut sent = Instant::now();
        let mut next = sent + period;
        loop {
            tokio::select! {
                _ = sleep_until(next) => {
                    sent = Instant::now();
                    next = sent + period;
                    if keeper.keep_alive().await.is_err() {
                        break; // re-open the stream
                    }
                }
                msg = stream.message() => match msg {
                    Ok(Some(resp)) if resp.ttl() > 0 => {
                        let granted = Duration::from_secs(u64::try_from(resp.ttl()).unwrap_or(0));
                        deadline = deadline.max(sent + granted);
                    }
                    Ok(Some(_)) => return LeaseLost("the lease expired on the server".into()),
                    Ok(None) | Err(_) => break,
                },
                _ = sleep_until(deadline) => {
                    return LeaseLost("no keep-alive answer before the lease expired".into());
                }
            }
        }
    }
}

/// Publish the observed leader's identity.
async fn observe(
    client: Client,
    key: String,
    leader: watch::Sender<Option<String>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Backoff::new(Duration::from_secs(5));
    loop {
        let mut election = client.election_client();
        let opened = tokio::select! {
            r = election.observe(key.as_bytes()) => r,
            _ = stopped(&mut stop) => return,
        };
        match opened {
            Ok(mut stream) => loop {
                let msg = tokio::select! {
                    m = stream.message() => m,
                    _ = stopped(&mut stop) => return,
                };
                match msg {
                    Ok(Some(resp)) => {
                        backoff.reset();
                        let who = resp
                            .kv()
                            .map(|kv| String::from_utf8_lossy(kv.value()).into_owned());
                        let _ = leader.send(who);
                    }
                    Ok(None) | Err(_) => break,
                }
            },
            Err(e) => {
                tracing::debug!(key = %key, error = %e, "leader election: cannot observe; retrying");
            }
        }
        if wait_or_stop(backoff.next(), &mut stop).await {
            return;
        }
    }
}

async fn revoke(client: &Client, lease: i64) {
    let mut leases = client.lease_client();
    if let Err(e) = leases.revoke(lease).await {
        tracing::debug!(lease, error = %e, "leader election: revoking the lease failed; it expires by itself");
    }
}

/// Resolves when `stop` turns true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Sleep `d`; true if stopped meanwhile.
async fn wait_or_stop(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = sleep(d) => *stop.borrow(),
        _ = stopped(stop) => true,
    }
}

/// Doubling retry delay from 100 ms up to a cap.
struct Backoff {
    current: Duration,
    cap: Duration,
}

impl Backoff {
    fn new(cap: Duration) -> Backoff {
        Backoff {
            current: Duration::from_millis(100),
            cap: cap.clamp(Duration::from_millis(100), Duration::from_secs(5)),
        }
    }

    fn next(&mut self) -> Duration {
        let d = self.current;
        self.current = (self.current * 2).min(self.cap);
        d
    }

    fn reset(&mut self) {
        self.current = Duration::from_millis(100);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(key: &str, ttl: u64) -> ElectionConfig {
        ElectionConfig {
            key: key.into(),
            ttl: Duration::from_secs(ttl),
            identity: "node-a".into(),
        }
    }

    #[test]
    fn keys_under_the_kubernetes_prefix_are_refused() {
        for key in ["/registry", "/registry/", "/registry/podbank/election/x"] {
            let err = config(key, 10).validate("/registry").unwrap_err();
            assert!(
                matches!(err, ElectionError::KeyUnderKubernetesPrefix { .. }),
                "{key}: {err}"
            );
        }
        assert!(config("/registry2/x", 10).validate("/registry").is_ok());
        assert!(config("/podbank/election/agent", 10)
            .validate("/registry/")
            .is_ok());
        // kube-apiserver at the root: only podbank's own folder is safe.
        assert!(config("/pods/x", 10).validate("/").is_err());
        assert!(config("/podbank/election/agent", 10).validate("").is_ok());
    }

    #[test]
    fn bad_keys_and_ttls_are_refused() {
        assert!(matches!(
            config("podbank/election", 10).validate("/registry"),
            Err(ElectionError::InvalidKey(_))
        ));
        assert!(matches!(
            config("/", 10).validate("/registry"),
            Err(ElectionError::InvalidKey(_))
        ));
        assert!(matches!(
            config("/podbank/election/a", 1).validate("/registry"),
            Err(ElectionError::InvalidTtl(_))
        ));
        let mut c = config("/podbank/election/a", 3);
        c.ttl += Duration::from_millis(500);
        assert!(matches!(
            c.validate("/registry"),
            Err(ElectionError::InvalidTtl(_))
        ));
        assert_eq!(
            ElectionConfig::default_key("agent"),
            "/podbank/election/agent"
        );
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let mut b = Backoff::new(Duration::from_millis(350));
        assert_eq!(b.next(), Duration::from_millis(100));
        assert_eq!(b.next(), Duration::from_millis(200));
        assert_eq!(b.next(), Duration::from_millis(350));
        assert_eq!(b.next(), Duration::from_millis(350));
        b.reset();
        assert_eq!(b.next(), Duration::from_millis(100));
    }
}
