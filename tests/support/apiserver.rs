//! A stand-in for kube-apiserver, for restore tests: it answers the create and get calls
//! podbank makes the way kube-apiserver v1.32 does — 201 with the object, 409
//! AlreadyExists, 404 when the namespace is missing, 422 Invalid, 400 BadRequest — with
//! `Status` bodies, and parses protobuf request bodies (`k8s\0` + `runtime.Unknown`) with
//! k8s-pb and JSON bodies with serde_json. It keeps the exact bytes it was sent, so tests
//! can check what a real server would have stored.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::runtime::Unknown;
use prost::Message;
use serde_json::{json, Value};

/// One object the stand-in holds.
#[derive(Debug, Clone)]
pub struct Stored {
    /// `pods`, `persistentvolumeclaims`, `persistentvolumes`.
    pub resource: String,
    /// Namespace (empty for cluster-scoped).
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The request body exactly as sent.
    pub body: Vec<u8>,
    /// Its content type.
    pub content_type: String,
    /// The uid the stand-in assigned.
    pub uid: String,
}

#[derive(Default)]
struct Inner {
    namespaces: BTreeSet<String>,
    objects: BTreeMap<(String, String, String), Stored>,
    requests: Vec<String>,
    /// Fail the Nth create (1-based) with a 500, to simulate a crash mid-restore.
    fail_create_at: Option<usize>,
    creates: usize,
}

/// A running stand-in on 127.0.0.1.
#[derive(Clone)]
pub struct FakeApiServer {
    inner: Arc<Mutex<Inner>>,
    /// Its address.
    pub addr: SocketAddr,
}

fn status(code: StatusCode, reason: &str, message: String, name: &str, kind: &str) -> Response {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason,
        "details": {"name": name, "kind": kind}, "code": code.as_u16()
    });
    (code, Json(body)).into_response()
}

/// The fields the stand-in validates, from either encoding.
struct Meta {
    kind: String,
    name: String,
    namespace: String,
    resource_version: String,
    uid: String,
}

fn meta_from_protobuf(body: &[u8], resource: &str) -> Result<Meta, String> {
    let rest = body
        .strip_prefix(b"k8s\0")
        .ok_or("protobuf body without the k8s\\0 magic")?;
    let unknown = Unknown::decode(rest).map_err(|e| format!("runtime.Unknown: {e}"))?;
    let kind = unknown.type_meta.and_then(|t| t.kind).unwrap_or_default();
    let raw = unknown.raw.unwrap_or_default();
    let m = match resource {
        "pods" => core::Pod::decode(&raw[..]).map(|o| o.metadata),
        "persistentvolumeclaims" => {
            core::PersistentVolumeClaim::decode(&raw[..]).map(|o| o.metadata)
        }
        "persistentvolumes" => core::PersistentVolume::decode(&raw[..]).map(|o| o.metadata),
        other => return Err(format!("unsupported resource {other}")),
    }
    .map_err(|e| format!("{kind}: {e}"))?
    .unwrap_or_default();
    Ok(Meta {
        kind,
        name: m.name.unwrap_or_default(),
        namespace: m.namespace.unwrap_or_default(),
        resource_version: m.resource_version.unwrap_or_default(),
        uid: m.uid.unwrap_or_default(),
    })
}

fn meta_from_json(body: &[u8]) -> Result<Meta, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let s = |p: &str| {
        v.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    Ok(Meta {
        kind: s("/kind"),
        name: s("/metadata/name"),
        namespace: s("/metadata/namespace"),
        resource_version: s("/metadata/resourceVersion"),
        uid: s("/metadata/uid"),
    })
}

fn dns1123_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

fn expected_kind(resource: &str) -> &'static str {
    match resource {
        "pods" => "Pod",
        "persistentvolumeclaims" => "PersistentVolumeClaim",
        _ => "PersistentVolume",
    }
}

