//! Whether a live object (as the API server answers it, JSON) holds the same content as a
//! stored one: for the objects pods reference, what the pods read. A ConfigMap's `data` and
//! `binaryData`, a Secret's `type` and `data`, a ServiceAccount's `secrets`,
//! `imagePullSecrets` and `automountServiceAccountToken`. Metadata (uid, labels, managed
//! fields) is not content.

use std::collections::BTreeMap;

use base64::Engine as _;
use k8s_pb::api::core::v1 as core;
use serde_json::Value;

use super::key::ResourceKind;
use super::value::{parse_plain, Encoding};
use super::CodecError;

/// Whether `live` holds the content of `stored` (plain stored bytes). `Ok(None)` for a
/// kind whose content is not compared.
pub fn same_content(
    kind: ResourceKind,
    stored: Vec<u8>,
    live: &Value,
) -> Result<Option<bool>, CodecError> {
    let object = parse_plain(kind.kind(), stored)?;
    let stored: Value = match object.encoding() {
        Encoding::Json => object.decode_json()?,
        Encoding::Protobuf => match kind {
            ResourceKind::ConfigMap => config_map(object.decode_protobuf()?),
            ResourceKind::Secret => secret(object.decode_protobuf()?),
            ResourceKind::ServiceAccount => service_account(object.decode_protobuf()?),
            _ => return Ok(None),
        },
    };
    let fields = kind.api().content;
    if fields.is_empty() {
        return Ok(None);
    }
    let empty = |v: Option<&Value>| match v {
        None | Some(Value::Null) => Value::Null,
        Some(Value::Object(m)) if m.is_empty() => Value::Null,
        Some(Value::Array(a)) if a.is_empty() => Value::Null,
        Some(v) => v.clone(),
    };
    // References are compared by name: the API server may fill in more of them.
    let names = |v: Value| match v {
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|o| serde_json::json!({"name": o.get("name").cloned().unwrap_or(Value::Null)}))
                .collect(),
        ),
        other => other,
    };
    Ok(Some(fields.iter().all(|f| {
        let (mut a, mut b) = (empty(stored.get(*f)), empty(live.get(*f)));
        if kind == ResourceKind::ServiceAccount {
            (a, b) = (names(a), names(b));
        }
        // A Secret of no type is Opaque.
        if *f == "type" && kind == ResourceKind::Secret {
            let opaque = |v: &Value| {
                v.as_str()
                    .filter(|s| !s.is_empty())
                    .unwrap_or("Opaque")
                    .to_string()
            };
            return opaque(&a) == opaque(&b);
        }
        a == b
    })))
}

fn b64(bytes: &[u8]) -> Value {
    Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
}

fn config_map(cm: core::ConfigMap) -> Value {
    let binary: BTreeMap<String, Value> = cm
        .binary_data
        .iter()
        .map(|(k, v)| (k.clone(), b64(v)))
        .collect();
    serde_json::json!({"data": cm.data, "binaryData": binary})
}

fn secret(s: core::Secret) -> Value {
    let data: BTreeMap<String, Value> = s.data.iter().map(|(k, v)| (k.clone(), b64(v))).collect();
    serde_json::json!({"type": s.r#type.unwrap_or_default(), "data": data})
}

fn service_account(sa: core::ServiceAccount) -> Value {
    let refs = |r: &[core::ObjectReference]| -> Vec<Value> {
        r.iter()
            .map(|o| serde_json::json!({"name": o.name.clone().unwrap_or_default()}))
            .collect()
    };
    let pulls: Vec<Value> = sa
        .image_pull_secrets
        .iter()
        .map(|o| serde_json::json!({"name": o.name.clone().unwrap_or_default()}))
        .collect();
    serde_json::json!({
        "secrets": refs(&sa.secrets),
        "imagePullSecrets": pulls,
        "automountServiceAccountToken": sa.automount_service_account_token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::encode_envelope;
    use prost::Message;
    use serde_json::json;

    fn stored<M: Message>(kind: &str, m: &M) -> Vec<u8> {
        encode_envelope("v1", kind, &m.encode_to_vec())
    }

    #[test]
    fn secrets_compare_their_decoded_data_and_type() {
        let s = core::Secret {
            data: [("token".to_string(), b"abc".to_vec())].into(),
            ..Default::default()
        };
        let bytes = || stored("Secret", &s);
        let same = json!({"type": "Opaque", "data": {"token": "YWJj"}, "metadata": {"uid": "x"}});
        let other = json!({"type": "Opaque", "data": {"token": "YWJk"}});
        let typed = json!({"type": "kubernetes.io/tls", "data": {"token": "YWJj"}});
        assert_eq!(
            same_content(ResourceKind::Secret, bytes(), &same).ok(),
            Some(Some(true))
        );
        assert_eq!(
            same_content(ResourceKind::Secret, bytes(), &other).ok(),
            Some(Some(false))
        );
        assert_eq!(
            same_content(ResourceKind::Secret, bytes(), &typed).ok(),
            Some(Some(false))
        );
    }

    #[test]
    fn service_accounts_compare_references_by_name() {
        let sa = core::ServiceAccount {
            image_pull_secrets: vec![core::LocalObjectReference {
                name: Some("pull".into()),
            }],
            ..Default::default()
        };
        let bytes = || stored("ServiceAccount", &sa);
        let same = json!({"imagePullSecrets": [{"name": "pull"}], "secrets": []});
        let other = json!({"imagePullSecrets": [{"name": "other"}]});
        assert_eq!(
            same_content(ResourceKind::ServiceAccount, bytes(), &same).ok(),
            Some(Some(true))
        );
        assert_eq!(
            same_content(ResourceKind::ServiceAccount, bytes(), &other).ok(),
            Some(Some(false))
        );
        assert_eq!(
            same_content(ResourceKind::Pod, bytes(), &other).ok(),
            Some(None)
        );
    }
}
