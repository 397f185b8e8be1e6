//! Karbor's checkpoints (`/v1/{project_id}/providers/{provider_id}/checkpoints`) and
//! restores (`/v1/{project_id}/restores`), over the same [`Service`](super::Service)
//! operations as the agent's own API.
//!
//! Karbor answers a create with the new checkpoint (or restore) at once, `protecting`
//! (`in_progress`); podbank gives the protect (restore) its id before it starts, and until
//! the bank holds the record, `show` answers from the operation: `protecting` while it
//! runs, `error` (`fail`) with its reason once it failed.

use std::collections::HashMap;

use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{json, Map, Value};

use super::access::Scope;
use super::ids;
use super::plans::{find_plan, AnyPlan, POD};
use super::podbank::{self, Repr};
use super::types::{Fault, PROVIDER_ID};
use super::{bad, limit_of, paged, KResult, KarborState};
use crate::api::{OperationRecord, OperationState};
use crate::engine::{CheckpointFilter, CheckpointView, EngineError, RestoreRequest, RestoreView};
use crate::model::{
    CheckpointId, CheckpointStatus, Outcome, ResourceStatus, RestoreId, RestoreStatus,
};
use crate::protection::schema::RestoreParams;

/// A checkpoint or restore created through this API whose record may not be in the bank
/// yet: the operation making it, and what Karbor shows of it meanwhile.
#[derive(Debug, Clone)]
pub(super) struct Pending {
    /// A checkpoint or a restore.
    kind: PendingKind,
    /// The operation.
    operation: String,
    /// The project that asked.
    project: String,
    /// The plan (checkpoints) or checkpoint (restores), as Karbor names it.
    parent: Value,
    /// What was asked (restores: the parameters).
    parameters: Value,
    /// When.
    created: DateTime<Utc>,
}

/// What a [`Pending`] stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PendingKind {
    /// A checkpoint being protected.
    Checkpoint,
    /// A restore.
    Restore,
}

fn check_provider(id: &str) -> KResult<()> {
    if id == PROVIDER_ID {
        Ok(())
    } else {
        Err(Fault::not_found(format!(
            "Provider {id} could not be found."
        )))
    }
}

fn pending(s: &KarborState, key: &str, kind: PendingKind) -> Option<Pending> {
    s.pending
        .lock()
        .ok()
        .and_then(|m| m.get(key).cloned())
        .filter(|p| p.kind == kind)
}

fn remember(s: &KarborState, key: String, p: Pending) {
    if let Ok(mut m) = s.pending.lock() {
        m.insert(key, p);
    }
}

/// Where a pending item stands: the operation's state, and why it failed.
fn operation_state(s: &KarborState, p: &Pending) -> (OperationState, String) {
    match s.service.operations().get(&p.operation) {
        Some(OperationRecord {
            state, error: e, ..
        }) => (state, e.unwrap_or_default()),
        None => (
            OperationState::Failed,
            format!("operation {} is no longer known to this agent", p.operation),
        ),
    }
}

/// The plan a checkpoint names, as Karbor shows it in `protection_plan`.
async fn plan_of(s: &KarborState, project: &str, recorded: &str) -> Value {
    // Naming the plan only: the configured plans too.
    let plans = super::plans::all_plans(s, project, &Scope::All)
        .await
        .unwrap_or_default();
    match plans.iter().find(|p| p.recorded_as() == recorded) {
        Some(p) => plan_ref(p),
        None => json!({
            "id": recorded,
            "name": recorded,
            "resources": [],
            "provider_id": PROVIDER_ID,
        }),
    }
}

fn plan_ref(p: &AnyPlan) -> Value {
    json!({
        "id": p.id().to_string(),
        "name": p.name(),
        "resources": p.resources(),
        "provider_id": PROVIDER_ID,
    })
}

