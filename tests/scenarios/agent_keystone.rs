//! The agent with `auth: keystone`, against the real Keystone of the Cinder rig: tokens the
//! rig's Keystone issues let callers in (Karbor's routes and the agent's own), a garbage
//! token is Karbor's 401 fault, a token revoked in Keystone is refused within the cache
//! bound, a valid token costs one validation however often it is used, and a Keystone
//! that cannot be reached is a 503 with `Retry-After`, never an accepted request.
//!
//! The agent authenticates with the rig's admin (cloud `agent` of a `clouds.yaml` written
//! here); Keystone is reached through a counting forwarder ([`LatencyProxy`] without
//! delay), so the test sees how many requests the agent made to it.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::require_rig;
use crate::support::cinder::{password_token, KEYSTONE};
use crate::support::etcd::{free_port, TestEtcd};
use crate::support::latency::LatencyProxy;
use podbank::agent::{Agent, AgentConfig};
use podbank::bank::{backend, Bank, OpenOptions};
use podbank::codec::Decoder;
use podbank::engine::{Lazy, LocalEngine, VolumeMode};
use podbank_seed::{self as seed, SeedPlan};
use serde_json::Value;

const PROJECT: &str = "0f7e1a2b3c4d4e5f8a9b0c1d2e3f4a5b";

struct KsAgent {
    _etcd: TestEtcd,
    _dir: tempfile::TempDir,
    agent: Option<Agent>,
    addr: SocketAddr,
}

impl KsAgent {
    /// An agent with `auth: keystone`, its service credentials those of the rig's admin at
    /// `auth_url`, caching validated tokens for `cache_seconds`.
    async fn start(auth_url: &str, cache_seconds: u64) -> KsAgent {
        let etcd = TestEtcd::start();
        let client = etcd.connect().await;
        seed::write(
            &client,
            seed::generate(&SeedPlan {
                pods: 2,
                ..SeedPlan::default()
            }),
        )
        .await
        .expect("seed");
        let dir = tempfile::tempdir().expect("tempdir");
        let bank = Bank::open(
            backend::open(&format!("file://{}", dir.path().join("bank").display()))
                .expect("backend"),
            OpenOptions {
                key: None,
                create: true,
                pack_target_bytes: None,
            },
        )
        .await
        .expect("bank");
        let engine = Arc::new(LocalEngine::new(
            Lazy::ready(client.clone()),
            Decoder::new(None),
            Lazy::ready(bank),
            VolumeMode::Skip("no Cinder in this test".into()),
        ));
        let clouds = write_clouds_yaml(dir.path(), auth_url);
        let config = AgentConfig::from_yaml(
            &serde_yaml::from_str(&format!(
                "listen: 127.0.0.1:0\nauth: keystone\nkeystone: {{ cloud: agent, clouds_file: {}, cache_seconds: {cache_seconds} }}\nelection: {{ ttl: 3 }}\n",
                clouds.display()
            ))
            .expect("yaml"),
        )
        .expect("config");
        let agent = Agent::start(&config, engine, &client).await.expect("agent");
        let addr = agent.local_addr();
        KsAgent {
            _etcd: etcd,
            _dir: dir,
            agent: Some(agent),
            addr,
        }
    }

    async fn stop(mut self) {
        if let Some(agent) = self.agent.take() {
            agent.shutdown().await.expect("agent shutdown");
        }
    }

