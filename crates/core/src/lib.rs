//! podbank's I/O-free core, a crate of its own so that the compiler keeps it pure: it has
//! no tokio, no etcd, HTTP or OpenStack client among its dependencies.
//!
//! * [`model`] is the domain: ids, references, revisions, statuses, the records of a
//!   checkpoint and of a restore. It uses no other module.
//! * [`codec`] understands the Kubernetes storage format (protobuf envelope, JSON,
//!   encryption at rest) and edits protobuf at the wire level.
//! * [`resources`] turns decoded objects into Karbor's resource types and resolves the
//!   pod -> claim -> volume graph.
//!
//! The `podbank` crate re-exports the three modules under their names
//! (`podbank::model`, ...), so the data path reads the same from either side.

pub mod codec;
pub mod model;
pub mod resources;
