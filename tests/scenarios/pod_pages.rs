//! Protectable instances a page at a time, over a real etcd: pages of every size list what
//! one listing lists (ids, names, dependents, closure), each pod's dependents in a page are
//! those it has on its own, a marker keeps its place while pods come and go, and a limit
//! above the maximum is clamped and said so.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use podbank::agent::Service;
use podbank::bank::{backend, Bank, OpenOptions};
use podbank::codec::Decoder;
use podbank::engine::{
    Engine, Lazy, LocalEngine, PageRequest, PodSpecifier, SelectionSpec, VolumeMode,
};
use podbank::etcd::Etcd;
use podbank::model::ObjectRef;
use podbank_seed::{self as seed, SeedObject, SeedPlan};
use serde_json::Value;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::support::etcd::TestEtcd;

/// What asks for podbank's representation.
const PODBANK_JSON: &str = "application/vnd.podbank+json";
const TOKEN: &str = "pages-token-0123456789";
const PROJECT: &str = "0f7e1a2b3c4d4e5f8a9b0c1d2e3f4a5b";
const INSTANCES: &str = "protectables/OS::Kubernetes::Pod/instances";

struct Rig {
    _etcd: TestEtcd,
    _dir: tempfile::TempDir,
    client: Etcd,
    engine: Arc<LocalEngine>,
    router: Router,
    _leading: watch::Sender<bool>,
}

/// An agent's router over an etcd holding `objects`.
async fn start(objects: Vec<SeedObject>) -> Rig {
    let etcd = TestEtcd::start();
    let client = etcd.connect().await;
    seed::write(&client, objects).await.expect("seed");
    let dir = tempfile::tempdir().expect("tempdir");
    let backend =
        backend::open(&format!("file://{}", dir.path().join("bank").display())).expect("backend");
    let bank = Bank::open(
        backend,
        OpenOptions {
            key: None,
            create: true,
            pack_target_bytes: None,
        },
    )
    .await
    .expect("bank");
    let engine = Arc::new(LocalEngine::new(
        Lazy::ready(client.clone()),
        Decoder::new(None),
        Lazy::ready(bank),
        VolumeMode::Skip("no Cinder in this test".into()),
    ));
    let (tx, rx) = watch::channel(true);
    let service = Service::new(engine.clone(), Vec::new(), rx);
    let (router, _) = podbank::agent::http::router(service, Some(TOKEN.as_bytes()));
    Rig {
        _etcd: etcd,
        _dir: dir,
        client,
        engine,
        router,
        _leading: tx,
    }
}

fn seeded(pods: usize) -> Vec<SeedObject> {
    seed::generate(&SeedPlan {
        pods,
        namespaces: 3,
        ..SeedPlan::default()
    })
    .collect()
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Value,
}

async fn get(router: &Router, uri: &str) -> Answer {
    get_as(router, uri, None).await
}

/// A GET asking for `accept` (`Some(PODBANK_JSON)`: podbank's representation, the CLI's).
async fn get_as(router: &Router, uri: &str, accept: Option<&str>) -> Answer {
    let mut req = Request::builder()
        .method(Method::GET)
        .uri(uri)
        .header("X-Auth-Token", TOKEN)
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
    if let Some(a) = accept {
        req = req.header(header::ACCEPT, a);
    }
    let req = req.body(Body::empty()).expect("request");
    let resp = router.clone().oneshot(req).await.expect("infallible");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)));
    Answer {
        status,
        headers,
        body,
    }
}

