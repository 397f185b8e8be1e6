//! Garbage collection, namespace lifecycle and the shapes of LIST, GET and DELETE answers.

use std::time::Duration;

use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use serde_json::json;

use super::{controller_of, envelope, Client, PROTOBUF, WAIT};
use crate::support::apiserver::FakeApiServer;

#[tokio::test]
async fn dangling_owner_references_are_garbage_collected() {
    let api = FakeApiServer::start(&["source", "target"]).await;
    let client = Client::new(&api);
    // The source cluster's StatefulSet, whose uid restored objects still name.
    let owner = api
        .create_json(
            "statefulsets",
            "source",
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
                   "metadata": {"name": "db", "uid": "0b5d9a4e-2f51-4c1e-9d7a-3c6f1e2a8b90"},
                   "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "db"}},
                            "template": {"metadata": {"labels": {"app": "db"}}, "spec": {}}}}),
        )
        .expect("seeded");
    assert_eq!(
        owner["metadata"]["uid"],
        "0b5d9a4e-2f51-4c1e-9d7a-3c6f1e2a8b90"
    );
    let owned = |name: &str, uid: &str| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": name, "ownerReferences": [{
                   "apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db", "uid": uid,
                   "controller": true, "blockOwnerDeletion": true}]},
               "data": {"k": "v"}})
    };
    // Its uid lives in another namespace: deleted, with OwnerRefInvalidNamespace.
    let (code, _) = client
        .post_json(
            "/api/v1/namespaces/target/configmaps",
            owned("moved", "0b5d9a4e-2f51-4c1e-9d7a-3c6f1e2a8b90"),
        )
        .await;
    assert_eq!(code, 201);
    // Its owner never existed: deleted silently, as the real garbage collector does.
    let (code, _) = client
        .post_json(
            "/api/v1/namespaces/target/configmaps",
            owned("orphan", "9f1c2d3e-4b5a-4678-9abc-def012345678"),
        )
        .await;
    assert_eq!(code, 201);
    // A live owner in the same namespace: kept.
    let (_, sa) = client
        .post_json(
            "/api/v1/namespaces/target/serviceaccounts",
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "app"}}),
        )
        .await;
    let kept = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "kept", "ownerReferences": [{"apiVersion": "v1", "kind": "ServiceAccount",
                     "name": "app", "uid": sa["metadata"]["uid"]}]}});
    let (code, _) = client
        .post_json("/api/v1/namespaces/target/configmaps", kept)
        .await;
    assert_eq!(code, 201);

    assert!(
        api.wait_for(Duration::from_secs(1), |s| {
            s.get("configmaps", "target", "moved").is_none()
                && s.get("configmaps", "target", "orphan").is_none()
        })
        .await,
        "deleted within a second: {:?}",
        api.objects_of("configmaps", "target")
    );
    api.settled().await;
    assert!(api.get("configmaps", "target", "kept").is_some());
    let mut gc = api.gc_deletions();
    gc.sort();
    assert_eq!(
        gc,
        [
            (
                "configmaps".into(),
                "target".into(),
                "moved".into(),
                "OwnerRefInvalidNamespace".into()
            ),
            (
                "configmaps".into(),
                "target".into(),
                "orphan".into(),
                "OwnerRefInvalidNamespace".into()
            ),
        ]
    );
    let (code, list) = client.get("/api/v1/namespaces/target/events").await;
    assert_eq!(code, 200);
    assert_eq!(list["kind"], "EventList");
    let events = list["items"].as_array().expect("items");
    assert_eq!(events.len(), 2, "{events:?}");
    let e = events
        .iter()
        .find(|e| e["involvedObject"]["name"] == "moved")
        .expect("the event of moved");
    assert!(events
        .iter()
        .all(|e| e["reason"] == "OwnerRefInvalidNamespace"));
    assert_eq!(e["reason"], "OwnerRefInvalidNamespace");
    assert_eq!(e["type"], "Warning");
    assert_eq!(e["source"]["component"], "garbage-collector-controller");
    assert_eq!(e["involvedObject"]["kind"], "ConfigMap");
    assert_eq!(e["involvedObject"]["name"], "moved");
    assert_eq!(e["involvedObject"]["namespace"], "target");
    assert_eq!(
        e["message"],
        "ownerRef [apps/v1/StatefulSet, namespace: target, name: db, uid: 0b5d9a4e-2f51-4c1e-9d7a-3c6f1e2a8b90] does not exist in namespace \"target\""
    );
    assert_eq!(api.events("target").len(), 2);
}

