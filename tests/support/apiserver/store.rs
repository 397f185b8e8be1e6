//! The stand-in's state, what etcd and the API server's registry are to kube-apiserver: every
//! object, and the create and delete operations with kube-apiserver's checks (decoding, kind,
//! namespace, NamespaceLifecycle admission, name validation, conflicts) and bookkeeping (uid,
//! resourceVersion, creationTimestamp, deletionTimestamp, finalizers). HTTP handlers and the
//! controllers both go through here, so both see the same rules. No I/O, no locking: the caller
//! holds the lock.

use std::collections::{BTreeMap, HashSet};

use rand::Rng;
use serde_json::{json, Value};

use super::codec;
use super::resources::{self, Resource};
use super::Stored;

/// `(resource, namespace, name)`; the namespace is empty for cluster-scoped objects.
pub type Key = (String, String, String);

/// A failed request: the fields of the `Status` body kube-apiserver answers with.
#[derive(Debug, Clone)]
pub struct Failure {
    /// HTTP status code.
    pub code: u16,
    /// `NotFound`, `AlreadyExists`, `Forbidden`, `Invalid`, `BadRequest`, ...
    pub reason: &'static str,
    /// The message.
    pub message: String,
    /// `details.name`.
    pub name: String,
    /// `details.kind` (the resource, as kube-apiserver puts it).
    pub kind: String,
    /// `details.group`.
    pub group: String,
}

impl Failure {
    fn new(code: u16, reason: &'static str, message: String, name: &str, r: &Resource) -> Self {
        Failure {
            code,
            reason,
            message,
            name: name.to_string(),
            kind: r.name.to_string(),
            group: r.group.to_string(),
        }
    }

    /// The `Status` body.
    pub fn status(&self) -> Value {
        let mut details = json!({"name": self.name, "kind": self.kind});
        if !self.group.is_empty() {
            details["group"] = json!(self.group);
        }
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": self.message, "reason": self.reason,
            "details": details, "code": self.code
        })
    }

    fn not_found(r: &Resource, name: &str) -> Self {
        Failure::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", r.qualified()),
            name,
            r,
        )
    }
}

/// Who creates an object: it decides whether a uid in the body is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A request over HTTP, or a controller: the server assigns the uid.
    Api,
    /// A test seeding a live object: a uid in `metadata.uid` is kept (to model objects of a
    /// source cluster that tests refer to by uid).
    Seed,
}

/// One object the garbage collector deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcDeletion {
    /// Its resource.
    pub resource: String,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// `OwnerRefInvalidNamespace` (an owner uid found in another namespace), `OwnerDeleted`
    /// (every owner was deleted: cascading deletion) or `OwnerAbsent` (every owner uid was never
    /// seen by the stand-in).
    pub reason: String,
}

/// Everything the stand-in holds.
#[derive(Default)]
pub struct Store {
    /// Every object, namespaces and events included.
    pub objects: BTreeMap<Key, Stored>,
    /// The create requests seen over HTTP, as `POST resource namespace`.
    pub requests: Vec<String>,
    /// Every request seen over HTTP, as `METHOD path`.
    pub http_log: Vec<String>,
    /// Fail the Nth HTTP create (1-based) with a 500.
    pub fail_create_at: Option<usize>,
    /// How many creates from now on flow control turns away (429, `Retry-After: 1`).
    pub throttle_creates: usize,
    /// How many creates it turned away.
    pub throttled: usize,
    /// HTTP creates so far.
    pub creates: usize,
    /// What the garbage collector deleted.
    pub gc_deletions: Vec<GcDeletion>,
    /// Uids of objects that existed and were removed.
    pub deleted_uids: HashSet<String>,
    /// Controllers do nothing while set.
    pub paused: bool,
    /// Counts changes; the controllers compare it with `settled_at`.
    pub mutations: u64,
    /// The value of `mutations` when the controllers last found nothing to do.
    pub settled_at: u64,
    /// The execs accepted, in order.
    pub execs: Vec<super::exec::ExecRecord>,
    /// The exec subprotocols served; `None`: kube-apiserver 1.30+'s (v5, then v4).
    pub exec_protocols: Option<Vec<&'static str>>,
    revision: u64,
}

