//! The real Cinder + Keystone rig (tests/rig/cinder, started by scripts/test.sh in keystone
//! mode): its settings, its volume files, an admin client for Keystone, and a tracker that
//! deletes what a test created even when the test fails.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::future::Future;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use podbank::cinder::{BackupId, Cinder, CinderSettings, VolumeId};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Keystone of the rig.
pub const KEYSTONE: &str = "http://127.0.0.1:5000/v3";

/// A running rig, found through `PODBANK_TEST_CINDER_DIR`.
#[derive(Debug, Clone)]
pub struct CinderRig {
    /// The rig's work folder (`CINDER_DIR`).
    pub dir: PathBuf,
}

/// `let rig = require_rig!();` — the rig, or a failure naming it and how to start it.
/// Tests that use it carry `#[cfg_attr(podbank_without_cinder, ignore = ...)]`, so that a run
/// that says it has no Cinder (`PODBANK_TEST_WITHOUT_RIGS=cinder`) reports them ignored.
#[macro_export]
macro_rules! require_rig {
    () => {
        $crate::support::cinder::CinderRig::require()
    };
}

/// How to get the Cinder rig, for failure messages.
pub const HOW_TO_START: &str = "this test needs the Cinder + Keystone rig: run scripts/test.sh \
     (it starts the rigs), or start it yourself (CINDER_DIR=<dir> bash tests/rig/cinder/start.sh \
     keystone) and set PODBANK_TEST_CINDER_DIR=<dir>; to run without it on purpose, set \
     PODBANK_TEST_WITHOUT_RIGS=cinder (its tests are then reported ignored)";

impl CinderRig {
    /// The rig named by `PODBANK_TEST_CINDER_DIR`, if set. Panics when it is set but the
    /// folder has no `clouds.yaml` (the rig was not started in keystone mode).
    pub fn from_env() -> Option<CinderRig> {
        let dir = std::env::var_os("PODBANK_TEST_CINDER_DIR").filter(|d| !d.is_empty())?;
        let rig = CinderRig {
            dir: PathBuf::from(dir),
        };
        assert!(
            rig.clouds_yaml().is_file(),
            "{} has no clouds.yaml: start the rig in keystone mode \
             (CINDER_DIR=... bash tests/rig/cinder/start.sh keystone)",
            rig.dir.display()
        );
        Some(rig)
    }

    /// The rig; fails the test, naming the rig and how to start it, when it is not there.
    pub fn require() -> CinderRig {
        match Self::from_env() {
            Some(rig) => rig,
            None => panic!("PODBANK_TEST_CINDER_DIR is not set: {HOW_TO_START}"),
        }
    }

    /// The rig's `clouds.yaml` (cloud `rig`, admin/adminpass).
    pub fn clouds_yaml(&self) -> PathBuf {
        self.dir.join("clouds.yaml")
    }

    /// Settings for cloud `rig` of the rig's `clouds.yaml`.
    pub fn settings(&self) -> CinderSettings {
        CinderSettings {
            cloud: Some("rig".to_string()),
            clouds_file: Some(self.clouds_yaml()),
            request_timeout: Duration::from_secs(30),
            ..CinderSettings::default()
        }
    }

    /// Connect as the rig's admin.
    pub async fn connect(&self) -> Cinder {
        Cinder::connect(&self.settings())
            .await
            .expect("connect to the rig's Cinder as admin")
    }

    /// Write a `clouds.yaml` with one cloud `name` whose `auth:` section is `auth` (YAML
    /// mapping lines), plus `auth_type` when given; returns settings that use it.
    pub fn settings_with_auth(
        &self,
        dir: &Path,
        auth_type: Option<&str>,
        auth: &[(&str, &str)],
    ) -> CinderSettings {
        let mut yaml = String::from("clouds:\n  test:\n");
        if let Some(t) = auth_type {
            yaml.push_str(&format!("    auth_type: {t}\n"));
        }
        yaml.push_str("    region_name: RegionOne\n    interface: public\n    auth:\n");
        for (k, v) in auth {
            yaml.push_str(&format!(
                "      {k}: {}\n",
                serde_json::to_string(v).expect("string")
            ));
        }
        let path = dir.join("clouds.yaml");
        std::fs::write(&path, yaml).expect("write clouds.yaml");
        CinderSettings {
            cloud: Some("test".to_string()),
            clouds_file: Some(path),
            request_timeout: Duration::from_secs(30),
            ..CinderSettings::default()
        }
    }

