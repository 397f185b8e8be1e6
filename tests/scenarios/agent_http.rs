//! The agent's HTTP API, end to end through the axum router over an in-memory engine:
//! every endpoint, authentication, errors, the 202 + status URL flow, and the OpenAPI
//! document against the routes the router really serves.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::support::engine::{wait_for, MemoryEngine};
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use podbank::agent::{AgentConfig, Service};
use serde_json::{json, Value};
use tokio::sync::watch;
use tower::ServiceExt;

const TOKEN: &str = "test-token-0123456789";
/// Karbor's checkpoints of podbank's provider, in the project the tests use.
const CHECKPOINTS: &str = "/v1/podbank/providers/b6a1c0de-7f3e-4c55-9a2d-0d0b0a4b0d01/checkpoints";
/// What asks for podbank's own representation.
const PODBANK_JSON: &str = "application/vnd.podbank+json";

struct Api {
    router: Router,
    service: Arc<Service>,
    engine: Arc<MemoryEngine>,
    _leading: watch::Sender<bool>,
}

fn api() -> Api {
    let config = AgentConfig::from_yaml(
        &serde_yaml::from_str(
            r#"
plans:
  - name: hourly
    namespaces: [shop]
    schedule: "0 * * * *"
    options: { backup_name: hourly, description: every hour }
    retention: { keep_last: 2 }
"#,
        )
        .expect("yaml"),
    )
    .expect("config");
    let engine = MemoryEngine::new("a", 3);
    let (tx, rx) = watch::channel(true);
    let service = Service::new(engine.clone(), config.plans().expect("plans"), rx);
    let (router, _) = podbank::agent::http::router(Arc::clone(&service), Some(TOKEN.as_bytes()));
    Api {
        router,
        service,
        engine,
        _leading: tx,
    }
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
}

