//! The Swift rig (tempauth + s3api, started by `tests/rig/swift/start.sh`) as the tests see
//! it: settings for the S3 and Swift backends, and fresh containers (= S3 buckets).
//!
//! Tests that need it call [`SwiftRig::require`], which fails the test, naming the rig and
//! how to start it, unless `PODBANK_TEST_SWIFT` names the proxy, e.g. `http://127.0.0.1:8080`
//! (scripts/test.sh sets it). They carry `#[cfg_attr(podbank_without_swift, ignore = ...)]`:
//! a run that says it has no Swift (`PODBANK_TEST_WITHOUT_RIGS=swift`) reports them ignored.

use std::time::Duration;

use podbank::bank::backend::{BackendSettings, S3Settings, Secret, SwiftSettings};

/// How to get the Swift rig, for failure messages.
pub const HOW_TO_START: &str = "this test needs the Swift rig (tempauth + s3api): run \
     scripts/test.sh (it starts the rigs), or start it yourself (SWIFT_DIR=<dir> bash \
     tests/rig/swift/start.sh) and set PODBANK_TEST_SWIFT=http://127.0.0.1:8080; to run without \
     it on purpose, set PODBANK_TEST_WITHOUT_RIGS=swift (its tests are then reported ignored)";

/// The rig's tempauth user with admin rights on account `AUTH_test`.
pub const USER: &str = "test:tester";
/// Its key (also the S3 secret).
pub const KEY: &str = "testing";
/// The rig's memcached (tempauth's token store).
pub const MEMCACHED_PORT: u16 = 11311;

/// A running Swift rig.
#[derive(Debug, Clone)]
pub struct SwiftRig {
    /// The proxy, e.g. `http://127.0.0.1:8080`.
    pub proxy: String,
}

impl SwiftRig {
    /// The rig named by `PODBANK_TEST_SWIFT`; fails the test, naming the rig and how to
    /// start it, when it is not set.
    pub fn require() -> Self {
        match std::env::var("PODBANK_TEST_SWIFT") {
            Ok(proxy) if !proxy.trim().is_empty() => Self {
                proxy: proxy.trim().trim_end_matches('/').to_string(),
            },
            _ => panic!("PODBANK_TEST_SWIFT is not set: {HOW_TO_START}"),
        }
    }

    /// Settings for the Swift backend with v1.0 auth as `user`/`key`.
    pub fn swift_settings(&self, user: &str, key: &str) -> BackendSettings {
        BackendSettings {
            swift: SwiftSettings {
                auth_url: Some(format!("{}/auth/v1.0", self.proxy)),
                user: Some(user.to_string()),
                key: Some(Secret::new(key)),
                ..SwiftSettings::default()
            },
            ..BackendSettings::default()
        }
    }

    /// Settings for the S3 backend on the rig's s3api with `access_key`/`secret`.
    pub fn s3_settings(&self, access_key: &str, secret: &str) -> BackendSettings {
        BackendSettings {
            s3: S3Settings {
                endpoint: Some(self.proxy.clone()),
                region: Some("us-east-1".into()),
                path_style: Some(true),
                access_key_id: Some(access_key.to_string()),
                secret_access_key: Some(Secret::new(secret)),
                ..S3Settings::default()
            },
            ..BackendSettings::default()
        }
    }

    /// A new, unique, valid bucket/container name starting with `tag`.
    pub fn unique_name(tag: &str) -> String {
        format!("pb-{tag}-{:016x}", rand::random::<u64>())
    }

