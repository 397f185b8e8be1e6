//! Karbor's v1 API, driven by Karbor's own client: python-karborclient 2.1.0's `karbor`
//! CLI (`--os-no-client-auth --karbor-url ... --os-auth-token ...`) against an agent over
//! the real engine, a real etcd seeded with pods and a local bank; and the answers the
//! client does not show (version documents, faults) at the HTTP level.
//!
//! The client is found through `PODBANK_TEST_KARBORCLIENT` (set by `scripts/test.sh`,
//! installed by `scripts/install-deps.sh`); without it the test fails, naming it, unless
//! the run says `PODBANK_TEST_WITHOUT_RIGS=karborclient`.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::support::apiserver::FakeApiServer;
use crate::support::etcd::TestEtcd;
use crate::support::http::karbor_request as request;
use podbank::agent::karbor::types::PROVIDER_ID;
use podbank::agent::{Agent, AgentConfig};
use podbank::bank::{backend, Bank, OpenOptions};
use podbank::codec::Decoder;
use podbank::engine::{Engine, Lazy, LocalEngine, SelectionSpec, VolumeMode};
use podbank_seed::{self as seed, SeedPlan};
use serde_json::Value;

const TOKEN: &str = "karbor-token-0123456789";
const PROJECT: &str = "0f7e1a2b3c4d4e5f8a9b0c1d2e3f4a5b";
/// A checkpoint UUID of podbank's form (checkpoint `20200101T120000Z-deadbeef`) that no
/// bank holds.
const UNKNOWN_CHECKPOINT: &str = "20200101-1200-00de-adbe-ef0c4ec4b0b0";
/// A UUID that names no podbank checkpoint, restore or plan.
const UNKNOWN_UUID: &str = "5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a";

struct Rig {
    _etcd: TestEtcd,
    client: podbank::etcd::Etcd,
    config: AgentConfig,
    _dir: tempfile::TempDir,
    api: FakeApiServer,
    agent: Option<Agent>,
    engine: Arc<LocalEngine>,
    addr: SocketAddr,
}

async fn start(pods: usize) -> Rig {
    let etcd = TestEtcd::start();
    let client = etcd.connect().await;
    seed::write(
        &client,
        seed::generate(&SeedPlan {
            pods,
            ..SeedPlan::default()
        }),
    )
    .await
    .expect("seed");
    let dir = tempfile::tempdir().expect("tempdir");
    let backend =
        backend::open(&format!("file://{}", dir.path().join("bank").display())).expect("backend");
    let bank = Bank::open(
        backend,
        OpenOptions {
            key: None,
            create: true,
            pack_target_bytes: None,
        },
    )
    .await
    .expect("bank");
    let api = FakeApiServer::start(&[]).await;
    let server = podbank::apiserver::ApiServer::connect(&podbank::apiserver::KubeSettings {
        kubeconfig: Some(api.write_kubeconfig(dir.path())),
        context: None,
    })
    .await
    .expect("kube client");
    let engine = Arc::new(
        LocalEngine::new(
            Lazy::ready(client.clone()),
            Decoder::new(None),
            Lazy::ready(bank),
            VolumeMode::Skip("no Cinder in this test".into()),
        )
        .with_api_server(Lazy::ready(server)),
    );
    let token = dir.path().join("token");
    std::fs::write(&token, TOKEN).expect("token");
    let config = AgentConfig::from_yaml(
        &serde_yaml::from_str(&format!(
            "listen: 127.0.0.1:0\ntoken_file: {}\nelection: {{ ttl: 3 }}\n",
            token.display()
        ))
        .expect("yaml"),
    )
    .expect("config");
    let agent = Agent::start(&config, engine.clone(), &client)
        .await
        .expect("agent");
    let addr = agent.local_addr();
    Rig {
        _etcd: etcd,
        client,
        config,
        _dir: dir,
        api,
        agent: Some(agent),
        engine,
        addr,
    }
}

impl Rig {
    async fn stop(mut self) {
        if let Some(agent) = self.agent.take() {
            agent.shutdown().await.expect("agent shutdown");
        }
    }

    /// Another replica takes over: the agent shuts down (resigning its leadership) and a
    /// new one starts on the same etcd and bank.
    async fn hand_over(&mut self) {
        if let Some(agent) = self.agent.take() {
            agent.shutdown().await.expect("agent shutdown");
        }
        let agent = Agent::start(&self.config, self.engine.clone(), &self.client)
            .await
            .expect("agent");
        self.addr = agent.local_addr();
        self.agent = Some(agent);
    }
}

/// The `karbor` CLI of python-karborclient 2.1.0, or a failure naming what is missing.
fn karbor_cli() -> String {
    match std::env::var("PODBANK_TEST_KARBORCLIENT") {
        Ok(path) if std::path::Path::new(&path).is_file() => path,
        Ok(path) => panic!(
            "PODBANK_TEST_KARBORCLIENT={path} is not a file: install python-karborclient 2.1.0 \
             with scripts/install-deps.sh (or run with PODBANK_TEST_WITHOUT_RIGS=karborclient)"
        ),
        Err(_) => panic!(
            "PODBANK_TEST_KARBORCLIENT is not set: it names python-karborclient 2.1.0's \
             `karbor` CLI (scripts/install-deps.sh installs it, scripts/test.sh sets it; \
             PODBANK_TEST_WITHOUT_RIGS=karborclient skips this test)"
        ),
    }
}

