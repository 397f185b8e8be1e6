//! The agent's HTTP API (axum), and its OpenAPI document, built from the same handler
//! declarations so that the two cannot drift apart.
//!
//! Every resource is served once, at Karbor's route ([`super::karbor`]), in Karbor's bodies
//! or, for a caller that asks with `Accept: application/vnd.podbank+json` (the CLI's
//! `--agent` mode), in podbank's ([`crate::api`]'s, the same types its client reads). Here
//! are only the routes Karbor has no resource for: `/v1/operations[/{id}]` (the live
//! progress of this replica's long operations, which podbank's creates answer `202
//! Accepted` with, a `status_url` and a `Location` header), `/v1/openapi.json`, and the open
//! `/healthz`, `/readyz` and `/metrics`, for probes and scrapers.
//!
//! `/v1/...` needs the static token (compared in constant time) or with `auth: keystone` a
//! Keystone token (see [`super::auth`]) when one is configured, and a verified client
//! certificate when mTLS is on. Errors are JSON: `{"error": {"code": "...", "message":
//! "..."}}`; an unknown route has the code `no_route`.

use std::sync::{Arc, OnceLock};

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::Value;
use sha2::{Digest, Sha256};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{require_auth, AuthLayer, Dialect, Gate, KeystoneTokens, Verifier};
use super::operations::OperationRecord;
use super::service::ServiceError;
use super::Service;
use crate::api::{status_of, Accepted, ErrorBody, ErrorDetail, Items, Readiness};
use crate::engine::{EngineError, ReadinessCheck, MAX_PAGE};

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

/// A long operation started: `202 Accepted`, the operation, and where to follow it.
pub(super) fn accepted(op: OperationRecord) -> Response {
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

type ApiResult<T> = Result<T, ApiError>;

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

async fn no_route() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_route",
        "no such endpoint: see /v1/openapi.json",
    )
}

#[derive(OpenApi)]
#[openapi(
    info(title = "podbank agent", description = "Protect Kubernetes pods and their Cinder volumes: Karbor's protectables, checkpoints and restores, plans and operations. Every resource has one route, Karbor's; with `Accept: application/vnd.podbank+json` a route answers podbank's representation of the same operation (podbank's views and requests; creates answer 202 with the operation to follow at /v1/operations/{id}; errors as {\"error\": {\"code\", \"message\"}}), which the CLI's --agent mode reads."),
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
    // The resources (protectables, plans, checkpoints, restores, ...) are Karbor's routes
    // (`super::karbor`), in Karbor's bodies or podbank's own; here only what Karbor has
    // no resource for: the live operations of this replica and this document.
    let v1 = OpenApiRouter::new()
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
