//! The real [`Engine`]: an adapter from the agent's seam to [`crate::protection`] (protect,
//! delete, protectables over etcd) and [`crate::bank`] (checkpoint and restore records).
//!
//! It owns only the translation: agent requests into protection requests, bank records
//! into the agent's summaries and JSON views, protection errors into [`EngineError`]s.
//! The JSON detail of checkpoints and restores is [`crate::protection::report`]'s, the
//! same the CLI prints.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::engine::{
    CheckpointFilter, CheckpointId, CheckpointStatus, CheckpointSummary, Engine, EngineError,
    ProtectOutcome, ProtectRequest, ProtectStats, ProtectableQuery, ReadinessCheck, RestoreRequest,
    RestoreStatus, RestoreSummary, SelectionSpec, VolumeBackupRef,
};
use crate::bank::{self, pb, Bank, BankError, Kind};
use crate::codec::Decoder;
use crate::etcd::{Etcd, ScanOptions};
use crate::protection::inventory::NoHandler;
use crate::protection::report::{CheckpointView, RestoreView};
use crate::protection::schema::ProtectParams;
use crate::protection::{
    self, delete_checkpoint, read_inventory, Inventory, ProtectionError, Selection, Services,
    VolumeBackups,
};
use crate::resources::{FieldSelector, LabelSelector, POD_TYPE, VOLUME_TYPE};

/// How the engine backs up Cinder volumes.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum VolumeMode {
    /// No volume backups: volumes are recorded as not protected, with this reason.
    Skip(String),
    /// Back up, delete and restore volumes through this Cinder.
    Cinder(crate::cinder::Cinder),
}

/// The protection engine over etcd and a bank.
pub struct ProtectionEngine {
    etcd: Etcd,
    decoder: Decoder,
    bank: Arc<Bank>,
    volumes: VolumeMode,
    api: Option<crate::apiserver::ApiServer>,
}

impl ProtectionEngine {
    /// Lets the engine restore through this API server (without one, restores answer
    /// "unavailable").
    pub fn with_api_server(mut self, api: crate::apiserver::ApiServer) -> Self {
        self.api = Some(api);
        self
    }

    /// An engine reading `etcd` (with `decoder`) and keeping checkpoints in `bank`.
    pub fn new(etcd: Etcd, decoder: Decoder, bank: Arc<Bank>, volumes: VolumeMode) -> Self {
        ProtectionEngine {
            etcd,
            decoder,
            bank,
            volumes,
            api: None,
        }
    }

    fn backups(&self) -> VolumeBackups<'_> {
        match &self.volumes {
            VolumeMode::Skip(reason) => VolumeBackups::Skip(reason.clone()),
            VolumeMode::Cinder(c) => VolumeBackups::Cinder(c),
        }
    }

    fn scan_options(&self) -> ScanOptions {
        ScanOptions {
            page_size: self.etcd.config().page_size,
            ..ScanOptions::default()
        }
    }

    async fn inventory(&self, selection: &Selection) -> Result<Inventory, EngineError> {
        read_inventory(
            &self.etcd,
            &self.decoder,
            selection,
            &self.scan_options(),
            &mut NoHandler,
        )
        .await
        .map_err(from_protection)
    }

    /// Read one pod (by uid or `<namespace>/<name>`) with its catalog.
    async fn one_pod(&self, id: &str) -> Result<(Inventory, usize), EngineError> {
        let selection = match id.split_once('/') {
            Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
                Selection {
                    pods: vec![(ns.to_string(), name.to_string())],
                    ..Selection::default()
                }
            }
            None if !id.is_empty() => Selection {
                uids: vec![id.to_string()],
                ..Selection::default()
            },
            _ => {
                return Err(EngineError::Invalid(format!(
                    "pod {id:?}: expected <namespace>/<name> or a uid"
                )))
            }
        };
        let inv = self.inventory(&selection).await?;
        match inv.pods.len() {
            0 => Err(EngineError::NotFound {
                what: "pod",
                id: id.to_string(),
            }),
            1 => Ok((inv, 0)),
            n => Err(EngineError::Conflict(format!(
                "{n} pods have uid {id}; name one as <namespace>/<name>"
            ))),
        }
    }
}

