//! The agent's HTTP API (axum), and its OpenAPI document, built from the same handler
//! declarations so that the two cannot drift apart. The bodies are [`crate::api`]'s, the
//! same types its client reads.
//!
//! `/v1/...` needs `Authorization: Bearer <token>` (the static token, compared in constant
//! time, or with `auth: keystone` a Keystone token; see [`super::auth`]) when a token is
//! configured, and a verified client certificate when mTLS is on; `/healthz`,
//! `/readyz` and `/metrics` are open, for probes and scrapers. Long operations answer
//! `202 Accepted` with the operation record, a `status_url` and a `Location` header
//! pointing at `/v1/operations/{id}`; a request that can be known to fail (bad id, bad
//! selector, unknown checkpoint or restore, invalid parameters) is answered 4xx at once,
//! never accepted.
//!
//! Errors are JSON: `{"error": {"code": "...", "message": "..."}}`; an unknown route has
//! the code `no_route`.

use std::sync::{Arc, OnceLock};

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{require_auth, AuthLayer, Dialect, Gate, KeystoneTokens, Verifier};
use super::operations::OperationRecord;
use super::service::ServiceError;
use super::Service;
use crate::api::{
    status_of, Accepted, ErrorBody, ErrorDetail, Items, PlanList, Readiness, Trigger,
};
use crate::engine::{
    CheckpointFilter, DependentsView, EngineError, PageRequest, PodList, PodSpecifier,
    ProtectRequest, ReadinessCheck, RestoreRequest, SelectionSpec, MAX_PAGE,
};
use crate::model::{CheckpointId, Namespace, RestoreId};

/// What every handler gets.
#[derive(Clone)]
pub struct ApiState {
    service: Arc<Service>,
    openapi: Arc<OnceLock<Value>>,
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub(super) fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
            },
        });
        let mut resp = (self.status, body).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let (status, code) = status_of(&e);
        ApiError::new(status, code, e.to_string())
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Engine(e) => e.into(),
            e @ ServiceError::UnknownPlan(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            e @ ServiceError::Busy(_) => ApiError::new(StatusCode::CONFLICT, "busy", e.to_string()),
            e => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                e.to_string(),
            ),
        }
    }
}

fn accepted(op: OperationRecord) -> Response {
    let url = format!("/v1/operations/{}", op.id);
    let location = HeaderValue::from_str(&url).ok();
    let mut resp = (
        StatusCode::ACCEPTED,
        Json(Accepted {
            operation: op,
            status_url: url,
        }),
    )
        .into_response();
    if let Some(l) = location {
        resp.headers_mut().insert(header::LOCATION, l);
    }
    resp
}

/// A checkpoint id from a URL: 400 when it cannot be one.
fn checkpoint_id(id: &str) -> Result<CheckpointId, ApiError> {
    id.parse()
        .map_err(|e: crate::model::IdError| ApiError::invalid(e.to_string()))
}

/// A restore id from a URL: 400 when it cannot be one.
fn restore_id(id: &str) -> Result<RestoreId, ApiError> {
    id.parse()
        .map_err(|e: crate::model::IdError| ApiError::invalid(e.to_string()))
}

/// Query of `GET /v1/protectables/OS::Kubernetes::Pod/instances`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InstancesQuery {
    /// Namespaces, comma-separated; all if absent.
    pub namespaces: Option<String>,
    /// Label selector.
    pub label_selector: Option<String>,
    /// Field selector.
    pub field_selector: Option<String>,
    /// Most pods returned (default and maximum 1000; more is clamped, with a `Warning`).
    pub limit: Option<usize>,
    /// The page after this pod (uid or `namespace/name`): the `next` of the page before.
    pub marker: Option<String>,
}

/// Runs a read of etcd or the bank once it has its turn; refuses it with 503 and
/// `Retry-After` when too many run and wait.
async fn take_turn(State(s): State<ApiState>, req: Request, next: Next) -> Response {
    match s.service.reads().enter().await {
        Ok(_turn) => next.run(req).await,
        Err(over) => overloaded(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            over.to_string(),
        )),
    }
}

