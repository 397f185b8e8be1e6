//! OpenStack, the part every service client shares: where the credentials come from, the
//! Keystone session, the retry policy of HTTP requests, and error text.
//!
//! * [`clouds`]: `clouds.yaml` (a named cloud, at a given path or the usual places) or the
//!   `OS_*` variables, resolved once into a [`CloudEntry`], and its osauth identity plugin
//!   (password, application credential, token).
//! * [`keystone`]: a [`Keystone`] session: the token that signs requests, the lookup of a
//!   service's endpoint by catalog type, interface and region (or the cloud's endpoint
//!   override), re-authentication with a fresh plugin when a service refuses the token; and
//!   the HTTP client with the cloud's CA and the request timeout; and the validation of
//!   another party's token ([`Keystone::validate_token`], for the agent's Keystone auth).
//! * [`retry`]: the one [`RetryPolicy`]: which HTTP statuses and transport errors are worth
//!   another try (depending on [`Idempotency`]), which Keystone failures, the delays and
//!   the number of tries, and the loop that applies them.
//! * [`error`]: [`OpenStackError`], an error chain on one line without repeated causes, a
//!   failed request in words, the message of an OpenStack error body.
//!
//! Used by [`crate::cinder`], by the agent's Keystone authentication and by the bank's
//! Swift backend (and, for its policy, by the bank's retry decorator). This module knows
//! nothing of Cinder's or Swift's APIs (which catalog types, headers or paths they use is
//! theirs), of the bank, of the agent or of Kubernetes: it must not use [`crate::cinder`],
//! [`crate::bank`] or any Kubernetes type.

pub mod clouds;
pub mod error;
pub mod keystone;
pub mod retry;

pub use clouds::{AuthKind, AuthSection, CloudEntry};
pub use error::OpenStackError;
pub use keystone::{
    client_builder, http_client, Keystone, ServiceQuery, TokenGeneration, TokenInfo,
};
pub use retry::{Idempotency, Outcome, RetryPolicy};
