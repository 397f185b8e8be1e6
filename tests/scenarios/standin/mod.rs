//! The API-server stand-in over real HTTP, as podbank sees it: the control-plane behaviour
//! restore tests rely on (controllers, garbage collection, namespace lifecycle) and the JSON
//! shapes of kube-apiserver's answers.

use std::time::Duration;

use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use prost::Message;
use serde_json::Value;

use crate::support::apiserver::FakeApiServer;

mod objects;
mod workloads;

pub(super) const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";
pub(super) const WAIT: Duration = Duration::from_secs(5);

/// `k8s\0` + `runtime.Unknown` around `object`, as kube-apiserver's protobuf clients send it.
pub(super) fn envelope(api_version: &str, kind: &str, object: &impl Message) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.into()),
            kind: Some(kind.into()),
        }),
        raw: Some(object.encode_to_vec()),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut body = b"k8s\0".to_vec();
    body.extend(unknown.encode_to_vec());
    body
}

pub(super) fn labels(app: &str) -> std::collections::BTreeMap<String, String> {
    [("app".to_string(), app.to_string())].into()
}

pub(super) fn template(app: &str) -> core::PodTemplateSpec {
    core::PodTemplateSpec {
        metadata: Some(meta::ObjectMeta {
            labels: labels(app),
            annotations: [("example.com/note".to_string(), "kept".to_string())].into(),
            ..Default::default()
        }),
        spec: Some(core::PodSpec {
            containers: vec![core::Container {
                name: Some(app.into()),
                image: Some("registry.local/nginx:1.27".into()),
                ..Default::default()
            }],
            ..Default::default()
        }),
    }
}

pub(super) struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    pub(super) fn new(api: &FakeApiServer) -> Client {
        Client {
            http: reqwest::Client::new(),
            base: api.url(),
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        let resp = req
            .header("accept", "application/json")
            .send()
            .await
            .expect("request");
        let code = resp.status().as_u16();
        (code, resp.json().await.expect("a JSON answer"))
    }

    pub(super) async fn post(&self, path: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        self.send(
            self.http
                .post(url)
                .header("content-type", content_type)
                .body(body),
        )
        .await
    }

    pub(super) async fn post_json(&self, path: &str, body: Value) -> (u16, Value) {
        let body = serde_json::to_vec(&body).expect("json");
        self.post(path, "application/json", body).await
    }

    pub(super) async fn get(&self, path: &str) -> (u16, Value) {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    pub(super) async fn delete(&self, path: &str) -> (u16, Value) {
        self.send(self.http.delete(format!("{}{path}", self.base)))
            .await
    }
}

pub(super) fn controller_of(object: &Value) -> (String, String, String) {
    let refs = object["metadata"]["ownerReferences"]
        .as_array()
        .expect("ownerReferences");
    assert_eq!(refs.len(), 1, "one owner: {object}");
    let r = &refs[0];
    assert_eq!(r["controller"], true, "{r}");
    assert_eq!(r["blockOwnerDeletion"], true, "{r}");
    let s = |k: &str| r[k].as_str().expect("a string").to_string();
    (s("kind"), s("name"), s("uid"))
}