/// `error` as a response that says when to try again.
pub(super) fn overloaded(error: impl IntoResponse) -> Response {
    let mut resp = error.into_response();
    resp.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(super::limit::RETRY_AFTER_SECONDS),
    );
    resp
}

/// The page size a request asks for, clamped to [`MAX_PAGE`] (also the default); a clamp
/// is said in a `Warning` header.
pub(super) fn page_size(limit: Option<usize>) -> (usize, Option<HeaderValue>) {
    match limit {
        None => (MAX_PAGE, None),
        Some(l) if l > MAX_PAGE => (
            MAX_PAGE,
            HeaderValue::from_str(&format!(
                "299 podbank \"limit {l} is above the maximum page of {MAX_PAGE}: {MAX_PAGE} \
                 returned\""
            ))
            .ok(),
        ),
        Some(l) => (l.max(1), None),
    }
}

/// Query of `GET /v1/checkpoints`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CheckpointsQuery {
    /// Only this plan's checkpoints.
    pub plan: Option<String>,
    /// Deleted checkpoints kept as tombstones too.
    #[serde(default)]
    pub all: bool,
}

type ApiResult<T> = Result<T, ApiError>;

fn json_body<T>(
    body: Result<Json<T>, axum::extract::rejection::JsonRejection>,
) -> Result<T, ApiError> {
    body.map(|Json(b)| b).map_err(bad_json)
}

/// Protectable resource types.
#[utoipa::path(get, path = "/v1/protectables", tag = "protectables",
    responses((status = 200, description = "Resource types", body = Items<String>)),
    security(("bearer" = [])))]
async fn protectable_types() -> Json<Items<String>> {
    Json(Items {
        items: vec![crate::model::ResourceKind::Pod.karbor().to_string()],
    })
}

/// Protectable pods, read from etcd.
#[utoipa::path(get, path = "/v1/protectables/OS::Kubernetes::Pod/instances", tag = "protectables",
    params(InstancesQuery),
    responses((status = 200, description = "Pods", body = Object),
              (status = 400, description = "Bad selector", body = ErrorBody)),
    security(("bearer" = [])))]
async fn list_instances(
    State(s): State<ApiState>,
    Query(q): Query<InstancesQuery>,
) -> ApiResult<Response> {
    let selection = SelectionSpec {
        namespaces: q
            .namespaces
            .map(|n| Namespace::parse_list(&n))
            .transpose()
            .map_err(|e| EngineError::Invalid(e.to_string()))?
            .unwrap_or_default(),
        label_selector: q.label_selector,
        field_selector: q.field_selector,
        ..SelectionSpec::default()
    };
    let (limit, clamped) = page_size(q.limit);
    let after = q.marker.map(|m| m.parse::<PodSpecifier>()).transpose()?;
    let page = s
        .service
        .engine()
        .pod_page(&selection, &PageRequest { after, limit })
        .await
        .map_err(|e| match e {
            EngineError::NotFound(m) => EngineError::Invalid(m),
            e => e,
        })?;
    let mut response = Json(PodList::from(page)).into_response();
    if let Some(w) = clamped {
        response.headers_mut().insert(header::WARNING, w);
    }
    Ok(response)
}

/// One protectable pod, by uid or `<namespace>/<name>` (slash percent-encoded).
#[utoipa::path(get, path = "/v1/protectables/OS::Kubernetes::Pod/instances/{id}", tag = "protectables",
    params(("id" = String, Path, description = "Pod uid or namespace/name")),
    responses((status = 200, description = "The pod", body = Object),
              (status = 404, description = "No such pod", body = ErrorBody)),
    security(("bearer" = [])))]
async fn show_instance(State(s): State<ApiState>, Path(id): Path<String>) -> ApiResult<Response> {
    let pod: PodSpecifier = id.parse()?;
    Ok(Json(s.service.engine().pod(&pod).await?).into_response())
}

/// A pod's dependents: its Cinder volumes, and its closure (owners, referenced objects, namespace).
#[utoipa::path(get, path = "/v1/protectables/OS::Kubernetes::Pod/instances/{id}/dependents", tag = "protectables",
    params(("id" = String, Path, description = "Pod uid or namespace/name")),
    responses((status = 200, description = "Dependents", body = Object),
              (status = 404, description = "No such pod", body = ErrorBody)),
    security(("bearer" = [])))]
