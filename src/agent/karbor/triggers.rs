//! Karbor's triggers: `/v1/{project_id}/triggers`. A trigger is kept in the bank (one
//! record per trigger, scoped to its project) and checked before it is: its type is
//! `time` (the only type Karbor had), its pattern parses in its `format` (`calendar`: an
//! iCalendar VEVENT with an RRULE; `crontab`: five cron fields), names at least one time
//! between its start and end, and its adjacent times are an hour apart or more; its window
//! is 900 to 1800 seconds (Karbor's defaults, fixed here: see
//! [`crate::engine::triggers`]).
//!
//! Bodies and faults are Karbor's: `{"trigger_info": {...}}` in and out, properties as
//! strings (Karbor kept them as a dict of strings), `start_time` as `YYYY-MM-DD HH:MM:SS`
//! UTC (now when not given); 400 for input refused, 404 for an unknown id, delete answers
//! 200 with no body.
//!
//! Where this differs from Karbor: an update's `properties` are merged over the stored
//! ones (Karbor replaced them whole and refused an update without `start_time`), so
//! `--properties window=1200` changes the window alone; an empty name is refused. A
//! trigger a scheduled operation uses cannot be deleted (Karbor's 424, Failed Dependency:
//! delete the operation first); a change to one reaches the scheduler at once.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::types::Fault;
use super::{bad, limit_of, paged, KResult, KarborState};
use crate::engine::triggers::{
    fmt_time, parse_time, TimePattern, MAX_WINDOW_SECONDS, MIN_WINDOW_SECONDS,
};
use crate::engine::EngineError;
use crate::model::{StoredTrigger, TimeFormat, TriggerId, TriggerType};

/// The properties a time trigger has (Karbor's schema allows no other).
const PROPERTIES: [&str; 5] = ["format", "pattern", "start_time", "end_time", "window"];

/// Karbor's view of a trigger.
fn view(t: &StoredTrigger) -> Value {
    let mut properties = json!({
        "format": t.format.label(),
        "pattern": t.pattern,
        "start_time": fmt_time(t.start_time),
        "window": t.window_seconds.to_string(),
    });
    if let Some(end) = t.end_time {
        properties["end_time"] = json!(fmt_time(end));
    }
    json!({
        "id": t.id.to_string(),
        "name": t.name,
        "type": t.kind.label(),
        "properties": properties,
    })
}

fn trigger_body(body: &Value) -> KResult<&Map<String, Value>> {
    let b = body
        .get("trigger_info")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            Fault::bad_request("Missing required element 'trigger_info' in request body.")
        })?;
    for key in b.keys() {
        if !["name", "type", "properties"].contains(&key.as_str()) {
            return Err(bad(format!(
                "trigger_info has no {key:?} (it has name, type, properties)"
            )));
        }
    }
    Ok(b)
}

fn string_of(v: &Value, key: &str) -> KResult<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        _ => Err(bad(format!("{key} must be a string"))),
    }
}

fn name_of(v: &Value) -> KResult<String> {
    let name = string_of(v, "name")?;
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed.len() > 255 {
        return Err(bad("the trigger's name must be 1 to 255 characters"));
    }
    Ok(trimmed.to_string())
}

fn type_of(v: &Value) -> KResult<TriggerType> {
    let label = string_of(v, "type")?;
    TriggerType::from_label(&label).ok_or_else(|| {
        bad(format!(
            "Invalid trigger type:{label} (podbank, as Karbor, has time triggers only)"
        ))
    })
}

fn time_of(v: &Value, key: &str) -> KResult<DateTime<Utc>> {
    let s = string_of(v, key)?;
    parse_time(&s).ok_or_else(|| {
        bad(format!(
            "The format of trigger {key} is not correct ({s:?}: write YYYY-MM-DD HH:MM:SS, UTC)"
        ))
    })
}

fn window_of(v: &Value) -> KResult<u32> {
    let w = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    }
    .ok_or_else(|| bad(format!("The trigger windows({v}) is not integer")))?;
    match u32::try_from(w) {
        Ok(w) if (MIN_WINDOW_SECONDS..=MAX_WINDOW_SECONDS).contains(&w) => Ok(w),
        _ => Err(bad(format!(
            "The trigger windows {w} must be between {MIN_WINDOW_SECONDS} and \
             {MAX_WINDOW_SECONDS}"
        ))),
    }
}

