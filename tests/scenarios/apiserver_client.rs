//! podbank's API-server client against the stand-in: status codes become typed errors,
//! protobuf bodies arrive byte for byte.

use crate::support::apiserver::FakeApiServer;
use podbank::apiserver::{ApiError, ApiServer, KubeSettings};
use podbank::codec::{Encoding, ResourceKind};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/data/fixtures/apiserver-v1.32/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[tokio::test]
async fn create_get_and_every_error() {
    let fake = FakeApiServer::start(&["demo"]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let api = ApiServer::connect(&KubeSettings {
        kubeconfig: Some(fake.write_kubeconfig(dir.path())),
        context: None,
    })
    .await
    .expect("client");

    // A JSON pod.
    let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "demo"}});
    let body = serde_json::to_vec(&pod).expect("json");
    let created = api
        .create(
            ResourceKind::Pod,
            Some("demo"),
            "web",
            Encoding::Json,
            body.clone(),
        )
        .await
        .expect("create");
    assert_eq!(created["metadata"]["name"], "web");
    assert!(api
        .get(ResourceKind::Pod, Some("demo"), "web")
        .await
        .expect("get")
        .is_some());
    assert!(api
        .get(ResourceKind::Pod, Some("demo"), "nope")
        .await
        .expect("get")
        .is_none());

    let err = api
        .create(
            ResourceKind::Pod,
            Some("demo"),
            "web",
            Encoding::Json,
            body.clone(),
        )
        .await
        .expect_err("conflict");
    assert!(matches!(err, ApiError::AlreadyExists { .. }), "{err}");
    assert!(err.to_string().contains("already exists"));

    // kube-apiserver checks the body's namespace against the URL's (400) before admission
    // looks for the namespace (404), so the body names the missing namespace too.
    let elsewhere = serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "missing"}});
    let err = api
        .create(
            ResourceKind::Pod,
            Some("missing"),
            "web",
            Encoding::Json,
            serde_json::to_vec(&elsewhere).expect("json"),
        )
        .await
        .expect_err("namespace missing");
    assert!(matches!(err, ApiError::NotFound { .. }), "{err}");
    assert!(
        err.to_string().contains("namespaces \"missing\" not found"),
        "{err}"
    );

    let err = api
        .create(
            ResourceKind::Pod,
            Some("missing"),
            "web",
            Encoding::Json,
            body,
        )
        .await
        .expect_err("namespace mismatch");
    assert!(
        err.to_string()
            .contains("does not match the namespace sent on the request"),
        "{err}"
    );

    let bad = serde_json::to_vec(
        &serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "Bad_Name"}}),
    )
    .expect("json");
    let err = api
        .create(
            ResourceKind::Pod,
            Some("demo"),
            "Bad_Name",
            Encoding::Json,
            bad,
        )
        .await
        .expect_err("invalid");
    assert!(matches!(err, ApiError::Invalid { .. }), "{err}");

    // A value as kube-apiserver stored it (etcd values carry no resourceVersion) is
    // accepted as a protobuf body, and arrives byte for byte.
    let pvc = fixture("persistentvolumeclaims_demo_data-pvc.pb");
    api.create(
        ResourceKind::PersistentVolumeClaim,
        Some("demo"),
        "data-pvc",
        Encoding::Protobuf,
        pvc.clone(),
    )
    .await
    .expect("protobuf create");
    let stored = fake
        .objects()
        .into_iter()
        .find(|o| o.name == "data-pvc")
        .expect("stored");
    assert_eq!(stored.body, pvc);
    assert_eq!(stored.content_type, "application/vnd.kubernetes.protobuf");
}