/// Karbor's packed resource graph: `[{node: [type, id, name, extra]}, {node: [child]}]`,
/// each pod with its Cinder volumes below it.
fn resource_graph(cp: &CheckpointView) -> String {
    let mut nodes = Map::new();
    let mut adjacency = Map::new();
    let mut next = 0usize;
    let mut node = |nodes: &mut Map<String, Value>, v: Value| {
        let key = format!("0x{next:x}");
        next += 1;
        nodes.insert(key.clone(), v);
        key
    };
    for pod in cp
        .resources
        .iter()
        .filter(|r| r.kind == crate::model::ResourceType::Kube(crate::model::ResourceKind::Pod))
    {
        let name = format!("{}/{}", pod.namespace, pod.name);
        let key = node(&mut nodes, json!([POD, pod.uid, name, null]));
        let children: Vec<Value> = cp
            .volumes
            .iter()
            .filter(|v| !v.volume_id.is_empty() && v.pods.iter().any(|p| p.to_string() == name))
            .map(|v| {
                Value::String(node(
                    &mut nodes,
                    json!([
                        "OS::Cinder::Volume",
                        v.volume_id.to_string(),
                        v.pod_volume,
                        null
                    ]),
                ))
            })
            .collect();
        if !children.is_empty() {
            adjacency.insert(key, Value::Array(children));
        }
    }
    Value::Array(vec![Value::Object(nodes), Value::Object(adjacency)]).to_string()
}

/// Per resource, `<type>#<id>` → Karbor's protection status, and the reasons of those
/// that failed.
fn resources_status(cp: &CheckpointView) -> (Map<String, Value>, Map<String, Value>) {
    let mut status = Map::new();
    let mut reason = Map::new();
    for r in &cp.resources {
        let key = format!("{}#{}", r.kind.karbor(), r.uid);
        let label = match r.status {
            ResourceStatus::Protected => "available",
            ResourceStatus::Error | ResourceStatus::Missing => "error",
            ResourceStatus::NotProtected | ResourceStatus::Skipped => "skipped",
        };
        status.insert(key.clone(), json!(label));
        if !r.reason.is_empty() {
            reason.insert(key, json!(r.reason));
        }
    }
    for v in cp.volumes.iter().filter(|v| !v.volume_id.is_empty()) {
        let key = format!("OS::Cinder::Volume#{}", v.volume_id);
        status.insert(key.clone(), json!(v.status.label()));
        if !v.reason.is_empty() {
            reason.insert(key, json!(v.reason));
        }
    }
    (status, reason)
}

/// Karbor's view of a checkpoint the bank holds.
async fn checkpoint_view(s: &KarborState, project: &str, cp: &CheckpointView) -> Value {
    let (status, reason) = resources_status(cp);
    json!({
        "id": ids::checkpoint_uuid(&cp.id),
        "project_id": project,
        "status": cp.status.label(),
        "protection_plan": plan_of(s, project, &cp.plan).await,
        "resource_graph": resource_graph(cp),
        "created_at": cp.created_at,
        "extra_info": {
            "podbank_id": cp.id.to_string(),
            "backup_name": cp.backup_name,
            "description": cp.description,
            "etcd_revision": cp.etcd_revision.get(),
            "selection": cp.selection,
            "reason": cp.reason,
            "resources_status": status,
            "resources_reason": reason,
        },
    })
}

/// Karbor's view of a checkpoint that is not in the bank yet.
fn pending_checkpoint_view(s: &KarborState, uuid: &str, p: &Pending) -> Value {
    let (state, error) = operation_state(s, p);
    let status = match state {
        OperationState::Running | OperationState::Succeeded => CheckpointStatus::Protecting,
        OperationState::Failed | OperationState::Cancelled => CheckpointStatus::Error,
    };
    json!({
        "id": uuid,
        "project_id": p.project,
        "status": status.label(),
        "protection_plan": p.parent,
        "resource_graph": "[{}, {}]",
        "created_at": p.created.to_rfc3339(),
        "extra_info": { "operation": p.operation, "reason": error },
    })
}

fn checkpoint_id_of(id: &str) -> KResult<CheckpointId> {
    ids::checkpoint_of(id)
        .ok_or_else(|| Fault::not_found(format!("Checkpoint {id} could not be found.")))
}

/// `POST /v1/{project_id}/providers/{provider_id}/checkpoints`: protect a plan's pods.
#[utoipa::path(post, path = "/v1/{project_id}/providers/{provider_id}/checkpoints", tag = "karbor", summary = "Protect a plan: a checkpoint, protecting",
    params(("project_id" = String, Path, description = "Project (tenant) id"), ("provider_id" = String, Path, description = "podbank's provider id")),
    request_body(content = Object, description = "Karbor's request body"),
    responses((status = 200, description = "Protect a plan: a checkpoint, protecting", body = Object),
              (status = 400, description = "Bad request (Karbor fault body)", body = Object),
              (status = 401, description = "No or wrong X-Auth-Token", body = Object),
              (status = 404, description = "Not found (Karbor fault body)", body = Object)),
    security(("karbor_token" = [])))]
