//! What owns a seeded pod and what it references: the workload of each pod (by its app and
//! index), the owner chain (Deployment -> ReplicaSet, StatefulSet, CronJob -> Job) with real
//! uids, and the per-namespace objects every pod refers to (the Namespace, ConfigMaps,
//! Secrets, ServiceAccounts), so that the seeded cluster is whole.
//!
//! Workloads, by app (`i % 5`) and pod index `i`:
//!
//! * `web`, `api`: StatefulSets `web` and `api`, a claim per ordinal (`data-<pod>`) from
//!   their `volumeClaimTemplates`;
//! * `worker`: CronJob `worker` -> one Job per pod (`worker-<29000000 + i>`);
//! * `db`: Deployment `db` -> ReplicaSet `db-<hash>`;
//! * `cache`: Deployment `cache` -> ReplicaSet `cache-<hash>` when `i % 10 == 4`, a bare pod
//!   (no owner) when `i % 10 == 9`.

use std::collections::BTreeMap;

use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::batch::v1 as batch;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use sha2::{Digest, Sha256};

use super::meta::{envelope, key_of, managed_fields, s, time, uuid_from, BASE_TIME};
use super::{SeedObject, SeedPlan};
use podbank_core::codec::ResourceKind;

/// The apps, by `index % 5`.
pub(super) const APPS: [&str; 5] = ["web", "api", "worker", "db", "cache"];

/// What made a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Workload {
    StatefulSet,
    CronJob,
    Deployment,
    Bare,
}

/// The workload of pod `index`.
pub(super) fn workload_of(index: usize) -> Workload {
    match index % 5 {
        0 | 1 => Workload::StatefulSet,
        2 => Workload::CronJob,
        3 => Workload::Deployment,
        _ if index % 10 == 4 => Workload::Deployment,
        _ => Workload::Bare,
    }
}

/// The namespace of pod `index`.
pub(super) fn namespace_of(plan: &SeedPlan, index: usize) -> String {
    format!("ns-{}", index % plan.namespaces.max(1))
}

/// The uid of a seeded object (owners, referenced objects, namespaces).
pub(super) fn object_uid(plan: &SeedPlan, kind: ResourceKind, ns: &str, name: &str) -> String {
    uuid_from(&format!("{}/{}/{ns}/{name}", plan.seed, kind.resource()))
}

/// The `pod-template-hash` of the ReplicaSet of `app` in `ns`.
fn template_hash(plan: &SeedPlan, ns: &str, app: &str) -> String {
    let h = Sha256::digest(format!("{}/rs/{ns}/{app}", plan.seed).as_bytes());
    hex::encode(&h[..5])[..9].to_string()
}

/// The ReplicaSet of a Deployment's pods.
fn replica_set_name(plan: &SeedPlan, ns: &str, app: &str) -> String {
    format!("{app}-{}", template_hash(plan, ns, app))
}

/// The Job of a CronJob's pod `index`.
fn job_name(index: usize) -> String {
    format!("worker-{}", 29_000_000 + index)
}

/// The controller revision of a StatefulSet.
fn revision_hash(plan: &SeedPlan, ns: &str, app: &str) -> String {
    format!("{app}-{}", template_hash(plan, ns, &format!("sts-{app}")))
}