/// Applies `properties` to `t` (every property given replaces the one kept), then checks
/// the whole.
fn apply_properties(t: &mut StoredTrigger, properties: &Value, now: DateTime<Utc>) -> KResult<()> {
    let p = properties
        .as_object()
        .ok_or_else(|| bad("properties must be a dict"))?;
    for key in p.keys() {
        if !PROPERTIES.contains(&key.as_str()) {
            return Err(bad(format!(
                "a time trigger has no property {key:?} (it has {})",
                PROPERTIES.join(", ")
            )));
        }
    }
    if let Some(v) = p.get("format") {
        let label = string_of(v, "format")?;
        t.format = TimeFormat::from_label(&label).ok_or_else(|| {
            bad(format!(
                "The trigger format({label}) is not one of calendar, crontab"
            ))
        })?;
    }
    if let Some(v) = p.get("pattern") {
        t.pattern = string_of(v, "pattern")?;
    }
    if let Some(v) = p.get("start_time") {
        t.start_time = time_of(v, "start_time")?;
    }
    match p.get("end_time") {
        None => {}
        Some(Value::Null) => t.end_time = None,
        Some(v) => t.end_time = Some(time_of(v, "end_time")?),
    }
    if let Some(v) = p.get("window") {
        t.window_seconds = window_of(v)?;
    }
    if let Some(end) = t.end_time {
        if end <= t.start_time {
            return Err(bad(format!(
                "The trigger's start time({}) is bigger than end time({})",
                fmt_time(t.start_time),
                fmt_time(end)
            )));
        }
    }
    let pattern = TimePattern::parse(t.format, &t.pattern, t.start_time).map_err(bad)?;
    pattern
        .check_times(t.start_time, t.end_time, now)
        .map_err(bad)
}

async fn project_triggers(s: &KarborState, project: &str) -> KResult<Vec<StoredTrigger>> {
    Ok(s.service
        .engine()
        .stored_triggers()
        .await?
        .into_iter()
        .filter(|t| t.project_id == project)
        .collect())
}

fn not_found(id: &str) -> Fault {
    Fault::not_found(format!("Trigger {id} could not be found."))
}

/// The trigger `id` names for `project`: Karbor's 400 for an id that is no UUID, its 404
/// for one that names none.
async fn find(s: &KarborState, project: &str, id: &str) -> KResult<StoredTrigger> {
    let wanted: TriggerId = id
        .to_ascii_lowercase()
        .parse()
        .map_err(|_| Fault::bad_request("Invalid trigger id provided."))?;
    project_triggers(s, project)
        .await?
        .into_iter()
        .find(|t| t.id == wanted)
        .ok_or_else(|| not_found(id))
}

/// `POST /v1/{project_id}/triggers`.
#[utoipa::path(post, path = "/v1/{project_id}/triggers", tag = "karbor", summary = "Create a time trigger (pattern checked)",
    params(("project_id" = String, Path, description = "Project (tenant) id")),
    request_body(content = Object, description = "Karbor's request body"),
    responses((status = 200, description = "Create a time trigger (pattern checked)", body = Object),
              (status = 400, description = "Bad request (Karbor fault body)", body = Object),
              (status = 401, description = "No or wrong X-Auth-Token", body = Object)),
    security(("karbor_token" = [])))]
pub(super) async fn create(
    State(s): State<KarborState>,
    Path(project): Path<String>,
    Json(body): Json<Value>,
) -> KResult<Json<Value>> {
    let b = trigger_body(&body)?;
    let name = name_of(b.get("name").ok_or_else(|| bad("name is required"))?)?;
    let kind = type_of(b.get("type").ok_or_else(|| bad("type is required"))?)?;
    let properties = b
        .get("properties")
        .ok_or_else(|| bad("properties are required (format and pattern)"))?;
    for key in ["format", "pattern"] {
        if properties.get(key).is_none() {
            return Err(bad(format!("the trigger's properties need {key}")));
        }
    }
    let now = Utc::now();
    let mut trigger = StoredTrigger {
        id: TriggerId::generate(),
        project_id: project,
        name,
        kind,
        format: TimeFormat::Calendar,
        pattern: String::new(),
        start_time: chrono::Timelike::with_nanosecond(&now, 0).unwrap_or(now),
        end_time: None,
        window_seconds: MIN_WINDOW_SECONDS,
        created: now,
    };
    apply_properties(&mut trigger, properties, now)?;
    s.service.engine().save_trigger(&trigger).await?;
    Ok(Json(json!({ "trigger_info": view(&trigger) })))
}

/// `GET /v1/{project_id}/triggers`: filters `name`, `type`; paging by `marker` and `limit`.
#[utoipa::path(get, path = "/v1/{project_id}/triggers", tag = "karbor", summary = "Triggers, paged",
    params(("project_id" = String, Path, description = "Project (tenant) id")),
    responses((status = 200, description = "Triggers, paged", body = Object),
              (status = 400, description = "Bad request (Karbor fault body)", body = Object),
              (status = 401, description = "No or wrong X-Auth-Token", body = Object)),
    security(("karbor_token" = [])))]
