//! Karbor's plans: `/v1/{project_id}/plans`. A plan made through this API is kept in the
//! bank (one record per plan, scoped to its project); the plans of the agent's config file
//! are listed too, read-only, under a stable UUID of their name.
//!
//! A plan is checked before anything is stored: its provider is podbank's, its resources
//! are pods (and, as Karbor allows, their Cinder volumes), and its
//! `parameters["OS::Kubernetes::Pod"]` are valid protect options (`backup_name` is
//! required). Karbor's per-instance parameters (`<type>#<id>`) are refused: podbank
//! protects every pod of a plan with the same options.

use std::collections::HashMap;

use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use super::access::Scope;
use super::types::{Fault, PROVIDER_ID};
use super::{bad, limit_of, paged, KResult, KarborState};
use crate::engine::plans::Plan;
use crate::engine::EngineError;
use crate::model::{PlanId, PlanResource, PlanStatus, StoredPlan};
use crate::protection::schema::ProtectParams;

/// The type every plan protects.
pub(super) const POD: &str = crate::engine::plans::POD_TYPE;
/// The dependent type a plan may name as well.
const VOLUME: &str = "OS::Cinder::Volume";

/// A plan as this API knows it: kept in the bank, or configured.
pub(super) enum AnyPlan {
    /// Made through this API.
    Stored(StoredPlan),
    /// From the agent's config file.
    Configured(Box<Plan>),
}

impl AnyPlan {
    /// Its Karbor id.
    pub(super) fn id(&self) -> PlanId {
        match self {
            AnyPlan::Stored(p) => p.id,
            AnyPlan::Configured(p) => PlanId::of_configured(&p.name),
        }
    }

    /// Its name.
    pub(super) fn name(&self) -> &str {
        match self {
            AnyPlan::Stored(p) => &p.name,
            AnyPlan::Configured(p) => &p.name,
        }
    }

    /// Its resources, as Karbor lists them (a configured plan selects pods by
    /// namespace and labels, so it names none).
    pub(super) fn resources(&self) -> Vec<PlanResource> {
        match self {
            AnyPlan::Stored(p) => p.resources.clone(),
            AnyPlan::Configured(_) => Vec::new(),
        }
    }

    /// The name checkpoints record as their plan.
    pub(super) fn recorded_as(&self) -> String {
        match self {
            AnyPlan::Stored(p) => p.id.to_string(),
            AnyPlan::Configured(p) => p.name.clone(),
        }
    }

    /// Karbor's view of it.
    pub(super) fn view(&self, project: &str) -> Value {
        match self {
            AnyPlan::Stored(p) => json!({
                "id": p.id.to_string(),
                "name": p.name,
                "description": p.description,
                "provider_id": p.provider_id,
                "project_id": p.project_id,
                "status": p.status.label(),
                "resources": p.resources,
                "parameters": p.parameters,
                "created_at": p.created.to_rfc3339(),
            }),
            AnyPlan::Configured(p) => json!({
                "id": PlanId::of_configured(&p.name).to_string(),
                "name": p.name,
                "description": format!(
                    "configured in the agent's config file (read-only): {}",
                    describe_selection(p)
                ),
                "provider_id": PROVIDER_ID,
                "project_id": project,
                "status": PlanStatus::Started.label(),
                "resources": [],
                "parameters": { POD: p.parameters },
            }),
        }
    }
}

fn describe_selection(p: &Plan) -> String {
    let s = &p.selection;
    let ns = if s.namespaces.is_empty() {
        "every namespace".to_string()
    } else {
        format!("namespaces {}", s.namespaces.join(","))
    };
    match &s.label_selector {
        Some(l) => format!("pods of {ns} with labels {l}"),
        None => format!("pods of {ns}"),
    }
}

