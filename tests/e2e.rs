//! End-to-end tests of CloudRoutes: real node processes, real HTTP servers on 127.0.0.1.
//!
//! Each test starts its own node on a temp data dir and a free port (see [`common::Node`]).

mod api;
mod bad_input;
mod brake;
mod canary;
mod cluster;
mod cluster_frames;
mod common;
mod ctl;
mod ctl_apply;
mod dashboard;
mod egress;
mod gating;
mod intake;
mod persistence;
mod reactions;
mod redis_harness;
mod security_auth;
mod security_timeouts;
mod standby;