pub(super) async fn create(
    State(s): State<KarborState>,
    Extension(scope): Extension<Scope>,
    repr: Repr,
    Path((project, provider)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> KResult<Response> {
    check_provider(&provider)?;
    if repr == Repr::Podbank {
        return podbank::create_checkpoint(&s.service, &project, &scope, body);
    }
    let b = body
        .get("checkpoint")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            Fault::bad_request("Missing required element 'checkpoint' in request body.")
        })?;
    let plan_id = b
        .get("plan_id")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("plan_id is required"))?;
    let extra = b.get("extra_info").or_else(|| b.get("extra-info"));
    if let Some(e) = extra.filter(|e| !e.is_null() && !e.is_object()) {
        return Err(bad(format!("extra_info must be a dict, not {e}")));
    }
    let plan = find_plan(&s, &project, &scope, plan_id).await?;
    let mut request = match &plan {
        AnyPlan::Configured(p) => p.protect_request(),
        AnyPlan::Stored(p) => crate::engine::plans::stored_plan_request(p)
            .map_err(|e| Fault::bad_request(e.to_string()))?,
    };
    let id = CheckpointId::generate();
    request.checkpoint_id = Some(id.clone());
    request.project_id = project.clone();
    let operation = s.service.start_protect_in(&project, request)?;
    let uuid = ids::checkpoint_uuid(&id);
    let p = Pending {
        kind: PendingKind::Checkpoint,
        operation: operation.id,
        project: project.clone(),
        parent: plan_ref(&plan),
        parameters: extra.cloned().unwrap_or(Value::Null),
        created: operation.started_at,
    };
    let mut view = pending_checkpoint_view(&s, &uuid, &p);
    view["extra_info"]["client"] = p.parameters.clone();
    remember(&s, uuid, p);
    Ok(Json(json!({ "checkpoint": view })).into_response())
}

fn date_filter(q: &HashMap<String, String>, key: &str) -> KResult<Option<NaiveDate>> {
    q.get(key)
        .map(|d| {
            NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .map_err(|_| bad(format!("{key} {d:?} is not a date of the form YYYY-MM-DD")))
        })
        .transpose()
}

/// `GET /v1/{project_id}/providers/{provider_id}/checkpoints`: filters `plan_id`,
/// `start_date` and `end_date` (`YYYY-MM-DD`, inclusive); paging by `marker`, `limit`.
#[utoipa::path(get, path = "/v1/{project_id}/providers/{provider_id}/checkpoints", tag = "karbor", summary = "Checkpoints, with Karbor's filters, paged",
    params(("project_id" = String, Path, description = "Project (tenant) id"), ("provider_id" = String, Path, description = "podbank's provider id")),
    responses((status = 200, description = "Checkpoints, with Karbor's filters, paged", body = Object),
              (status = 400, description = "Bad request (Karbor fault body)", body = Object),
              (status = 401, description = "No or wrong X-Auth-Token", body = Object),
              (status = 404, description = "Not found (Karbor fault body)", body = Object)),
    security(("karbor_token" = [])))]
