//! Kubernetes label selectors (`=`, `==`, `!=`, `in`, `notin`, `key`, `!key`) and the
//! field selectors podbank supports for pods.

use std::collections::BTreeMap;

use super::{PodInfo, ResourceError};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Exists,
    DoesNotExist,
    Equals(String),
    NotEquals(String),
    In(Vec<String>),
    NotIn(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Requirement {
    key: String,
    op: Op,
}

/// A parsed label selector; every requirement must hold (AND).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
    source: String,
}

fn selector_error(input: &str, reason: impl Into<String>) -> ResourceError {
    ResourceError::Selector {
        what: "label selector",
        input: input.to_string(),
        reason: reason.into(),
    }
}

/// A label value: empty, or up to 63 of `[A-Za-z0-9_.-]` starting and ending alphanumeric.
fn valid_value(v: &str) -> bool {
    v.is_empty()
        || (v.len() <= 63
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && v.starts_with(|c: char| c.is_ascii_alphanumeric())
            && v.ends_with(|c: char| c.is_ascii_alphanumeric()))
}

/// A label key: an optional DNS-subdomain prefix and `/`, then a non-empty name.
fn valid_key(k: &str) -> bool {
    let (prefix, name) = match k.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|part| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !part.starts_with('-')
                    && !part.ends_with('-')
            })
    });
    prefix_ok && !name.is_empty() && valid_value(name)
}

/// Split on commas that are not inside parentheses.
fn split_top_level(input: &str) -> Result<Vec<&str>, ResourceError> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in input.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err(selector_error(input, "unbalanced ')'"));
                }
            }
            ',' if depth == 0 => {
                parts.push(&input[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(selector_error(input, "unbalanced '('"));
    }
    parts.push(&input[start..]);
    Ok(parts)
}

fn parse_set(input: &str, text: &str) -> Result<Vec<String>, ResourceError> {
    let text = text.trim();
    let inner = text
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or_else(|| selector_error(input, format!("expected a set like (a,b), got {text:?}")))?;
    if inner.trim().is_empty() {
        // As Kubernetes: "for 'in', 'notin' operators, values set can't be empty" (a
        // `notin ()` would otherwise select every pod).
        return Err(selector_error(
            input,
            "the set of an in or notin is empty; name at least one value, e.g. (a,b)",
        ));
    }
    let values: Vec<String> = inner.split(',').map(|v| v.trim().to_string()).collect();
    if let Some(bad) = values.iter().find(|v| !valid_value(v)) {
        return Err(selector_error(input, format!("invalid value {bad:?}")));
    }
    Ok(values)
}

fn parse_requirement(input: &str, part: &str) -> Result<Requirement, ResourceError> {
    let part = part.trim();
    if part.is_empty() {
        return Err(selector_error(input, "empty requirement"));
    }
    let check_key = |k: &str| -> Result<String, ResourceError> {
        let k = k.trim();
        if valid_key(k) {
            Ok(k.to_string())
        } else {
            Err(selector_error(input, format!("invalid label key {k:?}")))
        }
    };
    let check_value = |v: &str| -> Result<String, ResourceError> {
        let v = v.trim();
        if valid_value(v) {
            Ok(v.to_string())
        } else {
            Err(selector_error(input, format!("invalid label value {v:?}")))
        }
    };
    if let Some(key) = part.strip_prefix('!') {
        return Ok(Requirement {
            key: check_key(key)?,
            op: Op::DoesNotExist,
        });
    }
    if let Some((k, v)) = part.split_once("!=") {
        return Ok(Requirement {
            key: check_key(k)?,
            op: Op::NotEquals(check_value(v)?),
        });
    }
    if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
        return Ok(Requirement {
            key: check_key(k)?,
            op: Op::Equals(check_value(v)?),
        });
    }
    let words: Vec<&str> = part.splitn(2, char::is_whitespace).collect();
    if let [key, rest] = words.as_slice() {
        let rest = rest.trim_start();
        if let Some(set) = rest.strip_prefix("notin") {
            return Ok(Requirement {
                key: check_key(key)?,
                op: Op::NotIn(parse_set(input, set)?),
            });
        }
        if let Some(set) = rest.strip_prefix("in") {
            return Ok(Requirement {
                key: check_key(key)?,
                op: Op::In(parse_set(input, set)?),
            });
        }
        return Err(selector_error(
            input,
            format!("unknown operator in {part:?} (use =, ==, !=, in, notin, key or !key)"),
        ));
    }
    Ok(Requirement {
        key: check_key(part)?,
        op: Op::Exists,
    })
}

impl LabelSelector {
    /// Parse Kubernetes label-selector syntax, e.g. `app=web,tier in (a,b),!canary`.
    pub fn parse(input: &str) -> Result<LabelSelector, ResourceError> {
        if input.trim().is_empty() {
            return Ok(LabelSelector::default());
        }
        let requirements = split_top_level(input)?
            .into_iter()
            .map(|p| parse_requirement(input, p))
            .collect::<Result<_, _>>()?;
        Ok(LabelSelector {
            requirements,
            source: input.trim().to_string(),
        })
    }

