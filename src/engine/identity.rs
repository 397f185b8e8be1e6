//! Who calls, as Keystone says: tokens validated against Keystone with the agent's own
//! service credentials (through [`crate::openstack::Keystone::validate_token`]) and kept in a
//! bounded cache until they expire or for a bounded time. The agent's authentication
//! middleware asks [`KeystoneTokens::check`] and attaches the [`Caller`] to the request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};

use crate::openstack::{http_client, CloudEntry, Keystone, OpenStackError, TokenInfo};

/// How long one token validation may take (Keystone's login included).
const KEYSTONE_TIMEOUT: Duration = Duration::from_secs(10);

/// Who is calling, as Keystone validated their token: attached to each request let in with
/// `auth: keystone` (an axum extension; none with `auth: token`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The project the token is scoped to; `None` for an unscoped token.
    pub project_id: Option<String>,
    /// The names of the token's roles on that project.
    pub roles: Vec<String>,
    /// The user the token was issued to.
    pub user_id: String,
}

impl From<TokenInfo> for Caller {
    fn from(t: TokenInfo) -> Caller {
        Caller {
            project_id: t.project_id,
            roles: t.roles,
            user_id: t.user_id,
        }
    }
}

/// A validated token, trusted until `until`.
#[derive(Debug)]
struct Cached {
    caller: Caller,
    until: Instant,
}

/// Tokens validated against Keystone, and the cache of those found valid (by the sha256 of
/// the token: the tokens themselves are not kept).
///
/// Only valid tokens are cached: an invalid one is asked about again each time.
pub struct KeystoneTokens {
    keystone: Keystone,
    ttl: Duration,
    capacity: usize,
    cache: Mutex<HashMap<[u8; 32], Cached>>,
}