pub(super) async fn list(
    State(s): State<KarborState>,
    Extension(scope): Extension<Scope>,
    repr: Repr,
    Path((project, provider)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> KResult<Response> {
    check_provider(&provider)?;
    if repr == Repr::Podbank {
        return podbank::list_checkpoints(&s.service, &scope, &q).await;
    }
    let limit = limit_of(&q)?;
    let start = date_filter(&q, "start_date")?;
    let end = date_filter(&q, "end_date")?;
    let plan = match q.get("plan_id") {
        Some(id) => Some(find_plan(&s, &project, &scope, id).await?),
        None => None,
    };
    let filter = CheckpointFilter {
        plan: plan.as_ref().map(AnyPlan::recorded_as),
        all: false,
    };
    let mut list = s.service.engine().checkpoints(&filter).await?;
    list.items.retain(|c| scope.sees(&c.project_id));
    let plans = super::plans::all_plans(&s, &project, &scope).await?;
    let mut views: Vec<(DateTime<Utc>, Value)> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for c in &list.items {
        let uuid = ids::checkpoint_uuid(&c.id);
        seen.push(uuid.clone());
        let recorded = c.plan.clone().unwrap_or_default();
        let plan_view = plans
            .iter()
            .find(|p| p.recorded_as() == recorded)
            .map(plan_ref)
            .unwrap_or_else(|| json!({ "id": recorded, "name": recorded, "resources": [] }));
        views.push((
            c.created_at,
            json!({
                "id": uuid,
                "project_id": project,
                "status": c.status.label(),
                "protection_plan": plan_view,
                "created_at": c.created_at.to_rfc3339(),
                "extra_info": {
                    "podbank_id": c.id.to_string(),
                    "backup_name": c.backup_name,
                    "pods": c.pods,
                },
            }),
        ));
    }
    let pendings: Vec<(String, Pending)> = s
        .pending
        .lock()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    for (uuid, p) in pendings {
        let of_plan = plan
            .as_ref()
            .is_none_or(|pl| p.parent["id"].as_str() == Some(&pl.id().to_string()));
        if p.kind == PendingKind::Checkpoint
            && !seen.contains(&uuid)
            && p.project == project
            && of_plan
        {
            views.push((p.created, pending_checkpoint_view(&s, &uuid, &p)));
        }
    }
    views.retain(|(t, _)| {
        let d = t.date_naive();
        start.is_none_or(|s| d >= s) && end.is_none_or(|e| d <= e)
    });
    views.sort_by_key(|v| std::cmp::Reverse(v.0));
    let views: Vec<Value> = views.into_iter().map(|(_, v)| v).collect();
    let views = paged(views, &q, limit)?;
    Ok(Json(json!({ "checkpoints": views })).into_response())
}

/// `GET /v1/{project_id}/providers/{provider_id}/checkpoints/{checkpoint_id}`.
#[utoipa::path(get, path = "/v1/{project_id}/providers/{provider_id}/checkpoints/{checkpoint_id}", tag = "karbor", summary = "A checkpoint: resource graph and per-resource status",
    params(("project_id" = String, Path, description = "Project (tenant) id"), ("provider_id" = String, Path, description = "podbank's provider id"), ("checkpoint_id" = String, Path, description = "Checkpoint id")),
    responses((status = 200, description = "A checkpoint: resource graph and per-resource status", body = Object),
              (status = 401, description = "No or wrong X-Auth-Token", body = Object),
              (status = 404, description = "Not found (Karbor fault body)", body = Object),
              (status = 503, description = "Busy: retry after Retry-After (Karbor fault body)", body = Object)),
    security(("karbor_token" = [])))]
pub(super) async fn show(
    State(s): State<KarborState>,
    Extension(scope): Extension<Scope>,
    repr: Repr,
    Path((project, provider, id)): Path<(String, String, String)>,
) -> KResult<Response> {
    check_provider(&provider)?;
    let cp_id = checkpoint_id_of(&id)?;
    if repr == Repr::Podbank {
        return podbank::show_checkpoint(&s.service, &scope, &cp_id).await;
    }
    match podbank::visible_checkpoint(&s.service, &scope, &cp_id).await {
        Ok(cp) => Ok(
            Json(json!({ "checkpoint": checkpoint_view(&s, &project, &cp).await })).into_response(),
        ),
        Err(EngineError::NotFound(m)) => match pending(&s, &id, PendingKind::Checkpoint) {
            Some(p) => Ok(
                Json(json!({ "checkpoint": pending_checkpoint_view(&s, &id, &p) })).into_response(),
            ),
            None => Err(Fault::not_found(m)),
        },
        Err(e) => Err(e.into()),
    }
}

/// `DELETE /v1/{project_id}/providers/{provider_id}/checkpoints/{checkpoint_id}`: the
/// checkpoint and its Cinder backups.
#[utoipa::path(delete, path = "/v1/{project_id}/providers/{provider_id}/checkpoints/{checkpoint_id}", tag = "karbor", summary = "Delete a checkpoint and its Cinder backups",
    params(("project_id" = String, Path, description = "Project (tenant) id"), ("provider_id" = String, Path, description = "podbank's provider id"), ("checkpoint_id" = String, Path, description = "Checkpoint id")),
    responses((status = 202, description = "Delete a checkpoint and its Cinder backups", body = Object),
              (status = 401, description = "No or wrong X-Auth-Token", body = Object),
              (status = 404, description = "Not found (Karbor fault body)", body = Object),
              (status = 503, description = "Busy: retry after Retry-After (Karbor fault body)", body = Object)),
    security(("karbor_token" = [])))]
