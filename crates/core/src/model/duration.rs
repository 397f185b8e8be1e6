//! Durations as people write them in config files and flags: `90` (seconds), `30d`,
//! `1h30m`; and their serde, for `#[serde(with = ...)]`.

use std::time::Duration;

use serde::Deserialize;

/// A duration that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DurationError(String);

/// Parse a duration: a number of seconds (`90`), or numbers with units `s`, `m`, `h`,
/// `d`, `w`, possibly several (`1h30m`).
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    parse(text)
}

fn parse(text: &str) -> Result<Duration, DurationError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(DurationError("empty duration".into()));
    }
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit: u64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => {
                return Err(DurationError(format!(
                    "duration {text:?}: unknown unit {c:?} (use s, m, h, d or w, e.g. 30d)"
                )))
            }
        };
        let n: u64 = digits.parse().map_err(|_| {
            DurationError(format!(
                "duration {text:?}: a number must come before {c:?}"
            ))
        })?;
        digits.clear();
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| DurationError(format!("duration {text:?} is too long")))?;
    }
    if !digits.is_empty() {
        return Err(DurationError(format!(
            "duration {text:?}: a unit must follow the last number (s, m, h, d or w)"
        )));
    }
    Ok(Duration::from_secs(total))
}

/// Format a duration in the largest unit that divides it (`30d`, `90m`, `15s`).
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    for (unit, n) in [("w", 604_800), ("d", 86_400), ("h", 3600), ("m", 60)] {
        if s != 0 && s.is_multiple_of(n) {
            return format!("{}{unit}", s / n);
        }
    }
    format!("{s}s")
}

/// A number or a string with units, either way.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawDuration {
    Secs(u64),
    Text(String),
}

/// Serde of a [`Duration`] as in [`parse_duration`].
pub mod as_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    use super::{format_duration, parse_duration, RawDuration};

    /// Serialize as text (`30d`).
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }

    /// Deserialize from a number of seconds or text with units.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        match RawDuration::deserialize(d)? {
            RawDuration::Secs(s) => Ok(Duration::from_secs(s)),
            RawDuration::Text(t) => parse_duration(&t).map_err(serde::de::Error::custom),
        }
    }
}

/// Serde of an optional [`Duration`] as in [`parse_duration`].
pub mod opt_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    use super::{format_duration, parse_duration, RawDuration};

    /// Serialize as text (`30d`) or null.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    /// Deserialize from null, a number of seconds or text with units.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        match Option::<RawDuration>::deserialize(d)? {
            None => Ok(None),
            Some(RawDuration::Secs(s)) => Ok(Some(Duration::from_secs(s))),
            Some(RawDuration::Text(t)) => parse_duration(&t)
                .map(Some)
                .map_err(serde::de::Error::custom),
        }
    }
}
