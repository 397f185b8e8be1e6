//! Who may call the API: the one middleware ([`require_auth`]) in front of the agent's own
//! routes (`/v1/...`) and Karbor's (`/v1/{project_id}/...`), choosing by the config how a
//! token is checked ([`Verifier`]) and answering a refusal in the words of the API asked
//! ([`Dialect`]).
//!
//! * `auth: token`: the agent's one static token, compared in constant time (its sha256).
//! * `auth: keystone`: the caller's `X-Auth-Token` (or bearer token) is validated against
//!   Keystone through [`crate::openstack::Keystone::validate_token`], with the agent's own
//!   service credentials. A valid token is cached ([`KeystoneTokens`]) until it expires or
//!   for `cache_seconds`, whichever is sooner, so a revoked token is refused at the latest
//!   `cache_seconds` after its revocation; Keystone unreachable or failing is a 503 with
//!   `Retry-After`, never an accepted request. The validated token's user, project and
//!   roles go with the request as a [`Caller`] extension.
//!
//! A client certificate (mTLS) is checked first, whichever verifier is configured.
//!
//! This module decides who is let in, nothing more: what a caller may then see or do
//! (project scoping, roles) is for the handlers, from the [`Caller`].

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub use crate::engine::identity::{Caller, KeystoneTokens};

/// How a presented token is checked, as the config says (`agent.auth`).
#[derive(Debug)]
pub enum Verifier {
    /// `auth: token`: the sha256 of the static token; `None` when a client certificate is
    /// the only credential.
    Static(Option<[u8; 32]>),
    /// `auth: keystone`.
    Keystone(Box<KeystoneTokens>),
}

/// Why a request is not let in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The agent asks for client certificates and none was presented.
    NoClientCert,
    /// A token was presented and is not valid (wrong, unknown, revoked or expired).
    WrongToken,
    /// No token was presented.
    NoToken,
    /// Keystone could not say whether the token is valid: try again later (the cause is
    /// logged, not told to the caller).
    Unavailable,
}

/// Everything the middleware checks: a client certificate (mTLS) if asked for, then the
/// token.
#[derive(Debug)]
pub struct Gate {
    verifier: Verifier,
    client_cert: bool,
}

/// The API whose words a refusal takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// The agent's own API: `Authorization: Bearer` (also `X-Auth-Token` with Keystone),
    /// errors as `{"error": {"code", "message"}}`.
    Podbank,
    /// Karbor's API: `X-Auth-Token` or `Authorization: Bearer`, errors as OpenStack faults.
    Karbor,
}

impl Gate {
    /// A gate checking tokens with `verifier`, and client certificates when `client_cert`.
    ///
    /// # Arguments
    /// * `verifier` - how tokens are checked.
    /// * `client_cert` - whether a verified client certificate is required (mTLS).
    pub fn new(verifier: Verifier, client_cert: bool) -> Gate {
        Gate {
            verifier,
            client_cert,
        }
    }

    /// Whether a request may in, and who calls if Keystone said so.
    ///
    /// # Arguments
    /// * `headers` - the request's headers.
    /// * `client_cert` - whether the TLS layer verified a client certificate.
    /// * `dialect` - the API asked: Karbor's takes `X-Auth-Token` always, the agent's own
    ///   only with Keystone.
    pub async fn admit(
        &self,
        headers: &HeaderMap,
        client_cert: bool,
        dialect: Dialect,
    ) -> Result<Option<Caller>, Refusal> {
        if self.client_cert && !client_cert {
            return Err(Refusal::NoClientCert);
        }
        let x_auth_token =
            dialect == Dialect::Karbor || matches!(self.verifier, Verifier::Keystone(_));
        match &self.verifier {
            Verifier::Static(None) => Ok(None),
            Verifier::Static(Some(expected)) => {
                let presented = presented_token(headers, x_auth_token).ok_or(Refusal::NoToken)?;
                let hash = Sha256::digest(presented.as_bytes());
                if bool::from(hash.as_slice().ct_eq(expected)) {
                    Ok(None)
                } else {
                    Err(Refusal::WrongToken)
                }
            }
            Verifier::Keystone(tokens) => {
                let presented = presented_token(headers, x_auth_token).ok_or(Refusal::NoToken)?;
                match tokens.check(presented).await {
                    Ok(Some(caller)) => Ok(Some(caller)),
                    Ok(None) => Err(Refusal::WrongToken),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot validate a token with Keystone");
                        Err(Refusal::Unavailable)
                    }
                }
            }
        }
    }

    fn keystone(&self) -> bool {
        matches!(self.verifier, Verifier::Keystone(_))
    }
}