pub(super) async fn delete(
    State(s): State<KarborState>,
    Extension(scope): Extension<Scope>,
    repr: Repr,
    Path((project, provider, id)): Path<(String, String, String)>,
) -> KResult<Response> {
    check_provider(&provider)?;
    let cp_id = checkpoint_id_of(&id)?;
    if repr == Repr::Podbank {
        return podbank::delete_checkpoint(&s.service, &project, &scope, cp_id).await;
    }
    podbank::check_visible(&s.service, &scope, &cp_id).await?;
    s.service.delete_checkpoint_in(&project, cp_id).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `PUT /v1/{project_id}/providers/{provider_id}/checkpoints/{checkpoint_id}` with
/// `{"os-resetState": {"state": "available" | "error"}}`: Karbor's checkpoint
/// reset-state, what `karbor checkpoint-reset-state` sends. Sets the status in the bank
/// and nothing else; answers `{}` (200), as Karbor does.
///
/// A checkpoint that is not `available` or `error` (still `protecting`, or being deleted)
/// cannot be reset: 400, as Karbor's `CheckpointNotBeReset`.
///
/// Who may: an admin only (see `access::ADMIN_ONLY`); with the static token, its holder.
#[utoipa::path(put, path = "/v1/{project_id}/providers/{provider_id}/checkpoints/{checkpoint_id}", tag = "karbor", summary = "reset-state (admin only)",
    params(("project_id" = String, Path, description = "Project (tenant) id"), ("provider_id" = String, Path, description = "podbank's provider id"), ("checkpoint_id" = String, Path, description = "Checkpoint id")),
    request_body(content = Object, description = "Karbor's request body"),
    responses((status = 200, description = "reset-state (admin only)", body = Object),
              (status = 400, description = "Bad request (Karbor fault body)", body = Object),
              (status = 401, description = "No or wrong X-Auth-Token", body = Object),
              (status = 403, description = "Forbidden (Karbor fault body)", body = Object),
              (status = 404, description = "Not found (Karbor fault body)", body = Object),
              (status = 503, description = "Busy: retry after Retry-After (Karbor fault body)", body = Object)),
    security(("karbor_token" = [])))]
pub(super) async fn update(
    State(s): State<KarborState>,
    Path((_project, provider, id)): Path<(String, String, String)>,
    Json(body): Json<Value>,
) -> KResult<Json<Value>> {
    check_provider(&provider)?;
    let state = body
        .get("os-resetState")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            Fault::bad_request("Missing required element 'os-resetState' in request body.")
        })?
        .get("state")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("os-resetState needs a state, available or error"))?;
    let status = match state {
        "available" => CheckpointStatus::Available,
        "error" => CheckpointStatus::Error,
        other => {
            return Err(bad(format!(
                "state {other:?} is not one of 'available', 'error'"
            )))
        }
    };
    let cp_id = checkpoint_id_of(&id)?;
    let cannot =
        |why: String| Fault::bad_request(format!("The checkpoint {id} can not be reset: {why}"));
    match s
        .service
        .engine()
        .reset_checkpoint_status(&cp_id, status)
        .await
    {
        Ok(()) => Ok(Json(json!({}))),
        Err(EngineError::NotFound(m)) => match pending(&s, &id, PendingKind::Checkpoint) {
            Some(_) => Err(cannot("it is protecting".into())),
            None => Err(Fault::not_found(m)),
        },
        Err(EngineError::Conflict(m)) => Err(cannot(m)),
        Err(e) => Err(e.into()),
    }
}

fn restore_status_view(r: &RestoreView) -> (Map<String, Value>, Map<String, Value>) {
    let mut status = Map::new();
    let mut reason = Map::new();
    for o in &r.resources {
        let key = format!("{}#{}", o.kind.karbor(), o.source);
        let label = match o.status {
            Outcome::Restored | Outcome::Reused | Outcome::ByController => "available",
            Outcome::Error => "error",
            Outcome::Skipped => "skipped",
            Outcome::Planned | Outcome::Pending | Outcome::Restoring => "restoring",
        };
        status.insert(key.clone(), json!(label));
        if !o.reason.is_empty() {
            reason.insert(key, json!(o.reason));
        }
    }
    (status, reason)
}

