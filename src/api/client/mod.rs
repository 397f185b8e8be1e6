//! A client of the agent's HTTP API: what `podbank --agent URL ...` speaks.
//!
//! [`RemoteEngine`] implements the application API ([`Engine`](crate::engine::Engine)) over it, so that the CLI
//! does the same thing whichever engine it holds. Typed over the same request and response
//! types the server uses ([`super`]), so that the two cannot disagree on a field. Long
//! operations answer `202 Accepted`; the client follows the operation's status URL until
//! it ends.
//!
//! Parts: `connection` is the [`Client`] (settings read once, one request, following an
//! operation); `remote` is the [`RemoteEngine`], each engine call as requests. Owns: the
//! client side of the wire. Must not touch: the agent's server or the engine's work.

use std::path::PathBuf;

use crate::engine::EngineError;

use super::error_of;

mod connection;
mod remote;

pub use connection::Client;
pub use remote::RemoteEngine;

/// Where the agent is and how to authenticate to it.
#[derive(Debug, Clone, Default)]
pub struct ClientSettings {
    /// The agent's base URL, e.g. `https://10.0.0.5:8443` (a path prefix is kept).
    pub url: String,
    /// A file holding the bearer token (the agent's `token_file`).
    pub token_file: Option<PathBuf>,
    /// PEM CA certificate(s) to trust for an `https` agent, besides the system's.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate for mTLS (with `key_file`).
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    pub key_file: Option<PathBuf>,
    /// The Karbor project (tenant) id the requests name in their paths; `podbank` if
    /// none.
    pub project: Option<String>,
}

/// What went wrong talking to the agent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The settings are unusable (bad URL, unreadable token or certificate file).
    #[error("agent client: {0}")]
    Settings(String),
    /// The agent could not be reached, or the connection broke.
    #[error("cannot reach the agent at {url}: {source}")]
    Transport {
        /// The URL asked.
        url: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// The agent answered with an error.
    #[error("the agent refused {method} {path}: {status} {code}: {message}")]
    Api {
        /// The method.
        method: String,
        /// The path asked.
        path: String,
        /// HTTP status.
        status: u16,
        /// The error code of the body (`invalid`, `not_found`, `unauthorized`, ...).
        code: String,
        /// The agent's message.
        message: String,
    },
    /// The agent answered something that is not what its API says.
    #[error("unexpected answer from the agent to {path}: {reason}")]
    Protocol {
        /// The path asked.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// A followed operation failed or was cancelled on the agent.
    #[error("operation {id} {state}: {message}")]
    Operation {
        /// The error's code, if the agent gave one.
        code: Option<String>,
        /// The operation.
        id: String,
        /// `failed` or `cancelled`.
        state: String,
        /// The agent's reason.
        message: String,
    },
}

impl ClientError {
    /// Whether the caller is at fault: unusable settings, or a request the agent refused
    /// as invalid (HTTP 400).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            ClientError::Settings(_) | ClientError::Api { status: 400, .. }
        )
    }
}

/// A client error as the application API reports it: the agent's own error code when it
/// answered, `unavailable` when it could not be reached.
impl From<ClientError> for EngineError {
    fn from(e: ClientError) -> Self {
        let message = e.to_string();
        match e {
            ClientError::Settings(_) => EngineError::Invalid(message),
            ClientError::Transport { .. } => EngineError::Unavailable(message),
            ClientError::Api { code, .. } => error_of(&code, message),
            ClientError::Protocol { .. } => EngineError::Failed(message),
            ClientError::Operation { code, .. } => {
                error_of(code.as_deref().unwrap_or("failed"), message)
            }
        }
    }
}
