//! Karbor's operation logs: `/v1/{project_id}/operation_logs`, read only. The logs are
//! written by the operations themselves (see [`crate::engine::operation_logs`]) and kept
//! in the bank; a project sees its own, and those of operations started from the agent's
//! own API (which has no projects: their `project_id` is empty).
//!
//! Ids are shown as Karbor shows them: checkpoints and restores by their Karbor UUIDs,
//! plans by their Karbor ids; `status` in Karbor's words for each operation type
//! (`protecting` → `available` | `error`, `in_progress` → `success` | `fail`,
//! `deleting` → `deleted` | `error`, `verifying` → `success` | `failed`).

use std::collections::HashMap;

use axum::extract::{Extension, Path, Query, State};
use axum::Json;
use serde_json::{json, Value};

use super::access::Scope;
use super::ids;
use super::plans::AnyPlan;
use super::types::{Fault, PROVIDER_ID};
use super::{limit_of, paged, KResult, KarborState};
use crate::engine::operation_logs::OperationLog;

/// The filters `GET .../operation_logs` takes (exact match).
const FILTERS: [&str; 7] = [
    "status",
    "operation_type",
    "checkpoint_id",
    "plan_id",
    "restore_id",
    "scheduled_operation_id",
    "provider_id",
];

/// Karbor's view of a log.
fn view(log: &OperationLog, plans: &[AnyPlan]) -> Value {
    let plan_id = log.plan.as_ref().map(|recorded| {
        plans
            .iter()
            .find(|p| &p.recorded_as() == recorded)
            .map(|p| p.id().to_string())
            .unwrap_or_else(|| recorded.clone())
    });
    let mut extra = log.extra_info.clone();
    if let Some(v) = &log.verification_id {
        extra.insert("verification_id".into(), json!(v));
    }
    if let Some(c) = &log.checkpoint_id {
        extra.insert("podbank_checkpoint_id".into(), json!(c.to_string()));
    }
    if let Some(r) = &log.restore_id {
        extra.insert("podbank_restore_id".into(), json!(r.to_string()));
    }
    json!({
        "id": log.id,
        "project_id": log.project_id,
        "operation_type": log.operation_type.label(),
        "checkpoint_id": log.checkpoint_id.as_ref().map(ids::checkpoint_uuid),
        "plan_id": plan_id,
        "provider_id": PROVIDER_ID,
        "restore_id": log.restore_id.as_ref().map(ids::restore_uuid),
        "scheduled_operation_id": log.scheduled_operation_id,
        "status": log.status(),
        "error_info": log.error_info,
        "extra_info": extra,
        "started_at": log.started_at.to_rfc3339(),
        "ended_at": log.ended_at.map(|t| t.to_rfc3339()),
    })
}

/// The logs `project` sees, newest first.
async fn project_logs(s: &KarborState, project: &str, scope: &Scope) -> KResult<Vec<OperationLog>> {
    let mut logs: Vec<OperationLog> = s
        .service
        .engine()
        .operation_logs()
        .await?
        .into_iter()
        .filter(|l| {
            // Logs of the agent's own operations (no project) are the admin's.
            l.project_id == project || (l.project_id.is_empty() && *scope == Scope::All)
        })
        .collect();
    logs.reverse();
    Ok(logs)
}

/// `GET /v1/{project_id}/operation_logs`: filters `status`, `operation_type`,
/// `checkpoint_id`, `plan_id`, `restore_id`, `scheduled_operation_id`, `provider_id`;
/// newest first; paging by `marker` and `limit`.
#[utoipa::path(get, path = "/v1/{project_id}/operation_logs", tag = "karbor", summary = "Operation logs, newest first, paged",
    params(("project_id" = String, Path, description = "Project (tenant) id")),
    responses((status = 200, description = "Operation logs, newest first, paged", body = Object),
              (status = 400, description = "Bad request (Karbor fault body)", body = Object),
              (status = 401, description = "No or wrong X-Auth-Token", body = Object)),
    security(("karbor_token" = [])))]
pub(super) async fn list(
    State(s): State<KarborState>,
    Extension(scope): Extension<Scope>,
    Path(project): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> KResult<Json<Value>> {
    let limit = limit_of(&q)?;
    let plans = super::plans::all_plans(&s, &project, &scope).await?;
    let views: Vec<Value> = project_logs(&s, &project, &scope)
        .await?
        .iter()
        .map(|l| view(l, &plans))
        .filter(|v| super::matches_query(v, &q, &FILTERS))
        .collect();
    let views = paged(views, &q, limit)?;
    Ok(Json(json!({ "operation_logs": views })))
}

/// `GET /v1/{project_id}/operation_logs/{operation_log_id}`.
#[utoipa::path(get, path = "/v1/{project_id}/operation_logs/{operation_log_id}", tag = "karbor", summary = "An operation log",
    params(("project_id" = String, Path, description = "Project (tenant) id"), ("operation_log_id" = String, Path, description = "Operation log id")),
    responses((status = 200, description = "An operation log", body = Object),
              (status = 401, description = "No or wrong X-Auth-Token", body = Object),
              (status = 404, description = "Not found (Karbor fault body)", body = Object)),
    security(("karbor_token" = [])))]
pub(super) async fn show(
    State(s): State<KarborState>,
    Extension(scope): Extension<Scope>,
    Path((project, id)): Path<(String, String)>,
) -> KResult<Json<Value>> {
    let wanted = id.to_ascii_lowercase();
    let log = project_logs(&s, &project, &scope)
        .await?
        .into_iter()
        .find(|l| l.id == wanted)
        .ok_or_else(|| Fault::not_found(format!("Operation log {id} could not be found.")))?;
    let plans = super::plans::all_plans(&s, &project, &scope).await?;
    Ok(Json(json!({ "operation_log": view(&log, &plans) })))
}
