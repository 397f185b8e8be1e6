//! Karbor's operation logs and verifications kept in the bank, one record each under
//! `operation-logs/<uuid>` and `verifications/<uuid>`, sealed as every record is. The
//! engine converts them (see [`crate::engine::operation_logs`] and
//! [`crate::engine::verifications`]); unreadable records are returned as problems, not
//! hidden.

use futures::StreamExt;
use prost::Message;

use super::backend::{self, Kind};
use super::format::{self, pb};
use super::{Bank, BankError, BankFile, Problem};
use crate::model::{
    BadOperationLog, BadVerification, CheckpointId, LoggedOperation as OperationType, OperationLog,
    Phase, RestoreId, Verification, VerificationStatus,
};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Map, Value};

impl Bank {
    /// Writes an operation log whole (when its operation starts, and again when it ends).
    pub async fn put_operation_log(&self, log: &pb::OperationLog) -> Result<(), BankError> {
        self.put_karbor_record(Kind::OperationLog, &log.id, log)
            .await
    }

    /// Every operation log, and the files under `operation-logs/` that cannot be read.
    pub async fn operation_logs(&self) -> Result<(Vec<pb::OperationLog>, Vec<Problem>), BankError> {
        self.karbor_records(Kind::OperationLog, |l: &pb::OperationLog| l.id.clone())
            .await
    }

    /// Writes a verification whole (when it is asked for, and again with its result).
    pub async fn put_verification(&self, v: &pb::Verification) -> Result<(), BankError> {
        self.put_karbor_record(Kind::Verification, &v.id, v).await
    }

    /// Every verification, and the files under `verifications/` that cannot be read.
    pub async fn verifications(&self) -> Result<(Vec<pb::Verification>, Vec<Problem>), BankError> {
        self.karbor_records(Kind::Verification, |v: &pb::Verification| v.id.clone())
            .await
    }

    async fn put_karbor_record<M: Message>(
        &self,
        kind: Kind,
        name: &str,
        record: &M,
    ) -> Result<(), BankError> {
        self.backend
            .put(kind, name, format::encode(record)?)
            .await?;
        Ok(())
    }

    async fn karbor_records<M, F>(
        &self,
        kind: Kind,
        id_of: F,
    ) -> Result<(Vec<M>, Vec<Problem>), BankError>
    where
        M: Message + Default,
        F: Fn(&M) -> String,
    {
        let names = self.backend.list(kind).await?;
        let backend = self.backend.clone();
        let read = futures::stream::iter(names)
            .map(|info| {
                let backend = backend.clone();
                async move {
                    let record = match backend.get(kind, &info.name).await {
                        Ok(d) => format::decode::<M>(&d).map_err(|e| e.to_string()).map(Some),
                        Err(backend::BackendError::NotFound { .. }) => Ok(None),
                        Err(e) => return Err(BankError::from(e)),
                    };
                    Ok((info.name, record))
                }
            })
            .buffer_unordered(16)
            .collect::<Vec<_>>()
            .await;
        let mut records = Vec::new();
        let mut problems = Vec::new();
        for r in read {
            let (name, record) = r?;
            match record {
                Ok(Some(m)) if id_of(&m) == name => records.push(m),
                Ok(Some(m)) => problems.push(Problem::file(
                    BankFile::new(kind, name.clone()),
                    format!("holds {kind} {}, not {name}", id_of(&m)),
                    Vec::new(),
                )),
                Ok(None) => {}
                Err(reason) => {
                    problems.push(Problem::file(BankFile::new(kind, name), reason, Vec::new()))
                }
            }
        }
        Ok((records, problems))
    }
}

fn ms(t: DateTime<Utc>) -> u64 {
    u64::try_from(t.timestamp_millis()).unwrap_or(0)
}

fn time_of(ms: u64) -> Option<DateTime<Utc>> {
    i64::try_from(ms)
        .ok()
        .and_then(|m| Utc.timestamp_millis_opt(m).single())
}

fn some(s: String) -> Option<String> {
    Some(s).filter(|s| !s.is_empty())
}

impl From<&OperationLog> for pb::OperationLog {
    fn from(l: &OperationLog) -> Self {
        pb::OperationLog {
            id: l.id.clone(),
            project_id: l.project_id.clone(),
            operation_type: l.operation_type.label().into(),
            checkpoint_id: l
                .checkpoint_id
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            plan: l.plan.clone().unwrap_or_default(),
            restore_id: l
                .restore_id
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            scheduled_operation_id: l.scheduled_operation_id.clone().unwrap_or_default(),
            verification_id: l.verification_id.clone().unwrap_or_default(),
            phase: l.phase.label().into(),
            error_info: l.error_info.clone(),
            extra_info_json: if l.extra_info.is_empty() {
                String::new()
            } else {
                Value::Object(l.extra_info.clone()).to_string()
            },
            started_unix_ms: ms(l.started_at),
            ended_unix_ms: l.ended_at.map(ms).unwrap_or(0),
        }
    }
}

