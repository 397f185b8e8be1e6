//! The API-server stand-in over real HTTP, as podbank sees it: the control-plane behaviour
//! restore tests rely on (controllers, garbage collection, namespace lifecycle) and the JSON
//! shapes of kube-apiserver's answers.

use std::time::Duration;

use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use prost::Message;
use serde_json::{json, Value};

use crate::support::apiserver::FakeApiServer;

const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";
const WAIT: Duration = Duration::from_secs(5);

/// `k8s\0` + `runtime.Unknown` around `object`, as kube-apiserver's protobuf clients send it.
fn envelope(api_version: &str, kind: &str, object: &impl Message) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.into()),
            kind: Some(kind.into()),
        }),
        raw: Some(object.encode_to_vec()),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut body = b"k8s\0".to_vec();
    body.extend(unknown.encode_to_vec());
    body
}

fn labels(app: &str) -> std::collections::BTreeMap<String, String> {
    [("app".to_string(), app.to_string())].into()
}

fn template(app: &str) -> core::PodTemplateSpec {
    core::PodTemplateSpec {
        metadata: Some(meta::ObjectMeta {
            labels: labels(app),
            annotations: [("example.com/note".to_string(), "kept".to_string())].into(),
            ..Default::default()
        }),
        spec: Some(core::PodSpec {
            containers: vec![core::Container {
                name: Some(app.into()),
                image: Some("registry.local/nginx:1.27".into()),
                ..Default::default()
            }],
            ..Default::default()
        }),
    }
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    fn new(api: &FakeApiServer) -> Client {
        Client {
            http: reqwest::Client::new(),
            base: api.url(),
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        let resp = req
            .header("accept", "application/json")
            .send()
            .await
            .expect("request");
        let code = resp.status().as_u16();
        (code, resp.json().await.expect("a JSON answer"))
    }

    async fn post(&self, path: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        self.send(
            self.http
                .post(url)
                .header("content-type", content_type)
                .body(body),
        )
        .await
    }

    async fn post_json(&self, path: &str, body: Value) -> (u16, Value) {
        let body = serde_json::to_vec(&body).expect("json");
        self.post(path, "application/json", body).await
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    async fn delete(&self, path: &str) -> (u16, Value) {
        self.send(self.http.delete(format!("{}{path}", self.base)))
            .await
    }
}

fn controller_of(object: &Value) -> (String, String, String) {
    let refs = object["metadata"]["ownerReferences"]
        .as_array()
        .expect("ownerReferences");
    assert_eq!(refs.len(), 1, "one owner: {object}");
    let r = &refs[0];
    assert_eq!(r["controller"], true, "{r}");
    assert_eq!(r["blockOwnerDeletion"], true, "{r}");
    let s = |k: &str| r[k].as_str().expect("a string").to_string();
    (s("kind"), s("name"), s("uid"))
}

#[tokio::test]
async fn a_protobuf_deployment_gets_a_replica_set_and_its_pods_which_are_replaced_when_deleted() {
    let api = FakeApiServer::start(&["shop"]).await;
    let client = Client::new(&api);
    let deployment = apps::Deployment {
        metadata: Some(meta::ObjectMeta {
            name: Some("web".into()),
            namespace: Some("shop".into()),
            labels: labels("web"),
            ..Default::default()
        }),
        spec: Some(apps::DeploymentSpec {
            replicas: Some(2),
            selector: Some(meta::LabelSelector {
                match_labels: labels("web"),
                ..Default::default()
            }),
            template: Some(template("web")),
            ..Default::default()
        }),
        status: None,
    };
    let (code, created) = client
        .post(
            "/apis/apps/v1/namespaces/shop/deployments",
            PROTOBUF,
            envelope("apps/v1", "Deployment", &deployment),
        )
        .await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["kind"], "Deployment");
    assert_eq!(created["spec"]["replicas"], 2);
    let dep_uid = created["metadata"]["uid"]
        .as_str()
        .expect("uid")
        .to_string();
    assert_eq!(dep_uid.len(), 36, "uuid-shaped: {dep_uid}");
    assert!(created["metadata"]["creationTimestamp"].is_string());

    assert!(
        api.wait_for(WAIT, |s| s.objects_of("pods", "shop").len() == 2)
            .await,
        "two pods: {:?}",
        api.objects()
    );
    api.settled().await;
    let sets = api.objects_of("replicasets", "shop");
    assert_eq!(sets.len(), 1, "{sets:?}");
    let rs = api.json(&sets[0]);
    let rs_name = rs["metadata"]["name"].as_str().expect("name").to_string();
    let hash = rs_name.strip_prefix("web-").expect("<deployment>-<hash>");
    assert!(
        (1..=10).contains(&hash.len())
            && hash
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
        "{rs_name}"
    );
    assert_eq!(rs["metadata"]["labels"]["pod-template-hash"], hash);
    assert_eq!(rs["spec"]["replicas"], 2);
    assert_eq!(
        rs["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.local/nginx:1.27"
    );
    assert_eq!(
        controller_of(&rs),
        ("Deployment".into(), "web".into(), dep_uid.clone())
    );
    let rs_uid = sets[0].uid.clone();

    let pods = api.objects_of("pods", "shop");
    for pod in &pods {
        assert_eq!(pod.content_type, "application/json");
        let p = api.json(pod);
        assert!(pod.name.starts_with(&format!("{rs_name}-")), "{}", pod.name);
        assert_eq!(pod.name.len(), rs_name.len() + 6, "{}", pod.name);
        assert_eq!(
            controller_of(&p),
            ("ReplicaSet".into(), rs_name.clone(), rs_uid.clone())
        );
        assert_eq!(p["metadata"]["labels"]["app"], "web");
        assert_eq!(p["metadata"]["annotations"]["example.com/note"], "kept");
        assert_eq!(p["spec"]["containers"][0]["name"], "web");
    }
    let events = api.events("shop");
    assert!(
        events.iter().any(|e| e["reason"] == "ScalingReplicaSet"
            && e["source"]["component"] == "deployment-controller"),
        "{events:?}"
    );

    // A pod deleted over HTTP is replaced by the ReplicaSet controller.
    let gone = pods[0].name.clone();
    let (code, deleted) = client
        .delete(&format!("/api/v1/namespaces/shop/pods/{gone}"))
        .await;
    assert_eq!(code, 200, "{deleted}");
    assert_eq!(deleted["metadata"]["name"], gone.as_str());
    assert!(
        api.wait_for(WAIT, |s| {
            let pods = s.objects_of("pods", "shop");
            pods.len() == 2 && pods.iter().all(|p| p.name != gone)
        })
        .await,
        "replaced: {:?}",
        api.objects_of("pods", "shop")
    );
    assert!(api.gc_deletions().is_empty(), "{:?}", api.gc_deletions());

    // Deleting the Deployment cascades: its ReplicaSet, then the pods.
    let (code, _) = client
        .delete("/apis/apps/v1/namespaces/shop/deployments/web")
        .await;
    assert_eq!(code, 200);
    assert!(
        api.wait_for(WAIT, |s| s.objects().is_empty()).await,
        "{:?}",
        api.objects()
    );
    let reasons: Vec<String> = api.gc_deletions().into_iter().map(|d| d.3).collect();
    assert_eq!(reasons, ["OwnerDeleted"; 3], "{:?}", api.gc_deletions());
}

#[tokio::test]
async fn a_stateful_set_gets_ordinal_pods_and_claims_and_keeps_an_existing_claim() {
    let api = FakeApiServer::start(&["db"]).await;
    let client = Client::new(&api);
    // data-web-1 exists before the StatefulSet, bound to a restored volume.
    let (code, existing) = client
        .post_json(
            "/api/v1/namespaces/db/persistentvolumeclaims",
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                   "metadata": {"name": "data-web-1", "labels": {"restored": "yes"}},
                   "spec": {"accessModes": ["ReadWriteOnce"], "volumeName": "pv-restored",
                            "storageClassName": "cinder",
                            "resources": {"requests": {"storage": "1Gi"}}}}),
        )
        .await;
    assert_eq!(code, 201, "{existing}");
    let claim_template = core::PersistentVolumeClaim {
        metadata: Some(meta::ObjectMeta {
            name: Some("data".into()),
            ..Default::default()
        }),
        spec: Some(core::PersistentVolumeClaimSpec {
            access_modes: vec!["ReadWriteOnce".into()],
            storage_class_name: Some("cinder".into()),
            ..Default::default()
        }),
        status: None,
    };
    let sts = apps::StatefulSet {
        metadata: Some(meta::ObjectMeta {
            name: Some("web".into()),
            ..Default::default()
        }),
        spec: Some(apps::StatefulSetSpec {
            replicas: Some(2),
            selector: Some(meta::LabelSelector {
                match_labels: labels("web"),
                ..Default::default()
            }),
            template: Some(template("web")),
            volume_claim_templates: vec![claim_template],
            service_name: Some("web".into()),
            ..Default::default()
        }),
        status: None,
    };
    let (code, created) = client
        .post(
            "/apis/apps/v1/namespaces/db/statefulsets",
            PROTOBUF,
            envelope("apps/v1", "StatefulSet", &sts),
        )
        .await;
    assert_eq!(code, 201, "{created}");
    let sts_uid = created["metadata"]["uid"]
        .as_str()
        .expect("uid")
        .to_string();
    assert!(
        api.wait_for(WAIT, |s| s.get("pods", "db", "web-1").is_some())
            .await
    );
    api.settled().await;

    let mut names: Vec<String> = api
        .objects_of("pods", "db")
        .into_iter()
        .map(|p| p.name)
        .collect();
    names.sort();
    assert_eq!(names, ["web-0", "web-1"]);
    let mut claims: Vec<String> = api
        .objects_of("persistentvolumeclaims", "db")
        .into_iter()
        .map(|c| c.name)
        .collect();
    claims.sort();
    assert_eq!(claims, ["data-web-0", "data-web-1"]);
    for n in 0..2 {
        let pod = api.json(&api.get("pods", "db", &format!("web-{n}")).expect("pod"));
        assert_eq!(
            controller_of(&pod),
            ("StatefulSet".into(), "web".into(), sts_uid.clone())
        );
        let volumes = pod["spec"]["volumes"].as_array().expect("volumes");
        assert_eq!(volumes[0]["name"], "data");
        assert_eq!(
            volumes[0]["persistentVolumeClaim"]["claimName"],
            format!("data-web-{n}")
        );
    }
    // The made claim comes from the template, labelled with the selector, owned by nobody.
    let made = api.json(
        &api.get("persistentvolumeclaims", "db", "data-web-0")
            .expect("claim"),
    );
    assert_eq!(made["metadata"]["labels"]["app"], "web");
    assert_eq!(made["spec"]["storageClassName"], "cinder");
    assert!(made["metadata"].get("ownerReferences").is_none(), "{made}");
    // The existing claim is untouched: same uid, same resourceVersion, same spec.
    let kept = api
        .get("persistentvolumeclaims", "db", "data-web-1")
        .expect("claim");
    let kept = api.json(&kept);
    assert_eq!(kept["metadata"]["uid"], existing["metadata"]["uid"]);
    assert_eq!(
        kept["metadata"]["resourceVersion"],
        existing["metadata"]["resourceVersion"]
    );
    assert_eq!(kept["spec"]["volumeName"], "pv-restored");
    assert_eq!(kept["metadata"]["labels"], json!({"restored": "yes"}));

    // GET of the StatefulSet renders the protobuf body as JSON.
    let (code, got) = client
        .get("/apis/apps/v1/namespaces/db/statefulsets/web")
        .await;
    assert_eq!(code, 200);
    assert_eq!(got["spec"]["replicas"], 2);
    assert_eq!(
        got["spec"]["volumeClaimTemplates"][0]["metadata"]["name"],
        "data"
    );
    assert_eq!(got["spec"]["serviceName"], "web");
}

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
                "OwnerAbsent".into()
            ),
        ]
    );
    let (code, list) = client.get("/api/v1/namespaces/target/events").await;
    assert_eq!(code, 200);
    assert_eq!(list["kind"], "EventList");
    let events = list["items"].as_array().expect("items");
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
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
    assert_eq!(
        api.events("target"),
        vec![api.json(&api.objects_of("events", "target")[0])]
    );
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