/// The agent's selection as protection's.
pub fn selection_of(spec: &SelectionSpec) -> Result<Selection, EngineError> {
    let mut pods = Vec::new();
    for p in &spec.pods {
        match p.split_once('/') {
            Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
                pods.push((ns.to_string(), name.to_string()))
            }
            _ => {
                return Err(EngineError::Invalid(format!(
                    "pod {p:?}: expected <namespace>/<name>"
                )))
            }
        }
    }
    Ok(Selection {
        namespaces: spec.namespaces.clone(),
        labels: LabelSelector::parse(spec.label_selector.as_deref().unwrap_or(""))
            .map_err(|e| EngineError::Invalid(e.to_string()))?,
        fields: FieldSelector::default(),
        pods,
        uids: Vec::new(),
    })
}

fn from_protection(e: ProtectionError) -> EngineError {
    match e {
        ProtectionError::Bank(b) => from_bank(b),
        ProtectionError::Etcd(e) => EngineError::Unavailable(e.to_string()),
        e @ (ProtectionError::Resource(_) | ProtectionError::InvalidParameters(_)) => {
            EngineError::Invalid(e.to_string())
        }
        e @ ProtectionError::PodNotFound(..) => EngineError::NotFound {
            what: "pod",
            id: e.to_string(),
        },
        other => EngineError::Failed(other.to_string()),
    }
}

fn from_bank(e: BankError) -> EngineError {
    match e {
        BankError::CheckpointNotFound { id, .. } => EngineError::NotFound {
            what: "checkpoint",
            id: id.to_string(),
        },
        BankError::RestoreNotFound { id, .. } => EngineError::NotFound {
            what: "restore",
            id: id.to_string(),
        },
        e @ BankError::Locked { .. } => EngineError::Conflict(e.to_string()),
        e @ BankError::InvalidState { .. } => EngineError::Conflict(e.to_string()),
        e @ (BankError::Backend(_) | BankError::NotABank { .. }) => {
            EngineError::Unavailable(e.to_string())
        }
        other => EngineError::Failed(other.to_string()),
    }
}

fn time_of(ms: u64) -> DateTime<Utc> {
    i64::try_from(ms)
        .ok()
        .and_then(DateTime::from_timestamp_millis)
        .unwrap_or(DateTime::UNIX_EPOCH)
}

fn status_of(s: pb::CheckpointStatus) -> CheckpointStatus {
    match s {
        pb::CheckpointStatus::Protecting => CheckpointStatus::Protecting,
        pb::CheckpointStatus::Available => CheckpointStatus::Available,
        pb::CheckpointStatus::Deleting => CheckpointStatus::Deleting,
        pb::CheckpointStatus::Deleted => CheckpointStatus::Deleted,
        pb::CheckpointStatus::ErrorDeleting => CheckpointStatus::ErrorDeleting,
        pb::CheckpointStatus::Error | pb::CheckpointStatus::Unspecified => CheckpointStatus::Error,
    }
}

/// A bank checkpoint as the agent's summary.
pub fn summary_of(cp: &pb::Checkpoint) -> CheckpointSummary {
    let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    CheckpointSummary {
        id: CheckpointId(cp.id.clone()),
        plan: non_empty(&cp.plan),
        status: status_of(cp.status()),
        created_at: time_of(cp.created_unix_ms),
        volumes: cp
            .volumes
            .iter()
            .filter(|v| !v.backup_id.is_empty())
            .map(|v| VolumeBackupRef {
                volume_id: v.volume_id.clone(),
                backup_id: v.backup_id.clone(),
                incremental: v.incremental,
                parent_backup_id: non_empty(&v.parent_backup_id),
                parent_checkpoint_id: non_empty(&v.parent_checkpoint).map(CheckpointId),
            })
            .collect(),
    }
}

