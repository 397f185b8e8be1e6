//! The parameter schemas of the protection plugin, as in Karbor's pod protection plugin
//! spec: OPTIONS_SCHEMA for protect (`backup_name`, `description`, both required, plus
//! podbank's extensions) and RESTORE_SCHEMA for restore (`restore_name`,
//! `restore_description`). Parameters are validated against them before any work starts.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The JSON Schema of `protect`'s parameters.
pub fn protect_schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Pod Protection Options",
        "type": "object",
        "properties": {
            "backup_name": {
                "type": "string", "minLength": 1, "maxLength": 255,
                "title": "Backup Name", "description": "The name of the backup."
            },
            "description": {
                "type": "string", "maxLength": 255,
                "title": "Description", "description": "The description of the backup."
            },
            "incremental": {
                "type": "boolean", "title": "Incremental",
                "description": "Back volumes up incrementally. Default: yes when an earlier available backup of the volume exists (Cinder's first backup of a volume is always full)."
            },
            "full_every": {
                "type": "integer", "minimum": 1, "maximum": 10000, "title": "Full every",
                "description": "Bound each volume's incremental chain: every N-th backup of a volume is a full one (the newest chain in the bank has depth d, full = 0; the next backup is full when d + 1 >= N). 1 = always full. Default: no bound."
            },
            "force": {
                "type": "boolean", "default": true, "title": "Force",
                "description": "Back up volumes that are in use (attached)."
            },
            "volume_timeout_seconds": {
                "type": "integer", "minimum": 1, "maximum": 86400, "default": 3600,
                "title": "Per-volume timeout",
                "description": "How long to wait for one Cinder backup to become available."
            },
            "concurrency": {
                "type": "integer", "minimum": 1, "maximum": 64, "default": 4,
                "title": "Concurrency", "description": "Cinder backups created at once."
            }
        },
        "required": ["backup_name", "description"],
        "additionalProperties": false
    })
}

/// The JSON Schema of `restore`'s parameters.
pub fn restore_schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Pod Restore Parameters",
        "type": "object",
        "properties": {
            "restore_name": {
                "type": "string", "minLength": 1, "maxLength": 253,
                "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
                "title": "Restore Name",
                "description": "The name of the restored pod (a DNS-1123 subdomain). Default: the pod's own name."
            },
            "restore_description": {
                "type": "string", "maxLength": 1024,
                "title": "Restore Description",
                "description": "Recorded in an annotation of the restored objects."
            }
        },
        "additionalProperties": false
    })
}

/// Parameters that failed their schema.
#[derive(Debug, thiserror::Error)]
#[error("invalid {operation} parameters: {}", errors.join("; "))]
pub struct InvalidParameters {
    /// `protect` or `restore`.
    pub operation: &'static str,
    /// One message per violation, naming the parameter.
    pub errors: Vec<String>,
}

fn validate(
    operation: &'static str,
    schema: &Value,
    params: &Value,
) -> Result<(), InvalidParameters> {
    let validator = jsonschema::validator_for(schema).map_err(|e| InvalidParameters {
        operation,
        errors: vec![format!("the built-in schema is invalid: {e}")],
    })?;
    let errors: Vec<String> = validator
        .iter_errors(params)
        .map(|e| {
            let path = e.instance_path().to_string();
            if path.is_empty() {
                e.to_string()
            } else {
                format!("{}: {e}", path.trim_start_matches('/'))
            }
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(InvalidParameters { operation, errors })
    }
}

/// Validated `protect` parameters. Deserializing validates against [`protect_schema`]: a
/// request that carries them (CLI flags, an HTTP body, Karbor's plan parameters) is checked
/// once, where it is read, and passed on typed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct ProtectParams {
    /// The backup's name.
    pub backup_name: String,
    /// Its description.
    pub description: String,
    /// Incremental volume backups: `None` = when possible.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incremental: Option<bool>,
    /// Every N-th backup of a volume is a full one (`None`: chains are unbounded). It wins
    /// over `incremental: true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_every: Option<u32>,
    /// Back up in-use volumes.
    #[serde(default = "yes")]
    pub force: bool,
    /// Per-volume timeout in seconds.
    #[serde(default = "default_timeout")]
    pub volume_timeout_seconds: u64,
    /// Backups created at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// The parameters as given, recorded in the checkpoint as they were written (and
    /// written back out as they came).
    #[serde(skip)]
    pub given: Value,
}