/// Every plan `project` sees: its stored plans, then the configured ones (the operator's,
/// seen by the admin only: they select namespaces of any project).
pub(super) async fn all_plans(
    s: &KarborState,
    project: &str,
    scope: &Scope,
) -> KResult<Vec<AnyPlan>> {
    let mut out: Vec<AnyPlan> = s
        .service
        .engine()
        .stored_plans()
        .await?
        .into_iter()
        .filter(|p| p.project_id == project)
        .map(AnyPlan::Stored)
        .collect();
    if *scope == Scope::All {
        out.extend(
            s.service
                .plans()
                .iter()
                .cloned()
                .map(|p| AnyPlan::Configured(Box::new(p))),
        );
    }
    Ok(out)
}

/// The plan `id` names for `project`, or Karbor's 404.
pub(super) async fn find_plan(
    s: &KarborState,
    project: &str,
    scope: &Scope,
    id: &str,
) -> KResult<AnyPlan> {
    let not_found = || Fault::not_found(format!("Plan {id} could not be found."));
    let wanted: PlanId = id.parse().map_err(|_| not_found())?;
    all_plans(s, project, scope)
        .await?
        .into_iter()
        .find(|p| p.id() == wanted)
        .ok_or_else(not_found)
}

fn string_field(body: &Map<String, Value>, key: &str) -> KResult<Option<String>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad(format!("{key} must be a string"))),
    }
}

fn plan_body(body: &Value) -> KResult<&Map<String, Value>> {
    body.get("plan")
        .and_then(Value::as_object)
        .ok_or_else(|| Fault::bad_request("Missing required element 'plan' in request body."))
}

fn name_of(name: Option<String>) -> KResult<String> {
    let name = name.ok_or_else(|| bad("the plan's name is required"))?;
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed.len() > 255 {
        return Err(bad("the plan's name must be 1 to 255 characters"));
    }
    Ok(trimmed.to_string())
}

/// The resources of a plan, checked.
fn resources_of(v: &Value) -> KResult<Vec<PlanResource>> {
    let list = v
        .as_array()
        .filter(|l| !l.is_empty())
        .ok_or_else(|| bad("resources must be a non-empty list"))?;
    let mut out: Vec<PlanResource> = Vec::with_capacity(list.len());
    for (i, r) in list.iter().enumerate() {
        let r: PlanResource = serde_json::from_value(r.clone()).map_err(|e| {
            bad(format!(
                "resource {i} must have id, type and name as strings: {e}"
            ))
        })?;
        if r.id.is_empty() || r.name.is_empty() {
            return Err(bad(format!("resource {i} has an empty id or name")));
        }
        if r.kind != POD && r.kind != VOLUME {
            return Err(bad(format!(
                "resource {} has type {:?}: a podbank plan protects {POD} (and its {VOLUME} \
                 dependents)",
                r.id, r.kind
            )));
        }
        if out.iter().any(|o| o.id == r.id && o.kind == r.kind) {
            return Err(bad(format!("resource {} is listed twice", r.id)));
        }
        out.push(r);
    }
    if !out.iter().any(|r| r.kind == POD) {
        return Err(bad(format!("a plan needs at least one {POD} resource")));
    }
    Ok(out)
}

/// The parameters of a plan, checked against the provider's options schema.
fn parameters_of(v: Option<&Value>) -> KResult<Map<String, Value>> {
    let params = match v {
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err(bad("parameters must be a dict")),
        None => return Err(bad("parameters are required (with the pod's backup_name)")),
    };
    for key in params.keys() {
        if key != POD {
            return Err(bad(format!(
                "parameters for {key:?}: podbank takes one set of options for every pod of a \
                 plan, under {POD:?}"
            )));
        }
    }
    let pod = params.get(POD).cloned().unwrap_or_else(|| json!({}));
    ProtectParams::from_json(&pod).map_err(|e| bad(format!("parameters of {POD}: {e}")))?;
    Ok(params)
}

fn provider_of(v: Option<String>) -> KResult<String> {
    let p = v.ok_or_else(|| bad("provider_id is required"))?;
    if uuid::Uuid::try_parse(&p).is_err() {
        return Err(bad(format!("provider_id {p:?} is not a UUID")));
    }
    if p != PROVIDER_ID {
        return Err(Fault::not_found(format!(
            "Provider {p} could not be found."
        )));
    }
    Ok(p)
}

