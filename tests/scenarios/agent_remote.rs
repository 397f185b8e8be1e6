//! `podbank --agent URL ...`: the CLI drives a real `podbank agent` process (real etcd, a
//! local bank, the API-server stand-in for restores) instead of doing the work itself, and
//! prints what the local commands print.

use std::ffi::OsStr;

use crate::support::agent::{AgentProc, TOKEN};
use crate::support::apiserver::FakeApiServer;
use crate::support::etcd::TestEtcd;
use podbank_seed::{self as seed, SeedPlan};
use serde_json::Value;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(self, what: &str) -> Run {
        assert_eq!(
            self.code, 0,
            "{what}: exit {}\n{}{}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", self.stdout, self.stderr))
    }
}

/// Run the podbank binary with nothing inherited from the environment that could point it
/// at another agent, bank or etcd.
async fn podbank(args: &[&str], env: &[(&str, &OsStr)]) -> Run {
    let out = tokio::process::Command::new(crate::support::podbank_bin())
        .args(args)
        .env_remove("PODBANK_CONFIG")
        .env_remove("PODBANK_AGENT")
        .env_remove("PODBANK_AGENT_TOKEN_FILE")
        .env_remove("PODBANK_BANK")
        .env_remove("PODBANK_ETCD_SERVERS")
        .env_remove("OS_CLOUD")
        .env_remove("OS_AUTH_URL")
        .envs(env.iter().copied())
        .output()
        .await
        .expect("run podbank");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

struct Setup {
    etcd: TestEtcd,
    dir: tempfile::TempDir,
    api: FakeApiServer,
    agent: AgentProc,
}

impl Setup {
    async fn start() -> Setup {
        let etcd = TestEtcd::start();
        seed::write(
            &etcd.connect().await,
            seed::generate(&SeedPlan {
                pods: 10,
                ..SeedPlan::default()
            }),
        )
        .await
        .expect("seed");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("token"), format!("{TOKEN}\n")).expect("token");
        std::fs::write(
            dir.path().join("podbank.yaml"),
            format!(
                r#"
agent:
  token_file: {}
  election: {{ key: /podbank/election/remote-test, ttl: 3 }}
  plans:
    - name: nightly
      schedule: "0 0 3 1 1 *"
      namespaces: [ns-1]
      options: {{ backup_name: nightly, description: nightly test }}
      retention: {{ keep_last: 5 }}
"#,
                dir.path().join("token").display()
            ),
        )
        .expect("config");
        let api = FakeApiServer::start(&["ns-4"]).await;
        let kubeconfig = api.write_kubeconfig(dir.path());
        let mut agent = AgentProc::spawn_with(
            &etcd,
            dir.path(),
            "remote",
            &[("KUBECONFIG", kubeconfig.as_os_str())],
        );
        agent.wait_listening().await;
        Setup {
            etcd,
            dir,
            api,
            agent,
        }
    }

    fn token(&self) -> String {
        self.dir.path().join("token").display().to_string()
    }

    fn url(&self) -> String {
        format!("http://{}", self.agent.addr)
    }

    /// `podbank --agent URL --agent-token-file F <args>`.
    async fn remote(&self, args: &[&str]) -> Run {
        let (url, token) = (self.url(), self.token());
        let mut all = vec![
            "--agent",
            url.as_str(),
            "--agent-token-file",
            token.as_str(),
        ];
        all.extend_from_slice(args);
        podbank(&all, &[]).await
    }

    /// The same command done here, on the agent's etcd and bank.
    async fn local(&self, args: &[&str]) -> Run {
        let bank = self.dir.path().join("bank");
        podbank(
            args,
            &[
                ("PODBANK_ETCD_SERVERS", OsStr::new(&self.etcd.url)),
                ("PODBANK_BANK", bank.as_os_str()),
            ],
        )
        .await
    }
}