fn owner_ref(plan: &SeedPlan, kind: ResourceKind, ns: &str, name: &str) -> meta::OwnerReference {
    meta::OwnerReference {
        api_version: s(kind.api_version()),
        kind: s(kind.kind()),
        name: s(name),
        uid: s(object_uid(plan, kind, ns, name)),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// How a pod's controller marks it.
pub(super) struct PodOwnership {
    /// `metadata.ownerReferences` (empty for a bare pod).
    pub owners: Vec<meta::OwnerReference>,
    /// `metadata.generateName` (empty for a bare pod).
    pub generate_name: String,
    /// The labels the controller adds.
    pub labels: Vec<(String, String)>,
    /// `spec.serviceAccountName`.
    pub service_account: String,
    /// `spec.restartPolicy`.
    pub restart_policy: &'static str,
}

/// How pod `index` (named `name`, in `ns`) is owned.
pub(super) fn ownership(plan: &SeedPlan, index: usize, ns: &str, name: &str) -> PodOwnership {
    let app = APPS[index % 5];
    let l = |k: &str, v: String| (k.to_string(), v);
    match workload_of(index) {
        Workload::StatefulSet => PodOwnership {
            owners: vec![owner_ref(plan, ResourceKind::StatefulSet, ns, app)],
            generate_name: format!("{app}-"),
            labels: vec![
                l("controller-revision-hash", revision_hash(plan, ns, app)),
                l("statefulset.kubernetes.io/pod-name", name.to_string()),
                l("apps.kubernetes.io/pod-index", index.to_string()),
            ],
            service_account: app.into(),
            restart_policy: "Always",
        },
        Workload::Deployment => {
            let rs = replica_set_name(plan, ns, app);
            PodOwnership {
                owners: vec![owner_ref(plan, ResourceKind::ReplicaSet, ns, &rs)],
                generate_name: format!("{rs}-"),
                labels: vec![l("pod-template-hash", template_hash(plan, ns, app))],
                service_account: app.into(),
                restart_policy: "Always",
            }
        }
        Workload::CronJob => {
            let job = job_name(index);
            let uid = object_uid(plan, ResourceKind::Job, ns, &job);
            PodOwnership {
                owners: vec![owner_ref(plan, ResourceKind::Job, ns, &job)],
                generate_name: format!("{job}-"),
                labels: vec![
                    l("batch.kubernetes.io/controller-uid", uid.clone()),
                    l("batch.kubernetes.io/job-name", job.clone()),
                    l("controller-uid", uid),
                    l("job-name", job),
                ],
                service_account: app.into(),
                restart_policy: "OnFailure",
            }
        }
        Workload::Bare => PodOwnership {
            owners: Vec::new(),
            generate_name: String::new(),
            labels: Vec::new(),
            service_account: "default".into(),
            restart_policy: "Always",
        },
    }
}

/// The ConfigMap every pod of `app` mounts.
pub(super) fn config_map_name(app: &str) -> String {
    format!("{app}-config")
}

/// The Secret the main container of every pod of `app` reads a password from.
pub(super) fn secret_name(app: &str) -> String {
    format!("{app}-credentials")
}

fn object_meta(
    plan: &SeedPlan,
    kind: ResourceKind,
    ns: &str,
    name: &str,
    labels: BTreeMap<String, String>,
    owner: Option<meta::OwnerReference>,
    manager: &str,
) -> meta::ObjectMeta {
    meta::ObjectMeta {
        name: s(name),
        generate_name: s(""),
        namespace: s(ns),
        self_link: s(""),
        resource_version: s(""),
        generation: Some(if kind.has_status() && kind.is_owner() {
            1
        } else {
            0
        }),
        uid: s(object_uid(plan, kind, ns, name)),
        creation_timestamp: time(BASE_TIME),
        labels,
        owner_references: owner.into_iter().collect(),
        managed_fields: vec![managed_fields(
            manager,
            BASE_TIME,
            r#"{"f:metadata":{"f:labels":{".":{}}}}"#,
        )],
        ..Default::default()
    }
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn object(
    kind: ResourceKind,
    ns: Option<&str>,
    name: &str,
    prefix: &str,
    message: &impl prost::Message,
) -> SeedObject {
    SeedObject {
        key: key_of(prefix, kind, ns, name),
        value: envelope(kind, message),
    }
}

/// The pods of one workload in one namespace.
#[derive(Debug, Clone, Copy)]
struct Group {
    first: usize,
    count: usize,
}

/// The objects besides pods, claims and volumes: Namespaces, ServiceAccounts, ConfigMaps,
/// Secrets and the owners of the pods of `plan` (only those some pod refers to).
pub fn cluster_objects(plan: &SeedPlan) -> Vec<SeedObject> {
    let prefix = plan.prefix.trim_end_matches('/');
    // (namespace index, app index, workload) -> its pods.
    let mut groups: BTreeMap<(usize, usize, Workload), Group> = BTreeMap::new();
    let namespaces = plan.namespaces.max(1);
    for i in 0..plan.pods {
        groups
            .entry((i % namespaces, i % 5, workload_of(i)))
            .and_modify(|g| g.count += 1)
            .or_insert(Group { first: i, count: 1 });
    }
    let mut out = Vec::new();
    let used_ns: std::collections::BTreeSet<usize> = groups.keys().map(|k| k.0).collect();
    for &n in &used_ns {
        let ns = format!("ns-{n}");
        out.push(namespace_object(plan, prefix, &ns));
        out.push(service_account(plan, prefix, &ns, "default"));
        out.push(root_ca(plan, prefix, &ns));
        let apps_here: std::collections::BTreeSet<usize> =
            groups.keys().filter(|k| k.0 == n).map(|k| k.1).collect();
        for a in apps_here {
            let app = APPS[a];
            out.push(service_account(plan, prefix, &ns, app));
            out.push(config_map(plan, prefix, &ns, app));
            out.push(secret(plan, prefix, &ns, app));
        }
    }
    for (&(n, a, workload), group) in &groups {
        let ns = format!("ns-{n}");
        let app = APPS[a];
        match workload {
            Workload::StatefulSet => out.push(stateful_set(plan, prefix, &ns, app, *group)),
            Workload::Deployment => out.extend(deployment(plan, prefix, &ns, app, *group)),
            Workload::CronJob => {
                out.push(cron_job(plan, prefix, &ns, app, group.first));
                // The pods of this group are `first`, `first + lcm(namespaces, 5)`, ...
                let step = namespaces * 5 / gcd(namespaces, 5);
                out.extend(
                    (group.first..plan.pods)
                        .step_by(step)
                        .map(|i| job(plan, prefix, &ns, app, i)),
                );
            }
            Workload::Bare => {}
        }
    }
    out
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn namespace_object(plan: &SeedPlan, prefix: &str, ns: &str) -> SeedObject {
    let mut m = object_meta(
        plan,
        ResourceKind::Namespace,
        "",
        ns,
        labels(&[("kubernetes.io/metadata.name", ns)]),
        None,
        "kubectl-create",
    );
    m.namespace = s("");
    let namespace = core::Namespace {
        metadata: Some(m),
        spec: Some(core::NamespaceSpec {
            finalizers: vec!["kubernetes".into()],
        }),
        status: Some(core::NamespaceStatus {
            phase: s("Active"),
            conditions: vec![],
        }),
    };
    object(ResourceKind::Namespace, None, ns, prefix, &namespace)
}

fn service_account(plan: &SeedPlan, prefix: &str, ns: &str, name: &str) -> SeedObject {
    let account = core::ServiceAccount {
        metadata: Some(object_meta(
            plan,
            ResourceKind::ServiceAccount,
            ns,
            name,
            BTreeMap::new(),
            None,
            if name == "default" {
                "kube-controller-manager"
            } else {
                "kubectl-client-side-apply"
            },
        )),
        ..Default::default()
    };
    object(
        ResourceKind::ServiceAccount,
        Some(ns),
        name,
        prefix,
        &account,
    )
}

fn root_ca(plan: &SeedPlan, prefix: &str, ns: &str) -> SeedObject {
    let cm = core::ConfigMap {
        metadata: Some(object_meta(
            plan,
            ResourceKind::ConfigMap,
            ns,
            "kube-root-ca.crt",
            BTreeMap::new(),
            None,
            "kube-controller-manager",
        )),
        data: [(
            "ca.crt".to_string(),
            "-----BEGIN CERTIFICATE-----\nMIIDBTCCAe2gAwIBAgIIseeded0\n-----END CERTIFICATE-----\n"
                .to_string(),
        )]
        .into(),
        ..Default::default()
    };
    object(
        ResourceKind::ConfigMap,
        Some(ns),
        "kube-root-ca.crt",
        prefix,
        &cm,
    )
}

fn config_map(plan: &SeedPlan, prefix: &str, ns: &str, app: &str) -> SeedObject {
    let name = config_map_name(app);
    let cm = core::ConfigMap {
        metadata: Some(object_meta(
            plan,
            ResourceKind::ConfigMap,
            ns,
            &name,
            labels(&[("app", app)]),
            None,
            "kubectl-client-side-apply",
        )),
        data: [
            (
                "app.yaml".to_string(),
                format!("name: {app}\nlisten: 0.0.0.0:8080\nlog_level: info\n"),
            ),
            ("features".to_string(), "metrics,tracing\n".to_string()),
        ]
        .into(),
        ..Default::default()
    };
    object(ResourceKind::ConfigMap, Some(ns), &name, prefix, &cm)
}

fn secret(plan: &SeedPlan, prefix: &str, ns: &str, app: &str) -> SeedObject {
    let name = secret_name(app);
    let password =
        hex::encode(&Sha256::digest(format!("{}/{ns}/{app}", plan.seed).as_bytes())[..12]);
    let secret = core::Secret {
        metadata: Some(object_meta(
            plan,
            ResourceKind::Secret,
            ns,
            &name,
            labels(&[("app", app)]),
            None,
            "kubectl-client-side-apply",
        )),
        data: [
            ("username".to_string(), app.as_bytes().to_vec()),
            ("password".to_string(), password.into_bytes()),
        ]
        .into(),
        r#type: s("Opaque"),
        ..Default::default()
    };
    object(ResourceKind::Secret, Some(ns), &name, prefix, &secret)
}

fn selector(app: &str) -> meta::LabelSelector {
    meta::LabelSelector {
        match_labels: [("app".to_string(), app.to_string())].into(),
        match_expressions: vec![],
    }
}

/// The pod template of `app`'s workload: the spec of its first pod, unscheduled.
fn template(
    plan: &SeedPlan,
    app: &str,
    first: usize,
    extra: &[(&str, &str)],
) -> core::PodTemplateSpec {
    let mut spec = super::pods::template_spec(plan, first);
    if let Some(spec) = spec.as_mut() {
        spec.node_name = None;
    }
    let mut l = labels(&[("app", app)]);
    l.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    core::PodTemplateSpec {
        metadata: Some(meta::ObjectMeta {
            labels: l,
            ..Default::default()
        }),
        spec,
    }
}

fn replicas(n: usize) -> Option<i32> {
    Some(i32::try_from(n).unwrap_or(i32::MAX))
}

fn stateful_set(plan: &SeedPlan, prefix: &str, ns: &str, app: &str, g: Group) -> SeedObject {
    let mut tpl = template(plan, app, g.first, &[]);
    // The claim comes from the volumeClaimTemplate, not from a volume of the template.
    if let Some(spec) = tpl.spec.as_mut() {
        spec.volumes.retain(|v| v.name.as_deref() != Some("data"));
    }
    let (class, provisioner) = if app == "web" {
        ("csi-cinder-sc-delete", "cinder.csi.openstack.org")
    } else {
        ("standard", "kubernetes.io/cinder")
    };
    let revision = revision_hash(plan, ns, app);
    let sts = apps::StatefulSet {
        metadata: Some(object_meta(
            plan,
            ResourceKind::StatefulSet,
            ns,
            app,
            labels(&[("app", app)]),
            None,
            "kubectl-client-side-apply",
        )),
        spec: Some(apps::StatefulSetSpec {
            replicas: replicas(g.count),
            selector: Some(selector(app)),
            template: Some(tpl),
            volume_claim_templates: vec![core::PersistentVolumeClaim {
                metadata: Some(meta::ObjectMeta {
                    name: s("data"),
                    annotations: [(
                        "volume.kubernetes.io/storage-provisioner".to_string(),
                        provisioner.to_string(),
                    )]
                    .into(),
                    ..Default::default()
                }),
                spec: Some(core::PersistentVolumeClaimSpec {
                    access_modes: vec!["ReadWriteOnce".into()],
                    resources: Some(core::VolumeResourceRequirements {
                        requests: [("storage".to_string(), super::meta::quantity("10Gi"))].into(),
                        ..Default::default()
                    }),
                    storage_class_name: s(class),
                    volume_mode: s("Filesystem"),
                    ..Default::default()
                }),
                status: Some(core::PersistentVolumeClaimStatus {
                    phase: s("Pending"),
                    ..Default::default()
                }),
            }],
            service_name: s(app),
            pod_management_policy: s("OrderedReady"),
            update_strategy: Some(apps::StatefulSetUpdateStrategy {
                r#type: s("RollingUpdate"),
                rolling_update: Some(apps::RollingUpdateStatefulSetStrategy {
                    partition: Some(0),
                    ..Default::default()
                }),
            }),
            revision_history_limit: Some(10),
            persistent_volume_claim_retention_policy: Some(
                apps::StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_deleted: s("Retain"),
                    when_scaled: s("Retain"),
                },
            ),
            ..Default::default()
        }),
        status: Some(apps::StatefulSetStatus {
            observed_generation: Some(1),
            replicas: replicas(g.count),
            ready_replicas: replicas(g.count),
            current_replicas: replicas(g.count),
            updated_replicas: replicas(g.count),
            available_replicas: replicas(g.count),
            current_revision: s(revision.clone()),
            update_revision: s(revision),
            collision_count: Some(0),
            ..Default::default()
        }),
    };
    object(ResourceKind::StatefulSet, Some(ns), app, prefix, &sts)
}

fn deployment(plan: &SeedPlan, prefix: &str, ns: &str, app: &str, g: Group) -> Vec<SeedObject> {
    let hash = template_hash(plan, ns, app);
    let rs_name = replica_set_name(plan, ns, app);
    let deployment = apps::Deployment {
        metadata: Some(meta::ObjectMeta {
            annotations: [(
                "deployment.kubernetes.io/revision".to_string(),
                "1".to_string(),
            )]
            .into(),
            ..object_meta(
                plan,
                ResourceKind::Deployment,
                ns,
                app,
                labels(&[("app", app)]),
                None,
                "kubectl-client-side-apply",
            )
        }),
        spec: Some(apps::DeploymentSpec {
            replicas: replicas(g.count),
            selector: Some(selector(app)),
            template: Some(template(plan, app, g.first, &[])),
            strategy: Some(apps::DeploymentStrategy {
                r#type: s("RollingUpdate"),
                rolling_update: Some(apps::RollingUpdateDeployment {
                    max_unavailable: Some(percent("25%")),
                    max_surge: Some(percent("25%")),
                }),
            }),
            revision_history_limit: Some(10),
            progress_deadline_seconds: Some(600),
            ..Default::default()
        }),
        status: Some(apps::DeploymentStatus {
            observed_generation: Some(1),
            replicas: replicas(g.count),
            updated_replicas: replicas(g.count),
            ready_replicas: replicas(g.count),
            available_replicas: replicas(g.count),
            ..Default::default()
        }),
    };
    let mut rs_selector = selector(app);
    rs_selector
        .match_labels
        .insert("pod-template-hash".into(), hash.clone());
    let rs = apps::ReplicaSet {
        metadata: Some(meta::ObjectMeta {
            annotations: [
                (
                    "deployment.kubernetes.io/desired-replicas",
                    g.count.to_string(),
                ),
                ("deployment.kubernetes.io/max-replicas", g.count.to_string()),
                ("deployment.kubernetes.io/revision", "1".to_string()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
            ..object_meta(
                plan,
                ResourceKind::ReplicaSet,
                ns,
                &rs_name,
                labels(&[("app", app), ("pod-template-hash", &hash)]),
                Some(owner_ref(plan, ResourceKind::Deployment, ns, app)),
                "kube-controller-manager",
            )
        }),
        spec: Some(apps::ReplicaSetSpec {
            replicas: replicas(g.count),
            selector: Some(rs_selector),
            template: Some(template(
                plan,
                app,
                g.first,
                &[("pod-template-hash", &hash)],
            )),
            ..Default::default()
        }),
        status: Some(apps::ReplicaSetStatus {
            replicas: replicas(g.count),
            fully_labeled_replicas: replicas(g.count),
            ready_replicas: replicas(g.count),
            available_replicas: replicas(g.count),
            observed_generation: Some(1),
            ..Default::default()
        }),
    };
    vec![
        object(ResourceKind::Deployment, Some(ns), app, prefix, &deployment),
        object(ResourceKind::ReplicaSet, Some(ns), &rs_name, prefix, &rs),
    ]
}

fn percent(v: &str) -> k8s_pb::apimachinery::pkg::util::intstr::IntOrString {
    k8s_pb::apimachinery::pkg::util::intstr::IntOrString {
        r#type: Some(1),
        int_val: None,
        str_val: s(v),
    }
}

fn cron_job(plan: &SeedPlan, prefix: &str, ns: &str, app: &str, first: usize) -> SeedObject {
    let cron = batch::CronJob {
        metadata: Some(object_meta(
            plan,
            ResourceKind::CronJob,
            ns,
            app,
            labels(&[("app", app)]),
            None,
            "kubectl-client-side-apply",
        )),
        spec: Some(batch::CronJobSpec {
            schedule: s("*/10 * * * *"),
            concurrency_policy: s("Allow"),
            suspend: Some(false),
            successful_jobs_history_limit: Some(3),
            failed_jobs_history_limit: Some(1),
            job_template: Some(batch::JobTemplateSpec {
                metadata: Some(meta::ObjectMeta::default()),
                spec: Some(batch::JobSpec {
                    backoff_limit: Some(6),
                    template: Some(template(plan, app, first, &[])),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }),
        status: Some(batch::CronJobStatus {
            last_schedule_time: time(BASE_TIME + 86_400),
            ..Default::default()
        }),
    };
    object(ResourceKind::CronJob, Some(ns), app, prefix, &cron)
}

fn job(plan: &SeedPlan, prefix: &str, ns: &str, app: &str, index: usize) -> SeedObject {
    let name = job_name(index);
    let uid = object_uid(plan, ResourceKind::Job, ns, &name);
    let job = batch::Job {
        metadata: Some(object_meta(
            plan,
            ResourceKind::Job,
            ns,
            &name,
            labels(&[
                ("batch.kubernetes.io/controller-uid", &uid),
                ("batch.kubernetes.io/job-name", &name),
                ("controller-uid", &uid),
                ("job-name", &name),
            ]),
            Some(owner_ref(plan, ResourceKind::CronJob, ns, app)),
            "kube-controller-manager",
        )),
        spec: Some(batch::JobSpec {
            parallelism: Some(1),
            completions: Some(1),
            backoff_limit: Some(6),
            selector: Some(meta::LabelSelector {
                match_labels: [(
                    "batch.kubernetes.io/controller-uid".to_string(),
                    uid.clone(),
                )]
                .into(),
                match_expressions: vec![],
            }),
            manual_selector: None,
            template: Some(template(
                plan,
                app,
                index,
                &[
                    ("batch.kubernetes.io/controller-uid", &uid),
                    ("batch.kubernetes.io/job-name", &name),
                    ("controller-uid", &uid),
                    ("job-name", &name),
                ],
            )),
            completion_mode: s("NonIndexed"),
            suspend: Some(false),
            ..Default::default()
        }),
        status: Some(batch::JobStatus {
            start_time: time(BASE_TIME + (index as i64 % 86_400)),
            active: Some(1),
            ..Default::default()
        }),
    };
    object(ResourceKind::Job, Some(ns), &name, prefix, &job)
}
