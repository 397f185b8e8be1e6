//! The `agent:` section of the config file, typed: where to listen, how callers
//! authenticate, the election, the shutdown grace period, and the plans.
//!
//! Parsing checks everything that can be checked without I/O (schedules, selectors,
//! protect parameters, names), so that a wrong config stops the agent at start with a
//! message naming the field, not at 2 a.m. when a schedule fires.
//!
//! ```yaml
//! agent:
//!   listen: 0.0.0.0:8790
//!   auth: token                # default; or keystone, with `keystone:` and no token_file
//!   token_file: /etc/podbank/secret/api-token
//!   # keystone: { cloud: podbank, clouds_file: /etc/openstack/clouds.yaml, cache_seconds: 300 }
//!   tls:                       # optional; client_ca_file turns on mTLS
//!     cert_file: /etc/podbank/tls/tls.crt
//!     key_file: /etc/podbank/tls/tls.key
//!     client_ca_file: /etc/podbank/tls/ca.crt
//!   election: { key: /podbank/election/agent, ttl: 15s }
//!   identity: node-1           # default: $PODBANK_NODE_NAME, then the host name
//!   grace_period: 5m
//!   plans:
//!     - name: nightly
//!       namespaces: [shop]
//!       selector: "backup.podbank.io/enabled=true"
//!       pods: []
//!       schedule: "0 2 * * *"  # cron, optional leading seconds field
//!       options: { backup_name: nightly, description: nightly backup }
//!       retention: { keep_last: 7, max_age: 30d }
//!       hooks:                 # Velero's hook settings, for pods whose annotations
//!         - selector: app=postgres   # the operator does not own (default: all its pods)
//!           pre: { container: db, command: [sh, -c, "psql -c CHECKPOINT"], on_error: Fail, timeout: 30s }
//!           post: { command: /usr/local/bin/thaw }
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::AgentError;
use crate::engine::{Plan, Schedule, SelectionSpec};
use crate::etcd::ElectionConfig;
use crate::model::Namespace;
use crate::protection::hooks::{PlanHook, PlanHooks};
use crate::protection::retention::RetentionPolicy;
use crate::protection::schema::ProtectParams;

/// The agent's settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentConfig {
    /// Address and port of the HTTP API.
    pub listen: SocketAddr,
    /// How callers authenticate (`token`, the default, or `keystone`).
    pub auth: Option<AuthMode>,
    /// File holding the bearer token callers must present (`auth: token`).
    pub token_file: Option<PathBuf>,
    /// Where and how tokens are validated (`auth: keystone`).
    pub keystone: Option<KeystoneAuthConfig>,
    /// TLS for the HTTP API; with a client CA, callers must present a certificate.
    pub tls: Option<TlsConfig>,
    /// Leader election.
    pub election: ElectionSettings,
    /// This replica's name in the election (default: `$PODBANK_NODE_NAME`, then the host
    /// name).
    pub identity: Option<String>,
    /// How long an operation in progress may run on after SIGTERM.
    #[serde(with = "as_text")]
    pub grace_period: Duration,
    /// Scheduled protection plans.
    pub plans: Vec<PlanConfig>,
    /// The bound on requests that read etcd or the bank (listings and shows of pods,
    /// checkpoint shows): past it, 503 with `Retry-After`.
    pub reads: super::limit::ReadLimits,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8790)),
            auth: None,
            token_file: None,
            keystone: None,
            tls: None,
            election: ElectionSettings::default(),
            identity: None,
            grace_period: Duration::from_secs(300),
            plans: Vec::new(),
            reads: super::limit::ReadLimits::default(),
        }
    }
}

/// How callers of the API authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// One static token, from `token_file` (single tenant).
    Token,
    /// Tokens issued by Keystone, validated against it (`keystone:`).
    Keystone,
}