fn without(mut v: Value, field: &str) -> Value {
    if let Value::Object(m) = &mut v {
        m.remove(field);
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_drives_a_running_agent_and_prints_what_it_prints_locally() {
    let s = Setup::start().await;

    // Protectables: the same pods, the same fields (the agent's own election writes move
    // the etcd revision, so that is left out).
    let remote = s
        .remote(&["pods", "list", "-o", "json"])
        .await
        .ok("pods list");
    let local = s
        .local(&["pods", "list", "-o", "json"])
        .await
        .ok("local pods list");
    assert_eq!(remote.json()["items"].as_array().map(Vec::len), Some(10));
    assert_eq!(remote.json()["items"], local.json()["items"]);
    let remote = s
        .remote(&["pods", "list", "-n", "ns-4", "-l", "app=cache"])
        .await
        .ok("pods list table");
    let lines: Vec<&str> = remote.stdout.lines().collect();
    assert!(lines[0].starts_with("NAMESPACE"), "{}", remote.stdout);
    assert_eq!(
        lines.len(),
        3,
        "header + 2 cache pods in ns-4:\n{}",
        remote.stdout
    );
    for which in ["show", "dependents"] {
        let remote = s
            .remote(&["pods", which, "ns-4/cache-4", "-o", "json"])
            .await;
        let local = s
            .local(&["pods", which, "ns-4/cache-4", "-o", "json"])
            .await;
        assert_eq!(
            without(remote.ok(which).json(), "revision"),
            without(local.ok(which).json(), "revision"),
            "pods {which}"
        );
    }

    // Protect through the agent: the checkpoint is in the agent's bank.
    let run = s
        .remote(&[
            "protect",
            "--backup-name",
            "remote",
            "--description",
            "through the agent",
            "-n",
            "ns-4",
            "-o",
            "json",
        ])
        .await
        .ok("protect");
    let cp = &run.json()[0];
    assert_eq!(cp["status"], "available", "{}", run.stdout);
    assert_eq!(cp["backupName"], "remote");
    assert_eq!(cp["pods"], 2);
    let id = cp["id"].as_str().expect("checkpoint id").to_string();
    let local = s
        .local(&["checkpoints", "list", "-o", "json"])
        .await
        .ok("local list");
    assert_eq!(local.json()[0]["id"], id.as_str());

    // Details print byte for byte as locally.
    for args in [["checkpoints", "show", id.as_str()]] {
        let remote = s.remote(&args).await.ok("checkpoints show");
        let local = s.local(&args).await.ok("local checkpoints show");
        assert_eq!(remote.stdout, local.stdout);
        assert!(remote.stdout.contains("ns-4/cache-4"), "{}", remote.stdout);
    }
    let list = s
        .remote(&["checkpoints", "list", "-o", "json"])
        .await
        .ok("list");
    assert_eq!(list.json()[0]["id"], id.as_str());
    assert_eq!(list.json().as_array().map(Vec::len), Some(1));

    // Restore through the agent: it creates the pod's top owner (the seeded Deployment
    // `cache`) through its API server, whose controllers make the pod again.
    let run = s
        .remote(&[
            "restore",
            &id,
            "--pod",
            "ns-4/cache-4",
            "--restore-description",
            "remote restore",
            "-o",
            "json",
        ])
        .await
        .ok("restore");
    let restore = run.json();
    assert_eq!(restore["status"], "success", "{}", run.stdout);
    assert!(
        s.api.get("deployments", "ns-4", "cache").is_some(),
        "the stand-in got no Deployment: {:?}",
        s.api.requests()
    );
    assert!(
        s.api.gc_deletions().is_empty(),
        "garbage-collected: {:?}",
        s.api.gc_deletions()
    );
    let rid = restore["id"].as_str().expect("restore id").to_string();
    let remote = s
        .remote(&["restores", "show", &rid])
        .await
        .ok("restores show");
    let local = s
        .local(&["restores", "show", &rid])
        .await
        .ok("local restores show");
    assert_eq!(remote.stdout, local.stdout);
    let list = s
        .remote(&["restores", "list", "-o", "json"])
        .await
        .ok("restores list");
    assert_eq!(list.json()[0]["checkpointId"], id.as_str());

    // Plans live in the agent: list, and run one now.
    let plans = s
        .remote(&["plans", "list", "-o", "json"])
        .await
        .ok("plans list");
    assert_eq!(plans.json()["items"][0]["name"], "nightly");
    let run = s
        .remote(&["plans", "trigger", "nightly", "-o", "json"])
        .await
        .ok("plans trigger");
    let op = &run.json()[0];
    assert_eq!(op["state"], "succeeded", "{}", run.stdout);
    let planned = op["result"]["checkpointId"]
        .as_str()
        .expect("plan run made a checkpoint")
        .to_string();

    // Delete through the agent; --no-wait hands back the operation.
    s.remote(&["delete", &id, "-o", "json"]).await.ok("delete");
    let local = s
        .local(&["checkpoints", "list", "-o", "json"])
        .await
        .ok("list");
    let ids: Vec<String> = local
        .json()
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c["id"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(ids, vec![planned.clone()]);
    let run = s
        .remote(&["checkpoints", "delete", &planned, "--no-wait", "-o", "json"])
        .await
        .ok("delete --no-wait");
    assert_eq!(run.json()[0]["kind"], "delete_checkpoint");
    assert_eq!(run.json()[0]["target"], planned.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_mode_errors_name_what_is_wrong() {
    let s = Setup::start().await;
    let url = s.url();

    // No token: the agent's 401, said as such.
    let run = podbank(&["--agent", &url, "pods", "list"], &[]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("401") && run.stderr.contains("Bearer"),
        "{}",
        run.stderr
    );
    // A wrong token file.
    let wrong = s.dir.path().join("wrong");
    std::fs::write(&wrong, "not-the-token").expect("write");
    let run = podbank(
        &[
            "--agent",
            &url,
            "--agent-token-file",
            &wrong.display().to_string(),
            "pods",
            "list",
        ],
        &[],
    )
    .await;
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("wrong bearer token"), "{}", run.stderr);
    // A missing token file is named before anything is sent.
    let run = podbank(
        &[
            "--agent",
            &url,
            "--agent-token-file",
            "/nonexistent/token",
            "pods",
            "list",
        ],
        &[],
    )
    .await;
    assert!(run.stderr.contains("/nonexistent/token"), "{}", run.stderr);

    // Unknown things: the agent's 404, with the id.
    let run = s
        .remote(&["checkpoints", "show", "20260101T000000Z-deadbeef"])
        .await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("404") && run.stderr.contains("not found"),
        "{}",
        run.stderr
    );
    let run = s.remote(&["pods", "show", "ns-4/nope"]).await;
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("ns-4/nope"), "{}", run.stderr);

    // Bad parameters are refused here, with exit 2, as locally; nothing is stored.
    let run = s.remote(&["protect", "--backup-name", "x"]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("description"), "{}", run.stderr);
    let run = s
        .remote(&[
            "protect",
            "--backup-name",
            "x",
            "--description",
            "d",
            "--field-selector",
            "spec.nodeName=n",
        ])
        .await;
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("--field-selector"), "{}", run.stderr);
    let run = s
        .remote(&["restore", "20260101T000000Z-deadbeef", "--keep-node"])
        .await;
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("--keep-node"), "{}", run.stderr);
    let list = s
        .remote(&["checkpoints", "list", "-o", "json"])
        .await
        .ok("list");
    assert_eq!(list.json(), serde_json::json!([]));

    // What only works on the bank here says so; plans need an agent.
    let run = s.remote(&["checkpoints", "verify", "--all"]).await;
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("drop --agent"), "{}", run.stderr);
    let run = podbank(&["plans", "list"], &[]).await;
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("--agent URL"), "{}", run.stderr);

    // Nobody listening: the URL is named.
    let run = podbank(&["--agent", "http://127.0.0.1:1", "pods", "list"], &[]).await;
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("cannot reach the agent at http://127.0.0.1:1/"),
        "{}",
        run.stderr
    );
}
