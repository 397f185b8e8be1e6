//! A bank in an S3 bucket (`s3://bucket/prefix`), through the `object_store` crate.
//!
//! Layout: `<prefix>/config`, `<prefix>/data/<name>`, `<prefix>/index/<name>`,
//! `<prefix>/checkpoints/<name>`, `<prefix>/restores/<name>`, `<prefix>/locks/<name>` (no
//! fan-out: object stores do not slow down with many keys under one prefix).
//!
//! * `put` is one plain PUT (no multipart, no aws-chunked encoding): S3 makes it visible
//!   whole or not at all.
//! * `get_range` is one ranged GET; an answer shorter than asked is an error.
//! * `list` follows every continuation token (object_store does), names relative to the
//!   kind's folder.
//! * `delete` is a single-object DELETE (S3 answers 204 for a missing key too). Multi-object
//!   delete is avoided: Swift's s3api needs a `Content-MD5` header on it.
//! * The bucket must exist: podbank does not create buckets.
//! * Each request is tried once (object_store's own retries are off): connection errors,
//!   timeouts, broken answers and the statuses [`crate::openstack::retry`] retries are
//!   transient [`BackendError::Io`] errors, retried by the [`super::RetryBackend`] that
//!   [`super::open_with`] puts around this backend.
//!
//! Works against AWS and against S3 gateways that want path-style requests (Swift's
//! s3api, whose access keys contain a colon, Ceph, MinIO).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::client::{HttpError, HttpErrorKind};
use object_store::path::Path;
use object_store::{ClientOptions, ObjectStore, PutPayload, RetryConfig};
use reqwest::StatusCode;

use super::settings::S3Settings;
use super::{
    check_name, kind_prefix, object_key, short_range, Backend, BackendError, Kind, ObjectInfo,
};
use crate::openstack::error::{chain, cut};
use crate::openstack::retry::{retryable_status, retryable_transport, Idempotency};

/// A bank stored in an S3 bucket.
#[derive(Debug, Clone)]
pub struct S3Backend {
    store: Arc<dyn ObjectStore>,
    bucket: String,
    prefix: String,
    location: String,
}

impl S3Backend {
    /// Prepares a client for `bucket` (nothing is contacted yet).
    ///
    /// # Arguments
    /// * `bucket` - the bucket; it must exist.
    /// * `prefix` - key prefix of the bank inside the bucket (may be empty), without
    ///   leading or trailing slashes.
    /// * `settings` - endpoint, region, path style and credentials.
    pub fn new(bucket: &str, prefix: &str, settings: &S3Settings) -> Result<Self, BackendError> {
        let location = if prefix.is_empty() {
            format!("s3://{bucket}")
        } else {
            format!("s3://{bucket}/{prefix}")
        };
        let config = |reason: String| BackendError::Config {
            location: location.clone(),
            reason,
        };
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region(settings.region.as_deref().unwrap_or("us-east-1"))
            .with_virtual_hosted_style_request(!settings.path_style.unwrap_or(true))
            // One try per request: retrying is the RetryBackend's.
            .with_retry(RetryConfig {
                max_retries: 0,
                ..RetryConfig::default()
            })
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(10))
                    .with_timeout(Duration::from_secs(300)),
            );
        if let Some(endpoint) = &settings.endpoint {
            let url = url::Url::parse(endpoint).map_err(|e| {
                config(format!(
                    "invalid S3 endpoint {endpoint:?} ({e}); give a URL like https://s3.example.com"
                ))
            })?;
            let loopback = match url.host() {
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                Some(url::Host::Domain(d)) => d == "localhost",
                None => false,
            };
            if url.scheme() == "http" && !loopback && !settings.allow_http {
                return Err(config(format!(
                    "the S3 endpoint {endpoint} is plain http on a non-loopback host: use \
                     https, or set AWS_ALLOW_HTTP=true if you really mean it"
                )));
            }
            builder = builder
                .with_endpoint(endpoint.trim_end_matches('/'))
                .with_allow_http(url.scheme() == "http");
        }
        match (&settings.access_key_id, &settings.secret_access_key) {
            (Some(id), Some(secret)) => {
                builder = builder
                    .with_access_key_id(id)
                    .with_secret_access_key(secret.expose());
                if let Some(token) = &settings.session_token {
                    builder = builder.with_token(token.expose());
                }
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err(config(
                    "S3 credentials need both an access key id and a secret access key \
                     (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
                        .into(),
                ));
            }
            // object_store would fall back to AWS's instance metadata service, which a pod
            // on OpenStack does not have: a long wait, then a vague error. Say it now.
            (None, None) => {
                return Err(config(
                    "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and \
                     AWS_SESSION_TOKEN for temporary ones)"
                        .into(),
                ));
            }
        }
        let store = builder
            .build()
            .map_err(|e| config(format!("cannot set up the S3 client: {e}")))?;
        Ok(Self {
            store: Arc::new(store),
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            location,
        })
    }

    fn path(&self, kind: Kind, name: &str) -> Result<Path, BackendError> {
        check_name(&self.location, kind, name)?;
        Path::parse(object_key(&self.prefix, kind, name)).map_err(|e| BackendError::Config {
            location: self.location.clone(),
            reason: format!("invalid {kind} name {name:?}: {e}"),
        })
    }

    /// Turns an object_store error into the backend's: missing objects, refused
    /// credentials and a missing bucket get their own words.
    fn error(
        &self,
        op: &'static str,
        kind: Kind,
        name: &str,
        e: object_store::Error,
    ) -> BackendError {
        match e {
            object_store::Error::NotFound { .. } if op == "put" => BackendError::Config {
                location: self.location.clone(),
                reason: format!(
                    "the bucket {} does not exist (or the endpoint is wrong): create it first",
                    self.bucket
                ),
            },
            object_store::Error::NotFound { .. } => BackendError::NotFound {
                location: self.location.clone(),
                kind,
                name: name.to_string(),
            },
            object_store::Error::PermissionDenied { source, .. }
            | object_store::Error::Unauthenticated { source, .. } => BackendError::Config {
                location: self.location.clone(),
                reason: format!(
                    "S3 refused the credentials or the request ({}); check \
                     AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, the region and the bucket's policy",
                    short(source.as_ref())
                ),
            },
            // Listings wrap the HTTP status in a generic error: find it in the text.
            other if refused(&other) => BackendError::Config {
                location: self.location.clone(),
                reason: format!(
                    "S3 refused the credentials or the request ({}); check \
                     AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, the region and the bucket's policy",
                    short(&other)
                ),
            },
            other => BackendError::Io {
                location: self.location.clone(),
                op,
                kind,
                name: name.to_string(),
                source: short(&other).into(),
                transient: transient(&other),
            },
        }
    }
}