    /// `GET path` with `X-Auth-Token: token` (if any): (status, Retry-After, body).
    async fn get(&self, path: &str, token: Option<&str>) -> (u16, Option<String>, Value) {
        let mut req = http().get(format!("http://{}{path}", self.addr));
        if let Some(t) = token {
            req = req.header("X-Auth-Token", t);
        }
        let resp = req.send().await.expect("request to the agent");
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = resp.text().await.unwrap_or_default();
        (
            status,
            retry_after,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// A Karbor route of the project.
    async fn karbor(&self, token: Option<&str>) -> (u16, Option<String>, Value) {
        self.get(&format!("/v1/{PROJECT}/providers"), token).await
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

/// A `clouds.yaml` with cloud `agent`: the rig's admin at `auth_url`.
fn write_clouds_yaml(dir: &Path, auth_url: &str) -> std::path::PathBuf {
    let path = dir.join("clouds.yaml");
    std::fs::write(
        &path,
        format!(
            "clouds:\n  agent:\n    auth:\n      auth_url: {auth_url}\n      username: admin\n      \
             password: adminpass\n      project_name: admin\n      user_domain_name: Default\n      \
             project_domain_name: Default\n    region_name: RegionOne\n    interface: public\n"
        ),
    )
    .expect("write clouds.yaml");
    path
}

/// A fresh project-scoped token of the rig's admin.
async fn user_token() -> String {
    password_token(&http(), "admin", "adminpass", "admin")
        .await
        .expect("a token from the rig's Keystone")
        .0
}

/// Revokes `token` in Keystone (`DELETE /v3/auth/tokens`).
async fn revoke(token: &str) {
    let admin = user_token().await;
    let status = http()
        .delete(format!("{KEYSTONE}/auth/tokens"))
        .header("X-Auth-Token", admin)
        .header("X-Subject-Token", token)
        .send()
        .await
        .expect("revoke")
        .status()
        .as_u16();
    assert_eq!(status, 204, "revoking a token");
}

fn assert_karbor_401(what: &str, (status, _, body): (u16, Option<String>, Value)) {
    assert_eq!(status, 401, "{what}: {body}");
    assert_eq!(body["unauthorized"]["code"], 401, "{what}: {body}");
    assert!(
        body["unauthorized"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("requires authentication")),
        "{what}: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    podbank_without_cinder,
    ignore = "needs the Cinder rig; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn keystone_tokens_let_callers_in_and_one_validation_serves_many_requests() {
    let _rig = require_rig!();
    let proxy = LatencyProxy::start(
        &LatencyProxy::host_port("http://127.0.0.1:5000"),
        Duration::ZERO,
    )
    .await
    .expect("forwarder to Keystone");
    let agent = KsAgent::start(&format!("{}/v3", proxy.url), 300).await;
    assert_eq!(
        proxy.requests(),
        0,
        "the agent asks Keystone nothing before a request"
    );

    // A token of the rig's Keystone: Karbor's routes and the agent's own answer.
    let token = user_token().await;
    let (status, _, body) = agent.karbor(Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["providers"].is_array(), "{body}");
    let after_first = proxy.requests();
    assert!(
        (1..=2).contains(&after_first),
        "the first request costs a login and one validation, made {after_first} requests"
    );

    // Many more requests with the same token, on several routes: no more validations.
    for path in [
        format!("/v1/{PROJECT}/providers"),
        format!("/v1/{PROJECT}/protectables"),
        format!("/v1/{PROJECT}/plans"),
        format!("/v1/{PROJECT}/protectables/OS::Kubernetes::Pod/instances"),
        format!("/v1/{PROJECT}/restores"),
        "/v1/operations".to_string(),
    ] {
        for _ in 0..3 {
            let (status, _, body) = agent.get(&path, Some(&token)).await;
            assert_eq!(status, 200, "{path}: {body}");
        }
    }
    // The agent's own API takes the token as a bearer token too.
    let resp = http()
        .get(format!("http://{}/v1/operations", agent.addr))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        proxy.requests(),
        after_first,
        "19 requests with a cached token asked Keystone again"
    );

    // Another token: one validation more, and only one however often it is used.
    let other = user_token().await;
    for _ in 0..5 {
        let (status, _, body) = agent.karbor(Some(&other)).await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(proxy.requests(), after_first + 1);

    // A garbage token, no token: Karbor's 401 fault; the agent's own 401 error.
    assert_karbor_401(
        "garbage token",
        agent.karbor(Some("not-a-keystone-token")).await,
    );
    assert_karbor_401("no token", agent.karbor(None).await);
    let (status, _, body) = agent
        .get("/v1/operations", Some("not-a-keystone-token"))
        .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "unauthorized", "{body}");
    // A garbage token is asked about (and refused) each time: it is not cached as valid.
    let before = proxy.requests();
    assert_karbor_401(
        "garbage again",
        agent.karbor(Some("not-a-keystone-token")).await,
    );
    assert_eq!(proxy.requests(), before + 1);

    agent.stop().await;
}

/// Runs python-karborclient's `karbor <args>` against the agent with `token`; (success,
/// stdout, stderr).
async fn karbor(addr: SocketAddr, token: &str, args: &[&str]) -> (bool, String, String) {
    let cli = std::env::var("PODBANK_TEST_KARBORCLIENT").unwrap_or_else(|_| {
        panic!(
            "PODBANK_TEST_KARBORCLIENT is not set: it names python-karborclient 2.1.0's \
             `karbor` CLI (scripts/install-deps.sh installs it, scripts/test.sh sets it; \
             PODBANK_TEST_WITHOUT_RIGS=karborclient skips this test)"
        )
    });
    let mut all: Vec<String> = vec![
        "--os-no-client-auth".into(),
        "--karbor-url".into(),
        format!("http://{addr}/v1/{PROJECT}"),
        "--os-auth-token".into(),
        token.into(),
    ];
    all.extend(args.iter().map(|a| a.to_string()));
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&cli)
            .args(&all)
            .output()
            .unwrap_or_else(|e| panic!("run {cli}: {e}"))
    })
    .await
    .expect("karbor CLI task");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    podbank_without_cinder,
    ignore = "needs the Cinder rig; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
#[cfg_attr(
    podbank_without_karborclient,
    ignore = "needs python-karborclient; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn karborclient_is_let_in_with_a_keystone_token_and_refused_with_another() {
    let _rig = require_rig!();
    let agent = KsAgent::start(KEYSTONE, 300).await;
    let token = user_token().await;
    for args in [
        &["provider-list"][..],
        &["protectable-list"][..],
        &["plan-list"][..],
    ] {
        let (ok, out, err) = karbor(agent.addr, &token, args).await;
        assert!(ok, "karbor {args:?} with a Keystone token:\n{out}\n{err}");
    }
    let (ok, out, err) = karbor(agent.addr, "not-a-keystone-token", &["plan-list"]).await;
    // karborclient prints Karbor's 401 fault as it came.
    let said = format!("{out}{err}");
    assert!(
        !ok && said.contains("Authentication failed") && said.contains("\"code\":401"),
        "{said}"
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    podbank_without_cinder,
    ignore = "needs the Cinder rig; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn a_token_revoked_in_keystone_is_refused_within_the_cache_bound() {
    let _rig = require_rig!();
    let agent = KsAgent::start(KEYSTONE, 1).await;
    let token = user_token().await;
    let (status, _, body) = agent.karbor(Some(&token)).await;
    assert_eq!(status, 200, "{body}");

    revoke(&token).await;
    let revoked = Instant::now();
    // The cache bound is 1 s: the token is refused at the latest then (the deadline leaves
    // room for a slow Keystone, not for a longer cache).
    let deadline = revoked + Duration::from_secs(15);
    let refused_after = loop {
        let answer = agent.karbor(Some(&token)).await;
        if answer.0 == 401 {
            assert_karbor_401("revoked token", answer);
            break revoked.elapsed();
        }
        assert_eq!(answer.0, 200, "{:?}", answer.2);
        assert!(
            Instant::now() < deadline,
            "a revoked token still accepted {:?} after its revocation",
            revoked.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Accepted at most for the cache bound (1 s) plus one validation round trip.
    assert!(
        refused_after < Duration::from_secs(5),
        "refused only after {refused_after:?}"
    );
    // And it stays refused; a fresh token is still let in.
    assert_karbor_401("revoked token again", agent.karbor(Some(&token)).await);
    let (status, _, body) = agent.karbor(Some(&user_token().await)).await;
    assert_eq!(status, 200, "{body}");

    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keystone_unreachable_is_a_503_with_retry_after_never_an_accepted_request() {
    // Nothing listens on this port: every validation fails to connect.
    let closed = format!("http://127.0.0.1:{}/v3", free_port());
    let agent = KsAgent::start(&closed, 300).await;

    let (status, retry_after, body) = agent.karbor(Some("some-token")).await;
    assert_eq!(status, 503, "{body}");
    assert!(retry_after.is_some_and(|r| r.parse::<u64>().is_ok_and(|s| s > 0)));
    assert_eq!(body["serviceUnavailable"]["code"], 503, "{body}");

    let (status, retry_after, body) = agent.get("/v1/operations", Some("some-token")).await;
    assert_eq!(status, 503, "{body}");
    assert!(retry_after.is_some(), "{body}");
    assert_eq!(body["error"]["code"], "keystone_unavailable", "{body}");

    // A create is refused as well, before its handler runs.
    let resp = http()
        .post(format!("http://{}/v1/{PROJECT}/plans", agent.addr))
        .header("X-Auth-Token", "some-token")
        .json(&serde_json::json!({"plan": {"name": "p", "provider_id": "x", "resources": []}}))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 503);
    assert!(resp.headers().get("retry-after").is_some());

    // No token at all is still a 401, Keystone or not.
    assert_karbor_401("no token", agent.karbor(None).await);
    agent.stop().await;
}

/// A request to the agent with `token`, asking for `accept` (`None`: Karbor's bodies).
async fn call(
    addr: SocketAddr,
    method: reqwest::Method,
    path: &str,
    token: &str,
    accept: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = http()
        .request(method, format!("http://{addr}{path}"))
        .header("X-Auth-Token", token);
    if let Some(a) = accept {
        req = req.header("Accept", a);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request to the agent");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// `POST path` to the rig's Keystone as its admin; the body answered.
async fn keystone_admin(method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    let admin = user_token().await;
    let mut req = http()
        .request(method, format!("{KEYSTONE}{path}"))
        .header("X-Auth-Token", admin);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("Keystone");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    assert!(status < 300, "Keystone {path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// A user with `role` on `project` (a new project when `None`): (project id, its token).
async fn project_user(project: Option<&str>, tag: &str, role: &str) -> (String, String) {
    let suffix = format!("{tag}-{}", std::process::id());
    let project = match project {
        Some(p) => p.to_string(),
        None => keystone_admin(
            reqwest::Method::POST,
            "/projects",
            Some(
                serde_json::json!({"project": {"name": format!("pb-{suffix}"),
                                                "domain_id": "default"}}),
            ),
        )
        .await["project"]["id"]
            .as_str()
            .expect("project id")
            .to_string(),
    };
    let user = keystone_admin(
        reqwest::Method::POST,
        "/users",
        Some(
            serde_json::json!({"user": {"name": format!("u-{suffix}"), "password": "pw-test",
                                          "domain_id": "default"}}),
        ),
    )
    .await["user"]["id"]
        .as_str()
        .expect("user id")
        .to_string();
    let roles = keystone_admin(reqwest::Method::GET, &format!("/roles?name={role}"), None).await;
    let role_id = roles["roles"][0]["id"]
        .as_str()
        .expect("role id")
        .to_string();
    keystone_admin(
        reqwest::Method::PUT,
        &format!("/projects/{project}/users/{user}/roles/{role_id}"),
        None,
    )
    .await;
    let body = serde_json::json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {"id": user, "password": "pw-test"}}},
        "scope": {"project": {"id": project}}}});
    let resp = http()
        .post(format!("{KEYSTONE}/auth/tokens"))
        .json(&body)
        .send()
        .await
        .expect("Keystone");
    assert_eq!(resp.status().as_u16(), 201, "a token of the new user");
    let token = resp
        .headers()
        .get("X-Subject-Token")
        .and_then(|v| v.to_str().ok())
        .expect("X-Subject-Token")
        .to_string();
    (project, token)
}

/// Issue 29 items 2 and 4: two projects see only their own checkpoints and restores; the
/// project in the URL must be the token's; a reader lists and shows only; reset-state is
/// the admin's, who sees every project.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    podbank_without_cinder,
    ignore = "needs the Cinder rig; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn projects_see_only_their_own_and_roles_bound_what_each_may_do() {
    let _rig = require_rig!();
    let agent = KsAgent::start(KEYSTONE, 300).await;
    let addr = agent.addr;
    let (pa, member_a) = project_user(None, "a", "member").await;
    let (pb, member_b) = project_user(None, "b", "member").await;
    let (_, reader_a) = project_user(Some(&pa), "r", "reader").await;
    let podbank = Some("application/vnd.podbank+json");
    let prov = podbank::agent::karbor::types::PROVIDER_ID;
    let protect = serde_json::json!({"selection": {},
        "parameters": {"backup_name": "a-only", "description": "scoping"}});

    // Member of a protects in a (podbank's representation: 202 and the operation).
    let (status, acc) = call(
        addr,
        reqwest::Method::POST,
        &format!("/v1/{pa}/providers/{prov}/checkpoints"),
        &member_a,
        podbank,
        Some(protect.clone()),
    )
    .await;
    assert_eq!(status, 202, "{acc}");
    let url = acc["statusUrl"].as_str().expect("status url").to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    let op = loop {
        let (status, op) = call(addr, reqwest::Method::GET, &url, &member_a, podbank, None).await;
        assert_eq!(status, 200, "{op}");
        if op["state"] != "running" {
            break op;
        }
        assert!(Instant::now() < deadline, "{op}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(op["state"], "succeeded", "{op}");
    let cp = op["result"]["checkpointId"]
        .as_str()
        .expect("id")
        .to_string();

    // a lists and shows it; b neither lists nor shows it (404, not 403), nor restores it.
    let list = |project: String, token: String| async move {
        let (status, body) = call(
            addr,
            reqwest::Method::GET,
            &format!("/v1/{project}/providers/{prov}/checkpoints"),
            &token,
            Some("application/vnd.podbank+json"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        body["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|c| c["id"].as_str().map(String::from))
            .collect::<Vec<_>>()
    };
    assert_eq!(list(pa.clone(), member_a.clone()).await, vec![cp.clone()]);
    assert!(list(pb.clone(), member_b.clone()).await.is_empty());
    let show_b = call(
        addr,
        reqwest::Method::GET,
        &format!("/v1/{pb}/providers/{prov}/checkpoints/{cp}"),
        &member_b,
        None,
        None,
    )
    .await;
    assert_eq!(show_b.0, 404, "{}", show_b.1);
    let restore_b = call(
        addr,
        reqwest::Method::POST,
        &format!("/v1/{pb}/restores"),
        &member_b,
        None,
        Some(serde_json::json!({"restore": {"provider_id": prov, "checkpoint_id": cp}})),
    )
    .await;
    assert_eq!(restore_b.0, 404, "{}", restore_b.1);
    // b naming a's project in the URL: Karbor's 403.
    let cross = call(
        addr,
        reqwest::Method::GET,
        &format!("/v1/{pa}/providers/{prov}/checkpoints"),
        &member_b,
        None,
        None,
    )
    .await;
    assert_eq!(cross.0, 403, "{}", cross.1);
    assert_eq!(cross.1["forbidden"]["code"], 403, "{}", cross.1);

    // A member may not reset a checkpoint's state (admin only); the admin may, anywhere.
    let reset = serde_json::json!({"os-resetState": {"state": "error"}});
    let (status, body) = call(
        addr,
        reqwest::Method::PUT,
        &format!("/v1/{pa}/providers/{prov}/checkpoints/{cp}"),
        &member_a,
        None,
        Some(reset.clone()),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let admin = user_token().await;
    let (status, body) = call(
        addr,
        reqwest::Method::GET,
        &format!("/v1/{pb}/providers/{prov}/checkpoints/{cp}"),
        &admin,
        None,
        None,
    )
    .await;
    assert_eq!(status, 200, "the admin sees every project's: {body}");

    // A reader of a lists and shows, but creates nothing.
    assert_eq!(list(pa.clone(), reader_a.clone()).await, vec![cp.clone()]);
    let (status, body) = call(
        addr,
        reqwest::Method::POST,
        &format!("/v1/{pa}/providers/{prov}/checkpoints"),
        &reader_a,
        podbank,
        Some(protect),
    )
    .await;
    assert_eq!(status, 403, "a reader's create: {body}");
    assert_eq!(body["error"]["code"], "forbidden", "{body}");
    agent.stop().await;
}