    /// Creates a container (an S3 bucket for the s3api) with the Swift API and returns its
    /// name.
    pub async fn create_container(&self, tag: &str) -> String {
        let name = Self::unique_name(tag);
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("HTTP client");
        // Twice at most: a test running beside this one may empty memcached (tempauth's
        // token store) between the auth and the PUT.
        for _ in 0..2 {
            let auth = client
                .get(format!("{}/auth/v1.0", self.proxy))
                .header("X-Auth-User", USER)
                .header("X-Auth-Key", KEY)
                .send()
                .await
                .expect("Swift rig auth reachable");
            assert!(auth.status().is_success(), "rig auth: {}", auth.status());
            let header = |h: &str| {
                auth.headers()
                    .get(h)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
                    .expect("auth header")
            };
            let (url, token) = (header("X-Storage-Url"), header("X-Auth-Token"));
            let created = client
                .put(format!("{url}/{name}"))
                .header("X-Auth-Token", token)
                .send()
                .await
                .expect("container PUT");
            if created.status() == reqwest::StatusCode::UNAUTHORIZED {
                continue;
            }
            assert!(
                created.status().is_success(),
                "create container: {}",
                created.status()
            );
            return name;
        }
        panic!("the Swift rig refused two fresh tokens in a row");
    }

    /// Empties the rig's memcached, where tempauth keeps its tokens: every token handed
    /// out so far stops working.
    pub async fn forget_tokens(&self) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", MEMCACHED_PORT))
            .await
            .expect("the rig's memcached");
        conn.write_all(b"flush_all\r\n").await.expect("flush_all");
        let mut answer = [0u8; 4];
        conn.read_exact(&mut answer)
            .await
            .expect("memcached answer");
        assert_eq!(&answer, b"OK\r\n", "memcached flush_all");
    }

    /// The rig's Keystone-authenticated proxy (`PODBANK_TEST_SWIFT_KEYSTONE`, e.g.
    /// `http://127.0.0.1:8081`) and the clouds.yaml of the Keystone it trusts (the Cinder
    /// rig's, `$PODBANK_TEST_CINDER_DIR/clouds.yaml`, cloud `rig`). Fails the test, naming
    /// the rigs and how to start them, unless both are there.
    pub fn keystone_require() -> (String, std::path::PathBuf) {
        let proxy = std::env::var("PODBANK_TEST_SWIFT_KEYSTONE").ok();
        let clouds = super::cinder::CinderRig::require().clouds_yaml();
        match proxy {
            Some(proxy) if !proxy.trim().is_empty() => {
                (proxy.trim().trim_end_matches('/').to_string(), clouds)
            }
            _ => panic!(
                "PODBANK_TEST_SWIFT_KEYSTONE is not set: this test needs the Swift rig's \
                 Keystone proxy (scripts/test.sh starts it on 127.0.0.1:8081 with \
                 SWIFT_KEYSTONE_URL set) and the Cinder rig's Keystone; to run without them \
                 on purpose, set PODBANK_TEST_WITHOUT_RIGS=swift,cinder"
            ),
        }
    }

    /// Writes a copy of the clouds.yaml at `clouds` into `dir` whose cloud `rig` points its
    /// object store at `proxy` (the project's account there), and returns its path.
    pub async fn keystone_clouds_file(
        proxy: &str,
        clouds: &std::path::Path,
        dir: &std::path::Path,
    ) -> std::path::PathBuf {
        let text = std::fs::read_to_string(clouds).expect("the Cinder rig's clouds.yaml");
        let mut yaml: serde_yaml::Value = serde_yaml::from_str(&text).expect("YAML");
        let auth = yaml["clouds"]["rig"]["auth"].clone();
        let field = |name: &str| auth[name].as_str().expect("auth field").to_string();
        let body = serde_json::json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": field("username"),
                "domain": {"name": field("user_domain_name")},
                "password": field("password")}}},
            "scope": {"project": {
                "name": field("project_name"),
                "domain": {"name": field("project_domain_name")}}}}});
        let token: serde_json::Value = reqwest::Client::new()
            .post(format!(
                "{}/auth/tokens",
                field("auth_url").trim_end_matches('/')
            ))
            .json(&body)
            .send()
            .await
            .expect("Keystone reachable")
            .error_for_status()
            .expect("Keystone token")
            .json()
            .await
            .expect("token JSON");
        let project = token["token"]["project"]["id"]
            .as_str()
            .expect("project id");
        yaml["clouds"]["rig"]["object_store_endpoint_override"] =
            format!("{proxy}/v1/AUTH_{project}").into();
        let path = dir.join("clouds.yaml");
        std::fs::write(&path, serde_yaml::to_string(&yaml).expect("YAML")).expect("write");
        path
    }
}