fn stats_of(cp: &pb::Checkpoint) -> ProtectStats {
    let s = cp.stats.unwrap_or_default();
    ProtectStats {
        pods: u64::from(cp.pods),
        objects_written: s.objects_new,
        objects_reused: s.objects.saturating_sub(s.objects_new),
        bytes_written: s.bytes_new,
        volume_backups: cp
            .volumes
            .iter()
            .filter(|v| !v.backup_id.is_empty())
            .count() as u64,
        volume_backup_failures: cp
            .volumes
            .iter()
            .filter(|v| v.status() == pb::VolumeStatus::VolumeError)
            .count() as u64,
    }
}

fn restore_summary(r: &pb::Restore) -> RestoreSummary {
    RestoreSummary {
        id: r.id.clone(),
        checkpoint_id: CheckpointId(r.checkpoint_id.clone()),
        status: match r.status() {
            pb::RestoreStatus::Success => RestoreStatus::Success,
            pb::RestoreStatus::InProgress => RestoreStatus::InProgress,
            pb::RestoreStatus::Fail | pb::RestoreStatus::Unspecified => RestoreStatus::Fail,
        },
        created_at: time_of(r.created_unix_ms),
    }
}

fn bank_id(id: &CheckpointId) -> Result<bank::CheckpointId, EngineError> {
    id.0.parse().map_err(EngineError::Invalid)
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<Value, EngineError> {
    serde_json::to_value(v).map_err(|e| EngineError::Failed(e.to_string()))
}

fn pod_json(inv: &Inventory, index: usize, with_dependents: bool) -> Result<Value, EngineError> {
    let pod = &inv.pods[index];
    let dependents = inv.catalog.dependents(&pod.info);
    let mut v = to_json(pod)?;
    if let Value::Object(m) = &mut v {
        m.insert("type".into(), json!(POD_TYPE));
        m.insert("id".into(), json!(pod.info.uid));
        m.insert(
            "cinderVolumes".into(),
            json!(dependents.iter().filter(|d| d.is_protectable()).count()),
        );
        if with_dependents {
            m.insert("dependents".into(), dependents_json(&dependents)?);
        }
    }
    Ok(v)
}

fn dependents_json(deps: &[crate::resources::Dependent]) -> Result<Value, EngineError> {
    let mut out = Vec::with_capacity(deps.len());
    for d in deps {
        let mut v = to_json(d)?;
        if let Value::Object(m) = &mut v {
            m.insert(
                "type".into(),
                if d.is_protectable() {
                    json!(VOLUME_TYPE)
                } else {
                    Value::Null
                },
            );
            m.insert("id".into(), json!(d.volume_id));
        }
        out.push(v);
    }
    Ok(Value::Array(out))
}

#[async_trait]
impl Engine for ProtectionEngine {
    async fn protect(&self, request: ProtectRequest) -> Result<ProtectOutcome, EngineError> {
        let params = ProtectParams::from_json(&request.parameters)
            .map_err(|e| EngineError::Invalid(e.to_string()))?;
        let req = protection::ProtectRequest {
            params,
            params_json: request.parameters.clone(),
            selection: selection_of(&request.selection)?,
            plan: request.plan.clone().unwrap_or_default(),
            scan: self.scan_options(),
            writer: Default::default(),
        };
        let services = Services {
            etcd: &self.etcd,
            decoder: &self.decoder,
            bank: &self.bank,
        };
        let cp = protection::protect(services, &req, &self.backups())
            .await
            .map_err(from_protection)?;
        Ok(ProtectOutcome {
            checkpoint_id: CheckpointId(cp.id.clone()),
            status: status_of(cp.status()),
            stats: stats_of(&cp),
        })
    }

    async fn list_checkpoints(
        &self,
        filter: CheckpointFilter,
    ) -> Result<Vec<CheckpointSummary>, EngineError> {
        let (all, problems) = self.bank.checkpoints().await.map_err(from_bank)?;
        for p in problems {
            tracing::warn!(subject = %p.subject, reason = %p.reason, "bank: unreadable checkpoint");
        }
        Ok(all
            .iter()
            .filter(|c| filter.plan.as_deref().is_none_or(|p| c.plan == p))
            .map(summary_of)
            .collect())
    }

    async fn show_checkpoint(&self, id: &CheckpointId) -> Result<Value, EngineError> {
        let cp = self
            .bank
            .checkpoint(&bank_id(id)?)
            .await
            .map_err(from_bank)?;
        let resources = self.bank.resources(&cp).await.map_err(from_bank)?;
        let volumes = self.bank.volume_records(&cp).await.map_err(from_bank)?;
        to_json(&CheckpointView::new(&cp, &resources, &volumes))
    }

    async fn delete_checkpoint(&self, id: &CheckpointId) -> Result<(), EngineError> {
        delete_checkpoint(&self.bank, &bank_id(id)?, &self.backups())
            .await
            .map(|_| ())
            .map_err(from_protection)
    }

    async fn create_restore(&self, request: RestoreRequest) -> Result<RestoreSummary, EngineError> {
        let checkpoint = bank_id(&request.checkpoint_id)?;
        // The checkpoint must exist either way; say so before saying what is missing.
        self.bank.checkpoint(&checkpoint).await.map_err(from_bank)?;
        let params = protection::schema::RestoreParams::from_json(&request.parameters)
            .map_err(|e| EngineError::Invalid(e.to_string()))?;
        let mut pods = Vec::new();
        for p in &request.pods {
            match p.split_once('/') {
                Some((ns, name)) if !ns.is_empty() && !name.is_empty() => {
                    pods.push((ns.to_string(), name.to_string()));
                }
                _ => {
                    return Err(EngineError::Invalid(format!(
                        "pod {p:?}: expected <namespace>/<name>"
                    )))
                }
            }
        }
        let Some(api) = &self.api else {
            return Err(EngineError::Unavailable(
                "no Kubernetes API server configured for restores (kubeconfig or in-cluster)"
                    .into(),
            ));
        };
        let req = protection::RestoreRequest {
            checkpoint,
            params,
            pods,
            namespace_map: Default::default(),
            conflict: protection::ConflictPolicy::Fail,
            keep_node: false,
            volume_timeout: std::time::Duration::from_secs(3600),
        };
        let record = protection::restore(
            &self.bank,
            protection::Target::Api(api),
            &self.backups(),
            &req,
        )
        .await
        .map_err(from_protection)?;
        Ok(restore_summary(&record))
    }

    async fn list_restores(&self) -> Result<Vec<RestoreSummary>, EngineError> {
        let (all, problems) = self.bank.restore_records().await.map_err(from_bank)?;
        for p in problems {
            tracing::warn!(subject = %p.subject, reason = %p.reason, "bank: unreadable restore record");
        }
        Ok(all.iter().map(restore_summary).collect())
    }

    async fn show_restore(&self, id: &str) -> Result<Value, EngineError> {
        let r = self.bank.restore(id).await.map_err(from_bank)?;
        to_json(&RestoreView::new(&r))
    }

    async fn list_protectables(&self, query: ProtectableQuery) -> Result<Value, EngineError> {
        let selection = Selection {
            namespaces: query.namespaces,
            labels: LabelSelector::parse(query.label_selector.as_deref().unwrap_or(""))
                .map_err(|e| EngineError::Invalid(e.to_string()))?,
            fields: FieldSelector::parse(query.field_selector.as_deref().unwrap_or(""))
                .map_err(|e| EngineError::Invalid(e.to_string()))?,
            ..Selection::default()
        };
        let inv = self.inventory(&selection).await?;
        let items = (0..inv.pods.len())
            .map(|i| pod_json(&inv, i, false))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(json!({
            "revision": inv.revision,
            "items": items,
            "problems": to_json(&inv.problems)?,
        }))
    }

    async fn show_protectable(&self, id: &str) -> Result<Value, EngineError> {
        let (inv, i) = self.one_pod(id).await?;
        let mut v = pod_json(&inv, i, true)?;
        v["revision"] = json!(inv.revision);
        Ok(v)
    }

    async fn protectable_dependents(&self, id: &str) -> Result<Value, EngineError> {
        let (inv, i) = self.one_pod(id).await?;
        let pod = &inv.pods[i];
        Ok(json!({
            "revision": inv.revision,
            "pod": format!("{}/{}", pod.info.namespace, pod.info.name),
            "podUid": pod.info.uid,
            "dependents": dependents_json(&inv.catalog.dependents(&pod.info))?,
        }))
    }

    async fn readiness(&self) -> Vec<ReadinessCheck> {
        let etcd = match self.etcd.current_revision().await {
            Ok(rev) => ReadinessCheck {
                name: "etcd".into(),
                ok: true,
                message: Some(format!("revision {rev}")),
            },
            Err(e) => ReadinessCheck {
                name: "etcd".into(),
                ok: false,
                message: Some(e.to_string()),
            },
        };
        let bank = match self.bank.backend().list(Kind::Lock).await {
            Ok(_) => ReadinessCheck {
                name: "bank".into(),
                ok: true,
                message: Some(self.bank.location()),
            },
            Err(e) => ReadinessCheck {
                name: "bank".into(),
                ok: false,
                message: Some(e.to_string()),
            },
        };
        vec![etcd, bank]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bank_checkpoints_become_summaries_with_their_chains() {
        let cp = pb::Checkpoint {
            id: "20261125T120000Z-0000abcd".into(),
            status: pb::CheckpointStatus::Available as i32,
            created_unix_ms: 1_764_072_000_000,
            plan: "nightly".into(),
            volumes: vec![
                pb::Volume {
                    volume_id: "v1".into(),
                    backup_id: "b2".into(),
                    incremental: true,
                    parent_backup_id: "b1".into(),
                    parent_checkpoint: "20261124T120000Z-0000abcd".into(),
                    ..Default::default()
                },
                pb::Volume {
                    volume_id: String::new(),
                    status: pb::VolumeStatus::VolumeNotProtected as i32,
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let s = summary_of(&cp);
        assert_eq!(s.id.0, cp.id);
        assert_eq!(s.plan.as_deref(), Some("nightly"));
        assert_eq!(s.status, CheckpointStatus::Available);
        assert_eq!(s.created_at.timestamp_millis(), 1_764_072_000_000);
        assert_eq!(
            s.volumes.len(),
            1,
            "volumes without a backup are not chain links"
        );
        assert_eq!(
            s.volumes[0].parent_checkpoint_id,
            Some(CheckpointId("20261124T120000Z-0000abcd".into()))
        );
        assert_eq!(s.volumes[0].parent_backup_id.as_deref(), Some("b1"));
        let unplanned = summary_of(&pb::Checkpoint::default());
        assert_eq!(unplanned.plan, None);
        assert_eq!(unplanned.status, CheckpointStatus::Error);
    }

    #[test]
    fn selections_translate_or_are_refused() {
        let s = selection_of(&SelectionSpec {
            namespaces: vec!["shop".into()],
            label_selector: Some("app=web".into()),
            pods: vec!["shop/web-0".into()],
        })
        .expect("valid");
        assert_eq!(s.pods, vec![("shop".to_string(), "web-0".to_string())]);
        assert_eq!(s.labels.source(), "app=web");
        for bad in [
            SelectionSpec {
                pods: vec!["web-0".into()],
                ..Default::default()
            },
            SelectionSpec {
                label_selector: Some("a in (".into()),
                ..Default::default()
            },
        ] {
            assert!(matches!(selection_of(&bad), Err(EngineError::Invalid(_))));
        }
    }
}
