//! podbank's own representation of the resources Karbor's routes serve, for a caller that
//! asks for it with `Accept: application/vnd.podbank+json` ([`PODBANK_JSON`]): the CLI's
//! `--agent` mode. The same route and the same [`Service`] call as Karbor's body; only
//! what goes in and out differs:
//!
//! - answers are the engine's views (`PodList`, `PodDetail`, `CheckpointList`,
//!   `CheckpointView`, `RestoreList`, `RestoreView`, `PlanList`), not Karbor's bodies;
//! - creates take podbank's requests (`ProtectRequest`, `{"run_plan": name}`,
//!   `RestoreRequest`) and answer `202 Accepted` with the operation to follow at
//!   `/v1/operations/{id}` (live progress, which Karbor has no resource for);
//! - errors are podbank's error bodies ([`podbank_errors`]).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Request};
use axum::http::{header, request::Parts, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

use super::access::Scope;
use super::types::{ErrorCode, Fault};
use super::{bad, KResult};
use crate::agent::http::{accepted, ApiError};
use crate::agent::Service;
use crate::api::{code_of_status, PlanList, Trigger};
use crate::engine::{
    CheckpointFilter, CheckpointView, EngineError, ProtectRequest, RestoreRequest, RestoreView,
};
use crate::model::{CheckpointId, RestoreId};

pub use crate::api::PODBANK_JSON;

/// Which representation a caller asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repr {
    /// Karbor's bodies (python-karborclient, and every caller that does not say).
    Karbor,
    /// podbank's views and requests (`Accept: application/vnd.podbank+json`).
    Podbank,
}

impl<S: Send + Sync> FromRequestParts<S> for Repr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Repr, Self::Rejection> {
        Ok(if asks_for_podbank(&parts.headers) {
            Repr::Podbank
        } else {
            Repr::Karbor
        })
    }
}

/// Whether a request's `Accept` names podbank's representation.
pub fn asks_for_podbank(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|m| m.split(';').next().map(str::trim) == Some(PODBANK_JSON))
}

/// A request body of podbank's, read from the JSON Karbor's handler took.
fn request<T: for<'de> Deserialize<'de>>(body: Value, what: &str) -> KResult<T> {
    serde_json::from_value(body).map_err(|e| bad(format!("{what}: {e}")))
}

/// `POST .../checkpoints`: a protect (`ProtectRequest`), or a run of a configured plan
/// (`{"run_plan": "<name>"}`: protect, then the plan's retention).
pub(super) fn create_checkpoint(
    service: &Arc<Service>,
    project: &str,
    scope: &Scope,
    body: Value,
) -> KResult<Response> {
    if let Some(name) = body.get("run_plan") {
        let name = name
            .as_str()
            .ok_or_else(|| bad("run_plan must be a plan's name"))?;
        // The configured plans are the operator's: a project's caller does not see them.
        if *scope != Scope::All {
            return Err(Fault::not_found(format!("Plan {name} could not be found.")));
        }
        return Ok(accepted(service.trigger_plan(name, Trigger::Manual)?));
    }
    let mut request: ProtectRequest = request(body, "the protect request")?;
    request.project_id = project.to_string();
    if let Some(refusal) = request.agent_refusal() {
        return Err(Fault::from(refusal.error("protect")));
    }
    if let Some(plan) = &request.plan {
        let configured = service.plans().iter().find(|p| &p.name == plan);
        let Some(configured) = configured.filter(|_| *scope == Scope::All) else {
            return Err(Fault::not_found(format!("Plan {plan} could not be found.")));
        };
        // A checkpoint of the plan is taken as the plan's own runs are: with its hooks
        // (an unfrozen database is no checkpoint its operator meant to keep).
        request.hooks = configured.hooks.clone();
    }
    Ok(accepted(service.start_protect_in(project, request)?))
}

/// `GET .../checkpoints`: podbank's filters `plan` (the name checkpoints record) and `all`
/// (tombstones too), oldest first, with what could not be read.
pub(super) async fn list_checkpoints(
    service: &Arc<Service>,
    scope: &Scope,
    q: &HashMap<String, String>,
) -> KResult<Response> {
    let all = match q.get("all").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => return Err(bad(format!("all={other:?}: expected true or false"))),
    };
    let filter = CheckpointFilter {
        plan: q.get("plan").cloned(),
        all,
    };
    let mut list = service.engine().checkpoints(&filter).await?;
    list.items.retain(|c| scope.sees(&c.project_id));
    Ok(Json(list).into_response())
}

/// `GET .../checkpoints/{id}`: the checkpoint in full.
pub(super) async fn show_checkpoint(
    service: &Arc<Service>,
    scope: &Scope,
    id: &CheckpointId,
) -> KResult<Response> {
    Ok(Json(visible_checkpoint(service, scope, id).await?).into_response())
}

