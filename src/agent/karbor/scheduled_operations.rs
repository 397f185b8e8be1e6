//! Karbor's scheduled operations: `/v1/{project_id}/scheduled_operations`. An operation
//! ties a plan to a trigger: each time the trigger fires, the elected agent's scheduler
//! (see [`crate::agent::schedule`]) makes a checkpoint of the plan (`protect`), and for
//! `retention_protect` then keeps the plan's `max_backups` newest checkpoints and those
//! younger than `retention_duration` days, deleting the rest children first.
//!
//! An operation is kept in the bank (one record each, scoped to its project) once it is
//! checked: its type is one of Karbor's two, its trigger and plan exist in the project
//! (Karbor's 404 otherwise), its `operation_definition` names `plan_id` and podbank's
//! `provider_id`, and `max_backups` / `retention_duration` are positive integers (or
//! Karbor's `-1`, no limit). Bodies are Karbor's: `{"scheduled_operation": {...}}` in and
//! out, `{"operations": [...]}` listed, the definition's values as strings (as
//! karborclient sends them); delete answers 202.
//!
//! Where this differs from Karbor: the definition takes no key beyond those four, and a
//! `protect` operation refuses the retention keys rather than ignoring them.

use std::collections::HashMap;

use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use serde_json::{json, Map, Value};

use super::access::Scope;
use super::plans::find_plan;
use super::types::{Fault, PROVIDER_ID};
use super::{bad, limit_of, paged, KResult, KarborState};
use crate::engine::EngineError;
use crate::model::{OperationType, ScheduledOperationId, StoredOperation, TriggerId};

/// The keys an operation definition may have.
const DEFINITION: [&str; 4] = [
    "plan_id",
    "provider_id",
    "max_backups",
    "retention_duration",
];

/// Karbor's view of an operation's definition: its values as strings.
fn definition(o: &StoredOperation) -> Value {
    let mut d = json!({ "plan_id": o.plan_id, "provider_id": o.provider_id });
    if o.operation_type == OperationType::RetentionProtect {
        d["max_backups"] = json!(o.max_backups.map_or("-1".into(), |n| n.to_string()));
        d["retention_duration"] = json!(o.retention_days.map_or("-1".into(), |n| n.to_string()));
    }
    d
}

/// Karbor's view of a scheduled operation.
fn view(o: &StoredOperation) -> Value {
    json!({
        "id": o.id.to_string(),
        "name": o.name,
        "description": o.description,
        "operation_type": o.operation_type.label(),
        "trigger_id": o.trigger_id.to_string(),
        "operation_definition": definition(o),
        "enabled": o.enabled,
    })
}

fn string_of(v: &Value, key: &str) -> KResult<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        _ => Err(bad(format!("{key} must be a string"))),
    }
}

/// A limit of `retention_protect`: a positive integer, or Karbor's -1 for none.
fn limit_value(v: &Value, key: &str) -> KResult<Option<u32>> {
    let n = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    match n {
        Some(-1) => Ok(None),
        Some(n) if n > 0 => u32::try_from(n)
            .map(Some)
            .map_err(|_| bad(format!("{key} {n} is too large"))),
        _ => Err(bad(format!(
            "{key} must be a positive integer (or -1, no limit), not {v}"
        ))),
    }
}

fn not_found(id: &str) -> Fault {
    Fault::not_found(format!("Scheduled Operation {id} could not be found."))
}

async fn project_operations(s: &KarborState, project: &str) -> KResult<Vec<StoredOperation>> {
    Ok(s.service
        .engine()
        .stored_operations()
        .await?
        .into_iter()
        .filter(|o| o.project_id == project)
        .collect())
}

/// The operation `id` names for `project`: 400 for an id that is no UUID, 404 for one
/// that names none.
async fn find(s: &KarborState, project: &str, id: &str) -> KResult<StoredOperation> {
    let wanted: ScheduledOperationId = id
        .to_ascii_lowercase()
        .parse()
        .map_err(|_| Fault::bad_request("Invalid scheduled operation id provided."))?;
    project_operations(s, project)
        .await?
        .into_iter()
        .find(|o| o.id == wanted)
        .ok_or_else(|| not_found(id))
}

/// The ids of the triggers `project`'s scheduled operations use.
pub(super) async fn triggers_in_use(s: &KarborState, project: &str) -> KResult<Vec<TriggerId>> {
    Ok(project_operations(s, project)
        .await?
        .iter()
        .map(|o| o.trigger_id)
        .collect())
}

