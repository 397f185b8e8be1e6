//! Shared test harness: real etcd processes, seeding, the podbank binary, the Cinder rig.
#![allow(dead_code)]

pub mod agent;
pub mod apiserver;
pub mod apps;
pub mod bank;
pub mod cinder;
pub mod engine;
pub mod etcd;
pub mod http;
pub mod latency;
pub mod swift;
pub mod workload;

/// Path of the built `podbank` binary.
pub fn podbank_bin() -> &'static str {
    env!("CARGO_BIN_EXE_podbank")
}