/// Every Karbor instance, page by page of `limit` (none: one request); the pages' sizes.
async fn karbor_pages(router: &Router, limit: Option<usize>) -> (Vec<Value>, Vec<usize>) {
    let mut out = Vec::new();
    let mut sizes = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let mut uri = format!("/v1/{PROJECT}/{INSTANCES}");
        let mut q = Vec::new();
        if let Some(l) = limit {
            q.push(format!("limit={l}"));
        }
        if let Some(m) = &marker {
            q.push(format!("marker={m}"));
        }
        if !q.is_empty() {
            uri.push('?');
            uri.push_str(&q.join("&"));
        }
        let a = get(router, &uri).await;
        assert_eq!(a.status, StatusCode::OK, "{uri}: {}", a.body);
        let items = a.body["instances"].as_array().cloned().unwrap_or_default();
        sizes.push(items.len());
        let next = a.body["instances_links"][0]["href"].as_str().map(|h| {
            let m = h.split("marker=").nth(1).unwrap_or_default();
            m.split('&').next().unwrap_or_default().to_string()
        });
        match next {
            Some(m) => {
                assert_eq!(
                    items.last().and_then(|i| i["id"].as_str()),
                    Some(m.as_str()),
                    "the next marker is the last id of the page"
                );
                marker = Some(m);
                out.extend(items);
            }
            None => {
                out.extend(items);
                return (out, sizes);
            }
        }
        assert!(sizes.len() <= 100, "pages do not end: {sizes:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_of_every_size_list_what_one_listing_lists() {
    let rig = start(seeded(13)).await;
    let (all, sizes) = karbor_pages(&rig.router, None).await;
    assert_eq!(sizes, vec![13]);
    // The same pods, in the same (key) order, as the engine's whole listing.
    let listed: Vec<String> = rig
        .engine
        .pods(&SelectionSpec::default())
        .await
        .expect("pods")
        .items
        .into_iter()
        .map(|p| p.id)
        .collect();
    let ids: Vec<&str> = all.iter().filter_map(|i| i["id"].as_str()).collect();
    assert_eq!(ids, listed);
    // Each pod's dependents and closure in a page are what it has on its own.
    let mut with_closure = 0;
    for instance in &all {
        let name: ObjectRef = instance["name"]
            .as_str()
            .expect("name")
            .parse()
            .expect("ns/name");
        let one = rig
            .engine
            .pod(&PodSpecifier::Name(name.clone()))
            .await
            .expect("pod");
        let page = rig
            .engine
            .pod_page(
                &SelectionSpec {
                    namespaces: vec![name.namespace().parse().unwrap()],
                    ..SelectionSpec::default()
                },
                &PageRequest {
                    after: None,
                    limit: 1000,
                },
            )
            .await
            .expect("page");
        let in_page = page
            .items
            .iter()
            .find(|d| d.id == one.id)
            .expect("the pod is in its namespace's page");
        assert_eq!(
            serde_json::to_value(in_page).expect("json"),
            serde_json::to_value(&one).expect("json"),
            "{name}"
        );
        assert_eq!(
            instance["dependent_resources"]
                .as_array()
                .map(Vec::len)
                .unwrap_or(0),
            one.dependents.iter().filter(|d| d.id.is_some()).count() + one.closure.len(),
            "{name}: {instance}"
        );
        if !one.closure.is_empty() {
            with_closure += 1;
        }
    }
    assert!(with_closure > 0, "the seeded pods have closures");
    // Pages of every size give the same instances.
    for limit in 1..=14 {
        let (paged, sizes) = karbor_pages(&rig.router, Some(limit)).await;
        assert_eq!(paged, all, "limit {limit}");
        assert_eq!(sizes.len(), 13usize.div_ceil(limit).max(1), "limit {limit}");
    }
    // podbank's representation of the same route pages the same way.
    let mut own = Vec::new();
    let mut marker = String::new();
    loop {
        let uri = if marker.is_empty() {
            format!("/v1/{PROJECT}/{INSTANCES}?limit=4")
        } else {
            format!("/v1/{PROJECT}/{INSTANCES}?limit=4&marker={marker}")
        };
        let a = get_as(&rig.router, &uri, Some(PODBANK_JSON)).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        own.extend(
            a.body["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p["id"].as_str().map(String::from)),
        );
        match a.body["next"].as_str() {
            Some(n) => marker = n.to_string(),
            None => break,
        }
    }
    assert_eq!(own, listed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_marker_keeps_its_place_while_pods_come_and_go() {
    let objects = seeded(20);
    let mut pod_keys: Vec<String> = objects
        .iter()
        .filter(|o| o.key.starts_with("/registry/pods/"))
        .map(|o| o.key.clone())
        .collect();
    pod_keys.sort();
    assert_eq!(pod_keys.len(), 20);
    // Two pods come later: one after the first page's end, one at the end.
    let late = [pod_keys[8].clone(), pod_keys[19].clone()];
    let (now, later): (Vec<SeedObject>, Vec<SeedObject>) =
        objects.into_iter().partition(|o| !late.contains(&o.key));
    let rig = start(now).await;
    let page = |after: Option<PodSpecifier>| {
        let engine = Arc::clone(&rig.engine);
        async move {
            engine
                .pod_page(&SelectionSpec::default(), &PageRequest { after, limit: 5 })
                .await
                .expect("page")
        }
    };
    let first = page(None).await;
    let keys = |p: &podbank::engine::PodPage| -> Vec<String> {
        p.items.iter().map(|d| d.pod.key.clone()).collect()
    };
    assert_eq!(keys(&first), pod_keys[..5].to_vec());
    assert!(first.more);
    let marker = first.items.last().expect("a pod").id.clone();
    // The marker's pod goes, another before it goes, the late pods come.
    let mut kv = rig.client.client().kv_client();
    kv.delete(pod_keys[4].clone(), None).await.expect("delete");
    kv.delete(pod_keys[2].clone(), None).await.expect("delete");
    seed::write(&rig.client, later).await.expect("late pods");
    let mut seen = keys(&first);
    let mut after = Some(PodSpecifier::Uid(marker));
    loop {
        let p = page(after.clone()).await;
        seen.extend(keys(&p));
        match (p.more, p.items.last()) {
            (true, Some(last)) => after = Some(PodSpecifier::Uid(last.id.clone())),
            _ => break,
        }
    }
    // Every pod after the marker's place, the late ones included, once and in order.
    let mut want: Vec<String> = pod_keys[..5].to_vec();
    want.extend(pod_keys[5..].iter().cloned());
    assert_eq!(seen, want);
    // A uid no listing has shown is a clear error, not a silent first page.
    let err = rig
        .engine
        .pod_page(
            &SelectionSpec::default(),
            &PageRequest {
                after: Some(PodSpecifier::Uid(
                    "00000000-0000-0000-0000-000000000000".into(),
                )),
                limit: 5,
            },
        )
        .await
        .expect_err("unknown marker");
    assert!(err.to_string().contains("marker"), "{err}");
    let a = get(
        &rig.router,
        &format!("/v1/{PROJECT}/{INSTANCES}?marker=00000000-0000-0000-0000-000000000000"),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    assert!(a.body["badRequest"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("marker")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_above_the_maximum_is_clamped_and_said() {
    let rig = start(seeded(3)).await;
    let uri = format!("/v1/{PROJECT}/{INSTANCES}?limit=5000");
    // Both representations: Karbor's and podbank's.
    for accept in [None, Some(PODBANK_JSON)] {
        let a = get_as(&rig.router, &uri, accept).await;
        assert_eq!(a.status, StatusCode::OK, "{uri}: {}", a.body);
        let warning = a
            .headers
            .get(header::WARNING)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(
            warning.contains("limit 5000") && warning.contains("1000"),
            "{uri}: {warning:?}"
        );
        let n = a.body["instances"]
            .as_array()
            .or_else(|| a.body["items"].as_array())
            .map(Vec::len);
        assert_eq!(n, Some(3), "{uri}");
    }
    let a = get(&rig.router, &format!("/v1/{PROJECT}/{INSTANCES}?limit=2")).await;
    assert!(a.headers.get(header::WARNING).is_none());
}