async fn create(
    State(s): State<FakeApiServer>,
    namespace: Option<String>,
    resource: String,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let mut inner = s.inner.lock().expect("lock");
    inner.requests.push(format!(
        "POST {resource} {}",
        namespace.clone().unwrap_or_default()
    ));
    inner.creates += 1;
    if inner.fail_create_at == Some(inner.creates) {
        return status(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "injected failure".into(),
            "",
            &resource,
        );
    }
    let meta = match content_type.as_str() {
        "application/vnd.kubernetes.protobuf" => meta_from_protobuf(&body, &resource),
        "application/json" => meta_from_json(&body),
        other => {
            return status(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                format!("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {other:?})"),
                "",
                &resource,
            )
        }
    };
    let meta = match meta {
        Ok(m) => m,
        Err(e) => return status(StatusCode::BAD_REQUEST, "BadRequest", e, "", &resource),
    };
    if meta.kind != expected_kind(&resource) {
        return status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("kind {:?} posted to {resource}", meta.kind),
            &meta.name,
            &resource,
        );
    }
    let ns = namespace.clone().unwrap_or_default();
    if let Some(ns) = &namespace {
        if !inner.namespaces.contains(ns) {
            return status(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("namespaces \"{ns}\" not found"),
                ns,
                "namespaces",
            );
        }
        if !meta.namespace.is_empty() && meta.namespace != *ns {
            return status(StatusCode::BAD_REQUEST, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request".into(), &meta.name, &resource);
        }
    }
    if !dns1123_subdomain(&meta.name) {
        return status(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", format!("{} \"{}\" is invalid: metadata.name: Invalid value: \"{}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'", expected_kind(&resource), meta.name, meta.name), &meta.name, &resource);
    }
    if !meta.resource_version.is_empty() {
        return status(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", "metadata.resourceVersion: Invalid value: resourceVersion should not be set on objects to be created".into(), &meta.name, &resource);
    }
    let key = (resource.clone(), ns.clone(), meta.name.clone());
    if inner.objects.contains_key(&key) {
        return status(
            StatusCode::CONFLICT,
            "AlreadyExists",
            format!("{resource} \"{}\" already exists", meta.name),
            &meta.name,
            &resource,
        );
    }
    let uid = format!("00000000-0000-4000-8000-{:012}", inner.objects.len() + 1);
    let _ = meta.uid;
    inner.objects.insert(
        key,
        Stored {
            resource: resource.clone(),
            namespace: ns.clone(),
            name: meta.name.clone(),
            body: body.to_vec(),
            content_type,
            uid: uid.clone(),
        },
    );
    let mut metadata = json!({"name": meta.name, "uid": uid, "resourceVersion": "1"});
    if !ns.is_empty() {
        metadata["namespace"] = json!(ns);
    }
    (
        StatusCode::CREATED,
        Json(json!({"apiVersion": "v1", "kind": meta.kind, "metadata": metadata})),
    )
        .into_response()
}

async fn read(s: FakeApiServer, resource: String, ns: String, name: String) -> Response {
    let inner = s.inner.lock().expect("lock");
    match inner
        .objects
        .get(&(resource.clone(), ns.clone(), name.clone()))
    {
        Some(o) => {
            let mut metadata = json!({"name": o.name, "uid": o.uid, "resourceVersion": "1"});
            if !ns.is_empty() {
                metadata["namespace"] = json!(ns);
            }
            // kube-apiserver answers with the whole object; restore reads its annotations
            let (labels, annotations) = labels_and_annotations(o);
            if !labels.is_empty() {
                metadata["labels"] = json!(labels);
            }
            if !annotations.is_empty() {
                metadata["annotations"] = json!(annotations);
            }
            (StatusCode::OK, Json(json!({"apiVersion": "v1", "kind": expected_kind(&resource), "metadata": metadata}))).into_response()
        }
        None => status(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("{resource} \"{name}\" not found"),
            &name,
            &resource,
        ),
    }
}

