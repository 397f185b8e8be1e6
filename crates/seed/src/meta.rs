//! What every seeded object shares: deterministic ids, timestamps, `managedFields`
//! entries, quantities, etcd keys and the `k8s\0` storage envelope.

use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use prost::Message;
use sha2::{Digest, Sha256};

use podbank_core::codec::{encode_envelope, ResourceKind};

pub(super) fn s(v: impl Into<String>) -> Option<String> {
    Some(v.into())
}

/// A deterministic UUID-shaped id from some text.
pub fn uuid_from(text: &str) -> String {
    let h = Sha256::digest(text.as_bytes());
    let x = hex::encode(&h[..16]);
    format!(
        "{}-{}-4{}-a{}-{}",
        &x[0..8],
        &x[8..12],
        &x[13..16],
        &x[17..20],
        &x[20..32]
    )
}

pub(super) fn time(seconds: i64) -> Option<meta::Time> {
    Some(meta::Time {
        seconds: Some(seconds),
        nanos: Some(0),
    })
}

/// Seconds since the epoch of all seeded creation timestamps: 2026-11-01T00:00:00Z.
pub(super) const BASE_TIME: i64 = 1_793_491_200;

pub(super) fn managed_fields(
    manager: &str,
    seconds: i64,
    fields: &str,
) -> meta::ManagedFieldsEntry {
    meta::ManagedFieldsEntry {
        manager: s(manager),
        operation: s("Update"),
        api_version: s("v1"),
        time: time(seconds),
        fields_type: s("FieldsV1"),
        fields_v1: Some(meta::FieldsV1 {
            raw: Some(fields.as_bytes().to_vec()),
        }),
        subresource: None,
    }
}

pub(super) fn quantity(q: &str) -> Quantity {
    Quantity { string: s(q) }
}

pub(super) fn key_of(
    prefix: &str,
    kind: ResourceKind,
    namespace: Option<&str>,
    name: &str,
) -> String {
    match namespace {
        Some(ns) => format!("{prefix}/{}/{ns}/{name}", kind.resource()),
        None => format!("{prefix}/{}/{name}", kind.resource()),
    }
}

pub(super) fn envelope(kind: ResourceKind, message: &impl Message) -> Vec<u8> {
    encode_envelope(kind.api_version(), kind.kind(), &message.encode_to_vec())
}
