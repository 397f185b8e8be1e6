//! Every integration scenario in one test binary: each binary links all of podbank and its
//! dependencies, so one binary instead of two dozen keeps the build small and quick to link.
//! A scenario is a module of its own, named as its file; `cargo test --test scenarios restore::`
//! runs one. Scenarios that act on the test process itself (signals) live in their own binary.

// Tests, examples and benchmarks: a panic with the value is the assertion.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../support/mod.rs"]
mod support;

mod agent_cli;
mod agent_e2e;
mod agent_election;
mod agent_http;
mod agent_keystone;
mod agent_process;
mod agent_remote;
mod agent_schedule;
mod agent_tls;
mod apiserver_client;
mod apiserver_exec;
mod bank;
mod bank_backends;
mod bank_cache;
mod bank_integrity;
mod bank_latency;
mod bank_model;
mod bank_sealed;
mod cinder_client;
mod codec_encryption;
mod codec_fixtures;
mod codec_wire;
mod deploy;
mod drill;
mod engine_conformance;
mod etcd_scan;
mod json_keys;
mod karbor_api;
mod pod_pages;
mod pods_bad_values;
mod pods_cli;
mod protect_cinder;
mod protect_closure;
mod protect_hooks;
mod protect_records;
mod quickstart;
mod restore;
mod restore_journal;
mod restore_targets;
mod restore_workloads;
mod seed_shape;
mod standin;