/// `POST /v1/{project_id}/scheduled_operations`.
#[utoipa::path(post, path = "/v1/{project_id}/scheduled_operations", tag = "karbor", summary = "Create a scheduled operation (a plan protected at a trigger's times)",
    params(("project_id" = String, Path, description = "Project (tenant) id")),
    request_body(content = Object, description = "Karbor's request body"),
    responses((status = 200, description = "Create a scheduled operation (a plan protected at a trigger's times)", body = Object),
              (status = 400, description = "Bad request (Karbor fault body)", body = Object),
              (status = 401, description = "No or wrong X-Auth-Token", body = Object),
              (status = 404, description = "Unknown trigger, plan or provider (Karbor fault body)", body = Object)),
    security(("karbor_token" = [])))]
pub(super) async fn create(
    State(s): State<KarborState>,
    Extension(scope): Extension<Scope>,
    Path(project): Path<String>,
    Json(body): Json<Value>,
) -> KResult<Json<Value>> {
    let b = body
        .get("scheduled_operation")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            Fault::bad_request("Missing required element 'scheduled_operation' in request body.")
        })?;
    for key in b.keys() {
        if ![
            "name",
            "description",
            "operation_type",
            "trigger_id",
            "operation_definition",
        ]
        .contains(&key.as_str())
        {
            return Err(bad(format!(
                "scheduled_operation has no {key:?} (it has name, description, \
                 operation_type, trigger_id, operation_definition)"
            )));
        }
    }
    let name = string_of(
        b.get("name").ok_or_else(|| bad("name is required"))?,
        "name",
    )?;
    let name = name.trim().to_string();
    if name.is_empty() || name.len() > 255 {
        return Err(bad(
            "the scheduled operation's name must be 1 to 255 characters",
        ));
    }
    let description = match b.get("description") {
        None | Some(Value::Null) => String::new(),
        Some(v) => string_of(v, "description")?,
    };
    let type_label = string_of(
        b.get("operation_type")
            .ok_or_else(|| bad("operation_type is required"))?,
        "operation_type",
    )?;
    let operation_type = OperationType::from_label(&type_label).ok_or_else(|| {
        bad(format!(
            "Invalid operation type: {type_label} (protect or retention_protect)"
        ))
    })?;
    let trigger_text = string_of(
        b.get("trigger_id")
            .ok_or_else(|| bad("trigger_id is required"))?,
        "trigger_id",
    )?;
    let trigger_id: TriggerId = trigger_text
        .to_ascii_lowercase()
        .parse()
        .map_err(|_| Fault::bad_request("Invalid trigger id provided."))?;
    let d: &Map<String, Value> = b
        .get("operation_definition")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("operation_definition is required, a dict"))?;
    for key in d.keys() {
        if !DEFINITION.contains(&key.as_str()) {
            return Err(bad(format!(
                "operation_definition has no {key:?} (it has {})",
                DEFINITION.join(", ")
            )));
        }
    }
    let plan_id = string_of(
        d.get("plan_id")
            .ok_or_else(|| bad("operation_definition needs plan_id"))?,
        "plan_id",
    )?;
    let provider_id = string_of(
        d.get("provider_id")
            .ok_or_else(|| bad("operation_definition needs provider_id"))?,
        "provider_id",
    )?;
    let (mut max_backups, mut retention_days) = (None, None);
    match operation_type {
        OperationType::Protect => {
            if let Some(k) = ["max_backups", "retention_duration"]
                .into_iter()
                .find(|k| d.contains_key(*k))
            {
                return Err(bad(format!(
                    "{k} is for retention_protect operations, not protect"
                )));
            }
        }
        OperationType::RetentionProtect => {
            if let Some(v) = d.get("max_backups") {
                max_backups = limit_value(v, "max_backups")?;
            }
            if let Some(v) = d.get("retention_duration") {
                retention_days = limit_value(v, "retention_duration")?;
            }
        }
    }
    // What the operation names must exist: Karbor's 404s.
    if provider_id != PROVIDER_ID {
        return Err(Fault::not_found(format!(
            "Provider {provider_id} could not be found."
        )));
    }
    let triggers = s.service.engine().stored_triggers().await?;
    if !triggers
        .iter()
        .any(|t| t.id == trigger_id && t.project_id == project)
    {
        return Err(Fault::not_found(format!(
            "Trigger {trigger_text} could not be found."
        )));
    }
    let plan = find_plan(&s, &project, &scope, &plan_id).await?;
    let operation = StoredOperation {
        id: ScheduledOperationId::generate(),
        project_id: project,
        name,
        description,
        operation_type,
        trigger_id,
        plan_id: plan.id().to_string(),
        provider_id,
        max_backups,
        retention_days,
        enabled: true,
        created: Utc::now(),
        last_fired: None,
    };
    s.service.engine().save_operation(&operation).await?;
    s.service.schedules_changed();
    Ok(Json(json!({ "scheduled_operation": view(&operation) })))
}

