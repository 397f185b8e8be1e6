//! The workload controllers: Deployment → ReplicaSet → pods, StatefulSet pods and claims.

use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use serde_json::json;

use super::{controller_of, envelope, labels, template, Client, PROTOBUF, WAIT};
use crate::support::apiserver::FakeApiServer;

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
