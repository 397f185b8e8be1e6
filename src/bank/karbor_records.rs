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