/// Whether an error is S3 answering 401 or 403.
fn refused(e: &object_store::Error) -> bool {
    matches!(
        status_in(&chain(e)),
        Some(StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN)
    )
}

/// Whether another try may cure an object_store failure: no connection, a timeout, an
/// answer that broke off, a status the retry policy retries (5xx, 408, 429), or S3's 200
/// whose body is an error (`InternalError`, `SlowDown`).
fn transient(e: &object_store::Error) -> bool {
    // object_store's transparent wrappers hide its HttpError from the chain, not the
    // reqwest error inside it.
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(cause) = source {
        if let Some(e) = cause.downcast_ref::<reqwest::Error>() {
            return retryable_transport(e, Idempotency::Idempotent);
        }
        if let Some(http) = cause.downcast_ref::<HttpError>() {
            return matches!(
                http.kind(),
                HttpErrorKind::Connect
                    | HttpErrorKind::Request
                    | HttpErrorKind::Timeout
                    | HttpErrorKind::Interrupted
            );
        }
        source = cause.source();
    }
    // object_store keeps the status of an answer in its error's text only.
    let text = chain(e);
    text.contains("Server returned error response")
        || status_in(&text).is_some_and(|s| retryable_status(s, Idempotency::Idempotent))
}

/// The HTTP status object_store names in an error's text (`... status code: 503 ...`).
fn status_in(text: &str) -> Option<StatusCode> {
    let (_, rest) = text.split_once("status code: ")?;
    StatusCode::from_bytes(rest.get(..3)?.as_bytes()).ok()
}

/// The error's text, cut to a readable length (S3 error bodies carry hex dumps).
fn short(e: &dyn std::error::Error) -> String {
    cut(&chain(e), 400)
}

#[async_trait]
impl Backend for S3Backend {
    fn location(&self) -> String {
        self.location.clone()
    }

    async fn put(&self, kind: Kind, name: &str, data: Bytes) -> Result<(), BackendError> {
        let path = self.path(kind, name)?;
        self.store
            .put(&path, PutPayload::from_bytes(data))
            .await
            .map(|_| ())
            .map_err(|e| self.error("put", kind, name, e))
    }

    async fn get(&self, kind: Kind, name: &str) -> Result<Bytes, BackendError> {
        let path = self.path(kind, name)?;
        let result = self
            .store
            .get(&path)
            .await
            .map_err(|e| self.error("get", kind, name, e))?;
        result
            .bytes()
            .await
            .map_err(|e| self.error("get", kind, name, e))
    }