    /// The file that holds a volume's bytes (the NFS driver's sparse file), on the share of
    /// whichever backend holds it: `state/export` (nfs1, the default volume type) or
    /// `state/export-nosnap` (nfs-nosnap, volume type `nosnap`).
    pub fn volume_file(&self, id: &VolumeId) -> PathBuf {
        let name = format!("volume-{id}");
        let nosnap = self.dir.join("state/export-nosnap").join(&name);
        if nosnap.exists() {
            return nosnap;
        }
        self.dir.join("state/export").join(name)
    }

    /// The file a volume's writes go to now: the raw file until its first snapshot, then
    /// the qcow2 overlay `volume-<id>.info` names as `active` (the NFS driver's snapshots).
    pub fn active_volume_file(&self, id: &VolumeId) -> PathBuf {
        let raw = self.volume_file(id);
        let info = raw.with_file_name(format!("volume-{id}.info"));
        let Ok(text) = std::fs::read_to_string(&info) else {
            return raw;
        };
        let json: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: {e}: {text}", info.display()));
        match json["active"].as_str() {
            Some(active) => raw.with_file_name(active),
            None => raw,
        }
    }

    /// Write a recognisable pattern into a volume (a header at offset 0 and 2 MiB of
    /// seeded pseudo-random bytes at 10 MiB, as e2e.sh does) and return the file's sha256.
    pub fn write_pattern(&self, id: &VolumeId, seed: u64) -> String {
        let path = self.volume_file(id);
        let mut f = OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        f.write_all(format!("PODBANK-TEST-{id}-{seed}").as_bytes())
            .expect("write header");
        let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
        let mut block = vec![0u8; 2 << 20];
        for chunk in block.chunks_mut(8) {
            // xorshift64*: deterministic, fast, good enough to defeat compression
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let v = state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        f.seek(SeekFrom::Start(10 << 20)).expect("seek");
        f.write_all(&block).expect("write pattern");
        f.sync_all().expect("sync");
        self.checksum(id)
    }

    /// sha256 (hex) of a volume's whole file.
    pub fn checksum(&self, id: &VolumeId) -> String {
        let path = self.volume_file(id);
        let mut f =
            std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 4 << 20];
        loop {
            let n = f.read(&mut buf).expect("read volume file");
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        hex::encode(hasher.finalize())
    }
}

/// A unique name prefix for one test's resources.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("podbank-test-{prefix}-{:x}-{}", nanos, std::process::id())
}

/// What a test created, deleted afterwards: backups newest first (children before their
/// parents), then volumes.
#[derive(Clone, Default)]
pub struct Created {
    inner: Arc<Mutex<(Vec<BackupId>, Vec<VolumeId>)>>,
}

impl Created {
    /// Remember a backup.
    pub fn backup(&self, id: &BackupId) {
        if let Ok(mut g) = self.inner.lock() {
            g.0.push(id.clone());
        }
    }

    /// Remember a volume.
    pub fn volume(&self, id: &VolumeId) {
        if let Ok(mut g) = self.inner.lock() {
            g.1.push(id.clone());
        }
    }

    /// Delete everything remembered; returns what could not be deleted.
    pub async fn clean(&self, cinder: &Cinder) -> Vec<String> {
        let (backups, volumes) = match self.inner.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        };
        let mut left = Vec::new();
        let wait = Duration::from_secs(120);
        for id in backups.iter().rev() {
            // a backup still being written cannot be deleted: let it finish first
            let _ = cinder.wait_backup(id, wait).await;
            let done = match cinder.delete_backup(id).await {
                Ok(()) => cinder.wait_backup_deleted(id, wait).await,
                Err(e) => Err(e),
            };
            if let Err(e) = done {
                left.push(format!("backup {id}: {e}"));
            }
        }
        for id in volumes.iter().rev() {
            let _ = cinder.wait_volume(id, wait).await;
            let done = match cinder.delete_volume(id).await {
                Ok(()) => cinder.wait_volume_deleted(id, wait).await,
                Err(e) => Err(e),
            };
            if let Err(e) = done {
                left.push(format!("volume {id}: {e}"));
            }
        }
        left
    }
}