/// `POST /v1/{project_id}/plans`.
#[utoipa::path(post, path = "/v1/{project_id}/plans", tag = "karbor", summary = "Create a plan (parameters validated against the options schema)",
    params(("project_id" = String, Path, description = "Project (tenant) id")),
    request_body(content = Object, description = "Karbor's request body"),
    responses((status = 200, description = "Create a plan (parameters validated against the options schema)", body = Object),
              (status = 400, description = "Bad request (Karbor fault body)", body = Object),
              (status = 401, description = "No or wrong X-Auth-Token", body = Object)),
    security(("karbor_token" = [])))]
pub(super) async fn create(
    State(s): State<KarborState>,
    Path(project): Path<String>,
    Json(body): Json<Value>,
) -> KResult<Response> {
    let b = plan_body(&body)?;
    let name = name_of(string_field(b, "name")?)?;
    let provider_id = provider_of(string_field(b, "provider_id")?)?;
    let resources = resources_of(b.get("resources").unwrap_or(&Value::Null))?;
    let parameters = parameters_of(b.get("parameters"))?;
    let plan = StoredPlan {
        id: PlanId::generate(),
        project_id: project.clone(),
        name,
        description: string_field(b, "description")?.unwrap_or_default(),
        provider_id,
        status: PlanStatus::Suspended,
        resources,
        parameters,
        created: chrono::Utc::now(),
    };
    s.service.engine().save_plan(&plan).await?;
    let view = AnyPlan::Stored(plan).view(&project);
    Ok((StatusCode::OK, Json(json!({ "plan": view }))).into_response())
}

/// `GET /v1/{project_id}/plans`: filters `name`, `status`, `description`; paging by
/// `marker` and `limit`.
#[utoipa::path(get, path = "/v1/{project_id}/plans", tag = "karbor", summary = "Plans (stored ones and the config file's, read-only), paged",
    params(("project_id" = String, Path, description = "Project (tenant) id")),
    responses((status = 200, description = "Plans (stored ones and the config file's, read-only), paged", body = Object),
              (status = 400, description = "Bad request (Karbor fault body)", body = Object),
              (status = 401, description = "No or wrong X-Auth-Token", body = Object)),
    security(("karbor_token" = [])))]
pub(super) async fn list(
    State(s): State<KarborState>,
    Extension(scope): Extension<Scope>,
    repr: super::podbank::Repr,
    Path(project): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> KResult<Response> {
    if repr == super::podbank::Repr::Podbank {
        return Ok(super::podbank::list_plans(&s.service, &scope));
    }
    let limit = limit_of(&q)?;
    let views: Vec<Value> = all_plans(&s, &project, &scope)
        .await?
        .iter()
        .map(|p| p.view(&project))
        .filter(|v| super::matches_query(v, &q, &["name", "status", "description"]))
        .collect();
    let views = paged(views, &q, limit)?;
    Ok(Json(json!({ "plans": views })).into_response())
}

/// `GET /v1/{project_id}/plans/{plan_id}`.
#[utoipa::path(get, path = "/v1/{project_id}/plans/{plan_id}", tag = "karbor", summary = "A plan",
    params(("project_id" = String, Path, description = "Project (tenant) id"), ("plan_id" = String, Path, description = "Plan id")),
    responses((status = 200, description = "A plan", body = Object),
              (status = 401, description = "No or wrong X-Auth-Token", body = Object),
              (status = 404, description = "Not found (Karbor fault body)", body = Object)),
    security(("karbor_token" = [])))]
pub(super) async fn show(
    State(s): State<KarborState>,
    Extension(scope): Extension<Scope>,
    Path((project, id)): Path<(String, String)>,
) -> KResult<Json<Value>> {
    let plan = find_plan(&s, &project, &scope, &id).await?;
    Ok(Json(json!({ "plan": plan.view(&project) })))
}

