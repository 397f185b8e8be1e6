//! podbank: protects Kubernetes pods with Cinder persistent volumes.
//!
//! The data path is the architecture:
//!
//! ```text
//! etcd -> codec -> bank          cinder        apiserver
//!    (resources: pod -> claim -> volume)
//!           \_________ protection _________/
//!                        |
//!                     engine  (LocalEngine; api::RemoteEngine over HTTP)
//!                     /    \
//!                  cli    agent
//! ```
//!
//! * [`model`] is the domain: ids, references, revisions, statuses, the records of a
//!   checkpoint and of a restore. Every module may use it; it uses none.
//! * [`etcd`] connects to etcd and scans prefixes at one pinned revision.
//! * [`codec`] understands the Kubernetes storage format (protobuf envelope, JSON,
//!   encryption at rest) and edits protobuf at the wire level. No I/O.
//! * [`resources`] turns decoded objects into Karbor's resource types and resolves the
//!   pod -> claim -> volume graph. No I/O.
//! * [`bank`] is the content-addressed store of checkpoints; it converts its protobuf
//!   records to the model at its edge, and nothing above it reads them.
//! * [`openstack`] is what the OpenStack clients share: clouds.yaml and `OS_*` credentials,
//!   the Keystone session and service catalog, the retry policy, error text.
//! * [`cinder`] talks to Cinder (through [`openstack`]): volumes, backups, restores, waits.
//! * [`apiserver`] writes restored objects through kube-apiserver.
//! * [`protection`] orchestrates protect / restore / delete / retention; it is the only
//!   module that knows all the lower ones.
//! * [`engine`] is the one application API ([`engine::Engine`]): [`engine::LocalEngine`]
//!   does the work through [`protection`], [`api::client::RemoteEngine`] asks a running
//!   agent over its HTTP API ([`api`] holds the wire types both sides share).
//! * [`cli`] and [`agent`] are thin fronts over an engine: on-demand commands, and the
//!   long-running agent (schedules, retention, leader election, HTTP API).
//! * The seeder (crate `podbank-seed`) writes realistic pods into etcd, for tests, demos and
//!   benchmarks; the model, codec and resources are the I/O-free crate `podbank-core`.
//!
//! The arrows point one way; `tests/architecture.rs` checks them on the source.

pub use podbank_core::{codec, model, resources};

pub mod agent;
pub mod api;
pub mod apiserver;
pub mod bank;
pub mod cinder;
pub mod engine;
pub mod etcd;
pub mod openstack;
pub mod protection;

pub mod cli;
