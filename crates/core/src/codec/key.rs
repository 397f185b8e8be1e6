//! etcd keys of Kubernetes objects: `<prefix>/<resource>/<namespace>/<name>` for
//! namespaced objects, `<prefix>/<resource>/<name>` for cluster-scoped ones.
//!
//! The prefix is kube-apiserver's `--etcd-prefix` (`/registry` by default). A trailing
//! `/` on the prefix is ignored, as Go's `path.Join` does.
//!
//! The kinds, and what their keys are named, are the model's table ([`ResourceKind`]).

use std::fmt;

use super::CodecError;
pub use crate::model::ResourceKind;

fn clean_prefix(prefix: &str) -> &str {
    prefix.trim_end_matches('/')
}

/// The etcd key prefix that holds every object of `kind` (in `namespace`, if given),
/// with a trailing `/`: `/registry/pods/` or `/registry/pods/demo/`.
///
/// # Arguments
///
/// * `prefix` - kube-apiserver's `--etcd-prefix`, e.g. `/registry`.
/// * `kind` - the resource type.
/// * `namespace` - restrict to one namespace (ignored for cluster-scoped kinds).
pub fn resource_prefix(prefix: &str, kind: ResourceKind, namespace: Option<&str>) -> String {
    let mut out = format!("{}/{}/", clean_prefix(prefix), kind.etcd_resource());
    if let (true, Some(ns)) = (kind.namespaced(), namespace) {
        out.push_str(ns);
        out.push('/');
    }
    out
}

/// A parsed etcd key of a Kubernetes object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StorageKey {
    /// The resource (`pods`, ...).
    pub resource: String,
    /// The namespace, for namespaced objects.
    pub namespace: Option<String>,
    /// The object name.
    pub name: String,
}

impl StorageKey {
    /// The key of an object of a known kind.
    pub fn new(kind: ResourceKind, namespace: Option<&str>, name: &str) -> Self {
        StorageKey {
            resource: kind.etcd_resource().to_string(),
            namespace: if kind.namespaced() {
                namespace.map(str::to_string)
            } else {
                None
            },
            name: name.to_string(),
        }
    }

    /// Parse an etcd key read under `prefix`.
    ///
    /// For the kinds podbank knows, the namespace part must be present exactly when the
    /// kind is namespaced; for other resources, three parts mean namespaced and two mean
    /// cluster-scoped.
    pub fn parse(prefix: &str, key: &[u8]) -> Result<StorageKey, CodecError> {
        let invalid = |reason: &str| CodecError::InvalidKey {
            key: String::from_utf8_lossy(key).into_owned(),
            prefix: prefix.to_string(),
            reason: reason.to_string(),
        };
        let text = std::str::from_utf8(key).map_err(|_| invalid("not valid UTF-8"))?;
        let base = clean_prefix(prefix);
        let rest = text
            .strip_prefix(base)
            .and_then(|r| r.strip_prefix('/'))
            .ok_or_else(|| invalid("does not start with the prefix followed by '/'"))?;
        let parts: Vec<&str> = rest.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(invalid("has an empty path segment"));
        }
        let known = ResourceKind::from_resource(parts[0]);
        let (namespace, name) =
            match (parts.len(), known.map(ResourceKind::namespaced)) {
                (3, None | Some(true)) => (Some(parts[1].to_string()), parts[2].to_string()),
                (2, None | Some(false)) => (None, parts[1].to_string()),
                (3, Some(false)) => {
                    return Err(invalid(&format!(
                        "{} are cluster-scoped: expected <prefix>/{}/<name>",
                        parts[0], parts[0]
                    )))
                }
                (2, Some(true)) => {
                    return Err(invalid(&format!(
                        "{} are namespaced: expected <prefix>/{}/<namespace>/<name>",
                        parts[0], parts[0]
                    )))
                }
                _ => return Err(invalid(
                    "expected <prefix>/<resource>/<namespace>/<name> or <prefix>/<resource>/<name>",
                )),
            };
        Ok(StorageKey {
            resource: parts[0].to_string(),
            namespace,
            name,
        })
    }

    /// The kind, if podbank knows the resource.
    pub fn kind(&self) -> Option<ResourceKind> {
        ResourceKind::from_resource(&self.resource)
    }

    /// The full etcd key under `prefix`.
    pub fn to_key(&self, prefix: &str) -> String {
        match &self.namespace {
            Some(ns) => format!(
                "{}/{}/{}/{}",
                clean_prefix(prefix),
                self.resource,
                ns,
                self.name
            ),
            None => format!("{}/{}/{}", clean_prefix(prefix), self.resource, self.name),
        }
    }
}

impl fmt::Display for StorageKey {
    /// `resource/namespace/name` or `resource/name`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{}/{}", self.resource, ns, self.name),
            None => write!(f, "{}/{}", self.resource, self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_format_keys() {
        let k = StorageKey::parse("/registry", b"/registry/pods/demo/web").unwrap();
        assert_eq!(k, StorageKey::new(ResourceKind::Pod, Some("demo"), "web"));
        assert_eq!(k.to_key("/registry/"), "/registry/pods/demo/web");
        assert_eq!(k.kind(), Some(ResourceKind::Pod));
        let pv = StorageKey::parse("/registry/", b"/registry/persistentvolumes/pv-1").unwrap();
        assert_eq!(pv.namespace, None);
        assert_eq!(pv.to_key("/registry"), "/registry/persistentvolumes/pv-1");
        let other = StorageKey::parse("/k", b"/k/widgets.example.com/ns/w").unwrap();
        assert_eq!(other.namespace.as_deref(), Some("ns"));
        assert_eq!(other.kind(), None);
    }

    #[test]
    fn bad_keys_say_why() {
        for (key, why) in [
            (&b"/other/pods/a/b"[..], "prefix"),
            (b"/registry/pods/onlyname", "namespaced"),
            (b"/registry/persistentvolumes/ns/pv", "cluster-scoped"),
            (b"/registry/pods//x", "empty"),
            (b"/registry/pods/a/b/c", "expected"),
            (b"/registry/pods/\xff/x", "UTF-8"),
        ] {
            let err = StorageKey::parse("/registry", key).unwrap_err().to_string();
            assert!(err.contains(why), "{err}");
        }
    }

    #[test]
    fn prefixes() {
        assert_eq!(
            resource_prefix("/registry", ResourceKind::Pod, None),
            "/registry/pods/"
        );
        assert_eq!(
            resource_prefix(
                "/registry/",
                ResourceKind::PersistentVolumeClaim,
                Some("ns")
            ),
            "/registry/persistentvolumeclaims/ns/"
        );
        assert_eq!(
            resource_prefix("/registry", ResourceKind::PersistentVolume, Some("ns")),
            "/registry/persistentvolumes/"
        );
        assert_eq!(ResourceKind::from_resource("pods"), Some(ResourceKind::Pod));
        assert!(!ResourceKind::PersistentVolume.namespaced());
    }
}
