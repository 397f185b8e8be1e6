//! Karbor's verifications: `/v1/{project_id}/verifications`. A create checks its body,
//! that the provider is podbank's and that the bank holds the checkpoint (400 / 404 with
//! Karbor's fault body, nothing stored otherwise), stores the verification `verifying`
//! and answers at once; the full re-read and re-hash of the checkpoint runs in the
//! background and stores its result per resource (see
//! [`crate::engine::verifications`]), keyed as a checkpoint's `resources_status` is.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::Json;
use serde_json::{json, Map, Value};

use super::ids;
use super::types::{Fault, PROVIDER_ID};
use super::{bad, limit_of, paged, KResult, KarborState};
use crate::engine::verifications::{self, Verification};
use crate::engine::EngineError;

/// Karbor's view of a verification.
fn view(v: &Verification) -> Value {
    json!({
        "id": v.id,
        "project_id": v.project_id,
        "provider_id": PROVIDER_ID,
        "checkpoint_id": ids::checkpoint_uuid(&v.checkpoint_id),
        "parameters": v.parameters,
        "status": v.status.label(),
        "resources_status": v.resources_status,
        "resources_reason": v.resources_reason,
        "reason": v.reason,
        "created_at": v.created_at.to_rfc3339(),
    })
}

/// `POST /v1/{project_id}/verifications`: verify a checkpoint, in the background.
#[utoipa::path(post, path = "/v1/{project_id}/verifications", tag = "karbor", summary = "Verify a checkpoint: re-read and re-hash it, in the background",
    params(("project_id" = String, Path, description = "Project (tenant) id")),
    request_body(content = Object, description = "Karbor's request body"),
    responses((status = 200, description = "Verify a checkpoint: re-read and re-hash it, in the background", body = Object),
              (status = 400, description = "Bad request (Karbor fault body)", body = Object),
              (status = 401, description = "No or wrong X-Auth-Token", body = Object),
              (status = 404, description = "Not found (Karbor fault body)", body = Object)),
    security(("karbor_token" = [])))]
pub(super) async fn create(
    State(s): State<KarborState>,
    Path(project): Path<String>,
    Json(body): Json<Value>,
) -> KResult<Json<Value>> {
    let b = body
        .get("verification")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            Fault::bad_request("Missing required element 'verification' in request body.")
        })?;
    for key in b.keys() {
        if !["provider_id", "checkpoint_id", "parameters"].contains(&key.as_str()) {
            return Err(bad(format!(
                "verification has no {key:?} (it has provider_id, checkpoint_id, parameters)"
            )));
        }
    }
    let provider = b
        .get("provider_id")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("provider_id is required"))?;
    let checkpoint = b
        .get("checkpoint_id")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("checkpoint_id is required"))?;
    let parameters = match b.get("parameters") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err(bad("parameters must be a dict")),
    };
    if provider != PROVIDER_ID {
        return Err(Fault::not_found(format!(
            "Provider {provider} could not be found."
        )));
    }
    let not_found = || Fault::not_found(format!("Checkpoint {checkpoint} could not be found."));
    let checkpoint_id = ids::checkpoint_of(checkpoint).ok_or_else(not_found)?;
    // Only a checkpoint the bank does not hold is refused: one whose records are damaged
    // is what a verification is for.
    if let Err(EngineError::NotFound(_)) = s.service.engine().checkpoint(&checkpoint_id).await {
        return Err(not_found());
    }
    let v = Verification::new(&project, checkpoint_id, parameters);
    s.service.engine().save_verification(&v).await?;
    let engine = std::sync::Arc::clone(s.service.engine());
    let running = v.clone();
    tokio::spawn(async move {
        verifications::run(&*engine, running).await;
    });
    Ok(Json(json!({ "verification": view(&v) })))
}

async fn project_verifications(s: &KarborState, project: &str) -> KResult<Vec<Verification>> {
    let mut all: Vec<Verification> = s
        .service
        .engine()
        .verifications()
        .await?
        .into_iter()
        .filter(|v| v.project_id == project)
        .collect();
    all.reverse();
    Ok(all)
}

/// `GET /v1/{project_id}/verifications`: filters `status`, `checkpoint_id`; newest first;
/// paging by `marker` and `limit`.
#[utoipa::path(get, path = "/v1/{project_id}/verifications", tag = "karbor", summary = "Verifications, newest first, paged",
    params(("project_id" = String, Path, description = "Project (tenant) id")),
    responses((status = 200, description = "Verifications, newest first, paged", body = Object),
              (status = 400, description = "Bad request (Karbor fault body)", body = Object),
              (status = 401, description = "No or wrong X-Auth-Token", body = Object)),
    security(("karbor_token" = [])))]
pub(super) async fn list(
    State(s): State<KarborState>,
    Path(project): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> KResult<Json<Value>> {
    let limit = limit_of(&q)?;
    let views: Vec<Value> = project_verifications(&s, &project)
        .await?
        .iter()
        .map(view)
        .filter(|v| super::matches_query(v, &q, &["status", "checkpoint_id"]))
        .collect();
    let views = paged(views, &q, limit)?;
    Ok(Json(json!({ "verifications": views })))
}

/// `GET /v1/{project_id}/verifications/{verification_id}`: with the result per resource.
#[utoipa::path(get, path = "/v1/{project_id}/verifications/{verification_id}", tag = "karbor", summary = "A verification, with its result per resource",
    params(("project_id" = String, Path, description = "Project (tenant) id"), ("verification_id" = String, Path, description = "Verification id")),
    responses((status = 200, description = "A verification, with its result per resource", body = Object),
              (status = 401, description = "No or wrong X-Auth-Token", body = Object),
              (status = 404, description = "Not found (Karbor fault body)", body = Object)),
    security(("karbor_token" = [])))]
pub(super) async fn show(
    State(s): State<KarborState>,
    Path((project, id)): Path<(String, String)>,
) -> KResult<Json<Value>> {
    let wanted = id.to_ascii_lowercase();
    let v = project_verifications(&s, &project)
        .await?
        .into_iter()
        .find(|v| v.id == wanted)
        .ok_or_else(|| Fault::not_found(format!("Verification {id} could not be found.")))?;
    Ok(Json(json!({ "verification": view(&v) })))
}