/// The token of a request: `X-Auth-Token` (when `x_auth_token`), else
/// `Authorization: Bearer`.
fn presented_token(headers: &HeaderMap, x_auth_token: bool) -> Option<&str> {
    let openstack = headers
        .get("x-auth-token")
        .filter(|_| x_auth_token)
        .and_then(|v| v.to_str().ok());
    openstack
        .or_else(|| {
            headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| {
                    v.strip_prefix("Bearer ")
                        .or_else(|| v.strip_prefix("bearer "))
                })
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The middleware's state: the agent's one [`Gate`] and the API it guards.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    gate: Arc<Gate>,
    dialect: Dialect,
}

impl AuthLayer {
    /// The layer of `gate` for the routes of `dialect`.
    ///
    /// # Arguments
    /// * `gate` - the agent's gate, shared by every router.
    /// * `dialect` - the API of the routes it guards.
    pub fn new(gate: Arc<Gate>, dialect: Dialect) -> AuthLayer {
        AuthLayer { gate, dialect }
    }
}

/// The one authentication middleware: lets a request in (with its [`Caller`] when Keystone
/// validated it) or answers 401 (no, wrong or revoked token; no client certificate) or 503
/// with `Retry-After` (Keystone cannot say), in the words of the API asked.
pub async fn require_auth(
    State(layer): State<AuthLayer>,
    mut req: Request,
    next: Next,
) -> Response {
    let client_cert = req
        .extensions()
        .get::<Arc<axum_server::tls::TlsInfo>>()
        .is_some_and(|info| !info.peer_certificates.is_empty());
    let admitted = layer
        .gate
        .admit(req.headers(), client_cert, layer.dialect)
        .await;
    match admitted {
        Ok(caller) => {
            if let Some(caller) = caller {
                req.extensions_mut().insert(caller);
            }
            next.run(req).await
        }
        Err(refusal) => {
            // A caller that asked for podbank's representation reads podbank's errors,
            // whichever routes it asked.
            let dialect = if super::karbor::asks_for_podbank(req.headers()) {
                Dialect::Podbank
            } else {
                layer.dialect
            };
            refuse(&layer, dialect, refusal)
        }
    }
}

fn refuse(layer: &AuthLayer, dialect: Dialect, refusal: Refusal) -> Response {
    let keystone = layer.gate.keystone();
    match dialect {
        Dialect::Podbank => {
            let message = match &refusal {
                Refusal::NoClientCert => {
                    "present a client certificate signed by the agent's client CA".to_string()
                }
                Refusal::WrongToken if keystone => {
                    "the token is not valid (unknown, revoked or expired in Keystone)".to_string()
                }
                Refusal::WrongToken => "wrong bearer token".to_string(),
                Refusal::NoToken if keystone => {
                    "send X-Auth-Token (or Authorization: Bearer) with a Keystone token".to_string()
                }
                Refusal::NoToken => {
                    "send Authorization: Bearer <token> (the agent's token_file)".to_string()
                }
                Refusal::Unavailable => {
                    "Keystone cannot validate the token now; retry later".to_string()
                }
            };
            match refusal {
                Refusal::Unavailable => super::http::overloaded(super::http::ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "keystone_unavailable",
                    message,
                )),
                _ => super::http::ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
                    .into_response(),
            }
        }
        Dialect::Karbor => {
            use super::karbor::types::Fault;
            let message = match &refusal {
                Refusal::NoClientCert => {
                    "present a client certificate signed by the agent's client CA".to_string()
                }
                Refusal::WrongToken if keystone => {
                    "The request you have made requires authentication: the token is not valid."
                        .to_string()
                }
                Refusal::WrongToken => {
                    "The request you have made requires authentication: wrong token.".to_string()
                }
                Refusal::NoToken if keystone => {
                    "The request you have made requires authentication: send X-Auth-Token."
                        .to_string()
                }
                Refusal::NoToken => "The request you have made requires authentication: send \
                     X-Auth-Token (the agent's token_file)."
                    .to_string(),
                Refusal::Unavailable => {
                    "The token cannot be validated now (Keystone unavailable); retry later."
                        .to_string()
                }
            };
            match refusal {
                Refusal::Unavailable => {
                    super::http::overloaded(Fault::new(StatusCode::SERVICE_UNAVAILABLE, message))
                }
                _ => Fault::new(StatusCode::UNAUTHORIZED, message).into_response(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn keystone_unreachable_is_an_error_never_a_caller() {
        let t = KeystoneTokens::unreachable(Duration::from_secs(300), 10);
        let err = t
            .check("some-token")
            .await
            .expect_err("nothing listens on port 9");
        assert!(err.is_transient(), "{err}");
        let gate = Gate::new(Verifier::Keystone(Box::new(t)), false);
        let mut headers = HeaderMap::new();
        headers.insert("x-auth-token", "some-token".parse().expect("header"));
        assert_eq!(
            gate.admit(&headers, false, Dialect::Karbor).await,
            Err(Refusal::Unavailable)
        );
        assert_eq!(
            gate.admit(&HeaderMap::new(), false, Dialect::Karbor).await,
            Err(Refusal::NoToken)
        );
    }

    #[tokio::test]
    async fn the_static_token_takes_x_auth_token_on_karbor_routes_only() {
        let gate = Gate::new(
            Verifier::Static(Some(Sha256::digest(b"s3cret").into())),
            false,
        );
        let mut x_auth = HeaderMap::new();
        x_auth.insert("x-auth-token", "s3cret".parse().expect("header"));
        let mut bearer = HeaderMap::new();
        bearer.insert(
            header::AUTHORIZATION,
            "Bearer s3cret".parse().expect("header"),
        );
        let mut wrong = HeaderMap::new();
        wrong.insert(
            header::AUTHORIZATION,
            "Bearer nope".parse().expect("header"),
        );
        assert_eq!(gate.admit(&x_auth, false, Dialect::Karbor).await, Ok(None));
        assert_eq!(gate.admit(&bearer, false, Dialect::Karbor).await, Ok(None));
        assert_eq!(gate.admit(&bearer, false, Dialect::Podbank).await, Ok(None));
        assert_eq!(
            gate.admit(&x_auth, false, Dialect::Podbank).await,
            Err(Refusal::NoToken)
        );
        assert_eq!(
            gate.admit(&wrong, false, Dialect::Podbank).await,
            Err(Refusal::WrongToken)
        );
        let mtls = Gate::new(Verifier::Static(None), true);
        assert_eq!(
            mtls.admit(&bearer, false, Dialect::Podbank).await,
            Err(Refusal::NoClientCert)
        );
        assert_eq!(mtls.admit(&bearer, true, Dialect::Podbank).await, Ok(None));
    }
}