fn restore_parameters(name: &str, description: &str) -> Value {
    json!({ POD: { "restore_name": name, "restore_description": description } })
}

/// Karbor's view of a restore record.
fn restore_view(project: &str, r: &RestoreView) -> Value {
    let (status, reason) = restore_status_view(r);
    json!({
        "id": ids::restore_uuid(&r.id),
        "project_id": project,
        "provider_id": PROVIDER_ID,
        "checkpoint_id": ids::checkpoint_uuid(&r.checkpoint_id),
        "restore_target": null,
        "parameters": restore_parameters(&r.restore_name, &r.restore_description),
        "status": r.status.label(),
        "resources_status": status,
        "resources_reason": reason,
        "created_at": r.created_at,
        "podbank_id": r.id.to_string(),
        "reason": r.reason,
    })
}

fn pending_restore_view(s: &KarborState, uuid: &str, p: &Pending) -> Value {
    let (state, error) = operation_state(s, p);
    let status = match state {
        OperationState::Running | OperationState::Succeeded => RestoreStatus::InProgress,
        OperationState::Failed | OperationState::Cancelled => RestoreStatus::Fail,
    };
    json!({
        "id": uuid,
        "project_id": p.project,
        "provider_id": PROVIDER_ID,
        "checkpoint_id": p.parent,
        "restore_target": null,
        "parameters": p.parameters,
        "status": status.label(),
        "resources_status": {},
        "resources_reason": {},
        "created_at": p.created.to_rfc3339(),
        "reason": error,
    })
}

/// `POST /v1/{project_id}/restores`: restore a checkpoint into the agent's cluster.
/// `restore_target` and `restore_auth` (another OpenStack) are not supported: a target
/// is refused rather than ignored.
#[utoipa::path(post, path = "/v1/{project_id}/restores", tag = "karbor", summary = "Restore a checkpoint (parameters validated against the restore schema)",
    params(("project_id" = String, Path, description = "Project (tenant) id")),
    request_body(content = Object, description = "Karbor's request body"),
    responses((status = 200, description = "Restore a checkpoint (parameters validated against the restore schema)", body = Object),
              (status = 400, description = "Bad request (Karbor fault body)", body = Object),
              (status = 401, description = "No or wrong X-Auth-Token", body = Object),
              (status = 404, description = "Not found (Karbor fault body)", body = Object)),
    security(("karbor_token" = [])))]
pub(super) async fn restore_create(
    State(s): State<KarborState>,
    Extension(scope): Extension<Scope>,
    repr: Repr,
    Path(project): Path<String>,
    Json(body): Json<Value>,
) -> KResult<Response> {
    if repr == Repr::Podbank {
        return podbank::create_restore(&s.service, &project, &scope, body).await;
    }
    let b = body
        .get("restore")
        .and_then(Value::as_object)
        .ok_or_else(|| Fault::bad_request("Missing required element 'restore' in request body."))?;
    let provider = b
        .get("provider_id")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("provider_id is required"))?;
    check_provider(provider)?;
    let cp = b
        .get("checkpoint_id")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("checkpoint_id is required"))?;
    if b.get("restore_target").is_some_and(|t| !t.is_null()) {
        return Err(bad(
            "restore_target is not supported: podbank restores into the cluster its agent \
             runs in",
        ));
    }
    let params = match b.get("parameters") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err(bad("parameters must be a dict")),
    };
    for key in params.keys() {
        if key != POD {
            return Err(bad(format!(
                "parameters for {key:?}: podbank takes restore parameters under {POD:?}"
            )));
        }
    }
    let pod_params = params.get(POD).cloned().unwrap_or_else(|| json!({}));
    RestoreParams::from_json(&pod_params).map_err(|e| bad(format!("parameters of {POD}: {e}")))?;
    let checkpoint_id = checkpoint_id_of(cp)?;
    podbank::check_visible(&s.service, &scope, &checkpoint_id).await?;
    let mut request: RestoreRequest = serde_json::from_value(json!({
        "checkpoint_id": checkpoint_id.to_string(),
        "parameters": pod_params,
    }))
    .map_err(bad)?;
    let id = RestoreId::generate();
    request.restore_id = Some(id.clone());
    request.project_id = project.clone();
    let operation = s.service.restore_in(&project, request).await?;
    let uuid = ids::restore_uuid(&id);
    let p = Pending {
        kind: PendingKind::Restore,
        operation: operation.id,
        project: project.clone(),
        parent: json!(cp),
        parameters: Value::Object(params),
        created: operation.started_at,
    };
    let view = pending_restore_view(&s, &uuid, &p);
    remember(&s, uuid, p);
    Ok(Json(json!({ "restore": view })).into_response())
}

