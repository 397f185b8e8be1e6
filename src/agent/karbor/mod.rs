//! Karbor's v1 REST API, the agent's one API for its resources: `/` and `/v1` (version
//! documents, open) and `/v1/{project_id}/...` (protectables, providers, plans,
//! checkpoints, restores, triggers, scheduled operations, operation logs, verifications),
//! in the bodies python-karborclient 2.1.0 reads, or in podbank's own representation for a
//! caller that asks for it (module `podbank`: the CLI's `--agent` mode). Both come from the same
//! [`Service`] call; nothing is done twice.
//!
//! Authentication is the agent's ([`crate::agent::auth`]): its static token or a Keystone
//! token, sent as Karbor's client sends it (`X-Auth-Token`, what `karbor --os-auth-token`
//! sends) or as `Authorization: Bearer`; the project in the URL is not checked yet.
//! Errors are OpenStack faults: `{"badRequest": {"code": 400, "message": "..."}}`.

pub mod access;
mod checkpoints;
mod ids;
mod operation_logs;
mod plans;
mod podbank;
mod scheduled_operations;
mod triggers;
pub mod types;
mod verifications;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{OriginalUri, Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{require_auth, AuthLayer, Dialect, Gate};
use super::Service;
use crate::engine::{EngineError, PageRequest, PodSpecifier, SelectionSpec};
use crate::model::Namespace;
pub use podbank::asks_for_podbank;
use podbank::Repr;
use types::Fault;

/// What the Karbor handlers get.
#[derive(Clone)]
pub struct KarborState {
    service: Arc<Service>,
    /// Checkpoints and restores created here whose records the bank may not hold yet,
    /// by their Karbor id.
    pending: Arc<Mutex<HashMap<String, checkpoints::Pending>>>,
}

type KResult<T> = Result<T, Fault>;

/// The Karbor router: `/`, `/v1` and `/v1/{project_id}/...`.
///
/// # Arguments
/// * `service` - the agent's core, the same one the agent's own API uses.
/// * `gate` - what `/v1/{project_id}/...` requires: the agent's one gate, shared with its
///   own routes.
pub fn router(service: Arc<Service>, gate: Arc<Gate>) -> (Router, utoipa::openapi::OpenApi) {
    let state = KarborState {
        service,
        pending: Arc::default(),
    };
    // Reads of etcd and the bank take a turn (see `crate::agent::limit`).
    let reads = OpenApiRouter::new()
        .routes(routes!(list_instances))
        .routes(routes!(show_instance))
        .routes(routes!(
            checkpoints::show,
            checkpoints::update,
            checkpoints::delete
        ))
        .route_layer(middleware::from_fn_with_state(state.clone(), take_turn));
    let project = OpenApiRouter::new()
        .routes(routes!(list_protectables))
        .routes(routes!(show_protectable))
        .merge(reads)
        .routes(routes!(list_providers))
        .routes(routes!(show_provider))
        .routes(routes!(plans::create, plans::list))
        .routes(routes!(plans::show, plans::update, plans::delete))
        .routes(routes!(checkpoints::create, checkpoints::list))
        .routes(routes!(
            checkpoints::restore_create,
            checkpoints::restore_list
        ))
        .routes(routes!(checkpoints::restore_show))
        .routes(routes!(triggers::create, triggers::list))
        .routes(routes!(triggers::show, triggers::update, triggers::delete))
        .routes(routes!(
            scheduled_operations::create,
            scheduled_operations::list
        ))
        .routes(routes!(
            scheduled_operations::show,
            scheduled_operations::delete
        ))
        .routes(routes!(operation_logs::list))
        .routes(routes!(operation_logs::show))
        .routes(routes!(verifications::create, verifications::list))
        .routes(routes!(verifications::show))
        // Inside authentication: the caller it admitted, against the roles table.
        .route_layer(middleware::from_fn(access::authorize))
        .route_layer(middleware::from_fn_with_state(
            AuthLayer::new(gate, Dialect::Karbor),
            require_auth,
        ))
        .route_layer(middleware::from_fn(podbank::podbank_errors));
    let (router, api) = OpenApiRouter::new()
        .routes(routes!(versions))
        .routes(routes!(version_v1))
        // karborclient asks for `/v1/` too.
        .route("/v1/", get(version_v1))
        .merge(project)
        .with_state(state)
        .split_for_parts();
    (router, api)
}

fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}")
}