fn yes() -> bool {
    true
}
fn default_timeout() -> u64 {
    3600
}
fn default_concurrency() -> usize {
    4
}

impl ProtectParams {
    /// Validate `params` against [`protect_schema`] and read them.
    pub fn from_json(params: &Value) -> Result<ProtectParams, InvalidParameters> {
        validate("protect", &protect_schema(), params)?;
        let read = ProtectParams::deserialize(params).map_err(|e| InvalidParameters {
            operation: "protect",
            errors: vec![e.to_string()],
        })?;
        Ok(ProtectParams {
            given: params.clone(),
            ..read
        })
    }

    /// The per-volume timeout.
    pub fn volume_timeout(&self) -> Duration {
        Duration::from_secs(self.volume_timeout_seconds)
    }
}

/// Validated `restore` parameters. Deserializing validates against [`restore_schema`], as
/// for [`ProtectParams`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct RestoreParams {
    /// The restored pod's name; `None` keeps its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_name: Option<String>,
    /// Recorded in an annotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_description: Option<String>,
}

/// The serde of a parameters type: validated against its schema when read, its fields when
/// written (`#[serde(remote = "Self")]` gives the derived code as inherent functions).
macro_rules! validated_serde {
    ($ty:ident) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let value = Value::deserialize(d)?;
                $ty::from_json(&value).map_err(serde::de::Error::custom)
            }
        }
    };
}
validated_serde!(ProtectParams);
validated_serde!(RestoreParams);

/// Protect parameters are written as they were given.
impl Serialize for ProtectParams {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.given.is_null() {
            ProtectParams::serialize(self, s)
        } else {
            self.given.serialize(s)
        }
    }
}

impl Serialize for RestoreParams {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        RestoreParams::serialize(self, s)
    }
}

impl RestoreParams {
    /// Validate `params` against [`restore_schema`] and read them.
    pub fn from_json(params: &Value) -> Result<RestoreParams, InvalidParameters> {
        validate("restore", &restore_schema(), params)?;
        RestoreParams::deserialize(params).map_err(|e| InvalidParameters {
            operation: "restore",
            errors: vec![e.to_string()],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protect_requires_name_and_description() {
        let err = ProtectParams::from_json(&json!({"description": "d"})).unwrap_err();
        assert!(
            err.to_string()
                .contains("\"backup_name\" is a required property"),
            "{err}"
        );
        let err = ProtectParams::from_json(&json!({"backup_name": "b"})).unwrap_err();
        assert!(err.to_string().contains("description"), "{err}");
        let ok =
            ProtectParams::from_json(&json!({"backup_name": "b", "description": "d"})).unwrap();
        assert_eq!(ok.backup_name, "b");
        assert!(ok.force);
        assert_eq!(ok.incremental, None);
        let err =
            ProtectParams::from_json(&json!({"backup_name": "b", "description": "d", "bogus": 1}))
                .unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");
        let err = ProtectParams::from_json(
            &json!({"backup_name": "b", "description": "d", "volume_timeout_seconds": 0}),
        )
        .unwrap_err();
        assert!(err.to_string().contains("volume_timeout_seconds"), "{err}");
        let ok = ProtectParams::from_json(
            &json!({"backup_name": "b", "description": "d", "full_every": 3}),
        )
        .unwrap();
        assert_eq!(ok.full_every, Some(3));
        let err = ProtectParams::from_json(
            &json!({"backup_name": "b", "description": "d", "full_every": 0}),
        )
        .unwrap_err();
        assert!(err.to_string().contains("full_every"), "{err}");
    }

    #[test]
    fn restore_name_must_be_dns_1123() {
        assert!(RestoreParams::from_json(&json!({"restore_name": "web-1.restored"})).is_ok());
        assert!(RestoreParams::from_json(&json!({})).is_ok());
        for bad in ["Web", "-web", "web_1", "web-", ""] {
            let err = RestoreParams::from_json(&json!({"restore_name": bad})).unwrap_err();
            assert!(err.to_string().contains("restore_name"), "{bad}: {err}");
        }
    }
}