pub(super) async fn list(
    State(s): State<KarborState>,
    Path(project): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> KResult<Json<Value>> {
    let limit = limit_of(&q)?;
    let views: Vec<Value> = project_triggers(&s, &project)
        .await?
        .iter()
        .map(view)
        .filter(|v| super::matches_query(v, &q, &["name", "type"]))
        .collect();
    let views = paged(views, &q, limit)?;
    Ok(Json(json!({ "triggers": views })))
}

/// `GET /v1/{project_id}/triggers/{trigger_id}`.
#[utoipa::path(get, path = "/v1/{project_id}/triggers/{trigger_id}", tag = "karbor", summary = "A trigger",
    params(("project_id" = String, Path, description = "Project (tenant) id"), ("trigger_id" = String, Path, description = "Trigger id")),
    responses((status = 200, description = "A trigger", body = Object),
              (status = 400, description = "Bad request (Karbor fault body)", body = Object),
              (status = 401, description = "No or wrong X-Auth-Token", body = Object),
              (status = 404, description = "Not found (Karbor fault body)", body = Object)),
    security(("karbor_token" = [])))]
pub(super) async fn show(
    State(s): State<KarborState>,
    Path((project, id)): Path<(String, String)>,
) -> KResult<Json<Value>> {
    let t = find(&s, &project, &id).await?;
    Ok(Json(json!({ "trigger_info": view(&t) })))
}

/// `PUT /v1/{project_id}/triggers/{trigger_id}`: its name, its properties (merged over the
/// stored ones, then checked whole).
#[utoipa::path(put, path = "/v1/{project_id}/triggers/{trigger_id}", tag = "karbor", summary = "Update a trigger",
    params(("project_id" = String, Path, description = "Project (tenant) id"), ("trigger_id" = String, Path, description = "Trigger id")),
    request_body(content = Object, description = "Karbor's request body"),
    responses((status = 200, description = "Update a trigger", body = Object),
              (status = 400, description = "Bad request (Karbor fault body)", body = Object),
              (status = 401, description = "No or wrong X-Auth-Token", body = Object),
              (status = 404, description = "Not found (Karbor fault body)", body = Object)),
    security(("karbor_token" = [])))]
pub(super) async fn update(
    State(s): State<KarborState>,
    Path((project, id)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> KResult<Json<Value>> {
    let b = trigger_body(&body)?;
    let mut t = find(&s, &project, &id).await?;
    if let Some(v) = b.get("name") {
        t.name = name_of(v)?;
    }
    if let Some(v) = b.get("type") {
        if type_of(v)? != t.kind {
            return Err(bad("a trigger's type cannot be changed"));
        }
    }
    match b.get("properties") {
        // karborclient sends `{}` when only the name changes.
        Some(Value::Object(p)) if p.is_empty() => {}
        None | Some(Value::Null) => {}
        Some(p) => apply_properties(&mut t, p, Utc::now())?,
    }
    s.service.engine().save_trigger(&t).await?;
    s.service.schedules_changed();
    Ok(Json(json!({ "trigger_info": view(&t) })))
}

/// `DELETE /v1/{project_id}/triggers/{trigger_id}`: 200, no body; 424 while a scheduled
/// operation uses the trigger.
#[utoipa::path(delete, path = "/v1/{project_id}/triggers/{trigger_id}", tag = "karbor", summary = "Delete a trigger",
    params(("project_id" = String, Path, description = "Project (tenant) id"), ("trigger_id" = String, Path, description = "Trigger id")),
    responses((status = 200, description = "Delete a trigger"),
              (status = 400, description = "Bad request (Karbor fault body)", body = Object),
              (status = 401, description = "No or wrong X-Auth-Token", body = Object),
              (status = 404, description = "Not found (Karbor fault body)", body = Object),
              (status = 424, description = "A scheduled operation uses the trigger (Karbor fault body)", body = Object)),
    security(("karbor_token" = [])))]
pub(super) async fn delete(
    State(s): State<KarborState>,
    Path((project, id)): Path<(String, String)>,
) -> KResult<StatusCode> {
    let t = find(&s, &project, &id).await?;
    if super::scheduled_operations::triggers_in_use(&s, &project)
        .await?
        .contains(&t.id)
    {
        return Err(Fault::new(
            StatusCode::FAILED_DEPENDENCY,
            format!(
                "Trigger {id} is being used by one or more scheduled operations: delete them \
                 first (scheduledoperation-delete)"
            ),
        ));
    }
    match s.service.engine().remove_trigger(&t.id).await {
        Ok(()) => Ok(StatusCode::OK),
        Err(EngineError::NotFound(_)) => Err(not_found(&id)),
        Err(e) => Err(e.into()),
    }
}