/// The labels and annotations of a stored object, from either encoding.
fn labels_and_annotations(o: &Stored) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    if o.content_type == "application/json" {
        let v: Value = serde_json::from_slice(&o.body).unwrap_or(Value::Null);
        let map = |p: &str| -> BTreeMap<String, String> {
            v.pointer(p)
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                        .collect()
                })
                .unwrap_or_default()
        };
        return (map("/metadata/labels"), map("/metadata/annotations"));
    }
    let Some(rest) = o.body.strip_prefix(b"k8s\0") else {
        return Default::default();
    };
    let raw = Unknown::decode(rest)
        .ok()
        .and_then(|u| u.raw)
        .unwrap_or_default();
    let m = match o.resource.as_str() {
        "pods" => core::Pod::decode(&raw[..]).ok().and_then(|x| x.metadata),
        "persistentvolumeclaims" => core::PersistentVolumeClaim::decode(&raw[..])
            .ok()
            .and_then(|x| x.metadata),
        _ => core::PersistentVolume::decode(&raw[..])
            .ok()
            .and_then(|x| x.metadata),
    }
    .unwrap_or_default();
    (m.labels, m.annotations)
}

impl FakeApiServer {
    /// Start on a free loopback port, with the namespaces `default` and `namespaces`.
    pub async fn start(namespaces: &[&str]) -> FakeApiServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut inner = Inner::default();
        inner.namespaces.insert("default".into());
        inner
            .namespaces
            .extend(namespaces.iter().map(|n| n.to_string()));
        let server = FakeApiServer {
            inner: Arc::new(Mutex::new(inner)),
            addr,
        };
        let app = Router::new()
            .route(
                "/api/v1/namespaces/{ns}/{resource}",
                post(|st: State<FakeApiServer>, Path((ns, resource)): Path<(String, String)>, h: HeaderMap, b: Bytes| async move {
                    create(st, Some(ns), resource, h, b).await
                }),
            )
            .route(
                "/api/v1/{resource}",
                post(|st: State<FakeApiServer>, Path(resource): Path<String>, h: HeaderMap, b: Bytes| async move {
                    create(st, None, resource, h, b).await
                }),
            )
            .route(
                "/api/v1/namespaces/{ns}/{resource}/{name}",
                get(|State(st): State<FakeApiServer>, Path((ns, resource, name)): Path<(String, String, String)>| async move {
                    read(st, resource, ns, name).await
                }),
            )
            .route(
                "/api/v1/{resource}/{name}",
                get(|State(st): State<FakeApiServer>, Path((resource, name)): Path<(String, String)>| async move {
                    read(st, resource, String::new(), name).await
                }),
            )
            .with_state(server.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        server
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Write a kubeconfig pointing at the stand-in into `dir`; returns its path.
    pub fn write_kubeconfig(&self, dir: &std::path::Path) -> std::path::PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\nusers:\n- name: fake\n  user:\n    token: test-token\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\ncurrent-context: fake\n",
            self.url()
        );
        std::fs::write(&path, text).expect("write kubeconfig");
        path
    }

    /// Every object created so far.
    pub fn objects(&self) -> Vec<Stored> {
        self.inner
            .lock()
            .expect("lock")
            .objects
            .values()
            .cloned()
            .collect()
    }

    /// Add a namespace.
    pub fn add_namespace(&self, ns: &str) {
        self.inner
            .lock()
            .expect("lock")
            .namespaces
            .insert(ns.to_string());
    }

    /// Make the `n`th create from now on fail with a 500.
    pub fn fail_create_after(&self, n: usize) {
        let mut inner = self.inner.lock().expect("lock");
        inner.fail_create_at = Some(inner.creates + n);
    }

    /// The requests seen, as `METHOD resource namespace`.
    pub fn requests(&self) -> Vec<String> {
        self.inner.lock().expect("lock").requests.clone()
    }
}