async fn instance_dependents(
    State(s): State<ApiState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let pod: PodSpecifier = id.parse()?;
    let detail = s.service.engine().pod(&pod).await?;
    Ok(Json(DependentsView::from(detail)).into_response())
}

/// Checkpoints in the bank, oldest first.
#[utoipa::path(get, path = "/v1/checkpoints", tag = "checkpoints",
    params(CheckpointsQuery),
    responses((status = 200, description = "Checkpoints, oldest first, and unreadable manifests", body = Object)),
    security(("bearer" = [])))]
async fn list_checkpoints(
    State(s): State<ApiState>,
    Query(q): Query<CheckpointsQuery>,
) -> ApiResult<Response> {
    let filter = CheckpointFilter {
        plan: q.plan,
        all: q.all,
    };
    Ok(Json(s.service.engine().checkpoints(&filter).await?).into_response())
}

/// Take a checkpoint now (on demand).
#[utoipa::path(post, path = "/v1/checkpoints", tag = "checkpoints",
    request_body = ProtectRequest,
    responses((status = 202, description = "Started", body = Accepted),
              (status = 400, description = "Invalid parameters or selector", body = ErrorBody),
              (status = 503, description = "Shutting down", body = ErrorBody)),
    security(("bearer" = [])))]
async fn create_checkpoint(
    State(s): State<ApiState>,
    body: Result<Json<ProtectRequest>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Response> {
    let request: ProtectRequest = json_body(body)?;
    if let Some(refusal) = request.agent_refusal() {
        return Err(refusal.error("protect").into());
    }
    Ok(accepted(s.service.protect(request)?))
}

/// One checkpoint in full.
#[utoipa::path(get, path = "/v1/checkpoints/{id}", tag = "checkpoints",
    params(("id" = String, Path, description = "Checkpoint id")),
    responses((status = 200, description = "The checkpoint", body = Object),
              (status = 400, description = "Not a checkpoint id", body = ErrorBody),
              (status = 404, description = "No such checkpoint", body = ErrorBody)),
    security(("bearer" = [])))]
async fn show_checkpoint(State(s): State<ApiState>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = checkpoint_id(&id)?;
    Ok(Json(s.service.engine().checkpoint(&id).await?).into_response())
}

/// Delete a checkpoint and its Cinder backups.
#[utoipa::path(delete, path = "/v1/checkpoints/{id}", tag = "checkpoints",
    params(("id" = String, Path, description = "Checkpoint id")),
    responses((status = 202, description = "Started", body = Accepted),
              (status = 400, description = "Not a checkpoint id", body = ErrorBody),
              (status = 404, description = "No such checkpoint", body = ErrorBody),
              (status = 503, description = "Shutting down", body = ErrorBody)),
    security(("bearer" = [])))]
async fn delete_checkpoint(
    State(s): State<ApiState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = checkpoint_id(&id)?;
    Ok(accepted(s.service.delete_checkpoint(id).await?))
}

/// Restore records.
#[utoipa::path(get, path = "/v1/restores", tag = "restores",
    responses((status = 200, description = "Restores, oldest first", body = Object)),
    security(("bearer" = [])))]
async fn list_restores(State(s): State<ApiState>) -> ApiResult<Response> {
    Ok(Json(s.service.engine().restores().await?).into_response())
}

/// Restore from a checkpoint.
#[utoipa::path(post, path = "/v1/restores", tag = "restores",
    request_body = RestoreRequest,
    responses((status = 202, description = "Started", body = Accepted),
              (status = 400, description = "Invalid parameters", body = ErrorBody),
              (status = 404, description = "No such checkpoint", body = ErrorBody),
              (status = 503, description = "Shutting down", body = ErrorBody)),
    security(("bearer" = [])))]
