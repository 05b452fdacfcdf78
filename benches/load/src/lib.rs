//! # shs-bench
//!
//! The load bench for shs-relay: SSBTEK composite queries over SHS 1.2, over the
//! SSBTEK SOAP facade, and asynchronous SHS (send → fetch → ack), all over
//! mutual TLS, against the demo stack (`shs-relay demo`, or one the bench starts
//! itself) or a deployed relay. Closed loop at a fixed concurrency or open loop
//! at a fixed rate, timed from each query's due time so that stalls are not
//! hidden. In the same run, a baseline: the seven provider calls made straight
//! to the adapters with a bare tonic client. The binary `shs-bench` prints the
//! report; `docs/performance.md` has the figures and how to run it.
//!
//! # Layout
//!
//! - [`stats`]: percentiles and the error tally.
//! - [`schedule`]: open-loop due times and latency from them.
//! - [`run`]: the closed and open loop drivers.
//! - [`workload`]: the queries (SHS, SOAP, asynchronous, baseline fan-out).
//! - [`target`]: the relay and identities, from `demo.json`.
//! - [`procstat`]: CPU time and peak RSS of local processes from `/proc`.
//! - [`report`]: the printed report.
//!
//! Not for: correctness testing (the end-to-end tests in `tests/` do that) or
//! load against anything but loopback or one's own test hosts.

// A load bench run by hand: 13 indexing/slicing sites (2026-12) not yet
// rewritten; no input from other parties reaches it.
#![allow(clippy::indexing_slicing, clippy::string_slice)]

pub mod procstat;
pub mod report;
pub mod run;
pub mod schedule;
pub mod stats;
pub mod target;
pub mod workload;