/// `GET /`: the API versions (300 Multiple Choices, as OpenStack services answer).
#[utoipa::path(get, path = "/", tag = "karbor", summary = "API versions",
    responses((status = 300, description = "API versions", body = Object)))]
async fn versions(headers: HeaderMap) -> Response {
    let base = base_url(&headers);
    (
        StatusCode::MULTIPLE_CHOICES,
        Json(json!({ "versions": [types::v1_version(&base)] })),
    )
        .into_response()
}

/// `GET /v1`: the v1 version document.
#[utoipa::path(get, path = "/v1", tag = "karbor", summary = "The v1 version document",
    responses((status = 200, description = "The v1 version document", body = Object)))]
async fn version_v1(headers: HeaderMap) -> Json<Value> {
    let base = base_url(&headers);
    Json(json!({ "version": types::v1_version(&base) }))
}

/// `GET /v1/{project_id}/protectables`.
#[utoipa::path(get, path = "/v1/{project_id}/protectables", tag = "karbor", summary = "Protectable types",
    params(("project_id" = String, Path, description = "Project (tenant) id")),
    responses((status = 200, description = "Protectable types", body = Object),
              (status = 401, description = "No or wrong X-Auth-Token", body = Object)),
    security(("karbor_token" = [])))]
async fn list_protectables(Path(_project): Path<String>) -> Json<Value> {
    Json(json!({ "protectable_type": types::protectable_types() }))
}

fn invalid_type() -> Fault {
    Fault::bad_request("Invalid input received: Invalid protectable type provided.")
}

/// `GET /v1/{project_id}/protectables/{protectable_type}`.
#[utoipa::path(get, path = "/v1/{project_id}/protectables/{protectable_type}", tag = "karbor", summary = "A protectable type and its dependent types",
    params(("project_id" = String, Path, description = "Project (tenant) id"), ("protectable_type" = String, Path, description = "OS::Kubernetes::Pod")),
    responses((status = 200, description = "A protectable type and its dependent types", body = Object),
              (status = 400, description = "Bad request (Karbor fault body)", body = Object),
              (status = 401, description = "No or wrong X-Auth-Token", body = Object)),
    security(("karbor_token" = [])))]
async fn show_protectable(Path((_project, kind)): Path<(String, String)>) -> KResult<Json<Value>> {
    let deps = types::dependent_types(&kind).ok_or_else(invalid_type)?;
    Ok(Json(json!({
        "protectable_type": { "name": kind, "dependent_types": deps }
    })))
}

/// Karbor's `parameters` filter: a dict, which karborclient sends as its Python repr
/// (`{'namespace': 'shop'}`); JSON is taken too.
fn parameters(q: &HashMap<String, String>) -> KResult<serde_json::Map<String, Value>> {
    let Some(raw) = q.get("parameters") else {
        return Ok(serde_json::Map::new());
    };
    let parsed: Option<Value> = serde_json::from_str(raw)
        .ok()
        .or_else(|| serde_json::from_str(&raw.replace('\'', "\"")).ok());
    match parsed {
        Some(Value::Object(m)) => Ok(m),
        _ => Err(Fault::bad_request(
            "Invalid input received: The parameters must be a dict.",
        )),
    }
}

fn selection_of(params: &serde_json::Map<String, Value>) -> KResult<SelectionSpec> {
    let mut spec = SelectionSpec::default();
    for (k, v) in params {
        let Some(v) = v.as_str() else {
            return Err(Fault::bad_request(format!(
                "Invalid input received: parameter {k} must be a string."
            )));
        };
        match k.as_str() {
            "namespace" | "namespaces" => {
                spec.namespaces = Namespace::parse_list(v)
                    .map_err(|e| Fault::bad_request(format!("Invalid input received: {e}.")))?;
            }
            "label_selector" | "labels" => spec.label_selector = Some(v.to_string()),
            "field_selector" => spec.field_selector = Some(v.to_string()),
            other => {
                return Err(Fault::bad_request(format!(
                    "Invalid input received: unknown parameter {other:?} \
                     (known: namespace, label_selector, field_selector)."
                )))
            }
        }
    }
    Ok(spec)
}

/// Karbor's 400 for input it refuses.
pub(super) fn bad(message: impl std::fmt::Display) -> Fault {
    Fault::bad_request(format!("Invalid input received: {message}"))
}