async fn create_restore(
    State(s): State<ApiState>,
    body: Result<Json<RestoreRequest>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Response> {
    let request: RestoreRequest = json_body(body)?;
    if let Some(refusal) = request.agent_refusal() {
        return Err(refusal.error("restore").into());
    }
    Ok(accepted(s.service.restore(request).await?))
}

/// One restore in full.
#[utoipa::path(get, path = "/v1/restores/{id}", tag = "restores",
    params(("id" = String, Path, description = "Restore id")),
    responses((status = 200, description = "The restore", body = Object),
              (status = 400, description = "Not a restore id", body = ErrorBody),
              (status = 404, description = "No such restore", body = ErrorBody)),
    security(("bearer" = [])))]
async fn show_restore(State(s): State<ApiState>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = restore_id(&id)?;
    Ok(Json(s.service.engine().restore_record(&id).await?).into_response())
}

/// The configured plans.
#[utoipa::path(get, path = "/v1/plans", tag = "plans",
    responses((status = 200, description = "Plans", body = PlanList)),
    security(("bearer" = [])))]
async fn list_plans(State(s): State<ApiState>) -> Json<PlanList> {
    Json(PlanList {
        leader: s.service.is_leader(),
        items: s.service.plan_views(),
    })
}

/// Run a plan now (protect, then retention), on this replica.
#[utoipa::path(post, path = "/v1/plans/{name}/trigger", tag = "plans",
    params(("name" = String, Path, description = "Plan name")),
    responses((status = 202, description = "Started", body = Accepted),
              (status = 404, description = "No such plan", body = ErrorBody),
              (status = 409, description = "The plan is already running", body = ErrorBody),
              (status = 503, description = "Shutting down", body = ErrorBody)),
    security(("bearer" = [])))]
async fn trigger_plan(State(s): State<ApiState>, Path(name): Path<String>) -> ApiResult<Response> {
    Ok(accepted(s.service.trigger_plan(&name, Trigger::Manual)?))
}

/// Operations of this replica, newest first.
#[utoipa::path(get, path = "/v1/operations", tag = "operations",
    responses((status = 200, description = "Operations", body = Items<OperationRecord>)),
    security(("bearer" = [])))]
async fn list_operations(State(s): State<ApiState>) -> Json<Items<OperationRecord>> {
    Json(Items {
        items: s.service.operations().list(),
    })
}

/// One operation: the status URL of a 202.
#[utoipa::path(get, path = "/v1/operations/{id}", tag = "operations",
    params(("id" = String, Path, description = "Operation id")),
    responses((status = 200, description = "The operation", body = OperationRecord),
              (status = 404, description = "Unknown here (another replica's, or forgotten)", body = ErrorBody)),
    security(("bearer" = [])))]
async fn show_operation(
    State(s): State<ApiState>,
    Path(id): Path<String>,
) -> ApiResult<Json<OperationRecord>> {
    s.service.operations().get(&id).map(Json).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("operation {id} is not known to this replica"),
        )
    })
}

/// This document.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "meta",
    responses((status = 200, description = "OpenAPI 3 document", body = Object)),
    security(("bearer" = [])))]
async fn openapi_json(State(s): State<ApiState>) -> Json<Value> {
    Json(s.openapi.get().cloned().unwrap_or(Value::Null))
}

/// Liveness: the process serves HTTP.
#[utoipa::path(get, path = "/healthz", tag = "meta",
    responses((status = 200, description = "Alive", body = String)))]
async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: etcd and the bank answer, and the agent is not shutting down.
#[utoipa::path(get, path = "/readyz", tag = "meta",
    responses((status = 200, description = "Ready", body = Readiness),
              (status = 503, description = "Not ready", body = Readiness)))]
async fn readyz(State(s): State<ApiState>) -> Response {
    let mut checks = s.service.engine().readiness().await;
    let accepting = s.service.operations().is_accepting();
    checks.push(ReadinessCheck {
        name: "agent".into(),
        ok: accepting,
        message: (!accepting).then(|| "shutting down".to_string()),
    });
    let ready = checks.iter().all(|c| c.ok);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(Readiness { ready, checks })).into_response()
}

/// Prometheus metrics (OpenMetrics text).
#[utoipa::path(get, path = "/metrics", tag = "meta",
    responses((status = 200, description = "Metrics", body = String, content_type = "application/openmetrics-text")))]