/// The checkpoint `id`, if `scope` sees it: another project's is not found, as an unknown
/// one (its id does not leak).
pub(super) async fn visible_checkpoint(
    service: &Arc<Service>,
    scope: &Scope,
    id: &CheckpointId,
) -> Result<CheckpointView, EngineError> {
    let cp = service.engine().checkpoint(id).await?;
    if scope.sees(&cp.project_id) {
        Ok(cp)
    } else {
        Err(EngineError::NotFound(format!("no checkpoint {id}")))
    }
}

/// Refuses, as not found, an operation on checkpoint `id` that `scope` does not see. The
/// admin sees everything: nothing is read for it, so the operation's own checks (is the
/// agent accepting work, does the checkpoint exist) come first, in their order.
pub(super) async fn check_visible(
    service: &Arc<Service>,
    scope: &Scope,
    id: &CheckpointId,
) -> Result<(), EngineError> {
    if *scope == Scope::All {
        return Ok(());
    }
    visible_checkpoint(service, scope, id).await.map(|_| ())
}

/// The restore `id`, if `scope` sees it (else not found, as an unknown one).
pub(super) async fn visible_restore(
    service: &Arc<Service>,
    scope: &Scope,
    id: &RestoreId,
) -> Result<RestoreView, EngineError> {
    let r = service.engine().restore_record(id).await?;
    if scope.sees(&r.project_id) {
        Ok(r)
    } else {
        Err(EngineError::NotFound(format!("no restore {id}")))
    }
}

/// `DELETE .../checkpoints/{id}`: the operation deleting it.
pub(super) async fn delete_checkpoint(
    service: &Arc<Service>,
    project: &str,
    scope: &Scope,
    id: CheckpointId,
) -> KResult<Response> {
    check_visible(service, scope, &id).await?;
    Ok(accepted(service.delete_checkpoint_in(project, id).await?))
}

/// `POST .../restores`: a `RestoreRequest`.
pub(super) async fn create_restore(
    service: &Arc<Service>,
    project: &str,
    scope: &Scope,
    body: Value,
) -> KResult<Response> {
    let mut request: RestoreRequest = request(body, "the restore request")?;
    check_visible(service, scope, &request.checkpoint_id).await?;
    request.project_id = project.to_string();
    if let Some(refusal) = request.agent_refusal() {
        return Err(Fault::from(refusal.error("restore")));
    }
    Ok(accepted(service.restore_in(project, request).await?))
}

/// `GET .../restores`: the restore records, oldest first.
pub(super) async fn list_restores(service: &Arc<Service>, scope: &Scope) -> KResult<Response> {
    let mut list = service.engine().restores().await?;
    list.items.retain(|r| scope.sees(&r.project_id));
    Ok(Json(list).into_response())
}

/// `GET .../restores/{id}`: the restore in full.
pub(super) async fn show_restore(
    service: &Arc<Service>,
    scope: &Scope,
    id: &RestoreId,
) -> KResult<Response> {
    Ok(Json(visible_restore(service, scope, id).await?).into_response())
}

/// `GET .../plans`: the config file's plans, with their schedules and last runs, and
/// whether this replica leads.
pub(super) fn list_plans(service: &Arc<Service>, scope: &Scope) -> Response {
    Json(PlanList {
        leader: service.is_leader(),
        // The configured plans are the operator's.
        items: if *scope == Scope::All {
            service.plan_views()
        } else {
            Vec::new()
        },
    })
    .into_response()
}

/// A Karbor fault answered to a caller that asked for podbank's representation, as
/// podbank's error body (`{"error": {"code", "message"}}`, the code from the status), so
/// that one representation is one format, errors included.
pub(super) async fn podbank_errors(repr: Repr, req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    if repr == Repr::Karbor || !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    // Fault bodies are a message long; a bound keeps a stray big body from being held.
    let bytes = match axum::body::to_bytes(body, 64 * 1024).await {
        Ok(b) => b,
        Err(e) => return ApiError::new(status, "failed", e.to_string()).into_response(),
    };
    let message = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| {
            v.as_object()?
                .values()
                .next()?
                .get("message")?
                .as_str()
                .map(String::from)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
    let code = parts
        .extensions
        .get::<ErrorCode>()
        .map_or_else(|| code_of_status(status.as_u16()), |c| c.0);
    let mut fresh = ApiError::new(status, code, message).into_response();
    // Retry-After and the like stay; the body and its framing are the new answer's.
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_TYPE);
    parts.headers.remove(header::WWW_AUTHENTICATE);
    for (name, value) in &parts.headers {
        fresh.headers_mut().insert(name.clone(), value.clone());
    }
    fresh
}
