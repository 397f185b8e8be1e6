//! podbank: protects Kubernetes pods with Cinder persistent volumes.
//!
//! The data path is the architecture:
//!
//! ```text
//! etcd -> codec -> resources -> bank        cinder     apiserver
//!                         \________ protection ________/
//!                                 cli / agent
//! ```
//!
//! * [`etcd`] connects to etcd and scans prefixes at one pinned revision.
//! * [`codec`] understands the Kubernetes storage format (protobuf envelope, JSON,
//!   encryption at rest) and edits protobuf at the wire level. No I/O.
//! * [`resources`] turns decoded objects into Karbor's resource types and resolves the
//!   pod -> claim -> volume graph. No I/O.
//! * [`bank`] is the content-addressed store of checkpoints.
//! * [`openstack`] is what the OpenStack clients share: clouds.yaml and `OS_*` credentials,
//!   the Keystone session and service catalog, the retry policy, error text.
//! * [`cinder`] talks to Cinder (through [`openstack`]): volumes, backups, restores, waits.
//! * [`protection`] orchestrates protect / restore / delete; it is the only module that
//!   knows all the others.
//! * [`cli`] and [`agent`] are thin fronts over the library: on-demand commands, and the
//!   long-running agent (schedules, retention, leader election, HTTP API).

pub mod agent;
pub mod api;
pub mod apiserver;
pub mod bank;
pub mod cinder;
pub mod codec;
pub mod engine;
pub mod etcd;
pub mod model;
pub mod openstack;
pub mod protection;
pub mod resources;
pub mod seed;

pub mod cli;
