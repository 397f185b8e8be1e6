//! A stand-in for kube-apiserver v1.32 and kube-controller-manager, for restore tests.
//!
//! Over HTTP it serves create (`POST`), get, list and delete of the core, `apps/v1` and
//! `batch/v1` resources podbank restores (see [`resources::RESOURCES`]) at kube-apiserver's
//! paths, parses protobuf (`k8s\0` + `runtime.Unknown`, decoded with k8s-pb) and JSON bodies,
//! and answers JSON — 201 with the object, 409 AlreadyExists, 404 NotFound, 403 Forbidden in a
//! terminating namespace, 422 Invalid, 400 BadRequest — with `Status` bodies. It keeps the exact
//! bytes it was sent ([`Stored::body`]) next to the JSON rendering it answers with
//! ([`Stored::object`]), so tests can check what a real server would have stored.
//!
//! It also answers `pods/{name}/exec` over WebSocket with the channel protocol, running the
//! command as a local process (`exec`); the pod must exist, name the container and have a
//! `spec.nodeName`.
//!
//! Behind it, a background task runs the controllers a cluster would (`controllers`,
//! `workloads`): namespace deletion, garbage collection, Deployment → ReplicaSet → pods,
//! StatefulSet pods and claims, DaemonSet, Job and ReplicationController pods. The task wakes on
//! every change and every 100 ms; tests wait on conditions with a deadline ([`FakeApiServer::wait_for`],
//! [`FakeApiServer::settled`]), never on sleeps. The code under test cannot tell it from a
//! cluster, short of a kubelet and a scheduler (pods get no status and no node).
//!
//! Layout: `resources` (the table of what is served), `codec` (bodies → JSON), `store` (the
//! objects and the create/delete rules), `http` (the REST front), `exec` (`pods/exec`),
//! `controllers` and `workloads` (kube-controller-manager). This file holds the handle tests
//! use.

mod codec;
mod controllers;
pub mod exec;
mod http;
pub mod resources;
mod store;
mod workloads;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use serde_json::Value;
use tokio::sync::Notify;

use store::{Origin, Store};

use exec::ExecRecord;

/// One object the stand-in holds.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The resource: `pods`, `persistentvolumeclaims`, `deployments`, ...
    pub resource: String,
    /// Namespace (empty for cluster-scoped).
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The request body exactly as sent (for objects made by a controller: the JSON it sent).
    pub body: Vec<u8>,
    /// Its content type: `application/vnd.kubernetes.protobuf` or `application/json`
    /// (always JSON for objects made by controllers).
    pub content_type: String,
    /// The uid the stand-in assigned.
    pub uid: String,
    /// The object as the stand-in answers it at the time of this snapshot: the body's JSON
    /// rendering with the server-set metadata (uid, resourceVersion, creationTimestamp,
    /// deletionTimestamp while terminating).
    pub object: Value,
}

/// A running stand-in on 127.0.0.1. Clones share the same server.
#[derive(Clone)]
pub struct FakeApiServer {
    inner: Arc<Mutex<Store>>,
    /// Wakes the controllers.
    wake: Arc<Notify>,
    /// Wakes the waiters of `wait_for` and `settled`.
    progress: Arc<Notify>,
    /// Its address.
    pub addr: SocketAddr,
}