    async fn get_range(
        &self,
        kind: Kind,
        name: &str,
        offset: u64,
        length: u64,
    ) -> Result<Bytes, BackendError> {
        let path = self.path(kind, name)?;
        let end = offset
            .checked_add(length)
            .ok_or_else(|| short_range(self.location.clone(), kind, name, offset, length, 0))?;
        if length == 0 {
            // An empty range cannot be asked of S3: check the object and its size instead.
            let meta = self
                .store
                .head(&path)
                .await
                .map_err(|e| self.error("get_range", kind, name, e))?;
            if offset > meta.size {
                return Err(short_range(self.location.clone(), kind, name, offset, 0, 0));
            }
            return Ok(Bytes::new());
        }
        // S3 answers 416 for a range starting past the end (an error here), and a short
        // body for one that ends past it (checked below).
        let data = self
            .store
            .get_range(&path, offset..end)
            .await
            .map_err(|e| self.error("get_range", kind, name, e))?;
        if data.len() as u64 != length {
            return Err(short_range(
                self.location.clone(),
                kind,
                name,
                offset,
                length,
                data.len(),
            ));
        }
        Ok(data)
    }

    async fn list(&self, kind: Kind) -> Result<Vec<ObjectInfo>, BackendError> {
        if kind == Kind::Config {
            let path = self.path(kind, "config")?;
            return match self.store.head(&path).await {
                Ok(meta) => Ok(vec![ObjectInfo {
                    name: "config".into(),
                    size: meta.size,
                    modified: Some(meta.last_modified.into()),
                }]),
                Err(object_store::Error::NotFound { .. }) => Ok(Vec::new()),
                Err(e) => Err(self.error("list", kind, "", e)),
            };
        }
        let folder = kind_prefix(&self.prefix, kind);
        let prefix =
            Path::parse(folder.trim_end_matches('/')).map_err(|e| BackendError::Config {
                location: self.location.clone(),
                reason: format!("invalid prefix {folder:?}: {e}"),
            })?;
        let metas: Vec<object_store::ObjectMeta> = self
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| self.error("list", kind, "", e))?;
        Ok(metas
            .into_iter()
            .filter_map(|meta| {
                let key = meta.location.as_ref();
                let name = key.strip_prefix(folder.as_str())?;
                (!name.is_empty() && !name.contains('/')).then(|| ObjectInfo {
                    name: name.to_string(),
                    size: meta.size,
                    modified: Some(meta.last_modified.into()),
                })
            })
            .collect())
    }

    async fn delete(&self, kind: Kind, name: &str) -> Result<(), BackendError> {
        let path = self.path(kind, name)?;
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.error("delete", kind, name, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bank::backend::Secret;

    fn settings() -> S3Settings {
        S3Settings {
            endpoint: Some("http://127.0.0.1:8080".into()),
            access_key_id: Some("test:tester".into()),
            secret_access_key: Some(Secret::new("testing")),
            ..S3Settings::default()
        }
    }

    #[test]
    fn set_up_errors_name_the_location_and_the_fix() {
        assert!(S3Backend::new("b", "p", &settings()).is_ok());
        let cases = [
            (
                S3Settings {
                    access_key_id: None,
                    secret_access_key: None,
                    ..settings()
                },
                "AWS_ACCESS_KEY_ID",
            ),
            (
                S3Settings {
                    secret_access_key: None,
                    ..settings()
                },
                "AWS_SECRET_ACCESS_KEY",
            ),
            (
                S3Settings {
                    endpoint: Some("http://s3.example.com".into()),
                    ..settings()
                },
                "AWS_ALLOW_HTTP",
            ),
            (
                S3Settings {
                    endpoint: Some("not a url".into()),
                    ..settings()
                },
                "invalid S3 endpoint",
            ),
        ];
        for (settings, hint) in cases {
            let err = S3Backend::new("b", "p", &settings)
                .expect_err(hint)
                .to_string();
            assert!(err.starts_with("bank s3://b/p: "), "{err}");
            assert!(err.contains(hint), "{err}");
        }
        let allowed = S3Settings {
            endpoint: Some("http://s3.example.com".into()),
            allow_http: true,
            ..settings()
        };
        assert!(S3Backend::new("b", "", &allowed).is_ok());
    }

    #[test]
    fn statuses_are_found_in_object_store_errors() {
        let text = "Error performing GET http://h/b/k in 1ms - Server returned non-2xx status \
                    code: 503 Service Unavailable: ";
        assert_eq!(status_in(text), Some(StatusCode::SERVICE_UNAVAILABLE));
        assert_eq!(status_in("status code: 40"), None);
        assert_eq!(status_in("no status"), None);
    }
}