/// `auth: keystone`: the agent's own Keystone credentials and the cache of validated tokens.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeystoneAuthConfig {
    /// The cloud in `clouds.yaml` with the agent's service credentials (it needs the right
    /// to validate tokens: the admin or service role).
    pub cloud: String,
    /// The `clouds.yaml` to read; default: `./clouds.yaml`,
    /// `~/.config/openstack/clouds.yaml`, `/etc/openstack/clouds.yaml`.
    #[serde(default)]
    pub clouds_file: Option<PathBuf>,
    /// How long a validated token is trusted without asking Keystone again (at most until
    /// it expires): the longest a revoked token is still accepted. Default 300.
    #[serde(default = "default_cache_seconds")]
    pub cache_seconds: u64,
    /// How many validated tokens are kept at most. Default 10000.
    #[serde(default = "default_cache_size")]
    pub cache_size: usize,
}

fn default_cache_seconds() -> u64 {
    300
}

fn default_cache_size() -> usize {
    10_000
}

/// How the API authenticates callers, as checked by [`AgentConfig::authentication`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authentication {
    /// The static token (read from `token_file`); `None` when there is none and a client
    /// certificate (mTLS) is the only credential.
    Token(Option<Vec<u8>>),
    /// Keystone tokens.
    Keystone(KeystoneAuthConfig),
}

/// TLS files of the HTTP API.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Server certificate chain (PEM).
    pub cert_file: PathBuf,
    /// Server private key (PEM).
    pub key_file: PathBuf,
    /// CA that signs client certificates; when set, clients must present one (mTLS).
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
}

/// Leader election settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ElectionSettings {
    /// The election key, under podbank's own prefix.
    pub key: String,
    /// Lease TTL: the longest a dead leader keeps the role.
    #[serde(with = "as_text")]
    pub ttl: Duration,
}

impl Default for ElectionSettings {
    fn default() -> Self {
        ElectionSettings {
            key: ElectionConfig::default_key("agent"),
            ttl: Duration::from_secs(15),
        }
    }
}

/// One plan as written in the file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PlanConfig {
    /// Plan name: lower-case letters, digits and '-', at most 63 characters.
    pub name: String,
    /// Namespaces; empty means all.
    #[serde(default)]
    pub namespaces: Vec<Namespace>,
    /// Label selector over pod labels.
    #[serde(default)]
    pub selector: Option<String>,
    /// Explicit pods as `<namespace>/<name>`.
    #[serde(default)]
    pub pods: Vec<String>,
    /// Cron schedule: 5 fields, or 6 with leading seconds; evaluated in UTC.
    pub schedule: String,
    /// Protect parameters (`backup_name`, `description`, ...).
    pub options: serde_json::Value,
    /// Retention policy.
    #[serde(default)]
    pub retention: RetentionPolicy,
    /// Exec hooks for the plan's pods, with the meanings of Velero's annotations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<PlanHook>,
}