impl FakeApiServer {
    /// Start on a free loopback port, with the Active namespaces `default` and `namespaces`,
    /// and its controllers running.
    pub async fn start(namespaces: &[&str]) -> FakeApiServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut store = Store::default();
        store.ensure_namespace("default");
        for ns in namespaces {
            store.ensure_namespace(ns);
        }
        store.requests.clear();
        let server = FakeApiServer {
            inner: Arc::new(Mutex::new(store)),
            wake: Arc::new(Notify::new()),
            progress: Arc::new(Notify::new()),
            addr,
        };
        let app = Router::new()
            .route(
                "/api/v1/namespaces/{namespace}/pods/{pod}/exec",
                axum::routing::any(exec::handle),
            )
            .fallback(http::handle)
            .with_state(server.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let controllers = server.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = controllers.wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
                {
                    let mut s = controllers.store();
                    if !s.paused {
                        controllers::reconcile(&mut s);
                    }
                }
                controllers.progress.notify_waiters();
            }
        });
        server
    }

    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        self.inner.lock().expect("the stand-in's lock")
    }

    /// Tell the controllers and the waiters that something changed.
    pub(crate) fn changed(&self) {
        self.wake.notify_one();
        self.progress.notify_waiters();
    }

    pub(crate) fn log_http(&self, line: &str) {
        self.store().http_log.push(line.to_string());
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

    /// Every object it holds but namespaces and events (see [`FakeApiServer::objects_of`] and
    /// [`FakeApiServer::events`]), whoever made it.
    pub fn objects(&self) -> Vec<Stored> {
        self.store()
            .objects
            .values()
            .filter(|o| o.resource != "namespaces" && o.resource != "events")
            .cloned()
            .collect()
    }

    /// The objects of `resource` in `namespace` (`""` for cluster-scoped ones, e.g.
    /// `objects_of("namespaces", "")`).
    pub fn objects_of(&self, resource: &str, namespace: &str) -> Vec<Stored> {
        self.store()
            .list(resource, Some(namespace))
            .into_iter()
            .cloned()
            .collect()
    }

    /// One object, if it exists.
    pub fn get(&self, resource: &str, namespace: &str, name: &str) -> Option<Stored> {
        self.store().get(resource, namespace, name).cloned()
    }

    /// The JSON rendering of `stored` as the stand-in answers it now (the snapshot's, if the
    /// object is gone).
    pub fn json(&self, stored: &Stored) -> Value {
        self.get(&stored.resource, &stored.namespace, &stored.name)
            .filter(|o| o.uid == stored.uid)
            .map_or_else(|| stored.object.clone(), |o| o.object)
    }

    /// The Events recorded in `namespace`, oldest first.
    pub fn events(&self, namespace: &str) -> Vec<Value> {
        let mut events: Vec<Value> = self
            .objects_of("events", namespace)
            .into_iter()
            .map(|o| o.object)
            .collect();
        events.sort_by_key(|e| {
            e["metadata"]["resourceVersion"]
                .as_str()
                .and_then(|v| v.parse::<u64>().ok())
        });
        events
    }

    /// Add an Active namespace (nothing if it exists).
    pub fn add_namespace(&self, ns: &str) {
        self.store().ensure_namespace(ns);
        self.changed();
    }

    /// Delete namespace `ns` as `DELETE /api/v1/namespaces/{ns}` does: it is Terminating at
    /// once, and the namespace controller deletes its contents and then it. Panics if it does
    /// not exist or may not be deleted (`default`).
    pub fn delete_namespace(&self, ns: &str) {
        let r = resources::by_name("namespaces").expect("namespaces");
        let answer = self.store().delete(r, "", ns);
        self.changed();
        if let Err(f) = answer {
            panic!("delete namespace {ns}: {}", f.message);
        }
    }

    /// Wait until namespace `ns` is gone; false if it is still there after `timeout`.
    pub async fn wait_namespace_gone(&self, ns: &str, timeout: Duration) -> bool {
        self.wait_for(timeout, |s| s.get("namespaces", "", ns).is_none())
            .await
    }

    /// Create an object as a client would, through the same validation, admission and
    /// controllers as `POST` (but not counted in [`FakeApiServer::requests`]), e.g. to seed a
    /// Deployment that already runs in the target. A `metadata.uid` in `value` is kept, so a
    /// test can model an object whose uid others refer to; otherwise one is assigned.
    ///
    /// # Arguments
    ///
    /// * `resource` - `deployments`, `pods`, `namespaces`, ...
    /// * `namespace` - its namespace; ignored for cluster-scoped resources.
    /// * `value` - the object, with `apiVersion` and `kind`.
    ///
    /// Returns the created object, or the `Status` body kube-apiserver would answer.
    pub fn create_json(
        &self,
        resource: &str,
        namespace: &str,
        value: Value,
    ) -> Result<Value, Value> {
        let r = resources::by_name(resource)
            .unwrap_or_else(|| panic!("the stand-in does not serve {resource}"));
        let ns = r.namespaced.then_some(namespace);
        let body = serde_json::to_vec(&value).expect("json");
        let answer = self
            .store()
            .create(r, ns, "application/json", &body, Origin::Seed)
            .map_err(|f| f.status());
        self.changed();
        answer
    }

    /// Delete an object as `DELETE` does. Returns the object, or the `Status` body.
    pub fn delete(&self, resource: &str, namespace: &str, name: &str) -> Result<Value, Value> {
        let r = resources::by_name(resource)
            .unwrap_or_else(|| panic!("the stand-in does not serve {resource}"));
        let answer = self
            .store()
            .delete(r, namespace, name)
            .map_err(|f| f.status());
        self.changed();
        answer
    }

    /// Remove an object's finalizers, as the controller owning them would; an object being
    /// deleted then goes.
    pub fn remove_finalizers(&self, resource: &str, namespace: &str, name: &str) {
        self.store()
            .remove_finalizers(&(resource.into(), namespace.into(), name.into()));
        self.changed();
    }

    /// Wait until `condition` holds, re-checking on every change and at least every 20 ms;
    /// false if it still does not after `timeout`. `condition` may call any method of `self`.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        condition: impl Fn(&FakeApiServer) -> bool,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if condition(self) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            let notified = self.progress.notified();
            let _ = tokio::time::timeout(Duration::from_millis(20), notified).await;
        }
    }

    /// Wait until the controllers have nothing left to do (at most 10 s, then panics). With
    /// the controllers paused, returns at once.
    pub async fn settled(&self) {
        let done = self
            .wait_for(Duration::from_secs(10), |s| {
                let store = s.store();
                store.paused || store.settled_at == store.mutations
            })
            .await;
        assert!(
            done,
            "the stand-in's controllers did not settle within 10 s"
        );
    }

    /// Stop (`true`) or resume (`false`) the controllers; requests are still served.
    pub fn pause_controllers(&self, paused: bool) {
        self.store().paused = paused;
        self.changed();
    }

    /// What the garbage collector deleted, as `(resource, namespace, name, reason)`; the
    /// reason is `OwnerRefInvalidNamespace`, `OwnerDeleted` (cascade) or `OwnerAbsent`.
    pub fn gc_deletions(&self) -> Vec<(String, String, String, String)> {
        self.store()
            .gc_deletions
            .iter()
            .map(|d| {
                (
                    d.resource.clone(),
                    d.namespace.clone(),
                    d.name.clone(),
                    d.reason.clone(),
                )
            })
            .collect()
    }

    /// Turn away the next `n` HTTP creates as API Priority and Fairness does when its
    /// queues are full: 429 TooManyRequests with `Retry-After: 1`.
    pub fn throttle_creates(&self, n: usize) {
        self.store().throttle_creates = n;
    }

    /// How many creates were turned away with a 429.
    pub fn throttled(&self) -> usize {
        self.store().throttled
    }

    /// Make the `n`th HTTP create from now on fail with a 500.
    pub fn fail_create_after(&self, n: usize) {
        let mut s = self.store();
        s.fail_create_at = Some(s.creates + n);
    }

    /// The create requests seen over HTTP, as `POST resource namespace` (controllers' and
    /// `create_json`'s creates are not requests).
    pub fn requests(&self) -> Vec<String> {
        self.store().requests.clone()
    }

    /// The execs accepted over WebSocket, oldest first, with how each ended so far.
    pub fn execs(&self) -> Vec<ExecRecord> {
        self.store().execs.clone()
    }

    /// Serve only these exec subprotocols, e.g. `&["v4.channel.k8s.io"]` for a kube-apiserver
    /// older than 1.30 (before v5).
    pub fn serve_exec_protocols(&self, protocols: &[&'static str]) {
        self.store().exec_protocols = Some(protocols.to_vec());
    }

    /// Every HTTP request seen, as `METHOD path`.
    pub fn http_log(&self) -> Vec<String> {
        self.store().http_log.clone()
    }
}