/// Runs `karbor <args>` against the agent; returns (success, stdout, stderr).
async fn karbor(addr: SocketAddr, token: &str, args: &[&str]) -> (bool, String, String) {
    let cli = karbor_cli();
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

/// `karbor <args>` that must succeed; its stdout.
async fn karbor_ok(addr: SocketAddr, args: &[&str]) -> String {
    let (ok, out, err) = karbor(addr, TOKEN, args).await;
    assert!(ok, "karbor {args:?} failed:\n{out}\n{err}");
    out
}

/// The first column of a prettytable's data rows (continuation rows have it empty).
fn first_column(table: &str) -> Vec<String> {
    table
        .lines()
        .filter(|l| l.starts_with('|'))
        .skip(1)
        .filter_map(|l| l.split('|').nth(1).map(|c| c.trim().to_string()))
        .filter(|c| !c.is_empty())
        .collect()
}

/// The value of `property` in a prettytable of `Property | Value` (its first line).
fn property(table: &str, property: &str) -> Option<String> {
    table.lines().find_map(|l| {
        let cells: Vec<&str> = l.split('|').map(str::trim).collect();
        (cells.len() >= 3 && cells[1] == property).then(|| cells[2].to_string())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    podbank_without_karborclient,
    ignore = "needs python-karborclient; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn karborclient_lists_protectables_instances_and_the_provider() {
    karbor_cli();
    let rig = start(12).await;
    let addr = rig.addr;

    // protectable-list: the pod, its Cinder volumes and the types of its closure.
    let types = first_column(&karbor_ok(addr, &["protectable-list"]).await);
    for t in [
        "OS::Kubernetes::Pod",
        "OS::Cinder::Volume",
        "OS::Kubernetes::ConfigMap",
        "OS::Kubernetes::Namespace",
    ] {
        assert!(types.iter().any(|x| x == t), "{t} missing from {types:?}");
    }

    // protectable-show: a pod depends on Cinder volumes (and its closure).
    let show = karbor_ok(addr, &["protectable-show", "OS::Kubernetes::Pod"]).await;
    assert_eq!(
        property(&show, "name").as_deref(),
        Some("OS::Kubernetes::Pod")
    );
    let deps = property(&show, "dependent_types").expect("dependent_types");
    assert!(deps.contains("'OS::Cinder::Volume'"), "{deps}");
    let show = karbor_ok(addr, &["protectable-show", "OS::Cinder::Volume"]).await;
    assert_eq!(property(&show, "dependent_types").as_deref(), Some("[]"));
    let (ok, _, err) = karbor(addr, TOKEN, &["protectable-show", "OS::Nova::Server"]).await;
    assert!(
        !ok && err.contains("Invalid protectable type provided. (HTTP 400)"),
        "{err}"
    );

    // protectable-list-instances: the pods the engine reads, in id order, paged.
    let uids: Vec<String> = rig
        .engine
        .pods(&SelectionSpec::default())
        .await
        .expect("pods")
        .items
        .into_iter()
        .map(|p| p.id)
        .collect();
    // Instances come in key order (namespace, then name), as the listing reads them;
    // karbor prints each page sorted by id.
    assert_eq!(uids.len(), 12);
    let sorted = |ids: &[String]| {
        let mut ids = ids.to_vec();
        ids.sort();
        ids
    };
    let all = karbor_ok(addr, &["protectable-list-instances", "OS::Kubernetes::Pod"]).await;
    assert_eq!(first_column(&all), sorted(&uids), "{all}");
    assert!(
        all.contains("OS::Kubernetes::Namespace"),
        "no dependents:\n{all}"
    );
    let page = karbor_ok(
        addr,
        &[
            "protectable-list-instances",
            "OS::Kubernetes::Pod",
            "--limit",
            "5",
        ],
    )
    .await;
    assert_eq!(first_column(&page), sorted(&uids[..5]));
    let next = karbor_ok(
        addr,
        &[
            "protectable-list-instances",
            "OS::Kubernetes::Pod",
            "--limit",
            "5",
            "--marker",
            &uids[4],
        ],
    )
    .await;
    assert_eq!(first_column(&next), sorted(&uids[5..10]));

    // --parameters namespace=...: only that namespace's pods.
    let ns0 = rig
        .engine
        .pods(&SelectionSpec {
            namespaces: vec!["ns-0".parse().unwrap()],
            ..SelectionSpec::default()
        })
        .await
        .expect("pods of ns-0");
    let mut ns0: Vec<String> = ns0.items.into_iter().map(|p| p.id).collect();
    ns0.sort();
    assert!(!ns0.is_empty() && ns0.len() < uids.len(), "{ns0:?}");
    let filtered = karbor_ok(
        addr,
        &[
            "protectable-list-instances",
            "OS::Kubernetes::Pod",
            "--parameters",
            "namespace=ns-0",
        ],
    )
    .await;
    assert_eq!(first_column(&filtered), ns0);

    // protectable-show-instance: one pod by uid, with its dependent resources.
    let one = karbor_ok(
        addr,
        &["protectable-show-instance", "OS::Kubernetes::Pod", &uids[0]],
    )
    .await;
    assert_eq!(property(&one, "id").as_deref(), Some(uids[0].as_str()));
    assert_eq!(
        property(&one, "type").as_deref(),
        Some("OS::Kubernetes::Pod")
    );
    assert!(one.contains("dependent_resources"), "{one}");
    let (ok, _, err) = karbor(
        addr,
        TOKEN,
        &[
            "protectable-show-instance",
            "OS::Kubernetes::Pod",
            "no-such-uid",
        ],
    )
    .await;
    assert!(!ok && err.contains("(HTTP 404)"), "{err}");

    // provider-list / provider-show: one provider, its schemas per resource type.
    let providers = karbor_ok(addr, &["provider-list"]).await;
    assert_eq!(first_column(&providers), vec![PROVIDER_ID.to_string()]);
    assert!(providers.contains("podbank"), "{providers}");
    let provider = karbor_ok(addr, &["provider-show", PROVIDER_ID]).await;
    assert_eq!(property(&provider, "name").as_deref(), Some("podbank"));
    for key in [
        "options_schema",
        "restore_schema",
        "saved_info_schema",
        "backup_name",
        "restore_name",
    ] {
        assert!(provider.contains(key), "{key} missing:\n{provider}");
    }
    let (ok, _, err) = karbor(addr, TOKEN, &["provider-show", "no-such-provider"]).await;
    assert!(!ok && err.contains("(HTTP 404)"), "{err}");

    // A wrong token is refused as Karbor refuses it.
    let (ok, _, err) = karbor(addr, "wrong", &["protectable-list"]).await;
    assert!(!ok && err.contains("unauthorized"), "{err}");
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_documents_and_faults_are_karbors() {
    let rig = start(3).await;
    let addr = rig.addr;

    let (status, body) = request(addr, "GET", "/", None, None).await;
    assert_eq!(status, 300, "{body}");
    assert_eq!(body["versions"][0]["id"], "v1.0");
    assert_eq!(body["versions"][0]["status"], "CURRENT");
    let (status, body) = request(addr, "GET", "/v1", None, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["version"]["id"], "v1.0");

    // Faults: OpenStack's body, keyed by kind.
    let path = format!("/v1/{PROJECT}/protectables");
    let (status, body) = request(addr, "GET", &path, None, None).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["unauthorized"]["code"], 401, "{body}");
    let (status, body) = request(addr, "GET", &path, Some(TOKEN), None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["protectable_type"]
        .as_array()
        .is_some_and(|t| t.iter().any(|t| t == "OS::Kubernetes::Pod")));
    let (status, body) = request(
        addr,
        "GET",
        &format!("/v1/{PROJECT}/protectables/OS::Nova::Server"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["badRequest"]["message"],
        "Invalid input received: Invalid protectable type provided."
    );
    let (status, body) = request(
        addr,
        "GET",
        &format!("/v1/{PROJECT}/protectables/OS::Kubernetes::Pod/instances?limit=0"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["badRequest"]["code"], 400);

    // Paging links.
    let (status, body) = request(
        addr,
        "GET",
        &format!("/v1/{PROJECT}/protectables/OS::Kubernetes::Pod/instances?limit=2"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["instances"].as_array().map(Vec::len), Some(2));
    let next = body["instances_links"][0]["href"].as_str().unwrap_or("");
    assert!(next.contains("limit=2&marker="), "{body}");
    // podbank's representation of the same route: its own view of the pods.
    let (status, body) = crate::support::http::request(
        addr,
        "GET",
        &format!("/v1/{PROJECT}/protectables/OS::Kubernetes::Pod/instances?limit=2"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"].as_array().map(Vec::len), Some(2), "{body}");
    assert!(body["next"].is_string(), "{body}");
    rig.stop().await;
}

/// `karbor <args>` until the `status` property is one of `done`; that status (and the
/// whole answer).
async fn wait_status(addr: SocketAddr, args: &[&str], done: &[&str]) -> (String, String) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        let out = karbor_ok(addr, args).await;
        let status = property(&out, "status").unwrap_or_default();
        if done.contains(&status.as_str()) {
            return (status, out);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "karbor {args:?} still {status:?} after 90 s:\n{out}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    podbank_without_karborclient,
    ignore = "needs python-karborclient; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn karborclient_drives_plans_checkpoints_and_restores() {
    karbor_cli();
    let rig = start(6).await;
    let addr = rig.addr;
    // A pod without Cinder volumes: this test has no Cinder, so only such a pod can
    // come back (one with a volume fails its restore, naming the volume).
    let mut pods = rig
        .engine
        .pods(&SelectionSpec::default())
        .await
        .expect("pods")
        .items;
    pods.sort_by(|a, b| a.id.cmp(&b.id));
    let pod = pods
        .iter()
        .find(|p| p.cinder_volumes == 0)
        .expect("a pod without Cinder volumes");
    let pod_name = pod.pod.info.name.clone();
    let ns = pod.pod.info.namespace.clone();
    let resources = format!("{}=OS::Kubernetes::Pod={ns}/{pod_name}", pod.id);

    // A plan without backup_name is a 400 naming it, and nothing is stored.
    let (ok, _, err) = karbor(
        addr,
        TOKEN,
        &[
            "plan-create",
            "nightly",
            PROVIDER_ID,
            &resources,
            "--parameters",
            "resource_type=OS::Kubernetes::Pod,description=no name",
        ],
    )
    .await;
    assert!(
        !ok && err.contains("backup_name") && err.contains("HTTP 400"),
        "{err}"
    );
    assert!(rig.engine.stored_plans().await.expect("plans").is_empty());

    // plan-create / show / list / update.
    let created = karbor_ok(
        addr,
        &[
            "plan-create",
            "nightly",
            PROVIDER_ID,
            &resources,
            "--parameters",
            "resource_type=OS::Kubernetes::Pod,backup_name=kb,description=from karbor",
            "--description",
            "one pod",
        ],
    )
    .await;
    let plan_id = property(&created, "id").expect("plan id");
    assert_eq!(property(&created, "status").as_deref(), Some("suspended"));
    let stored = rig.engine.stored_plans().await.expect("plans");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].id.to_string(), plan_id);
    assert_eq!(stored[0].project_id, PROJECT);
    let shown = karbor_ok(addr, &["plan-show", &plan_id]).await;
    assert_eq!(property(&shown, "name").as_deref(), Some("nightly"));
    assert!(shown.contains("backup_name"), "{shown}");
    let listed = karbor_ok(addr, &["plan-list"]).await;
    assert_eq!(first_column(&listed), vec![plan_id.clone()]);
    let updated = karbor_ok(addr, &["plan-update", &plan_id, "--name", "nightly-2"]).await;
    assert_eq!(property(&updated, "name").as_deref(), Some("nightly-2"));

    // checkpoint-create: protecting at once, then available; listed under its plan.
    let cp = karbor_ok(addr, &["checkpoint-create", PROVIDER_ID, &plan_id]).await;
    let cp_id = property(&cp, "id").expect("checkpoint id");
    assert!(uuid::Uuid::try_parse(&cp_id).is_ok(), "{cp}");
    let (status, shown) = wait_status(
        addr,
        &["checkpoint-show", PROVIDER_ID, &cp_id],
        &["available", "error"],
    )
    .await;
    assert_eq!(status, "available", "{shown}");
    assert!(
        shown.contains(&pod.id),
        "the resource graph names the pod:\n{shown}"
    );
    assert!(shown.contains("nightly-2"), "{shown}");
    let listed = karbor_ok(
        addr,
        &["checkpoint-list", PROVIDER_ID, "--plan_id", &plan_id],
    )
    .await;
    assert_eq!(first_column(&listed), vec![cp_id.clone()], "{listed}");
    let bank = rig
        .engine
        .checkpoints(&podbank::engine::CheckpointFilter::default())
        .await
        .expect("checkpoints");
    assert_eq!(bank.items.len(), 1);
    assert_eq!(bank.items[0].pods, 1);
    assert_eq!(bank.items[0].backup_name, "kb");

    // checkpoint-reset-state: to error (karbor's default), then back with --available;
    // karbor prints nothing when it worked. The bank holds the new status.
    let out = karbor_ok(addr, &["checkpoint-reset-state", PROVIDER_ID, &cp_id]).await;
    assert_eq!(out.trim(), "", "{out}");
    let shown = karbor_ok(addr, &["checkpoint-show", PROVIDER_ID, &cp_id]).await;
    assert_eq!(
        property(&shown, "status").as_deref(),
        Some("error"),
        "{shown}"
    );
    let cp_in_bank = rig
        .engine
        .checkpoints(&podbank::engine::CheckpointFilter::default())
        .await
        .expect("checkpoints");
    assert_eq!(cp_in_bank.items[0].status.label(), "error");
    let out = karbor_ok(
        addr,
        &["checkpoint-reset-state", PROVIDER_ID, &cp_id, "--available"],
    )
    .await;
    assert_eq!(out.trim(), "", "{out}");
    let shown = karbor_ok(addr, &["checkpoint-show", PROVIDER_ID, &cp_id]).await;
    assert_eq!(
        property(&shown, "status").as_deref(),
        Some("available"),
        "{shown}"
    );
    // An unknown checkpoint (a podbank id that is not in the bank, and a UUID that names
    // no podbank checkpoint) is a 404, which karbor reports as not found.
    for unknown in [UNKNOWN_CHECKPOINT, UNKNOWN_UUID] {
        let (ok, out, err) = karbor(
            addr,
            TOKEN,
            &[
                "checkpoint-reset-state",
                PROVIDER_ID,
                unknown,
                "--available",
            ],
        )
        .await;
        assert!(!ok, "{out}\n{err}");
        assert!(
            out.contains(&format!(
                "Failed to reset state of '{unknown}'; checkpoint not found"
            )),
            "{out}\n{err}"
        );
    }

    // restore-create: a bad restore_name is a 400 and starts nothing.
    let (ok, _, err) = karbor(
        addr,
        TOKEN,
        &[
            "restore-create",
            PROVIDER_ID,
            &cp_id,
            "--parameters",
            "resource_type=OS::Kubernetes::Pod,restore_name=",
        ],
    )
    .await;
    assert!(
        !ok && err.contains("restore_name") && err.contains("HTTP 400"),
        "{err}"
    );
    assert!(rig
        .engine
        .restores()
        .await
        .expect("restores")
        .items
        .is_empty());

    // A valid restore succeeds, and the pod is in the cluster.
    let restore = karbor_ok(
        addr,
        &[
            "restore-create",
            PROVIDER_ID,
            &cp_id,
            "--parameters",
            "resource_type=OS::Kubernetes::Pod,restore_name=back,restore_description=karbor",
        ],
    )
    .await;
    let restore_id = property(&restore, "id").expect("restore id");
    let (status, shown) =
        wait_status(addr, &["restore-show", &restore_id], &["success", "fail"]).await;
    assert_eq!(status, "success", "{shown}");
    assert!(
        shown.contains(&format!(
            "'OS::Kubernetes::Pod#pod:{ns}/{pod_name}': 'available'"
        )),
        "{shown}"
    );
    // The pod is back, as itself or (a pod of a controller) through its owner.
    assert!(
        !rig.api.objects_of("pods", &ns).is_empty(),
        "no pod in {ns}"
    );
    let listed = karbor_ok(addr, &["restore-list"]).await;
    assert_eq!(first_column(&listed), vec![restore_id.clone()], "{listed}");

    // restore_auth is accepted (Karbor's clients send it with a target, other clients may
    // send it alone) and never stored or shown: not in the bank's files, not in the views.
    const SECRET: &str = "pw-9f3c1e-never-stored";
    let (status, created) = api(
        addr,
        "POST",
        "/restores",
        Some(serde_json::json!({ "restore": {
            "provider_id": PROVIDER_ID,
            "checkpoint_id": cp_id,
            "parameters": { "OS::Kubernetes::Pod": { "restore_name": "authed" } },
            "restore_auth": { "type": "password", "username": "alice", "password": SECRET },
        }})),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    let authed = created["restore"]["id"].as_str().expect("id").to_string();
    let (status, shown) = wait_status(addr, &["restore-show", &authed], &["success", "fail"]).await;
    assert_eq!(status, "success", "{shown}");
    assert!(!shown.contains(SECRET), "{shown}");
    let (_, listed) = api(addr, "GET", "/restores", None).await;
    assert!(!listed.to_string().contains(SECRET), "{listed}");
    let mut files = vec![rig._dir.path().to_path_buf()];
    let mut restore_files = 0;
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(
                std::fs::read_dir(&path)
                    .expect("dir")
                    .map(|e| e.expect("entry").path()),
            );
        } else {
            restore_files += usize::from(path.to_string_lossy().contains("restores"));
            let bytes = std::fs::read(&path).expect("file");
            assert!(
                !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
                "the password is in {}",
                path.display()
            );
        }
    }
    assert!(restore_files >= 2, "the bank holds the restores' records");
    // The bank compresses records: read them back decoded too.
    for r in rig.engine.restores().await.expect("restores").items {
        let record = rig
            .engine
            .restore_record(&r.id)
            .await
            .expect("restore record");
        let text = serde_json::to_string(&record).expect("json");
        assert!(!text.contains(SECRET), "{text}");
        assert!(!text.contains("alice"), "{text}");
    }

    // checkpoint-delete: the checkpoint goes (the plan stays until plan-delete).
    karbor_ok(addr, &["checkpoint-delete", PROVIDER_ID, &cp_id]).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let left = rig
            .engine
            .checkpoints(&podbank::engine::CheckpointFilter::default())
            .await
            .expect("checkpoints");
        if left.items.is_empty() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{:?}", left.items);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    karbor_ok(addr, &["plan-delete", &plan_id]).await;
    assert!(rig.engine.stored_plans().await.expect("plans").is_empty());
    let (ok, _, err) = karbor(addr, TOKEN, &["plan-show", &plan_id]).await;
    assert!(!ok && err.contains("HTTP 404"), "{err}");
    rig.stop().await;
}

/// `(status, body)` of `method path` with the token.
async fn api(addr: SocketAddr, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    request(
        addr,
        method,
        &format!("/v1/{PROJECT}{path}"),
        Some(TOKEN),
        body,
    )
    .await
}

/// Asserts a Karbor fault of `status` under `key` (`badRequest`, `itemNotFound`).
fn assert_fault(what: &str, (status, body): (u16, Value), want: u16, key: &str) {
    assert_eq!(status, want, "{what}: {body}");
    assert_eq!(body[key]["code"], want, "{what}: {body}");
    assert!(
        body[key]["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_ids_and_bad_paging_are_karbor_faults_and_create_nothing() {
    let rig = start(3).await;
    let addr = rig.addr;
    let cps = format!("/providers/{PROVIDER_ID}/checkpoints");

    // Unknown plans: show, update, delete, and a checkpoint of one.
    for (method, body) in [
        ("GET", None),
        ("PUT", Some(serde_json::json!({ "plan": { "name": "x" } }))),
        ("DELETE", None),
    ] {
        let path = format!("/plans/{UNKNOWN_UUID}");
        assert_fault(
            &format!("{method} {path}"),
            api(addr, method, &path, body).await,
            404,
            "itemNotFound",
        );
    }
    let create = serde_json::json!({ "checkpoint": { "plan_id": UNKNOWN_UUID } });
    assert_fault(
        "checkpoint of an unknown plan",
        api(addr, "POST", &cps, Some(create.clone())).await,
        404,
        "itemNotFound",
    );
    assert_fault(
        "checkpoint under an unknown provider",
        api(
            addr,
            "POST",
            &format!("/providers/{UNKNOWN_UUID}/checkpoints"),
            Some(create),
        )
        .await,
        404,
        "itemNotFound",
    );

    // Unknown checkpoints: show, delete, reset-state, and a restore of one.
    for id in [UNKNOWN_CHECKPOINT, UNKNOWN_UUID] {
        let path = format!("{cps}/{id}");
        let reset = serde_json::json!({ "os-resetState": { "state": "available" } });
        for (method, body) in [("GET", None), ("DELETE", None), ("PUT", Some(reset))] {
            assert_fault(
                &format!("{method} {path}"),
                api(addr, method, &path, body).await,
                404,
                "itemNotFound",
            );
        }
        let restore = serde_json::json!({ "restore": {
            "provider_id": PROVIDER_ID,
            "checkpoint_id": id,
            "parameters": { "OS::Kubernetes::Pod": { "restore_name": "back" } },
        }});
        assert_fault(
            &format!("restore of {id}"),
            api(addr, "POST", "/restores", Some(restore)).await,
            404,
            "itemNotFound",
        );
    }
    assert_fault(
        "unknown restore",
        api(addr, "GET", &format!("/restores/{UNKNOWN_UUID}"), None).await,
        404,
        "itemNotFound",
    );
    // reset-state takes available or error only, in Karbor's body.
    let path = format!("{cps}/{UNKNOWN_CHECKPOINT}");
    for body in [
        serde_json::json!({ "os-resetState": { "state": "protecting" } }),
        serde_json::json!({ "os-resetState": {} }),
        serde_json::json!({ "state": "available" }),
    ] {
        assert_fault(
            &format!("reset-state with {body}"),
            api(addr, "PUT", &path, Some(body.clone())).await,
            400,
            "badRequest",
        );
    }

    // Listings: a marker that names nothing, a limit that is not a positive integer.
    for list in ["/plans", cps.as_str(), "/restores"] {
        for query in ["marker=not-an-id", "limit=0", "limit=abc", "limit=-1"] {
            let path = format!("{list}?{query}");
            assert_fault(
                &format!("GET {path}"),
                api(addr, "GET", &path, None).await,
                400,
                "badRequest",
            );
        }
    }

    // None of it created anything.
    assert!(rig.engine.stored_plans().await.expect("plans").is_empty());
    let checkpoints = rig
        .engine
        .checkpoints(&podbank::engine::CheckpointFilter::default())
        .await
        .expect("checkpoints");
    assert!(checkpoints.items.is_empty(), "{:?}", checkpoints.items);
    let restores = rig.engine.restores().await.expect("restores");
    assert!(restores.items.is_empty(), "{:?}", restores.items);
    let (status, body) = api(addr, "GET", "/plans", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["plans"], serde_json::json!([]), "{body}");
    rig.stop().await;
}

/// Karbor's own example: hourly, as karborclient's users write it (`\n` as two characters).
const HOURLY: &str = "BEGIN:VEVENT\\nRRULE:FREQ=HOURLY;INTERVAL=1;\\nEND:VEVENT";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    podbank_without_karborclient,
    ignore = "needs python-karborclient; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn karborclient_drives_triggers() {
    karbor_cli();
    let rig = start(1).await;
    let addr = rig.addr;
    let stored = || async { rig.engine.stored_triggers().await.expect("triggers") };

    // trigger-create: a calendar pattern and a crontab one.
    let out = karbor_ok(
        addr,
        &[
            "trigger-create",
            "tr1",
            "time",
            &format!("pattern={HOURLY},format=calendar"),
        ],
    )
    .await;
    let calendar_id = property(&out, "id").expect("id");
    assert_eq!(property(&out, "name").as_deref(), Some("tr1"), "{out}");
    assert_eq!(property(&out, "type").as_deref(), Some("time"), "{out}");
    assert!(
        out.contains("FREQ=HOURLY;INTERVAL=1;") && out.contains("\"calendar\""),
        "{out}"
    );
    assert!(
        out.contains("start_time") && out.contains("\"900\""),
        "{out}"
    );
    let out = karbor_ok(
        addr,
        &[
            "trigger-create",
            "tr2",
            "time",
            "format=crontab,pattern=0 */2 * * *,window=1200,start_time=2030-01-01 00:00:00",
        ],
    )
    .await;
    let crontab_id = property(&out, "id").expect("id");
    assert!(
        out.contains("0 */2 * * *")
            && out.contains("\"1200\"")
            && out.contains("2030-01-01 00:00:00"),
        "{out}"
    );
    let kept = stored().await;
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(kept.iter().all(|t| t.project_id == PROJECT), "{kept:?}");

    // trigger-list / trigger-show.
    let list = karbor_ok(addr, &["trigger-list"]).await;
    let mut ids = first_column(&list);
    ids.retain(|c| c != "Id");
    let mut want = vec![calendar_id.clone(), crontab_id.clone()];
    want.sort();
    assert_eq!(ids, want, "{list}");
    assert!(list.contains("tr1") && list.contains("tr2"), "{list}");
    let show = karbor_ok(addr, &["trigger-show", &crontab_id]).await;
    assert_eq!(property(&show, "name").as_deref(), Some("tr2"), "{show}");
    assert!(show.contains("\"crontab\""), "{show}");

    // trigger-update: the name alone, then a property alone (merged over the others).
    let out = karbor_ok(addr, &["trigger-update", &calendar_id, "--name", "hourly"]).await;
    assert_eq!(property(&out, "name").as_deref(), Some("hourly"), "{out}");
    assert!(out.contains("FREQ=HOURLY"), "{out}");
    let out = karbor_ok(
        addr,
        &[
            "trigger-update",
            &crontab_id,
            "--properties",
            "pattern=30 3 * * *",
        ],
    )
    .await;
    assert!(
        out.contains("30 3 * * *") && out.contains("\"1200\""),
        "{out}"
    );
    // A pattern too frequent is refused, and the trigger stays as it was.
    let (ok, _, err) = karbor(
        addr,
        TOKEN,
        &[
            "trigger-update",
            &crontab_id,
            "--properties",
            "pattern=*/5 * * * *",
        ],
    )
    .await;
    assert!(
        !ok && err.contains("less than 3600") && err.contains("(HTTP 400)"),
        "{err}"
    );
    let show = karbor_ok(addr, &["trigger-show", &crontab_id]).await;
    assert!(show.contains("30 3 * * *"), "{show}");

    // Refused creations: nothing is stored.
    for (kind, properties, says) in [
        (
            "time",
            "format=calendar,pattern=BEGIN:VEVENT\\nRRULE:FREQ=SOMETIMES\\nEND:VEVENT".to_string(),
            "is invalid",
        ),
        (
            "time",
            "format=calendar,pattern=RRULE:FREQ=DAILY".to_string(),
            "VEVENT",
        ),
        (
            "time",
            "format=crontab,pattern=0 0 30 2 *".to_string(),
            "never fires",
        ),
        (
            "time",
            "format=ical,pattern=0 0 * * *".to_string(),
            "calendar, crontab",
        ),
        (
            "time",
            "format=crontab,pattern=0 0 * * *,window=60".to_string(),
            "between 900 and 1800",
        ),
        (
            "event",
            format!("format=calendar,pattern={HOURLY}"),
            "Invalid trigger type:event",
        ),
    ] {
        let (ok, _, err) = karbor(addr, TOKEN, &["trigger-create", "bad", kind, &properties]).await;
        assert!(
            !ok && err.contains(says) && err.contains("(HTTP 400)"),
            "{kind} {properties}: {err}"
        );
    }
    assert_eq!(stored().await.len(), 2);

    // Unknown ids.
    let (ok, _, err) = karbor(addr, TOKEN, &["trigger-show", UNKNOWN_UUID]).await;
    assert!(
        !ok && err.contains(&format!(
            "Trigger {UNKNOWN_UUID} could not be found. (HTTP 404)"
        )),
        "{err}"
    );
    let (ok, out, err) = karbor(addr, TOKEN, &["trigger-delete", UNKNOWN_UUID]).await;
    assert!(!ok, "{out}\n{err}");
    assert_eq!(stored().await.len(), 2);

    // trigger-delete.
    karbor_ok(addr, &["trigger-delete", &calendar_id, &crontab_id]).await;
    assert!(stored().await.is_empty());
    let list = karbor_ok(addr, &["trigger-list"]).await;
    assert!(first_column(&list).iter().all(|c| c == "Id"), "{list}");
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trigger_faults_are_karbors_and_store_nothing() {
    let rig = start(1).await;
    let addr = rig.addr;
    let properties = serde_json::json!({ "format": "crontab", "pattern": "0 * * * *" });
    for body in [
        serde_json::json!({ "name": "x", "type": "time", "properties": properties }),
        serde_json::json!({ "trigger_info": { "type": "time", "properties": properties } }),
        serde_json::json!({ "trigger_info": { "name": "x", "type": "time" } }),
        serde_json::json!({ "trigger_info": { "name": "x", "type": "time",
            "properties": { "format": "crontab" } } }),
        serde_json::json!({ "trigger_info": { "name": "x", "type": "time",
            "properties": { "format": "crontab", "pattern": "0 * * * *", "color": "red" } } }),
        serde_json::json!({ "trigger_info": { "name": "x", "type": "time",
            "properties": { "format": "crontab", "pattern": "0 * * * *",
                            "start_time": "2030-01-02 00:00:00", "end_time": "2030-01-01 00:00:00" } } }),
        serde_json::json!({ "trigger_info": { "name": "x", "type": "time",
            "properties": { "format": "crontab", "pattern": "0 * * * *", "start_time": "soon" } } }),
        serde_json::json!({ "trigger_info": { "name": "x", "type": "time",
            "properties": { "format": "calendar",
                            "pattern": "BEGIN:VEVENT\nRRULE:FREQ=MINUTELY;INTERVAL=10\nEND:VEVENT" } } }),
    ] {
        assert_fault(
            &format!("POST /triggers {body}"),
            api(addr, "POST", "/triggers", Some(body.clone())).await,
            400,
            "badRequest",
        );
    }
    let update = serde_json::json!({ "trigger_info": { "name": "y" } });
    for (method, body) in [
        ("GET", None),
        ("PUT", Some(update.clone())),
        ("DELETE", None),
    ] {
        assert_fault(
            &format!("{method} unknown trigger"),
            api(
                addr,
                method,
                &format!("/triggers/{UNKNOWN_UUID}"),
                body.clone(),
            )
            .await,
            404,
            "itemNotFound",
        );
        let (status, body) = api(addr, method, "/triggers/not-a-uuid", body).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(
            body["badRequest"]["message"], "Invalid trigger id provided.",
            "{body}"
        );
    }
    for query in ["marker=not-an-id", "limit=0", "limit=abc"] {
        assert_fault(
            &format!("GET /triggers?{query}"),
            api(addr, "GET", &format!("/triggers?{query}"), None).await,
            400,
            "badRequest",
        );
    }
    assert!(rig
        .engine
        .stored_triggers()
        .await
        .expect("triggers")
        .is_empty());
    let (status, body) = api(addr, "GET", "/triggers", None).await;
    assert_eq!(
        (status, &body["triggers"]),
        (200, &serde_json::json!([])),
        "{body}"
    );

    // A good one over HTTP: Karbor's view, and delete answers 200.
    let (status, body) = api(
        addr,
        "POST",
        "/triggers",
        Some(
            serde_json::json!({ "trigger_info": { "name": "x", "type": "time",
            "properties": { "format": "crontab", "pattern": "0 * * * *", "window": 1800 } } }),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let t = &body["trigger_info"];
    assert_eq!(t["type"], "time", "{body}");
    assert_eq!(t["properties"]["window"], "1800", "{body}");
    assert_eq!(t["properties"]["pattern"], "0 * * * *", "{body}");
    let id = t["id"].as_str().expect("id").to_string();
    let (status, body) = api(addr, "DELETE", &format!("/triggers/{id}"), None).await;
    assert_eq!(status, 200, "{body}");
    assert!(rig
        .engine
        .stored_triggers()
        .await
        .expect("triggers")
        .is_empty());
    rig.stop().await;
}

/// A trigger that fires every second, kept in the bank directly: Karbor's API refuses
/// patterns an hour apart or less (its `min_interval`), which the scheduler, reading the
/// bank, does not look at.
async fn every_second_trigger(rig: &Rig) -> String {
    every_n_seconds_trigger(rig, 1).await
}

/// A trigger that fires every `n` seconds from now (a whole second), kept in the bank
/// directly.
async fn every_n_seconds_trigger(rig: &Rig, n: u32) -> String {
    let now = chrono::Utc::now();
    let trigger = podbank::model::StoredTrigger {
        id: podbank::model::TriggerId::generate(),
        project_id: PROJECT.into(),
        name: "every-second".into(),
        kind: podbank::model::TriggerType::Time,
        format: podbank::model::TimeFormat::Calendar,
        pattern: format!("BEGIN:VEVENT\nRRULE:FREQ=SECONDLY;INTERVAL={n}\nEND:VEVENT"),
        start_time: chrono::Timelike::with_nanosecond(&now, 0).expect("whole second"),
        end_time: None,
        window_seconds: 900,
        created: now,
    };
    rig.engine.save_trigger(&trigger).await.expect("trigger");
    trigger.id.to_string()
}

/// A plan made with karborclient over one pod without Cinder volumes; its id.
async fn one_pod_plan(rig: &Rig, name: &str) -> String {
    let pods = rig
        .engine
        .pods(&SelectionSpec::default())
        .await
        .expect("pods")
        .items;
    let pod = pods
        .iter()
        .find(|p| p.cinder_volumes == 0)
        .expect("a pod without Cinder volumes");
    let resources = format!(
        "{}=OS::Kubernetes::Pod={}/{}",
        pod.id, pod.pod.info.namespace, pod.pod.info.name
    );
    let created = karbor_ok(
        rig.addr,
        &[
            "plan-create",
            name,
            PROVIDER_ID,
            &resources,
            "--parameters",
            &format!("resource_type=OS::Kubernetes::Pod,backup_name={name},description=scheduled"),
        ],
    )
    .await;
    property(&created, "id").expect("plan id")
}

/// The agent's finished runs of `plan` that succeeded, in start order.
fn succeeded_runs(rig: &Rig, plan: &str) -> Vec<podbank::api::OperationRecord> {
    let service = rig.agent.as_ref().expect("agent").service();
    let mut runs: Vec<_> = service
        .operations()
        .list()
        .into_iter()
        .filter(|o| {
            o.plan.as_deref() == Some(plan) && o.state == podbank::api::OperationState::Succeeded
        })
        .collect();
    runs.sort_by_key(|o| o.started_at);
    runs
}

/// Waits (up to 120 s) until `done` holds, polling.
async fn wait_until<F: FnMut() -> bool>(what: &str, mut done: F) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "still not so after 120 s: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Waits until no run of `plan` is in progress.
async fn wait_idle(rig: &Rig, plan: &str) {
    let service = rig.agent.as_ref().expect("agent").service();
    wait_until(&format!("no run of {plan} in progress"), || {
        service.operations().running_for_plan(plan).is_none()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    podbank_without_karborclient,
    ignore = "needs python-karborclient; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn karborclient_drives_scheduled_operations_that_make_checkpoints() {
    karbor_cli();
    let rig = start(6).await;
    let addr = rig.addr;
    let plan_id = one_pod_plan(&rig, "scheduled").await;
    let fast = every_second_trigger(&rig).await;

    // scheduledoperation-create: what it prints.
    let out = karbor_ok(
        addr,
        &[
            "scheduledoperation-create",
            "every-second",
            "protect",
            &fast,
            &format!("plan_id={plan_id},provider_id={PROVIDER_ID}"),
        ],
    )
    .await;
    let op_id = property(&out, "id").expect("id");
    assert!(uuid::Uuid::try_parse(&op_id).is_ok(), "{out}");
    assert_eq!(property(&out, "name").as_deref(), Some("every-second"));
    assert_eq!(property(&out, "operation_type").as_deref(), Some("protect"));
    assert_eq!(property(&out, "trigger_id").as_deref(), Some(fast.as_str()));
    assert_eq!(property(&out, "enabled").as_deref(), Some("True"), "{out}");
    assert!(
        out.contains(&format!("\"plan_id\": \"{plan_id}\""))
            && out.contains(&format!("\"provider_id\": \"{PROVIDER_ID}\"")),
        "{out}"
    );
    let stored = rig.engine.stored_operations().await.expect("operations");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].id.to_string(), op_id);
    assert_eq!(stored[0].project_id, PROJECT);

    // The leader fires it: checkpoints of the plan that checkpoint-list shows.
    let mut listed = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while listed.len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the scheduled operation made {} checkpoints in 120 s",
            listed.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let out = karbor_ok(
            addr,
            &["checkpoint-list", PROVIDER_ID, "--plan_id", &plan_id],
        )
        .await;
        listed = first_column(&out);
        listed.retain(|c| c != "Id");
    }
    assert!(
        listed.iter().all(|id| uuid::Uuid::try_parse(id).is_ok()),
        "{listed:?}"
    );
    assert!(succeeded_runs(&rig, &plan_id).len() >= 2);

    // scheduledoperation-list (with Karbor's filters) and -show.
    let list = karbor_ok(addr, &["scheduledoperation-list"]).await;
    let mut ids = first_column(&list);
    ids.retain(|c| c != "Id");
    assert_eq!(ids, vec![op_id.clone()], "{list}");
    // karborclient 2.1.0 asks for OperationType, TriggerId, OperationDefinition as
    // attributes `operationtype`, ... which Karbor's snake_case bodies never had: it
    // drops those columns and prints Id and Name only.
    assert!(list.contains("every-second"), "{list}");
    let by_name = karbor_ok(addr, &["scheduledoperation-list", "--name", "every-second"]).await;
    assert!(by_name.contains(&op_id), "{by_name}");
    let other_type = karbor_ok(
        addr,
        &[
            "scheduledoperation-list",
            "--operation_type",
            "retention_protect",
        ],
    )
    .await;
    assert!(!other_type.contains(&op_id), "{other_type}");
    let show = karbor_ok(addr, &["scheduledoperation-show", &op_id]).await;
    assert_eq!(property(&show, "id").as_deref(), Some(op_id.as_str()));
    assert_eq!(
        property(&show, "operation_type").as_deref(),
        Some("protect")
    );
    assert!(show.contains(&plan_id), "{show}");

    // The trigger is in use: it cannot be deleted (424), and stays.
    let (ok, _, err) = karbor(addr, TOKEN, &["trigger-delete", &fast]).await;
    assert!(!ok, "{err}");
    let (status, body) = api(addr, "DELETE", &format!("/triggers/{fast}"), None).await;
    assert_eq!(status, 424, "{body}");
    assert!(
        body["computeFault"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("scheduled operation")),
        "{body}"
    );
    assert_eq!(
        rig.engine.stored_triggers().await.expect("triggers").len(),
        1
    );

    // scheduledoperation-delete: gone from the bank and the list; the trigger can go.
    karbor_ok(addr, &["scheduledoperation-delete", &op_id]).await;
    assert!(rig
        .engine
        .stored_operations()
        .await
        .expect("operations")
        .is_empty());
    let list = karbor_ok(addr, &["scheduledoperation-list"]).await;
    assert!(!list.contains(&op_id), "{list}");
    let (ok, out, err) = karbor(addr, TOKEN, &["scheduledoperation-show", &op_id]).await;
    assert!(!ok && err.contains("HTTP 404"), "{out}\n{err}");
    wait_idle(&rig, &plan_id).await;
    karbor_ok(addr, &["trigger-delete", &fast]).await;
    assert!(rig
        .engine
        .stored_triggers()
        .await
        .expect("triggers")
        .is_empty());
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    podbank_without_karborclient,
    ignore = "needs python-karborclient; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn retention_protect_keeps_max_backups_newest_checkpoints() {
    karbor_cli();
    let rig = start(6).await;
    let addr = rig.addr;
    let plan_id = one_pod_plan(&rig, "kept").await;
    let fast = every_second_trigger(&rig).await;
    let out = karbor_ok(
        addr,
        &[
            "scheduledoperation-create",
            "keep-two",
            "retention_protect",
            &fast,
            &format!("plan_id={plan_id},provider_id={PROVIDER_ID},max_backups=2"),
        ],
    )
    .await;
    let op_id = property(&out, "id").expect("id");
    assert!(out.contains("\"max_backups\": \"2\""), "{out}");

    // Four runs, then the operation goes and the last run ends.
    wait_until("four scheduled runs succeeded", || {
        succeeded_runs(&rig, &plan_id).len() >= 4
    })
    .await;
    karbor_ok(addr, &["scheduledoperation-delete", &op_id]).await;
    wait_idle(&rig, &plan_id).await;

    let runs = succeeded_runs(&rig, &plan_id);
    let made: Vec<String> = runs
        .iter()
        .filter_map(|r| match &r.result {
            Some(podbank::api::OperationResult::PlanRun { checkpoint_id, .. }) => {
                Some(checkpoint_id.to_string())
            }
            _ => None,
        })
        .collect();
    assert_eq!(made.len(), runs.len());
    let deleted: usize = runs
        .iter()
        .map(|r| match &r.result {
            Some(podbank::api::OperationResult::PlanRun { retention, .. }) => {
                assert!(retention.error.is_none(), "{retention:?}");
                retention.deleted.len()
            }
            _ => 0,
        })
        .sum();
    assert_eq!(
        deleted,
        made.len() - 2,
        "every run past the second pruned one"
    );

    // The bank keeps the two newest; checkpoint-list shows two.
    let mut kept: Vec<String> = rig
        .engine
        .checkpoints(&podbank::engine::CheckpointFilter {
            plan: Some(plan_id.clone()),
            all: false,
        })
        .await
        .expect("checkpoints")
        .items
        .iter()
        .map(|c| c.id.to_string())
        .collect();
    kept.sort();
    let mut newest = made[made.len() - 2..].to_vec();
    newest.sort();
    assert_eq!(kept, newest);
    let out = karbor_ok(
        addr,
        &["checkpoint-list", PROVIDER_ID, "--plan_id", &plan_id],
    )
    .await;
    let mut listed = first_column(&out);
    listed.retain(|c| c != "Id");
    assert_eq!(listed.len(), 2, "{out}");
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_operation_faults_are_karbors_and_store_nothing() {
    let rig = start(1).await;
    let addr = rig.addr;
    let trigger = every_second_trigger(&rig).await;
    let op = |t: &str, definition: Value| {
        serde_json::json!({ "scheduled_operation": {
            "name": "x", "operation_type": t, "trigger_id": trigger, "operation_definition": definition } })
    };
    let plan = UNKNOWN_UUID;
    let full = |extra: Value| {
        let mut d = serde_json::json!({ "plan_id": plan, "provider_id": PROVIDER_ID });
        if let (Some(d), Some(e)) = (d.as_object_mut(), extra.as_object()) {
            d.extend(e.clone());
        }
        d
    };
    let bad = [
        serde_json::json!({ "operation": {} }),
        serde_json::json!({ "scheduled_operation": { "name": "x", "operation_type": "protect",
            "operation_definition": full(serde_json::json!({})) } }),
        op("copy", full(serde_json::json!({}))),
        op("protect", serde_json::json!({ "provider_id": PROVIDER_ID })),
        op("protect", serde_json::json!({ "plan_id": plan })),
        op("protect", serde_json::json!("plan_id=x")),
        op("protect", full(serde_json::json!({ "max_backups": "2" }))),
        op("protect", full(serde_json::json!({ "colour": "red" }))),
        op(
            "retention_protect",
            full(serde_json::json!({ "max_backups": "0" })),
        ),
        op(
            "retention_protect",
            full(serde_json::json!({ "max_backups": "two" })),
        ),
        op(
            "retention_protect",
            full(serde_json::json!({ "max_backups": -3 })),
        ),
        op(
            "retention_protect",
            full(serde_json::json!({ "max_backups": 2.5 })),
        ),
        op(
            "retention_protect",
            full(serde_json::json!({ "retention_duration": "0" })),
        ),
        serde_json::json!({ "scheduled_operation": { "name": "x", "operation_type": "protect",
            "trigger_id": "not-a-uuid", "operation_definition": full(serde_json::json!({})) } }),
    ];
    for body in bad {
        assert_fault(
            &format!("POST /scheduled_operations {body}"),
            api(addr, "POST", "/scheduled_operations", Some(body.clone())).await,
            400,
            "badRequest",
        );
    }
    // Unknown plan, trigger or provider: 404.
    let unknown_trigger = serde_json::json!({ "scheduled_operation": {
        "name": "x", "operation_type": "protect", "trigger_id": UNKNOWN_UUID,
        "operation_definition": full(serde_json::json!({})) } });
    let mut unknown_provider = op("protect", full(serde_json::json!({})));
    unknown_provider["scheduled_operation"]["operation_definition"]["provider_id"] =
        serde_json::json!(UNKNOWN_UUID);
    for (what, body) in [
        ("unknown plan", op("protect", full(serde_json::json!({})))),
        ("unknown trigger", unknown_trigger),
        ("unknown provider", unknown_provider),
    ] {
        let answer = api(addr, "POST", "/scheduled_operations", Some(body)).await;
        assert!(
            answer.1["itemNotFound"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("could not be found")),
            "{what}: {answer:?}"
        );
        assert_fault(what, answer, 404, "itemNotFound");
    }
    for method in ["GET", "DELETE"] {
        assert_fault(
            &format!("{method} unknown operation"),
            api(
                addr,
                method,
                &format!("/scheduled_operations/{UNKNOWN_UUID}"),
                None,
            )
            .await,
            404,
            "itemNotFound",
        );
        assert_fault(
            &format!("{method} non-UUID operation"),
            api(addr, method, "/scheduled_operations/not-a-uuid", None).await,
            400,
            "badRequest",
        );
    }
    for query in ["limit=0", "limit=x", &format!("marker={UNKNOWN_UUID}")] {
        assert_fault(
            &format!("GET /scheduled_operations?{query}"),
            api(addr, "GET", &format!("/scheduled_operations?{query}"), None).await,
            400,
            "badRequest",
        );
    }
    assert!(rig
        .engine
        .stored_operations()
        .await
        .expect("operations")
        .is_empty());
    let (status, body) = api(addr, "GET", "/scheduled_operations", None).await;
    assert_eq!((status, &body["operations"]), (200, &serde_json::json!([])));
    rig.stop().await;
}

/// The operation's last recorded fire time, as the bank holds it.
async fn last_fired(rig: &Rig, op_id: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    rig.engine
        .stored_operations()
        .await
        .expect("operations")
        .into_iter()
        .find(|o| o.id.to_string() == op_id)
        .expect("the operation")
        .last_fired
}

/// The first succeeded run of `plan` by the rig's current agent.
async fn first_run(rig: &Rig, plan: &str) -> podbank::api::OperationRecord {
    wait_until("a scheduled run by this replica succeeded", || {
        !succeeded_runs(rig, plan).is_empty()
    })
    .await;
    succeeded_runs(rig, plan).remove(0)
}

/// The data rows of a prettytable, as trimmed cells (without the empty edges).
fn rows(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .filter(|l| l.starts_with('|'))
        .skip(1)
        .map(|l| {
            let cells: Vec<&str> = l.split('|').collect();
            cells[1..cells.len().saturating_sub(1)]
                .iter()
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect()
}

/// Polls `operationlog-list` until `done` holds of its rows (columns: Id, Operation
/// Type, Checkpoint id, Plan Id, Provider id, Restore Id, Scheduled Operation Id, Status,
/// ...), for at most 60 s; the table that did.
async fn wait_logs(addr: SocketAddr, done: impl Fn(&[Vec<String>]) -> bool) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let out = karbor_ok(addr, &["operationlog-list"]).await;
        if done(&rows(&out)) {
            return out;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "operation logs not as expected after 60 s:\n{out}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Whether `rows` hold a log of `kind` in `status`.
fn has_log(rows: &[Vec<String>], kind: &str, status: &str) -> bool {
    rows.iter().any(|r| {
        r.get(1).map(String::as_str) == Some(kind) && r.get(7).map(String::as_str) == Some(status)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    podbank_without_karborclient,
    ignore = "needs python-karborclient; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn a_leader_change_mid_schedule_neither_repeats_nor_skips_a_run() {
    karbor_cli();
    let mut rig = start(6).await;
    let plan_id = one_pod_plan(&rig, "handover").await;
    let every_10s = every_n_seconds_trigger(&rig, 10).await;
    let out = karbor_ok(
        rig.addr,
        &[
            "scheduledoperation-create",
            "handover",
            "protect",
            &every_10s,
            &format!("plan_id={plan_id},provider_id={PROVIDER_ID}"),
        ],
    )
    .await;
    let op_id = property(&out, "id").expect("id");
    let ten = chrono::TimeDelta::seconds(10);

    // The first leader runs a time T and records it.
    let run = first_run(&rig, &plan_id).await;
    let t = last_fired(&rig, &op_id)
        .await
        .expect("the fire is recorded");
    assert!(run.started_at >= t, "the run started at its time");

    // A second replica takes over right away (before T + 10 s): it does not run T again;
    // its first run is T + 10 s.
    rig.hand_over().await;
    assert!(
        chrono::Utc::now() < t + ten,
        "the handover took past the next time; the machine is too slow for this test"
    );
    let run = first_run(&rig, &plan_id).await;
    assert!(
        run.started_at >= t + ten,
        "the new leader ran at {} a time before T + 10 s (T = {t})",
        run.started_at
    );
    assert_eq!(last_fired(&rig, &op_id).await, Some(t + ten));

    // No replica leads across T + 20 s; the next one runs that time at once, not at T + 30 s.
    let down = rig.agent.take().expect("agent");
    down.shutdown().await.expect("agent shutdown");
    let missed = t + ten + ten;
    while chrono::Utc::now() < missed + chrono::TimeDelta::seconds(2) {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    rig.hand_over().await;
    let run = first_run(&rig, &plan_id).await;
    assert!(
        run.started_at < missed + ten,
        "the missed time T + 20 s ran only at {} (T = {t})",
        run.started_at
    );
    assert_eq!(
        last_fired(&rig, &op_id).await,
        Some(missed),
        "the run is the missed time's"
    );
    karbor_ok(rig.addr, &["scheduledoperation-delete", &op_id]).await;
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    podbank_without_karborclient,
    ignore = "needs python-karborclient; this run is without it (PODBANK_TEST_WITHOUT_RIGS)"
)]
async fn karborclient_shows_operation_logs_and_runs_verifications() {
    karbor_cli();
    let rig = start(40).await;
    let addr = rig.addr;
    let mut pods = rig
        .engine
        .pods(&SelectionSpec::default())
        .await
        .expect("pods")
        .items;
    pods.sort_by(|a, b| a.id.cmp(&b.id));
    let pod = pods
        .iter()
        .find(|p| p.cinder_volumes == 0)
        .expect("a pod without Cinder volumes");
    let pod_ref = |p: &podbank::engine::PodView| {
        format!(
            "{}=OS::Kubernetes::Pod={}/{}",
            p.id, p.pod.info.namespace, p.pod.info.name
        )
    };
    let resources = pod_ref(pod);
    let created = karbor_ok(
        addr,
        &[
            "plan-create",
            "logged",
            PROVIDER_ID,
            &resources,
            "--parameters",
            "resource_type=OS::Kubernetes::Pod,backup_name=lg,description=logged",
        ],
    )
    .await;
    let plan_id = property(&created, "id").expect("plan id");

    // A checkpoint and a restore of it: one log each, ending in their final states.
    let cp = karbor_ok(addr, &["checkpoint-create", PROVIDER_ID, &plan_id]).await;
    let cp_id = property(&cp, "id").expect("checkpoint id");
    let (status, shown) = wait_status(
        addr,
        &["checkpoint-show", PROVIDER_ID, &cp_id],
        &["available", "error"],
    )
    .await;
    assert_eq!(status, "available", "{shown}");
    let restore = karbor_ok(
        addr,
        &[
            "restore-create",
            PROVIDER_ID,
            &cp_id,
            "--parameters",
            "resource_type=OS::Kubernetes::Pod,restore_name=back",
        ],
    )
    .await;
    let restore_id = property(&restore, "id").expect("restore id");
    let (status, shown) =
        wait_status(addr, &["restore-show", &restore_id], &["success", "fail"]).await;
    assert_eq!(status, "success", "{shown}");
    let listed = wait_logs(addr, |rows| {
        has_log(rows, "protect", "available") && has_log(rows, "restore", "success")
    })
    .await;
    let table = rows(&listed);
    assert_eq!(table.len(), 2, "{listed}");
    let protect = table
        .iter()
        .find(|r| r[1] == "protect")
        .expect("protect log");
    let restored = table
        .iter()
        .find(|r| r[1] == "restore")
        .expect("restore log");
    assert_eq!(protect[2], cp_id, "{listed}");
    assert_eq!(protect[3], plan_id, "{listed}");
    assert_eq!(protect[4], PROVIDER_ID, "{listed}");
    assert_eq!(restored[2], cp_id, "{listed}");
    assert_eq!(restored[5], restore_id, "{listed}");
    // Both ended: an end time, no error.
    for r in [protect, restored] {
        assert!(!r[9].is_empty() && r[9] != "None", "{listed}");
        assert!(
            r[10].is_empty() || r[10] == "None" || r[10] == "-",
            "{listed}"
        );
    }

    // operationlog-show prints every field of one.
    let shown = karbor_ok(addr, &["operationlog-show", &protect[0]]).await;
    for (field, want) in [
        ("id", protect[0].as_str()),
        ("project_id", PROJECT),
        ("operation_type", "protect"),
        ("checkpoint_id", cp_id.as_str()),
        ("plan_id", plan_id.as_str()),
        ("provider_id", PROVIDER_ID),
        ("status", "available"),
    ] {
        assert_eq!(
            property(&shown, field).as_deref(),
            Some(want),
            "{field}:\n{shown}"
        );
    }
    for field in [
        "started_at",
        "ended_at",
        "error_info",
        "extra_info",
        "restore_id",
    ] {
        assert!(property(&shown, field).is_some(), "{field}:\n{shown}");
    }
    let (ok, _, err) = karbor(addr, TOKEN, &["operationlog-show", UNKNOWN_UUID]).await;
    assert!(!ok && err.contains("HTTP 404"), "{err}");

    // A verification of the checkpoint: verifying, then success, per resource.
    let created = karbor_ok(addr, &["verification-create", PROVIDER_ID, &cp_id]).await;
    let good = property(&created, "id").expect("verification id");
    assert_eq!(
        property(&created, "status").as_deref(),
        Some("verifying"),
        "{created}"
    );
    assert_eq!(
        property(&created, "checkpoint_id").as_deref(),
        Some(cp_id.as_str())
    );
    let (status, shown) = wait_status(
        addr,
        &["verification-show", &good],
        &["success", "failed", "error"],
    )
    .await;
    assert_eq!(status, "success", "{shown}");
    let pod_key = format!("OS::Kubernetes::Pod#{}", pod.id);
    assert!(
        shown.contains(&format!("'{pod_key}': 'available'")),
        "{shown}"
    );
    let stored = rig.engine.verifications().await.expect("verifications");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].project_id, PROJECT);
    assert_eq!(stored[0].resources_status[&pod_key], "available");
    let listed = karbor_ok(addr, &["verification-list"]).await;
    assert_eq!(first_column(&listed), vec![good.clone()], "{listed}");
    wait_logs(addr, |rows| has_log(rows, "verify", "success")).await;

    // A checkpoint delete is logged too, ending `deleted`.
    karbor_ok(addr, &["checkpoint-delete", PROVIDER_ID, &cp_id]).await;
    let listed = wait_logs(addr, |rows| has_log(rows, "delete", "deleted")).await;
    let delete = rows(&listed)
        .into_iter()
        .find(|r| r[1] == "delete")
        .expect("delete log");
    assert_eq!(delete[2], cp_id, "{listed}");

    // A bigger checkpoint (every pod: more than one frame of objects) to damage.
    let every = pods.iter().map(pod_ref).collect::<Vec<_>>().join(",");
    let created = karbor_ok(
        addr,
        &[
            "plan-create",
            "everything",
            PROVIDER_ID,
            &every,
            "--parameters",
            "resource_type=OS::Kubernetes::Pod,backup_name=all,description=every pod",
        ],
    )
    .await;
    let big_plan = property(&created, "id").expect("plan id");
    let big = karbor_ok(addr, &["checkpoint-create", PROVIDER_ID, &big_plan]).await;
    let cp_id = property(&big, "id").expect("checkpoint id");
    wait_status(
        addr,
        &["checkpoint-show", PROVIDER_ID, &cp_id],
        &["available", "error"],
    )
    .await;
    // A damaged checkpoint: a byte of the pod's frame flipped in its pack (as
    // bank_integrity damages one); the verification fails and names the pod.
    let podbank_cp = rig
        .engine
        .checkpoints(&podbank::engine::CheckpointFilter::default())
        .await
        .expect("checkpoints")
        .items
        .into_iter()
        .find(|c| c.backup_name == "all")
        .expect("the big checkpoint")
        .id;
    let view = rig
        .engine
        .checkpoint(&podbank_cp)
        .await
        .expect("checkpoint");
    let bank_dir = rig._dir.path().join("bank");
    let reader = Bank::open(
        backend::open(&format!("file://{}", bank_dir.display())).expect("backend"),
        OpenOptions {
            key: None,
            create: false,
            pack_target_bytes: None,
        },
    )
    .await
    .expect("bank");
    // The first frame of the checkpoint's objects: the record tables come last, in a
    // frame of their own, so that damaging this one leaves the checkpoint readable.
    let index = reader.index().await;
    let located: Vec<(String, podbank::bank::index::Location)> = view
        .resources
        .iter()
        .filter_map(|r| {
            let at = index.get(&r.object_id?)?;
            Some((format!("{}#{}", r.kind.karbor(), r.uid), at))
        })
        .collect();
    let first = located
        .iter()
        .min_by_key(|(_, at)| (at.pack.clone(), at.offset))
        .expect("located objects")
        .1
        .clone();
    assert!(
        located
            .iter()
            .any(|(_, at)| at.pack != first.pack || at.offset != first.offset),
        "the checkpoint's objects are in one frame: damaging it would damage its tables"
    );
    let damaged: Vec<String> = located
        .iter()
        .filter(|(_, at)| at.pack == first.pack && at.offset == first.offset)
        .map(|(k, _)| k.clone())
        .collect();
    let at = first;
    let mut dirs = vec![bank_dir.join("data")];
    let mut pack = None;
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).expect("data").flatten() {
            if e.path().is_dir() {
                dirs.push(e.path());
            } else if e.file_name().to_str() == Some(&*at.pack) {
                pack = Some(e.path());
            }
        }
    }
    let pack = pack.expect("the pod's pack");
    let mut bytes = std::fs::read(&pack).expect("pack");
    let middle = usize::try_from(at.offset + u64::from(at.length) / 2).expect("offset");
    bytes[middle] ^= 0x10;
    std::fs::write(&pack, bytes).expect("damage");
    let created = karbor_ok(addr, &["verification-create", PROVIDER_ID, &cp_id]).await;
    let bad = property(&created, "id").expect("verification id");
    let (status, shown) = wait_status(
        addr,
        &["verification-show", &bad],
        &["success", "failed", "error"],
    )
    .await;
    assert_eq!(status, "failed", "{shown}");
    let (_, body) = api(addr, "GET", &format!("/verifications/{bad}"), None).await;
    let v = &body["verification"];
    // The resources whose bytes the flip hit are `error`, with the object as reason
    // (the CLI prints them); they are all of the damaged frame; the rest still verifies.
    let statuses = v["resources_status"].as_object().expect("resources_status");
    let errors: Vec<&String> = statuses
        .iter()
        .filter(|(_, s)| *s == "error")
        .map(|(k, _)| k)
        .collect();
    assert!(!errors.is_empty(), "{body}");
    for key in &errors {
        assert!(
            damaged.contains(key),
            "{key} is not of the damaged frame: {body}"
        );
        assert!(
            shown.contains(&format!("'{key}': 'error'")),
            "{key}:\n{shown}"
        );
        assert!(
            v["resources_reason"][key.as_str()]
                .as_str()
                .is_some_and(|r| r.contains("object")),
            "{key}: {body}"
        );
    }
    assert!(statuses.len() > errors.len(), "{body}");
    assert!(
        statuses
            .iter()
            .filter(|(_, s)| *s != "error")
            .all(|(_, s)| s == "available" || s == "skipped"),
        "{body}"
    );
    let listed = wait_logs(addr, |rows| has_log(rows, "verify", "failed")).await;
    assert!(
        listed.contains(errors[0].as_str()),
        "the failed log names the resource:\n{listed}"
    );

    // Unknown checkpoint or provider: 404; a bad body: 400; nothing stored.
    let (ok, _, err) = karbor(
        addr,
        TOKEN,
        &["verification-create", PROVIDER_ID, UNKNOWN_UUID],
    )
    .await;
    assert!(!ok && err.contains("HTTP 404"), "{err}");
    let (ok, _, err) = karbor(
        addr,
        TOKEN,
        &["verification-create", PROVIDER_ID, UNKNOWN_CHECKPOINT],
    )
    .await;
    assert!(!ok && err.contains("HTTP 404"), "{err}");
    assert_fault(
        "unknown provider",
        api(
            addr,
            "POST",
            "/verifications",
            Some(serde_json::json!({ "verification": {
                "provider_id": UNKNOWN_UUID, "checkpoint_id": cp_id, "parameters": {} } })),
        )
        .await,
        404,
        "itemNotFound",
    );
    for body in [
        serde_json::json!({ "checkpoint_id": cp_id }),
        serde_json::json!({ "verification": { "provider_id": PROVIDER_ID } }),
        serde_json::json!({ "verification": {
            "provider_id": PROVIDER_ID, "checkpoint_id": cp_id, "parameters": "all" } }),
    ] {
        assert_fault(
            &format!("verification {body}"),
            api(addr, "POST", "/verifications", Some(body.clone())).await,
            400,
            "badRequest",
        );
    }
    assert_fault(
        "unknown verification",
        api(addr, "GET", &format!("/verifications/{UNKNOWN_UUID}"), None).await,
        404,
        "itemNotFound",
    );
    assert_eq!(
        rig.engine
            .verifications()
            .await
            .expect("verifications")
            .len(),
        2
    );
    let logs = rig.engine.operation_logs().await.expect("logs");
    assert_eq!(logs.len(), 6, "{logs:?}");
    assert!(logs.iter().all(|l| l.project_id == PROJECT), "{logs:?}");
    rig.stop().await;
}