#[tokio::test]
async fn namespace_lifecycle_missing_terminating_and_emptied() {
    let api = FakeApiServer::start(&["old"]).await;
    let client = Client::new(&api);
    let cm =
        |name: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}});

    let (code, status) = client
        .post_json("/api/v1/namespaces/missing/configmaps", cm("a"))
        .await;
    assert_eq!(code, 404);
    assert_eq!(status["reason"], "NotFound");
    assert_eq!(status["message"], "namespaces \"missing\" not found");
    assert_eq!(
        status["details"],
        json!({"name": "missing", "kind": "namespaces"})
    );

    // A namespace made over HTTP, twice.
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "fresh"}});
    let (code, created) = client.post_json("/api/v1/namespaces", ns.clone()).await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["status"]["phase"], "Active");
    let (code, status) = client.post_json("/api/v1/namespaces", ns).await;
    assert_eq!(code, 409);
    assert_eq!(status["reason"], "AlreadyExists");

    // Contents held by a finalizer keep the namespace terminating, so that creation can be
    // refused in it.
    let mut held = cm("held");
    held["metadata"]["finalizers"] = json!(["example.com/hold"]);
    for body in [cm("a"), held] {
        let (code, _) = client
            .post_json("/api/v1/namespaces/old/configmaps", body)
            .await;
        assert_eq!(code, 201);
    }
    let (code, deployment) = client
        .post_json(
            "/apis/apps/v1/namespaces/old/deployments",
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                   "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                            "template": {"metadata": {"labels": {"app": "web"}},
                                         "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}}),
        )
        .await;
    assert_eq!(code, 201, "{deployment}");
    assert!(
        api.wait_for(WAIT, |s| s.objects_of("pods", "old").len() == 1)
            .await
    );

    let (code, terminating) = client.delete("/api/v1/namespaces/old").await;
    assert_eq!(code, 200);
    assert_eq!(terminating["status"]["phase"], "Terminating");
    assert!(terminating["metadata"]["deletionTimestamp"].is_string());
    let (code, status) = client
        .post_json("/api/v1/namespaces/old/configmaps", cm("late"))
        .await;
    assert_eq!(code, 403, "{status}");
    assert_eq!(status["reason"], "Forbidden");
    assert_eq!(
        status["message"],
        "configmaps \"late\" is forbidden: unable to create new content in namespace old because it is being terminated"
    );
    let (code, status) = client
        .post_json(
            "/apis/apps/v1/namespaces/old/deployments",
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "late"}}),
        )
        .await;
    assert_eq!(code, 403);
    assert_eq!(
        status["message"],
        "deployments.apps \"late\" is forbidden: unable to create new content in namespace old because it is being terminated"
    );

    assert!(
        api.wait_for(WAIT, |s| s.objects().len() == 1).await,
        "all but the held object deleted: {:?}",
        api.objects()
    );
    let held = api
        .get("configmaps", "old", "held")
        .expect("held by its finalizer");
    assert!(api.json(&held)["metadata"]["deletionTimestamp"].is_string());
    assert!(
        !api.wait_namespace_gone("old", Duration::from_millis(300))
            .await
    );
    api.remove_finalizers("configmaps", "old", "held");
    assert!(api.wait_namespace_gone("old", WAIT).await);
    assert!(api.objects().is_empty(), "{:?}", api.objects());
    let (code, _) = client.get("/api/v1/namespaces/old").await;
    assert_eq!(code, 404);

    // The helper does the same as the HTTP DELETE.
    api.create_json(
        "secrets",
        "fresh",
        json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "s"}, "type": "Opaque", "data": {"k": "dg=="}}),
    )
    .expect("seeded");
    api.delete_namespace("fresh");
    assert!(api.wait_namespace_gone("fresh", WAIT).await);
    assert!(api.objects_of("secrets", "fresh").is_empty());
    let (code, status) = client.delete("/api/v1/namespaces/default").await;
    assert_eq!(code, 403, "{status}");
}