/// RFC 3339 now.
pub fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `n` characters from the alphabet Kubernetes uses for generated names (no vowels).
pub fn random_suffix(n: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

fn new_uid() -> String {
    let b: [u8; 16] = rand::thread_rng().gen();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        u16::from_be_bytes([b[4], b[5]]),
        u16::from_be_bytes([b[6], b[7]]) & 0x0fff,
        (u16::from_be_bytes([b[8], b[9]]) & 0x3fff) | 0x8000,
        u64::from_be_bytes([0, 0, b[10], b[11], b[12], b[13], b[14], b[15]]),
    )
}

fn dns1123_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

fn dns1123_subdomain(name: &str) -> bool {
    !name.is_empty() && name.len() <= 253 && name.split('.').all(dns1123_label)
}

/// The string at `pointer` in `v`, or "".
pub fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Whether `v` is being deleted.
pub fn terminating(v: &Value) -> bool {
    v.pointer("/metadata/deletionTimestamp").is_some()
}

impl Store {
    fn next_revision(&mut self) -> String {
        self.revision += 1;
        self.revision.to_string()
    }

    /// The current resourceVersion, for LIST answers.
    pub fn revision(&self) -> String {
        self.revision.to_string()
    }

    /// Record a change: wakes nothing by itself (the caller notifies).
    pub fn touch(&mut self) {
        self.mutations += 1;
    }

    /// The object at `key`.
    pub fn get(&self, resource: &str, namespace: &str, name: &str) -> Option<&Stored> {
        self.objects
            .get(&(resource.into(), namespace.into(), name.into()))
    }

    /// The phase of namespace `ns`, if it exists.
    pub fn namespace_phase(&self, ns: &str) -> Option<String> {
        self.get("namespaces", "", ns)
            .map(|n| text(&n.object, "/status/phase").to_string())
    }

    /// Every object of `resource` in `namespace` (all namespaces for `None`).
    pub fn list(&self, resource: &str, namespace: Option<&str>) -> Vec<&Stored> {
        self.objects
            .values()
            .filter(|o| o.resource == resource && namespace.is_none_or(|ns| o.namespace == ns))
            .collect()
    }

    /// The object with `uid`, anywhere.
    pub fn by_uid(&self, uid: &str) -> Option<&Stored> {
        self.objects.values().find(|o| o.uid == uid)
    }