impl AgentConfig {
    /// Parse the raw `agent:` section (absent or null means defaults).
    pub fn from_yaml(raw: &serde_yaml::Value) -> Result<AgentConfig, AgentError> {
        if raw.is_null() {
            return Ok(AgentConfig::default());
        }
        serde_path_to_error::deserialize(raw.clone()).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path == "." {
                AgentError::Config(format!("agent: {inner}"))
            } else {
                AgentError::Config(format!("agent.{path}: {inner}"))
            }
        })
    }

    /// Check the plans and turn them into runnable [`Plan`]s.
    pub fn plans(&self) -> Result<Vec<Plan>, AgentError> {
        let mut seen = std::collections::BTreeSet::new();
        let mut out = Vec::with_capacity(self.plans.len());
        for p in &self.plans {
            let bad = |what: String| AgentError::Config(format!("agent.plans[{}]: {what}", p.name));
            if !valid_plan_name(&p.name) {
                return Err(bad(
                    "the name must be 1-63 lower-case letters, digits or '-', starting and \
                     ending with a letter or digit"
                        .into(),
                ));
            }
            if !seen.insert(p.name.clone()) {
                return Err(bad("the name is used by another plan".into()));
            }
            let schedule = Schedule::parse(&p.schedule).map_err(|e| bad(e.to_string()))?;
            let mut pods = Vec::with_capacity(p.pods.len());
            for pod in &p.pods {
                pods.push(
                    pod.parse()
                        .map_err(|e: crate::model::IdError| bad(e.to_string()))?,
                );
            }
            let selection = SelectionSpec {
                namespaces: p.namespaces.clone(),
                label_selector: p.selector.clone(),
                pods,
                ..SelectionSpec::default()
            };
            selection.resolve().map_err(|e| bad(e.to_string()))?;
            let parameters =
                ProtectParams::from_json(&p.options).map_err(|e| bad(format!("options: {e}")))?;
            if p.retention.keep_last == Some(0) {
                return Err(bad(
                    "retention.keep_last must be at least 1 (omit it to keep every checkpoint)"
                        .into(),
                ));
            }
            // Read as protect will read them: a wrong value stops the agent now, not at
            // the plan's first run.
            PlanHooks::new(&p.name, &p.hooks).map_err(|e| bad(e.to_string()))?;
            out.push(Plan {
                name: p.name.clone(),
                selection,
                parameters,
                schedule,
                retention: p.retention.clone(),
                hooks: p.hooks.clone(),
            });
        }
        Ok(out)
    }

    /// The identity to campaign under.
    pub fn identity(&self) -> String {
        if let Some(id) = self.identity.as_ref().filter(|s| !s.is_empty()) {
            return id.clone();
        }
        if let Ok(node) = std::env::var("PODBANK_NODE_NAME") {
            if !node.is_empty() {
                return node;
            }
        }
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| format!("podbank-{}", std::process::id()))
    }

    /// The election settings, ready for [`crate::etcd::Election::start`].
    pub fn election_config(&self) -> ElectionConfig {
        ElectionConfig {
            key: self.election.key.clone(),
            ttl: self.election.ttl,
            identity: self.identity(),
        }
    }

    /// How callers authenticate: `auth`, checked against the keys that go with it (a
    /// `token_file` with `auth: token`, a `keystone:` section and no `token_file` with
    /// `auth: keystone`), and the token read when there is one.
    pub fn authentication(&self) -> Result<Authentication, AgentError> {
        let bad = |m: &str| Err(AgentError::Config(m.to_string()));
        match (self.auth, &self.keystone) {
            (Some(AuthMode::Keystone), Some(keystone)) => {
                if self.token_file.is_some() {
                    return bad(
                        "agent.auth is keystone but agent.token_file is set: callers present \
                         Keystone tokens, not the static token; remove agent.token_file (or \
                         set agent.auth: token and remove agent.keystone)",
                    );
                }
                if keystone.cloud.is_empty() {
                    return bad("agent.keystone.cloud is empty: name the cloud in clouds.yaml");
                }
                if keystone.cache_size == 0 {
                    return bad("agent.keystone.cache_size must be at least 1");
                }
                Ok(Authentication::Keystone(keystone.clone()))
            }
            (Some(AuthMode::Keystone), None) => bad(
                "agent.auth is keystone but there is no agent.keystone section: set \
                 agent.keystone.cloud (the cloud in clouds.yaml with the agent's service \
                 credentials)",
            ),
            (_, Some(_)) => bad(
                "agent.keystone is set but agent.auth is not keystone: set agent.auth: \
                 keystone (and remove agent.token_file), or remove agent.keystone",
            ),
            (Some(AuthMode::Token), None) if self.token_file.is_none() => bad(
                "agent.auth is token but agent.token_file is not set: put the static token in \
                 a file and name it in agent.token_file",
            ),
            (_, None) => Ok(Authentication::Token(self.read_token()?)),
        }
    }

    /// Read the bearer token. `None` when no token file is configured.
    pub fn read_token(&self) -> Result<Option<Vec<u8>>, AgentError> {
        let Some(path) = &self.token_file else {
            return Ok(None);
        };
        let text = std::fs::read(path)
            .map_err(|e| AgentError::Config(format!("agent.token_file {}: {e}", path.display())))?;
        let token = text.trim_ascii().to_vec();
        if token.is_empty() {
            return Err(AgentError::Config(format!(
                "agent.token_file {} is empty: put a long random token in it",
                path.display()
            )));
        }
        Ok(Some(token))
    }
}