/// Whether the operation's definition holds every `key=value` of the
/// `operation_definition` filter (as karborclient sends it: `k=v,k=v`, or JSON).
fn definition_matches(view: &Value, q: &HashMap<String, String>) -> bool {
    let Some(want) = q.get("operation_definition") else {
        return true;
    };
    let pairs: Vec<(String, String)> = match serde_json::from_str::<Map<String, Value>>(want) {
        Ok(m) => m
            .into_iter()
            .map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), String::from)))
            .collect(),
        Err(_) => want
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect(),
    };
    pairs.iter().all(|(k, v)| {
        view["operation_definition"].get(k).and_then(Value::as_str) == Some(v.as_str())
    })
}

/// `GET /v1/{project_id}/scheduled_operations`: filters `name`, `operation_type`,
/// `trigger_id`, `operation_definition`; paging by `marker` and `limit`.
#[utoipa::path(get, path = "/v1/{project_id}/scheduled_operations", tag = "karbor", summary = "Scheduled operations, paged",
    params(("project_id" = String, Path, description = "Project (tenant) id")),
    responses((status = 200, description = "Scheduled operations, paged", body = Object),
              (status = 400, description = "Bad request (Karbor fault body)", body = Object),
              (status = 401, description = "No or wrong X-Auth-Token", body = Object)),
    security(("karbor_token" = [])))]
pub(super) async fn list(
    State(s): State<KarborState>,
    Path(project): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> KResult<Json<Value>> {
    let limit = limit_of(&q)?;
    let views: Vec<Value> = project_operations(&s, &project)
        .await?
        .iter()
        .map(view)
        .filter(|v| super::matches_query(v, &q, &["name", "operation_type", "trigger_id"]))
        .filter(|v| definition_matches(v, &q))
        .collect();
    let views = paged(views, &q, limit)?;
    Ok(Json(json!({ "operations": views })))
}

/// `GET /v1/{project_id}/scheduled_operations/{scheduled_operation_id}`.
#[utoipa::path(get, path = "/v1/{project_id}/scheduled_operations/{scheduled_operation_id}", tag = "karbor", summary = "A scheduled operation",
    params(("project_id" = String, Path, description = "Project (tenant) id"), ("scheduled_operation_id" = String, Path, description = "Scheduled operation id")),
    responses((status = 200, description = "A scheduled operation", body = Object),
              (status = 400, description = "Bad request (Karbor fault body)", body = Object),
              (status = 401, description = "No or wrong X-Auth-Token", body = Object),
              (status = 404, description = "Not found (Karbor fault body)", body = Object)),
    security(("karbor_token" = [])))]
pub(super) async fn show(
    State(s): State<KarborState>,
    Path((project, id)): Path<(String, String)>,
) -> KResult<Json<Value>> {
    let o = find(&s, &project, &id).await?;
    Ok(Json(json!({ "scheduled_operation": view(&o) })))
}

/// `DELETE /v1/{project_id}/scheduled_operations/{scheduled_operation_id}`: 202, no body;
/// the operation fires no more (a run already started goes on).
#[utoipa::path(delete, path = "/v1/{project_id}/scheduled_operations/{scheduled_operation_id}", tag = "karbor", summary = "Delete a scheduled operation",
    params(("project_id" = String, Path, description = "Project (tenant) id"), ("scheduled_operation_id" = String, Path, description = "Scheduled operation id")),
    responses((status = 202, description = "Delete a scheduled operation"),
              (status = 400, description = "Bad request (Karbor fault body)", body = Object),
              (status = 401, description = "No or wrong X-Auth-Token", body = Object),
              (status = 404, description = "Not found (Karbor fault body)", body = Object)),
    security(("karbor_token" = [])))]
pub(super) async fn delete(
    State(s): State<KarborState>,
    Path((project, id)): Path<(String, String)>,
) -> KResult<StatusCode> {
    let o = find(&s, &project, &id).await?;
    let result = s.service.engine().remove_operation(&o.id).await;
    s.service.schedules_changed();
    match result {
        Ok(()) => Ok(StatusCode::ACCEPTED),
        Err(EngineError::NotFound(_)) => Err(not_found(&id)),
        Err(e) => Err(e.into()),
    }
}