/// Whether `view` holds, for each of `keys` the query gives, that text (Karbor's list
/// filters: exact match on a string field).
pub(super) fn matches_query(view: &Value, q: &HashMap<String, String>, keys: &[&str]) -> bool {
    keys.iter().all(|k| {
        q.get(*k)
            .is_none_or(|want| view.get(*k).and_then(Value::as_str) == Some(want.as_str()))
    })
}

/// The page of `views` after the one whose `id` is the query's `marker` (a 400 if none
/// is), at most `limit` long.
pub(super) fn paged(
    mut views: Vec<Value>,
    q: &HashMap<String, String>,
    limit: Option<usize>,
) -> KResult<Vec<Value>> {
    if let Some(marker) = q.get("marker") {
        let at = views
            .iter()
            .position(|v| v["id"].as_str() == Some(marker.as_str()))
            .ok_or_else(|| bad(format!("marker {marker} not found")))?;
        views.drain(..=at);
    }
    if let Some(l) = limit {
        views.truncate(l);
    }
    Ok(views)
}

pub(super) fn limit_of(q: &HashMap<String, String>) -> KResult<Option<usize>> {
    match q.get("limit") {
        None => Ok(None),
        Some(l) => match l.parse::<i64>() {
            Ok(n) if n > 0 => Ok(usize::try_from(n).ok()),
            Ok(_) => Err(Fault::bad_request(
                "Invalid input received: limit param must be positive",
            )),
            Err(_) => Err(Fault::bad_request(
                "Invalid input received: limit param must be an integer",
            )),
        },
    }
}

/// `GET /v1/{project_id}/protectables/{protectable_type}/instances`: pods, in key order
/// (namespace, then name), paged by `marker` (the id of the last pod seen) and `limit`.
/// A page reads only its own pods and their dependents.
#[utoipa::path(get, path = "/v1/{project_id}/protectables/{protectable_type}/instances", tag = "karbor", summary = "Protectable instances (pods), paged by marker and limit",
    params(("project_id" = String, Path, description = "Project (tenant) id"), ("protectable_type" = String, Path, description = "OS::Kubernetes::Pod")),
    responses((status = 200, description = "Protectable instances (pods), paged by marker and limit", body = Object),
              (status = 400, description = "Bad request (Karbor fault body)", body = Object),
              (status = 401, description = "No or wrong X-Auth-Token", body = Object),
              (status = 503, description = "Busy: retry after Retry-After (Karbor fault body)", body = Object)),
    security(("karbor_token" = [])))]
async fn list_instances(
    State(s): State<KarborState>,
    repr: Repr,
    Path((_project, kind)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> KResult<Response> {
    let params = parameters(&q)?;
    let (limit, clamped) = super::http::page_size(limit_of(&q)?);
    types::dependent_types(&kind).ok_or_else(invalid_type)?;
    if kind != "OS::Kubernetes::Pod" {
        return Err(Fault::new(
            StatusCode::NOT_IMPLEMENTED,
            format!(
                "instances of {kind} are not listed: they are protected as dependents of \
                 OS::Kubernetes::Pod (see its dependent_resources)"
            ),
        ));
    }
    let selection = selection_of(&params)?;
    let after = match q.get("marker") {
        None => None,
        Some(m) => Some(m.parse::<PodSpecifier>().map_err(|_| {
            Fault::bad_request(format!("Invalid input received: marker {m:?} is no pod id"))
        })?),
    };
    let page = s
        .service
        .engine()
        .pod_page(&selection, &PageRequest { after, limit })
        .await
        .map_err(|e| match e {
            EngineError::NotFound(m) => Fault::bad_request(format!("Invalid input received: {m}")),
            e => e.into(),
        })?;
    if repr == Repr::Podbank {
        let mut response = Json(crate::engine::PodList::from(page)).into_response();
        if let Some(w) = clamped {
            response.headers_mut().insert(header::WARNING, w);
        }
        return Ok(response);
    }
    let instances: Vec<Value> = page.items.iter().map(types::pod_detail_instance).collect();
    let mut body = json!({ "instances": instances });
    if let (true, Some(last)) = (page.more, page.items.last()) {
        let href = format!(
            "{}{}?limit={limit}&marker={}",
            base_url(&headers),
            uri.path(),
            last.id
        );
        body["instances_links"] = json!([{ "rel": "next", "href": href }]);
    }
    let mut response = Json(body).into_response();
    if let Some(w) = clamped {
        response.headers_mut().insert(header::WARNING, w);
    }
    Ok(response)
}

/// `GET /v1/{project_id}/protectables/{protectable_type}/instances/{id}`: one pod, by uid
/// (or `<namespace>/<name>`, slash percent-encoded).
#[utoipa::path(get, path = "/v1/{project_id}/protectables/{protectable_type}/instances/{id}", tag = "karbor", summary = "One protectable instance and its dependents",
    params(("project_id" = String, Path, description = "Project (tenant) id"), ("protectable_type" = String, Path, description = "OS::Kubernetes::Pod"), ("id" = String, Path, description = "Pod uid or namespace/name")),
    responses((status = 200, description = "One protectable instance and its dependents", body = Object),
              (status = 400, description = "Bad request (Karbor fault body)", body = Object),
              (status = 401, description = "No or wrong X-Auth-Token", body = Object),
              (status = 404, description = "Not found (Karbor fault body)", body = Object),
              (status = 503, description = "Busy: retry after Retry-After (Karbor fault body)", body = Object)),
    security(("karbor_token" = [])))]
