//! `podbank agent` from the command line: the shipped config passes `--check-config`,
//! config mistakes exit 2 naming the field, and volume backups (no Cinder in this build)
//! must be switched off explicitly.

use std::path::Path;
use std::process::Command;

use crate::support::etcd::TestEtcd;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn podbank(args: &[&str], etcd: Option<&str>) -> Run {
    let mut cmd = Command::new(crate::support::podbank_bin());
    cmd.args(args)
        .env_remove("PODBANK_CONFIG")
        .env_remove("PODBANK_LISTEN")
        .env_remove("PODBANK_TOKEN_FILE")
        .env_remove("OS_CLOUD")
        .env_remove("OS_AUTH_URL")
        .env_remove("OS_CLIENT_CONFIG_FILE");
    match etcd {
        Some(url) => cmd.env("PODBANK_ETCD_SERVERS", url),
        None => cmd.env_remove("PODBANK_ETCD_SERVERS"),
    };
    let out = cmd.output().expect("run podbank");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The podbank.yaml inside the shipped ConfigMap.
fn shipped_config(dir: &Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes/20-config.yaml"),
    )
    .expect("config manifest");
    let first = text.split("\n---").next().expect("first document");
    let cm: serde_yaml::Value = serde_yaml::from_str(first).expect("yaml");
    let body = cm["data"]["podbank.yaml"].as_str().expect("podbank.yaml");
    let path = dir.join("podbank.yaml");
    std::fs::write(&path, body).expect("write");
    path
}

#[test]
fn the_shipped_config_passes_check_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = shipped_config(dir.path());
    let token = dir.path().join("token");
    std::fs::write(&token, "t0ken").expect("token");
    let run = podbank(
        &[
            "agent",
            "--check-config",
            "--config",
            config.to_str().expect("utf8"),
            "--token-file",
            token.to_str().expect("utf8"),
        ],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("configuration is valid: 1 plan(s)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("/podbank/election/agent"),
        "{}",
        run.stdout
    );
}

#[test]
fn config_mistakes_exit_2_and_name_the_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = dir.path().join("token");
    std::fs::write(&token, "t0ken").expect("token");
    let cases = [
        (
            "agent:\n  plans:\n    - name: p\n      schedule: \"every day\"\n      options: { backup_name: b, description: d }\n",
            "agent.plans[p]",
        ),
        ("agent:\n  grace_period: forever\n", "grace_period"),
        (
            "agent:\n  election: { key: /registry/podbank }\n",
            "Kubernetes prefix",
        ),
    ];
    for (text, want) in cases {
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, text).expect("write");
        let run = podbank(
            &[
                "agent",
                "--check-config",
                "--config",
                path.to_str().expect("utf8"),
                "--token-file",
                token.to_str().expect("utf8"),
            ],
            None,
        );
        assert_eq!(run.code, 2, "{text}: {}", run.stderr);
        assert!(run.stderr.contains(want), "{text}: {}", run.stderr);
    }
    // A token file that is not there.
    let run = podbank(
        &[
            "agent",
            "--check-config",
            "--token-file",
            "/nonexistent/token",
        ],
        None,
    );
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("/nonexistent/token"), "{}", run.stderr);
}

#[test]
fn without_openstack_credentials_the_agent_says_how_to_skip_volumes() {
    let etcd = TestEtcd::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let token = dir.path().join("token");
    std::fs::write(&token, "t0ken").expect("token");
    let run = podbank(
        &["agent", "--token-file", token.to_str().expect("utf8")],
        Some(&etcd.url),
    );
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("cannot reach Cinder"), "{}", run.stderr);
    assert!(run.stderr.contains("--no-volume-backups"), "{}", run.stderr);
}