/// Kubernetes-style DNS label: the plan name ends up in metric labels and URLs.
fn valid_plan_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

pub use crate::model::duration::{as_text, format_duration, opt_duration, parse_duration};

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> serde_yaml::Value {
        serde_yaml::from_str(text).expect("yaml")
    }

    #[test]
    fn durations_parse_in_every_spelling() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2w"), Ok(Duration::from_secs(14 * 86_400)));
        for bad in ["", "5y", "h", "10m5", "-3s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(format_duration(Duration::from_secs(30 * 86_400)), "30d");
        assert_eq!(format_duration(Duration::from_secs(5400)), "90m");
        assert_eq!(format_duration(Duration::from_secs(0)), "0s");
    }

    #[test]
    fn the_full_example_parses() {
        let c = AgentConfig::from_yaml(&yaml(
            r#"
listen: 0.0.0.0:8790
token_file: /etc/podbank/secret/api-token
tls: { cert_file: /a.crt, key_file: /a.key, client_ca_file: /ca.crt }
election: { key: /podbank/election/x, ttl: 10 }
identity: node-1
grace_period: 5m
plans:
  - name: nightly
    namespaces: [shop]
    selector: "backup.podbank.io/enabled=true"
    schedule: "0 2 * * *"
    options: { backup_name: nightly, description: nightly backup, incremental: true, full_every: 7 }
    retention: { keep_last: 7, max_age: 30d }
  - name: every-second
    pods: [shop/web-0]
    schedule: "* * * * * *"
    options: { backup_name: fast, description: "" }
"#,
        ))
        .expect("parses");
        assert_eq!(c.listen.port(), 8790);
        assert_eq!(c.election.ttl, Duration::from_secs(10));
        assert_eq!(c.grace_period, Duration::from_secs(300));
        assert_eq!(c.election_config().identity, "node-1");
        let plans = c.plans().expect("plans");
        assert_eq!(plans.len(), 2);
        assert_eq!(plans[0].retention.keep_last, Some(7));
        let options = &plans[0].parameters;
        assert_eq!(options.full_every, Some(7));
        assert_eq!(
            plans[0].retention.max_age,
            Some(Duration::from_secs(30 * 86_400))
        );
        assert_eq!(plans[0].selection.namespaces, ["shop"]);
        assert_eq!(
            plans[1].selection.pods,
            [crate::model::ObjectRef::new("shop", "web-0")]
        );
        assert!(plans[1].retention.is_unbounded());
    }

    #[test]
    fn plan_hooks_parse_with_the_annotations_meanings() {
        let c = AgentConfig::from_yaml(&yaml(
            r#"
plans:
  - name: db
    namespaces: [shop]
    schedule: "0 * * * *"
    options: { backup_name: db, description: d }
    hooks:
      - selector: app=postgres
        pre:  { container: db, command: ["sh","-c","psql -c CHECKPOINT"], on_error: Fail, timeout: 30s }
        post: { command: "echo thawed" }
"#,
        ))
        .expect("parses");
        let plans = c.plans().expect("valid");
        let request = plans[0].protect_request();
        assert_eq!(request.hooks.len(), 1);
        let hook = &request.hooks[0];
        assert_eq!(hook.selector.as_deref(), Some("app=postgres"));
        let pre = hook.pre.as_ref().expect("pre");
        assert_eq!(pre.container.as_deref(), Some("db"));
        assert_eq!(pre.on_error.as_deref(), Some("Fail"));
        assert_eq!(pre.timeout.as_deref(), Some("30s"));
        assert_eq!(
            pre.command,
            crate::protection::hooks::HookCommand::List(vec![
                "sh".into(),
                "-c".into(),
                "psql -c CHECKPOINT".into()
            ])
        );
        // They travel in the request's JSON (the agent's and the CLI's --agent body).
        let json = serde_json::to_value(&request).expect("JSON");
        assert_eq!(json["hooks"][0]["post"]["command"], "echo thawed");
        let back: crate::engine::ProtectRequest = serde_json::from_value(json).expect("back");
        assert_eq!(back.hooks, request.hooks);
        // A plan without hooks carries none, and says nothing of them.
        let json = serde_json::to_value(crate::engine::ProtectRequest {
            hooks: Vec::new(),
            ..request
        })
        .expect("JSON");
        assert!(json.get("hooks").is_none(), "{json}");
    }

    #[test]
    fn bad_plan_hooks_stop_the_agent_naming_plan_and_key() {
        let plan = |hooks: &str| {
            format!(
                "plans:\n  - name: db\n    schedule: \"0 * * * *\"\n    options: {{ backup_name: b, description: d }}\n    hooks:\n{hooks}"
            )
        };
        for (hooks, want) in [
            (
                "      - pre: { command: x, on_error: Sometimes }",
                "agent.plans[db]: hooks[0].pre.on_error: \"Sometimes\" is neither",
            ),
            (
                "      - pre: { command: x }\n      - post: { command: x, timeout: 10 }",
                "agent.plans[0].hooks[1].post.timeout",
            ),
            (
                "      - pre: { command: \"[oops\" }",
                "agent.plans[db]: hooks[0].pre.command",
            ),
            (
                "      - selector: \"a in (\"\n        pre: { command: x }",
                "agent.plans[db]: hooks[0].selector",
            ),
            (
                "      - selector: app=db",
                "agent.plans[db]: hooks[0]: it declares no hook",
            ),
            // Serde's own: the path names the plan's index and the key.
            ("      - pre: { command: x, timeot: 3s }", "timeot"),
            ("      - pre: { container: db }", "command"),
        ] {
            let text = plan(hooks);
            let msg = match AgentConfig::from_yaml(&yaml(&text)).and_then(|c| c.plans()) {
                Ok(_) => panic!("{text}: accepted"),
                Err(e) => e.to_string(),
            };
            assert!(msg.contains(want), "{text}: {msg}");
        }
    }

    #[test]
    fn absent_section_means_defaults() {
        let c = AgentConfig::from_yaml(&serde_yaml::Value::Null).expect("defaults");
        assert_eq!(c, AgentConfig::default());
        assert_eq!(c.election.key, "/podbank/election/agent");
        assert!(c.plans().expect("no plans").is_empty());
    }

    #[test]
    fn mistakes_are_named() {
        let plan = |extra: &str| {
            format!(
                "plans:\n  - name: p\n    schedule: \"0 * * * *\"\n    options: {{ backup_name: b, description: d }}\n{extra}"
            )
        };
        let cases = [
            ("lisen: 1.2.3.4:5", "lisen"),
            ("grace_period: 5y", "unknown unit"),
            (
                "plans:\n  - name: Bad_Name\n    schedule: \"0 * * * *\"\n    options: { backup_name: b, description: d }",
                "plans[Bad_Name]",
            ),
            (
                "plans:\n  - name: p\n    schedule: \"not cron\"\n    options: { backup_name: b, description: d }",
                "schedule",
            ),
            (
                "plans:\n  - name: p\n    schedule: \"0 * * * *\"\n    options: { description: d }",
                "backup_name",
            ),
            (&plan("    selector: \"a in (\""), "label selector"),
            (&plan("    pods: [justname]"), "<namespace>/<name>"),
            (&plan("    retention: { keep_last: 0 }"), "keep_last"),
            (
                &format!("{}  - name: p\n    schedule: \"0 * * * *\"\n    options: {{ backup_name: b, description: d }}\n", plan("")),
                "used by another plan",
            ),
        ];
        for (text, want) in cases {
            let err = AgentConfig::from_yaml(&yaml(text)).and_then(|c| c.plans().map(|_| c));
            let msg = match err {
                Ok(_) => panic!("{text}: accepted"),
                Err(e) => e.to_string(),
            };
            assert!(msg.contains(want), "{text}: {msg}");
        }
    }

    #[test]
    fn keystone_auth_parses_with_defaults() {
        let c = AgentConfig::from_yaml(&yaml("auth: keystone\nkeystone: { cloud: rig }\n"))
            .expect("parses");
        match c.authentication().expect("valid") {
            Authentication::Keystone(k) => {
                assert_eq!(k.cloud, "rig");
                assert_eq!(k.cache_seconds, 300);
                assert_eq!(k.cache_size, 10_000);
                assert_eq!(k.clouds_file, None);
            }
            other => panic!("{other:?}"),
        }
        let c = AgentConfig::from_yaml(&yaml(
            "auth: keystone\nkeystone: { cloud: rig, clouds_file: /x/clouds.yaml, cache_seconds: 1, cache_size: 5 }\n",
        ))
        .expect("parses");
        assert!(matches!(
            c.authentication(),
            Ok(Authentication::Keystone(KeystoneAuthConfig {
                cache_seconds: 1,
                cache_size: 5,
                ..
            }))
        ));
        assert_eq!(
            AgentConfig::default().authentication().expect("default"),
            Authentication::Token(None)
        );
    }

    #[test]
    fn auth_mixes_are_refused_naming_the_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let token = dir.path().join("token");
        std::fs::write(&token, "s3cret").expect("write");
        let t = token.display();
        let cases = [
            (
                format!("auth: keystone\ntoken_file: {t}\nkeystone: {{ cloud: rig }}\n"),
                &["agent.auth", "keystone", "agent.token_file"][..],
            ),
            (
                "auth: keystone\n".to_string(),
                &["agent.auth", "agent.keystone"][..],
            ),
            (
                "auth: token\n".to_string(),
                &["agent.auth", "token", "agent.token_file"][..],
            ),
            (
                format!("auth: token\ntoken_file: {t}\nkeystone: {{ cloud: rig }}\n"),
                &["agent.keystone", "agent.auth"][..],
            ),
            (
                format!("token_file: {t}\nkeystone: {{ cloud: rig }}\n"),
                &["agent.keystone", "agent.auth"][..],
            ),
            (
                "auth: keystone\nkeystone: { cloud: rig, cache_size: 0 }\n".to_string(),
                &["agent.keystone.cache_size"][..],
            ),
            (
                "auth: keystone\nkeystone: { cloud: \"\" }\n".to_string(),
                &["agent.keystone.cloud"][..],
            ),
        ];
        for (text, want) in cases {
            let c = AgentConfig::from_yaml(&yaml(&text)).expect("parses");
            let msg = match c.authentication() {
                Ok(a) => panic!("{text}: accepted as {a:?}"),
                Err(e) => e.to_string(),
            };
            for w in want {
                assert!(msg.contains(w), "{text}: {msg} does not name {w}");
            }
        }
        for (text, want) in [
            ("auth: ldap\n", "agent.auth"),
            (
                "auth: keystone\nkeystone: { cloud: rig, cache_secs: 3 }\n",
                "cache_secs",
            ),
            ("auth: keystone\nkeystone: { cache_seconds: 3 }\n", "cloud"),
        ] {
            let msg = AgentConfig::from_yaml(&yaml(text))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(msg.contains(want), "{text}: {msg}");
        }
        let c = AgentConfig::from_yaml(&yaml(&format!("auth: token\ntoken_file: {t}\n")))
            .expect("parses");
        assert_eq!(
            c.authentication().expect("valid"),
            Authentication::Token(Some(b"s3cret".to_vec()))
        );
    }

    #[test]
    fn token_file_is_read_and_trimmed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cret\n").expect("write");
        let mut c = AgentConfig {
            token_file: Some(path.clone()),
            ..AgentConfig::default()
        };
        assert_eq!(c.read_token().expect("token"), Some(b"s3cret".to_vec()));
        std::fs::write(&path, " \n").expect("write");
        assert!(c.read_token().unwrap_err().to_string().contains("empty"));
        c.token_file = Some(dir.path().join("missing"));
        assert!(c.read_token().unwrap_err().to_string().contains("missing"));
    }
}