/// Run `scenario`, then delete what it recorded in `created` — also when it panics — and
/// fail if cleaning failed.
pub async fn with_cleanup<F, Fut>(cinder: &Cinder, scenario: F)
where
    F: FnOnce(Created) -> Fut,
    Fut: Future<Output = ()>,
{
    let created = Created::default();
    let t = std::time::Instant::now();
    let outcome = std::panic::AssertUnwindSafe(scenario(created.clone()))
        .catch_unwind()
        .await;
    let scenario_time = t.elapsed();
    let left = created.clean(cinder).await;
    eprintln!(
        "scenario {scenario_time:?}, cleanup {:?}",
        t.elapsed() - scenario_time
    );
    if let Err(panic) = outcome {
        if !left.is_empty() {
            eprintln!("cleanup after failure left: {left:?}");
        }
        std::panic::resume_unwind(panic);
    }
    assert!(left.is_empty(), "cleanup failed: {left:?}");
}

/// Keystone as the rig's admin, through its REST API.
pub struct KeystoneAdmin {
    http: reqwest::Client,
    token: String,
    /// The admin user's id.
    pub user_id: String,
    /// The admin project's id.
    pub project_id: String,
}

impl KeystoneAdmin {
    /// Log in as admin/adminpass, project admin.
    pub async fn login() -> KeystoneAdmin {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client");
        let (token, body) = password_token(&http, "admin", "adminpass", "admin")
            .await
            .expect("admin login to Keystone");
        KeystoneAdmin {
            http,
            token,
            user_id: body["token"]["user"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            project_id: body["token"]["project"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method.clone(), format!("{KEYSTONE}{path}"))
            .header("X-Auth-Token", &self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Create an application credential of the admin user; returns (id, secret).
    pub async fn create_app_credential(&self, name: &str) -> Result<(String, String), String> {
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                &format!("/users/{}/application_credentials", self.user_id),
                Some(json!({"application_credential": {"name": name, "description": "podbank test"}})),
            )
            .await;
        if status != 201 {
            return Err(format!("Keystone answered {status}: {body}"));
        }
        let cred = &body["application_credential"];
        match (cred["id"].as_str(), cred["secret"].as_str()) {
            (Some(id), Some(secret)) => Ok((id.to_string(), secret.to_string())),
            _ => Err(format!("no id/secret in {body}")),
        }
    }

    /// Delete an application credential of the admin user.
    pub async fn delete_app_credential(&self, id: &str) {
        let (status, body) = self
            .call(
                reqwest::Method::DELETE,
                &format!("/users/{}/application_credentials/{id}", self.user_id),
                None,
            )
            .await;
        assert!(
            status == 204 || status == 404,
            "delete app credential: {status} {body}"
        );
    }

    /// Create a user with `password` and the admin role on the admin project; returns its id.
    pub async fn create_user(&self, name: &str, password: &str) -> String {
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                "/users",
                Some(
                    json!({"user": {"name": name, "password": password, "domain_id": "default",
                                     "default_project_id": self.project_id}}),
                ),
            )
            .await;
        assert_eq!(status, 201, "create user: {body}");
        let id = body["user"]["id"].as_str().unwrap_or_default().to_string();
        let (_, roles) = self
            .call(reqwest::Method::GET, "/roles?name=admin", None)
            .await;
        let role = roles["roles"][0]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let (status, body) = self
            .call(
                reqwest::Method::PUT,
                &format!("/projects/{}/users/{id}/roles/{role}", self.project_id),
                None,
            )
            .await;
        assert!(
            status == 204 || status == 201,
            "grant role: {status} {body}"
        );
        id
    }

    /// Enable or disable a user (disabling revokes its tokens).
    pub async fn set_enabled(&self, user_id: &str, enabled: bool) {
        let (status, body) = self
            .call(
                reqwest::Method::PATCH,
                &format!("/users/{user_id}"),
                Some(json!({"user": {"enabled": enabled}})),
            )
            .await;
        assert_eq!(status, 200, "set enabled={enabled}: {body}");
    }

    /// Delete a user.
    pub async fn delete_user(&self, user_id: &str) {
        let (status, body) = self
            .call(reqwest::Method::DELETE, &format!("/users/{user_id}"), None)
            .await;
        assert!(
            status == 204 || status == 404,
            "delete user: {status} {body}"
        );
    }
}

/// A project-scoped token by password: (token, token body).
pub async fn password_token(
    http: &reqwest::Client,
    user: &str,
    password: &str,
    project: &str,
) -> Result<(String, Value), String> {
    let body = json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"name": "Default"}}}}});
    let resp = http
        .post(format!("{KEYSTONE}/auth/tokens"))
        .json(&body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let token = resp
        .headers()
        .get("X-Subject-Token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let text = resp.text().await.map_err(|e| e.to_string())?;
    match (status, token) {
        (201, Some(t)) => Ok((t, serde_json::from_str(&text).unwrap_or(Value::Null))),
        _ => Err(format!("Keystone answered {status}: {text}")),
    }
}

/// Metadata map from pairs.
pub fn meta(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// What [`FlakyProxy`] does with one request instead of forwarding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and a Cinder-style error body.
    Status(u16),
    /// Never answer (the client's timeout must end it).
    Hang,
}

/// One request the proxy saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// The fault injected, or `None` when it was forwarded to Cinder.
    pub fault: Option<Fault>,
}