    /// Create an object from a request body, as `POST` does.
    ///
    /// # Arguments
    ///
    /// * `r` - the resource of the URL.
    /// * `namespace` - the namespace of the URL (`None` for cluster-scoped resources).
    /// * `content_type` - how `body` is encoded.
    /// * `body` - the object; kept byte for byte in [`Stored::body`].
    /// * `origin` - whether a uid in the body is kept.
    ///
    /// Returns the object as kube-apiserver answers it.
    pub fn create(
        &mut self,
        r: &'static Resource,
        namespace: Option<&str>,
        content_type: &str,
        body: &[u8],
        origin: Origin,
    ) -> Result<Value, Failure> {
        let decoded = codec::decode(r, content_type, body).map_err(|e| match e {
            Some(message) => Failure::new(400, "BadRequest", message, "", r),
            None => Failure::new(415, "UnsupportedMediaType", format!("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {content_type:?})"), "", r),
        })?;
        let mut object = decoded.object;
        let mut name = text(&object, "/metadata/name").to_string();
        if decoded.kind != r.kind || decoded.api_version != r.api_version() {
            return Err(Failure::new(
                400,
                "BadRequest",
                format!(
                    "the body is a {} {:?}, but was posted to {} (which holds {} {})",
                    decoded.api_version,
                    decoded.kind,
                    r.qualified(),
                    r.api_version(),
                    r.kind
                ),
                &name,
                r,
            ));
        }
        if !object["metadata"].is_object() {
            object["metadata"] = json!({});
        }
        let ns = namespace.unwrap_or_default().to_string();
        if r.namespaced {
            let sent = text(&object, "/metadata/namespace");
            if !sent.is_empty() && sent != ns {
                return Err(Failure::new(400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request".into(), &name, r));
            }
            object["metadata"]["namespace"] = json!(ns);
        } else if let Some(m) = object["metadata"].as_object_mut() {
            m.remove("namespace");
        }
        if name.is_empty() {
            let prefix = text(&object, "/metadata/generateName");
            if !prefix.is_empty() {
                name = format!("{prefix}{}", random_suffix(5));
                object["metadata"]["name"] = json!(name);
            }
        }
        if r.namespaced {
            match self.namespace_phase(&ns).as_deref() {
                None => {
                    return Err(Failure {
                        code: 404,
                        reason: "NotFound",
                        message: format!("namespaces \"{ns}\" not found"),
                        name: ns.clone(),
                        kind: "namespaces".into(),
                        group: String::new(),
                    })
                }
                Some("Terminating") => {
                    return Err(Failure::new(403, "Forbidden", format!("{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated", r.qualified()), &name, r))
                }
                Some(_) => {}
            }
        }
        let valid = if r.name == "namespaces" {
            dns1123_label(&name)
        } else {
            dns1123_subdomain(&name)
        };
        if !valid {
            return Err(Failure::new(422, "Invalid", format!("{} \"{name}\" is invalid: metadata.name: Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character", r.kind), &name, r));
        }
        if !text(&object, "/metadata/resourceVersion").is_empty() {
            return Err(Failure::new(422, "Invalid", format!("{} \"{name}\" is invalid: metadata.resourceVersion: Invalid value: resourceVersion should not be set on objects to be created", r.kind), &name, r));
        }
        let key = (r.name.to_string(), ns.clone(), name.clone());
        if self.objects.contains_key(&key) {
            return Err(Failure::new(
                409,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", r.qualified()),
                &name,
                r,
            ));
        }
        let sent_uid = text(&object, "/metadata/uid").to_string();
        let uid = if origin == Origin::Seed && !sent_uid.is_empty() {
            sent_uid
        } else {
            new_uid()
        };
        let metadata = &mut object["metadata"];
        metadata["uid"] = json!(uid);
        metadata["resourceVersion"] = json!(self.next_revision());
        metadata["creationTimestamp"] = json!(now());
        if let Some(m) = metadata.as_object_mut() {
            m.remove("deletionTimestamp");
            m.remove("deletionGracePeriodSeconds");
        }
        if r.name == "namespaces" {
            object["spec"] = json!({"finalizers": ["kubernetes"]});
            object["status"] = json!({"phase": "Active"});
        }
        self.objects.insert(
            key,
            Stored {
                resource: r.name.to_string(),
                namespace: ns,
                name,
                body: body.to_vec(),
                content_type: content_type.to_string(),
                uid,
                object: object.clone(),
            },
        );
        self.touch();
        Ok(object)
    }

    /// Create an Active namespace directly (the namespaces of `start` and `add_namespace`).
    pub fn ensure_namespace(&mut self, ns: &str) {
        if self.get("namespaces", "", ns).is_some() {
            return;
        }
        let r = resources::by_name("namespaces").expect("namespaces");
        let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        let body = serde_json::to_vec(&body).expect("json");
        self.create(r, None, "application/json", &body, Origin::Api)
            .expect("create namespace");
    }

    /// Delete an object, as `DELETE` does: a namespace becomes Terminating (the namespace
    /// controller empties and removes it), an object with finalizers gets a deletionTimestamp
    /// and stays until they are gone, anything else is removed (pods at once: no kubelet is
    /// modelled). Returns the object as it was answered.
    pub fn delete(
        &mut self,
        r: &'static Resource,
        namespace: &str,
        name: &str,
    ) -> Result<Value, Failure> {
        let key = (r.name.to_string(), namespace.to_string(), name.to_string());
        let Some(stored) = self.objects.get(&key) else {
            return Err(Failure::not_found(r, name));
        };
        if r.name == "namespaces" && ["default", "kube-system", "kube-public"].contains(&name) {
            return Err(Failure::new(
                403,
                "Forbidden",
                format!("namespaces \"{name}\" is forbidden: this namespace may not be deleted"),
                name,
                r,
            ));
        }
        if terminating(&stored.object) {
            return Ok(stored.object.clone());
        }
        let finalizers = stored.object["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty());
        if r.name == "namespaces" || finalizers {
            let revision = self.next_revision();
            let stored = self.objects.get_mut(&key).expect("present");
            let metadata = &mut stored.object["metadata"];
            metadata["deletionTimestamp"] = json!(now());
            metadata["deletionGracePeriodSeconds"] = json!(0);
            metadata["resourceVersion"] = json!(revision);
            if r.name == "namespaces" {
                stored.object["status"]["phase"] = json!("Terminating");
            }
            let object = stored.object.clone();
            self.touch();
            return Ok(object);
        }
        let stored = self.objects.remove(&key).expect("present");
        self.deleted_uids.insert(stored.uid.clone());
        self.touch();
        Ok(stored.object)
    }

    /// Change an object in place (a controller's update), with a new resourceVersion.
    pub fn update(&mut self, key: &Key, change: impl FnOnce(&mut Value)) {
        let revision = self.next_revision();
        if let Some(stored) = self.objects.get_mut(key) {
            change(&mut stored.object);
            stored.object["metadata"]["resourceVersion"] = json!(revision);
            self.touch();
        }
    }

    /// Remove the finalizers of an object; one being deleted is then removed.
    pub fn remove_finalizers(&mut self, key: &Key) {
        let Some(stored) = self.objects.get_mut(key) else {
            return;
        };
        if let Some(m) = stored.object["metadata"].as_object_mut() {
            m.remove("finalizers");
        }
        if terminating(&stored.object) && key.0 != "namespaces" {
            let stored = self.objects.remove(key).expect("present");
            self.deleted_uids.insert(stored.uid);
        }
        self.touch();
    }

    /// Remove an object outright (the namespace controller's last step).
    pub fn remove(&mut self, key: &Key) {
        if let Some(stored) = self.objects.remove(key) {
            self.deleted_uids.insert(stored.uid);
            self.touch();
        }
    }

    /// Record a `core/v1` Event about `involved`, as a controller's event recorder does.
    /// Nothing is recorded in a namespace that is missing or terminating (the API server
    /// would refuse it).
    pub fn record_event(
        &mut self,
        involved: &Value,
        event_type: &str,
        reason: &str,
        message: String,
        component: &str,
    ) {
        let ns = text(involved, "/metadata/namespace").to_string();
        if self.namespace_phase(&ns).as_deref() != Some("Active") {
            return;
        }
        let involved_name = text(involved, "/metadata/name");
        let nanos = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
        let name = format!("{involved_name}.{nanos:x}");
        let now = now();
        let event = json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": {
                "apiVersion": involved["apiVersion"], "kind": involved["kind"],
                "name": involved_name, "namespace": ns,
                "uid": text(involved, "/metadata/uid"),
            },
            "reason": reason, "message": message, "type": event_type,
            "source": {"component": component},
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
            "reportingComponent": component, "reportingInstance": "",
        });
        let r = resources::by_name("events").expect("events");
        let body = serde_json::to_vec(&event).expect("json");
        // A name collision (two events in the same nanosecond) loses the second: acceptable.
        let _ = self.create(r, Some(&ns), "application/json", &body, Origin::Api);
    }
}