async fn show_instance(
    State(s): State<KarborState>,
    repr: Repr,
    Path((_project, kind, id)): Path<(String, String, String)>,
) -> KResult<Response> {
    types::dependent_types(&kind).ok_or_else(invalid_type)?;
    if kind != "OS::Kubernetes::Pod" {
        return Err(Fault::new(
            StatusCode::NOT_IMPLEMENTED,
            format!("instances of {kind} are shown as dependents of OS::Kubernetes::Pod"),
        ));
    }
    let pod: PodSpecifier = id.parse()?;
    let detail = s.service.engine().pod(&pod).await?;
    if repr == Repr::Podbank {
        return Ok(Json(detail).into_response());
    }
    Ok(Json(json!({ "instance": types::pod_detail_instance(&detail) })).into_response())
}

/// `GET /v1/{project_id}/providers`.
#[utoipa::path(get, path = "/v1/{project_id}/providers", tag = "karbor", summary = "Protection providers",
    params(("project_id" = String, Path, description = "Project (tenant) id")),
    responses((status = 200, description = "Protection providers", body = Object),
              (status = 401, description = "No or wrong X-Auth-Token", body = Object)),
    security(("karbor_token" = [])))]
async fn list_providers(
    Path(_project): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Json<Value> {
    let provider = types::provider();
    let keep = matches_query(&provider, &q, &["name", "description"])
        && q.get("marker").is_none_or(|m| m != types::PROVIDER_ID);
    let providers = if keep { vec![provider] } else { Vec::new() };
    Json(json!({ "providers": providers }))
}

/// `GET /v1/{project_id}/providers/{provider_id}`.
#[utoipa::path(get, path = "/v1/{project_id}/providers/{provider_id}", tag = "karbor", summary = "The provider and its options, restore and saved-info schemas",
    params(("project_id" = String, Path, description = "Project (tenant) id"), ("provider_id" = String, Path, description = "podbank's provider id")),
    responses((status = 200, description = "The provider and its options, restore and saved-info schemas", body = Object),
              (status = 401, description = "No or wrong X-Auth-Token", body = Object),
              (status = 404, description = "Not found (Karbor fault body)", body = Object)),
    security(("karbor_token" = [])))]
async fn show_provider(Path((_project, id)): Path<(String, String)>) -> KResult<Json<Value>> {
    if id != types::PROVIDER_ID {
        return Err(Fault::not_found(format!(
            "Provider {id} could not be found."
        )));
    }
    Ok(Json(json!({ "provider": types::provider() })))
}

/// Runs a read of etcd or the bank once it has its turn; refuses it with Karbor's 503
/// fault and `Retry-After` when too many run and wait.
async fn take_turn(State(s): State<KarborState>, req: Request, next: Next) -> Response {
    match s.service.reads().enter().await {
        Ok(_turn) => next.run(req).await,
        Err(over) => super::http::overloaded(
            Fault::new(StatusCode::SERVICE_UNAVAILABLE, over.to_string()).with_code("overloaded"),
        ),
    }
}