struct ProxyState {
    target: String,
    http: reqwest::Client,
    faults: Mutex<std::collections::VecDeque<Fault>>,
    seen: Mutex<Vec<Seen>>,
}

/// A reverse proxy on 127.0.0.1 in front of the real Cinder that injects scripted faults
/// (5xx answers, 401, hangs) into the next requests and forwards everything else unchanged.
pub struct FlakyProxy {
    /// `127.0.0.1:<port>`.
    pub authority: String,
    state: Arc<ProxyState>,
    task: tokio::task::JoinHandle<()>,
}

impl FlakyProxy {
    /// Start a proxy to `target` (e.g. `http://127.0.0.1:8776`).
    pub async fn start(target: &str) -> FlakyProxy {
        let state = Arc::new(ProxyState {
            target: target.trim_end_matches('/').to_string(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("http client"),
            faults: Mutex::new(Default::default()),
            seen: Mutex::new(Vec::new()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let authority = listener.local_addr().expect("addr").to_string();
        let app = axum::Router::new()
            .fallback(proxy_handler)
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FlakyProxy {
            authority,
            state,
            task,
        }
    }

    /// Inject these faults, in order, into the next requests.
    pub fn fail_next(&self, faults: &[Fault]) {
        if let Ok(mut q) = self.state.faults.lock() {
            q.extend(faults.iter().copied());
        }
    }

    /// Every request seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state
            .seen
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }
}

impl Drop for FlakyProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn proxy_handler(
    axum::extract::State(state): axum::extract::State<Arc<ProxyState>>,
    request: axum::extract::Request,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let fault = state.faults.lock().ok().and_then(|mut q| q.pop_front());
    if let Ok(mut seen) = state.seen.lock() {
        seen.push(Seen {
            method: parts.method.to_string(),
            path: path.clone(),
            fault,
        });
    }
    match fault {
        Some(Fault::Hang) => {
            // a server that accepted the request and never answers; the client gives up first
            std::future::pending::<axum::response::Response>().await
        }
        Some(Fault::Status(code)) => {
            let status = axum::http::StatusCode::from_u16(code)
                .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
            let body = json!({"computeFault": {"code": code, "message": format!("injected {code} by the test proxy")}});
            (status, axum::Json(body)).into_response()
        }
        None => {
            let bytes = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default();
            let mut headers = parts.headers.clone();
            for h in ["host", "content-length", "connection"] {
                headers.remove(h);
            }
            let forwarded = state
                .http
                .request(parts.method.clone(), format!("{}{path}", state.target))
                .headers(headers)
                .body(bytes)
                .send()
                .await;
            match forwarded {
                Ok(resp) => {
                    let status = resp.status();
                    let mut headers = resp.headers().clone();
                    for h in ["transfer-encoding", "content-length", "connection"] {
                        headers.remove(h);
                    }
                    let body = resp.bytes().await.unwrap_or_default();
                    (status, headers, body).into_response()
                }
                Err(e) => (
                    axum::http::StatusCode::BAD_GATEWAY,
                    format!("proxy could not forward: {e}"),
                )
                    .into_response(),
            }
        }
    }
}

/// A new 1 GiB volume of the rig, named `name`, available, recorded in `created` for
/// cleanup.
pub async fn new_volume(cinder: &Cinder, created: &Created, name: &str) -> VolumeId {
    new_volume_of_type(cinder, created, name, None).await
}

/// [`new_volume`] of a volume type: the rig's `nosnap` puts it on the backend whose driver
/// refuses snapshots; `None` is the default type (snapshots work).
pub async fn new_volume_of_type(
    cinder: &Cinder,
    created: &Created,
    name: &str,
    volume_type: Option<&str>,
) -> VolumeId {
    let volume = cinder
        .create_volume(&podbank::cinder::NewVolume {
            size_gib: 1,
            name: Some(name.to_string()),
            description: Some("podbank test".into()),
            metadata: meta(&[("podbank-test", "1")]),
            volume_type: volume_type.map(str::to_string),
            ..Default::default()
        })
        .await
        .expect("create volume");
    created.volume(&volume.id);
    let v = cinder
        .wait_volume(&volume.id, std::time::Duration::from_secs(180))
        .await
        .expect("volume");
    assert_eq!(v.status, "available");
    volume.id
}

/// Cinder volume groups on the rig, made through Cinder's REST API as admin: podbank's
/// client only reads groups; making them is the test's business. Group types `cg`
/// (consistent group snapshots) and `nocg` are made by the rig's start.sh.
pub struct RigGroups {
    http: reqwest::Client,
    token: String,
    base: String,
}

impl RigGroups {
    /// Log in as admin/adminpass, project admin.
    pub async fn login() -> RigGroups {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client");
        let (token, body) = password_token(&http, "admin", "adminpass", "admin")
            .await
            .expect("admin login to Keystone");
        let project = body["token"]["project"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        RigGroups {
            http,
            token,
            base: format!("http://127.0.0.1:8776/v3/{project}"),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .header("X-Auth-Token", &self.token)
            .header("OpenStack-API-Version", "volume 3.47");
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// The id of the entry of `list` (under `key`) named `name`.
    async fn id_named(&self, path: &str, key: &str, name: &str) -> String {
        let (status, body) = self.call(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body[key]
            .as_array()
            .and_then(|a| a.iter().find(|t| t["name"] == name))
            .and_then(|t| t["id"].as_str())
            .unwrap_or_else(|| panic!("no {name} in {path} (start.sh makes it): {body}"))
            .to_string()
    }

    /// Polls the group until its status is not `creating`/`updating`; returns the status.
    async fn settled(&self, group: &str) -> String {
        let path = format!("/groups/{group}");
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            let (status, body) = self.call(reqwest::Method::GET, &path, None).await;
            let s = body["group"]["status"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if status == 404 {
                return "deleted".into();
            }
            if !matches!(s.as_str(), "creating" | "updating" | "deleting")
                || std::time::Instant::now() > deadline
            {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// A group of group type `group_type` (`cg` or `nocg`) for the default volume type,
    /// holding `volumes`; returns its id once it is `available`, or Cinder's answer.
    pub async fn create(
        &self,
        name: &str,
        group_type: &str,
        volumes: &[&VolumeId],
    ) -> Result<String, String> {
        let gtype = self
            .id_named("/group_types", "group_types", group_type)
            .await;
        let vtype = self.id_named("/types", "volume_types", "__DEFAULT__").await;
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                "/groups",
                Some(
                    json!({"group": {"name": name, "group_type": gtype, "volume_types": [vtype]}}),
                ),
            )
            .await;
        let id = match (status, body["group"]["id"].as_str()) {
            (202, Some(id)) => id.to_string(),
            _ => return Err(format!("POST /groups: {status} {body}")),
        };
        let s = self.settled(&id).await;
        if s != "available" {
            return Err(format!("group {id} is {s}"));
        }
        let add: Vec<&str> = volumes.iter().map(|v| v.as_ref()).collect();
        let (status, body) = self
            .call(
                reqwest::Method::PUT,
                &format!("/groups/{id}"),
                Some(json!({"group": {"add_volumes": add.join(",")}})),
            )
            .await;
        if status != 202 {
            return Err(format!("PUT /groups/{id} add_volumes: {status} {body}"));
        }
        let s = self.settled(&id).await;
        if s != "available" {
            return Err(format!("group {id} is {s} after adding its volumes"));
        }
        Ok(id)
    }

    /// Takes `volumes` out of `group` and deletes it (a volume in a group cannot be
    /// deleted); returns what failed.
    pub async fn dispose(&self, group: &str, volumes: &[&VolumeId]) -> Vec<String> {
        let mut left = Vec::new();
        let remove: Vec<&str> = volumes.iter().map(|v| v.as_ref()).collect();
        let (status, body) = self
            .call(
                reqwest::Method::PUT,
                &format!("/groups/{group}"),
                Some(json!({"group": {"remove_volumes": remove.join(",")}})),
            )
            .await;
        if status != 202 {
            left.push(format!(
                "remove volumes from group {group}: {status} {body}"
            ));
        }
        self.settled(group).await;
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                &format!("/groups/{group}/action"),
                Some(json!({"delete": {"delete-volumes": false}})),
            )
            .await;
        if status != 202 && status != 404 {
            left.push(format!("delete group {group}: {status} {body}"));
        } else {
            let s = self.settled(group).await;
            if s != "deleted" {
                left.push(format!("group {group} is {s}"));
            }
        }
        left
    }
}
