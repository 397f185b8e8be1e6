//! Karbor's v1 wire shapes: the bodies python-karborclient 2.1.0 reads, and Karbor's error
//! body (`{"badRequest": {"code": 400, "message": "..."}}`, the OpenStack fault format).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::engine::{EngineError, PodDetail};
use crate::model::ResourceKind;

pub use crate::api::PROVIDER_ID;

/// The protectable types, in order: the pod, its Cinder volumes, and the types of its
/// closure (every other kind of the kind table).
pub fn protectable_types() -> Vec<&'static str> {
    let mut out = vec![ResourceKind::Pod.karbor(), "OS::Cinder::Volume"];
    for kind in ResourceKind::ALL {
        if !out.contains(&kind.karbor()) {
            out.push(kind.karbor());
        }
    }
    out
}

/// The types a protectable of type `name` depends on (what protecting it takes along);
/// `None` for a type that is not protectable.
pub fn dependent_types(name: &str) -> Option<Vec<&'static str>> {
    let types = protectable_types();
    if !types.contains(&name) {
        return None;
    }
    Some(if name == "OS::Kubernetes::Pod" {
        types
            .into_iter()
            .filter(|t| *t != "OS::Kubernetes::Pod")
            .collect()
    } else {
        Vec::new()
    })
}

/// A Karbor protectable instance of a pod, with its dependents: its Cinder volumes, then
/// the objects of its closure that were found.
pub fn pod_detail_instance(d: &PodDetail) -> Value {
    let info = &d.pod.info;
    let mut deps: Vec<Value> = d
        .dependents
        .iter()
        .filter_map(|v| {
            let id = v.id.as_ref()?;
            v.resource_type.as_ref()?;
            Some(json!({
                "id": id,
                "type": "OS::Cinder::Volume",
                "name": v.dependent.claim.clone().unwrap_or_else(|| v.dependent.pod_volume.clone()),
                "extra_info": {
                    "pod_volume": v.dependent.pod_volume,
                    "claim": v.dependent.claim,
                    "persistent_volume": v.dependent.persistent_volume,
                    "capacity": v.dependent.capacity,
                },
            }))
        })
        .collect();
    for c in &d.closure {
        let id = if c.uid.is_empty() {
            c.name.to_string()
        } else {
            c.uid.clone()
        };
        deps.push(json!({
            "id": id,
            "type": c.kind.karbor(),
            "name": c.name.to_string(),
            "extra_info": { "relation": c.relation, "status": c.status },
        }));
    }
    json!({
        "id": d.id,
        "type": "OS::Kubernetes::Pod",
        "name": format!("{}/{}", info.namespace, info.name),
        "extra_info": {
            "namespace": info.namespace,
            "name": info.name,
            "node": info.node,
            "phase": info.phase,
            "labels": info.labels,
            "cinder_volumes": d.cinder_volumes,
        },
        "dependent_resources": deps,
    })
}

/// The podbank provider, as Karbor describes a provider.
pub fn provider() -> Value {
    let saved_info = json!({
        "type": "object",
        "title": "Pod Saved Info",
        "properties": {
            "revision": {"type": "integer", "title": "etcd revision"},
            "namespace": {"type": "string", "title": "Namespace"},
            "name": {"type": "string", "title": "Name"},
            "uid": {"type": "string", "title": "Uid"},
        },
    });
    let mut options = Map::new();
    let mut restore = Map::new();
    let mut saved = Map::new();
    options.insert(
        "OS::Kubernetes::Pod".into(),
        crate::protection::schema::protect_schema(),
    );
    restore.insert(
        "OS::Kubernetes::Pod".into(),
        crate::protection::schema::restore_schema(),
    );
    saved.insert("OS::Kubernetes::Pod".into(), saved_info);
    json!({
        "id": PROVIDER_ID,
        "name": "podbank",
        "description": "Kubernetes pods and their Cinder volumes, read from etcd into a content-addressed bank",
        "extended_info_schema": {
            "options_schema": options,
            "restore_schema": restore,
            "saved_info_schema": saved,
        },
    })
}

/// The version document of v1.
pub fn v1_version(base: &str) -> Value {
    json!({
        "id": "v1.0",
        "status": "CURRENT",
        "updated": "2014-06-28T12:20:21Z",
        "links": [{"rel": "self", "href": format!("{base}/v1/")}],
        "media-types": [{
            "base": "application/json",
            "type": "application/vnd.openstack.data-protect+json;version=1",
        }],
        "min_version": "",
        "version": "",
    })
}

/// An error answer in Karbor's (OpenStack's) fault format.
#[derive(Debug)]
pub struct Fault {
    /// The status.
    pub status: StatusCode,
    /// What went wrong.
    pub message: String,
    /// podbank's error code for it, when the status alone does not say it (`busy`,
    /// `shutting_down`, `overloaded`): what podbank's representation answers.
    pub code: Option<&'static str>,
}

/// podbank's error code of a fault, carried in the response's extensions to
/// `podbank_errors`.
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode(pub &'static str);

#[derive(Serialize)]
struct FaultDetail<'a> {
    code: u16,
    message: &'a str,
}

impl Fault {
    /// A fault.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Fault {
        Fault {
            status,
            message: message.into(),
            code: None,
        }
    }

    /// The same fault, with podbank's error code.
    pub fn with_code(mut self, code: &'static str) -> Fault {
        self.code = Some(code);
        self
    }

    /// A 400.
    pub fn bad_request(message: impl Into<String>) -> Fault {
        Fault::new(StatusCode::BAD_REQUEST, message)
    }

    /// A 404.
    pub fn not_found(message: impl Into<String>) -> Fault {
        Fault::new(StatusCode::NOT_FOUND, message)
    }

    /// The key OpenStack names a fault of this status by.
    fn key(&self) -> &'static str {
        match self.status.as_u16() {
            400 => "badRequest",
            401 => "unauthorized",
            403 => "forbidden",
            404 => "itemNotFound",
            405 => "badMethod",
            409 => "conflictingRequest",
            413 => "overLimit",
            415 => "badMediaType",
            501 => "notImplemented",
            503 => "serviceUnavailable",
            _ => "computeFault",
        }
    }
}

impl IntoResponse for Fault {
    fn into_response(self) -> Response {
        let mut body = Map::new();
        body.insert(
            self.key().into(),
            json!(FaultDetail {
                code: self.status.as_u16(),
                message: &self.message,
            }),
        );
        let mut resp = (self.status, Json(Value::Object(body))).into_response();
        if let Some(code) = self.code {
            resp.extensions_mut().insert(ErrorCode(code));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Keystone uri=\"\""),
            );
        }
        resp
    }
}

impl From<EngineError> for Fault {
    fn from(e: EngineError) -> Self {
        let (status, code) = crate::api::status_of(&e);
        Fault::new(status, e.to_string()).with_code(code)
    }
}

impl From<crate::agent::service::ServiceError> for Fault {
    fn from(e: crate::agent::service::ServiceError) -> Self {
        use crate::agent::service::ServiceError;
        match e {
            ServiceError::Engine(e) => e.into(),
            e @ ServiceError::UnknownPlan(_) => Fault::not_found(e.to_string()),
            e @ ServiceError::Busy(_) => {
                Fault::new(StatusCode::CONFLICT, e.to_string()).with_code("busy")
            }
            e => Fault::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
                .with_code("shutting_down"),
        }
    }
}