impl TryFrom<pb::OperationLog> for OperationLog {
    type Error = BadOperationLog;
    fn try_from(l: pb::OperationLog) -> Result<Self, BadOperationLog> {
        let bad = |why: String| BadOperationLog {
            id: l.id.clone(),
            why,
        };
        let operation_type = OperationType::from_label(&l.operation_type)
            .ok_or_else(|| bad(format!("unknown operation type {:?}", l.operation_type)))?;
        let phase = Phase::from_label(&l.phase)
            .ok_or_else(|| bad(format!("unknown phase {:?}", l.phase)))?;
        let checkpoint_id = some(l.checkpoint_id.clone())
            .map(|c| c.parse::<CheckpointId>())
            .transpose()
            .map_err(|e| bad(format!("checkpoint id: {e}")))?;
        let restore_id = some(l.restore_id.clone())
            .map(|r| r.parse::<RestoreId>())
            .transpose()
            .map_err(|e| bad(format!("restore id: {e}")))?;
        let extra_info = match some(l.extra_info_json.clone()) {
            None => Map::new(),
            Some(j) => match serde_json::from_str(&j) {
                Ok(Value::Object(m)) => m,
                _ => return Err(bad("extra_info is no JSON object".into())),
            },
        };
        let started_at =
            time_of(l.started_unix_ms).ok_or_else(|| bad("no start time".to_string()))?;
        Ok(OperationLog {
            id: l.id,
            project_id: l.project_id,
            operation_type,
            checkpoint_id,
            plan: some(l.plan),
            restore_id,
            scheduled_operation_id: some(l.scheduled_operation_id),
            verification_id: some(l.verification_id),
            phase,
            error_info: l.error_info,
            extra_info,
            started_at,
            ended_at: Some(l.ended_unix_ms).filter(|m| *m > 0).and_then(time_of),
        })
    }
}

fn object_of(json: &str) -> Option<Map<String, Value>> {
    if json.is_empty() {
        return Some(Map::new());
    }
    match serde_json::from_str(json) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    }
}

impl From<&Verification> for pb::Verification {
    fn from(v: &Verification) -> Self {
        pb::Verification {
            id: v.id.clone(),
            project_id: v.project_id.clone(),
            checkpoint_id: v.checkpoint_id.to_string(),
            parameters_json: Value::Object(v.parameters.clone()).to_string(),
            status: v.status.label().into(),
            resources_status_json: Value::Object(v.resources_status.clone()).to_string(),
            resources_reason_json: Value::Object(v.resources_reason.clone()).to_string(),
            reason: v.reason.clone(),
            created_unix_ms: ms(v.created_at),
            ended_unix_ms: v.ended_at.map(ms).unwrap_or(0),
        }
    }
}

impl TryFrom<pb::Verification> for Verification {
    type Error = BadVerification;
    fn try_from(v: pb::Verification) -> Result<Self, BadVerification> {
        let bad = |why: &str| BadVerification {
            id: v.id.clone(),
            why: why.to_string(),
        };
        let checkpoint_id = v
            .checkpoint_id
            .parse()
            .map_err(|_| bad("its checkpoint id does not parse"))?;
        let status =
            VerificationStatus::from_label(&v.status).ok_or_else(|| bad("unknown status"))?;
        let parameters = object_of(&v.parameters_json).ok_or_else(|| bad("parameters"))?;
        let resources_status =
            object_of(&v.resources_status_json).ok_or_else(|| bad("resources_status"))?;
        let resources_reason =
            object_of(&v.resources_reason_json).ok_or_else(|| bad("resources_reason"))?;
        let created_at = time_of(v.created_unix_ms).ok_or_else(|| bad("no creation time"))?;
        Ok(Verification {
            id: v.id,
            project_id: v.project_id,
            checkpoint_id,
            parameters,
            status,
            resources_status,
            resources_reason,
            reason: v.reason,
            created_at,
            ended_at: Some(v.ended_unix_ms).filter(|m| *m > 0).and_then(time_of),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_survives_its_record_and_ends_with_karbors_words() {
        let mut log = OperationLog::start(OperationType::Restore, "p1");
        log.checkpoint_id = Some(CheckpointId::generate());
        log.restore_id = Some(RestoreId::generate());
        log.extra_info.insert("k".into(), Value::from("v"));
        assert_eq!(log.status(), "in_progress");
        log.end(Some("it broke".into()));
        assert_eq!(log.status(), "fail");
        let back = OperationLog::try_from(pb::OperationLog::from(&log)).unwrap();
        assert_eq!(back.id, log.id);
        assert_eq!(back.checkpoint_id, log.checkpoint_id);
        assert_eq!(back.restore_id, log.restore_id);
        assert_eq!(back.error_info, "it broke");
        assert_eq!(back.phase, Phase::Failed);
        assert_eq!(back.extra_info, log.extra_info);
        assert_eq!(
            back.started_at.timestamp_millis(),
            log.started_at.timestamp_millis()
        );
        assert!(back.ended_at.is_some());
        let mut bad = pb::OperationLog::from(&log);
        bad.operation_type = "dance".into();
        assert!(OperationLog::try_from(bad).is_err());
    }

    #[test]
    fn a_verification_survives_its_record() {
        let mut params = Map::new();
        params.insert("a".into(), Value::from(1));
        let mut v = Verification::new("p", CheckpointId::generate(), params);
        v.resources_status
            .insert("OS::Kubernetes::Pod#u1".into(), Value::from("error"));
        v.resources_reason
            .insert("OS::Kubernetes::Pod#u1".into(), Value::from("bad hash"));
        v.fail("x".into());
        let back = Verification::try_from(pb::Verification::from(&v)).unwrap();
        assert_eq!(back.id, v.id);
        assert_eq!(back.checkpoint_id, v.checkpoint_id);
        assert_eq!(back.parameters, v.parameters);
        assert_eq!(back.status, VerificationStatus::Error);
        assert_eq!(back.resources_status, v.resources_status);
        assert_eq!(back.resources_reason, v.resources_reason);
        assert_eq!(back.reason, "x");
        let mut bad = pb::Verification::from(&v);
        bad.status = "maybe".into();
        assert!(Verification::try_from(bad).is_err());
    }
}