impl std::fmt::Debug for KeystoneTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeystoneTokens")
            .field("keystone", &self.keystone)
            .field("ttl", &self.ttl)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl KeystoneTokens {
    /// A validator that asks `keystone`, caching a valid token for at most `ttl` and at
    /// most `capacity` tokens.
    ///
    /// # Arguments
    /// * `keystone` - the agent's own Keystone session (it must be allowed to validate
    ///   tokens).
    /// * `ttl` - the longest a validated token is trusted without asking again.
    /// * `capacity` - the most tokens kept (at least one is).
    pub fn new(keystone: Keystone, ttl: Duration, capacity: usize) -> KeystoneTokens {
        KeystoneTokens {
            keystone,
            ttl,
            capacity: capacity.max(1),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The validator of a cloud of `clouds.yaml` (nothing is contacted yet; the first
    /// request logs in).
    ///
    /// # Arguments
    /// * `cloud`, `clouds_file` - the cloud's name, and the file naming it (`None`: the
    ///   usual places).
    /// * `ttl`, `capacity` - as [`KeystoneTokens::new`] takes them.
    pub fn from_cloud(
        cloud: &str,
        clouds_file: Option<&std::path::Path>,
        ttl: Duration,
        capacity: usize,
    ) -> Result<KeystoneTokens, OpenStackError> {
        let entry = CloudEntry::resolve(Some(cloud), clouds_file)?;
        let http = http_client(&entry, KEYSTONE_TIMEOUT)?;
        let keystone = Keystone::new(entry, http)?;
        Ok(KeystoneTokens::new(keystone, ttl, capacity))
    }

    /// A validator whose Keystone (port 9 of the loopback) never answers.
    #[cfg(test)]
    pub(crate) fn unreachable(ttl: Duration, capacity: usize) -> KeystoneTokens {
        let entry = CloudEntry::from_vars(|name| {
            match name {
                "OS_AUTH_URL" => Some("http://127.0.0.1:9/v3"),
                "OS_USERNAME" => Some("podbank"),
                "OS_PASSWORD" => Some("secret"),
                _ => None,
            }
            .map(str::to_string)
        });
        match Keystone::new(entry, reqwest::Client::new()) {
            Ok(keystone) => KeystoneTokens::new(keystone, ttl, capacity),
            Err(e) => panic!("a session (nothing contacted): {e}"),
        }
    }

    /// Whether `token` is valid: its caller if so, `None` if not; an error when Keystone
    /// cannot say (unreachable, failing, or refusing the agent's own credentials).
    ///
    /// # Arguments
    /// * `token` - the token the caller presented.
    pub async fn check(&self, token: &str) -> Result<Option<Caller>, OpenStackError> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(caller) = self.cached(&key) {
            return Ok(Some(caller));
        }
        let Some(info) = self.keystone.validate_token(token).await? else {
            self.forget(&key);
            return Ok(None);
        };
        let mut life = self.ttl;
        if let Some(expires) = info.expires_at {
            match expires.duration_since(SystemTime::now()) {
                Ok(left) if !left.is_zero() => life = life.min(left),
                _ => return Ok(None),
            }
        }
        let caller = Caller::from(info);
        if !life.is_zero() {
            self.remember(key, caller.clone(), Instant::now() + life);
        }
        Ok(Some(caller))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Cached>> {
        match self.cache.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn cached(&self, key: &[u8; 32]) -> Option<Caller> {
        let mut cache = self.lock();
        match cache.get(key) {
            Some(c) if c.until > Instant::now() => Some(c.caller.clone()),
            Some(_) => {
                cache.remove(key);
                None
            }
            None => None,
        }
    }

    fn forget(&self, key: &[u8; 32]) {
        self.lock().remove(key);
    }

    /// Keeps `caller` until `until`; when the cache is full, the expired entries go, then
    /// the one closest to its end.
    fn remember(&self, key: [u8; 32], caller: Caller, until: Instant) {
        let mut cache = self.lock();
        if cache.len() >= self.capacity && !cache.contains_key(&key) {
            let now = Instant::now();
            cache.retain(|_, c| c.until > now);
            while cache.len() >= self.capacity {
                let Some(first) = cache.iter().min_by_key(|(_, c)| c.until).map(|(k, _)| *k) else {
                    break;
                };
                cache.remove(&first);
            }
        }
        cache.insert(key, Cached { caller, until });
    }

    /// How many tokens are cached (tests, metrics).
    pub fn cached_tokens(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(ttl: Duration, capacity: usize) -> KeystoneTokens {
        KeystoneTokens::unreachable(ttl, capacity)
    }

    fn caller(user: &str) -> Caller {
        Caller {
            project_id: Some("p".into()),
            roles: vec!["member".into()],
            user_id: user.into(),
        }
    }

    #[test]
    fn the_cache_forgets_expired_tokens_and_stays_bounded() {
        let t = tokens(Duration::from_secs(300), 2);
        let now = Instant::now();
        let key = |b: u8| [b; 32];
        t.remember(key(1), caller("a"), now + Duration::from_secs(10));
        t.remember(key(2), caller("b"), now + Duration::from_secs(20));
        assert_eq!(t.cached(&key(1)), Some(caller("a")));
        // Full: the entry closest to its end goes.
        t.remember(key(3), caller("c"), now + Duration::from_secs(30));
        assert_eq!(t.cached_tokens(), 2);
        assert_eq!(t.cached(&key(1)), None);
        assert_eq!(t.cached(&key(3)), Some(caller("c")));
        // Past its end, an entry is not trusted (and is dropped).
        t.remember(key(4), caller("d"), now);
        assert_eq!(t.cached(&key(4)), None);
        assert_eq!(t.cached_tokens(), 1);
    }

    #[tokio::test]
    async fn keystone_unreachable_is_an_error_never_a_caller() {
        let t = tokens(Duration::from_secs(300), 10);
        let err = t
            .check("some-token")
            .await
            .expect_err("nothing listens on port 9");
        assert!(err.is_transient(), "{err}");
    }
}
