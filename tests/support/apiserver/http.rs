//! The REST front of the stand-in: kube-apiserver's URL layout (`/api/v1/...` for the core
//! group, `/apis/{group}/{version}/...` for the others) for create, get, list and delete, with
//! JSON answers and `Status` bodies. It parses paths itself (one fallback handler) so that any
//! path it does not serve gets kube-apiserver's 404 rather than the router's.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::resources::{self, Resource};
use super::store::{Failure, Origin};
use super::FakeApiServer;

/// What a path names.
struct Target {
    resource: &'static Resource,
    namespace: Option<String>,
    name: Option<String>,
}

fn parse(path: &str) -> Option<Target> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return None,
    };
    let (namespace, resource, name) = match rest {
        [resource] => (None, *resource, None),
        ["namespaces", ns, resource] => (Some(ns.to_string()), *resource, None),
        ["namespaces", ns, resource, name] => (Some(ns.to_string()), *resource, Some(name)),
        [resource, name] => (None, *resource, Some(name)),
        _ => return None,
    };
    let resource = resources::in_group(group, version, resource)?;
    if namespace.is_some() && !resource.namespaced {
        return None;
    }
    // A namespaced object is addressed in its namespace; only collections span them all.
    if namespace.is_none() && resource.namespaced && name.is_some() {
        return None;
    }
    Some(Target {
        resource,
        namespace,
        name: name.map(|n| n.to_string()),
    })
}

fn failure(f: Failure) -> Response {
    let code = StatusCode::from_u16(f.code).expect("a status code");
    (code, Json(f.status())).into_response()
}

fn not_served() -> Response {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "the server could not find the requested resource",
        "reason": "NotFound", "details": {}, "code": 404
    });
    (StatusCode::NOT_FOUND, Json(body)).into_response()
}

/// Every request lands here.
pub async fn handle(
    State(server): State<FakeApiServer>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    server.log_http(&format!("{method} {}", uri.path()));
    let Some(t) = parse(uri.path()) else {
        return not_served();
    };
    let ns = t.namespace.clone().unwrap_or_default();
    let response = match (&method, &t.name) {
        (&Method::POST, None) => {
            let content_type = headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            create(&server, &t, &content_type, &body)
        }
        (&Method::GET, None) => list(&server, &t),
        (&Method::GET, Some(name)) => match server.store().get(t.resource.name, &ns, name) {
            Some(o) => (StatusCode::OK, Json(o.object.clone())).into_response(),
            None => failure(Failure {
                code: 404,
                reason: "NotFound",
                message: format!("{} \"{name}\" not found", t.resource.qualified()),
                name: name.clone(),
                kind: t.resource.name.into(),
                group: t.resource.group.into(),
            }),
        },
        (&Method::DELETE, Some(name)) => {
            let answer = server.store().delete(t.resource, &ns, name);
            server.changed();
            match answer {
                Ok(o) => (StatusCode::OK, Json(o)).into_response(),
                Err(f) => failure(f),
            }
        }
        _ => {
            let body = json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "the server does not allow this method on the requested resource",
                "reason": "MethodNotAllowed", "details": {}, "code": 405
            });
            (StatusCode::METHOD_NOT_ALLOWED, Json(body)).into_response()
        }
    };
    response
}

fn create(server: &FakeApiServer, t: &Target, content_type: &str, body: &[u8]) -> Response {
    let answer = {
        let mut s = server.store();
        s.requests.push(format!(
            "POST {} {}",
            t.resource.name,
            t.namespace.clone().unwrap_or_default()
        ));
        if s.throttle_creates > 0 {
            // API Priority and Fairness with its queues full: kube-apiserver's answer.
            s.throttle_creates -= 1;
            s.throttled += 1;
            let body = json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "Too many requests, please try again later.",
                "reason": "TooManyRequests", "details": {"retryAfterSeconds": 1}, "code": 429
            });
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(axum::http::header::RETRY_AFTER, "1")],
                Json(body),
            )
                .into_response();
        }
        s.creates += 1;
        if s.fail_create_at == Some(s.creates) {
            return failure(Failure {
                code: 500,
                reason: "InternalError",
                message: "injected failure".into(),
                name: String::new(),
                kind: t.resource.name.into(),
                group: t.resource.group.into(),
            });
        }
        s.create(
            t.resource,
            t.namespace.as_deref(),
            content_type,
            body,
            Origin::Api,
        )
    };
    server.changed();
    match answer {
        Ok(o) => (StatusCode::CREATED, Json(o)).into_response(),
        Err(f) => failure(f),
    }
}

fn list(server: &FakeApiServer, t: &Target) -> Response {
    let s = server.store();
    // Items of a typed list carry no apiVersion/kind, as kube-apiserver answers them.
    let items: Vec<Value> = s
        .list(t.resource.name, t.namespace.as_deref())
        .into_iter()
        .map(|o| {
            let mut v = o.object.clone();
            if let Some(m) = v.as_object_mut() {
                m.remove("apiVersion");
                m.remove("kind");
            }
            v
        })
        .collect();
    let body = json!({
        "apiVersion": t.resource.api_version(),
        "kind": format!("{}List", t.resource.kind),
        "metadata": {"resourceVersion": s.revision()},
        "items": items,
    });
    (StatusCode::OK, Json(body)).into_response()
}
