//! Karbor's ids are UUIDs (python-karborclient refuses anything else for a checkpoint
//! id); podbank's checkpoint and restore ids are `<UTC time>-<8 hex>`. The two are mapped
//! both ways without a table: the time's digits and the hex are the UUID's first 22 hex
//! digits, a fixed tail per kind the rest. Ids of other forms pass through as they are.

use crate::model::{CheckpointId, RestoreId};

/// The last 10 hex digits of a checkpoint's UUID.
const CHECKPOINT_TAIL: &str = "0c4ec4b0b0";
/// The last 10 hex digits of a restore's UUID.
const RESTORE_TAIL: &str = "0a4e5704e0";

fn to_uuid(stamped: &str, tail: &str) -> Option<String> {
    let b = stamped.as_bytes();
    let ok = b.len() == 25
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[8] == b'T'
        && b[9..15].iter().all(u8::is_ascii_digit)
        && b[15] == b'Z'
        && b[16] == b'-'
        && b[17..]
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c));
    if !ok {
        return None;
    }
    let hex = format!(
        "{}{}{}{tail}",
        &stamped[..8],
        &stamped[9..15],
        &stamped[17..]
    );
    Some(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

fn from_uuid(uuid: &str, tail: &str) -> Option<String> {
    let hex: String = uuid.chars().filter(|c| *c != '-').collect();
    let hex = hex.to_ascii_lowercase();
    if uuid.len() != 36 || hex.len() != 32 || !hex.ends_with(tail) {
        return None;
    }
    if !hex[..14].bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some(format!("{}T{}Z-{}", &hex[..8], &hex[8..14], &hex[14..22]))
}

/// The UUID Karbor knows checkpoint `id` by.
pub fn checkpoint_uuid(id: &CheckpointId) -> String {
    to_uuid(id.as_str(), CHECKPOINT_TAIL).unwrap_or_else(|| id.to_string())
}

/// The checkpoint a Karbor id names; `None` if it cannot name one.
pub fn checkpoint_of(karbor: &str) -> Option<CheckpointId> {
    from_uuid(karbor, CHECKPOINT_TAIL)
        .unwrap_or_else(|| karbor.to_string())
        .parse()
        .ok()
}

/// The UUID Karbor knows restore `id` by.
pub fn restore_uuid(id: &RestoreId) -> String {
    id.as_str()
        .strip_prefix("r-")
        .and_then(|s| to_uuid(s, RESTORE_TAIL))
        .unwrap_or_else(|| id.to_string())
}

/// The restore a Karbor id names; `None` if it cannot name one.
pub fn restore_of(karbor: &str) -> Option<RestoreId> {
    from_uuid(karbor, RESTORE_TAIL)
        .map(|s| format!("r-{s}"))
        .unwrap_or_else(|| karbor.to_string())
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_uuids() {
        let cp = CheckpointId::generate();
        let u = checkpoint_uuid(&cp);
        assert!(uuid::Uuid::try_parse(&u).is_ok(), "{u}");
        assert_eq!(checkpoint_of(&u), Some(cp.clone()));
        assert_eq!(checkpoint_of(&u.to_uppercase()), Some(cp));
        let r = RestoreId::generate();
        let u = restore_uuid(&r);
        assert!(uuid::Uuid::try_parse(&u).is_ok(), "{u}");
        assert_eq!(restore_of(&u), Some(r));
        // A restore's UUID is no generated checkpoint's: it passes through
        // as itself, which names no checkpoint podbank made.
        assert_eq!(checkpoint_of(&u).map(|c| c.to_string()), Some(u.clone()));
        // Other ids pass through; unsafe ones name nothing.
        let other: CheckpointId = "velero-import-1".parse().unwrap();
        assert_eq!(checkpoint_uuid(&other), "velero-import-1");
        assert_eq!(checkpoint_of("velero-import-1"), Some(other));
        assert_eq!(checkpoint_of("../config"), None);
    }
}