    /// The selector as it was written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// True if `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| {
            let value = labels.get(&r.key);
            match &r.op {
                Op::Exists => value.is_some(),
                Op::DoesNotExist => value.is_none(),
                Op::Equals(v) => value == Some(v),
                Op::NotEquals(v) => value != Some(v),
                Op::In(set) => value.is_some_and(|x| set.contains(x)),
                Op::NotIn(set) => value.is_none_or(|x| !set.contains(x)),
            }
        })
    }

    /// True when the selector selects everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }
}

/// The pod fields a field selector may name.
const FIELDS: [&str; 5] = [
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "status.phase",
];

/// A parsed field selector: `field=value`, `field==value`, `field!=value`, comma-separated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSelector {
    terms: Vec<(String, bool, String)>,
    source: String,
}

impl FieldSelector {
    /// Parse a field selector over the fields in `metadata.name`, `metadata.namespace`,
    /// `metadata.uid`, `spec.nodeName` and `status.phase`.
    pub fn parse(input: &str) -> Result<FieldSelector, ResourceError> {
        let err = |reason: String| ResourceError::Selector {
            what: "field selector",
            input: input.to_string(),
            reason,
        };
        let mut terms = Vec::new();
        for part in input.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, equal, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                (f, true, v)
            } else {
                return Err(err(format!("{part:?} has no =, == or !=")));
            };
            let field = field.trim();
            if !FIELDS.contains(&field) {
                return Err(err(format!(
                    "unsupported field {field:?}; supported: {}",
                    FIELDS.join(", ")
                )));
            }
            terms.push((field.to_string(), equal, value.trim().to_string()));
        }
        Ok(FieldSelector {
            terms,
            source: input.trim().to_string(),
        })
    }

    /// The selector as it was written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// True if `pod` satisfies every term.
    pub fn matches(&self, pod: &PodInfo) -> bool {
        self.terms.iter().all(|(field, equal, value)| {
            let actual = match field.as_str() {
                "metadata.name" => pod.name.as_str(),
                "metadata.namespace" => pod.namespace.as_str(),
                "metadata.uid" => pod.uid.as_str(),
                "spec.nodeName" => pod.node.as_deref().unwrap_or(""),
                "status.phase" => pod.phase.as_deref().unwrap_or(""),
                _ => return false,
            };
            (actual == value) == *equal
        })
    }

    /// The exact name asked for, if the selector pins `metadata.name` (lets a scan narrow
    /// its key range).
    pub fn exact_name(&self) -> Option<&str> {
        self.terms
            .iter()
            .find(|(f, eq, _)| f == "metadata.name" && *eq)
            .map(|(_, _, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_operator() {
        let l = labels(&[
            ("app", "web"),
            ("tier", "frontend"),
            ("example.com/team", "a"),
        ]);
        let yes = [
            "app=web",
            "app==web",
            "app!=db",
            "missing!=x",
            "tier in (frontend, backend)",
            "tier notin (backend)",
            "missing notin (x)",
            "app",
            "!missing",
            "example.com/team=a",
            "app=web,tier in (frontend),!canary",
            "",
        ];
        for s in yes {
            assert!(
                LabelSelector::parse(s).unwrap().matches(&l),
                "{s} should match"
            );
        }
        let no = [
            "app=db",
            "app!=web",
            "tier in (backend)",
            "tier notin (frontend)",
            "missing",
            "!app",
            "missing in (x)",
        ];
        for s in no {
            assert!(
                !LabelSelector::parse(s).unwrap().matches(&l),
                "{s} should not match"
            );
        }
    }

    #[test]
    fn bad_selectors_say_what_is_wrong() {
        for (s, want) in [
            ("app in a,b", "expected a set"),
            ("app in (a", "unbalanced"),
            ("-bad=x", "invalid label key"),
            ("app=b@d", "invalid label value"),
            ("app ~ x", "unknown operator"),
            ("app=web,", "empty requirement"),
            ("a notin ()", "is empty"),
            ("a in ( )", "is empty"),
        ] {
            let err = LabelSelector::parse(s).unwrap_err().to_string();
            assert!(err.contains(want), "{s}: {err}");
        }
    }

    #[test]
    fn field_selectors() {
        let pod = PodInfo {
            namespace: "ns".into(),
            name: "web-1".into(),
            uid: "u".into(),
            node: Some("n1".into()),
            phase: Some("Running".into()),
            labels: BTreeMap::new(),
            created: None,
            volumes: vec![],
            hook_annotations: Default::default(),
            containers: Vec::new(),
            refs: Default::default(),
        };
        assert!(FieldSelector::parse("metadata.name=web-1")
            .unwrap()
            .matches(&pod));
        assert!(
            FieldSelector::parse("metadata.name==web-1,status.phase!=Pending")
                .unwrap()
                .matches(&pod)
        );
        assert!(!FieldSelector::parse("spec.nodeName=n2")
            .unwrap()
            .matches(&pod));
        assert_eq!(
            FieldSelector::parse("metadata.name=web-1")
                .unwrap()
                .exact_name(),
            Some("web-1")
        );
        let err = FieldSelector::parse("spec.foo=x").unwrap_err().to_string();
        assert!(
            err.contains("unsupported field") && err.contains("metadata.name"),
            "{err}"
        );
    }
}