fn stored(plan: AnyPlan, id: &str) -> KResult<StoredPlan> {
    match plan {
        AnyPlan::Stored(p) => Ok(p),
        AnyPlan::Configured(p) => Err(Fault::new(
            StatusCode::FORBIDDEN,
            format!(
                "plan {id} ({}) is configured in the agent's config file: change it there",
                p.name
            ),
        )),
    }
}

/// `PUT /v1/{project_id}/plans/{plan_id}`: name, description, resources and status; only
/// a suspended plan may change anything but its status.
#[utoipa::path(put, path = "/v1/{project_id}/plans/{plan_id}", tag = "karbor", summary = "Update a plan",
    params(("project_id" = String, Path, description = "Project (tenant) id"), ("plan_id" = String, Path, description = "Plan id")),
    request_body(content = Object, description = "Karbor's request body"),
    responses((status = 200, description = "Update a plan", body = Object),
              (status = 400, description = "Bad request (Karbor fault body)", body = Object),
              (status = 401, description = "No or wrong X-Auth-Token", body = Object),
              (status = 403, description = "Forbidden (Karbor fault body)", body = Object),
              (status = 404, description = "Not found (Karbor fault body)", body = Object)),
    security(("karbor_token" = [])))]
pub(super) async fn update(
    State(s): State<KarborState>,
    Extension(scope): Extension<Scope>,
    Path((project, id)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> KResult<Json<Value>> {
    let b = plan_body(&body)?;
    let mut plan = stored(find_plan(&s, &project, &scope, &id).await?, &id)?;
    for key in b.keys() {
        if !["name", "description", "resources", "status"].contains(&key.as_str()) {
            return Err(bad(format!(
                "{key} cannot be updated (name, description, resources, status can)"
            )));
        }
    }
    let status = match string_field(b, "status")? {
        None => plan.status,
        Some(label) => PlanStatus::from_label(&label)
            .ok_or_else(|| bad(format!("status {label:?} is not one of suspended, started")))?,
    };
    let changes_content = b.keys().any(|k| k != "status");
    if changes_content && plan.status != PlanStatus::Suspended && status != PlanStatus::Suspended {
        return Err(Fault::new(
            StatusCode::CONFLICT,
            format!("plan {id} is started: only a suspended plan can be changed"),
        ));
    }
    if b.contains_key("name") {
        plan.name = name_of(string_field(b, "name")?)?;
    }
    if let Some(d) = string_field(b, "description")? {
        plan.description = d;
    }
    if let Some(r) = b.get("resources") {
        plan.resources = resources_of(r)?;
    }
    plan.status = status;
    s.service.engine().save_plan(&plan).await?;
    Ok(Json(
        json!({ "plan": AnyPlan::Stored(plan).view(&project) }),
    ))
}

/// `DELETE /v1/{project_id}/plans/{plan_id}`: the plan goes; its checkpoints stay.
#[utoipa::path(delete, path = "/v1/{project_id}/plans/{plan_id}", tag = "karbor", summary = "Delete a plan",
    params(("project_id" = String, Path, description = "Project (tenant) id"), ("plan_id" = String, Path, description = "Plan id")),
    responses((status = 202, description = "Delete a plan", body = Object),
              (status = 401, description = "No or wrong X-Auth-Token", body = Object),
              (status = 403, description = "Forbidden (Karbor fault body)", body = Object),
              (status = 404, description = "Not found (Karbor fault body)", body = Object)),
    security(("karbor_token" = [])))]
pub(super) async fn delete(
    State(s): State<KarborState>,
    Extension(scope): Extension<Scope>,
    Path((project, id)): Path<(String, String)>,
) -> KResult<StatusCode> {
    let plan = stored(find_plan(&s, &project, &scope, &id).await?, &id)?;
    match s.service.engine().remove_plan(&plan.id).await {
        Ok(()) => Ok(StatusCode::ACCEPTED),
        Err(EngineError::NotFound(_)) => {
            Err(Fault::not_found(format!("Plan {id} could not be found.")))
        }
        Err(e) => Err(e.into()),
    }
}