async fn metrics(State(s): State<ApiState>) -> Response {
    (
        [(header::CONTENT_TYPE, super::metrics::CONTENT_TYPE)],
        s.service.render_metrics(),
    )
        .into_response()
}

fn bad_json(e: axum::extract::rejection::JsonRejection) -> ApiError {
    ApiError::invalid(e.body_text())
}

async fn no_route() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_route",
        "no such endpoint: see /v1/openapi.json",
    )
}

#[derive(OpenApi)]
#[openapi(
    info(title = "podbank agent", description = "Protect Kubernetes pods and their Cinder volumes: Karbor's protectables, checkpoints and restores, plans and operations."),
    modifiers(&BearerScheme),
    components(schemas(ErrorBody, ErrorDetail))
)]
struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        // What Karbor's client sends (`karbor --os-auth-token`); a bearer token is taken too.
        components.add_security_scheme(
            "karbor_token",
            SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Header(
                utoipa::openapi::security::ApiKeyValue::new("X-Auth-Token"),
            )),
        );
    }
}

/// How `/v1` callers authenticate; every method set must pass.
#[derive(Debug, Default)]
pub struct Auth<'a> {
    /// The bearer token required, if any (`auth: token`; ignored with `keystone`).
    pub token: Option<&'a [u8]>,
    /// Whether a client certificate, verified by the TLS layer, is required (mTLS).
    pub client_cert: bool,
    /// Keystone validates the tokens (`auth: keystone`) instead of the static token.
    pub keystone: Option<KeystoneTokens>,
}

/// The router of the whole API with a bearer token, and its OpenAPI document.
///
/// # Arguments
/// * `service` - the agent's core.
/// * `token` - the bearer token `/v1` requires; `None` leaves `/v1` open.
pub fn router(service: Arc<Service>, token: Option<&[u8]>) -> (Router, utoipa::openapi::OpenApi) {
    router_with_auth(
        service,
        Auth {
            token,
            ..Auth::default()
        },
    )
}

/// The router of the whole API, and its OpenAPI document.
///
/// # Arguments
/// * `service` - the agent's core.
/// * `auth` - what `/v1` requires.
pub fn router_with_auth(
    service: Arc<Service>,
    auth: Auth<'_>,
) -> (Router, utoipa::openapi::OpenApi) {
    let verifier = match auth.keystone {
        Some(tokens) => Verifier::Keystone(Box::new(tokens)),
        None => Verifier::Static(auth.token.map(|t| Sha256::digest(t).into())),
    };
    let gate = Arc::new(Gate::new(verifier, auth.client_cert));
    let state = ApiState {
        service,
        openapi: Arc::new(OnceLock::new()),
    };
    // Reads of etcd and the bank take a turn (see `limit`).
    let reads = OpenApiRouter::new()
        .routes(routes!(list_instances))
        .routes(routes!(show_instance))
        .routes(routes!(instance_dependents))
        .routes(routes!(show_checkpoint, delete_checkpoint))
        .route_layer(middleware::from_fn_with_state(state.clone(), take_turn));
    let v1 = OpenApiRouter::new()
        .routes(routes!(protectable_types))
        .merge(reads)
        .routes(routes!(list_checkpoints, create_checkpoint))
        .routes(routes!(list_restores, create_restore))
        .routes(routes!(show_restore))
        .routes(routes!(list_plans))
        .routes(routes!(trigger_plan))
        .routes(routes!(list_operations))
        .routes(routes!(show_operation))
        .routes(routes!(openapi_json))
        .route_layer(middleware::from_fn_with_state(
            AuthLayer::new(Arc::clone(&gate), Dialect::Podbank),
            require_auth,
        ));
    let open = OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics));
    let (router, api) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(v1)
        .merge(open)
        .fallback(no_route)
        .with_state(state.clone())
        .split_for_parts();
    let (karbor, karbor_api) = super::karbor::router(Arc::clone(&state.service), gate);
    let router = router.merge(karbor);
    let mut api = api;
    api.merge(karbor_api);
    let doc = serde_json::to_value(&api).unwrap_or(Value::Null);
    let _ = state.openapi.set(doc);
    (router, api)
}