#[tokio::test]
async fn list_get_and_delete_answer_kube_apiserver_shapes_on_group_paths() {
    let api = FakeApiServer::start(&["jobs"]).await;
    let client = Client::new(&api);
    let secret = core::Secret {
        metadata: Some(meta::ObjectMeta {
            name: Some("creds".into()),
            ..Default::default()
        }),
        data: [("password".to_string(), b"hunter2".to_vec())].into(),
        r#type: Some("Opaque".into()),
        ..Default::default()
    };
    let (code, created) = client
        .post(
            "/api/v1/namespaces/jobs/secrets",
            PROTOBUF,
            envelope("v1", "Secret", &secret),
        )
        .await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["data"]["password"], "aHVudGVyMg==");
    assert_eq!(created["type"], "Opaque");
    assert_eq!(created["metadata"]["namespace"], "jobs");

    let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once"},
        "spec": {"parallelism": 2, "template": {"metadata": {"labels": {"app": "once"}},
                 "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}});
    let (code, created) = client
        .post_json("/apis/batch/v1/namespaces/jobs/jobs", job)
        .await;
    assert_eq!(code, 201, "{created}");
    assert!(
        api.wait_for(WAIT, |s| s.objects_of("pods", "jobs").len() == 2)
            .await
    );
    api.settled().await;
    let pod = api.json(&api.objects_of("pods", "jobs")[0]);
    assert_eq!(
        pod["metadata"]["labels"]["batch.kubernetes.io/job-name"],
        "once"
    );
    assert_eq!(controller_of(&pod).0, "Job");

    let (code, list) = client.get("/apis/batch/v1/namespaces/jobs/jobs").await;
    assert_eq!(code, 200);
    assert_eq!(list["apiVersion"], "batch/v1");
    assert_eq!(list["kind"], "JobList");
    assert!(list["metadata"]["resourceVersion"].is_string());
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["metadata"]["name"], "once");
    assert!(items[0].get("kind").is_none(), "list items carry no kind");

    let (code, all) = client.get("/api/v1/pods").await;
    assert_eq!((code, all["kind"].as_str()), (200, Some("PodList")));
    assert_eq!(all["items"].as_array().map(Vec::len), Some(2));

    let (code, got) = client.get("/apis/batch/v1/namespaces/jobs/jobs/once").await;
    assert_eq!(code, 200);
    assert_eq!(
        (got["apiVersion"].as_str(), got["kind"].as_str()),
        (Some("batch/v1"), Some("Job"))
    );

    // A Job posted to deployments, a pod at a group path, a missing object.
    let (code, status) = client
        .post_json(
            "/apis/apps/v1/namespaces/jobs/deployments",
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "x"}}),
        )
        .await;
    assert_eq!((code, status["reason"].as_str()), (400, Some("BadRequest")));
    let (code, _) = client.get("/apis/apps/v1/namespaces/jobs/pods").await;
    assert_eq!(code, 404);
    let (code, status) = client
        .get("/apis/apps/v1/namespaces/jobs/deployments/none")
        .await;
    assert_eq!(code, 404);
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["message"], "deployments.apps \"none\" not found");
    assert_eq!(
        status["details"],
        json!({"name": "none", "kind": "deployments", "group": "apps"})
    );

    let (code, deleted) = client
        .delete("/apis/batch/v1/namespaces/jobs/jobs/once")
        .await;
    assert_eq!(code, 200);
    assert_eq!(deleted["metadata"]["name"], "once");
    let (code, status) = client
        .delete("/apis/batch/v1/namespaces/jobs/jobs/once")
        .await;
    assert_eq!((code, status["reason"].as_str()), (404, Some("NotFound")));
    assert!(
        api.wait_for(WAIT, |s| s.objects_of("pods", "jobs").is_empty())
            .await
    );
    let (code, pvs) = client.get("/api/v1/persistentvolumes").await;
    assert_eq!(
        (code, pvs["kind"].as_str()),
        (200, Some("PersistentVolumeList"))
    );
    assert_eq!(pvs["items"], json!([]));
}