/// `GET /v1/{project_id}/restores`: filter `status`; paging by `marker`, `limit`.
#[utoipa::path(get, path = "/v1/{project_id}/restores", tag = "karbor", summary = "Restores, paged",
    params(("project_id" = String, Path, description = "Project (tenant) id")),
    responses((status = 200, description = "Restores, paged", body = Object),
              (status = 400, description = "Bad request (Karbor fault body)", body = Object),
              (status = 401, description = "No or wrong X-Auth-Token", body = Object)),
    security(("karbor_token" = [])))]
pub(super) async fn restore_list(
    State(s): State<KarborState>,
    Extension(scope): Extension<Scope>,
    repr: Repr,
    Path(project): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> KResult<Response> {
    if repr == Repr::Podbank {
        return podbank::list_restores(&s.service, &scope).await;
    }
    let limit = limit_of(&q)?;
    let mut list = s.service.engine().restores().await?;
    list.items.retain(|r| scope.sees(&r.project_id));
    let mut views: Vec<(String, Value)> = Vec::new();
    let mut seen = Vec::new();
    for r in &list.items {
        let uuid = ids::restore_uuid(&r.id);
        seen.push(uuid.clone());
        views.push((
            r.created_at.to_rfc3339(),
            json!({
                "id": uuid,
                "project_id": project,
                "provider_id": PROVIDER_ID,
                "checkpoint_id": ids::checkpoint_uuid(&r.checkpoint_id),
                "restore_target": null,
                "parameters": restore_parameters(&r.restore_name, &r.restore_description),
                "status": r.status.label(),
                "created_at": r.created_at.to_rfc3339(),
                "podbank_id": r.id.to_string(),
            }),
        ));
    }
    let pendings: Vec<(String, Pending)> = s
        .pending
        .lock()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    for (uuid, p) in pendings {
        if p.kind == PendingKind::Restore && !seen.contains(&uuid) && p.project == project {
            views.push((p.created.to_rfc3339(), pending_restore_view(&s, &uuid, &p)));
        }
    }
    views.retain(|(_, v)| {
        q.get("status")
            .is_none_or(|want| v["status"].as_str() == Some(want.as_str()))
    });
    views.sort_by(|a, b| b.0.cmp(&a.0));
    let views: Vec<Value> = views.into_iter().map(|(_, v)| v).collect();
    let views = paged(views, &q, limit)?;
    Ok(Json(json!({ "restores": views })).into_response())
}

/// `GET /v1/{project_id}/restores/{restore_id}`.
#[utoipa::path(get, path = "/v1/{project_id}/restores/{restore_id}", tag = "karbor", summary = "A restore with resources_status and resources_reason",
    params(("project_id" = String, Path, description = "Project (tenant) id"), ("restore_id" = String, Path, description = "Restore id")),
    responses((status = 200, description = "A restore with resources_status and resources_reason", body = Object),
              (status = 401, description = "No or wrong X-Auth-Token", body = Object),
              (status = 404, description = "Not found (Karbor fault body)", body = Object)),
    security(("karbor_token" = [])))]
pub(super) async fn restore_show(
    State(s): State<KarborState>,
    Extension(scope): Extension<Scope>,
    repr: Repr,
    Path((project, id)): Path<(String, String)>,
) -> KResult<Response> {
    let not_found = || Fault::not_found(format!("Restore {id} could not be found."));
    let restore_id = ids::restore_of(&id).ok_or_else(not_found)?;
    if repr == Repr::Podbank {
        return podbank::show_restore(&s.service, &scope, &restore_id).await;
    }
    match podbank::visible_restore(&s.service, &scope, &restore_id).await {
        Ok(r) => Ok(Json(json!({ "restore": restore_view(&project, &r) })).into_response()),
        Err(EngineError::NotFound(_)) => match pending(&s, &id, PendingKind::Restore) {
            Some(p) => {
                Ok(Json(json!({ "restore": pending_restore_view(&s, &id, &p) })).into_response())
            }
            None => Err(not_found()),
        },
        Err(e) => Err(e.into()),
    }
}