/// A call asking for podbank's representation.
async fn call(
    router: &Router,
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Answer {
    call_as(router, method, uri, token, body, Some(PODBANK_JSON)).await
}

/// A call asking for `accept` (`None`: Karbor's bodies, as karborclient asks).
async fn call_as(
    router: &Router,
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
    accept: Option<&str>,
) -> Answer {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(a) = accept {
        req = req.header(header::ACCEPT, a);
    }
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = match body {
        Some(b) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .expect("request");
    let resp = router.clone().oneshot(req).await.expect("infallible");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    Answer {
        status,
        headers,
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

async fn get(api: &Api, uri: &str) -> Answer {
    call(&api.router, Method::GET, uri, Some(TOKEN), None).await
}

/// Follow a 202's status URL until the operation ends; returns the record.
async fn finish(api: &Api, accepted: &Answer) -> Value {
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{}", accepted.text);
    let body = accepted.json();
    let url = body["statusUrl"].as_str().expect("status_url").to_string();
    assert_eq!(
        accepted
            .headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok()),
        Some(url.as_str())
    );
    assert_eq!(body["operation"]["state"], "running");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = get(api, &url).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let op = r.json();
        if op["state"] != "running" {
            return op;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "operation never ended: {op}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Every (method, path) the API serves: podbank's own (what Karbor has no resource for),
/// then Karbor's.
const ROUTES: [(&str, &str); 41] = [
    ("get", "/v1/operations"),
    ("get", "/v1/operations/{id}"),
    ("get", "/v1/openapi.json"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/"),
    ("get", "/v1"),
    ("get", "/v1/{project_id}/protectables"),
    ("get", "/v1/{project_id}/protectables/{protectable_type}"),
    (
        "get",
        "/v1/{project_id}/protectables/{protectable_type}/instances",
    ),
    (
        "get",
        "/v1/{project_id}/protectables/{protectable_type}/instances/{id}",
    ),
    ("get", "/v1/{project_id}/providers"),
    ("get", "/v1/{project_id}/providers/{provider_id}"),
    ("get", "/v1/{project_id}/plans"),
    ("post", "/v1/{project_id}/plans"),
    ("get", "/v1/{project_id}/plans/{plan_id}"),
    ("put", "/v1/{project_id}/plans/{plan_id}"),
    ("delete", "/v1/{project_id}/plans/{plan_id}"),
    ("get", "/v1/{project_id}/triggers"),
    ("post", "/v1/{project_id}/triggers"),
    ("get", "/v1/{project_id}/triggers/{trigger_id}"),
    ("put", "/v1/{project_id}/triggers/{trigger_id}"),
    ("delete", "/v1/{project_id}/triggers/{trigger_id}"),
    ("get", "/v1/{project_id}/scheduled_operations"),
    ("post", "/v1/{project_id}/scheduled_operations"),
    (
        "get",
        "/v1/{project_id}/scheduled_operations/{scheduled_operation_id}",
    ),
    (
        "delete",
        "/v1/{project_id}/scheduled_operations/{scheduled_operation_id}",
    ),
    ("get", "/v1/{project_id}/operation_logs"),
    ("get", "/v1/{project_id}/operation_logs/{operation_log_id}"),
    ("get", "/v1/{project_id}/verifications"),
    ("post", "/v1/{project_id}/verifications"),
    ("get", "/v1/{project_id}/verifications/{verification_id}"),
    (
        "get",
        "/v1/{project_id}/providers/{provider_id}/checkpoints",
    ),
    (
        "post",
        "/v1/{project_id}/providers/{provider_id}/checkpoints",
    ),
    (
        "get",
        "/v1/{project_id}/providers/{provider_id}/checkpoints/{checkpoint_id}",
    ),
    (
        "put",
        "/v1/{project_id}/providers/{provider_id}/checkpoints/{checkpoint_id}",
    ),
    (
        "delete",
        "/v1/{project_id}/providers/{provider_id}/checkpoints/{checkpoint_id}",
    ),
    ("get", "/v1/{project_id}/restores"),
    ("post", "/v1/{project_id}/restores"),
    ("get", "/v1/{project_id}/restores/{restore_id}"),
];

fn sample_uri(path: &str) -> String {
    path.replace("{id}", "uid-web-0")
        .replace("{name}", "hourly")
        .replace("{project_id}", "demo")
        .replace("{protectable_type}", "OS::Kubernetes::Pod")
        .replace("{provider_id}", podbank::agent::karbor::types::PROVIDER_ID)
        .replace("{plan_id}", "9d5c0c39-7b44-4b84-9d0c-9c4f4a3c2f11")
        .replace("{checkpoint_id}", "9d5c0c39-7b44-4b84-9d0c-9c4f4a3c2f12")
        .replace("{restore_id}", "9d5c0c39-7b44-4b84-9d0c-9c4f4a3c2f13")
}

fn method(m: &str) -> Method {
    Method::from_bytes(m.to_uppercase().as_bytes()).expect("method")
}

/// (method, path, secured) of every operation in the document.
fn doc_operations(doc: &Value) -> Vec<(String, String, bool)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (m, op) in item.as_object().expect("path item") {
            let secured = op["security"].as_array().is_some_and(|s| {
                s.iter()
                    .any(|r| r.get("bearer").is_some() || r.get("karbor_token").is_some())
            });
            out.push((m.clone(), path.clone(), secured));
        }
    }
    out
}

fn collect_refs(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "$ref" {
                    if let Some(s) = x.as_str() {
                        out.insert(s.to_string());
                    }
                }
                collect_refs(x, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_openapi_document_parses_and_lists_exactly_the_served_routes() {
    let api = api();
    let r = get(&api, "/v1/openapi.json").await;
    assert_eq!(r.status, StatusCode::OK);
    let doc = r.json();
    // It is an OpenAPI 3 document that utoipa's own model reads back.
    let parsed: utoipa::openapi::OpenApi =
        serde_json::from_value(doc.clone()).expect("a valid OpenAPI document");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    assert_eq!(parsed.info.title, "podbank agent");
    assert!(doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer");
    // Every $ref resolves.
    let mut refs = BTreeSet::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for r in refs {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected $ref {r}"));
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "dangling $ref {r}"
        );
    }
    // The document's operations are exactly the expected routes.
    let documented: BTreeSet<(String, String)> = doc_operations(&doc)
        .into_iter()
        .map(|(m, p, _)| (m, p))
        .collect();
    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, expected);
    assert_eq!(documented.len(), 41);
    // And the router serves every documented operation (no fallback, no 405).
    for (m, p, _) in doc_operations(&doc) {
        let body = (m == "post").then(|| json!({}));
        let r = call(&api.router, method(&m), &sample_uri(&p), Some(TOKEN), body).await;
        assert_ne!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{m} {p}");
        if r.status == StatusCode::NOT_FOUND {
            assert_ne!(
                r.json()["error"]["code"],
                "no_route",
                "{m} {p} is not routed"
            );
        }
    }
    // Something undocumented is not served.
    let r = get(&api, "/v1/nothing-here").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["error"]["code"], "no_route");
    let r = call(
        &api.router,
        Method::PUT,
        "/v1/podbank/plans",
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn every_v1_route_needs_the_bearer_token() {
    let api = api();
    let doc = get(&api, "/v1/openapi.json").await.json();
    let mut secured = 0;
    for (m, p, is_secured) in doc_operations(&doc) {
        let uri = sample_uri(&p);
        if !p.starts_with("/v1/") {
            assert!(!is_secured, "{p} must stay open for probes and scrapers");
            let r = call(&api.router, method(&m), &uri, None, None).await;
            assert_ne!(r.status, StatusCode::UNAUTHORIZED, "{p}");
            continue;
        }
        assert!(is_secured, "{m} {p} is not documented as secured");
        secured += 1;
        for token in [None, Some("wrong"), Some("test-token-012345678"), Some("")] {
            let body = (m == "post").then(|| json!({}));
            let r = call(&api.router, method(&m), &uri, token, body).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{m} {p} with {token:?}");
            // Asked for podbank's representation: podbank's error body, on every route.
            assert_eq!(r.json()["error"]["code"], "unauthorized");
            assert_eq!(
                r.headers
                    .get(header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok()),
                Some("Bearer")
            );
        }
    }
    assert_eq!(secured, 36);
    // The refused calls started nothing.
    assert!(api.engine.with_bank(|b| b.protects.is_empty()));
    assert!(api.service.operations().list().is_empty());
    // The right token passes everywhere.
    for (m, p, _) in doc_operations(&doc) {
        let body = (m == "post").then(|| json!({}));
        let r = call(&api.router, method(&m), &sample_uri(&p), Some(TOKEN), body).await;
        assert_ne!(r.status, StatusCode::UNAUTHORIZED, "{m} {p}");
    }
}

#[tokio::test]
async fn health_readiness_and_metrics_are_open() {
    let api = api();
    let r = call(&api.router, Method::GET, "/healthz", None, None).await;
    assert_eq!((r.status, r.text.as_str()), (StatusCode::OK, "ok\n"));

    let r = call(&api.router, Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let body = r.json();
    assert_eq!(body["ready"], true);
    let names: Vec<&str> = body["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["etcd", "bank", "agent"]);

    api.engine.bank_ok.store(false, Ordering::SeqCst);
    let r = call(&api.router, Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json()["checks"][1]["ok"], false);
    api.engine.bank_ok.store(true, Ordering::SeqCst);

    // One checkpoint, so that per-plan series exist.
    let op = finish(
        &api,
        &call(
            &api.router,
            Method::POST,
            CHECKPOINTS,
            Some(TOKEN),
            Some(json!({"run_plan": "hourly"})),
        )
        .await,
    )
    .await;
    assert_eq!(op["state"], "succeeded", "{op}");
    let r = call(&api.router, Method::GET, "/metrics", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/openmetrics-text")));
    for want in [
        "podbank_leader 1",
        "podbank_operations_running 0",
        "podbank_checkpoint_duration_seconds_count{plan=\"hourly\",outcome=\"available\"} 1",
        "podbank_objects_written_total{plan=\"hourly\"} 2",
        "podbank_bank_written_bytes_total{plan=\"hourly\"} 1000",
        "podbank_dedup_ratio{plan=\"hourly\"} 0.5",
        "podbank_last_success_timestamp_seconds{plan=\"hourly\"}",
        "podbank_cinder_backup_failures_total{plan=\"hourly\"} 0",
    ] {
        assert!(r.text.contains(want), "missing {want} in\n{}", r.text);
    }
}

#[tokio::test]
async fn protectables_list_show_and_dependents() {
    let api = api();
    let base = "/v1/podbank/protectables/OS::Kubernetes::Pod/instances";
    let r = get(&api, "/v1/podbank/protectables").await;
    assert_eq!(r.json()["protectable_type"][0], "OS::Kubernetes::Pod");
    let r = get(&api, base).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["items"].as_array().expect("items").len(), 3);
    let with = |p: Value| format!("{base}?parameters={}", encoded(&p.to_string()));
    let r = get(&api, &with(json!({"namespace": "shop"}))).await;
    assert_eq!(r.json()["items"].as_array().expect("items").len(), 2);
    let r = get(
        &api,
        &with(json!({"namespace": "shop,ops", "label_selector": "app=web"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = get(&api, &with(json!({"label_selector": "a in ("}))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["error"]["code"], "invalid");
    let r = get(&api, &with(json!({"namespace": "shop,Not_A_Namespace"}))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.text.contains("Not_A_Namespace"),
        "the 400 names the namespace: {}",
        r.text
    );

    for id in ["uid-db-0", "shop%2Fdb-0"] {
        let r = get(&api, &format!("{base}/{id}")).await;
        assert_eq!(r.status, StatusCode::OK, "{id}: {}", r.text);
        let pod = r.json();
        assert_eq!(pod["name"], "db-0", "{pod}");
        // Its dependents come with it: its Cinder volume first.
        assert_eq!(pod["dependents"][0]["type"], "OS::Cinder::Volume", "{pod}");
    }
    let r = get(&api, &format!("{base}/nope")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["error"]["code"], "not_found");
}

/// `text` percent-encoded for a query string.
fn encoded(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn checkpoints_create_list_show_delete() {
    let api = api();
    let body = json!({
        "selection": {"namespaces": ["shop"], "pods": ["shop/web-0"]},
        "parameters": {"backup_name": "adhoc", "description": "by hand"}
    });
    let accepted = call(
        &api.router,
        Method::POST,
        CHECKPOINTS,
        Some(TOKEN),
        Some(body),
    )
    .await;
    let op = finish(&api, &accepted).await;
    assert_eq!(op["state"], "succeeded", "{op}");
    assert_eq!(op["kind"], "protect");
    let id = op["result"]["checkpointId"]
        .as_str()
        .expect("checkpoint id")
        .to_string();
    assert_eq!(op["result"]["status"], "available");

    let list = get(&api, CHECKPOINTS).await.json();
    assert_eq!(list["items"].as_array().expect("items").len(), 1);
    assert_eq!(list["items"][0]["id"], id.as_str());
    assert_eq!(list["items"][0]["volumes"][0]["volumeId"], "vol-shop-web-0");
    let r = get(&api, &format!("{CHECKPOINTS}?plan=hourly")).await;
    assert_eq!(r.json()["items"], json!([]));
    let r = get(&api, &format!("{CHECKPOINTS}/{id}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["id"], id.as_str());
    let r = get(&api, &format!("{CHECKPOINTS}/cp-none")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Parameters are validated before anything starts.
    for (bad, code) in [
        (json!({"parameters": {"description": "no name"}}), "invalid"),
        (
            json!({"parameters": {"backup_name": "x", "description": "d", "bogus": 1}}),
            "invalid",
        ),
        (
            json!({"plan": "nope", "parameters": {"backup_name": "x", "description": "d"}}),
            "not_found",
        ),
        (
            json!({"selection": {"pods": 3}, "parameters": {}}),
            "invalid",
        ),
        (json!({"unknown_field": 1, "parameters": {}}), "invalid"),
    ] {
        let r = call(
            &api.router,
            Method::POST,
            CHECKPOINTS,
            Some(TOKEN),
            Some(bad.clone()),
        )
        .await;
        assert_eq!(r.json()["error"]["code"], code, "{bad}: {}", r.text);
        assert!(r.status.is_client_error(), "{bad}");
    }
    let req = Request::builder()
        .method(Method::POST)
        .uri(CHECKPOINTS)
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{not json"))
        .expect("request");
    let resp = api.router.clone().oneshot(req).await.expect("infallible");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(api.engine.with_bank(|b| b.protects.len()), 1);

    let accepted = call(
        &api.router,
        Method::DELETE,
        &format!("{CHECKPOINTS}/{id}"),
        Some(TOKEN),
        None,
    )
    .await;
    let op = finish(&api, &accepted).await;
    assert_eq!(op["state"], "succeeded", "{op}");
    assert_eq!(op["kind"], "delete_checkpoint");
    assert_eq!(op["target"], id.as_str());
    assert_eq!(get(&api, CHECKPOINTS).await.json()["items"], json!([]));
    // Deleting what is gone is known to fail: 404 at once, no operation (issue 11).
    let r = call(
        &api.router,
        Method::DELETE,
        &format!("{CHECKPOINTS}/{id}"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    assert!(r.text.contains("not found"), "{}", r.text);
}

#[tokio::test]
async fn restores_create_list_show() {
    let api = api();
    let op = finish(
        &api,
        &call(
            &api.router,
            Method::POST,
            CHECKPOINTS,
            Some(TOKEN),
            Some(json!({"run_plan": "hourly"})),
        )
        .await,
    )
    .await;
    let cp = op["result"]["checkpointId"]
        .as_str()
        .expect("id")
        .to_string();

    let body = json!({"checkpointId": cp, "pods": ["shop/web-0"],
                      "parameters": {"restore_name": "web-restored", "restore_description": "drill"}});
    let op = finish(
        &api,
        &call(
            &api.router,
            Method::POST,
            "/v1/podbank/restores",
            Some(TOKEN),
            Some(body),
        )
        .await,
    )
    .await;
    assert_eq!(op["state"], "succeeded", "{op}");
    assert_eq!(op["kind"], "restore");
    assert_eq!(op["result"]["status"], "success");
    let rid = op["result"]["id"].as_str().expect("restore id").to_string();

    let list = get(&api, "/v1/podbank/restores").await.json();
    assert_eq!(list["items"][0]["id"], rid.as_str());
    assert_eq!(list["items"][0]["checkpointId"], cp.as_str());
    let r = get(&api, &format!("/v1/podbank/restores/{rid}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["id"], rid.as_str());
    assert_eq!(
        get(&api, "/v1/podbank/restores/none").await.status,
        StatusCode::NOT_FOUND
    );

    // RESTORE_SCHEMA is checked up front.
    let bad = json!({"checkpointId": cp, "parameters": {"restore_name": "Not_DNS"}});
    let r = call(
        &api.router,
        Method::POST,
        "/v1/podbank/restores",
        Some(TOKEN),
        Some(bad),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    // A missing checkpoint is known to fail: 404 at once, no operation (issue 11).
    let body = json!({"checkpoint_id": "cp-none"});
    let r = call(
        &api.router,
        Method::POST,
        "/v1/podbank/restores",
        Some(TOKEN),
        Some(body),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    assert!(r.text.contains("cp-none"), "{}", r.text);
}

#[tokio::test]
async fn plans_list_trigger_busy_and_operations() {
    let api = api();
    let plans = get(&api, "/v1/podbank/plans").await.json();
    assert_eq!(plans["leader"], true);
    assert_eq!(plans["items"][0]["name"], "hourly");
    assert_eq!(plans["items"][0]["schedule"], "0 * * * *");
    assert_eq!(plans["items"][0]["retention"]["keepLast"], 2);
    assert_eq!(plans["items"][0]["running"], false);

    api.engine.set_delay(Duration::from_millis(500));
    let first = call(
        &api.router,
        Method::POST,
        CHECKPOINTS,
        Some(TOKEN),
        Some(json!({"run_plan": "hourly"})),
    )
    .await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    let r = call(
        &api.router,
        Method::POST,
        CHECKPOINTS,
        Some(TOKEN),
        Some(json!({"run_plan": "hourly"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert_eq!(r.json()["error"]["code"], "busy");
    let plans = get(&api, "/v1/podbank/plans").await.json();
    assert_eq!(plans["items"][0]["running"], true);
    assert_eq!(
        plans["items"][0]["lastOperation"],
        first.json()["operation"]["id"]
    );
    let op = finish(&api, &first).await;
    assert_eq!(op["state"], "succeeded");
    assert_eq!(op["kind"], "plan_run");
    assert_eq!(op["plan"], "hourly");
    assert_eq!(op["result"]["trigger"], "manual");
    assert_eq!(op["result"]["retention"]["deleted"], json!([]));

    let r = call(
        &api.router,
        Method::POST,
        CHECKPOINTS,
        Some(TOKEN),
        Some(json!({"run_plan": "nope"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let ops = get(&api, "/v1/operations").await.json();
    assert_eq!(ops["items"].as_array().expect("items").len(), 1);
    assert_eq!(
        get(&api, "/v1/operations/op-none").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_closing_agent_refuses_new_work_and_is_not_ready() {
    let api = api();
    api.service.operations().close();
    let r = call(
        &api.router,
        Method::POST,
        CHECKPOINTS,
        Some(TOKEN),
        Some(json!({"run_plan": "hourly"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json()["error"]["code"], "shutting_down");
    let r = call(
        &api.router,
        Method::DELETE,
        &format!("{CHECKPOINTS}/x"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    let r = call(&api.router, Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    // Reads still work while draining.
    assert_eq!(get(&api, "/v1/podbank/plans").await.status, StatusCode::OK);
    wait_for("nothing running", Duration::from_secs(1), || {
        api.service.operations().running() == 0
    })
    .await;
}

#[tokio::test]
async fn reads_past_the_bound_are_refused_with_retry_after_and_the_agent_recovers() {
    use podbank::agent::limit::ReadLimits;
    let engine = MemoryEngine::new("a", 3);
    let (_tx, rx) = watch::channel(true);
    let service = Service::with_read_limits(
        engine.clone(),
        Vec::new(),
        rx,
        ReadLimits {
            concurrent: 1,
            waiting: 0,
            wait: Duration::ZERO,
        },
    );
    let (router, _) = podbank::agent::http::router(Arc::clone(&service), Some(TOKEN.as_bytes()));
    let own = "/v1/podbank/protectables/OS::Kubernetes::Pod/instances";
    let karbor = "/v1/0f7e1a2b3c4d4e5f8a9b0c1d2e3f4a5b/protectables/OS::Kubernetes::Pod/instances";
    // One read runs (held here): the next is refused at once, on both APIs.
    let turn = service.reads().enter().await.expect("a turn");
    let r = call(&router, Method::GET, own, Some(TOKEN), None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
    assert_eq!(
        r.headers
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    assert_eq!(r.json()["error"]["code"], "overloaded", "{}", r.text);
    let r = call_as(&router, Method::GET, karbor, Some(TOKEN), None, None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
    assert!(r.headers.get(header::RETRY_AFTER).is_some());
    assert_eq!(r.json()["serviceUnavailable"]["code"], 503, "{}", r.text);
    // Cheap routes are not bound; a request without the token is refused before it
    // could take a turn.
    let r = call(&router, Method::GET, "/healthz", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = call(&router, Method::GET, CHECKPOINTS, Some(TOKEN), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = call(&router, Method::GET, own, None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(service.reads().refused(), 2);
    // Once the read ends, reads are served again.
    drop(turn);
    let r = call(&router, Method::GET, own, Some(TOKEN), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["items"].as_array().map(Vec::len), Some(3));
    let r = call_as(&router, Method::GET, karbor, Some(TOKEN), None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}
